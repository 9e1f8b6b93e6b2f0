//! The verdict: from a run's memory series, is there a leak, and how many bytes per request?
//! Pure functions over plain data (no I/O, no clock): table-tested on synthetic series.
//!
//! # What it answers
//!
//! Given readings of a process's live heap taken every K completed requests ([`Point`]),
//! [`judge`] says whether memory grows without bound as requests keep coming, and by how many
//! bytes per request. It knows nothing about HTTP: any loop that counts iterations and reads its
//! heap (a Node.js loop, a queue consumer) can be judged the same way.
//!
//! # The classes
//!
//! | class | meaning | what to do |
//! |---|---|---|
//! | `stable` | after warm-up the live heap does not grow: the slope's 95% interval is below 16 B/request and no growth stands out of the noise | nothing |
//! | `bounded` | the heap grew — in warm-up (pools, buffers, lazy statics) or after it (a cache filling up) — then levelled off | check the plateau is a size you accept |
//! | `leak` | the heap grows steadily through the whole run, in both halves, at a rate clearly above zero | find what is retained per request; the slope says how much |
//! | `rss-only` | live heap is stable or bounded, but the resident set keeps growing | the allocator keeps freed pages (fragmentation, arenas); not a leak in the code under test |
//! | `inconclusive` | too few readings, or too noisy, or a shape that could be either (growth only late in the run, growth that comes and goes) | the reason says what to run instead |
//!
//! # Reading the numbers
//!
//! - **slope**: bytes of live heap per completed request, the Theil–Sen estimate (median of the
//!   slopes between every pair of readings), with a 95% interval `lo`–`hi` from Sen's
//!   Kendall-tau rank method. `per_million` is the slope times 10⁶: what a million more requests
//!   would add.
//! - **early/late slope**: the same estimate on the first and second half of the readings after
//!   warm-up. A leak has `late ≈ early ≈ slope`; a filling cache has `late ≈ 0`.
//! - **baseline**: the live heap at the end of warm-up (median of the first readings after it,
//!   requests in flight included).
//! - **retained after idle**: the last quiescent reading (no request in flight) minus the
//!   baseline. Because the baseline includes what in-flight requests hold, a healthy client at
//!   high concurrency reads slightly *negative* here; a leak reads about `slope × requests`.
//! - **staircase**: the same difference at the end of each `--rounds` round (one entry per round
//!   that has a quiescent reading). A leak climbs one step per round; a pool or cache is flat
//!   after the first.
//! - **noise**: the robust standard deviation (1.4826 × MAD) of the readings around the fitted
//!   line: about what requests in flight add and remove.
//! - **warm-up growth**: the baseline minus the first readings: what pools and buffers took.
//! - **points used / warm-up excluded**: busy readings the slope was fitted on, and readings cut
//!   as warm-up (more than 10% of them when the warm-up was extended, see below).
//!
//! # How the decision is made
//!
//! Every threshold is a field of [`Params`]; the defaults below are what the tool uses.
//!
//! 1. **Warm-up.** Readings before 10% of the run's requests, and at least the first 5 readings,
//!    are excluded: pools, buffers and lazy statics fill up there. If the early half of what is
//!    left still climbs *significantly* faster than the late half (early interval entirely above
//!    the late one: a ramp running past the cut), the cut moves on by 5% of the run, up to 30%.
//!    A lingering ramp would otherwise inflate a small leak's slope (a 2 MiB ramp 98% done at
//!    15% reads 16 B/request as 18–19); moving the cut can only turn a plateau into a flat tail,
//!    never a flat series into growth. Quiescent readings are left out of the slope (they lack
//!    the in-flight bytes every other reading carries, so they would bias the fit); they feed
//!    `retained` and the staircase. Fewer than 30 busy readings after warm-up: rule 1b.
//!
//!    **1b. Few readings** (6–29 after warm-up: a fast or short run read on a clock). The same
//!    shapes decide, under a stricter bar, and only where the evidence is overwhelming:
//!    - `leak` when the series is a leak at the usual 95% *and* again with every interval at
//!      99.9% (`few_z` 3.29: the overall slope above the floor, both halves above zero) with the
//!      growth over the window at least 10 noise deviations (`few_growth_sigmas`, not 1), and
//!      the overall 99.9% interval no wider than half the slope (`few_max_relative_width`: the
//!      rate known within about ±25%, the tolerance a user can act on). With 6–8 readings a
//!      half has 3–4, and a 99.9% Sen interval on so few spans every pairwise slope: both halves
//!      must rise between *every* pair of their readings. A noise deviation estimated from a
//!      handful of residuals can be small by luck; the interval-width rule does not rest on it.
//!    - `stable` (or `bounded`, by the warm-up rule of 4) when the series is flat at 95% and
//!      the 99.9% interval's upper bound is still at most 16 B/request: no leak of the smallest
//!      calibrated size, even at 99.9%. `rss-only` when RSS meets the `leak` bar above.
//!    - Anything else: `inconclusive`, saying what to run, as before. A 1 KiB/request leak under
//!      realistic noise with 15 or 29 readings stays there (its halves cannot be told apart at
//!      99.9%); an 8 KiB/request one with 15 readings under in-flight or spiky noise is decided.
//!
//!    Under 6 readings: `inconclusive`. Pinned in `tests.rs` on 4,608 clean series (8 noise
//!    shapes × 4 warm-up ramps × 6–29 readings × a reading every 10 or 100 requests × 3 seeds):
//!    0 `leak`, 585 `stable`, 227 `bounded`; planted leaks of 16 B–64 KiB/request at 6–29
//!    readings are `leak` within ±25% or `inconclusive`, never `stable`.
//! 2. **Slope and interval.** Theil–Sen is unbiased for any independent noise (the difference of
//!    two independent draws from one distribution is symmetric) and shrugs off up to 29% wild
//!    readings, so in-flight spikes and bimodal noise do not move it. Sen's interval assumes
//!    independent readings; readings taken close together are not (a burst of slow requests spans
//!    several), so the interval is widened by `sqrt((1+ρ)/(1−ρ))`, the usual AR(1) variance
//!    inflation for trend tests, with ρ the lag-1 correlation of the residuals estimated from
//!    their signs (`ρ = sin(π(p − ½))`, p = share of consecutive residuals on the same side,
//!    which spikes cannot inflate), clamped to `[0, 0.95]` (at most 6.2× wider). A series that
//!    is not a straight line (a plateau, a step, a sawtooth) leaves correlated residuals, so its
//!    interval widens too: the model's doubt becomes the verdict's doubt.
//! 3. **Significant growth** needs the interval's lower bound above 1 B/request (under 1 MB per
//!    million requests is not worth a red build) *and* the growth over the window (slope ×
//!    requests) at least one noise deviation. The second rule keeps a tight interval from
//!    deciding alone when the total growth is still inside the noise; that case is
//!    `inconclusive` with the run length that would lift it out.
//! 4. **No significant growth:** `stable` when the interval's upper bound is at most 16 B/request
//!    — the smallest leak the calibration sweep injects, so `stable` means "no leak of that
//!    size" — or `bounded` if warm-up grew the heap by at least 64 KiB and 3 noise deviations
//!    (a first reading is already part-way up the ramp, so `warmup_growth` reads low). An upper
//!    bound above 16 B/request: `inconclusive`, the interval still admits a leak.
//! 5. **Significant growth:** the halves decide.
//!    - Late slope's upper bound below half of the larger of the overall and the early slope:
//!      growth levelled off, `bounded`. (The early slope matters for a step early in the window,
//!      which drags the overall slope down but not the early one.)
//!    - Early half not significantly growing but the late half is: a one-off step or a leak that
//!      began late, `inconclusive`.
//!    - Both halves significantly above zero, the late slope at least half the overall, and the
//!      heap's *level* agreeing — Tukey's resistant line (median of the last third minus median
//!      of the first, over their distance) at least half the slope: `leak`. The level check
//!      catches growth that is released again (a buffer cleared every N requests), where the
//!      pairwise slopes lean up although nothing stays.
//!    - Anything else: `inconclusive`.
//!    - Except: a steady climb with exactly one large drop (a one-off release) is judged again
//!      with the drop added back, and is `leak` if that is (`one_release_set_aside`).
//!
//!    `leak` needs the overall interval, both halves, their ratio and the level to agree. A false
//!    leak is worse than a slow verdict, so ambiguity resolves to `inconclusive`, and the reason
//!    says how much longer to run.
//! 6. **RSS.** If live heap is `stable` or `bounded` and RSS passes the same leak test with a
//!    4 B/request floor (a 4 KiB page per thousand requests), the class is `rss-only`.
//!
//! Above 1,000 readings the fit bins consecutive readings (mean requests, median live), so the
//! O(n²) pairwise step stays near half a million slopes (a few MB, computed with `rayon`).
//!
//! # Resolution
//!
//! The slope's standard error is about `noise × 3.5 / (requests × √readings)`. At 10,000
//! requests and 1,000 readings with ±20 KiB noise that is ~0.25 B/request, so 16 B/request is
//! measured within ±1; with ±150 KiB noise 16 B/request adds up to less than the noise and the
//! verdict asks for a longer run instead of guessing. Accuracy on synthetic series, pinned by the
//! tests in `verdict/tests.rs`: with 10,000 requests, a reading every 10, a 512 KiB warm-up and
//! eight noise shapes (Gaussian, uniform ±100 KiB, 64 requests in flight, spikes to 200 KiB,
//! bimodal, AR(1) bursts, a realistic mix, none), leaks of 16, 64, 256, 1,024 and 4,096 B/request
//! are `leak` within ±10% (±2 B at 16), and flat series are never `leak`.
//!
//! # Stopping early
//!
//! [`EarlyStop`] says when a run may stop before `--requests`/`--duration` because the verdict
//! is settled either way. Looking again and again and stopping at the first `leak` would inflate
//! false leaks (optional stopping), and a look long before the end sees more of the program's
//! warm-up than the run's 10%; so:
//! - **Looks** only at `1,000 × 2^(k/2)` requests (125, 177, 250, …, 1,000, 1,414, 2,000, …):
//!   about 7 looks per decade, however often readings come.
//! - At a look the readings are judged at 95% **and** at 99% ([`LOOK_Z`]); the look may stop
//!   only on a class both give.
//! - **Settled** when two looks in a row may stop on the same class.
//! - `leak` also needs the rate not to have moved: the previous look's slope inside this look's
//!   99% interval (or within 5% of it), and no slowdown inside the window: the late half's 99%
//!   interval at most half the slope wide, and the early half's rate not above it by more than
//!   5%. A warm-up ramp seen part-way grows ever more slowly (its halves read 0.6–0.92 of each
//!   other where it mimics a leak); a leak does not.
//! - `bounded` and `rss-only` also need the late half's 99% upper bound at most 16 B/request:
//!   a small leak behind a long warm-up must not stop as a plateau.
//!
//! Pinned in `tests.rs`, looks simulated reading by reading: on 288 clean series (8 noise
//! shapes × 4 ramps × 1,000/3,000/10,000 requests × 3 seeds), with looks going on after a
//! settled verdict, **0** pairs of looks settle on `leak` (96 settle `stable`, 46 `bounded`,
//! the rest run to the end). Planted leaks (16–4,096 B/request under a 512 KiB warm-up, up to
//! 20,000 requests, a reading every 20) all settle as `leak` within ±25% or run to the end and
//! are judged `leak` there (74 of 80 settle early); median requests to the verdict: 16 B →
//! 11,320; 64 B → 8,000; 256 B → 8,000; 1 KiB → 4,000; 4 KiB → 2,000. The price of safety is
//! that a leak under a warm-up settles only once the window has left the warm-up behind.
//!
//! # Example
//!
//! ```
//! use leak_client::verdict::{judge, Class, Params, Point};
//!
//! // 8 B retained per request, a reading every 10 requests, a little jitter.
//! let points: Vec<Point> = (1..=1_000u64)
//!     .map(|i| Point {
//!         requests: i * 10,
//!         live: (1 << 20) + i * 80 + (i * 7919 % 13) * 256,
//!         rss: None,
//!         quiescent: false,
//!         round: 0,
//!     })
//!     .collect();
//! let verdict = judge(&points, &Params::default());
//! assert_eq!(verdict.class, Class::Leak);
//! println!("{verdict}"); // live heap grew 8.0 B/request (95% CI …) steadily through the run …
//! ```

