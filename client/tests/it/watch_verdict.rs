//! The watch verdict on recorded series of real programs (`client/tests/data/watch/`): what it
//! must say about Node's and Python's loops and the Next.js example, with and without a probe.

use std::path::Path;

use leak_client::verdict::Class;
use leak_client::verdict::EarlyStop;
use leak_client::watch::judge::{Basis, HeapRow, TreeRow, WatchVerdict, judge, judge_split, look};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/watch")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn col(v: &Value, columns: &str, name: &str) -> usize {
    v[columns]
        .as_array()
        .and_then(|c| c.iter().position(|x| x == name))
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// The fixture as the watch command would have recorded it: a reading is quiescent when the
/// served count has not moved since the previous one.
fn verdict_of(name: &str) -> WatchVerdict {
    let (tree, heap, node) = rows_of(name);
    judge(&tree, heap.as_deref().filter(|h| !h.is_empty()), node)
}

/// The early stop fed the fixture's rows in order of served count: the class it settles on,
/// if any, and at how many requests.
fn settled_of(name: &str) -> Option<(Class, u64)> {
    settled_on(rows_of(name))
}

/// The early stop fed `rows` in order of served count: the class it settles on, if any, and at
/// how many requests.
fn settled_on((tree, heap, node): Rows) -> Option<(Class, u64)> {
    let heap = heap.filter(|h| !h.is_empty());
    let mut stop = EarlyStop::new();
    let mut counts: Vec<u64> = tree.iter().map(|t| t.requests).collect();
    counts.extend(heap.iter().flatten().map(|h| h.requests));
    counts.sort_unstable();
    counts.dedup();
    counts.into_iter().find_map(|upto| {
        let t: Vec<TreeRow> = tree
            .iter()
            .filter(|r| r.requests <= upto)
            .copied()
            .collect();
        let h: Option<Vec<HeapRow>> = heap
            .as_ref()
            .map(|h| h.iter().filter(|r| r.requests <= upto).copied().collect());
        look(&mut stop, &t, h.as_deref(), node).map(|s| (s.verdict.verdict.class, s.requests))
    })
}

type Rows = (Vec<TreeRow>, Option<Vec<HeapRow>>, bool);

/// A Node fixture judged as `watch --probe node` judges it now: the post-GC heap and the
/// external memory (`heap_used_plus_external − heap_used`) as two parts.
fn split_verdict_of(name: &str) -> WatchVerdict {
    let (tree, heap, _) = rows_of(name);
    let (_, sum, _) = rows_of_column(name, "heap_used_plus_external");
    let heap = heap.expect("heap");
    let external: Vec<HeapRow> = heap
        .iter()
        .zip(sum.expect("heap_used_plus_external"))
        .map(|(h, s)| HeapRow {
            live: s.live - h.live,
            ..*h
        })
        .collect();
    judge_split(&tree, &heap, &external)
}

fn rows_of(name: &str) -> Rows {
    rows_of_column(name, "heap_used")
}

/// The fixture's tree rows, its probe rows of column `heap_column` (Python: always `traced`),
/// and whether it ran Node.
fn rows_of_column(name: &str, heap_column: &str) -> Rows {
    let v = load(name);
    let (rq, rss) = (
        col(&v, "tree_columns", "requests"),
        col(&v, "tree_columns", "rss"),
    );
    let mut prev = u64::MAX;
    let tree: Vec<TreeRow> = v["tree"]
        .as_array()
        .expect("tree")
        .iter()
        .map(|r| {
            let requests = r[rq].as_u64().unwrap_or(0);
            let quiescent = requests == prev;
            prev = requests;
            TreeRow {
                requests,
                rss: r[rss].as_u64().unwrap_or(0),
                quiescent,
                teardown: false,
            }
        })
        .collect();
    let heap: Option<Vec<HeapRow>> = v["heap"].as_array().map(|rows| {
        let hq = col(&v, "heap_columns", "requests");
        let hl = if v["probe"] == "python" {
            col(&v, "heap_columns", "traced")
        } else {
            col(&v, "heap_columns", heap_column)
        };
        let mut prev = u64::MAX;
        rows.iter()
            .filter_map(|r| {
                let requests = r[hq].as_u64()?;
                let live = r[hl].as_u64()?;
                let quiescent = requests == prev;
                prev = requests;
                Some(HeapRow {
                    requests,
                    live,
                    quiescent,
                    teardown: false,
                })
            })
            .collect()
    });
    let node = v["labels"].get("node").is_some();
    (tree, heap, node)
}

