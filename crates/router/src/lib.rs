//! `sluice-router`: the embedded weighted HTTP/1.1 reverse proxy of sluice.
//!
//! Two upstream pools, `stable` and `candidate`; each request goes to the
//! candidate with probability `candidate_weight`/100. An admin API on a
//! separate socket changes weights and upstreams, promotes the candidate, and
//! exposes per-pool counters and latency histograms ([`StateView`],
//! [`StatsView`]); [`Control`] offers the same operations in-process.
//!
//! Start one in-process (tests, the local traffic provider) from any tokio
//! runtime, current-thread included: the proxy runs on its own worker threads
//! (one per core), the admin API on the caller's runtime.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sluice_router::Error> {
//! use sluice_router::{Config, Router, Upstream};
//! let stable = Upstream::parse("http://127.0.0.1:8081").expect("valid url");
//! let router = Router::start(Config::new(stable)).await?;
//! println!("proxy on {}, admin on {}", router.listen_addr(), router.admin_addr());
//! router.control().set_weight(0).expect("weight in range");
//! router.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Forwarding: method, path and query, headers and streamed bodies pass
//! through; hop-by-hop headers are dropped and `Host` is set to the
//! upstream's `host:port` (as nginx does by default); every response carries
//! [`POOL_HEADER`]. An upstream that gives no response head is answered with
//! 502 and counted as a connect error. The router never retries a request an
//! upstream may have seen, never buffers a body, and must not hold a lock
//! across an `.await` on the request path.

mod admin;
pub mod cli;
mod port;
mod proxy;
pub mod serve;
mod state;
mod stats;
mod upstream;
mod workers;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hyper::service::service_fn;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

pub use proxy::POOL_HEADER;
pub use serve::BindError;
// The admin API's JSON is defined once, in sluice-core, for the router and
// its client alike.
pub use sluice_core::router_api::{LatencySummary, PoolStatsView, PoolView, PoolsStats, StateView, StatsView};
pub use state::{Control, ControlError, PoolName, UpstreamsUpdate};
pub use upstream::{InvalidUpstream, Upstream};

/// What a router needs to start: build it with [`Config::new`], then set
/// fields (it is `non_exhaustive`, so new fields do not break callers).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Proxy socket; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Admin API socket; port 0 picks a free port.
    pub admin: SocketAddr,
    /// The stable upstream.
    pub stable: Upstream,
    /// The candidate upstream, if any.
    pub candidate: Option<Upstream>,
    /// Percentage of requests for the candidate, 0..=100.
    pub candidate_weight: u8,
    /// How long in-flight requests may take to finish on shutdown.
    pub grace: Duration,
    /// Proxy worker threads; 0 means one per available core.
    pub workers: usize,
}

impl Config {
    /// Both sockets on `127.0.0.1:0`, no candidate, weight 0, 2 s grace.
    pub fn new(stable: Upstream) -> Self {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            listen: any,
            admin: any,
            stable,
            candidate: None,
            candidate_weight: 0,
            grace: serve::DEFAULT_GRACE,
            workers: 0,
        }
    }
}

/// One of the router's two sockets, for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// The proxy (`Config::listen`).
    Proxy,
    /// The admin API (`Config::admin`).
    Admin,
}

impl std::fmt::Display for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Socket::Proxy => "proxy",
            Socket::Admin => "admin API",
        })
    }
}

