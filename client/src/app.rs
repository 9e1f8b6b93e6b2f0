//! Commands as the binary runs them: signal handling, allocator cap, printing, exit codes.
//! Kept out of `main.rs` so tests can run a whole command in-process.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{CalibrateArgs, CompareArgs, Preset, RunArgs, VariantName};
use crate::compare::Job;
use crate::report::{Context, Machine};
use crate::run::{self, Stop, StopReason};
use crate::verdict::Class;

/// Exit codes of `leak-client` (documented in `--help` and the README).
pub mod exit {
    /// The run completed (whatever its error counts).
    pub const OK: u8 = 0;
    /// The run could not start or could not write its output.
    pub const FAILURE: u8 = 1;
    /// Command-line misuse (clap's own code).
    pub const USAGE: u8 = 2;
    /// `--fail-on-leak` and the verdict is `leak`.
    pub const LEAK: u8 = 3;
    /// `compare` or `calibrate` was interrupted (Ctrl-C, SIGTERM) before every run finished.
    pub const INTERRUPTED: u8 = 130;
}

/// The allocator cap, as the binary's `#[global_allocator]` exposes it.
pub trait Cap: Sync {
    /// Sets the cap; `false` if the process already uses more than `bytes`.
    fn set_limit(&self, bytes: usize) -> bool;
}

impl<H> Cap for cap::Cap<H>
where
    H: Sync,
{
    fn set_limit(&self, bytes: usize) -> bool {
        cap::Cap::set_limit(self, bytes).is_ok()
    }
}

/// Installs a Ctrl-C / SIGTERM handler that requests a stop; a second signal, a moment after
/// the first (not the same keypress delivered twice), exits at once.
pub fn install_signal_handler(stop: &Arc<Stop>) {
    let stop = stop.clone();
    let first = std::sync::OnceLock::new();
    let result = ctrlc::set_handler(move || {
        let at = *first.get_or_init(Instant::now);
        if stop.is_set() && at.elapsed() > Duration::from_millis(500) {
            eprintln!("second interrupt: exiting without a summary");
            std::process::exit(130);
        }
        stop.request(StopReason::Signal);
    });
    if let Err(e) = result {
        log::warn!(
            "cannot install the Ctrl-C handler ({e}); Ctrl-C will end the run without a summary"
        );
    }
}

/// `leak-client ureq|raw`: runs, prints the summary, returns the exit code.
pub fn run_variant(variant: VariantName, args: RunArgs, alloc: &dyn Cap) -> u8 {
    if !alloc.set_limit(usize::try_from(args.mem_limit).unwrap_or(usize::MAX)) {
        eprintln!(
            "error: --mem-limit {} is below what the process already uses",
            args.mem_limit
        );
        return exit::FAILURE;
    }
    let stop = Stop::new();
    install_signal_handler(&stop);
    let json = args.json;
    let fail_on_leak = args.fail_on_leak;
    let out = match run::run(variant, args, stop) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
    };
    let summary = out.summary();
    let _ = summary.print_human(&mut std::io::stderr().lock());
    if let Some(e) = &out.monitor.jsonl_error {
        eprintln!("error: writing the JSONL file failed: {e}");
    }
    if json {
        let mut stdout = std::io::stdout().lock();
        if summary
            .print_json(&mut stdout)
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return exit::FAILURE;
        }
    }
    if out.monitor.jsonl_error.is_some() {
        return exit::FAILURE;
    }
    if fail_on_leak && summary.verdict.class == crate::verdict::Class::Leak {
        return exit::LEAK;
    }
    exit::OK
}

/// A running in-process latency server, or the user's own `--url`.
struct Target {
    url: String,
    latency: Option<Duration>,
    server: Option<latency_server::RunningServer>,
}

impl Target {
    fn start(url: Option<&crate::workload::Target>, latency: Duration) -> Result<Target, String> {
        if let Some(url) = url {
            return Ok(Target {
                url: url.to_string(),
                latency: None,
                server: None,
            });
        }
        let config = latency_server::Config {
            addr: std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
            latency,
            // The orchestrator's own log would tear the progress bars; the runs have theirs.
            report_every: None,
            ..latency_server::Config::default()
        };
        let server = latency_server::Server::start(config)
            .map_err(|e| format!("cannot start the latency server: {e}"))?;
        Ok(Target {
            url: format!("http://{}/", server.addr()),
            latency: Some(latency),
            server: Some(server),
        })
    }

