//! Sampling is off by default: allocations take no samples and no region is reserved. Once
//! enabled and then disabled, no new samples are taken and the sampled blocks still free
//! correctly. (One heap test per file: its own allocator.)

mod sites_common;

use heapmeter::sites;
use sites_common::live_samples_from;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

fn churn(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![i as u8; 512 + i % 4096]).collect()
}

#[test]
fn off_takes_no_samples_and_maps_nothing_until_enabled() {
    let kept = churn(20_000);
    let st = sites::stats();
    assert!(!st.enabled && !sites::is_enabled());
    assert!(!st.mapped, "no region reserved while off");
    assert_eq!((st.samples, st.live_samples, st.sites), (0, 0, 0));
    assert!(sites::snapshot().samples().is_empty());
    assert!(sites::profile().sites.is_empty());
    drop(kept);

    sites::set_sample_rate(8192);
    sites::enable().expect("enable sampling");
    let kept = churn(5_000);
    let on = sites::stats();
    assert!(on.enabled && on.mapped);
    assert!(on.samples > 100 && on.live_samples > 100, "{on:?}");

    sites::disable();
    let more = churn(5_000);
    let off_again = sites::stats();
    assert!(!off_again.enabled && off_again.mapped);
    assert_eq!(off_again.samples, on.samples, "no samples once disabled");
    drop(kept);
    drop(more);
    assert_eq!(
        live_samples_from("tests/sites_off.rs"),
        0,
        "sampled blocks freed after disabling"
    );
}
