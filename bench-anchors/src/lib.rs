//! The reference tools both peer benches measure against, and how they are run and read: nginx
//! (`nginx.conf` beside `src/`) as the reference server, `wrk` as the reference load generator,
//! CPU time and context switches of child processes (`getrusage`), CPU time of other processes
//! and peak RSS from `/proc`, and the `median (min–max)` cells of their tables. A dev-dependency
//! of `just bench-server` (server/benches/peers.rs) and `just bench-peers`
//! (client/benches/peers/); each uses part of it.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Characters in every request path, `/` included.
pub const PATH_LEN: usize = 1000;
/// The nginx configuration, with `{prefix}` and `{port}` to fill in.
const NGINX_CONF: &str = include_str!("../nginx.conf");

/// The server cells: at latency 0 with this many wrk connections (beside nginx), and at
/// `SLOW_LATENCY` with `SLOW_CONNS`, where Little's bound is `SLOW_CONNS / SLOW_LATENCY`.
pub const FAST_CONNS: u32 = 100;
pub const SLOW_CONNS: u32 = 1000;
pub const SLOW_LATENCY: Duration = Duration::from_millis(50);

/// A bench's options from `args` (after the program name) under the name `name`; `--help`
/// prints them and exits, any other problem is clap's message.
pub fn parse_opts<T: clap::Parser>(
    name: &str,
    args: impl IntoIterator<Item = String>,
) -> Result<T, String> {
    T::try_parse_from(std::iter::once(name.to_string()).chain(args)).map_err(|e| {
        if e.use_stderr() {
            e.to_string()
        } else {
            let _ = e.print();
            std::process::exit(0)
        }
    })
}

/// Little's bound of the slow cell, requests/s.
pub fn little_bound() -> f64 {
    f64::from(SLOW_CONNS) / SLOW_LATENCY.as_secs_f64()
}

/// The URL wrk loads: one `PATH_LEN`-character path.
pub fn wrk_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/{}", "a".repeat(PATH_LEN - 1))
}

/// One wrk run against one server, with the CPU the server's processes used meanwhile.
#[derive(Debug, Clone)]
pub struct Cell {
    pub rps: f64,
    /// CPU of the measured server processes per request (utime + stime), µs.
    pub cpu_us_per_request: f64,
    /// wrk's mean latency, in milliseconds.
    pub mean_ms: f64,
    /// Non-2xx answers and socket errors wrk reported.
    pub errors: u64,
    /// Peak RSS of the first measured server process (its VmHWM), bytes.
    pub server_rss: Option<u64>,
}

/// nginx from `nginx.conf`, in a temporary prefix, until dropped.
pub struct Nginx {
    child: Option<Reaped>,
    prefix: PathBuf,
    pub port: u16,
    /// The master and its workers.
    pub pids: Vec<u32>,
}

