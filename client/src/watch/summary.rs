//! What a watch run writes: its JSONL record ([`WatchSample`], the variants' `Sample` fields
//! where they apply), its periodic log line, and its end-of-run summary (human on stderr, one
//! JSON object with `--json`). Data and printers only: nothing here samples or judges.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::sites::SitesSummary;
use crate::units;
pub use crate::verdict::SettledAt;
use crate::verdict::{Class, Slope};
use crate::watch::judge::{Basis, Split, WatchVerdict};
use crate::watch::proctree::TreeSample;
use crate::watch::retainers::Retainers;

/// Why a reading was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchKind {
    /// A tree sample while requests were being served.
    Interval,
    /// A tree sample after no request for a second or more (start-up, between kicks, linger).
    Quiescent,
    /// A probe reading (post-GC heap of one process; `live` is the tree's sum).
    Probe,
}

/// One line of `--jsonl`. `requests` is the server's served count at the reading; `live` the
/// probe's post-GC heap summed over the tree (`None` without a probe), and for Node `external`
/// beside it (Buffers, ArrayBuffers: judged as a part of its own, see `watch::judge`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WatchSample {
    /// Milliseconds since the watch started.
    pub t_ms: u64,
    pub kind: WatchKind,
    pub requests: u64,
    pub live: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<u64>,
    pub rss: Option<u64>,
    pub pss: Option<u64>,
    pub anon: Option<u64>,
    /// Live processes in the tree (tree samples only).
    pub procs: Option<u32>,
    /// The process a probe reading came from.
    pub pid: Option<u32>,
    /// The probe reading's own sequence number in that process (its `seq`: `--sites` files
    /// name their readings by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// Why the watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatchStop {
    /// The command (or the --pid tree) exited.
    Exited,
    /// `--requests` were served.
    Requests,
    /// `--duration` passed.
    Duration,
    /// The kicks answered and `--linger` passed.
    Kicks,
    /// Ctrl-C or SIGTERM.
    Signal,
    /// The verdict was settled (`--until-verdict`).
    Verdict,
}

impl WatchStop {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchStop::Exited => "exit",
            WatchStop::Requests => "requests",
            WatchStop::Duration => "duration",
            WatchStop::Kicks => "kicks",
            WatchStop::Signal => "signal",
            WatchStop::Verdict => "verdict",
        }
    }
}

/// Memory of the watched tree, bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TreeMemory {
    pub rss_start: Option<u64>,
    pub rss_end: Option<u64>,
    pub rss_peak: Option<u64>,
    pub pss_end: Option<u64>,
    pub anon_end: Option<u64>,
    /// Probe: post-GC heap at the first and last reading, and the highest.
    pub heap_start: Option<u64>,
    pub heap_end: Option<u64>,
    pub heap_peak: Option<u64>,
    pub processes_peak: u32,
}

impl TreeMemory {
    /// Records a tree sample taken with `requests` served. RSS starts at the last sample before
    /// the first request (or the first sample); PSS is the live processes' (once all have
    /// exited it reads 0, not their PSS, so the last live figure stays).
    pub fn record_tree(&mut self, requests: u64, s: &TreeSample) {
        if requests == 0 || self.rss_start.is_none() {
            self.rss_start = Some(s.mem.rss);
        }
        self.rss_end = Some(s.mem.rss);
        self.rss_peak = self.rss_peak.max(Some(s.mem.rss));
        if s.procs > 0 {
            self.pss_end = s.live.pss.or(self.pss_end);
        }
        self.anon_end = Some(s.mem.anon);
        self.processes_peak = self.processes_peak.max(s.procs);
    }

    /// Records the probe's post-GC heap, summed over the tree, at a reading paired with
    /// `requests` served; it starts, as RSS does, at the last reading before the first request.
    pub fn record_heap(&mut self, requests: u64, live: u64) {
        if requests == 0 || self.heap_start.is_none() {
            self.heap_start = Some(live);
        }
        self.heap_end = Some(live);
        self.heap_peak = self.heap_peak.max(Some(live));
    }
}

/// Everything a watch run reports. `--json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchSummary {
    /// `"watch"`: the field the variants' summaries name themselves by.
    pub variant: String,
    /// The command as given (empty with --pid).
    pub command: Vec<String>,
    pub pid: u32,
    pub url: String,
    pub probe: Option<String>,
    /// Requests the server served during the watch.
    pub requests: u64,
    pub elapsed_s: f64,
    pub rps: f64,
    pub stopped_by: WatchStop,
    /// How the command ended (`exit status: 0`, `signal: 15`), when it did.
    pub exit_status: Option<String>,
    pub memory: TreeMemory,
    pub tree_samples: usize,
    pub probe_readings: usize,
    /// Probe lines that could not be read.
    pub probe_bad_lines: u64,
    /// Which series the verdict judged, the verdict, and RSS's caveat.
    pub judged: WatchVerdict,
    /// When `--until-verdict` settled the verdict: it is then `judged`, from the readings up
    /// to that look.
    #[serde(default)]
    pub settled: Option<SettledAt>,
    /// Pids seen to leave the command's process group (`setsid`, `setpgid`): measured with the
    /// tree all the same (the watcher adopts orphans), and stopped at the end.
    #[serde(default)]
    pub left_group: Vec<u32>,
    /// Processes still running once the command's process group was stopped (in a group of
    /// their own), which the watcher then stopped.
    #[serde(default)]
    pub outlived: usize,
    /// `--sites`: growth per allocation site between the judged readings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<SitesSummary>,
    /// `--retainers`: what the objects new between two heap snapshots are held by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retainers: Option<Retainers>,
}

