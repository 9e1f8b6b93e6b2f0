//! The memory of a whole process tree, read from `/proc`: every descendant of a root found again
//! each sample, RSS, PSS and anonymous memory summed. It never signals, waits on or starts a
//! process, and after the first samples it allocates nothing per sample (buffers are reused).
//!
//! # Which numbers, and why
//! Every sample reads each process's `/proc/PID/status`, whose memory lines are the kernel's
//! running counters (O(1) to read, world-readable):
//! - `rss` = `VmRSS`: resident pages, what `top` shows. Pages shared between processes of the
//!   tree (the runtime's binary and libraries) count once per process, so a tree's sum
//!   over-counts them — by a constant, which a slope does not see.
//! - `anon` = `RssAnon` + `VmSwap`: anonymous memory (heap, stacks, a runtime's
//!   garbage-collected spaces), resident or swapped. This is the figure closest to "heap" that
//!   `/proc` offers: file-backed pages (code, mapped files) come and go as they are touched and
//!   are never what a request loop retains, and a leak must not hide by being swapped out.
//!   Anonymous pages a `fork` shares copy-on-write count in each process that maps them.
//!
//! [`TreeSampler::sample_with_pss`] also reads `/proc/PID/smaps_rollup` for `pss` = `Pss`, each
//! shared page divided among the processes that map it, so the tree's sum counts every page once
//! (the honest footprint of `fork`ed workers). It is not read every sample because the kernel
//! builds it by walking every page table of the process under its memory-map lock, which stalls
//! the program's own `mmap`/`munmap` meanwhile: measured 2.6 ms for a 120 MB Node process (and
//! growing with its size), against 16 µs for `status`. `Pss_Anon` (the proportional `anon`) is
//! not used for the same reason, and so that `anon` means one thing in every sample.
//!
//! # Finding the tree
//! The children of a process are listed in `/proc/PID/task/TID/children` (one file per thread:
//! a child belongs to the thread that forked it), which needs `CONFIG_PROC_CHILDREN`. Where that
//! file does not exist, every `/proc/PID/stat` is read once per sample and the tree is built from
//! the parent pids. A process is identified by its pid *and* its start time, so a recycled pid is
//! a new process. Zombies (exited, not yet reaped) have no memory and count as exited.
//!
//! # Processes that exit mid-run
//! The tree is read again at every sample. When a process that was counted exits, its last
//! reading is **held** in the sum until a new process joins the tree, then dropped:
//! - held, so that the end of a worker's life does not read as memory the workload gave back
//!   (a loop run by `npm run x` ends with the `node` child exiting a moment before `npm` does,
//!   and a sum that fell by the child's whole footprint there would read as a release), and so
//!   that a read racing an exit does not dip the sum for a sample;
//! - dropped when a process joins, so that a tree which replaces its workers (a pool recycling
//!   a worker every N tasks, a shell loop starting one `curl` per request) holds at most one
//!   generation of exited processes and never grows by the memory of processes that are gone.
//!
//! [`TreeSample::live`] is the sum without held readings, for a caller that wants the other rule.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::mem::MaybeUninit;

use rustix::fs::{Mode, OFlags, RawDir};

use crate::watch::clock::monotonic_ns;

/// Where the watched tree starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// This process and all its descendants (`--pid PID`, or the command the watcher started).
    Process(u32),
    /// Every descendant of this process, not the process itself: the watcher's own children.
    /// With the watcher a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`), a grandchild whose
    /// parent exits is re-parented to the watcher and so stays in the tree.
    ChildrenOf(u32),
}

/// Memory of one process, or a sum over processes, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mem {
    /// Resident set size (`Rss` / `VmRSS`).
    pub rss: u64,
    /// Anonymous memory, resident or swapped (`RssAnon` + `VmSwap`).
    pub anon: u64,
    /// Proportional set size (`Pss`): only from [`TreeSampler::sample_with_pss`], and `None`
    /// when any process summed could not give it.
    pub pss: Option<u64>,
}

impl Mem {
    /// The sum of no process.
    pub const ZERO: Mem = Mem {
        rss: 0,
        anon: 0,
        pss: Some(0),
    };

