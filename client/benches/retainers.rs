//! `just bench-retainers [--repeats N] [FIRST SECOND]`: what `watch --retainers`' analysis of a
//! heap snapshot pair costs the watcher — seconds (reading the first snapshot's ids, reading the
//! second in full, the walk and the grouping) and this process's peak RSS (`VmHWM`, reset before
//! each repeat) — the target being ≤ 10 s and ≤ 2 GiB for a Next.js dev server's pair
//! (80–100 MB each). Without files it records a pair with `node` and
//! `client/tests/data/retainers/record.js` (100,000 objects kept, each with a 1,000-character
//! URL: a ~120 MB second snapshot). Prints one table, a row per repeat and the median.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use leak_client::watch::retainers::paths::new_objects;
use leak_client::watch::retainers::snapshot::{self, Keep};

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-retainers: {e}");
        std::process::exit(1);
    }
}

struct Row {
    first_s: f64,
    second_s: f64,
    paths_s: f64,
    total_s: f64,
    peak: u64,
    nodes: usize,
    edges: usize,
    new_objects: u64,
}

fn run() -> Result<(), String> {
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut repeats = 3usize;
    if let Some(i) = args.iter().position(|a| a == "--repeats") {
        repeats = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0)
            .ok_or("--repeats takes a whole number above 0")?;
        args.drain(i..i + 2);
    }
    let (first, second, _recorded) = match args.as_slice() {
        [a, b] => (PathBuf::from(a), PathBuf::from(b), None),
        [] => {
            let dir = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
            record(dir.path())?;
            (
                dir.path().join("first.heapsnapshot"),
                dir.path().join("second.heapsnapshot"),
                Some(dir),
            )
        }
        _ => return Err("usage: bench-retainers [--repeats N] [FIRST SECOND]".into()),
    };
    let size = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.len())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    println!(
        "first {} ({:.1} MB), second {} ({:.1} MB); load average {}",
        first.display(),
        size(&first)? as f64 / 1e6,
        second.display(),
        size(&second)? as f64 / 1e6,
        load_average()
    );
    let mut rows = Vec::new();
    for _ in 0..repeats {
        rows.push(once(&first, &second)?);
    }
    println!(
        "{:>7} {:>10} {:>10} {:>11} {:>11} {:>9} {:>9} {:>9} {:>11}",
        "repeat",
        "nodes",
        "edges",
        "new objects",
        "first (s)",
        "second(s)",
        "paths (s)",
        "total(s)",
        "peak RSS"
    );
    for (i, r) in rows.iter().enumerate() {
        println!(
            "{:>7} {:>10} {:>10} {:>11} {:>11.2} {:>9.2} {:>9.2} {:>9.2} {:>7.0} MiB",
            i + 1,
            r.nodes,
            r.edges,
            r.new_objects,
            r.first_s,
            r.second_s,
            r.paths_s,
            r.total_s,
            r.peak as f64 / (1 << 20) as f64
        );
    }
    let median = |f: fn(&Row) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{:>7} {:>10} {:>10} {:>11} {:>11.2} {:>9.2} {:>9.2} {:>9.2} {:>7.0} MiB",
        "median",
        "",
        "",
        "",
        median(|r| r.first_s),
        median(|r| r.second_s),
        median(|r| r.paths_s),
        median(|r| r.total_s),
        median(|r| r.peak as f64) / (1 << 20) as f64
    );
    println!("load average {}", load_average());
    Ok(())
}

/// One analysis, as `watch::retainers::analyse` runs it, timed in its three parts.
fn once(first: &Path, second: &Path) -> Result<Row, String> {
    // Resets VmHWM to the current RSS (Linux 4.0+).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let open = |p: &Path| {
        File::open(p)
            .map(|f| BufReader::with_capacity(1 << 20, f))
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let t0 = Instant::now();
    let a = snapshot::read(open(first)?, Keep::Nodes).map_err(|e| e.to_string())?;
    let after = a.max_odd_id();
    drop(a);
    let t1 = Instant::now();
    let b = snapshot::read(open(second)?, Keep::All).map_err(|e| e.to_string())?;
    let t2 = Instant::now();
    let found = new_objects(&b, after);
    let t3 = Instant::now();
    drop(b);
    Ok(Row {
        first_s: (t1 - t0).as_secs_f64(),
        second_s: (t2 - t1).as_secs_f64(),
        paths_s: (t3 - t2).as_secs_f64(),
        total_s: (t3 - t0).as_secs_f64(),
        peak: peak_rss(),
        nodes: found.nodes,
        edges: found.edges,
        new_objects: found.count,
    })
}

/// Records a pair with `node` (the default input).
fn record(dir: &Path) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/retainers/record.js");
    eprintln!("bench-retainers: recording a snapshot pair with node (100,000 objects kept)");
    let out = Command::new("node")
        .arg("--expose-gc")
        .arg(script)
        .arg(dir)
        .arg("100000")
        .output()
        .map_err(|e| format!("node: {e}"))?;
    if !out.status.success() {
        return Err(format!("node: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

/// This process's peak RSS since the last reset, in bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
