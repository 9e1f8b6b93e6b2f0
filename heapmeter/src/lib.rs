//! Process memory readings for leakprobe's binaries: a counting, capped global allocator
//! (`cap::Cap` around a counting wrapper of `System`), RSS from `/proc/self/statm`, and, off by
//! default, sampled allocation sites ([`sites`]).
//!
//! This crate owns the workspace's only `unsafe` code. It never logs, never spawns threads and
//! never allocates from the counted heap inside the allocator: it counts, and when sampling is on
//! it places the sampled allocations in a region of its own.
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
use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;

mod hot;
pub mod sites;

use hot::HOT;
use sites::sampler;

/// The allocator leakprobe's binaries install: a hard cap around the counting wrapper.
pub type MeteredAlloc = cap::Cap<Counting<System>>;

/// The counting wrapper of [`System`], for [`MeteredAlloc::new`].
pub const fn counting() -> Counting<System> {
    Counting { inner: System }
}

/// The counting wrapper with the sampling hooks compiled out: what the allocator costs without
/// any sampling code, for `benches/alloc.rs` to compare against (installed, it counts the same
/// and [`sites`] never samples).
#[doc(hidden)]
pub const fn counting_without_sites() -> Counting<System, false> {
    Counting { inner: System }
}

/// A `GlobalAlloc` that forwards to `inner` and keeps process-global counters. With `SITES`
/// (always, except in the allocator bench's baseline) it also carries the [`sites`] sampler's
/// hooks.
#[derive(Debug)]
pub struct Counting<A, const SITES: bool = true> {
    inner: A,
}

#[inline]
fn grew(bytes: usize) {
    let live = HOT.live.fetch_add(bytes, Relaxed) + bytes;
    // A plain load first: the read-modify-write happens only when a new high is set.
    if live > HOT.peak.load(Relaxed) {
        HOT.peak.fetch_max(live, Relaxed);
    }
    HOT.allocated_bytes.fetch_add(bytes as u64, Relaxed);
}

#[inline]
fn counted_alloc(bytes: usize) {
    HOT.allocs.fetch_add(1, Relaxed);
    grew(bytes);
}

