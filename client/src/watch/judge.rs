//! The verdict of a watch run: which series is judged (the probe's post-GC heap, or the tree's
//! RSS), with which thresholds, and how the result is worded when only RSS was there. Pure
//! functions over plain rows: no `/proc`, no clock, no process; the classes and statistics are
//! [`crate::verdict`]'s.
//!
//! # With a probe
//! The probe's readings (the heap after a full collection, summed over the tree's processes)
//! are the judged series, paired with the server's served count; RSS, read at the tree sample
//! just before each reading, rides along so that a flat heap under a growing resident set is
//! `rss-only`. A reading costs the program a full collection, so there are fewer of them than
//! tree samples (one a second by default): at least [`MIN_HEAP_POINTS`] after warm-up are
//! needed, not the variants' 30 — a post-GC heap has almost no noise from requests in flight.
//!
//! # Node's external memory
//! Buffers and ArrayBuffers (what HTTP clients hold: bodies, sockets' chunks) live outside V8's
//! heap, in `external`. [`judge_split`] judges it as a series of its own beside the heap and
//! adds the two: `leak` if either part leaks, the slope their sum, the parts shown. Not the sum as
//! one series: under `next dev` `external` swings by up to 740 MB between readings (the
//! compiler's buffers, freed again) while the heap grows 1.5 KB per request, and judged as one
//! series that leak came out `inconclusive` (the recorded `next-canary-dev-fetch-probe`);
//! judged apart, each series' Theil–Sen fit sets the other's noise aside (external alone reads
//! −1.3 B/request, `stable`).
//!
//! # Without one
//! RSS is judged with the variants' rules, but the wording never calls it a heap leak: RSS
//! cannot separate retained objects from a runtime growing its heap in steps and holding it (a
//! Node loop's RSS climbs 60 → 130 MB in the first 6,000 requests, then stays), from the
//! allocator keeping freed pages, or from a compiler's buffers. A `leak` on RSS says "RSS grew
//! steadily" and points to `--probe`. When the tree runs Node, for which a probe exists and whose
//! RSS measured here grew by kilobytes per request on routes whose heap was flat (Next.js), an
//! RSS `leak` is reported `inconclusive`: the probe decides, RSS cannot.
//!
//! # Warm-up
//! Start-up (before the first request) is never judged. On the probe's series the warm-up is
//! 20% of the run (extended to 40% while a ramp runs past it), and for Node at least the first
//! [`NODE_WARMUP_REQUESTS`]: V8's JIT and lazily built modules grow the heap for the first few
//! thousand requests of a clean loop, which at 2,000 requests reads as a leak of ~200
//! B/request. Below [`NODE_MIN_REQUESTS`] a Node heap verdict is `inconclusive` — unless it is
//! a `leak` whose interval's lower bound is at least [`NODE_SHORT_RUN_FLOOR`] (2 KB/request,
//! 10× what the warm-up adds after its first 1,000 requests): got 12.5.2's ~24 KB/request is
//! then decided within 2,000 requests, and the reason says why the short run was enough. A
//! Node heap is never judged before [`NODE_FIRST_REQUESTS`] (its first 1,000 requests grew it
//! 3.7 KB/request), however short the run.
//!
//! # Teardown
//! Rows marked `teardown` (the probe's exit reading, `"ev":"exit"`, and readings after the last
//! request while the program shuts down) are not steady state: a session closed at exit frees
//! its cookie jar (aiohttp 3.12.2: a straight climb of ~480 B/request for 20,000 requests, then
//! an exit reading 9.7 MB lower, which main judged `inconclusive`). They are left out of the fit
//! and of "retained", and what they released — the last steady reading minus the lowest
//! teardown reading, when positive — is `released_at_exit`, worded "released at exit: 9.25 MiB
//! — memory held for the life of a session or client object" when it exceeds
//! [`RELEASE_SIGMAS`] noise deviations: a clue to where a leak lives.
//!
//! # Stopping early
//! [`look`] is [`crate::verdict::EarlyStop`] on a watch run's rows (teardown set aside), with
//! the basis and thresholds above; on a got-like series (V8's warm-up plus 24 KB/request, a
//! reading every 50 requests) it settles `leak` at 2,000 requests.

use crate::units;
use crate::verdict::{self, Class, EarlyStop, Params, Point, Settled, Slope, Verdict};

/// Busy readings after warm-up the probe series needs (the variants need 30).
pub const MIN_HEAP_POINTS: usize = 12;

/// One reading of the process tree, paired with the server's served count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeRow {
    pub requests: u64,
    pub rss: u64,
    /// No request was served for a while before this reading (start-up, linger).
    pub quiescent: bool,
    /// Taken after the program's work ended (after its last request, while it shuts down):
    /// not judged, only compared (see "Teardown" above).
    pub teardown: bool,
}

/// One probe reading summed over the tree: post-GC heap bytes at a served count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapRow {
    pub requests: u64,
    pub live: u64,
    pub quiescent: bool,
    /// Taken after the program's work ended (the probe's exit reading, `"ev":"exit"`, or a
    /// reading after the last request): not judged, only compared.
    pub teardown: bool,
}

