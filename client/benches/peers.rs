//! `just bench-peers`: leakprobe beside the tools people already trust, in one table, each cell
//! repeated (median and min–max). Against nginx (`return 200`, 1000-character paths):
//! - `wrk`, the reference load generator, at 1, 8 and 64 connections, run once beside each
//!   variant (so each ratio compares runs seconds apart);
//! - `leak-client raw` and `leak-client ureq` (`--ureq-timeout phases` and `global`): the real
//!   binary with its monitor, series, histograms and log, as `compare` runs it — requests/s and
//!   its ratio to wrk's in the same repeat;
//! - a bare loop of the same client calls in the same process setup (the same argv parsed into
//!   the same `RunConfig`, the same `VariantName::builder`, `UrlGen` URLs, the counting
//!   allocator, one thread per connection; no monitor, counters, histograms or log): the
//!   harness ratio is leak-client ÷ bare loop;
//! - the blocking floor: the cheapest client of the raw variant's design (one thread blocking on
//!   one keep-alive `TcpStream` per connection) — the same request bytes every time, written
//!   once, the response read to its known length, nothing parsed, counted or generated. No
//!   thread-per-connection client can beat it, so raw ÷ floor is how close the control is to its
//!   design's limit, and floor ÷ wrk is what the design itself costs against an event loop;
//! - per row: CPU µs and context switches per request of the load generator's process,
//!   allocations and bytes allocated per request (the counting allocator), peak RSS (VmHWM).
//!
//! Then the server rows of `just bench-server`: nginx and latency-server under wrk at latency 0
//! / 100 connections, and latency-server at 50 ms / 1000 connections against Little's bound,
//! with the server's CPU µs per request.
//!
//! `cargo bench -p leak-client --bench peers [-- --secs 3 --repeats 5 --conns 1,8,64 --no-server]`
//!
//! This binary also plays three child roles, chosen by its first argument: `--bare <leak-client
//! argv>` (the bare loop), `--floor PORT CONNS SECS` (the blocking floor) and `--serve
//! <latency-server flags>` (the latency-server library in a process of its own, with the same
//! allocator as the `latency-server` binary).

#[path = "../../server/benches/anchors/mod.rs"]
mod anchors;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anchors::{FAST_CONNS, SLOW_CONNS, SLOW_LATENCY, spread};
use clap::Parser;
use leak_client::child::Job;
use leak_client::cli::{Cli, Command as ClientCommand, Workload};
use leak_client::clients::VariantName;
use leak_client::summary::Summary;
use leak_client::units;
use leak_client::variant::TimeoutMode;
use leak_client::workload::UrlGen;

