//! Pairs a timestamped reading with the server's count of requests served at that instant: a
//! fixed ring of `(CLOCK_MONOTONIC ns, served)` records the watcher appends every few
//! milliseconds. Pure data; it reads no clock and no server itself.

/// The served count over recent time, in a ring allocated once.
#[derive(Debug)]
pub struct ServedLog {
    /// `(t_ns, served)`, oldest at `head` once full.
    ring: Vec<(u64, u64)>,
    head: usize,
    capacity: usize,
}

impl ServedLog {
    /// A log of the last `capacity` records (at least 2). At one record per 10 ms, 4096 cover
    /// 40 s: far more than the delay between a probe's reading and the watcher reading its line.
    pub fn with_capacity(capacity: usize) -> ServedLog {
        let capacity = capacity.max(2);
        ServedLog {
            ring: Vec::with_capacity(capacity),
            head: 0,
            capacity,
        }
    }

    /// Records that `served` requests had been served at `t_ns`. Records must come in time order;
    /// one out of order is ignored.
    pub fn record(&mut self, t_ns: u64, served: u64) {
        if self.last().is_some_and(|(t, _)| t_ns < t) {
            return;
        }
        if self.ring.len() < self.capacity {
            self.ring.push((t_ns, served));
        } else {
            self.ring[self.head] = (t_ns, served);
            self.head = (self.head + 1) % self.capacity;
        }
    }

    fn get(&self, i: usize) -> (u64, u64) {
        self.ring[(self.head + i) % self.ring.len()]
    }

    /// The newest record.
    pub fn last(&self) -> Option<(u64, u64)> {
        (!self.ring.is_empty()).then(|| self.get(self.ring.len() - 1))
    }

    /// The served count at `t_ns`: linear between the records around it (rounded down), the
    /// newest count after the newest record; `None` before the oldest record (too old to pair).
    pub fn served_at(&self, t_ns: u64) -> Option<u64> {
        let n = self.ring.len();
        if n == 0 || t_ns < self.get(0).0 {
            return None;
        }
        // The first record later than t_ns (binary search over the ring's logical order).
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid).0 <= t_ns {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let (t0, c0) = self.get(lo - 1);
        if lo == n {
            return Some(c0);
        }
        let (t1, c1) = self.get(lo);
        let span = (t1 - t0) as u128;
        let extra = (c1.saturating_sub(c0) as u128 * (t_ns - t0) as u128)
            .checked_div(span)
            .unwrap_or(0);
        Some(c0 + extra as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_between_records_are_interpolated_and_clamped_at_the_ends() {
        let mut log = ServedLog::with_capacity(8);
        assert_eq!(log.served_at(5), None);
        log.record(100, 10);
        log.record(200, 20);
        log.record(300, 20);
        let table = [
            (99, None),
            (100, Some(10)),
            (150, Some(15)),
            (199, Some(19)),
            (200, Some(20)),
            (250, Some(20)),
            (300, Some(20)),
            (10_000, Some(20)),
        ];
        for (t, want) in table {
            assert_eq!(log.served_at(t), want, "t={t}");
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_records_and_never_grows() {
        let mut log = ServedLog::with_capacity(4);
        for i in 0..10u64 {
            log.record(i * 10, i);
        }
        assert_eq!(log.ring.capacity(), 4);
        assert_eq!(log.served_at(59), None, "older than the ring");
        assert_eq!(log.served_at(60), Some(6));
        assert_eq!(log.served_at(85), Some(8));
        assert_eq!(log.last(), Some((90, 9)));
        log.record(5, 100); // out of order: ignored
        assert_eq!(log.last(), Some((90, 9)));
    }

    #[test]
    fn equal_timestamps_do_not_divide_by_zero() {
        let mut log = ServedLog::with_capacity(4);
        log.record(100, 1);
        log.record(100, 3);
        log.record(200, 5);
        assert_eq!(log.served_at(100), Some(3));
        assert_eq!(log.served_at(150), Some(4));
    }
}
