//! `latency-server`: an HTTP/1.1 test server that answers any request after a simulated
//! latency, misbehaves on request, and reports its memory — the server half of leakprobe.
//!
//! # Why
//! An HTTP client's leaks live in its slow paths and error paths: many concurrent requests
//! waiting, keep-alive reuse, chunked or huge bodies, connections closed under it. This
//! server makes those happen on demand, on loopback, for as long as a soak test runs, and
//! never becomes the bottleneck: every request in flight sleeps on its own thread, so N
//! concurrent clients each see about one latency.
//!
//! # Running it
//! ```text
//! cargo run --release -p latency-server -- --latency 50ms
//! curl "http://127.0.0.1:8080/$(printf 'a%.0s' {1..1000})"
//! {"seq":1,"path_len":1001,"latency_ms":50}
//! ```
//! Every `--report-every` (default 1s) a line like this goes to stderr:
//! ```text
//! [... INFO  latency_server::server] served 52013 (+9981, 9981/s) | in flight 500 (peak 512) | 503s 0 | 400s 0 | conns 1000 open | heap 3.1 MiB | rss 41.7 MiB
//! ```
//! read it as: requests answered so far (and since the last line, per second), requests
//! sleeping now, refusals, open connections, live heap bytes (the counting allocator) and
//! resident memory. `latency-server --help` lists every flag; the query-string knobs
//! (`status`, `bytes`, `chunked`, `close`, `drop`, `drip_ms`, `latency_ms`, `cookie`) and
//! `GET /__stats` are described there and in [`Knobs`].
//!
//! # Embedding it
//! Tests and leakprobe's `compare` start it in-process on port 0:
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use latency_server::{Config, Server};
//!
//! let server = Server::start(Config {
//!     addr: "127.0.0.1:0".parse().unwrap(),
//!     latency: Duration::from_millis(5),
//!     report_every: None,
//!     ..Config::default()
//! })?;
//! let mut tcp = std::net::TcpStream::connect(server.addr())?;
//! tcp.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//! let mut response = String::new();
//! tcp.read_to_string(&mut response)?;
//! assert!(response.starts_with("HTTP/1.1 200 OK"));
//! assert!(response.ends_with(r#"{"seq":1,"path_len":6,"latency_ms":5}"#));
//! let last = server.shutdown(Duration::from_secs(1));
//! assert_eq!(last.served, 1);
//! # Ok::<(), std::io::Error>(())
//! ```
//! [`RunningServer::stats`] returns the same [`StatsSnapshot`] `GET /__stats` serves.
//! `heap_live` is `Some` only in a process that installed `heapmeter`'s allocator (the
//! `latency-server` binary does).
//!
//! # What it promises
//! - Every connection is served promptly however they arrive: the listen backlog is 4096,
//!   and the vendored tiny_http's connection pool no longer parks connections behind busy
//!   threads (`vendor/tiny_http/PATCHES.md`).
//! - At most `max_in_flight` requests in flight; past it `503` + `Retry-After` at once.
//! - Bad input never stops it: malformed or oversized heads get `400`/`414`/`431`, silent
//!   connections are closed after `idle_timeout`, bodies over 1 MiB get `413`.
//! - Shutdown stops accepting, answers late requests on open connections with `503` and
//!   `Connection: close`, and waits (bounded) for requests in flight.

#![forbid(unsafe_code)]

pub mod cli;
mod config;
mod knobs;
mod latency;
pub mod limits;
mod listener;
mod pool;
mod respond;
mod server;
mod stats;
mod wait;

pub use config::Config;
pub use knobs::{KnobError, Knobs};
pub use latency::draw_once;
pub use limits::{OpenFilesLimit, raise_open_files_limit, server_descriptors_needed};
pub use server::{MAX_BODY, RunningServer, STATS_PATH, Server};
pub use stats::StatsSnapshot;
