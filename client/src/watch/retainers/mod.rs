//! `watch --probe node --retainers`: what the objects a Node program kept between two heap
//! snapshots are held by, in bytes per request. The snapshots' control channel ([`control`]),
//! their streaming parser ([`snapshot`]), the new objects' retainer paths ([`paths`]), and here
//! the analysis of a pair and the report the summary shows. It starts no process.
//!
//! # How it runs
//! 1. With `--retainers` the watcher gives the probe `LEAKPROBE_PROBE_CTL`, a request file in
//!    the run's private folder. The probe `stat`s it at each of its readings (one system call);
//!    when the watcher has written a new request number, the probe, right after its full GC,
//!    writes `v8.writeHeapSnapshot` next to it and appends one line saying so (its
//!    `CLOCK_MONOTONIC` time, the file, how long it took) to `<ctl>.jsonl`. Every probed Node
//!    process (main thread) answers: the watcher analyses each process that answered both.
//! 2. The watcher asks for the first snapshot once the warm-up is over ([`first_snapshot_at`]
//!    requests) and for the second when the watch is about to stop (after `--requests`,
//!    `--duration`, the kicks, a settled verdict; not on Ctrl-C, nor when the program exited by
//!    itself), then waits for it, at most [`END_WAIT`], before it stops the program. Each
//!    snapshot line is paired with the served count at its timestamp, as a reading is.
//! 3. Once the program has stopped, each pair is analysed: the first snapshot's nodes only
//!    (its largest odd id), the second in full; the objects new in the second are grouped by
//!    their shortest retainer path ([`paths::new_objects`], the user roots first), and each
//!    group's bytes divided by the requests served between the two snapshots.
//!
//! # Reading it
//! A path reads from a root (the global object, an embedder's handle such as
//! `Node / TCPSocketWrap`, or V8's `(GC roots)`) to the new object: each node's class with the
//! edge taken out of it, `⇒` the new object's class. `… → Holder.fetchMetrics → Array[] ⇒
//! Object` says that objects of class `Object`, allocated after the first snapshot and alive
//! at the second, are elements of an `Array` held by the `fetchMetrics` property of a `Holder`. One
//! leak shows as a few paths: the leaked objects, the strings they hold (`Object.url ⇒ string`),
//! the array's backing store (`Array.elements ⇒ (object elements)`). A path is **growing** when
//! it gained at least [`GROWING_BYTES_PER_REQUEST`] bytes and one object per
//! [`GROWING_REQUESTS_PER_OBJECT`] requests: two snapshots cannot tell one-off growth (a cache
//! filling, code compiled late) from growth per request, but the count of objects that does not
//! follow the requests can. The verdict on the heap series says *whether* the heap grows; the
//! paths say *what* holds what it gained.
//!
//! # What it costs
//! Two heap snapshots: V8 stops the program while it writes one (4–5 s and ~80–100 MB for a
//! Next.js dev server, well under a second for a small script), and its RSS stays higher
//! afterwards. The watcher's analysis reads the files as they stream, into arrays of `u32`.

pub mod control;
pub mod paths;
pub mod snapshot;

pub use control::Taken;

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::units;

/// The longest the watcher waits for the end snapshot before it stops the program anyway.
/// (A Next.js dev server's took 56 s on a loaded 2-core machine, 4–5 s idle.)
pub const END_WAIT: Duration = Duration::from_secs(300);
/// Paths shown per process.
pub const TOP_PATHS: usize = 8;
/// A path gaining less than this per request is noise (the verdict's own floor for a stable
/// heap is 16 B/request).
pub const GROWING_BYTES_PER_REQUEST: f64 = 16.0;
/// …or fewer than one object per this many requests (see the module docs).
/// A Next.js dev server's webpack recompiling between the snapshots added paths of 187–512
/// large objects over 6,951 requests (one per 14–37 requests, 274–650 B/request), one-offs that
/// one object per 100 requests called growing; every per-request leak measured kept one or more
/// objects per request.
pub const GROWING_REQUESTS_PER_OBJECT: u64 = 10;

