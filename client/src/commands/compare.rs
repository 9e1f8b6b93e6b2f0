//! `leak-client compare`: the in-process latency server (or `--url`), each variant as its own
//! child on the same workload, then the table, `report.md`, `memory.svg` and `summary.json`.
//! Judges nothing itself: each child's verdict is in its summary.

use std::io::Write;
use std::time::{Duration, Instant};

use super::shared::{Backend, command_line, install_signal_handler, now_utc, prepare};
use crate::child::{Job, JobError, RunResult, run_job, run_watch, took};
use crate::cli::{CompareArgs, Preset, Workload};
use crate::clients::VariantName;
use crate::exit;
use crate::report::{Context, Machine};
use crate::stop::Stop;
use crate::verdict::Class;

/// `--preset original`: the original investigation's workload; the server latency is drawn
/// once between 100 and 300 ms from the seed, as the original Express server drew it once.
fn apply_preset(mut a: CompareArgs) -> CompareArgs {
    if let Some(Preset::Original) = a.preset {
        use rand::{Rng, SeedableRng};
        let w = &mut a.workload;
        w.concurrency = 1;
        w.think = Duration::from_millis(5);
        w.requests = Some(10_000);
        w.rounds = 1;
        w.path_len = 1000;
        let mut rng = rand::rngs::StdRng::seed_from_u64(w.seed);
        a.server.embedded.latency = Duration::from_millis(rng.gen_range(100..=300));
        a.server.embedded.latency_random = None;
    }
    a
}

/// `leak-client compare`.
pub fn compare(args: CompareArgs) -> u8 {
    let args = apply_preset(args);
    let Some((exe, target)) = prepare(&args.out, || Backend::start(&args.server)) else {
        return exit::FAILURE;
    };
    let jobs = jobs(&args);
    let w = &args.workload;
    eprintln!(
        "leakprobe: {} run(s) of {} requests × {} round(s), concurrency {}, {}-char paths, against {}{}",
        jobs.len(),
        w.requests
            .map_or_else(|| "unbounded".into(), crate::units::count),
        w.rounds,
        w.concurrency,
        w.path_len,
        target.url,
        target
            .latency
            .map(|l| format!(" (server latency {})", humantime::format_duration(l)))
            .unwrap_or_default()
    );
    // Ctrl-C reaches the children too (same process group): each stops, prints its summary and
    // flushes its JSONL; this process then reports on what ran instead of dying first.
    let stop = Stop::new();
    install_signal_handler(&stop);
    let started_at = now_utc();
    let mut results = Vec::new();
    let mut failed = false;
    // One run, the variants' and the watched commands' alike: skipped once interrupted,
    // reported in one line, kept or counted as failed.
    let mut one = |name: &str, run: &mut dyn FnMut() -> Result<RunResult, JobError>| {
        if stop.is_set() {
            eprintln!("{name:>9}: skipped (interrupted)");
            return;
        }
        let t0 = Instant::now();
        match run() {
            Ok(r) => {
                eprintln!(
                    "{:>9}: {} requests in {}, verdict {}",
                    name,
                    crate::units::count(r.requests()),
                    took(t0),
                    r.verdict().class.as_str().to_uppercase()
                );
                results.push(r);
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    };
    for job in &jobs {
        one(&job.name, &mut || {
            run_job(&exe, job, &target.url, &args.out, &stop)
        });
    }
    for spec in &args.watch {
        one(&spec.name, &mut || {
            run_watch(&exe, spec, args.probe, w, &target.url, &args.out)
        });
    }
    let ctx = Context {
        command: command_line(),
        url: target.url.clone(),
        server_latency: target
            .latency
            .map(|l| humantime::format_duration(l).to_string()),
        started_at,
        machine: Machine::detect(),
    };
    target.stop();
    if results.is_empty() {
        return exit::FAILURE;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout);
    let _ = crate::report::print_table(&mut stdout, &results);
    if let Err(e) = crate::report::write_all(&args.out, &ctx, &results) {
        eprintln!("error: {e}");
        return exit::FAILURE;
    }
    let _ = writeln!(
        stdout,
        "\nreport: {}  plot: {}  data: {}",
        args.out.join("report.md").display(),
        args.out.join("memory.svg").display(),
        args.out.join("summary.json").display()
    );
    let _ = stdout.flush();
    let control_missed = results
        .iter()
        .any(|r| r.control && r.verdict().class != Class::Leak);
    if control_missed {
        eprintln!(
            "error: the planted leak was NOT judged a leak: the detector cannot be trusted on this run (see report.md)"
        );
        return exit::FAILURE;
    }
    if stop.is_set() {
        return exit::INTERRUPTED;
    }
    if failed {
        return exit::FAILURE;
    }
    if args.fail_on_leak
        && results
            .iter()
            .any(|r| !r.control && r.verdict().class == Class::Leak)
    {
        return exit::LEAK;
    }
    exit::OK
}

/// Bytes per request the `--control` run retains.
pub const CONTROL_LEAK: u64 = 1024;

/// The child runs of a comparison: each variant on the same workload, then the control.
fn jobs(args: &CompareArgs) -> Vec<Job> {
    let mut jobs: Vec<Job> = args
        .variants
        .iter()
        .map(|v| Job {
            name: v.as_str().into(),
            variant: *v,
            workload: args.workload.clone(),
            control: false,
        })
        .collect();
    if args.control {
        jobs.push(Job {
            name: "raw+leak".into(),
            variant: VariantName::Raw,
            workload: Workload {
                inject_leak: CONTROL_LEAK,
                inject_cap: None,
                ..args.workload.clone()
            },
            control: true,
        });
    }
    jobs
}
