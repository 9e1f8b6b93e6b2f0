//! One watch, from its first reading to its summary: every tick records the served count; every
//! sample reads the tree's memory and the probe's new lines, pairs each with the count at its
//! instant, writes them to the JSONL and logs the periodic line; [`Session::finish`] settles the
//! count and judges. It reads the [`ServedCount`] and the [`Tree`] it is given and starts,
//! signals or waits on no process: that is the command's (`commands::watch`).

use std::time::{Duration, Instant};

use crate::jsonl::Jsonl;
use crate::runtime::Runtime;
use crate::sites::SitesSummary;
use crate::summary::sites_agreement;
use crate::trend::{EveryDoubling, Trend};
use crate::verdict::{Class, EarlyStop};
use crate::watch::judge::{self, HeapRow, TreeRow, WatchVerdict, judge, judge_split};
use crate::watch::pair::ServedLog;
use crate::watch::probe::{Event, ProbeReader, ProbeTotals, Reading};
use crate::watch::proctree::{TreeSample, TreeSampler};
use crate::watch::served::ServedCount;
use crate::watch::sites::{self as watch_sites, Span};
use crate::watch::summary::{
    SettledAt, TreeMemory, WatchKind, WatchSample, WatchStop, WatchSummary, log_line,
};

/// No request served for this long: the reading is quiescent.
const IDLE: Duration = Duration::from_secs(1);
/// `smaps_rollup` (PSS) is read at most once per this many `--every`: the kernel walks the
/// program's page tables for it under its memory-map lock (2.6 ms for a 120 MB Node process),
/// so it follows the clock, never the work.
const PSS_EVERY: u32 = 8;
/// Readings driven by work aim at about this many over a run of known length (`--requests`).
const TARGET_READINGS: u64 = 400;
/// Without a known length, a reading every this many requests at first (at most one per
/// tick); the stride doubles each time the series is thinned.
const FIRST_STRIDE: u64 = 8;
/// The tree's and the probe's series are thinned (every other busy reading dropped, quiescent
/// and teardown readings kept) when they reach this many readings, as the variants' series is.
const MAX_ROWS: usize = 4096;

/// The memory of the watched tree, as a session reads it ([`TreeSampler`] in the command).
pub trait Tree {
    /// Reads the whole tree now; with PSS when `pss` (it costs the program: see `proctree`).
    fn read(&mut self, pss: bool) -> TreeSample;
    /// Whether a live process of the tree (as of the last reading) runs Node.
    fn runs_node(&self) -> bool;
}

impl Tree for TreeSampler {
    fn read(&mut self, pss: bool) -> TreeSample {
        if pss {
            self.sample_with_pss()
        } else {
            self.sample()
        }
    }

    fn runs_node(&self) -> bool {
        TreeSampler::runs_node(self)
    }
}

/// What a session is told when it starts: what it watches, and how often it reads and logs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The command as given (empty with `--pid`).
    pub command: Vec<String>,
    /// The watched tree's root process.
    pub pid: u32,
    /// `LEAKPROBE_URL`.
    pub url: String,
    /// The runtime whose probe the command was started with: its post-GC heap is then what is
    /// judged and logged.
    pub probe: Option<Runtime>,
    /// Time between two tree samples (`--every`).
    pub every: Duration,
    /// Time between two log lines (`--report-every`).
    pub report_every: Duration,
    /// No periodic log line (`--quiet`).
    pub quiet: bool,
    /// The run's length in requests, when known (`--requests`): sets the work stride.
    pub requests: Option<u64>,
    /// Look for a settled verdict as readings come (`--until-verdict`).
    pub until_verdict: bool,
    /// `CLOCK_MONOTONIC` nanoseconds now: the clock the tree and the probes stamp their
    /// readings with (`watch::clock::monotonic_ns`; a test's own clock in tests).
    pub clock: fn() -> u64,
    /// `--sites`: where the probes write their sites files, and where the `.heapprofile` goes.
    pub sites: Option<SitesSetup>,
}

/// Where `--sites` reads and writes.
#[derive(Debug, Clone)]
pub struct SitesSetup {
    /// The probe's folder (its `sites-<pid>-<tid>.jsonl` files; frames under it are the probe's).
    pub dir: std::path::PathBuf,
    /// Node: the last profile is written here as a `.heapprofile` (the pid is added to the name
    /// when several processes have profiles).
    pub heapprofile: std::path::PathBuf,
}