fn slope(w: &WatchVerdict) -> f64 {
    w.verdict.slope.map_or(f64::NAN, |s| s.bytes_per_request)
}

fn assert_leak_near(name: &str, w: &WatchVerdict, want: f64, tolerance: f64) {
    assert_eq!(w.verdict.class, Class::Leak, "{name}: {}", w.verdict.reason);
    let got = slope(w);
    assert!(
        (got - want).abs() <= tolerance * want,
        "{name}: slope {got:.1} B/request, want {want} ±{:.0}%",
        tolerance * 100.0
    );
}

#[test]
fn planted_leaks_are_leaks_at_their_size() {
    let w = verdict_of("node-fetch-leak256-probe");
    assert_eq!(w.basis, Basis::Heap);
    // V8 adds 20–35 B/request of its own in a loop's first 10,000 requests.
    assert_leak_near("node-fetch-leak256-probe", &w, 256.0, 0.15);
    assert_leak_near("py-leak8k-rss", &verdict_of("py-leak8k-rss"), 8192.0, 0.25);
    assert_leak_near(
        "py-leak8k-tracemalloc",
        &verdict_of("py-leak8k-tracemalloc"),
        8192.0,
        0.05,
    );
}

/// The recorded loops that keep nothing, with and without a probe.
const CLEAN_LOOPS: [&str; 9] = [
    "node-fetch-read-probe",
    "node-fetch-skip-probe",
    "node-fetch-clean10k-probe",
    "node-http-read-probe",
    "node-fetch-read-rss",
    "node-fetch-skip-rss",
    "node-http-read-rss",
    "py-clean-rss",
    "py-clean-tracemalloc",
];

#[test]
fn clean_loops_are_never_leaks_with_or_without_a_probe() {
    for name in CLEAN_LOOPS {
        let w = verdict_of(name);
        assert_ne!(w.verdict.class, Class::Leak, "{name}: {}", w.verdict.reason);
    }
    // Node's native fetch over 30,000 requests, with the probe: nothing to find.
    for name in ["node-fetch-read-probe", "node-fetch-skip-probe"] {
        let w = verdict_of(name);
        assert!(
            matches!(w.verdict.class, Class::Stable | Class::Bounded),
            "{name}: {}",
            w.verdict.reason
        );
    }
    for name in ["py-clean-rss", "py-clean-tracemalloc"] {
        assert_eq!(verdict_of(name).verdict.class, Class::Stable, "{name}");
    }
}

#[test]
fn the_nextjs_fetch_leak_is_found_by_the_probe_and_not_claimed_from_rss() {
    // next@14.2.0-canary.62's fetch route retains ~1.5 KB per request.
    assert_leak_near(
        "next-canary-start-fetch-probe",
        &verdict_of("next-canary-start-fetch-probe"),
        1500.0,
        0.33,
    );
    // Under `next dev` the heap drops once by 3 MB in the early half (a release of Next's own),
    // which alone would leave that half's interval at zero: the one release is set aside, and
    // says so.
    let dev = verdict_of("next-canary-dev-fetch-probe");
    assert_eq!(dev.verdict.class, Class::Leak, "{}", dev.verdict.reason);
    assert!(
        dev.verdict.reason.contains("one release of"),
        "{}",
        dev.verdict.reason
    );
    assert!((1000.0..=2000.0).contains(&slope(&dev)), "{}", slope(&dev));
    // Its `http` route, and the fixed 14.2.35: not leaks.
    for name in ["next-canary-dev-http-probe", "next-fixed-dev-fetch-probe"] {
        let w = verdict_of(name);
        assert_ne!(w.verdict.class, Class::Leak, "{name}: {}", w.verdict.reason);
    }
    // RSS grows by kilobytes per request on every route and version: it cannot tell them
    // apart, so it never says `leak` for Node, and says why.
    for name in [
        "next-canary-dev-fetch-rss",
        "next-canary-dev-http-rss",
        "next-fixed-dev-fetch-rss",
        "node-fetch-leak1k-rss",
        "node-fetch-leak256-rss",
    ] {
        let w = verdict_of(name);
        assert_eq!(w.basis, Basis::Rss);
        assert_ne!(w.verdict.class, Class::Leak, "{name}: {}", w.verdict.reason);
        let caveat = w.caveat.as_deref().unwrap_or("");
        assert!(
            w.verdict.reason.contains("--probe node") || caveat.contains("probe"),
            "{name}: {} / {caveat}",
            w.verdict.reason
        );
    }
}

