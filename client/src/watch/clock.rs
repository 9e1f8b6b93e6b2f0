//! The clock a watch pairs its readings on: `CLOCK_MONOTONIC` in nanoseconds, the clock the
//! probes stamp their lines with and the tree sampler its samples. Reads the clock only.

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock every probe line's `t` is read from.
pub fn monotonic_ns() -> u64 {
    use rustix::time::{ClockId, clock_gettime};
    let ts = clock_gettime(ClockId::Monotonic);
    // Never negative for CLOCK_MONOTONIC (time since boot).
    (ts.tv_sec.max(0) as u64).saturating_mul(1_000_000_000) + ts.tv_nsec.max(0) as u64
}
