//! The runtime probes: the preload files shipped inside leakprobe, the environment that loads
//! them into a command, and the reader that turns their output file into typed readings.
//! It starts no process and never blocks: the probes write a file, this module tails it.
//!
//! # Protocol
//! The probe (`client/probes/node/leakprobe-probe.cjs`, `client/probes/python/sitecustomize.py`)
//! runs in every process of the watched tree that starts that runtime. At load, then on its own
//! timer (unref'd in Node, a daemon thread in Python), and once at exit, it runs a garbage
//! collection (full, but for Python without tracemalloc: see below; `gc` says which) and appends
//! one JSON line to the file named by [`OUT_ENV`] (opened `O_APPEND`, one `write(2)` per line, so
//! lines of concurrent processes never interleave):
//!
//! ```text
//! {"rt":"node","ev":"tick","pid":4242,"tid":0,"seq":7,"t":5032946818203,"gc":true,
//!  "how":"measure","gc_us":6190,"cpu_us":310,"cost_us":2063,"heap_used_before_gc":9943336,
//!  "rss":44978176,"heap_used":3943336,"heap_total":6750208,"external":2427637,
//!  "array_buffers":10479,"js_estimate":3712840}
//! {"rt":"python","ev":"tick","pid":4243,"tid":0,"seq":3,"t":5032231345162,"gc":true,"gc_us":2729,
//!  "blocks":36868,"rss":21323776,"anon":10649600,"traced":1048576}
//! ```
//!
//! The timer: every [`INTERVAL_ENV`] milliseconds when it is a number (`--probe-every`); when it
//! is `auto` (the default), each process paces itself by what its readings cost: the next one
//! comes 20 × the mean cost of its last 5 readings later (at least 20 ms; `cost_us` in the line),
//! so readings take at most 5% of its time. A Python reading's cost, and a forced Node one's, is
//! its CPU time (not wall time: a loaded machine's preemption is not the probe's). Node's timer
//! readings are V8's own memory measurement (`vm.measureMemory`, an ordinary full collection
//! marked beside the program, `"how":"measure"`), not a forced `gc()`, which also throws away
//! optimized code the program then pays to rebuild (a CPU-bound fetch loop ran at 0.53× under
//! `gc()` readings, 1.05× under measurements); a measurement's cost is a third of its wall time
//! from the call to its result (measured: back to back they cost that loop 1.3×, one per 50 ms
//! nothing). The mean, not the median: a collection slowed now and then (a loaded machine)
//! must count in full, or the share creeps past 5% (6.3% measured with the median). A Node heap
//! that grows is read sooner: when its heap (as judged, below) plus `external`, at the rate it
//! grew over the last 4 readings, will have grown 1% since the last one (~70 readings per
//! doubling; their cost a geometric sum, ~100 × the last reading's, however long the run). On the budget alone a
//! growing heap slowed its own readings down (got 12.5.2: 12 readings in 3,000 requests,
//! `inconclusive`); with the rule the early stop settles it at ~2,000 requests.
//!
//! A measured reading's heap is the measurement's own count, `js_estimate` (V8's
//! `jsMemoryEstimate`: the objects its marking found live, attributed to a JavaScript context,
//! with their ArrayBuffers' contents), less `array_buffers` (which `external` holds); not
//! `heap_used` read when the result came, which also holds what the program allocated while the
//! marking ran: on got 12.5.2 (24 KB/request) the readings' scatter around the line was 308–385
//! KB with `heap_used`, 68–117 KB with `js_estimate`, and the early stop settled at 2,000
//! requests instead of 2,830–4,007. V8's unattributed part (compiled code, internal tables:
//! 0.2–1.2 MB, nearly constant) is in `heap_used` only, so a forced reading (load, exit) reads
//! that much higher than a measured one: what is "released at exit" is understated by it, never
//! overstated.
//!
//! `t` is `CLOCK_MONOTONIC` in nanoseconds (Node's `process.hrtime.bigint()`, Python's
//! `time.monotonic_ns()` and [`crate::watch::clock::monotonic_ns`] read the same clock), so the
//! watcher pairs a reading with the server's count of requests served at that instant
//! ([`crate::watch::pair::ServedLog`]). For a forced collection it is taken just before it: while
//! the collection runs the program runs no JavaScript, so no request completes between `t` and
//! the heap reading. For a Node measurement it is taken when the result came (paired with the
//! call's time instead, got 12.5.2's readings scattered 103–193 KB around the line, against
//! 46–117 KB).
//!
//! Why the probe's own timer and not a signal from the watcher: a signal handler for `SIGUSR2`
//! would change what the signal does to the program (nodemon restarts its child with it; a
//! program without a handler would no longer die of it), must never reach a process without the
//! probe (for `sh` it is fatal), and the reading would still happen when the event loop next
//! turns, not when the signal was sent, so it would need the timestamp anyway. With timestamps
//! the pairing is as exact as the watcher's record of the served count (one entry per
//! few milliseconds) and nothing crosses from the watcher into the program.
//!
//! # What a reading costs the program (measured, Node 20.20, Python 3.11)
//! - Node: one full collection per reading, median 7–12 ms for a plain `fetch` loop (7 MB heap;
//!   30–75 ms on a machine shared with other work) and 20–55 ms (up to 190 ms) inside a Next.js
//!   server (140 MB heap). A fixed 250 ms interval slowed a `fetch` loop to 0.66–0.68× of its
//!   speed; the adaptive interval keeps the collections' own CPU near the 5% budget, but each
//!   forced collection also deoptimizes code that embeds objects it frees (~20 deoptimizations,
//!   reason `weak objects`, per reading of a fetch loop), so a CPU-bound loop still ran at
//!   ~0.5× (`just bench-probe`, README). Its readings
//!   are the answer: a planted 256 B per request read 272–305 B per request (V8 adds ~20 B
//!   warming up in the first 10,000 requests), and next@14.2.0-canary.62's fetch route +1.5 KB
//!   per request while RSS could not tell it from the fixed 14.2.35. `external` (Buffers,
//!   ArrayBuffers) is judged beside `heap_used` as a series of its own
//!   ([`crate::watch::judge::judge_split`]).
//! - Python: by default the bytes are `anon`, the process's anonymous resident memory
//!   (`/proc/self/statm`: resident − shared, read in ~5 µs) after collecting the young
//!   generations (`gc.collect(1)`, well under a millisecond; a full `gc.collect()` costs 3–12 ms
//!   and would not lower it: freed memory stays resident), so readings come every 20 ms and a
//!   one-second run gets ~50: everything the process keeps — Python's objects, malloc'd buffers,
//!   a C extension's own memory — at page granularity, with what the allocators hold of freed
//!   memory. On `examples/python/loop.py` it
//!   read 1,131 B per request for a planted 1 KiB `bytearray` (the buffer's malloc chunk, the
//!   object and its list slot are ~1,104 B), 8,289 for 8 KiB, 1 clean. Also measured and not
//!   chosen: glibc's `mallinfo2()` (exact in-use bytes at malloc granularity, 1,129 B per request)
//!   needs `PYTHONMALLOC=malloc` to see Python's small objects, which slowed an asyncio + JSON
//!   loop by 25% and small-object code 2×. `blocks` counts objects (+2.0 per request for the
//!   1 KiB plant), not bytes. tracemalloc (`--probe-tracemalloc`, readings after a full
//!   `gc.collect()`) gives exact bytes of Python's own allocations (8,257 B per request for an
//!   8 KiB plant) and their sites, but not a C extension's malloc, and cost the loop 2.7–4.5× its
//!   CPU time per request (`just bench-probe`).
//!
//! # Allocation sites (`--sites`, [`SITES_ENV`])
//! Kept in functions of their own in each probe (`leakprobeSites`, `_leakprobe_sites`). Node:
//! an in-process `node:inspector` session (no port; `session.post` is synchronous there, and the
//! session holds no handle) runs `HeapProfiler.startSampling` at [`SITES_ENV`] bytes per sample;
//! after each reading's collection `getSamplingProfile` (live samples only) is appended to
//! `sites-<pid>-<tid>.jsonl` beside the probe's file: each stack once as its parent plus one frame
//! (`{"ev":"stack","id","parent","frame":[function,url,line,column,scriptId]}`), then
//! `{"ev":"sites","seq","t","rate","s":[stack,bytes,ordinal,…]}` under the reading's `seq`.
//! Python: tracemalloc with 16 frames; at most every 20 × its own mean CPU cost (apart from the
//! readings' pacing, the GIL held meanwhile), the [`SITES_ENV`] largest tracebacks
//! (`{"ev":"stack","id","frames":[[file,line],…]}` once, innermost first) with their bytes and
//! blocks, the rest summed, and the smallest listed size as `cut`. The watcher reads these files
//! after the watch (`watch::sites`).
//!
//! A file rather than a pipe: the program never blocks on, or dies of (`EPIPE`), a watcher that
//! went away; the file outlives both for a post-mortem; and every process of the tree appends to
//! it without knowing about the others.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::private_dir::write_new;
pub use crate::runtime::Runtime;