// The decision policy (warm-up, shapes, classes) is this file; the robust statistics it rests on
// are `stats.rs`, the sentences it prints `reasons.rs`, the table tests `tests.rs`; when a run
// may stop early is `early_stop.rs`.
mod early_stop;
mod reasons;
mod stats;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use early_stop::{EarlyStop, LOOK_Z, Settled, look_params};
use stats::{Fit, Trend, median, round_i64, trend};

/// One memory reading of a measured process, as the verdict sees it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Completed requests (ok + errors) when the reading was taken: the x axis.
    pub requests: u64,
    /// Live heap bytes (the counting allocator): the y axis the verdict judges.
    pub live: u64,
    /// Resident set size in bytes, when known.
    pub rss: Option<u64>,
    /// Taken while every worker was idle (between rounds, during linger, at the end).
    pub quiescent: bool,
    /// 0-based round the reading belongs to (`--rounds`).
    pub round: u32,
}

/// The thresholds of the decision; [`Params::default`] is what the tool uses and what the module
/// docs justify.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Readings before this fraction of the run's requests are warm-up (default 0.10).
    pub warmup_fraction: f64,
    /// The warm-up may be extended, in steps of 5%, up to this fraction (default 0.30).
    pub max_warmup_fraction: f64,
    /// At least this many first readings are warm-up, however short the run (default 5).
    pub warmup_min_points: usize,
    /// Fewer busy readings than this after warm-up are judged under the stricter bar of
    /// "few readings", rule 1b (default 30).
    pub min_points: usize,
    /// Fewer busy readings than this after warm-up are always `inconclusive` (default 6: with
    /// 3 per half, a half's 99.9% interval is the range of its 3 pairwise slopes).
    pub few_min_points: usize,
    /// Normal quantile of the intervals with few readings (default 3.29: 99.9%).
    pub few_z: f64,
    /// With few readings, growth over the window must reach this many noise deviations for a
    /// `leak` (default 10).
    pub few_growth_sigmas: f64,
    /// With few readings, a `leak`'s interval (at `few_z`) must be at most this fraction of the
    /// slope wide (default 0.5: the slope known within about ±25%).
    pub few_max_relative_width: f64,
    /// The smallest change of the series that its source can show, bytes (default 0: the
    /// counting allocator is exact to the byte). `stable` needs the window to span at least
    /// `resolution / stable_ceiling` requests: a series that moves in steps (RSS, by pages)
    /// is flat over a short window whatever leaks.
    pub resolution: f64,
    /// Above this many readings the fit bins consecutive readings (default 1,000).
    pub max_fit_points: usize,
    /// Two-sided normal quantile of the intervals (default 1.96: 95%).
    pub z: f64,
    /// A leak's interval must lie above this many bytes/request (default 1.0).
    pub leak_floor: f64,
    /// `stable` needs the interval's upper bound at or below this many bytes/request (default 16).
    pub stable_ceiling: f64,
    /// Growth over the window must reach this many noise deviations to count (default 1.0).
    pub min_growth_sigmas: f64,
    /// Late slope (upper bound) below this fraction of the larger of the overall and the early
    /// slope is a plateau; a leak needs the late slope at or above this fraction of the overall
    /// one (default 0.5).
    pub plateau_ratio: f64,
    /// Warm-up growth of at least this many bytes makes a flat run `bounded` (default 64 KiB)...
    pub bounded_min_bytes: f64,
    /// ...and of at least this many noise deviations (default 3.0).
    pub bounded_min_sigmas: f64,
    /// RSS's interval must lie above this many bytes/request for `rss-only` (default 4.0).
    pub rss_floor: f64,
    /// What the judged series is called in the reason (default "live heap"; `watch` judges a
    /// post-GC heap or RSS).
    pub series: &'static str,
    /// The reason's advice for a second look besides more requests (default " or use --rounds
    /// 3"; `watch` has no rounds: the loop is kicked again).
    pub repeat_advice: &'static str,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            warmup_fraction: 0.10,
            max_warmup_fraction: 0.30,
            warmup_min_points: 5,
            min_points: 30,
            few_min_points: 6,
            few_z: 3.29,
            few_growth_sigmas: 10.0,
            few_max_relative_width: 0.5,
            resolution: 0.0,
            max_fit_points: 1_000,
            z: 1.96,
            leak_floor: 1.0,
            stable_ceiling: 16.0,
            min_growth_sigmas: 1.0,
            plateau_ratio: 0.5,
            bounded_min_bytes: 64.0 * 1024.0,
            bounded_min_sigmas: 3.0,
            rss_floor: 4.0,
            series: "live heap",
            repeat_advice: " or use --rounds 3",
        }
    }
}

