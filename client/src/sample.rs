//! Memory samples (one JSONL line each) and the fixed-capacity series the verdict reads.
//! The series never grows past its first allocation: a measuring tool must not leak itself.
//! Data only: nothing here analyses or judges.

use serde::{Deserialize, Serialize};

/// Why a sample was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleKind {
    /// Before the first request, with every worker built and idle: the baseline.
    Start,
    /// The periodic log tick (`--report-every`).
    Interval,
    /// Every K completed requests (`--sample-every`).
    Request,
    /// Every worker idle: end of a round, during linger, end of run.
    Quiescent,
}

/// One reading of the process, as written to `--jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the run started.
    pub t_ms: u64,
    pub kind: SampleKind,
    /// 0-based round.
    pub round: u32,
    /// Completed requests (ok + errors).
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// Live heap bytes (counting allocator).
    pub live: u64,
    /// Highest live heap bytes so far.
    pub peak: u64,
    /// Allocation calls so far.
    pub allocs: u64,
    /// Bytes allocated so far (freed or not).
    pub allocated_bytes: u64,
    /// Resident set size, when read.
    pub rss: Option<u64>,
    /// TCP connections the variant opened so far.
    pub connections: u64,
}

/// Samples kept for analysis, in a buffer allocated once. When it fills, every other
/// non-quiescent sample is dropped and the caller is told to halve its sampling rate.
#[derive(Debug)]
pub struct Series {
    samples: Vec<Sample>,
}

impl Series {
    /// Allocates the whole buffer and writes every slot once, so that filling it later changes
    /// neither the live heap nor the resident set the run is measuring.
    pub fn with_capacity(capacity: usize) -> Series {
        let filler = Sample {
            t_ms: u64::MAX,
            kind: SampleKind::Interval,
            round: 0,
            requests: 0,
            ok: 0,
            errors: 0,
            live: 0,
            peak: 0,
            allocs: 0,
            allocated_bytes: 0,
            rss: None,
            connections: 0,
        };
        let mut samples = vec![filler; capacity.max(16)];
        samples.clear();
        Series { samples }
    }

    /// Adds a sample; returns `true` when the series was thinned to make room (so the sampler
    /// should double its stride to keep the density even).
    pub fn push(&mut self, s: Sample) -> bool {
        let mut thinned = false;
        if self.samples.len() == self.samples.capacity() {
            let mut i = 0usize;
            self.samples.retain(|s| {
                i += 1;
                // Keep the odd-numbered ones (the first sample, the baseline, survives) and
                // every quiescent or start sample: they are the cleanest evidence.
                i % 2 == 1 || s.kind != SampleKind::Request && s.kind != SampleKind::Interval
            });
            thinned = true;
            if self.samples.len() == self.samples.capacity() {
                // Only quiescent samples left: drop the oldest after the baseline.
                self.samples.remove(1);
            }
        }
        self.samples.push(s);
        thinned
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(requests: u64, kind: SampleKind) -> Sample {
        Sample {
            t_ms: requests,
            kind,
            round: 0,
            requests,
            ok: requests,
            errors: 0,
            live: 1000 + requests,
            peak: 2000,
            allocs: 0,
            allocated_bytes: 0,
            rss: None,
            connections: 1,
        }
    }

    #[test]
    fn a_full_series_thins_itself_without_growing() {
        let mut s = Series::with_capacity(16);
        let cap = s.samples.capacity();
        s.push(sample(0, SampleKind::Start));
        let mut thinned = 0;
        for r in 1..=200 {
            let kind = if r % 50 == 0 {
                SampleKind::Quiescent
            } else {
                SampleKind::Request
            };
            if s.push(sample(r, kind)) {
                thinned += 1;
            }
        }
        assert_eq!(s.samples.capacity(), cap, "never reallocated");
        assert!(thinned >= 3);
        assert_eq!(
            s.samples()[0].kind,
            SampleKind::Start,
            "the baseline survives"
        );
        assert_eq!(s.samples().last().map(|x| x.requests), Some(200));
        let quiescent: Vec<u64> = s
            .samples()
            .iter()
            .filter(|x| x.kind == SampleKind::Quiescent)
            .map(|x| x.requests)
            .collect();
        assert_eq!(
            quiescent,
            vec![50, 100, 150, 200],
            "quiescent samples are never thinned"
        );
        assert!(
            s.samples()
                .windows(2)
                .all(|w| w[0].requests < w[1].requests),
            "order kept"
        );
    }
}
