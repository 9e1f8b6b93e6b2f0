//! The README's sample outputs against the sources they cite: every `client/…`, `server/…` or
//! `heapmeter/…` `path.rs:LINE` it names must exist, and the name the sample gives on that row
//! must be what is there (`forget_block  client/src/run/injector.rs:60`: line 60 is in
//! `fn forget_block`; `{closure#1} (client/src/clients.rs:44)`: line 44 holds a closure).
//! The `compare` sample's table rows must be rows `report.rs` prints. Reads files as text; runs
//! nothing.

use std::path::Path;

/// The workspace root (this crate's parent).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("client/ has a parent")
}

/// A citation in the README: its line there, the name the sample gives, the file and line.
#[derive(Debug)]
struct Cite {
    readme_line: usize,
    name: String,
    path: String,
    line: usize,
}

/// Every in-workspace `path.rs:LINE` of `text`, with the name written just before it on its
/// row (`name  path:LINE` or `name (path:LINE)`).
fn cites(text: &str) -> Vec<Cite> {
    let mut out = Vec::new();
    for (n, row) in text.lines().enumerate() {
        let words: Vec<&str> = row.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            let w = w.trim_matches(|c| matches!(c, '(' | ')' | '`' | ',' | '.'));
            let Some((path, line)) = w.split_once(".rs:") else {
                continue;
            };
            if !["client/", "server/", "heapmeter/"]
                .iter()
                .any(|d| path.starts_with(d))
            {
                continue;
            }
            let line: usize = line.parse().unwrap_or_else(|_| {
                panic!("README.md:{}: `{w}` has no line number", n + 1);
            });
            let name = i
                .checked_sub(1)
                .map(|p| words[p].trim_start_matches('←').to_string())
                .unwrap_or_default();
            out.push(Cite {
                readme_line: n + 1,
                name,
                path: format!("{path}.rs"),
                line,
            });
        }
    }
    out
}

/// The name of the function a line is in: the nearest `fn NAME` at or above it.
fn enclosing_fn(lines: &[&str], at: usize) -> Option<String> {
    lines[..at].iter().rev().find_map(|l| {
        let rest = l.split("fn ").nth(1)?;
        let before = l.split("fn ").next()?;
        // `fn` as a word at the start of an item (after `pub`, `pub(super)`, indentation…).
        if !before.split_whitespace().all(|w| {
            w == "pub" || w.starts_with("pub(") || w == "const" || w == "unsafe" || w == "async"
        }) {
            return None;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty()).then_some(name)
    })
}

#[test]
fn every_source_line_the_readme_cites_is_what_its_sample_names() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let cites = cites(&readme);
    assert!(
        cites.len() >= 4,
        "the --sites sample cites at least 4 source lines; found {cites:?}"
    );
    let mut wrong = Vec::new();
    for c in &cites {
        let Ok(src) = std::fs::read_to_string(root().join(&c.path)) else {
            wrong.push(format!(
                "README.md:{}: {} does not exist",
                c.readme_line, c.path
            ));
            continue;
        };
        let lines: Vec<&str> = src.lines().collect();
        if c.line == 0 || c.line > lines.len() {
            wrong.push(format!(
                "README.md:{}: {}:{} is past the file's end ({} lines)",
                c.readme_line,
                c.path,
                c.line,
                lines.len()
            ));
            continue;
        }
        let row = lines[c.line - 1];
        let ok = if c.name.starts_with("{closure") {
            row.contains('|')
        } else {
            enclosing_fn(&lines, c.line).as_deref() == Some(c.name.as_str())
        };
        if !ok {
            wrong.push(format!(
                "README.md:{}: names `{}` at {}:{}, which reads `{}` (in fn {:?})",
                c.readme_line,
                c.name,
                c.path,
                c.line,
                row.trim(),
                enclosing_fn(&lines, c.line)
            ));
        }
    }
    assert!(wrong.is_empty(), "drifted:\n{}", wrong.join("\n"));
}

#[test]
fn the_citation_reader_finds_both_row_forms() {
    let text = "  +1 B  261  forget_block  client/src/run/injector.rs:60\n\
                \u{20}   ← after_request (client/src/run/injector.rs:41)\n\
                `ureq-3.5.2/src/x.rs:9` is not ours";
    let c = cites(text);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!((c[0].name.as_str(), c[0].line), ("forget_block", 60));
    assert_eq!((c[1].name.as_str(), c[1].readme_line), ("after_request", 2));
    assert_eq!(c[1].path, "client/src/run/injector.rs");
}

#[test]
fn the_compare_sample_table_rows_are_rows_compare_prints() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let report = std::fs::read_to_string(root().join("client/src/report.rs")).expect("report.rs");
    let block = readme
        .split("```")
        .find(|b| b.contains("requests ok / sent"))
        .expect("the README shows compare's table");
    // The rows between the rule under the header and the blank line after `verdict`.
    let rows: Vec<&str> = block
        .lines()
        .skip_while(|l| !l.starts_with('─'))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split("  ").next())
        .collect();
    assert!(rows.len() >= 10, "{rows:?}");
    let missing: Vec<&&str> = rows
        .iter()
        .filter(|r| !report.contains(&format!("\"{r}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "rows of the README's compare sample that report.rs does not print: {missing:?}"
    );
}
