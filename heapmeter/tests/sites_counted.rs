//! Sampling leaves the counted heap unchanged: the same allocation sequence moves live bytes,
//! allocations, frees and bytes allocated by exactly the same amounts with sampling off and on,
//! and sampled zeroed blocks read as zero even when the region reuses freed pages. (One heap
//! test per file: its own allocator.)

mod sites_common;

use heapmeter::sites;
use sites_common::live_samples_from;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

#[derive(Debug, PartialEq, Eq)]
struct Deltas {
    live_held: i64,
    live_after: i64,
    cap_after: i64,
    allocs: u64,
    frees: u64,
    bytes: u64,
}

/// Allocations of many sizes, zeroed and not, grown and shrunk by realloc, half freed early.
#[inline(never)]
fn sequence() -> Deltas {
    let before = heapmeter::snapshot();
    let cap_before = ALLOC.allocated();
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(2000);
    for i in 0..2000usize {
        let size = 16 << (i % 13); // 16 B .. 64 KiB
        let mut v = if i % 3 == 0 {
            vec![0u8; size]
        } else {
            vec![i as u8; size]
        };
        if i % 5 == 0 {
            v.extend_from_slice(&[1u8; 100]);
        }
        if i % 7 == 0 {
            v.truncate(size / 2);
            v.shrink_to_fit();
        }
        held.push(v);
    }
    for v in held.iter_mut().step_by(2) {
        *v = Vec::new();
    }
    let mid = heapmeter::snapshot();
    drop(held);
    let after = heapmeter::snapshot();
    Deltas {
        live_held: mid.live as i64 - before.live as i64,
        live_after: after.live as i64 - before.live as i64,
        cap_after: ALLOC.allocated() as i64 - cap_before as i64,
        allocs: after.allocs - before.allocs,
        frees: after.frees - before.frees,
        bytes: after.allocated_bytes - before.allocated_bytes,
    }
}

/// One off run and one on run; `Ok` if the counters moved identically and came back to zero.
fn compare() -> Result<(), String> {
    sites::disable();
    let off = sequence();
    sites::enable().map_err(|e| e.to_string())?;
    let on = sequence();
    if off == on && off.live_after == 0 && off.cap_after == 0 {
        Ok(())
    } else {
        Err(format!("off {off:?}\n on {on:?}"))
    }
}

#[test]
fn the_counted_heap_is_the_same_with_sampling_on_and_sampled_zeroed_blocks_are_zero() {
    let never_on = sequence();
    assert!(!sites::stats().mapped, "off maps nothing");
    assert_eq!(never_on.cap_after, never_on.live_after);

    // A low rate, so most blocks above a few KiB are sampled.
    sites::set_sample_rate(1024);
    let samples_before = sites::stats().samples;
    // The counters are process-wide and the test harness's own thread allocates now and then
    // (e.g. when it first blocks waiting for this test): a real difference repeats every time,
    // that noise does not, so one clean comparison out of three decides.
    let attempts: Vec<Result<(), String>> = (0..3).map(|_| compare()).collect();
    assert!(
        attempts.iter().any(Result::is_ok),
        "counters moved differently with sampling on: {attempts:?}"
    );
    let st = sites::stats();
    assert!(st.samples - samples_before > 1000, "{st:?}");

    // Sampled zeroed blocks read zero, also when the region reuses pages written before.
    for round in 0..3 {
        let mut blocks: Vec<Vec<u8>> = (0..200).map(|_| vec![0u8; 20_000]).collect();
        for b in &mut blocks {
            assert!(b.iter().all(|&x| x == 0), "round {round}: not zeroed");
            b.fill(0xff);
        }
    }
    assert!(sites::stats().samples - st.samples > 100);
    assert_eq!(
        live_samples_from("tests/sites_counted.rs"),
        0,
        "everything sampled was freed"
    );
}
