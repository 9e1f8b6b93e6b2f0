//! `leak-client watch` end to end on the example programs: a clean Python loop is not a leak, a
//! planted one is (at its size), a Node loop's planted leak is found by `--probe node`, a
//! command that cannot start or never sends a request fails with exit code 1, and Ctrl-C ends
//! the watch with a summary, a complete JSONL and the command's process group gone.
//! Each case is bounded (a few thousand requests, a timeout on every wait).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    bin, compare_watching, examples, need, run_bounded, spawn_captured, summary, wait_bounded,
};

fn tmp(name: &str) -> PathBuf {
    crate::support::tmp("watch-cmd", name)
}

/// Asserts the exit code, showing both streams when it differs.
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `leak-client watch ARGS` with `env`, bounded to 60 s.
fn watch(args: &[&str], env: &[(&str, &str)]) -> Output {
    crate::support::watch(args, env, Duration::from_secs(60))
}

/// Runs `leak-client watch ARGS` like [`watch`], again (at most [`DECIDE_TRIES`] runs in all)
/// while the verdict is `inconclusive`, and only then: for tests of a planted leak. The verdict
/// says `inconclusive` by design when a run's readings are too few or too noisy to decide (a
/// loaded machine: probe readings late, requests bunched), which is not what these tests
/// pin; any other verdict, right or wrong, is returned at once for the test to judge, so a
/// wrong verdict (`stable`, `bounded`, a slope off its size) still fails on its first run.
fn watch_decided(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut tries = 1;
    loop {
        let out = watch(args, env);
        let Some(s) = summary_of(&out) else {
            return out;
        };
        if class(&s) != "inconclusive" || tries == DECIDE_TRIES {
            return out;
        }
        eprintln!(
            "run {tries} of {DECIDE_TRIES} inconclusive, running again: {}",
            s["judged"]["verdict"]["reason"]
        );
        tries += 1;
    }
}

/// Runs of a planted-leak test before an `inconclusive` verdict fails it.
const DECIDE_TRIES: u32 = 3;

/// The JSON summary on stdout, if there is one.
fn summary_of(out: &Output) -> Option<Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{'))?;
    serde_json::from_str(line).ok()
}

fn class(s: &Value) -> &str {
    s["judged"]["verdict"]["class"].as_str().unwrap_or("?")
}

fn slope(s: &Value) -> f64 {
    s["judged"]["verdict"]["slope"]["bytes_per_request"]
        .as_f64()
        .unwrap_or(f64::NAN)
}

fn python_loop() -> String {
    need("python3", "python3");
    examples().join("python/loop.py").display().to_string()
}

