//! The comparison's outputs: the side-by-side table (terminal and Markdown), `report.md`,
//! `summary.json` and `memory.svg`. Printers write to any `io::Write`; nothing here measures.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use crate::child::{RunResult, RunSummary};
use crate::plot;
use crate::summary::Summary;
use crate::units;
use crate::verdict::{SettledAt, Verdict};
use crate::watch::summary::{WatchSummary, split_text};

/// Facts about the comparison that every output repeats.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    /// The command as the user ran it.
    pub command: String,
    pub url: String,
    /// Server latency, when this process started the server.
    pub server_latency: Option<String>,
    pub started_at: String,
    pub machine: Machine,
}

/// Where the numbers were measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub os: String,
    pub arch: String,
    pub cpus: usize,
    pub leak_client_version: String,
    pub ureq_version: String,
    pub rustc: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("PRETTY_NAME=")
                        .map(|v| v.trim_matches('"').to_string())
                })
            })
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        Machine {
            os,
            arch: std::env::consts::ARCH.into(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            leak_client_version: env!("CARGO_PKG_VERSION").into(),
            ureq_version: UREQ_VERSION.into(),
            rustc: RUSTC.into(),
        }
    }
}

/// The ureq version this binary was built with (read from Cargo.lock by `build.rs`).
const UREQ_VERSION: &str = env!("LEAKPROBE_UREQ_VERSION");

/// The compiler that built this binary (`$RUSTC --version`, captured by `build.rs`).
const RUSTC: &str = env!("LEAKPROBE_RUSTC");

