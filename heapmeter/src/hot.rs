//! The allocator's process-global state: the counters `Counting` updates, the sampler's two
//! flags and the number of threads in an uncounted scope, in one cache-line-aligned static that
//! both the allocator (`lib.rs`) and the sampler (`sites::sampler`) read. It holds data only:
//! no allocation, no logic beyond its constants.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};

/// Address space reserved for sampled blocks: 64 GiB on 64-bit targets.
#[cfg(target_pointer_width = "64")]
pub(crate) const REGION_LEN: usize = 1 << 36;
/// Address space reserved for sampled blocks: 256 MiB where addresses are 32 bits.
#[cfg(not(target_pointer_width = "64"))]
pub(crate) const REGION_LEN: usize = 1 << 28;

/// A base that no user-space pointer falls within `REGION_LEN` of (`ptr - base` wraps to at
/// least `REGION_LEN` for every address below `2^64 − REGION_LEN`): `region_base` until the
/// sampler's region is mapped.
pub(crate) const UNMAPPED: usize = 0usize.wrapping_sub(REGION_LEN);

/// The allocator's process-global state, in one cache-line-aligned static so that the hot path
/// reaches every field from one address (the sampler's two flags included).
#[repr(C, align(64))]
pub(crate) struct Hot {
    /// Live heap bytes right now.
    pub(crate) live: AtomicUsize,
    /// High-water mark of `live` since start.
    pub(crate) peak: AtomicUsize,
    /// Allocations (alloc, alloc_zeroed, and reallocs that move or grow) since start.
    pub(crate) allocs: AtomicU64,
    /// Deallocations since start.
    pub(crate) frees: AtomicU64,
    /// Bytes requested from the allocator since start (growth of reallocs included).
    pub(crate) allocated_bytes: AtomicU64,
    /// The sampler's switch: 0 off, otherwise its epoch (see `sites::sampler`).
    pub(crate) sampling: AtomicU32,
    /// Threads inside an [`uncounted`](crate::uncounted) scope right now: while 0, the
    /// allocator skips the thread-local check (one load of this line it already touches).
    pub(crate) uncounted_threads: AtomicU32,
    /// Start of the sampler's region (see `sites::sampler`).
    pub(crate) region_base: AtomicUsize,
}

pub(crate) static HOT: Hot = Hot {
    live: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
    allocs: AtomicU64::new(0),
    frees: AtomicU64::new(0),
    allocated_bytes: AtomicU64::new(0),
    sampling: AtomicU32::new(0),
    uncounted_threads: AtomicU32::new(0),
    region_base: AtomicUsize::new(UNMAPPED),
};
