//! The `leak-client` binary as a user runs it: exit codes, `compare`'s files, and the detector's
//! calibration through the real allocator (each variant in its own child process).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;

const BIN: &str = env!("CARGO_BIN_EXE_leak-client");

fn leak_client(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("leak-client runs")
}

/// Asserts exit code 0 (showing both streams otherwise) and returns stdout.
fn succeeded(out: &Output) -> std::borrow::Cow<'_, str> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// An empty folder for the test `name` (the command creates it again).
fn temp_dir(name: &str) -> PathBuf {
    let dir = crate::support::scratch(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn misuse_exits_2_with_a_message() {
    for bad in [
        &["raw", "--requests", "many"][..],
        &["ureq", "--concurrency", "0"],
        &["compare", "--variants", "curl"],
        &["raw", "--mem-limit", "lots"],
        &[],
    ] {
        let out = leak_client(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!out.stderr.is_empty(), "{bad:?} explains itself");
    }
}

#[test]
fn a_bad_number_names_the_flag_and_the_form_it_expects() {
    let count = "expected a whole number ≥ 1, like 20000 or 20k";
    let size = "expected a size like 4096, 64KiB or 1GiB (kB, MB, GB: powers of 1000; KiB, MiB, \
                GiB: of 1024)";
    let table: &[(&[&str], String)] = &[
        (
            &["raw", "--requests", "-5"],
            format!("error: invalid value '-5' for '--requests <N>': {count}\n"),
        ),
        (
            &["raw", "--requests=-5"],
            format!("error: invalid value '-5' for '--requests <N>': {count}\n"),
        ),
        (
            &["watch", "--requests", "-5", "--", "true"],
            format!("error: invalid value '-5' for '--requests <N>': {count}\n"),
        ),
        (
            &["raw", "--mem-limit", "1XB"],
            format!("error: invalid value '1XB' for '--mem-limit <SIZE>': {size}\n"),
        ),
        (
            &["watch", "--duration", "-3s", "--", "true"],
            "error: invalid value '-3s' for '--duration <DURATION>': expected a duration like \
             0s, 250ms, 30s or 5m\n"
                .into(),
        ),
    ];
    for (args, want) in table {
        let out = leak_client(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(want.as_str()), "{args:?}:\n{stderr}");
        for internal in ["invalid digit", "unexpected argument", "tip:"] {
            assert!(
                !stderr.contains(internal),
                "{args:?}: {internal}:\n{stderr}"
            );
        }
    }
}

#[test]
fn an_unreachable_url_is_one_clear_line_and_exit_1() {
    // Bind and drop a listener to get a port that refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = leak_client(&["raw", "--url", &url, "--requests", "5"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("cannot reach") && errors[0].contains(&url),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn fail_on_leak_gates_on_the_verdict() {
    let srv = common::server(0);
    let url = srv.url();
    let run = |extra: &[&str]| {
        let mut args = vec!["raw", "--url", &url, "--requests", "3000", "--fail-on-leak"];
        args.extend_from_slice(extra);
        leak_client(&args).status.code()
    };
    assert_eq!(
        run(&["--inject-leak", "2048"]),
        Some(3),
        "a planted leak fails the gate"
    );
    assert_eq!(run(&[]), Some(0), "a clean run passes it");
}

fn svg_series_labels(svg: &Path) -> String {
    let text = std::fs::read_to_string(svg).expect("memory.svg written");
    let doc = roxmltree::Document::parse(&text).expect("memory.svg is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn compare_writes_a_report_a_plot_and_the_data() {
    let dir = temp_dir("compare");
    let out_dir = dir.to_str().expect("utf-8");
    let out = leak_client(&[
        "compare",
        "--requests",
        "400",
        "--rounds",
        "2",
        "--pause",
        "100ms",
        "--linger",
        "100ms",
        "--latency",
        "1ms",
        "--concurrency",
        "4",
        "--control",
        "--out",
        out_dir,
    ]);
    let stdout = succeeded(&out);
    for needle in [
        "ureq",
        "raw",
        "raw+leak (control)",
        "verdict",
        "slope",
        "retained after idle",
    ] {
        assert!(stdout.contains(needle), "table lacks {needle}:\n{stdout}");
    }
    for file in [
        "report.md",
        "memory.svg",
        "summary.json",
        "ureq.jsonl",
        "raw.jsonl",
        "raw+leak.jsonl",
        "ureq.log",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("read"))
            .expect("parses");
    let runs = summary["runs"].as_array().expect("runs");
    let names: Vec<&str> = runs.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["ureq", "raw", "raw+leak"]);
    for r in runs {
        assert_eq!(r["summary"]["ok"], 800, "{}", r["name"]);
        assert!(r["summary"]["verdict"]["class"].is_string());
    }
    assert_eq!(
        runs[2]["summary"]["verdict"]["class"], "leak",
        "the planted leak is caught"
    );
    let labels = svg_series_labels(&dir.join("memory.svg"));
    assert!(
        labels.contains("ureq —")
            && labels.contains("raw —")
            && labels.contains("raw+leak (control)"),
        "{labels}"
    );
    let report = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    assert!(
        report.contains("| verdict |")
            && report.contains("leak-client compare")
            && report.contains("cargo run --release -p leak-client -- compare"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calibration_catches_planted_leaks_within_10_percent_and_passes_clean_runs() {
    let dir = temp_dir("calibrate");
    let out = leak_client(&[
        "calibrate",
        "--requests",
        "3000",
        "--sizes",
        "1024",
        "--concurrency",
        "4",
        "--out",
        dir.to_str().expect("utf-8"),
    ]);
    let stdout = succeeded(&out);
    for case in [
        "ureq-clean",
        "ureq-leak1024",
        "ureq-cache",
        "raw-clean",
        "raw-leak1024",
        "raw-cache",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(case))
            .unwrap_or_else(|| panic!("no {case} row:\n{stdout}"));
        assert!(line.ends_with("PASS"), "{line}");
    }
    assert!(stdout.contains("6 passed, 0 failed"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
