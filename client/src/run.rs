//! The main loop: preflight, worker threads (each owning one `Variant`), rounds, pauses,
//! linger, stop conditions, and the hand-off to the monitor and the summary.
//! Workers allocate nothing per request themselves; everything per request is counted in atomics.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use crate::config::{InjectSite, Injection, RunConfig};
use crate::counters::Counters;
use crate::error::{ErrorKind, RequestError};
use crate::monitor::{self, Monitor, MonitorOutput, Msg};
use crate::sample::SampleKind;
use crate::stop::{Stop, StopReason};
use crate::variant::Variant;
use crate::workload::UrlGen;

/// A run that could not start.
#[derive(Debug)]
pub enum RunError {
    /// The target did not accept a TCP connection.
    Unreachable { url: String, why: String },
    /// The JSONL file could not be created.
    Jsonl { path: String, why: String },
    /// The operating system refused a thread the run needs.
    Thread(String),
    /// `--sites` could not switch the allocation sampler on.
    Sites(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Unreachable { url, why } => write!(
                f,
                "cannot reach {url}: {why} (is the server running? start one with `just server`, or use `leak-client compare`, which starts its own)"
            ),
            RunError::Jsonl { path, why } => write!(f, "cannot create {path}: {why}"),
            RunError::Thread(why) => f.write_str(why),
            RunError::Sites(why) => write!(f, "--sites: {why}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Everything a finished run produced: the counters, the monitor's series, the latencies.
/// (`summary::Summary::new` turns it and its `RunConfig` into the report.)
#[derive(Debug)]
pub struct RunOutput {
    pub stopped_by: StopReason,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
    pub counters: Arc<Counters>,
    pub monitor: MonitorOutput,
    /// The sampled allocation sites at the run's readings (`--sites`).
    pub sites: Option<crate::sites::Readings>,
}

/// One round's orders to the workers.
#[derive(Debug, Clone, Copy)]
enum Order {
    Round { started: Instant },
    Exit,
}

/// Tickets and limits of the current round, shared by the workers.
#[derive(Debug)]
struct RoundState {
    issued: AtomicU64,
    seq: AtomicU64,
    requests: Option<u64>,
    duration: Option<Duration>,
    rate: Option<f64>,
}

/// Runs the workload described by `cfg` until a stop condition.
pub fn run(cfg: &RunConfig, stop: Arc<Stop>) -> Result<RunOutput, RunError> {
    preflight(cfg)?;
    let jsonl = match &cfg.jsonl {
        Some(path) => Some(std::fs::File::create(path).map_err(|e| RunError::Jsonl {
            path: path.display().to_string(),
            why: e.to_string(),
        })?),
        None => None,
    };

    // Sampling starts before the clients are built, so what they hold from the start is
    // sampled too (a flat site, not a grower).
    let mut sites = match &cfg.sites {
        Some(s) => Some(crate::sites::Readings::start(s.rate, cfg.seed).map_err(RunError::Sites)?),
        None => None,
    };
    let connections = Arc::new(AtomicU64::new(0));
    let counters = Arc::new(Counters::new(cfg.sample_every, connections.clone()));
    let rounds = Arc::new(RoundState {
        issued: AtomicU64::new(0),
        seq: AtomicU64::new(0),
        requests: cfg.requests,
        duration: cfg.duration,
        rate: cfg.rate,
    });
    let urls = UrlGen::new(&cfg.url, cfg.path_len, cfg.seed, cfg.unique);
    let soft_limit = cfg.soft_limit();
    let leak = Arc::new(Injector::new(cfg.inject));
    let (mon_tx, mon_rx) = monitor::channel();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();

    let build = cfg.variant.builder(&cfg.variant_config(connections));
    // A few latency histograms shared by the workers: one each would cost ~190 KiB per worker.
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
    let latencies: Vec<Arc<Mutex<Histogram<u64>>>> = (0..shards.min(cfg.concurrency as usize))
        .map(|_| Arc::new(Mutex::new(new_histogram())))
        .collect();
    let mut order_txs = Vec::with_capacity(cfg.concurrency as usize);
    let mut handles = Vec::with_capacity(cfg.concurrency as usize);
    for id in 0..cfg.concurrency {
        let client = build();
        let (tx, rx) = crossbeam_channel::bounded::<Order>(1);
        order_txs.push(tx);
        let worker = Worker {
            client,
            latency: latencies[id as usize % latencies.len()].clone(),
            pending: Pending::default(),
            urls: urls.clone(),
            counters: counters.clone(),
            rounds: rounds.clone(),
            stop: stop.clone(),
            monitor: mon_tx.clone(),
            done: done_tx.clone(),
            leak: leak.clone(),
            soft_limit,
            think: cfg.think,
            backoff: Backoff::new(cfg.seed ^ u64::from(id)),
            max_unreachable: cfg.max_unreachable,
        };
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || worker.run(rx));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => log::warn!("could not start worker {id}: {e}; running with {id} workers"),
        }
    }
    // Whatever the builder shared (ureq's agent) is now held by the workers alone.
    drop(build);
    let workers = handles.len();
    // Each worker reports once its own buffers exist; then the baseline below includes them.
    for _ in 0..workers {
        let _ = done_rx.recv();
    }
    let series = crate::sample::Series::with_capacity(monitor::SERIES_CAPACITY);

    // The baseline: every worker built and idle, no request sent yet.
    let baseline = counters.sample(SampleKind::Start, true);
    let label = cfg.variant.as_str();
    log::info!(
        "{label:<5} start  url={}  path_len={}  concurrency={workers}  baseline live={}  rss={}",
        cfg.url,
        cfg.path_len,
        crate::units::bytes(baseline.live as f64),
        baseline
            .rss
            .map_or_else(|| "?".into(), |r| crate::units::bytes(r as f64)),
    );
    if let Some(s) = &mut sites {
        s.take("start", &baseline);
    }
    let mon = Monitor {
        label,
        every: cfg.report_every,
        jsonl,
        sites_warmup_at: sites
            .as_ref()
            .and_then(|_| crate::sites::warmup_requests(cfg.requests, cfg.rounds)),
    };
    let mon_counters = counters.clone();
    let monitor = std::thread::Builder::new()
        .name("monitor".into())
        .spawn(move || mon.run(&mon_counters, mon_rx, series, baseline));
    let monitor = match monitor {
        Ok(m) => m,
        Err(e) => {
            stop.request(StopReason::Signal);
            for tx in &order_txs {
                let _ = tx.send(Order::Exit);
            }
            return Err(RunError::Thread(format!(
                "cannot start the monitor thread: {e}"
            )));
        }
    };

    // A reading with every worker idle: to the monitor, and (`--sites`) a sites snapshot.
    let mut quiescent_reading = |label: &'static str| {
        let quiescent = counters.sample(SampleKind::Quiescent, true);
        let _ = mon_tx.send(Msg::Sample(quiescent));
        if let Some(s) = &mut sites {
            s.take(label, &quiescent);
        }
    };
    let started = Instant::now();
    for index in 0..cfg.rounds {
        if stop.is_set() {
            break;
        }
        counters.round.store(index as u64, Relaxed);
        rounds.issued.store(0, Relaxed);
        counters.idle.store(false, Relaxed);
        let order = Order::Round {
            started: Instant::now(),
        };
        for tx in &order_txs {
            let _ = tx.send(order);
        }
        for _ in 0..workers {
            let _ = done_rx.recv();
        }
        counters.idle.store(true, Relaxed);
        quiescent_reading("end of round");
        if index + 1 < cfg.rounds {
            stop.sleep(cfg.pause);
        }
    }
    let elapsed = started.elapsed();
    if !cfg.linger.is_zero() && !stop.is_set() {
        log::info!(
            "{label:<5} lingering {} with the client idle",
            humantime::format_duration(cfg.linger)
        );
        stop.sleep(cfg.linger);
        quiescent_reading("after linger");
    }
    if let Some(s) = &mut sites {
        // Past the last reading: teardown and report-time symbolising are not sampled.
        s.finish();
    }
    let stopped_by = stop.reason().unwrap_or(match (cfg.requests, cfg.duration) {
        (Some(_), _) => StopReason::Requests,
        _ => StopReason::Duration,
    });
    // The last reading is taken while every client is still alive, so "retained" means
    // retained by a live client, not freed by tearing it down.
    let _ = mon_tx.send(Msg::Finish);
    let monitor = monitor.join();
    for tx in &order_txs {
        let _ = tx.send(Order::Exit);
    }
    for h in handles {
        let _ = h.join();
    }
    let mut latency_us = new_histogram();
    for shard in latencies.iter() {
        if let Ok(h) = shard.lock() {
            let _ = latency_us.add(&*h);
        }
    }
    let mut monitor = match monitor {
        Ok(m) => m,
        Err(_) => panic!("the monitor thread panicked"),
    };
    if let (Some(s), Some(w)) = (&mut sites, monitor.sites_warmup.take()) {
        s.set_warmup(w);
    }
    Ok(RunOutput {
        stopped_by,
        elapsed,
        latency_us,
        counters,
        monitor,
        sites,
    })
}

