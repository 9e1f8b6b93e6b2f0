//! When a run may stop before `--requests`/`--duration`: the verdict judged at looks spaced
//! geometrically in requests, settled once two looks in a row agree, each at a stricter z.
//! Pure: the caller says how many requests were served and supplies the readings (or the
//! judgements); nothing here stops anything.

use super::policy::judge;
use super::types::{Class, Params, Point, Slope, Verdict};

/// Normal quantile a look's decision is checked at (99%; the verdict's own intervals are 95%).
pub const LOOK_Z: f64 = 2.576;

/// Looks fall on `1,000 × 2^(k/4)` requests: …, 841, 1,000, 1,189, 1,414, 1,682, 2,000, 2,378,
/// 2,828, … Four per doubling: with two (1,000 × 2^(k/2)) a leak whose look at 1,414 fell short
/// (a half-window of 7 readings, one of them an outlier) waited for 2,828 (got 12.5.2 under
/// `--probe node`: one run in three); with four it settles at the next pair of looks. The
/// synthetic sweep, at 10× its seeds (2,880 clean series), settled none as a leak either way.
const LOOK_BASE: f64 = 1_000.0;
/// Looks per doubling of the request count.
const LOOKS_PER_DOUBLING: f64 = 4.0;
/// The first look's exponent: 1,000 requests, so the earliest settle is at 1,189. Real programs
/// warm up over their first hundreds of requests (caches and pools filling, a JIT, lazily built
/// modules) in a straight line as often as in a curve: a Python loop's first 180 requests read
/// as a steady 8 KB/request climb, and a cache of a few hundred entries filling at the start
/// would settle as a leak at 177 requests if looks began there (as they did at first).
const FIRST_LOOK_K: i32 = 0;

/// The request count of look `k`.
fn look_at(k: i32) -> u64 {
    (LOOK_BASE * 2f64.powf(f64::from(k) / LOOKS_PER_DOUBLING)).round() as u64
}

/// The first look after `requests`.
fn look_after(requests: u64) -> u64 {
    let mut k = FIRST_LOOK_K;
    while look_at(k) <= requests {
        k += 1;
    }
    look_at(k)
}

/// The early-stop state of one run, fed as readings arrive.
///
/// ```
/// use leak_client::verdict::{EarlyStop, Params, Point};
///
/// let mut stop = EarlyStop::new();
/// let mut points = Vec::new();
/// let mut settled = None;
/// for i in 1..=10_000u64 {
///     // A reading every 10 requests; 4 KiB kept per request.
///     points.push(Point { requests: i * 10, live: (1 << 20) + i * 40_960, rss: None,
///                         quiescent: false, round: 0 });
///     if let Some(s) = stop.look(&points, &Params::default()) {
///         settled = Some(s);
///         break;
///     }
/// }
/// let s = settled.expect("a 4 KiB/request leak settles");
/// assert_eq!(s.verdict.class, leak_client::verdict::Class::Leak);
/// // Looks at 1,000 and 1,189 requests; the first reading at or past 1,189 is at 1,190.
/// assert!(s.requests <= 1_190, "{}", s.requests);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStop {
    /// Requests at which the next look is due.
    next: u64,
    /// The class the previous look could stop on, if any, and its slope.
    previous: Option<(Class, Option<Slope>)>,
    /// Looks taken.
    looks: u32,
}

/// A verdict settled before the end of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled<V = Verdict> {
    /// The verdict at the look that settled it (judged at the run's own z).
    pub verdict: V,
    /// Requests served at that look.
    pub requests: u64,
    /// Looks taken, this one included.
    pub looks: u32,
}

/// Where `--until-verdict` settled a run's verdict (a watch's, or a variant's): what its
/// summary reports.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SettledAt {
    /// Requests served at the look that settled it.
    pub requests: u64,
    /// Seconds since the run (or the watch) started.
    pub seconds: f64,
    /// Looks taken (one at each request count 1,000 × 2^(k/4) reached).
    pub looks: u32,
}

impl SettledAt {
    /// The summary's line for a verdict of `class` settled here.
    pub fn line(&self, class: Class) -> String {
        format!(
            "settled    {} at {} requests, {:.1}s ({} looks): stopped early (--until-verdict)",
            class.as_str(),
            crate::units::count(self.requests),
            self.seconds,
            self.looks
        )
    }
}

impl Default for EarlyStop {
    fn default() -> Self {
        Self::new()
    }
}

impl EarlyStop {
    /// No look taken yet; the first is due at 1,000 requests.
    pub fn new() -> Self {
        Self {
            next: look_at(FIRST_LOOK_K),
            previous: None,
            looks: 0,
        }
    }

    /// Requests at which the next look is due.
    pub fn next_look(&self) -> u64 {
        self.next
    }

    /// Whether a look is due with `requests` served.
    pub fn due(&self, requests: u64) -> bool {
        requests >= self.next
    }

