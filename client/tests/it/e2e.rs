//! Both variants end to end against the in-process latency server on port 0: the workload, the
//! server's misbehaviour knobs, and the summary. (Heap figures are checked in the per-file heap
//! tests, which install the counting allocator; this harness does not.)

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use leak_client::cli::{Cli, Command, RunArgs};
use leak_client::clients::VariantName;
use leak_client::run;
use leak_client::stop::{Stop, StopReason};
use leak_client::summary::Summary;

use crate::common;
use common::server;

fn args(url: &str, extra: &[&str]) -> RunArgs {
    let mut argv = vec!["leak-client", "raw", "--url", url, "--report-every", "10s"];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).expect("valid flags").command {
        Command::Raw(a) => a,
        _ => unreachable!("parsed as raw"),
    }
}

fn run_summary(variant: VariantName, url: &str, extra: &[&str]) -> Summary {
    run_until(variant, args(url, extra), Stop::new())
}

fn run_until(variant: VariantName, args: RunArgs, stop: Arc<Stop>) -> Summary {
    let cfg = args.config(variant);
    let out = run::run(&cfg, stop, leak_client::summary::analysis(&cfg)).expect("run starts");
    Summary::new(&cfg, &out)
}

const VARIANTS: [VariantName; 2] = [VariantName::Ureq, VariantName::Raw];

#[test]
fn every_request_with_a_unique_1000_char_path_succeeds() {
    let srv = server(2);
    for v in VARIANTS {
        let before = srv.stats();
        let s = run_summary(v, &srv.url(), &["--requests", "300", "--concurrency", "4"]);
        assert_eq!((s.ok, s.errors, s.requests), (300, 0, 300), "{v:?}: {s:?}");
        assert_eq!(s.stopped_by, StopReason::Requests);
        assert_eq!(s.path_len, 1000);
        assert!(
            s.connections_opened >= 1 && s.connections_opened <= 8,
            "{v:?} reused connections: {}",
            s.connections_opened
        );
        assert!(
            s.latency_ms.p50 >= 2.0,
            "{v:?}: server latency shows in p50 {}",
            s.latency_ms.p50
        );
        assert!(s.body_bytes > 300 * 20, "{v:?} read the JSON bodies");
        let after = srv.stats();
        assert_eq!(
            after.served - before.served,
            300,
            "{v:?}: the server saw every request"
        );
    }
}

#[test]
fn body_skip_drops_responses_unread_and_still_counts_them_ok() {
    let srv = server(0);
    for v in VARIANTS {
        let s = run_summary(
            v,
            &format!("{}/?bytes=100000", srv.url()),
            &["--requests", "50", "--body", "skip", "-c", "2"],
        );
        assert_eq!((s.ok, s.errors), (50, 0), "{v:?}: {s:?}");
        assert!(s.body_bytes < 50 * 100_000, "{v:?} did not read every body");
    }
}

#[test]
fn server_knobs_give_the_documented_outcomes() {
    let srv = server(0);
    let base = srv.url();
    for v in VARIANTS {
        let s = run_summary(
            v,
            &format!("{base}/?status=503"),
            &["--requests", "20", "-c", "2"],
        );
        assert_eq!((s.ok, s.errors), (0, 20), "{v:?} status=503");
        assert_eq!(s.errors_by_kind.get("status"), Some(&20), "{v:?}");

        let s = run_summary(
            v,
            &format!("{base}/?chunked=1&bytes=5000"),
            &["--requests", "20", "-c", "2"],
        );
        assert_eq!(
            (s.ok, s.errors, s.body_bytes),
            (20, 0, 20 * 5000),
            "{v:?} chunked"
        );

        let s = run_summary(
            v,
            &format!("{base}/?bytes=70000"),
            &["--requests", "20", "-c", "2"],
        );
        assert_eq!((s.ok, s.body_bytes), (20, 20 * 70_000), "{v:?} bytes");

        let s = run_summary(
            v,
            &format!("{base}/?close=1"),
            &["--requests", "20", "-c", "1"],
        );
        assert_eq!((s.ok, s.errors), (20, 0), "{v:?} close");
        assert_eq!(
            s.connections_opened, 20,
            "{v:?}: Connection: close means a new connection per request"
        );

        let s = run_summary(
            v,
            &format!("{base}/?drop=1"),
            &["--requests", "6", "-c", "1", "--timeout", "5s"],
        );
        assert_eq!((s.ok, s.errors), (0, 6), "{v:?} drop: {s:?}");
        assert!(
            s.errors_by_kind
                .keys()
                .all(|k| k == "reset" || k == "malformed"),
            "{v:?} drop is a reset: {:?}",
            s.errors_by_kind
        );
    }
}