    fn stop(self) {
        if let Some(s) = self.server {
            s.shutdown(Duration::from_secs(2));
        }
    }
}

/// The workload flags every child of `compare` gets.
fn workload_args(a: &CompareArgs) -> Vec<String> {
    let d = |d: Duration| humantime::format_duration(d).to_string();
    let mut v: Vec<String> = vec![
        "--requests".into(),
        a.requests.to_string(),
        "--rounds".into(),
        a.rounds.to_string(),
        "--pause".into(),
        d(a.pause),
        "--linger".into(),
        d(a.linger),
        "--concurrency".into(),
        a.concurrency.to_string(),
        "--path-len".into(),
        a.path_len.to_string(),
        "--think".into(),
        d(a.think),
        "--timeout".into(),
        d(a.timeout),
        "--seed".into(),
        a.seed.to_string(),
        "--body".into(),
        a.body.as_str().into(),
    ];
    if a.library_defaults {
        v.push("--library-defaults".into());
    }
    v
}

/// `--preset original`: the original investigation's workload; the server latency is drawn
/// once between 100 and 300 ms from the seed, as the original Express server drew it once.
fn apply_preset(mut a: CompareArgs) -> CompareArgs {
    if let Some(Preset::Original) = a.preset {
        use rand::{Rng, SeedableRng};
        a.concurrency = 1;
        a.think = Duration::from_millis(5);
        a.requests = 10_000;
        a.rounds = 1;
        a.path_len = 1000;
        let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
        a.latency = Duration::from_millis(rng.gen_range(100..=300));
    }
    a
}

/// What `compare` and `calibrate` need before their first run: this executable (which runs
/// each measured variant as a child), the output directory, and the server. Errors are
/// printed; `None` means exit with `FAILURE`.
fn prepare(
    out: &std::path::Path,
    url: Option<&crate::workload::Target>,
    latency: Duration,
) -> Option<(std::path::PathBuf, Target)> {
    let exe = std::env::current_exe()
        .map_err(|e| eprintln!("error: cannot find this executable to run the variants: {e}"))
        .ok()?;
    std::fs::create_dir_all(out)
        .map_err(|e| eprintln!("error: cannot create {}: {e}", out.display()))
        .ok()?;
    let target = Target::start(url, latency)
        .map_err(|e| eprintln!("error: {e}"))
        .ok()?;
    Some((exe, target))
}

fn now_utc() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("leak-client {}", crate::compare::shell_words(&args))
}

