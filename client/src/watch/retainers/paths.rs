//! The objects new in a second heap snapshot and their shortest retainer paths from the GC
//! roots, grouped: pure, over a parsed [`HeapSnapshot`]; it reads no file.
//!
//! **New objects.** V8 gives an object its id the first time a snapshot sees it, counting up in
//! steps of two from an odd number, and keeps the id while the object lives (moves included). So
//! an object alive in the second snapshot whose id is odd and above the first snapshot's largest
//! odd id was allocated after the first snapshot and is still alive. Even ids are not JavaScript
//! objects: the embedder's nodes (Node's native handles, up to 2.5e9) and V8's synthetic roots.
//!
//! **Shortest path.** A breadth-first walk over the edges, the way Chrome DevTools' heap
//! snapshot worker measures distances (`HeapSnapshot.calculateDistances`): first from the user
//! roots — the root's children that are not synthetic: the global object, the embedder's root
//! handles (`Node / TCPSocketWrap`) — then from the root for what only V8's own roots hold
//! (`(GC roots) → (Stack roots)`, `(Handle scope)`, …), so that a path through the program's
//! objects wins over one through a handle that happens to be live at the snapshot. Weak edges are
//! not followed (they do not retain), nor the root's shortcut edges in the second pass, nor
//! DevTools' own exclusions
//! (a `(map descriptors)` array's values, the native context's `sloppy_function_map`), nor the
//! `(Internalized strings)` / `(String table)` roots (every interned property name is under
//! them: they would "retain" what an object's shape merely names). The first time the walk
//! reaches a node it records the edge it came by; that chain back to the root is the node's path.
//!
//! **Grouping.** A path is written as the class of each node on it with the edge taken out of it
//! (`Object.fetchMetrics`, `Array[]`, `system / Context.kept`), then `⇒` and the new object's own
//! class, e.g. `(GC roots) → … → Object.fetchMetrics → Array[] ⇒ Object`. Array indices are
//! collapsed (`[123]` → `[]`, for `element` and `hidden` edges and internal ones named by a
//! number, a hash table's slots) so that the elements of one growing array share one path, and
//! every string kind reads `string`. New objects are grouped by
//! that text: bytes (their self sizes) and count per path.

use std::collections::HashMap;

use super::snapshot::HeapSnapshot;

/// No node / no path.
const NONE: u32 = u32::MAX;
/// The name of a node whose name is not part of its class (strings, numbers).
const ANY: u32 = u32::MAX;

/// A node's class as a path shows it: its type and, for most types, its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Class {
    kind: u32,
    name: u32,
}

/// One step of a path: the class of a node and the edge taken out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Step {
    from: Class,
    edge_type: u32,
    /// The edge's name (a string index), or [`ANY`] for a collapsed index.
    edge_name: u32,
}

/// One group of new objects: the same retainer path to the same class.
#[derive(Debug, Clone, PartialEq)]
pub struct PathGroup {
    /// The path, as text (see the module docs).
    pub path: String,
    /// The objects' self sizes, summed.
    pub bytes: u64,
    /// Objects.
    pub count: u64,
}

/// What [`new_objects`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct NewObjects {
    /// Nodes in the snapshot.
    pub nodes: usize,
    /// Edges in the snapshot.
    pub edges: usize,
    /// New objects reached from the roots, and their bytes.
    pub count: u64,
    pub bytes: u64,
    /// New objects the walk did not reach (held only weakly, or by an excluded root).
    pub unreached: u64,
    /// Every group, most bytes first (ties: more objects, then the path's text).
    pub groups: Vec<PathGroup>,
}

/// The walk's result: for each node, the node and edge it was first reached by.
struct Tree {
    parent: Vec<u32>,
    /// The edge's index in `edges` (its first field).
    via: Vec<u32>,
}

/// The types and names the walk and the labels test, looked up once.
struct Vocabulary {
    weak: Option<u32>,
    shortcut: Option<u32>,
    element: Option<u32>,
    hidden_edge: Option<u32>,
    hidden_node: Option<u32>,
    array_node: Option<u32>,
    synthetic_node: Option<u32>,
    /// Node types that read as their type, not their name.
    unnamed: Vec<u32>,
}

