//! The verdict's data: a reading ([`Point`]), the thresholds ([`Params`]), the classes, a slope
//! with its interval and the judgement ([`Verdict`]); plain types, no decision.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::stats::{Fit, round_i64};

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
    pub(super) fn from_fit(fit: &Fit) -> Self {
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

/// The shape of one series after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
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
