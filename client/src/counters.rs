//! Run-wide counters: what the workers count per request (atomics only, no allocation) and the
//! one function that reads them together with the allocator into a `Sample`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use crate::error::ErrorKind;
use crate::sample::{Sample, SampleKind};

/// Run-wide counters, shared by workers, the monitor and the controller.
#[derive(Debug)]
pub struct Counters {
    pub started: Instant,
    pub completed: AtomicU64,
    pub ok: AtomicU64,
    pub errors: AtomicU64,
    pub errors_by_kind: [AtomicU64; ErrorKind::ALL.len()],
    pub body_bytes: AtomicU64,
    pub connections: Arc<AtomicU64>,
    /// Current round (0-based).
    pub round: AtomicU64,
    /// Whether workers are between requests for good (pause, linger): samples are quiescent.
    pub idle: AtomicBool,
    /// Take a request sample every this many completed requests (doubles when thinned).
    pub stride: AtomicU64,
    /// Request samples dropped because the monitor was behind (reported in the summary).
    pub samples_dropped: AtomicU64,
    /// While the server is unreachable: milliseconds since `started` when it became so, plus
    /// one (0: reachable).
    pub down_since_ms: AtomicU64,
    /// Milliseconds the server was unreachable in all, over finished outages.
    pub outage_ms: AtomicU64,
}

impl Counters {
    pub fn new(stride: u64, connections: Arc<AtomicU64>) -> Counters {
        Counters {
            started: Instant::now(),
            completed: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            errors_by_kind: Default::default(),
            body_bytes: AtomicU64::new(0),
            connections,
            round: AtomicU64::new(0),
            idle: AtomicBool::new(true),
            stride: AtomicU64::new(stride.max(1)),
            samples_dropped: AtomicU64::new(0),
            down_since_ms: AtomicU64::new(0),
            outage_ms: AtomicU64::new(0),
        }
    }

    /// Reads the process and the counters now. `rss` is read only when asked: it is a file
    /// read, which is fine for the monitor but not for a worker's hot path.
    pub fn sample(&self, kind: SampleKind, with_rss: bool) -> Sample {
        let heap = heapmeter::snapshot();
        Sample {
            t_ms: self.started.elapsed().as_millis() as u64,
            kind,
            round: self.round.load(Relaxed) as u32,
            requests: self.completed.load(Relaxed),
            ok: self.ok.load(Relaxed),
            errors: self.errors.load(Relaxed),
            live: heap.live as u64,
            peak: heap.peak as u64,
            allocs: heap.allocs,
            allocated_bytes: heap.allocated_bytes,
            rss: if with_rss {
                heapmeter::rss_bytes()
            } else {
                None
            },
            connections: self.connections.load(Relaxed),
        }
    }
}

/// Whether the server answered, as the workers see it: one log line when it stops answering,
/// one when it is back, and the outage time in between.
impl Counters {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A connection-level failure: marks the start of an outage (logging it once, with `why`)
    /// and returns how long the current outage has lasted.
    pub fn unreachable(&self, why: impl FnOnce() -> String) -> std::time::Duration {
        let now = self.now_ms();
        let since = match self
            .down_since_ms
            .compare_exchange(0, now + 1, Relaxed, Relaxed)
        {
            Ok(_) => {
                log::warn!(
                    "server unreachable ({}); workers back off until it answers",
                    why()
                );
                now
            }
            Err(marked) => marked - 1,
        };
        std::time::Duration::from_millis(now.saturating_sub(since))
    }

    /// A response came back: ends an outage, if one is going on (logging its length once).
    #[inline]
    pub fn reachable(&self) {
        if self.down_since_ms.load(Relaxed) == 0 {
            return;
        }
        let marked = self.down_since_ms.swap(0, Relaxed);
        if marked != 0 {
            let lasted = self.now_ms().saturating_sub(marked - 1);
            self.outage_ms.fetch_add(lasted, Relaxed);
            log::info!(
                "server reachable again after {:.1} s unreachable",
                lasted as f64 / 1000.0
            );
        }
    }

    /// Whether an outage is going on.
    pub fn is_down(&self) -> bool {
        self.down_since_ms.load(Relaxed) != 0
    }

    /// Total outage so far, including one still going on.
    pub fn outage(&self) -> std::time::Duration {
        let marked = self.down_since_ms.load(Relaxed);
        let ongoing = if marked == 0 {
            0
        } else {
            self.now_ms().saturating_sub(marked - 1)
        };
        std::time::Duration::from_millis(self.outage_ms.load(Relaxed) + ongoing)
    }
}
