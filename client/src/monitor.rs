//! The monitor thread: takes the periodic sample, logs one line per interval, appends every
//! sample to the JSONL file (written out at every wake-up), keeps the analysis series and, with
//! `--until-verdict`, takes the early stop's looks at it outside the counted heap. It never
//! touches the network and never blocks a worker (workers `try_send` to it).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::counters::Counters;
use crate::jsonl::Jsonl;
use crate::sample::{Sample, SampleKind, Series};
use crate::stop::{Stop, StopReason};
use crate::trend::{self, Trend};
use crate::units;

/// Capacity of the analysis series (thinned in place beyond this).
pub const SERIES_CAPACITY: usize = 4096;

/// Messages to the monitor thread. `Sample` is `Copy`, and the channel is bounded, so sending
/// allocates nothing in steady state.
#[derive(Debug, Clone, Copy)]
pub enum Msg {
    Sample(Sample),
    /// Return: the controller has sent the run's last readings already.
    Finish,
}

/// One look of `--until-verdict`'s early stop at the series so far (all its samples): `Some`
/// once the verdict is settled. The monitor calls it after every wake-up inside
/// [`heapmeter::uncounted`], so it must free all it allocates before returning and touch no
/// memory allocated outside (see that function's contract); it returns plain `Copy` data. The
/// analysis builds it (`summary::early_look`): this layer knows nothing of the verdict.
pub type Look = Box<dyn FnMut(&[Sample]) -> Option<Settled> + Send>;

/// The verdict's class on the series so far (all its samples), for the periodic log line:
/// `Some("stable")`, …, once there are enough readings. Called at each log line inside
/// [`heapmeter::uncounted`], under the same contract as a [`Look`] (it copies the series and
/// judges it, so it should judge again only now and then, keeping its last class meanwhile);
/// built by the analysis (`summary::log_class`).
pub type Classify = Box<dyn FnMut(&[Sample]) -> Option<&'static str> + Send>;

/// What the analysis lends the monitor: `--until-verdict`'s look, and the log line's class.
/// `Analysis::default()` is neither (a run judged only at its end, its log without a class).
#[derive(Default)]
pub struct Analysis {
    pub look: Option<Look>,
    pub class: Option<Classify>,
}

/// A verdict the early stop settled, as a look hands it back: `Copy`, owning no memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settled {
    /// The settled class (`leak`, `stable`, …).
    pub class: &'static str,
    /// Requests served at the look that settled it.
    pub requests: u64,
    /// Milliseconds since the run started, at that look's reading.
    pub t_ms: u64,
    /// Looks taken, this one included.
    pub looks: u32,
}

/// What the monitor hands back when it finishes.
#[derive(Debug)]
pub struct MonitorOutput {
    pub series: Series,
    pub baseline: Sample,
    pub last: Sample,
    pub rss_peak: Option<u64>,
    pub jsonl_error: Option<String>,
    /// The sampled sites at the warm-up reading (`--sites`, see `Monitor::sites_warmup_at`).
    pub sites_warmup: Option<crate::sites::Reading>,
    /// Where `--until-verdict` settled the verdict (the monitor then stopped the run).
    pub settled: Option<Settled>,
}

/// The monitor's settings.
pub struct Monitor {
    pub label: &'static str,
    pub every: Duration,
    /// The `--jsonl` writer (its buffer is outside the counted heap: see [`Jsonl`]).
    pub jsonl: Jsonl,
    /// With `--sites`: snapshot the sampled sites at the first sample past this many requests
    /// (the end of warm-up of a single-round run; the rounds' ends are the controller's).
    pub sites_warmup_at: Option<u64>,
    /// `--until-verdict`'s look (the stop it requests once the verdict is settled), and the
    /// log line's class.
    pub analysis: Analysis,
    pub stop: Arc<Stop>,
}

/// Messages the channel holds; a worker finding it full drops its sample (and counts it).
const CHANNEL_CAPACITY: usize = 1024;

