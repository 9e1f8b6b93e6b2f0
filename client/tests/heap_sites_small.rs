//! 64 B/request found at a rate chosen for it: `--inject-leak 64 --sites-rate 8KiB` over 20k
//! requests leaves about 140 samples at the planted line (±8% standard error), so its
//! estimate is within ±25% (3σ). One heap test per file: its own allocator.

mod heap_sites_common;

use heap_sites_common::{assert_top_grower_is_planted, run_with_sites};
use leak_client::clients::VariantName;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

#[test]
fn sites_size_a_64_byte_per_request_leak_within_a_quarter() {
    let s = run_with_sites(
        VariantName::Raw,
        &[
            "--requests",
            "20k",
            "--inject-leak",
            "64",
            "--sites-rate",
            "8KiB",
        ],
    );
    assert_eq!((s.ok, s.errors), (20_000, 0));
    let top = assert_top_grower_is_planted(&s, "inject-site: forget", 64.0);
    assert!(top.new_samples >= 80, "{top:?}");
}