/// Names the file the probes append to (an absolute path).
pub const OUT_ENV: &str = "LEAKPROBE_PROBE_OUT";
/// Milliseconds between two readings of each probed process (at least 10), or `auto`: paced by
/// the readings' own cost (see the module docs).
pub const INTERVAL_ENV: &str = "LEAKPROBE_PROBE_INTERVAL_MS";
/// `1` turns on tracemalloc in the Python probe.
pub const TRACEMALLOC_ENV: &str = "LEAKPROBE_PROBE_TRACEMALLOC";
/// `--sites`: Node's sampling interval in bytes (V8's sampling heap profiler), Python's number
/// of tracebacks written per reading (tracemalloc, 16 frames).
pub const SITES_ENV: &str = "LEAKPROBE_PROBE_SITES";

const NODE_PROBE: &str = include_str!("../../probes/node/leakprobe-probe.cjs");
const PYTHON_PROBE: &str = include_str!("../../probes/python/sitecustomize.py");
const NODE_FILE: &str = "leakprobe-probe.cjs";
const PYTHON_FILE: &str = "sitecustomize.py";
/// The file the probes write, inside the install folder.
const OUT_FILE: &str = "probe.jsonl";

/// How often the probes read, and with which extras.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeSettings {
    /// Time between two readings of one process (each costs one full collection); `None`: each
    /// process paces itself so that its readings take at most 5% of its time.
    pub interval: Option<Duration>,
    /// Python only: run tracemalloc for exact traced bytes (slows allocation-heavy code).
    pub tracemalloc: bool,
    /// `--sites`: Node's mean bytes between two samples, Python's tracebacks per reading (which
    /// implies tracemalloc); `None`: off.
    pub sites: Option<u64>,
}

