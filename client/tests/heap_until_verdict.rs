//! `--until-verdict` through the real allocator: a look at the verdict leaves the counted heap
//! untouched (live bytes, peak, allocation count), and a run stops as soon as its verdict is
//! settled — a planted leak as `leak`, a clean run as not a leak — long before its --requests.
//! One heap test per file: this binary installs the counting allocator, as `leak-client` does.

use std::time::Duration;

use clap::Parser;
use leak_client::cli::{Cli, Command};
use leak_client::clients::VariantName;
use leak_client::run;
use leak_client::sample::{Sample, SampleKind};
use leak_client::stop::{Stop, StopReason};
use leak_client::summary::{self, Summary};
use leak_client::verdict::Class;

mod common;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

fn raw_config(url: &str, extra: &[&str]) -> leak_client::config::RunConfig {
    let mut argv = vec!["leak-client", "raw", "--url", url, "--report-every", "10s"];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).expect("flags").command {
        Command::Raw(a) => a.config(VariantName::Raw),
        _ => unreachable!("parsed as raw"),
    }
}

/// A full series (4,096 readings, 4 KiB kept per request): the largest a look ever judges.
fn leaking_series() -> Vec<Sample> {
    (0..4096u64)
        .map(|i| Sample {
            t_ms: i,
            kind: if i == 0 {
                SampleKind::Start
            } else {
                SampleKind::Request
            },
            round: 0,
            requests: i * 10,
            ok: i * 10,
            errors: 0,
            live: (1 << 20) + i * 40_960,
            peak: 0,
            allocs: 0,
            allocated_bytes: 0,
            rss: None,
            connections: 1,
        })
        .collect()
}

/// Waits (at most 5 s) until no thread of the process allocates for 50 ms. The test harness's
/// main thread records this test (its name, its timeout entry) just after starting it, which on a
/// loaded machine landed between the two snapshots below (4 allocations, 900 bytes, in a CI run).
fn quiet_heap() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut last = heapmeter::snapshot().allocs;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = heapmeter::snapshot().allocs;
        if now == last {
            return;
        }
        last = now;
    }
}

#[test]
fn a_look_leaves_the_counted_heap_alone_and_runs_stop_once_their_verdict_is_settled() {
    // 1. A look, outside the counted heap: nothing moves, though it allocates megabytes.
    let series = leaking_series();
    let cfg = raw_config(
        "http://127.0.0.1:9/",
        &["--until-verdict", "--requests", "100k"],
    );
    let mut look = summary::early_look(&cfg).expect("--until-verdict builds a look");
    quiet_heap();
    let before = heapmeter::snapshot();
    // Due at once (40,950 requests served) and settled only at the second look: the first
    // judges and settles nothing, which is the costliest path.
    let first = heapmeter::uncounted(|| look(&series));
    let after = heapmeter::snapshot();
    assert_eq!(first, None, "one look never settles");
    assert_eq!(
        (
            after.live,
            after.peak,
            after.allocs,
            after.frees,
            after.allocated_bytes
        ),
        (
            before.live,
            before.peak,
            before.allocs,
            before.frees,
            before.allocated_bytes
        ),
        "a look's allocations are not counted"
    );
    // The same look counted: what the scope kept out of the readings.
    let mut counted_look = summary::early_look(&cfg).expect("a look");
    let _ = counted_look(&series);
    let counted = heapmeter::snapshot();
    assert!(
        counted.allocated_bytes - after.allocated_bytes > 1 << 20,
        "a look allocates megabytes when counted: {} B",
        counted.allocated_bytes - after.allocated_bytes
    );

    // 2. Runs: a planted 4 KiB/request leak settles as `leak`, a clean run as not one, both
    // long before their 100k requests.
    let srv = common::server(0);
    let url = srv.url();
    let common_flags = ["--until-verdict", "--requests", "100k", "-c", "4"];
    let leaking = raw_config(
        &url,
        &[&common_flags[..], &["--inject-leak", "4096"]].concat(),
    );
    let s = Summary::new(
        &leaking,
        &run::run(&leaking, Stop::new(), summary::analysis(&leaking)).expect("runs"),
    );
    let settled = s.settled.expect("the leak settles");
    assert_eq!(s.stopped_by, StopReason::Verdict, "{s:?}");
    assert_eq!(s.verdict.class, Class::Leak, "{}", s.verdict.reason);
    let slope = s.verdict.slope.map_or(f64::NAN, |sl| sl.bytes_per_request);
    assert!(
        (slope - 4096.0).abs() < 0.25 * 4096.0,
        "the planted 4 KiB/request, got {slope}"
    );
    assert!(
        settled.requests <= 20_000 && s.requests < 25_000,
        "settled at {} requests, stopped at {}",
        settled.requests,
        s.requests
    );
    assert!(settled.seconds > 0.0 && settled.seconds <= s.elapsed_s + 0.5);

    let clean = raw_config(&url, &common_flags);
    let s = Summary::new(
        &clean,
        &run::run(&clean, Stop::new(), summary::analysis(&clean)).expect("runs"),
    );
    assert_ne!(s.verdict.class, Class::Leak, "{}", s.verdict.reason);
    assert!(
        s.requests < 50_000,
        "a clean run settles too: stopped by {} at {} requests ({}: {})",
        s.stopped_by.as_str(),
        s.requests,
        s.verdict.class,
        s.verdict.reason
    );
    assert_eq!(s.stopped_by, StopReason::Verdict);
    srv.shutdown(Duration::from_secs(1));
}
