//! The controller: builds the workers (each with its own client) and the monitor, takes the
//! baseline with every worker idle, runs the rounds, pauses and linger with a quiescent reading
//! after each, then stops everything and collects what the run produced. It sends no request.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use super::injector::Injector;
use super::output::{RunError, RunOutput};
use super::worker::{Order, RoundState, Shared, Worker};
use crate::config::RunConfig;
use crate::counters::Counters;
use crate::jsonl::Jsonl;
use crate::monitor::{self, Analysis, Monitor, MonitorOutput, Msg};
use crate::sample::{SampleKind, Series};
use crate::sites::Readings;
use crate::stop::{Stop, StopReason};
use crate::workload::UrlGen;

/// A run in progress, as its controller (the thread that called `run`) drives it.
pub(super) struct Controller<'a> {
    cfg: &'a RunConfig,
    stop: Arc<Stop>,
    counters: Arc<Counters>,
    rounds: Arc<RoundState>,
    crew: Crew,
    monitor: Sender<Msg>,
    monitor_thread: JoinHandle<MonitorOutput>,
    sites: Option<Readings>,
}

impl<'a> Controller<'a> {
    /// Builds every worker and its client, waits until each is idle, takes the baseline and
    /// starts the monitor. `jsonl` is the opened `--jsonl` file; `sites`, the sampler's
    /// readings, already switched on; `analysis`, `--until-verdict`'s look and the log's class.
    pub(super) fn launch(
        cfg: &'a RunConfig,
        stop: Arc<Stop>,
        jsonl: Option<File>,
        mut sites: Option<Readings>,
        analysis: Analysis,
    ) -> Result<Controller<'a>, RunError> {
        let w = &cfg.workload;
        let connections = Arc::new(AtomicU64::new(0));
        let counters = Arc::new(Counters::new(cfg.sample_every(), connections.clone()));
        let rounds = Arc::new(RoundState::new(w.requests, w.duration, w.rate));
        let (mon_tx, mon_rx) = monitor::channel();
        let crew = spawn_workers(cfg, connections, &counters, &rounds, &stop, &mon_tx);
        // Each worker reports once its own buffers exist; then the baseline below includes them.
        crew.wait();
        // The harness's own buffers are never read as the client's: the series exists before
        // the baseline (written once up front), the JSONL writer's buffer is uncounted.
        let series = Series::with_capacity(monitor::SERIES_CAPACITY);
        let jsonl = Jsonl::new(jsonl);

        // The baseline: every worker built and idle, no request sent yet.
        let baseline = counters.sample(SampleKind::Start, true);
        let label = cfg.variant.as_str();
        log::info!(
            "{label:<5} start  url={}  path_len={}  concurrency={}  baseline live={}  rss={}",
            cfg.url,
            w.path_len,
            crew.len(),
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
            every: w.report_every,
            jsonl,
            sites_warmup_at: sites
                .as_ref()
                .and_then(|_| crate::sites::warmup_requests(w.requests, w.rounds)),
            analysis,
            stop: stop.clone(),
        };
        let mon_counters = counters.clone();
        let spawned = std::thread::Builder::new()
            .name("monitor".into())
            .spawn(move || mon.run(&mon_counters, mon_rx, series, baseline));
        let monitor_thread = match spawned {
            Ok(m) => m,
            Err(e) => {
                stop.request(StopReason::Signal);
                crew.order(Order::Exit);
                return Err(RunError::Thread(format!(
                    "cannot start the monitor thread: {e}"
                )));
            }
        };
        Ok(Controller {
            cfg,
            stop,
            counters,
            rounds,
            crew,
            monitor: mon_tx,
            monitor_thread,
            sites,
        })
    }

    /// Runs the rounds (with `--pause` between them) until the last or a stop; returns how
    /// long they took.
    pub(super) fn run_rounds(&mut self) -> Duration {
        let w = &self.cfg.workload;
        let started = Instant::now();
        for index in 0..w.rounds {
            if self.stop.is_set() {
                break;
            }
            self.counters.round.store(index as u64, Relaxed);
            self.rounds.issued.store(0, Relaxed);
            self.counters.idle.store(false, Relaxed);
            self.crew.order(Order::Round {
                started: Instant::now(),
            });
            self.crew.wait();
            self.counters.idle.store(true, Relaxed);
            self.quiescent_reading("end of round");
            if index + 1 < w.rounds {
                self.stop.sleep(w.pause);
            }
        }
        started.elapsed()
    }

    /// `--linger`: the client idle but alive, then one more quiescent reading.
    pub(super) fn linger(&mut self) {
        let linger = self.cfg.workload.linger;
        if linger.is_zero() || self.stop.is_set() {
            return;
        }
        log::info!(
            "{:<5} lingering {} with the client idle",
            self.cfg.variant.as_str(),
            humantime::format_duration(linger)
        );
        self.stop.sleep(linger);
        self.quiescent_reading("after linger");
    }

    /// A reading with every worker idle: to the monitor, and (`--sites`) a sites snapshot.
    fn quiescent_reading(&mut self, label: &'static str) {
        let quiescent = self.counters.sample(SampleKind::Quiescent, true);
        let _ = self.monitor.send(Msg::Sample(quiescent));
        if let Some(s) = &mut self.sites {
            s.take(label, &quiescent);
        }
    }

    /// Ends the run: the last reading is taken while every client is still alive (so
    /// "retained" means retained by a live client, not freed by tearing it down), then the
    /// monitor and the workers stop. `elapsed` is `run_rounds`'.
    pub(super) fn finish(mut self, elapsed: Duration) -> RunOutput {
        let w = &self.cfg.workload;
        if let Some(s) = &mut self.sites {
            // Past the last reading: teardown and report-time symbolising are not sampled.
            s.finish();
        }
        let stopped_by = self
            .stop
            .reason()
            .unwrap_or(match (w.requests, w.duration) {
                (Some(_), _) => StopReason::Requests,
                _ => StopReason::Duration,
            });
        let _ = self.monitor.send(Msg::Finish);
        let monitor = self.monitor_thread.join();
        let latency_us = self.crew.dismiss();
        let mut monitor = match monitor {
            Ok(m) => m,
            Err(_) => panic!("the monitor thread panicked"),
        };
        if let (Some(s), Some(w)) = (&mut self.sites, monitor.sites_warmup.take()) {
            s.set_warmup(w);
        }
        RunOutput {
            stopped_by,
            elapsed,
            latency_us,
            counters: self.counters,
            monitor,
            sites: self.sites,
        }
    }
}

