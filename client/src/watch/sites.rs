//! `watch --sites`: reads the probes' allocation-site files (`sites-<pid>-<tid>.jsonl`, see the
//! probes' headers and `probe`'s module docs), diffs each process's first and last judged
//! reading per allocation stack, trims the runtime's and the probe's own frames, groups by leaf
//! frame, by inclusive frame and by script, and returns the same [`SitesSummary`] the Rust
//! variants' `--sites` report; also rebuilds the last Node profile as a `.heapprofile`. It reads
//! files only after the watch (never while the program runs) and judges nothing: the agreement
//! with the verdict is `summary::sites_agreement`'s.
//!
//! # Node: V8's sampling heap profiler
//! A sample stands for `bytes` (V8's estimate, `size × round(1/p)`, `p = 1 − e^(−size/R)`);
//! samples carry an ordinal, so the diff matches them between two readings exactly as heapmeter
//! matches its own: samples live in both cancel, growth is the new samples' bytes minus the gone
//! ones', and its variance the sum of `w·(w − size)` over those (heapmeter's `estimate`; the
//! size is recovered from `w` and `R`). A site grows when `growth − 3σ > 0` with a new sample.
//! V8 names the function, not the line: a frame's line is where its function starts.
//!
//! # Python: tracemalloc
//! Exact bytes per traceback, but only the largest [`PY_TOP`] per reading are written; one
//! missing from a reading's list held at most that reading's `cut`. So growth has an interval
//! (`last − first` with the unknown end anywhere in `[0, cut]`), and a site grows when its
//! interval's low end is at least [`PY_FLOOR`] bytes per request — exact sizes have no sampling
//! noise, but a program's own caches move by a few bytes per request.
//!
//! # Frames
//! Innermost first; the reported ones read through their script's source map, when it has one
//! ([`crate::watch::source_maps`]; grouping is on the frames as V8 gives them). Trimmed: Node's own (`node:…` URLs, V8 builtins without a script) and, for
//! Python, importlib's frozen frames; package frames (`node_modules/next/dist/…`) stay. A stack
//! with a frame of the probe is the probe's own; a stack with nothing left is the runtime's own:
//! both are counted apart (`harness_bytes`) unless they grow, when the runtime's is listed by
//! its innermost frame (async stacks are absent: a leak inside a library called from a callback
//! may show only internal frames).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::runtime::Runtime;
use crate::sites::{Agreement, SiteRow, SitesSummary, TOP};
use crate::units;
use crate::watch::source_maps::SourceMaps;

/// Python tracebacks written per reading (the rest summed as one line).
pub const PY_TOP: usize = 200;
/// Python: a site grows when its growth's low end is at least this many bytes per request.
pub const PY_FLOOR: f64 = 8.0;
/// Node's samples: growing beyond this many standard errors (heapmeter's `GROWTH_Z`).
const Z: f64 = heapmeter::sites::GROWTH_Z;
/// Frames kept per row.
const FRAMES: usize = 8;

/// The mean bytes between two V8 samples for a run of `requests` (when known): the Rust sites'
/// rule (one sample per N bytes for N requests, between 4 KiB and 512 KiB: 64 B/request sized
/// within ±25%), and V8's own default of 32 KiB when the run's length is unknown.
pub fn node_rate(requests: Option<u64>) -> u64 {
    const V8_DEFAULT: u64 = 32 * 1024;
    requests.map_or(V8_DEFAULT, |n| n.clamp(4 * 1024, 512 * 1024))
}

/// One frame, as the probes write it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    pub function: String,
    /// Node: the script's URL (`file:///…`, `node:…`, empty for builtins); Python: the file.
    pub url: String,
    /// 1-based line (Node: where the function starts); 0 when unknown.
    pub line: u32,
    /// 1-based column (Node only); 0 when unknown.
    pub column: u32,
    /// V8's script id (Node only).
    pub script_id: String,
}

impl Frame {
    /// `function (file:line)` with the file shortened.
    pub fn label(&self) -> String {
        format!("{} ({})", self.display_function(), self.location())
    }

    fn display_function(&self) -> &str {
        if self.function.is_empty() {
            "(anonymous)"
        } else {
            &self.function
        }
    }

    /// `file:line`, the file shortened to what a reader needs.
    pub fn location(&self) -> String {
        let line = if self.line > 0 {
            self.line.to_string()
        } else {
            "?".into()
        };
        format!("{}:{line}", short_url(&self.url))
    }
}

/// A script URL or path as a reader wants it: from `node_modules/` on for a package, else its
/// last three components.
pub fn short_url(url: &str) -> String {
    let path = url.strip_prefix("file://").unwrap_or(url);
    if let Some(at) = path.rfind("node_modules/") {
        return path[at..].to_string();
    }
    if let Some(at) = path.rfind("site-packages/") {
        return path[at + "site-packages/".len()..].to_string();
    }
    let parts: Vec<&str> = path.rsplitn(4, '/').collect();
    if parts.len() == 4 {
        let mut p: Vec<&str> = parts[..3].to_vec();
        p.reverse();
        return p.join("/");
    }
    path.to_string()
}

/// What a stack is, once trimmed.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// The program's: the trimmed frames, innermost first (never empty).
    Program(Vec<Frame>),
    /// Only the runtime's frames: the untrimmed ones, innermost first.
    Runtime(Vec<Frame>),
    /// A frame of the probe is in it.
    Probe,
}

/// How the frames are trimmed.
#[derive(Debug, Clone)]
pub struct Trim {
    runtime: Runtime,
    /// The folder the probe was installed in (its frames are the probe's own).
    probe_dir: String,
}

