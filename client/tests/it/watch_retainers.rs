//! `watch --retainers` on real V8 heap snapshots: a recorded pair (`tests/data/retainers/`,
//! made by its `record.js`: 2,000 objects kept after the first snapshot, each holding a
//! 1,000-character URL, in a module-level store's array) pins the parser's counts, the new-object
//! filter and the top path; pairs recorded now by this machine's `node`, leaking and clean, pin
//! the same on today's V8; and `leak-client watch --probe node --retainers` on
//! `examples/node/fetch.js` finds its planted leak end to end, and nothing growing without it.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use leak_client::watch::retainers::paths::{NewObjects, new_objects};
use leak_client::watch::retainers::snapshot::{self, HeapSnapshot, Keep};
use leak_client::watch::retainers::{GROWING_BYTES_PER_REQUEST, top_paths};
use serde_json::Value;

use crate::support::{examples, watch_summary};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/retainers")
        .join(name)
}

/// A recorded file, zlib-compressed in the repository.
fn inflate(name: &str) -> Vec<u8> {
    let mut packed = Vec::new();
    File::open(data(name))
        .and_then(|mut f| f.read_to_end(&mut packed))
        .expect("recorded snapshot");
    miniz_oxide::inflate::decompress_to_vec_zlib(&packed).expect("zlib")
}

/// The planted leak's path, as `record.js` holds it.
const PLANTED: &str = "(GC roots) → (Stack roots) → system / Context.store → \
                       MetricsStore.fetchMetrics → Array[] → Object.url ⇒ string";
/// The URL's characters per request (its string adds a 12-byte header, rounded to 16).
const PLANTED_BYTES: f64 = 1000.0;
/// `record.js`'s requests between the two snapshots.
const REQUESTS: u64 = 2000;

fn analyse(first: &HeapSnapshot, second: &HeapSnapshot) -> NewObjects {
    new_objects(second, first.max_odd_id())
}

/// The planted path's last steps: the same on every run. Above them, which root V8 lists the
/// array under first varies: `record.js` snapshots from its running script, and one loaded run
/// in eight found the array held straight by a `(Handle scope)` (which the walk, like DevTools,
/// takes after the user roots, but this store is not reachable from the global object). The
/// probe snapshots from a timer, with no frame of the program's running: the end-to-end test
/// below pins the holder's name there.
const PLANTED_TAIL: &str = "Array[] → Object.url ⇒ string";

/// The top group is the planted one (the whole path when `exact`, else its last steps),
/// one object per request, within 25% of the planted bytes per request, and growing.
fn assert_planted(found: &NewObjects, requests: u64, exact: bool) {
    let top = &found.groups[0];
    if exact {
        assert_eq!(top.path, PLANTED, "{:#?}", &found.groups[..5]);
    } else {
        assert!(
            top.path.starts_with("(GC roots) → ") && top.path.ends_with(PLANTED_TAIL),
            "{:#?}",
            &found.groups[..5]
        );
    }
    assert_eq!(
        top.count, requests,
        "one URL per request after the first snapshot"
    );
    let per = top.bytes as f64 / requests as f64;
    assert!(
        (per - PLANTED_BYTES).abs() <= 0.25 * PLANTED_BYTES,
        "{per} B/request"
    );
    // The objects holding them, one per request, under the same store (its last steps only on
    // a live recording, as for the top path: a loaded run once reached the array through a
    // handle scope rather than through the store).
    let holders_tail = if exact {
        "MetricsStore.fetchMetrics → Array[] ⇒ Object"
    } else {
        "Array[] ⇒ Object"
    };
    let holders = found
        .groups
        .iter()
        .find(|g| g.path.ends_with(holders_tail) && g.count == requests)
        .unwrap_or_else(|| {
            let first: Vec<_> = found.groups.iter().take(5).collect();
            panic!("the holders' path: {first:#?}")
        });
    assert_eq!(holders.count, requests);
    let shown = top_paths(&found.groups, requests);
    assert!(shown[0].growing, "{shown:#?}");
}

#[test]
fn a_recorded_snapshot_parses_to_its_counts_and_its_planted_path() {
    let second = snapshot::read(&inflate("second.heapsnapshot.zz")[..], Keep::All).expect("parses");
    assert_eq!(
        (
            second.node_count(),
            second.edge_count(),
            second.string_count()
        ),
        (44_412, 194_173, 25_210)
    );
    assert_eq!(second.node_type(0), "synthetic");
    // The first snapshot is stored with its nodes only: all the analysis reads of it.
    let first =
        snapshot::read(&inflate("first-nodes.heapsnapshot.zz")[..], Keep::Nodes).expect("parses");
    assert_eq!(first.node_count(), 40_349);
    let after = first.max_odd_id();
    assert_eq!(after, 80_559);

    let found = analyse(&first, &second);
    assert_planted(&found, REQUESTS, true);
    // The filter: odd ids above the first's largest, and only those. The 500 objects kept before
    // the first snapshot are old; the embedder's nodes (even ids, numbered apart) are not objects.
    let odd_new = (0..second.node_count())
        .filter(|&i| second.id(i) % 2 == 1 && second.id(i) > after)
        .count() as u64;
    let even_above = (0..second.node_count())
        .filter(|&i| second.id(i) % 2 == 0 && second.id(i) > after)
        .count();
    assert!(
        even_above > 0,
        "the recording has embedder nodes above the first's ids"
    );
    assert_eq!(found.count + found.unreached, odd_new);
    assert_eq!(found.count, 4_069);
    let everything_new = new_objects(&second, 0);
    let kept = everything_new
        .groups
        .iter()
        .find(|g| g.path == PLANTED)
        .expect("planted path");
    assert_eq!(
        kept.count, 2_500,
        "without the first snapshot, the warm-up's 500 count too"
    );
}