/// A probe written to a folder, ready to be loaded into a command.
#[derive(Debug, Clone)]
pub struct Probe {
    runtime: Runtime,
    script: PathBuf,
    out: PathBuf,
}

impl Probe {
    /// Writes `runtime`'s probe, and its empty output file, into `dir`: an existing folder of
    /// this run's own (a [`crate::private_dir::PrivateDir`]), as the command runs the script.
    /// Both files are new, mode 0600, never written through a file or symlink already there.
    pub fn install(runtime: Runtime, dir: &Path) -> io::Result<Probe> {
        // Absolute: the command may change directory.
        let dir = dir.canonicalize()?;
        let (file, text) = match runtime {
            Runtime::Node => (NODE_FILE, NODE_PROBE),
            Runtime::Python => (PYTHON_FILE, PYTHON_PROBE),
        };
        let script = dir.join(file);
        write_new(&script, text.as_bytes())?;
        // Made here, 0600, so the probes only ever append to it.
        let out = dir.join(OUT_FILE);
        write_new(&out, b"")?;
        Ok(Probe {
            runtime,
            script,
            out,
        })
    }

    /// The runtime this probe is for.
    pub fn runtime(&self) -> Runtime {
        self.runtime
    }

    /// The file the probed processes append to.
    pub fn out_path(&self) -> &Path {
        &self.out
    }

    /// The folder the probe is installed in: `--sites` files are written here too, and frames
    /// of files under it are the probe's own.
    pub fn dir(&self) -> &Path {
        self.out.parent().unwrap_or(&self.out)
    }