impl Vocabulary {
    fn of(s: &HeapSnapshot) -> Vocabulary {
        let edge = |n: &str| s.edge_types.iter().position(|t| t == n).map(|i| i as u32);
        let node = |n: &str| s.node_types.iter().position(|t| t == n).map(|i| i as u32);
        let unnamed = [
            "string",
            "concatenated string",
            "sliced string",
            "number",
            "bigint",
            "symbol",
        ]
        .iter()
        .filter_map(|n| node(n))
        .collect();
        Vocabulary {
            weak: edge("weak"),
            shortcut: edge("shortcut"),
            element: edge("element"),
            hidden_edge: edge("hidden"),
            hidden_node: node("hidden"),
            array_node: node("array"),
            synthetic_node: node("synthetic"),
            unnamed,
        }
    }

    /// Whether an edge's `name_or_index` is an index (not a string).
    fn indexed(&self, edge_type: u32) -> bool {
        Some(edge_type) == self.element || Some(edge_type) == self.hidden_edge
    }
}

/// Finds the objects of `s` with an odd id above `after` (the first snapshot's largest odd id)
/// and groups them by retainer path.
pub fn new_objects(s: &HeapSnapshot, after: u32) -> NewObjects {
    let v = Vocabulary::of(s);
    let tree = walk(s, &v);
    let mut paths = Paths::default();
    let mut groups: HashMap<(u32, Class), (u64, u64)> = HashMap::new();
    let (mut count, mut bytes, mut unreached) = (0u64, 0u64, 0u64);
    for i in 0..s.node_count() {
        let id = s.id(i);
        if id % 2 == 0 || id <= after {
            continue;
        }
        if i != 0 && tree.parent[i] == NONE {
            unreached += 1;
            continue;
        }
        let size = u64::from(s.self_size(i));
        count += 1;
        bytes += size;
        let path = paths.of(s, &v, &tree, i as u32);
        let g = groups.entry((path, class(s, &v, i))).or_default();
        g.0 += size;
        g.1 += 1;
    }
    // Keys that read the same (a string and a concatenated string) are one group.
    let mut by_text: HashMap<String, (u64, u64)> = HashMap::with_capacity(groups.len());
    for ((path, leaf), (b, c)) in groups {
        let g = by_text.entry(paths.text(s, path, leaf)).or_default();
        g.0 += b;
        g.1 += c;
    }
    let mut groups: Vec<PathGroup> = by_text
        .into_iter()
        .map(|(path, (bytes, count))| PathGroup { path, bytes, count })
        .collect();
    groups.sort_by(|a, b| {
        (b.bytes, b.count)
            .cmp(&(a.bytes, a.count))
            .then_with(|| a.path.cmp(&b.path))
    });
    NewObjects {
        nodes: s.node_count(),
        edges: s.edge_count(),
        count,
        bytes,
        unreached,
        groups,
    }
}