/// Checks that the target accepts a TCP connection, so a typo fails in one line, not as
/// thousands of connect errors.
fn preflight(cfg: &RunConfig) -> Result<(), RunError> {
    let url = cfg.url.to_string();
    let unreachable = |why: String| RunError::Unreachable {
        url: url.clone(),
        why,
    };
    let addrs = (cfg.url.host.as_str(), cfg.url.port)
        .to_socket_addrs()
        .map_err(|e| unreachable(format!("cannot resolve {}: {e}", cfg.url.host)))?;
    let timeout = cfg.timeout.min(Duration::from_secs(5));
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(unreachable(last))
}

/// Latency histogram in microseconds, 1 µs to 1 h, 3 significant digits; fixed size (~190 KiB,
/// which is why workers share a few of them rather than own one each).
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, 3_600_000_000, 3) {
        Ok(h) => h,
        Err(e) => unreachable!("constant histogram bounds are valid: {e}"),
    }
}

/// The planted leak: retains `bytes` per completed request, up to `cap` in all, at one of two
/// call sites (`--inject-site`). The lines marked `inject-site:` are what `--sites` must name
/// (the tests find them by the marker).
#[derive(Debug)]
struct Injector {
    bytes: usize,
    cap: u64,
    site: InjectSite,
    held: AtomicU64,
    /// The `keep` site's list: reachable, never shrunk (freed with the injector, after the run).
    kept: Mutex<Vec<Box<[u8]>>>,
}

