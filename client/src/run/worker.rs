//! A worker thread: takes its round's tickets, sends one request at a time through its own
//! `Variant`, counts the outcome, backs off while the server is unreachable, and reports to the
//! controller and the monitor. It allocates nothing per request itself; everything per request
//! is counted in atomics.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use super::injector::Injector;
use crate::counters::Counters;
use crate::error::{ErrorKind, RequestError};
use crate::monitor::Msg;
use crate::sample::SampleKind;
use crate::stop::{Stop, StopReason};
use crate::variant::Variant;
use crate::workload::UrlGen;

/// One round's orders to the workers.
#[derive(Debug, Clone, Copy)]
pub(super) enum Order {
    Round { started: Instant },
    Exit,
}

/// Tickets and limits of the current round, shared by the workers.
#[derive(Debug)]
pub(super) struct RoundState {
    /// Tickets taken this round (the controller resets it before each round).
    pub(super) issued: AtomicU64,
    seq: AtomicU64,
    requests: Option<u64>,
    duration: Option<Duration>,
    rate: Option<f64>,
}

impl RoundState {
    pub(super) fn new(
        requests: Option<u64>,
        duration: Option<Duration>,
        rate: Option<f64>,
    ) -> RoundState {
        RoundState {
            issued: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            requests,
            duration,
            rate,
        }
    }
}

/// What the controller hands every worker: the same for all of them.
#[derive(Debug, Clone)]
pub(super) struct Shared {
    pub(super) urls: UrlGen,
    pub(super) counters: Arc<Counters>,
    pub(super) rounds: Arc<RoundState>,
    pub(super) stop: Arc<Stop>,
    pub(super) monitor: Sender<Msg>,
    /// Where a worker says it is ready, and then that it finished each round.
    pub(super) done: Sender<()>,
    pub(super) leak: Arc<Injector>,
    /// Live heap at which the run stops itself.
    pub(super) soft_limit: usize,
    pub(super) think: Duration,
    pub(super) max_unreachable: Duration,
    /// Seeds each worker's back-off jitter (with its id).
    pub(super) seed: u64,
}

pub(super) struct Worker {
    client: Box<dyn Variant>,
    /// This worker's latency shard (shared with a few others; held for one flush).
    latency: Arc<Mutex<Histogram<u64>>>,
    /// Latencies not yet in the shard: recorded under one lock per `LATENCY_BATCH` requests
    /// (and at the end of each round, before the shards are read), not one per request.
    pending: Pending,
    urls: UrlGen,
    counters: Arc<Counters>,
    rounds: Arc<RoundState>,
    stop: Arc<Stop>,
    monitor: Sender<Msg>,
    done: Sender<()>,
    leak: Arc<Injector>,
    soft_limit: usize,
    think: Duration,
    backoff: Backoff,
    max_unreachable: Duration,
}

/// A worker's back-off after connection failures (refused, unreachable): 10 ms doubling to
/// 1 s, each delay jittered down by up to half, reset by the first answer. Without it, workers
/// retry a dead server in a tight loop and burn the cores the restarted server needs.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    /// xorshift64 state for the jitter (seeded per worker; never 0).
    rng: u64,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn new(seed: u64) -> Backoff {
        Backoff {
            next: Duration::ZERO,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    fn reset(&mut self) {
        self.next = Duration::ZERO;
    }

    /// The next delay: in [d/2, d] for d = 10 ms, 20 ms, … 1 s.
    fn delay(&mut self) -> Duration {
        let d = if self.next.is_zero() {
            Self::FIRST
        } else {
            self.next
        };
        self.next = (d * 2).min(Self::MAX);
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let fraction = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(0.5 + 0.5 * fraction)
    }
}

/// Whether a request reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// A response came back (any status).
    Answered,
    /// The connection could not be made: the server is down or gone.
    Unreachable,
    /// Anything else (timeout, reset, malformed response): the server is there.
    Failed,
}

