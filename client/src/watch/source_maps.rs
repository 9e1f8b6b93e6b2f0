//! Source maps for `watch --sites`: a frame of a script that has one (a `//# sourceMappingURL=`
//! comment naming a file or holding an inline `data:` URL, or a `.map` file beside the script)
//! is shown as its author wrote it: original file, line and function name. Decoding is the
//! `sourcemap` crate's (getsentry); this module finds the map, caches it per script, and picks
//! the name. Only the frames a report shows are mapped; a script without a map, or whose map
//! cannot be read, keeps its frames as they are.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use sourcemap::{DecodedMap, SourceMap};

/// A frame's position, 1-based, as the sites report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// The original function's name, when the map names one at (or just before) the position.
    pub function: Option<String>,
    /// The original source: a path resolved against the map's folder and `sourceRoot`, or the
    /// map's URL as written (`webpack://…`).
    pub source: String,
    pub line: u32,
    pub column: u32,
}

/// How far before a function's start (V8 reports the `(` of its parameters) a named token may
/// lie and still name it: `function someLongName` or `async someLongName`.
const NAME_REACH: u32 = 96;

/// Maps frames of scripts on disk through their source maps, each map read once.
#[derive(Default)]
pub struct SourceMaps {
    maps: HashMap<String, Option<(SourceMap, PathBuf)>>,
}

impl std::fmt::Debug for SourceMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceMaps")
            .field("scripts", &self.maps.len())
            .finish()
    }
}

impl SourceMaps {
    /// The original position of `line`:`column` (1-based) in the script at `url` (a path or a
    /// `file://` URL), if it has a source map that covers it.
    pub fn original(&mut self, url: &str, line: u32, column: u32) -> Option<Original> {
        if line == 0 {
            return None;
        }
        let entry = self
            .maps
            .entry(url.to_string())
            .or_insert_with(|| load(url));
        let (map, dir) = entry.as_ref()?;
        let (l, c) = (line - 1, column.saturating_sub(1));
        let token = map.lookup_token(l, c)?;
        if token.get_dst_line() != l {
            return None;
        }
        let source = token.get_source()?;
        let function = token
            .get_name()
            .map(str::to_owned)
            .or_else(|| name_before(map, l, c));
        Some(Original {
            function,
            source: resolve(dir, map.get_source_root(), source),
            line: token.get_src_line() + 1,
            column: token.get_src_col() + 1,
        })
    }
}

/// The name of the nearest named token before `line`:`col` on the same generated line, within
/// [`NAME_REACH`] columns: a function's name token comes just before its parameter list.
fn name_before(map: &SourceMap, line: u32, col: u32) -> Option<String> {
    map.tokens()
        .filter(|t| t.get_dst_line() == line && t.get_dst_col() <= col)
        .filter(|t| col - t.get_dst_col() <= NAME_REACH)
        .filter_map(|t| t.get_name().map(|n| (t.get_dst_col(), n)))
        .max_by_key(|(c, _)| *c)
        .map(|(_, n)| n.to_owned())
}

/// `source` as a path: against the map's folder and `sourceRoot` when relative, as written
/// when it is a URL; `.` and `..` folded.
fn resolve(dir: &Path, root: Option<&str>, source: &str) -> String {
    let source = source.strip_prefix("file://").unwrap_or(source);
    if source.contains("://") {
        return source.to_string();
    }
    let mut path = dir.to_path_buf();
    if let Some(r) = root.filter(|r| !r.is_empty() && !r.contains("://")) {
        path.push(r.strip_prefix("file://").unwrap_or(r));
    }
    path.push(source);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out.display().to_string()
}

/// The script's map: its `sourceMappingURL` (the last one; an inline `data:` URL or a file
/// relative to the script), else `<script>.map` beside it. With the folder its sources are
/// relative to.
fn load(url: &str) -> Option<(SourceMap, PathBuf)> {
    let script = Path::new(url.strip_prefix("file://").unwrap_or(url));
    if !script.is_absolute() {
        return None;
    }
    let dir = script.parent()?.to_path_buf();
    let text = std::fs::read_to_string(script).ok()?;
    let comment = text
        .lines()
        .rev()
        .take(8)
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix("//# sourceMappingURL=")
                .or_else(|| l.strip_prefix("//@ sourceMappingURL="))
        })
        .map(str::trim);
    let (decoded, map_dir) = match comment {
        Some(u) if u.starts_with("data:") => (sourcemap::decode_data_url(u).ok()?, dir),
        Some(u) => {
            let file = dir.join(u.strip_prefix("file://").unwrap_or(u));
            let bytes = std::fs::read(&file).ok()?;
            let map_dir = file.parent().map_or(dir, Path::to_path_buf);
            (sourcemap::decode_slice(&bytes).ok()?, map_dir)
        }
        None => {
            let mut beside = script.as_os_str().to_owned();
            beside.push(".map");
            let bytes = std::fs::read(PathBuf::from(beside)).ok()?;
            (sourcemap::decode_slice(&bytes).ok()?, dir)
        }
    };
    let map = match decoded {
        DecodedMap::Regular(m) => m,
        DecodedMap::Index(i) => i.flatten().ok()?,
        // React Native's bytecode maps: not a script V8 runs.
        DecodedMap::Hermes(_) => return None,
    };
    Some((map, map_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/watch/sourcemap")
    }

    /// `function n(` and `async function r(` in the one-line script: where V8 says they start
    /// (the `(` of their parameters), 1-based.
    fn starts(script: &str) -> (u32, u32) {
        let text = std::fs::read_to_string(data().join(script)).expect("script");
        let col = |pat: &str| text.find(pat).expect("in the script") as u32 + pat.len() as u32 + 1;
        (col("function n"), col("async function r"))
    }

    #[test]
    fn a_map_named_by_its_comment_gives_the_authors_file_line_and_name() {
        for script in ["leak.min.js", "inline.min.js", "beside.min.js"] {
            let mut maps = SourceMaps::default();
            let url = data().join(script).display().to_string();
            let (n, r) = starts(script);
            let o = maps.original(&url, 1, n).expect(script);
            assert_eq!(o.function.as_deref(), Some("plantLeak"), "{script}");
            assert!(o.source.ends_with("watch/src/leak.ts"), "{script}: {o:?}");
            assert_eq!(o.line, 3, "{script}");
            let o = maps.original(&format!("file://{url}"), 1, r).expect(script);
            assert_eq!(
                (o.function.as_deref(), o.line),
                (Some("run"), 6),
                "{script}"
            );
        }
    }

    #[test]
    fn a_script_without_a_map_or_a_position_outside_it_is_left_alone() {
        let mut maps = SourceMaps::default();
        let plain = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/node/loop.js");
        assert_eq!(maps.original(&plain.display().to_string(), 76, 15), None);
        let url = data().join("leak.min.js").display().to_string();
        assert_eq!(maps.original(&url, 2, 1), None, "line 2 has no mapping");
        assert_eq!(maps.original("node:internal/url", 1, 1), None);
        assert_eq!(maps.original("/nonexistent/x.js", 1, 1), None);
    }

    #[test]
    fn sources_resolve_against_the_maps_folder_and_root() {
        let dir = Path::new("/app/.next/server");
        assert_eq!(resolve(dir, None, "../src/a.ts"), "/app/.next/src/a.ts");
        assert_eq!(resolve(dir, Some("../../"), "./lib/b.ts"), "/app/lib/b.ts");
        assert_eq!(
            resolve(dir, None, "webpack://next/./src/c.ts"),
            "webpack://next/./src/c.ts"
        );
    }
}
