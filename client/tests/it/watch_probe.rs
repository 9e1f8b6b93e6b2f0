//! The runtime probes inside real `node` and `python3` processes: readings arrive, tagged with
//! each process's pid, after a full collection, and show memory the program keeps; the probe
//! never keeps a program alive, never breaks one when its output cannot be written, and keeps
//! the program's own `NODE_OPTIONS` / `sitecustomize`; with `--sites` each writes its sites file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use leak_client::watch::probe::{
    Event, Heap, OUT_ENV, Probe, ProbeReader, ProbeSettings, Reading, Runtime,
};

/// A fresh folder for one test's probe.
fn folder(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("watch-probe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the probe's folder");
    dir
}

/// Runs `program args` with the probe loaded, waits for it (at most 60 s: a deadline against a
/// hang), and returns its output and every probe reading.
fn run_probed(
    probe: &Probe,
    settings: ProbeSettings,
    inherited: Option<OsString>,
    program: &str,
    args: &[&str],
) -> (Output, Vec<Reading>) {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in probe.env(settings, inherited) {
        cmd.env(k, v);
    }
    let out = output_within(&mut cmd, Duration::from_secs(60));
    let mut readings = Vec::new();
    let mut reader = ProbeReader::new(probe.out_path());
    reader.poll(&mut readings).expect("read probe output");
    assert_eq!(reader.bad_lines(), 0);
    (out, readings)
}

fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let apt_package = if program == "node" {
        "nodejs"
    } else {
        &program
    };
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start `{program}` ({e}): these tests drive a real one; \
                 apt-get install -y {apt_package}"
            )
        });
    let t0 = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("the program did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn fast() -> ProbeSettings {
    ProbeSettings {
        interval: Some(Duration::from_millis(50)),
        tracemalloc: false,
        sites: None,
    }
}

fn node_heap(r: &Reading) -> u64 {
    match r.heap {
        Heap::Node(n) => n.heap_used,
        Heap::Python(_) => panic!("a python reading from node"),
    }
}

#[test]
fn node_readings_follow_what_the_program_keeps_after_a_full_collection() {
    let probe = Probe::install(Runtime::Node, &folder("node-keeps")).expect("install");
    // Keeps 1 MB more every 80 ms, ten times, and drops garbage of the same size each time
    // (which the collection before each reading must not count).
    let script = "const k = []; let i = 0; const t = setInterval(() => { \
        k.push(Buffer.alloc(1e6, i).toString('latin1')); Buffer.alloc(1e6, 1).toString('latin1'); \
        if (++i === 10) { clearInterval(t); setTimeout(() => console.log(typeof gc), 200); } }, 80);";
    let (out, readings) = run_probed(&probe, fast(), None, "node", &["-e", script]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "function",
        "--expose-gc"
    );
    let start = readings.first().expect("readings");
    let last = readings.last().expect("readings");
    assert_eq!((start.event, last.event), (Event::Start, Event::Exit));
    assert!(readings.len() >= 5, "{} readings", readings.len());
    assert!(
        readings
            .iter()
            .all(|r| r.gc && r.pid == start.pid && r.tid == 0)
    );
    assert!(
        readings
            .windows(2)
            .all(|w| w[1].seq == w[0].seq + 1 && w[1].t_ns >= w[0].t_ns)
    );
    let kept = node_heap(last) - node_heap(start);
    assert!(
        (10_000_000..14_000_000).contains(&kept),
        "kept {kept} B, expected 10 MB + a little"
    );
    // The timer's readings are V8's measurements (an ordinary full collection), not forced
    // ones; the load and exit readings are forced (an exit handler cannot wait).
    let text = std::fs::read_to_string(probe.out_path()).expect("probe output");
    let how: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            (v["ev"].to_string(), v["how"].to_string())
        })
        .collect();
    for (ev, how) in &how {
        let want = if ev == "\"tick\"" {
            "\"measure\""
        } else {
            "\"forced\""
        };
        assert_eq!(how, want, "{ev}: {text}");
    }
    // A measured reading's heap is V8's own estimate (`js_estimate`), which lacks only V8's
    // unattributed part (compiled code, internal tables): after the last 1 MB was kept it reads
    // what the exit's forced collection reads, within that part.
    let ticks: Vec<&Reading> = readings.iter().filter(|r| r.event == Event::Tick).collect();
    assert!(
        ticks
            .iter()
            .all(|r| matches!(r.heap, Heap::Node(n) if n.js_estimate.is_some())),
        "{text}"
    );
    let settled = ticks.last().expect("a tick");
    let bytes = |r: &Reading| r.live_bytes().expect("node bytes") as i64;
    let gap = bytes(last) - bytes(settled);
    assert!(
        (0..3_000_000).contains(&gap),
        "exit minus last tick: {gap} B: {text}"
    );
}

