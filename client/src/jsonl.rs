//! The JSONL writer the measured runs and `watch` share: lines gathered in memory, written
//! to an unbuffered file in one `write` per wake-up. Knows nothing of what the lines are.

use std::fs::File;
use std::io::Write;

use serde::Serialize;

/// A JSONL file written unbuffered, the lines of one wake-up in one write: the monitor's (a
/// batch of request samples, a periodic reading) and `watch`'s (one tree sample and the probe
/// readings before it). The file is at most one wake-up (~5 ms for the monitor, `--every` for
/// watch) behind the run, and nothing is lost on Ctrl-C or a crash. A failed write is kept
/// (and the file no longer written): the run goes on, its summary says the file is incomplete.
///
/// The line buffer is the harness's, not the measured client's: it lives outside the counted
/// heap ([`heapmeter::uncounted`]: allocated, grown and freed only inside such scopes), so a run
/// with `--jsonl` (as every `compare` child) reads the same live bytes as one without.
pub struct Jsonl {
    file: Option<File>,
    lines: Vec<u8>,
    error: Option<String>,
}

impl Jsonl {
    pub fn new(file: Option<File>) -> Jsonl {
        let mut lines = Vec::new();
        if file.is_some() {
            // Room for a full batch of request samples (~200 bytes each): no growth in steady
            // state. Reserved inside the scope: the block is then uncounted for its whole life.
            heapmeter::uncounted(|| lines.reserve_exact(256 * 1024));
        }
        Jsonl {
            lines,
            file,
            error: None,
        }
    }

    /// Adds one line, written at the next [`Jsonl::flush`] (nothing without a file).
    pub fn push(&mut self, line: &impl Serialize) {
        if self.file.is_some() {
            let lines = &mut self.lines;
            // Any growth of the buffer stays uncounted, as its allocation was.
            heapmeter::uncounted(|| {
                if serde_json::to_writer(&mut *lines, line).is_ok() {
                    lines.push(b'\n');
                }
            });
        }
    }

    /// Writes the lines pushed since the last flush in one `write`.
    pub fn flush(&mut self) {
        if let Some(file) = &mut self.file {
            if !self.lines.is_empty() {
                if let Err(e) = file.write_all(&self.lines) {
                    self.error = Some(e.to_string());
                    self.file = None;
                }
            }
        }
        self.lines.clear();
    }

    /// Why a write failed, if one did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Why a write failed, if one did, once the file is done with.
    pub fn into_error(mut self) -> Option<String> {
        self.error.take()
    }
}

impl Drop for Jsonl {
    fn drop(&mut self) {
        let lines = std::mem::take(&mut self.lines);
        // Freed where it was allocated: outside the counted heap.
        heapmeter::uncounted(|| drop(lines));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Sample, SampleKind};

    #[test]
    fn jsonl_lines_reach_the_file_at_each_flush_and_a_failed_write_is_reported() {
        let path = std::env::temp_dir().join(format!("leakprobe-jsonl-{}", std::process::id()));
        let file = File::create(&path).expect("temp file");
        let mut j = Jsonl::new(Some(file));
        let mut s = Sample {
            t_ms: 1,
            kind: SampleKind::Request,
            round: 0,
            requests: 0,
            ok: 0,
            errors: 0,
            live: 1,
            peak: 1,
            allocs: 0,
            allocated_bytes: 0,
            rss: None,
            connections: 1,
        };
        for requests in [10, 20] {
            s.requests = requests;
            j.push(&s);
        }
        let read = || std::fs::read_to_string(&path).expect("read back");
        assert_eq!(read(), "", "nothing written before the flush");
        j.flush();
        let lines: Vec<Sample> = read()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON sample per line"))
            .collect();
        assert_eq!(
            lines.iter().map(|s| s.requests).collect::<Vec<_>>(),
            [10, 20]
        );
        j.flush();
        assert_eq!(read().lines().count(), 2, "an empty flush writes nothing");
        let _ = std::fs::remove_file(&path);

        // A file that refuses writes (opened read-only): the error is kept, the run goes on.
        let mut j = Jsonl::new(Some(File::open("/dev/null").expect("/dev/null")));
        j.push(&s);
        j.flush();
        assert!(j.error.is_some(), "the write error is reported");
        assert!(j.file.is_none(), "and the file is no longer written");
    }
}
