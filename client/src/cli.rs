//! The command line: clap definitions, value parsers, and the checked `RunConfig` they become.
//! Nothing outside this module parses flags or reads the environment for configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::variant::BodyMode;
use crate::workload::Target;

/// Drive an HTTP workload through one client variant, log its heap at intervals, judge leaks.
#[derive(Debug, Parser)]
#[command(name = "leak-client", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the workload through `ureq` (one shared Agent and its keep-alive pool).
    Ureq(RunArgs),
    /// Run the workload through the hand-rolled HTTP/1.1 client (one keep-alive connection per worker).
    Raw(RunArgs),
    /// Start the latency server in-process, run each variant in its own child process on the
    /// same workload, judge each, and write a report, a plot and the data to --out.
    Compare(CompareArgs),
    /// Prove the detector on this machine: planted leaks of 16–4096 B/request, clean runs and a
    /// capped cache, each judged; prints detected vs expected.
    Calibrate(CalibrateArgs),
}

/// Workload presets for `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The original investigation: one request at a time, 5 ms pause, 10,000 requests,
    /// 1000-character random paths, one server latency drawn between 100 and 300 ms
    /// (about half an hour).
    Original,
}

/// Flags of `compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Variants to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ureq,raw")]
    pub variants: Vec<VariantName>,

    /// Use this server instead of starting the latency server in-process.
    #[arg(long, value_parser = parse_target)]
    pub url: Option<Target>,

    /// Requests per round, per variant.
    #[arg(long, short = 'n', default_value = "6k", value_parser = parse_count, value_name = "N")]
    pub requests: u64,

    /// Rounds per variant, idle for --pause between them (quiescent readings).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rounds: u32,

    /// Idle time between rounds.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub pause: Duration,

    /// Idle sampling after the last round.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub linger: Duration,

    /// Worker threads per variant.
    #[arg(long, short = 'c', default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,

    /// Path length of every request.
    #[arg(long, default_value_t = 1000, value_name = "CHARS")]
    pub path_len: usize,

    /// Latency of the in-process server (ignored with --url).
    #[arg(long, default_value = "5ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub latency: Duration,

    /// Each worker's pause between its requests.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub think: Duration,

    /// `read` or `skip` response bodies.
    #[arg(long, value_enum, default_value_t = BodyMode::Read)]
    pub body: BodyMode,

    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Seed for the random path segments (the same for every variant).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Run the clients with their library's own pool defaults.
    #[arg(long)]
    pub library_defaults: bool,

    /// Add a positive control: the raw variant with a planted 1 KiB/request leak, which the
    /// detector must judge `leak` (the run fails if it does not).
    #[arg(long)]
    pub control: bool,

    /// A named workload that overrides the workload flags.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,

    /// Directory for report.md, memory.svg, summary.json and each variant's JSONL and log.
    #[arg(long, default_value = "leak-report", value_name = "DIR")]
    pub out: PathBuf,

    /// Exit with code 3 if any variant (not the control) is judged `leak`.
    #[arg(long)]
    pub fail_on_leak: bool,
}

/// Flags of `calibrate`.
#[derive(Debug, Clone, Args)]
pub struct CalibrateArgs {
    /// Requests per case.
    #[arg(long, short = 'n', default_value = "10k", value_parser = parse_count, value_name = "N")]
    pub requests: u64,

    /// Worker threads per case.
    #[arg(long, short = 'c', default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,

    /// Planted leak sizes to test, in bytes per request.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256,1024,4096", value_parser = parse_bytes)]
    pub sizes: Vec<u64>,

    /// Variants to test.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ureq,raw")]
    pub variants: Vec<VariantName>,

    /// Directory for each case's JSONL, log and the calibration table.
    #[arg(long, default_value = "leak-report/calibrate", value_name = "DIR")]
    pub out: PathBuf,
}

/// Which client a run drives.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VariantName {
    Ureq,
    Raw,
}

impl VariantName {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantName::Ureq => "ureq",
            VariantName::Raw => "raw",
        }
    }
}

