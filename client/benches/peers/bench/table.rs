//! The bench's table (a row per client and connection count, then the server rows) and the
//! targets, each judged on its median.

use bench_anchors::{FAST_CONNS, SLOW_CONNS, SLOW_LATENCY, spread};
use leak_client::clients::VariantName;
use leak_client::units;
use leak_client::variant::TimeoutMode;

use super::{Client, Row, ServerRows};

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

fn rps_spread(values: &[f64]) -> String {
    bench_anchors::spread_with(values, |v| units::count(v.round() as u64))
}

pub fn print_table(rows: &[(Client, u32, Row)], server: &ServerRows) {
    println!(
        "{:<26} {:>5}  {:<24} {:<26} {:<18} {:<18} {:>7} {:>10} {:>10} {:>9} {:>6}",
        "load generator → nginx",
        "conns",
        "req/s",
        "ratio",
        "harness",
        "CPU µs/req",
        "cs/req",
        "allocs/req",
        "bytes/req",
        "peak RSS",
        "errors"
    );
    let mut last_conns = None;
    for (client, conns, row) in rows {
        if row.rps.is_empty() {
            continue;
        }
        if last_conns.is_some_and(|c| c != *conns) {
            println!();
        }
        last_conns = Some(*conns);
        let ratio = match client {
            Client::Wrk => "1.00".to_owned(),
            _ => format!("{}× wrk", spread(&row.vs_wrk, 2)),
        };
        let harness = match client {
            Client::Leak(..) => format!("{}×", spread(&row.vs_bare, 2)),
            _ => String::new(),
        };
        let median_or = |v: &[f64], f: &dyn Fn(f64) -> String| {
            bench_anchors::median_opt(v).map_or_else(|| "–".to_owned(), f)
        };
        println!(
            "{:<26} {:>5}  {:<24} {:<26} {:<18} {:<18} {:>7} {:>10} {:>10} {:>9} {:>6}",
            client.name(),
            conns,
            rps_spread(&row.rps),
            ratio,
            harness,
            spread(&row.cpu_us, 1),
            median_or(&row.switches, &|v| format!("{v:.2}")),
            median_or(&row.allocs, &|v| format!("{v:.2}")),
            median_or(&row.bytes, &|v| units::bytes(v)),
            median_or(&row.rss, &mib),
            units::count(row.errors),
        );
    }
    if server.zero.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<26} {:>5}  {:<24} {:<26} {:<18} {:<18} {:>7} {:>10} {:>10} {:>9} {:>6}",
        "server ← wrk",
        "conns",
        "req/s",
        "ratio",
        "wrk mean ms",
        "CPU µs/req",
        "",
        "",
        "",
        "peak RSS",
        "errors"
    );
    let line = |name: &str, conns: u32, cells: &[bench_anchors::Cell], ratio: String| {
        let rps: Vec<f64> = cells.iter().map(|c| c.rps).collect();
        let cpu: Vec<f64> = cells.iter().map(|c| c.cpu_us_per_request).collect();
        let mean: Vec<f64> = cells.iter().map(|c| c.mean_ms).collect();
        let rss: Vec<f64> = cells
            .iter()
            .filter_map(|c| c.server_rss)
            .map(|r| r as f64)
            .collect();
        let errors: u64 = cells.iter().map(|c| c.errors).sum();
        println!(
            "{name:<26} {conns:>5}  {:<24} {ratio:<26} {:<18} {:<18} {:>7} {:>10} {:>10} {:>9} {:>6}",
            rps_spread(&rps),
            spread(&mean, 2),
            spread(&cpu, 1),
            "",
            "",
            "",
            bench_anchors::median_opt(&rss).map_or_else(|| "–".to_owned(), mib),
            units::count(errors),
        );
    };
    line(
        "nginx (return 200)",
        FAST_CONNS,
        &server.nginx,
        "1.00".into(),
    );
    line(
        "latency-server, 0 ms",
        FAST_CONNS,
        &server.zero,
        format!("{}× nginx", spread(&server.vs_nginx, 2)),
    );
    line(
        &format!("latency-server, {} ms", SLOW_LATENCY.as_millis()),
        SLOW_CONNS,
        &server.slow,
        format!(
            "{}× Little {}/s",
            spread(&server.vs_little, 2),
            units::count(bench_anchors::little_bound() as u64)
        ),
    );
    println!(
        "(load generator rows: CPU is the load generator's process; server rows: the server's \
         (nginx: master and workers). latency-server runs as this bench's `--serve` child: the \
         library with the binary's allocator.)"
    );
}

