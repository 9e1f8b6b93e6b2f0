//! The decision: warm-up, shapes, the classes and the one-release rule over a run's readings
//! ([`judge`]); the manual for every threshold is the module docs of `verdict`.

use super::reasons;
use super::stats::{Trend, median, round_i64, trend};
use super::types::{Class, Params, Point, Shape, Slope, Verdict};

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
/// early half not significantly — and only if the series has **exactly one** release after the
/// first request (a run of readings that never rise, falling in all by at least [`MIN_RELEASE`]
/// and [`RELEASE_VS_MEDIAN_STEP`] times the median change between two readings), the fall
/// (plus the run's own rate across it) is added back to every later
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
    // A release is a run of readings that never rise (a collection frees a compiler's buffers
    // over a few readings: 158.0 → 157.3 → 156.5 → 154.3 MB under `next dev`), whose fall in
    // all is at least the threshold. Not a fall from start-up to the first request (a server's
    // compile buffers freed as it begins to serve: 3.5 MB under `next dev`), which is not judged.
    let mut drops: Vec<(usize, usize, u64)> = Vec::new();
    let mut start = None;
    for i in 1..=pts.len() {
        let falls = i < pts.len() && pts[i - 1].requests > 0 && pts[i].live <= pts[i - 1].live;
        match (falls, start) {
            (true, None) => start = Some(i - 1),
            (false, Some(s)) => {
                let fall = pts[s].live - pts[i - 1].live;
                if fall as f64 >= threshold {
                    drops.push((s, i - 1, fall));
                }
                start = None;
            }
            _ => {}
        }
    }
    let [(from, at, drop)] = drops[..] else {
        return None;
    };
    let at_requests = pts[at].requests;
    // Back to where the run's own rate would have taken it across that fall.
    let expected = (all.bytes_per_request.max(0.0)
        * at_requests.saturating_sub(pts[from].requests) as f64) as u64;
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
