//! `leak-client watch`: the wiring that judges any program. Starts the server (or polls a
//! running one's `/__stats`), starts COMMAND in its own process group with `LEAKPROBE_URL` (and
//! a probe), samples its tree and reads its probe against the served count, kicks a server
//! program, stops it (SIGTERM to the group, SIGKILL after a grace period), and prints the
//! summary. The reading is `crate::watch`'s, the verdict `watch::judge`'s; nothing here measures
//! memory or decides a class itself.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Backend, install_signal_handler};
use crate::cli::WatchArgs;
use crate::exit;
use crate::jsonl::Jsonl;
use crate::stop::Stop;
use crate::watch::clock::monotonic_ns;
use crate::watch::judge::{HeapRow, TreeRow, judge};
use crate::watch::pair::ServedLog;
use crate::watch::probe::{Probe, ProbeReader, ProbeSettings, ProbeTotals, Reading, Runtime};
use crate::watch::proctree::{Root, TreeSampler};
use crate::watch::summary::{
    TreeMemory, WatchKind, WatchSample, WatchStop, WatchSummary, log_line,
};

/// SIGTERM to SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// How often the served count is recorded (and the loop turns).
const TICK: Duration = Duration::from_millis(5);
/// No request served for this long: the reading is quiescent.
const IDLE: Duration = Duration::from_secs(1);
/// Every how many tree samples `smaps_rollup` (PSS) is read: it walks page tables.
const PSS_EVERY: u64 = 8;

/// Where the served count comes from.
enum Served {
    InProcess,
    /// A running latency-server's `/__stats`, minus its count when the watch began, read every
    /// [`REMOTE_POLL`] at most.
    Remote {
        /// Keeps one connection to the server alive across polls.
        agent: ureq::Agent,
        /// `http://ADDR/__stats`.
        stats: String,
        base: u64,
        last: u64,
        next: Instant,
    },
}

/// How often a `--url` server's `/__stats` is read.
const REMOTE_POLL: Duration = Duration::from_millis(20);

impl Served {
    fn read(&mut self, backend: &Backend) -> u64 {
        match self {
            // Every tick (5 ms): the counter alone, not a whole snapshot with its RSS read.
            Served::InProcess => backend.server.as_ref().map_or(0, |s| s.served()),
            Served::Remote {
                agent,
                stats,
                base,
                last,
                next,
            } => {
                if Instant::now() >= *next {
                    *next = Instant::now() + REMOTE_POLL;
                    if let Some((n, _)) = stats_counts(agent, stats) {
                        *last = n.saturating_sub(*base);
                    }
                }
                *last
            }
        }
    }
}

impl Served {
    /// The final count, once the program has stopped: read now (not a cached poll), after
    /// the requests still in flight at the server have been answered (at most [`SETTLE`]), so
    /// the last requests the program sent are all counted.
    fn settle(&mut self, backend: &Backend) -> u64 {
        let until = Instant::now() + SETTLE;
        loop {
            let (served, in_flight) = match self {
                Served::InProcess => match backend.server.as_ref() {
                    Some(s) => {
                        let st = s.stats();
                        (st.served, st.in_flight)
                    }
                    None => return 0,
                },
                Served::Remote {
                    agent,
                    stats,
                    base,
                    last,
                    ..
                } => match stats_counts(agent, stats) {
                    Some((n, in_flight)) => {
                        *last = n.saturating_sub(*base);
                        (*last, in_flight)
                    }
                    None => return *last,
                },
            };
            if in_flight == 0 || Instant::now() >= until {
                return served;
            }
            std::thread::sleep(TICK);
        }
    }
}

/// How long the final count waits for the server's requests in flight.
const SETTLE: Duration = Duration::from_secs(1);

/// `(served, in_flight)` from a latency-server's `/__stats`.
fn stats_counts(agent: &ureq::Agent, stats: &str) -> Option<(u64, u64)> {
    let (status, body) = http_get(agent, stats).ok()?;
    if status != 200 {
        return None;
    }
    // The two fields read, not a `serde_json::Value` map of all of them: this runs every poll.
    #[derive(serde::Deserialize)]
    struct Counts {
        served: u64,
        in_flight: u64,
    }
    let c: Counts = serde_json::from_str(&body).ok()?;
    Some((c.served, c.in_flight))
}

/// Messages from the kick thread.
enum Kick {
    Ready,
    NeverReady,
    Answered { url: String, status: u16 },
    Failed { url: String, why: String },
    Done,
}

/// `leak-client watch`: runs, prints the summary, returns the exit code.
pub fn watch(args: &WatchArgs) -> u8 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}

