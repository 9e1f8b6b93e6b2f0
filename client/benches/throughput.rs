//! `just bench`: requests/s, latency, allocations and bytes per request, and live heap of each
//! variant at several concurrencies against the in-process latency server at zero latency.
//! Each cell is a real `leak-client` child process (its own allocator), as in `compare`.
//!
//! `cargo bench -p leak-client --bench throughput [-- REQUESTS [CONCURRENCY,...]]`

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
    let requests: u64 = args
        .first()
        .and_then(|a| leak_client::cli::parse_count(a).ok())
        .unwrap_or(10_000);
    let concurrencies: Vec<u32> = args
        .get(1)
        .map(|a| a.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 64]);

    let server = latency_server::Server::start(latency_server::Config {
        addr: "127.0.0.1:0".parse().expect("loopback address"),
        latency: Duration::ZERO,
        report_every: None,
        ..latency_server::Config::default()
    })
    .expect("latency server starts");
    let out = std::env::temp_dir().join(format!("leakprobe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    let exe = Path::new(env!("CARGO_BIN_EXE_leak-client"));
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
                    let s = &r.summary;
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
