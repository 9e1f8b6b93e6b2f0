//! The bench: each cell's clients run side by side against nginx, repeated, then the server
//! rows; `table` prints what they measured.

mod table;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bench_anchors::{FAST_CONNS, SLOW_CONNS, SLOW_LATENCY};
use leak_client::child::Job;
use leak_client::cli::Workload;
use leak_client::clients::VariantName;
use leak_client::summary::Summary;
use leak_client::units;
use leak_client::variant::TimeoutMode;

use crate::{ChildLine, last_json};
use table::{print_table, print_targets};

/// `just bench-peers [OPTIONS]`: leak-client beside wrk against nginx, each variant beside a bare
/// loop, and the server rows.
#[derive(clap::Parser)]
#[command(name = "bench-peers")]
struct Opts {
    /// Seconds per measured run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    secs: u64,
    /// Repeats of the whole table (medians and min–max over them).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    repeats: u64,
    /// Connection counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64",
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    conns: Vec<u32>,
    /// Skip the server rows (latency-server beside nginx).
    #[arg(long)]
    no_server: bool,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    bench_anchors::parse_opts("bench-peers", args.iter().cloned())
}

/// The clients measured against nginx, in table order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Client {
    Wrk,
    Leak(VariantName, TimeoutMode),
    Bare(VariantName, TimeoutMode),
    /// The cheapest thread-per-connection blocking client (`--floor`).
    Floor,
}

impl Client {
    fn name(self) -> String {
        let variant = |v: VariantName, t: TimeoutMode| match v {
            VariantName::Raw => "raw".to_owned(),
            VariantName::Ureq => format!("ureq {}", t.as_str()),
        };
        match self {
            Client::Wrk => "wrk".into(),
            Client::Leak(v, t) => format!("leak-client {}", variant(v, t)),
            Client::Bare(v, t) => format!("  bare loop {}", variant(v, t)),
            Client::Floor => "  blocking floor".into(),
        }
    }

    /// The clients of one connection count, in the order they are printed.
    fn all() -> Vec<Client> {
        let mut v = vec![Client::Wrk];
        for group in Client::groups() {
            v.extend(&group[1..]);
        }
        v
    }

    /// What runs together: wrk, then a variant inside leak-client and in the bare loop (and,
    /// beside raw, the blocking floor of its design).
    fn groups() -> [Vec<Client>; 3] {
        [
            (VariantName::Raw, TimeoutMode::Phases),
            (VariantName::Ureq, TimeoutMode::Phases),
            (VariantName::Ureq, TimeoutMode::Global),
        ]
        .map(|(v, t)| {
            let mut group = vec![Client::Wrk, Client::Leak(v, t), Client::Bare(v, t)];
            if v == VariantName::Raw {
                group.push(Client::Floor);
            }
            group
        })
    }
}

/// One client's measurements at one connection count, one entry per repeat.
#[derive(Debug, Default)]
struct Row {
    rps: Vec<f64>,
    /// Ratio to wrk's req/s in the same repeat.
    vs_wrk: Vec<f64>,
    /// leak-client ÷ bare loop in the same repeat (leak-client rows only).
    vs_bare: Vec<f64>,
    cpu_us: Vec<f64>,
    /// Context switches per request.
    switches: Vec<f64>,
    allocs: Vec<f64>,
    bytes: Vec<f64>,
    rss: Vec<f64>,
    errors: u64,
}

/// One measured client run.
#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    requests: f64,
    errors: u64,
    cpu_seconds: f64,
    context_switches: f64,
    allocs: Option<f64>,
    bytes: Option<f64>,
    rss: Option<u64>,
}

impl Run {
    /// A run from what `run_measured` measured of the child and what the child reported.
    fn new(m: &bench_anchors::Measured, reported: ChildLine) -> Run {
        Run {
            rps: reported.rps,
            requests: reported.requests as f64,
            errors: reported.errors,
            cpu_seconds: m.cpu_seconds,
            context_switches: m.context_switches,
            allocs: reported.allocs_per_request,
            bytes: reported.bytes_allocated_per_request,
            rss: m.peak_rss,
        }
    }
}