    /// The variables to set on the command: the output file, the interval, and the runtime's
    /// loader variable with the probe added to its inherited value (`inherited` is the watcher's
    /// own value of `NODE_OPTIONS` / `PYTHONPATH`, passed in so that nothing here reads the
    /// environment).
    pub fn env(
        &self,
        settings: ProbeSettings,
        inherited: Option<OsString>,
    ) -> Vec<(&'static str, OsString)> {
        let interval = settings.interval.map_or_else(
            || "auto".to_string(),
            |d| d.as_millis().clamp(10, u128::from(u32::MAX)).to_string(),
        );
        let mut vars = vec![
            (OUT_ENV, self.out.clone().into_os_string()),
            (INTERVAL_ENV, OsString::from(interval)),
        ];
        if let Some(n) = settings.sites {
            vars.push((SITES_ENV, OsString::from(n.to_string())));
        }
        match self.runtime {
            Runtime::Node => vars.push(("NODE_OPTIONS", self.node_options(inherited))),
            Runtime::Python => {
                let mut path = self
                    .script
                    .parent()
                    .map_or_else(OsString::new, |d| d.as_os_str().to_owned());
                if let Some(rest) = inherited.filter(|r| !r.is_empty()) {
                    path.push(":");
                    path.push(rest);
                }
                vars.push(("PYTHONPATH", path));
                if settings.tracemalloc {
                    vars.push((TRACEMALLOC_ENV, OsString::from("1")));
                }
            }
        }
        vars
    }

    /// `NODE_OPTIONS` with `--expose-gc --require "<probe>"` appended: after the inherited
    /// options, so the program's own preloads run first and the probe sees their heap too.
    fn node_options(&self, inherited: Option<OsString>) -> OsString {
        let mut options = inherited.unwrap_or_default();
        if !options.is_empty() {
            options.push(" ");
        }
        options.push("--expose-gc --require ");
        options.push(node_quote(&self.script.to_string_lossy()));
        options
    }
}

/// A path as one `NODE_OPTIONS` word: double-quoted, `\` and `"` escaped (Node's own rules).
fn node_quote(path: &str) -> String {
    let mut quoted = String::with_capacity(path.len() + 2);
    quoted.push('"');
    for c in path.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// When a probe line was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// At load, before the program ran: the process announces itself.
    Start,
    /// The probe's timer.
    Tick,
    /// The process is exiting (its last reading).
    Exit,
}

/// What a Node process reported: `process.memoryUsage()` after a full collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeHeap {
    /// Resident set size of the process.
    pub rss: u64,
    /// Bytes of V8's heap in use when read (`process.memoryUsage().heapUsed`): after a forced
    /// collection, its live objects; after a measurement, also what the program allocated
    /// while it marked.
    pub heap_used: u64,
    /// A measurement's own count of the live objects it could attribute to a JavaScript context
    /// (`vm.measureMemory`'s `jsMemoryEstimate`; `None` for a forced reading): the program's
    /// objects and their ArrayBuffers' contents (which `array_buffers` counts too), without
    /// what was allocated while it marked (never visited, so not counted) and without V8's
    /// unattributed part (compiled code, internal tables).
    pub js_estimate: Option<u64>,
    /// V8 heap used just before the collection: live objects plus garbage, what the program
    /// would show without the probe (the GC sawtooth).
    pub heap_used_before_gc: u64,
    /// Bytes V8 reserved for its heap (grows in steps, rarely shrinks).
    pub heap_total: u64,
    /// Bytes of C++ objects bound to JavaScript objects (Buffers, ArrayBuffers, external strings).
    pub external: u64,
    /// The part of `external` that is ArrayBuffer and Buffer contents.
    pub array_buffers: u64,
}

/// What a Python process reported after `gc.collect()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PythonHeap {
    /// Blocks alive in Python's small-object allocator (`sys.getallocatedblocks()`): a count of
    /// objects, not bytes; large buffers (over 512 bytes) are outside it.
    pub blocks: u64,
    /// Resident set size of the process (`None` where `/proc/self/statm` could not be read).
    pub rss: Option<u64>,
    /// Its anonymous part (resident − shared: heap, arenas, a C extension's memory; no mapped
    /// files): the bytes judged without tracemalloc.
    pub anon: Option<u64>,
    /// Bytes traced by tracemalloc, when it runs.
    pub traced: Option<u64>,
}

