//! `--inject-leak` through the real allocator: live heap grows by ≈ BYTES per request, and the
//! verdict on the in-process series says `leak` with the right slope. One heap test per file:
//! this binary installs the counting allocator, as `leak-client` does.

use std::time::Duration;

use clap::Parser;
use leak_client::cli::{Cli, Command};
use leak_client::clients::VariantName;
use leak_client::monitor::Analysis;
use leak_client::run;
use leak_client::stop::Stop;
use leak_client::summary::Summary;
use leak_client::verdict::Class;

mod common;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

#[test]
fn an_injected_leak_grows_live_heap_by_its_size_per_request() {
    let srv = common::server(0);
    let url = srv.url();
    let argv = [
        "leak-client",
        "raw",
        "--url",
        &url,
        "--requests",
        "4000",
        "--concurrency",
        "4",
        "--inject-leak",
        "1024",
        "--sample-every",
        "10",
        "--report-every",
        "10s",
    ];
    let Command::Raw(args) = Cli::try_parse_from(argv).expect("flags").command else {
        unreachable!("raw")
    };
    let cfg = args.config(VariantName::Raw);
    let s = Summary::new(
        &cfg,
        &run::run(&cfg, Stop::new(), Analysis::default()).expect("runs"),
    );
    assert_eq!((s.ok, s.errors), (4000, 0));

    // Crude growth: everything the run added, per request (the 1 KiB blocks dominate).
    let growth = s.memory.growth_per_request;
    assert!(
        (1024.0 * 0.9..=1024.0 * 1.25).contains(&growth),
        "growth {growth} B/request"
    );
    // Robust slope: within ±10% of the planted size.
    let slope = s.verdict.slope.expect("a slope").bytes_per_request;
    assert!((slope - 1024.0).abs() <= 102.4, "slope {slope} B/request");
    assert_eq!(s.verdict.class, Class::Leak, "{}", s.verdict.reason);
    srv.shutdown(Duration::from_secs(1));
}
