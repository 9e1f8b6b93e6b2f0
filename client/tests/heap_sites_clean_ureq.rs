//! A clean ureq run with `--sites`, over two rounds (growth measured from the end of the first):
//! no growing site, and ureq's own allocations among the flat ones. One heap test per file:
//! its own allocator.

mod heap_sites_common;

use heap_sites_common::{assert_no_grower, run_with_sites};
use leak_client::clients::VariantName;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

#[test]
fn a_clean_ureq_run_has_no_growing_site() {
    let s = run_with_sites(
        VariantName::Ureq,
        &["--requests", "5k", "--rounds", "2", "--pause", "0s"],
    );
    assert_eq!((s.ok, s.errors), (10_000, 0));
    assert_no_grower(&s);
    let sites = s.sites.as_ref().expect("sites");
    assert_eq!(sites.first_reading, "end of round");
    assert_eq!((sites.first_requests, sites.last_requests), (5_000, 10_000));
}