/// What the verdict was computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The probe's post-GC heap.
    Heap,
    /// The tree's resident set.
    Rss,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Heap => "heap",
            Basis::Rss => "rss",
        }
    }
}

/// The judgement of a watch run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WatchVerdict {
    pub basis: Basis,
    /// The verdict proper; with `basis: rss`, its `slope` is RSS's.
    pub verdict: Verdict,
    /// What RSS alone cannot say, when RSS was the basis.
    pub caveat: Option<String>,
    /// Bytes of the judged series released at exit: the last steady reading minus the lowest
    /// teardown reading, when positive.
    #[serde(default)]
    pub released_at_exit: Option<u64>,
    /// Node with a probe: the post-GC heap's and the external memory's own slopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
}

/// What each part of a Node process's memory grew by, bytes per request (see [`judge_split`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Split {
    /// The live heap: V8's measurement of its live objects (`js_estimate` less ArrayBuffers'
    /// contents), or a forced collection's `heapUsed`.
    pub heap: Option<Slope>,
    /// `external`: Buffers, ArrayBuffers, external strings.
    pub external: Option<Slope>,
}

impl WatchVerdict {
    /// `released at exit: 9.25 MiB — memory held for the life of a session or client object`,
    /// when what was released stands out of the series' noise (more than [`RELEASE_SIGMAS`]
    /// deviations); a few kilobytes freed at exit say nothing.
    pub fn released_note(&self) -> Option<String> {
        let released = self.released_at_exit? as f64;
        let noise = self.verdict.noise.unwrap_or(0) as f64;
        (released > RELEASE_SIGMAS * noise).then(|| {
            format!(
                "released at exit: {} — memory held for the life of a session or client object",
                units::bytes(released)
            )
        })
    }
}

/// What is released at exit is worded only above this many noise deviations of the series.
pub const RELEASE_SIGMAS: f64 = 3.0;

/// A leak on the probe's series needs its interval above this many bytes/request.
pub const HEAP_LEAK_FLOOR: f64 = 32.0;
/// `stable` on the probe's series needs the interval's upper bound at or below this.
pub const HEAP_STABLE_CEILING: f64 = 64.0;

/// The thresholds for the probe's series: the variants' with fewer readings needed, and a
/// floor above what a runtime adds by itself. Clean Node loops read 2–30 B/request of post-GC
/// heap growth over 10,000–30,000 requests (V8's code, inline caches and interned strings
/// warming up; the recorded `node-fetch-*-probe` series), which the variants' 1 B floor would
/// call a leak; the smallest plant that matters here (256 B) is far above 32.
pub fn heap_params() -> Params {
    Params {
        min_points: MIN_HEAP_POINTS,
        warmup_fraction: 0.2,
        max_warmup_fraction: 0.4,
        leak_floor: HEAP_LEAK_FLOOR,
        stable_ceiling: HEAP_STABLE_CEILING,
        series: "post-GC heap",
        repeat_advice: REPEAT_ADVICE,
        ..Params::default()
    }
}

/// What a watch's reasons advise instead of `--rounds`, which watch does not have.
const REPEAT_ADVICE: &str = " or repeat the loop (several --kick)";

/// Judges a watch run: on `heap` when it has readings (a probe ran and reported bytes), else
/// on the tree's RSS. `node` says the tree ran Node (for the wording and the RSS rule above).
pub fn judge(tree: &[TreeRow], heap: Option<&[HeapRow]>, node: bool) -> WatchVerdict {
    judge_at(tree, heap, node, Params::default().z)
}

/// [`judge`] with the intervals at normal quantile `z`.
fn judge_at(tree: &[TreeRow], heap: Option<&[HeapRow]>, node: bool, z: f64) -> WatchVerdict {
    let (tree_steady, tree_down) = split_teardown(tree, |t| t.teardown, |t| t.rss);
    let heap = heap.map(|h| split_teardown(h, |r| r.teardown, |r| r.live));
    match heap {
        Some((steady, down)) if !steady.is_empty() => {
            let mut w = judge_heap(&tree_steady, &steady, node, z, heap_params().series);
            w.released_at_exit = released(steady.last().map(|r| r.live), &down);
            w
        }
        _ => {
            let mut w = judge_rss(&tree_steady, node, z);
            w.released_at_exit = released(tree_steady.last().map(|t| t.rss), &tree_down);
            w
        }
    }
}

/// The steady rows of `rows` (in order) and the bytes of its teardown rows.
fn split_teardown<T: Copy>(
    rows: &[T],
    teardown: impl Fn(&T) -> bool,
    bytes: impl Fn(&T) -> u64,
) -> (Vec<T>, Vec<u64>) {
    let steady = rows.iter().filter(|r| !teardown(r)).copied().collect();
    let down = rows.iter().filter(|r| teardown(r)).map(bytes).collect();
    (steady, down)
}

