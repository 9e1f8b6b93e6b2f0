//! Sampled allocation sites: a heap profiler inside the counting allocator, off by default, that
//! says *where* live bytes are and which call sites grow between two readings. It owns the
//! sampling, the stack table and the estimates; it must not measure itself (its bookkeeping
//! lives in mappings of its own and `System` memory, never the counted heap) and must cost
//! nothing measurable while off.
//!
//! # Use
//! ```ignore
//! heapmeter::sites::set_sample_rate(512 * 1024); // mean bytes between samples (the default)
//! heapmeter::sites::enable()?;                   // reserves the sample region on first use
//! let first = heapmeter::sites::snapshot();     // at a quiescent reading
//! // ... requests ...
//! let last = heapmeter::sites::snapshot();      // at a later quiescent reading
//! let trim = heapmeter::sites::Trim { harness: &["my_app::worker"] };
//! for site in heapmeter::sites::grouped_growth(&first, &last, requests, &trim) {
//!     if site.growth.is_growing(heapmeter::sites::GROWTH_Z) { /* report site.frames */ }
//! }
//! let profile = heapmeter::sites::profile();  // every site's totals, now
//! heapmeter::sites::write_dhat_file("dhat-heap.json".as_ref(), &profile, &opts)?; // dh_view.html
//! ```
//!
//! # How it works
//! - **Sampling by bytes.** Each thread counts down the bytes it allocates to its next sample
//!   point, drawn from an exponential distribution of mean `R` ([`set_sample_rate`], default
//!   [`DEFAULT_RATE`]): a Poisson process over allocated bytes, so an allocation of `s` bytes is
//!   sampled with probability `1 − e^(−s/R)` and stands for `s / (1 − e^(−s/R))` bytes (see
//!   [`estimate`] for the estimator and its variance). A realloc counts as an
//!   allocation of its new size. The countdown is two thread-local cells and a tiny PRNG
//!   (splitmix64, one stream per thread of the seed set by [`set_seed`]): no allocation.
//! - **A region of their own.** A sampled allocation is not given to the inner allocator: it is
//!   carved, page-granular, from one large address range reserved at the first [`enable`]
//!   (`mmap` with `MAP_NORESERVE`; address space, not memory). `dealloc` recognises a sampled
//!   block by a subtraction and one compare against the region's base, so the unsampled frees
//!   (nearly all) cost one extra load. Freed blocks are zeroed (up to 64 KiB) or
//!   `madvise(MADV_DONTNEED)`-ed (larger), so free region memory always reads zero, and reused.
//!   The counted heap is unchanged by sampling: a sampled block counts its requested size in
//!   live bytes, allocations and the cap exactly like any other (page rounding is not counted).
//! - **Stacks.** The sampled path captures up to 48 instruction pointers with
//!   `backtrace::trace_unsynchronized` (no allocation), interns them in a fixed table inside the
//!   profiler's mapping, and records the block (size, weight, time, site) in a per-page record
//!   found from the block's address. All of it behind one lock that is never held while
//!   allocating from the global allocator; a per-thread guard stops the profiler from sampling
//!   itself. Symbols are resolved later, at report time ([`symbolize`]), with a cache.
//! - **Threads.** The tables are global: a block allocated on one thread and freed on another is
//!   matched by its address.
//!
//! # Costs (`just bench-alloc`)
//! Off: one load and a not-taken branch per allocation, one load, a subtraction and a compare
//! per free (a few tenths of a ns on a 12–20 ns malloc+free pair). On: two thread-local cells per
//! allocation, and per sample (one per `R` bytes on average) a stack walk, the lock, and at its
//! free a memset (blocks up to 64 KiB, kept resident for reuse) or an `madvise` (larger); about
//! 1–2 µs per sample in the bench. A sampled block occupies whole pages of the region: RSS grows
//! by up to a page per live sampled small block (≈ live bytes × page / `R`, under 1% at the
//! default rate), plus the zeroed pages kept on the free lists (at most the peak of the former).
//!
//! # Precision
//! A site's estimate rests on the samples behind it: about `(2/ε)²` samples for ±ε at 2σ, so
//! retained bytes of about `64·R` for ±25% (32 MiB at the default rate; a growth of 64 B per
//! request over 10k requests needs `R` ≈ 8 KiB). [`SiteGrowth`] carries the sample counts and
//! the standard error, so a caller can say when a site's figure is too thin to judge.
//!
//! # Reading sites
//! Symbolising ([`symbolize`], [`grouped_growth`], [`write_dhat`]) loads the binary's debug info
//! into the ordinary heap (tens of MB, counted but never sampled): do it after the last reading.
//! With `debug = "line-tables-only"` functions carry bare names (`remember`, not
//! `app::Cache::remember`); file and line are exact either way, and [`Trim`] handles both. A
//! profile with `debug = "limited"` gives full paths.
//!
//! # Limits
//! Allocations aligned to more than a page are never sampled (counted in
//! [`SamplerStats::dropped_align`]); if the 64 GiB region fills, further samples are dropped
//! ([`SamplerStats::dropped_region_full`]); past 65,535 distinct stacks, new stacks share site 0.
//! [`enable`] fails (and sampling stays off) where the address space cannot be reserved, e.g.
//! under `vm.overcommit_memory = 2` or a small `ulimit -v`.

