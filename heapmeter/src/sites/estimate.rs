//! The estimator: what one sampled allocation stands for, and how much a site grew between two
//! snapshots, with its standard error. Pure arithmetic over snapshots; no allocator, no locks.
//!
//! # Sampling and the unbiased weight
//! Bytes allocated form one stream per thread; a sample point falls in it as a Poisson process of
//! rate `1/R` (the countdown to the next point is drawn from an exponential distribution of mean
//! `R`). An allocation of `s` bytes is sampled if at least one point falls in its `s` bytes, with
//! probability `p(s) = 1 − e^(−s/R)`. Counting each sampled allocation as
//!
//! ```text
//!     w(s) = s / p(s) = s / (1 − e^(−s/R))      bytes, and  w(s)/s = 1/p(s)  blocks
//! ```
//!
//! makes every estimate a Horvitz–Thompson sum: `E[Σ_sampled w] = Σ_all s`, for any mix of sizes
//! (the estimator of jemalloc's and tcmalloc's heap profilers). A block much smaller than `R`
//! stands for about `R` bytes; one much larger than `R` is almost surely sampled and stands for
//! itself.
//!
//! # Variance
//! A block's contribution is `w·B` with `B ~ Bernoulli(p)`, whose variance is
//! `w²·p·(1−p) = s²(1−p)/p`. Its unbiased estimate from the sample is `w²(1−p) = w·(w − s)`
//! per sampled block, summed over the blocks in question. For small blocks that is about `R²`
//! per sample (so `k` samples give a relative standard error of about `1/√k`); for blocks much
//! larger than `R` it is about 0 (they are always sampled).
//!
//! # Growth between two snapshots
//! Samples are matched by their sequence number. Blocks live in both cancel exactly (same
//! sampled status in both), so the growth estimate is `Σ w` over samples live only in the later
//! snapshot minus `Σ w` over samples live only in the earlier one, and its variance is the sum of
//! `w(w − s)` over those same samples. The normal approximation `growth ± z·se` is fair from a
//! handful of samples up; [`SiteGrowth::new_samples`] says how many samples an estimate rests on.

use std::collections::HashMap;

use super::types::{LiveSample, SiteSnapshot, StackId};

/// Probability that an allocation of `size` bytes is sampled at a mean of one sample per
/// `rate` bytes: `1 − e^(−size/rate)`.
pub fn sample_probability(size: usize, rate: u64) -> f64 {
    -(-(size as f64) / rate.max(1) as f64).exp_m1()
}

/// Estimated bytes a sampled allocation of `size` bytes stands for: `size / p(size)`.
pub fn weight(size: usize, rate: u64) -> f64 {
    let p = sample_probability(size, rate);
    if p > 0.0 { size as f64 / p } else { 0.0 }
}

/// Unbiased estimate of the variance a sampled block contributes: `w·(w − size)`.
pub fn variance_term(size: usize, weight: f64) -> f64 {
    (weight * (weight - size as f64)).max(0.0)
}

/// Live sampled allocations of one site in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteLive {
    /// The site.
    pub site: StackId,
    /// Estimated live bytes.
    pub bytes: f64,
    /// Estimated live blocks.
    pub blocks: f64,
    /// Live samples behind the estimate.
    pub samples: u64,
    /// Estimated variance of `bytes`.
    pub variance: f64,
}

impl SiteLive {
    /// Standard error of [`SiteLive::bytes`].
    pub fn std_err(&self) -> f64 {
        self.variance.sqrt()
    }
}

/// Groups a snapshot's samples by site, largest estimated bytes first.
pub fn by_site(samples: &[LiveSample]) -> Vec<SiteLive> {
    let mut map: HashMap<StackId, SiteLive> = HashMap::new();
    for s in samples {
        let e = map.entry(s.site).or_insert(SiteLive {
            site: s.site,
            bytes: 0.0,
            blocks: 0.0,
            samples: 0,
            variance: 0.0,
        });
        e.bytes += s.weight;
        e.blocks += s.weight / s.size as f64;
        e.samples += 1;
        e.variance += variance_term(s.size, s.weight);
    }
    let mut v: Vec<SiteLive> = map.into_values().collect();
    v.sort_by(|a, b| b.bytes.total_cmp(&a.bytes).then(a.site.cmp(&b.site)));
    v
}

impl SiteSnapshot {
    /// Live samples grouped by site, largest first.
    pub fn by_site(&self) -> Vec<SiteLive> {
        by_site(self.samples())
    }
}