fn run(args: &WatchArgs) -> Result<u8, String> {
    let backend = Backend::start(args.server.url.as_ref(), args.server.latency)?;
    let url = backend.url.clone();
    let mut served = match &args.server.url {
        None => Served::InProcess,
        Some(target) => {
            let agent = agent(Duration::from_secs(2));
            let stats = format!("http://{}{}", target.authority, latency_server::STATS_PATH);
            let (base, _) = stats_counts(&agent, &stats).ok_or_else(|| {
                format!(
                    "--url {url}: no latency-server answers {stats} (watch needs its served count)"
                )
            })?;
            Served::Remote {
                agent,
                stats,
                base,
                last: 0,
                next: Instant::now(),
            }
        }
    };
    eprintln!("watch: LEAKPROBE_URL={url}");

    let dir = std::env::temp_dir().join(format!("leakprobe-watch-{}", std::process::id()));
    let probe = match args.probe {
        None => None,
        Some(p) => Some(
            Probe::install(p, &dir)
                .map_err(|e| format!("cannot write the probe into {}: {e}", dir.display()))?,
        ),
    };
    let jsonl = match &args.outputs.jsonl {
        Some(p) => {
            Some(File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))?)
        }
        None => None,
    };

    let stop = Stop::new();
    install_signal_handler(&stop);

    let (mut child, pid) = match args.pid {
        Some(pid) => {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return Err(format!("--pid {pid}: no such process"));
            }
            (None, pid)
        }
        None => {
            let child = spawn(args, &url, probe.as_ref())?;
            let pid = child.id();
            eprintln!(
                "watch: started `{}` (pid {pid}, its own process group)",
                crate::child::shell_words(&args.command)
            );
            (Some(child), pid)
        }
    };

    let kicks = start_kicks(args);
    let mut sampler = TreeSampler::new(Root::Process(pid));
    let mut reader = probe.as_ref().map(|p| ProbeReader::new(p.out_path()));
    let mut log = ServedLog::with_capacity(1 << 14);
    let mut totals = ProbeTotals::default();
    let mut readings: Vec<Reading> = Vec::with_capacity(64);
    let mut tree: Vec<TreeRow> = Vec::with_capacity(4096);
    let mut heap: Vec<HeapRow> = Vec::with_capacity(1024);
    let mut out = Jsonl::new(jsonl);
    let mut mem = TreeMemory::default();
    // Whether the tree runs Node, from its processes' executables (a `sh -c` execs into it).
    let mut node = false;

    let t0 = monotonic_ns();
    let started = Instant::now();
    let mut next_sample = started;
    let mut next_report = started + args.report_every;
    let mut prev_report = (0u64, 0u64);
    let mut base: Option<(u64, u64)> = None;
    let mut samples = 0u64;
    let mut linger_until: Option<Instant> = None;
    let mut kick_error: Option<String> = None;
    let mut exit_status: Option<String> = None;
    let stopped_by = loop {
        let count = served.read(&backend);
        let now_ns = monotonic_ns();
        log.record(now_ns, count);
        if let Some(rx) = &kicks {
            while let Ok(k) = rx.try_recv() {
                match k {
                    Kick::Ready => eprintln!("watch: ready"),
                    Kick::NeverReady => kick_error = Some("--ready URL never answered 200".into()),
                    Kick::Answered { url, status } => {
                        eprintln!("watch: kick {url} answered {status}");
                    }
                    Kick::Failed { url, why } => kick_error = Some(format!("kick {url}: {why}")),
                    Kick::Done => linger_until = Some(Instant::now() + args.linger),
                }
            }
        }
        let exited = match child.as_mut() {
            Some(c) => match c.try_wait() {
                Ok(Some(s)) => {
                    exit_status = Some(s.to_string());
                    true
                }
                Ok(None) => false,
                Err(e) => return Err(format!("cannot wait for the command: {e}")),
            },
            None => false,
        };
        let now = Instant::now();
        let reason = if stop.is_set() {
            Some(WatchStop::Signal)
        } else if exited {
            Some(WatchStop::Exited)
        } else if args.requests.is_some_and(|n| count >= n) {
            Some(WatchStop::Requests)
        } else if args.duration.is_some_and(|d| started.elapsed() >= d) {
            Some(WatchStop::Duration)
        } else if linger_until.is_some_and(|l| now >= l) || kick_error.is_some() {
            Some(WatchStop::Kicks)
        } else {
            None
        };
        if now >= next_sample || reason.is_some() {
            next_sample += args.every;
            if next_sample < now {
                next_sample = now + args.every;
            }
            let s = if samples % PSS_EVERY == 0 {
                sampler.sample_with_pss()
            } else {
                sampler.sample()
            };
            samples += 1;
            if !node && (s.joined > 0 || samples % PSS_EVERY == 1) {
                node = sampler.live_pids().any(is_node);
            }
            let quiescent = idle(&log, s.t_ns, count);
            if s.procs > 0 || s.held > 0 {
                tree.push(TreeRow {
                    requests: count,
                    rss: s.mem.rss,
                    quiescent,
                });
                if count == 0 || mem.rss_start.is_none() {
                    mem.rss_start = Some(s.mem.rss);
                }
                mem.rss_end = Some(s.mem.rss);
                mem.rss_peak = mem.rss_peak.max(Some(s.mem.rss));
                // PSS of live processes only: once all have exited it reads 0, not their PSS.
                if s.procs > 0 {
                    mem.pss_end = s.live.pss.or(mem.pss_end);
                }
                mem.anon_end = Some(s.mem.anon);
                mem.processes_peak = mem.processes_peak.max(s.procs);
            }
            if let Some(r) = reader.as_mut() {
                readings.clear();
                if let Err(e) = r.poll(&mut readings) {
                    log::warn!("cannot read the probe's output: {e}");
                }
                for rd in &readings {
                    totals.update(rd);
                    let (Some(at), Some(live)) = (log.served_at(rd.t_ns), totals.live_bytes())
                    else {
                        continue;
                    };
                    heap.push(HeapRow {
                        requests: at,
                        live,
                        quiescent: idle(&log, rd.t_ns, at),
                    });
                    if at == 0 || mem.heap_start.is_none() {
                        mem.heap_start = Some(live);
                    }
                    mem.heap_end = Some(live);
                    mem.heap_peak = mem.heap_peak.max(Some(live));
                    out.push(&WatchSample {
                        t_ms: rd.t_ns.saturating_sub(t0) / 1_000_000,
                        kind: WatchKind::Probe,
                        requests: at,
                        live: Some(live),
                        rss: None,
                        pss: None,
                        anon: None,
                        procs: None,
                        pid: Some(rd.pid),
                    });
                }
            }
            let sample = WatchSample {
                t_ms: s.t_ns.saturating_sub(t0) / 1_000_000,
                kind: if quiescent {
                    WatchKind::Quiescent
                } else {
                    WatchKind::Interval
                },
                requests: count,
                live: mem.heap_end,
                rss: Some(s.mem.rss),
                pss: s.mem.pss,
                anon: Some(s.mem.anon),
                procs: Some(s.procs),
                pid: None,
            };
            out.push(&sample);
            // This sample's lines (the probe's readings, then the tree's) in one write.
            out.flush();
            if base.is_none() && count > 0 {
                base = if probe.is_some() {
                    mem.heap_end.map(|h| (count, h))
                } else {
                    Some((count, s.mem.rss))
                };
            }
            if now >= next_report {
                next_report = now + args.report_every;
                if !args.quiet {
                    log::info!("{}", log_line(&sample, prev_report, base));
                }
                prev_report = (sample.t_ms, sample.requests);
            }
            if args.pid.is_some() && !s.root_alive && reason.is_none() {
                exit_status = Some("the watched process exited".into());
                break WatchStop::Exited;
            }
        }
        if let Some(r) = reason {
            break r;
        }
        std::thread::sleep(TICK);
    };

    // Also when the command exited by itself: what it left running in its group goes too.
    if let Some(c) = child.as_mut() {
        let status = stop_group(c);
        if exit_status.is_none() {
            exit_status = status;
        }
    }
    let requests = served.settle(&backend);
    let elapsed = started.elapsed().as_secs_f64();
    backend.stop();
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(e) = &kick_error {
        eprintln!("error: {e}");
    }

    if requests == 0 {
        eprintln!(
            "error: {} before any request reached the server at {url}: the program must send its \
             requests to LEAKPROBE_URL{}",
            match (stopped_by, &exit_status) {
                (WatchStop::Exited, Some(s)) => format!("the command exited ({s})"),
                _ => format!("the watch ended ({})", stopped_by.as_str()),
            },
            if args.ready.is_some() || !args.kick.is_empty() {
                " (or be started by --kick)"
            } else {
                ""
            }
        );
        return Ok(exit::FAILURE);
    }

    let node = node || args.probe == Some(Runtime::Node);
    let judged = judge(&tree, probe.is_some().then_some(heap.as_slice()), node);
    let summary = WatchSummary {
        variant: "watch".into(),
        command: args.command.clone(),
        pid,
        url,
        probe: args.probe.map(|p| p.name().to_string()),
        requests,
        elapsed_s: elapsed,
        rps: requests as f64 / elapsed.max(1e-9),
        stopped_by,
        exit_status,
        memory: mem,
        tree_samples: tree.len(),
        probe_readings: heap.len(),
        probe_bad_lines: reader.as_ref().map_or(0, ProbeReader::bad_lines),
        judged,
    };
    Ok(super::finish_run(
        &|w| summary.print_human(w),
        &summary,
        out.error(),
        kick_error.is_some(),
        summary.judged.verdict.class,
        &args.outputs,
    ))
}