#[test]
fn an_rss_verdict_always_says_what_rss_cannot_tell() {
    for name in ["py-leak8k-rss", "py-clean-rss", "node-fetch-read-rss"] {
        let w = verdict_of(name);
        assert_eq!(w.basis, Basis::Rss);
        let caveat = w.caveat.unwrap_or_default();
        assert!(caveat.contains("RSS cannot separate"), "{name}: {caveat}");
        assert!(caveat.contains("--probe"), "{name}: {caveat}");
        assert!(
            !w.verdict.reason.contains("live heap"),
            "{name}: {}",
            w.verdict.reason
        );
    }
    // Advice about flags watch has not.
    for name in [
        "node-fetch-leak1k-rss",
        "next-canary-dev-http-rss",
        "node-http-read-probe",
    ] {
        let w = verdict_of(name);
        assert!(
            !w.verdict.reason.contains("--rounds"),
            "{name}: {}",
            w.verdict.reason
        );
    }
}

#[test]
fn the_early_stop_never_settles_a_recorded_clean_run_as_a_leak() {
    for name in CLEAN_LOOPS.into_iter().chain([
        "next-canary-dev-http-probe",
        "next-fixed-dev-fetch-probe",
        "next-canary-dev-fetch-rss",
        "next-fixed-dev-fetch-rss",
    ]) {
        let settled = settled_of(name);
        assert!(
            settled.is_none_or(|(c, _)| c != Class::Leak),
            "{name}: {settled:?}"
        );
    }
    // The recorded planted leaks settle as leaks, before the run's end.
    for (name, requests) in [("py-leak8k-tracemalloc", 8_000), ("py-leak8k-rss", 8_000)] {
        let settled = settled_of(name);
        eprintln!("{name}: settled {settled:?} of {requests} requests");
        assert!(
            settled.is_some_and(|(c, at)| c == Class::Leak && at < requests),
            "{name}: {settled:?}"
        );
    }
}

/// A gallery case's `watch --jsonl` series (`tests/data/watch/real-leaks/NAME.jsonl`) as the
/// session held it: tree rows from the tree samples, heap rows from the probe's readings, and,
/// for a program that exited by itself (its `NAME.summary.json`), the teardown the session
/// marks: the probe's last reading at the last served count (its exit reading) and the tree's
/// readings after the first at that count.
fn gallery_rows(name: &str) -> Rows {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/watch/real-leaks");
    let read = |file: String| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let summary: Value =
        serde_json::from_str(&read(format!("{name}.summary.json"))).expect("summary JSON");
    let (mut tree, mut heap) = (Vec::new(), Vec::new());
    let mut prev_heap = u64::MAX;
    for line in read(format!("{name}.jsonl")).lines() {
        let v: Value = serde_json::from_str(line).expect("a JSONL line");
        let requests = v["requests"].as_u64().expect("requests");
        match v["kind"].as_str() {
            Some("probe") => {
                let Some(live) = v["live"].as_u64() else {
                    continue;
                };
                heap.push(HeapRow {
                    requests,
                    live,
                    quiescent: requests == prev_heap,
                    teardown: false,
                });
                prev_heap = requests;
            }
            Some(kind @ ("interval" | "quiescent")) => tree.push(TreeRow {
                requests,
                rss: v["rss"].as_u64().unwrap_or(0),
                quiescent: kind == "quiescent",
                teardown: false,
            }),
            other => panic!("{name}: unknown kind {other:?}"),
        }
    }
    if summary["stopped_by"] == "exited" {
        let last = tree.iter().map(|t| t.requests).max().unwrap_or(0);
        for t in tree.iter_mut().filter(|t| t.requests == last).skip(1) {
            t.teardown = true;
        }
        let last_heap = heap.iter().map(|h| h.requests).max().unwrap_or(0);
        if let Some(h) = heap.last_mut().filter(|h| h.requests == last_heap) {
            h.teardown = true;
        }
    }
    let node = name.starts_with("got") || name.starts_with("next");
    (tree, Some(heap), node)
}