/// The served count at which the first snapshot is asked for: after Node's warm-up
/// (`judge::NODE_WARMUP_REQUESTS`), or at 30% of a shorter run of known length.
pub fn first_snapshot_at(requests: Option<u64>) -> u64 {
    let warm = crate::watch::judge::NODE_WARMUP_REQUESTS;
    match requests {
        Some(n) => warm.min(n * 3 / 10).max(1),
        None => warm,
    }
}

/// The requests that ask for the two snapshots.
pub const FIRST: u32 = 1;
pub const SECOND: u32 = 2;

/// The "Retainers" block from what the probes answered: each process with both snapshots
/// analysed (the one that gained most bytes first), and why any other has none. `end_wait` is how
/// long the watcher waited for the end snapshot (`None`: it did not ask for one, and why).
pub fn report(control: &control::Control, end_wait: Result<Duration, &str>) -> Retainers {
    let mut notes = Vec::new();
    let end_wait_s = match end_wait {
        Ok(d) => d.as_secs_f64(),
        Err(why) => {
            notes.push(format!("no end snapshot: {why}"));
            0.0
        }
    };
    if control.requested() == 0 {
        notes.push("no snapshot: the watch ended before the first was due".into());
    } else if control.answered(FIRST).is_empty() {
        notes.push("no process answered the first snapshot's request".into());
    }
    let (pairs, missing) = control.pairs(FIRST, SECOND);
    if end_wait.is_ok() {
        notes.extend(missing);
    }
    let mut processes = Vec::new();
    for (pid, a, b) in &pairs {
        let pair = Pair {
            pid: *pid,
            first: (&a.path, a.taken.clone()),
            second: (&b.path, b.taken.clone()),
        };
        match analyse(&pair) {
            Ok(p) => processes.push(p),
            Err(e) => notes.push(format!("pid {pid}: {e}")),
        }
    }
    processes.sort_by(|a, b| b.new_bytes.cmp(&a.new_bytes).then(a.pid.cmp(&b.pid)));
    Retainers {
        processes,
        notes,
        end_wait_s,
    }
}

/// One path's share of what a process gained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetainerPath {
    pub path: String,
    pub bytes: u64,
    pub objects: u64,
    pub bytes_per_request: f64,
    /// At least [`GROWING_BYTES_PER_REQUEST`] and one object per
    /// [`GROWING_REQUESTS_PER_OBJECT`] requests.
    pub growing: bool,
}

/// One process's pair of snapshots, analysed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRetainers {
    pub pid: u32,
    pub first: Taken,
    pub second: Taken,
    /// Requests served between the two snapshots.
    pub requests: u64,
    /// The second snapshot's graph.
    pub nodes: usize,
    pub edges: usize,
    /// Objects new in the second snapshot (reached from the roots), and their bytes.
    pub new_objects: u64,
    pub new_bytes: u64,
    /// How long the watcher's analysis of this pair took.
    pub analysis_s: f64,
    /// The top paths by bytes ([`TOP_PATHS`]).
    pub paths: Vec<RetainerPath>,
}

impl ProcessRetainers {
    /// The growing paths among the top ones.
    pub fn growing(&self) -> impl Iterator<Item = &RetainerPath> {
        self.paths.iter().filter(|p| p.growing)
    }
}

/// The "Retainers" part of a watch summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Retainers {
    /// Each process with both snapshots, the one that gained most bytes first.
    pub processes: Vec<ProcessRetainers>,
    /// What went wrong or was left undone (no end snapshot, a file that did not parse), if
    /// anything.
    pub notes: Vec<String>,
    /// How long the watcher waited for the end snapshot.
    pub end_wait_s: f64,
}