/// How one site's estimated live bytes changed between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteGrowth {
    /// The site.
    pub site: StackId,
    /// Estimated live bytes at the first snapshot.
    pub first_bytes: f64,
    /// Estimated live bytes at the last snapshot.
    pub last_bytes: f64,
    /// Live samples at the last snapshot.
    pub last_samples: u64,
    /// Estimated growth in bytes (`last − first`, computed from the samples that changed).
    pub growth: f64,
    /// Estimated variance of `growth`.
    pub variance: f64,
    /// Samples live at the last snapshot and not at the first (allocated in between, still live).
    pub new_samples: u64,
    /// Samples live at the first snapshot and not at the last (freed in between).
    pub gone_samples: u64,
    /// Requests completed between the two snapshots.
    pub requests: u64,
}

impl SiteGrowth {
    fn empty(site: StackId, requests: u64) -> SiteGrowth {
        SiteGrowth {
            site,
            first_bytes: 0.0,
            last_bytes: 0.0,
            last_samples: 0,
            growth: 0.0,
            variance: 0.0,
            new_samples: 0,
            gone_samples: 0,
            requests,
        }
    }

    /// Standard error of [`SiteGrowth::growth`] in bytes.
    pub fn std_err(&self) -> f64 {
        self.variance.sqrt()
    }

    /// Growth per request; `None` when no request completed in between.
    pub fn per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.growth / self.requests as f64)
    }

    /// `growth ± z·se`, per request; `None` when no request completed in between.
    pub fn interval_per_request(&self, z: f64) -> Option<(f64, f64)> {
        let n = self.requests as f64;
        let half = z * self.std_err();
        (self.requests > 0).then(|| ((self.growth - half) / n, (self.growth + half) / n))
    }

    /// Whether the site grew beyond its interval: `growth − z·se > 0`, with at least one new
    /// sample (a site with no new live sample has no evidence of growth).
    pub fn is_growing(&self, z: f64) -> bool {
        self.new_samples > 0 && self.growth - z * self.std_err() > 0.0
    }

    /// Adds another site's figures to this one (for sites whose stacks symbolise to the same
    /// frames); the sums and variances add because the samples are distinct.
    pub fn absorb(&mut self, other: &SiteGrowth) {
        self.first_bytes += other.first_bytes;
        self.last_bytes += other.last_bytes;
        self.last_samples += other.last_samples;
        self.growth += other.growth;
        self.variance += other.variance;
        self.new_samples += other.new_samples;
        self.gone_samples += other.gone_samples;
    }
}

/// Per-site growth from `first` to `last` (two snapshots of the same process, `requests`
/// requests apart), largest growth first. Sites present in either snapshot are listed.
pub fn growth(first: &SiteSnapshot, last: &SiteSnapshot, requests: u64) -> Vec<SiteGrowth> {
    growth_of(first.samples(), last.samples(), requests)
}

