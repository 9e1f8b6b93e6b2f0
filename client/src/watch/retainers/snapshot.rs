//! A V8 `.heapsnapshot` read as it streams: the `snapshot.meta` header, then the flat `nodes`,
//! `edges` and `strings` arrays straight into compact vectors (`u32`s, one byte buffer), never a
//! JSON tree. Knows the format, nothing of what the objects mean.
//!
//! The format (what `v8.writeHeapSnapshot` and DevTools write): one JSON object whose
//! `snapshot.meta` names the fields of a node (`type, name, id, self_size, edge_count,
//! trace_node_id, detachedness` in V8 11) and of an edge (`type, name_or_index, to_node`) and the
//! names of their types; `nodes` and `edges` are those fields flattened, a node's edges following
//! those of the node before it; `to_node` is an index into `nodes` (a multiple of the node's field
//! count); a name is an index into `strings`, or for `element` and `hidden` edges the index itself.
//! The other keys (allocation traces, samples, locations) are skipped.
//!
//! Strings are kept as bytes, cut at [`MAX_STRING`]: only names are read back, and a snapshot's
//! strings hold whole scripts' sources. V8 writes a lone surrogate (half of a UTF-16 pair, valid
//! in a JavaScript string) as a `\uD800` escape, which is not UTF-8: strings are read as bytes
//! (serde_json gives WTF-8) and shown lossily.