impl WatchSummary {
    /// The human summary (stderr in the CLI).
    pub fn print_human(&self, w: &mut dyn Write) -> io::Result<()> {
        let m = &self.memory;
        let opt = units::opt_bytes;
        writeln!(w, "── watch summary ─────────────────────────────")?;
        let what = if self.command.is_empty() {
            format!("pid {}", self.pid)
        } else {
            self.command.join(" ")
        };
        writeln!(w, "command    {what}")?;
        writeln!(
            w,
            "requests   {} served in {:.1}s ({}/s), stopped by {}{}",
            units::count(self.requests),
            self.elapsed_s,
            units::count(self.rps.round() as u64),
            self.stopped_by.as_str(),
            self.exit_status
                .as_ref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        )?;
        writeln!(
            w,
            "rss        start {}  end {}  peak {}  (pss end {}, anon end {}; processes: up to {})",
            opt(m.rss_start),
            opt(m.rss_end),
            opt(m.rss_peak),
            opt(m.pss_end),
            opt(m.anon_end),
            m.processes_peak
        )?;
        if !self.left_group.is_empty() || self.outlived > 0 {
            let pids: Vec<String> = self.left_group.iter().map(u32::to_string).collect();
            writeln!(
                w,
                "detached   {} process(es) left the command's process group (pid {}), measured \
                 with the tree; {} still running after the group was stopped, then stopped",
                self.left_group.len(),
                if pids.is_empty() {
                    "-".into()
                } else {
                    pids.join(", ")
                },
                self.outlived
            )?;
        }
        if let Some(p) = &self.probe {
            writeln!(
                w,
                "heap       post-GC ({p} probe, {} readings)  start {}  end {}  peak {}",
                self.probe_readings,
                opt(m.heap_start),
                opt(m.heap_end),
                opt(m.heap_peak)
            )?;
        }
        let v = &self.judged.verdict;
        let series = match (self.judged.basis, &self.judged.split) {
            (Basis::Heap, Some(_)) => "heap+external",
            (basis, _) => basis.as_str(),
        };
        match &v.slope {
            Some(slope) => writeln!(
                w,
                "slope      {series} {}  → {} per million requests",
                slope,
                units::bytes(slope.per_million as f64)
            )?,
            None => writeln!(w, "slope      ? (too few readings)")?,
        }
        if let Some(split) = &self.judged.split {
            writeln!(w, "split      {}", split_text(split))?;
        }
        if self.judged.basis == Basis::Heap {
            if let Some(r) = &v.rss_slope {
                writeln!(w, "rss slope  {r}")?;
            }
        }
        writeln!(
            w,
            "verdict    {}: {}",
            v.class.as_str().to_uppercase(),
            v.reason
        )?;
        if let Some(s) = &self.settled {
            writeln!(w, "{}", s.line(v.class))?;
        }
        if let Some(c) = &self.judged.caveat {
            writeln!(w, "note       {c}")?;
        }
        if let Some(r) = self.judged.released_note() {
            writeln!(w, "note       {r}")?;
        }
        if let (Some(p), 0) = (&self.probe, self.probe_readings) {
            writeln!(
                w,
                "note       the {p} probe sent no reading: no {p} process in the tree, or it \
                 ended before its first"
            )?;
        }
        if self.probe_bad_lines > 0 {
            writeln!(
                w,
                "note       {} probe lines unreadable",
                self.probe_bad_lines
            )?;
        }
        if let Some(s) = &self.sites {
            s.print_human(w)?;
        }
        if let Some(r) = &self.retainers {
            r.print_human(w)?;
        }
        Ok(())
    }
}

/// `heap +1.49 KiB/request, external -1.3 B/request (Buffers, ArrayBuffers)`: the parts of a
/// Node verdict, for the summary and compare's report.
pub fn split_text(split: &Split) -> String {
    let part = |s: &Option<Slope>| {
        s.map_or_else(
            || "?".to_string(),
            |s| format!("{}/request", units::per_request(s.bytes_per_request)),
        )
    };
    format!(
        "heap {}, external {} (Buffers, ArrayBuffers)",
        part(&split.heap),
        part(&split.external)
    )
}