/// Starts COMMAND in its own process group, with `LEAKPROBE_URL` and the probe's variables.
fn spawn(args: &WatchArgs, url: &str, probe: Option<&Probe>) -> Result<Child, String> {
    let Some((program, rest)) = args.command.split_first() else {
        return Err("nothing to watch: give -- COMMAND [ARGS…] or --pid PID".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(rest)
        .env("LEAKPROBE_URL", url)
        .stdin(Stdio::null())
        .process_group(0);
    if args.quiet {
        cmd.stdout(Stdio::null());
    }
    if let Some(p) = probe {
        let inherited: Option<OsString> = match p.runtime() {
            Runtime::Node => std::env::var_os("NODE_OPTIONS"),
            Runtime::Python => std::env::var_os("PYTHONPATH"),
        };
        let settings = ProbeSettings {
            interval: args.probe_every,
            // Python's probe reports bytes only with tracemalloc (blocks are a count).
            tracemalloc: p.runtime() == Runtime::Python,
        };
        for (k, v) in p.env(settings, inherited) {
            cmd.env(k, v);
        }
    }
    cmd.spawn()
        .map_err(|e| format!("cannot start `{program}`: {e}"))
}

/// SIGTERM to the command's process group, SIGKILL to what is left after [`GRACE`] (nothing is
/// sent to a group that is already gone). Returns how the command ended.
fn stop_group(child: &mut Child) -> Option<String> {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let group = Pid::from_raw(i32::try_from(child.id()).ok()?);
    let _ = killpg(group, Signal::SIGTERM);
    let t0 = Instant::now();
    let mut status = None;
    while t0.elapsed() < GRACE {
        if let Ok(Some(s)) = child.try_wait() {
            status = Some(s.to_string());
            // The leader is gone; the rest of the group gets what is left of the grace period.
            if killpg(group, None).is_err() {
                return status;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(group, Signal::SIGKILL);
    if status.is_none() {
        status = child.wait().ok().map(|s| s.to_string());
    }
    status
}

/// Whether `pid` runs Node: its executable is named `node` (Next.js renames its processes'
/// `comm` to `next-server`), or its `comm` is `node`.
fn is_node(pid: u32) -> bool {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"));
    exe.is_ok_and(|p| p.file_name().is_some_and(|n| n == "node"))
        || std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "node")
}

/// The kick thread: waits for `--ready`, then GETs each `--kick` in turn.
fn start_kicks(args: &WatchArgs) -> Option<mpsc::Receiver<Kick>> {
    if args.ready.is_none() && args.kick.is_empty() {
        return None;
    }
    let (tx, rx) = mpsc::channel();
    let ready = args.ready.clone();
    let kicks = args.kick.clone();
    std::thread::spawn(move || {
        if let Some(r) = ready {
            let t0 = Instant::now();
            let agent = agent(Duration::from_secs(120));
            while !matches!(http_get(&agent, &r), Ok((200, _))) {
                if t0.elapsed() > Duration::from_secs(600) {
                    let _ = tx.send(Kick::NeverReady);
                    return;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            let _ = tx.send(Kick::Ready);
        }
        // A kick answers when the program's loop is done: minutes, not seconds.
        let agent = agent(Duration::from_secs(24 * 3600));
        for k in kicks {
            match http_get(&agent, &k) {
                Ok((status, _)) => {
                    let _ = tx.send(Kick::Answered { url: k, status });
                }
                Err(e) => {
                    let _ = tx.send(Kick::Failed { url: k, why: e });
                    return;
                }
            }
        }
        let _ = tx.send(Kick::Done);
    });
    Some(rx)
}

/// An agent for watch's own requests (`/__stats` polls, `--ready`, `--kick`): any status is a
/// response, each phase of an exchange bounded by `timeout` (no resolver thread per request).
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(timeout))
        .build()
        .into()
}

/// `GET url`: the status and the body.
fn http_get(agent: &ureq::Agent, url: &str) -> Result<(u16, String), String> {
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// Whether a reading at `t_ns` with `count` served is quiescent: nothing served yet, or nothing
/// served for [`IDLE`] before it.
fn idle(log: &ServedLog, t_ns: u64, count: u64) -> bool {
    count == 0
        || log
            .served_at(t_ns.saturating_sub(IDLE.as_nanos() as u64))
            .is_some_and(|c| c == count)
}
