//! `just bench-server`: latency-server beside nginx, both loaded by `wrk` with 1000-character
//! paths, each cell repeated (median and min–max): requests/s, CPU µs per request of the
//! server process (utime + stime from `/proc/PID/stat`, before and after, over the requests
//! served), and the ratios the targets are stated in — latency-server against nginx at
//! latency 0, and against Little's bound (connections / latency) at 50 ms. Also allocations
//! per request, counted in this process, and (with `--callgrind`) instructions per request.
//! Rows whose tool (nginx, wrk, valgrind) is missing are skipped with a note.
//!
//! `cargo bench -p latency-server --bench peers [-- --secs 5 --repeats 3 --callgrind]`; add
//! `--exe PATH` to measure another latency-server build (e.g. the one before a change).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use bench_anchors::{
    Cell, FAST_CONNS, PATH_LEN, SLOW_CONNS, SLOW_LATENCY, free_port, have, load_average, spread,
    start_listening,
};
use latency_server::{Config, Server};

// Counts the allocations of the in-process server (the load generator here makes none).
#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

/// `just bench-server [OPTIONS]`: latency-server beside nginx under wrk, repeated.
#[derive(clap::Parser)]
#[command(name = "bench-server")]
struct Opts {
    /// Seconds per measured run.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    secs: u64,
    /// Repeats (medians and min–max over them).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    repeats: u64,
    /// Also count user-space instructions per request under valgrind's callgrind.
    #[arg(long)]
    callgrind: bool,
    /// The latency-server binary to measure.
    #[arg(long, default_value = env!("CARGO_BIN_EXE_latency-server"))]
    exe: PathBuf,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<Opts, String> {
    bench_anchors::parse_opts("bench-server", std::env::args().skip(1))
}

fn run() -> Result<(), String> {
    let opts = parse_args()?;
    // wrk needs a descriptor per connection; the servers inherit the raised limit too.
    let needed = latency_server::server_descriptors_needed(u64::from(SLOW_CONNS));
    let _ = latency_server::raise_open_files_limit(needed, "1000 connections");
    let exe = opts.exe.clone();

    println!(
        "latency-server beside nginx under wrk: {PATH_LEN}-char paths, {} s per cell, {} runs \
         (median, min–max); {} CPUs, load average {} at start",
        opts.secs,
        opts.repeats,
        thread::available_parallelism().map_or(1, |n| n.get()),
        load_average(),
    );
    println!(
        "(one machine for servers and load generator alike: compare the ratios of one run, not \
         absolute numbers)\nlatency-server: {}",
        exe.display()
    );
    println!();

    let fast = allocations_per_request(Duration::ZERO)?;
    let slow = allocations_per_request(Duration::from_millis(1))?;
    println!(
        "allocations per request (this build, in-process, 4 keep-alive connections): latency 0: {fast:.1}, \
         latency 1 ms: {slow:.1}"
    );

    if opts.callgrind {
        callgrind_rows(&exe);
    }
    println!();

    if !have("wrk") {
        println!(
            "wrk not found (Debian: apt-get install wrk): skipping the requests/s and CPU rows"
        );
        return Ok(());
    }
    let nginx_ok = have("nginx");
    if !nginx_ok {
        println!("nginx not found (Debian: apt-get install nginx): skipping the nginx row");
    }
    let mut rows = Rows {
        secs: opts.secs,
        ..Rows::default()
    };
    for run in 0..opts.repeats {
        eprint!("run {}/{}: ", run + 1, opts.repeats);
        let nginx = if nginx_ok {
            eprint!("nginx ");
            Some(bench_anchors::nginx_cell(FAST_CONNS, opts.secs)?)
        } else {
            None
        };
        eprint!("latency-server 0 ");
        let zero = server_cell(&exe, Duration::ZERO, FAST_CONNS, opts.secs)?;
        eprintln!("latency-server 50ms");
        let slow = server_cell(&exe, SLOW_LATENCY, SLOW_CONNS, opts.secs)?;
        if let Some(n) = &nginx {
            rows.vs_nginx.push(zero.rps / n.rps);
            rows.nginx.push(n.clone());
        }
        rows.vs_little
            .push(slow.rps / bench_anchors::little_bound());
        rows.zero.push(zero);
        rows.slow.push(slow);
    }
    rows.print();
    Ok(())
}

#[derive(Default)]
struct Rows {
    secs: u64,
    nginx: Vec<Cell>,
    zero: Vec<Cell>,
    slow: Vec<Cell>,
    vs_nginx: Vec<f64>,
    vs_little: Vec<f64>,
}

impl Rows {
    fn print(&self) {
        println!(
            "{:<30} {:>5}  {:<24} {:<30} {:<20} {:<20} {:>6}",
            "server", "conns", "req/s", "ratio", "CPU µs/request", "wrk mean ms", "errors"
        );
        let line = |name: &str, conns: u32, cells: &[Cell], ratio: String| {
            if cells.is_empty() {
                return;
            }
            let rps: Vec<f64> = cells.iter().map(|c| c.rps).collect();
            let cpu: Vec<f64> = cells.iter().map(|c| c.cpu_us_per_request).collect();
            let mean: Vec<f64> = cells.iter().map(|c| c.mean_ms).collect();
            let errors: u64 = cells.iter().map(|c| c.errors).sum();
            println!(
                "{name:<30} {conns:>5}  {:<24} {ratio:<30} {:<20} {:<20} {errors:>6}",
                spread(&rps, 0),
                spread(&cpu, 1),
                spread(&mean, 2)
            );
        };
        line("nginx (return 200)", FAST_CONNS, &self.nginx, "1.00".into());
        let vs_nginx = if self.vs_nginx.is_empty() {
            "(no nginx)".to_owned()
        } else {
            format!("{}× nginx", spread(&self.vs_nginx, 2))
        };
        line(
            "latency-server, latency 0",
            FAST_CONNS,
            &self.zero,
            vs_nginx,
        );
        line(
            "latency-server, latency 50ms",
            SLOW_CONNS,
            &self.slow,
            format!("{}× Little 20000/s", spread(&self.vs_little, 2)),
        );
        println!();
        println!(
            "targets: latency 0 ≥ 0.60× nginx req/s; at 50 ms / 1000 connections ≥ 0.95× \
             Little's bound and ≤ 40 µs CPU/request"
        );
        println!(
            "(Little's bound is connections / 50 ms; wrk's mean latency above 50 ms, and the \
             first round trip of each {}-s cell, are what keeps a run below it)",
            self.secs
        );
    }
}

/// latency-server as its own process with this latency, loaded by wrk with `conns`.
fn server_cell(exe: &Path, latency: Duration, conns: u32, secs: u64) -> Result<Cell, String> {
    let port = free_port()?;
    let mut command = Command::new(exe);
    command.args(bench_anchors::latency_server_args(port, latency));
    bench_anchors::server_cell(command, port, conns, secs)
}

/// The request every client here sends (keep-alive, a 1000-character path).
fn request_bytes() -> Vec<u8> {
    format!(
        "GET /{} HTTP/1.1\r\nHost: bench\r\n\r\n",
        "a".repeat(PATH_LEN - 1)
    )
    .into_bytes()
}

/// Sends `n` requests on one keep-alive connection, reading each response whole (head, then
/// `Content-Length` bytes) into a fixed buffer: allocates nothing. Returns the 200s.
fn exchange_n(tcp: &mut TcpStream, request: &[u8], n: usize) -> std::io::Result<usize> {
    let mut buf = [0u8; 8192];
    let mut ok = 0;
    for _ in 0..n {
        tcp.write_all(request)?;
        let mut filled = 0;
        loop {
            let read = tcp.read(&mut buf[filled..])?;
            if read == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            filled += read;
            let head = &buf[..filled];
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let length = content_length(&head[..end]);
            if filled >= end + 4 + length {
                if head.starts_with(b"HTTP/1.1 200") {
                    ok += 1;
                }
                break;
            }
        }
    }
    Ok(ok)
}

fn content_length(head: &[u8]) -> usize {
    const NAME: &[u8] = b"\r\nContent-Length: ";
    let Some(at) = head.windows(NAME.len()).position(|w| w == NAME) else {
        return 0;
    };
    head[at + NAME.len()..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0, |n, b| n * 10 + usize::from(b - b'0'))
}

/// Allocations per request of the in-process server: 4 keep-alive connections, counted
/// after a warm-up, while the clients (which allocate nothing) send 2,000 requests each.
fn allocations_per_request(latency: Duration) -> Result<f64, String> {
    const CONNS: usize = 4;
    const PER_CONN: usize = 2000;
    let server = Server::start(Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        latency,
        report_every: None,
        ..Config::default()
    })
    .map_err(|e| format!("in-process server: {e}"))?;
    let addr = server.addr();
    let start = Arc::new(Barrier::new(CONNS + 1));
    let done = Arc::new(Barrier::new(CONNS + 1));
    let clients: Vec<_> = (0..CONNS)
        .map(|_| {
            let (start, done) = (start.clone(), done.clone());
            thread::spawn(move || -> std::io::Result<usize> {
                let request = request_bytes();
                let mut tcp = TcpStream::connect(addr)?;
                tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
                let warm = exchange_n(&mut tcp, &request, 100);
                start.wait();
                let counted = warm.and_then(|_| exchange_n(&mut tcp, &request, PER_CONN));
                done.wait();
                counted
            })
        })
        .collect();
    start.wait();
    let before = heapmeter::snapshot().allocs;
    done.wait();
    let after = heapmeter::snapshot().allocs;
    let mut ok = 0;
    for c in clients {
        ok += c
            .join()
            .map_err(|_| "a client thread panicked".to_owned())?
            .map_err(|e| format!("client: {e}"))?;
    }
    server.shutdown(Duration::from_secs(1));
    if ok != CONNS * PER_CONN {
        return Err(format!(
            "only {ok} of {} requests got 200",
            CONNS * PER_CONN
        ));
    }
    Ok((after - before) as f64 / ok as f64)
}