    /// Records a look at `requests`: `verdict` judged at the run's z, `strict` the same readings
    /// judged at [`LOOK_Z`], `ceiling` the `stable_ceiling` they were judged with. True when the
    /// verdict is settled: this look and the previous one can both stop on the same class, and
    /// for `leak` the previous look's slope lies inside this one's strict interval.
    pub fn record(
        &mut self,
        requests: u64,
        verdict: &Verdict,
        strict: &Verdict,
        ceiling: f64,
    ) -> bool {
        self.looks += 1;
        self.next = look_after(requests);
        let class = stops_on(verdict, strict, ceiling);
        let settled = match (class, self.previous) {
            (Some(now), Some((before, slope))) if now == before => {
                now != Class::Leak || same_rate(slope, strict.slope)
            }
            _ => false,
        };
        self.previous = class.map(|c| (c, strict.slope));
        settled
    }

    /// For a run whose readings are `points` (all of them so far) judged under `params`: judges
    /// them if a look is due and returns the verdict once it is settled.
    pub fn look(&mut self, points: &[Point], params: &Params) -> Option<Settled> {
        let requests = points.iter().map(|p| p.requests).max()?;
        if !self.due(requests) {
            return None;
        }
        let verdict = judge(points, params);
        let strict = judge(points, &look_params(params));
        let settled = self.record(requests, &verdict, &strict, params.stable_ceiling);
        settled.then_some(Settled {
            verdict,
            requests,
            looks: self.looks,
        })
    }

    /// Looks taken so far.
    pub fn looks(&self) -> u32 {
        self.looks
    }
}

/// `params` with the intervals at [`LOOK_Z`] (or the run's own z, if stricter).
pub fn look_params(params: &Params) -> Params {
    Params {
        z: params.z.max(LOOK_Z),
        ..params.clone()
    }
}

/// The late half grows as fast as the early half, and is measured well enough to tell: its
/// strict interval no wider than [`HALF_PRECISION`] of the overall slope, and the early half's
/// slope inside it, below it, or at most [`SLOWDOWN`] above the late half's. A warm-up ramp
/// seen part-way (a look long before the run ends sees more of the program's warm-up than the
/// run's 10%) grows ever more slowly; the verdict's own rule lets the late half fall to half
/// the overall rate, too lenient for a window that may be all ramp.
fn no_slowdown(strict: &Verdict) -> bool {
    let (Some(all), Some(e), Some(l)) = (strict.slope, strict.early_slope, strict.late_slope)
    else {
        return false;
    };
    let measured = l.hi - l.lo <= HALF_PRECISION * all.bytes_per_request;
    let slower = e.bytes_per_request > l.hi && l.bytes_per_request < SLOWDOWN * e.bytes_per_request;
    measured && !slower
}

/// The late half's strict interval may be at most this fraction of the slope wide (±25%).
const HALF_PRECISION: f64 = 0.5;
/// A late half at least this fraction of the early half's rate is not a slowdown: a warm-up's
/// residue of a few percent is not worth a later stop (without it a noise-free series never
/// stops), while a ramp seen part-way reads 0.6–0.92 at the looks where it mimics a leak.
const SLOWDOWN: f64 = 0.95;

/// A leak's rate has not moved between two looks: the earlier estimate lies in the later
/// interval, or within [`SLOWDOWN`]'s 5% of it (a noise-free series has an interval of zero
/// width). A warm-up ramp still running at a look reads as growth whose rate falls from look
/// to look; a leak's does not.
fn same_rate(before: Option<Slope>, now: Option<Slope>) -> bool {
    match (before, now) {
        (Some(b), Some(n)) => {
            let slack = (1.0 - SLOWDOWN) * n.bytes_per_request.abs();
            n.lo - slack <= b.bytes_per_request && b.bytes_per_request <= n.hi + slack
        }
        _ => false,
    }
}

/// The class a look may stop on: the run's verdict and the strict one must agree, and a heap
/// that grew and levelled off (`bounded`, `rss-only`) must have a late half that rules out a
/// leak of `ceiling` B/request, so a small leak under a long warm-up is not stopped as a
/// plateau.
fn stops_on(verdict: &Verdict, strict: &Verdict, ceiling: f64) -> Option<Class> {
    if verdict.class != strict.class {
        return None;
    }
    match strict.class {
        Class::Leak => no_slowdown(strict).then_some(Class::Leak),
        Class::Stable => Some(Class::Stable),
        Class::Bounded | Class::RssOnly => strict
            .late_slope
            .is_some_and(|l| l.hi <= ceiling)
            .then_some(strict.class),
        Class::Inconclusive => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_fall_on_fourth_roots_of_two_from_1000() {
        let mut at = vec![look_at(FIRST_LOOK_K)];
        while at.len() < 12 {
            at.push(look_after(*at.last().unwrap_or(&0)));
        }
        assert_eq!(
            at,
            [
                1_000, 1_189, 1_414, 1_682, 2_000, 2_378, 2_828, 3_364, 4_000, 4_757, 5_657, 6_727
            ]
        );
        // A reading that jumps past several looks takes one, and the next is after it.
        assert_eq!(look_after(1_900), 2_000);
        assert_eq!(look_after(2_000), 2_378);
        assert_eq!(look_after(0), 1_000);
    }
}