/// The runtime's own figures in one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heap {
    Node(NodeHeap),
    Python(PythonHeap),
}

/// One line of a probe, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub pid: u32,
    /// Worker thread id (Node `worker_threads.threadId`; 0 for the main thread and for Python).
    pub tid: u32,
    /// Per-process sequence number, from 0 at load.
    pub seq: u64,
    /// `CLOCK_MONOTONIC` nanoseconds of the heap's state: just before a forced collection
    /// (nothing else runs until it is read), or when a Node measurement ended (its collection
    /// marks what the program allocates meanwhile).
    pub t_ns: u64,
    pub event: Event,
    /// Whether a full collection ran before the reading (false for Node without `gc` available,
    /// and for Python without tracemalloc, which collects only the young generations).
    pub gc: bool,
    /// How long the collection took, in microseconds: a forced one's time (the program waits),
    /// a Node measurement's from the call to its result (the program runs meanwhile).
    pub gc_us: u64,
    pub heap: Heap,
}

impl Reading {
    /// The bytes the verdict follows for this process: Node's measured `js_estimate` less
    /// `array_buffers` (judged in `external`), else (a forced reading) its post-collection
    /// `heap_used`; Python's traced bytes when tracemalloc runs, else its anonymous resident
    /// memory (`None` only where that could not be read: blocks are a count). Node's `external`
    /// is [`Reading::external_bytes`], judged as a series of its own: under `next dev` it swung
    /// by hundreds of MB between readings (the compiler's buffers) while the heap moved by
    /// the bytes per request being measured.
    pub fn live_bytes(&self) -> Option<u64> {
        match self.heap {
            Heap::Node(n) => Some(
                n.js_estimate
                    .map_or(n.heap_used, |e| e.saturating_sub(n.array_buffers)),
            ),
            Heap::Python(p) => p.traced.or(p.anon),
        }
    }

    /// Node's `external` after the collection (Buffers, ArrayBuffers, external strings: memory
    /// outside the V8 heap that JavaScript objects hold); `None` for Python, whose
    /// [`Reading::live_bytes`] already counts such memory (or, with tracemalloc, Python's own).
    pub fn external_bytes(&self) -> Option<u64> {
        match self.heap {
            Heap::Node(n) => Some(n.external),
            Heap::Python(_) => None,
        }
    }
}

/// The wire form of a line; converted into [`Reading`] after checking the fields agree.
#[derive(Deserialize)]
struct Line {
    rt: String,
    ev: Event,
    pid: u32,
    #[serde(default)]
    tid: u32,
    seq: u64,
    t: u64,
    #[serde(default)]
    gc: bool,
    #[serde(default)]
    gc_us: u64,
    rss: Option<u64>,
    heap_used: Option<u64>,
    heap_used_before_gc: Option<u64>,
    heap_total: Option<u64>,
    external: Option<u64>,
    array_buffers: Option<u64>,
    js_estimate: Option<u64>,
    blocks: Option<u64>,
    anon: Option<u64>,
    traced: Option<u64>,
}

/// Parses one probe line (without its newline); `None` if it is not one.
pub fn parse_line(line: &[u8]) -> Option<Reading> {
    let l: Line = serde_json::from_slice(line).ok()?;
    let heap = match l.rt.as_str() {
        "node" => Heap::Node(NodeHeap {
            rss: l.rss?,
            heap_used: l.heap_used?,
            heap_used_before_gc: l.heap_used_before_gc?,
            heap_total: l.heap_total?,
            external: l.external?,
            array_buffers: l.array_buffers?,
            js_estimate: l.js_estimate,
        }),
        "python" => Heap::Python(PythonHeap {
            blocks: l.blocks?,
            rss: l.rss,
            anon: l.anon,
            traced: l.traced,
        }),
        _ => return None,
    };
    Some(Reading {
        pid: l.pid,
        tid: l.tid,
        seq: l.seq,
        t_ns: l.t,
        event: l.ev,
        gc: l.gc,
        gc_us: l.gc_us,
        heap,
    })
}