/// One watch in progress. The command calls [`Session::tick`] every few milliseconds,
/// [`Session::sample`] when [`Session::due`] (or when the watch ends), then [`Session::finish`].
pub struct Session<S, T> {
    setup: Setup,
    served: S,
    tree: T,
    reader: Option<ProbeReader>,
    out: Jsonl,
    log: ServedLog,
    totals: ProbeTotals,
    /// The probe lines of one poll (the buffer is kept).
    readings: Vec<Reading>,
    tree_rows: Vec<TreeRow>,
    heap_rows: Vec<HeapRow>,
    /// Node's external memory at the same readings as `heap_rows` (a part judged beside it).
    external_rows: Vec<HeapRow>,
    memory: TreeMemory,
    /// Whether the tree runs Node, from its processes' executables (a `sh -c` execs into it).
    node: bool,
    /// The served count at the last tick.
    count: u64,
    /// Tree samples taken.
    samples: u64,
    /// A tree sample is due once the served count reaches this (readings driven by work).
    next_count: u64,
    /// Requests between two readings driven by work; doubles when the series is thinned.
    stride: u64,
    /// The clock (ns) at or after which the next tree sample reads PSS.
    next_pss_ns: u64,
    /// The early stop's looks (`--until-verdict`).
    early: Option<EarlyStop>,
    /// The verdict the early stop settled, and where.
    settled: Option<(WatchVerdict, SettledAt)>,
    /// The clock's reading at the start: the JSONL's `t_ms` is from here.
    t0: u64,
    started: Instant,
    next_sample: Instant,
    next_report: Instant,
    /// The last log line's `(t_ms, requests)`.
    prev_report: (u64, u64),
    /// `(requests, bytes)` of the judged series at the first sample after a request: the log
    /// line's readings start here.
    base: Option<(u64, u64)>,
    /// The log lines' readings of the judged series: the line's slope is over the last few.
    trend: Trend,
    /// The log line's class, judged again when the served count has doubled.
    class: EveryDoubling<Class>,
    /// `--sites`: each probe reading's `(pid, tid, seq)` and the served count it was paired with
    /// (exit readings left out: never judged as steady).
    paired: Vec<(u32, u32, u64, u64)>,
}

/// Tree readings before the log line shows a class (the verdict's `min_points`).
const CLASS_MIN_READINGS: usize = 30;

impl<S: ServedCount, T: Tree> Session<S, T> {
    /// Starts a watch now: `served` counts the requests, `tree` reads the memory, `reader`
    /// tails the probe's file (with `setup.probe`), `out` is the JSONL.
    pub fn new(
        setup: Setup,
        served: S,
        tree: T,
        reader: Option<ProbeReader>,
        out: Jsonl,
    ) -> Session<S, T> {
        let t0 = (setup.clock)();
        let started = Instant::now();
        let stride = setup
            .requests
            .map_or(FIRST_STRIDE, |n| (n / TARGET_READINGS).max(1));
        let early = setup.until_verdict.then(EarlyStop::new);
        Session {
            next_sample: started,
            next_report: started + setup.report_every,
            setup,
            served,
            tree,
            reader,
            out,
            log: ServedLog::with_capacity(1 << 14),
            totals: ProbeTotals::default(),
            readings: Vec::with_capacity(64),
            tree_rows: Vec::with_capacity(4096),
            heap_rows: Vec::with_capacity(1024),
            external_rows: Vec::with_capacity(1024),
            memory: TreeMemory::default(),
            node: false,
            count: 0,
            samples: 0,
            next_count: 0,
            stride,
            next_pss_ns: 0,
            early,
            settled: None,
            t0,
            started,
            prev_report: (0, 0),
            base: None,
            trend: Trend::new(),
            class: EveryDoubling::new(CLASS_MIN_READINGS),
            paired: Vec::new(),
        }
    }

    /// Reads the served count and records it at this instant; returns it.
    pub fn tick(&mut self) -> u64 {
        let count = self.served.read();
        self.log.record((self.setup.clock)(), count);
        self.count = count;
        count
    }

    /// The served count at `t_ns` (a probe line's time), from the ticks' record; `None` if
    /// older than the record.
    pub fn served_at(&self, t_ns: u64) -> Option<u64> {
        self.log.served_at(t_ns)
    }

