//! `--inject-leak 256 --inject-site keep --sites`: a leak at a second call site (a block kept
//! in a growing list) is the top growing site, within ±25% of 256 B/request, and the list's own
//! growth is a site of its own. One heap test per file: its own allocator.

mod heap_sites_common;

use heap_sites_common::{assert_top_grower_is_planted, marked_line, run_with_sites};
use leak_client::clients::VariantName;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

#[test]
fn sites_name_the_keep_injector_as_the_top_grower() {
    let s = run_with_sites(
        VariantName::Raw,
        &[
            "--requests",
            "10k",
            "--inject-leak",
            "256",
            "--inject-site",
            "keep",
        ],
    );
    assert_eq!((s.ok, s.errors), (10_000, 0));
    let top = assert_top_grower_is_planted(&s, "inject-site: keep", 256.0);
    assert!(top.function.ends_with("keep_block"), "{top:?}");
    assert_ne!(top.line, Some(marked_line("inject-site: forget")));
}
