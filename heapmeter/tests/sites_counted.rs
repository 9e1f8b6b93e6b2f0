//! Sampling leaves the counted heap unchanged: the same allocation sequence moves live bytes,
//! allocations, frees and bytes allocated by exactly the same amounts with sampling off and on,
//! and sampled zeroed blocks read as zero even when the region reuses freed pages. (One heap
//! test per file: its own allocator.)

use heapmeter::sites;

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

#[test]
fn the_counted_heap_is_the_same_with_sampling_on_and_sampled_zeroed_blocks_are_zero() {
    let off = sequence();
    assert!(!sites::stats().mapped);
    assert_eq!(off.live_after, 0);
    assert_eq!(off.cap_after, 0);

    // A low rate, so most blocks above a few KiB are sampled.
    sites::set_sample_rate(1024);
    sites::enable().expect("enable sampling");
    let samples_before = sites::stats().samples;
    let on = sequence();
    let st = sites::stats();
    assert!(st.samples - samples_before > 1000, "{st:?}");
    assert_eq!(on, off, "counters moved differently with sampling on");
    assert_eq!(st.live_samples, 0, "everything sampled was freed: {st:?}");
    assert_eq!(st.pages_in_use, 0);

    // Sampled zeroed blocks read zero, also when the region reuses pages written before.
    for round in 0..3 {
        let mut blocks: Vec<Vec<u8>> = (0..200).map(|_| vec![0u8; 20_000]).collect();
        for b in &mut blocks {
            assert!(b.iter().all(|&x| x == 0), "round {round}: not zeroed");
            b.fill(0xff);
        }
    }
    assert!(sites::stats().samples - st.samples > 100);
}