#[test]
fn a_clean_python_loop_is_not_a_leak() {
    let jsonl = tmp("clean.jsonl");
    let j = jsonl.display().to_string();
    let out = watch(
        &["--json", "--jsonl", &j, "--", "python3", &python_loop()],
        &[("REQUESTS", "3000")],
    );
    assert_exit(&out, 0);
    let s = summary(&out);
    assert_eq!(s["requests"], 3000);
    assert_ne!(class(&s), "leak", "{s}");
    assert_eq!(s["judged"]["basis"], "rss");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("LEAKPROBE_URL=http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("RSS cannot separate"), "{stderr}");
    let text = std::fs::read_to_string(&jsonl).expect("jsonl");
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each JSONL line parses"))
        .collect();
    assert!(rows.len() >= 20, "{} rows", rows.len());
    assert_eq!(
        rows.last().map(|r| r["requests"].clone()),
        Some(3000.into())
    );
}

#[test]
fn a_planted_python_leak_is_a_leak_at_its_size_and_fails_the_gate() {
    let out = watch_decided(
        &[
            "--json",
            "--quiet",
            "--fail-on-leak",
            "--",
            "python3",
            &python_loop(),
        ],
        &[("REQUESTS", "4000"), ("LEAK_BYTES", "8192")],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "--fail-on-leak: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_eq!(class(&s), "leak", "{s}");
    let b = slope(&s);
    assert!((b - 8192.0).abs() <= 0.25 * 8192.0, "slope {b}");
}

#[test]
fn a_planted_node_leak_is_found_by_the_node_probe() {
    need("node", "nodejs");
    let out = watch_decided(
        &[
            "--json",
            "--quiet",
            "--probe",
            "node",
            "--probe-every",
            "100ms",
            "--",
            "node",
            &examples().join("node/fetch.js").display().to_string(),
        ],
        &[
            ("REQUESTS", "6000"),
            ("PAUSE_MS", "0"),
            ("LEAK_BYTES", "1024"),
        ],
    );
    assert_exit(&out, 0);
    let s = summary(&out);
    assert_eq!(s["judged"]["basis"], "heap", "{s}");
    assert_eq!(class(&s), "leak", "{s}");
    let b = slope(&s);
    assert!((b - 1024.0).abs() <= 0.15 * 1024.0, "slope {b}");
}

#[test]
fn response_bodies_kept_as_array_buffers_are_a_leak_outside_the_heap() {
    // Each 1 KiB body kept as an ArrayBuffer: V8's heap holds only its small handle, the bytes
    // are `external`, which the node probe judges beside the heap. The probe paces itself (its
    // default): readings scale with the run's length over a collection's, loaded machine or not.
    let out = watch_decided(
        &[
            "--json",
            "--quiet",
            "--probe",
            "node",
            "--",
            "node",
            &examples().join("node/fetch.js").display().to_string(),
        ],
        &[
            ("REQUESTS", "8000"),
            ("PAUSE_MS", "0"),
            ("BODY", "keep"),
            ("BODY_BYTES", "1024"),
        ],
    );
    assert_exit(&out, 0);
    let s = summary(&out);
    assert_eq!(class(&s), "leak", "{s}");
    let b = slope(&s);
    assert!((b - 1024.0).abs() <= 0.25 * 1024.0, "slope {b}: {s}");
    let part = |p: &str| s["judged"]["split"][p]["bytes_per_request"].as_f64();
    let external = part("external").unwrap_or(f64::NAN);
    assert!(external >= 0.75 * 1024.0, "external {external}: {s}");
    assert!(part("heap").is_some(), "{s}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("split      heap +") && stderr.contains("external +"),
        "{stderr}"
    );
    // The heap keeps each ArrayBuffer's handle, so it may decide: the reason shows both parts.
    assert!(
        s["judged"]["verdict"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("heap and external memory together")),
        "{s}"
    );
}

#[test]
fn a_command_that_cannot_start_fails_with_a_clear_error() {
    let out = watch(&["--", "/nonexistent/leakprobe-no-such-program"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot start `/nonexistent/leakprobe-no-such-program`"),
        "{stderr}"
    );
}

#[test]
fn a_command_that_exits_before_any_request_fails() {
    let out = watch(&["--json", "--", "sh", "-c", "exit 0"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("before any request"), "{stderr}");
    assert!(stderr.contains("LEAKPROBE_URL"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains('{'),
        "no summary"
    );
}

#[test]
fn ctrl_c_prints_the_summary_completes_the_jsonl_and_ends_the_command_group() {
    let jsonl = tmp("interrupted.jsonl");
    let mut child = spawn_captured(
        Command::new(bin())
            .args(["watch", "--json", "--jsonl"])
            .arg(&jsonl)
            .args(["--", "python3", &python_loop()])
            .env("REQUESTS", "10000000")
            .env("PAUSE_MS", "1"),
    );
    // Until requests flow.
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(&jsonl).unwrap_or_default();
        let served = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok());
        if served
            .into_iter()
            .any(|r| r["requests"].as_u64() > Some(100))
        {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no requests served");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let mut stderr = String::new();
    let out = {
        let mut err = child.stderr.take().expect("stderr");
        let o = wait_bounded(child, Duration::from_secs(20));
        err.read_to_string(&mut stderr).expect("stderr");
        o
    };
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("watch summary"), "{stderr}");
    assert!(stderr.contains("stopped by signal"), "{stderr}");
    let s = summary(&out);
    assert_eq!(s["stopped_by"], "signal");
    // Every line whole.
    let text = std::fs::read_to_string(&jsonl).expect("jsonl");
    assert!(text.ends_with('\n'));
    for l in text.lines() {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{l}: {e}"));
    }
    // The command's process group is gone.
    let group: i32 = stderr
        .split("(pid ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {stderr}"));
    assert_eq!(
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), None),
        Err(nix::errno::Errno::ESRCH),
        "process group {group} still exists"
    );
}

#[test]
fn what_the_command_leaves_running_in_its_group_is_stopped_with_it() {
    let script = format!("sleep 300 & exec python3 '{}'", python_loop());
    let out = watch(
        &["--json", "--quiet", "--", "sh", "-c", &script],
        &[("REQUESTS", "1500")],
    );
    assert_exit(&out, 0);
    let s = summary(&out);
    assert_eq!(s["stopped_by"], "exited");
    let group = i32::try_from(s["pid"].as_u64().expect("pid")).expect("pid fits");
    assert_eq!(
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), None),
        Err(nix::errno::Errno::ESRCH),
        "the background sleep of group {group} still runs"
    );
}