    /// Time since the watch started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether a tree sample is due at `now`: every `--every`, and every time the served count
    /// has advanced by the work stride since the last one, so that a fast or short run gets
    /// as many readings as a slow one (at most one a tick).
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_sample || (self.count > 0 && self.count >= self.next_count)
    }

    /// Takes one sample at `now`, paired with the last tick's count: the tree's memory, then the
    /// probe lines written since the last sample, each paired with the count at its own
    /// timestamp. Writes them to the JSONL in one write (the probe's lines first) and logs the
    /// periodic line when it is due. Returns the tree's reading.
    pub fn sample(&mut self, now: Instant) -> TreeSample {
        self.next_sample += self.setup.every;
        if self.next_sample < now {
            self.next_sample = now + self.setup.every;
        }
        let clock_ns = (self.setup.clock)();
        let pss = clock_ns >= self.next_pss_ns;
        if pss {
            self.next_pss_ns = clock_ns + (self.setup.every * PSS_EVERY).as_nanos() as u64;
        }
        let s = self.tree.read(pss);
        self.samples += 1;
        if !self.node && (s.joined > 0 || self.samples % u64::from(PSS_EVERY) == 1) {
            self.node = self.tree.runs_node();
        }
        let count = self.count;
        self.next_count = count + self.stride;
        let quiescent = idle(&self.log, s.t_ns, count);
        if s.procs > 0 || s.held > 0 {
            if self.tree_rows.len() >= MAX_ROWS {
                thin(&mut self.tree_rows, |r| r.quiescent || r.teardown);
                self.stride = self.stride.saturating_mul(2);
            }
            self.tree_rows.push(TreeRow {
                requests: count,
                rss: s.mem.rss,
                quiescent,
                teardown: false,
            });
            self.memory.record_tree(count, &s);
        }
        self.read_probe();
        let sample = WatchSample {
            t_ms: s.t_ns.saturating_sub(self.t0) / 1_000_000,
            kind: if quiescent {
                WatchKind::Quiescent
            } else {
                WatchKind::Interval
            },
            requests: count,
            live: self.memory.heap_end,
            external: None,
            rss: Some(s.mem.rss),
            pss: s.mem.pss,
            anon: Some(s.mem.anon),
            procs: Some(s.procs),
            pid: None,
            seq: None,
        };
        self.out.push(&sample);
        // This sample's lines (the probe's readings, then the tree's) in one write.
        self.out.flush();
        if self.base.is_none() && count > 0 {
            self.base = if self.setup.probe.is_some() {
                self.memory.heap_end.map(|h| (count, h))
            } else {
                Some((count, s.mem.rss))
            };
        }
        if now >= self.next_report {
            self.next_report = now + self.setup.report_every;
            // The judged series: the probe's heap (from its first reading), else the RSS.
            let judged = match self.setup.probe {
                Some(_) => sample.live,
                None => sample.rss,
            };
            if let (Some(_), Some(bytes)) = (self.base, judged) {
                self.trend.push(sample.requests, bytes);
            }
            if !self.setup.quiet {
                let class = self.class_now(sample.requests);
                let line = log_line(&sample, self.prev_report, self.trend.slope(), class);
                log::info!("{line}");
            }
            self.prev_report = (sample.t_ms, sample.requests);
        }
        s
    }

    /// The probe's lines since the last poll: summed over the tree's processes, paired with the
    /// served count at each line's timestamp, recorded and pushed to the JSONL.
    fn read_probe(&mut self) {
        let Some(reader) = self.reader.as_mut() else {
            return;
        };
        self.readings.clear();
        if let Err(e) = reader.poll(&mut self.readings) {
            log::warn!("cannot read the probe's output: {e}");
        }
        for rd in &self.readings {
            self.totals.update(rd);
            let (Some(at), Some(live)) = (self.log.served_at(rd.t_ns), self.totals.live_bytes())
            else {
                continue;
            };
            if self.heap_rows.len() >= MAX_ROWS {
                thin(&mut self.heap_rows, |r| r.quiescent || r.teardown);
                // The same rows of both while they are in step (every reading had `external`).
                thin(&mut self.external_rows, |r| r.quiescent || r.teardown);
            }
            let row = HeapRow {
                requests: at,
                live,
                quiescent: idle(&self.log, rd.t_ns, at),
                // A process's exit reading: teardown if no request follows it (see `finish`).
                teardown: rd.event == Event::Exit,
            };
            self.heap_rows.push(row);
            if self.setup.sites.is_some() && rd.event != Event::Exit {
                self.paired.push((rd.pid, rd.tid, rd.seq, at));
            }
            let external = self.totals.external_bytes();
            if let Some(x) = external {
                self.external_rows.push(HeapRow { live: x, ..row });
            }
            self.memory.record_heap(at, live);
            self.out.push(&WatchSample {
                t_ms: rd.t_ns.saturating_sub(self.t0) / 1_000_000,
                kind: WatchKind::Probe,
                requests: at,
                live: Some(live),
                external,
                rss: None,
                pss: None,
                anon: None,
                procs: None,
                pid: Some(rd.pid),
                seq: Some(rd.seq),
            });
        }
    }

    /// The verdict's class for the log line: judged again once the served count has doubled
    /// since the last judgement (so the log's judging costs the series' length a few dozen
    /// times per run, not every second), shown once the tree has enough readings.
    fn class_now(&mut self, requests: u64) -> Option<Class> {
        let (setup, heap_rows, tree_rows, node) =
            (&self.setup, &self.heap_rows, &self.tree_rows, self.node);
        self.class.get(tree_rows.len(), requests, || {
            let (heap, node) = judged_series(setup, heap_rows, node);
            judge(tree_rows, heap, node).verdict.class
        })
    }

    /// With `--until-verdict`, looks at the readings so far when a look is due; true once the
    /// verdict is settled (two looks in a row agree), which the command then stops on.
    pub fn settled(&mut self) -> bool {
        if self.settled.is_some() {
            return true;
        }
        let Some(early) = self.early.as_mut() else {
            return false;
        };
        let (heap, node) = judged_series(&self.setup, &self.heap_rows, self.node);
        let Some(s) = judge::look(early, &self.tree_rows, heap, node) else {
            return false;
        };
        // The early stop looks at the heap; Node's external memory must agree, or it looks on.
        let verdict = match self.split_verdict() {
            Some(split) if split.verdict.class != s.verdict.verdict.class => return false,
            Some(split) => split,
            None => s.verdict,
        };
        let at = SettledAt {
            requests: s.requests,
            seconds: self.started.elapsed().as_secs_f64(),
            looks: s.looks,
        };
        self.settled = Some((verdict, at));
        true
    }

    /// Node's heap and external memory judged as two parts
    /// ([`judge_split`]), when every probe reading had `external`; else `None`.
    fn split_verdict(&self) -> Option<WatchVerdict> {
        let aligned = self.setup.probe.is_some()
            && !self.heap_rows.is_empty()
            && self.external_rows.len() == self.heap_rows.len();
        aligned.then(|| judge_split(&self.tree_rows, &self.heap_rows, &self.external_rows))
    }

    /// Why a JSONL write failed, if one did.
    pub fn jsonl_error(&self) -> Option<&str> {
        self.out.error()
    }

    /// Ends the watch once the program has stopped: settles the served count, then judges the
    /// heap series (with a probe) or the tree's RSS.
    pub fn finish(mut self, stopped_by: WatchStop, exit_status: Option<String>) -> WatchSummary {
        let requests = self.served.settle();
        let elapsed = self.started.elapsed().as_secs_f64();
        let probe = self.setup.probe;
        if stopped_by == WatchStop::Exited {
            mark_teardown(&mut self.tree_rows);
        }
        // An exit reading with requests after it was a side process ending mid-run.
        let last = self.heap_rows.iter().map(|r| r.requests).max().unwrap_or(0);
        for r in self.heap_rows.iter_mut().filter(|r| r.requests < last) {
            r.teardown = false;
        }
        for r in self.external_rows.iter_mut().filter(|r| r.requests < last) {
            r.teardown = false;
        }
        let (judged, settled) = match self.settled.take() {
            Some((v, at)) => (v, Some(at)),
            None => (
                self.split_verdict().unwrap_or_else(|| {
                    let (heap, node) = judged_series(&self.setup, &self.heap_rows, self.node);
                    judge(&self.tree_rows, heap, node)
                }),
                None,
            ),
        };
        let sites = self.sites(&judged);
        WatchSummary {
            sites,
            variant: "watch".into(),
            command: self.setup.command,
            pid: self.setup.pid,
            url: self.setup.url,
            probe: probe.map(|p| p.name().to_string()),
            requests,
            elapsed_s: elapsed,
            rps: requests as f64 / elapsed.max(1e-9),
            stopped_by,
            exit_status,
            memory: self.memory,
            tree_samples: self.tree_rows.len(),
            probe_readings: self.heap_rows.len(),
            probe_bad_lines: self.reader.as_ref().map_or(0, ProbeReader::bad_lines),
            judged,
            settled,
            // The command's own wiring knows these (`commands::reaper`).
            left_group: Vec::new(),
            outlived: 0,
            retainers: None,
        }
    }
}