/// A gallery case judged as its watch judged it.
fn judge_gallery(name: &str) -> WatchVerdict {
    let (tree, heap, node) = gallery_rows(name);
    judge(&tree, heap.as_deref(), node)
}

fn assert_not_leak(name: &str, w: &WatchVerdict) {
    assert_ne!(w.verdict.class, Class::Leak, "{name}: {}", w.verdict.reason);
}

#[test]
fn the_gallery_leaks_are_leaks_and_their_fixed_releases_are_not() {
    // got 12.5.2: one AbortController's signal on every request (sindresorhus/got#2160).
    let got = judge_gallery("got-12.5.2");
    assert_eq!(got.basis, Basis::Heap);
    assert_leak_near("got-12.5.2", &got, 23_700.0, 0.25);
    // aiohttp 3.12.2: the cookie jar keeps an entry per path (aio-libs/aiohttp#11052).
    let aio = judge_gallery("aiohttp-3.12.2");
    assert_leak_near("aiohttp-3.12.2", &aio, 480.0, 0.25);
    let released = aio.released_at_exit.unwrap_or(0);
    assert!(
        released > 8_000_000,
        "aiohttp-3.12.2: the session's close freed ~9.7 MB at exit, got {released}"
    );
    for fixed in ["got-12.5.3", "aiohttp-3.12.3"] {
        assert_not_leak(fixed, &judge_gallery(fixed));
    }
}

/// A gallery series cut at `upto` requests, as a run of that length would have read it.
fn cut((tree, heap, node): Rows, upto: u64) -> Rows {
    let tree = tree.into_iter().filter(|t| t.requests <= upto).collect();
    let heap = heap.map(|h| h.into_iter().filter(|r| r.requests <= upto).collect());
    (tree, heap, node)
}

#[test]
fn the_gallery_judged_at_the_probes_defaults_of_today() {
    // Recorded with the probes' defaults of 2026-12-06: Node read every 3% of heap growth as
    // well as on its 5% budget, Python's anonymous memory after gc.collect(1) (no tracemalloc).
    // got 12.5.2 in 3,000 requests: read 76 times (12 on the budget alone, `inconclusive`).
    let got = judge_gallery("got-12.5.2-paced");
    assert_leak_near("got-12.5.2-paced", &got, 23_800.0, 0.25);
    assert!(got.verdict.points_used >= 12, "{}", got.verdict.points_used);
    // aiohttp 3.12.2's cookie jar, seen in the process's anonymous memory.
    let aio = judge_gallery("aiohttp-3.12.2-anon");
    assert_leak_near("aiohttp-3.12.2-anon", &aio, 480.0, 0.25);
    for fixed in ["got-12.5.3-paced", "aiohttp-3.12.3-anon"] {
        assert_not_leak(fixed, &judge_gallery(fixed));
    }
}

