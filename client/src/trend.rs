//! The periodic log's trend: the Theil–Sen slope (bytes per request) over the last few log
//! readings, in fixed buffers, so the variants' monitor allocates nothing for it in the counted
//! heap. Numbers only: no thresholds, no classes (those are the verdict's); [`EveryDoubling`]
//! says when the log line's class is judged again.

/// Readings the slope is taken over: the last this many log lines.
pub const WINDOW: usize = 16;

/// Pairs of readings in a full window.
const PAIRS: usize = WINDOW * (WINDOW - 1) / 2;

/// The last [`WINDOW`] `(requests, bytes)` readings, oldest overwritten first.
#[derive(Debug, Clone)]
pub struct Trend {
    xs: [f64; WINDOW],
    ys: [f64; WINDOW],
    len: usize,
    next: usize,
    slopes: [f64; PAIRS],
}

impl Default for Trend {
    fn default() -> Self {
        Self::new()
    }
}

impl Trend {
    pub fn new() -> Self {
        Self {
            xs: [0.0; WINDOW],
            ys: [0.0; WINDOW],
            len: 0,
            next: 0,
            slopes: [0.0; PAIRS],
        }
    }

    /// Records a reading: `bytes` (live heap, or RSS) at `requests` served.
    pub fn push(&mut self, requests: u64, bytes: u64) {
        self.xs[self.next] = requests as f64;
        self.ys[self.next] = bytes as f64;
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
    }

    /// Readings held (at most [`WINDOW`]).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The median of the pairwise slopes of the readings held, skipping pairs with no request
    /// between them (idle readings); `None` with fewer than 3 such pairs (too few to resist one
    /// outlier: a GC, a pool growing). Warm-up and pools older than the window weigh nothing,
    /// unlike an average since the start.
    pub fn slope(&mut self) -> Option<f64> {
        let mut m = 0;
        for i in 0..self.len {
            for j in i + 1..self.len {
                let dx = self.xs[j] - self.xs[i];
                if dx != 0.0 {
                    self.slopes[m] = (self.ys[j] - self.ys[i]) / dx;
                    m += 1;
                }
            }
        }
        if m < 3 {
            return None;
        }
        let s = &mut self.slopes[..m];
        let k = m / 2;
        let (lower, upper, _) = s.select_nth_unstable_by(k, f64::total_cmp);
        let upper = *upper;
        if m % 2 == 1 {
            return Some(upper);
        }
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((below + upper) / 2.0)
    }
}

/// When the log line's class is judged again: once there are enough readings, then each time
/// the served count has doubled since the last judgement (a judgement copies the series and
/// builds its pairwise slopes, so a log judges a few dozen times per run, not every line); the
/// last answer is kept meanwhile. Shared by the variants' log and `watch`'s.
#[derive(Debug, Clone, Copy)]
pub struct EveryDoubling<T> {
    min_readings: usize,
    next_at: u64,
    last: Option<T>,
}

impl<T: Copy> EveryDoubling<T> {
    /// Judges first once a series holds `min_readings` readings.
    pub const fn new(min_readings: usize) -> Self {
        Self {
            min_readings,
            next_at: 0,
            last: None,
        }
    }

    /// The answer for a series of `readings` readings and `requests` served: `judge()`'s when
    /// one is due, else the last one (`None` before there are enough readings).
    pub fn get(&mut self, readings: usize, requests: u64, judge: impl FnOnce() -> T) -> Option<T> {
        if readings < self.min_readings {
            return None;
        }
        if requests >= self.next_at {
            self.next_at = requests.saturating_mul(2).max(1);
            self.last = Some(judge());
        }
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_needs_three_pairs_of_readings_apart() {
        let mut t = Trend::new();
        assert_eq!(t.slope(), None);
        t.push(0, 100);
        t.push(10, 110);
        assert_eq!(t.slope(), None, "one pair");
        t.push(10, 120);
        assert_eq!(
            t.slope(),
            None,
            "an idle reading adds no pair with its twin"
        );
        t.push(20, 130);
        assert!(t.slope().is_some());
    }

    #[test]
    fn warm_up_out_of_the_window_weighs_nothing() {
        let mut t = Trend::new();
        // A big warm-up jump, then a flat heap for a full window.
        t.push(0, 0);
        t.push(1_000, 4 << 20);
        for i in 2..=WINDOW as u64 + 1 {
            t.push(i * 1_000, 4 << 20);
        }
        assert_eq!(t.len(), WINDOW);
        assert_eq!(t.slope(), Some(0.0));
    }

    #[test]
    fn a_steady_leak_reads_its_rate_through_an_outlier() {
        let mut t = Trend::new();
        for i in 0..WINDOW as u64 {
            let gc_spike = if i == 7 { 1 << 20 } else { 0 };
            t.push(i * 1_000, 1_000_000 + i * 1_000 * 1_024 + gc_spike);
        }
        assert_eq!(t.slope(), Some(1_024.0));
    }

    #[test]
    fn an_even_number_of_slopes_takes_the_middle_two() {
        let mut t = Trend::new();
        // Pairs: (0,1) 1, (0,2) 2, (0,3) 3, (1,2) 3, (1,3) 4, (2,3) 5 → median (3 + 3) / 2.
        for (x, y) in [(0, 0), (1, 1), (2, 4), (3, 9)] {
            t.push(x, y);
        }
        assert_eq!(t.slope(), Some(3.0));
    }
}