/// What the memory series says about the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// No growth after warm-up beyond noise.
    Stable,
    /// Grew (warm-up, or a cache filling), then levelled off.
    Bounded,
    /// Grows steadily with requests.
    Leak,
    /// Live heap stable or bounded, resident set growing: allocator retention.
    RssOnly,
    /// Not enough evidence either way; the reason says what to run instead.
    Inconclusive,
}

impl Class {
    /// The lowercase name used in reports and JSON (`"rss-only"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Stable => "stable",
            Class::Bounded => "bounded",
            Class::Leak => "leak",
            Class::RssOnly => "rss-only",
            Class::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A growth rate in bytes per request with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slope {
    /// Theil–Sen estimate, bytes per completed request.
    pub bytes_per_request: f64,
    /// Lower bound of the 95% interval.
    pub lo: f64,
    /// Upper bound of the 95% interval.
    pub hi: f64,
    /// Projected growth over a million requests, bytes (`bytes_per_request × 10⁶`).
    pub per_million: i64,
}

impl Slope {
    fn from_fit(fit: &Fit) -> Self {
        Self {
            bytes_per_request: fit.slope,
            lo: fit.lo,
            hi: fit.hi,
            per_million: round_i64(fit.slope * 1e6),
        }
    }
}

/// The judgement of one run; `Display` prints the one-sentence reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The class (serialized `"stable"`, `"bounded"`, `"leak"`, `"rss-only"`, `"inconclusive"`).
    pub class: Class,
    /// One sentence: the evidence, the class, and for `inconclusive` what to run instead.
    pub reason: String,
    /// Live heap growth per request after warm-up; `None` with fewer than two readings.
    pub slope: Option<Slope>,
    /// The slope over the first half of the readings after warm-up.
    pub early_slope: Option<Slope>,
    /// The slope over the second half: near zero when growth has levelled off.
    pub late_slope: Option<Slope>,
    /// Resident set growth per request after warm-up, when RSS was read.
    pub rss_slope: Option<Slope>,
    /// Live heap at the end of warm-up (busy readings), bytes.
    pub baseline: Option<i64>,
    /// Live heap growth during warm-up: `baseline` minus the first readings.
    pub warmup_growth: Option<i64>,
    /// Last quiescent reading minus `baseline`, bytes.
    /// (Not `memory.retained_after_idle` of the summary, which is measured from the live heap
    /// before the first request.)
    #[serde(alias = "retained_after_idle")]
    pub retained_vs_baseline: Option<i64>,
    /// Last quiescent reading of each round minus `baseline`, in round order.
    pub staircase: Vec<i64>,
    /// Robust standard deviation of live heap around the fit, bytes.
    pub noise: Option<i64>,
    /// Busy readings after warm-up the slope was fitted on.
    pub points_used: usize,
    /// Readings excluded as warm-up (beyond 10% of the run when a lingering ramp extended it).
    pub warmup_excluded: usize,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Judges a run's readings (any order) under `params`.
pub fn judge(points: &[Point], params: &Params) -> Verdict {
    let v = judge_series(points, params);
    one_release_set_aside(points, &v, params).unwrap_or(v)
}

/// [`judge`] without the one-release rule.
fn judge_series(points: &[Point], params: &Params) -> Verdict {
    let mut pts = points.to_vec();
    pts.sort_by_key(|p| p.requests);
    let total = pts.last().map_or(0, |p| p.requests);

    // Warm-up: start at `warmup_fraction`; while the early half still climbs significantly faster
    // than the late half (a ramp running past the cut), move the cut on by 5% of the run.
    let mut fraction = params.warmup_fraction;
    let mut window = Window::after(&pts, fraction, params);
    while fraction + WARMUP_STEP <= params.max_warmup_fraction + 1e-9 {
        let steeper_early = match window.live.as_ref() {
            Some(Trend {
                early: Some(e),
                late: Some(l),
                ..
            }) => e.lo > l.hi,
            _ => false,
        };
        if !steeper_early {
            break;
        }
        // Never from enough readings into few, nor from few into too few.
        let keep = if window.fit.len() >= params.min_points {
            params.min_points
        } else {
            params.few_min_points
        };
        let next = Window::after(&pts, fraction + WARMUP_STEP, params);
        if next.fit.len() < keep {
            break;
        }
        fraction += WARMUP_STEP;
        window = next;
    }
    let Window {
        excluded,
        fit: fit_pts,
        live,
    } = window;
    let n = fit_pts.len();

    let baseline = {
        let k = (n / 20).max(3).min(n);
        median(
            &mut fit_pts[..k]
                .iter()
                .map(|p| p.live as f64)
                .collect::<Vec<_>>(),
        )
    };
    let start = median(
        &mut pts
            .iter()
            .take(3)
            .map(|p| p.live as f64)
            .collect::<Vec<_>>(),
    );
    let warmup_growth = match (baseline, start) {
        (Some(b), Some(s)) => Some(b - s),
        _ => None,
    };
    let (retained_vs_baseline, staircase) = idle_readings(&pts, baseline);

    let (rx, ry): (Vec<f64>, Vec<f64>) = fit_pts
        .iter()
        .filter_map(|p| p.rss.map(|r| (p.requests as f64, r as f64)))
        .unzip();
    let rss_needs = if n >= params.min_points {
        params.min_points
    } else {
        params.few_min_points
    };
    let rss = if rx.len() >= rss_needs {
        trend(&rx, &ry, params.max_fit_points, params.z)
    } else {
        None
    };

    let mut verdict = Verdict {
        class: Class::Inconclusive,
        reason: String::new(),
        slope: live.as_ref().map(|t| Slope::from_fit(&t.all)),
        early_slope: live
            .as_ref()
            .and_then(|t| t.early.as_ref())
            .map(Slope::from_fit),
        late_slope: live
            .as_ref()
            .and_then(|t| t.late.as_ref())
            .map(Slope::from_fit),
        rss_slope: rss.as_ref().map(|t| Slope::from_fit(&t.all)),
        baseline: baseline.map(round_i64),
        warmup_growth: warmup_growth.map(round_i64),
        retained_vs_baseline,
        staircase,
        noise: live.as_ref().map(|t| round_i64(t.sigma)),
        points_used: n,
        warmup_excluded: excluded,
    };

    let live = match live {
        Some(t) if n >= params.min_points => t,
        Some(t) if n >= params.few_min_points => {
            let (class, reason) =
                decide_few(&t, &fit_pts, warmup_growth.unwrap_or(0.0), &pts, params);
            verdict.class = class;
            verdict.reason = reason;
            return verdict;
        }
        _ => {
            verdict.reason = reasons::too_few_readings(n, &pts, params);
            return verdict;
        }
    };

    let (class, reason) = decide(
        &live,
        rss.as_ref(),
        warmup_growth.unwrap_or(0.0),
        total,
        params,
    );
    verdict.class = class;
    verdict.reason = reason;
    verdict
}

/// How far one extension of the warm-up moves the cut, as a fraction of the run's requests.
const WARMUP_STEP: f64 = 0.05;

/// The readings after a warm-up cut and the live heap's trend over them.
struct Window<'a> {
    /// Readings excluded as warm-up (from the start of the sorted series).
    excluded: usize,
    /// The readings the slope is fitted on.
    fit: Vec<&'a Point>,
    live: Option<Trend>,
}