impl Trim {
    pub fn new(runtime: Runtime, probe_dir: &Path) -> Trim {
        Trim {
            runtime,
            probe_dir: probe_dir.to_string_lossy().into_owned(),
        }
    }

    fn is_probe(&self, f: &Frame) -> bool {
        let path = f.url.strip_prefix("file://").unwrap_or(&f.url);
        !self.probe_dir.is_empty() && path.starts_with(&self.probe_dir)
    }

    /// The runtime's own frames: Node's `node:` modules and builtins (no script), V8's pseudo
    /// frames (`(root)`); Python's frozen importlib.
    fn is_runtime(&self, f: &Frame) -> bool {
        match self.runtime {
            Runtime::Node => f.url.is_empty() || f.url.starts_with("node:"),
            Runtime::Python => {
                f.url.starts_with("<frozen importlib") || f.url.starts_with("<frozen site")
            }
        }
    }

    /// `frames` (innermost first) trimmed.
    fn kind(&self, frames: &[Frame]) -> Kind {
        if frames.iter().any(|f| self.is_probe(f)) {
            return Kind::Probe;
        }
        let kept: Vec<Frame> = frames
            .iter()
            .filter(|f| !self.is_runtime(f))
            .cloned()
            .collect();
        if kept.is_empty() {
            Kind::Runtime(
                frames
                    .iter()
                    .filter(|f| !f.function.starts_with('('))
                    .cloned()
                    .collect(),
            )
        } else {
            Kind::Program(kept)
        }
    }
}

/// Growth of a group of samples between two readings (heapmeter's `SiteGrowth`, for a watch).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Acc {
    pub first_bytes: f64,
    pub last_bytes: f64,
    pub last_samples: u64,
    pub growth: f64,
    /// Variance of `growth` (Node); 0 for Python's exact bytes.
    pub variance: f64,
    /// Python: the interval of `growth` from the readings' cuts (`lo`, `hi`); Node: 0.
    pub slack_lo: f64,
    pub slack_hi: f64,
    pub new_samples: u64,
    pub gone_samples: u64,
}

impl Acc {
    fn add(&mut self, o: &Acc) {
        self.first_bytes += o.first_bytes;
        self.last_bytes += o.last_bytes;
        self.last_samples += o.last_samples;
        self.growth += o.growth;
        self.variance += o.variance;
        self.slack_lo += o.slack_lo;
        self.slack_hi += o.slack_hi;
        self.new_samples += o.new_samples;
        self.gone_samples += o.gone_samples;
    }

    /// Scales the growth (and its spread) measured over `n` requests to `n × factor`.
    fn scale(&mut self, factor: f64) {
        self.growth *= factor;
        self.variance *= factor * factor;
        self.slack_lo *= factor;
        self.slack_hi *= factor;
    }

    /// Growth per request and its interval.
    fn per_request(&self, requests: u64) -> (f64, f64, f64) {
        let n = requests.max(1) as f64;
        let half = Z * self.variance.sqrt();
        (
            self.growth / n,
            (self.growth - half - self.slack_lo) / n,
            (self.growth + half + self.slack_hi) / n,
        )
    }

    fn is_growing(&self, runtime: Runtime, requests: u64) -> bool {
        let (_, lo, _) = self.per_request(requests);
        match runtime {
            Runtime::Node => self.new_samples > 0 && lo > 0.0,
            Runtime::Python => lo >= PY_FLOOR,
        }
    }
}

/// The size of a V8 sample that stands for `w` bytes at one sample per `rate` bytes: the `s`
/// with `s / (1 − e^(−s/rate)) = w` (`w ≥ rate` always; a sample that stands for itself is
/// that size).
pub fn sample_size(w: f64, rate: u64) -> f64 {
    let r = rate.max(1) as f64;
    if w <= r {
        return 0.0;
    }
    let f = |s: f64| s / -(-s / r).exp_m1();
    let (mut lo, mut hi) = (0.0, w);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if f(mid) < w {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// One reading of one process: Node's live samples or Python's totals per traceback.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SitesReading {
    pub seq: u64,
    /// Node: one sample per this many bytes.
    pub rate: u64,
    /// Node: `(stack, bytes, ordinal)`, sorted by ordinal.
    pub samples: Vec<(u32, f64, u64)>,
    /// Python: `stack → (bytes, blocks)`.
    pub traces: HashMap<u32, (u64, u64)>,
    /// Python: the bytes of the smallest listed traceback (an unlisted one held at most this).
    pub cut: u64,
    /// Python: the unlisted tracebacks' bytes and blocks.
    pub rest: (u64, u64),
}

/// The wire form of a sites line.
#[derive(Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
enum Line {
    Stack {
        id: u32,
        /// Node: the stack is its parent plus `frame`.
        #[serde(default)]
        parent: Option<i64>,
        #[serde(default)]
        frame: Option<(String, String, i64, i64, String)>,
        /// Python: the whole stack, innermost first.
        #[serde(default)]
        frames: Option<Vec<(String, i64)>>,
    },
    Sites {
        seq: u64,
        #[serde(default)]
        rate: Option<u64>,
        #[serde(default)]
        s: Option<Vec<f64>>,
        #[serde(default)]
        traces: Option<Vec<(u32, u64, u64)>>,
        #[serde(default)]
        rest: Option<(u64, u64)>,
        #[serde(default)]
        cut: Option<u64>,
    },
}

/// One process's sites file, reduced to the two readings the diff needs.
#[derive(Debug, Default)]
pub struct ProcessSites {
    pub pid: u32,
    pub tid: u32,
    /// Every stack, innermost frame first.
    pub stacks: Vec<Vec<Frame>>,
    /// Node: each stack's parent (`None` for the root), for the `.heapprofile`.
    pub parents: Vec<Option<u32>>,
    pub first: Option<(u64, SitesReading)>,
    pub last: Option<(u64, SitesReading)>,
    /// Lines that could not be read.
    pub bad_lines: u64,
}

/// `sites-<pid>-<tid>.jsonl` → `(pid, tid)`.
fn file_ids(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("sites-")?.strip_suffix(".jsonl")?;
    let (pid, tid) = rest.split_once('-')?;
    Some((pid.parse().ok()?, tid.parse().ok()?))
}

/// The sites files in the probe's folder, sorted.
pub fn files(dir: &Path) -> io::Result<Vec<(u32, u32, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some((pid, tid)) = path.file_name().and_then(|n| n.to_str()).and_then(file_ids) else {
            continue;
        };
        out.push((pid, tid, path));
    }
    out.sort();
    Ok(out)
}