#[test]
fn a_straight_warm_up_is_not_a_leak_on_a_short_run_nor_an_early_stop() {
    // aiohttp 3.12.3 (fixed) grows its anonymous memory ~110 B/request in a straight line from
    // request ~500 to ~2,300, then not at all. Cut at 1,414 requests it reads as a steady
    // 129 B/request climb; --until-verdict stopped it there as a leak before the short-run rule.
    // Cut at every look up to 2,828 and after.
    let rows = gallery_rows("aiohttp-3.12.3-anon");
    for upto in [1_189, 1_414, 1_682, 2_000, 2_378, 2_828, 3_500] {
        let (tree, heap, node) = cut(rows.clone(), upto);
        let w = judge(&tree, heap.as_deref(), node);
        assert_ne!(
            w.verdict.class,
            Class::Leak,
            "at {upto}: {}",
            w.verdict.reason
        );
    }
    let settled = settled_on(rows);
    assert!(
        settled.is_none_or(|(class, _)| class != Class::Leak),
        "aiohttp-3.12.3-anon settled {settled:?}"
    );
    // The leaking release is never stopped as anything but a leak. (It is not stopped at all:
    // anonymous memory climbs in arena-sized steps, so the early half reads faster than the
    // late one — 670 against 467 B/request at 5,657 requests — and the early stop waits for a
    // rate that does not slow down; the run's own verdict at 20,000 is `leak`, above.)
    let settled = settled_on(gallery_rows("aiohttp-3.12.2-anon"));
    assert!(
        settled.is_none_or(|(class, _)| class == Class::Leak),
        "aiohttp-3.12.2-anon settled {settled:?}"
    );
    // A leak far above any warm-up is still called on a short run: 8 KiB/request, 2,000.
    let leak8k = cut(rows_of("py-leak8k-rss"), 2_000);
    let w = judge(&leak8k.0, leak8k.1.as_deref(), leak8k.2);
    assert_eq!(w.verdict.class, Class::Leak, "{}", w.verdict.reason);
}

#[test]
fn the_early_stop_settles_the_got_leak_at_2000_requests() {
    let settled = settled_on(gallery_rows("got-12.5.2"));
    let (class, at) = settled.expect("got 12.5.2 settles");
    assert_eq!(class, Class::Leak);
    // Looks fall at 1,189, 1,414, 1,682 and 2,000 requests (a Node heap is never judged before
    // 1,000); the recorded series (every 4th probe reading kept) has its first reading past 2,000 at 2,002.
    assert!(at <= 2_010, "settled at {at} requests");
    // Read whenever the heap had grown 3%, by forced collections, at 276 requests/s.
    let (class, at) = settled_on(gallery_rows("got-12.5.2-paced")).expect("settles");
    assert_eq!(class, Class::Leak);
    assert!(at <= 2_100, "got-12.5.2-paced settled at {at} requests");
    // Read as the probe reads it now: V8's memory measurement, its own estimate of the live
    // objects (`js_estimate`), at 366 requests/s. With `heap_used` instead, read when the
    // measurement ended, the readings scattered 3-5x as far around the line, and four runs
    // settled at 2,830-4,007 requests.
    let (class, at) = settled_on(gallery_rows("got-12.5.2-estimate")).expect("settles");
    assert_eq!(class, Class::Leak);
    assert!(at <= 2_010, "got-12.5.2-estimate settled at {at} requests");
    // A run whose look at 1,414 fell short (a late half of 7 readings, one 440 KB above the
    // line): with two looks per doubling it waited for 2,828; with four it settles by 2,000.
    let (class, at) = settled_on(gallery_rows("got-12.5.2-estimate-late")).expect("settles");
    assert_eq!(class, Class::Leak);
    assert!(
        at <= 2_010,
        "got-12.5.2-estimate-late settled at {at} requests"
    );
}

#[test]
fn the_gallery_read_by_v8s_own_estimate() {
    // Recorded with the probe of this commit on: Node's timer readings are vm.measureMemory's
    // jsMemoryEstimate less ArrayBuffers' contents (those are in `external`).
    let got = judge_gallery("got-12.5.2-estimate");
    assert_leak_near("got-12.5.2-estimate", &got, 23_800.0, 0.25);
    // The fixed release over 10,000 requests, and `just watch-next`'s two releases.
    for fixed in ["got-12.5.3-estimate", "next-14.2.35-dev-estimate"] {
        assert_not_leak(fixed, &judge_gallery(fixed));
        let settled = settled_on(gallery_rows(fixed));
        assert!(
            settled.is_none_or(|(class, _)| class != Class::Leak),
            "{fixed} settled {settled:?}"
        );
    }
    let next = judge_gallery("next-14.2.0-canary.62-dev-estimate");
    assert_leak_near("next-14.2.0-canary.62-dev-estimate", &next, 1_500.0, 0.25);
}