mod arena;
mod dhat;
pub mod estimate;
mod profile;
pub(crate) mod sampler;
mod symbols;
mod sysvec;
mod types;

use std::collections::HashMap;
use std::fmt;
use std::io;

use serde::Serialize;

pub use dhat::{DhatOptions, write_dhat, write_dhat_file};
pub use estimate::{SiteGrowth, SiteLive, growth, sample_probability, weight};
pub use sampler::DEFAULT_RATE;
pub use symbols::{
    ALLOCATOR_FILES, ALLOCATOR_FRAMES, Frame, RUNTIME_FRAMES, Trim, headline, path_matches,
    short_path, stack, symbolize, symbolize_all, trim_frames,
};
use sysvec::SysVec;
pub use types::{LiveSample, Profile, SiteSnapshot, SiteTotals, StackId};

/// A `z` for [`SiteGrowth::is_growing`] that keeps a clean run's dozens of sites from showing a
/// false grower by chance (about 1 in 700 per site, one-sided).
pub const GROWTH_Z: f64 = 3.0;

/// The sampler's own state, for diagnostics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SamplerStats {
    /// Sampling is on.
    pub enabled: bool,
    /// The sample region is reserved (after the first [`enable`]).
    pub mapped: bool,
    /// Mean bytes between samples.
    pub rate: u64,
    /// Samples taken since the first enable.
    pub samples: u64,
    /// Samples live now.
    pub live_samples: u64,
    /// Distinct stacks seen.
    pub sites: u32,
    /// Region pages held by live sampled blocks (rounded up to powers of two).
    pub pages_in_use: u64,
    /// Estimated live bytes over all sites.
    pub estimated_live_bytes: f64,
    /// Samples not taken because their alignment exceeds a page.
    pub dropped_align: u64,
    /// Samples not taken because the region was full.
    pub dropped_region_full: u64,
}

/// Why sampling could not be switched on.
#[derive(Debug)]
pub enum SitesError {
    /// The address range for sampled blocks (or the profiler's tables) could not be reserved.
    Reserve(io::Error),
}

impl fmt::Display for SitesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SitesError::Reserve(e) => write!(
                f,
                "cannot reserve address space for allocation-site sampling: {e}"
            ),
        }
    }
}

impl std::error::Error for SitesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SitesError::Reserve(e) => Some(e),
        }
    }
}

/// Switches sampling on (reserving the sample region the first time). Only allocations through
/// an installed [`Counting`](crate::Counting) allocator are sampled.
pub fn enable() -> Result<(), SitesError> {
    sampler::enable().map_err(SitesError::Reserve)
}