/// How long the monitor lets samples queue after the first one wakes it. Workers then rarely
/// find it asleep (a futex wake per sample, and a monitor wake-up, cost more than the sample
/// itself); the channel overflows only past `CHANNEL_CAPACITY` / `BATCH` = 200,000 samples/s.
const BATCH: Duration = Duration::from_millis(5);

pub fn channel() -> (Sender<Msg>, Receiver<Msg>) {
    crossbeam_channel::bounded(CHANNEL_CAPACITY)
}

impl Monitor {
    /// Runs until `Msg::Finish` (or every sender is gone). `baseline` is the start sample,
    /// taken by the controller with every worker built and idle and `series` (allocated and
    /// written once up front, see [`Series::with_capacity`]) already in place.
    pub fn run(
        self,
        counters: &Counters,
        rx: Receiver<Msg>,
        mut series: Series,
        baseline: Sample,
    ) -> MonitorOutput {
        let mut jsonl = self.jsonl;
        let Analysis {
            mut look,
            class: mut classify,
        } = self.analysis;
        let mut settled = None;
        let mut rss_peak = baseline.rss;
        let mut last = baseline;
        let mut sites_warmup = None;
        let warmup_at = self.sites_warmup_at;
        // Every sample, request or periodic, goes through here: peak RSS, the last reading, the
        // warm-up snapshot of `--sites`, the series (halving the workers' sampling rate when
        // it thins) and the JSONL lines of this wake-up.
        let mut record = |s: Sample, jsonl: &mut Jsonl, series: &mut Series| {
            rss_peak = rss_peak.max(s.rss);
            last = s;
            if sites_warmup.is_none() && warmup_at.is_some_and(|n| s.requests >= n) {
                sites_warmup = Some(crate::sites::Reading::now("warm-up", &s));
            }
            if series.push(s) {
                let stride = counters.stride.load(Relaxed);
                counters.stride.store(stride.saturating_mul(2), Relaxed);
            }
            jsonl.push(&s);
        };
        record(baseline, &mut jsonl, &mut series);
        jsonl.flush();

        let mut next_tick = Instant::now() + self.every;
        let mut prev = baseline;
        // On the stack: the log's slope allocates nothing in the counted heap.
        let mut trend = Trend::new();
        trend.push(baseline.requests, baseline.live);
        let mut finished = false;
        while !finished {
            let first = match rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Some(first) = first {
                // Let the rest of a burst of request samples queue, then take them together:
                // one wake-up and one RSS read per batch, not per sample.
                std::thread::sleep(BATCH);
                let mut batch_rss = None;
                for msg in std::iter::once(first).chain(rx.try_iter().take(CHANNEL_CAPACITY)) {
                    match msg {
                        Msg::Sample(mut s) => {
                            if s.rss.is_none() {
                                s.rss = *batch_rss.get_or_insert_with(heapmeter::rss_bytes);
                            }
                            record(s, &mut jsonl, &mut series);
                        }
                        Msg::Finish => {
                            finished = true;
                            break;
                        }
                    }
                }
            }
            // The periodic reading is due even while request samples keep arriving.
            let now = Instant::now();
            if !finished && now >= next_tick {
                let kind = if counters.idle.load(Relaxed) {
                    SampleKind::Quiescent
                } else {
                    SampleKind::Interval
                };
                let s = counters.sample(kind, true);
                trend.push(s.requests, s.live);
                if log::log_enabled!(log::Level::Info) {
                    // Judging copies the series: the measuring's memory, kept out of the
                    // counted heap like a look's. The series as recorded so far (this reading
                    // is recorded below).
                    let class = match classify.as_mut() {
                        Some(classify) => {
                            let samples = series.samples();
                            heapmeter::uncounted(|| classify(samples))
                        }
                        None => None,
                    };
                    log::info!("{}", log_line(self.label, &prev, &s, trend.slope(), class));
                }
                crate::progress::set(s.requests);
                prev = s;
                record(s, &mut jsonl, &mut series);
                next_tick += self.every;
                if next_tick < now {
                    next_tick = now + self.every;
                }
            }
            // Whatever this wake-up recorded reaches the file now, in one write (the last
            // wake-up's too: `Finish` ends the loop here).
            jsonl.flush();
            if settled.is_none() && !finished {
                if let Some(look) = look.as_mut() {
                    // Judging copies the series and builds its pairwise slopes: the measuring's
                    // memory, not the client's, so it stays out of the counted heap.
                    let samples = series.samples();
                    settled = heapmeter::uncounted(|| look(samples));
                    if let Some(s) = settled {
                        log::info!(
                            "{:<5} verdict settled: {} at {} requests, {:.1}s ({} looks); stopping",
                            self.label,
                            s.class,
                            units::count(s.requests),
                            s.t_ms as f64 / 1000.0,
                            s.looks
                        );
                        self.stop.request(StopReason::Verdict);
                    }
                }
            }
        }
        MonitorOutput {
            series,
            baseline,
            last,
            rss_peak,
            jsonl_error: jsonl.into_error(),
            sites_warmup,
            settled,
        }
    }
}

