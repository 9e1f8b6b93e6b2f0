//! Turning a site's instruction pointers into frames (function, file, line) at report time,
//! outside the allocator, with a cache; and trimming the allocator's frames from the top and the
//! runtime's and the caller's harness frames from the bottom. Resolving loads debug info into the
//! ordinary heap: call it after the last measurement that matters.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use super::arena::MAX_DEPTH;
use super::types::StackId;
use super::{profile, sampler};

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

    /// Whether the frame is in Rust's standard library (`std`, `core`, `alloc` and the crates
    /// they vendor), judged by the source path (`/rustc/<hash>/library/...`, `/rust/deps/...`,
    /// or a `rust-src` checkout) or, lacking one, by the function path.
    pub fn is_std(&self) -> bool {
        match &self.file {
            Some(f) => STD_FILES.iter().any(|p| f.starts_with(p) || f.contains(p)),
            None => ["std", "core", "alloc"]
                .iter()
                .any(|p| path_matches(&self.function, p)),
        }
    }
}

const STD_FILES: &[&str] = &[
    "/rustc/",
    "/rust/deps/",
    "/library/std/",
    "/library/core/",
    "/library/alloc/",
];

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.function, self.location())
    }
}

/// Which frames to drop around the interesting part of a stack.
///
/// From the top, everything up to and including the last frame of the allocator's own machinery
/// is always dropped (functions matching [`ALLOCATOR_FRAMES`], or in files matching
/// [`ALLOCATOR_FILES`]). From the bottom, frames are dropped while they are runtime frames
/// (the standard library, frames without source information, [`RUNTIME_FRAMES`]) or match one of
/// `harness`, keeping at least one frame: so name the harness's own loop functions, not a module
/// that also holds code of interest.
///
/// A pattern matches a function path that starts with it at a path boundary, ignoring a leading
/// `<` (so `leak_client::run` matches `leak_client::run::worker::{{closure}}` and
/// `<leak_client::run::Worker as Trait>::f`, not `leak_client::runner`). Builds whose debug info
/// carries only line tables (`debug = "line-tables-only"`) name functions without their path
/// (`worker`, not `leak_client::run::worker`): such a bare name matches a pattern's last segment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trim<'a> {
    /// Function-path patterns of the caller's harness (e.g. a worker loop) below the code of
    /// interest.
    pub harness: &'a [&'a str],
}

/// The allocator's functions at the top of every captured stack.
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

/// Source files of the allocator's machinery (for builds whose frames carry bare names).
pub const ALLOCATOR_FILES: &[&str] = &[
    "/heapmeter/src/",
    "/backtrace-0.",
    "/cap-0.",
    "/library/alloc/src/alloc.rs",
    "/library/std/src/alloc.rs",
    "/library/core/src/alloc/",
];