/// Switches sampling off. Blocks already sampled stay recognised and are freed correctly.
pub fn disable() {
    sampler::disable();
}

/// Whether sampling is on.
pub fn is_enabled() -> bool {
    sampler::is_on()
}

/// Sets the mean bytes allocated between samples (`R`, at least 1), before or while enabled;
/// every thread redraws its countdown at its next allocation.
pub fn set_sample_rate(mean_bytes: u64) {
    sampler::set_rate(mean_bytes);
}

/// The mean bytes between samples.
pub fn sample_rate() -> u64 {
    sampler::rate()
}

/// Seeds the sampling PRNG. The calling thread's samples then repeat exactly for the same seed
/// and the same allocations on it; other threads take further streams in the order they next
/// allocate.
pub fn set_seed(seed: u64) {
    sampler::set_seed(seed);
}

/// The live sampled allocations now. Allocates only from `System`.
pub fn snapshot() -> SiteSnapshot {
    let mut samples = SysVec::new();
    let mut p = profile::lock();
    p.snapshot_into(&mut samples);
    let at_us = p.now_us();
    drop(p);
    SiteSnapshot { samples, at_us }
}

/// Every site's totals (for DHAT's output and "largest site" lists).
pub fn profile() -> Profile {
    let mut buf = SysVec::new();
    let mut p = profile::lock();
    p.totals_into(&mut buf);
    let (elapsed_us, t_gmax_us) = (p.now_us(), p.global.t_gmax_us);
    drop(p);
    Profile {
        sites: buf.as_slice().to_vec(),
        elapsed_us,
        t_gmax_us,
    }
}

/// The sampler's own state.
pub fn stats() -> SamplerStats {
    let p = profile::lock();
    SamplerStats {
        enabled: sampler::is_on(),
        mapped: p.is_mapped(),
        rate: sampler::rate(),
        samples: p.global.samples,
        live_samples: p.live_samples(),
        sites: p.sites(),
        pages_in_use: p.pages_in_use(),
        estimated_live_bytes: p.global.live_bytes.max(0.0),
        dropped_align: sampler::dropped_align(),
        dropped_region_full: p.global.dropped_region_full,
    }
}

/// A site as a reader sees it: trimmed frames, and the growth of every stack that trims to them.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteReport {
    /// Symbolised, trimmed frames, innermost first ([`headline`] picks the line to show).
    pub frames: Vec<Frame>,
    /// The summed growth of `stacks` (its `site` is the first of them).
    pub growth: SiteGrowth,
    /// The stacks merged into this site.
    pub stacks: Vec<StackId>,
}

/// [`growth`] between two snapshots, symbolised and trimmed, with stacks that trim to the same
/// frames (function, file, line) merged; largest growth first. Symbolises: call it at report
/// time (what it allocates on this thread is not sampled).
pub fn grouped_growth(
    first: &SiteSnapshot,
    last: &SiteSnapshot,
    requests: u64,
    trim: &Trim<'_>,
) -> Vec<SiteReport> {
    sampler::quietly(|| grouped_growth_unsampled(first, last, requests, trim))
}

fn grouped_growth_unsampled(
    first: &SiteSnapshot,
    last: &SiteSnapshot,
    requests: u64,
    trim: &Trim<'_>,
) -> Vec<SiteReport> {
    type Key = Vec<(String, Option<String>, Option<u32>)>;
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut out: Vec<SiteReport> = Vec::new();
    for g in growth(first, last, requests) {
        let frames = symbolize(g.site, trim);
        let key: Key = frames
            .iter()
            .map(|f| (f.function.clone(), f.file.clone(), f.line))
            .collect();
        match index.get(&key) {
            Some(&i) => {
                out[i].growth.absorb(&g);
                out[i].stacks.push(g.site);
            }
            None => {
                index.insert(key, out.len());
                out.push(SiteReport {
                    frames,
                    growth: g,
                    stacks: vec![g.site],
                });
            }
        }
    }
    out.sort_by(|a, b| b.growth.growth.total_cmp(&a.growth.growth));
    out
}
