//! Process memory readings for leakprobe's binaries: a counting, capped global allocator
//! (`cap::Cap` around a counting wrapper of `System`) and RSS from `/proc/self/statm`.
//!
//! This crate owns the workspace's only `unsafe` code. It never logs, never spawns threads and
//! never allocates inside the allocator: it only counts.
//!
//! # Setup
//! Each binary (and each heap-measuring test file) installs exactly one allocator:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: heapmeter::MeteredAlloc = heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);
//! ```
//!
//! and reads it with [`snapshot`]; the cap is changed with `ALLOC.set_limit(bytes)`. Counters
//! are process-global statics, so library code reads them without a handle to the allocator.
//! In a process where no [`Counting`] allocator is installed, [`Snapshot::installed`] is false.

pub mod size;
pub use size::{SIZE_RULE, SizeError, parse_size};

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// The allocator leakprobe's binaries install: a hard cap around the counting wrapper.
pub type MeteredAlloc = cap::Cap<Counting<System>>;

/// The counting wrapper of [`System`], for [`MeteredAlloc::new`].
pub const fn counting() -> Counting<System> {
    Counting { inner: System }
}

/// Live heap bytes right now.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// High-water mark of [`LIVE`] since start (or since [`reset_peak`]).
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Allocations (alloc, alloc_zeroed, and reallocs that move or grow) since start.
static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Deallocations since start.
static FREES: AtomicU64 = AtomicU64::new(0);
/// Bytes requested from the allocator since start (growth of reallocs included).
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

/// A `GlobalAlloc` that forwards to `inner` and keeps process-global counters.
#[derive(Debug)]
pub struct Counting<A> {
    inner: A,
}

#[inline]
fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    // A plain load first: the read-modify-write happens only when a new high is set.
    if live > PEAK.load(Relaxed) {
        PEAK.fetch_max(live, Relaxed);
    }
    ALLOCATED_BYTES.fetch_add(bytes as u64, Relaxed);
}

#[allow(unsafe_code)]
// SAFETY: every method forwards to `inner` with the caller's arguments unchanged and returns
// its result unchanged; the wrapper only updates atomic counters, which neither allocates nor
// panics, so all of `GlobalAlloc`'s contracts are exactly those of `inner`.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let p = unsafe { self.inner.alloc(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { self.inner.dealloc(ptr, layout) };
        FREES.fetch_add(1, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let old = layout.size();
            if new_size > old {
                ALLOCS.fetch_add(1, Relaxed);
                grew(new_size - old);
            } else {
                LIVE.fetch_sub(old - new_size, Relaxed);
            }
        }
        p
    }
}

/// One reading of the counting allocator's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Bytes currently allocated and not freed.
    pub live: usize,
    /// Highest `live` seen since start or the last [`reset_peak`].
    pub peak: usize,
    /// Allocation calls since start (growing reallocs included).
    pub allocs: u64,
    /// Deallocation calls since start.
    pub frees: u64,
    /// Bytes handed out since start.
    pub allocated_bytes: u64,
    /// Whether a [`Counting`] allocator is installed in this process (it has counted something).
    pub installed: bool,
}

/// Reads the allocator's counters (each atomically; the set is not one atomic snapshot).
pub fn snapshot() -> Snapshot {
    let allocs = ALLOCS.load(Relaxed);
    Snapshot {
        live: LIVE.load(Relaxed),
        peak: PEAK.load(Relaxed),
        allocs,
        frees: FREES.load(Relaxed),
        allocated_bytes: ALLOCATED_BYTES.load(Relaxed),
        installed: allocs > 0,
    }
}

/// Live heap bytes right now: one atomic load, for hot paths that need nothing else.
pub fn live_bytes() -> usize {
    LIVE.load(Relaxed)
}

/// Restarts the high-water mark from the current live bytes.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Relaxed), Relaxed);
}

/// Resident set size of this process in bytes, from `/proc/self/statm`; `None` where that file
/// does not exist or cannot be parsed (non-Linux). Allocates nothing, so reading it does not
/// disturb the heap being measured.
pub fn rss_bytes() -> Option<u64> {
    use std::io::Read;
    let mut buf = [0u8; 128];
    let mut file = std::fs::File::open("/proc/self/statm").ok()?;
    let n = file.read(&mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let resident_pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(resident_pages * page_size())
}

fn page_size() -> u64 {
    *PAGE_SIZE.get_or_init(detect_page_size)
}

static PAGE_SIZE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

fn detect_page_size() -> u64 {
    // AT_PAGESZ (6) from the auxiliary vector; falls back to 4 KiB.
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 4096;
    };
    let word = std::mem::size_of::<usize>();
    auxv.chunks_exact(2 * word)
        .find_map(|pair| {
            let (k, v) = pair.split_at(word);
            let key = usize::from_ne_bytes(k.try_into().ok()?);
            let value = usize::from_ne_bytes(v.try_into().ok()?);
            (key == 6).then_some(value as u64)
        })
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_readable_on_linux() {
        let rss = rss_bytes().expect("/proc/self/statm readable");
        assert!(rss > 100 * 1024, "rss {rss} implausibly small");
    }

    #[test]
    fn page_size_is_a_power_of_two() {
        assert!(page_size().is_power_of_two());
        assert!(page_size() >= 4096);
    }

    #[test]
    fn not_installed_in_the_test_harness() {
        assert!(!snapshot().installed);
    }
}