/// The workload and measurement flags shared by every variant.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Base URL. Each request's path is this path plus a generated segment (see --path-len);
    /// its query string (e.g. `?latency_ms=5`) is kept on every request.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_parser = parse_target)]
    pub url: Target,

    /// Total path length in characters. The generated segment holds the sequence number and
    /// seeded random alphanumerics. 0 sends the URL's path as given.
    #[arg(long, default_value_t = 1000, value_name = "CHARS")]
    pub path_len: usize,

    /// Make every URL unique (`false`: repeat one generated URL).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub unique: bool,

    /// Seed for the random path segments: the same seed gives the same URLs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Requests per round (`10k`, `1m` accepted). With neither --requests nor --duration the
    /// run goes on until Ctrl-C.
    #[arg(long, short = 'n', value_parser = parse_count, value_name = "N")]
    pub requests: Option<u64>,

    /// Length of each round (e.g. `30s`, `5m`).
    #[arg(long, short = 'd', value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,

    /// Worker threads, each sending one request at a time (synchronous; no async runtime).
    #[arg(long, short = 'c', default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,

    /// Pause of each worker between its requests (the original loop: 5ms).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub think: Duration,

    /// Throttle to this many requests per second overall (default: as fast as the workers go).
    #[arg(long, value_parser = parse_rate, value_name = "PER_SECOND")]
    pub rate: Option<f64>,

    /// Repeat the workload this many times, idle for --pause between rounds; the heap is read
    /// at each quiescent point ("the rounds staircase").
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rounds: u32,

    /// Idle time between rounds.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub pause: Duration,

    /// Keep sampling this long after the last request, with the client idle but alive
    /// ("does memory ever come back down?").
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub linger: Duration,

    /// Per-request timeout (connect, send, and each read).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// `read`: read every response body; `skip`: drop the response without reading its body.
    #[arg(long, value_enum, default_value_t = BodyMode::Read)]
    pub body: BodyMode,

    /// Largest response body accepted (e.g. `16MiB`); larger fails with `too_large`.
    #[arg(long, default_value = "16MiB", value_parser = parse_bytes, value_name = "SIZE")]
    pub max_body: u64,

    /// Use the client library's own connection-pool defaults (ureq: 3 idle connections per
    /// host) instead of sizing the pool from --concurrency. A realistic leak scenario itself.
    #[arg(long)]
    pub library_defaults: bool,

    /// Interval of the memory log line on stderr.
    #[arg(long, default_value = "1s", value_parser = parse_interval, value_name = "DURATION")]
    pub report_every: Duration,

    /// Take an analysis sample every K completed requests (default: about 1,000 samples per
    /// round, at least every request). The series is thinned, never grown, past 4,096 points.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "K")]
    pub sample_every: Option<u64>,

    /// Append every sample to FILE as one JSON object per line, flushed per line.
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,

    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// Heap cap for this process (the `cap` allocator). The run stops cleanly at 90% of it.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes, value_name = "SIZE")]
    pub mem_limit: u64,

    /// Exit with code 3 if the verdict is `leak` (a CI gate).
    #[arg(long)]
    pub fail_on_leak: bool,

    /// Deliberately retain this many bytes per completed request: the positive control that
    /// proves the leak detector on this machine.
    #[arg(long, default_value = "0", value_parser = parse_bytes, value_name = "BYTES")]
    pub inject_leak: u64,

    /// Stop retaining injected bytes once this many are held: a bounded cache, which the
    /// detector must judge `bounded`, not `leak`. Needs --inject-leak.
    #[arg(long, value_parser = parse_bytes, value_name = "BYTES", requires = "inject_leak")]
    pub inject_cap: Option<u64>,
}

/// Parses `10000`, `10k`, `2.5m`, `1M` (decimal multipliers) into a request count.
pub fn parse_count(s: &str) -> Result<u64, String> {
    let n = parse_size::Config::new()
        .with_decimal()
        .parse_size(s.trim())
        .map_err(|e| format!("`{s}` is not a count like 500, 10k or 1m: {e}"))?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// Parses a byte size: `4096`, `64KiB`, `1GiB`, `1GB` (KiB = 1024, kB = 1000).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    heapmeter::parse_size(s)
        .map_err(|e| format!("`{s}` is not a size like 4096, 64KiB or 1GiB: {e}"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of requests per second"))?;
    if !(r.is_finite() && r > 0.0) {
        return Err("must be a positive number".into());
    }
    Ok(r)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(10) {
        return Err("must be at least 10ms".into());
    }
    Ok(d)
}

fn parse_target(s: &str) -> Result<Target, String> {
    Target::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("leak-client").chain(args.iter().copied()))
    }

    fn run_args(cli: Cli) -> RunArgs {
        match cli.command {
            Command::Ureq(a) | Command::Raw(a) => a,
            other => panic!("not a run command: {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_documented_workload() {
        let a = run_args(parse(&["raw"]).expect("parses"));
        assert_eq!(a.url.to_string(), "http://127.0.0.1:8080/");
        assert_eq!(a.path_len, 1000);
        assert!(a.unique);
        assert_eq!(a.concurrency, 8);
        assert_eq!(a.timeout, Duration::from_secs(30));
        assert_eq!(a.body, BodyMode::Read);
        assert_eq!(a.mem_limit, 1 << 30);
        assert_eq!(a.requests, None);
        assert_eq!(a.rounds, 1);
    }

    #[test]
    fn counts_sizes_and_durations_take_human_units() {
        let a = run_args(
            parse(&[
                "ureq",
                "--requests",
                "10k",
                "--mem-limit",
                "512MiB",
                "--think",
                "5ms",
                "--inject-leak",
                "1KiB",
                "--unique",
                "false",
            ])
            .expect("parses"),
        );
        assert_eq!(a.requests, Some(10_000));
        assert_eq!(a.mem_limit, 512 << 20);
        assert_eq!(a.think, Duration::from_millis(5));
        assert_eq!(a.inject_leak, 1024);
        assert!(!a.unique);
        assert_eq!(parse_count("1m"), Ok(1_000_000));
        assert_eq!(parse_count("2.5k"), Ok(2_500));
    }

    #[test]
    fn misuse_is_rejected_with_a_usage_error() {
        for bad in [
            &["raw", "--requests", "lots"][..],
            &["raw", "--requests", "0"],
            &["raw", "--concurrency", "0"],
            &["raw", "--rate", "-3"],
            &["raw", "--url", "ftp://example"],
            &["raw", "--url", "http://"],
            &["raw", "--mem-limit", "a lot"],
            &["raw", "--inject-cap", "1MiB"],
            &["raw", "--report-every", "1ms"],
            &["raw", "--frobnicate"],
            &["curl"],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?} must be rejected"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