#[test]
fn a_slow_server_is_a_timeout_error_not_a_hang() {
    let srv = server(0);
    let cases = [
        (VariantName::Ureq, "phases"),
        (VariantName::Ureq, "global"),
        (VariantName::Raw, "phases"),
    ];
    for (v, mode) in cases {
        let s = run_summary(
            v,
            &format!("{}/?latency_ms=10000", srv.url()),
            &[
                "--requests",
                "2",
                "-c",
                "2",
                "--timeout",
                "300ms",
                "--ureq-timeout",
                mode,
            ],
        );
        assert_eq!((s.ok, s.errors), (0, 2), "{v:?} {mode}");
        // The server answers after 10 s; --timeout 300ms must end both requests long before.
        // (It answered after 3 s, and the bound was 2 s: a loaded machine's start-up and
        // teardown could reach it. Nothing waits for the 10 s: the run ends on its timeouts.)
        assert!(s.elapsed_s < 5.0, "{v:?} {mode}: took {} s", s.elapsed_s);
        assert_eq!(
            s.errors_by_kind.get("timeout"),
            Some(&2),
            "{v:?}: {:?}",
            s.errors_by_kind
        );
    }
}

#[test]
fn duration_rounds_and_a_stop_request_end_the_run() {
    let srv = server(1);
    let s = run_summary(
        VariantName::Raw,
        &srv.url(),
        &["--duration", "300ms", "--rounds", "2", "--pause", "100ms"],
    );
    assert_eq!(s.stopped_by, StopReason::Duration);
    assert_eq!(s.rounds, 2);
    assert!(s.ok > 10 && s.errors == 0, "{s:?}");

    // No --requests and no --duration: runs until stopped, like the original endless loop.
    let stop = Stop::new();
    let stopper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            stop.request(StopReason::Signal);
        })
    };
    let s = run_until(VariantName::Ureq, args(&srv.url(), &[]), stop);
    stopper.join().expect("stopper");
    assert_eq!(s.stopped_by, StopReason::Signal);
    assert!(s.ok > 10, "{s:?}");
}

#[test]
fn rate_and_think_time_are_honoured() {
    let srv = server(0);
    // 100 requests at 200/s overall take at least ~0.5 s, however many workers there are.
    let t0 = std::time::Instant::now();
    let s = run_summary(
        VariantName::Raw,
        &srv.url(),
        &["--requests", "100", "--rate", "200", "-c", "8"],
    );
    assert_eq!(s.ok, 100);
    assert!(
        t0.elapsed() >= Duration::from_millis(450),
        "rate not honoured: {:?}",
        t0.elapsed()
    );
    // One worker pausing 10 ms between 40 requests takes at least ~0.4 s.
    let t0 = std::time::Instant::now();
    let s = run_summary(
        VariantName::Ureq,
        &srv.url(),
        &["--requests", "40", "--think", "10ms", "-c", "1"],
    );
    assert_eq!(s.ok, 40);
    assert!(
        t0.elapsed() >= Duration::from_millis(380),
        "think not honoured: {:?}",
        t0.elapsed()
    );
}