#[test]
fn external_memory_is_judged_beside_the_heap_without_drowning_its_leak() {
    // Under `next dev` external swings by hundreds of MB between readings (the compiler's
    // buffers): judged as a part of its own it is flat, and the heap's ~1.5 KB/request still
    // decides (judged as one series with the heap, it came out inconclusive).
    for name in [
        "next-canary-dev-fetch-probe",
        "next-canary-start-fetch-probe",
    ] {
        let w = split_verdict_of(name);
        assert_leak_near(name, &w, 1500.0, 0.33);
        let split = w.split.expect("split");
        let external = split.external.map_or(f64::NAN, |s| s.bytes_per_request);
        assert!(external.abs() < 32.0, "{name}: external {external}");
        let heap = split.heap.map_or(f64::NAN, |s| s.bytes_per_request);
        assert!(
            (slope(&w) - heap - external).abs() < 1e-6,
            "{name}: the slope is the parts' sum"
        );
    }
    assert_leak_near(
        "node-fetch-leak256-probe",
        &split_verdict_of("node-fetch-leak256-probe"),
        256.0,
        0.15,
    );
    for name in [
        "node-fetch-read-probe",
        "node-fetch-skip-probe",
        "node-fetch-clean10k-probe",
        "node-http-read-probe",
        "next-canary-dev-http-probe",
        "next-fixed-dev-fetch-probe",
    ] {
        let w = split_verdict_of(name);
        assert_ne!(w.verdict.class, Class::Leak, "{name}: {}", w.verdict.reason);
        assert!(w.split.is_some(), "{name}");
    }
}

#[test]
fn a_nextjs_leak_with_one_release_mid_run_and_a_start_up_drop_is_a_leak() {
    // `just watch-next` (14.2.0-canary.62, start-fetch, `next dev`), twice on 2026-12-06: the
    // post-GC heap grew ~1.5 KB/request, with one release mid-run (a compile's buffers: 5 MB at
    // request 4,712 in one reading; 3.5 MB near 4,300 over four readings, only one step of them
    // over 1 MiB) and a drop of 3.5 MB from start-up to the first request. Live, both read
    // `inconclusive` ("flat early, grew late"): the start-up drop counted as a second release,
    // and a release spread over readings was not one. Now a release is a run of readings that
    // never rise, after the first request.
    for name in ["next-14.2.0-canary.62-dev", "next-14.2.0-canary.62-dev-2"] {
        let (tree, heap, _) = gallery_rows(name);
        let w = judge(&tree, heap.as_deref(), true);
        assert_leak_near(name, &w, 1_500.0, 0.25);
        assert!(
            w.verdict.reason.contains("one release of"),
            "{name}: {}",
            w.verdict.reason
        );
    }
    // The fixed release, the same day and recipe: not a leak.
    let (tree, heap, _) = gallery_rows("next-14.2.35-dev");
    let w = judge(&tree, heap.as_deref(), true);
    assert_ne!(w.verdict.class, Class::Leak, "{}", w.verdict.reason);
    // Read by V8's memory measurement (the probe's timer readings since), with a release of
    // 2.5 MB mid-run in one of its two processes and a slow rise around it (136.0 → 137.0 MB
    // over 5,000 requests, 134.3 → 134.6 after): not a leak, and honestly not flat either.
    let (tree, heap, _) = gallery_rows("next-14.2.35-dev-measured");
    let w = judge(&tree, heap.as_deref(), true);
    assert_eq!(w.verdict.class, Class::Inconclusive, "{}", w.verdict.reason);
}
