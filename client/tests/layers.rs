//! The client's modules import downward only: no module imports one that (directly or through
//! others) imports it back. Reads `src/` as text, so a new cycle fails here with its path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module of a file under `src/` (`raw/conn.rs` → `raw`, `lib.rs`/`main.rs` → none).
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// The top-level modules a source file names as `crate::X`, comments excluded.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
        // `use crate::{a, b::c}` groups.
        if let Some(at) = code.find("crate::{") {
            let group = &code[at + "crate::{".len()..];
            for part in group.split([',', '}']) {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

fn walk(dir: &Path, root: &Path, graph: &mut BTreeMap<String, BTreeSet<String>>) {
    let entries = std::fs::read_dir(dir).expect("src/ is readable");
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(&path, root, graph);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under src");
            let Some(module) = module_of(rel) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).expect("source is readable");
            let deps = graph.entry(module.clone()).or_default();
            for dep in imports(&text) {
                if dep != module {
                    deps.insert(dep);
                }
            }
        }
    }
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
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    walk(&src, &src, &mut graph);
    assert!(
        graph.len() >= 15 && graph.contains_key("run") && graph.contains_key("raw"),
        "the walk found the modules: {:?}",
        graph.keys()
    );
    assert!(
        graph["run"].contains("monitor") && graph["commands"].contains("run"),
        "imports are read: {graph:?}"
    );
    let cycles: Vec<Vec<String>> = graph.keys().filter_map(|m| cycle_from(m, &graph)).collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
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
    assert_eq!(
        imports(
            "use crate::{cli::Workload, stop::Stop};\n// crate::nope\nlet x = crate::units::count(1);"
        ),
        ["cli", "stop", "units"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}