#[allow(unsafe_code)]
// SAFETY: every method either forwards to `inner` with the caller's arguments unchanged, or —
// for an allocation the sampler takes, or a pointer it owns (`sampler::owns`) — serves it from
// the sampler's region: page-aligned (the sampler refuses alignments above a page), at least
// `size` bytes, zeroed, and never handed to `inner`. Pointers from `inner` are never given to
// the sampler and vice versa, so each side's contract holds for the blocks it sees. Inside an
// `uncounted` scope allocations always go to `inner` and frees still route by `owns`, so that
// holds there too; only the counters are skipped. The counters are atomics and the scope's depth
// a `const` thread-local without a destructor, read with `try_with`: none of them allocates or
// panics.
unsafe impl<A: GlobalAlloc, const SITES: bool> GlobalAlloc for Counting<A, SITES> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if in_uncounted_scope() {
            // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
            return unsafe { self.inner.alloc(layout) };
        }
        let sampled = if SITES { sampler::alloc(layout) } else { None };
        let p = match sampled {
            Some(p) => p.as_ptr(),
            // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
            None => unsafe { self.inner.alloc(layout) },
        };
        if !p.is_null() {
            counted_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if in_uncounted_scope() {
            // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
            return unsafe { self.inner.alloc_zeroed(layout) };
        }
        let sampled = if SITES { sampler::alloc(layout) } else { None };
        let p = match sampled {
            // Region blocks are always zero (fresh or discarded pages).
            Some(p) => p.as_ptr(),
            // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
            None => unsafe { self.inner.alloc_zeroed(layout) },
        };
        if !p.is_null() {
            counted_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SITES && sampler::owns(ptr) {
            // SAFETY: `ptr` is a live sampled block of `layout.size()` bytes, freed by its owner.
            unsafe { sampler::free(ptr, layout.size()) };
        } else {
            // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
            unsafe { self.inner.dealloc(ptr, layout) };
        }
        if !in_uncounted_scope() {
            HOT.frees.fetch_add(1, Relaxed);
            HOT.live.fetch_sub(layout.size(), Relaxed);
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // In an uncounted scope only a sampled block (which the scope's contract rules out)
        // takes the sampling path: it must not reach `inner`.
        let sampling = if in_uncounted_scope() {
            SITES && sampler::owns(ptr)
        } else {
            SITES && (sampler::is_on() || sampler::owns(ptr))
        };
        let p = if sampling {
            // SAFETY: the caller upholds `realloc`'s contract.
            unsafe { self.realloc_sampling(ptr, layout, new_size) }
        } else {
            // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
            unsafe { self.inner.realloc(ptr, layout, new_size) }
        };
        if !p.is_null() && !in_uncounted_scope() {
            let old = layout.size();
            if new_size > old {
                counted_alloc(new_size - old);
            } else {
                HOT.live.fetch_sub(old - new_size, Relaxed);
            }
        }
        p
    }
}

#[allow(unsafe_code)]
impl<A: GlobalAlloc, const SITES: bool> Counting<A, SITES> {
    /// `realloc` while sampling is on or for a sampled block: the new block is sampled or not by
    /// the usual rule (as an allocation of `new_size`), and the contents move between the
    /// region and `inner` as needed. Returns null, leaving `ptr` intact, if `inner` fails.
    ///
    /// # Safety
    /// `GlobalAlloc::realloc`'s contract.
    #[inline(never)]
    unsafe fn realloc_sampling(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to `layout.align()`, does not
        // overflow `isize`, which is all `from_size_align_unchecked` needs beyond a valid align.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let from_region = sampler::owns(ptr);
        let to = match sampler::alloc(new_layout) {
            Some(p) => p.as_ptr(),
            // SAFETY: forwarded unchanged (`ptr` is `inner`'s since it is not in the region).
            None if !from_region => return unsafe { self.inner.realloc(ptr, layout, new_size) },
            None => {
                // SAFETY: `new_layout` has a non-zero size (the caller's contract).
                let p = unsafe { self.inner.alloc(new_layout) };
                if p.is_null() {
                    return p;
                }
                p
            }
        };
        // SAFETY: both blocks are live, distinct, and at least `min(old, new)` bytes long.
        unsafe { std::ptr::copy_nonoverlapping(ptr, to, layout.size().min(new_size)) };
        if from_region {
            // SAFETY: `ptr` is a live sampled block of `layout.size()` bytes, now moved.
            unsafe { sampler::free(ptr, layout.size()) };
        } else {
            // SAFETY: `ptr` is `inner`'s block with this layout, now moved.
            unsafe { self.inner.dealloc(ptr, layout) };
        }
        to
    }
}

thread_local! {
    // `const` and without a destructor: reading it never allocates and never fails, so the
    // allocator may read it on any thread at any time (during thread teardown too).
    static UNCOUNTED_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Whether this thread is inside [`uncounted`]. While no thread is (the usual case), one load
/// of the counters' cache line, which the allocator touches anyway.
#[inline(always)]
fn in_uncounted_scope() -> bool {
    HOT.uncounted_threads.load(Relaxed) != 0
        && UNCOUNTED_DEPTH.try_with(|d| d.get() != 0).unwrap_or(false)
}

/// Whether this thread is inside [`uncounted`] (whose scope does not reach other threads: work
/// handed to a thread pool from inside it is counted, so such code should stay on this thread).
pub fn is_uncounted() -> bool {
    in_uncounted_scope()
}

/// Runs `f` with this thread's allocations left out of the counters: what `f` allocates (and
/// frees) goes straight to the inner allocator, without touching `live`, `peak`, `allocs`,
/// `frees`, `allocated_bytes` or the [`sites`] sampler. For work that belongs to the measuring,
/// not to what is measured — a look at the verdict in the middle of a run, which copies the
/// series and builds pairwise slopes (megabytes, transiently), would otherwise show in the live
/// readings and set the peak. Other threads are counted as usual meanwhile, so `f` must not
/// hand work to another thread (a thread pool): check [`is_uncounted`]. Scopes nest.
///
/// # Contract
/// The counters stay exact only if every block lives on one side: a block allocated inside a
/// scope (this one or any other) is resized and freed only inside one, and a block allocated
/// outside only outside. The usual case is a closure that frees, before it returns, all it
/// allocates — its result is `Copy`, so it can own no memory (a `Copy` type has no destructor).
/// So `f`:
/// - does not leave a block it allocated for code outside a scope to grow or free (freed there,
///   it would be subtracted from `live` without ever having been added; merely leaked, it is
///   never counted, which is harmless);
/// - neither frees nor grows nor shrinks memory allocated outside any scope (a counted `Vec`
///   captured by reference and pushed to, a counted `String` dropped): that free would not be
///   subtracted, so `live` would keep bytes that are gone.
///
/// A buffer can live outside the counted heap for longer by keeping every allocation, growth
/// and free of it inside scopes (leak-client's JSONL writer does: `Vec::new()` allocates
/// nothing, `reserve` inside a scope does, each `push` and the final drop are scoped too).
///
/// Breaking it is never unsafe — every block still goes back to the allocator that made it —
/// only the readings go wrong. A panic inside `f` breaks it by the size of the panic's payload
/// (allocated inside, freed by whoever catches it).
///
/// The process-wide cap (`cap::Cap`, outside the counting wrapper) still sees these blocks, so a
/// scope's transient memory counts against `--mem-limit`.
///
/// ```
/// let (n, sum) = heapmeter::uncounted(|| {
///     let v: Vec<u64> = (1..=1000).collect(); // freed before the closure returns
///     (v.len(), v.iter().sum::<u64>())
/// });
/// assert_eq!((n, sum), (1000, 500_500));
/// ```
pub fn uncounted<R: Copy>(f: impl FnOnce() -> R) -> R {
    /// Leaves the scope, on return or unwind.
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = UNCOUNTED_DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
            HOT.uncounted_threads.fetch_sub(1, Relaxed);
        }
    }
    // The global count first: this thread reads its own increment, so its next allocation
    // already checks the thread-local depth.
    HOT.uncounted_threads.fetch_add(1, Relaxed);
    let _ = UNCOUNTED_DEPTH.try_with(|d| d.set(d.get() + 1));
    let _leave = Leave;
    f()
}