/// The first and the last reading the verdict fitted its slope on: the steady rows (teardown
/// set aside) from the last one before the first request, sorted by requests, past the
/// `warmup_excluded` readings the verdict set aside as warm-up (its
/// [`Verdict::warmup_excluded`]). `--sites` measures growth between these two, so that the
/// sites and the slope beside them cover the same requests. `None` without such readings.
pub fn judged_span(heap: &[HeapRow], warmup_excluded: usize) -> Option<(HeapRow, HeapRow)> {
    let (mut steady, _) = split_teardown(heap, |r| r.teardown, |r| r.live);
    steady.sort_by_key(|r| r.requests);
    let rows = from_start(&steady, |r| r.requests);
    let first = *rows.get(warmup_excluded.min(rows.len().saturating_sub(1)))?;
    let last = *rows.last()?;
    (last.requests > first.requests).then_some((first, last))
}

/// The last steady reading minus the lowest teardown reading, when positive.
fn released(last_steady: Option<u64>, teardown: &[u64]) -> Option<u64> {
    let lowest = teardown.iter().min()?;
    last_steady?.checked_sub(*lowest).filter(|b| *b > 0)
}

/// One look of the early stop (see [`verdict::EarlyStop`]) at a watch run's readings so far:
/// judges them when a look is due, at the run's z and at [`verdict::LOOK_Z`], and returns the
/// verdict once two looks in a row settle it. Teardown rows are set aside as in [`judge`].
pub fn look(
    stop: &mut EarlyStop,
    tree: &[TreeRow],
    heap: Option<&[HeapRow]>,
    node: bool,
) -> Option<Settled<WatchVerdict>> {
    let served = |r: u64, teardown: bool| (!teardown).then_some(r);
    let requests = tree
        .iter()
        .filter_map(|t| served(t.requests, t.teardown))
        .chain(
            heap.unwrap_or(&[])
                .iter()
                .filter_map(|h| served(h.requests, h.teardown)),
        )
        .max()?;
    if !stop.due(requests) {
        return None;
    }
    let judged = judge(tree, heap, node);
    let strict = judge_at(tree, heap, node, verdict::LOOK_Z);
    let ceiling = match judged.basis {
        Basis::Heap => HEAP_STABLE_CEILING,
        Basis::Rss => Params::default().stable_ceiling,
    };
    stop.record(requests, &judged.verdict, &strict.verdict, ceiling)
        .then(|| Settled {
            verdict: judged,
            requests,
            looks: stop.looks(),
        })
}

/// Requests a Node process's own warm-up lasts: a clean native `fetch` loop's post-GC heap went
/// 2.9 → 6.6 MB over its first 1,000 requests, +170 KB over the next 1,000, +90 KB over the
/// next, and was flat from about 4,000 on (V8's JIT, undici's lazily built parts).
pub const NODE_WARMUP_REQUESTS: u64 = 3_000;
/// A Node heap series shorter than this is `inconclusive` whatever its shape: the warm-up would
/// read as a leak of ~200 B/request at 2,000 requests.
pub const NODE_MIN_REQUESTS: u64 = 5_000;

/// Requests before which a Node heap is never judged, however short the run: a clean loop's
/// post-GC heap grew 3.7 KB/request over its first 1,000 requests.
pub const NODE_FIRST_REQUESTS: u64 = 1_000;

/// A Node heap leak shorter than [`NODE_MIN_REQUESTS`] is still `leak` when its interval's lower
/// bound is at least this many bytes/request: 10× the ~200 B/request V8's warm-up reads as at
/// 2,000 requests (170 B/request measured between requests 1,000 and 2,000, 90 from 2,000 to
/// 3,000), so the warm-up cannot account for a tenth of it.
pub const NODE_SHORT_RUN_FLOOR: f64 = 2_000.0;

/// [`heap_params`], with the warm-up at least [`NODE_WARMUP_REQUESTS`] for Node, shortened to
/// 70% of a run of at least [`NODE_MIN_REQUESTS`]. A shorter Node run can only be a `leak` far
/// above the warm-up's own growth ([`NODE_SHORT_RUN_FLOOR`]) or `inconclusive`, so its warm-up
/// is only its first [`NODE_FIRST_REQUESTS`] (at least 20%): the readings after them are all
/// the evidence a short run has (got 12.5.2, 3,000 requests: 70% set aside left 2 of 12).
fn heap_params_for(total: u64, node: bool) -> Params {
    let mut p = heap_params();
    if node && total > 0 {
        let first = NODE_FIRST_REQUESTS as f64 / total as f64;
        let fraction = if total < NODE_MIN_REQUESTS {
            first.max(p.warmup_fraction)
        } else {
            (NODE_WARMUP_REQUESTS as f64 / total as f64)
                .clamp(p.warmup_fraction, 0.7)
                .max(first)
        };
        p.max_warmup_fraction = (fraction + (p.max_warmup_fraction - p.warmup_fraction))
            .min(0.8)
            .max(fraction);
        p.warmup_fraction = fraction;
    }
    p
}

