//! Allocation sites of one run (`--sites`): switches heapmeter's sampler on, keeps the sampled
//! snapshots taken at the run's readings, and turns the first and last into the sites table
//! (top growers, largest flat sites; `summary` checks them against the verdict). It must not
//! symbolise or allocate on the counted heap before the last reading (that disturbs the heap
//! being measured), and it knows nothing of the run loop or the verdict's module.

use std::io::{self, Write};

use heapmeter::sites::{self as hs, GROWTH_Z, SiteReport, SiteSnapshot, Trim};
use serde::{Deserialize, Serialize};

use crate::sample::Sample;
use crate::units;

/// How many growing and flat sites the summary lists.
pub const TOP: usize = 5;

/// Frames kept per site in the summary (the DHAT file has them all).
const FRAMES: usize = 8;

/// leakprobe's own frames below the code of interest: the worker loop and the controller that
/// builds the clients, the command and `main`. Trimmed from the bottom of every stack. Each is
/// a function's full path, and its last segment the bare name a line-tables-only build shows
/// (a test pins each to a function in `src/`).
pub const HARNESS: &[&str] = &[
    "leak_client::run::worker::Worker::run",
    "leak_client::run::worker::Worker::round",
    "leak_client::run::controller::spawn_workers",
    "leak_client::run::controller::Controller::launch",
    "leak_client::run::controller::Controller::run_rounds",
    "leak_client::run::controller::Controller::linger",
    "leak_client::run::controller::Controller::quiescent_reading",
    "leak_client::run::controller::Controller::finish",
    "leak_client::run::run",
    "leak_client::commands::variant::run_variant",
    "leak_client::main",
];

/// The trim that drops [`HARNESS`] (and the allocator's and runtime's frames).
pub const TRIM: Trim<'static> = Trim { harness: HARNESS };

/// Marks of the code under test in a stack (source-file fragments, then function-name
/// endings, which hold for both full paths and the bare names of line-tables-only builds): a
/// site with none of them in its whole stack is leakprobe's own (histograms, the sample series,
/// channels, worker threads), listed apart from the client's flat sites.
const CLIENT_FILES: &[&str] = &[
    "/client/src/raw/",
    "/client/src/ureq_client.rs",
    "/client/src/clients.rs",
    "/ureq-",
];
const CLIENT_FUNCTIONS: &[&str] = &["forget_block", "keep_block"];

fn is_client_site(r: &SiteReport) -> bool {
    r.stacks.iter().any(|&id| {
        hs::symbolize_all(id).iter().any(|f| {
            f.file
                .as_deref()
                .is_some_and(|file| CLIENT_FILES.iter().any(|p| file.contains(p)))
                || CLIENT_FUNCTIONS.iter().any(|p| f.function.ends_with(p))
        })
    })
}

/// The sampled sites at one reading.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Which reading: `start`, `warm-up`, `end of round`, `after linger`.
    pub what: &'static str,
    /// Completed requests then.
    pub requests: u64,
    /// Live heap bytes then (the counting allocator, exact).
    pub live: u64,
    pub snapshot: SiteSnapshot,
}

impl Reading {
    /// Snapshots the sampled sites now, beside the counters' `sample`. Allocates only from
    /// `System` (the counted heap is unchanged).
    pub fn now(what: &'static str, sample: &Sample) -> Reading {
        Reading {
            what,
            requests: sample.requests,
            live: sample.live,
            snapshot: hs::snapshot(),
        }
    }
}

/// The readings a run keeps: the start, the warm-up reading (single-round runs), the end of
/// the first round, and the latest. A constant amount of memory however many rounds.
#[derive(Debug)]
pub struct Readings {
    /// Mean bytes between samples.
    pub rate: u64,
    start: Option<Reading>,
    warmup: Option<Reading>,
    first_round: Option<Reading>,
    last: Option<Reading>,
    /// Every site's totals at the last reading, for the DHAT profile ([`Readings::finish`]).
    pub profile: Option<hs::Profile>,
}