/// Tails a file of lines another process appends to: each [`LineTail::poll`] hands over the
/// complete lines written since the last one. A last line still being written is kept for the
/// next poll; blank lines are skipped; a torn line longer than [`MAX_LINE`] is dropped.
#[derive(Debug)]
pub struct LineTail {
    path: PathBuf,
    file: Option<File>,
    /// Bytes read and not yet consumed (a torn last line), followed by room for the next read.
    buf: Vec<u8>,
}

/// A torn line longer than this is garbage (probe lines are ~250 bytes): it is dropped.
const MAX_LINE: usize = 64 * 1024;

impl LineTail {
    /// A tail of `path`, which need not exist yet (the probed program has not started).
    pub fn new(path: &Path) -> LineTail {
        LineTail {
            path: path.to_owned(),
            file: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Calls `line` with every complete line written since the last poll, and returns how many
    /// torn lines were dropped as too long. A file that does not exist yet has no lines.
    pub fn poll(&mut self, mut line: impl FnMut(&[u8])) -> io::Result<u64> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(0);
        };
        file.read_to_end(&mut self.buf)?;
        let mut consumed = 0;
        while let Some(nl) = self.buf[consumed..].iter().position(|&b| b == b'\n') {
            let l = &self.buf[consumed..consumed + nl];
            consumed += nl + 1;
            if !l.iter().all(u8::is_ascii_whitespace) {
                line(l);
            }
        }
        self.buf.drain(..consumed);
        if self.buf.len() > MAX_LINE {
            self.buf.clear();
            return Ok(1);
        }
        Ok(0)
    }
}

/// Tails a probe output file ([`LineTail`]): each [`ProbeReader::poll`] returns the readings
/// appended since the last one; a line that does not parse is counted
/// ([`ProbeReader::bad_lines`]) and skipped.
#[derive(Debug)]
pub struct ProbeReader {
    tail: LineTail,
    bad_lines: u64,
}

impl ProbeReader {
    /// A reader of `path`, which need not exist yet (the probed program has not started).
    pub fn new(path: &Path) -> ProbeReader {
        ProbeReader {
            tail: LineTail::new(path),
            bad_lines: 0,
        }
    }

    /// Lines that were not probe readings, so far.
    pub fn bad_lines(&self) -> u64 {
        self.bad_lines
    }

    /// Appends to `out` every complete line written since the last poll, and returns how many.
    /// A file that does not exist yet gives 0.
    pub fn poll(&mut self, out: &mut Vec<Reading>) -> io::Result<usize> {
        let before = out.len();
        let mut bad = 0;
        let dropped = self.tail.poll(|line| match parse_line(line) {
            Some(r) => out.push(r),
            None => bad += 1,
        })?;
        self.bad_lines += bad + dropped;
        Ok(out.len() - before)
    }
}

/// The latest reading of every probed process (and worker thread), summed. A process that
/// exited keeps its last reading until a new process announces itself — the same rule as
/// [`crate::watch::proctree`]'s, for the same reasons.
#[derive(Debug, Default)]
pub struct ProbeTotals {
    latest: Vec<Reading>,
}

impl ProbeTotals {
    /// Takes `r` as its process's latest reading (an older one, by `seq`, is ignored).
    pub fn update(&mut self, r: &Reading) {
        if r.event == Event::Start {
            self.latest.retain(|l| l.event != Event::Exit);
        }
        match self
            .latest
            .iter_mut()
            .find(|l| l.pid == r.pid && l.tid == r.tid)
        {
            Some(l) if r.seq >= l.seq || r.event == Event::Start => *l = *r,
            Some(_) => {}
            None => self.latest.push(*r),
        }
    }

    /// Processes (and threads) with a reading.
    pub fn processes(&self) -> usize {
        self.latest.len()
    }

    /// The latest readings, one per process and thread.
    pub fn latest(&self) -> &[Reading] {
        &self.latest
    }

    /// The sum of [`Reading::live_bytes`] over the latest readings; `None` if any lacks it or
    /// there is none.
    pub fn live_bytes(&self) -> Option<u64> {
        self.sum(Reading::live_bytes)
    }

    /// The sum of [`Reading::external_bytes`] over the latest readings; `None` if any lacks it
    /// (a Python process) or there is none.
    pub fn external_bytes(&self) -> Option<u64> {
        self.sum(Reading::external_bytes)
    }

