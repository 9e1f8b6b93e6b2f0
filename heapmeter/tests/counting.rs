//! The counting allocator, installed for real in this test binary (one heap test per file: the
//! harness allocates too, so the test measures a difference, on one thread).

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

#[test]
fn counts_live_bytes_allocations_and_the_cap() {
    let before = heapmeter::snapshot();
    assert!(before.installed);

    let kept: Vec<Vec<u8>> = (0..100).map(|_| vec![7u8; 1000]).collect();
    let during = heapmeter::snapshot();
    let grown = during.live as i64 - before.live as i64;
    // 100 × 1000 bytes of payload plus the outer Vec's 100 × 24-byte headers.
    assert!((100_000..=104_000).contains(&grown), "live grew by {grown}");
    assert!(during.allocs - before.allocs >= 101);
    assert!(during.peak >= during.live);
    // The cap and the counting wrapper see the same allocations.
    let cap_view = ALLOC.allocated() as i64 - heapmeter::snapshot().live as i64;
    assert!(
        cap_view.abs() < 4096,
        "cap and counter disagree by {cap_view} bytes"
    );

    drop(kept);
    let after = heapmeter::snapshot();
    let residue = after.live as i64 - before.live as i64;
    assert!(
        residue.abs() < 1024,
        "live did not return to baseline: {residue}"
    );
    assert!(after.frees - before.frees >= 101);

    // Reading RSS must not disturb what it measures.
    let _ = heapmeter::rss_bytes();
    let before_rss = heapmeter::snapshot().allocs;
    assert!(heapmeter::rss_bytes().is_some());
    assert_eq!(
        heapmeter::snapshot().allocs,
        before_rss,
        "rss_bytes allocated"
    );

    // The cap refuses what would cross it; `try_reserve` turns that into an error, not an abort.
    ALLOC
        .set_limit(ALLOC.allocated() + 64 * 1024)
        .expect("limit above usage");
    let mut big: Vec<u8> = Vec::new();
    assert!(big.try_reserve_exact(1024 * 1024).is_err());
    ALLOC.set_limit(usize::MAX).expect("raise limit");
    assert!(big.try_reserve_exact(1024 * 1024).is_ok());

    // `uncounted` leaves a scope's allocations out; `counted` inside it counts again, and the
    // scope resumes after it. (Megabytes, so a stray allocation of the harness cannot blur it.)
    const MB: u64 = 1 << 20;
    let outside = heapmeter::snapshot();
    let (skipped, inside) = heapmeter::uncounted(|| {
        let s = std::hint::black_box(vec![1u8; MB as usize]).len();
        let inside = heapmeter::counted(|| {
            let v = std::hint::black_box(vec![2u8; MB as usize]);
            let during = heapmeter::snapshot();
            drop(v);
            during.live as i64 - outside.live as i64
        });
        let after_counted = heapmeter::snapshot().allocated_bytes;
        let _again = std::hint::black_box(vec![3u8; MB as usize]);
        let skipped = heapmeter::snapshot().allocated_bytes - after_counted;
        assert_eq!(s, MB as usize);
        (skipped, inside)
    });
    let after = heapmeter::snapshot();
    assert!(
        inside >= MB as i64,
        "counted inside a scope: live grew by {inside} B"
    );
    assert!(
        skipped < MB,
        "the scope resumed after `counted`: {skipped} B counted"
    );
    let total = after.allocated_bytes - outside.allocated_bytes;
    assert!(
        (MB..2 * MB).contains(&total),
        "only the counted megabyte counted: {total} B"
    );
    let residue = after.live as i64 - outside.live as i64;
    assert!(residue.abs() < 1024, "live back to where it was: {residue}");
}
