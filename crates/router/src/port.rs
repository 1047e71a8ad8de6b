//! Keeping the proxy port to ourselves.
//!
//! The proxy workers listen on one port through `SO_REUSEPORT` (see
//! `workers`), and `SO_REUSEPORT` lets any other process of the same user
//! join that port: a second router started on it would silently take a share
//! of the users. So:
//!
//! 1. [`probe`] binds the address once *without* `SO_REUSEPORT` before the
//!    workers bind. The kernel refuses that bind while anyone listens on the
//!    port (with or without `SO_REUSEPORT`), so a port already served is
//!    refused here, before anything of ours listens.
//! 2. The probe must be closed before the workers can bind, which leaves a
//!    window of microseconds in which a second router doing the same could
//!    pass its probe too. On Linux, [`others_listening`] closes it: once our
//!    workers listen, it looks for a listening socket on our port (same
//!    address, or a wildcard on either side) that is not one of ours. Of two
//!    routers that race, the later one to listen always sees the earlier one
//!    and gives up, so two routers never keep sharing a port.
//!
//! This module only looks: it never changes or closes a socket it did not
//! open, and the probe does not outlive the call.

use std::io;
use std::net::SocketAddr;

/// Binds `addr` once with `SO_REUSEADDR` (a previous run's connections in
/// TIME_WAIT do not count) but without `SO_REUSEPORT`, and closes it again.
/// Fails with `AddrInUse` while another socket listens on the port.
pub(crate) fn probe(addr: SocketAddr) -> io::Result<()> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)
}

/// The identity of a socket we opened, as `/proc/net/tcp` names it (its
/// inode); `None` where that cannot be read.
#[cfg(target_os = "linux")]
pub(crate) fn inode(fd: std::os::fd::RawFd) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{fd}")).ok().map(|m| m.ino())
}

/// Whether a socket that is not one of `ours` (inodes) listens on `port` at
/// an address that overlaps ours. `None` when the kernel's tables cannot be
/// read (no `/proc`): then only the probe stands guard.
#[cfg(target_os = "linux")]
pub(crate) fn others_listening(port: u16, ours: &[u64]) -> Option<bool> {
    let mut tables = String::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(path) {
            Ok(text) => tables.push_str(&text),
            // A kernel without IPv6 has no tcp6 table.
            Err(_) if path.ends_with('6') => {}
            Err(_) => return None,
        }
    }
    Some(foreign_listener(&tables, port, ours))
}

/// The decision of [`others_listening`] on the text of `/proc/net/tcp{,6}`:
/// a header line, then `sl local_address rem_address st tx:rx tr:when
/// retrnsmt uid timeout inode ...` with addresses as `HEXIP:HEXPORT` and
/// state `0A` for LISTEN.
fn foreign_listener(tables: &str, port: u16, ours: &[u64]) -> bool {
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    for line in tables.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, local, _, state, _, _, _, _, _, inode, ..] = fields.as_slice() else { continue };
        if *state != "0A" {
            continue;
        }
        let Some((ip, hex_port)) = local.rsplit_once(':') else { continue };
        if u16::from_str_radix(hex_port, 16) != Ok(port) {
            continue;
        }
        match inode.parse::<u64>() {
            Ok(inode) if ours.contains(&inode) => mine.push(ip),
            Ok(_) => theirs.push(ip),
            Err(_) => {}
        }
    }
    let wildcard = |ip: &str| ip.bytes().all(|b| b == b'0');
    theirs.iter().any(|t| mine.iter().any(|m| m == t || wildcard(m) || wildcard(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    fn line(local: &str, state: &str, inode: u64) -> String {
        format!(
            "   0: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000  1000        0 {inode} 1 0\n"
        )
    }

    #[test]
    fn finds_a_foreign_listener_on_our_address_or_a_wildcard() {
        // 127.0.0.1:8080 is 0100007F:1F90.
        let ours = line("0100007F:1F90", "0A", 11) + &line("0100007F:1F90", "0A", 12);
        let alone = format!("{HEADER}{ours}");
        assert!(!foreign_listener(&alone, 8080, &[11, 12]));
        let shared = format!("{alone}{}", line("0100007F:1F90", "0A", 99));
        assert!(foreign_listener(&shared, 8080, &[11, 12]));
        let wildcard = format!("{alone}{}", line("00000000:1F90", "0A", 99));
        assert!(foreign_listener(&wildcard, 8080, &[11, 12]));
    }

    #[test]
    fn ignores_other_ports_addresses_and_states() {
        let ours = line("0100007F:1F90", "0A", 11);
        let other_port = line("0100007F:1F91", "0A", 99);
        let other_address = line("0200007F:1F90", "0A", 98);
        let connection = line("0100007F:1F90", "01", 97);
        let tables = format!("{HEADER}{ours}{other_port}{other_address}{connection}garbage\n");
        assert!(!foreign_listener(&tables, 8080, &[11]));
    }

    #[test]
    fn probe_refuses_a_port_someone_listens_on() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = held.local_addr().expect("addr");
        let err = probe(addr).expect_err("port is held");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(held);
        probe(addr).expect("free again");
    }

    /// The check on the live kernel tables: a second `SO_REUSEPORT`
    /// listener on our port (as another router racing us would open) is
    /// seen; ours alone are not.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn sees_a_foreign_listener_in_the_kernel_tables() {
        use std::os::fd::AsRawFd;
        let listen = |addr: SocketAddr| {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.set_reuseport(true).expect("reuseport");
            socket.bind(addr).expect("bind");
            socket.listen(16).expect("listen")
        };
        let ours = listen(SocketAddr::from(([127, 0, 0, 1], 0)));
        let addr = ours.local_addr().expect("addr");
        let mine = [inode(ours.as_raw_fd()).expect("inode")];
        assert_eq!(others_listening(addr.port(), &mine), Some(false));
        let theirs = listen(addr);
        assert_eq!(others_listening(addr.port(), &mine), Some(true));
        drop(theirs);
        assert_eq!(others_listening(addr.port(), &mine), Some(false));
    }
}