/// The breadth-first walk from node 0 (the snapshot's root); see the module docs.
fn walk(s: &HeapSnapshot, v: &Vocabulary) -> Tree {
    let l = s.layout;
    let n = s.node_count();
    let mut first_edge = Vec::with_capacity(n + 1);
    let mut at = 0u32;
    for i in 0..n {
        first_edge.push(at);
        at += s.node_field(i, l.node_edge_count);
    }
    first_edge.push(at);
    let mut parent = vec![NONE; n];
    let mut via = vec![NONE; n];
    let mut queue: Vec<u32> = Vec::with_capacity(n);
    if n == 0 {
        return Tree { parent, via };
    }
    let excluded_roots: [&[u8]; 2] = [b"(Internalized strings)", b"(String table)"];
    let mut seen = vec![false; n];
    seen[0] = true;
    // First the user roots: the root's children that are not synthetic (the global object, the
    // embedder's root handles such as a socket's wrap), reached by any edge but a weak one.
    for e in first_edge[0]..first_edge[1] {
        let base = e as usize * l.edge_fields;
        let to = s.edges[base + l.edge_to] as usize / l.node_fields;
        if Some(s.edges[base + l.edge_type]) == v.weak
            || seen[to]
            || Some(s.node_field(to, l.node_type)) == v.synthetic_node
        {
            continue;
        }
        seen[to] = true;
        parent[to] = 0;
        via[to] = base as u32;
        queue.push(to as u32);
    }
    let mut head = 0;
    // Two passes over the queue: what the user roots hold, then (from the root itself, whose
    // shortcuts are skipped) what only V8's own roots hold.
    for pass in 0..2 {
        if pass == 1 {
            queue.push(0);
        }
        while head < queue.len() {
            let from = queue[head] as usize;
            head += 1;
            let from_type = s.node_field(from, l.node_type);
            let descriptors =
                Some(from_type) == v.array_node && s.node_name(from) == b"(map descriptors)";
            let native_context =
                Some(from_type) == v.hidden_node && s.node_name(from) == b"system / NativeContext";
            for e in first_edge[from]..first_edge[from + 1] {
                let base = e as usize * l.edge_fields;
                let edge_type = s.edges[base + l.edge_type];
                if Some(edge_type) == v.weak || Some(edge_type) == v.shortcut {
                    continue;
                }
                let to = s.edges[base + l.edge_to] as usize / l.node_fields;
                if seen[to] {
                    continue;
                }
                let name = s.edges[base + l.edge_name];
                // DevTools' filter: a descriptor array's entries are (key, details, value) triples
                // after two header slots; the values are the objects' own, not the map's.
                if descriptors && v.indexed(edge_type) && name >= 2 && name % 3 == 1 {
                    continue;
                }
                if native_context
                    && !v.indexed(edge_type)
                    && s.string(name as usize) == b"sloppy_function_map"
                {
                    continue;
                }
                if from_type == s.node_field(to, l.node_type)
                    && excluded_roots.contains(&s.node_name(to))
                {
                    continue;
                }
                seen[to] = true;
                parent[to] = from as u32;
                via[to] = base as u32;
                queue.push(to as u32);
            }
        }
    }
    Tree { parent, via }
}

/// A node's class: its type for the unnamed kinds, else its type and name.
fn class(s: &HeapSnapshot, v: &Vocabulary, i: usize) -> Class {
    let kind = s.node_field(i, s.layout.node_type);
    let name = if v.unnamed.contains(&kind) {
        ANY
    } else {
        s.node_field(i, s.layout.node_name)
    };
    Class { kind, name }
}

/// Interned paths: path 0 is the root's (empty); path `p > 0` is `table[p - 1]`: its parent path
/// and its last step.
#[derive(Default)]
struct Paths {
    table: Vec<(u32, Step)>,
    index: HashMap<(u32, Step), u32>,
    /// Each node's path, once known.
    of_node: Vec<u32>,
    stack: Vec<usize>,
}

impl Paths {
    /// The path of node `i` (a node the walk reached, or the root).
    fn of(&mut self, s: &HeapSnapshot, v: &Vocabulary, tree: &Tree, i: u32) -> u32 {
        if self.of_node.is_empty() {
            self.of_node = vec![NONE; s.node_count()];
        }
        // Up to a node whose path is known (or the root, or a child of the root: path 0).
        let mut at = i as usize;
        loop {
            if self.of_node[at] != NONE {
                break;
            }
            let p = tree.parent[at];
            if p == NONE || p == 0 {
                self.of_node[at] = 0;
                break;
            }
            self.stack.push(at);
            at = p as usize;
        }
        while let Some(node) = self.stack.pop() {
            let p = tree.parent[node] as usize;
            let base = tree.via[node] as usize;
            let l = s.layout;
            let edge_type = s.edges[base + l.edge_type];
            let step = Step {
                from: class(s, v, p),
                edge_type,
                edge_name: match s.edges[base + l.edge_name] {
                    _ if v.indexed(edge_type) => ANY,
                    // A hash table's slots are internal edges named by number (`Map.table` →
                    // `(array).699`): indices too.
                    name if is_number(s.string(name as usize)) => ANY,
                    name => name,
                },
            };
            let key = (self.of_node[p], step);
            let next = self.table.len() as u32 + 1;
            let id = *self.index.entry(key).or_insert(next);
            if id == next {
                self.table.push(key);
            }
            self.of_node[node] = id;
        }
        self.of_node[i as usize]
    }