    fn add(&mut self, other: &Mem) {
        self.rss += other.rss;
        self.anon += other.anon;
        self.pss = match (self.pss, other.pss) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
}

/// One reading of the whole tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeSample {
    /// `CLOCK_MONOTONIC` at the start of the reading, in nanoseconds (the probes' clock).
    pub t_ns: u64,
    /// Live processes plus the held readings of exited ones (the module docs' rule).
    pub mem: Mem,
    /// Live processes only.
    pub live: Mem,
    /// Live processes counted.
    pub procs: u32,
    /// Exited processes whose last reading is held in `mem`.
    pub held: u32,
    /// Processes seen for the first time in this sample.
    pub joined: u32,
    /// Processes counted before and gone (or zombies) in this sample.
    pub exited: u32,
    /// Whether the root is alive (for [`Root::ChildrenOf`]: whether it has any live descendant).
    pub root_alive: bool,
}

/// How children are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Children {
    /// `/proc/PID/task/TID/children`.
    ChildrenFiles,
    /// Every `/proc/PID/stat`, by parent pid.
    ProcScan,
}

#[derive(Debug, Clone, Copy)]
struct Member {
    pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22): with the pid, the identity.
    start: u64,
    mem: Mem,
    /// The sample that last found it alive.
    seen_in: u64,
    /// Exited, its last reading held.
    held: bool,
}

/// Samples the memory of a process tree. Keeps its buffers between samples; a sample costs a
/// few small `/proc` reads per process.
#[derive(Debug)]
pub struct TreeSampler {
    root: Root,
    children: Children,
    /// The path being read, rebuilt in place.
    path: String,
    /// File contents, reused.
    buf: Vec<u8>,
    /// Pids to visit this sample (breadth first).
    queue: Vec<u32>,
    /// `(pid, ppid)` of every process, filled per sample only in [`Children::ProcScan`] mode.
    table: Vec<(u32, u32)>,
    /// Thread ids of the process being visited.
    tids: Vec<u32>,
    /// `getdents` buffer for directory listings.
    dirbuf: Vec<MaybeUninit<u8>>,
    members: Vec<Member>,
    samples: u64,
}

/// Initial capacity of the reused buffers: a `status` is about 1.5 KiB, a `smaps_rollup` 1 KiB.
const BUF_CAPACITY: usize = 8 * 1024;
/// The `getdents` buffer: one call lists ~200 entries of `/proc`.
const DIRBUF_SIZE: usize = 8 * 1024;
/// Initial capacity for pids and members: trees of dozens of processes never reallocate.
const PIDS_CAPACITY: usize = 64;

impl TreeSampler {
    /// A sampler for the tree at `root`, finding children the best way this kernel offers.
    pub fn new(root: Root) -> TreeSampler {
        let children = if std::path::Path::new("/proc/thread-self/children").exists() {
            Children::ChildrenFiles
        } else {
            Children::ProcScan
        };
        TreeSampler::with_children(root, children)
    }

    /// A sampler that finds children by scanning every `/proc/PID/stat` (the fallback for
    /// kernels without `CONFIG_PROC_CHILDREN`), whatever this kernel offers: for tests.
    pub fn with_proc_scan(root: Root) -> TreeSampler {
        TreeSampler::with_children(root, Children::ProcScan)
    }

    fn with_children(root: Root, children: Children) -> TreeSampler {
        TreeSampler {
            root,
            children,
            path: String::with_capacity(64),
            buf: Vec::with_capacity(BUF_CAPACITY),
            queue: Vec::with_capacity(PIDS_CAPACITY),
            table: Vec::new(),
            tids: Vec::with_capacity(PIDS_CAPACITY),
            dirbuf: vec![MaybeUninit::uninit(); DIRBUF_SIZE],
            members: Vec::with_capacity(PIDS_CAPACITY),
            samples: 0,
        }
    }

    /// The root this sampler watches.
    pub fn root(&self) -> Root {
        self.root
    }