/// The probe's own doings never show in the program's output: Node's one-time warning that
/// `vm.measureMemory` is experimental is not printed, nor handed to the program's `warning`
/// listeners, while the program's own warnings still are.
#[test]
fn the_probes_measurements_leave_the_programs_warnings_alone() {
    let probe = Probe::install(Runtime::Node, &folder("node-warnings")).expect("install");
    let script = "process.on('warning', (w) => console.log('seen ' + w.message)); \
        process.emitWarning('the program\\'s own', 'ExperimentalWarning'); \
        const t = setInterval(() => {}, 10); setTimeout(() => clearInterval(t), 400);";
    let (out, readings) = run_probed(&probe, fast(), None, "node", &["-e", script]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        readings.iter().filter(|r| r.event == Event::Tick).count() >= 2,
        "{} readings: the timer's measurements ran",
        readings.len()
    );
    assert!(!stderr.contains("measureMemory"), "{stderr}");
    assert!(!stdout.contains("measureMemory"), "{stdout}");
    assert!(stderr.contains("the program's own"), "{stderr}");
    assert_eq!(stdout.trim(), "seen the program's own");
}

#[test]
fn every_node_process_of_a_tree_reports_under_its_own_pid() {
    let probe = Probe::install(Runtime::Node, &folder("node-tree")).expect("install");
    let script = "const { execFileSync } = require('child_process'); \
        console.log(process.pid, execFileSync('node', ['-e', 'console.log(process.pid)']).toString().trim());";
    let (out, readings) = run_probed(&probe, fast(), None, "node", &["-e", script]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pids: Vec<u32> = stdout
        .split_whitespace()
        .map(|p| p.parse().expect("pid"))
        .collect();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        let mine: Vec<_> = readings.iter().filter(|r| r.pid == pid).collect();
        assert!(
            mine.iter().any(|r| r.event == Event::Start)
                && mine.iter().any(|r| r.event == Event::Exit),
            "pid {pid}: {mine:?}"
        );
    }
}

#[test]
fn the_probe_neither_keeps_node_alive_nor_loses_its_node_options() {
    let probe = Probe::install(Runtime::Node, &folder("node-alive")).expect("install");
    let hour = ProbeSettings {
        interval: Some(Duration::from_secs(3600)),
        tracemalloc: false,
        sites: None,
    };
    // The inherited option must still apply: a 64 MiB old space.
    let script = "console.log(Math.round(require('v8').getHeapStatistics().heap_size_limit / 1048576) < 200)";
    let inherited = Some(OsString::from("--max-old-space-size=64"));
    let (out, readings) = run_probed(&probe, hour, inherited, "node", &["-e", script]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "true");
    let events: Vec<Event> = readings.iter().map(|r| r.event).collect();
    assert_eq!(
        events,
        [Event::Start, Event::Exit],
        "an hour's timer did not hold it"
    );
}

