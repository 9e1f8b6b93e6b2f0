//! `just bench`: requests/s, latency, allocations and bytes per request, and live heap of each
//! variant at several concurrencies against the in-process latency server at zero latency.
//! Each cell is a real `leak-client` child process (its own allocator), as in `compare`.
//!
//! `cargo bench -p leak-client --bench throughput [-- REQUESTS [CONCURRENCY,...]]`
//!
//! `just bench-sites` (`... --bench throughput -- sites [REQUESTS [REPEATS]]`, default 100k
//! and 3): the cost of `--sites`: each variant's requests/s without it and with it at the run's
//! default rate, at the denser default of a 10k-request run and at 512 KiB; runs interleaved,
//! repeated; the median ratio and the spread of the ratios. Runs shorter than a second or two
//! measure scheduling noise more than the sampler.

use std::path::Path;
use std::time::Duration;

use leak_client::child::{Job, run_job};
use leak_client::cli::Workload;
use leak_client::clients::VariantName;
use leak_client::stop::Stop;
use leak_client::units;

fn main() {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.first().is_some_and(|a| a == "sites") {
        return sites_cost(&args[1..]);
    }
    let requests: u64 = args
        .first()
        .and_then(|a| leak_client::cli::parse_count(a).ok())
        .unwrap_or(10_000);
    let concurrencies: Vec<u32> = args
        .get(1)
        .map(|a| a.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 64]);

    let (server, out, exe) = setup("bench");
    let stop = Stop::new();

    println!(
        "leak-client throughput: {} requests per cell, 1000-char unique paths, server latency 0, {} CPUs",
        units::count(requests),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<8} {:>5} {:>10} {:>9} {:>9} {:>12} {:>13} {:>10} {:>6} {:>6}  verdict",
        "variant",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "allocs/req",
        "bytes/req",
        "live end",
        "conns",
        "errors"
    );
    for variant in [VariantName::Raw, VariantName::Ureq] {
        for &c in &concurrencies {
            let job = Job {
                name: format!("{}-c{c}", variant.as_str()),
                variant,
                workload: Workload {
                    requests: Some(requests),
                    concurrency: c,
                    report_every: Duration::from_secs(3600),
                    ..Workload::defaults()
                },
                control: false,
            };
            match run_job(exe, &job, &server.url(), &out, &stop) {
                Ok(r) => {
                    let Some(s) = r.variant() else { continue };
                    println!(
                        "{:<8} {:>5} {:>10} {:>9.2} {:>9.2} {:>12.2} {:>13} {:>10} {:>6} {:>6}  {}",
                        variant.as_str(),
                        c,
                        units::count(s.rps.round() as u64),
                        s.latency_ms.p50,
                        s.latency_ms.p99,
                        s.memory.allocs_per_request,
                        units::bytes(s.memory.bytes_allocated_per_request),
                        units::bytes(s.memory.end as f64),
                        units::count(s.connections_opened),
                        units::count(s.errors),
                        s.verdict.class
                    );
                }
                Err(e) => println!("{:<8} {:>5} failed: {e}", variant.as_str(), c),
            }
        }
    }
    server.shutdown(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&out);
}

/// A started in-process latency server (zero latency), a scratch directory and this package's
/// binary.
fn setup(
    what: &str,
) -> (
    latency_server::RunningServer,
    std::path::PathBuf,
    &'static Path,
) {
    let server = latency_server::Server::start(latency_server::Config {
        addr: "127.0.0.1:0".parse().expect("loopback address"),
        latency: Duration::ZERO,
        report_every: None,
        ..latency_server::Config::default()
    })
    .expect("latency server starts");
    let out = std::env::temp_dir().join(format!("leakprobe-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    (server, out, Path::new(env!("CARGO_BIN_EXE_leak-client")))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `just bench-sites`: requests/s with `--sites` over requests/s without, per variant, at the
/// default rate and at 512 KiB; off and on runs alternate so drift hits both alike.
fn sites_cost(args: &[String]) {
    let requests: u64 = args
        .first()
        .and_then(|a| leak_client::cli::parse_count(a).ok())
        .unwrap_or(100_000);
    let repeats: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let (server, out, exe) = setup("bench-sites");
    let stop = Stop::new();
    let auto = leak_client::config::SitesConfig::auto_rate(Some(requests));
    let max = heapmeter::sites::DEFAULT_RATE;
    let dense = leak_client::config::SitesConfig::auto_rate(Some(10_000));
    println!(
        "leak-client --sites cost: {} requests per run, concurrency 8, {repeats} repeats (off and on interleaved), server latency 0, {} CPUs",
        units::count(requests),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<6} {:<26} {:>14} {:>14} {:>9} {:>17} {:>9}",
        "variant",
        "--sites-rate",
        "req/s median",
        "off median",
        "on/off",
        "ratio min–max",
        "samples"
    );
    for variant in [VariantName::Raw, VariantName::Ureq] {
        // One column per setting: off, this run's default rate, the (denser) default of a
        // 10k-request run, 512 KiB.
        let settings: [(String, Option<Option<u64>>); 4] = [
            ("off".into(), None),
            (
                format!("default ({})", units::bytes(auto as f64)),
                Some(None),
            ),
            (
                format!("{} (10k default)", units::bytes(dense as f64)),
                Some(Some(dense)),
            ),
            (units::bytes(max as f64), Some(Some(max))),
        ];
        // One entry per repeat (None where that run failed), so a ratio pairs the runs of one
        // repeat.
        let mut rps: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(repeats); settings.len()];
        let mut samples: Vec<u64> = vec![0; settings.len()];
        for rep in 0..repeats {
            for (i, (_, sites)) in settings.iter().enumerate() {
                let job = Job {
                    name: format!("{}-{i}-{rep}", variant.as_str()),
                    variant,
                    workload: Workload {
                        requests: Some(requests),
                        report_every: Duration::from_secs(3600),
                        sites: sites.is_some(),
                        sites_rate: sites.flatten(),
                        ..Workload::defaults()
                    },
                    control: false,
                };
                let got = match run_job(exe, &job, &server.url(), &out, &stop) {
                    Ok(r) => r.variant().map(|s| {
                        samples[i] = s.sites.as_ref().map_or(0, |s| s.samples);
                        s.rps
                    }),
                    Err(e) => {
                        println!("{:<6} {} failed: {e}", variant.as_str(), settings[i].0);
                        None
                    }
                };
                rps[i].push(got);
            }
        }
        let succeeded = |runs: &[Option<f64>]| runs.iter().flatten().copied().collect::<Vec<_>>();
        let off = median(&mut succeeded(&rps[0]));
        for (i, (label, _)) in settings.iter().enumerate().skip(1) {
            // Only the repeats where both the on and the off run succeeded.
            let mut ratios: Vec<f64> = rps[i]
                .iter()
                .zip(&rps[0])
                .filter_map(|(on, off)| Some((*on)? / (*off)?))
                .collect();
            let (lo, hi) = ratios
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &r| {
                    (l.min(r), h.max(r))
                });
            println!(
                "{:<6} {:<26} {:>14} {:>14} {:>8.3}× {:>17} {:>9}",
                variant.as_str(),
                label,
                units::count(median(&mut succeeded(&rps[i])).round() as u64),
                units::count(off.round() as u64),
                median(&mut ratios),
                format!("{lo:.3}–{hi:.3}"),
                units::count(samples[i])
            );
        }
    }
    println!("target: on/off ≥ 0.85 at the default rate (issue 10)");
    server.shutdown(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&out);
}
