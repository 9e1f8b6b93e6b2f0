//! A clean raw run with `--sites` lists no growing site, and lists the client's connection
//! buffers among the flat ones. One heap test per file: its own allocator.

mod heap_sites_common;

use heap_sites_common::{assert_no_grower, run_with_sites};
use leak_client::clients::VariantName;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

#[test]
fn a_clean_raw_run_has_no_growing_site() {
    let s = run_with_sites(VariantName::Raw, &["--requests", "10k"]);
    assert_eq!((s.ok, s.errors), (10_000, 0));
    assert_no_grower(&s);
    let sites = s.sites.as_ref().expect("sites");
    assert!(
        sites.flat.iter().any(|f| f.function.contains("RawClient")),
        "the raw client's buffers are flat: {:#?}",
        sites.flat
    );
}