/// A pair of snapshot files, with what the probe said of them.
#[derive(Debug, Clone)]
pub struct Pair<'a> {
    pub pid: u32,
    pub first: (&'a Path, Taken),
    pub second: (&'a Path, Taken),
}

/// Analyses one process's pair: the first file's ids, the second's new objects and their paths.
pub fn analyse(pair: &Pair<'_>) -> Result<ProcessRetainers, String> {
    let t0 = Instant::now();
    let open = |p: &Path| {
        File::open(p)
            .map(|f| BufReader::with_capacity(1 << 20, f))
            .map_err(|e| format!("cannot open {}: {e}", p.display()))
    };
    let first = snapshot::read(open(pair.first.0)?, snapshot::Keep::Nodes)
        .map_err(|e| format!("{}: {e}", pair.first.0.display()))?;
    let after = first.max_odd_id();
    drop(first);
    let second = snapshot::read(open(pair.second.0)?, snapshot::Keep::All)
        .map_err(|e| format!("{}: {e}", pair.second.0.display()))?;
    let found = paths::new_objects(&second, after);
    drop(second);
    let requests = pair.second.1.requests.saturating_sub(pair.first.1.requests);
    Ok(ProcessRetainers {
        pid: pair.pid,
        first: pair.first.1.clone(),
        second: pair.second.1.clone(),
        requests,
        nodes: found.nodes,
        edges: found.edges,
        new_objects: found.count,
        new_bytes: found.bytes,
        analysis_s: t0.elapsed().as_secs_f64(),
        paths: top_paths(&found.groups, requests),
    })
}

/// The first [`TOP_PATHS`] groups, per request.
pub fn top_paths(groups: &[paths::PathGroup], requests: u64) -> Vec<RetainerPath> {
    groups
        .iter()
        .take(TOP_PATHS)
        .map(|g| {
            let per = if requests == 0 {
                0.0
            } else {
                g.bytes as f64 / requests as f64
            };
            RetainerPath {
                path: g.path.clone(),
                bytes: g.bytes,
                objects: g.count,
                bytes_per_request: per,
                growing: requests > 0
                    && per >= GROWING_BYTES_PER_REQUEST
                    && g.count.saturating_mul(GROWING_REQUESTS_PER_OBJECT) >= requests,
            }
        })
        .collect()
}

impl Retainers {
    /// The human block of the summary.
    pub fn print_human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(
            w,
            "retainers  objects new between two heap snapshots, by retainer path"
        )?;
        for note in &self.notes {
            writeln!(w, "           {note}")?;
        }
        for p in &self.processes {
            writeln!(
                w,
                "           pid {}: snapshots at {} and {} requests ({} and {}, {:.1} s and \
                 {:.1} s), end waited {:.1} s, analysed in {:.1} s",
                p.pid,
                units::count(p.first.requests),
                units::count(p.second.requests),
                units::bytes(p.first.bytes as f64),
                units::bytes(p.second.bytes as f64),
                p.first.ms as f64 / 1e3,
                p.second.ms as f64 / 1e3,
                self.end_wait_s,
                p.analysis_s
            )?;
            writeln!(
                w,
                "           {} new objects, {} ({:.0} B/request over {} requests); {}",
                units::count(p.new_objects),
                units::bytes(p.new_bytes as f64),
                if p.requests == 0 {
                    0.0
                } else {
                    p.new_bytes as f64 / p.requests as f64
                },
                units::count(p.requests),
                match p.growing().count() {
                    0 => "no growing path".to_string(),
                    n => format!("{n} growing path(s) (*)"),
                }
            )?;
            for path in &p.paths {
                writeln!(
                    w,
                    "         {} {:>9.1} B/req {:>9} objects  {}",
                    if path.growing { "*" } else { " " },
                    path.bytes_per_request,
                    units::count(path.objects),
                    path.path
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_snapshot_follows_the_warm_up_or_a_short_runs_length() {
        assert_eq!(first_snapshot_at(None), 3_000);
        assert_eq!(first_snapshot_at(Some(100_000)), 3_000);
        assert_eq!(first_snapshot_at(Some(2_000)), 600);
        assert_eq!(first_snapshot_at(Some(1)), 1);
    }

    #[test]
    fn a_path_grows_with_enough_bytes_and_objects_per_request() {
        let group = |bytes, count| paths::PathGroup {
            path: "p".into(),
            bytes,
            count,
        };
        let top = top_paths(
            &[
                group(1_000_000, 1_000),
                group(1_000_000, 5),
                group(10_000, 1_000),
            ],
            1_000,
        );
        let growing: Vec<bool> = top.iter().map(|p| p.growing).collect();
        assert_eq!(
            growing,
            vec![true, false, false],
            "per request, few objects, few bytes"
        );
        assert_eq!(top[0].bytes_per_request, 1_000.0);
        assert!(top_paths(&[group(1_000, 10)], 0).iter().all(|p| !p.growing));
    }
}