impl Readings {
    /// Switches sampling on at `rate` (seeded by `seed`).
    pub fn start(rate: u64, seed: u64) -> Result<Readings, String> {
        hs::set_sample_rate(rate);
        hs::set_seed(seed);
        hs::enable().map_err(|e| e.to_string())?;
        Ok(Readings {
            rate,
            start: None,
            warmup: None,
            first_round: None,
            last: None,
            profile: None,
        })
    }

    /// Takes a reading beside `sample` (a quiescent one, or the start).
    pub fn take(&mut self, what: &'static str, sample: &Sample) {
        let r = Reading::now(what, sample);
        log::debug!(
            "sites: {what} at {} requests: {} live samples, {} estimated",
            sample.requests,
            r.snapshot.samples().len(),
            units::bytes(r.snapshot.estimated_bytes())
        );
        if self.start.is_none() {
            self.start = Some(r);
        } else if self.first_round.is_none() {
            self.first_round = Some(r);
        } else {
            self.last = Some(r);
        }
    }

    /// After the last reading: keeps every site's totals (so the DHAT profile's end is the
    /// last reading, not the teardown after it) and switches sampling off.
    pub fn finish(&mut self) {
        self.profile = Some(hs::profile());
        hs::disable();
    }

    /// Adds the monitor's warm-up reading.
    pub fn set_warmup(&mut self, r: Reading) {
        self.warmup = Some(r);
    }

    /// The two readings growth is measured between: from the end of warm-up (the end of the
    /// first round in a run of several, else the warm-up reading, else the start) to the last.
    pub fn span(&self) -> Option<(&Reading, &Reading)> {
        let last = self.last.as_ref().or(self.first_round.as_ref())?;
        let first = [&self.first_round, &self.warmup, &self.start]
            .into_iter()
            .flatten()
            .find(|r| r.requests < last.requests)
            .or(self.start.as_ref())?;
        Some((first, last))
    }
}

/// The requests at which a single-round run's warm-up reading is taken: 10% of the round, as
/// the verdict's warm-up. `None` for several rounds (the first round's end is used) or an
/// unbounded round.
pub fn warmup_requests(requests: Option<u64>, rounds: u32) -> Option<u64> {
    (rounds == 1).then_some(requests?).map(|n| (n / 10).max(1))
}

/// One site in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteRow {
    /// The headline frame: the first outside the standard library.
    pub function: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The trimmed stack, innermost first, `function (file:line)` with shortened paths.
    pub frames: Vec<String>,
    /// Estimated live bytes at the first and last reading.
    pub first_bytes: f64,
    pub last_bytes: f64,
    /// Estimated growth per request between them, and its interval (± `GROWTH_Z` standard
    /// errors).
    pub growth_per_request: f64,
    pub lo: f64,
    pub hi: f64,
    /// Live samples at the last reading; of which new since the first; freed since the first.
    pub samples: u64,
    pub new_samples: u64,
    pub gone_samples: u64,
    /// Grows beyond its interval.
    pub growing: bool,
}

impl SiteRow {
    /// The row of `r`, which grows beyond its interval or not (`growing`).
    fn new(r: &SiteReport, growing: bool) -> SiteRow {
        let g = &r.growth;
        // From the headline down: the standard library's frames above it are noise to a reader.
        let from = r.frames.iter().position(|f| !f.is_std()).unwrap_or(0);
        let head = r.frames.get(from);
        let (lo, hi) = g.interval_per_request(GROWTH_Z).unwrap_or((0.0, 0.0));
        SiteRow {
            function: head.map_or_else(|| "???".into(), |f| f.function.clone()),
            file: head.and_then(|f| f.file.clone()),
            line: head.and_then(|f| f.line),
            frames: r.frames[from..]
                .iter()
                .take(FRAMES)
                .map(|f| format!("{} ({})", f.function, location(f.file.as_deref(), f.line)))
                .collect(),
            first_bytes: g.first_bytes,
            last_bytes: g.last_bytes,
            growth_per_request: g.per_request().unwrap_or(0.0),
            lo,
            hi,
            samples: g.last_samples,
            new_samples: g.new_samples,
            gone_samples: g.gone_samples,
            growing,
        }
    }