#[test]
fn the_summary_json_carries_the_documented_keys() {
    let srv = server(0);
    let s = run_summary(
        VariantName::Raw,
        &srv.url(),
        &["--requests", "100", "--rate", "2000"],
    );
    let v: serde_json::Value = serde_json::to_value(&s).expect("one JSON object");
    for key in [
        "variant",
        "ok",
        "errors",
        "errors_by_kind",
        "rps",
        "latency_ms",
        "memory",
        "stopped_by",
        "verdict",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["variant"], "raw");
    assert_eq!(v["ok"], 100);
    assert!(v["latency_ms"]["p99"].as_f64().is_some());
    assert!(v["verdict"]["class"].is_string());
    let mut human = Vec::new();
    s.print_human(&mut human).expect("writes");
    let human = String::from_utf8(human).expect("utf-8");
    assert!(human.contains("100 ok, 0 errors of 100"), "{human}");
    assert!(human.contains("verdict"), "{human}");
}

#[test]
fn the_jsonl_file_has_one_parseable_sample_per_line() {
    let srv = server(0);
    let dir = crate::support::scratch("e2e");
    let path = dir.join("raw.jsonl");
    let p = path.to_str().expect("utf-8 path");
    let s = run_summary(
        VariantName::Raw,
        &srv.url(),
        &[
            "--requests",
            "400",
            "--sample-every",
            "20",
            "--jsonl",
            p,
            "--rounds",
            "2",
            "--pause",
            "50ms",
        ],
    );
    let samples =
        leak_client::child::read_jsonl::<leak_client::sample::Sample>(&path).expect("readable");
    let text = std::fs::read_to_string(&path).expect("readable");
    assert_eq!(samples.len(), text.lines().count(), "every line parses");
    assert_eq!(samples[0].kind, leak_client::sample::SampleKind::Start);
    let requests: Vec<u64> = samples
        .iter()
        .filter(|s| s.kind == leak_client::sample::SampleKind::Request)
        .map(|s| s.requests)
        .collect();
    assert!(
        requests.len() >= 30,
        "a sample every 20 of 800 requests: {}",
        requests.len()
    );
    let quiescent = samples
        .iter()
        .filter(|s| s.kind == leak_client::sample::SampleKind::Quiescent)
        .count();
    assert!(quiescent >= 2, "one quiescent reading per round");
    assert_eq!(s.ok, 800);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_server_outage_is_backed_off_and_the_run_recovers_when_it_returns() {
    let srv = server(0);
    let addr = srv.addr();
    let url = srv.url();
    let run = std::thread::spawn(move || {
        run_summary(VariantName::Raw, &url, &["--duration", "4s", "-c", "4"])
    });
    std::thread::sleep(Duration::from_millis(800));
    srv.shutdown(Duration::from_secs(1));
    let down = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let back = common::server_at(addr);
    let gap = down.elapsed().as_secs_f64();
    let s = run.join().expect("the run thread");
    let connect_errors = s.errors_by_kind.get("connect").copied().unwrap_or(0);
    // Without back-off, 4 workers retrying for 1.5 s made ~100,000 connect errors.
    assert!(
        (1..=100).contains(&connect_errors),
        "connect errors stay in the tens: {:?}",
        s.errors_by_kind
    );
    assert_eq!(s.stopped_by, StopReason::Duration);
    assert!(
        back.stats().served > 100,
        "requests succeed again after the restart: {}",
        back.stats().served
    );
    // The outage is counted, and ends within about a second of the server coming back
    // (the longest back-off is 1 s).
    assert!(
        s.unreachable_s > 0.5 && s.unreachable_s < gap + 1.5,
        "unreachable {} s for a {gap:.2} s outage",
        s.unreachable_s
    );
    back.shutdown(Duration::from_secs(1));
}

#[test]
fn a_server_that_stays_down_ends_the_run_by_itself() {
    let srv = server(0);
    let url = srv.url();
    let run = std::thread::spawn(move || {
        run_summary(
            VariantName::Ureq,
            &url,
            &["--duration", "20s", "-c", "2", "--max-unreachable", "700ms"],
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    srv.shutdown(Duration::from_secs(1));
    let s = run.join().expect("the run thread");
    assert_eq!(s.stopped_by, StopReason::Unreachable, "{s:?}");
    assert!(
        s.elapsed_s < 10.0,
        "stopped long before --duration: {} s",
        s.elapsed_s
    );
    assert!(s.unreachable_s >= 0.7, "{}", s.unreachable_s);
}
