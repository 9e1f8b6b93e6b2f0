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
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use latency_server::{Config, Server};

// Counts the allocations of the in-process server (the load generator here makes none).
#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

/// Characters in every request path, `/` included.
const PATH_LEN: usize = 1000;
/// The nginx configuration, with `{prefix}` and `{port}` to fill in.
const NGINX_CONF: &str = include_str!("nginx.conf");
/// Little's bound of the 50 ms cell: connections / latency.
const SLOW_CONNS: u32 = 1000;
const SLOW_LATENCY: Duration = Duration::from_millis(50);
const FAST_CONNS: u32 = 100;

struct Opts {
    secs: u64,
    repeats: usize,
    callgrind: bool,
    exe: PathBuf,
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
    let mut opts = Opts {
        secs: 5,
        repeats: 3,
        callgrind: false,
        exe: PathBuf::from(env!("CARGO_BIN_EXE_latency-server")),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name} takes a positive whole number"))
        };
        match arg.as_str() {
            "--secs" => opts.secs = number("--secs")?,
            "--repeats" => opts.repeats = number("--repeats")? as usize,
            "--callgrind" => opts.callgrind = true,
            "--exe" => {
                opts.exe = args
                    .next()
                    .map(PathBuf::from)
                    .ok_or("--exe takes the path of a latency-server binary")?;
            }
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => {
                return Err(format!(
                    "unknown argument {other:?} (expected --secs N, --repeats N, --callgrind, \
                     --exe PATH)"
                ));
            }
        }
    }
    Ok(opts)
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
            Some(nginx_cell(opts.secs)?)
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
        let little = f64::from(SLOW_CONNS) / SLOW_LATENCY.as_secs_f64();
        rows.vs_little.push(slow.rps / little);
        rows.zero.push(zero);
        rows.slow.push(slow);
    }
    rows.print();
    Ok(())
}

/// One wrk run against one server.
#[derive(Debug, Clone)]
struct Cell {
    rps: f64,
    cpu_us_per_request: f64,
    /// wrk's mean latency, in milliseconds.
    mean_ms: f64,
    /// Non-2xx answers and socket errors wrk reported.
    errors: u64,
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

/// `median (min–max)`, with `decimals` digits.
fn spread(values: &[f64], decimals: usize) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    let (lo, hi) = (v[0], v[v.len() - 1]);
    if v.len() == 1 {
        format!("{median:.decimals$}")
    } else {
        format!("{median:.decimals$} ({lo:.decimals$}–{hi:.decimals$})")
    }
}

/// latency-server as its own process with this latency, loaded by wrk with `conns`.
fn server_cell(exe: &Path, latency: Duration, conns: u32, secs: u64) -> Result<Cell, String> {
    let port = free_port()?;
    let child = Command::new(exe)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args(["--latency", &format!("{}ms", latency.as_millis())])
        .args(["--report-every", "0s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let child = Reaped(child);
    wait_for_port(port, Duration::from_secs(10))?;
    let pids = [child.0.id()];
    wrk_cell(port, conns, secs, &pids)
}

/// nginx from the configuration beside this file, in a temporary prefix.
fn nginx_cell(secs: u64) -> Result<Cell, String> {
    let port = free_port()?;
    let prefix = std::env::temp_dir().join(format!("leakprobe-nginx-{}", std::process::id()));
    std::fs::create_dir_all(&prefix).map_err(|e| format!("{}: {e}", prefix.display()))?;
    let conf = NGINX_CONF
        .replace("{prefix}", &prefix.display().to_string())
        .replace("{port}", &port.to_string());
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|e| format!("{}: {e}", conf_path.display()))?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&prefix)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let child = Reaped(child);
    wait_for_port(port, Duration::from_secs(10))?;
    let master = child.0.id();
    let mut pids = vec![master];
    pids.extend(children_of(master));
    let cell = wrk_cell(port, FAST_CONNS, secs, &pids);
    drop(child);
    let _ = std::fs::remove_dir_all(&prefix);
    cell
}

