//! The server's counters and their serialisable [`StatsSnapshot`] (served by `GET /__stats`
//! and [`crate::RunningServer::stats`]), plus the one-line periodic report.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Event counters, bumped from any thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Requests the catch-all route finished (knobs included, `drop=1` too).
    pub served: AtomicU64,
    /// Requests answered `503` (over `max_in_flight`, no thread available, or shutting down).
    pub rejected_503: AtomicU64,
    /// Requests answered `400`/`413` by this server (invalid knobs, body too large).
    pub bad_requests: AtomicU64,
}

/// Counters and memory at one moment. Field names are the JSON keys of `GET /__stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Requests served by the catch-all route since start (all knobs; not `/__stats`).
    pub served: u64,
    /// Requests sleeping or being answered right now.
    pub in_flight: u64,
    /// Most requests in flight at once since start.
    pub peak_in_flight: u64,
    /// `503` answers: over `max_in_flight`, no worker thread available, or shutting down.
    pub rejected_503: u64,
    /// `400` (invalid knob) and `413` (request body over 1 MiB) answers. Malformed
    /// request heads are answered by tiny_http itself (`400`/`414`/`431`) and not counted.
    pub bad_requests: u64,
    /// TCP connections accepted since start.
    pub connections: u64,
    /// TCP connections open right now (each holds one connection thread).
    pub open_connections: u64,
    /// Threads serving requests right now (a connection's own thread while it sleeps for
    /// or answers its request, or a pool worker), plus pool workers idle for reuse.
    pub workers: u64,
    /// Live heap bytes, if a `heapmeter` allocator is installed in this process.
    pub heap_live: Option<u64>,
    /// Resident set size in bytes, where `/proc/self/statm` exists.
    pub rss: Option<u64>,
    /// Milliseconds since the server started.
    pub uptime_ms: u64,
}

/// Formats a byte count for humans: `512 B`, `1.5 KiB`, `12.3 MiB`.
pub(crate) struct Bytes(pub Option<u64>);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(n) = self.0 else {
            return f.write_str("n/a");
        };
        let units = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut value = n as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < units.len() {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{n} B")
        } else {
            write!(f, "{value:.1} {}", units[unit])
        }
    }
}

/// The periodic report line: totals, the rate since the previous report, load, memory.
pub(crate) fn report_line(
    now: &StatsSnapshot,
    before: &StatsSnapshot,
    elapsed: Duration,
) -> String {
    let new = now.served.saturating_sub(before.served);
    let secs = elapsed.as_secs_f64().max(1e-9);
    format!(
        "served {} (+{new}, {:.0}/s) | in flight {} (peak {}) | 503s {} | 400s {} | conns {} open | heap {} | rss {}",
        now.served,
        new as f64 / secs,
        now.in_flight,
        now.peak_in_flight,
        now.rejected_503,
        now.bad_requests,
        now.open_connections,
        Bytes(now.heap_live),
        Bytes(now.rss),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_at_a_glance() {
        let table = [
            (Some(0), "0 B"),
            (Some(1023), "1023 B"),
            (Some(1536), "1.5 KiB"),
            (Some(12_900_000), "12.3 MiB"),
            (None, "n/a"),
        ];
        for (n, want) in table {
            assert_eq!(Bytes(n).to_string(), want);
        }
    }

    #[test]
    fn report_shows_rate_since_the_previous_one() {
        let before = StatsSnapshot {
            served: 1000,
            in_flight: 0,
            peak_in_flight: 0,
            rejected_503: 0,
            bad_requests: 0,
            connections: 0,
            open_connections: 0,
            workers: 0,
            heap_live: Some(1 << 20),
            rss: None,
            uptime_ms: 0,
        };
        let now = StatsSnapshot {
            served: 1500,
            in_flight: 7,
            ..before.clone()
        };
        let line = report_line(&now, &before, Duration::from_millis(500));
        assert!(
            line.starts_with("served 1500 (+500, 1000/s) | in flight 7"),
            "{line}"
        );
        assert!(
            line.contains("heap 1.0 MiB") && line.contains("rss n/a"),
            "{line}"
        );
    }

    #[test]
    fn snapshot_json_round_trips() {
        let s = StatsSnapshot {
            served: 1,
            in_flight: 2,
            peak_in_flight: 3,
            rejected_503: 4,
            bad_requests: 5,
            connections: 6,
            open_connections: 7,
            workers: 8,
            heap_live: None,
            rss: Some(9),
            uptime_ms: 10,
        };
        let json = serde_json::to_string(&s).expect("serialize");
        assert!(json.contains(r#""heap_live":null"#), "{json}");
        assert_eq!(
            serde_json::from_str::<StatsSnapshot>(&json).expect("parse"),
            s
        );
    }
}