#[test]
fn compare_puts_a_watched_program_beside_the_variants() {
    let dir = tmp("compare");
    let spec = format!("py=python3 '{}'", python_loop());
    let out = compare_watching(&spec, 1500, &[], &[], &dir, Duration::from_secs(90));
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let header = stdout.lines().find(|l| l.contains("raw")).unwrap_or("");
    assert!(header.contains("py"), "table heading: {stdout}");
    assert!(stdout.contains("1,500 served"), "{stdout}");
    // The variants' figures a watched program has not: n/a in its column, not a zero.
    let allocs = stdout
        .lines()
        .find(|l| l.starts_with("allocs / request"))
        .unwrap_or("");
    assert!(allocs.trim_end().ends_with("n/a"), "{stdout}");
    assert!(stdout.contains("py: note: RSS cannot separate"), "{stdout}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("read"))
            .expect("parses");
    let runs = summary["runs"].as_array().expect("runs");
    let names: Vec<&str> = runs.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["raw", "py"]);
    assert_eq!(runs[1]["summary"]["variant"], "watch");
    assert_eq!(
        runs[1]["summary"]["requests"], 1500,
        "REQUESTS set from --requests"
    );
    assert_eq!(runs[1]["summary"]["judged"]["basis"], "rss");
    assert!(dir.join("py.jsonl").is_file() && dir.join("py.log").is_file());
    assert!(dir.join("memory.svg").is_file());
}

#[test]
fn the_python_probe_measures_a_planted_leak_in_bytes() {
    let out = watch_decided(
        &[
            "--json",
            "--quiet",
            "--probe",
            "python",
            "--probe-every",
            "100ms",
            "--",
            "python3",
            &python_loop(),
        ],
        &[("REQUESTS", "3000"), ("LEAK_BYTES", "8192")],
    );
    assert_exit(&out, 0);
    let s = summary(&out);
    assert_eq!(s["judged"]["basis"], "heap", "{s}");
    assert_eq!(class(&s), "leak", "{s}");
    // tracemalloc's traced bytes: the bytearray and its object header.
    let b = slope(&s);
    assert!((b - 8192.0).abs() <= 0.05 * 8192.0, "slope {b}");
}

/// Whether `pid` is gone within a second (an orphan the watcher did not reap would be reaped
/// by init, asynchronously).
fn gone(pid: i32) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(1) {
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            == Err(nix::errno::Errno::ESRCH)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A daemon's double fork: the child calls `setsid` and forks the one that requests, then exits
/// at once; the grandchild, orphaned and in a session of its own, goes on sending requests
/// after the command exits (as a telemetry flush does).
const DETACHING: &str = r#"
import os, sys, time, urllib.request
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(sys.argv[1], "w") as f:
            f.write(str(os.getpid()))
        while True:
            urllib.request.urlopen(os.environ["LEAKPROBE_URL"]).read()
            time.sleep(0.005)
    os._exit(0)
time.sleep(2)
"#;

#[test]
fn a_child_that_detaches_is_measured_and_stopped() {
    let pidfile = tmp("detached.pid");
    let _ = std::fs::remove_file(&pidfile);
    let jsonl = tmp("detached.jsonl");
    let (p, j) = (pidfile.display().to_string(), jsonl.display().to_string());
    let out = watch(
        &[
            "--json", "--quiet", "--jsonl", &j, "--", "python3", "-c", DETACHING, &p,
        ],
        &[],
    );
    assert_exit(&out, 0);
    let s = summary(&out);
    let detached: i32 = std::fs::read_to_string(&pidfile)
        .expect("the detached child wrote its pid")
        .trim()
        .parse()
        .expect("a pid");
    // Measured: orphaned, it was adopted by the watcher and stayed in the tree beside the
    // command (2 processes) until the command exited, and was the tree after that (1).
    let rows: Vec<Value> = std::fs::read_to_string(&jsonl)
        .expect("jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each JSONL line parses"))
        .collect();
    // Once the grandchild sends requests its parent has exited: without the adoption the tree
    // would be the command alone (1) and, once the command exited, nothing (0).
    let busy: Vec<&Value> = rows
        .iter()
        .filter(|r| r["requests"].as_u64() > Some(0))
        .collect();
    let shown: Vec<_> = busy.iter().map(|r| (&r["t_ms"], &r["procs"])).collect();
    assert!(busy.len() >= 5, "{shown:?}");
    // The last two samples may be taken as the command exits.
    let (body, tail) = busy.split_at(busy.len() - 2);
    assert!(body.iter().all(|r| r["procs"] == 2), "{shown:?}");
    assert!(
        tail.iter().all(|r| r["procs"].as_u64() >= Some(1)),
        "{shown:?}"
    );
    assert!(s["requests"].as_u64().unwrap_or(0) > 0, "{s}");
    // Reported, and stopped: nothing of the command outlives the watch.
    // (The intermediate child left the group too, if a sample caught it before it exited.)
    let left = s["left_group"].as_array().expect("left_group");
    assert!(left.contains(&detached.into()), "{s}");
    assert_eq!(s["outlived"], 1, "{s}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("left the command's process group"),
        "{stderr}"
    );
    assert!(gone(detached), "the detached process {detached} still runs");
}

