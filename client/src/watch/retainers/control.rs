//! The heap snapshots' control channel between the watcher and the Node probe: the request file
//! the watcher writes, and the answers the probe appends. Files only: it starts, signals and
//! waits on no process, and reads no clock.
//!
//! - The watcher writes the request number (`1`, then `2`) into [`CTL_ENV`]'s file: a new file
//!   renamed over the old one, so the probe never reads half of it.
//! - The probe (`client/probes/node/leakprobe-probe.cjs`, `snapshots`) `stat`s that file at each
//!   of its readings; when its inode or mtime changed and the number is above the last it
//!   answered, it writes `v8.writeHeapSnapshot("<ctl>-<pid>-<n>.heapsnapshot")` and appends one
//!   line to `<ctl>.jsonl`:
//!
//! ```text
//! {"rt":"node","ev":"snapshot","pid":4242,"n":1,"t":5032946818203,"ms":412,"bytes":4038650,
//!  "path":"/tmp/leakprobe-watch-x/snapshot-request-4242-1.heapsnapshot"}
//! ```
//!
//! (`"error":"…"` instead of a file when V8 could not write it.) `t` is `CLOCK_MONOTONIC` in
//! nanoseconds just before the snapshot, after the reading's full GC: the watcher pairs it with
//! the served count as it pairs a reading. The answers go to a file of their own, not to the
//! readings' file: each line there is one typed reading of the heap series.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::private_dir::write_new;
use crate::watch::probe::LineTail;

/// Names the request file (an absolute path in the run's private folder).
pub const CTL_ENV: &str = "LEAKPROBE_PROBE_CTL";
/// The request file's name in the run's folder.
const CTL_FILE: &str = "snapshot-request";

/// One answer of the probe.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Answer {
    pub pid: u32,
    /// The request it answers.
    pub n: u32,
    /// `CLOCK_MONOTONIC` ns just before the snapshot.
    pub t: u64,
    #[serde(default)]
    pub ms: u64,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Why there is no file.
    #[serde(default)]
    pub error: Option<String>,
    /// The served count at `t`, paired by the watcher when it read the line.
    #[serde(skip)]
    pub requests: Option<u64>,
}

#[derive(Deserialize)]
struct Head {
    ev: String,
}

/// Parses one answer line; `None` if it is not one.
pub fn parse_answer(line: &[u8]) -> Option<Answer> {
    let head: Head = serde_json::from_slice(line).ok()?;
    if head.ev != "snapshot" {
        return None;
    }
    serde_json::from_slice(line).ok()
}

/// The watcher's side of the channel.
#[derive(Debug)]
pub struct Control {
    dir: PathBuf,
    ctl: PathBuf,
    /// The answers' file, `<ctl>.jsonl`.
    tail: LineTail,
    answers: Vec<Answer>,
    /// The last request written.
    requested: u32,
    bad_lines: u64,
}

impl Control {
    /// The channel in `dir` (the run's private folder, canonical): the answers' file is made
    /// now, empty and 0600, so the probe only ever appends to it.
    pub fn create(dir: &Path) -> io::Result<Control> {
        let ctl = dir.join(CTL_FILE);
        let mut answers_path = ctl.clone().into_os_string();
        answers_path.push(".jsonl");
        let answers_path = PathBuf::from(answers_path);
        write_new(&answers_path, b"")?;
        Ok(Control {
            dir: dir.to_owned(),
            ctl,
            tail: LineTail::new(&answers_path),
            answers: Vec::new(),
            requested: 0,
            bad_lines: 0,
        })
    }

    /// The variable to start the command with.
    pub fn env(&self) -> (&'static str, &Path) {
        (CTL_ENV, &self.ctl)
    }

    /// The last request written (0: none yet).
    pub fn requested(&self) -> u32 {
        self.requested
    }

    /// Asks for snapshot `n` (the next request number).
    pub fn request(&mut self, n: u32) -> io::Result<()> {
        let tmp = self.dir.join(format!("{CTL_FILE}.{n}.tmp"));
        write_new(&tmp, format!("{n}\n").as_bytes())?;
        fs::rename(&tmp, &self.ctl)?;
        self.requested = n;
        Ok(())
    }

    /// Reads the answers appended since the last poll, pairing each with the served count at
    /// its time (`served_at`, the session's log); returns how many arrived.
    pub fn poll(&mut self, served_at: impl Fn(u64) -> Option<u64>) -> io::Result<usize> {
        let before = self.answers.len();
        let (answers, mut bad) = (&mut self.answers, 0);
        let dropped = self.tail.poll(|line| match parse_answer(line) {
            Some(mut a) => {
                a.requests = served_at(a.t);
                answers.push(a);
            }
            None => bad += 1,
        })?;
        self.bad_lines += bad + dropped;
        Ok(self.answers.len() - before)
    }

    /// Every answer so far.
    pub fn answers(&self) -> &[Answer] {
        &self.answers
    }

