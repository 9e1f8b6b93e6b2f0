//! What a watch run writes: its JSONL record ([`WatchSample`], the variants' `Sample` fields
//! where they apply), its periodic log line, and its end-of-run summary (human on stderr, one
//! JSON object with `--json`). Data and printers only: nothing here samples or judges.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::units;
use crate::watch::judge::{Basis, WatchVerdict};

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
/// probe's post-GC heap summed over the tree (`None` without a probe).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WatchSample {
    /// Milliseconds since the watch started.
    pub t_ms: u64,
    pub kind: WatchKind,
    pub requests: u64,
    pub live: Option<u64>,
    pub rss: Option<u64>,
    pub pss: Option<u64>,
    pub anon: Option<u64>,
    /// Live processes in the tree (tree samples only).
    pub procs: Option<u32>,
    /// The process a probe reading came from.
    pub pid: Option<u32>,
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
}

impl WatchStop {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchStop::Exited => "exit",
            WatchStop::Requests => "requests",
            WatchStop::Duration => "duration",
            WatchStop::Kicks => "kicks",
            WatchStop::Signal => "signal",
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
        let series = self.judged.basis.as_str();
        match &v.slope {
            Some(slope) => writeln!(
                w,
                "slope      {series} {}  → {} per million requests",
                slope,
                units::bytes(slope.per_million as f64)
            )?,
            None => writeln!(w, "slope      ? (too few readings)")?,
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
        if let Some(c) = &self.judged.caveat {
            writeln!(w, "note       {c}")?;
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
        Ok(())
    }
}

/// `watch t=12s  req=24,000 (2,010/s)  procs=3  heap=41.2 MiB  rss=130 MiB  Δrss/req=+12 B`:
/// the variants' line, with the tree's figures. `prev` is the previous line's
/// `(t_ms, requests)`; the growth is from `base` (`(requests, bytes)` of the judged series).
pub fn log_line(now: &WatchSample, prev: (u64, u64), base: Option<(u64, u64)>) -> String {
    // A sample's `live` is the probe's latest post-GC heap (none without a probe).
    let heap = now.live;
    let dt = now.t_ms.saturating_sub(prev.0).max(1) as f64 / 1000.0;
    let rate = now.requests.saturating_sub(prev.1) as f64 / dt;
    let opt = units::opt_bytes;
    let (label, value) = match heap {
        Some(h) => ("heap", Some(h)),
        None => ("rss", now.rss),
    };
    let growth = match (base, value) {
        (Some((r0, b0)), Some(v)) if now.requests > r0 => {
            units::per_request((v as f64 - b0 as f64) / (now.requests - r0) as f64)
        }
        _ => "?".to_string(),
    };
    let heap_txt = heap.map(|h| format!("  heap={}", units::bytes(h as f64)));
    format!(
        "watch t={}s  req={} ({}/s)  procs={}{}  rss={}  Δ{label}/req={growth}{}",
        now.t_ms / 1000,
        units::count(now.requests),
        units::count(rate.round() as u64),
        now.procs.unwrap_or(0),
        heap_txt.unwrap_or_default(),
        opt(now.rss),
        if now.kind == WatchKind::Quiescent {
            "  (idle)"
        } else {
            ""
        }
    )
}