/// Runs wrk against `port` and measures the CPU time of `pids` over the run.
fn wrk_cell(port: u16, conns: u32, secs: u64, pids: &[u32]) -> Result<Cell, String> {
    let url = format!("http://127.0.0.1:{port}/{}", "a".repeat(PATH_LEN - 1));
    let before = cpu_seconds(pids)?;
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{conns}"), &format!("-d{secs}s")])
        .arg(&url)
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let after = cpu_seconds(pids)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let requests = wrk_number(&text, "requests in").ok_or("wrk printed no request count")?;
    let rps = wrk_number(&text, "Requests/sec:").ok_or("wrk printed no Requests/sec")?;
    let errors =
        wrk_number(&text, "Non-2xx or 3xx responses:").unwrap_or(0.0) + wrk_socket_errors(&text);
    Ok(Cell {
        rps,
        cpu_us_per_request: (after - before) * 1e6 / requests.max(1.0),
        mean_ms: wrk_mean_latency_ms(&text).unwrap_or(f64::NAN),
        errors: errors as u64,
    })
}

/// The number on the line containing `label`: before it (`N requests in`) or after it.
fn wrk_number(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(label))?;
    let (before, after) = line.split_once(label)?;
    let word = if before.trim().is_empty() {
        after.split_whitespace().next()?
    } else {
        before.split_whitespace().last()?
    };
    word.trim_end_matches(',').parse().ok()
}

/// The average of wrk's `Latency` line (`Latency 50.89ms 2.40ms ...`), in milliseconds.
fn wrk_mean_latency_ms(text: &str) -> Option<f64> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Latency "))?;
    let value = line.split_whitespace().nth(1)?;
    let (number, scale) = if let Some(v) = value.strip_suffix("us") {
        (v, 1e-3)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1e3)
    } else {
        (value, 1.0)
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// `Socket errors: connect 0, read 0, write 0, timeout 0` summed.
fn wrk_socket_errors(text: &str) -> f64 {
    let Some(line) = text.lines().find(|l| l.contains("Socket errors:")) else {
        return 0.0;
    };
    line.split(',')
        .filter_map(|part| part.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

/// utime + stime of `pids` (all their threads), in seconds.
fn cpu_seconds(pids: &[u32]) -> Result<f64, String> {
    let ticks_per_second = clock_ticks();
    let mut total = 0u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| format!("/proc/{pid}/stat: {e} (CPU times need Linux)"))?;
        // Fields after the command name, which ends at the last `)`: state is field 3,
        // utime 14, stime 15 (1-based, `man 5 proc`).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        for i in [11, 12] {
            total += fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(total as f64 / ticks_per_second)
}

/// `sysconf(_SC_CLK_TCK)` through `getconf`; 100 (Linux's constant) if that fails.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Processes whose parent is `pid` (nginx's workers).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".into())
}

/// A free loopback port below the ephemeral range (so wrk's own connections cannot take it
/// between this check and the server's bind).
fn free_port() -> Result<u16, String> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let start = 20_000u16.min(low.saturating_sub(2000));
    let span = low.saturating_sub(start).max(1);
    let offset = (std::process::id() as u16).wrapping_mul(7919) % span;
    for i in 0..span.min(500) {
        let port = start + (offset + i * 37) % span;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free loopback port".into())
}

fn wait_for_port(port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("nothing listens on port {port} after {timeout:?}"));
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A child process ended (SIGTERM, then SIGKILL if it lingers) and reaped when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let child = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args(["--latency", &format!("{}ms", latency.as_millis())])
        .args(["--report-every", "0s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start valgrind: {e}"))?;
    let child = Reaped(child);
    let pid = child.0.id().to_string();
    wait_for_port(port, Duration::from_secs(60))?;
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