/// One table row: a label and one cell per run.
type Row = (&'static str, Vec<String>);

fn rows(results: &[RunResult]) -> Vec<Row> {
    // A row: its label, a variant's cell from its summary, a watched program's from the watch's.
    let col = |label: &'static str,
               variant: &dyn Fn(&Summary) -> String,
               watch: &dyn Fn(&WatchSummary) -> String|
     -> Row {
        let cells = results
            .iter()
            .map(|r| match &r.summary {
                RunSummary::Variant(s) => variant(s),
                RunSummary::Watch(w) => watch(w),
            })
            .collect();
        (label, cells)
    };
    // Where a variant's figure does not apply to a watched program: it has no counting
    // allocator and no request counters of its own.
    let na = |_: &WatchSummary| "n/a".to_string();
    let heap = |v: Option<u64>| {
        v.map_or_else(
            || "n/a (no --probe)".to_string(),
            |b| format!("{} (post-GC heap)", units::bytes(b as f64)),
        )
    };
    let rss = |start: Option<u64>, end: Option<u64>| {
        format!("{} → {}", units::opt_bytes(start), units::opt_bytes(end))
    };
    let settled = |s: Option<SettledAt>| {
        s.map_or_else(
            || "not settled".to_string(),
            |s| format!("{} requests, {:.1}s", units::count(s.requests), s.seconds),
        )
    };
    let mut rows = vec![
        col(
            "requests ok / sent",
            &|s| format!("{} / {}", units::count(s.ok), units::count(s.requests)),
            &|w| format!("{} served", units::count(w.requests)),
        ),
        col("errors", &errors_cell, &na),
        col(
            "requests/s",
            &|s| units::count(s.rps.round() as u64),
            &|w| units::count(w.rps.round() as u64),
        ),
        col(
            "latency p50 / p99",
            &|s| format!("{:.2} / {:.2} ms", s.latency_ms.p50, s.latency_ms.p99),
            &na,
        ),
        col(
            "connections opened",
            &|s| units::count(s.connections_opened),
            &na,
        ),
        col(
            "live baseline",
            &|s| units::bytes(s.memory.baseline as f64),
            &|w| heap(w.memory.heap_start),
        ),
        col("live end", &|s| units::bytes(s.memory.end as f64), &|w| {
            heap(w.memory.heap_end)
        }),
        col("live peak", &|s| units::bytes(s.memory.peak as f64), &|w| {
            heap(w.memory.heap_peak)
        }),
        col(
            "retained after idle (vs start)",
            &|s| {
                s.memory
                    .retained_after_idle
                    .map_or_else(|| "?".into(), |r| units::bytes(r as f64))
            },
            &na,
        ),
        col(
            "rss start → end",
            &|s| rss(s.memory.rss_start, s.memory.rss_end),
            &|w| rss(w.memory.rss_start, w.memory.rss_end),
        ),
        col(
            "allocs / request",
            &|s| format!("{:.2}", s.memory.allocs_per_request),
            &na,
        ),
        col(
            "bytes allocated / request",
            &|s| units::bytes(s.memory.bytes_allocated_per_request),
            &na,
        ),
        col(
            "slope (B/request, 95% CI)",
            &|s| slope_cell(&s.verdict, None),
            &|w| match &w.judged.split {
                // Node: the parts beside the sum (see `watch::judge::judge_split`).
                Some(split) => slope_cell(&w.judged.verdict, Some(&split_text(split))),
                None => slope_cell(&w.judged.verdict, Some(w.judged.basis.as_str())),
            },
        ),
        col(
            "growth per 1M requests",
            &|s| per_million_cell(&s.verdict),
            &|w| per_million_cell(&w.judged.verdict),
        ),
        col(
            "verdict",
            &|s| s.verdict.class.as_str().to_uppercase(),
            &|w| w.judged.verdict.class.as_str().to_uppercase(),
        ),
    ];
    // Only for runs with `--until-verdict`: where the verdict was settled and the run stopped.
    let any_settled = results.iter().any(|r| match &r.summary {
        RunSummary::Variant(s) => s.settled.is_some(),
        RunSummary::Watch(w) => w.settled.is_some(),
    });
    if any_settled {
        rows.push(col("verdict settled at", &|s| settled(s.settled), &|w| {
            settled(w.settled)
        }));
    }
    rows
}

fn errors_cell(s: &Summary) -> String {
    if s.errors == 0 {
        return "0".into();
    }
    let kinds: Vec<String> = s
        .errors_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    format!("{} ({})", units::count(s.errors), kinds.join(", "))
}

/// The slope and its 95% interval, with the series it was judged on when that varies (watch).
fn slope_cell(v: &Verdict, basis: Option<&str>) -> String {
    let Some(sl) = &v.slope else {
        return "?".into();
    };
    let cell = format!(
        "{:+.1} [{:+.1}, {:+.1}]",
        sl.bytes_per_request, sl.lo, sl.hi
    );
    match basis {
        Some(basis) => format!("{cell} ({basis})"),
        None => cell,
    }
}

fn per_million_cell(v: &Verdict) -> String {
    v.slope
        .map_or_else(|| "?".into(), |sl| units::bytes(sl.per_million as f64))
}

/// A run's column heading: its name, marked when it is the planted-leak control.
fn header(r: &RunResult) -> String {
    if r.control {
        format!("{} (control)", r.name)
    } else {
        r.name.clone()
    }
}

fn headers(results: &[RunResult]) -> Vec<String> {
    results.iter().map(header).collect()
}

/// The side-by-side table for a terminal: metrics down, runs across.
pub fn print_table(w: &mut dyn Write, results: &[RunResult]) -> io::Result<()> {
    let rows = rows(results);
    let heads = headers(results);
    let label_w = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = (0..results.len())
        .map(|i| {
            rows.iter()
                .map(|(_, cells)| cells[i].chars().count())
                .chain([heads[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let mut line = pad("", label_w);
    for (h, w) in heads.iter().zip(&widths) {
        line.push_str("  ");
        line.push_str(&pad(h, *w));
    }
    writeln!(w, "{}", line.trim_end())?;
    let rule: usize = label_w + widths.iter().map(|w| w + 2).sum::<usize>();
    writeln!(w, "{}", "─".repeat(rule))?;
    for (label, cells) in &rows {
        let mut line = pad(label, label_w);
        for (c, w) in cells.iter().zip(&widths) {
            line.push_str("  ");
            line.push_str(&pad(c, *w));
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    writeln!(w)?;
    for (h, r) in heads.iter().zip(results) {
        writeln!(w, "{h}: {}", r.verdict().reason)?;
        if let RunSummary::Watch(watched) = &r.summary {
            if let Some(c) = &watched.judged.caveat {
                writeln!(w, "{h}: note: {c}")?;
            }
        }
    }
    Ok(())
}

/// The same table in Markdown.
pub fn markdown_table(w: &mut dyn Write, results: &[RunResult]) -> io::Result<()> {
    let heads = headers(results);
    writeln!(w, "| | {} |", heads.join(" | "))?;
    writeln!(w, "|---|{}", "---|".repeat(heads.len()))?;
    for (label, cells) in rows(results) {
        writeln!(w, "| {label} | {} |", cells.join(" | "))?;
    }
    Ok(())
}

/// Writes `report.md`, `summary.json` and `memory.svg` into `dir`.
pub fn write_all(dir: &Path, ctx: &Context, results: &[RunResult]) -> Result<(), String> {
    let io_err =
        |what: &str, e: io::Error| format!("cannot write {}: {e}", dir.join(what).display());

    let lines: Vec<plot::Line<'_>> = results
        .iter()
        .map(|r| plot::Line {
            label: format!(
                "{} — {}{}",
                header(r),
                r.verdict().class,
                match r.summary {
                    RunSummary::Watch(_) if r.points.is_empty() => " (RSS only, not plotted)",
                    RunSummary::Watch(_) => " (post-GC heap)",
                    RunSummary::Variant(_) => "",
                }
            ),
            points: &r.points,
            dashed: r.control,
        })
        .collect();
    let title = match &ctx.server_latency {
        Some(l) => format!("live heap vs requests ({} server latency)", l),
        None => "live heap vs requests".to_string(),
    };
    plot::memory_svg(&dir.join("memory.svg"), &title, &lines)
        .map_err(|e| format!("cannot draw memory.svg: {e}"))?;

    let json = serde_json::json!({
        "context": ctx,
        "runs": results.iter().map(|r| {
            serde_json::json!({
                "name": r.name,
                "control": r.control,
                "command": r.command,
                "jsonl": r.jsonl.file_name().map(|n| n.to_string_lossy().to_string()),
                "log": r.log.file_name().map(|n| n.to_string_lossy().to_string()),
                "summary": match &r.summary {
                    RunSummary::Watch(w) => serde_json::json!(w),
                    RunSummary::Variant(v) => serde_json::json!(v),
                },
            })
        }).collect::<Vec<_>>(),
    });
    let mut f =
        std::fs::File::create(dir.join("summary.json")).map_err(|e| io_err("summary.json", e))?;
    serde_json::to_writer_pretty(&mut f, &json)
        .map_err(|e| format!("cannot write summary.json: {e}"))?;
    writeln!(f).map_err(|e| io_err("summary.json", e))?;

    let mut md = Vec::new();
    report_md(&mut md, ctx, results).map_err(|e| io_err("report.md", e))?;
    std::fs::write(dir.join("report.md"), md).map_err(|e| io_err("report.md", e))?;
    Ok(())
}

/// A run's sampled allocation sites (variants run with `--sites`; watched programs with a probe
/// and `--sites`).
fn sites(r: &RunResult) -> Option<&crate::sites::SitesSummary> {
    match &r.summary {
        RunSummary::Watch(w) => w.sites.as_ref(),
        _ => r.variant().and_then(|s| s.sites.as_ref()),
    }
}

/// `leak-client`'s invocation from a clone of the repository, where it is not on PATH.
const FROM_REPO: &str = "cargo run --release -p leak-client --";

/// The command that made this report, twice: from the repository, and as the installed binary
/// (`cargo install --path client`). `command` is `leak-client ARGS…`, as the user ran it.
fn reproduce(w: &mut dyn Write, command: &str) -> io::Result<()> {
    let args = command.strip_prefix("leak-client ").unwrap_or(command);
    writeln!(w, "From the repository (builds `leak-client` first):\n")?;
    writeln!(w, "```sh\n{FROM_REPO} {args}\n```\n")?;
    writeln!(
        w,
        "With `leak-client` installed (`cargo install --path client`):\n"
    )?;
    writeln!(w, "```sh\nleak-client {args}\n```\n")
}

fn report_md(w: &mut dyn Write, ctx: &Context, results: &[RunResult]) -> io::Result<()> {
    writeln!(w, "# leakprobe report\n")?;
    writeln!(
        w,
        "Started {} against `{}`{}.\n",
        ctx.started_at,
        ctx.url,
        match &ctx.server_latency {
            Some(l) => format!(" (in-process latency server, {l} latency)"),
            None => String::new(),
        }
    )?;
    writeln!(w, "## Verdicts\n")?;
    for (h, r) in headers(results).iter().zip(results) {
        writeln!(
            w,
            "- **{h}: {}** — {}",
            r.verdict().class.as_str().to_uppercase(),
            r.verdict().reason
        )?;
    }
    writeln!(w, "\n## Side by side\n")?;
    markdown_table(w, results)?;
    writeln!(w, "\n![live heap vs completed requests](memory.svg)\n")?;
    if results.iter().any(|r| sites(r).is_some()) {
        writeln!(w, "## Allocation sites (`--sites`)\n")?;
        writeln!(
            w,
            "Sampled call sites: those whose estimated live bytes grow with requests beyond their \
             interval, then the largest that do not. Each variant's full profile is its \
             `<name>.dhat-heap.json` (open it in Valgrind's `dh_view.html`); a watched Node \
             program's is its `<name>.heapprofile` (Chrome DevTools' Memory tab, speedscope).\n"
        )?;
        for (h, r) in headers(results).iter().zip(results) {
            if let Some(sites) = sites(r) {
                writeln!(w, "### {h}\n")?;
                sites.markdown(w)?;
            }
        }
    }
    writeln!(w, "## How to read this\n")?;
    writeln!(
        w,
        "- **slope** is the robust (Theil–Sen) growth of live heap per completed request after warm-up, \
         with its 95% interval; **growth per 1M requests** projects it.\n\
         - **retained after idle (vs start)** is live heap with every worker idle, minus live heap before the first request: \
         what the idle client holds (pools, buffers). The verdict's staircase in `summary.json` is measured from the \
         post-warm-up baseline instead.\n\
         - **stable**: no growth beyond noise. **bounded**: grew, then levelled off (pools, caches). \
         **leak**: keeps growing with requests. **rss-only**: the allocator keeps pages, the heap does not grow. \
         **inconclusive**: not enough evidence; the reason says what to run.\n\
         - A run marked *control* has a planted leak: it proves the detector on this machine.\n"
    )?;
    writeln!(w, "## Reproduce\n")?;
    reproduce(w, &ctx.command)?;
    writeln!(
        w,
        "Each run, as executed (server address varies per run; `leak-client` is the installed \
         binary, or `{FROM_REPO}` from the repository):\n"
    )?;
    writeln!(w, "```sh")?;
    for r in results {
        writeln!(w, "{}", r.command)?;
    }
    writeln!(w, "```\n")?;
    writeln!(
        w,
        "Files: each run's samples (`<name>.jsonl`, one JSON object per line) and log (`<name>.log`), `summary.json`, `memory.svg`.\n"
    )?;
    let m = &ctx.machine;
    writeln!(w, "## Machine\n")?;
    writeln!(
        w,
        "{} {}, {} CPUs; leak-client {}, ureq {}, {}.",
        m.os, m.arch, m.cpus, m.leak_client_version, m.ureq_version, m.rustc
    )?;
    Ok(())
}

#[cfg(test)]
mod reproduce_tests {
    use super::*;

    #[test]
    fn reproduce_works_from_the_repository_and_installed() {
        let mut out = Vec::new();
        reproduce(&mut out, "leak-client compare --control --requests 2k").expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains(
                "\ncargo run --release -p leak-client -- compare --control --requests 2k\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\nleak-client compare --control --requests 2k\n"),
            "{text}"
        );
        assert!(text.contains("cargo install --path client"), "{text}");
    }
}