use std::fmt;
use std::io::Read;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Bytes kept of each string (a name, a property, a string's first characters).
pub const MAX_STRING: usize = 120;

/// Why a snapshot could not be read.
#[derive(Debug)]
pub enum SnapshotError {
    /// Not JSON, cut short, or a value of the wrong kind (serde_json's message, with its line).
    Json(serde_json::Error),
    /// JSON, but not a heap snapshot V8 writes: a field or array is missing or out of range.
    Format(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Json(e) => write!(f, "not a heap snapshot's JSON: {e}"),
            SnapshotError::Format(why) => write!(f, "not a V8 heap snapshot: {why}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

impl From<serde_json::Error> for SnapshotError {
    fn from(e: serde_json::Error) -> Self {
        SnapshotError::Json(e)
    }
}

fn format_error(why: impl Into<String>) -> SnapshotError {
    SnapshotError::Format(why.into())
}

/// How much of a snapshot to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Everything: nodes, edges and strings (the snapshot whose new objects are grouped).
    All,
    /// The nodes only: edges and strings are parsed and dropped (the first snapshot, of which
    /// only the ids are read).
    Nodes,
}

/// Where each field sits in a node's or an edge's run of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Numbers per node.
    pub node_fields: usize,
    pub node_type: usize,
    pub node_name: usize,
    pub node_id: usize,
    pub node_self_size: usize,
    pub node_edge_count: usize,
    /// Numbers per edge.
    pub edge_fields: usize,
    pub edge_type: usize,
    pub edge_name: usize,
    pub edge_to: usize,
}

/// A parsed heap snapshot.
#[derive(Debug)]
pub struct HeapSnapshot {
    pub layout: Layout,
    /// The names of node types, by the number in a node's `type` field.
    pub node_types: Vec<String>,
    /// The names of edge types, by the number in an edge's `type` field.
    pub edge_types: Vec<String>,
    /// `nodes`, flat: node `i`'s fields are `nodes[i * node_fields..][..node_fields]`.
    pub nodes: Vec<u32>,
    /// `edges`, flat (empty with [`Keep::Nodes`]).
    pub edges: Vec<u32>,
    /// `strings`' bytes, each cut at [`MAX_STRING`] (empty with [`Keep::Nodes`]).
    string_bytes: Vec<u8>,
    /// Where string `i` starts in `string_bytes`; one more entry than strings.
    string_starts: Vec<u32>,
}

/// The header: `{"meta": {...}, "node_count": N, "edge_count": M}`.
#[derive(Deserialize)]
struct Header {
    meta: Meta,
    #[serde(default)]
    node_count: usize,
    #[serde(default)]
    edge_count: usize,
}

#[derive(Deserialize)]
struct Meta {
    node_fields: Vec<String>,
    /// The first entry is the list of type names; the others say each field's kind.
    node_types: Vec<serde_json::Value>,
    edge_fields: Vec<String>,
    edge_types: Vec<serde_json::Value>,
}

fn field(fields: &[String], name: &str, of: &str) -> Result<usize, SnapshotError> {
    fields
        .iter()
        .position(|f| f == name)
        .ok_or_else(|| format_error(format!("no `{name}` among the {of} fields {fields:?}")))
}

fn type_names(types: &[serde_json::Value], of: &str) -> Result<Vec<String>, SnapshotError> {
    let names = types
        .first()
        .and_then(|t| t.as_array())
        .ok_or_else(|| format_error(format!("the {of} types are not a list of names")))?;
    names
        .iter()
        .map(|n| {
            n.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format_error(format!("a {of} type name is not a string")))
        })
        .collect()
}

impl Meta {
    fn layout(&self) -> Result<Layout, SnapshotError> {
        let n = &self.node_fields;
        let e = &self.edge_fields;
        Ok(Layout {
            node_fields: n.len(),
            node_type: field(n, "type", "node")?,
            node_name: field(n, "name", "node")?,
            node_id: field(n, "id", "node")?,
            node_self_size: field(n, "self_size", "node")?,
            node_edge_count: field(n, "edge_count", "node")?,
            edge_fields: e.len(),
            edge_type: field(e, "type", "edge")?,
            edge_name: field(e, "name_or_index", "edge")?,
            edge_to: field(e, "to_node", "edge")?,
        })
    }
}

/// Reads a snapshot from `input` as it streams (give it a `BufReader`).
pub fn read<R: Read>(input: R, keep: Keep) -> Result<HeapSnapshot, SnapshotError> {
    let mut de = serde_json::Deserializer::from_reader(input);
    let parts = de.deserialize_map(TopLevel { keep })?;
    de.end()?;
    parts.finish(keep)
}

/// What the top-level object's visitor collects.
#[derive(Default)]
struct Parts {
    header: Option<(Layout, Vec<String>, Vec<String>)>,
    nodes: Option<Vec<u32>>,
    edges: Option<Vec<u32>>,
    strings: Option<(Vec<u8>, Vec<u32>)>,
}

impl Parts {
    fn finish(self, keep: Keep) -> Result<HeapSnapshot, SnapshotError> {
        let (layout, node_types, edge_types) = self
            .header
            .ok_or_else(|| format_error("no `snapshot.meta`"))?;
        let nodes = self.nodes.ok_or_else(|| format_error("no `nodes`"))?;
        if layout.node_fields == 0 || nodes.len() % layout.node_fields != 0 {
            return Err(format_error(format!(
                "{} numbers in `nodes` is not a whole number of {}-field nodes",
                nodes.len(),
                layout.node_fields
            )));
        }
        let (edges, (string_bytes, string_starts)) = match keep {
            Keep::Nodes => (Vec::new(), (Vec::new(), vec![0])),
            Keep::All => (
                self.edges.ok_or_else(|| format_error("no `edges`"))?,
                self.strings.ok_or_else(|| format_error("no `strings`"))?,
            ),
        };
        let snapshot = HeapSnapshot {
            layout,
            node_types,
            edge_types,
            nodes,
            edges,
            string_bytes,
            string_starts,
        };
        if keep == Keep::All {
            snapshot.check()?;
        }
        Ok(snapshot)
    }
}

struct TopLevel {
    keep: Keep,
}

impl<'de> Visitor<'de> for TopLevel {
    type Value = Parts;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a heap snapshot object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts, A::Error> {
        let mut parts = Parts::default();
        // Sizes from the header, to reserve the arrays once.
        let mut sizes = (0usize, 0usize);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "snapshot" => {
                    let h: Header = map.next_value()?;
                    let layout = h.meta.layout().map_err(de::Error::custom)?;
                    let nt = type_names(&h.meta.node_types, "node").map_err(de::Error::custom)?;
                    let et = type_names(&h.meta.edge_types, "edge").map_err(de::Error::custom)?;
                    sizes = (
                        h.node_count.saturating_mul(layout.node_fields),
                        h.edge_count.saturating_mul(layout.edge_fields),
                    );
                    parts.header = Some((layout, nt, et));
                }
                "nodes" => {
                    parts.nodes = Some(map.next_value_seed(Numbers {
                        reserve: sizes.0,
                        keep: true,
                    })?);
                }
                "edges" => {
                    let keep = self.keep == Keep::All;
                    parts.edges = Some(map.next_value_seed(Numbers {
                        reserve: if keep { sizes.1 } else { 0 },
                        keep,
                    })?);
                }
                "strings" if self.keep == Keep::All => {
                    parts.strings = Some(map.next_value_seed(Strings)?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(parts)
    }
}

/// An array of whole numbers, each at most `u32::MAX`, into one vector (or counted and dropped).
struct Numbers {
    reserve: usize,
    keep: bool,
}

impl<'de> DeserializeSeed<'de> for Numbers {
    type Value = Vec<u32>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<u32>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Numbers {
    type Value = Vec<u32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of whole numbers below 2^32")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u32>, A::Error> {
        // Capped: the header's counts are the file's word, not a promise.
        let mut out = Vec::with_capacity(self.reserve.min(1 << 28));
        while let Some(n) = seq.next_element::<u32>()? {
            if self.keep {
                out.push(n);
            }
        }
        Ok(out)
    }
}

/// The `strings` array into one byte buffer and its starts.
struct Strings;

impl<'de> DeserializeSeed<'de> for Strings {
    type Value = (Vec<u8>, Vec<u32>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Strings {
    type Value = (Vec<u8>, Vec<u32>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut bytes = Vec::with_capacity(1 << 20);
        let mut starts = vec![0u32];
        while seq.next_element_seed(OneString(&mut bytes))?.is_some() {
            let end = u32::try_from(bytes.len())
                .map_err(|_| de::Error::custom("more than 4 GiB of names"))?;
            starts.push(end);
        }
        Ok((bytes, starts))
    }
}

/// One string, appended (cut at [`MAX_STRING`] bytes) to the buffer.
struct OneString<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for OneString<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // Bytes, not `str`: a lone surrogate is valid here (see the module docs).
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for OneString<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        self.0.extend_from_slice(&v[..v.len().min(MAX_STRING)]);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.visit_bytes(v.as_bytes())
    }
}

impl HeapSnapshot {
    /// Nodes in the snapshot.
    pub fn node_count(&self) -> usize {
        self.nodes.len() / self.layout.node_fields
    }

    /// Edges in the snapshot (0 with [`Keep::Nodes`]).
    pub fn edge_count(&self) -> usize {
        self.edges.len() / self.layout.edge_fields.max(1)
    }

    /// Strings in the snapshot (0 with [`Keep::Nodes`]).
    pub fn string_count(&self) -> usize {
        self.string_starts.len() - 1
    }

    /// Node `i`'s field at `offset`.
    pub fn node_field(&self, i: usize, offset: usize) -> u32 {
        self.nodes[i * self.layout.node_fields + offset]
    }

    /// Node `i`'s V8 id.
    pub fn id(&self, i: usize) -> u32 {
        self.node_field(i, self.layout.node_id)
    }

    /// Node `i`'s self size, in bytes.
    pub fn self_size(&self, i: usize) -> u32 {
        self.node_field(i, self.layout.node_self_size)
    }

    /// Node `i`'s type name (`object`, `string`, `hidden`, …).
    pub fn node_type(&self, i: usize) -> &str {
        let t = self.node_field(i, self.layout.node_type) as usize;
        self.node_types.get(t).map_or("?", String::as_str)
    }

    /// Node `i`'s name: a constructor's, a string's first characters, a synthetic root's.
    pub fn node_name(&self, i: usize) -> &[u8] {
        self.string(self.node_field(i, self.layout.node_name) as usize)
    }

    /// String `i` (cut at [`MAX_STRING`] bytes); empty if there is none.
    pub fn string(&self, i: usize) -> &[u8] {
        match (self.string_starts.get(i), self.string_starts.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.string_bytes[a as usize..b as usize],
            _ => &[],
        }
    }

    /// The largest odd id (JavaScript heap objects have odd ids; even ones are the embedder's
    /// nodes and V8's synthetic roots), or 0.
    pub fn max_odd_id(&self) -> u32 {
        (0..self.node_count())
            .map(|i| self.id(i))
            .filter(|id| id % 2 == 1)
            .max()
            .unwrap_or(0)
    }

    /// Checks what the analysis indexes by: the edge counts add up to the edges, every edge
    /// points at a node, every name is a string.
    fn check(&self) -> Result<(), SnapshotError> {
        let l = self.layout;
        if l.edge_fields == 0 || self.edges.len() % l.edge_fields != 0 {
            return Err(format_error(format!(
                "{} numbers in `edges` is not a whole number of {}-field edges",
                self.edges.len(),
                l.edge_fields
            )));
        }
        let total: u64 = (0..self.node_count())
            .map(|i| u64::from(self.node_field(i, l.node_edge_count)))
            .sum();
        if total != self.edge_count() as u64 {
            return Err(format_error(format!(
                "the nodes' edge counts add up to {total}, but there are {} edges",
                self.edge_count()
            )));
        }
        let strings = self.string_count() as u64;
        for i in 0..self.node_count() {
            if u64::from(self.node_field(i, l.node_name)) >= strings {
                return Err(format_error(format!("node {i}'s name is not a string")));
            }
        }
        for e in self.edges.chunks_exact(l.edge_fields) {
            let to = e[l.edge_to] as usize;
            if to % l.node_fields != 0 || to >= self.nodes.len() {
                return Err(format_error(format!(
                    "an edge points at {to}, not at a node"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written snapshot in V8's shape: a root, a holder object, an array and two strings.
    pub(crate) const TINY: &str = r#"{"snapshot":{"meta":{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"trace_function_info_fields":[],"trace_node_fields":[],"sample_fields":[],"location_fields":[]},"node_count":4,"edge_count":3,"trace_function_count":0},
"nodes":[9,0,1,0,1,0,0
,3,1,3,24,1,0,0
,3,2,5,16,1,0,0
,2,3,7,40,0,0,0],
"edges":[2,4,7
,2,5,14
,1,0,21],
"trace_function_infos":[],"trace_tree":[],"samples":[],"locations":[],
"strings":["","Holder","Array","a \ud800 lone surrogate","kept","list"]}"#;

    #[test]
    fn a_snapshot_streams_into_its_arrays() {
        let s = read(TINY.as_bytes(), Keep::All).expect("parses");
        assert_eq!(
            (s.node_count(), s.edge_count(), s.string_count()),
            (4, 3, 6)
        );
        assert_eq!(s.node_type(1), "object");
        assert_eq!(s.node_name(1), b"Holder");
        assert_eq!((s.id(3), s.self_size(3)), (7, 40));
        assert_eq!(s.edge_types[2], "property");
        assert_eq!(
            String::from_utf8_lossy(s.node_name(3)),
            "a \u{FFFD}\u{FFFD}\u{FFFD} lone surrogate",
            "a lone surrogate reads as WTF-8, shown lossily"
        );
        assert_eq!(s.max_odd_id(), 7);
        let ids = read(TINY.as_bytes(), Keep::Nodes).expect("parses");
        assert_eq!(
            (ids.node_count(), ids.edge_count(), ids.string_count()),
            (4, 0, 0)
        );
        assert_eq!(ids.max_odd_id(), 7);
    }

    #[test]
    fn broken_snapshots_are_errors_not_panics() {
        let cases = [
            ("", "EOF"),
            ("[]", "snapshot object"),
            (r#"{"nodes":[]}"#, "no `snapshot.meta`"),
            (&TINY.replace("\"edge_count\",", ""), "no `edge_count`"),
            (
                &TINY.replace("[9,0,1,0,1,0,0", "[9,0,1,0,1,0"),
                "whole number",
            ),
            (&TINY.replace("1,0,21]", "1,0,22]"), "not at a node"),
            (
                &TINY.replace("1,0,21]", "1,0,21,2,4,7]"),
                "edge counts add up",
            ),
            (
                &TINY.replace(",3,2,5,16", ",3,9,5,16"),
                "name is not a string",
            ),
            (&TINY.replace(",3,2,5,16", ",3,2,5,-16"), "invalid value"),
            (
                &TINY.replace(",3,2,5,16", ",3,2,5,4294967296"),
                "invalid value",
            ),
        ];
        for (text, why) in cases {
            let e = read(text.as_bytes(), Keep::All).expect_err(why).to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        // Every prefix of a good snapshot is an error, never a panic.
        for cut in 0..TINY.len() {
            assert!(
                read(&TINY.as_bytes()[..cut], Keep::All).is_err(),
                "cut {cut}"
            );
        }
    }
}