    /// `file:line` with the file shortened (see [`short_file`]).
    pub fn location(&self) -> String {
        location(self.file.as_deref(), self.line)
    }
}

/// `file:line` with the file shortened (see [`short_file`]); `?` for what is unknown.
fn location(file: Option<&str>, line: Option<u32>) -> String {
    format!(
        "{}:{}",
        file.map_or_else(|| "?".into(), short_file),
        line.map_or_else(|| "?".into(), |l| l.to_string())
    )
}

/// A source path as a reader wants it: a dependency from its crate directory
/// (`ureq-3.5.2/src/pool.rs`), this workspace's files from its root (`client/src/run/mod.rs`),
/// anything else by its last three components.
pub fn short_file(path: &str) -> String {
    if let Some((_, rest)) = path.split_once("/registry/src/") {
        if let Some((_index, in_crate)) = rest.split_once('/') {
            return in_crate.to_owned();
        }
    }
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| format!("{}/", p.display()));
    if let Some(rel) = workspace.and_then(|w| path.strip_prefix(w.as_str()).map(str::to_owned)) {
        return rel;
    }
    hs::short_path(path)
}

/// Whether the sites agree with the verdict, and why (or why not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub consistent: bool,
    pub note: String,
}

/// What `--sites` found, as the summary reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SitesSummary {
    /// Mean bytes allocated between samples.
    pub rate: u64,
    /// Samples taken in the whole run, and distinct stacks seen.
    pub samples: u64,
    pub stacks: u32,
    /// The readings growth is measured between, and the requests at each.
    pub first_reading: String,
    pub first_requests: u64,
    pub last_reading: String,
    pub last_requests: u64,
    /// Sites growing beyond their interval, largest growth first (at most [`TOP`]).
    pub growing: Vec<SiteRow>,
    /// The client's largest sites not growing, by live bytes at the last reading (at most
    /// [`TOP`]).
    pub flat: Vec<SiteRow>,
    /// Estimated live bytes of leakprobe's own flat sites (not the client's), and how many.
    pub harness_bytes: f64,
    pub harness_sites: u32,
    /// All sites together: estimated growth per request and its interval.
    pub total_per_request: f64,
    pub total_lo: f64,
    pub total_hi: f64,
    /// The counted heap's own growth per request between the same two readings (exact).
    pub heap_per_request: f64,
    /// How this squares with the verdict (filled in by the summary, which has the verdict).
    pub agreement: Option<Agreement>,
    /// Where the DHAT profile was written (filled in by the command that writes it).
    pub dhat: Option<String>,
    /// Why it was not, if writing it failed.
    pub dhat_error: Option<String>,
    /// What sampled the sites, when not heapmeter (`watch --sites`: V8's sampling heap
    /// profiler, tracemalloc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `watch --sites`: growing functions counting every sample beneath them (inclusive), which
    /// holds still when inlining moves samples between leaf frames from one reading to the next.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_frame: Vec<SiteRow>,
    /// `watch --sites`: growing scripts (files), inclusive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_script: Vec<SiteRow>,
    /// `watch --sites` on Node: where the last profile was written as a `.heapprofile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heapprofile: Option<String>,
}