impl Worker {
    /// Worker `id`, sending through `client` and recording latencies in `latency`.
    pub(super) fn new(
        id: u32,
        client: Box<dyn Variant>,
        latency: Arc<Mutex<Histogram<u64>>>,
        shared: &Shared,
    ) -> Worker {
        let s = shared.clone();
        Worker {
            client,
            latency,
            pending: Pending::default(),
            urls: s.urls,
            counters: s.counters,
            rounds: s.rounds,
            stop: s.stop,
            monitor: s.monitor,
            done: s.done,
            leak: s.leak,
            soft_limit: s.soft_limit,
            think: s.think,
            backoff: Backoff::new(s.seed ^ u64::from(id)),
            max_unreachable: s.max_unreachable,
        }
    }

    /// Reports ready, then runs each round it is ordered to, reporting the end of each.
    pub(super) fn run(mut self, orders: Receiver<Order>) {
        let mut url = String::with_capacity(self.urls.max_len());
        let mut warned = [false; ErrorKind::ALL.len()];
        let _ = self.done.send(());
        while let Ok(order) = orders.recv() {
            let Order::Round { started } = order else {
                break;
            };
            self.round(started, &mut url, &mut warned);
            self.flush_latencies();
            let _ = self.done.send(());
        }
    }
    fn round(&mut self, started: Instant, url: &mut String, warned: &mut [bool]) {
        let rounds = Arc::clone(&self.rounds);
        let r = &*rounds;
        loop {
            if self.stop.is_set() {
                return;
            }
            let ticket = r.issued.fetch_add(1, Relaxed);
            if r.requests.is_some_and(|n| ticket >= n) {
                return;
            }
            if let Some(d) = r.duration {
                if started.elapsed() >= d {
                    return;
                }
            }
            if let Some(rate) = r.rate {
                let due = started + Duration::from_secs_f64(ticket as f64 / rate);
                let wait = due.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    self.stop.sleep(wait);
                }
            }
            let seq = r.seq.fetch_add(1, Relaxed);
            self.urls.write(seq, url);
            let t0 = Instant::now();
            let result = self.client.get(url);
            let took = t0.elapsed();
            let reach = self.count(result, took, warned);
            self.leak.after_request();

            let done = self.counters.completed.fetch_add(1, Relaxed) + 1;
            if done % self.counters.stride.load(Relaxed) == 0 {
                let s = self.counters.sample(SampleKind::Request, false);
                if self.monitor.try_send(Msg::Sample(s)).is_err() {
                    self.counters.samples_dropped.fetch_add(1, Relaxed);
                }
            }
            if heapmeter::live_bytes() >= self.soft_limit {
                self.stop.request(StopReason::MemLimit);
                return;
            }
            match reach {
                Reach::Answered => {
                    self.backoff.reset();
                    self.counters.reachable();
                }
                Reach::Unreachable => {
                    let lasted = self
                        .counters
                        .unreachable(|| "connection refused or failed".into());
                    if lasted >= self.max_unreachable {
                        log::warn!(
                            "server unreachable for {:.1} s (--max-unreachable): stopping",
                            lasted.as_secs_f64()
                        );
                        self.stop.request(StopReason::Unreachable);
                        return;
                    }
                    self.stop.sleep(self.backoff.delay());
                }
                Reach::Failed => {}
            }
            if !self.think.is_zero() {
                self.stop.sleep(self.think);
            }
        }
    }

    /// Records the pending latencies in this worker's shard.
    fn flush_latencies(&mut self) {
        let batch = self.pending.take();
        if let Ok(mut h) = self.latency.lock() {
            for &us in batch {
                h.saturating_record(us);
            }
        }
    }

    fn count(
        &mut self,
        result: Result<crate::variant::Outcome, RequestError>,
        took: Duration,
        warned: &mut [bool],
    ) -> Reach {
        let c = &self.counters;
        let (kind, reach) = match result {
            Ok(o) if o.status < 400 => {
                c.ok.fetch_add(1, Relaxed);
                c.body_bytes.fetch_add(o.body_bytes, Relaxed);
                if self.pending.push(took.as_micros().max(1) as u64) {
                    self.flush_latencies();
                }
                return Reach::Answered;
            }
            Ok(o) => {
                report_error(warned, ErrorKind::Status, || {
                    format!("HTTP status {}", o.status)
                });
                (ErrorKind::Status, Reach::Answered)
            }
            // Connect failures are reported once per outage (`Counters::unreachable`).
            Err(e) if e.kind == ErrorKind::Connect => {
                if !c.is_down() {
                    c.unreachable(|| format!("{}: {}", e.kind, e.detail));
                }
                (ErrorKind::Connect, Reach::Unreachable)
            }
            // A reset is not backed off: a server that accepts and then drops connections (the
            // `drop` knob) is there, and is measured at full rate.
            Err(e) => {
                report_error(warned, e.kind, || e.detail.clone());
                (e.kind, Reach::Failed)
            }
        };
        c.errors.fetch_add(1, Relaxed);
        c.errors_by_kind[kind.index()].fetch_add(1, Relaxed);
        reach
    }
}

