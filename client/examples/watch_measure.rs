//! Measurement harness for the `watch` building blocks, until the `watch` command is wired: starts
//! the latency server in-process, starts a command with `LEAKPROBE_URL` (and a probe), samples
//! its process tree and reads its probe, optionally waits for a URL and kicks one, and writes
//! every reading paired with the server's served count as one JSON file. It judges nothing.
//!
//! ```text
//! cargo run --release -p leak-client --example watch_measure -- --out fetch.json \
//!     --probe node -- node examples/node/fetch.js
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use latency_server::{Config, Server};
use leak_client::watch::pair::ServedLog;
use leak_client::watch::probe::{
    Heap, Probe, ProbeReader, ProbeSettings, ProbeTotals, Reading, Runtime, monotonic_ns,
};
use leak_client::watch::proctree::{Root, TreeSampler};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
struct Args {
    /// Where to write the recorded series (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Server latency.
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
    latency: Duration,
    /// Time between two tree samples.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    every: Duration,
    /// node | python: load that runtime's probe into the command.
    #[arg(long)]
    probe: Option<String>,
    /// Time between two probe readings.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    probe_every: Duration,
    /// Python probe: run tracemalloc.
    #[arg(long)]
    tracemalloc: bool,
    /// Wait until this URL answers 200 before kicking.
    #[arg(long)]
    ready: Option<String>,
    /// GET these URLs one after the other once ready (each waits for its answer).
    #[arg(long)]
    kick: Vec<String>,
    /// Keep sampling this long after the last kick answered, then stop the command.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    linger: Duration,
    /// Give up after this long.
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    max: Duration,
    /// Free-form labels written into the output (`key=value`).
    #[arg(long)]
    label: Vec<String>,
    /// The command.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let server = Server::start(Config {
        addr: "127.0.0.1:0".parse()?,
        latency: args.latency,
        report_every: None,
        ..Config::default()
    })?;
    let url = format!("{}/", server.url());
    eprintln!("watch_measure: LEAKPROBE_URL={url}");

    let dir = std::env::temp_dir().join(format!("leakprobe-measure-{}", std::process::id()));
    let probe = match args.probe.as_deref() {
        None | Some("none") => None,
        Some("node") => Some(Probe::install(Runtime::Node, &dir)?),
        Some("python") => Some(Probe::install(Runtime::Python, &dir)?),
        Some(other) => return Err(format!("--probe {other}: node or python").into()),
    };
    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..])
        .env("LEAKPROBE_URL", &url)
        .stdin(Stdio::null())
        .process_group(0);
    if let Some(p) = &probe {
        let inherited = match p.runtime() {
            Runtime::Node => std::env::var_os("NODE_OPTIONS"),
            Runtime::Python => std::env::var_os("PYTHONPATH"),
        };
        let settings = ProbeSettings {
            interval: args.probe_every,
            tracemalloc: args.tracemalloc,
        };
        for (k, v) in p.env(settings, inherited) {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn()?;
    let pgid = child.id();
    let mut sampler = TreeSampler::new(Root::Process(child.id()));
    let mut reader = probe.as_ref().map(|p| ProbeReader::new(p.out_path()));
    let mut log = ServedLog::with_capacity(1 << 16);
    let mut totals = ProbeTotals::default();
    let mut readings: Vec<Reading> = Vec::new();

    // Kicks run on their own thread: each blocks until its loop is done.
    let (kick_tx, kick_rx) = mpsc::channel::<Value>();
    if args.ready.is_some() || !args.kick.is_empty() {
        let ready = args.ready.clone();
        let kicks = args.kick.clone();
        std::thread::spawn(move || {
            if let Some(r) = ready {
                let t0 = Instant::now();
                while !matches!(http_get(&r, Duration::from_secs(120)), Ok((200, _))) {
                    if t0.elapsed() > Duration::from_secs(600) {
                        let _ = kick_tx.send(json!({"error": "never ready"}));
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                let _ = kick_tx.send(json!({"ready_ns": monotonic_ns()}));
            }
            for k in kicks {
                let start = monotonic_ns();
                let answer = http_get(&k, Duration::from_secs(3600));
                let (status, body) = answer.unwrap_or((0, String::new()));
                let _ = kick_tx.send(
                    json!({"kick": k, "start_ns": start, "end_ns": monotonic_ns(),
                    "status": status, "body": body}),
                );
            }
            let _ = kick_tx.send(json!({"done": true}));
        });
    }

    let t0 = monotonic_ns();
    let started = Instant::now();
    let mut tree_rows = Vec::new();
    let mut probe_rows = Vec::new();
    let mut kick_events = Vec::new();
    let mut next_sample = Instant::now();
    let mut stop_at: Option<Instant> = None;
    let mut sample_cost = Duration::ZERO;
    let mut samples = 0u32;
    let exit_status = loop {
        log.record(monotonic_ns(), server.stats().served);
        while let Ok(ev) = kick_rx.try_recv() {
            if ev.get("done").is_some() {
                stop_at = Some(Instant::now() + args.linger);
            }
            eprintln!("watch_measure: {ev}");
            kick_events.push(ev);
        }
        let exited = child.try_wait()?;
        let now = Instant::now();
        let finishing =
            exited.is_some() || stop_at.is_some_and(|s| now >= s) || started.elapsed() > args.max;
        if now >= next_sample || finishing {
            next_sample += args.every;
            let c0 = Instant::now();
            let served = server.stats().served;
            // PSS walks page tables (see proctree's docs): every 8th sample only.
            let s = if samples % 8 == 0 {
                sampler.sample_with_pss()
            } else {
                sampler.sample()
            };
            sample_cost += c0.elapsed();
            samples += 1;
            log.record(s.t_ns, served);
            tree_rows.push(json!([
                (s.t_ns - t0) / 1_000_000,
                served,
                s.mem.rss,
                s.mem.pss,
                s.mem.anon,
                s.procs,
                s.held,
                s.live.rss
            ]));
            if let Some(r) = reader.as_mut() {
                readings.clear();
                r.poll(&mut readings)?;
                for rd in &readings {
                    totals.update(rd);
                    let paired = log.served_at(rd.t_ns);
                    let sum_external: u64 = totals
                        .latest()
                        .iter()
                        .map(|l| match l.heap {
                            Heap::Node(n) => n.external,
                            Heap::Python(_) => 0,
                        })
                        .sum();
                    let sum_heap: u64 = totals
                        .latest()
                        .iter()
                        .map(|l| match l.heap {
                            Heap::Node(n) => n.heap_used,
                            Heap::Python(p) => p.blocks,
                        })
                        .sum();
                    let row = match rd.heap {
                        Heap::Node(n) => json!({"t_ms": (rd.t_ns.saturating_sub(t0)) / 1_000_000,
                            "served": paired, "pid": rd.pid, "tid": rd.tid, "seq": rd.seq,
                            "ev": format!("{:?}", rd.event), "gc_us": rd.gc_us, "rss": n.rss,
                            "heap_used": n.heap_used, "heap_used_before_gc": n.heap_used_before_gc, "heap_total": n.heap_total,
                            "external": n.external, "array_buffers": n.array_buffers,
                            "sum_heap_used": sum_heap, "sum_external": sum_external}),
                        Heap::Python(p) => json!({"t_ms": (rd.t_ns.saturating_sub(t0)) / 1_000_000,
                            "served": paired, "pid": rd.pid, "seq": rd.seq,
                            "ev": format!("{:?}", rd.event), "gc_us": rd.gc_us,
                            "blocks": p.blocks, "traced": p.traced, "sum_blocks": sum_heap}),
                    };
                    probe_rows.push(row);
                }
            }
        }
        if finishing {
            break exited.map(|s| s.to_string());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if exit_status.is_none() {
        stop_group(pgid, &mut child);
    }
    let stats = server.shutdown(Duration::from_secs(1));
    let labels: serde_json::Map<String, Value> = args
        .label
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let out = json!({
        "labels": labels,
        "command": args.command,
        "latency_ms": args.latency.as_millis() as u64,
        "served": stats.served,
        "connections": stats.connections,
        "exit": exit_status,
        "probe": args.probe,
        "probe_bad_lines": reader.as_ref().map(|r| r.bad_lines()),
        "sample_cost_us": sample_cost.as_micros() as u64 / u64::from(samples.max(1)),
        "tree_columns": ["t_ms", "served", "rss", "pss", "anon", "procs", "held", "live_rss"],
        "tree": tree_rows,
        "probe_rows": probe_rows,
        "kicks": kick_events,
    });
    std::fs::write(&args.out, serde_json::to_vec(&out)?)?;
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "watch_measure: served {} over {} tree samples ({} us each), {} probe readings -> {}",
        stats.served,
        tree_rows_len(&out),
        out["sample_cost_us"],
        out["probe_rows"].as_array().map_or(0, Vec::len),
        args.out.display()
    );
    Ok(())
}

fn tree_rows_len(out: &Value) -> usize {
    out["tree"].as_array().map_or(0, Vec::len)
}

/// SIGTERM to the command's process group, SIGKILL after 5 s.
fn stop_group(pgid: u32, child: &mut std::process::Child) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let group = Pid::from_raw(pgid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if matches!(child.try_wait(), Ok(Some(_))) {
            // The leader is gone; give the rest of the group a moment, then make sure.
            std::thread::sleep(Duration::from_millis(500));
            let _ = killpg(group, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}

/// A minimal `GET` over one connection (`Connection: close`): status and body.
fn http_get(url: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("http:// only"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = TcpStream::connect(authority)?;
    s.set_read_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    Ok((status, body))
}