/// The allocator of `leak-client` and `latency-server` (their `main.rs`), for the child roles.
#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--bare") => bare_loop(&args[1..]),
        Some("--floor") => floor_loop(&args[1..]),
        Some("--serve") => serve(&args[1..]),
        _ => bench(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-peers: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The child roles.

/// The bare loop: `argv` is a `leak-client ureq|raw` command line (with `--duration`), parsed
/// and resolved exactly as the binary does; then one thread per `--concurrency` calls the
/// variant's `get` on the run's URLs until the duration is over. Prints one JSON line.
fn bare_loop(argv: &[String]) -> Result<(), String> {
    let cli =
        Cli::try_parse_from(std::iter::once("leak-client").chain(argv.iter().map(|s| s.as_str())))
            .map_err(|e| e.to_string())?;
    let (variant, args) = match cli.command {
        ClientCommand::Raw(a) => (VariantName::Raw, a),
        ClientCommand::Ureq(a) => (VariantName::Ureq, a),
        _ => return Err("--bare takes a `ureq` or `raw` command line".into()),
    };
    let cfg = args.config(variant);
    let duration = cfg.workload.duration.ok_or("--bare needs --duration")?;
    let connections = Arc::new(AtomicU64::new(0));
    let build = variant.builder(&cfg.variant_config(connections.clone()));
    let w = &cfg.workload;
    let urls = UrlGen::new(&cfg.url, w.path_len, w.seed, w.unique);
    let workers = w.concurrency as usize;
    let go = Arc::new(Barrier::new(workers + 1));
    let mut handles = Vec::with_capacity(workers);
    for id in 0..workers {
        let mut client = build();
        let urls = urls.clone();
        let go = go.clone();
        let spawned = thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || {
                let mut url = String::with_capacity(urls.max_len());
                let (mut ok, mut errors) = (0u64, 0u64);
                // Each worker its own share of the sequence numbers: no shared counter.
                let mut seq = id as u64;
                go.wait();
                let deadline = Instant::now() + duration;
                while Instant::now() < deadline {
                    urls.write(seq, &mut url);
                    seq += workers as u64;
                    match client.get(&url) {
                        Ok(o) if o.status < 400 => ok += 1,
                        _ => errors += 1,
                    }
                }
                (ok, errors)
            })
            .map_err(|e| format!("cannot start worker {id}: {e}"))?;
        handles.push(spawned);
    }
    drop(build);
    let before = heapmeter::snapshot();
    go.wait();
    let started = Instant::now();
    let (mut ok, mut errors) = (0, 0);
    for h in handles {
        let (o, e) = h.join().map_err(|_| "a worker panicked")?;
        ok += o;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = heapmeter::snapshot();
    let requests = (ok + errors).max(1) as f64;
    ChildLine {
        requests: ok + errors,
        errors,
        rps: (ok + errors) as f64 / elapsed,
        allocs_per_request: Some(after.allocs.saturating_sub(before.allocs) as f64 / requests),
        bytes_allocated_per_request: Some(
            after.allocated_bytes.saturating_sub(before.allocated_bytes) as f64 / requests,
        ),
    }
    .print()
}

/// The blocking floor: `CONNS` threads, each on one keep-alive connection to 127.0.0.1:`PORT`,
/// write the same request (the raw variant's bytes for a `PATH_LEN`-character path) and read the
/// response to its length, learned from the first response, for `SECS` seconds. Prints the same
/// JSON line as the bare loop.
fn floor_loop(argv: &[String]) -> Result<(), String> {
    let [port, conns, secs] = argv else {
        return Err("--floor takes PORT CONNS SECS".into());
    };
    let bad = |what: &str| format!("--floor: bad {what}");
    let port: u16 = port.parse().map_err(|_| bad("PORT"))?;
    let conns: usize = conns.parse().map_err(|_| bad("CONNS"))?;
    let secs: u64 = secs.parse().map_err(|_| bad("SECS"))?;
    let mut request = Vec::new();
    leak_client::raw::wire::write_request(
        &mut request,
        &format!("/{}", "a".repeat(anchors::PATH_LEN - 1)),
        &format!("127.0.0.1:{port}"),
    );
    let response_len = floor_response_len(port, &request)?;
    let duration = Duration::from_secs(secs);
    let go = Arc::new(Barrier::new(conns + 1));
    let mut handles = Vec::with_capacity(conns);
    for id in 0..conns {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("floor connection {id}: {e}"))?;
        conn.set_nodelay(true).map_err(|e| e.to_string())?;
        let (go, request) = (go.clone(), request.clone());
        let worker = move || -> Result<u64, String> {
            use std::io::{Read, Write};
            let mut buf = vec![0u8; response_len.max(8192)];
            let mut done = 0u64;
            go.wait();
            let deadline = Instant::now() + duration;
            while Instant::now() < deadline {
                conn.write_all(&request)
                    .map_err(|e| format!("write: {e}"))?;
                let mut got = 0;
                while got < response_len {
                    match conn.read(&mut buf[got..]) {
                        Ok(0) => return Err("the server closed the connection".into()),
                        Ok(n) => got += n,
                        Err(e) => return Err(format!("read: {e}")),
                    }
                }
                if got != response_len {
                    return Err(format!("a response of {got} bytes, not {response_len}"));
                }
                done += 1;
            }
            Ok(done)
        };
        let spawned = thread::Builder::new()
            .name(format!("floor-{id}"))
            .spawn(worker)
            .map_err(|e| format!("cannot start floor thread {id}: {e}"))?;
        handles.push(spawned);
    }
    go.wait();
    let started = Instant::now();
    let mut requests = 0;
    for h in handles {
        requests += h.join().map_err(|_| "a floor thread panicked")??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    ChildLine {
        requests,
        errors: 0,
        rps: requests as f64 / elapsed,
        allocs_per_request: None,
        bytes_allocated_per_request: None,
    }
    .print()
}

/// The one JSON line the bare loop and the blocking floor print on stdout, and the bench reads
/// back (the floor counts no allocations); also what the bench takes from leak-client's summary
/// and from wrk's report.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ChildLine {
    requests: u64,
    errors: u64,
    rps: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allocs_per_request: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes_allocated_per_request: Option<f64>,
}

impl ChildLine {
    fn print(&self) -> Result<(), String> {
        let line = serde_json::to_string(self).map_err(|e| e.to_string())?;
        println!("{line}");
        Ok(())
    }
}

/// The last JSON line of a child's stdout, read as a `T`.
fn last_json<T: serde::de::DeserializeOwned>(stdout: &str) -> Option<T> {
    let line = stdout.lines().rev().find(|l| l.starts_with('{'))?;
    serde_json::from_str(line).ok()
}