impl ProcessSites {
    /// Reads one process's file, keeping the reading at the fewest requests at or after `from`
    /// and the one at the most at or before `to`; `requests_at(seq)` is the served count the
    /// watcher paired the probe's reading `seq` with (`None`: not a steady reading, skipped).
    pub fn read(
        pid: u32,
        tid: u32,
        input: impl BufRead,
        from: u64,
        to: u64,
        requests_at: impl Fn(u64) -> Option<u64>,
    ) -> io::Result<ProcessSites> {
        let mut p = ProcessSites {
            pid,
            tid,
            ..ProcessSites::default()
        };
        for line in input.lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Line>(&line) {
                Ok(Line::Stack {
                    id,
                    parent,
                    frame,
                    frames,
                }) => {
                    if id as usize != p.stacks.len() {
                        p.bad_lines += 1;
                        continue;
                    }
                    let (stack, parent) = match (frame, frames) {
                        (Some((function, url, line, column, script_id)), _) => {
                            let parent = parent
                                .and_then(|x| u32::try_from(x).ok())
                                .filter(|&x| (x as usize) < p.stacks.len());
                            let f = Frame {
                                function,
                                url,
                                line: u32::try_from(line + 1).unwrap_or(0),
                                column: u32::try_from(column + 1).unwrap_or(0),
                                script_id,
                            };
                            let mut stack = vec![f];
                            if let Some(x) = parent {
                                stack.extend(p.stacks[x as usize].iter().cloned());
                            }
                            (stack, parent)
                        }
                        (None, Some(frames)) => (
                            frames
                                .into_iter()
                                .map(|(file, line)| Frame {
                                    function: String::new(),
                                    url: file,
                                    line: u32::try_from(line).unwrap_or(0),
                                    column: 0,
                                    script_id: String::new(),
                                })
                                .collect(),
                            None,
                        ),
                        (None, None) => {
                            p.bad_lines += 1;
                            continue;
                        }
                    };
                    p.stacks.push(stack);
                    p.parents.push(parent);
                }
                Ok(Line::Sites {
                    seq,
                    rate,
                    s,
                    traces,
                    rest,
                    cut,
                }) => {
                    let Some(at) = requests_at(seq) else {
                        continue;
                    };
                    let wanted_first = at >= from && p.first.as_ref().is_none_or(|f| at < f.0);
                    let wanted_last = at <= to && p.last.as_ref().is_none_or(|l| at >= l.0);
                    if !wanted_first && !wanted_last {
                        continue;
                    }
                    let mut r = SitesReading {
                        seq,
                        rate: rate.unwrap_or(0),
                        cut: cut.unwrap_or(0),
                        rest: rest.unwrap_or((0, 0)),
                        ..SitesReading::default()
                    };
                    for c in s.unwrap_or_default().chunks_exact(3) {
                        let stack = c[0] as u32;
                        if (stack as usize) < p.stacks.len() && c[1] >= 0.0 && c[2] >= 0.0 {
                            r.samples.push((stack, c[1], c[2] as u64));
                        }
                    }
                    r.samples.sort_by_key(|x| x.2);
                    for (id, bytes, blocks) in traces.unwrap_or_default() {
                        if (id as usize) < p.stacks.len() {
                            r.traces.insert(id, (bytes, blocks));
                        }
                    }
                    if wanted_first {
                        p.first = Some((at, r.clone()));
                    }
                    if wanted_last {
                        p.last = Some((at, r));
                    }
                }
                Err(_) => p.bad_lines += 1,
            }
        }
        Ok(p)
    }

    /// Per stack, the growth from the first reading to the last (empty without two readings).
    pub fn growth(&self) -> HashMap<u32, Acc> {
        let mut map: HashMap<u32, Acc> = HashMap::new();
        let (Some((a, first)), Some((b, last))) = (&self.first, &self.last) else {
            return map;
        };
        if b <= a {
            return map;
        }
        // Node: samples matched by ordinal (both sorted by it).
        let rate = last.rate.max(first.rate);
        let (mut i, mut j) = (0, 0);
        let (x, y) = (&first.samples, &last.samples);
        while i < x.len() || j < y.len() {
            match (x.get(i), y.get(j)) {
                (Some(p), Some(q)) if p.2 == q.2 => {
                    let e = map.entry(q.0).or_default();
                    e.first_bytes += p.1;
                    e.last_bytes += q.1;
                    e.last_samples += 1;
                    i += 1;
                    j += 1;
                }
                (Some(p), q) if q.is_none_or(|q| p.2 < q.2) => {
                    let e = map.entry(p.0).or_default();
                    e.first_bytes += p.1;
                    e.growth -= p.1;
                    e.variance += p.1 * (p.1 - sample_size(p.1, rate));
                    e.gone_samples += 1;
                    i += 1;
                }
                (_, Some(q)) => {
                    let e = map.entry(q.0).or_default();
                    e.last_bytes += q.1;
                    e.last_samples += 1;
                    e.growth += q.1;
                    e.variance += q.1 * (q.1 - sample_size(q.1, rate));
                    e.new_samples += 1;
                    j += 1;
                }
                (_, None) => break,
            }
        }
        // Python: exact totals; a traceback missing from one list held at most its cut.
        let ids: std::collections::BTreeSet<u32> = first
            .traces
            .keys()
            .chain(last.traces.keys())
            .copied()
            .collect();
        for id in ids {
            let e = map.entry(id).or_default();
            let (fb, fc) = first.traces.get(&id).copied().unwrap_or((0, 0));
            let (lb, lc) = last.traces.get(&id).copied().unwrap_or((0, 0));
            e.first_bytes += fb as f64;
            e.last_bytes += lb as f64;
            e.last_samples += lc;
            e.growth += lb as f64 - fb as f64;
            e.new_samples += lc.saturating_sub(fc);
            e.gone_samples += fc.saturating_sub(lc);
            if !first.traces.contains_key(&id) {
                e.slack_lo += first.cut as f64;
            }
            if !last.traces.contains_key(&id) {
                e.slack_hi += last.cut as f64;
            }
        }
        map
    }

    /// Requests between the two readings.
    pub fn requests(&self) -> u64 {
        match (&self.first, &self.last) {
            (Some((a, _)), Some((b, _))) => b.saturating_sub(*a),
            _ => 0,
        }
    }
}

