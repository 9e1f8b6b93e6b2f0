//! What the watch tests share: the binary, the example programs, a folder per module for their
//! files, the check that a real runtime they drive is on PATH, a bounded wait for a child, and
//! the JSON summary it printed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `leak-client` binary Cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_leak-client")
}

/// The repository's `examples/` folder.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// `name` in a folder of this test process's own for module `module`, under Cargo's
/// `target/tmp` (so `cargo clean` removes it). The folder is emptied the first time this process
/// asks for it: a folder left by an earlier run whose process had the same id (ids are reused)
/// must not hand a test that run's files — a stale JSONL once made the Ctrl-C test signal
/// `watch` before it had started.
pub fn tmp(module: &str, name: &str) -> PathBuf {
    scratch(module).join(name)
}

/// The folder [`tmp`] puts module `module`'s files in (see there).
pub fn scratch(module: &str) -> PathBuf {
    static FRESH: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("leakprobe-{module}-{}", std::process::id()));
    let mut fresh = FRESH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !fresh.iter().any(|m| m == module) {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot empty {}: {e}", dir.display()),
        }
        fresh.push(module.to_string());
    }
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Fails (not skips) when a real runtime these tests drive is missing, saying how to get it.
pub fn need(program: &str, apt_package: &str) {
    if Command::new(program).arg("--version").output().is_err() {
        panic!(
            "this test drives a real `{program}`, not on PATH: apt-get install -y {apt_package}"
        );
    }
}

/// Starts `cmd` with stdin closed and stdout and stderr captured.
pub fn spawn_captured(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()))
}

/// [`spawn_captured`], then [`wait_bounded`].
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    wait_bounded(spawn_captured(cmd), limit)
}

/// Waits for `child` at most `limit`; kills it and fails the test past that, with its stderr.
pub fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let t0 = Instant::now();
    loop {
        match child.try_wait().expect("wait") {
            Some(_) => return child.wait_with_output().expect("output"),
            None if t0.elapsed() > limit => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "the command did not finish within {limit:?}; stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The JSON summary `--json` printed last on stdout; fails the test, with stderr, without one.
pub fn summary(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "no JSON summary; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).expect("summary parses")
}

/// Runs `leak-client watch ARGS` with `env` added, stdin closed, bounded to `limit`.
pub fn watch(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    run_bounded(
        Command::new(bin())
            .arg("watch")
            .args(args)
            .envs(env.iter().copied()),
        limit,
    )
}

/// Runs `leak-client compare` of the raw variant beside the watched program `spec` (`NAME=CMD`)
/// for `requests` requests (one round, 1 ms latency, concurrency 1), with `flags` added before
/// `--watch`, `env` added and `REQUESTS` unset (compare sets it from `--requests`), writing into
/// `out` (emptied first), bounded to `limit`.
pub fn compare_watching(
    spec: &str,
    requests: u64,
    flags: &[&str],
    env: &[(&str, &str)],
    out: &Path,
    limit: Duration,
) -> Output {
    let _ = std::fs::remove_dir_all(out);
    let requests = requests.to_string();
    let mut cmd = Command::new(bin());
    cmd.args(["compare", "--variants", "raw", "--requests", &requests])
        .args([
            "--rounds",
            "1",
            "--linger",
            "0s",
            "--latency",
            "1ms",
            "--concurrency",
            "1",
        ])
        .args(flags)
        .args(["--watch", spec, "--out"])
        .arg(out)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .env_remove("REQUESTS");
    run_bounded(&mut cmd, limit)
}

/// [`watch`] that must exit 0 and print `block` in its human summary (stderr); its JSON
/// summary (run it with `--json`).
pub fn watch_summary(args: &[&str], env: &[(&str, &str)], limit: Duration, block: &str) -> Value {
    let out = watch(args, env, limit);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(block),
        "no `{block}` in the summary: {stderr}"
    );
    summary(&out)
}