/// The length of the server's whole response to `request` (head and a Content-Length body),
/// read once with the raw variant's parser, so the floor's loop can read without parsing.
fn floor_response_len(port: u16, request: &[u8]) -> Result<usize, String> {
    use leak_client::raw::wire::{Framing, Status, parse_head};
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("floor: connect: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    conn.write_all(request)
        .map_err(|e| format!("floor: write: {e}"))?;
    let mut buf = vec![0u8; 8192];
    let mut got = 0;
    loop {
        match conn.read(&mut buf[got..]) {
            Ok(0) | Err(_) => return Err("floor: no complete response head".into()),
            Ok(n) => got += n,
        }
        if let Ok(Status::Complete(head_len, head)) = parse_head(&buf[..got], false) {
            return match head.framing {
                Framing::ContentLength(n) if head.status == 200 && head.keep_alive => {
                    Ok(head_len + n as usize)
                }
                _ => Err("floor: the server's answer is not a keep-alive 200 with a length".into()),
            };
        }
        if got == buf.len() {
            return Err("floor: response head too large".into());
        }
    }
}

/// latency-server in this process, from its own flags, until SIGTERM.
fn serve(argv: &[String]) -> Result<(), String> {
    let cli = latency_server::cli::Cli::try_parse_from(
        std::iter::once("latency-server").chain(argv.iter().map(|s| s.as_str())),
    )
    .map_err(|e| e.to_string())?;
    let config = cli.config(cli.server.seed.unwrap_or(1));
    let _server = latency_server::Server::start(config).map_err(|e| e.to_string())?;
    loop {
        thread::park();
    }
}

// ---------------------------------------------------------------------------------------------
// The bench.

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
    anchors::parse_opts("bench-peers", args.iter().cloned())
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
    fn new(m: &anchors::Measured, reported: ChildLine) -> Run {
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
    nginx: Vec<anchors::Cell>,
    zero: Vec<anchors::Cell>,
    slow: Vec<anchors::Cell>,
    vs_nginx: Vec<f64>,
    vs_little: Vec<f64>,
}

fn bench(args: &[String]) -> Result<(), String> {
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
        anchors::PATH_LEN,
        opts.secs,
        opts.repeats,
        anchors::machine(),
        anchors::load_average(),
    );
    println!(
        "(servers and load generators share this machine: compare the ratios of one run, not \
         absolute numbers)"
    );
    if !anchors::have("wrk") || !anchors::have("nginx") {
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
        let load = anchors::load_average();
        eprintln!("run {}/{} (load {load}):", repeat + 1, opts.repeats);
        loads.push(load);
        let nginx = anchors::Nginx::start()?;
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
            let n = anchors::nginx_cell(FAST_CONNS, opts.secs)?;
            eprint!("latency-server 0 ... ");
            let zero = serve_cell(&me, Duration::ZERO, FAST_CONNS, opts.secs)?;
            eprintln!("latency-server 50ms");
            let slow = serve_cell(&me, SLOW_LATENCY, SLOW_CONNS, opts.secs)?;
            server.vs_nginx.push(zero.rps / n.rps);
            server.vs_little.push(slow.rps / anchors::little_bound());
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
    let m = anchors::run_measured(anchors::wrk_command(port, conns, secs).stderr(Stdio::null()))?;
    if !m.success {
        return Err(format!("wrk failed: {}", m.stdout));
    }
    let w = anchors::parse_wrk(&m.stdout)?;
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
    let m = anchors::run_measured(&mut command)?;
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
    let m = anchors::run_measured(&mut command)?;
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
) -> Result<anchors::Cell, String> {
    let port = anchors::free_port()?;
    let mut command = Command::new(me);
    command
        .arg("--serve")
        .args(anchors::latency_server_args(port, latency));
    anchors::server_cell(command, port, conns, secs)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

fn rps_spread(values: &[f64]) -> String {
    anchors::spread_with(values, |v| units::count(v.round() as u64))
}

fn print_table(rows: &[(Client, u32, Row)], server: &ServerRows) {
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
            anchors::median_opt(v).map_or_else(|| "–".to_owned(), f)
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
    let line = |name: &str, conns: u32, cells: &[anchors::Cell], ratio: String| {
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
            anchors::median_opt(&rss).map_or_else(|| "–".to_owned(), mib),
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
            units::count(anchors::little_bound() as u64)
        ),
    );
    println!(
        "(load generator rows: CPU is the load generator's process; server rows: the server's \
         (nginx: master and workers). latency-server runs as this bench's `--serve` child: the \
         library with the binary's allocator.)"
    );
}

/// The targets, each with the median it is judged on.
fn print_targets(rows: &[(Client, u32, Row)], server: &ServerRows) {
    let median_of = |client: Client, conns: u32, pick: &dyn Fn(&Row) -> &Vec<f64>| {
        rows.iter()
            .find(|(c, n, _)| *c == client && *n == conns)
            .and_then(|(_, _, r)| anchors::median_opt(pick(r)))
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
        anchors::median_opt(&ratios)
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
                anchors::median_opt(&row.vs_bare),
                &|v| v >= 0.95,
            );
        }
    }
    let cells_median = |cells: &[anchors::Cell], f: &dyn Fn(&anchors::Cell) -> f64| {
        anchors::median_opt(&cells.iter().map(f).collect::<Vec<_>>())
    };
    check(
        "latency-server at 0 ms ≥ 0.60× nginx req/s".into(),
        anchors::median_opt(&server.vs_nginx),
        &|v| v >= 0.60,
    );
    check(
        "latency-server at 50 ms / 1000 conns ≥ 0.95× Little's bound".into(),
        anchors::median_opt(&server.vs_little),
        &|v| v >= 0.95,
    );
    check(
        "latency-server at 50 ms / 1000 conns ≤ 40 µs CPU/request".into(),
        cells_median(&server.slow, &|c| c.cpu_us_per_request),
        &|v| v <= 40.0,
    );
}