/// A group's key and its figures.
#[derive(Debug, Clone)]
struct Group {
    /// The frames shown (innermost first; the first is the headline).
    frames: Vec<Frame>,
    acc: Acc,
    runtime_only: bool,
}

/// Adds `acc` to the group `key`.
fn add(map: &mut BTreeMap<String, Group>, key: String, frames: &[Frame], acc: &Acc, rt: bool) {
    map.entry(key)
        .or_insert_with(|| Group {
            frames: frames.to_vec(),
            acc: Acc::default(),
            runtime_only: rt,
        })
        .acc
        .add(acc);
}

/// Names a frame for the reader: Python's tracebacks carry no function name, so the source
/// line itself stands in (read once per file).
pub trait Namer {
    fn name(&mut self, f: &Frame) -> Frame;
}

/// Node's frames read through their scripts' source maps (where there is one); Python's named
/// by their source line.
#[derive(Debug, Default)]
pub struct SourceNames {
    files: HashMap<String, Option<Vec<String>>>,
    maps: SourceMaps,
}

impl Namer for SourceNames {
    fn name(&mut self, f: &Frame) -> Frame {
        // Node's frames come from V8 with a script id (an empty name: an anonymous function).
        if !f.script_id.is_empty() {
            return match self.maps.original(&f.url, f.line, f.column) {
                Some(o) => Frame {
                    function: o.function.unwrap_or_else(|| f.function.clone()),
                    url: o.source,
                    line: o.line,
                    column: o.column,
                    script_id: f.script_id.clone(),
                },
                None => f.clone(),
            };
        }
        if !f.function.is_empty() || f.line == 0 {
            return f.clone();
        }
        let lines = self.files.entry(f.url.clone()).or_insert_with(|| {
            std::fs::read_to_string(&f.url)
                .ok()
                .map(|t| t.lines().map(|l| l.trim().to_string()).collect())
        });
        let text = lines
            .as_ref()
            .and_then(|l| l.get(f.line as usize - 1))
            .filter(|l| !l.is_empty())
            .map_or_else(|| "?".to_string(), |l| format!("`{l}`"));
        Frame {
            function: text,
            ..f.clone()
        }
    }
}

/// What the watcher passes in besides the files.
#[derive(Debug, Clone)]
pub struct Span {
    /// The judged readings' served counts (the verdict's first fitted and last steady reading).
    pub first_requests: u64,
    pub last_requests: u64,
    /// The judged heap's growth per request between them (summed over the tree).
    pub heap_per_request: f64,
}