impl<S, T> Session<S, T> {
    /// `--sites`: the sites between the verdict's first fitted and last steady reading, checked
    /// against the verdict's heap slope; the last Node profile written as a `.heapprofile`.
    fn sites(&self, judged: &WatchVerdict) -> Option<SitesSummary> {
        let (setup, runtime) = (self.setup.sites.as_ref()?, self.setup.probe?);
        let (first, last) = judge::judged_span(&self.heap_rows, judged.verdict.warmup_excluded)?;
        let span = Span {
            first_requests: first.requests,
            last_requests: last.requests,
            heap_per_request: (last.live as f64 - first.live as f64)
                / last.requests.saturating_sub(first.requests).max(1) as f64,
        };
        let mut paired: std::collections::HashMap<(u32, u32, u64), u64> =
            std::collections::HashMap::with_capacity(self.paired.len());
        for &(pid, tid, seq, at) in &self.paired {
            paired.insert((pid, tid, seq), at);
        }
        let processes = match watch_sites::read_dir(
            &setup.dir,
            span.first_requests,
            span.last_requests,
            |pid, tid, seq| paired.get(&(pid, tid, seq)).copied(),
        ) {
            Ok(p) => p,
            Err(e) => {
                log::warn!("--sites: cannot read {}: {e}", setup.dir.display());
                return None;
            }
        };
        let trim = watch_sites::Trim::new(runtime, &setup.dir);
        let mut names = watch_sites::SourceNames::default();
        let mut s = watch_sites::summarize(&processes, &trim, &mut names, &span)?;
        // The verdict's heap slope (Node: the heap part; sites see no external memory).
        let v = &judged.verdict;
        let slope = judged
            .split
            .as_ref()
            .and_then(|sp| sp.heap)
            .or(v.slope)
            .map(|sl| (sl.lo, sl.hi));
        s.agreement = Some(match (runtime, v.class, v.slope) {
            (Runtime::Python, Class::Leak, Some(sl)) => {
                watch_sites::exact_agreement(&s, sl.bytes_per_request)
            }
            _ => sites_agreement(&s, v.class, slope),
        });
        if runtime == Runtime::Node {
            let with: Vec<_> = processes
                .iter()
                .filter(|p| p.last.as_ref().is_some_and(|l| !l.1.samples.is_empty()))
                .collect();
            for p in &with {
                let path = if with.len() == 1 {
                    setup.heapprofile.clone()
                } else {
                    setup
                        .heapprofile
                        .with_extension(format!("{}.heapprofile", p.pid))
                };
                let written = std::fs::File::create(&path).and_then(|f| {
                    let mut w = std::io::BufWriter::new(f);
                    watch_sites::write_heapprofile(p, &mut w)?;
                    std::io::Write::flush(&mut w)
                });
                match written {
                    Ok(()) => {
                        let shown = path.display().to_string();
                        s.heapprofile = Some(match &s.heapprofile {
                            Some(before) => format!("{before}, {shown}"),
                            None => shown,
                        });
                    }
                    Err(e) => s.dhat_error = Some(format!("{}: {e}", path.display())),
                }
            }
        }
        Some(s)
    }
}