/// `watch t=12s  req=24,000 (2,010/s)  procs=3  heap=41.2 MiB  rss=130 MiB  Δheap/req=+12 B (last 16)  looks stable`:
/// the variants' line, with the tree's figures. `prev` is the previous line's
/// `(t_ms, requests)`; `trend` is the judged series' slope over the last
/// [`trend::WINDOW`](crate::trend::WINDOW) lines (`?` before there are enough), `class` the
/// verdict's class on the readings so far (none before there are enough).
pub fn log_line(
    now: &WatchSample,
    prev: (u64, u64),
    trend: Option<f64>,
    class: Option<Class>,
) -> String {
    // A sample's `live` is the probe's latest post-GC heap (none without a probe).
    let heap = now.live;
    let dt = now.t_ms.saturating_sub(prev.0).max(1) as f64 / 1000.0;
    let rate = now.requests.saturating_sub(prev.1) as f64 / dt;
    let opt = units::opt_bytes;
    let label = if heap.is_some() { "heap" } else { "rss" };
    let growth = trend.map_or_else(|| "?".to_string(), units::per_request);
    let heap_txt = heap.map(|h| format!("  heap={}", units::bytes(h as f64)));
    let class_txt = class.map(|c| format!("  looks {c}"));
    format!(
        "watch t={}s  req={} ({}/s)  procs={}{}  rss={}  Δ{label}/req={growth} (last {}){}{}",
        now.t_ms / 1000,
        units::count(now.requests),
        units::count(rate.round() as u64),
        now.procs.unwrap_or(0),
        heap_txt.unwrap_or_default(),
        opt(now.rss),
        crate::trend::WINDOW,
        class_txt.unwrap_or_default(),
        if now.kind == WatchKind::Quiescent {
            "  (idle)"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::proctree::Mem;

    fn tree(rss: u64, pss: Option<u64>, procs: u32) -> TreeSample {
        let mem = Mem {
            rss,
            anon: rss / 2,
            pss,
        };
        TreeSample {
            t_ns: 0,
            mem,
            live: mem,
            procs,
            held: u32::from(procs == 0),
            joined: 0,
            exited: 0,
            root_alive: procs > 0,
        }
    }

    #[test]
    fn tree_memory_starts_at_the_last_sample_before_the_first_request() {
        let mut m = TreeMemory::default();
        m.record_tree(0, &tree(100, Some(90), 1));
        m.record_tree(0, &tree(120, None, 2));
        m.record_tree(10, &tree(300, Some(250), 3));
        m.record_tree(20, &tree(200, None, 1));
        assert_eq!(m.rss_start, Some(120), "the last sample before a request");
        assert_eq!((m.rss_end, m.rss_peak), (Some(200), Some(300)));
        assert_eq!(m.pss_end, Some(250), "a sample without PSS keeps the last");
        assert_eq!(m.anon_end, Some(100));
        assert_eq!(m.processes_peak, 3);
        // The first sample at all is the start, even after requests began.
        let mut late = TreeMemory::default();
        late.record_tree(50, &tree(400, None, 1));
        late.record_tree(60, &tree(410, None, 1));
        assert_eq!(late.rss_start, Some(400));
    }

    #[test]
    fn pss_of_a_tree_whose_processes_all_exited_is_not_read_as_zero() {
        let mut m = TreeMemory::default();
        m.record_tree(5, &tree(100, Some(80), 1));
        // All exited, their readings held: the live PSS is 0 but is not recorded.
        m.record_tree(6, &tree(100, Some(0), 0));
        assert_eq!(m.pss_end, Some(80));
        assert_eq!(m.processes_peak, 1);
    }

    #[test]
    fn heap_memory_starts_at_the_last_reading_before_the_first_request() {
        let mut m = TreeMemory::default();
        assert_eq!((m.heap_start, m.heap_end, m.heap_peak), (None, None, None));
        for (requests, live) in [(0, 50), (0, 40), (100, 90), (200, 70)] {
            m.record_heap(requests, live);
        }
        assert_eq!(
            (m.heap_start, m.heap_end, m.heap_peak),
            (Some(40), Some(70), Some(90))
        );
        assert_eq!(m.rss_start, None, "the tree's figures are the tree's");
    }

    #[test]
    fn the_log_line_shows_the_recent_slope_and_the_class_once_judged() {
        let now = WatchSample {
            t_ms: 12_400,
            kind: WatchKind::Interval,
            requests: 24_000,
            live: Some(43_200_000),
            rss: Some(136_314_880),
            pss: None,
            anon: None,
            procs: Some(3),
            pid: None,
            seq: None,
            external: None,
        };
        let line = log_line(&now, (11_400, 21_990), Some(12.0), Some(Class::Stable));
        assert_eq!(
            line,
            "watch t=12s  req=24,000 (2,010/s)  procs=3  heap=41.2 MiB  rss=130 MiB  \
             Δheap/req=+12.0 B (last 16)  looks stable"
        );
        let rss_only = WatchSample { live: None, ..now };
        let early = log_line(&rss_only, (11_400, 21_990), None, None);
        assert!(
            early.ends_with("rss=130 MiB  Δrss/req=? (last 16)"),
            "{early}"
        );
    }
}