impl Injector {
    fn new(inject: Injection) -> Injector {
        Injector {
            bytes: inject.bytes as usize,
            cap: inject.cap.unwrap_or(u64::MAX),
            site: inject.site,
            held: AtomicU64::new(0),
            kept: Mutex::new(Vec::new()),
        }
    }

    fn after_request(&self) {
        if self.bytes == 0 || self.held.load(Relaxed) >= self.cap {
            return;
        }
        self.held.fetch_add(self.bytes as u64, Relaxed);
        match self.site {
            InjectSite::Forget => forget_block(self.bytes),
            InjectSite::Keep => self.keep_block(),
        }
    }

    /// The `keep` site: a block held in a growing list, as an unbounded cache holds entries.
    #[inline(never)]
    fn keep_block(&self) {
        let block = vec![0x5Au8; self.bytes].into_boxed_slice(); // inject-site: keep
        if let Ok(mut kept) = self.kept.lock() {
            kept.push(block);
        }
    }
}

/// The `forget` site: a block allocated and leaked. Non-zero fill touches every page, so the
/// leak shows in RSS as a real one would.
#[inline(never)]
fn forget_block(bytes: usize) {
    let block = vec![0xA5u8; bytes].into_boxed_slice(); // inject-site: forget
    Box::leak(block);
}

struct Worker {
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
    fn run(mut self, orders: Receiver<Order>) {
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