/// Without an interval each process paces itself: the next reading comes at least 20 × the
/// mean cost of its last readings later (and at least 20 ms), so readings take ≤ 5% of its
/// time however slow its collections are (Python: with tracemalloc, whose readings run a full
/// collection; its default readings collect only the young generations). Each line says the
/// cost it was paced by (`cost_us`: Python's and a forced Node reading's CPU time; a Node
/// measurement's, a third of its wall time from the call to its result). Node reads
/// sooner while its heap grows (the probe's growth rule: by the time the heap will have grown 1%
/// at the rate of its last 4 readings), so there only a reading after 4 readings of a heap that
/// did not grow is held to the budget; every one to the 20 ms floor.
#[test]
fn without_an_interval_readings_are_paced_by_their_own_cost() {
    for (runtime, tracemalloc, program, args) in [
        (
            Runtime::Node,
            false,
            "node",
            vec![
                "-e",
                // 100,000 live objects make each full collection cost milliseconds.
                "const k = Array.from({length: 100000}, (_, i) => ({i})); \
                 const t = setInterval(() => {}, 1); setTimeout(() => clearInterval(t), 2500);",
            ],
        ),
        (
            Runtime::Python,
            true,
            "python3",
            vec![
                "-c",
                "import time\nk = [{'i': i} for i in range(100000)]\ntime.sleep(2.5)",
            ],
        ),
    ] {
        let probe = Probe::install(runtime, &folder(&format!("paced-{}", runtime.name())))
            .expect("install");
        let settings = ProbeSettings {
            interval: None,
            tracemalloc,
            sites: None,
        };
        let (out, readings) = run_probed(&probe, settings, None, program, &args);
        assert!(out.status.success(), "{program}: {out:?}");
        // Each line's `cost_us`: what the probe paced itself by, which the typed reading does
        // not carry.
        let text = std::fs::read_to_string(probe.out_path()).expect("probe output");
        let cpu_us: Vec<f64> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json line");
                v["cost_us"].as_f64().expect("cost_us")
            })
            .collect();
        assert_eq!(cpu_us.len(), readings.len());
        // At least the start and one paced reading, however slow a loaded machine makes them.
        let ticks: Vec<(&Reading, f64)> = readings
            .iter()
            .zip(cpu_us)
            .filter(|(r, _)| r.event != Event::Exit)
            .collect();
        assert!(ticks.len() >= 2, "{program}: {} readings", ticks.len());
        // Node's post-GC heap as the growth rule reads it (heap used + external).
        let node_bytes = |r: &Reading| match r.heap {
            Heap::Node(h) => Some(h.heap_used + h.external),
            Heap::Python(_) => None,
        };
        for (i, w) in ticks.windows(2).enumerate() {
            let recent = &ticks[i.saturating_sub(4)..=i];
            let cost_ms = recent.iter().map(|(_, c)| c).sum::<f64>() / recent.len() as f64 / 1000.0;
            let gap_ms = (w[1].0.t_ns - w[0].0.t_ns) as f64 / 1e6;
            let held = &ticks[i.saturating_sub(3)..=i];
            let grew = match (node_bytes(held[0].0), node_bytes(w[0].0)) {
                (Some(first), Some(last)) => held.len() >= 2 && last > first,
                _ => false,
            };
            // (The first reading after the start is always on the budget: one reading holds
            // no rate.)
            let floor_ms = if grew {
                20.0
            } else {
                (20.0 * cost_ms).max(20.0)
            };
            assert!(
                gap_ms >= 0.95 * floor_ms,
                "{program}: reading {} came {gap_ms:.1} ms after the last, whose collections \
                 took {cost_ms:.1} ms (heap growing: {grew})",
                i + 1
            );
        }
    }
}

/// A program whose probe output cannot be written runs exactly as without the probe.
#[test]
fn an_unwritable_output_leaves_node_and_python_untouched() {
    for (runtime, program, script) in [
        (
            Runtime::Node,
            "node",
            "console.log('ok'); process.exitCode = 3",
        ),
        (
            Runtime::Python,
            "python3",
            "print('ok'); raise SystemExit(3)",
        ),
    ] {
        let probe = Probe::install(runtime, &folder(runtime.name())).expect("install");
        let mut cmd = Command::new(program);
        cmd.arg(if runtime == Runtime::Node { "-e" } else { "-c" })
            .arg(script);
        for (k, v) in probe.env(fast(), None) {
            cmd.env(k, v);
        }
        cmd.env(OUT_ENV, "/nonexistent/leakprobe/probe.jsonl");
        let out = output_within(&mut cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(3), "{program}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ok",
            "{program}"
        );
        assert!(
            out.stderr.is_empty(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!Path::new("/nonexistent/leakprobe").exists());
    }
}

fn python_heap(r: &Reading) -> (u64, Option<u64>) {
    match r.heap {
        Heap::Python(p) => (p.blocks, p.traced),
        Heap::Node(_) => panic!("a node reading from python"),
    }
}

#[test]
fn python_readings_count_kept_objects_and_tracemalloc_bytes() {
    let probe = Probe::install(Runtime::Python, &folder("py-keeps")).expect("install");
    let settings = ProbeSettings {
        interval: Some(Duration::from_millis(50)),
        tracemalloc: true,
        sites: None,
    };
    // Keeps 20,000 small objects and 10 MB of buffers.
    let script = "import time\nkept = [object() for _ in range(20000)] + [bytearray(1000000) for _ in range(10)]\ntime.sleep(0.3)";
    let (out, readings) = run_probed(&probe, settings, None, "python3", &["-c", script]);
    assert!(out.status.success(), "{out:?}");
    let (start, last) = (
        readings.first().expect("start"),
        readings.last().expect("exit"),
    );
    assert_eq!((start.event, last.event), (Event::Start, Event::Exit));
    let (b0, t0) = python_heap(start);
    let (b1, t1) = python_heap(last);
    assert!(b1 - b0 >= 20_000, "blocks grew {}", b1 - b0);
    let traced = t1.expect("traced") - t0.expect("traced");
    assert!(traced >= 10_000_000, "traced grew {traced}");
}

#[test]
fn a_shadowed_sitecustomize_still_runs_and_a_forked_python_child_reports_too() {
    let probe = Probe::install(Runtime::Python, &folder("py-chain")).expect("install");
    let theirs = folder("py-chain-theirs");
    std::fs::create_dir_all(&theirs).expect("dir");
    std::fs::write(
        theirs.join("sitecustomize.py"),
        "import builtins\nbuiltins.THEIRS = 'loaded'\n",
    )
    .expect("write");
    let script = "import os, time\nprint(THEIRS, os.getpid(), flush=True)\npid = os.fork()\n\
        if pid == 0:\n    time.sleep(0.3)\n    os._exit(0)\nprint(pid, flush=True)\nos.waitpid(pid, 0)";
    let inherited = Some(theirs.into_os_string());
    let (out, readings) = run_probed(&probe, fast(), inherited, "python3", &["-c", script]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"loaded"), "{stdout}");
    for pid in &words[1..] {
        let pid: u32 = pid.parse().expect("pid");
        assert!(
            readings.iter().any(|r| r.pid == pid),
            "no reading from {pid}"
        );
    }
}