/// The readings from the last one before the first request on: start-up (an interpreter
/// loading, a framework compiling) is not what requests do, and the variants' series begins
/// with every worker built too.
fn from_start<T>(rows: &[T], requests: impl Fn(&T) -> u64) -> &[T] {
    let first = rows
        .iter()
        .position(|r| requests(r) > 0)
        .unwrap_or(rows.len());
    &rows[first.saturating_sub(1)..]
}

/// What [`judge_split`] calls the external series in its reasons.
const EXTERNAL_SERIES: &str = "external memory (Buffers, ArrayBuffers)";

/// [`judge`] of a Node probe's readings: the post-GC heap (`heap`, with the tree's RSS beside
/// it) and `external` (same served counts) judged as two series, then added (module docs):
/// - either part `leak`: `leak`, with that part's reason (the larger one's when both leak) and
///   both parts' slopes;
/// - neither: the less certain class of the two (`inconclusive`, then `bounded`, then the
///   heap's own, which may be `rss-only`), with its reason;
/// - the slope is the sum of the parts' slopes (interval bounds added: conservative), and
///   [`WatchVerdict::split`] holds each.
pub fn judge_split(tree: &[TreeRow], heap: &[HeapRow], external: &[HeapRow]) -> WatchVerdict {
    let w = judge(tree, Some(heap), true);
    let (steady, _) = split_teardown(external, |r| r.teardown, |r| r.live);
    if w.basis != Basis::Heap || steady.is_empty() {
        return w;
    }
    let x = judge_heap(&[], &steady, true, Params::default().z, EXTERNAL_SERIES).verdict;
    let split = Split {
        heap: w.verdict.slope,
        external: x.slope,
    };
    let h = w.verdict;
    let rss_slope = h.rss_slope;
    let larger = |a: &Verdict, b: &Verdict| {
        let s = |v: &Verdict| v.slope.map_or(0.0, |s| s.bytes_per_request);
        s(a) >= s(b)
    };
    let mut v = match (h.class, x.class) {
        (Class::Leak, Class::Leak) if !larger(&h, &x) => x,
        (Class::Leak, _) => h,
        (_, Class::Leak) => x,
        // The heap's doubt first: it is the main series, and its reason says what to run.
        (Class::Inconclusive, _) => h,
        (_, Class::Inconclusive) => x,
        (Class::Stable, Class::Bounded) => x,
        _ => h,
    };
    v.slope = match (split.heap, split.external) {
        (Some(a), Some(b)) => Some(Slope {
            bytes_per_request: a.bytes_per_request + b.bytes_per_request,
            lo: a.lo + b.lo,
            hi: a.hi + b.hi,
            per_million: a.per_million.saturating_add(b.per_million),
        }),
        (a, b) => a.or(b),
    };
    v.rss_slope = rss_slope;
    if let (Class::Leak, Some(total)) = (v.class, v.slope) {
        // The reason is one part's; the leak is both parts'.
        let part = |s: Option<Slope>| {
            s.map_or_else(|| "?".into(), |s| units::per_request(s.bytes_per_request))
        };
        v.reason = format!(
            "{}; heap and external memory together {}/request (heap {}, external {})",
            v.reason,
            units::per_request(total.bytes_per_request),
            part(split.heap),
            part(split.external)
        );
    }
    WatchVerdict {
        verdict: v,
        split: Some(split),
        ..w
    }
}

fn judge_heap(
    tree: &[TreeRow],
    heap: &[HeapRow],
    node: bool,
    z: f64,
    series: &'static str,
) -> WatchVerdict {
    let points: Vec<Point> = from_start(heap, |h| h.requests)
        .iter()
        .map(|h| Point {
            requests: h.requests,
            live: h.live,
            // The tree's RSS at the last sample at or before this served count.
            rss: tree
                .iter()
                .rev()
                .find(|t| t.requests <= h.requests && t.requests > 0)
                .map(|t| t.rss),
            quiescent: h.quiescent,
            round: 0,
        })
        .collect();
    let total = points.iter().map(|p| p.requests).max().unwrap_or(0);
    let params = Params {
        z,
        series,
        ..heap_params_for(total, node)
    };
    let mut v = verdict::judge(&points, &params);
    if node {
        NODE_SHORT_RUN.apply(&mut v, total);
    } else {
        SHORT_RUN.apply(&mut v, total);
    }
    WatchVerdict {
        basis: Basis::Heap,
        verdict: v,
        caveat: None,
        released_at_exit: None,
        split: None,
    }
}

/// A watched program's series (other than a Node heap, which has its own rule) shorter than
/// this many requests is `leak` only when the leak is far above a warm-up's own growth
/// ([`SHORT_RUN_FLOOR`]): a program can warm up in a straight line for its first thousands of
/// requests. aiohttp 3.12.3 (no leak) grew its anonymous memory 109 B/request in a straight line
/// from request 500 to 2,300, then not at all; judged at 1,414 requests it read `leak` at 129
/// B/request (95% CI 128–131), and `--until-verdict` stopped it there.
pub const SHORT_RUN_REQUESTS: u64 = 4_000;