    /// Pids of the processes counted live in the last sample, in discovery order (root first).
    pub fn live_pids(&self) -> impl Iterator<Item = u32> + '_ {
        let last = self.samples;
        self.members
            .iter()
            .filter(move |m| m.seen_in == last && !m.held)
            .map(|m| m.pid)
    }

    /// Whether a live process of the tree runs Node: its executable is named `node` (Next.js
    /// renames its processes' `comm` to `next-server`), or its `comm` is `node`.
    pub fn runs_node(&self) -> bool {
        self.live_pids().any(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe"));
            exe.is_ok_and(|p| p.file_name().is_some_and(|n| n == "node"))
                || std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "node")
        })
    }

    /// Reads the tree now (`pss` is `None`). Never fails: a process that cannot be read is one
    /// that has exited (or was never there), and a root that is gone gives an empty sum with
    /// `root_alive` false.
    pub fn sample(&mut self) -> TreeSample {
        self.sample_inner(false)
    }

    /// Like [`TreeSampler::sample`], with `pss` from `smaps_rollup` (costly for big processes:
    /// see the module docs). A held process contributes the `pss` of its last reading that had one.
    pub fn sample_with_pss(&mut self) -> TreeSample {
        self.sample_inner(true)
    }

    fn sample_inner(&mut self, with_pss: bool) -> TreeSample {
        let t_ns = monotonic_ns();
        self.samples += 1;
        let now = self.samples;
        if self.children == Children::ProcScan {
            self.scan_table();
        }
        self.queue.clear();
        let mut root_alive = false;
        match self.root {
            Root::Process(pid) => self.queue.push(pid),
            Root::ChildrenOf(pid) => self.push_children(pid),
        }
        let mut joined = 0;
        let mut next = 0;
        while next < self.queue.len() {
            let pid = self.queue[next];
            next += 1;
            // A pid listed twice (a racy read of a children file) is visited once.
            if self.queue[..next - 1].contains(&pid) {
                continue;
            }
            let Some(stat) = self.read_stat(pid) else {
                continue;
            };
            if stat.zombie {
                continue;
            }
            self.push_children(pid);
            let Some(mut mem) = self.read_status(pid) else {
                continue;
            };
            mem.pss = if with_pss { self.read_pss(pid) } else { None };
            if self.root == Root::Process(pid) || matches!(self.root, Root::ChildrenOf(_)) {
                root_alive = true;
            }
            match self
                .members
                .iter_mut()
                .find(|m| m.pid == pid && m.start == stat.start)
            {
                Some(m) => {
                    let last_pss = m.mem.pss;
                    m.mem = mem;
                    if !with_pss {
                        m.mem.pss = last_pss;
                    }
                    m.seen_in = now;
                    m.held = false;
                }
                None => {
                    joined += 1;
                    self.members.push(Member {
                        pid,
                        start: stat.start,
                        mem,
                        seen_in: now,
                        held: false,
                    });
                }
            }
        }
        let exited = self
            .members
            .iter()
            .filter(|m| m.seen_in != now && !m.held)
            .count() as u32;
        if joined > 0 {
            self.members.retain(|m| m.seen_in == now);
        } else {
            for m in self.members.iter_mut().filter(|m| m.seen_in != now) {
                m.held = true;
            }
        }
        let mut live = Mem::ZERO;
        let mut all = Mem::ZERO;
        if !with_pss {
            live.pss = None;
            all.pss = None;
        }
        let (mut procs, mut held) = (0, 0);
        for m in &self.members {
            all.add(&m.mem);
            if m.held {
                held += 1;
            } else {
                live.add(&m.mem);
                procs += 1;
            }
        }
        TreeSample {
            t_ns,
            mem: all,
            live,
            procs,
            held,
            joined,
            exited,
            root_alive,
        }
    }

    /// Queues the children of `pid`.
    fn push_children(&mut self, pid: u32) {
        match self.children {
            Children::ProcScan => {
                let kids = self.table.iter().filter(|&&(_, ppid)| ppid == pid);
                self.queue.extend(kids.map(|&(child, _)| child));
            }
            Children::ChildrenFiles => {
                self.path.clear();
                let _ = write!(self.path, "/proc/{pid}/task");
                list_numbers(&self.path, &mut self.dirbuf, &mut self.tids);
                for &tid in &self.tids {
                    self.path.clear();
                    let _ = write!(self.path, "/proc/{pid}/task/{tid}/children");
                    if read_into(&self.path, &mut self.buf).is_err() {
                        continue;
                    }
                    let pids = self.buf.split(|b| b.is_ascii_whitespace());
                    self.queue.extend(pids.filter_map(parse_u32));
                }
            }
        }
    }

    /// Fills `table` with `(pid, ppid)` of every process.
    fn scan_table(&mut self) {
        self.table.clear();
        // `tids` is free between visits: it holds the pids here.
        list_numbers("/proc", &mut self.dirbuf, &mut self.tids);
        for i in 0..self.tids.len() {
            let pid = self.tids[i];
            if let Some(stat) = self.read_stat(pid) {
                self.table.push((pid, stat.ppid));
            }
        }
        headroom(&mut self.table);
    }

    fn read_stat(&mut self, pid: u32) -> Option<Stat> {
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}/stat");
        read_into(&self.path, &mut self.buf).ok()?;
        parse_stat(&self.buf)
    }

    fn read_status(&mut self, pid: u32) -> Option<Mem> {
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}/status");
        read_into(&self.path, &mut self.buf).ok()?;
        parse_status(&self.buf)
    }

    /// `None` where `smaps_rollup` is missing (Linux < 4.14), not permitted (another user's
    /// process) or empty (no memory).
    fn read_pss(&mut self, pid: u32) -> Option<u64> {
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}/smaps_rollup");
        read_into(&self.path, &mut self.buf).ok()?;
        parse_pss(&self.buf)
    }
}