/// The sites table of `processes` (each reduced by [`ProcessSites::read`]).
pub fn summarize(
    processes: &[ProcessSites],
    trim: &Trim,
    namer: &mut dyn Namer,
    span: &Span,
) -> Option<SitesSummary> {
    let requests = span.last_requests.saturating_sub(span.first_requests);
    let with_two: Vec<&ProcessSites> = processes.iter().filter(|p| p.requests() > 0).collect();
    if with_two.is_empty() || requests == 0 {
        return None;
    }
    let mut leaf: BTreeMap<String, Group> = BTreeMap::new();
    let mut inclusive: BTreeMap<String, Group> = BTreeMap::new();
    let mut scripts: BTreeMap<String, Group> = BTreeMap::new();
    let mut probe = Acc::default();
    let (mut total, mut stacks_seen, mut samples) = (Acc::default(), 0u32, 0u64);
    let mut rate = 0;
    for p in &with_two {
        // Each process's growth over its own readings, scaled to the span: a process read less
        // often than the verdict's series (Python's sites are paced apart) covers less of it.
        let scale = requests as f64 / p.requests() as f64;
        let mut growth = p.growth();
        for acc in growth.values_mut() {
            acc.scale(scale);
        }
        stacks_seen += growth.len() as u32;
        if let Some((_, l)) = &p.last {
            rate = rate.max(l.rate);
            samples += l.samples.len() as u64 + l.traces.values().map(|t| t.1).sum::<u64>();
        }
        for (stack, acc) in &growth {
            total.add(acc);
            let frames = &p.stacks[*stack as usize];
            let (kept, rt) = match trim.kind(frames) {
                Kind::Probe => {
                    probe.add(acc);
                    continue;
                }
                Kind::Program(f) => (f, false),
                Kind::Runtime(f) => (f, true),
            };
            let Some(head) = kept.first() else {
                probe.add(acc);
                continue;
            };
            let key = |f: &Frame| format!("{}\u{0}{}\u{0}{}", f.function, f.url, f.line);
            add(&mut leaf, key(head), &kept, acc, rt);
            let mut seen = std::collections::BTreeSet::new();
            let mut seen_scripts = std::collections::BTreeSet::new();
            for (i, f) in kept.iter().enumerate() {
                if seen.insert(key(f)) {
                    add(&mut inclusive, key(f), &kept[i..], acc, rt);
                }
                if seen_scripts.insert(f.url.clone()) {
                    let script = Frame {
                        function: short_url(&f.url),
                        line: 0,
                        column: 0,
                        url: f.url.clone(),
                        script_id: f.script_id.clone(),
                    };
                    add(&mut scripts, f.url.clone(), &[script], acc, rt);
                }
            }
        }
    }
    let runtime = trim.runtime;
    let row = |g: &Group, growing: bool, namer: &mut dyn Namer| -> SiteRow {
        let frames: Vec<Frame> = g
            .frames
            .iter()
            .take(FRAMES)
            .map(|f| namer.name(f))
            .collect();
        let head = frames.first();
        let (per, lo, hi) = g.acc.per_request(requests);
        SiteRow {
            function: head.map_or_else(|| "?".into(), |f| f.display_function().to_string()),
            file: head.map(|f| short_url(&f.url)),
            line: head.map(|f| f.line).filter(|l| *l > 0),
            frames: frames.iter().map(Frame::label).collect(),
            first_bytes: g.acc.first_bytes,
            last_bytes: g.acc.last_bytes,
            growth_per_request: per,
            lo,
            hi,
            samples: g.acc.last_samples,
            new_samples: g.acc.new_samples,
            gone_samples: g.acc.gone_samples,
            growing,
        }
    };
    let growing_of = |map: &BTreeMap<String, Group>| -> Vec<Group> {
        let mut v: Vec<Group> = map
            .values()
            .filter(|g| g.acc.is_growing(runtime, requests))
            .cloned()
            .collect();
        v.sort_by(|a, b| b.acc.growth.total_cmp(&a.acc.growth));
        v.truncate(TOP);
        v
    };
    let mut flat: Vec<&Group> = leaf
        .values()
        .filter(|g| !g.acc.is_growing(runtime, requests) && !g.runtime_only)
        .filter(|g| g.acc.last_bytes > 0.0)
        .collect();
    flat.sort_by(|a, b| b.acc.last_bytes.total_cmp(&a.acc.last_bytes));
    let (mut own_bytes, mut own_sites) = (probe.last_bytes, 0u32);
    for g in leaf.values() {
        if g.runtime_only && !g.acc.is_growing(runtime, requests) {
            own_bytes += g.acc.last_bytes;
            own_sites += 1;
        }
    }
    if probe.last_bytes > 0.0 {
        own_sites += 1;
    }
    let (per, lo, hi) = total.per_request(requests);
    let (first, last) = with_two
        .iter()
        .filter_map(|p| Some((p.first.as_ref()?.0, p.last.as_ref()?.0)))
        .fold((u64::MAX, 0), |(a, b), (x, y)| (a.min(x), b.max(y)));
    let source = match runtime {
        Runtime::Node => format!(
            "V8's sampling heap profiler, 1 sample per {} allocated (live samples)",
            units::bytes(rate as f64)
        ),
        Runtime::Python => format!(
            "tracemalloc, exact bytes of the {PY_TOP} largest tracebacks per reading (16 frames)"
        ),
    };
    Some(SitesSummary {
        rate,
        samples,
        stacks: stacks_seen,
        first_reading: "first judged reading".into(),
        first_requests: first,
        last_reading: "last judged reading".into(),
        last_requests: last,
        growing: growing_of(&leaf)
            .iter()
            .map(|g| row(g, true, namer))
            .collect(),
        flat: flat
            .into_iter()
            .take(TOP)
            .map(|g| row(g, false, namer))
            .collect(),
        harness_bytes: own_bytes,
        harness_sites: own_sites,
        total_per_request: per,
        total_lo: lo,
        total_hi: hi,
        heap_per_request: span.heap_per_request,
        agreement: None,
        dhat: None,
        dhat_error: None,
        source: Some(source),
        by_frame: growing_of(&inclusive)
            .iter()
            .map(|g| row(g, true, namer))
            .collect(),
        by_script: growing_of(&scripts)
            .iter()
            .map(|g| row(g, true, namer))
            .collect(),
        heapprofile: None,
    })
}

/// Python's sites beside a `leak` verdict's slope (B/request): both are exact (tracemalloc's
/// bytes, no sampling), so their intervals are too narrow to overlap when the two windows
/// differ (the sites are read less often than the heap); they agree when the sites' total is
/// within [`EXACT_TOLERANCE`] of the slope. Other classes, and Node's sampled sites, are
/// `summary::sites_agreement`'s.
pub fn exact_agreement(sites: &SitesSummary, slope: f64) -> Agreement {
    let sum: f64 = sites.growing.iter().map(|s| s.growth_per_request).sum();
    let off = (sites.total_per_request - slope).abs() / slope.abs().max(1.0);
    let consistent = !sites.growing.is_empty() && off <= EXACT_TOLERANCE;
    let note = if sites.growing.is_empty() {
        format!(
            "the verdict is leak but no site grows by {PY_FLOOR} B/request or more: the growth \
             is spread over tracebacks beyond the {PY_TOP} listed"
        )
    } else {
        format!(
            "the growing sites account for {}/request, all sites {}/request (exact), {:.0}% from \
             the verdict's slope {}/request{}",
            units::per_request(sum),
            units::per_request(sites.total_per_request),
            off * 100.0,
            units::per_request(slope),
            if consistent {
                ": consistent with the verdict (leak)"
            } else {
                ""
            }
        )
    };
    Agreement { consistent, note }
}