impl<'a> Window<'a> {
    /// Cuts the readings before `fraction` of the run's requests (and at least the first
    /// `warmup_min_points`) from `pts`, sorted by requests, and fits the rest.
    fn after(pts: &'a [Point], fraction: f64, params: &Params) -> Self {
        let total = pts.last().map_or(0, |p| p.requests);
        let cut = fraction * total as f64;
        let before_cut = pts.iter().take_while(|p| (p.requests as f64) < cut).count();
        let excluded = before_cut.max(params.warmup_min_points).min(pts.len());
        let window = &pts[excluded..];
        let busy: Vec<&Point> = window.iter().filter(|p| !p.quiescent).collect();
        // A series with few busy readings (a process sampled only at rest) is judged on what it
        // has.
        let fit: Vec<&Point> =
            if busy.len() < params.min_points && window.len() >= params.min_points {
                window.iter().collect()
            } else {
                busy
            };
        let xs: Vec<f64> = fit.iter().map(|p| p.requests as f64).collect();
        let ys: Vec<f64> = fit.iter().map(|p| p.live as f64).collect();
        let live = trend(&xs, &ys, params.max_fit_points, params.z);
        Self {
            excluded,
            fit,
            live,
        }
    }
}

/// The shape of one series after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// No significant growth, and the interval rules out a leak of `stable_ceiling`.
    Flat,
    /// No significant growth, but the interval is too wide to rule out a leak.
    TooNoisy,
    /// A significant slope whose total growth is still within the noise.
    BelowNoise,
    /// Grew, then levelled off.
    Plateau,
    /// Grew in the late half only.
    LateOnly,
    /// Grew overall, but the halves cannot tell levelling off from steady growth.
    Undecided,
    /// Pairwise slopes grow but the level does not: growth that comes and goes.
    Unsteady,
    /// Grows steadily.
    Growing,
}