impl SitesSummary {
    /// The sites table of `readings`. Symbolises every site that changed or is live: call it
    /// after the last reading (it loads debug info into the heap).
    pub fn new(readings: &Readings) -> Option<SitesSummary> {
        let (first, last) = readings.span()?;
        let requests = last.requests.saturating_sub(first.requests);
        let reports = hs::grouped_growth(&first.snapshot, &last.snapshot, requests, &TRIM);
        let stats = hs::stats();
        let (mut total, mut variance) = (0.0, 0.0);
        for r in &reports {
            total += r.growth.growth;
            variance += r.growth.variance;
        }
        let n = requests.max(1) as f64;
        let half = GROWTH_Z * variance.sqrt();
        let (mut growing, mut flat, mut own) = (Vec::new(), Vec::new(), (0.0, 0u32));
        for r in &reports {
            if r.growth.is_growing(GROWTH_Z) {
                growing.push(r);
            } else if r.growth.last_bytes <= 0.0 {
                // Holds nothing at the last reading: not listed.
            } else if is_client_site(r) {
                flat.push(r);
            } else {
                own.0 += r.growth.last_bytes;
                own.1 += 1;
            }
        }
        flat.sort_by(|a, b| b.growth.last_bytes.total_cmp(&a.growth.last_bytes));
        Some(SitesSummary {
            rate: readings.rate,
            samples: stats.samples,
            stacks: stats.sites,
            first_reading: first.what.into(),
            first_requests: first.requests,
            last_reading: last.what.into(),
            last_requests: last.requests,
            growing: growing
                .into_iter()
                .take(TOP)
                .map(|r| SiteRow::new(r, true))
                .collect(),
            flat: flat
                .into_iter()
                .take(TOP)
                .map(|r| SiteRow::new(r, false))
                .collect(),
            harness_bytes: own.0,
            harness_sites: own.1,
            total_per_request: total / n,
            total_lo: (total - half) / n,
            total_hi: (total + half) / n,
            heap_per_request: (last.live as f64 - first.live as f64) / n,
            agreement: None,
            dhat: None,
            dhat_error: None,
            source: None,
            by_frame: Vec::new(),
            by_script: Vec::new(),
            heapprofile: None,
        })
    }

    /// The human lines of the summary.
    pub fn print_human(&self, w: &mut dyn Write) -> io::Result<()> {
        let sampled = self.source.clone().unwrap_or_else(|| {
            format!("1 sample per {} allocated", units::bytes(self.rate as f64))
        });
        writeln!(
            w,
            "sites      {sampled}, {} samples at {} stacks; growth from {} ({} requests) to {} ({} requests), ±{GROWTH_Z}σ",
            units::count(self.samples),
            units::count(u64::from(self.stacks)),
            self.first_reading,
            units::count(self.first_requests),
            self.last_reading,
            units::count(self.last_requests),
        )?;
        if self.growing.is_empty() {
            writeln!(w, "  growing  none beyond its interval")?;
        } else {
            writeln!(
                w,
                "  growing  per request [interval]   live first → last   samples  site"
            )?;
        }
        for s in &self.growing {
            writeln!(
                w,
                "    {:>9} [{}, {}]  {} → {}  {}  {}  {}",
                units::per_request(s.growth_per_request),
                units::per_request(s.lo),
                units::per_request(s.hi),
                units::bytes(s.first_bytes),
                units::bytes(s.last_bytes),
                s.samples,
                s.function,
                s.location()
            )?;
            for f in s.frames.iter().skip(1).take(3) {
                writeln!(w, "               ← {f}")?;
            }
        }
        if !self.flat.is_empty() {
            writeln!(w, "  largest flat  live at last   samples  site")?;
        }
        for s in &self.flat {
            let changed = if s.new_samples + s.gone_samples > 0 {
                format!(
                    "  (changed {}/request [{}, {}])",
                    units::per_request(s.growth_per_request),
                    units::per_request(s.lo),
                    units::per_request(s.hi)
                )
            } else {
                String::new()
            };
            writeln!(
                w,
                "    {:>9}  {:>7}  {}  {}{changed}",
                units::bytes(s.last_bytes),
                s.samples,
                s.function,
                s.location()
            )?;
            for f in s.frames.iter().skip(1).take(2) {
                writeln!(w, "               ← {f}")?;
            }
        }
        if self.harness_sites > 0 {
            let whose = if self.source.is_some() {
                "the runtime's and the probe's own"
            } else {
                "leakprobe's own (histograms, sample series, threads)"
            };
            writeln!(
                w,
                "    {:>9} at {} flat sites of {whose}, not listed",
                units::bytes(self.harness_bytes),
                self.harness_sites
            )?;
        }
        for (title, rows) in [
            ("growing functions (inclusive)", &self.by_frame),
            ("growing scripts (inclusive)", &self.by_script),
        ] {
            if !rows.is_empty() {
                writeln!(w, "  {title}  per request [interval]")?;
            }
            for s in rows.iter() {
                // A script's row names the script: no line to add.
                let at = s
                    .line
                    .map_or_else(String::new, |_| format!("  {}", s.location()));
                writeln!(
                    w,
                    "    {:>9} [{}, {}]  {}{at}",
                    units::per_request(s.growth_per_request),
                    units::per_request(s.lo),
                    units::per_request(s.hi),
                    s.function,
                )?;
            }
        }
        let heap = if self.source.is_some() {
            "the judged heap"
        } else {
            "the counted heap"
        };
        writeln!(
            w,
            "  all sites {}/request [{}, {}]; {heap} {}/request between the same readings",
            units::per_request(self.total_per_request),
            units::per_request(self.total_lo),
            units::per_request(self.total_hi),
            units::per_request(self.heap_per_request),
        )?;
        if let Some(a) = &self.agreement {
            let mark = if a.consistent { "" } else { "NOT consistent: " };
            writeln!(w, "  verdict  {mark}{}", a.note)?;
        }
        match (&self.dhat, &self.dhat_error) {
            (Some(p), _) => writeln!(
                w,
                "  profile  {p} (DHAT format: open it in Valgrind's dh_view.html)"
            )?,
            (None, Some(e)) => writeln!(w, "  profile  not written: {e}")?,
            (None, None) => {}
        }
        if let Some(p) = &self.heapprofile {
            writeln!(
                w,
                "  profile  {p} (open it in Chrome DevTools' Memory tab, or speedscope)"
            )?;
        }
        Ok(())
    }