    /// Lines in the answers' file that were not answers.
    pub fn bad_lines(&self) -> u64 {
        self.bad_lines
    }

    /// The pids that answered request `n` (with a file or an error).
    pub fn answered(&self, n: u32) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .answers
            .iter()
            .filter(|a| a.n == n)
            .map(|a| a.pid)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Each process's snapshots `first` and `second` as files with what the probe said of them;
    /// and why a process that answered the first has no pair.
    pub fn pairs(&self, first: u32, second: u32) -> (Vec<(u32, Snap, Snap)>, Vec<String>) {
        let mut pairs = Vec::new();
        let mut notes = Vec::new();
        for pid in self.answered(first) {
            let find = |n| self.answers.iter().find(|a| a.pid == pid && a.n == n);
            match (
                find(first).and_then(snap),
                find(second).map(|a| (a, snap(a))),
            ) {
                (Some(a), Some((_, Some(b)))) => pairs.push((pid, a, b)),
                (None, _) => notes.push(format!(
                    "pid {pid}: no first snapshot ({})",
                    find(first).map_or_else(String::new, why_none)
                )),
                (Some(_), None) => notes.push(format!("pid {pid}: no end snapshot")),
                (Some(_), Some((b, None))) => {
                    notes.push(format!("pid {pid}: no end snapshot ({})", why_none(b)));
                }
            }
        }
        (pairs, notes)
    }
}

/// One snapshot as the probe reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Taken {
    /// The served count at the snapshot.
    pub requests: u64,
    /// The file's size.
    pub bytes: u64,
    /// How long the program was stopped writing it.
    pub ms: u64,
}

/// A snapshot file and what the probe said of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snap {
    pub path: PathBuf,
    pub taken: Taken,
}

fn snap(a: &Answer) -> Option<Snap> {
    match (&a.path, a.requests, &a.error) {
        (Some(path), Some(requests), None) => Some(Snap {
            path: path.clone(),
            taken: Taken {
                requests,
                bytes: a.bytes,
                ms: a.ms,
            },
        }),
        _ => None,
    }
}

fn why_none(a: &Answer) -> String {
    match (&a.error, a.requests) {
        (Some(e), _) => format!("V8: {e}"),
        (None, None) => "its time is older than the served count's record".into(),
        (None, Some(_)) => "no file named".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private_dir::PrivateDir;
    use std::io::Write;

    #[test]
    fn requests_replace_the_file_and_answers_pair_by_process() {
        let dir = PrivateDir::create("leakprobe-ctl-test-").expect("dir");
        let mut c = Control::create(dir.path()).expect("control");
        let (name, ctl) = c.env();
        assert_eq!(name, "LEAKPROBE_PROBE_CTL");
        let ctl = ctl.to_owned();
        c.request(1).expect("request");
        assert_eq!(fs::read_to_string(&ctl).expect("ctl"), "1\n");
        c.request(2).expect("request");
        assert_eq!(fs::read_to_string(&ctl).expect("ctl"), "2\n");
        assert_eq!(c.requested(), 2);

        let answers = dir.path().join("snapshot-request.jsonl");
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&answers)
            .expect("open");
        let line = |pid: u32, n: u32, t: u64| {
            format!(
                r#"{{"rt":"node","ev":"snapshot","pid":{pid},"n":{n},"t":{t},"ms":5,"bytes":100,"path":"/x/{pid}-{n}"}}"#
            ) + "\n"
        };
        // pid 7 answers both; pid 8 only the first; pid 9's first failed; one torn line.
        write!(
            f,
            "{}{}{}{}not an answer\n{}",
            line(7, 1, 1_000),
            line(8, 1, 1_100),
            r#"{"rt":"node","ev":"snapshot","pid":9,"n":1,"t":1200,"error":"ENOSPC"}"#.to_string()
                + "\n",
            line(9, 2, 1_900),
            &line(7, 2, 2_000)[..20]
        )
        .expect("write");
        let served_at = |t: u64| Some(t / 10);
        assert_eq!(c.poll(served_at).expect("poll"), 4);
        write!(f, "{}", &line(7, 2, 2_000)[20..]).expect("write");
        assert_eq!(c.poll(served_at).expect("poll"), 1);
        assert_eq!(c.bad_lines(), 1);
        assert_eq!(c.answered(1), vec![7, 8, 9]);
        assert_eq!(c.answered(2), vec![7, 9]);
        let (pairs, notes) = c.pairs(1, 2);
        assert_eq!(pairs.len(), 1);
        let (pid, a, b) = &pairs[0];
        assert_eq!((*pid, a.taken.requests, b.taken.requests), (7, 100, 200));
        assert_eq!(b.path, PathBuf::from("/x/7-2"));
        assert_eq!(
            notes,
            vec![
                "pid 8: no end snapshot".to_string(),
                "pid 9: no first snapshot (V8: ENOSPC)".to_string()
            ]
        );
    }
}
