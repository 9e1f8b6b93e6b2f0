//! Turning a site's instruction pointers into frames (function, file, line) at report time,
//! outside the allocator, with a cache; and trimming the allocator's frames from the top and the
//! runtime's and the caller's harness frames from the bottom. Resolving loads debug info into the
//! ordinary heap: call it after the last measurement that matters.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use super::StackId;
use super::arena::MAX_DEPTH;
use super::profile;

/// One symbolised frame (an inlined call is a frame of its own, innermost first).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Frame {
    /// Instruction pointer (a return address, except in the innermost frame).
    pub ip: usize,
    /// Demangled function path without the hash (`???` when unknown).
    pub function: String,
    /// Source file, as recorded in the debug info.
    pub file: Option<String>,
    /// Line in `file`.
    pub line: Option<u32>,
    /// Column in `file`.
    pub column: Option<u32>,
}

impl Frame {
    /// `file:line`, or `?` parts where unknown.
    pub fn location(&self) -> String {
        format!(
            "{}:{}",
            self.file.as_deref().unwrap_or("?"),
            self.line.map_or_else(|| "?".to_owned(), |l| l.to_string())
        )
    }

    /// Whether the frame is in Rust's standard library (`std`, `core`, `alloc`), judged by the
    /// source path (`/rustc/<hash>/library/...`) or, lacking one, by the function path.
    pub fn is_std(&self) -> bool {
        match &self.file {
            Some(f) => f.starts_with("/rustc/") || f.contains("/library/std/"),
            None => ["std", "core", "alloc"]
                .iter()
                .any(|p| path_matches(&self.function, p)),
        }
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.function, self.location())
    }
}

/// Which frames to drop around the interesting part of a stack.
///
/// From the top, everything up to and including the last frame of the allocator's own machinery
/// ([`ALLOCATOR_FRAMES`]) is always dropped. From the bottom, frames are dropped while they are
/// runtime frames ([`RUNTIME_FRAMES`]) or match one of `harness`, keeping at least one frame.
/// A pattern matches a function path that starts with it at a path boundary, ignoring a leading
/// `<` (so `leak_client::run` matches `leak_client::run::worker::{{closure}}` and
/// `<leak_client::run::Worker as Trait>::f`, not `leak_client::runner`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Trim<'a> {
    /// Function-path patterns of the caller's harness (e.g. a worker loop) below the code of
    /// interest.
    pub harness: &'a [&'a str],
}

/// The allocator's frames at the top of every captured stack.
pub const ALLOCATOR_FRAMES: &[&str] = &[
    "backtrace",
    "heapmeter",
    "cap",
    "__rustc",
    "__rust_alloc",
    "__rust_alloc_zeroed",
    "__rust_realloc",
    "__rg_alloc",
    "__rg_alloc_zeroed",
    "__rg_realloc",
    "alloc::alloc",
    "std::alloc",
    "core::alloc",
    "_Unwind_Backtrace",
];

/// Frames below `main` or a thread's entry point.
pub const RUNTIME_FRAMES: &[&str] = &[
    "???",
    "_start",
    "__libc_start_main",
    "__libc_start_call_main",
    "main",
    "start_thread",
    "clone",
    "clone3",
    "__clone",
    "std::rt",
    "std::sys",
    "std::sys_common",
    "std::thread",
    "std::panicking",
    "std::panic",
    "core::ops::function",
    "alloc::boxed",
];

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `function` starts with `pattern` at a path boundary (a leading `<` ignored).
pub fn path_matches(function: &str, pattern: &str) -> bool {
    let f = function.trim_start_matches('<');
    f.strip_prefix(pattern)
        .is_some_and(|rest| !rest.starts_with(is_ident))
}

/// Applies `trim` to a full stack (innermost frame first).
pub fn trim_frames(mut frames: Vec<Frame>, trim: &Trim<'_>) -> Vec<Frame> {
    let is_alloc = |f: &Frame| ALLOCATOR_FRAMES.iter().any(|p| path_matches(&f.function, p));
    if let Some(last) = frames.iter().rposition(is_alloc) {
        frames.drain(..=last);
    }
    while frames.len() > 1 {
        let Some(bottom) = frames.last() else { break };
        let f = bottom.function.as_str();
        let drop = RUNTIME_FRAMES
            .iter()
            .chain(trim.harness)
            .any(|p| path_matches(f, p));
        if !drop {
            break;
        }
        frames.pop();
    }
    frames
}

/// The first frame outside the standard library: the line to show for a site.
pub fn headline(frames: &[Frame]) -> Option<&Frame> {
    frames.iter().find(|f| !f.is_std()).or(frames.first())
}

/// The raw instruction pointers of a site (innermost first, allocator frames included).
pub fn stack(id: StackId) -> Vec<usize> {
    let mut buf = [0usize; MAX_DEPTH];
    let n = profile::lock().frames_of(id, &mut buf);
    buf[..n].to_vec()
}

