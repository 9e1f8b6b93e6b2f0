//! The profiler's shared data types: a call-site id, a live sample, a snapshot of them, a site's
//! totals and the whole profile. Data only, below every module of `sites` that uses them: nothing
//! here calls into the sampler, the profiler or the estimator.

use std::fmt;

use serde::Serialize;

use super::sysvec::SysVec;

/// One call-site stack (its raw frames: [`stack`](super::stack); symbolised:
/// [`symbolize`](super::symbolize)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct StackId(pub(crate) u32);

impl StackId {
    /// The id as a number (stable for the life of the process).
    pub fn index(self) -> u32 {
        self.0
    }
}

/// One live sampled allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveSample {
    /// Unique, increasing sample number (matches the same block across snapshots).
    pub seq: u64,
    /// Where it was allocated.
    pub site: StackId,
    /// Bytes the program asked for.
    pub size: usize,
    /// Estimated bytes it stands for ([`weight`](super::weight) at the rate of the time).
    pub weight: f64,
}

/// The live sampled allocations at one moment, in increasing `seq`. Held in `System` memory, so
/// taking and keeping snapshots leaves the counted heap unchanged.
#[derive(Clone)]
pub struct SiteSnapshot {
    pub(super) samples: SysVec<LiveSample>,
    pub(super) at_us: u64,
}

impl fmt::Debug for SiteSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteSnapshot")
            .field("samples", &self.samples.as_slice().len())
            .field("at_us", &self.at_us)
            .finish()
    }
}

impl SiteSnapshot {
    /// The live samples, in increasing `seq`.
    pub fn samples(&self) -> &[LiveSample] {
        self.samples.as_slice()
    }

    /// Estimated live bytes over all sites.
    pub fn estimated_bytes(&self) -> f64 {
        self.samples().iter().map(|s| s.weight).sum()
    }

    /// When it was taken, µs since sampling was first enabled.
    pub fn at_us(&self) -> u64 {
        self.at_us
    }
}

/// A site's figures since sampling was first enabled (estimates), for DHAT's output and for
/// "largest site" lists. The profiler keeps one per site as it samples and frees;
/// [`profile`](super::profile) copies them out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SiteTotals {
    /// The site.
    pub site: StackId,
    /// Samples taken at it.
    pub samples: u64,
    /// Of which live now.
    pub live_samples: u64,
    /// Estimated bytes and blocks allocated at it.
    pub total_bytes: f64,
    /// (blocks)
    pub total_blocks: f64,
    /// Estimated bytes and blocks live now ("at t-end").
    pub live_bytes: f64,
    /// (blocks)
    pub live_blocks: f64,
    /// Its own maximum of estimated live bytes, and the blocks then.
    pub max_bytes: f64,
    /// (blocks)
    pub max_blocks: f64,
    /// Its estimated live bytes and blocks when the whole estimate peaked ("at t-gmax").
    pub gmax_bytes: f64,
    /// (blocks)
    pub gmax_blocks: f64,
    /// Σ estimated blocks × lifetime in µs (blocks still live count up to now).
    pub lifetimes_us: f64,
}

/// Every site's totals and the profile's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Sites in id order (site 0, for stacks that did not fit in the table, included).
    pub sites: Vec<SiteTotals>,
    /// µs since sampling was first enabled.
    pub elapsed_us: u64,
    /// When the estimated live total peaked, µs since sampling was first enabled.
    pub t_gmax_us: u64,
}