/// A release smaller than this is never set aside (see [`one_release_set_aside`]).
pub const MIN_RELEASE: u64 = 1 << 20;
/// A release is at least this many times the median change between two readings.
const RELEASE_VS_MEDIAN_STEP: f64 = 10.0;

/// A heap that grows steadily can drop once mid-run when something of the program's own is
/// released: a cache cleared once, or a runtime's or framework's own memory (next@14.2.0-canary.62
/// under `next dev`, judged by `watch` on its post-GC heap: +1.5 KB per request for 10,000
/// requests, and one drop of 2.4 MB near request 4,700). The drop drags the early half's slope
/// down and widens its interval, so rule 5 (both halves must grow) reads "a step, or a leak that
/// began late": `inconclusive`.
///
/// Only in exactly that case — the whole run's slope significant, the late half growing, the
/// early half not significantly — and only if the series has **exactly one** drop between two
/// readings of at least [`MIN_RELEASE`] and [`RELEASE_VS_MEDIAN_STEP`] times the median change,
/// the drop (plus the run's own rate across that interval) is added back to every later
/// reading and the series judged again. If that is a `leak`, it is the verdict, and its reason
/// says what was set aside. A heap that is cleared again and again (a sawtooth: several drops)
/// is never re-levelled, and a flat heap with one drop re-levels to a step, which the rules
/// call `bounded` or `inconclusive`, never `leak`.
fn one_release_set_aside(points: &[Point], v: &Verdict, params: &Params) -> Option<Verdict> {
    let (Some(all), Some(early), Some(late)) = (v.slope, v.early_slope, v.late_slope) else {
        return None;
    };
    let late_only = v.class == Class::Inconclusive
        && all.lo > params.leak_floor
        && early.lo <= 0.0
        && late.lo > 0.0;
    if !late_only {
        return None;
    }
    let mut pts = points.to_vec();
    pts.sort_by_key(|p| p.requests);
    let mut steps: Vec<u64> = pts
        .windows(2)
        .map(|w| w[1].live.abs_diff(w[0].live))
        .collect();
    if steps.is_empty() {
        return None;
    }
    steps.sort_unstable();
    let median = steps[steps.len() / 2] as f64;
    let threshold = (MIN_RELEASE as f64).max(RELEASE_VS_MEDIAN_STEP * median);
    let drops: Vec<(usize, u64)> = pts
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1].live < w[0].live && (w[0].live - w[1].live) as f64 >= threshold)
        .map(|(i, w)| (i + 1, w[0].live - w[1].live))
        .collect();
    let [(at, drop)] = drops[..] else {
        return None;
    };
    let at_requests = pts[at].requests;
    // Back to where the run's own rate would have taken it across that interval.
    let expected = (all.bytes_per_request.max(0.0)
        * at_requests.saturating_sub(pts[at - 1].requests) as f64) as u64;
    for p in &mut pts[at..] {
        p.live += drop + expected;
    }
    let mut again = judge_series(&pts, params);
    if again.class != Class::Leak {
        return None;
    }
    again.reason = format!(
        "one release of {} at {} requests set aside (the heap grew steadily before and after \
         it): {}",
        crate::units::bytes(drop as f64),
        crate::units::count(at_requests),
        again.reason
    );
    Some(again)
}