    /// The sites of one run as Markdown (for `report.md`).
    pub fn markdown(&self, w: &mut dyn Write) -> io::Result<()> {
        let sampled = self.source.clone().unwrap_or_else(|| {
            format!(
                "One sample per {} allocated",
                units::bytes(self.rate as f64)
            )
        });
        writeln!(
            w,
            "{sampled}, {} samples; growth from {} ({} requests) to {} ({} requests), intervals ±{GROWTH_Z}σ.\n",
            units::count(self.samples),
            self.first_reading,
            units::count(self.first_requests),
            self.last_reading,
            units::count(self.last_requests),
        )?;
        let table = |w: &mut dyn Write, rows: &[SiteRow]| -> io::Result<()> {
            writeln!(
                w,
                "| site | per request [interval] | live first → last | samples | stack |"
            )?;
            writeln!(w, "|---|---|---|---|---|")?;
            for s in rows {
                writeln!(
                    w,
                    "| `{}` {} | {} [{}, {}] | {} → {} | {} | {} |",
                    s.function,
                    s.location(),
                    units::per_request(s.growth_per_request),
                    units::per_request(s.lo),
                    units::per_request(s.hi),
                    units::bytes(s.first_bytes),
                    units::bytes(s.last_bytes),
                    s.samples,
                    s.frames
                        .iter()
                        .skip(1)
                        .take(3)
                        .map(|f| format!("← {f}"))
                        .collect::<Vec<_>>()
                        .join("<br>")
                )?;
            }
            Ok(())
        };
        if self.growing.is_empty() {
            writeln!(w, "**Growing:** none beyond its interval.\n")?;
        } else {
            writeln!(w, "**Growing:**\n")?;
            table(w, &self.growing)?;
            writeln!(w)?;
        }
        if !self.flat.is_empty() {
            writeln!(w, "**Largest flat:**\n")?;
            table(w, &self.flat)?;
            writeln!(w)?;
        }
        for (title, rows) in [
            ("Growing functions (inclusive)", &self.by_frame),
            ("Growing scripts (inclusive)", &self.by_script),
        ] {
            if !rows.is_empty() {
                writeln!(w, "**{title}:**\n")?;
                table(w, rows)?;
                writeln!(w)?;
            }
        }
        if let Some(a) = &self.agreement {
            let mark = if a.consistent {
                ""
            } else {
                "**not consistent:** "
            };
            writeln!(w, "Verdict: {mark}{}.\n", a.note)?;
        }
        if let Some(p) = &self.dhat {
            // report.md sits beside the profile: name the file, not the path from the cwd.
            let name = std::path::Path::new(p)
                .file_name()
                .map_or_else(|| p.clone(), |n| n.to_string_lossy().into_owned());
            writeln!(
                w,
                "Profile: `{name}` (open it in Valgrind's `dh_view.html`).\n"
            )?;
        }
        if let Some(p) = &self.heapprofile {
            let name = std::path::Path::new(p)
                .file_name()
                .map_or_else(|| p.clone(), |n| n.to_string_lossy().into_owned());
            writeln!(
                w,
                "Profile: `{name}` (open it in Chrome DevTools' Memory tab, or speedscope).\n"
            )?;
        }
        Ok(())
    }
}