/// C runtime frames below `main` or a thread's entry point (std's own are recognised by file).
pub const RUNTIME_FRAMES: &[&str] = &[
    "???",
    "_start",
    "__libc_start_main",
    "__libc_start_main_impl",
    "__libc_start_call_main",
    "main",
    "start_thread",
    "clone",
    "clone3",
    "__clone",
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

/// A bare function name (no module path, as line-tables-only debug info gives) equal to the
/// pattern's last segment.
fn bare_name_matches(function: &str, pattern: &str) -> bool {
    let base = function.split(['<', '{', ' ', '(']).next().unwrap_or("");
    !base.is_empty() && !base.contains("::") && pattern.rsplit("::").next() == Some(base)
}

fn is_allocator(f: &Frame) -> bool {
    ALLOCATOR_FRAMES
        .iter()
        .any(|p| path_matches(&f.function, p))
        || f.file
            .as_deref()
            .is_some_and(|file| ALLOCATOR_FILES.iter().any(|p| file.contains(p)))
}

fn is_bottom_noise(f: &Frame, trim: &Trim<'_>) -> bool {
    f.file.is_none()
        || f.is_std()
        || RUNTIME_FRAMES.iter().any(|p| path_matches(&f.function, p))
        || trim
            .harness
            .iter()
            .any(|p| path_matches(&f.function, p) || bare_name_matches(&f.function, p))
}

/// Applies `trim` to a full stack (innermost frame first).
pub fn trim_frames(mut frames: Vec<Frame>, trim: &Trim<'_>) -> Vec<Frame> {
    if let Some(last) = frames.iter().rposition(is_allocator) {
        frames.drain(..=last);
    }
    while let [.., above, last] = frames.as_slice() {
        // A closure without a path (line-tables-only builds name it `{closure#3}`) is judged
        // by the frame it calls: a thread's entry closure that runs the harness is harness.
        let noise =
            is_bottom_noise(last, trim) || (is_bare_closure(last) && is_bottom_noise(above, trim));
        if !noise {
            break;
        }
        frames.pop();
    }
    frames
}

/// A closure frame named without its enclosing path (`{closure#0}`, `{{closure}}`).
fn is_bare_closure(f: &Frame) -> bool {
    f.function.starts_with('{')
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

/// All frames of a site, symbolised (cached per instruction pointer), untrimmed. The debug info
/// and the cache it loads stay in the heap (counted, but never sampled).
pub fn symbolize_all(id: StackId) -> Vec<Frame> {
    sampler::quietly(|| symbolize_unsampled(id))
}

fn symbolize_unsampled(id: StackId) -> Vec<Frame> {
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

    fn at(function: &str, file: Option<&str>) -> Frame {
        Frame {
            ip: 0,
            function: function.to_owned(),
            file: file.map(str::to_owned),
            line: Some(1),
            column: None,
        }
    }

    /// A frame of the program.
    fn f(function: &str) -> Frame {
        at(function, Some("/src/app/src/lib.rs"))
    }

    /// A frame of the standard library.
    fn std(function: &str) -> Frame {
        at(function, Some("/rustc/abc/library/std/src/rt.rs"))
    }

    #[test]
    fn patterns_match_at_path_boundaries() {
        let cases = [
            (
                "leak_client::run::worker::{{closure}}",
                "leak_client::run",
                true,
            ),
            (
                "<leak_client::run::W as x::V>::get",
                "leak_client::run",
                true,
            ),
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
            assert_eq!(
                path_matches(function, pattern),
                want,
                "{function} ~ {pattern}"
            );
        }
        let bare = [
            ("worker", "leak_client::run::worker", true),
            ("worker<u8>", "leak_client::run::worker", true),
            ("worker", "leak_client::run::work", false),
            ("{closure#0}", "leak_client::run::worker", false),
            ("sum<core::iter::Map<I, F>>", "x::sum", true),
            ("other::worker", "leak_client::run::worker", false),
        ];
        for (function, pattern, want) in bare {
            assert_eq!(
                bare_name_matches(function, pattern),
                want,
                "{function} ~ {pattern}"
            );
        }
    }

    #[test]
    fn trimming_drops_allocator_tops_and_harness_bottoms() {
        let stack = vec![
            at(
                "backtrace::backtrace::trace_unsynchronized",
                Some("/r/backtrace-0.3.76/src/x.rs"),
            ),
            at("sample_slow", Some("/w/heapmeter/src/sites/sampler.rs")),
            at(
                "<cap::Cap<H> as core::alloc::global::GlobalAlloc>::alloc",
                None,
            ),
            at("__rustc::__rust_alloc", None),
            at("alloc", Some("/rustc/abc/library/alloc/src/alloc.rs")),
            at(
                "alloc::raw_vec::RawVec<T>::grow_one",
                Some("/rustc/abc/library/alloc/src/raw_vec.rs"),
            ),
            f("app::plant"),
            f("leak_client::run::worker"),
            f("worker_loop"),
            std("std::sys::backtrace::__rust_begin_short_backtrace"),
            std("<alloc::boxed::Box<F,A> as core::ops::function::FnOnce<Args>>::call_once"),
            at("start_thread", None),
            at("clone3", None),
        ];
        let names = |v: Vec<Frame>| v.into_iter().map(|f| f.function).collect::<Vec<_>>();
        let no_harness = trim_frames(stack.clone(), &Trim::default());
        assert_eq!(
            names(no_harness),
            [
                "alloc::raw_vec::RawVec<T>::grow_one",
                "app::plant",
                "leak_client::run::worker",
                "worker_loop"
            ]
        );
        let trimmed = trim_frames(
            stack.clone(),
            &Trim {
                harness: &["leak_client::run::worker", "leak_client::run::worker_loop"],
            },
        );
        assert_eq!(
            names(trimmed),
            ["alloc::raw_vec::RawVec<T>::grow_one", "app::plant"]
        );
        // Line-tables-only names: the thread's entry closure goes with the loop it runs.
        let mut bare = stack.clone();
        bare[8] = f("worker_loop");
        bare.insert(9, f("{closure#3}"));
        bare[7] = f("worker");
        assert_eq!(
            names(trim_frames(
                bare,
                &Trim {
                    harness: &["leak_client::run::worker", "leak_client::run::worker_loop"],
                },
            )),
            ["alloc::raw_vec::RawVec<T>::grow_one", "app::plant"]
        );
        let mut builder = stack.clone();
        builder.insert(7, f("{closure#1}"));
        builder[8] = f("worker");
        let kept = names(trim_frames(
            builder,
            &Trim {
                harness: &["leak_client::run::worker", "leak_client::run::worker_loop"],
            },
        ));
        assert_eq!(
            kept.last().map(String::as_str),
            Some("{closure#1}"),
            "a closure calling the code of interest stays: {kept:?}"
        );
        let all_harness = trim_frames(
            stack,
            &Trim {
                harness: &["leak_client::run", "worker_loop", "app"],
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
        assert!(at("core::ptr::drop_in_place", None).is_std());
        assert!(!at("ureq::pool::Pool::get", None).is_std());
        assert!(
            at(
                "do_alloc",
                Some("/rust/deps/hashbrown-0.16.1/src/raw/alloc.rs")
            )
            .is_std()
        );
        assert!(std("lang_start").is_std());
        assert!(!f("app::plant").is_std());
    }
}