/// `leak-client compare`.
pub fn compare(args: CompareArgs) -> u8 {
    let args = apply_preset(args);
    let Some((exe, target)) = prepare(&args.out, args.url.as_ref(), args.latency) else {
        return exit::FAILURE;
    };
    let common = workload_args(&args);
    let total = Some(args.requests * u64::from(args.rounds));
    let mut jobs: Vec<Job> = args
        .variants
        .iter()
        .map(|v| Job {
            name: v.as_str().into(),
            variant: *v,
            args: common.clone(),
            control: false,
            total_requests: total,
        })
        .collect();
    if args.control {
        let mut a = common.clone();
        a.extend(["--inject-leak".into(), CONTROL_LEAK.to_string()]);
        jobs.push(Job {
            name: "raw+leak".into(),
            variant: VariantName::Raw,
            args: a,
            control: true,
            total_requests: total,
        });
    }
    eprintln!(
        "leakprobe: {} run(s) of {} requests × {} round(s), concurrency {}, {}-char paths, against {}{}",
        jobs.len(),
        crate::units::count(args.requests),
        args.rounds,
        args.concurrency,
        args.path_len,
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
    for job in &jobs {
        if stop.is_set() {
            eprintln!("{:>9}: skipped (interrupted)", job.name);
            continue;
        }
        let t0 = Instant::now();
        match crate::compare::run_job(&exe, job, &target.url, &args.out, &stop) {
            Ok(r) => {
                eprintln!(
                    "{:>9}: {} requests in {}, verdict {}",
                    job.name,
                    crate::units::count(r.summary.requests),
                    crate::compare::took(t0),
                    r.summary.verdict.class.as_str().to_uppercase()
                );
                results.push(r);
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
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
        .any(|r| r.job.control && r.summary.verdict.class != Class::Leak);
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
            .any(|r| !r.job.control && r.summary.verdict.class == Class::Leak)
    {
        return exit::LEAK;
    }
    exit::OK
}

/// Bytes per request the `--control` run retains.
pub const CONTROL_LEAK: u64 = 1024;

/// One calibration case and what it must be judged.
#[derive(Debug)]
struct Case {
    job: Job,
    injected: u64,
    expect_leak: bool,
    /// A capped cache: must be judged `bounded`.
    expect_bounded: bool,
}

/// `leak-client calibrate`: the detector's accuracy sweep on this machine.
pub fn calibrate(args: CalibrateArgs) -> u8 {
    let Some((exe, target)) = prepare(&args.out, None, Duration::from_millis(1)) else {
        return exit::FAILURE;
    };
    let common: Vec<String> = vec![
        "--requests".into(),
        args.requests.to_string(),
        "--concurrency".into(),
        args.concurrency.to_string(),
        "--linger".into(),
        "200ms".into(),
    ];
    let job = |variant: VariantName, name: String, extra: &[String]| {
        let mut a = common.clone();
        a.extend(extra.iter().cloned());
        Job {
            name,
            variant,
            args: a,
            control: false,
            total_requests: Some(args.requests),
        }
    };
    let mut cases = Vec::new();
    for &v in &args.variants {
        cases.push(Case {
            job: job(v, format!("{}-clean", v.as_str()), &[]),
            injected: 0,
            expect_leak: false,
            expect_bounded: false,
        });
        for &b in &args.sizes {
            cases.push(Case {
                job: job(
                    v,
                    format!("{}-leak{b}", v.as_str()),
                    &["--inject-leak".into(), b.to_string()],
                ),
                injected: b,
                expect_leak: true,
                expect_bounded: false,
            });
        }
        // A cache of 1 KiB per request capped after a fifth of the run: grows, then levels off.
        let cap = (args.requests / 5).max(1) * 1024;
        cases.push(Case {
            job: job(
                v,
                format!("{}-cache", v.as_str()),
                &[
                    "--inject-leak".into(),
                    "1024".into(),
                    "--inject-cap".into(),
                    cap.to_string(),
                ],
            ),
            injected: 1024,
            expect_leak: false,
            expect_bounded: true,
        });
    }
    eprintln!(
        "leakprobe calibrate: {} cases of {} requests at concurrency {} against {}",
        cases.len(),
        crate::units::count(args.requests),
        args.concurrency,
        target.url
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<16} {:>9} {:>14} {:>12} {:>12} {:>8}  result",
        "case", "injected", "expected", "detected", "slope B/req", "error"
    );
    let stop = Stop::new();
    install_signal_handler(&stop);
    let mut failures = 0;
    for case in &cases {
        if stop.is_set() {
            break;
        }
        let r = match crate::compare::run_job(&exe, &case.job, &target.url, &args.out, &stop) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(out, "{:<16} error: {e}", case.job.name);
                failures += 1;
                continue;
            }
        };
        let v = &r.summary.verdict;
        let slope = v.slope.map_or(f64::NAN, |s| s.bytes_per_request);
        let (expected, ok, error) = if case.expect_leak {
            let b = case.injected as f64;
            let tolerance = (b * 0.10).max(2.0);
            let ok = v.class == Class::Leak && (slope - b).abs() <= tolerance;
            ("leak", ok, format!("{:+.1}%", (slope - b) / b * 100.0))
        } else if case.expect_bounded {
            ("bounded", v.class == Class::Bounded, "-".to_string())
        } else {
            (
                "stable|bounded",
                matches!(v.class, Class::Stable | Class::Bounded),
                "-".to_string(),
            )
        };
        if !ok {
            failures += 1;
        }
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>14} {:>12} {:>12.1} {:>8}  {}",
            case.job.name,
            case.injected,
            expected,
            v.class.as_str(),
            slope,
            error,
            if ok { "PASS" } else { "FAIL" }
        );
        let _ = out.flush();
    }
    target.stop();
    let _ = writeln!(
        out,
        "{} passed, {} failed",
        cases.len() - failures,
        failures
    );
    if failures > 0 {
        exit::FAILURE
    } else {
        exit::OK
    }
}
