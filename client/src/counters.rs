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
