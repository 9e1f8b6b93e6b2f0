//! `leak-client calibrate`: the detector's accuracy sweep on this machine. Planted leaks of
//! several sizes, a clean run and a capped cache per variant, each a child run judged by the
//! child; `judge_case` (pure) says whether each verdict is what its case must get, and the
//! printers write the table to any `io::Write`.

use std::io::{self, Write};
use std::time::Duration;

use super::shared::{Backend, install_signal_handler, prepare};
use crate::child::{Job, run_job};
use crate::cli::{CalibrateArgs, Workload};
use crate::clients::VariantName;
use crate::exit;
use crate::stop::Stop;
use crate::verdict::{Class, Verdict};

/// What a calibration case must be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A planted leak: `leak`, with a slope within ±10% (±2 B) of the planted size.
    Leak,
    /// A capped cache: `bounded`.
    Bounded,
    /// Nothing planted: `stable` or `bounded`, never `leak`.
    Clean,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Leak => "leak",
            Expect::Bounded => "bounded",
            Expect::Clean => "stable|bounded",
        }
    }
}

/// One calibration case.
#[derive(Debug, Clone)]
pub struct Case {
    pub job: Job,
    /// Bytes planted per request (0 for a clean run).
    pub injected: u64,
    pub expect: Expect,
}

/// How a case came out.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub pass: bool,
    /// The slope's relative error against the planted size (planted leaks only), e.g. `+0.3%`.
    pub error: Option<f64>,
}

/// Whether `verdict` is what `case` must be judged: pure, so the rule has table tests.
pub fn judge_case(expect: Expect, injected: u64, verdict: &Verdict) -> Outcome {
    let slope = verdict
        .slope
        .as_ref()
        .map_or(f64::NAN, |s| s.bytes_per_request);
    match expect {
        Expect::Leak => {
            let b = injected as f64;
            let tolerance = (b * 0.10).max(2.0);
            Outcome {
                pass: verdict.class == Class::Leak && (slope - b).abs() <= tolerance,
                error: Some((slope - b) / b),
            }
        }
        Expect::Bounded => Outcome {
            pass: verdict.class == Class::Bounded,
            error: None,
        },
        Expect::Clean => Outcome {
            pass: matches!(verdict.class, Class::Stable | Class::Bounded),
            error: None,
        },
    }
}

/// The cases for `args`: per variant a clean run, each planted size, and a capped cache of
/// 1 KiB per request that stops growing after a fifth of the run.
pub fn cases(args: &CalibrateArgs) -> Vec<Case> {
    let requests = args.workload.requests.unwrap_or(10_000);
    let job = |variant: VariantName, name: String, inject_leak: u64, inject_cap: Option<u64>| Job {
        name,
        variant,
        workload: Workload {
            inject_leak,
            inject_cap,
            ..args.workload.clone()
        },
        control: false,
    };
    let mut cases = Vec::new();
    for &v in &args.variants {
        let name = v.as_str();
        cases.push(Case {
            job: job(v, format!("{name}-clean"), 0, None),
            injected: 0,
            expect: Expect::Clean,
        });
        for &b in &args.sizes {
            cases.push(Case {
                job: job(v, format!("{name}-leak{b}"), b, None),
                injected: b,
                expect: Expect::Leak,
            });
        }
        let cap = (requests / 5).max(1) * 1024;
        cases.push(Case {
            job: job(v, format!("{name}-cache"), 1024, Some(cap)),
            injected: 1024,
            expect: Expect::Bounded,
        });
    }
    cases
}

/// The table's header line.
pub fn print_header(w: &mut impl Write) -> io::Result<()> {
    writeln!(
        w,
        "{:<16} {:>9} {:>14} {:>12} {:>12} {:>8}  result",
        "case", "injected", "expected", "detected", "slope B/req", "error"
    )
}

/// One case's row.
pub fn print_row(
    w: &mut impl Write,
    case: &Case,
    verdict: &Verdict,
    outcome: &Outcome,
) -> io::Result<()> {
    let slope = verdict
        .slope
        .as_ref()
        .map_or(f64::NAN, |s| s.bytes_per_request);
    let error = outcome
        .error
        .map_or_else(|| "-".to_string(), |e| format!("{:+.1}%", e * 100.0));
    writeln!(
        w,
        "{:<16} {:>9} {:>14} {:>12} {:>12.1} {:>8}  {}",
        case.job.name,
        case.injected,
        case.expect.as_str(),
        verdict.class.as_str(),
        slope,
        error,
        if outcome.pass { "PASS" } else { "FAIL" }
    )
}

