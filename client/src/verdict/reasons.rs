//! The verdict's wording: the one-sentence reason for each finding and the rerun length it
//! suggests. Sentences only: which class a series gets is decided in `mod.rs`, never here.

use std::fmt;

use super::stats::Trend;
use super::types::{Class, Params, Point, Shape, Slope};
use crate::units;

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

/// Too few readings after warm-up: `n` of them, and how long a rerun of `pts` should be.
/// A flat series over a window too short for its resolution to show a leak of the ceiling.
pub(super) fn below_resolution(live: &Trend, p: &Params) -> String {
    let needed = (p.resolution / p.stable_ceiling).ceil() as u64;
    format!(
        "{} flat over {} requests after warm-up, but it moves in steps of about {}, so a leak of \
         {} B/request would not show yet: inconclusive, run ≥ {} requests",
        p.series,
        units::count(live.span.round() as u64),
        units::bytes(p.resolution),
        p.stable_ceiling,
        units::count(round_up_nice(needed as f64 / (1.0 - p.warmup_fraction))),
    )
}

pub(super) fn too_few_readings(n: usize, pts: &[Point], p: &Params) -> String {
    let needed = requests_needed(pts, p);
    format!(
        "only {n} readings after warm-up (need ≥ {}): inconclusive, run ≥ {} requests \
         or read memory more often",
        p.min_points,
        units::count(needed)
    )
}

/// `reason`, decided on only `n` readings after warm-up, with the evidence that made them
/// enough: the growth against the noise and the interval at `few_z` (`strict`).
pub(super) fn few_readings(reason: &str, n: usize, strict: &Trend, p: &Params) -> String {
    let growth = strict.all.slope * strict.span;
    let sigmas = if strict.sigma > 0.0 {
        format!("{:.0}×", growth / strict.sigma)
    } else {
        "far above".to_string()
    };
    let confidence = format!("{:.1}%", 100.0 * (1.0 - erfc_two_sided(p.few_z)));
    if growth > 0.0 && strict.all.lo > p.leak_floor {
        format!(
            "{reason} (on only {n} readings after warm-up, under the {} that decide alone: the \
             growth is {sigmas} the noise and the {confidence} interval {}–{} B/request)",
            p.min_points,
            units::rate(strict.all.lo),
            units::rate(strict.all.hi)
        )
    } else {
        format!(
            "{reason} (on only {n} readings after warm-up, under the {} that decide alone: the \
             {confidence} interval {}–{} B/request rules out a leak of {} B/request)",
            p.min_points,
            units::rate(strict.all.lo),
            units::rate(strict.all.hi),
            units::rate(p.stable_ceiling)
        )
    }
}

/// The two-sided tail probability of a standard normal beyond ±z (Abramowitz–Stegun 7.1.26,
/// good to 1.5·10⁻⁷: enough to print a confidence level).
fn erfc_two_sided(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    poly * (-x * x).exp()
}

/// The reason for `class`, decided from the live heap's `shape` over a run of `total` requests.
pub(super) fn live_heap(
    shape: Shape,
    class: Class,
    live: &Trend,
    warmup_growth: f64,
    total: u64,
    p: &Params,
) -> String {
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
    let (series, advice) = (p.series, p.repeat_advice);

    match shape {
        Shape::Growing => format!(
            "{series} grew {s} steadily through the run (early {early_txt}, late {late_txt}): \
             leak, {} per million requests",
            units::bytes(s.per_million as f64)
        ),
        Shape::Plateau => format!(
            "{series} grew {} after warm-up, then levelled off (late slope {late_txt} vs {} \
             B/request overall): bounded, like a cache filling up",
            units::bytes(live.growth),
            units::rate(b)
        ),
        Shape::Flat if class == Class::Bounded => format!(
            "grew {} in warm-up, then flat ({s}, noise ±{noise}): bounded, like a pool \
             or cache",
            units::bytes(warmup_growth)
        ),
        Shape::Flat => format!("{series} flat after warm-up ({s}, noise ±{noise}): stable"),
        Shape::TooNoisy => {
            // The interval narrows as requests^1.5 at a fixed reading interval.
            let half = ((live.all.hi - live.all.lo) / 2.0).max(f64::MIN_POSITIVE);
            let factor = (half / (p.stable_ceiling / 2.0))
                .powf(2.0 / 3.0)
                .ceil()
                .max(2.0);
            format!(
                "{series} slope {s} is too uncertain to rule out a leak (noise ±{noise}): \
                 inconclusive, run ≥ {} requests",
                units::count(round_up_nice(total as f64 * factor))
            )
        }
        Shape::BelowNoise => {
            let factor = (p.min_growth_sigmas * live.sigma / (b * live.span).max(1.0)).max(1.0);
            format!(
                "{series} slope {s} adds up to only {} after warm-up, within the noise \
                 (±{noise}): inconclusive, run ≥ {} requests",
                units::bytes(b * live.span),
                units::count(round_up_nice(total as f64 * (factor * 1.25).max(2.0)))
            )
        }
        Shape::LateOnly => format!(
            "{series} was flat in the first half after warm-up (early {early_txt}) and grew in \
             the second (late {late_txt}), a one-off step or a leak that began late: \
             inconclusive, run ≥ {twice} requests{advice}"
        ),
        Shape::Undecided => format!(
            "{series} grew {s} but the halves cannot tell a plateau from steady growth \
             (early {early_txt}, late {late_txt}): inconclusive, run ≥ {twice} requests"
        ),
        Shape::Unsteady => format!(
            "pairwise slopes lean up ({s}) but the heap's level barely moves ({} B/request \
             between first and last third), growth that is released again: inconclusive, run ≥ \
             {twice} requests{advice}",
            units::rate(live.resistant)
        ),
    }
}

/// The reason for `rss-only`: the live heap was judged `live_class` (stable or bounded) while
/// RSS grew steadily.
pub(super) fn rss_only(live_class: Class, live: &Trend, rss: &Trend) -> String {
    format!(
        "live heap {} ({} B/request) but RSS grew {}: rss-only, the allocator keeps \
         freed memory, not a leak in the code under test",
        if live_class == Class::Stable {
            "flat"
        } else {
            "levelled off"
        },
        units::rate(live.all.slope),
        Slope::from_fit(&rss.all)
    )
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
pub(super) fn round_up_nice(v: f64) -> u64 {
    let mag = 10f64.powf((v.log10().floor() - 1.0).max(0.0));
    ((v / mag).ceil() * mag) as u64
}