/// Latencies a worker holds before recording them in its shared histogram shard.
const LATENCY_BATCH: usize = 64;

/// A worker's unrecorded latencies, µs (fixed size: nothing allocated per request).
#[derive(Debug)]
struct Pending {
    us: [u64; LATENCY_BATCH],
    len: usize,
}

impl Default for Pending {
    fn default() -> Pending {
        Pending {
            us: [0; LATENCY_BATCH],
            len: 0,
        }
    }
}

impl Pending {
    /// Adds one latency; true when the batch is full and must be flushed.
    fn push(&mut self, us: u64) -> bool {
        self.us[self.len] = us;
        self.len += 1;
        self.len == LATENCY_BATCH
    }

    /// The pending latencies, emptying the batch.
    fn take(&mut self) -> &[u64] {
        let n = std::mem::take(&mut self.len);
        &self.us[..n]
    }
}

/// The first error of each kind per worker is a warning with its detail; later ones are debug.
fn report_error(warned: &mut [bool], kind: ErrorKind, detail: impl FnOnce() -> String) {
    if !warned[kind.index()] {
        warned[kind.index()] = true;
        log::warn!(
            "request failed ({kind}): {} (further {kind} errors are logged at debug)",
            detail()
        );
    } else if log::log_enabled!(log::Level::Debug) {
        log::debug!("request failed ({kind}): {}", detail());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_latencies_fill_a_batch_then_empty_in_order() {
        let mut p = Pending::default();
        for us in 1..LATENCY_BATCH as u64 {
            assert!(!p.push(us), "not full at {us}");
        }
        assert!(p.push(LATENCY_BATCH as u64), "full at {LATENCY_BATCH}");
        let taken: Vec<u64> = p.take().to_vec();
        assert_eq!(taken, (1..=LATENCY_BATCH as u64).collect::<Vec<_>>());
        assert!(p.take().is_empty());
        assert!(!p.push(7));
        assert_eq!(p.take(), &[7]);
    }

    #[test]
    fn back_off_doubles_from_10ms_to_1s_with_jitter_and_resets() {
        let mut b = Backoff::new(3);
        let mut ceiling = Duration::from_millis(10);
        for _ in 0..12 {
            let d = b.delay();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} within [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            ceiling = (ceiling * 2).min(Duration::from_secs(1));
        }
        assert_eq!(ceiling, Duration::from_secs(1));
        b.reset();
        assert!(b.delay() <= Duration::from_millis(10));
        // Workers seeded differently do not retry in lockstep.
        let (mut x, mut y) = (Backoff::new(1), Backoff::new(2));
        assert_ne!(x.delay(), y.delay());
    }
}