/// The interval's low end a leak of a run shorter than [`SHORT_RUN_REQUESTS`] needs: 4× the
/// fastest straight warm-up measured after a program's first 500 requests (aiohttp 3.12.3's
/// 129 B/request), and under a planted 1 KiB leak's low end (1,040–1,117 B/request measured on
/// Python loops), so that one is still called on a short run.
pub const SHORT_RUN_FLOOR: f64 = 512.0;

/// A rule for runs too short to tell a program's own warm-up from a leak: under `requests`
/// requests, a `leak` whose interval's low end is at least `floor` is still called (the reason
/// says why that is enough); any other verdict in doubt (`leak` below the floor, and for Node
/// every class, since a warming heap reads as `stable` or `bounded` too) is `inconclusive`, and
/// the reason names the run's length as what to change (not the verdict's own advice, such as
/// reading memory more often, which would not help).
struct ShortRun {
    requests: u64,
    floor: f64,
    /// Why the floor rules the warm-up out, after "the interval's low end is ≥ FLOOR B/request".
    floor_why: &'static str,
    /// What grows by itself in such a run, after "only N requests: ".
    warm_up: &'static str,
    /// Only a `leak` is in doubt (else every class is).
    only_leak: bool,
}

/// A Node heap's ([`NODE_MIN_REQUESTS`], [`NODE_SHORT_RUN_FLOOR`]).
const NODE_SHORT_RUN: ShortRun = ShortRun {
    requests: NODE_MIN_REQUESTS,
    floor: NODE_SHORT_RUN_FLOOR,
    floor_why: "10× what a Node heap adds by itself while warming up after its first 1,000 \
                requests",
    warm_up: "a Node process's heap grows by itself for its first ~4,000 (JIT, lazily built \
              modules)",
    only_leak: false,
};

/// Every other series' ([`SHORT_RUN_REQUESTS`], [`SHORT_RUN_FLOOR`]).
const SHORT_RUN: ShortRun = ShortRun {
    requests: SHORT_RUN_REQUESTS,
    floor: SHORT_RUN_FLOOR,
    floor_why: "4× the fastest straight warm-up measured after a program's first 500 requests",
    warm_up: "a program can warm up in a straight line for its first thousands (caches, pools, \
              allocator arenas)",
    only_leak: true,
};

impl ShortRun {
    fn apply(&self, v: &mut Verdict, total: u64) {
        if total >= self.requests || (self.only_leak && v.class != Class::Leak) {
            return;
        }
        let slope = v.slope.filter(|_| v.class == Class::Leak);
        if slope.is_some_and(|s| s.lo >= self.floor) {
            v.reason = format!(
                "{} (only {} requests, but even the interval's low end is ≥ {} B/request, {})",
                v.reason,
                units::count(total),
                units::rate(self.floor),
                self.floor_why
            );
            return;
        }
        let what = match (v.class, slope) {
            (Class::Inconclusive, _) => "only a leak far above that can be called".to_string(),
            (_, Some(s)) if self.only_leak => format!(
                "a leak of {} B/request cannot be told from that ({})",
                units::rate(s.bytes_per_request),
                v.reason
            ),
            (class, _) => format!("{class} cannot be told from that ({})", v.reason),
        };
        v.reason = format!(
            "only {} requests: {}, so {what}: inconclusive, run ≥ {} requests",
            units::count(total),
            self.warm_up,
            units::count(self.requests * 2),
        );
        v.class = Class::Inconclusive;
    }
}

/// RSS counts touched 4 KiB pages: `stable` on RSS needs a window over which a leak of the
/// ceiling would have touched two more pages (512 requests at 16 B/request); over a shorter
/// one a flat RSS says nothing (a clean Python loop read flat over its first 257 requests).
pub const RSS_RESOLUTION: f64 = 8.0 * 1024.0;