fn shape(t: &Trend, floor: f64, params: &Params) -> Shape {
    let b = t.all.slope;
    if t.all.lo <= floor || b * t.span < params.min_growth_sigmas * t.sigma {
        return if t.all.hi <= params.stable_ceiling {
            Shape::Flat
        } else if t.all.lo > floor {
            Shape::BelowNoise
        } else {
            Shape::TooNoisy
        };
    }
    let (Some(early), Some(late)) = (&t.early, &t.late) else {
        return Shape::Undecided;
    };
    let keeps_up = params.plateau_ratio * b;
    // Against the early half's rate too: a step early in the window drags the overall slope
    // down, not the early one.
    if late.hi < params.plateau_ratio * b.max(early.slope) {
        return Shape::Plateau;
    }
    if early.lo <= 0.0 {
        return if late.lo > 0.0 {
            Shape::LateOnly
        } else {
            Shape::Undecided
        };
    }
    if late.lo <= 0.0 || late.slope < keeps_up {
        return Shape::Undecided;
    }
    if t.resistant < keeps_up {
        return Shape::Unsteady;
    }
    Shape::Growing
}

/// The class of a series from its live heap's shape (and RSS's), with the reason's wording from
/// `reasons`.
fn decide(
    live: &Trend,
    rss: Option<&Trend>,
    warmup_growth: f64,
    total: u64,
    p: &Params,
) -> (Class, String) {
    let live_shape = shape(live, p.leak_floor, p);
    let class = match live_shape {
        Shape::Growing => Class::Leak,
        Shape::Plateau => Class::Bounded,
        Shape::Flat => {
            let grew = warmup_growth >= p.bounded_min_bytes.max(p.bounded_min_sigmas * live.sigma);
            if grew { Class::Bounded } else { Class::Stable }
        }
        Shape::TooNoisy
        | Shape::BelowNoise
        | Shape::LateOnly
        | Shape::Undecided
        | Shape::Unsteady => Class::Inconclusive,
    };

    if matches!(class, Class::Stable | Class::Bounded) {
        if let Some(rss) = rss {
            if shape(rss, p.rss_floor, p) == Shape::Growing {
                return (Class::RssOnly, reasons::rss_only(class, live, rss));
            }
        }
    }
    if class == Class::Stable && too_short_to_resolve(live, p) {
        return (Class::Inconclusive, reasons::below_resolution(live, p));
    }
    let reason = reasons::live_heap(live_shape, class, live, warmup_growth, total, p);
    (class, reason)
}

