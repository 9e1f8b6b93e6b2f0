//! `watch`'s hold on every process COMMAND starts, detached or not: the watcher becomes a child
//! subreaper, notes processes that leave the command's process group, reaps the orphans it
//! adopts, and at the end stops and reaps every descendant still running. The only code of
//! `watch` that signals or waits on a process other than COMMAND itself.
//!
//! With `prctl(PR_SET_CHILD_SUBREAPER)`, a process whose parent exits (a daemon's double fork, a
//! child that called `setsid` before its parent ended) is re-parented to the watcher instead of
//! init, so it stays in the tree the sampler reads (`Root::ChildrenOf` the watcher), and
//! signalling the command's process group is no longer the whole of stopping it: a process in a
//! group or session of its own is found as a descendant and stopped too.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};

/// Makes this process the reaper of its orphaned descendants (Linux 3.4+).
pub fn adopt_orphans() -> std::io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    Ok(())
}

/// One process as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    pid: u32,
    ppid: u32,
    pgrp: u32,
    zombie: bool,
}

/// Parses the fields after the command name (which may hold spaces and parentheses).
fn parse_stat(pid: u32, text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some(Stat {
        pid,
        ppid,
        pgrp,
        zombie: state == "Z" || state == "X",
    })
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// Every process on the machine (those readable now).
fn all_processes() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// The descendants of `root` in `table`, breadth first (not `root` itself).
fn descendants(table: &[Stat], root: u32) -> Vec<Stat> {
    let mut out: Vec<Stat> = table.iter().filter(|s| s.ppid == root).copied().collect();
    let mut next = 0;
    while next < out.len() {
        let pid = out[next].pid;
        next += 1;
        out.extend(table.iter().filter(|s| s.ppid == pid && s.pid != root));
    }
    out
}

/// The watcher's view of the command's processes.
#[derive(Debug)]
pub struct Reaper {
    /// The watcher.
    me: u32,
    /// The command: its pid, and its process group's id (the command leads it).
    command: u32,
    /// Processes seen outside the command's group, in the order seen.
    left: Vec<u32>,
    /// Tree samples so far.
    samples: u64,
}

/// Every how many tree samples the descendants' groups are read (a scan of `/proc`).
const OBSERVE_EVERY: u64 = 8;

impl Reaper {
    /// For the command `command`, started in a process group of its own by this process.
    pub fn new(command: u32) -> Reaper {
        Reaper {
            me: std::process::id(),
            command,
            left: Vec::new(),
            samples: 0,
        }
    }

    /// After a tree sample that found `joined` new processes and `exited` gone ones: notes the
    /// descendants no longer in the command's group (when a process joined, and every
    /// [`OBSERVE_EVERY`] samples for one that calls `setsid` later), and reaps adopted orphans
    /// that exited.
    pub fn after_sample(&mut self, joined: u32, exited: u32) {
        self.samples += 1;
        if joined > 0 || self.samples % OBSERVE_EVERY == 1 {
            let table = all_processes();
            for s in descendants(&table, self.me) {
                if !s.zombie && s.pgrp != self.command && !self.left.contains(&s.pid) {
                    self.left.push(s.pid);
                }
            }
        }
        if exited > 0 {
            self.reap();
        }
    }

    /// The processes seen to leave the command's group (`setsid`, `setpgid`).
    pub fn left_group(&self) -> &[u32] {
        &self.left
    }

    /// Reaps adopted orphans that have exited (never the command, whose status `std`'s `Child`
    /// collects), so none stays a zombie until the end.
    fn reap(&self) {
        for s in all_processes() {
            if s.zombie && s.ppid == self.me && s.pid != self.command {
                reap_one(s.pid);
            }
        }
    }

    /// Once the command's group is stopped: SIGTERM to every descendant still running, SIGKILL
    /// to what is left after `grace`, each reaped. Returns how many there were.
    pub fn stop_descendants(&self, grace: Duration) -> usize {
        let mut signalled: BTreeSet<u32> = BTreeSet::new();
        let t0 = Instant::now();
        let mut signal = Signal::TERM;
        loop {
            let table = all_processes();
            let mut running = 0;
            for s in descendants(&table, self.me) {
                if s.zombie {
                    if s.ppid == self.me && s.pid != self.command {
                        reap_one(s.pid);
                    }
                    continue;
                }
                running += 1;
                // Every newcomer gets SIGTERM once; past the grace period, all get SIGKILL.
                if signalled.insert(s.pid) || signal == Signal::KILL {
                    if let Some(pid) = i32::try_from(s.pid).ok().and_then(Pid::from_raw) {
                        let _ = kill_process(pid, signal);
                    }
                }
            }
            if running == 0 {
                return signalled.len();
            }
            if t0.elapsed() >= grace {
                if signal == Signal::KILL && t0.elapsed() >= grace + KILL_WAIT {
                    log::warn!("{running} process(es) of the command survived SIGKILL");
                    return signalled.len();
                }
                signal = Signal::KILL;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How long processes sent SIGKILL get to go.
const KILL_WAIT: Duration = Duration::from_secs(2);

fn reap_one(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = waitpid(Some(pid), WaitOptions::NOHANG);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        let s = parse_stat(42, "42 (a (b) c) S 7 42 42 0 -1 4194560").expect("parses");
        assert_eq!(
            s,
            Stat {
                pid: 42,
                ppid: 7,
                pgrp: 42,
                zombie: false
            }
        );
        assert!(parse_stat(1, "1 (x) Z 0 1 1").expect("zombie").zombie);
        assert_eq!(parse_stat(1, "garbage"), None);
    }

    #[test]
    fn descendants_are_found_through_every_generation() {
        let st = |pid, ppid| Stat {
            pid,
            ppid,
            pgrp: pid,
            zombie: false,
        };
        let table = [
            st(1, 0),
            st(10, 1),
            st(11, 10),
            st(12, 11),
            st(20, 1),
            st(30, 5),
        ];
        let found: Vec<u32> = descendants(&table, 10).iter().map(|s| s.pid).collect();
        assert_eq!(found, [11, 12]);
        let found: Vec<u32> = descendants(&table, 1).iter().map(|s| s.pid).collect();
        assert_eq!(found, [10, 20, 11, 12]);
    }
}
