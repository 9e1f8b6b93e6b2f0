//! `--sites` through the binary: `raw --sites --sites-out FILE --json` writes a DHAT profile
//! (the format `dh_view.html` reads) naming the planted leak and says where in its summary;
//! `compare --sites --control` writes one profile per run and the sites in `report.md`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common;

const EXE: &str = env!("CARGO_BIN_EXE_leak-client");

fn temp_dir(name: &str) -> std::path::PathBuf {
    crate::support::scratch(name)
}

/// A DHAT file as `dh_view.html` checks it: version 2, heap mode, program points whose frame
/// indexes are in the frame table, which starts with `[root]`.
fn read_dhat(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the profile exists");
    let v: serde_json::Value = serde_json::from_str(&text).expect("the profile is JSON");
    assert_eq!(v["dhatFileVersion"], 2);
    assert_eq!(v["mode"], "rust-heap");
    let ftbl = v["ftbl"].as_array().expect("ftbl");
    assert_eq!(ftbl[0], "[root]");
    for pp in v["pps"].as_array().expect("pps") {
        for f in pp["fs"].as_array().expect("fs") {
            let i = f.as_u64().expect("a frame index") as usize;
            assert!(i < ftbl.len(), "frame {i} outside the table");
        }
    }
    v
}

#[test]
fn a_run_with_sites_writes_a_dhat_profile_and_says_where() {
    let srv = common::server(0);
    let dir = temp_dir("sites-cli");
    let profile = dir.join("p.json");
    let out = Command::new(EXE)
        .args([
            "raw",
            "--url",
            &srv.url(),
            "--requests",
            "3000",
            "--concurrency",
            "2",
        ])
        .args(["--inject-leak", "1KiB", "--sites", "--sites-out"])
        .arg(&profile)
        .arg("--json")
        .output()
        .expect("runs");
    srv.shutdown(Duration::from_secs(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("a JSON summary on stdout");
    let sites = &summary["sites"];
    assert_eq!(sites["dhat"], profile.display().to_string());
    assert!(
        sites["growing"][0]["function"]
            .as_str()
            .is_some_and(|f| f.ends_with("forget_block")),
        "{sites}"
    );
    assert!(stderr.contains("profile  "), "{stderr}");
    let v = read_dhat(&profile);
    let named = v["ftbl"]
        .as_array()
        .expect("ftbl")
        .iter()
        .any(|f| f.as_str().is_some_and(|f| f.contains("forget_block")));
    assert!(named, "the planted site is in the profile's frames");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_with_sites_reports_sites_per_run() {
    let dir = temp_dir("sites-compare");
    let out = Command::new(EXE)
        .args(["compare", "--variants", "raw", "--control", "--sites"])
        .args(["--requests", "3000", "--rounds", "1", "--linger", "0s"])
        .args(["--latency", "0ms", "--concurrency", "2", "--out"])
        .arg(&dir)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    assert!(md.contains("## Allocation sites"), "{md}");
    assert!(md.contains("### raw+leak (control)"), "{md}");
    assert!(md.contains("forget_block"), "{md}");
    for name in ["raw", "raw+leak"] {
        read_dhat(&dir.join(format!("{name}.dhat-heap.json")));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