/// Fills `out` with the entries of directory `path` that are numbers (pids, tids), listing it
/// with `getdents` into `dirbuf`; an unreadable directory gives none.
fn list_numbers(path: &str, dirbuf: &mut [MaybeUninit<u8>], out: &mut Vec<u32>) {
    out.clear();
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::open(path, flags, Mode::empty()) else {
        return;
    };
    let mut dir = RawDir::new(fd, dirbuf);
    while let Some(Ok(entry)) = dir.next() {
        if let Some(n) = parse_u32(entry.file_name().to_bytes()) {
            out.push(n);
        }
    }
    headroom(out);
}

/// Keeps room for twice what `v` holds now, so the lists of a busy machine (its pids come and
/// go by the hundred while a build runs beside the watch) grow only when they double, not each
/// time they pass a power of two: sampling stays allocation-free once warm.
fn headroom<T>(v: &mut Vec<T>) {
    let want = v.len().saturating_mul(2).max(64);
    if v.capacity() < want {
        v.reserve(want - v.len());
    }
}

/// Reads a whole (small, `/proc`) file into `buf`, reusing its capacity.
fn read_into(path: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    File::open(path)?.read_to_end(buf)?;
    Ok(())
}

fn parse_u32(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || bytes.len() > 10 {
        return None;
    }
    bytes.iter().try_fold(0u32, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u32::from(digit))
    })
}

fn parse_u64(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// What the tree walk needs of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    start: u64,
    zombie: bool,
}

/// Parses `/proc/PID/stat`: `pid (comm) state ppid … starttime …`. The command name may hold
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let mut fields = text[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let state = *fields.next()?.first()?;
    let ppid = parse_u32(fields.next()?)?;
    // Field 22 (starttime) is the 20th after the comm: state is the 1st, ppid the 2nd.
    let start = parse_u64(fields.nth(17)?)?;
    Some(Stat {
        ppid,
        start,
        zombie: matches!(state, b'Z' | b'X' | b'x'),
    })
}

/// The value in bytes of a `Key:   123 kB` line, if `line` is that key's.
fn kb_field(line: &[u8], key: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(key)?.strip_prefix(b":")?;
    let mut words = rest
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let kb = parse_u64(words.next()?)?;
    kb.checked_mul(1024)
}

/// The `Pss` line of `/proc/PID/smaps_rollup`.
fn parse_pss(text: &[u8]) -> Option<u64> {
    text.split(|&b| b == b'\n')
        .find_map(|line| kb_field(line, b"Pss"))
}

