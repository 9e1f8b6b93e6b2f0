//! The layers of the workspace's two layered crates (leak-client and heapmeter), lowest first,
//! and the tests that hold the sources to them: every module is in a layer, and no `use` (or
//! path) names a module in a higher layer. Reads `src/` as text, so a new upward import fails
//! here with its file, line and the import itself.
//!
//! The rule, for a file of module `A` naming module `B` through `crate::`, `super::` or `self::`:
//! - `B` is `A` or one of its children: fine (a module is above what it declares).
//! - `B` is one of `A`'s parents (`crate::Item` from `lib.rs`, `super::Item` from a folder's
//!   `mod.rs`): upward. A folder's `mod.rs` is its face, above every file in it, unless the
//!   folder is listed in `PEERS` (its files share items kept in its `mod.rs`).
//! - otherwise, under their closest common folder, `B`'s layer must not come after `A`'s in that
//!   folder's table (`top` for the crate root, `folders` for a folder).
//!
//! To add a module: put its name in the layer it belongs to (the lowest layer whose modules it
//! imports, at least); ARCHITECTURE.md's layer table follows `CLIENT.top`. A new folder needs a
//! table of its own (or a line in `peers` saying why its files are peers).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, lowest first: `(name, modules)`.
type Table = &'static [(&'static str, &'static [&'static str])];

/// One crate's layering.
struct Crate {
    /// Its `src/`, relative to the workspace root.
    src: &'static str,
    /// The crate root's modules by layer (`lib.rs` itself is above them all).
    top: Table,
    /// Folders whose files are ordered too: (`a` or `a/b`, the folder's modules by layer).
    folders: &'static [(&'static str, Table)],
    /// Folders whose files are peers around shared items in their `mod.rs`, and why.
    peers: &'static [(&'static str, &'static str)],
}

const CLIENT: Crate = Crate {
    src: "client/src",
    top: &[
        (
            "data",
            &[
                "units",
                "error",
                "exit",
                "stop",
                "sample",
                "trend",
                "progress",
                "jsonl",
                "runtime",
                "workload",
                "variant",
                "private_dir",
            ],
        ),
        ("clients", &["raw", "ureq_client", "clients"]),
        ("configuration", &["cli", "config"]),
        ("measuring", &["counters", "sites", "monitor", "run"]),
        ("analysis", &["verdict", "summary"]),
        ("watch analysis", &["watch"]),
        ("outputs", &["plot", "child", "report"]),
        ("commands", &["commands"]),
    ],
    folders: &[
        (
            "commands",
            &[
                ("shared", &["shared", "reaper"]),
                ("commands", &["variant", "compare", "calibrate", "watch"]),
            ],
        ),
        ("raw", &[("parser", &["wire"]), ("sockets", &["conn"])]),
        (
            "raw/wire",
            &[
                ("vocabulary", &["types", "syntax", "request"]),
                ("readers", &["head", "chunked"]),
                ("body", &["body"]),
                ("test support", &["testing"]),
                ("tests", &["tests"]),
            ],
        ),
        (
            "raw/wire/tests",
            &[
                ("cases", &["cases"]),
                ("one part each", &["head", "chunked", "body"]),
            ],
        ),
        (
            "run",
            &[
                ("results", &["output"]),
                ("planted leak", &["injector"]),
                ("workers", &["worker"]),
                ("controller", &["controller"]),
            ],
        ),
        (
            "verdict",
            &[
                ("statistics", &["stats"]),
                ("data", &["types"]),
                ("wording", &["reasons"]),
                ("decision", &["policy"]),
                ("stopping", &["early_stop"]),
                ("tests", &["tests"]),
            ],
        ),
        (
            "watch",
            &[
                ("clock", &["clock"]),
                (
                    "readings",
                    &["pair", "served", "probe", "proctree", "source_maps"],
                ),
                ("judging", &["judge", "sites"]),
                ("snapshots", &["retainers"]),
                ("recording", &["summary"]),
                ("session", &["session"]),
            ],
        ),
        (
            "watch/retainers",
            &[
                ("parser", &["snapshot"]),
                ("paths", &["paths"]),
                ("control", &["control"]),
            ],
        ),
    ],
    peers: &[],
};