/// Whether a leak of `stable_ceiling` would have moved the series by less than its
/// `resolution` over the window: then a flat series says nothing.
fn too_short_to_resolve(live: &Trend, p: &Params) -> bool {
    live.span * p.stable_ceiling < p.resolution
}

/// The class of a series with `few_min_points ≤ n < min_points` readings after warm-up
/// (`live` fitted at `z`): `leak` where the growth is overwhelming, `stable`/`bounded` where the
/// slope is tightly bounded near zero (module docs, rule 1b); anything else `inconclusive`,
/// with the run that would give enough readings.
fn decide_few(
    live: &Trend,
    fit_pts: &[&Point],
    warmup_growth: f64,
    pts: &[Point],
    p: &Params,
) -> (Class, String) {
    let n = fit_pts.len();
    let total = pts.last().map_or(0, |q| q.requests);
    let too_few = || (Class::Inconclusive, reasons::too_few_readings(n, pts, p));
    let xs: Vec<f64> = fit_pts.iter().map(|q| q.requests as f64).collect();
    let ys: Vec<f64> = fit_pts.iter().map(|q| q.live as f64).collect();
    let Some(strict) = trend(&xs, &ys, p.max_fit_points, p.few_z) else {
        return too_few();
    };
    let live_shape = shape(live, p.leak_floor, p);
    if overwhelming(live, &strict, p.leak_floor, p) {
        let reason = reasons::live_heap(live_shape, Class::Leak, live, warmup_growth, total, p);
        return (Class::Leak, reasons::few_readings(&reason, n, &strict, p));
    }
    if live_shape != Shape::Flat || strict.all.hi > p.stable_ceiling {
        return too_few();
    }
    let grew = warmup_growth >= p.bounded_min_bytes.max(p.bounded_min_sigmas * live.sigma);
    let class = if grew { Class::Bounded } else { Class::Stable };
    if class == Class::Stable && too_short_to_resolve(live, p) {
        return (Class::Inconclusive, reasons::below_resolution(live, p));
    }
    let (rx, ry): (Vec<f64>, Vec<f64>) = fit_pts
        .iter()
        .filter_map(|q| q.rss.map(|r| (q.requests as f64, r as f64)))
        .unzip();
    if rx.len() >= p.few_min_points {
        let rss_loose = trend(&rx, &ry, p.max_fit_points, p.z);
        let rss_strict = trend(&rx, &ry, p.max_fit_points, p.few_z);
        if let (Some(l), Some(s)) = (rss_loose, rss_strict) {
            if overwhelming(&l, &s, p.rss_floor, p) {
                let reason = reasons::rss_only(class, live, &l);
                return (Class::RssOnly, reasons::few_readings(&reason, n, &s, p));
            }
        }
    }
    let reason = reasons::live_heap(live_shape, class, live, warmup_growth, total, p);
    (class, reasons::few_readings(&reason, n, &strict, p))
}