/// Sites tables for tests (here and in `summary`, which checks them against a verdict).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) fn row(growth: f64, growing: bool) -> SiteRow {
        SiteRow {
            function: "forget_block".into(),
            file: Some("/work/leakprobe/client/src/run.rs".into()),
            line: Some(321),
            frames: vec![
                "forget_block (client/src/run.rs:321)".into(),
                "after_request (client/src/run.rs:300)".into(),
            ],
            first_bytes: 0.0,
            last_bytes: growth * 10_000.0,
            growth_per_request: growth,
            lo: growth * 0.8,
            hi: growth * 1.2,
            samples: 100,
            new_samples: 100,
            gone_samples: 0,
            growing,
        }
    }

    pub(crate) fn summary(growing: Vec<SiteRow>, total: (f64, f64, f64)) -> SitesSummary {
        SitesSummary {
            rate: 16 * 1024,
            samples: 200,
            stacks: 12,
            first_reading: "warm-up".into(),
            first_requests: 1000,
            last_reading: "end of round".into(),
            last_requests: 11_000,
            growing,
            flat: vec![row(0.0, false)],
            harness_bytes: 1.2e6,
            harness_sites: 9,
            total_per_request: total.0,
            total_lo: total.1,
            total_hi: total.2,
            heap_per_request: total.0,
            agreement: None,
            dhat: Some("dhat-heap.json".into()),
            dhat_error: None,
            source: None,
            by_frame: Vec::new(),
            by_script: Vec::new(),
            heapprofile: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{row, summary};
    use super::*;

    #[test]
    fn the_human_and_markdown_tables_name_the_site_and_the_profile() {
        let mut s = summary(vec![row(256.0, true)], (258.0, 220.0, 290.0));
        s.agreement = Some(Agreement {
            consistent: true,
            note: "consistent with the verdict (leak)".into(),
        });
        let mut out = Vec::new();
        s.print_human(&mut out).expect("writes");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("forget_block  client/src/run.rs:321"),
            "{text}"
        );
        assert!(text.contains("← after_request"), "{text}");
        assert!(text.contains("largest flat"), "{text}");
        assert!(text.contains("dhat-heap.json"), "{text}");
        assert!(!text.contains("NOT consistent"), "{text}");
        let mut md = Vec::new();
        s.markdown(&mut md).expect("writes");
        let md = String::from_utf8(md).expect("utf-8");
        assert!(
            md.contains("| `forget_block` client/src/run.rs:321 | +256.0 B"),
            "{md}"
        );
        assert!(md.contains("**Largest flat:**"), "{md}");
    }

    /// Where `fn NAME` is defined in `text`: `None` for a free function at the top level, the
    /// `impl` line it is under otherwise.
    fn definitions<'t>(text: &'t str, function: &str) -> Vec<Option<&'t str>> {
        let mut under_impl = None;
        let mut found = Vec::new();
        for line in text.lines() {
            if line.starts_with("impl") {
                under_impl = Some(line);
            } else if line.starts_with('}') {
                under_impl = None;
            }
            let code = line.split("//").next().unwrap_or("");
            let defines = [format!("fn {function}("), format!("fn {function}<")]
                .iter()
                .any(|d| code.contains(d.as_str()));
            if defines {
                found.push(if line.starts_with(' ') {
                    under_impl
                } else {
                    None
                });
            }
        }
        found
    }

    #[test]
    fn every_harness_name_is_a_function_of_the_client() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for name in HARNESS {
            let path = name
                .strip_prefix("leak_client::")
                .unwrap_or_else(|| panic!("`{name}` is not a path in leak_client"));
            let segments: Vec<&str> = path.split("::").collect();
            let Some((function, outer)) = segments.split_last() else {
                panic!("`{name}` names no function")
            };
            let (ty, modules) = match outer.split_last() {
                Some((t, m)) if t.starts_with(char::is_uppercase) => (Some(*t), m),
                _ => (None, outer),
            };
            let files = if modules.is_empty() {
                vec![src.join("lib.rs"), src.join("main.rs")]
            } else {
                let dir = modules.join("/");
                vec![src.join(format!("{dir}.rs")), src.join(&dir).join("mod.rs")]
            };
            let defined = files.iter().any(|file| {
                let text = std::fs::read_to_string(file).unwrap_or_default();
                definitions(&text, function)
                    .into_iter()
                    .any(|under| match (ty, under) {
                        (None, None) => true,
                        (Some(ty), Some(imp)) => imp
                            .split(|c: char| !c.is_alphanumeric() && c != '_')
                            .any(|word| word == ty),
                        _ => false,
                    })
            });
            assert!(
                defined,
                "HARNESS names `{name}`, but no `fn {function}`{} is in {files:?}: \
                 a renamed or moved harness function must be renamed in HARNESS too",
                ty.map_or_else(String::new, |t| format!(" in an `impl` of `{t}`"))
            );
        }
    }

    #[test]
    fn the_harness_check_finds_functions_by_module_and_type() {
        let text = "pub fn run() {}\nimpl<'a> Controller<'a> {\n    pub(super) fn launch(\n}\n\
                    impl Worker {\n    fn run(mut self) {}\n}\n// fn gone()\n";
        assert_eq!(definitions(text, "run"), [None, Some("impl Worker {")]);
        assert_eq!(
            definitions(text, "launch"),
            [Some("impl<'a> Controller<'a> {")]
        );
        assert!(definitions(text, "gone").is_empty());
    }

    #[test]
    fn paths_are_shown_from_the_crate_or_the_workspace() {
        assert_eq!(
            short_file(
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ureq-3.5.2/src/pool.rs"
            ),
            "ureq-3.5.2/src/pool.rs"
        );
        let here = concat!(env!("CARGO_MANIFEST_DIR"), "/src/run.rs");
        assert_eq!(short_file(here), "client/src/run.rs");
        assert_eq!(
            short_file("/rustc/abc/library/alloc/src/raw_vec.rs"),
            "alloc/src/raw_vec.rs"
        );
    }

    #[test]
    fn a_single_round_is_measured_from_its_warm_up_reading() {
        assert_eq!(warmup_requests(Some(20_000), 1), Some(2_000));
        assert_eq!(warmup_requests(Some(5), 1), Some(1));
        assert_eq!(warmup_requests(Some(20_000), 3), None);
        assert_eq!(warmup_requests(None, 1), None);
    }
}