fn judge_rss(tree: &[TreeRow], node: bool, z: f64) -> WatchVerdict {
    let points: Vec<Point> = from_start(tree, |t| t.requests)
        .iter()
        .map(|t| Point {
            requests: t.requests,
            live: t.rss,
            rss: None,
            quiescent: t.quiescent,
            round: 0,
        })
        .collect();
    let params = Params {
        series: "RSS",
        repeat_advice: REPEAT_ADVICE,
        resolution: RSS_RESOLUTION,
        z,
        ..Params::default()
    };
    let mut v = verdict::judge(&points, &params);
    if !node {
        let total = points.iter().map(|p| p.requests).max().unwrap_or(0);
        SHORT_RUN.apply(&mut v, total);
    }
    let probe = if node { "node" } else { "node|python" };
    let mut caveat = format!(
        "RSS cannot separate the runtime's own growth (heap steps, JIT, allocator pages) from \
         objects retained per request; run with --probe {probe} to judge the heap itself"
    );
    if v.class == Class::Leak && node {
        v.class = Class::Inconclusive;
        let slope = v.slope.map_or_else(String::new, |s| {
            format!(" {} B/request", units::rate(s.bytes_per_request))
        });
        v.reason = format!(
            "RSS grew{slope} steadily, but a Node process's RSS grows like this without a leak \
             too: inconclusive, run with --probe node"
        );
        caveat = "Node's RSS grew by kilobytes per request on Next.js routes whose heap was \
                  flat: only the probe's post-GC heap can tell"
            .to_string();
    }
    WatchVerdict {
        basis: Basis::Rss,
        verdict: v,
        caveat: Some(caveat),
        released_at_exit: None,
        split: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A post-GC heap that climbs fast and then ever more slowly (V8 warming up), `n` requests,
    /// a reading every 50, plus `leak` bytes per request.
    fn warming(n: u64, leak: f64) -> Vec<HeapRow> {
        (0..=n / 50)
            .map(|i| {
                let r = i * 50;
                let warm = 4e6 * (1.0 - (-(r as f64) / 900.0).exp());
                HeapRow {
                    requests: r,
                    live: (3e6 + warm + leak * r as f64) as u64,
                    quiescent: r == 0,
                    teardown: false,
                }
            })
            .collect()
    }

    #[test]
    fn the_judged_span_is_the_verdicts_fitted_readings_without_warm_up_or_teardown() {
        let mut rows = warming(20_000, 256.0);
        let n = rows.len();
        rows[n - 1].teardown = true;
        let v = judge(&[], Some(&rows), true);
        let (first, last) = judged_span(&rows, v.verdict.warmup_excluded).expect("a span");
        // The readings from the start: the one before the first request, then every 50.
        let from = rows.iter().position(|r| r.requests > 0).expect("busy") - 1;
        assert_eq!(first, rows[from + v.verdict.warmup_excluded]);
        assert_eq!(last, rows[n - 2], "the teardown reading is not judged");
        assert!(first.requests >= 3_000, "past Node's warm-up: {first:?}");
        assert_eq!(judged_span(&rows[..1], 0), None);
    }

    #[test]
    fn a_short_node_run_is_inconclusive_and_a_long_one_is_judged() {
        let short = judge(&[], Some(&warming(2_000, 0.0)), true);
        assert_eq!(short.basis, Basis::Heap);
        assert_eq!(
            short.verdict.class,
            Class::Inconclusive,
            "{}",
            short.verdict.reason
        );
        assert!(
            short.verdict.reason.contains("run ≥ 10,000"),
            "{}",
            short.verdict.reason
        );
        let clean = judge(&[], Some(&warming(20_000, 0.0)), true);
        assert!(
            matches!(clean.verdict.class, Class::Stable | Class::Bounded),
            "{}",
            clean.verdict.reason
        );
        let leak = judge(&[], Some(&warming(20_000, 256.0)), true);
        assert_eq!(leak.verdict.class, Class::Leak, "{}", leak.verdict.reason);
        let b = leak.verdict.slope.map_or(0.0, |s| s.bytes_per_request);
        assert!((b - 256.0).abs() < 0.1 * 256.0, "{b}");
    }

    #[test]
    fn a_short_node_run_is_a_leak_only_far_above_the_warm_up() {
        // Clean and warming, at any length under 5,000 requests: never a leak.
        for n in (100..5_000).step_by(100) {
            let w = judge(&[], Some(&warming(n, 0.0)), true);
            assert_ne!(w.verdict.class, Class::Leak, "{n}: {}", w.verdict.reason);
        }
        // A leak under 10× the warm-up's rate stays undecided on a short run...
        let small = judge(&[], Some(&warming(2_000, 512.0)), true);
        assert_eq!(
            small.verdict.class,
            Class::Inconclusive,
            "{}",
            small.verdict.reason
        );
        // ...while got's ~24 KB/request is decided within 2,000 requests, and says why.
        for n in [1_500, 2_000, 3_000, 4_500] {
            let w = judge(&[], Some(&warming(n, 24_000.0)), true);
            assert_eq!(w.verdict.class, Class::Leak, "{n}: {}", w.verdict.reason);
            let b = w.verdict.slope.map_or(0.0, |s| s.bytes_per_request);
            assert!((b - 24_000.0).abs() <= 0.25 * 24_000.0, "{n}: {b}");
            assert!(
                w.verdict
                    .reason
                    .contains("10× what a Node heap adds by itself"),
                "{}",
                w.verdict.reason
            );
        }
    }

    #[test]
    fn the_early_stop_settles_got_within_2000_requests_and_never_a_warming_heap() {
        let feed = |rows: &[HeapRow]| {
            let mut stop = EarlyStop::new();
            (1..=rows.len()).find_map(|i| look(&mut stop, &[], Some(&rows[..i]), true))
        };
        let got = feed(&warming(10_000, 24_000.0)).expect("settled");
        assert_eq!(
            got.verdict.verdict.class,
            Class::Leak,
            "{}",
            got.verdict.verdict.reason
        );
        assert!(got.requests <= 2_000, "settled at {}", got.requests);
        let b = got
            .verdict
            .verdict
            .slope
            .map_or(0.0, |s| s.bytes_per_request);
        assert!((b - 24_000.0).abs() <= 0.25 * 24_000.0, "{b}");
        let clean = feed(&warming(20_000, 0.0));
        assert!(
            clean
                .as_ref()
                .is_none_or(|s| s.verdict.verdict.class != Class::Leak),
            "{clean:?}"
        );
    }

    #[test]
    fn teardown_is_set_aside_and_what_it_released_is_reported() {
        // aiohttp 3.12.2's cookie jar: traced heap climbs ~480 B/request over 20,000 requests;
        // the probe's exit reading, after the session closed, is 9.7 MB lower.
        let mut rows: Vec<HeapRow> = (0..=400u64)
            .map(|i| {
                let r = i * 50;
                let jitter = ((i * 7919) % 13) as f64 * 2_000.0;
                HeapRow {
                    requests: r,
                    live: (12_600_000.0 + 480.0 * r as f64 + jitter) as u64,
                    quiescent: r == 0,
                    teardown: false,
                }
            })
            .collect();
        let last = rows.last().map_or(0, |r| r.live);
        rows.push(HeapRow {
            requests: 20_000,
            live: last - 9_700_000,
            quiescent: true,
            teardown: true,
        });
        let tree: Vec<TreeRow> = rows
            .iter()
            .map(|r| TreeRow {
                requests: r.requests,
                rss: 40_000_000,
                quiescent: r.quiescent,
                teardown: r.teardown,
            })
            .collect();
        let w = judge(&tree, Some(&rows), false);
        assert_eq!(w.verdict.class, Class::Leak, "{}", w.verdict.reason);
        let b = w.verdict.slope.map_or(0.0, |s| s.bytes_per_request);
        assert!((b - 480.0).abs() <= 0.1 * 480.0, "{b}");
        assert_eq!(w.released_at_exit, Some(9_700_000));
        let note = w.released_note().unwrap_or_default();
        assert_eq!(
            note,
            "released at exit: 9.25 MiB — memory held for the life of a session or client object"
        );
        // Nothing released, or nothing set aside: no field, no note.
        rows.last_mut().expect("rows").live = last + 1_000;
        assert_eq!(judge(&tree, Some(&rows), false).released_at_exit, None);
        assert_eq!(
            judge(&tree, Some(&rows[..400]), false).released_note(),
            None
        );
    }

    #[test]
    fn the_reason_names_the_series_judged_and_advises_no_rounds() {
        let leak = judge(&[], Some(&warming(20_000, 256.0)), true);
        assert!(
            leak.verdict.reason.starts_with("post-GC heap grew"),
            "{}",
            leak.verdict.reason
        );
        let rows: Vec<TreeRow> = (0..=100)
            .map(|i| TreeRow {
                requests: i * 100,
                rss: 60_000_000,
                quiescent: i == 0,
                teardown: false,
            })
            .collect();
        let flat = judge(&rows, None, false);
        assert!(
            flat.verdict.reason.starts_with("RSS flat"),
            "{}",
            flat.verdict.reason
        );
        for p in [heap_params_for(20_000, true), heap_params()] {
            assert!(!p.repeat_advice.contains("--rounds"), "{}", p.repeat_advice);
        }
    }

    /// `n` requests, a reading every 70, growing `leak` B/request after a flat 3,000-request
    /// warm-up, with a release of `drop` bytes at each request in `releases`.
    fn with_releases(n: u64, leak: f64, releases: &[(u64, u64)]) -> Vec<HeapRow> {
        (0..=n / 70)
            .map(|i| {
                let r = i * 70;
                let released: u64 = releases
                    .iter()
                    .filter(|(at, _)| r >= *at)
                    .map(|(_, d)| d)
                    .sum();
                // A little jitter (±8 KB), as post-GC readings have.
                let jitter = ((i * 7919) % 17) as f64 * 1_000.0;
                HeapRow {
                    requests: r,
                    live: (150e6 + leak * r as f64 + jitter) as u64 - released,
                    quiescent: r == 0,
                    teardown: false,
                }
            })
            .collect()
    }

    #[test]
    fn one_release_in_a_steady_climb_is_set_aside() {
        let rows = with_releases(10_000, 1_500.0, &[(4_724, 2_400_000)]);
        let w = judge(&[], Some(&rows), true);
        assert_eq!(w.verdict.class, Class::Leak, "{}", w.verdict.reason);
        assert!(
            w.verdict.reason.contains("one release of"),
            "{}",
            w.verdict.reason
        );
        let b = w.verdict.slope.map_or(0.0, |s| s.bytes_per_request);
        assert!((b - 1_500.0).abs() < 0.1 * 1_500.0, "{b}");
    }

    #[test]
    fn a_flat_heap_or_a_sawtooth_is_never_re_levelled_into_a_leak() {
        // Flat, one release.
        let flat = judge(
            &[],
            Some(&with_releases(10_000, 0.0, &[(5_000, 4_000_000)])),
            true,
        );
        assert_ne!(flat.verdict.class, Class::Leak, "{}", flat.verdict.reason);
        // Grows and is cleared three times: bounded by the clearing, not a leak.
        let saw = with_releases(
            10_000,
            1_500.0,
            &[(2_500, 3_700_000), (5_000, 3_700_000), (7_500, 3_700_000)],
        );
        let saw = judge(&[], Some(&saw), true);
        assert_ne!(saw.verdict.class, Class::Leak, "{}", saw.verdict.reason);
        // A step up half-way (no release at all) stays what the variants' rules say.
        let mut step = with_releases(10_000, 0.0, &[]);
        for r in step.iter_mut().filter(|r| r.requests >= 6_000) {
            r.live += 8_000_000;
        }
        let step = judge(&[], Some(&step), true);
        assert_ne!(step.verdict.class, Class::Leak, "{}", step.verdict.reason);
    }

    #[test]
    fn external_memory_is_a_part_of_its_own_and_the_slope_adds_the_parts() {
        let heap = warming(20_000, 0.0);
        // 1,040 B per request kept outside the heap (a 1 KiB ArrayBuffer's contents).
        let kept: Vec<HeapRow> = heap
            .iter()
            .map(|h| HeapRow {
                live: 1_000_000 + 1_040 * h.requests,
                ..*h
            })
            .collect();
        let w = judge_split(&[], &heap, &kept);
        assert_eq!(w.verdict.class, Class::Leak, "{}", w.verdict.reason);
        assert!(
            w.verdict.reason.starts_with("external memory"),
            "{}",
            w.verdict.reason
        );
        let split = w.split.expect("split");
        let part = |s: Option<Slope>| s.map_or(f64::NAN, |s| s.bytes_per_request);
        assert!((part(split.external) - 1_040.0).abs() < 1.0);
        let total = part(w.verdict.slope);
        assert!((total - part(split.heap) - 1_040.0).abs() < 1.0, "{total}");
        // A heap leak under an external that swings by 300 MB now and then (`next dev`'s
        // compiler): the heap decides, the swings are set aside.
        let heap = warming(20_000, 1_500.0);
        let swinging: Vec<HeapRow> = heap
            .iter()
            .enumerate()
            .map(|(i, h)| HeapRow {
                live: 60_000_000 + if i % 9 == 4 { 300_000_000 } else { 0 },
                ..*h
            })
            .collect();
        let w = judge_split(&[], &heap, &swinging);
        assert_eq!(w.verdict.class, Class::Leak, "{}", w.verdict.reason);
        assert!((part(w.verdict.slope) - 1_500.0).abs() < 0.1 * 1_500.0);
        // Neither grows: not a leak, and the parts are still shown.
        let flat: Vec<HeapRow> = heap
            .iter()
            .map(|h| HeapRow {
                live: 5_000_000,
                ..*h
            })
            .collect();
        let w = judge_split(&[], &warming(20_000, 0.0), &flat);
        assert_ne!(w.verdict.class, Class::Leak, "{}", w.verdict.reason);
        assert!(w.split.is_some());
        // Both parts in doubt (a short run with a small heap leak, 4,900 requests): the heap's
        // reason is given, not the external part's flat line (which was, once).
        let w = judge_split(&[], &warming(4_900, 1_024.0), &flat[..=98]);
        assert_eq!(w.verdict.class, Class::Inconclusive, "{}", w.verdict.reason);
        assert!(
            w.verdict.reason.contains("grew 1,") && !w.verdict.reason.contains("flat"),
            "{}",
            w.verdict.reason
        );
    }

    #[test]
    fn a_short_node_run_says_its_length_is_what_to_change() {
        // 1,225 requests read every 50: a handful of readings after the first 1,000. The
        // reason is the run's length, not "too few readings" (what a Node run that short lacks
        // is requests, whatever the pace of its readings).
        let w = judge(&[], Some(&warming(1_225, 0.0)), true);
        assert_eq!(w.verdict.class, Class::Inconclusive, "{}", w.verdict.reason);
        assert!(
            w.verdict.reason.starts_with("only 1,2") && w.verdict.reason.contains("run ≥ 10,000"),
            "{}",
            w.verdict.reason
        );
    }

    #[test]
    fn start_up_before_the_first_request_is_not_judged() {
        // 50 MB of start-up (a framework compiling), then a flat loop.
        let mut rows: Vec<TreeRow> = (0..20)
            .map(|i| TreeRow {
                requests: 0,
                rss: 10_000_000 + i * 2_500_000,
                quiescent: true,
                teardown: false,
            })
            .collect();
        rows.extend((1..=100).map(|i| TreeRow {
            requests: i * 100,
            rss: 60_000_000,
            quiescent: false,
            teardown: false,
        }));
        let w = judge(&rows, None, false);
        assert_eq!(w.basis, Basis::Rss);
        assert_eq!(w.verdict.class, Class::Stable, "{}", w.verdict.reason);
    }
}