/// `ureq  t=12s  req=24,000 (2,010/s)  err=0  live=1.82 MiB  peak=2.1 MiB  rss=9.4 MiB  Δlive/req=+0.3 B (last 16)  looks stable`:
/// `trend` is the live heap's slope over the last [`trend::WINDOW`] lines (`?` before there
/// are enough), not an average since the start, which warm-up and pools would dominate;
/// `class` the verdict's class on the readings so far (none before there are enough), as
/// `watch`'s line shows it.
pub fn log_line(
    label: &str,
    prev: &Sample,
    now: &Sample,
    trend: Option<f64>,
    class: Option<&str>,
) -> String {
    let dt = now.t_ms.saturating_sub(prev.t_ms).max(1) as f64 / 1000.0;
    let rate = now.requests.saturating_sub(prev.requests) as f64 / dt;
    let growth = trend.map_or_else(|| "?".to_string(), units::per_request);
    let rss = now
        .rss
        .map_or_else(|| "?".to_string(), |r| units::bytes(r as f64));
    let idle = if now.kind == SampleKind::Quiescent {
        "  (idle)"
    } else {
        ""
    };
    let class = class.map(|c| format!("  looks {c}")).unwrap_or_default();
    format!(
        "{label:<5} t={}s  req={} ({}/s)  err={}  live={}  peak={}  rss={}  Δlive/req={} (last {}){class}{idle}",
        now.t_ms / 1000,
        units::count(now.requests),
        units::count(rate.round() as u64),
        units::count(now.errors),
        units::bytes(now.live as f64),
        units::bytes(now.peak as f64),
        rss,
        growth,
        trend::WINDOW,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_line_reads_at_a_glance() {
        let mk = |t_ms, requests, live| Sample {
            t_ms,
            kind: SampleKind::Interval,
            round: 0,
            requests,
            ok: requests,
            errors: 0,
            live,
            peak: 2_202_009,
            allocs: 0,
            allocated_bytes: 0,
            rss: Some(9_856_614),
            connections: 8,
        };
        let line = log_line(
            "ureq",
            &mk(11_000, 21_990, 1_907_000),
            &mk(12_000, 24_000, 1_907_200),
            Some(0.3),
            Some("stable"),
        );
        assert_eq!(
            line,
            "ureq  t=12s  req=24,000 (2,010/s)  err=0  live=1.82 MiB  peak=2.1 MiB  rss=9.4 MiB  Δlive/req=+0.3 B (last 16)  looks stable"
        );
        let early = log_line("raw", &mk(0, 0, 0), &mk(1_000, 10, 0), None, None);
        assert!(early.ends_with("Δlive/req=? (last 16)"), "{early}");
    }
}
