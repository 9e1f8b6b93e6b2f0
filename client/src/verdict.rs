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
//!    `retained` and the staircase. Fewer than 30 busy readings after warm-up: `inconclusive`.
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
//! tests below: with 10,000 requests, a reading every 10, a 512 KiB warm-up and eight noise
//! shapes (Gaussian, uniform ±100 KiB, 64 requests in flight, spikes to 200 KiB, bimodal, AR(1)
//! bursts, a realistic mix, none), leaks of 16, 64, 256, 1,024 and 4,096 B/request are `leak`
//! within ±10% (±2 B at 16), and flat series are never `leak`.
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

use std::fmt;

use rayon::prelude::*;

use crate::units;
use serde::{Deserialize, Serialize};

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
    /// Fewer busy readings than this after warm-up is `inconclusive` (default 30).
    pub min_points: usize,
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
}

impl Default for Params {
    fn default() -> Self {
        Self {
            warmup_fraction: 0.10,
            max_warmup_fraction: 0.30,
            warmup_min_points: 5,
            min_points: 30,
            max_fit_points: 1_000,
            z: 1.96,
            leak_floor: 1.0,
            stable_ceiling: 16.0,
            min_growth_sigmas: 1.0,
            plateau_ratio: 0.5,
            bounded_min_bytes: 64.0 * 1024.0,
            bounded_min_sigmas: 3.0,
            rss_floor: 4.0,
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

impl fmt::Display for Slope {
    /// `1,024 B/request (95% CI 1,010–1,038)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} B/request (95% CI {}–{})",
            units::rate(self.bytes_per_request),
            units::rate(self.lo),
            units::rate(self.hi)
        )
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
    pub retained_after_idle: Option<i64>,
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
        let next = Window::after(&pts, fraction + WARMUP_STEP, params);
        if next.fit.len() < params.min_points {
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
    let (retained_after_idle, staircase) = idle_readings(&pts, baseline);

    let (rx, ry): (Vec<f64>, Vec<f64>) = fit_pts
        .iter()
        .filter_map(|p| p.rss.map(|r| (p.requests as f64, r as f64)))
        .unzip();
    let rss = if rx.len() >= params.min_points {
        trend(&rx, &ry, params)
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
        retained_after_idle,
        staircase,
        noise: live.as_ref().map(|t| round_i64(t.sigma)),
        points_used: n,
        warmup_excluded: excluded,
    };

    let live = match live {
        Some(t) if n >= params.min_points => t,
        _ => {
            let needed = requests_needed(&pts, params);
            verdict.reason = format!(
                "only {n} readings after warm-up (need ≥ {}): inconclusive, run ≥ {} requests \
                 or read memory more often",
                params.min_points,
                units::count(needed)
            );
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
        let live = trend(&xs, &ys, params);
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

fn decide(
    live: &Trend,
    rss: Option<&Trend>,
    warmup_growth: f64,
    total: u64,
    p: &Params,
) -> (Class, String) {
    let s = Slope::from_fit(&live.all);
    let b = live.all.slope;
    let noise = units::bytes(live.sigma);
    let late = live.late.as_ref().map(Slope::from_fit);
    let late_txt = late.map_or_else(
        || "n/a".to_string(),
        |l| format!("{} B/request", units::rate(l.bytes_per_request)),
    );
    let early_txt = live.early.as_ref().map_or_else(
        || "n/a".to_string(),
        |e| format!("{} B/request", units::rate(e.slope)),
    );
    let twice = units::count(round_up_nice(total as f64 * 2.0));

    let live_shape = shape(live, p.leak_floor, p);
    let (class, reason) = match live_shape {
        Shape::Growing => (
            Class::Leak,
            format!(
                "live heap grew {s} steadily through the run (early {early_txt}, late {late_txt}): \
                 leak, {} per million requests",
                units::bytes(s.per_million as f64)
            ),
        ),
        Shape::Plateau => (
            Class::Bounded,
            format!(
                "live heap grew {} after warm-up, then levelled off (late slope {late_txt} vs {} \
                 B/request overall): bounded, like a cache filling up",
                units::bytes(live.growth),
                units::rate(b)
            ),
        ),
        Shape::Flat => {
            let grew = warmup_growth >= p.bounded_min_bytes.max(p.bounded_min_sigmas * live.sigma);
            if grew {
                (
                    Class::Bounded,
                    format!(
                        "grew {} in warm-up, then flat ({s}, noise ±{noise}): bounded, like a pool \
                         or cache",
                        units::bytes(warmup_growth)
                    ),
                )
            } else {
                (
                    Class::Stable,
                    format!("live heap flat after warm-up ({s}, noise ±{noise}): stable"),
                )
            }
        }
        Shape::TooNoisy => {
            // The interval narrows as requests^1.5 at a fixed reading interval.
            let half = ((live.all.hi - live.all.lo) / 2.0).max(f64::MIN_POSITIVE);
            let factor = (half / (p.stable_ceiling / 2.0))
                .powf(2.0 / 3.0)
                .ceil()
                .max(2.0);
            (
                Class::Inconclusive,
                format!(
                    "live heap slope {s} is too uncertain to rule out a leak (noise ±{noise}): \
                     inconclusive, run ≥ {} requests",
                    units::count(round_up_nice(total as f64 * factor))
                ),
            )
        }
        Shape::BelowNoise => {
            let factor = (p.min_growth_sigmas * live.sigma / (b * live.span).max(1.0)).max(1.0);
            (
                Class::Inconclusive,
                format!(
                    "live heap slope {s} adds up to only {} after warm-up, within the noise \
                     (±{noise}): inconclusive, run ≥ {} requests",
                    units::bytes(b * live.span),
                    units::count(round_up_nice(total as f64 * (factor * 1.25).max(2.0)))
                ),
            )
        }
        Shape::LateOnly => (
            Class::Inconclusive,
            format!(
                "live heap was flat in the first half after warm-up (early {early_txt}) and grew in \
                 the second (late {late_txt}), a one-off step or a leak that began late: \
                 inconclusive, run ≥ {twice} requests or use --rounds 3"
            ),
        ),
        Shape::Undecided => (
            Class::Inconclusive,
            format!(
                "live heap grew {s} but the halves cannot tell a plateau from steady growth \
                 (early {early_txt}, late {late_txt}): inconclusive, run ≥ {twice} requests"
            ),
        ),
        Shape::Unsteady => (
            Class::Inconclusive,
            format!(
                "pairwise slopes lean up ({s}) but the heap's level barely moves ({} B/request \
                 between first and last third), growth that is released again: inconclusive, run ≥ \
                 {twice} requests or use --rounds 3",
                units::rate(live.resistant)
            ),
        ),
    };

    if matches!(class, Class::Stable | Class::Bounded) {
        if let Some(rss) = rss {
            if shape(rss, p.rss_floor, p) == Shape::Growing {
                return (
                    Class::RssOnly,
                    format!(
                        "live heap {} ({} B/request) but RSS grew {}: rss-only, the allocator keeps \
                         freed memory, not a leak in the code under test",
                        if class == Class::Stable {
                            "flat"
                        } else {
                            "levelled off"
                        },
                        units::rate(b),
                        Slope::from_fit(&rss.all)
                    ),
                );
            }
        }
    }
    (class, reason)
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

/// Requests a rerun needs for `min_points` readings after warm-up, at this run's reading interval.
fn requests_needed(pts: &[Point], p: &Params) -> u64 {
    let total = pts.last().map_or(0, |q| q.requests);
    let busy = pts
        .iter()
        .filter(|q| !q.quiescent && q.requests > 0)
        .count()
        .max(1);
    let every = if total == 0 {
        10.0
    } else {
        total as f64 / busy as f64
    };
    let readings = (p.min_points + p.warmup_min_points) as f64;
    let needed =
        (readings * every / (1.0 - p.warmup_fraction.clamp(0.0, 0.9))).max(total as f64 * 2.0);
    round_up_nice(needed.max(1_000.0))
}

/// Rounds up to two significant digits: 3,371 → 3,400.
fn round_up_nice(v: f64) -> u64 {
    let mag = 10f64.powf((v.log10().floor() - 1.0).max(0.0));
    ((v / mag).ceil() * mag) as u64
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// The largest residual autocorrelation the interval is widened for: `sqrt(1.95/0.05)`, 6.2×.
const MAX_RHO: f64 = 0.95;

/// A Theil–Sen fit with Sen's interval.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    slope: f64,
    lo: f64,
    hi: f64,
    intercept: f64,
    /// Lag-1 autocorrelation of the residuals used to widen the interval.
    rho: f64,
}

/// Theil–Sen slope of `ys` on `xs` (sorted by x), the median of all pairwise slopes, with
/// Sen's rank interval at normal quantile `z`, widened for residual autocorrelation. Pairs with
/// equal x are skipped. `None` without a single pair of distinct x.
fn theil_sen(xs: &[f64], ys: &[f64], z: f64) -> Option<Fit> {
    let n = xs.len().min(ys.len());
    let pair_slopes = |i: usize| {
        (i + 1..n).filter_map(move |j| {
            let dx = xs[j] - xs[i];
            (dx != 0.0).then(|| (ys[j] - ys[i]) / dx)
        })
    };
    let mut slopes: Vec<f64> = if n >= 128 {
        (0..n).into_par_iter().flat_map_iter(pair_slopes).collect()
    } else {
        (0..n).flat_map(pair_slopes).collect()
    };
    let slope = median(&mut slopes)?;
    let offsets: Vec<f64> = xs.iter().zip(ys).map(|(x, y)| y - slope * x).collect();
    let intercept = median(&mut offsets.clone())?;
    // In x order: the autocorrelation below reads neighbours.
    let residuals: Vec<f64> = offsets.iter().map(|o| o - intercept).collect();
    let rho = sign_autocorrelation(&residuals).clamp(0.0, MAX_RHO);

    let count = slopes.len() as f64;
    let nf = n as f64;
    let var_s = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0 * (1.0 + rho) / (1.0 - rho);
    let c = z * var_s.sqrt();
    let last = slopes.len() - 1;
    // Hollander & Wolfe: the M1-th and (M2 + 1)-th ordered slopes, 1-based.
    let m1 = ((count - c) / 2.0).round();
    let m2 = ((count + c) / 2.0).round();
    let lo_idx = if m1 >= 1.0 {
        ((m1 - 1.0) as usize).min(last)
    } else {
        0
    };
    let hi_idx = if m2 >= 0.0 {
        (m2 as usize).min(last)
    } else {
        0
    };
    let lo = kth(&mut slopes, lo_idx);
    let hi = kth(&mut slopes, hi_idx);
    Some(Fit {
        slope,
        lo: lo.min(slope),
        hi: hi.max(slope),
        intercept,
        rho,
    })
}

/// Lag-1 autocorrelation from residual signs: for a Gaussian AR(1) series, consecutive values
/// share a sign with probability ½ + arcsin(ρ)/π. Zero residuals are skipped.
fn sign_autocorrelation(residuals: &[f64]) -> f64 {
    let signs: Vec<bool> = residuals
        .iter()
        .filter(|r| **r != 0.0)
        .map(|r| *r > 0.0)
        .collect();
    if signs.len() < 3 {
        return 0.0;
    }
    let same = signs.windows(2).filter(|w| w[0] == w[1]).count() as f64;
    let p = same / (signs.len() - 1) as f64;
    (std::f64::consts::PI * (p - 0.5)).sin()
}

/// The analysis of one series after warm-up.
#[derive(Debug, Clone, PartialEq)]
struct Trend {
    all: Fit,
    early: Option<Fit>,
    late: Option<Fit>,
    /// Tukey's resistant-line slope: level of the last third minus the first, over their distance.
    resistant: f64,
    /// Requests spanned by the series.
    span: f64,
    /// Robust standard deviation of the readings around `all` (1.4826 × MAD).
    sigma: f64,
    /// Level at the end (median of the last 5%, at least 3 readings) minus the level at the start.
    growth: f64,
}

/// Fits a series sorted by x: overall, per half (split at the middle of the x range), the
/// resistant line and the noise. `None` without two distinct x.
fn trend(xs: &[f64], ys: &[f64], params: &Params) -> Option<Trend> {
    let (&x0, &x1) = (xs.first()?, xs.last()?);
    let (bx, by) = bin(xs, ys, params.max_fit_points.max(8));
    let all = theil_sen(&bx, &by, params.z)?;
    let mid = (x0 + x1) / 2.0;
    let split = bx.partition_point(|x| *x < mid);
    let early = theil_sen(&bx[..split], &by[..split], params.z);
    let late = theil_sen(&bx[split..], &by[split..], params.z);

    let third = xs.len() / 3;
    let resistant = if third >= 1 {
        let m = |s: &[f64]| median(&mut s.to_vec());
        let n = xs.len();
        match (
            m(&xs[..third]),
            m(&xs[n - third..]),
            m(&ys[..third]),
            m(&ys[n - third..]),
        ) {
            (Some(xl), Some(xr), Some(yl), Some(yr)) if xr > xl => (yr - yl) / (xr - xl),
            _ => 0.0,
        }
    } else {
        0.0
    };

    let mut res: Vec<f64> = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| y - all.intercept - all.slope * x)
        .collect();
    let centre = median(&mut res.clone()).unwrap_or(0.0);
    res.iter_mut().for_each(|r| *r = (*r - centre).abs());
    let sigma = 1.4826 * median(&mut res).unwrap_or(0.0);

    let k = (ys.len() / 20).max(3).min(ys.len());
    let growth = match (
        median(&mut ys[ys.len() - k..].to_vec()),
        median(&mut ys[..k].to_vec()),
    ) {
        (Some(end), Some(start)) => end - start,
        _ => 0.0,
    };

    Some(Trend {
        all,
        early,
        late,
        resistant,
        span: x1 - x0,
        sigma,
        growth,
    })
}

/// Bins consecutive readings so at most `max` remain: mean x, median y per bin.
fn bin(xs: &[f64], ys: &[f64], max: usize) -> (Vec<f64>, Vec<f64>) {
    if xs.len() <= max {
        return (xs.to_vec(), ys.to_vec());
    }
    let k = xs.len().div_ceil(max);
    xs.chunks(k)
        .zip(ys.chunks(k))
        .filter_map(|(cx, cy)| {
            let x = cx.iter().sum::<f64>() / cx.len() as f64;
            median(&mut cy.to_vec()).map(|y| (x, y))
        })
        .unzip()
}

/// The k-th smallest value (0-based), NaN-safe; reorders `v`.
fn kth(v: &mut [f64], k: usize) -> f64 {
    *v.select_nth_unstable_by(k, f64::total_cmp).1
}

/// The median (mean of the middle two for even lengths); reorders `v`.
fn median(v: &mut [f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let (left, upper, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = left.iter().copied().max_by(f64::total_cmp).unwrap_or(upper);
    Some((lower + upper) / 2.0)
}

fn round_i64(v: f64) -> i64 {
    // `as` saturates and maps NaN to 0.
    v.round() as i64
}

// ---------------------------------------------------------------------------------------------
// Formatting

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const KIB: f64 = 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    const BASE: f64 = 2.0 * MIB;

    /// Noise shapes seen through a counting allocator while requests are in flight.
    #[derive(Debug, Clone, Copy)]
    enum Noise {
        None,
        Gauss(f64),
        /// Uniform in ±a.
        Uniform(f64),
        /// Binomial(conc, ½) requests in flight, each holding `each` bytes.
        InFlight {
            conc: u32,
            each: f64,
        },
        /// Gaussian plus, with probability p, a spike uniform in [0, max].
        Spiky {
            sigma: f64,
            p: f64,
            max: f64,
        },
        /// Gaussian plus, with probability p, `offset` (a second mode).
        Bimodal {
            sigma: f64,
            p: f64,
            offset: f64,
        },
        /// AR(1) Gaussian: slow bursts spanning several readings.
        Ar1 {
            sigma: f64,
            rho: f64,
        },
        /// In flight (32 × 4 KiB) + 20% second mode (+48 KiB) + 2% spikes up to 200 KiB.
        Realistic,
    }

    struct Sampler {
        rng: StdRng,
        ar: f64,
    }

    impl Sampler {
        fn new(seed: u64) -> Self {
            Self {
                rng: StdRng::seed_from_u64(seed),
                ar: 0.0,
            }
        }

        fn gauss(&mut self) -> f64 {
            let u1: f64 = self.rng.r#gen::<f64>().max(1e-12);
            let u2: f64 = self.rng.r#gen();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }

        fn sample(&mut self, noise: Noise) -> f64 {
            match noise {
                Noise::None => 0.0,
                Noise::Gauss(s) => s * self.gauss(),
                Noise::Uniform(a) => self.rng.gen_range(-a..=a),
                Noise::InFlight { conc, each } => {
                    (0..conc).filter(|_| self.rng.gen_bool(0.5)).count() as f64 * each
                }
                Noise::Spiky { sigma, p, max } => {
                    let spike = if self.rng.gen_bool(p) {
                        self.rng.gen_range(0.0..=max)
                    } else {
                        0.0
                    };
                    sigma * self.gauss() + spike
                }
                Noise::Bimodal { sigma, p, offset } => {
                    sigma * self.gauss() + if self.rng.gen_bool(p) { offset } else { 0.0 }
                }
                Noise::Ar1 { sigma, rho } => {
                    self.ar = rho * self.ar + (1.0 - rho * rho).sqrt() * sigma * self.gauss();
                    self.ar
                }
                Noise::Realistic => {
                    let inflight = self.sample(Noise::InFlight {
                        conc: 32,
                        each: 4.0 * KIB,
                    }) + 2.0 * KIB * self.gauss();
                    let mode = if self.rng.gen_bool(0.2) {
                        48.0 * KIB
                    } else {
                        0.0
                    };
                    let spike = if self.rng.gen_bool(0.02) {
                        self.rng.gen_range(0.0..=200.0 * KIB)
                    } else {
                        0.0
                    };
                    inflight + mode + spike
                }
            }
        }
    }

    /// A reading every `every` requests up to `requests`, live = BASE + trend(requests) + noise.
    fn series(
        requests: u64,
        every: u64,
        trend: impl Fn(f64) -> f64,
        noise: Noise,
        seed: u64,
    ) -> Vec<Point> {
        let mut s = Sampler::new(seed);
        (1..=requests / every)
            .map(|i| {
                let x = (i * every) as f64;
                let live = (BASE + trend(x) + s.sample(noise)).max(0.0);
                Point {
                    requests: i * every,
                    live: live as u64,
                    rss: None,
                    quiescent: false,
                    round: 0,
                }
            })
            .collect()
    }

    /// A warm-up ramp of `bytes` that is 98% done at `end` requests.
    fn ramp(bytes: f64, end: f64) -> impl Fn(f64) -> f64 {
        move |x| bytes * (1.0 - (-4.0 * x / end).exp())
    }

    const SHAPES: [Noise; 8] = [
        Noise::Gauss(20.0 * KIB),
        Noise::Uniform(100.0 * KIB),
        Noise::InFlight {
            conc: 64,
            each: 3.0 * KIB,
        },
        Noise::Spiky {
            sigma: 10.0 * KIB,
            p: 0.05,
            max: 200.0 * KIB,
        },
        Noise::Bimodal {
            sigma: 8.0 * KIB,
            p: 0.3,
            offset: 64.0 * KIB,
        },
        Noise::Ar1 {
            sigma: 30.0 * KIB,
            rho: 0.8,
        },
        Noise::Realistic,
        Noise::None,
    ];

    fn judge_default(points: &[Point]) -> Verdict {
        judge(points, &Params::default())
    }

    fn within(slope: f64, truth: f64) -> bool {
        (slope - truth).abs() <= (0.1 * truth).max(2.0)
    }

    /// xs, ys, then the expected slope, intercept, interval low and high.
    type TsCase = (Vec<f64>, Vec<f64>, f64, f64, f64, f64);

    #[test]
    fn theil_sen_matches_hand_computed_values() {
        // (xs, ys, slope, intercept, lo, hi)
        let line: Vec<f64> = (0..50).map(f64::from).collect();
        let doubled: Vec<f64> = line.iter().map(|x| 2.0 * x + 1.0).collect();
        let mut outlier: Vec<f64> = (0..=10).map(|x| 3.0 * f64::from(x)).collect();
        outlier[5] = 1000.0;
        let cases: Vec<TsCase> = vec![
            // Slopes 2, 1/2, 4/3, -1, 1, 3: median (1 + 4/3)/2 = 7/6; offsets -1/6, 2/3, -3/2, 1/3:
            // median 1/12. Four points are too few for a 95% interval: it spans every slope.
            (
                vec![1.0, 2.0, 3.0, 4.0],
                vec![1.0, 3.0, 2.0, 5.0],
                7.0 / 6.0,
                1.0 / 12.0,
                -1.0,
                3.0,
            ),
            // Slopes 2, 5, 8: median 5; offsets 0, -3, 0: median 0.
            (
                vec![0.0, 1.0, 2.0],
                vec![0.0, 2.0, 10.0],
                5.0,
                0.0,
                2.0,
                8.0,
            ),
            // Equal x is skipped: slopes 2 and -2, median 0; offsets 0, 4, 2: median 2.
            (
                vec![1.0, 1.0, 2.0],
                vec![0.0, 4.0, 2.0],
                0.0,
                2.0,
                -2.0,
                2.0,
            ),
            // A perfect line: every slope is 2, so is the interval.
            (line.clone(), doubled, 2.0, 1.0, 2.0, 2.0),
            // One wild reading moves 10 of 66 slopes: the median stays 3.
            (
                (0..=10).map(f64::from).collect(),
                outlier,
                3.0,
                0.0,
                3.0,
                3.0,
            ),
            // 45 slopes, residual signs alternate (rho clamps to 0): Var S = 10·9·25/18 = 125,
            // C = 1.96·√125 = 21.9, M1 = round(11.54) = 12, M2 = round(33.46) = 33, so the 12th and
            // 34th ordered slopes: 1/2 and 10/7.
            (
                (0..10).map(f64::from).collect(),
                vec![0.0, 3.0, 1.0, 5.0, 2.0, 7.0, 4.0, 9.0, 6.0, 11.0],
                1.0,
                1.0,
                0.5,
                10.0 / 7.0,
            ),
        ];
        for (i, (xs, ys, slope, intercept, lo, hi)) in cases.iter().enumerate() {
            let fit = theil_sen(xs, ys, 1.96).expect("distinct x");
            let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
            assert!(
                close(fit.slope, *slope),
                "case {i}: slope {} != {slope}",
                fit.slope
            );
            assert!(
                close(fit.intercept, *intercept),
                "case {i}: intercept {} != {intercept}",
                fit.intercept
            );
            assert!(
                close(fit.lo, *lo) && close(fit.hi, *hi),
                "case {i}: CI {}..{} != {lo}..{hi}",
                fit.lo,
                fit.hi
            );
        }
        assert_eq!(
            theil_sen(&[1.0, 1.0], &[0.0, 5.0], 1.96),
            None,
            "no distinct x"
        );
        assert_eq!(theil_sen(&[], &[], 1.96), None);
    }

    #[test]
    fn median_and_sign_autocorrelation() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(
            median(&mut [f64::NAN, 1.0, 2.0]),
            Some(2.0),
            "NaN sorts last, no panic"
        );
        // Always the same side: p = 1, rho = 1; alternating: p = 0, rho = -1; ++--++--: p = 4/7.
        let rho = |r: &[f64]| sign_autocorrelation(r);
        assert!((rho(&[1.0, 2.0, 1.0, 3.0]) - 1.0).abs() < 1e-12);
        assert!((rho(&[1.0, -1.0, 1.0, -1.0]) + 1.0).abs() < 1e-12);
        let p = 4.0 / 7.0;
        let expect = (std::f64::consts::PI * (p - 0.5)).sin();
        assert!((rho(&[1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0]) - expect).abs() < 1e-12);
    }

    #[test]
    fn interval_covers_the_true_slope_on_clean_data() {
        // 500 readings, 100 B/request, Gaussian noise of 20 KiB: the 95% interval should miss
        // about 1 in 20; allow 4 misses in 40.
        let covered = (0..40)
            .filter(|seed| {
                let pts = series(5_000, 10, |x| 100.0 * x, Noise::Gauss(20.0 * KIB), *seed);
                let xs: Vec<f64> = pts.iter().map(|p| p.requests as f64).collect();
                let ys: Vec<f64> = pts.iter().map(|p| p.live as f64).collect();
                let fit = theil_sen(&xs, &ys, 1.96).expect("fit");
                fit.lo <= 100.0 && 100.0 <= fit.hi
            })
            .count();
        assert!(covered >= 36, "covered {covered}/40");
    }

    #[test]
    fn flat_series_are_stable_under_every_noise_shape() {
        for (i, noise) in SHAPES.iter().enumerate() {
            for seed in 0..4 {
                let v = judge_default(&series(10_000, 10, |_| 0.0, *noise, seed));
                assert_eq!(
                    v.class,
                    Class::Stable,
                    "shape {i} {noise:?} seed {seed}: {v}"
                );
                let s = v.slope.expect("slope");
                assert!(
                    s.hi <= 16.0 && s.lo <= 0.0 + 1.0,
                    "shape {i} seed {seed}: {s}"
                );
                assert_eq!(v.points_used, 901, "readings at 1,000..=10,000");
                assert_eq!(v.warmup_excluded, 99, "readings at 10..=990");
            }
        }
    }

    #[test]
    fn without_injection_never_leak() {
        // Every noise shape, with and without a warm-up ramp, short and long runs.
        let mut judged = 0;
        for noise in SHAPES {
            for (bytes, end) in [(0.0, 1.0), (64.0 * KIB, 500.0), (2.0 * MIB, 1_000.0)] {
                for (requests, every) in [(3_000, 10), (10_000, 10)] {
                    for seed in 0..3 {
                        let w = ramp(bytes, end * requests as f64 / 10_000.0);
                        let v = judge_default(&series(requests, every, w, noise, seed));
                        assert_ne!(
                            v.class,
                            Class::Leak,
                            "{noise:?} ramp {bytes} {requests} seed {seed}: {v}"
                        );
                        judged += 1;
                    }
                }
            }
        }
        assert_eq!(judged, 8 * 3 * 2 * 3);
    }

    #[test]
    fn injected_leaks_are_caught_within_tolerance() {
        // 10k requests, a reading every 10, a 512 KiB warm-up ramp over the first 8%: leak, and
        // the slope within ±10% of B (±2 B at 16).
        for b in [16.0, 64.0, 256.0, 1024.0, 4096.0] {
            for noise in SHAPES {
                for seed in 0..2 {
                    let w = ramp(512.0 * KIB, 800.0);
                    let v = judge_default(&series(10_000, 10, |x| w(x) + b * x, noise, seed));
                    let s = v.slope.expect("slope");
                    assert_eq!(v.class, Class::Leak, "B {b} {noise:?} seed {seed}: {v}");
                    assert!(
                        within(s.bytes_per_request, b),
                        "B {b} {noise:?} seed {seed}: {s}"
                    );
                    assert!(
                        s.lo <= b * 1.1 && s.hi >= b * 0.9,
                        "B {b} {noise:?} seed {seed}: {s}"
                    );
                    assert_eq!(s.per_million, (s.bytes_per_request * 1e6).round() as i64);
                }
            }
        }
    }

    #[test]
    fn warm_up_ramp_then_flat_is_bounded() {
        // (ramp bytes, 98% done at request)
        for (bytes, end) in [
            (256.0 * KIB, 500.0),
            (512.0 * KIB, 1_000.0),
            (2.0 * MIB, 800.0),
        ] {
            for noise in [
                Noise::Realistic,
                Noise::Spiky {
                    sigma: 10.0 * KIB,
                    p: 0.05,
                    max: 200.0 * KIB,
                },
            ] {
                for seed in 0..3 {
                    let v = judge_default(&series(10_000, 10, ramp(bytes, end), noise, seed));
                    assert_eq!(
                        v.class,
                        Class::Bounded,
                        "ramp {bytes} {noise:?} seed {seed}: {v}"
                    );
                    let grew = v.warmup_growth.expect("warm-up growth") as f64;
                    // The first readings are already part-way up the ramp.
                    assert!(
                        grew > 0.5 * bytes && grew < 1.25 * bytes,
                        "ramp {bytes}: grew {grew}"
                    );
                }
            }
        }
    }

    #[test]
    fn capped_cache_is_bounded() {
        // (bytes/request while filling, full at request)
        for (b, full) in [
            (256.0, 4_000.0),
            (1024.0, 3_000.0),
            (64.0, 5_000.0),
            (4096.0, 4_000.0),
        ] {
            for seed in 0..3 {
                let w = ramp(256.0 * KIB, 800.0);
                let v = judge_default(&series(
                    10_000,
                    10,
                    |x| w(x) + b * x.min(full),
                    Noise::Realistic,
                    seed,
                ));
                assert_eq!(
                    v.class,
                    Class::Bounded,
                    "B {b} full at {full} seed {seed}: {v}"
                );
                let late = v.late_slope.expect("late slope");
                assert!(late.bytes_per_request.abs() < 2.0, "B {b}: {late}");
            }
        }
    }

    #[test]
    fn sawtooth_is_not_a_leak() {
        // (bytes/request, cleared every N requests): a buffer that fills and is cleared.
        for (b, period) in [
            (64.0, 1_000.0),
            (256.0, 500.0),
            (1024.0, 2_000.0),
            (16.0, 3_000.0),
        ] {
            for seed in 0..3 {
                let v = judge_default(&series(
                    10_000,
                    10,
                    |x| b * (x % period),
                    Noise::Realistic,
                    seed,
                ));
                assert_ne!(
                    v.class,
                    Class::Leak,
                    "B {b} period {period} seed {seed}: {v}"
                );
            }
        }
    }

    #[test]
    fn one_off_steps_are_not_leaks() {
        // (step at request, expected class)
        let cases = [
            (3_000.0, Some(Class::Bounded)),
            (5_000.0, Some(Class::Bounded)),
            (8_000.0, Some(Class::Inconclusive)),
            (9_500.0, None),
        ];
        for (at, want) in cases {
            for seed in 0..3 {
                let v = judge_default(&series(
                    10_000,
                    10,
                    |x| if x > at { 256.0 * KIB } else { 0.0 },
                    Noise::Realistic,
                    seed,
                ));
                assert_ne!(v.class, Class::Leak, "step at {at} seed {seed}: {v}");
                if let Some(want) = want {
                    assert_eq!(v.class, want, "step at {at} seed {seed}: {v}");
                }
            }
        }
    }

    #[test]
    fn short_runs_are_inconclusive_and_say_what_to_run() {
        // (requests, every, readings after warm-up)
        for (requests, every, used) in [(200, 10, 15), (340, 10, 29), (50, 10, 0), (0, 10, 0)] {
            let v = judge_default(&series(
                requests,
                every,
                |x| 1024.0 * x,
                Noise::Realistic,
                1,
            ));
            assert_eq!(v.class, Class::Inconclusive, "{requests}: {v}");
            assert_eq!(v.points_used, used, "{requests}: {v}");
            assert!(
                v.reason.starts_with(&format!("only {used} readings")),
                "{v}"
            );
            assert!(v.reason.contains("run ≥"), "{v}");
        }
        let v = judge_default(&[]);
        assert_eq!(
            (v.class, v.slope, v.retained_after_idle),
            (Class::Inconclusive, None, None)
        );
    }

    #[test]
    fn too_noisy_is_inconclusive() {
        for seed in 0..3 {
            let v = judge_default(&series(
                1_500,
                10,
                |_| 0.0,
                Noise::Uniform(400.0 * KIB),
                seed,
            ));
            assert_eq!(v.class, Class::Inconclusive, "seed {seed}: {v}");
            assert!(
                v.reason.contains("too uncertain") && v.reason.contains("run ≥"),
                "{v}"
            );
        }
    }

    /// Adds RSS: `base + rate × requests` rounded down to 4 KiB pages, plus page-sized jitter.
    fn with_rss(mut pts: Vec<Point>, rate: f64, seed: u64) -> Vec<Point> {
        let mut rng = StdRng::seed_from_u64(seed);
        for p in &mut pts {
            let pages = ((30.0 * MIB + rate * p.requests as f64) / 4096.0).floor() as u64
                + rng.gen_range(0..4);
            p.rss = Some(pages * 4096);
        }
        pts
    }

    #[test]
    fn rss_growth_with_flat_live_is_rss_only() {
        // (live bytes/request, rss bytes/request, class)
        let cases = [
            (0.0, 64.0, Class::RssOnly),
            (0.0, 512.0, Class::RssOnly),
            (0.0, 0.0, Class::Stable),
            (0.0, 1.0, Class::Stable),
            (256.0, 512.0, Class::Leak),
        ];
        for (live, rss, want) in cases {
            for seed in 0..2 {
                let pts = with_rss(
                    series(10_000, 10, |x| live * x, Noise::Realistic, seed),
                    rss,
                    seed,
                );
                let v = judge_default(&pts);
                assert_eq!(v.class, want, "live {live} rss {rss} seed {seed}: {v}");
                let r = v.rss_slope.expect("rss slope");
                assert!(
                    (r.bytes_per_request - rss).abs() <= (0.1 * rss).max(2.0),
                    "rss {rss}: {r}"
                );
            }
        }
        // Bounded live heap with growing RSS is also rss-only.
        let pts = with_rss(
            series(10_000, 10, ramp(1.0 * MIB, 800.0), Noise::Realistic, 3),
            128.0,
            3,
        );
        assert_eq!(judge_default(&pts).class, Class::RssOnly);
    }

    #[test]
    fn staircase_and_retained_after_idle_come_from_quiescent_readings() {
        // Three rounds of 1,000 requests; busy readings hold 50 KiB in flight on top of a base
        // that retains 10 KiB more at each round's end. Round 1 has two quiescent readings
        // (linger): the last counts. Round 3 has none.
        let kib = |k: u64| k * 1024;
        let base = 4 * 1024 * 1024;
        let mut pts = Vec::new();
        for round in 0..4u32 {
            for i in 1..=100u64 {
                let requests = u64::from(round) * 1_000 + i * 10;
                pts.push(Point {
                    requests,
                    live: base + kib(50),
                    rss: None,
                    quiescent: false,
                    round,
                });
            }
            if round < 3 {
                let requests = u64::from(round + 1) * 1_000;
                let retained = base + kib(10) * u64::from(round + 1);
                if round == 1 {
                    pts.push(Point {
                        requests,
                        live: retained + kib(7),
                        rss: None,
                        quiescent: true,
                        round,
                    });
                }
                pts.push(Point {
                    requests,
                    live: retained,
                    rss: None,
                    quiescent: true,
                    round,
                });
            }
        }
        let v = judge_default(&pts);
        assert_eq!(v.baseline, Some((base + kib(50)) as i64));
        let step = |k: i64| k * 1024;
        assert_eq!(
            v.staircase,
            vec![step(10 - 50), step(20 - 50), step(30 - 50)]
        );
        assert_eq!(v.retained_after_idle, Some(step(30 - 50)));
        // Quiescent readings stay out of the fit: the busy series is perfectly flat.
        let s = v.slope.expect("slope");
        assert_eq!((s.bytes_per_request, s.lo, s.hi), (0.0, 0.0, 0.0));
        assert_eq!(v.class, Class::Stable, "{v}");
        assert_eq!(v.points_used, 361, "busy readings at 400..=4,000");
    }

    #[test]
    fn large_series_are_binned_and_judged_the_same() {
        // 2,000 and 5,000 readings: the pairwise step is capped at 1,000 fitted points.
        for (every, readings) in [(5, 2_000), (2, 5_000)] {
            let leak = judge_default(&series(10_000, every, |x| 256.0 * x, Noise::Realistic, 4));
            assert_eq!(leak.class, Class::Leak, "{leak}");
            assert!(
                within(leak.slope.expect("slope").bytes_per_request, 256.0),
                "{leak}"
            );
            assert_eq!(leak.points_used + leak.warmup_excluded, readings);
            let flat = judge_default(&series(10_000, every, |_| 0.0, Noise::Realistic, 4));
            assert_eq!(flat.class, Class::Stable, "{flat}");
        }
        let (bx, by) = bin(&[0.0, 1.0, 2.0, 3.0, 4.0], &[5.0, 1.0, 9.0, 2.0, 8.0], 2);
        assert_eq!((bx, by), (vec![1.0, 3.5], vec![5.0, 5.0]));
    }

    #[test]
    fn reading_order_does_not_matter() {
        let pts = series(10_000, 10, |x| 64.0 * x, Noise::Realistic, 9);
        let mut shuffled = pts.clone();
        shuffled.reverse();
        shuffled.swap(3, 700);
        assert_eq!(judge_default(&pts), judge_default(&shuffled));
    }

    #[test]
    fn class_and_verdict_serialize_as_documented() {
        let names: Vec<String> = [
            Class::Stable,
            Class::Bounded,
            Class::Leak,
            Class::RssOnly,
            Class::Inconclusive,
        ]
        .iter()
        .map(|c| {
            let json = serde_json::to_string(c).expect("json");
            assert_eq!(json, format!("\"{c}\""));
            c.to_string()
        })
        .collect();
        assert_eq!(
            names,
            ["stable", "bounded", "leak", "rss-only", "inconclusive"]
        );
        let v = judge_default(&series(
            5_000,
            10,
            |x| 1024.0 * x,
            Noise::Gauss(8.0 * KIB),
            0,
        ));
        let json = serde_json::to_value(&v).expect("json");
        assert_eq!(json["class"], "leak");
        assert!(
            json["slope"]["bytes_per_request"].is_number() && json["slope"]["per_million"].is_i64()
        );
        let back: Verdict = serde_json::from_value(json).expect("round trip");
        assert_eq!(back.class, v.class);
        assert_eq!(v.to_string(), v.reason);
    }

    #[test]
    fn slopes_and_suggested_lengths_format_for_people() {
        assert_eq!(round_up_nice(3_371.0), 3_400);
        let s = Slope {
            bytes_per_request: 1024.0,
            lo: 1010.0,
            hi: 1038.0,
            per_million: 1_024_000_000,
        };
        assert_eq!(s.to_string(), "1,024 B/request (95% CI 1,010–1,038)");
    }

    #[test]
    fn a_ramp_past_the_cut_extends_the_warm_up() {
        // A 2 MiB ramp 98% done at 15% of the run biases a 10% cut by ~15% at 16 B/request; the
        // cut moves on in 5% steps until the halves agree.
        for (b, seed) in [(16.0, 0), (16.0, 1), (64.0, 2), (0.0, 3)] {
            let w = ramp(2.0 * MIB, 1_500.0);
            let v = judge_default(&series(
                10_000,
                10,
                |x| w(x) + b * x,
                Noise::Realistic,
                seed,
            ));
            assert!(
                v.warmup_excluded >= 149,
                "B {b}: cut {} readings",
                v.warmup_excluded
            );
            if b > 0.0 {
                assert_eq!(v.class, Class::Leak, "B {b}: {v}");
                assert!(
                    within(v.slope.expect("slope").bytes_per_request, b),
                    "B {b}: {v}"
                );
            } else {
                assert_eq!(v.class, Class::Bounded, "{v}");
            }
        }
    }

    #[test]
    fn growth_within_the_noise_is_inconclusive_not_leak() {
        // 16 B/request over 9,000 requests is 144 KiB, under the noise of a uniform ±200 KiB:
        // a significant slope, but not enough growth to call.
        let v = judge_default(&series(
            10_000,
            10,
            |x| 16.0 * x,
            Noise::Uniform(200.0 * KIB),
            100,
        ));
        assert_eq!(v.class, Class::Inconclusive, "{v}");
        assert!(v.reason.contains("within the noise"), "{v}");
    }

    #[test]
    fn strongly_autocorrelated_noise_is_not_a_leak() {
        // Bursts spanning ~20 readings: the interval widens by up to 6.2×.
        for seed in 0..6 {
            let noise = Noise::Ar1 {
                sigma: 40.0 * KIB,
                rho: 0.95,
            };
            let v = judge_default(&series(10_000, 10, |_| 0.0, noise, seed));
            assert_ne!(v.class, Class::Leak, "seed {seed}: {v}");
        }
    }

    #[test]
    fn a_series_read_only_at_rest_is_judged_on_what_it_has() {
        // Another process sampled between batches: every reading quiescent.
        let mut pts = series(10_000, 100, |x| 512.0 * x, Noise::Gauss(4.0 * KIB), 5);
        pts.iter_mut().for_each(|p| p.quiescent = true);
        let v = judge_default(&pts);
        assert_eq!(v.class, Class::Leak, "{v}");
        assert!(
            within(v.slope.expect("slope").bytes_per_request, 512.0),
            "{v}"
        );
        assert_eq!(v.points_used, 91);
    }
}