/// Runs `f` counted again inside an [`uncounted`] scope (outside one, it just runs `f`): for
/// the part of the measuring's work that is the measured program's own, such as a log line
/// written while a progress bar, drawn outside the counted heap, is cleared around it. Scopes
/// around and inside it nest as usual.
///
/// # Contract
/// [`uncounted`]'s, from the other side: `f` neither frees nor grows memory allocated inside a
/// scope, and leaves nothing it allocated for the scope around it to grow or free (its result
/// is `Copy`).
///
/// ```
/// // The scope's work uncounted, the vector inside `counted` counted (tests/counting.rs
/// // checks the counters with the allocator installed).
/// let n = heapmeter::uncounted(|| heapmeter::counted(|| vec![0u8; 100].len()));
/// assert_eq!(n, 100);
/// ```
pub fn counted<R: Copy>(f: impl FnOnce() -> R) -> R {
    /// Puts the scope's depth back, on return or unwind.
    struct Restore(u32);
    impl Drop for Restore {
        fn drop(&mut self) {
            let depth = self.0;
            let _ = UNCOUNTED_DEPTH.try_with(|d| d.set(depth));
        }
    }
    // A depth of 0 is what the allocator checks: this thread is counted, whatever
    // `uncounted_threads` says (it only spares the other threads the thread-local read).
    let depth = UNCOUNTED_DEPTH.try_with(|d| d.replace(0)).unwrap_or(0);
    let _restore = Restore(depth);
    f()
}

/// One reading of the counting allocator's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Bytes currently allocated and not freed.
    pub live: usize,
    /// Highest `live` seen since start.
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
    let allocs = HOT.allocs.load(Relaxed);
    Snapshot {
        live: HOT.live.load(Relaxed),
        peak: HOT.peak.load(Relaxed),
        allocs,
        frees: HOT.frees.load(Relaxed),
        allocated_bytes: HOT.allocated_bytes.load(Relaxed),
        installed: allocs > 0,
    }
}

/// Live heap bytes right now: one atomic load, for hot paths that need nothing else.
pub fn live_bytes() -> usize {
    HOT.live.load(Relaxed)
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