/// The old predictable folder `$TMPDIR/leakprobe-watch-<pid>`, planted before the watch starts
/// (by a shell that then `exec`s the watcher, so the pid matches): a folder of another's with
/// the probe's name inside symlinked to a victim file, or a symlink to another folder. The
/// watch uses a folder of its own instead, writes through nothing planted and removes its
/// folder at the end.
#[test]
fn watch_is_not_fooled_by_a_planted_temporary_folder() {
    let base = tmp("planted");
    let _ = std::fs::remove_dir_all(&base);
    let tmpdir = base.join("tmp");
    let elsewhere = base.join("elsewhere");
    std::fs::create_dir_all(&tmpdir).expect("tmpdir");
    std::fs::create_dir_all(&elsewhere).expect("elsewhere");
    let victim = base.join("victim");
    std::fs::write(&victim, "untouched").expect("victim");
    for plant in [
        // A folder, holding a symlink where the probe's script would go.
        format!(
            "mkdir \"$TMPDIR/leakprobe-watch-$$\" && ln -s '{v}' \"$TMPDIR/leakprobe-watch-$$/sitecustomize.py\" && ln -s '{v}' \"$TMPDIR/leakprobe-watch-$$/probe.jsonl\"",
            v = victim.display()
        ),
        // A symlink to another folder.
        format!(
            "ln -s '{}' \"$TMPDIR/leakprobe-watch-$$\"",
            elsewhere.display()
        ),
    ] {
        let script = format!(
            "{plant} && exec '{bin}' watch --json --quiet --probe python -- python3 '{py}'",
            bin = bin(),
            py = python_loop()
        );
        let out = run_bounded(
            Command::new("sh")
                .args(["-c", &script])
                .env("TMPDIR", &tmpdir)
                .env("REQUESTS", "300"),
            Duration::from_secs(60),
        );
        assert_exit(&out, 0);
        let s = summary(&out);
        assert!(
            s["probe_readings"].as_u64().unwrap_or(0) > 0,
            "the probe ran: {s}"
        );
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "untouched"
        );
        assert_eq!(
            std::fs::read_dir(&elsewhere).expect("elsewhere").count(),
            0,
            "nothing written through the symlinked folder"
        );
        // Only the planted entry is left: the watch's own folder is gone.
        let left: Vec<String> = std::fs::read_dir(&tmpdir)
            .expect("tmpdir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(left[0].starts_with("leakprobe-watch-"), "{left:?}");
        for e in std::fs::read_dir(&tmpdir).expect("tmpdir").flatten() {
            let p = e.path();
            if p.is_symlink() {
                std::fs::remove_file(&p).expect("unplant");
            } else {
                std::fs::remove_dir_all(&p).expect("unplant");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn keep_temp_keeps_the_private_folder_for_a_post_mortem() {
    let base = tmp("keep-temp");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("tmpdir");
    let b = base.display().to_string();
    let out = watch(
        &[
            "--json",
            "--quiet",
            "--probe",
            "python",
            "--keep-temp",
            "--",
            "python3",
            &python_loop(),
        ],
        &[("REQUESTS", "300"), ("TMPDIR", &b)],
    );
    assert_exit(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kept = stderr
        .lines()
        .find_map(|l| l.strip_prefix("watch: kept "))
        .unwrap_or_else(|| panic!("no kept folder in {stderr}"));
    let kept = Path::new(kept);
    use std::os::unix::fs::MetadataExt;
    assert!(
        kept.starts_with(base.canonicalize().expect("canonical")),
        "{}",
        kept.display()
    );
    assert_eq!(std::fs::metadata(kept).expect("kept").mode() & 0o777, 0o700);
    let out_file = kept.join("probe.jsonl");
    assert_eq!(
        std::fs::metadata(&out_file).expect("probe output").mode() & 0o777,
        0o600
    );
    assert!(std::fs::metadata(&out_file).expect("probe output").len() > 0);
    let _ = std::fs::remove_dir_all(&base);
}