/// How far Python's exact sites may be from the verdict's slope and agree: 10%.
pub const EXACT_TOLERANCE: f64 = 0.10;

/// Writes `p`'s last Node reading as a `.heapprofile` (the `HeapProfiler.getSamplingProfile`
/// result Chrome DevTools' Memory tab and speedscope open: `{head: {callFrame, selfSize, id,
/// children}, samples: [{size, nodeId, ordinal}]}`), the stack ids as node ids.
pub fn write_heapprofile(p: &ProcessSites, w: &mut dyn Write) -> io::Result<()> {
    let Some((_, last)) = &p.last else {
        return Err(io::Error::other("no reading"));
    };
    let n = p.stacks.len();
    let mut children: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (id, parent) in p.parents.iter().enumerate() {
        match parent {
            Some(x) => children[*x as usize].push(id as u32),
            None => roots.push(id as u32),
        }
    }
    let mut self_size = vec![0.0f64; n];
    for (stack, bytes, _) in &last.samples {
        self_size[*stack as usize] += bytes;
    }
    // Iteratively, as JSON: a deep stack must not overflow ours.
    fn node(p: &ProcessSites, id: u32, self_size: &[f64]) -> serde_json::Value {
        let f = &p.stacks[id as usize][0];
        serde_json::json!({
            "callFrame": {
                "functionName": f.function,
                "scriptId": f.script_id,
                "url": f.url,
                "lineNumber": i64::from(f.line) - 1,
                "columnNumber": i64::from(f.column) - 1,
            },
            "selfSize": self_size[id as usize].round() as u64,
            "id": id + 1,
            "children": [],
        })
    }
    let Some(&root) = roots.first() else {
        return Err(io::Error::other("no stack"));
    };
    // Build bottom-up: children before parents (ids are assigned parent first).
    let mut built: Vec<Option<serde_json::Value>> = vec![None; n];
    for id in (0..n as u32).rev() {
        let mut v = node(p, id, &self_size);
        let kids: Vec<serde_json::Value> = children[id as usize]
            .iter()
            .filter_map(|c| built[*c as usize].take())
            .collect();
        v["children"] = serde_json::Value::Array(kids);
        built[id as usize] = Some(v);
    }
    let head = built[root as usize]
        .take()
        .unwrap_or(serde_json::Value::Null);
    let samples: Vec<serde_json::Value> = last
        .samples
        .iter()
        .map(|(stack, bytes, ordinal)| {
            serde_json::json!({"size": bytes.round() as u64, "nodeId": stack + 1, "ordinal": ordinal})
        })
        .collect();
    serde_json::to_writer(w, &serde_json::json!({"head": head, "samples": samples}))
        .map_err(io::Error::other)
}