const HEAPMETER: Crate = Crate {
    src: "heapmeter/src",
    top: &[("leaves", &["size", "hot"]), ("profiler", &["sites"])],
    folders: &[(
        "sites",
        &[
            ("storage", &["sysvec"]),
            ("types", &["types"]),
            ("memory and estimates", &["arena", "estimate"]),
            ("profiler", &["profile"]),
            ("sampler", &["sampler"]),
            ("symbols", &["symbols"]),
            ("dhat", &["dhat"]),
        ],
    )],
    peers: &[],
};

/// A module path: `[]` the crate root, `["sites", "dhat"]` `sites/dhat.rs`.
type Module = Vec<String>;

fn show(m: &[String]) -> String {
    if m.is_empty() {
        "the crate root".to_string()
    } else {
        m.join("::")
    }
}

/// The module a file under `src/` defines; `None` for `main.rs` (a crate of its own, on top).
fn module_of(rel: &Path) -> Option<Module> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let file = parts.pop()?;
    let stem = file.strip_suffix(".rs")?;
    match (parts.is_empty(), stem) {
        (true, "lib") => {}
        (true, "main") => return None,
        (_, "mod") => {}
        _ => parts.push(stem.to_string()),
    }
    Some(parts)
}

/// Every `.rs` file under `dir`, by path relative to `root`.
fn read_src(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let entries = std::fs::read_dir(dir).expect("src/ is readable");
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            read_src(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under src").to_path_buf();
            let text = std::fs::read_to_string(&path).expect("source is readable");
            out.insert(rel, text);
        }
    }
}

/// `text` with comments blanked (newlines kept, so line numbers hold). String literals are not
/// parsed: a `//` inside one hides the rest of its line, which never holds an import here.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let line_comment = rest.find("//");
        let block_comment = rest.find("/*");
        match (line_comment, block_comment) {
            (Some(l), b) if b.is_none_or(|b| l < b) => {
                out.push_str(&rest[..l]);
                let end = rest[l..].find('\n').map_or(rest.len(), |n| l + n);
                rest = &rest[end..];
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                let end = rest[b..].find("*/").map_or(rest.len(), |n| b + n + 2);
                out.extend(rest[b..end].chars().filter(|&c| c == '\n'));
                rest = &rest[end..];
            }
            _ => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Parses a use tree (`a::b`, `a::{b, c::d}`, `a::*`, `self`) at the start of `s`: the paths it
/// names, as segments, and the bytes it spans.
fn use_tree(s: &str) -> (Vec<Vec<String>>, usize) {
    let mut at = 0;
    let mut prefix: Vec<String> = Vec::new();
    loop {
        at += s[at..].len() - s[at..].trim_start().len();
        if s[at..].starts_with('*') {
            return (vec![prefix], at + 1);
        }
        if s[at..].starts_with('{') {
            at += 1;
            let mut paths = Vec::new();
            loop {
                let rest = &s[at..];
                at += rest.len()
                    - rest
                        .trim_start_matches(|c: char| c.is_whitespace() || c == ',')
                        .len();
                if s[at..].starts_with('}') {
                    at += 1;
                    break;
                }
                let (sub, len) = use_tree(&s[at..]);
                if len == 0 {
                    break;
                }
                paths.extend(sub.into_iter().map(|p| [prefix.clone(), p].concat()));
                at += len;
            }
            return (paths, at);
        }
        let name: String = s[at..].chars().take_while(|&c| is_ident(c)).collect();
        if name.is_empty() {
            // The end of a path used in code (`crate::units::count(1)`).
            return (vec![prefix], at);
        }
        at += name.len();
        if name != "self" {
            prefix.push(name);
        }
        if s[at..].starts_with("::") {
            at += 2;
        } else {
            return (vec![prefix], at);
        }
    }
}

/// One path a file names through `crate::`, `super::` or `self::`.
struct Import {
    line: usize,
    /// As written, on one line.
    text: String,
    /// The module it names (the deepest known module along the path).
    target: Module,
}

/// The imports of the file of `module`, resolved against `known` modules.
fn imports_of(module: &Module, text: &str, known: &BTreeSet<Module>) -> Vec<Import> {
    let code = strip_comments(text);
    // From the first inline module (`mod tests {`) on, `super::` means this file's module.
    let inline_from = code
        .lines()
        .scan(0, |at, l| {
            let start = *at;
            *at += l.len() + 1;
            Some((start, l))
        })
        .find(|(_, l)| {
            let t = l.trim_start();
            let t = t
                .strip_prefix("pub(crate) ")
                .or(t.strip_prefix("pub "))
                .unwrap_or(t);
            t.starts_with("mod ") && t.contains('{')
        })
        .map_or(usize::MAX, |(start, _)| start);
    let mut out = Vec::new();
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        let prev = code[..at].chars().next_back();
        let boundary = prev.is_none_or(|c| !is_ident(c) && c != ':');
        let keyword = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|k| rest.starts_with(k));
        let (Some(keyword), true) = (keyword, boundary) else {
            at += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let mut base: Module = match keyword {
            "crate::" => Vec::new(),
            _ => module.clone(),
        };
        let mut len = keyword.len();
        if keyword == "super::" {
            let mut ups = 1;
            while code[at + len..].starts_with("super::") {
                ups += 1;
                len += "super::".len();
            }
            if at >= inline_from {
                ups -= 1;
            }
            for _ in 0..ups {
                base.pop();
            }
        }
        let (paths, tree_len) = use_tree(&code[at + len..]);
        let written: String = code[at..at + len + tree_len]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let line = code[..at].matches('\n').count() + 1;
        for path in paths {
            let mut target = base.clone();
            for seg in path {
                let mut next = target.clone();
                next.push(seg);
                if known.contains(&next) {
                    target = next;
                } else {
                    break;
                }
            }
            out.push(Import {
                line,
                text: written.clone(),
                target,
            });
        }
        at += len + tree_len.max(1);
    }
    out
}