static CACHE: Mutex<Option<HashMap<usize, Vec<Frame>>>> = Mutex::new(None);

fn resolve_ip(ip: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
        out.push(Frame {
            ip,
            function: sym
                .name()
                .map_or_else(|| "???".to_owned(), |n| format!("{n:#}")),
            file: sym.filename().map(|p| p.display().to_string()),
            line: sym.lineno(),
            column: sym.colno(),
        });
    });
    if out.is_empty() {
        out.push(Frame {
            ip,
            function: "???".to_owned(),
            file: None,
            line: None,
            column: None,
        });
    }
    out
}

/// All frames of a site, symbolised (cached per instruction pointer), untrimmed.
pub fn symbolize_all(id: StackId) -> Vec<Frame> {
    let ips = stack(id);
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let cache = cache.get_or_insert_with(HashMap::new);
    let mut frames = Vec::new();
    for ip in ips {
        let fs = cache.entry(ip).or_insert_with(|| resolve_ip(ip));
        frames.extend(fs.iter().cloned());
    }
    frames
}

/// The frames of a site, symbolised and trimmed: what to show a reader.
pub fn symbolize(id: StackId, trim: &Trim<'_>) -> Vec<Frame> {
    trim_frames(symbolize_all(id), trim)
}

/// `path` shortened to its last three components, as dhat-rs writes file names.
pub fn short_path(path: &str) -> String {
    let p = Path::new(path);
    let n = p.components().count();
    if n <= 3 {
        return path.to_owned();
    }
    let mut c = p.components();
    c.nth(n - 4);
    c.as_path().display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(function: &str) -> Frame {
        Frame {
            ip: 0,
            function: function.to_owned(),
            file: None,
            line: None,
            column: None,
        }
    }

    #[test]
    fn patterns_match_at_path_boundaries() {
        let cases = [
            ("leak_client::run::worker::{{closure}}", "leak_client::run", true),
            ("<leak_client::run::W as x::V>::get", "leak_client::run", true),
            ("leak_client::runner::go", "leak_client::run", false),
            ("main", "main", true),
            ("main_loop", "main", false),
            ("__rustc::__rust_alloc", "__rustc", true),
            ("__rust_alloc_zeroed", "__rust_alloc", false),
            (
                "<heapmeter::Counting<A> as core::alloc::global::GlobalAlloc>::alloc",
                "heapmeter",
                true,
            ),
        ];
        for (function, pattern, want) in cases {
            assert_eq!(path_matches(function, pattern), want, "{function} ~ {pattern}");
        }
    }

    #[test]
    fn trimming_drops_allocator_tops_and_harness_bottoms() {
        let stack = vec![
            f("backtrace::backtrace::trace_unsynchronized"),
            f("heapmeter::sites::sampler::sample_slow"),
            f("<cap::Cap<H> as core::alloc::global::GlobalAlloc>::alloc"),
            f("__rustc::__rust_alloc"),
            f("alloc::alloc::alloc"),
            f("alloc::raw_vec::RawVec<T>::grow_one"),
            f("app::plant"),
            f("leak_client::run::worker"),
            f("std::sys::backtrace::__rust_begin_short_backtrace"),
            f("start_thread"),
            f("clone3"),
        ];
        let names = |v: Vec<Frame>| v.into_iter().map(|f| f.function).collect::<Vec<_>>();
        let no_harness = trim_frames(stack.clone(), &Trim::default());
        assert_eq!(
            names(no_harness),
            [
                "alloc::raw_vec::RawVec<T>::grow_one",
                "app::plant",
                "leak_client::run::worker"
            ]
        );
        let trimmed = trim_frames(
            stack.clone(),
            &Trim {
                harness: &["leak_client::run"],
            },
        );
        assert_eq!(
            names(trimmed.clone()),
            ["alloc::raw_vec::RawVec<T>::grow_one", "app::plant"]
        );
        let all_harness = trim_frames(
            stack,
            &Trim {
                harness: &["leak_client::run", "app", "alloc"],
            },
        );
        assert_eq!(all_harness.len(), 1, "at least one frame stays");
    }

    #[test]
    fn headline_skips_std_frames_and_paths_shorten_like_dhat() {
        let mut std_frame = f("alloc::raw_vec::RawVec<T>::grow_one");
        std_frame.file = Some("/rustc/abc/library/alloc/src/raw_vec.rs".to_owned());
        let mut user = f("app::plant");
        user.file = Some("/src/app/src/lib.rs".to_owned());
        user.line = Some(12);
        let frames = [std_frame, user.clone()];
        assert_eq!(headline(&frames), Some(&user));
        assert_eq!(user.location(), "/src/app/src/lib.rs:12");
        assert_eq!(short_path("/aa/bb/cc/dd.rs"), "bb/cc/dd.rs");
        assert_eq!(short_path("cc/dd.rs"), "cc/dd.rs");
        assert!(f("core::ptr::drop_in_place").is_std());
        assert!(!f("ureq::pool::Pool::get").is_std());
    }
}
