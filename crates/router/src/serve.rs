//! Serving plumbing shared by the router and the demo binaries: an HTTP/1.1
//! accept loop with graceful shutdown, the ready file, and OS signals.
//!
//! Nothing here knows about routing; it must stay free of request logic.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// How long in-flight requests may take to finish after shutdown begins.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// The sending side of a shutdown signal; dropping it also signals.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A cloneable "shutdown has begun" future source.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A connected trigger and listener pair.
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Begins shutdown.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// Resolves once shutdown has begun (or the trigger was dropped).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|down| *down).await;
    }
}

/// Serves HTTP/1.1 on `listener` until `shutdown`, then stops accepting, lets
/// in-flight requests finish for up to `grace` and closes idle keep-alive
/// connections. `make_service` is called once per connection with the peer
/// address.
pub async fn serve<M, S, B>(listener: TcpListener, make_service: M, mut shutdown: Shutdown, grace: Duration)
where
    M: Fn(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).keep_alive(true);
    // Every connection task holds a sender; recv() returns None once all
    // of them are gone.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    // Out of file descriptors and the like: back off briefly.
                    eprintln!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = http.serve_connection(TokioIo::new(stream), make_service(peer));
        let mut shutdown = shutdown.clone();
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = shutdown.wait() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    drop(alive_tx);
    let _ = tokio::time::timeout(grace, alive_rx.recv()).await;
}

/// Writes `line` plus a newline to `path` atomically: a temp file in the same
/// directory, then a rename, so readers never see half a file.
pub fn write_ready_file(path: &Path, line: &str) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, format!("{line}\n"))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when
/// this is called, not when the future is first polled, so call it before
/// announcing readiness.
pub fn termination_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Binds a TCP listener, naming the address in the error.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError { addr, source })
}

/// A socket could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("failed to bind {addr}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_file_is_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ready.json");
        write_ready_file(&path, r#"{"a":1}"#).expect("write");
        write_ready_file(&path, r#"{"a":2}"#).expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{\"a\":2}\n");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }
}