/// The workers, as the controller sees them.
struct Crew {
    /// One order channel per worker started (a worker whose thread could not start leaves
    /// a closed one).
    orders: Vec<Sender<Order>>,
    threads: Vec<JoinHandle<()>>,
    /// Each worker's "ready" and "round done".
    done: Receiver<()>,
    /// A few latency histograms shared by the workers: one each would cost ~190 KiB per worker.
    latencies: Vec<Arc<Mutex<Histogram<u64>>>>,
    /// The controller's own handles on what the workers share, held until they are dismissed
    /// (so the baseline counts the same memory as every later reading).
    shared: Shared,
}

/// Builds `--concurrency` clients (counting their connections in `connections`), a worker
/// thread for each, and the planted leak they share.
fn spawn_workers(
    cfg: &RunConfig,
    connections: Arc<AtomicU64>,
    counters: &Arc<Counters>,
    rounds: &Arc<RoundState>,
    stop: &Arc<Stop>,
    monitor: &Sender<Msg>,
) -> Crew {
    let w = &cfg.workload;
    let (done_tx, done) = crossbeam_channel::unbounded::<()>();
    let shared = Shared {
        urls: UrlGen::new(&cfg.url, w.path_len, w.seed, w.unique),
        counters: counters.clone(),
        rounds: rounds.clone(),
        stop: stop.clone(),
        monitor: monitor.clone(),
        done: done_tx,
        leak: Arc::new(Injector::new(w)),
        soft_limit: cfg.soft_limit(),
        think: w.think,
        max_unreachable: w.max_unreachable,
        seed: w.seed,
    };
    let build = cfg.variant.builder(&cfg.variant_config(connections));
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
    let latencies: Vec<Arc<Mutex<Histogram<u64>>>> = (0..shards.min(w.concurrency as usize))
        .map(|_| Arc::new(Mutex::new(new_histogram())))
        .collect();
    let mut orders = Vec::with_capacity(w.concurrency as usize);
    let mut threads = Vec::with_capacity(w.concurrency as usize);
    for id in 0..w.concurrency {
        let client = build();
        let (tx, rx) = crossbeam_channel::bounded::<Order>(1);
        orders.push(tx);
        let latency = latencies[id as usize % latencies.len()].clone();
        let worker = Worker::new(id, client, latency, &shared);
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || worker.run(rx));
        match spawned {
            Ok(h) => threads.push(h),
            Err(e) => log::warn!("could not start worker {id}: {e}; running with {id} workers"),
        }
    }
    // Whatever the builder shared (ureq's agent) is now held by the workers alone.
    drop(build);
    Crew {
        orders,
        threads,
        done,
        latencies,
        shared,
    }
}

impl Crew {
    /// Workers running.
    fn len(&self) -> usize {
        self.threads.len()
    }

    /// Sends `order` to every worker.
    fn order(&self, order: Order) {
        for tx in &self.orders {
            let _ = tx.send(order);
        }
    }

    /// Waits until every worker has reported (ready, or done with its round).
    fn wait(&self) {
        for _ in 0..self.threads.len() {
            let _ = self.done.recv();
        }
    }

    /// Sends every worker home, waits for them, and returns their latencies merged.
    fn dismiss(self) -> Histogram<u64> {
        self.order(Order::Exit);
        for h in self.threads {
            let _ = h.join();
        }
        drop(self.shared);
        let mut latency_us = new_histogram();
        for shard in self.latencies.iter() {
            if let Ok(h) = shard.lock() {
                let _ = latency_us.add(&*h);
            }
        }
        latency_us
    }
}

/// Latency histogram in microseconds, 1 µs to 1 h, 3 significant digits; fixed size (~190 KiB,
/// which is why workers share a few of them rather than own one each).
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, 3_600_000_000, 3) {
        Ok(h) => h,
        Err(e) => unreachable!("constant histogram bounds are valid: {e}"),
    }
}
