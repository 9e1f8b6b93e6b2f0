//! Shared by the `heap_sites_*` tests: one in-process run with `--sites` against the latency
//! server, and the planted leak's lines in `client/src/run/injector.rs` (found by their markers, so the
//! tests follow the source).

// Each test uses only some of these.
#![allow(dead_code)]

use std::time::Duration;

use clap::Parser;
use leak_client::cli::{Cli, Command};
use leak_client::clients::VariantName;
use leak_client::monitor::Analysis;
use leak_client::run;
use leak_client::sites::SiteRow;
use leak_client::stop::Stop;
use leak_client::summary::Summary;

#[path = "../common/mod.rs"]
mod common;

/// Runs `variant` with `--sites` and `extra` flags against a fresh in-process server (no
/// latency, 4 workers) and returns its summary.
pub fn run_with_sites(variant: VariantName, extra: &[&str]) -> Summary {
    let srv = common::server(0);
    let url = srv.url();
    let mut argv = vec![
        "leak-client",
        variant.as_str(),
        "--url",
        &url,
        "--concurrency",
        "4",
        "--report-every",
        "10s",
        "--sites",
    ];
    argv.extend_from_slice(extra);
    let cli = Cli::try_parse_from(&argv).expect("flags parse");
    let (Command::Raw(args) | Command::Ureq(args)) = cli.command else {
        unreachable!("a run command")
    };
    let cfg = args.config(variant);
    let out = run::run(&cfg, Stop::new(), Analysis::default()).expect("runs");
    let s = Summary::new(&cfg, &out);
    srv.shutdown(Duration::from_secs(1));
    s
}

/// The line of `client/src/run/injector.rs` carrying `marker` (1-based).
pub fn marked_line(marker: &str) -> u32 {
    let src = include_str!("../../src/run/injector.rs");
    let i = src
        .lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no `{marker}` in run/injector.rs"));
    u32::try_from(i + 1).expect("a line number")
}

/// Checks that the top growing site is the planted leak at `marker` and that its estimated
/// growth is within ±25% of `bytes` per request; returns it.
pub fn assert_top_grower_is_planted(s: &Summary, marker: &str, bytes: f64) -> SiteRow {
    let sites = s.sites.as_ref().expect("a sites summary");
    let top = sites
        .growing
        .first()
        .unwrap_or_else(|| {
            panic!(
                "no growing site; flat: {:?}; samples {}",
                sites.flat, sites.samples
            )
        })
        .clone();
    eprintln!(
        "top grower {} {} {:+.1} B/request [{:+.1}, {:+.1}], {} new samples (rate {} B)",
        top.function,
        top.location(),
        top.growth_per_request,
        top.lo,
        top.hi,
        top.new_samples,
        sites.rate
    );
    let file = top.file.as_deref().unwrap_or("");
    assert!(file.ends_with("client/src/run/injector.rs"), "{top:?}");
    assert_eq!(top.line, Some(marked_line(marker)), "{top:?}");
    let err = (top.growth_per_request - bytes) / bytes;
    assert!(
        err.abs() <= 0.25,
        "estimate off by {:+.1}%: {top:?}",
        err * 100.0
    );
    assert!(top.growing);
    let agreement = sites
        .agreement
        .as_ref()
        .expect("checked against the verdict");
    assert!(agreement.consistent, "{}", agreement.note);
    top
}

/// Checks that no site grows beyond its interval in a run without a planted leak.
pub fn assert_no_grower(s: &Summary) {
    let sites = s.sites.as_ref().expect("a sites summary");
    assert!(
        sites.growing.is_empty(),
        "clean run, but growing: {:#?}",
        sites.growing
    );
    assert!(sites.samples > 0, "the run was sampled");
    assert!(
        !sites.flat.is_empty(),
        "the client's own buffers are listed as flat"
    );
}