/// Growth that few readings suffice for: the shape of a leak both at the usual z (`loose`) and
/// at `few_z` (`strict`, every interval at 99.9%: the overall slope above `floor`, both halves
/// above zero) with growth over the window of `few_growth_sigmas` noise deviations, and the
/// overall interval at `few_z` no wider than `few_max_relative_width` of the slope.
fn overwhelming(loose: &Trend, strict: &Trend, floor: f64, p: &Params) -> bool {
    let bar = Params {
        min_growth_sigmas: p.few_growth_sigmas,
        ..p.clone()
    };
    shape(loose, floor, p) == Shape::Growing
        && shape(strict, floor, &bar) == Shape::Growing
        && strict.all.hi - strict.all.lo <= p.few_max_relative_width * strict.all.slope
}

/// Retained-after-idle and the per-round staircase, both relative to `baseline`.
fn idle_readings(pts: &[Point], baseline: Option<f64>) -> (Option<i64>, Vec<i64>) {
    let Some(base) = baseline else {
        return (None, Vec::new());
    };
    let rel = |p: &Point| round_i64(p.live as f64 - base);
    let retained = pts.iter().rfind(|p| p.quiescent).map(rel);
    let mut rounds: Vec<u32> = pts
        .iter()
        .filter(|p| p.quiescent)
        .map(|p| p.round)
        .collect();
    rounds.sort_unstable();
    rounds.dedup();
    let staircase = rounds
        .into_iter()
        .filter_map(|r| pts.iter().rfind(|p| p.quiescent && p.round == r).map(rel))
        .collect();
    (retained, staircase)
}