/// The probe's heap series when a probe ran (else the tree's RSS is judged), and whether the
/// tree runs Node (seen among its processes, or the probe asked for).
fn judged_series<'a>(
    setup: &Setup,
    heap_rows: &'a [HeapRow],
    node: bool,
) -> (Option<&'a [HeapRow]>, bool) {
    let heap = setup.probe.is_some().then_some(heap_rows);
    (heap, node || setup.probe == Some(Runtime::Node))
}

/// A program that ended by itself: the tree's readings after the first one at the last served
/// count were taken while it shut down (interpreters free their heaps, runtimes unmap), not in
/// steady state, so they are teardown.
fn mark_teardown(rows: &mut [TreeRow]) {
    let Some(last) = rows.iter().map(|r| r.requests).max() else {
        return;
    };
    if last == 0 {
        return;
    }
    let mut seen = false;
    for r in rows.iter_mut().filter(|r| r.requests == last) {
        r.teardown = seen;
        seen = true;
    }
}

/// Drops every other busy reading of `rows` (the first and the last are kept, and every reading
/// `keep` says to): the series keeps its span and its shape at half the density.
fn thin<R>(rows: &mut Vec<R>, keep: impl Fn(&R) -> bool) {
    let last = rows.len().saturating_sub(1);
    let mut busy = 0usize;
    let mut i = 0usize;
    rows.retain(|r| {
        let at = i;
        i += 1;
        if at == 0 || at == last || keep(r) {
            return true;
        }
        busy += 1;
        busy % 2 == 0
    });
}