/// The targets, each with the median it is judged on.
pub fn print_targets(rows: &[(Client, u32, Row)], server: &ServerRows) {
    let median_of = |client: Client, conns: u32, pick: &dyn Fn(&Row) -> &Vec<f64>| {
        rows.iter()
            .find(|(c, n, _)| *c == client && *n == conns)
            .and_then(|(_, _, r)| bench_anchors::median_opt(pick(r)))
    };
    let check = |what: String, value: Option<f64>, ok: &dyn Fn(f64) -> bool| {
        if let Some(v) = value {
            let verdict = if ok(v) { "met" } else { "NOT met" };
            println!("  {what:<58} {v:>8.3}  {verdict}");
        }
    };
    // a ÷ b in each repeat (both measured beside the same wrk run), median.
    let ratio_of = |a: Client, b: Client, conns: u32| {
        let of = |k: Client| {
            rows.iter()
                .find(|(c, n, _)| *c == k && *n == conns)
                .map(|(_, _, r)| &r.vs_wrk)
        };
        let (x, y) = (of(a)?, of(b)?);
        let ratios: Vec<f64> = x.iter().zip(y.iter()).map(|(p, q)| p / q).collect();
        bench_anchors::median_opt(&ratios)
    };
    println!("targets (medians of the runs above):");
    let raw = Client::Leak(VariantName::Raw, TimeoutMode::Phases);
    let phases = Client::Leak(VariantName::Ureq, TimeoutMode::Phases);
    check(
        "leak-client raw ≥ 0.90× wrk at 8 connections".into(),
        median_of(raw, 8, &|r| &r.vs_wrk),
        &|v| v >= 0.90,
    );
    check(
        "leak-client raw ≥ 0.85× wrk at 64 connections".into(),
        median_of(raw, 64, &|r| &r.vs_wrk),
        &|v| v >= 0.85,
    );
    // What bounds the two lines above: the design's own limit, and how close raw comes to it.
    for conns in [8, 64] {
        if let (Some(floor), Some(vs_floor)) = (
            median_of(Client::Floor, conns, &|r| &r.vs_wrk),
            ratio_of(raw, Client::Floor, conns),
        ) {
            println!(
                "  {:<58} {floor:>8.3}  (bound of the design)",
                format!("  blocking floor ÷ wrk at {conns} connections")
            );
            println!(
                "  {:<58} {vs_floor:>8.3}",
                format!("  leak-client raw ÷ blocking floor at {conns} connections")
            );
        }
    }
    check(
        "leak-client ureq phases ≥ 0.40× wrk at 8 connections".into(),
        median_of(phases, 8, &|r| &r.vs_wrk),
        &|v| v >= 0.40,
    );
    let rate = |c| median_of(phases, c, &|r| &r.rps);
    if let (Some(r1), Some(r8), Some(r64)) = (rate(1), rate(8), rate(64)) {
        check(
            "ureq phases req/s grows with concurrency: c=8 ÷ c=1".into(),
            Some(r8 / r1),
            &|v| v > 1.0,
        );
        check(
            "  and does not fall beyond: c=64 ÷ c=8 (≥ 0.95)".into(),
            Some(r64 / r8),
            &|v| v >= 0.95,
        );
    }
    for (client, conns, row) in rows {
        if let Client::Leak(..) = client {
            check(
                format!("{} c={conns}: harness ≥ 0.95× bare loop", client.name()),
                bench_anchors::median_opt(&row.vs_bare),
                &|v| v >= 0.95,
            );
        }
    }
    let cells_median = |cells: &[bench_anchors::Cell], f: &dyn Fn(&bench_anchors::Cell) -> f64| {
        bench_anchors::median_opt(&cells.iter().map(f).collect::<Vec<_>>())
    };
    check(
        "latency-server at 0 ms ≥ 0.60× nginx req/s".into(),
        bench_anchors::median_opt(&server.vs_nginx),
        &|v| v >= 0.60,
    );
    check(
        "latency-server at 50 ms / 1000 conns ≥ 0.95× Little's bound".into(),
        bench_anchors::median_opt(&server.vs_little),
        &|v| v >= 0.95,
    );
    check(
        "latency-server at 50 ms / 1000 conns ≤ 40 µs CPU/request".into(),
        cells_median(&server.slow, &|c| c.cpu_us_per_request),
        &|v| v <= 40.0,
    );
}