/// The table for the folder `parent` (`top` for the root); `Err` with the peers' reason.
fn table_of<'a>(krate: &'a Crate, parent: &[String]) -> Option<Result<Table, &'a str>> {
    if parent.is_empty() {
        return Some(Ok(krate.top));
    }
    let key = parent.join("/");
    if let Some((_, why)) = krate.peers.iter().find(|(f, _)| *f == key) {
        return Some(Err(why));
    }
    krate
        .folders
        .iter()
        .find(|(f, _)| *f == key)
        .map(|(_, t)| Ok(*t))
}

fn layer_of(table: Table, name: &str) -> Option<(usize, &'static str)> {
    table
        .iter()
        .enumerate()
        .find(|(_, (_, mods))| mods.contains(&name))
        .map(|(i, (layer, _))| (i, *layer))
}

fn folder_name(parent: &[String]) -> String {
    if parent.is_empty() {
        "the crate root".to_string()
    } else {
        format!("{}/", parent.join("/"))
    }
}

/// Modules missing from the tables, and table entries with no module.
fn coverage(krate: &Crate, known: &BTreeSet<Module>) -> Vec<String> {
    let mut problems = Vec::new();
    for m in known.iter().filter(|m| !m.is_empty()) {
        let (parent, name) = m.split_at(m.len() - 1);
        match table_of(krate, parent) {
            Some(Ok(table)) if layer_of(table, &name[0]).is_none() => problems.push(format!(
                "{}: module `{}` is in no layer of the table for {} in client/tests/it/layers.rs: \
                 add it to the layer it belongs to",
                krate.src,
                show(m),
                folder_name(parent)
            )),
            None => problems.push(format!(
                "{}: folder `{}/` (module `{}`) has no layer table in client/tests/it/layers.rs: \
                 add one to `folders` (or a line to `peers` saying why its files are peers)",
                krate.src,
                parent.join("/"),
                show(m)
            )),
            _ => {}
        }
    }
    let listed =
        std::iter::once((Vec::new(), krate.top)).chain(krate.folders.iter().map(|(f, t)| {
            let parent: Module = f.split('/').map(String::from).collect();
            (parent, *t)
        }));
    for (parent, table) in listed {
        for name in table.iter().flat_map(|(_, mods)| mods.iter()) {
            let mut m = parent.clone();
            m.push(name.to_string());
            if !known.contains(&m) {
                problems.push(format!(
                    "{}: the table for {} lists `{}`, which src/ does not have (renamed or \
                     removed? update client/tests/it/layers.rs)",
                    krate.src,
                    folder_name(&parent),
                    show(&m)
                ));
            }
        }
    }
    let folders = krate.folders.iter().map(|(f, _)| *f);
    for f in folders.chain(krate.peers.iter().map(|(f, _)| *f)) {
        let folder: Module = f.split('/').map(String::from).collect();
        if !known
            .iter()
            .any(|m| m.len() > folder.len() && m.starts_with(&folder))
        {
            problems.push(format!(
                "{}: client/tests/it/layers.rs names folder `{f}/`, which src/ does not have",
                krate.src
            ));
        }
    }
    problems
}