/// Runs `record.js` with this machine's `node` into a fresh folder; returns the parsed pair.
fn record(name: &str, clean: bool) -> (HeapSnapshot, HeapSnapshot) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("retainers-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("folder");
    let mut cmd = Command::new("node");
    cmd.arg("--expose-gc")
        .arg(data("record.js"))
        .arg(&dir)
        .arg(REQUESTS.to_string());
    if clean {
        cmd.arg("clean");
    }
    let out = cmd.output().expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |f: &str, keep| {
        let file = File::open(dir.join(f)).expect("snapshot written");
        snapshot::read(BufReader::new(file), keep).expect("parses")
    };
    let pair = (
        read("first.heapsnapshot", Keep::Nodes),
        read("second.heapsnapshot", Keep::All),
    );
    let _ = std::fs::remove_dir_all(&dir);
    pair
}

#[test]
fn this_machines_node_shows_the_planted_path_and_a_clean_run_none_growing() {
    let (first, second) = record("leak", false);
    assert_planted(&analyse(&first, &second), REQUESTS, false);

    let (first, second) = record("clean", true);
    let found = analyse(&first, &second);
    let shown = top_paths(&found.groups, REQUESTS);
    assert!(
        shown.iter().all(|p| !p.growing),
        "a clean run has no growing path: {shown:#?}"
    );
    assert!(
        (found.bytes as f64) < GROWING_BYTES_PER_REQUEST * REQUESTS as f64,
        "{} new bytes in a clean run",
        found.bytes
    );
}

/// `leak-client watch --json --quiet --probe node --retainers [--requests N] -- node
/// examples/node/fetch.js` with `REQUESTS=loop_requests` and `LEAK_BYTES=leak`, bounded to
/// 120 s; its JSON summary.
fn watch_fetch(leak: u32, loop_requests: u32, watch_requests: Option<u32>) -> Value {
    let script = examples().join("node/fetch.js").display().to_string();
    let (n, loop_requests, leak) = (
        watch_requests.map(|n| n.to_string()),
        loop_requests.to_string(),
        leak.to_string(),
    );
    let mut args = vec!["--json", "--quiet", "--probe", "node", "--retainers"];
    if let Some(n) = &n {
        args.extend(["--requests", n]);
    }
    args.extend(["--", "node", &script]);
    let env = [
        ("REQUESTS", loop_requests.as_str()),
        ("PAUSE_MS", "0"),
        ("LEAK_BYTES", leak.as_str()),
    ];
    watch_summary(
        &args,
        &env,
        Duration::from_secs(120),
        "retainers  objects new between",
    )
}

#[test]
fn watch_retainers_names_the_planted_leaks_holder_and_nothing_in_a_clean_loop() {
    let s = watch_fetch(1024, 100_000, Some(6_000));
    let r = &s["retainers"];
    assert_eq!(r["notes"], serde_json::json!([]), "{r}");
    let p = &r["processes"][0];
    let top = &p["paths"][0];
    let path = top["path"].as_str().unwrap_or_default();
    // examples/node/loop.js keeps each planted string in `kept`, a module-level array.
    assert!(
        path.contains("system / Context.kept → Array[] ⇒ string"),
        "{r}"
    );
    assert_eq!(top["growing"], true, "{r}");
    let per = top["bytes_per_request"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (per - 1024.0).abs() <= 0.25 * 1024.0,
        "{per} B/request: {r}"
    );
    assert!(
        p["first"]["requests"].as_u64() < p["second"]["requests"].as_u64(),
        "{r}"
    );
    assert!(
        p["second"]["bytes"].as_u64().unwrap_or(0) > 1_000_000,
        "{r}"
    );

    let s = watch_fetch(0, 100_000, Some(6_000));
    let r = &s["retainers"];
    let p = &r["processes"][0];
    assert!(p["paths"].as_array().is_some_and(|a| !a.is_empty()), "{r}");
    let growing: Vec<&Value> = p["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["growing"] == true)
        .collect();
    assert!(growing.is_empty(), "a clean loop has no growing path: {r}");
}

#[test]
fn a_program_that_ends_before_the_watch_gets_no_snapshot_and_the_summary_says_why() {
    // 2,000 requests, then the loop exits: the first snapshot (due at 3,000) never comes, and no
    // end snapshot can be taken of a program that is gone.
    let s = watch_fetch(1024, 2_000, None);
    let r = &s["retainers"];
    let notes: Vec<&str> = r["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("the program exited before the watch ended")),
        "{r}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("the watch ended before the first was due")),
        "{r}"
    );
    assert_eq!(r["processes"], serde_json::json!([]), "{r}");
}
