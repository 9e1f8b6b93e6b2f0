//! The process-tree sampler against real child processes (python3 and sh): memory a child
//! allocates shows in the sum, grandchildren are found, an exited child's last reading is held
//! until a newcomer joins, and a dead root is reported as such.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use leak_client::watch::proctree::{Root, TreeSample, TreeSampler};

const MB: u64 = 1_000_000;

/// A python3 program: says `up`, waits for a line on stdin, then holds `mb` megabytes written (so
/// resident), says `ready`, waits for another line and exits at once (`os._exit`: without
/// freeing first, so a sample cannot catch it half torn down).
fn holder(mb: u64) -> String {
    format!(
        "import os, sys; print('up', flush=True); sys.stdin.readline(); b = b'\\x01' * ({mb} * 1000 * 1000); \
         print('ready', flush=True); sys.stdin.readline(); os._exit(0)"
    )
}

/// Like [`holder`], but takes no input: holds until killed.
fn sleeper(mb: u64) -> String {
    format!(
        "import time; b = b'\\x01' * ({mb} * 1000 * 1000); print('ready', flush=True); \
         time.sleep(600)"
    )
}

struct Driven {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Driven {
    fn spawn(cmd: &mut Command) -> Driven {
        // Every child here is python3, directly or under sh: fail (not skip) without it.
        if Command::new("python3").arg("--version").output().is_err() {
            panic!(
                "these tests drive real python3 processes, not on PATH: apt-get install -y python3"
            );
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn test child");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Driven {
            child,
            stdin,
            stdout,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self) {
        self.stdin.write_all(b"\n").expect("write to child");
        self.stdin.flush().expect("flush");
    }

    fn expect_line(&mut self, want: &str) {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read child");
        assert_eq!(line.trim(), want);
    }

    /// Reads lines until `want` has been printed `times` times: children writing to one pipe
    /// can land their lines in one read (`readyready` then an empty line).
    fn expect_times(&mut self, want: &str, times: usize) {
        let mut seen = String::new();
        while seen.matches(want).count() < times {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read child");
            assert!(n > 0, "the children's output ended after {seen:?}");
            seen.push_str(line.trim());
        }
        assert_eq!(seen, want.repeat(times), "nothing else was printed");
    }

    fn finish(mut self) {
        drop(self.stdin);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples until `done` holds, for at most 20 s (a deadline against a hang, not a speed bound).
fn sample_until(sampler: &mut TreeSampler, done: impl Fn(&TreeSample) -> bool) -> TreeSample {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = sampler.sample();
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "condition never held; last {s:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn memory_a_child_writes_shows_in_rss_pss_and_anon() {
    let mut p = Driven::spawn(Command::new("python3").args(["-c", &holder(50)]));
    let mut sampler = TreeSampler::new(Root::Process(p.pid()));
    p.expect_line("up");
    let before = sampler.sample_with_pss();
    assert!(before.root_alive);
    p.send();
    p.expect_line("ready");
    let after = sampler.sample_with_pss();
    assert_eq!((after.procs, after.held), (1, 0));
    for (what, grew) in [
        ("rss", after.mem.rss - before.mem.rss),
        ("anon", after.mem.anon - before.mem.anon),
        (
            "pss",
            after.mem.pss.expect("pss") - before.mem.pss.expect("pss"),
        ),
    ] {
        assert!(grew >= 50 * MB, "{what} grew {grew} < 50 MB");
        assert!(
            grew < 80 * MB,
            "{what} grew {grew}: more than the child wrote"
        );
    }
    p.send();
    let status = p.child.wait().expect("wait");
    assert!(status.success());
}

#[test]
fn grandchildren_are_in_the_tree_whichever_way_children_are_found() {
    // sh starts two python3 children that each hold 30 MB; a reader of their `ready` lines
    // knows when both hold it. In its own process group, so the test can end all three.
    let script = format!(
        "python3 -c \"{h}\" & python3 -c \"{h}\" & wait",
        h = sleeper(30)
    );
    let mut tree = Driven::spawn(Command::new("sh").args(["-c", &script]).process_group(0));
    tree.expect_times("ready", 2);
    let root = Root::Process(tree.pid());
    for mut sampler in [TreeSampler::new(root), TreeSampler::with_proc_scan(root)] {
        let s = sampler.sample();
        assert_eq!(s.procs, 3, "sh and two python3: {s:?}");
        assert!(s.mem.rss >= 60 * MB, "rss {}", s.mem.rss);
        assert!(s.mem.anon >= 60 * MB, "anon {}", s.mem.anon);
        assert_eq!(sampler.live_pids().next(), Some(tree.pid()), "root first");
    }
    let group = Pid::from_raw(i32::try_from(tree.pid()).expect("pid"));
    killpg(group, Signal::SIGKILL).expect("kill the tree");
    tree.finish();
}

#[test]
fn an_exited_child_is_held_until_a_newcomer_joins() {
    // sh runs A (holds 40 MB until a line), then waits on its builtin `read` (no new process),
    // then runs B.
    let script = format!(
        "python3 -c \"{a}\"; read x; python3 -c \"{b}\"",
        a = holder(40).replace('"', "\\\""),
        b = "import sys; print('b', flush=True); sys.stdin.readline()"
    );
    let mut tree = Driven::spawn(Command::new("sh").args(["-c", &script]));
    let mut sampler = TreeSampler::new(Root::Process(tree.pid()));
    tree.expect_line("up");
    tree.send();
    tree.expect_line("ready");
    let holding = sample_until(&mut sampler, |s| s.procs == 2);
    assert!(holding.mem.rss >= 40 * MB);

    tree.send(); // A exits; sh blocks in `read`
    let after_exit = sample_until(&mut sampler, |s| s.procs == 1);
    assert_eq!((after_exit.held, after_exit.exited), (1, 1));
    let held_rss = after_exit.mem.rss - after_exit.live.rss;
    assert!(
        held_rss >= 40 * MB,
        "the sum keeps A's last reading: {held_rss}"
    );
    assert!(after_exit.live.rss < 40 * MB, "live sum lost it");
    let still = sampler.sample();
    assert_eq!(
        (still.held, still.exited),
        (1, 0),
        "held, not exiting again"
    );

    tree.send(); // sh reads the line and starts B
    tree.expect_line("b");
    let joined = sample_until(&mut sampler, |s| s.procs == 2);
    assert_eq!((joined.held, joined.joined), (0, 1));
    assert_eq!(joined.mem, joined.live, "A dropped once B joined");
    assert!(joined.mem.rss < 40 * MB);
    tree.finish();
}

#[test]
fn a_root_that_exited_is_dead_before_it_is_reaped() {
    let mut child = Command::new("sh")
        .args(["-c", "exit 0"])
        .spawn()
        .expect("spawn");
    let mut sampler = TreeSampler::new(Root::Process(child.id()));
    // Not waited on yet: a zombie, which has no memory and no children.
    let dead = sample_until(&mut sampler, |s| !s.root_alive);
    assert_eq!((dead.procs, dead.live.rss), (0, 0));
    assert!(child.wait().expect("reap").success());
    assert!(!sampler.sample().root_alive);
}

#[test]
fn children_of_this_process_include_a_spawned_child_but_not_this_process() {
    let mut p = Driven::spawn(Command::new("python3").args(["-c", &holder(1)]));
    let me = std::process::id();
    let mut sampler = TreeSampler::new(Root::ChildrenOf(me));
    let s = sample_until(&mut sampler, |s| s.root_alive);
    let pids: Vec<u32> = sampler.live_pids().collect();
    assert!(pids.contains(&p.pid()), "{pids:?} lacks {}", p.pid());
    assert!(!pids.contains(&me));
    assert!(s.procs >= 1);
    p.expect_line("up");
    p.send();
    p.expect_line("ready");
    p.finish();
}