pub(crate) fn growth_of(
    first: &[LiveSample],
    last: &[LiveSample],
    requests: u64,
) -> Vec<SiteGrowth> {
    let mut map: HashMap<StackId, SiteGrowth> = HashMap::new();
    fn entry(map: &mut HashMap<StackId, SiteGrowth>, site: StackId, n: u64) -> &mut SiteGrowth {
        map.entry(site)
            .or_insert_with(|| SiteGrowth::empty(site, n))
    }
    // Both slices are sorted by `seq` (snapshots are): merge them.
    let (mut i, mut j) = (0, 0);
    while i < first.len() || j < last.len() {
        let a = first.get(i);
        let b = last.get(j);
        match (a, b) {
            (Some(a), Some(b)) if a.seq == b.seq => {
                let e = entry(&mut map, a.site, requests);
                e.first_bytes += a.weight;
                e.last_bytes += b.weight;
                e.last_samples += 1;
                i += 1;
                j += 1;
            }
            (Some(a), b) if b.is_none_or(|b| a.seq < b.seq) => {
                let e = entry(&mut map, a.site, requests);
                e.first_bytes += a.weight;
                e.growth -= a.weight;
                e.variance += variance_term(a.size, a.weight);
                e.gone_samples += 1;
                i += 1;
            }
            (_, Some(b)) => {
                let e = entry(&mut map, b.site, requests);
                e.last_bytes += b.weight;
                e.last_samples += 1;
                e.growth += b.weight;
                e.variance += variance_term(b.size, b.weight);
                e.new_samples += 1;
                j += 1;
            }
            (_, None) => break,
        }
    }
    let mut v: Vec<SiteGrowth> = map.into_values().collect();
    v.sort_by(|a, b| b.growth.total_cmp(&a.growth).then(a.site.cmp(&b.site)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: u64 = 512 * 1024;

    fn sample(seq: u64, site: u32, size: usize) -> LiveSample {
        LiveSample {
            seq,
            site: StackId(site),
            size,
            weight: weight(size, R),
        }
    }

    #[test]
    fn weight_is_about_the_rate_for_small_blocks_and_the_size_for_large_ones() {
        let small = weight(64, R);
        assert!((small - (R as f64 + 32.0)).abs() < 1.0, "{small}");
        let large = weight(64 << 20, R);
        assert!((large - (64 << 20) as f64).abs() < 1.0, "{large}");
        assert!(
            (sample_probability(R as usize, R) - (1.0 - (-1.0f64).exp())).abs() < 1e-12,
            "one mean apart: 1 - 1/e"
        );
        assert_eq!(variance_term(64 << 20, large), 0.0);
        assert!((variance_term(64, small).sqrt() - R as f64).abs() < 100.0);
    }

    #[test]
    fn the_weight_is_unbiased_over_the_sampling_distribution() {
        // E[w·B] = w·p = s for every size.
        for s in [1usize, 64, 4096, 300_000, R as usize, 10 << 20] {
            let expect = weight(s, R) * sample_probability(s, R);
            assert!((expect - s as f64).abs() < 1e-6 * s as f64, "{s}: {expect}");
        }
    }

    #[test]
    fn growth_counts_only_samples_that_changed() {
        // Site 1: one survivor, two new. Site 2: one freed. Site 3: a large block kept.
        let first = [sample(1, 1, 64), sample(2, 2, 64), sample(3, 3, 8 << 20)];
        let last = [
            sample(1, 1, 64),
            sample(3, 3, 8 << 20),
            sample(7, 1, 64),
            sample(9, 1, 128),
        ];
        let g = growth_of(&first, &last, 1000);
        assert_eq!(g.len(), 3);
        let by = |id| g.iter().find(|x| x.site == StackId(id)).expect("site");
        let s1 = by(1);
        assert_eq!(
            (s1.new_samples, s1.gone_samples, s1.last_samples),
            (2, 0, 3)
        );
        let expect = weight(64, R) + weight(128, R);
        assert!((s1.growth - expect).abs() < 1e-6);
        assert!((s1.last_bytes - s1.first_bytes - s1.growth).abs() < 1e-6);
        let v = variance_term(64, weight(64, R)) + variance_term(128, weight(128, R));
        assert!((s1.variance - v).abs() < 1e-3);
        assert_eq!(
            s1.per_request().map(|x| (x * 1000.0 - expect).abs() < 1e-6),
            Some(true)
        );
        assert!(!s1.is_growing(3.0), "two samples are not enough at z = 3");
        assert!(s1.is_growing(1.0));
        let s2 = by(2);
        assert_eq!((s2.gone_samples, s2.last_samples), (1, 0));
        assert!(s2.growth < 0.0);
        let s3 = by(3);
        assert_eq!((s3.growth, s3.variance, s3.new_samples), (0.0, 0.0, 0));
        assert!(!s3.is_growing(0.0));
        assert_eq!(g[0].site, StackId(1), "largest growth first");
    }

    #[test]
    fn many_small_samples_make_a_tight_interval_and_absorb_adds_them() {
        let last: Vec<LiveSample> = (0..100).map(|i| sample(i, 5, 256)).collect();
        let g = growth_of(&[], &last, 10_000);
        let s = g[0];
        let rel = s.std_err() / s.growth;
        assert!((rel - 0.1).abs() < 0.01, "1/sqrt(100): {rel}");
        let (lo, hi) = s.interval_per_request(2.0).expect("requests > 0");
        assert!(lo > 0.0 && lo < s.growth / 1e4 && hi > s.growth / 1e4);
        let mut twice = s;
        twice.absorb(&s);
        assert_eq!(twice.new_samples, 200);
        assert!((twice.growth - 2.0 * s.growth).abs() < 1e-6);
        assert_eq!(growth_of(&[], &[], 0).len(), 0);
        assert_eq!(SiteGrowth::empty(StackId(1), 0).per_request(), None);
    }

    #[test]
    fn by_site_sums_weights_and_blocks() {
        let v = by_site(&[sample(1, 1, 64), sample(2, 1, 64), sample(3, 2, 1 << 20)]);
        assert_eq!(v[0].site, StackId(2));
        assert_eq!(v[1].samples, 2);
        assert!((v[1].blocks - 2.0 * weight(64, R) / 64.0).abs() < 1e-6);
    }
}