/// `leak-client calibrate`.
pub fn calibrate(args: &CalibrateArgs) -> u8 {
    let server = latency_server::Config {
        addr: std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
        latency: Duration::from_millis(1),
        report_every: None,
        ..latency_server::Config::default()
    };
    let Some((exe, target)) = prepare(&args.out, || Backend::start_with(None, server)) else {
        return exit::FAILURE;
    };
    let cases = cases(args);
    eprintln!(
        "leakprobe calibrate: {} cases of {} requests at concurrency {} against {}",
        cases.len(),
        args.workload
            .requests
            .map_or_else(|| "unbounded".into(), crate::units::count),
        args.workload.concurrency,
        target.url
    );
    let mut out = std::io::stdout().lock();
    let _ = print_header(&mut out);
    let stop = Stop::new();
    install_signal_handler(&stop);
    let mut failures = 0;
    let mut ran = 0;
    for case in &cases {
        if stop.is_set() {
            break;
        }
        ran += 1;
        let r = match run_job(&exe, &case.job, &target.url, &args.out, &stop) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(out, "{:<16} error: {e}", case.job.name);
                failures += 1;
                continue;
            }
        };
        let verdict = r.verdict();
        let outcome = judge_case(case.expect, case.injected, verdict);
        if !outcome.pass {
            failures += 1;
        }
        let _ = print_row(&mut out, case, verdict, &outcome);
        let _ = out.flush();
    }
    target.stop();
    let _ = writeln!(out, "{} passed, {} failed", ran - failures, failures);
    if ran < cases.len() {
        let _ = writeln!(out, "interrupted: {} case(s) not run", cases.len() - ran);
        return exit::INTERRUPTED;
    }
    if failures > 0 {
        exit::FAILURE
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Slope;

    fn verdict(class: Class, slope: Option<f64>) -> Verdict {
        let s = slope.map(|b| Slope {
            bytes_per_request: b,
            lo: b - 1.0,
            hi: b + 1.0,
            per_million: (b * 1e6) as i64,
        });
        Verdict {
            class,
            reason: String::new(),
            slope: s,
            early_slope: s,
            late_slope: s,
            rss_slope: None,
            baseline: None,
            warmup_growth: None,
            retained_vs_baseline: None,
            staircase: Vec::new(),
            noise: None,
            points_used: 100,
            warmup_excluded: 10,
        }
    }

    #[test]
    fn each_case_passes_only_on_its_own_verdict() {
        use Class::*;
        let table: &[(Expect, u64, Class, Option<f64>, bool)] = &[
            // A planted leak: `leak` within ±10%, or ±2 B for small sizes.
            (Expect::Leak, 1024, Leak, Some(1024.0), true),
            (Expect::Leak, 1024, Leak, Some(1126.0), true),
            (Expect::Leak, 1024, Leak, Some(1127.0), false),
            (Expect::Leak, 1024, Leak, Some(921.0), false),
            (Expect::Leak, 16, Leak, Some(17.9), true),
            (Expect::Leak, 16, Leak, Some(18.1), false),
            (Expect::Leak, 1024, Bounded, Some(1024.0), false),
            (Expect::Leak, 1024, Inconclusive, None, false),
            // A capped cache must level off.
            (Expect::Bounded, 1024, Bounded, Some(0.0), true),
            (Expect::Bounded, 1024, Leak, Some(800.0), false),
            (Expect::Bounded, 1024, Stable, Some(0.0), false),
            // A clean run must never be a leak.
            (Expect::Clean, 0, Stable, Some(0.0), true),
            (Expect::Clean, 0, Bounded, Some(0.0), true),
            (Expect::Clean, 0, Leak, Some(3.0), false),
            (Expect::Clean, 0, Inconclusive, None, false),
        ];
        for &(expect, injected, class, slope, pass) in table {
            let got = judge_case(expect, injected, &verdict(class, slope));
            assert_eq!(
                got.pass, pass,
                "{expect:?} {injected} B, {class:?} {slope:?}"
            );
        }
        let leak = judge_case(Expect::Leak, 1000, &verdict(Class::Leak, Some(1003.0)));
        assert!(leak.error.is_some_and(|e| (e - 0.003).abs() < 1e-12));
    }

    #[test]
    fn rows_read_like_the_documented_table() {
        let args = CalibrateArgs {
            sizes: vec![16],
            variants: vec![VariantName::Ureq],
            out: "x".into(),
            workload: Workload {
                requests: Some(10_000),
                ..Workload::defaults()
            },
        };
        let cases = cases(&args);
        let names: Vec<&str> = cases.iter().map(|c| c.job.name.as_str()).collect();
        assert_eq!(names, ["ureq-clean", "ureq-leak16", "ureq-cache"]);
        assert_eq!(cases[2].job.workload.inject_cap, Some(2000 * 1024));
        let mut out = Vec::new();
        print_header(&mut out).expect("writes");
        let v = verdict(Class::Leak, Some(16.05));
        let o = judge_case(Expect::Leak, 16, &v);
        print_row(&mut out, &cases[1], &v, &o).expect("writes");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "case              injected       expected     detected  slope B/req    error  result\n\
             ureq-leak16             16           leak         leak         16.1    +0.3%  PASS\n"
        );
    }
}
