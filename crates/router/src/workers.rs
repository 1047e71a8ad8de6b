//! Proxy worker threads, one per core, like nginx's worker processes.
//!
//! Each worker runs its own single-threaded tokio runtime, its own listening
//! socket (`SO_REUSEPORT` on one port, so the kernel spreads connections) and
//! its own upstream connection pool. A proxied request, its upstream
//! connection and its stats shard therefore stay on one thread: no
//! cross-core wake-ups, no shared pool lock. Workers share only the routing
//! state (`Control`). `SO_REUSEPORT` would let another process share the
//! port as well; `port` makes sure none does.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use tokio::net::TcpSocket;
use tokio::sync::oneshot;

use crate::serve::{self, BindError, Shutdown};
use crate::state::Control;
use crate::{Error, Socket, port, proxy};

/// Pending connections per worker socket.
const BACKLOG: u32 = 1024;

/// Running workers; each reports on its channel when it has stopped.
#[derive(Debug)]
pub(crate) struct Workers {
    done: Vec<oneshot::Receiver<()>>,
}

/// How many workers when the config says 0: one per available core.
pub(crate) fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn socket_for(addr: SocketAddr, shared: bool) -> io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    #[cfg(unix)]
    {
        socket.set_reuseaddr(true)?;
        if shared {
            socket.set_reuseport(true)?;
        }
    }
    #[cfg(not(unix))]
    let _ = shared;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// Binds `count` sockets to one port (the first one picks it when `addr`
/// has port 0). Without `SO_REUSEPORT` (non-unix) there is one worker.
/// Refuses a port another process listens on ([`port::probe`]).
fn bind_all(addr: SocketAddr, count: usize) -> Result<(Vec<TcpSocket>, SocketAddr), Error> {
    let count = if cfg!(unix) { count.max(1) } else { 1 };
    let err = |source| Error::bind(Socket::Proxy, BindError { addr, source });
    if count > 1 && addr.port() != 0 {
        port::probe(addr).map_err(err)?;
    }
    let first = socket_for(addr, count > 1).map_err(err)?;
    let bound = first.local_addr().map_err(err)?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(socket_for(bound, true).map_err(err)?);
    }
    Ok((sockets, bound))
}

/// The kernel's names of our sockets, to tell them from another process's
/// on the same port; `None` when one cannot be read.
#[cfg(target_os = "linux")]
fn inodes(sockets: &[TcpSocket]) -> Option<Vec<u64>> {
    use std::os::fd::AsRawFd;
    sockets.iter().map(|s| port::inode(s.as_raw_fd())).collect()
}

impl Workers {
    /// Binds the proxy sockets and starts one worker thread per socket;
    /// returns once every worker is listening.
    pub(crate) async fn start(
        addr: SocketAddr,
        count: usize,
        control: &Control,
        shutdown: &Shutdown,
        grace: Duration,
    ) -> Result<(Self, SocketAddr), Error> {
        let (sockets, bound) = bind_all(addr, count)?;
        #[cfg(target_os = "linux")]
        let ours = if sockets.len() > 1 { inodes(&sockets) } else { None };
        let mut listening = Vec::with_capacity(sockets.len());
        let mut done = Vec::with_capacity(sockets.len());
        for (i, socket) in sockets.into_iter().enumerate() {
            let (ready_tx, ready_rx) = oneshot::channel::<io::Result<()>>();
            let (done_tx, done_rx) = oneshot::channel();
            let control = control.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name(format!("sluice-proxy-{i}"))
                .spawn(move || {
                    worker(socket, control, shutdown, grace, ready_tx);
                    let _ = done_tx.send(());
                })
                .map_err(Error::Spawn)?;
            listening.push(ready_rx);
            done.push(done_rx);
        }
        for ready in listening {
            match ready.await {
                Ok(Ok(())) => {}
                Ok(Err(source)) => return Err(Error::bind(Socket::Proxy, BindError { addr: bound, source })),
                Err(_) => {
                    return Err(Error::Spawn(io::Error::other("proxy worker died at start")));
                }
            }
        }
        // Another router may have passed its probe in the same instant as
        // ours; whichever of us listens later sees the other here and stops
        // (its workers end with the shutdown trigger our caller drops).
        #[cfg(target_os = "linux")]
        if let Some(ours) = ours
            && port::others_listening(bound.port(), &ours) == Some(true)
        {
            return Err(Error::InUse { socket: Socket::Proxy, addr: bound });
        }
        Ok((Self { done }, bound))
    }

    /// Waits until every worker has stopped.
    pub(crate) async fn wait(self) {
        for done in self.done {
            let _ = done.await;
        }
    }
}

fn worker(
    socket: TcpSocket,
    control: Control,
    shutdown: Shutdown,
    grace: Duration,
    ready: oneshot::Sender<io::Result<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match socket.listen(BACKLOG) {
            Ok(listener) => listener,
            Err(err) => {
                let _ = ready.send(Err(err));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let state = Arc::new((control, proxy::upstream_client()));
        serve::serve(
            listener,
            move |_peer| {
                let state = Arc::clone(&state);
                service_fn(move |req| {
                    let state = Arc::clone(&state);
                    async move { Ok(proxy::handle(&state.0, &state.1, req).await) }
                })
            },
            shutdown,
            grace,
        )
        .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_share_one_port() {
        let (sockets, bound) = bind_all(SocketAddr::from(([127, 0, 0, 1], 0)), 3).expect("bind");
        assert_ne!(bound.port(), 0);
        let expected = if cfg!(unix) { 3 } else { 1 };
        assert_eq!(sockets.len(), expected);
        for s in &sockets {
            assert_eq!(s.local_addr().expect("addr"), bound);
        }
    }
}