/// Why a router could not start. A router that could not start holds no
/// socket and has served nothing, except after [`Error::InUse`] found a
/// router that started in the same instant (see `port`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process (another router?) listens on the address.
    #[error("the {socket} address {addr} is already in use by another process")]
    InUse {
        /// The proxy or the admin API.
        socket: Socket,
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The proxy and the admin API were given the same address.
    #[error("the proxy and the admin API cannot both listen on {0}")]
    SameAddress(SocketAddr),
    /// A socket could not be bound for another reason: an address this host
    /// does not have, a port it may not use.
    #[error("cannot start the {socket}")]
    Bind {
        /// The proxy or the admin API.
        socket: Socket,
        /// The bind that failed.
        #[source]
        source: BindError,
    },
    /// The initial weight/upstreams are inconsistent.
    #[error("invalid initial routing state")]
    State(#[source] ControlError),
    /// A proxy worker thread could not be started.
    #[error("failed to start a proxy worker thread")]
    Spawn(#[source] std::io::Error),
    /// The ready file could not be written.
    #[error("failed to write ready file {path}")]
    ReadyFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A failed bind of `socket`: [`Error::InUse`] when the port is taken.
    fn bind(socket: Socket, err: BindError) -> Self {
        if err.source.kind() == std::io::ErrorKind::AddrInUse {
            Error::InUse { socket, addr: err.addr }
        } else {
            Error::Bind { socket, source: err }
        }
    }
}

/// Whether two addresses to listen on would collide: one port (not 0) on
/// the same IP or a wildcard.
fn collide(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0 && a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// The line a started router writes to its ready file and stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// Proxy address.
    pub listen: SocketAddr,
    /// Admin API address.
    pub admin: SocketAddr,
    /// Process id.
    pub pid: u32,
}

/// A running router. Dropping it begins shutdown without waiting; call
/// [`Router::shutdown`] to wait for in-flight requests.
#[derive(Debug)]
pub struct Router {
    listen: SocketAddr,
    admin: SocketAddr,
    control: Control,
    trigger: serve::ShutdownTrigger,
    running: Option<(workers::Workers, JoinHandle<()>)>,
}

impl Router {
    /// Binds both sockets and starts serving: the proxy on its own worker
    /// threads (see [`Config::workers`]), the admin API on the current tokio
    /// runtime.
    pub async fn start(config: Config) -> Result<Self, Error> {
        let control = Control::new(config.stable, config.candidate, config.candidate_weight).map_err(Error::State)?;
        if collide(config.listen, config.admin) {
            return Err(Error::SameAddress(config.listen));
        }
        let admin_listener = serve::bind(config.admin).await.map_err(|e| Error::bind(Socket::Admin, e))?;
        let admin = admin_listener
            .local_addr()
            .map_err(|source| Error::bind(Socket::Admin, BindError { addr: config.admin, source }))?;
        let (trigger, shutdown) = serve::shutdown_channel();
        let count = match config.workers {
            0 => workers::default_count(),
            n => n,
        };
        let (workers, listen) =
            workers::Workers::start(config.listen, count, &control, &shutdown, config.grace).await?;
        let admin_control = control.clone();
        let admin_task = tokio::spawn(serve::serve(
            admin_listener,
            move |_peer| {
                let control = admin_control.clone();
                service_fn(move |req| {
                    let control = control.clone();
                    async move { Ok(admin::handle(&control, req).await) }
                })
            },
            shutdown,
            config.grace,
        ));
        Ok(Self { listen, admin, control, trigger, running: Some((workers, admin_task)) })
    }

    /// The proxy's bound address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The admin API's bound address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The routing state, to read or change it in-process (the same
    /// operations as the admin API).
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The ready line (`{"listen":..,"admin":..,"pid":..}`).
    pub fn ready(&self) -> Ready {
        Ready { listen: self.listen, admin: self.admin, pid: std::process::id() }
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace
    /// period), and waits for that.
    pub async fn shutdown(mut self) {
        self.trigger.trigger();
        if let Some((workers, admin)) = self.running.take() {
            workers.wait().await;
            let _ = admin.await;
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.trigger.trigger();
    }
}

/// Starts a router, writes the ready line to `ready_file` (if any) and
/// stdout, serves until `signal` resolves, then shuts down gracefully.
pub async fn run(config: Config, ready_file: Option<PathBuf>, signal: impl Future<Output = ()>) -> Result<(), Error> {
    let router = Router::start(config).await?;
    let line = serde_json::to_string(&router.ready()).expect("ready line serializes");
    if let Some(path) = ready_file {
        serve::write_ready_file(&path, &line).map_err(|source| Error::ReadyFile { path, source })?;
    }
    println!("{line}");
    signal.await;
    router.shutdown().await;
    Ok(())
}