/// Whether a reading at `t_ns` with `count` served is quiescent: nothing served yet, or nothing
/// served for [`IDLE`] before it.
fn idle(log: &ServedLog, t_ns: u64, count: u64) -> bool {
    count == 0
        || log
            .served_at(t_ns.saturating_sub(IDLE.as_nanos() as u64))
            .is_some_and(|c| c == count)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::path::PathBuf;

    use super::*;
    use crate::watch::judge::Basis;
    use crate::watch::proctree::Mem;

    // The test's clock and server, per test thread: a session reads them through `Setup::clock`
    // and `ServedCount`, so nothing sleeps and every instant is chosen.
    thread_local! {
        static NOW_NS: Cell<u64> = const { Cell::new(T0) };
        static SERVED: Cell<u64> = const { Cell::new(0) };
    }
    const T0: u64 = 1_000_000_000_000;
    const MS: u64 = 1_000_000;

    fn now_ns() -> u64 {
        NOW_NS.with(Cell::get)
    }
    fn advance_ms(ms: u64) {
        NOW_NS.with(|n| n.set(n.get() + ms * MS));
    }
    fn serve(n: u64) {
        SERVED.with(|s| s.set(s.get() + n));
    }

    /// The test's served count; `in_flight` more are counted once it settles.
    struct Counter {
        in_flight: u64,
    }

    impl ServedCount for Counter {
        fn read(&mut self) -> u64 {
            SERVED.with(Cell::get)
        }
        fn settle(&mut self) -> u64 {
            SERVED.with(Cell::get) + self.in_flight
        }
    }

    /// A tree of `procs` processes whose RSS is `base` plus `per_request` bytes a request served.
    struct FakeTree {
        base: u64,
        per_request: u64,
        procs: u32,
        /// A process joins at this sample (1-based).
        joins_at: Option<u64>,
        read: u64,
        node: bool,
        asked_node: Cell<u32>,
    }

    impl FakeTree {
        fn new(base: u64, per_request: u64) -> FakeTree {
            FakeTree {
                base,
                per_request,
                procs: 1,
                joins_at: None,
                read: 0,
                node: false,
                asked_node: Cell::new(0),
            }
        }
    }

    impl Tree for FakeTree {
        fn read(&mut self, pss: bool) -> TreeSample {
            self.read += 1;
            let rss = self.base + self.per_request * SERVED.with(Cell::get);
            let mem = Mem {
                rss,
                anon: rss / 2,
                pss: pss.then_some(rss - 100),
            };
            TreeSample {
                t_ns: now_ns(),
                mem,
                live: mem,
                procs: self.procs,
                held: 0,
                joined: u32::from(self.joins_at == Some(self.read)),
                exited: 0,
                root_alive: self.procs > 0,
            }
        }
        fn runs_node(&self) -> bool {
            self.asked_node.set(self.asked_node.get() + 1);
            self.node
        }
    }

    fn setup(probe: Option<Runtime>) -> Setup {
        Setup {
            command: vec!["prog".into()],
            pid: 42,
            url: "http://127.0.0.1:1/".into(),
            probe,
            every: Duration::from_millis(100),
            report_every: Duration::from_secs(3600),
            quiet: true,
            requests: None,
            until_verdict: false,
            clock: now_ns,
            sites: None,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("leakprobe-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(name)
    }

    fn jsonl(path: &PathBuf) -> Jsonl {
        Jsonl::new(Some(std::fs::File::create(path).expect("temp file")))
    }

    fn lines(path: &PathBuf) -> Vec<WatchSample> {
        std::fs::read_to_string(path)
            .expect("written")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a WatchSample per line"))
            .collect()
    }

    /// A session without a probe, on `tree`, whose server has nothing in flight at the end.
    fn plain(tree: FakeTree, out: Jsonl) -> Session<Counter, FakeTree> {
        Session::new(setup(None), Counter { in_flight: 0 }, tree, None, out)
    }

    /// One turn of the command's loop: time passes, `n` requests are served, a tick, a sample.
    fn turn<S: ServedCount, T: Tree>(s: &mut Session<S, T>, n: u64) -> TreeSample {
        advance_ms(100);
        serve(n);
        s.tick();
        s.sample(Instant::now())
    }

    #[test]
    fn each_tree_sample_is_paired_with_the_served_count_and_the_rss_is_judged() {
        let path = temp("rss.jsonl");
        let tree = FakeTree::new(10 << 20, 1000);
        let mut s = Session::new(
            setup(None),
            Counter { in_flight: 3 },
            tree,
            None,
            jsonl(&path),
        );
        for _ in 0..2 {
            turn(&mut s, 0);
        }
        for _ in 0..100 {
            turn(&mut s, 200);
        }
        assert_eq!(s.jsonl_error(), None);
        let summary = s.finish(WatchStop::Exited, Some("exit status: 0".into()));

        assert_eq!(summary.requests, 20_003, "the settled count");
        assert_eq!(summary.tree_samples, 102);
        assert_eq!((summary.probe, summary.probe_readings), (None, 0));
        assert_eq!(summary.stopped_by, WatchStop::Exited);
        assert_eq!(summary.exit_status.as_deref(), Some("exit status: 0"));
        let (start, end) = (10 << 20, (10 << 20) + 20_000 * 1000);
        let m = &summary.memory;
        assert_eq!(
            (m.rss_start, m.rss_end, m.rss_peak),
            (Some(start), Some(end), Some(end))
        );
        // PSS is read at samples 1, 9, …, 97 (every 8th): the last, 5 samples before the end.
        assert_eq!(m.pss_end, Some(end - 5 * 200 * 1000 - 100));
        assert_eq!(m.heap_end, None);
        assert_eq!(summary.judged.basis, Basis::Rss);
        let slope = summary.judged.verdict.slope.expect("a slope");
        assert!(
            (slope.bytes_per_request - 1000.0).abs() < 1.0,
            "{}",
            slope.bytes_per_request
        );

        let written = lines(&path);
        assert_eq!(written.len(), 102, "one line per sample");
        assert!(
            written
                .iter()
                .take(2)
                .all(|w| w.kind == WatchKind::Quiescent)
        );
        assert!(
            written
                .iter()
                .skip(2)
                .all(|w| w.kind == WatchKind::Interval)
        );
        assert_eq!(
            written.iter().map(|w| w.t_ms).take(3).collect::<Vec<_>>(),
            [100, 200, 300],
            "milliseconds since the session began, on its clock"
        );
        assert_eq!(written[101].requests, 20_000);
        assert_eq!(written[101].rss, Some(end));
        assert_eq!(written[101].procs, Some(1));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_sample_is_quiescent_once_no_request_was_served_for_a_second() {
        let mut s = plain(FakeTree::new(1 << 20, 0), Jsonl::new(None));
        turn(&mut s, 100);
        for _ in 0..12 {
            turn(&mut s, 0);
        }
        let quiet: Vec<bool> = s.tree_rows.iter().map(|r| r.quiescent).collect();
        // The count last moved at the first sample: quiescent from 1 s after it.
        assert_eq!(quiet, [[false; 10].as_slice(), &[true; 3]].concat());
    }

    #[test]
    fn probe_lines_are_paired_with_the_count_at_their_own_timestamp() {
        let path = temp("probe.jsonl");
        let probe_out = temp("probe-out.jsonl");
        let line = |seq: u64, t: u64, heap: u64| {
            format!(
                "{{\"rt\":\"node\",\"ev\":\"tick\",\"pid\":7,\"seq\":{seq},\"t\":{t},\"gc\":true,\
                 \"gc_us\":1,\"rss\":1,\"heap_used\":{heap},\"heap_used_before_gc\":{heap},\
                 \"heap_total\":1,\"external\":0,\"array_buffers\":0}}\n"
            )
        };
        let mut s = Session::new(
            setup(Some(Runtime::Node)),
            Counter { in_flight: 0 },
            FakeTree::new(1 << 20, 0),
            Some(ProbeReader::new(&probe_out)),
            jsonl(&path),
        );
        s.tick(); // T0: 0 served
        advance_ms(100);
        serve(500);
        s.tick(); // T0 + 100 ms: 500
        advance_ms(100);
        serve(500);
        s.tick(); // T0 + 200 ms: 1,000
        let probe = [
            line(0, T0 - MS, 900_000), // before the watch's first record: not paired
            line(1, T0, 1_000_000),
            line(2, T0 + 150 * MS, 1_500_000),
        ];
        std::fs::write(&probe_out, probe.concat()).expect("probe lines");
        s.sample(Instant::now());
        assert_eq!(
            s.heap_rows
                .iter()
                .map(|r| (r.requests, r.live, r.quiescent))
                .collect::<Vec<_>>(),
            [(0, 1_000_000, true), (750, 1_500_000, false)]
        );
        let summary = s.finish(WatchStop::Requests, None);
        assert_eq!(summary.probe.as_deref(), Some("node"));
        assert_eq!(summary.probe_readings, 2);
        assert_eq!(summary.probe_bad_lines, 0);
        let m = &summary.memory;
        assert_eq!(
            (m.heap_start, m.heap_end, m.heap_peak),
            (Some(1_000_000), Some(1_500_000), Some(1_500_000))
        );
        assert_eq!(summary.judged.basis, Basis::Heap);

        let written = lines(&path);
        let kinds: Vec<WatchKind> = written.iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            [WatchKind::Probe, WatchKind::Probe, WatchKind::Interval],
            "the probe's lines, then the tree's, in one write"
        );
        assert_eq!((written[0].pid, written[0].t_ms), (Some(7), 0));
        assert_eq!((written[1].requests, written[1].t_ms), (750, 150));
        assert_eq!(
            written[2].live,
            Some(1_500_000),
            "the tree line carries the heap"
        );
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&probe_out);
    }

    #[test]
    fn node_is_looked_for_at_the_first_sample_every_eighth_and_when_a_process_joins() {
        let mut tree = FakeTree::new(1 << 20, 0);
        tree.joins_at = Some(3);
        let mut s = plain(tree, Jsonl::new(None));
        for _ in 0..9 {
            turn(&mut s, 10);
        }
        assert_eq!(s.tree.asked_node.get(), 3, "samples 1, 3 (a join) and 9");

        let mut tree = FakeTree::new(1 << 20, 0);
        tree.node = true;
        let mut s = plain(tree, Jsonl::new(None));
        for _ in 0..20 {
            turn(&mut s, 10);
        }
        assert_eq!(s.tree.asked_node.get(), 1, "once found, not asked again");
        assert!(s.node);
    }

    #[test]
    fn a_fast_run_is_read_every_stride_of_requests_not_only_on_the_clock() {
        // 4,000 requests in 0.4 s, 10 a millisecond: the clock alone (every 100 ms) would read
        // the tree 4 times; the work stride (4,000 / 400 = 10 requests) reads it every turn.
        let path = temp("work.jsonl");
        let mut st = setup(None);
        st.requests = Some(4_000);
        let tree = FakeTree::new(10 << 20, 1_000);
        let mut s = Session::new(st, Counter { in_flight: 0 }, tree, None, jsonl(&path));
        let mut sampled = 0;
        for _ in 0..400 {
            advance_ms(1);
            serve(10);
            s.tick();
            if s.due(Instant::now()) {
                s.sample(Instant::now());
                sampled += 1;
            }
        }
        assert!(sampled >= 399, "{sampled} readings");
        let w = s.finish(WatchStop::Exited, None);
        assert_eq!(
            w.judged.verdict.class,
            crate::verdict::Class::Leak,
            "{}",
            w.judged.verdict
        );
        let b = w.judged.verdict.slope.map_or(0.0, |s| s.bytes_per_request);
        assert!((b - 1_000.0).abs() < 10.0, "{b}");
    }

    #[test]
    fn without_a_known_length_the_stride_starts_small_and_requests_drive_readings() {
        let path = temp("stride.jsonl");
        let mut s = plain(FakeTree::new(10 << 20, 0), jsonl(&path));
        advance_ms(1);
        s.tick();
        assert!(s.due(Instant::now()), "the first sample is due at once");
        s.sample(Instant::now());
        serve(FIRST_STRIDE - 1);
        s.tick();
        assert!(
            !s.due(Instant::now()),
            "one request short of the stride, before the clock"
        );
        serve(1);
        s.tick();
        assert!(
            s.due(Instant::now()),
            "a stride of requests since the last reading"
        );
    }

    #[test]
    fn until_verdict_settles_a_steady_leak_early_and_the_summary_says_where() {
        let path = temp("settle.jsonl");
        let mut st = setup(None);
        st.until_verdict = true;
        st.requests = Some(100_000);
        let tree = FakeTree::new(10 << 20, 2_000);
        let mut s = Session::new(st, Counter { in_flight: 0 }, tree, None, jsonl(&path));
        let mut settled_at = None;
        for turn in 0..10_000u64 {
            advance_ms(1);
            serve(10);
            s.tick();
            if s.due(Instant::now()) {
                s.sample(Instant::now());
                if s.settled() {
                    settled_at = Some(turn * 10);
                    break;
                }
            }
        }
        let at = settled_at.expect("a 2 KB/request leak settles before 100,000 requests");
        assert!(at < 20_000, "settled only at {at} requests");
        let w = s.finish(WatchStop::Verdict, None);
        assert_eq!(w.judged.verdict.class, crate::verdict::Class::Leak);
        let settled = w.settled.expect("where it settled");
        assert!(
            settled.requests <= at + 10 && settled.looks >= 2,
            "{settled:?}"
        );
        let mut text = Vec::new();
        w.print_human(&mut text).expect("print");
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains("settled    leak at"), "{text}");
    }

    #[test]
    fn readings_after_the_first_at_the_last_count_are_teardown_when_the_program_exits() {
        let row = |requests| TreeRow {
            requests,
            rss: 1,
            quiescent: false,
            teardown: false,
        };
        let mut rows = vec![row(0), row(10), row(20), row(20), row(20)];
        mark_teardown(&mut rows);
        let marks: Vec<bool> = rows.iter().map(|r| r.teardown).collect();
        assert_eq!(marks, vec![false, false, false, true, true]);
    }

    #[test]
    fn thinning_keeps_the_ends_and_every_kept_reading_and_halves_the_rest() {
        let mut rows: Vec<(u32, bool)> = (0..10).map(|i| (i, i == 5)).collect();
        thin(&mut rows, |r| r.1);
        let kept: Vec<u32> = rows.iter().map(|r| r.0).collect();
        assert_eq!(kept, vec![0, 2, 4, 5, 7, 9]);
    }

    #[test]
    fn a_sample_of_an_empty_tree_is_written_but_not_judged() {
        let path = temp("empty.jsonl");
        let mut tree = FakeTree::new(4096, 0);
        tree.procs = 0;
        let mut s = plain(tree, jsonl(&path));
        let sample = turn(&mut s, 5);
        assert!(!sample.root_alive);
        let summary = s.finish(WatchStop::Exited, None);
        assert_eq!(summary.tree_samples, 0);
        assert_eq!(summary.memory, TreeMemory::default());
        assert_eq!(lines(&path).len(), 1);
        let _ = std::fs::remove_file(&path);
    }
}
