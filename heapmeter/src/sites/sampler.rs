//! The allocator's side of the profiler: the "enabled" flag, each thread's byte countdown to its
//! next sample, and the slow path that captures a stack and places a sampled block in the region.
//! Called only from `Counting`'s methods; it never allocates through the global allocator and
//! never re-enters itself (a per-thread guard).
//!
//! Cost when off: one relaxed load of [`SAMPLING`] per allocation, and on `dealloc` one relaxed
//! load of [`REGION_BASE`], a subtraction and a compare. When on, each allocation also reads and
//! writes two thread-local cells; one allocation in about `R / size` takes the slow path.

use std::alloc::Layout;
use std::cell::Cell;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

use super::arena::{MAX_DEPTH, discard};
use super::profile;

// `SAMPLING`: 0 when sampling is off; otherwise the current epoch (bumped by every enable, rate
// or seed change, so that each thread redraws its countdown under the new settings).
// `REGION_BASE`: start of the sample region once mapped. Set once, before sampling is first
// switched on, and never changed: a pointer to a sampled block can only be seen after it.
// Both live in `crate::hot::HOT`, beside the counters the allocator updates anyway.
use crate::hot::{HOT, REGION_LEN};

/// Default mean bytes allocated between samples (jemalloc's and tcmalloc's default too).
pub const DEFAULT_RATE: u64 = 512 * 1024;

static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
/// Mean bytes between samples (`R`).
static RATE: AtomicU64 = AtomicU64::new(DEFAULT_RATE);
static SEED: AtomicU64 = AtomicU64::new(0x853c_49e6_748f_ea9b);
/// Bumped by every `set_seed`: threads seeded under an older one reseed.
static SEED_GEN: AtomicU32 = AtomicU32::new(0);
/// The next thread's PRNG stream number (stream 0 is the thread that called `set_seed`).
static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);
static NEXT_EPOCH: AtomicU32 = AtomicU32::new(1);
/// A `seeded` value no generation takes: "never seeded".
const NEVER: u32 = u32::MAX;
/// Sampled allocations not taken: alignment above a page.
static DROPPED_ALIGN: AtomicU64 = AtomicU64::new(0);

struct ThreadSampler {
    /// Bytes left before the next sample point (≥ 1 while valid).
    countdown: Cell<i64>,
    /// The epoch `countdown` was drawn under (0: never).
    epoch: Cell<u32>,
    /// The seed generation `rng` was seeded under ([`NEVER`]: not yet).
    seeded: Cell<u32>,
    rng: Cell<u64>,
    /// Inside the profiler: allocations made now are never sampled.
    busy: Cell<bool>,
}

thread_local! {
    // `const` and without a destructor: accessing it never allocates and never fails.
    static THREAD: ThreadSampler = const {
        ThreadSampler {
            countdown: Cell::new(0),
            epoch: Cell::new(0),
            seeded: Cell::new(NEVER),
            rng: Cell::new(0),
            busy: Cell::new(false),
        }
    };
}

