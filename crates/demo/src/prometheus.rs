//! A real Prometheus server (Debian's `prometheus` binary) on a free
//! 127.0.0.1 port, scraping given targets every second, for tests and demos.
//!
//! Callers decide what a missing binary means: tests skip with a note
//! outside CI and fail in CI, where a skipped test would hide a gap.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Prometheus; killed on drop.
#[derive(Debug)]
pub struct PrometheusServer {
    child: Option<Child>,
    url: String,
    dir: tempfile::TempDir,
}

/// Why no server was started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("prometheus is not installed (no `prometheus` on PATH); install it with `apt-get install prometheus`")]
    NotInstalled,
    #[error("prometheus did not become ready: {0}")]
    NotReady(String),
    #[error("cannot prepare prometheus' files: {0}")]
    Io(#[from] std::io::Error),
}

impl PrometheusServer {
    /// Starts Prometheus from `PATH` (given as read by the caller, since
    /// only `sluice_core::env` reads the environment), scraping `targets`
    /// every second, and waits until it is ready (not until its first
    /// scrape, which comes a few seconds later).
    pub fn start(path_var: &str, targets: &[SocketAddr]) -> Result<PrometheusServer, StartError> {
        let binary = find(path_var).ok_or(StartError::NotInstalled)?;
        let dir = tempfile::tempdir()?;
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config)?;
        // A free port can be taken between finding and binding it: retry.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut child = Command::new(&binary)
                .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("prometheus.log"))?)
                .spawn()?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if wait_ready(addr, &mut child) {
                return Ok(PrometheusServer { child: Some(child), url: format!("http://{addr}"), dir });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(StartError::NotReady(read_log(dir.path())))
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server (an outage); its log stays readable.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What Prometheus logged (warnings and errors).
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
}

fn find(path_var: &str) -> Option<PathBuf> {
    std::env::split_paths(path_var).map(|dir| dir.join("prometheus")).find(|p| p.is_file())
}

/// Polls `GET /-/ready` until it answers 200, the process exits, or 20 s pass.
fn wait_ready(addr: SocketAddr, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let ready = (|| {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
            stream.set_read_timeout(Some(Duration::from_secs(1)))?;
            stream.write_all(b"GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
            let mut head = [0u8; 12];
            stream.read_exact(&mut head)?;
            Ok::<_, std::io::Error>(head.ends_with(b"200"))
        })();
        if ready.unwrap_or(false) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