/// The `sites-<pid>-<tid>.jsonl` files the probe wrote into `dir`, as JSON lines.
fn sites_lines(dir: &Path) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the probe's folder") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("sites-") && name.ends_with(".jsonl") {
            let text = std::fs::read_to_string(&path).expect("sites file");
            for l in text.lines() {
                lines.push(serde_json::from_str(l).expect("each sites line is JSON"));
            }
        }
    }
    lines
}

#[test]
fn with_sites_the_probes_write_their_samples_and_never_keep_a_program_alive_or_break_it() {
    for runtime in [Runtime::Node, Runtime::Python] {
        let dir = folder(&format!("sites-{}", runtime.name()));
        let probe = Probe::install(runtime, &dir).expect("install");
        let settings = ProbeSettings {
            sites: Some(match runtime {
                Runtime::Node => 4096,
                Runtime::Python => 50,
            }),
            ..fast()
        };
        // Keeps 200 strings of 10 KB for 0.5 s, then ends by itself: the inspector session
        // (Node) and tracemalloc's reads (Python) must neither hold it nor throw into it.
        let (program, script) = match runtime {
            Runtime::Node => (
                "node",
                "const k = []; const t = setInterval(() => { k.push('x'.repeat(1e4) + k.length); \
                 if (k.length === 200) { clearInterval(t); setTimeout(() => console.log('done ' + k.length), 100); } }, 2);",
            ),
            Runtime::Python => (
                "python3",
                "import time\nk = []\nfor i in range(200):\n    k.append('x' * 10000 + str(i))\n    time.sleep(0.002)\ntime.sleep(0.1)\nprint('done', len(k))",
            ),
        };
        let flag = if runtime == Runtime::Node { "-e" } else { "-c" };
        let t0 = Instant::now();
        let (out, readings) = run_probed(&probe, settings, None, program, &[flag, script]);
        assert!(out.status.success(), "{program}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "done 200",
            "{program}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{program} was kept alive"
        );
        assert!(
            readings.len() >= 3,
            "{program}: {} readings",
            readings.len()
        );
        let lines = sites_lines(&dir);
        let stacks = lines.iter().filter(|l| l["ev"] == "stack").count();
        let sites: Vec<&serde_json::Value> = lines.iter().filter(|l| l["ev"] == "sites").collect();
        assert!(stacks > 0 && !sites.is_empty(), "{program}: {lines:?}");
        // Each reading names the probe reading it followed, by its seq.
        let seqs: Vec<u64> = readings.iter().map(|r| r.seq).collect();
        for s in &sites {
            assert!(
                seqs.contains(&s["seq"].as_u64().expect("seq")),
                "{program}: {s}"
            );
        }
        match runtime {
            Runtime::Node => assert!(sites.iter().any(|s| {
                s["rate"] == 4096
                    && s["s"]
                        .as_array()
                        .is_some_and(|a| a.len() % 3 == 0 && !a.is_empty())
            })),
            Runtime::Python => assert!(sites.iter().any(|s| {
                s["traces"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty() && a.len() <= 50)
            })),
        }
    }
}