/// Reads every process's file in `dir` (see [`ProcessSites::read`]).
pub fn read_dir(
    dir: &Path,
    from: u64,
    to: u64,
    requests_at: impl Fn(u32, u32, u64) -> Option<u64>,
) -> io::Result<Vec<ProcessSites>> {
    let mut out = Vec::new();
    for (pid, tid, path) in files(dir)? {
        let f = BufReader::new(File::open(&path)?);
        out.push(ProcessSites::read(pid, tid, f, from, to, |seq| {
            requests_at(pid, tid, seq)
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames as recorded: no file is read for a name.
    struct AsIs;
    impl Namer for AsIs {
        fn name(&mut self, f: &Frame) -> Frame {
            f.clone()
        }
    }

    /// A recorded run in `tests/data/watch/sites/NAME`: its processes (the two judged readings
    /// of each), the trim for its probe's folder, and its span.
    fn recorded(
        name: &str,
        runtime: Runtime,
    ) -> (Vec<ProcessSites>, Trim, Span, serde_json::Value) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/watch/sites")
            .join(name);
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("meta.json")).expect("meta.json"),
        )
        .expect("meta parses");
        let pairs: Vec<(u32, u32, u64, u64)> =
            serde_json::from_value(meta["pairs"].clone()).expect("pairs");
        let first = pairs.iter().map(|p| p.3).min().expect("a pair");
        let last = pairs.iter().map(|p| p.3).max().expect("a pair");
        let processes = read_dir(&dir, first, last, |pid, tid, seq| {
            pairs
                .iter()
                .find(|p| (p.0, p.1, p.2) == (pid, tid, seq))
                .map(|p| p.3)
        })
        .expect("reads");
        let probe_dir = meta["probe_dir"].as_str().expect("probe_dir");
        let span = Span {
            first_requests: first,
            last_requests: last,
            heap_per_request: meta["heap_per_request"].as_f64().expect("heap"),
        };
        (
            processes,
            Trim::new(runtime, Path::new(probe_dir)),
            span,
            meta,
        )
    }

    fn summary_of(name: &str, runtime: Runtime) -> (SitesSummary, f64) {
        let (processes, trim, span, _) = recorded(name, runtime);
        let s = summarize(&processes, &trim, &mut AsIs, &span).expect("two readings");
        (s, span.heap_per_request)
    }

    #[test]
    fn a_recorded_node_leak_tops_at_the_planting_function_within_a_quarter_of_the_heap() {
        let (s, heap) = summary_of("node-leak", Runtime::Node);
        let top = s.growing.first().expect("a growing site");
        assert_eq!(top.function, "plant", "{s:#?}");
        assert_eq!(top.file.as_deref(), Some("examples/node/loop.js"));
        assert_eq!(top.line, Some(76), "where `function plant` starts");
        let g = top.growth_per_request;
        assert!((g - heap).abs() <= 0.25 * heap, "{g} vs heap {heap}");
        assert!(
            (g - 1024.0).abs() <= 0.25 * 1024.0,
            "{g} vs the planted 1 KiB"
        );
        assert!(top.lo > 0.0 && top.lo < g && g < top.hi, "{top:?}");
        // Nothing of Node's own or the probe's is listed as a flat site.
        for f in &s.flat {
            assert!(f.frames.iter().all(|fr| !fr.contains("node:")), "{f:?}");
        }
        assert!(s.harness_sites > 0 && s.harness_bytes > 0.0, "{s:?}");
        // Inclusive: `run` (the loop calling `plant`) grows by the same samples.
        assert!(
            s.by_frame.iter().any(|r| r.function == "run"),
            "{:?}",
            s.by_frame
        );
        assert!(
            s.by_script
                .iter()
                .any(|r| r.function == "examples/node/loop.js"),
            "{:?}",
            s.by_script
        );
    }

    #[test]
    fn a_recorded_clean_node_run_has_no_growing_site() {
        let (s, _) = summary_of("node-clean", Runtime::Node);
        assert!(s.growing.is_empty(), "{:?}", s.growing);
        assert!(s.by_frame.is_empty() && s.by_script.is_empty(), "{s:?}");
        assert!(!s.flat.is_empty());
    }

    #[test]
    fn a_recorded_python_leak_tops_at_the_planting_line_within_a_quarter_of_the_heap() {
        let (s, heap) = summary_of("python-leak", Runtime::Python);
        let top = s.growing.first().expect("a growing site");
        assert_eq!(
            top.file.as_deref(),
            Some("examples/python/loop.py"),
            "{top:?}"
        );
        assert_eq!(top.line, Some(75), "kept.append(bytearray(leak))");
        let g = top.growth_per_request;
        assert!((g - heap).abs() <= 0.25 * heap, "{g} vs heap {heap}");
        assert_eq!(s.growing.len(), 1, "{:?}", s.growing);
        // importlib's frames are trimmed: no row shows one.
        for r in s.flat.iter().chain(&s.growing) {
            assert!(
                r.frames.iter().all(|f| !f.contains("<frozen importlib")),
                "{r:?}"
            );
        }
    }

    #[test]
    fn exact_sites_agree_with_a_leak_within_a_tenth_of_its_slope() {
        let (s, heap) = summary_of("python-leak", Runtime::Python);
        let near = exact_agreement(&s, s.total_per_request * 1.05);
        assert!(near.consistent, "{}", near.note);
        let far = exact_agreement(&s, s.total_per_request * 1.3);
        assert!(!far.consistent, "{}", far.note);
        assert!(exact_agreement(&s, heap).consistent);
    }

    #[test]
    fn a_recorded_clean_python_run_has_no_growing_site() {
        let (s, _) = summary_of("python-clean", Runtime::Python);
        assert!(s.growing.is_empty(), "{:?}", s.growing);
    }

    const STACKS: &str = r#"{"ev":"stack","id":0,"parent":-1,"frame":["(root)","",-1,-1,"0"]}
{"ev":"stack","id":1,"parent":0,"frame":["handler","file:///app/server.js",9,0,"7"]}
{"ev":"stack","id":2,"parent":1,"frame":["a","file:///app/server.js",19,0,"7"]}
{"ev":"stack","id":3,"parent":1,"frame":["b","file:///app/server.js",29,0,"7"]}
"#;

    fn node_process(readings: &str) -> ProcessSites {
        let text = format!("{STACKS}{readings}");
        let at = |seq: u64| Some(seq * 1000);
        ProcessSites::read(1, 0, text.as_bytes(), 1000, 2000, at).expect("reads")
    }

    #[test]
    fn samples_alive_at_both_readings_cancel_and_only_new_and_gone_ones_count() {
        // Ordinal 1 lives through, 2 is freed, 3 and 4 are new.
        let p = node_process(
            r#"{"ev":"sites","seq":1,"t":1,"rate":1024,"s":[2,1024,1,2,2048,2]}
{"ev":"sites","seq":2,"t":2,"rate":1024,"s":[2,1024,1,2,4096,3,3,1500,4]}
"#,
        );
        let g = p.growth();
        let a = g[&2];
        assert_eq!((a.new_samples, a.gone_samples, a.last_samples), (1, 1, 2));
        assert_eq!(a.growth, 4096.0 - 2048.0);
        assert_eq!((a.first_bytes, a.last_bytes), (3072.0, 5120.0));
        let b = g[&3];
        assert_eq!((b.growth, b.new_samples), (1500.0, 1));
        assert!(a.variance > 0.0 && b.variance > 0.0);
        assert_eq!(p.requests(), 1000);
    }

    #[test]
    fn inlining_moves_samples_between_leaves_but_not_out_of_the_inclusive_frame() {
        // The same retained bytes seen under `a` first and under `b` last (V8 inlined `a`).
        let mut readings = String::from(r#"{"ev":"sites","seq":1,"t":1,"rate":64,"s":["#);
        let first: Vec<String> = (0..50).map(|i| format!("2,64,{i}")).collect();
        readings.push_str(&first.join(","));
        readings.push_str("]}\n");
        readings.push_str(r#"{"ev":"sites","seq":2,"t":2,"rate":64,"s":["#);
        let last: Vec<String> = (0..50)
            .map(|i| format!("2,64,{i}"))
            .chain((100..400).map(|i| format!("3,64,{i}")))
            .collect();
        readings.push_str(&last.join(","));
        readings.push_str("]}\n");
        let p = node_process(&readings);
        let trim = Trim::new(Runtime::Node, Path::new("/probe"));
        let span = Span {
            first_requests: 1000,
            last_requests: 2000,
            heap_per_request: 19.2,
        };
        let s = summarize(&[p], &trim, &mut AsIs, &span).expect("summary");
        assert_eq!(s.growing.len(), 1, "{:?}", s.growing);
        assert_eq!(s.growing[0].function, "b");
        assert_eq!(s.growing[0].line, Some(30), "1-based");
        let handler = s.by_frame.iter().find(|r| r.function == "handler");
        let handler = handler.expect("the caller grows, inclusive");
        assert!((handler.growth_per_request - 300.0 * 64.0 / 1000.0).abs() < 1e-9);
        assert_eq!(s.by_script.len(), 1);
        assert_eq!(s.by_script[0].function, "/app/server.js");
        assert!((s.total_per_request - 19.2).abs() < 1e-9);
    }

    #[test]
    fn frames_of_node_and_the_probe_are_trimmed_and_packages_kept() {
        let f = |function: &str, url: &str| Frame {
            function: function.into(),
            url: url.into(),
            line: 1,
            column: 1,
            script_id: "1".into(),
        };
        let trim = Trim::new(Runtime::Node, Path::new("/tmp/leakprobe-watch-x"));
        let user = [
            f("set password", "node:internal/url"),
            f("push", ""),
            f(
                "n",
                "file:///app/node_modules/next/dist/compiled/app-route.runtime.dev.js",
            ),
            f("handler", "file:///app/route.js"),
            f(
                "processTicksAndRejections",
                "node:internal/process/task_queues",
            ),
        ];
        match trim.kind(&user) {
            Kind::Program(kept) => {
                let names: Vec<&str> = kept.iter().map(|k| k.function.as_str()).collect();
                assert_eq!(names, ["n", "handler"]);
                assert_eq!(
                    short_url(&kept[0].url),
                    "node_modules/next/dist/compiled/app-route.runtime.dev.js"
                );
            }
            other => panic!("{other:?}"),
        }
        let internal = [f("(root)", ""), f("listOnTimeout", "node:internal/timers")];
        assert_eq!(
            trim.kind(&internal),
            Kind::Runtime(vec![f("listOnTimeout", "node:internal/timers")])
        );
        let probe = [
            f("read", "file:///tmp/leakprobe-watch-x/leakprobe-probe.cjs"),
            f("handler", "file:///app/route.js"),
        ];
        assert_eq!(trim.kind(&probe), Kind::Probe);
        let py = Trim::new(Runtime::Python, Path::new("/tmp/leakprobe-watch-y"));
        let frames = [
            f("", "/app/cache.py"),
            f("", "<frozen importlib._bootstrap>"),
            f("", "/app/main.py"),
        ];
        match py.kind(&frames) {
            Kind::Program(kept) => assert_eq!(kept.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_python_traceback_missing_from_a_list_widens_its_interval_by_the_cut() {
        let text = r#"{"ev":"stack","id":0,"frames":[["/app/a.py",3],["/app/main.py",9]]}
{"ev":"stack","id":1,"frames":[["/app/b.py",5],["/app/main.py",9]]}
{"ev":"sites","seq":1,"t":1,"traces":[[1,5000,5]],"rest":[900,9],"cut":5000}
{"ev":"sites","seq":2,"t":2,"traces":[[0,100000,100],[1,5000,5]],"rest":[900,9],"cut":5000}
"#;
        let p = ProcessSites::read(1, 0, text.as_bytes(), 1000, 2000, |s| Some(s * 1000))
            .expect("reads");
        let g = p.growth();
        assert_eq!(g[&0].growth, 100_000.0);
        assert_eq!(
            g[&0].slack_lo, 5000.0,
            "held up to the cut at the first reading"
        );
        assert_eq!(g[&1].growth, 0.0);
        let (per, lo, hi) = g[&0].per_request(1000);
        assert_eq!((per, lo, hi), (100.0, 95.0, 100.0));
        assert!(g[&0].is_growing(Runtime::Python, 1000));
        assert!(!g[&1].is_growing(Runtime::Python, 1000));
    }

    #[test]
    fn a_sample_size_is_recovered_from_what_it_stands_for() {
        let rate = 32 * 1024;
        for size in [16usize, 1000, 32 * 1024, 200_000] {
            let w = heapmeter::sites::weight(size, rate);
            let s = sample_size(w, rate);
            assert!((s - size as f64).abs() <= 1e-6 * w, "{size}: {s}");
        }
        assert_eq!(sample_size(100.0, rate), 0.0);
    }

    #[test]
    fn the_heapprofile_is_the_last_readings_tree_with_its_samples() {
        let (processes, _, _, _) = recorded("node-leak", Runtime::Node);
        let mut out = Vec::new();
        write_heapprofile(&processes[0], &mut out).expect("writes");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(v["head"]["callFrame"]["functionName"], "(root)");
        let mut ids = std::collections::HashSet::new();
        let mut total = 0u64;
        let mut todo = vec![&v["head"]];
        while let Some(n) = todo.pop() {
            assert!(ids.insert(n["id"].as_u64().expect("id")), "ids are unique");
            total += n["selfSize"].as_u64().expect("selfSize");
            todo.extend(n["children"].as_array().expect("children"));
        }
        let samples = v["samples"].as_array().expect("samples");
        let last = &processes[0].last.as_ref().expect("last").1;
        assert_eq!(samples.len(), last.samples.len());
        let sum: u64 = samples
            .iter()
            .map(|s| s["size"].as_u64().expect("size"))
            .sum();
        assert!(
            total.abs_diff(sum) <= samples.len() as u64,
            "{total} vs {sum}"
        );
        for s in samples {
            assert!(ids.contains(&s["nodeId"].as_u64().expect("nodeId")));
        }
    }
}