/// The server rows, one entry per repeat.
#[derive(Debug, Default)]
struct ServerRows {
    nginx: Vec<bench_anchors::Cell>,
    zero: Vec<bench_anchors::Cell>,
    slow: Vec<bench_anchors::Cell>,
    vs_nginx: Vec<f64>,
    vs_little: Vec<f64>,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let opts = parse_args(args)?;
    let max_conns = opts
        .conns
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .max(SLOW_CONNS);
    let needed = latency_server::server_descriptors_needed(u64::from(max_conns));
    let _ = latency_server::raise_open_files_limit(needed, "1000 connections");

    println!(
        "leakprobe beside nginx and wrk: {}-char paths, {} s per cell, {} runs (median, min–max); \
         {}, load average {} at start",
        bench_anchors::PATH_LEN,
        opts.secs,
        opts.repeats,
        bench_anchors::machine(),
        bench_anchors::load_average(),
    );
    println!(
        "(servers and load generators share this machine: compare the ratios of one run, not \
         absolute numbers)"
    );
    if !bench_anchors::have("wrk") || !bench_anchors::have("nginx") {
        println!(
            "wrk or nginx not found (Debian: apt-get install nginx wrk; `just bench-peers` \
             installs them when run as root): nothing to compare against, skipping every row"
        );
        return Ok(());
    }

    let exe = PathBuf::from(env!("CARGO_BIN_EXE_leak-client"));
    let me = std::env::current_exe().map_err(|e| format!("cannot find this bench: {e}"))?;
    let out = std::env::temp_dir().join(format!("leakprobe-peers-{}", std::process::id()));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;