/// Every import that goes up, as `file:line: import — why`.
fn upward_imports(krate: &Crate, files: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let known: BTreeSet<Module> = files.keys().filter_map(|p| module_of(p)).collect();
    let mut problems = Vec::new();
    // One line per import as written, however many of its names go up.
    let mut push = |p: String| {
        if !problems.contains(&p) {
            problems.push(p);
        }
    };
    for (path, text) in files {
        let Some(from) = module_of(path) else {
            continue;
        };
        for import in imports_of(&from, text, &known) {
            let to = &import.target;
            let at = format!(
                "{}/{}:{}: `{}`",
                krate.src,
                path.display(),
                import.line,
                import.text
            );
            if to.starts_with(&from) {
                continue;
            }
            if from.starts_with(to) {
                if let Some(Err(_)) = table_of(krate, to) {
                    continue;
                }
                let face = if to.is_empty() {
                    "lib.rs".to_string()
                } else {
                    format!("{}/mod.rs", to.join("/"))
                };
                push(format!(
                    "{at} — `{}` imports an item of {} ({face}), which is above every module \
                     under it: move the item into a module of its own below its users",
                    show(&from),
                    show(to)
                ));
                continue;
            }
            let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
            let (parent, a, b) = (&from[..common], &from[common], &to[common]);
            let Some(Ok(table)) = table_of(krate, parent) else {
                continue;
            };
            let (Some((la, name_a)), Some((lb, name_b))) = (layer_of(table, a), layer_of(table, b))
            else {
                continue; // reported by `coverage`
            };
            if lb > la {
                push(format!(
                    "{at} — `{}` (layer \"{name_a}\" of {}) imports `{}` (layer \"{name_b}\", \
                     above it)",
                    show(&from),
                    folder_name(parent),
                    show(to)
                ));
            }
        }
    }
    problems
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("client/ is in the workspace")
        .to_path_buf()
}

fn sources(krate: &Crate) -> BTreeMap<PathBuf, String> {
    let src = workspace().join(krate.src);
    let mut files = BTreeMap::new();
    read_src(&src, &src, &mut files);
    files
}

fn known(files: &BTreeMap<PathBuf, String>) -> BTreeSet<Module> {
    files.keys().filter_map(|p| module_of(p)).collect()
}

#[test]
fn every_module_is_in_a_layer() {
    for krate in [&CLIENT, &HEAPMETER] {
        let files = sources(krate);
        let problems = coverage(krate, &known(&files));
        assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
    }
}

#[test]
fn no_module_imports_one_in_a_layer_above_it() {
    let mut problems = Vec::new();
    for krate in [&CLIENT, &HEAPMETER] {
        let files = sources(krate);
        assert!(
            files.len() >= 10,
            "the walk found {}'s files: {:?}",
            krate.src,
            files.keys()
        );
        problems.extend(upward_imports(krate, &files));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn imports_are_read_and_resolved() {
    let files = sources(&CLIENT);
    let known = known(&files);
    let run = imports_of(
        &vec!["run".to_string(), "controller".to_string()],
        &files[Path::new("run/controller.rs")],
        &known,
    );
    assert!(
        run.iter().any(|i| i.target == ["monitor"]),
        "run/controller.rs imports monitor"
    );
    let module = |s: &str| -> Module { s.split("::").map(String::from).collect() };
    let known: BTreeSet<Module> = ["a", "a::b", "a::c", "d"].map(module).into();
    let text = "use crate::{a::b::Thing, d};\n// crate::nope\nuse super::{c::X,\n    Y};\n\
                let n = crate::d::count(1);\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n";
    let got: Vec<(usize, String, Module)> = imports_of(&module("a::b"), text, &known)
        .into_iter()
        .map(|i| (i.line, i.text, i.target))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "crate::{a::b::Thing, d}".into(), module("a::b")),
            (1, "crate::{a::b::Thing, d}".into(), module("d")),
            (3, "super::{c::X, Y}".into(), module("a::c")),
            (3, "super::{c::X, Y}".into(), module("a")),
            (5, "crate::d::count".into(), module("d")),
            (8, "super::*".into(), module("a::b")),
        ]
    );
}

