//! How long each request sleeps: the configured latency, uniform jitter from a seeded
//! generator, or the request's own `latency_ms`. Never sleeps itself.

use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Draws request latencies; shared by the connection threads. Only a jittered draw takes
/// the generator's lock: a fixed latency or a request's own override is read without one.
#[derive(Debug)]
pub(crate) struct LatencyModel {
    base: Duration,
    jitter: Duration,
    rng: Mutex<StdRng>,
}

impl LatencyModel {
    pub(crate) fn new(base: Duration, jitter: Duration, seed: u64) -> Self {
        LatencyModel {
            base,
            jitter,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// The latency of the next request: its own override if it has one, else a draw.
    #[cfg(test)]
    pub(crate) fn next(&mut self, override_: Option<Duration>) -> Duration {
        let rng = self.rng.get_mut().unwrap_or_else(|e| e.into_inner());
        Self::pick(self.base, self.jitter, override_, rng)
    }

    /// [`LatencyModel::next`] from any thread: draws in the order the callers take the
    /// generator's lock, so one seed gives one sequence of draws.
    pub(crate) fn next_shared(&self, override_: Option<Duration>) -> Duration {
        if override_.is_some() || self.jitter.is_zero() {
            return override_.unwrap_or(self.base);
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        Self::pick(self.base, self.jitter, override_, &mut rng)
    }

    fn pick(
        base: Duration,
        jitter: Duration,
        override_: Option<Duration>,
        rng: &mut StdRng,
    ) -> Duration {
        if let Some(latency) = override_ {
            return latency;
        }
        if jitter.is_zero() {
            return base;
        }
        let jitter = jitter.as_nanos().min(u64::MAX as u128) as u64;
        let offset = rng.gen_range(0..=2 * jitter.min(u64::MAX / 2));
        let base = base.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos((base + offset).saturating_sub(jitter))
    }
}

/// Draws one latency from `range` (uniform), as the original server did once per process.
pub fn draw_once(range: &RangeInclusive<Duration>, seed: u64) -> Duration {
    let (lo, hi) = (range.start().as_nanos(), range.end().as_nanos());
    let (lo, hi) = (
        lo.min(u64::MAX as u128) as u64,
        hi.min(u64::MAX as u128) as u64,
    );
    if hi <= lo {
        return Duration::from_nanos(lo);
    }
    Duration::from_nanos(StdRng::seed_from_u64(seed).gen_range(lo..=hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn without_jitter_every_request_gets_the_base() {
        let mut model = LatencyModel::new(100 * MS, Duration::ZERO, 1);
        assert!((0..100).all(|_| model.next(None) == 100 * MS));
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let mut model = LatencyModel::new(100 * MS, 20 * MS, 7);
        let draws: Vec<_> = (0..1000).map(|_| model.next(None)).collect();
        assert!(draws.iter().all(|d| (80 * MS..=120 * MS).contains(d)));
        assert!(draws.iter().any(|d| *d < 95 * MS) && draws.iter().any(|d| *d > 105 * MS));
    }

    #[test]
    fn jitter_larger_than_base_clamps_at_zero() {
        let mut model = LatencyModel::new(MS, 50 * MS, 3);
        assert!((0..1000).all(|_| model.next(None) <= 51 * MS));
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = LatencyModel::new(100 * MS, 50 * MS, 42);
        let mut b = LatencyModel::new(100 * MS, 50 * MS, 42);
        assert!((0..100).all(|_| a.next(None) == b.next(None)));
    }

    #[test]
    fn override_wins_over_base_and_jitter() {
        let mut model = LatencyModel::new(100 * MS, 50 * MS, 42);
        assert_eq!(model.next(Some(3 * MS)), 3 * MS);
    }

    #[test]
    fn shared_draws_repeat_the_sequential_ones() {
        let mut a = LatencyModel::new(100 * MS, 50 * MS, 42);
        let b = LatencyModel::new(100 * MS, 50 * MS, 42);
        assert!((0..100).all(|_| a.next(None) == b.next_shared(None)));
        assert_eq!(b.next_shared(Some(3 * MS)), 3 * MS);
        let fixed = LatencyModel::new(100 * MS, Duration::ZERO, 42);
        assert_eq!(fixed.next_shared(None), 100 * MS);
    }

    #[test]
    fn draw_once_lands_in_range_and_repeats_per_seed() {
        let range = 100 * MS..=300 * MS;
        for seed in 0..50 {
            let d = draw_once(&range, seed);
            assert!(range.contains(&d));
            assert_eq!(d, draw_once(&range, seed));
        }
        assert_eq!(draw_once(&(5 * MS..=5 * MS), 9), 5 * MS);
    }
}