    fn sum(&self, bytes: fn(&Reading) -> Option<u64>) -> Option<u64> {
        if self.latest.is_empty() {
            return None;
        }
        self.latest.iter().map(bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const NODE_LINE: &str = r#"{"rt":"node","ev":"tick","pid":26902,"tid":0,"seq":1,"t":5032946818203,"gc":true,"gc_us":16064,"heap_used_before_gc":5191600,"rss":43929600,"heap_used":3191600,"heap_total":5742592,"external":1427637,"array_buffers":10479}"#;
    const PYTHON_LINE: &str = r#"{"rt":"python","ev":"exit","pid":26779,"tid":0,"seq":8,"t":5032696327676,"gc":true,"gc_us":3100,"blocks":36827,"rss":21323776,"anon":10649600,"traced":12345}"#;

    #[test]
    fn node_and_python_lines_parse_into_typed_readings() {
        let node = parse_line(NODE_LINE.as_bytes()).expect("node line");
        assert_eq!((node.pid, node.seq, node.event), (26902, 1, Event::Tick));
        assert_eq!(node.live_bytes(), Some(3191600));
        assert_eq!(node.external_bytes(), Some(1427637));
        // A measured reading: its own count of the live objects, not heapUsed when it came.
        let measured = NODE_LINE
            .replace(r#""gc":true"#, r#""gc":true,"how":"measure""#)
            .replace(
                r#""array_buffers":10479"#,
                r#""array_buffers":10479,"js_estimate":2900000"#,
            );
        let measured = parse_line(measured.as_bytes()).expect("measured line");
        // Its ArrayBuffers' contents are judged in `external`, not twice.
        assert_eq!(measured.live_bytes(), Some(2900000 - 10479));
        assert_eq!(measured.external_bytes(), Some(1427637));
        let py = parse_line(PYTHON_LINE.as_bytes()).expect("python line");
        assert_eq!(
            py.heap,
            Heap::Python(PythonHeap {
                blocks: 36827,
                rss: Some(21323776),
                anon: Some(10649600),
                traced: Some(12345)
            })
        );
        assert_eq!(py.event, Event::Exit);
        assert_eq!(
            py.live_bytes(),
            Some(12345),
            "tracemalloc's bytes when it ran"
        );
        assert_eq!(py.external_bytes(), None);
        // Without tracemalloc: the anonymous resident memory; an older line with neither: none.
        let cheap = PYTHON_LINE.replace(r#","traced":12345"#, "");
        let cheap = parse_line(cheap.as_bytes()).expect("python line");
        assert_eq!(cheap.live_bytes(), Some(10649600));
        let old = r#"{"rt":"python","ev":"tick","pid":1,"seq":0,"t":1,"blocks":5}"#;
        assert_eq!(
            parse_line(old.as_bytes()).and_then(|r| r.live_bytes()),
            None
        );
    }

    #[test]
    fn lines_that_are_not_readings_are_rejected() {
        for bad in [
            "",
            "{}",
            "not json",
            r#"{"rt":"ruby","ev":"tick","pid":1,"seq":0,"t":1}"#,
            r#"{"rt":"node","ev":"tick","pid":1,"seq":0,"t":1,"heap_used":5}"#,
            r#"{"rt":"node","ev":"later","pid":1,"seq":0,"t":1,"rss":1,"heap_used":1,"heap_total":1,"external":1,"array_buffers":1}"#,
            r#"{"rt":"python","ev":"tick","pid":-1,"seq":0,"t":1,"blocks":1}"#,
        ] {
            assert_eq!(parse_line(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn every_prefix_of_a_line_is_either_rejected_or_left_for_later() {
        let dir =
            std::env::temp_dir().join(format!("leakprobe-probe-prefix-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("out.jsonl");
        let whole = format!("{NODE_LINE}\n{PYTHON_LINE}\n");
        for cut in 0..=whole.len() {
            fs::write(&path, &whole.as_bytes()[..cut]).expect("write");
            let mut reader = ProbeReader::new(&path);
            let mut out = Vec::new();
            reader.poll(&mut out).expect("poll");
            let complete = whole[..cut].matches('\n').count();
            assert_eq!(out.len(), complete, "cut at {cut}");
            assert_eq!(reader.bad_lines(), 0, "cut at {cut}");
            // The rest arrives: the torn line is completed, nothing is read twice.
            fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .and_then(|mut f| io::Write::write_all(&mut f, &whole.as_bytes()[cut..]))
                .expect("append");
            reader.poll(&mut out).expect("poll");
            assert_eq!(out.len(), 2, "cut at {cut}");
            assert_eq!(out[1].pid, 26779);
        }
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_missing_file_is_no_readings_yet() {
        let mut reader = ProbeReader::new(Path::new("/nonexistent/leakprobe/probe.jsonl"));
        let mut out = Vec::new();
        assert_eq!(reader.poll(&mut out).expect("poll"), 0);
    }

    #[test]
    fn node_options_keep_the_inherited_ones_and_quote_the_path() {
        let probe = Probe {
            runtime: Runtime::Node,
            script: PathBuf::from("/tmp/a \"b\"\\c/leakprobe-probe.cjs"),
            out: PathBuf::from("/tmp/out"),
        };
        let vars = probe.env(
            ProbeSettings::default(),
            Some(OsString::from("--max-old-space-size=4096")),
        );
        let node_options = vars
            .iter()
            .find(|(k, _)| *k == "NODE_OPTIONS")
            .expect("set");
        assert_eq!(
            node_options.1,
            OsString::from(
                r#"--max-old-space-size=4096 --expose-gc --require "/tmp/a \"b\"\\c/leakprobe-probe.cjs""#
            )
        );
        assert!(vars.contains(&(INTERVAL_ENV, OsString::from("auto"))));
        assert!(vars.contains(&(OUT_ENV, OsString::from("/tmp/out"))));
    }

    #[test]
    fn pythonpath_puts_the_probe_first() {
        let probe = Probe {
            runtime: Runtime::Python,
            script: PathBuf::from("/p/sitecustomize.py"),
            out: PathBuf::from("/p/out"),
        };
        let settings = ProbeSettings {
            interval: Some(Duration::from_millis(250)),
            tracemalloc: true,
            sites: Some(200),
        };
        let vars = probe.env(settings, Some(OsString::from("/app/lib")));
        assert!(vars.contains(&("PYTHONPATH", OsString::from("/p:/app/lib"))));
        assert!(vars.contains(&(TRACEMALLOC_ENV, OsString::from("1"))));
        assert!(vars.contains(&(INTERVAL_ENV, OsString::from("250"))));
        assert!(vars.contains(&(SITES_ENV, OsString::from("200"))));
        let alone = probe.env(ProbeSettings::default(), None);
        assert!(alone.contains(&("PYTHONPATH", OsString::from("/p"))));
    }

    fn reading(pid: u32, seq: u64, event: Event, heap_used: u64) -> Reading {
        Reading {
            pid,
            tid: 0,
            seq,
            t_ns: seq,
            event,
            gc: true,
            gc_us: 0,
            heap: Heap::Node(NodeHeap {
                rss: 0,
                heap_used,
                heap_used_before_gc: heap_used,
                heap_total: 0,
                external: 0,
                array_buffers: 0,
                js_estimate: None,
            }),
        }
    }

    #[test]
    fn totals_sum_the_latest_reading_of_each_process_and_hold_exited_ones_until_a_newcomer() {
        let mut totals = ProbeTotals::default();
        assert_eq!(totals.live_bytes(), None);
        totals.update(&reading(1, 0, Event::Start, 100));
        totals.update(&reading(2, 0, Event::Start, 10));
        totals.update(&reading(1, 2, Event::Tick, 300));
        totals.update(&reading(1, 1, Event::Tick, 200)); // late, older: ignored
        assert_eq!(totals.live_bytes(), Some(310));
        totals.update(&reading(2, 1, Event::Exit, 20));
        assert_eq!(totals.live_bytes(), Some(320), "exited process held");
        totals.update(&reading(3, 0, Event::Start, 5));
        assert_eq!(
            totals.live_bytes(),
            Some(305),
            "held reading dropped for a newcomer"
        );
        assert_eq!(totals.processes(), 2);
    }
}