#[test]
fn a_planted_upward_import_or_unlisted_module_fails_with_its_file_and_import() {
    const PLANTED: Crate = Crate {
        src: "x/src",
        top: &[("low", &["low"]), ("high", &["high", "f"])],
        folders: &[("f", &[("leaf", &["leaf"])])],
        peers: &[],
    };
    let files: BTreeMap<PathBuf, String> = [
        (
            "lib.rs",
            "pub mod low; pub mod high; pub mod f; pub mod new;\npub struct Root;",
        ),
        ("low.rs", "//! Low.\n\nuse crate::high::Thing;\n"),
        ("high.rs", "use crate::low;\n"),
        (
            "f/mod.rs",
            "mod leaf;\npub use leaf::L;\npub struct Face;\n",
        ),
        ("f/leaf.rs", "use super::Face;\nuse crate::Root;\n"),
        ("new.rs", ""),
    ]
    .into_iter()
    .map(|(p, t)| (PathBuf::from(p), t.to_string()))
    .collect();
    let problems = upward_imports(&PLANTED, &files);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0]
            .starts_with("x/src/f/leaf.rs:1: `super::Face` — `f::leaf` imports an item of f"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].starts_with(
            "x/src/f/leaf.rs:2: `crate::Root` — `f::leaf` imports an item of the crate root"
        ),
        "{}",
        problems[1]
    );
    assert_eq!(
        problems[2],
        "x/src/low.rs:3: `crate::high::Thing` — `low` (layer \"low\" of the crate root) imports \
         `high` (layer \"high\", above it)"
    );
    let missing = coverage(&PLANTED, &known(&files));
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert!(
        missing[0].contains("module `new` is in no layer"),
        "{}",
        missing[0]
    );
}

/// Top-level module of a file under `src/` (`raw/conn.rs` → `raw`, `lib.rs`/`main.rs` → none).
fn top_module(rel: &Path) -> Option<String> {
    module_of(rel)?.into_iter().next()
}

/// A cycle through `start`, if any, as a path of module names.
fn cycle_from(start: &str, graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn dfs(
        at: &str,
        start: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if dfs(next, start, graph, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    dfs(start, start, graph, &mut path, &mut seen).then_some(path)
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    // Within a layer imports may go either way; this keeps them from going round.
    for krate in [&CLIENT, &HEAPMETER] {
        let files = sources(krate);
        let known = known(&files);
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (path, text) in &files {
            let (Some(module), Some(top)) = (module_of(path), top_module(path)) else {
                continue;
            };
            let deps = graph.entry(top.clone()).or_default();
            for import in imports_of(&module, text, &known) {
                if let Some(dep) = import.target.first().filter(|d| **d != top) {
                    deps.insert(dep.clone());
                }
            }
        }
        if krate.src == CLIENT.src {
            assert!(
                graph.len() >= 15 && graph.contains_key("run") && graph.contains_key("raw"),
                "the walk found the modules: {:?}",
                graph.keys()
            );
            assert!(
                graph["run"].contains("monitor") && graph["commands"].contains("run"),
                "imports are read: {graph:?}"
            );
        }
        let cycles: Vec<Vec<String>> = graph.keys().filter_map(|m| cycle_from(m, &graph)).collect();
        assert!(
            cycles.is_empty(),
            "{}: import cycles: {cycles:?}",
            krate.src
        );
    }
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    graph.entry("c".into()).or_default().insert("a".into());
    graph.entry("d".into()).or_default().insert("a".into());
    assert_eq!(
        cycle_from("a", &graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(cycle_from("d", &graph), None);
    let known: BTreeSet<Module> = ["cli", "stop", "units"].map(|m| vec![m.to_string()]).into();
    assert_eq!(
        imports_of(
            &vec!["x".to_string()],
            "use crate::{cli::Workload, stop::Stop};\n// crate::nope\nlet x = crate::units::count(1);",
            &known
        )
        .into_iter()
        .map(|i| i.target[0].clone())
        .collect::<BTreeSet<_>>(),
        ["cli", "stop", "units"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}