/// Parses `/proc/PID/status`; `None` without a `VmRSS` line (a zombie, a kernel thread).
fn parse_status(text: &[u8]) -> Option<Mem> {
    let (mut rss, mut anon, mut swap) = (None, 0, 0);
    for line in text.split(|&b| b == b'\n') {
        if let Some(v) = kb_field(line, b"VmRSS") {
            rss = Some(v);
        } else if let Some(v) = kb_field(line, b"RssAnon") {
            anon = v;
        } else if let Some(v) = kb_field(line, b"VmSwap") {
            swap = v;
        }
    }
    Some(Mem {
        rss: rss?,
        anon: anon + swap,
        pss: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = b"4242 (a (weird) name) S 17 4242 4242 0 -1 4194560 2355 52786 0 15 0 2 48 14 20 0 1 0 472078 5124096 1011 18446744073709551615\n";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 17,
                start: 472078,
                zombie: false
            })
        );
        let zombie = b"7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0\n";
        assert!(parse_stat(zombie).is_some_and(|s| s.zombie && s.start == 99));
    }

    #[test]
    fn malformed_stat_is_rejected_not_misread() {
        for bad in [
            &b""[..],
            b"12 (x",
            b"12 (x) S",
            b"12 (x) S notapid 1 1",
            b"12 (x) S 1 2 3",
        ] {
            assert_eq!(parse_stat(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    const ROLLUP: &[u8] =
        b"5637da6ea000-7ffc21e90000 ---p 00000000 00:00 0                          [rollup]
Rss:                4080 kB
Pss:                 835 kB
Pss_Dirty:           550 kB
Pss_Anon:            550 kB
Anonymous:           932 kB
";

    #[test]
    fn pss_is_the_pss_line_not_a_longer_key() {
        assert_eq!(parse_pss(ROLLUP), Some(835 * 1024));
        assert_eq!(parse_pss(b"Pss_Anon:  5 kB\n"), None);
        assert_eq!(parse_pss(b""), None, "no memory");
    }

    #[test]
    fn status_gives_rss_and_anonymous_plus_swap() {
        let status = b"Name:\tbash\nVmRSS:\t    4080 kB\nRssAnon:\t     932 kB\nRssFile:\t    3148 kB\nVmSwap:\t       8 kB\n";
        assert_eq!(
            parse_status(status),
            Some(Mem {
                rss: 4080 * 1024,
                anon: 940 * 1024,
                pss: None,
            })
        );
        assert_eq!(parse_status(b"Name:\tzombie\nState:\tZ\n"), None);
    }

    #[test]
    fn sums_lose_pss_when_any_part_lacks_it() {
        let mut sum = Mem::ZERO;
        sum.add(&Mem {
            rss: 10,
            anon: 3,
            pss: Some(5),
        });
        assert_eq!(sum.pss, Some(5));
        sum.add(&Mem {
            rss: 1,
            anon: 1,
            pss: None,
        });
        assert_eq!((sum.rss, sum.anon, sum.pss), (11, 4, None));
    }

    #[test]
    fn numbers_parse_strictly() {
        assert_eq!(parse_u32(b"123"), Some(123));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        for bad in [&b""[..], b"4294967296", b"12a", b"-1", b" 1", b"."] {
            assert_eq!(parse_u32(bad), None);
        }
    }

    #[test]
    fn this_process_is_its_own_tree() {
        let mut sampler = TreeSampler::new(Root::Process(std::process::id()));
        let s = sampler.sample();
        assert!(s.root_alive);
        assert_eq!((s.procs, s.held, s.joined, s.exited), (1, 0, 1, 0));
        assert!(s.mem.rss > 100 * 1024, "rss {}", s.mem.rss);
        assert!(s.mem.anon > 0);
        assert_eq!((s.mem, s.mem.pss), (s.live, None));
        let again = sampler.sample_with_pss();
        assert_eq!((again.procs, again.joined), (1, 0));
        assert!(again.mem.pss.is_some_and(|p| p > 0 && p <= again.mem.rss));
    }

    #[test]
    fn a_pid_that_does_not_exist_is_an_empty_dead_tree() {
        // Pids are at most 2^22 on Linux.
        let mut sampler = TreeSampler::new(Root::Process(u32::MAX - 1));
        let s = sampler.sample();
        assert!(!s.root_alive);
        assert_eq!((s.procs, s.mem.rss), (0, 0));
    }
}