/// splitmix64: a tiny, allocation-free PRNG step (state advance + output mix).
fn splitmix(state: &Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
    state.set(s);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A draw from the exponential distribution of mean `rate`, rounded up to whole bytes (≥ 1):
/// the position of the next sample point.
fn draw(rng: &Cell<u64>, rate: u64) -> i64 {
    let u = ((splitmix(rng) >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64); // in (0, 1]
    let d = -(rate as f64) * u.ln();
    (d.ceil() as i64).max(1)
}

impl ThreadSampler {
    /// Starts this thread's PRNG on stream `stream` of the current seed.
    fn reseed(&self, stream: u64, generation: u32) {
        self.rng
            .set(SEED.load(Relaxed) ^ stream.wrapping_mul(0xd6e8_feb8_6659_fd93));
        self.seeded.set(generation);
    }

    /// Counts `size` bytes against the countdown; true if a sample point falls inside them.
    #[inline(always)]
    fn tick(&self, size: usize, epoch: u32) -> bool {
        let left = self.countdown.get() - size as i64;
        if left > 0 && self.epoch.get() == epoch {
            self.countdown.set(left);
            return false;
        }
        self.tick_slow(size, epoch)
    }

    #[cold]
    #[inline(never)]
    fn tick_slow(&self, size: usize, epoch: u32) -> bool {
        let rate = RATE.load(Relaxed);
        if self.epoch.get() != epoch {
            let generation = SEED_GEN.load(Relaxed);
            if self.seeded.get() != generation {
                self.reseed(NEXT_STREAM.fetch_add(1, Relaxed), generation);
            }
            self.epoch.set(epoch);
            let left = draw(&self.rng, rate) - size as i64;
            if left > 0 {
                self.countdown.set(left);
                return false;
            }
        }
        // A sample point falls in this allocation; the next one is drawn afresh from its end
        // (the process is memoryless).
        self.countdown.set(draw(&self.rng, rate));
        !self.busy.get()
    }
}

/// Whether `ptr` is a sampled block (lies in the region).
#[inline(always)]
pub(crate) fn owns(ptr: *mut u8) -> bool {
    (ptr as usize).wrapping_sub(HOT.region_base.load(Relaxed)) < REGION_LEN
}

/// Whether sampling is on.
#[inline(always)]
pub(crate) fn is_on() -> bool {
    HOT.sampling.load(Relaxed) != 0
}

/// The allocation hook: `Some(block)` if this allocation is sampled (the block comes from the
/// region, zeroed), `None` to allocate normally. Off, it is one load and a not-taken branch.
#[inline(always)]
pub(crate) fn alloc(layout: Layout) -> Option<NonNull<u8>> {
    let epoch = HOT.sampling.load(Relaxed);
    if epoch != 0 {
        alloc_on(layout, epoch)
    } else {
        None
    }
}

/// The allocation hook while sampling is on: the countdown, and rarely the slow path. Marked
/// cold so that the off path is laid out straight through.
#[cold]
#[inline(never)]
fn alloc_on(layout: Layout, epoch: u32) -> Option<NonNull<u8>> {
    if THREAD.with(|t| t.tick(layout.size(), epoch)) {
        sample_slow(layout)
    } else {
        None
    }
}

#[cold]
#[inline(never)]
fn sample_slow(layout: Layout) -> Option<NonNull<u8>> {
    if layout.align() > PAGE_SIZE.load(Relaxed) {
        DROPPED_ALIGN.fetch_add(1, Relaxed);
        return None;
    }
    THREAD.with(|t| {
        t.busy.set(true);
        let mut frames = [0usize; MAX_DEPTH];
        let mut n = 0;
        // SAFETY: `trace_unsynchronized` is unsafe only because some platforms' unwinders
        // (Windows' dbghelp) are not thread-safe; on Linux it calls libgcc's/libunwind's
        // `_Unwind_Backtrace`, which is. The closure neither allocates nor panics (`n` stays
        // below MAX_DEPTH), so it is safe to run inside the allocator.
        #[allow(unsafe_code)]
        unsafe {
            backtrace::trace_unsynchronized(|f| {
                frames[n] = f.ip() as usize;
                n += 1;
                n < MAX_DEPTH
            });
        }
        let p = profile::lock().record_alloc(&frames[..n], layout.size(), RATE.load(Relaxed));
        t.busy.set(false);
        p
    })
}

/// The deallocation hook for a block [`owns`] said is sampled.
///
/// # Safety
/// `ptr` is a live sampled block of `size` bytes, being freed by its owner.
#[cold]
#[inline(never)]
#[allow(unsafe_code)]
pub(crate) unsafe fn free(ptr: *mut u8, size: usize) {
    // SAFETY: the block starts at `ptr`, spans at least `size` bytes rounded up to whole pages,
    // lies in the region and is the caller's until this call returns.
    unsafe { discard(ptr, size, PAGE_SIZE.load(Relaxed)) };
    profile::lock().record_free(ptr);
}

/// Runs `f` with sampling paused on this thread: for the profiler's own work outside the
/// allocator (symbolising, writing reports), whose allocations are real but not the program's.
pub(crate) fn quietly<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            THREAD.with(|t| t.busy.set(self.0));
        }
    }
    let _restore = Restore(THREAD.with(|t| t.busy.replace(true)));
    f()
}