    let clients = Client::all();
    let mut rows: Vec<(Client, u32, Row)> = Vec::new();
    for &c in &opts.conns {
        for &client in &clients {
            rows.push((client, c, Row::default()));
        }
    }
    let mut server = ServerRows::default();
    let mut loads = Vec::new();
    for repeat in 0..opts.repeats {
        let load = bench_anchors::load_average();
        eprintln!("run {}/{} (load {load}):", repeat + 1, opts.repeats);
        loads.push(load);
        let nginx = bench_anchors::Nginx::start()?;
        let url = format!("http://127.0.0.1:{}/", nginx.port);
        for &c in &opts.conns {
            // Each variant runs beside a wrk run of its own and its bare loop, so every ratio
            // compares runs seconds apart (the machine's other load drifts over minutes).
            for group in Client::groups() {
                let mut order = group;
                // Every other repeat in reverse order, so no client always runs first.
                if repeat % 2 == 1 {
                    order.reverse();
                }
                let mut runs: Vec<(Client, Run)> = Vec::new();
                for client in order {
                    eprint!("  c={c} {} ... ", client.name().trim());
                    let run = match client {
                        Client::Wrk => wrk_run(nginx.port, c, opts.secs),
                        Client::Leak(v, t) => {
                            client_run(&exe, None, v, t, c, opts.secs, &url, &out)
                        }
                        Client::Bare(v, t) => {
                            client_run(&exe, Some(&me), v, t, c, opts.secs, &url, &out)
                        }
                        Client::Floor => floor_run(&me, nginx.port, c, opts.secs),
                    }?;
                    eprintln!("{} req/s", units::count(run.rps.round() as u64));
                    runs.push((client, run));
                }
                let find = |k: Client| runs.iter().find(|(x, _)| *x == k).map(|(_, r)| *r);
                let wrk = find(Client::Wrk).map_or(f64::NAN, |r| r.rps);
                for (client, conns, row) in rows.iter_mut() {
                    if *conns != c {
                        continue;
                    }
                    let Some(run) = find(*client) else { continue };
                    row.rps.push(run.rps);
                    row.vs_wrk.push(run.rps / wrk);
                    if let Client::Leak(v, t) = client {
                        if let Some(bare) = find(Client::Bare(*v, *t)) {
                            row.vs_bare.push(run.rps / bare.rps);
                        }
                    }
                    row.cpu_us
                        .push(run.cpu_seconds * 1e6 / run.requests.max(1.0));
                    row.switches
                        .push(run.context_switches / run.requests.max(1.0));
                    row.allocs.extend(run.allocs);
                    row.bytes.extend(run.bytes);
                    row.rss.extend(run.rss.map(|r| r as f64));
                    row.errors += run.errors;
                }
            }
        }
        drop(nginx);
        if !opts.no_server {
            eprint!("  servers: nginx ... ");
            let n = bench_anchors::nginx_cell(FAST_CONNS, opts.secs)?;
            eprint!("latency-server 0 ... ");
            let zero = serve_cell(&me, Duration::ZERO, FAST_CONNS, opts.secs)?;
            eprintln!("latency-server 50ms");
            let slow = serve_cell(&me, SLOW_LATENCY, SLOW_CONNS, opts.secs)?;
            server.vs_nginx.push(zero.rps / n.rps);
            server
                .vs_little
                .push(slow.rps / bench_anchors::little_bound());
            server.nginx.push(n);
            server.zero.push(zero);
            server.slow.push(slow);
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    println!("load average before each run: {}", loads.join(", "));
    println!();
    print_table(&rows, &server);
    println!();
    print_targets(&rows, &server);
    Ok(())
}

fn wrk_run(port: u16, conns: u32, secs: u64) -> Result<Run, String> {
    let m = bench_anchors::run_measured(
        bench_anchors::wrk_command(port, conns, secs).stderr(Stdio::null()),
    )?;
    if !m.success {
        return Err(format!("wrk failed: {}", m.stdout));
    }
    let w = bench_anchors::parse_wrk(&m.stdout)?;
    let reported = ChildLine {
        requests: w.requests as u64,
        errors: w.errors,
        rps: w.rps,
        allocs_per_request: None,
        bytes_allocated_per_request: None,
    };
    Ok(Run::new(&m, reported))
}

/// The blocking floor (this bench in its `--floor` role) against nginx on `port`.
fn floor_run(me: &Path, port: u16, conns: u32, secs: u64) -> Result<Run, String> {
    let mut command = Command::new(me);
    command
        .arg("--floor")
        .args([port.to_string(), conns.to_string(), secs.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let m = bench_anchors::run_measured(&mut command)?;
    let reported = last_json(&m.stdout)
        .filter(|_| m.success)
        .ok_or("the blocking floor failed (its error is above)")?;
    Ok(Run::new(&m, reported))
}

/// `leak-client <variant>` (or, with `bare` = this bench's path, the bare loop) for `secs`
/// against `url`, with every workload flag at its default but these.
#[allow(clippy::too_many_arguments)]
fn client_run(
    exe: &Path,
    bare: Option<&Path>,
    variant: VariantName,
    timeout: TimeoutMode,
    conns: u32,
    secs: u64,
    url: &str,
    out: &Path,
) -> Result<Run, String> {
    let name = format!(
        "{}{}-{}-c{conns}",
        if bare.is_some() { "bare-" } else { "" },
        variant.as_str(),
        timeout.as_str()
    );
    let job = Job {
        name: name.clone(),
        variant,
        workload: Workload {
            duration: Some(Duration::from_secs(secs)),
            concurrency: conns,
            ureq_timeout: timeout,
            ..Workload::defaults()
        },
        control: false,
    };
    let argv = job.argv(url, &out.join(format!("{name}.jsonl")));
    let log = out.join(format!("{name}.log"));
    let stderr = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = match bare {
        Some(me) => {
            let mut c = Command::new(me);
            c.arg("--bare");
            c
        }
        None => Command::new(exe),
    };
    command.args(&argv).stdin(Stdio::null()).stderr(stderr);
    let m = bench_anchors::run_measured(&mut command)?;
    let failed = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        format!("{name} failed; its stderr:\n{text}")
    };
    let reported = if bare.is_some() {
        last_json::<ChildLine>(&m.stdout).ok_or_else(failed)?
    } else {
        let s: Summary = last_json(&m.stdout).ok_or_else(failed)?;
        ChildLine {
            requests: s.requests,
            errors: s.errors,
            rps: s.rps,
            allocs_per_request: Some(s.memory.allocs_per_request),
            bytes_allocated_per_request: Some(s.memory.bytes_allocated_per_request),
        }
    };
    Ok(Run::new(&m, reported))
}

/// The latency-server library in a child process of its own (this bench in `--serve` role).
fn serve_cell(
    me: &Path,
    latency: Duration,
    conns: u32,
    secs: u64,
) -> Result<bench_anchors::Cell, String> {
    let port = bench_anchors::free_port()?;
    let mut command = Command::new(me);
    command
        .arg("--serve")
        .args(bench_anchors::latency_server_args(port, latency));
    bench_anchors::server_cell(command, port, conns, secs)
}
