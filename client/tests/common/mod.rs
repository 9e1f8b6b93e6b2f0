//! Shared by the client's integration tests: the in-process latency server on port 0.

use std::time::Duration;

use latency_server::{Config, RunningServer, Server};

/// Starts the latency server on a free loopback port, without its periodic log.
pub fn server(latency_ms: u64) -> RunningServer {
    Server::start(Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        latency: Duration::from_millis(latency_ms),
        report_every: None,
        ..Config::default()
    })
    .expect("server starts")
}

/// Starts the latency server on `addr` (e.g. the address of one just shut down: a restart).
#[allow(dead_code)]
pub fn server_at(addr: std::net::SocketAddr) -> RunningServer {
    Server::start(Config {
        addr,
        latency: Duration::ZERO,
        report_every: None,
        ..Config::default()
    })
    .expect("server restarts on its old address")
}