/// Maps the region if needed and switches sampling on (a new epoch).
pub(crate) fn enable() -> io::Result<()> {
    let mut p = profile::lock();
    let base = p.ensure_arena()?;
    if let Some(page) = p.page_size() {
        PAGE_SIZE.store(page, Relaxed);
    }
    HOT.region_base.store(base, Relaxed);
    // Stored under the lock after the base: a thread that sees sampling on takes this lock
    // before placing a block, and so sees the base too.
    HOT.sampling.store(next_epoch(), Relaxed);
    Ok(())
}

pub(crate) fn disable() {
    let _p = profile::lock();
    HOT.sampling.store(0, Relaxed);
}

fn next_epoch() -> u32 {
    loop {
        let e = NEXT_EPOCH.fetch_add(1, Relaxed);
        if e != 0 {
            return e;
        }
    }
}

/// Applies a settings change: threads redraw their countdowns at their next allocation.
fn new_epoch_if_on() {
    let _p = profile::lock();
    if HOT.sampling.load(Relaxed) != 0 {
        HOT.sampling.store(next_epoch(), Relaxed);
    }
}

pub(crate) fn set_rate(bytes: u64) {
    RATE.store(bytes.max(1), Relaxed);
    new_epoch_if_on();
}

pub(crate) fn rate() -> u64 {
    RATE.load(Relaxed)
}

/// Seeds every thread's PRNG anew: the calling thread takes stream 0 (so a single-threaded run
/// repeats exactly, whatever other threads do), the others streams 1, 2, … in the order they
/// next allocate.
pub(crate) fn set_seed(seed: u64) {
    SEED.store(seed, Relaxed);
    let mut generation = SEED_GEN.fetch_add(1, Relaxed).wrapping_add(1);
    if generation == NEVER {
        generation = SEED_GEN.fetch_add(1, Relaxed).wrapping_add(1);
    }
    NEXT_STREAM.store(1, Relaxed);
    THREAD.with(|t| {
        t.reseed(0, generation);
        // Redraw the countdown from the new stream at the next allocation.
        t.epoch.set(0);
    });
    new_epoch_if_on();
}

pub(crate) fn dropped_align() -> u64 {
    DROPPED_ALIGN.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_exponential_with_the_requested_mean() {
        let rng = Cell::new(42);
        let n = 200_000;
        let rate = 1000;
        let draws: Vec<i64> = (0..n).map(|_| draw(&rng, rate)).collect();
        assert!(draws.iter().all(|&d| d >= 1));
        let mean = draws.iter().sum::<i64>() as f64 / n as f64;
        // ceil adds about half a byte; the standard error of the mean is rate/sqrt(n) ≈ 2.2.
        assert!((mean - 1000.5).abs() < 12.0, "mean {mean}");
        // P(X > rate) = 1/e.
        let above = draws.iter().filter(|&&d| d > rate as i64).count() as f64 / n as f64;
        assert!((above - (-1.0f64).exp()).abs() < 0.01, "tail {above}");
    }

    #[test]
    fn the_countdown_samples_each_allocation_with_probability_one_minus_e_to_minus_s_over_r() {
        let t = ThreadSampler {
            countdown: Cell::new(0),
            epoch: Cell::new(0),
            seeded: Cell::new(NEVER),
            rng: Cell::new(0),
            busy: Cell::new(false),
        };
        let rate = RATE.load(Relaxed);
        let size = (rate / 4) as usize;
        let n = 40_000;
        let hits = (0..n).filter(|_| t.tick(size, 3)).count() as f64 / n as f64;
        let p = 1.0 - (-0.25f64).exp();
        assert!((hits - p).abs() < 0.015, "{hits} vs {p}");
        t.busy.set(true);
        assert!(
            !(0..1000).any(|_| t.tick(size * 100, 3)),
            "never while busy"
        );
    }

    #[test]
    fn nothing_is_owned_before_the_region_exists() {
        // Every user-space address (kernel addresses, above 2^64 - REGION_LEN, never reach us).
        assert!(!owns(std::ptr::null_mut()));
        assert!(!owns((1usize << 47) as *mut u8));
        let mut local = 1u8;
        assert!(!owns(&mut local));
        let b = Box::new(1u8);
        assert!(!owns(&*b as *const u8 as *mut u8));
    }
}