impl Nginx {
    pub fn start() -> Result<Nginx, String> {
        let port = free_port()?;
        let prefix =
            std::env::temp_dir().join(format!("leakprobe-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&prefix).map_err(|e| format!("{}: {e}", prefix.display()))?;
        let conf = NGINX_CONF
            .replace("{prefix}", &prefix.display().to_string())
            .replace("{port}", &port.to_string());
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(|e| format!("{}: {e}", conf_path.display()))?;
        let mut command = Command::new("nginx");
        command
            .arg("-p")
            .arg(&prefix)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .arg("-c")
            .arg(&conf_path);
        let child = start_listening(&mut command, "nginx", port, Duration::from_secs(10))?;
        let master = child.0.id();
        let mut pids = vec![master];
        // The workers fork right after the master listens; give them a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let workers = children_of(master);
            if workers.len() >= 2 || Instant::now() > deadline {
                pids.extend(workers);
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(Nginx {
            child: Some(child),
            prefix,
            port,
            pids,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        drop(self.child.take());
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// wrk against nginx (started for this cell) with `conns` connections.
pub fn nginx_cell(conns: u32, secs: u64) -> Result<Cell, String> {
    let nginx = Nginx::start()?;
    let cell = wrk_cell(nginx.port, conns, secs, &nginx.pids);
    drop(nginx);
    cell
}

/// A server process started by `command` (which must listen on 127.0.0.1:`port`), loaded by
/// wrk with `conns` connections.
pub fn server_cell(mut command: Command, port: u16, conns: u32, secs: u64) -> Result<Cell, String> {
    let child = start_listening(&mut command, "the server", port, Duration::from_secs(10))?;
    let pids = [child.0.id()];
    wrk_cell(port, conns, secs, &pids)
}

/// The flags that make latency-server listen on 127.0.0.1:`port` with `latency` and no
/// periodic reports.
pub fn latency_server_args(port: u16, latency: Duration) -> [String; 6] {
    [
        "--addr".into(),
        format!("127.0.0.1:{port}"),
        "--latency".into(),
        format!("{}ms", latency.as_millis()),
        "--report-every".into(),
        "0s".into(),
    ]
}

/// What wrk printed, read back.
#[derive(Debug, Clone)]
pub struct WrkOutput {
    pub requests: f64,
    pub rps: f64,
    pub mean_ms: f64,
    pub errors: u64,
}

/// The wrk command for `conns` connections for `secs`: two threads (one per core here), one
/// when there is a single connection.
pub fn wrk_command(port: u16, conns: u32, secs: u64) -> Command {
    let mut c = Command::new("wrk");
    c.arg(format!("-t{}", conns.min(2)))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .arg(wrk_url(port));
    c
}

/// Reads wrk's report.
pub fn parse_wrk(text: &str) -> Result<WrkOutput, String> {
    let requests = wrk_number(text, "requests in").ok_or("wrk printed no request count")?;
    let rps = wrk_number(text, "Requests/sec:").ok_or("wrk printed no Requests/sec")?;
    let errors =
        wrk_number(text, "Non-2xx or 3xx responses:").unwrap_or(0.0) + wrk_socket_errors(text);
    Ok(WrkOutput {
        requests,
        rps,
        mean_ms: wrk_mean_latency_ms(text).unwrap_or(f64::NAN),
        errors: errors as u64,
    })
}

/// Runs wrk against `port` and measures the CPU time of `pids` over the run.
pub fn wrk_cell(port: u16, conns: u32, secs: u64, pids: &[u32]) -> Result<Cell, String> {
    let before = cpu_seconds(pids)?;
    let out = wrk_command(port, conns, secs)
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let after = cpu_seconds(pids)?;
    let server_rss = pids.first().and_then(|&p| peak_rss(p));
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let w = parse_wrk(&text)?;
    Ok(Cell {
        rps: w.rps,
        cpu_us_per_request: (after - before) * 1e6 / w.requests.max(1.0),
        mean_ms: w.mean_ms,
        errors: w.errors,
        server_rss,
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

/// A child process run to its end, measured: its stdout, its CPU time (utime + stime, all
/// threads) and context switches (voluntary + involuntary, all threads), both read as this
/// process's waited-for children's usage before and after, and its peak RSS (VmHWM, read at
/// 10 Hz while it runs: the last reading before it exits).
#[derive(Debug)]
pub struct Measured {
    pub stdout: String,
    pub success: bool,
    pub cpu_seconds: f64,
    pub context_switches: f64,
    pub peak_rss: Option<u64>,
}

/// Runs `command` (stdout captured; stdin and stderr as the caller set them) and measures it.
/// Nothing else of this process may be waited for meanwhile.
pub fn run_measured(command: &mut Command) -> Result<Measured, String> {
    let before = children_usage()?;
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
    let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let mut peak = None;
    let status = loop {
        if let Some(rss) = peak_rss(child.id()) {
            peak = Some(rss);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("cannot wait for the child: {e}")),
        }
    };
    let after = children_usage()?;
    let stdout = reader.join().unwrap_or_default();
    Ok(Measured {
        stdout,
        success: status.success(),
        cpu_seconds: after.cpu_seconds - before.cpu_seconds,
        context_switches: after.context_switches - before.context_switches,
        peak_rss: peak,
    })
}

/// `VmHWM` of `pid`, bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Fields of `/proc/PID/stat` after the command name (which ends at the last `)`), so that
/// index 0 is field 3 (`state`) of `man 5 proc`.
fn stat_fields(pid: u32) -> Result<Vec<u64>, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e} (CPU times need Linux)"))?;
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    Ok(rest
        .split_whitespace()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .collect())
}

/// utime + stime of `pids` (all their threads), in seconds.
pub fn cpu_seconds(pids: &[u32]) -> Result<f64, String> {
    let mut total = 0u64;
    for pid in pids {
        let fields = stat_fields(*pid)?;
        // utime and stime: fields 14 and 15.
        total += fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    }
    Ok(total as f64 / clock_ticks())
}

/// What this process's waited-for children used, summed over them and their threads.
struct Usage {
    cpu_seconds: f64,
    context_switches: f64,
}

fn children_usage() -> Result<Usage, String> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).map_err(|e| format!("getrusage: {e}"))?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 * 1e-6;
    Ok(Usage {
        cpu_seconds: seconds(u.user_time()) + seconds(u.system_time()),
        context_switches: (u.voluntary_context_switches() + u.involuntary_context_switches())
            as f64,
    })
}

/// `sysconf(_SC_CLK_TCK)` through `getconf`; 100 (Linux's constant) if that fails.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Processes whose parent is `pid` (nginx's workers).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        // ppid: field 4.
        .filter(|&child| {
            stat_fields(child).is_ok_and(|f| f.get(1).copied() == Some(u64::from(pid)))
        })
        .collect()
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The 1-minute load average.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".into())
}

/// `N CPUs (model)`, for a table's header.
pub fn machine() -> String {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model})")
}

/// A free loopback port below the ephemeral range (so wrk's own connections cannot take it
/// between this check and the server's bind).
pub fn free_port() -> Result<u16, String> {
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

/// Starts `command` (stdout and stderr to /dev/null; `what` names it in the error), which must
/// listen on 127.0.0.1:`port`, and waits up to `timeout` for the port to accept; the child is
/// ended when the result is dropped (or when it does not listen in time).
pub fn start_listening(
    command: &mut Command,
    what: &str,
    port: u16,
    timeout: Duration,
) -> Result<Reaped, String> {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let child = Reaped(child);
    wait_for_port(port, timeout)?;
    Ok(child)
}

pub fn wait_for_port(port: u16, timeout: Duration) -> Result<(), String> {
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
pub struct Reaped(pub Child);

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

/// The median of `values` (NaN for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The median of `values`, `None` for none.
pub fn median_opt(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| median(values))
}

/// `median (min–max)`, with `decimals` digits; just the value for one, `–` for none.
pub fn spread(values: &[f64], decimals: usize) -> String {
    spread_with(values, |v| format!("{v:.decimals$}"))
}

/// `median (min–max)`, each number written by `fmt`; just the value for one, `–` for none.
pub fn spread_with(values: &[f64], fmt: impl Fn(f64) -> String) -> String {
    if values.is_empty() {
        return "–".into();
    }
    let median = median(values);
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() == 1 {
        fmt(median)
    } else {
        format!("{} ({}–{})", fmt(median), fmt(lo), fmt(hi))
    }
}
