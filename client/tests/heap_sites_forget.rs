//! `--inject-leak 256 --sites` (the `forget` site): the planted line is the top growing site,
//! its growth within ±25% of 256 B/request. One heap test per file: this binary installs the
//! counting allocator, as `leak-client` does.

mod heap_sites_common;

use heap_sites_common::{assert_top_grower_is_planted, run_with_sites};
use leak_client::clients::VariantName;
use leak_client::verdict::Class;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

#[test]
fn sites_name_the_forget_injector_as_the_top_grower() {
    // The default rate for 10k requests: one sample per 10,000 bytes.
    let s = run_with_sites(
        VariantName::Raw,
        &["--requests", "10k", "--inject-leak", "256"],
    );
    assert_eq!((s.ok, s.errors), (10_000, 0));
    assert_eq!(s.verdict.class, Class::Leak, "{}", s.verdict.reason);
    let top = assert_top_grower_is_planted(&s, "inject-site: forget", 256.0);
    assert!(top.function.ends_with("forget_block"), "{top:?}");
    assert_eq!(s.sites.as_ref().map(|x| x.rate), Some(10_000));
}