    /// `path ⇒ leaf` as text.
    fn text(&self, s: &HeapSnapshot, mut path: u32, leaf: Class) -> String {
        let mut steps = Vec::new();
        while path != 0 {
            let (parent, step) = self.table[path as usize - 1];
            steps.push(step);
            path = parent;
        }
        let mut out = String::new();
        let synthetic = s.node_types.iter().position(|t| t == "synthetic");
        for (k, step) in steps.iter().rev().enumerate() {
            if k > 0 {
                out.push_str(" → ");
            }
            out.push_str(&class_text(s, step.from));
            // A synthetic root's entries are indexed: its name alone says it.
            if Some(step.from.kind as usize) != synthetic {
                if step.edge_name == ANY {
                    out.push_str("[]");
                } else {
                    out.push('.');
                    out.push_str(&name_text(s.string(step.edge_name as usize)));
                }
            }
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("⇒ ");
        out.push_str(&class_text(s, leaf));
        out
    }
}

/// Whether a name is a decimal number (an index written as a string).
fn is_number(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(u8::is_ascii_digit)
}

/// Names longer than this are cut (with `…`) in a path.
const NAME_CHARS: usize = 48;

fn name_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(NAME_CHARS).collect();
    if text.chars().nth(NAME_CHARS).is_some() || bytes.len() >= super::snapshot::MAX_STRING {
        out.push('…');
    }
    // A path is one line.
    out.replace(['\n', '\r'], " ")
}

fn class_text(s: &HeapSnapshot, c: Class) -> String {
    let kind = s
        .node_types
        .get(c.kind as usize)
        .map_or("?", String::as_str);
    if c.name == ANY {
        return match kind {
            "concatenated string" | "sliced string" => "string".to_string(),
            k => k.to_string(),
        };
    }
    let name = name_text(s.string(c.name as usize));
    match kind {
        _ if name.is_empty() => format!("({kind})"),
        "closure" => format!("{name}()"),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{Keep, read};
    use super::*;

    /// Root → (GC roots) → Holder -kept-> Array -[i]-> 3 strings, plus a weak edge from the
    /// holder to a fourth string (new, not retained), a shortcut from the root to the holder (as
    /// to the global object); the array's third slot is an internal edge named `12` (as a hash
    /// table's are).
    const GRAPH: &str = r#"{"snapshot":{"meta":{"node_fields":["type","name","id","self_size","edge_count"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string"]],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"]]},"node_count":8,"edge_count":8},
"nodes":[9,0,1,0,2
,9,1,3,0,1
,3,2,5,24,2
,3,3,101,16,3
,2,4,103,40,0
,10,4,105,40,0
,2,4,107,32,0
,2,4,109,56,0],
"edges":[1,0,5
,5,6,10
,1,0,10
,2,5,15
,6,7,35
,1,0,20
,1,1,25
,3,8,30],
"strings":["","(GC roots)","Holder","Array","x","kept","list","ghost","12"]}"#;

    #[test]
    fn new_objects_are_grouped_by_their_shortest_strong_path() {
        let s = read(GRAPH.as_bytes(), Keep::All).expect("parses");
        let found = new_objects(&s, 99);
        assert_eq!((found.nodes, found.edges), (8, 8));
        // The array (101) and its three strings (103, 105, 107); 109 is held only weakly.
        assert_eq!((found.count, found.bytes, found.unreached), (4, 128, 1));
        let texts: Vec<(&str, u64, u64)> = found
            .groups
            .iter()
            .map(|g| (g.path.as_str(), g.bytes, g.count))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("Holder.kept → Array[] ⇒ string", 112, 3),
                ("Holder.kept ⇒ Array", 16, 1),
            ],
            "the root's shortcut to the holder makes it a user root, walked before (GC roots); \
             indices (and numbered slots) collapse; string kinds merge"
        );
        // Everything above the holder's id is new; nothing is above the largest.
        assert_eq!(new_objects(&s, 4).count, 5);
        assert_eq!(new_objects(&s, 109).count, 0);
    }
}