/// Instructions per request of the server binary under callgrind (user space only; the
/// repeatable measure for before/after comparisons), at latency 0 and 1 ms.
fn callgrind_rows(exe: &Path) {
    if !have("valgrind") || !have("callgrind_control") {
        println!("valgrind not found (Debian: apt-get install valgrind): skipping callgrind");
        return;
    }
    for latency in [Duration::ZERO, Duration::from_millis(1)] {
        match callgrind_cell(exe, latency) {
            Ok(ir) => println!(
                "callgrind: {ir:.0} instructions per request at latency {} (user space, all threads)",
                humantime::format_duration(latency)
            ),
            Err(e) => println!("callgrind at latency {latency:?} failed: {e}"),
        }
    }
}

fn callgrind_cell(exe: &Path, latency: Duration) -> Result<f64, String> {
    const CONNS: usize = 4;
    const PER_CONN: usize = 1000;
    let dir = std::env::temp_dir().join(format!("leakprobe-cg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = free_port()?;
    let out = dir.join("cg.out");
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .args(bench_anchors::latency_server_args(port, latency));
    let child = start_listening(&mut command, "valgrind", port, Duration::from_secs(60))?;
    let pid = child.0.id().to_string();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let load = |n: usize| -> Result<usize, String> {
        let clients: Vec<_> = (0..CONNS)
            .map(|_| {
                thread::spawn(move || -> std::io::Result<usize> {
                    let mut tcp = TcpStream::connect(addr)?;
                    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
                    exchange_n(&mut tcp, &request_bytes(), n)
                })
            })
            .collect();
        let mut ok = 0;
        for c in clients {
            ok += c
                .join()
                .map_err(|_| "client panicked".to_owned())?
                .map_err(|e| format!("client: {e}"))?;
        }
        Ok(ok)
    };
    load(100)?;
    let control = |what: &str| {
        Command::new("callgrind_control")
            .args([what, &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("callgrind_control: {e}"))
    };
    control("-z")?;
    let ok = load(PER_CONN)?;
    control("-d")?;
    drop(child);
    let mut total = None;
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".1") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        total = text
            .lines()
            .find_map(|l| l.strip_prefix("summary:").or(l.strip_prefix("totals:")))
            .and_then(|v| v.trim().parse::<f64>().ok());
    }
    let _ = std::fs::remove_dir_all(&dir);
    let total = total.ok_or("no callgrind dump")?;
    if ok != CONNS * PER_CONN {
        return Err(format!(
            "only {ok} of {} requests got 200",
            CONNS * PER_CONN
        ));
    }
    Ok(total / ok as f64)
}
