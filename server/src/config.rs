//! The checked server configuration ([`Config`]) that [`crate::Server::start`] takes; parsing
//! flags into it lives in `cli`, and nothing else reads flags or the environment.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Everything [`crate::Server::start`] needs. Build it with struct-update syntax:
///
/// ```
/// use std::time::Duration;
/// let config = latency_server::Config {
///     addr: "127.0.0.1:0".parse().unwrap(),
///     latency: Duration::from_millis(50),
///     ..latency_server::Config::default()
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on. Port 0 picks a free port: read it back with
    /// [`crate::RunningServer::addr`].
    pub addr: SocketAddr,
    /// Listen on `[::1]` too, at the same port as `addr` (which must then be `127.0.0.1`), and
    /// name the server `localhost` in [`crate::RunningServer::url`]: a client that resolves
    /// `localhost` to either family finds it, and one that keeps cookies only for host names
    /// (aiohttp's jar ignores IP addresses) keeps them.
    pub localhost: bool,
    /// How long every request sleeps before it is answered (`?latency_ms=N` overrides it).
    pub latency: Duration,
    /// Each request sleeps a uniform draw from `latency ± jitter` (never below zero).
    pub jitter: Duration,
    /// Seed of the jitter generator: the same seed gives the same sequence of latencies.
    pub seed: u64,
    /// Requests sleeping or being answered at once, at most; past it the server answers
    /// `503` with `Retry-After` at once. Each one holds a thread: its connection's own, or
    /// a pool worker when it was pipelined behind another or drips its body.
    pub max_in_flight: usize,
    /// How often to log a one-line report at info level; `None` logs none.
    pub report_every: Option<Duration>,
    /// How long a connection may stay silent (idle keep-alive, or a request head written
    /// half-way) before the server closes it; also bounds each blocked write.
    pub idle_timeout: Duration,
    /// How long an idle worker thread waits for work before it exits.
    pub worker_idle: Duration,
    /// Cookies every answer of the catch-all route sets, as `NAME=VALUE` (each sent as
    /// `Set-Cookie: NAME=VALUE; Path=/`).
    pub set_cookies: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            localhost: false,
            latency: Duration::from_millis(100),
            jitter: Duration::ZERO,
            seed: 0,
            max_in_flight: 4096,
            report_every: Some(Duration::from_secs(1)),
            idle_timeout: Duration::from_secs(60),
            worker_idle: Duration::from_secs(10),
            set_cookies: Vec::new(),
        }
    }
}
