//! The command line: clap definitions and value parsers, and `Workload::to_args`, which writes
//! the workload back as a child's argv. Nothing outside this module parses flags or reads the
//! environment for configuration (`config` turns `RunArgs` into a `RunConfig`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::clients::VariantName;
use crate::runtime::Runtime;
use crate::variant::{BodyMode, TimeoutMode};
use crate::workload::Target;

/// Drive an HTTP workload through one client variant, log its heap at intervals, judge leaks.
#[derive(Debug, Parser)]
#[command(name = "leak-client", version, about, long_about = None, after_long_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes in general, as the top-level `--help` shows them (the values are
/// `crate::exit`'s; a test pins every list below to them).
pub const EXIT_CODES_HELP: &str = "\
Exit codes (each command's --help says when it returns which):
  0    the run completed (whatever its error counts)
  1    the run could not start, failed or could not write its output
  2    command-line misuse
  3    --fail-on-leak and a verdict is `leak`
  130  interrupted (Ctrl-C, SIGTERM)";

/// `ureq` and `raw`'s exit codes.
pub const RUN_EXIT_CODES: &str = "\
Exit codes:
  0    the run completed (whatever its error counts), also when stopped by one Ctrl-C
  1    the run could not start or write its output, or stopped because the server stayed
       unreachable (--max-unreachable)
  2    command-line misuse
  3    --fail-on-leak and the verdict is `leak`
  130  a second Ctrl-C (or SIGTERM): exited at once, without a summary";

/// `compare`'s exit codes.
pub const COMPARE_EXIT_CODES: &str = "\
Exit codes:
  0    every run completed (whatever its error counts)
  1    the comparison could not start or write its report, a run failed, or the control's
       planted leak was not judged `leak`
  2    command-line misuse
  3    --fail-on-leak and a variant (not the control) is judged `leak`
  130  interrupted (Ctrl-C, SIGTERM) before every run finished";

/// `calibrate`'s exit codes.
pub const CALIBRATE_EXIT_CODES: &str = "\
Exit codes:
  0    every case was judged as expected
  1    calibration could not start, or a case failed or was misjudged
  2    command-line misuse
  130  interrupted (Ctrl-C, SIGTERM) before every case ran";

/// `watch`'s exit codes.
pub const WATCH_EXIT_CODES: &str = "\
Exit codes:
  0    the watch completed (also when the command exited or one Ctrl-C stopped it)
  1    the watch could not start (the command, the server, --pid, an output file), the command
       exited before any request reached the server, --ready never answered or a --kick
       failed, or the output could not be written
  2    command-line misuse
  3    --fail-on-leak and the verdict is `leak`
  130  a second Ctrl-C (or SIGTERM): exited at once, without a summary";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the workload through `ureq` (one shared Agent and its keep-alive pool).
    #[command(after_long_help = RUN_EXIT_CODES)]
    Ureq(RunArgs),
    /// Run the workload through the hand-rolled HTTP/1.1 client (one keep-alive connection per worker).
    #[command(after_long_help = RUN_EXIT_CODES)]
    Raw(RunArgs),
    /// Start the latency server in-process, run each variant in its own child process on the
    /// same workload, judge each, and write a report, a plot and the data to --out.
    #[command(after_long_help = COMPARE_EXIT_CODES)]
    Compare(CompareArgs),
    /// Prove the detector on this machine: planted leaks of 16–4096 B/request, clean runs and a
    /// capped cache, each judged; prints detected vs expected.
    #[command(after_long_help = CALIBRATE_EXIT_CODES)]
    Calibrate(CalibrateArgs),
    /// Judge any program, in any language: start the latency server, run COMMAND with
    /// LEAKPROBE_URL set (or attach to --pid), sample its whole process tree's memory (and a
    /// runtime's post-GC heap with --probe) against the requests the server answered, judge.
    #[command(after_long_help = WATCH_EXIT_CODES)]
    Watch(WatchArgs),
}

/// Workload presets for `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The original investigation: one request at a time, 5 ms pause, 10,000 requests,
    /// 1000-character random paths, one server latency drawn between 100 and 300 ms
    /// (about half an hour).
    Original,
}

/// Where the planted leak is allocated: two distinct functions, so that `--sites` can be
/// shown to name the right one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectSite {
    /// A block allocated, then leaked and forgotten (unreachable).
    #[default]
    Forget,
    /// A block pushed onto a list the injector keeps and never shrinks (reachable).
    Keep,
}

impl InjectSite {
    /// The flag value (`forget`, `keep`).
    pub fn as_str(self) -> &'static str {
        match self {
            InjectSite::Forget => "forget",
            InjectSite::Keep => "keep",
        }
    }
}

/// Flags of `compare`: the same workload flags as `ureq`/`raw` (with comparison defaults:
/// 6k requests × 3 rounds, 1 s linger), plus what to compare and where to write.
#[derive(Debug, Clone, Args)]
#[command(
    mut_arg("requests", |a| a.default_value("6k").help("Requests per round, per variant")),
    mut_arg("rounds", |a| a.default_value("3")),
    mut_arg("linger", |a| a.default_value("1s")),
)]
pub struct CompareArgs {
    /// Variants to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ureq,raw")]
    pub variants: Vec<VariantName>,

    #[command(flatten)]
    pub server: ServerArgs,

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

    /// Also run a program under `leak-client watch` against the same server, as a column of
    /// its own (repeatable): `NAME=COMMAND`, run with `sh -c`, with `REQUESTS` set to the
    /// workload's total unless already set, e.g. `--watch node='node examples/node/fetch.js'`.
    #[arg(long = "watch", value_name = "NAME=COMMAND", value_parser = parse_watch_spec)]
    pub watch: Vec<WatchSpec>,

    /// Load this runtime's probe into every --watch program (its post-GC heap is then what is
    /// judged and plotted; without, RSS is judged and the run is left out of the plot).
    #[arg(long, value_enum)]
    pub probe: Option<Runtime>,

    #[command(flatten)]
    pub workload: Workload,
}

/// One `compare --watch NAME=COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    /// Column heading and file stem: letters, digits, `-`, `_`, `+`, `.`.
    pub name: String,
    /// A shell command line.
    pub command: String,
}

fn parse_watch_spec(s: &str) -> Result<WatchSpec, String> {
    let (name, command) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected NAME=COMMAND"))?;
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c));
    if !name_ok || name == "ureq" || name == "raw" || name == "raw+leak" {
        return Err(format!(
            "`{name}`: a NAME of letters, digits, -, _, +, . other than a variant's"
        ));
    }
    if command.trim().is_empty() {
        return Err(format!("`{s}`: empty COMMAND"));
    }
    Ok(WatchSpec {
        name: name.to_string(),
        command: command.to_string(),
    })
}

/// The server of the orchestrating commands (`compare`, `watch`): the in-process latency
/// server, taking every `latency-server` flag (ignored with --url; its `--seed`,
/// `--report-every` and `--mem-limit` are `--server-…` here), or the user's own running one.
#[derive(Debug, Clone, Args)]
#[command(
    mut_arg("addr", |a| a.default_value("127.0.0.1:0")),
    mut_arg("latency", |a| a.default_value("5ms")),
    mut_arg("server_seed", |a| a.long("server-seed")),
    mut_arg("server_report_every", |a| a.long("server-report-every").default_value("0s")),
    mut_arg("server_mem_limit", |a| a.long("server-mem-limit")),
)]
pub struct ServerArgs {
    /// Use this server instead of starting the latency server in-process.
    #[arg(long, value_parser = parse_target)]
    pub url: Option<Target>,

    #[command(flatten)]
    pub embedded: latency_server::cli::ServerArgs,
}

/// Where a run's results go, and whether a leak fails it: `ureq`, `raw` and `watch`.
#[derive(Debug, Clone, Args)]
pub struct Outputs {
    /// Append every sample to FILE as one JSON object per line, written unbuffered as the run goes
    /// (at most a few milliseconds behind it).
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,

    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// Exit with code 3 if the verdict is `leak` (a CI gate).
    #[arg(long)]
    pub fail_on_leak: bool,
}

/// Flags of `watch`: what to watch, the server, when to stop, how often to read, the outputs.
#[derive(Debug, Clone, Args)]
#[command(mut_arg("latency", |a| a.default_value("1ms")))]
#[command(group(clap::ArgGroup::new("what").args(["command", "pid"]).required(true)))]
pub struct WatchArgs {
    /// Watch this running process and its descendants instead of starting COMMAND; needs --url,
    /// the running latency-server the process already sends its requests to.
    #[arg(long, value_name = "PID", value_parser = whole(1u32, None), allow_hyphen_values = true, conflicts_with_all = ["command", "probe"], requires = "url")]
    pub pid: Option<u32>,

    /// Load this runtime's probe into COMMAND and judge the memory it keeps (without: RSS only,
    /// which cannot separate a runtime's own growth from retained objects). node: the live V8
    /// heap plus external memory (Buffers, ArrayBuffers), not an addon's native memory; a reading
    /// is V8's own memory measurement, an ordinary full collection marked beside the program (a
    /// fetch loop: ~10 ms from call to result; a CPU-bound one kept its speed, 1.01×), and the
    /// live objects it counts, not a forced gc(), which also throws away optimized code.
    /// python: the process's anonymous resident memory (everything it keeps, at page
    /// granularity); a reading costs under 1 ms.
    /// Each process paces its readings to take ≤ 5% of its time, and a Node heap that grows is
    /// read more often (every 1% of growth), at a cost to a leaking program.
    #[arg(long, value_enum)]
    pub probe: Option<Runtime>,

    /// Read every DURATION instead of pacing readings by their cost (each reading costs the
    /// process one full collection; Node's back to back cost a CPU-bound fetch loop 1.3× its
    /// time, one every 50 ms nothing measurable).
    #[arg(long, value_parser = parse_interval, value_name = "DURATION", allow_hyphen_values = true, requires = "probe")]
    pub probe_every: Option<Duration>,

    /// Python: judge tracemalloc's traced bytes, exact bytes of Python's own allocations (not a C
    /// extension's malloc), instead of the resident memory; tracing every allocation cost a
    /// request loop 2.7–4.5× its CPU time (`just bench-probe`).
    #[arg(long, requires = "probe")]
    pub probe_tracemalloc: bool,

    /// With --probe: allocation sites that grow with requests, in B/request with an interval,
    /// and the largest flat ones (as `raw --sites`). node: V8's sampling heap profiler in an
    /// in-process inspector session (its live samples at each reading; the last written as a
    /// `.heapprofile` for Chrome DevTools or speedscope; a fetch loop's CPU per request 1.05×
    /// the probe alone's, `just bench-probe`). python: tracemalloc with 16 frames (implies
    /// --probe-tracemalloc; a request loop's CPU per request 25× the probe alone's).
    #[arg(long, requires = "probe")]
    pub sites: bool,

    /// With --sites, node: mean bytes allocated between two samples. Default: one per N bytes
    /// for --requests N (4 KiB to 512 KiB, the Rust sites' rule: 64 B/request within ±25%),
    /// else V8's 32 KiB.
    #[arg(long, value_parser = parse_rate_bytes, value_name = "SIZE", requires = "sites", allow_hyphen_values = true)]
    pub sites_rate: Option<u64>,

    /// Node: take two heap snapshots (after the warm-up, and when the watch ends, before COMMAND
    /// is stopped) and report what holds the objects new in the second, by retainer path from
    /// the roots, in bytes per request. Each snapshot stops the program while V8 writes it (a
    /// Next.js dev server: ~100 MB, 4–5 s idle, up to a minute on a loaded machine; in the run's
    /// private folder).
    #[arg(long, requires = "probe")]
    pub retainers: bool,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Wait until this URL answers 200 before the kicks (COMMAND is a server, e.g. Next.js).
    #[arg(long, value_name = "URL")]
    pub ready: Option<String>,

    /// GET this URL once ready, each after the previous answered (repeatable): what starts the
    /// program's request loop. The run ends --linger after the last kick answered.
    #[arg(long, value_name = "URL")]
    pub kick: Vec<String>,

    /// Stop once the server has served this many requests (`10k` accepted).
    #[arg(long, short = 'n', value_parser = parse_count, value_name = "N", allow_hyphen_values = true)]
    pub requests: Option<u64>,

    /// Stop after this long (e.g. `30s`, `5m`).
    #[arg(long, short = 'd', value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub duration: Option<Duration>,

    /// Stop COMMAND as soon as the verdict is settled either way (leak, stable, bounded),
    /// at the latest at --requests/--duration: the readings are judged at request counts
    /// 1,000 × 2^(k/4), strictly, and two looks in a row must agree (the synthetic sweep: no
    /// clean series settled as a leak). The summary says at how many requests and seconds.
    #[arg(long)]
    pub until_verdict: bool,

    /// Keep sampling this long after the last kick answered, then stop COMMAND.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub linger: Duration,

    /// Time between two samples of the process tree's memory.
    #[arg(long, default_value = "100ms", value_parser = parse_interval, value_name = "DURATION", allow_hyphen_values = true)]
    pub every: Duration,

    /// Interval of the memory log line on stderr.
    #[arg(long, default_value = "1s", value_parser = parse_interval, value_name = "DURATION", allow_hyphen_values = true)]
    pub report_every: Duration,

    /// No periodic log line and no progress bar, and COMMAND's stdout is discarded (its stderr is
    /// kept).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// With --probe: keep the run's private temporary folder (the probe and its readings, under
    /// $TMPDIR) and print where it is, instead of removing it at the end: for a post-mortem.
    #[arg(long, requires = "probe")]
    pub keep_temp: bool,

    #[command(flatten)]
    pub outputs: Outputs,

    /// The program to run, after `--`; it finds the server in LEAKPROBE_URL.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Flags of `calibrate`: the workload flags (10k requests, 200 ms linger by default) plus the
/// planted sizes and variants to test. Each case sets its own `--inject-leak`/`--inject-cap`.
#[derive(Debug, Clone, Args)]
#[command(
    mut_arg("requests", |a| a.default_value("10k").help("Requests per case")),
    mut_arg("linger", |a| a.default_value("200ms")),
)]
pub struct CalibrateArgs {
    /// Planted leak sizes to test, in bytes per request.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256,1024,4096", value_parser = parse_bytes, allow_hyphen_values = true)]
    pub sizes: Vec<u64>,

    /// Variants to test.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ureq,raw")]
    pub variants: Vec<VariantName>,

    /// Directory for each case's JSONL, log and the calibration table.
    #[arg(long, default_value = "leak-report/calibrate", value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub workload: Workload,
}

/// Flags of `ureq` and `raw`: the target, the workload, and where the results go
/// (`RunArgs::config`, in `config`, makes them one run's `RunConfig`).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Base URL. Each request's path is this path plus a generated segment (see --path-len);
    /// its query string (e.g. `?latency_ms=5`) is kept on every request.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_parser = parse_target)]
    pub url: Target,

    /// With --sites: where to write the DHAT profile (open it in Valgrind's `dh_view.html`).
    /// Default: beside --jsonl (`run.jsonl` → `run.dhat-heap.json`), else
    /// `leak-report/<variant>.dhat-heap.json`, where `compare` writes its runs' profiles.
    #[arg(long, value_name = "FILE", requires = "sites")]
    pub sites_out: Option<PathBuf>,

    #[command(flatten)]
    pub outputs: Outputs,

    #[command(flatten)]
    pub workload: Workload,
}

impl RunArgs {
    /// Where `--sites` writes the DHAT profile: `--sites-out`, else with the run's other
    /// outputs (beside its JSONL, or in `leak-report/`), never loose in the working directory
    /// under a name one run after another overwrites.
    pub fn dhat_out(&self, variant: VariantName) -> PathBuf {
        match (&self.sites_out, &self.outputs.jsonl) {
            (Some(p), _) => p.clone(),
            (None, Some(jsonl)) => jsonl.with_extension("dhat-heap.json"),
            (None, None) => {
                PathBuf::from("leak-report").join(format!("{}.dhat-heap.json", variant.as_str()))
            }
        }
    }
}

/// The workload and how it is measured: every command that runs it (`ureq`, `raw`, `compare`,
/// `calibrate`, the bench) flattens this one struct, and [`Workload::to_args`] writes it back
/// as a child's argv, so a new flag reaches every command and every child.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct Workload {
    /// Total path length in characters. The generated segment holds the sequence number and
    /// seeded random URL-safe characters (letters, digits, `-`, `_`). 0 sends the URL's path as
    /// given.
    #[arg(long, default_value_t = 1000, value_parser = whole(0usize, None), value_name = "CHARS", allow_hyphen_values = true)]
    pub path_len: usize,

    /// Make every URL unique (`false`: repeat one generated URL).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub unique: bool,

    /// Seed for the random path segments: the same seed gives the same URLs.
    #[arg(long, default_value_t = 1, value_parser = whole(0u64, None), allow_hyphen_values = true)]
    pub seed: u64,

    /// Requests per round (`10k`, `1m` accepted). With neither --requests nor --duration the
    /// run goes on until Ctrl-C.
    #[arg(long, short = 'n', value_parser = parse_count, value_name = "N", allow_hyphen_values = true)]
    pub requests: Option<u64>,

    /// Length of each round (e.g. `30s`, `5m`); with --requests too, whichever comes first.
    #[arg(long, short = 'd', value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub duration: Option<Duration>,

    /// Stop as soon as the verdict is settled either way (leak, stable, bounded), at the latest
    /// at --requests/--duration: the series is judged at request counts 1,000 × 2^(k/4),
    /// strictly, and two looks in a row must agree (the synthetic sweep: no clean series
    /// settled as a leak). Each look runs outside the measured heap. The summary says at how
    /// many requests and seconds; the run is then stopped by `verdict`.
    #[arg(long)]
    pub until_verdict: bool,

    /// Worker threads, each sending one request at a time (synchronous; no async runtime).
    #[arg(long, short = 'c', default_value_t = 8, value_parser = whole(1u32, Some(4096)), allow_hyphen_values = true)]
    pub concurrency: u32,

    /// Pause of each worker between its requests (the original loop: 5ms).
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub think: Duration,

    /// Throttle to this many requests per second overall (default: as fast as the workers go).
    #[arg(long, value_parser = parse_rate, value_name = "PER_SECOND", allow_hyphen_values = true)]
    pub rate: Option<f64>,

    /// Repeat the workload this many times, idle for --pause between rounds; the heap is read
    /// at each quiescent point ("the rounds staircase").
    #[arg(long, default_value_t = 1, value_parser = whole(1u32, Some(10_000)), allow_hyphen_values = true)]
    pub rounds: u32,

    /// Idle time between rounds.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub pause: Duration,

    /// Keep sampling this long after the last request, with the client idle but alive
    /// ("does memory ever come back down?").
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub linger: Duration,

    /// Per-request timeout: bounds the whole exchange (connect, send, response, body).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub timeout: Duration,

    /// How the ureq variant applies --timeout: `phases` (connect, send, response and body
    /// timeouts adding up to it) or `global` (`timeout_global`, which makes ureq 3 spawn a
    /// resolver thread per request — a cost worth measuring, since many applications set it).
    #[arg(long, value_enum, default_value_t = TimeoutMode::Phases, value_name = "MODE")]
    pub ureq_timeout: TimeoutMode,

    /// `read`: read every response body; `skip`: drop the response without reading its body.
    #[arg(long, value_enum, default_value_t = BodyMode::Read)]
    pub body: BodyMode,

    /// Largest response body accepted (e.g. `16MiB`); larger fails with `too_large`.
    #[arg(long, default_value = "16MiB", value_parser = parse_bytes, value_name = "SIZE", allow_hyphen_values = true)]
    pub max_body: u64,

    /// Use the client library's own connection-pool defaults (ureq: 3 idle connections per
    /// host) instead of sizing the pool from --concurrency. A realistic leak scenario itself.
    #[arg(long)]
    pub library_defaults: bool,

    /// Interval of the memory log line on stderr.
    #[arg(long, default_value = "1s", value_parser = parse_interval, value_name = "DURATION", allow_hyphen_values = true)]
    pub report_every: Duration,

    /// Take an analysis sample every K completed requests (default: about 1,000 samples per
    /// round, at least every request). The series is thinned, never grown, past 4,096 points.
    #[arg(long, value_parser = whole(1u64, None), value_name = "K", allow_hyphen_values = true)]
    pub sample_every: Option<u64>,

    /// Heap cap for this process (the `cap` allocator). The run stops cleanly at 90% of it.
    /// kB, MB, GB are powers of 1000 and KiB, MiB, GiB powers of 1024 (`1GB` is 10^9 bytes,
    /// `1GiB` 2^30); a bare number is bytes. Every size flag reads sizes this way.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes, value_name = "SIZE", allow_hyphen_values = true)]
    pub mem_limit: u64,

    /// End the run (stopped by `unreachable`, exit code 1) once the server has refused
    /// connections this long. Meanwhile each worker backs off (10 ms doubling to 1 s).
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub max_unreachable: Duration,

    /// Deliberately retain this many bytes per completed request: the positive control that
    /// proves the leak detector on this machine.
    #[arg(long, default_value = "0", value_parser = parse_bytes, value_name = "BYTES", allow_hyphen_values = true)]
    pub inject_leak: u64,

    /// Stop retaining injected bytes once this many are held: a bounded cache, which the
    /// detector must judge `bounded`, not `leak`. Needs --inject-leak.
    #[arg(long, value_parser = parse_bytes, value_name = "BYTES", requires = "inject_leak", allow_hyphen_values = true)]
    pub inject_cap: Option<u64>,

    /// Where --inject-leak plants its leak: `forget` (a block leaked and forgotten, in one
    /// function) or `keep` (a block kept in an ever-growing list, in another): two distinct
    /// call sites for --sites to find.
    #[arg(long, value_enum, default_value_t = InjectSite::Forget, value_name = "SITE")]
    pub inject_site: InjectSite,

    /// Sample allocation sites while the run goes (a heap profiler in the allocator, sampling
    /// by bytes): the summary lists the call sites that grow with requests and the largest flat
    /// ones, and a DHAT profile is written. Off by default; costs nothing when off.
    #[arg(long)]
    pub sites: bool,

    /// With --sites: mean bytes allocated between two samples (e.g. `16KiB`). Default: one
    /// sample per N bytes for a run of N requests in all (enough samples to size a 64 B/request
    /// growth within ±25%), between 4 KiB and 512 KiB (512 KiB when the run has no request
    /// count). Lower is more precise and slower.
    #[arg(long, value_parser = parse_rate_bytes, value_name = "SIZE", requires = "sites", allow_hyphen_values = true)]
    pub sites_rate: Option<u64>,
}

impl Workload {
    /// The defaults of `ureq` and `raw`.
    pub fn defaults() -> Workload {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            workload: Workload,
        }
        match Only::try_parse_from(["leak-client"]) {
            Ok(o) => o.workload,
            Err(e) => unreachable!("the workload flags all have defaults: {e}"),
        }
    }

    /// Requests the whole run sends, when bounded by count.
    pub fn total_requests(&self) -> Option<u64> {
        self.requests.map(|n| n * u64::from(self.rounds))
    }

    /// This workload as flags, every field written out (so a child's defaults never matter):
    /// `leak-client ureq --url URL <to_args()>` runs exactly this workload.
    pub fn to_args(&self) -> Vec<String> {
        let d = |d: Duration| humantime::format_duration(d).to_string();
        let mut v: Vec<String> = Vec::with_capacity(48);
        let mut flag = |name: &str, value: String| {
            v.push(format!("--{name}"));
            v.push(value);
        };
        flag("path-len", self.path_len.to_string());
        flag("unique", self.unique.to_string());
        flag("seed", self.seed.to_string());
        if let Some(n) = self.requests {
            flag("requests", n.to_string());
        }
        if let Some(t) = self.duration {
            flag("duration", d(t));
        }
        flag("concurrency", self.concurrency.to_string());
        flag("think", d(self.think));
        if let Some(r) = self.rate {
            flag("rate", r.to_string());
        }
        flag("rounds", self.rounds.to_string());
        flag("pause", d(self.pause));
        flag("linger", d(self.linger));
        flag("timeout", d(self.timeout));
        flag("ureq-timeout", self.ureq_timeout.as_str().to_string());
        flag("body", self.body.as_str().to_string());
        flag("max-body", self.max_body.to_string());
        flag("report-every", d(self.report_every));
        if let Some(k) = self.sample_every {
            flag("sample-every", k.to_string());
        }
        flag("mem-limit", self.mem_limit.to_string());
        flag("max-unreachable", d(self.max_unreachable));
        flag("inject-leak", self.inject_leak.to_string());
        if let Some(c) = self.inject_cap {
            flag("inject-cap", c.to_string());
        }
        flag("inject-site", self.inject_site.as_str().to_string());
        if let Some(r) = self.sites_rate {
            flag("sites-rate", r.to_string());
        }
        if self.sites {
            v.push("--sites".into());
        }
        if self.library_defaults {
            v.push("--library-defaults".into());
        }
        if self.until_verdict {
            v.push("--until-verdict".into());
        }
        v
    }
}

// The value parsers. clap prefixes each error with the flag and the value ("invalid value '-5'
// for '--requests <N>': "), so the message says only the form expected, in the help's words,
// never a Rust parser's ("invalid digit found in string"). Every numeric, size and duration flag
// also sets `allow_hyphen_values`, so `--requests -5` reaches its parser instead of being taken
// for a flag (clap's "unexpected argument '-5'", with a tip to use `--`, wrong under `watch`).

/// What [`parse_count`] accepts, as its error says.
const COUNT_FORM: &str = "expected a whole number ≥ 1, like 20000 or 20k";
/// What [`parse_bytes`] accepts.
const SIZE_FORM: &str =
    "expected a size like 4096, 64KiB or 1GiB (kB, MB, GB: powers of 1000; KiB, MiB, GiB: of 1024)";
/// What [`parse_duration`] accepts.
const DURATION_FORM: &str = "expected a duration like 0s, 250ms, 30s or 5m";

/// Parses `10000`, `10k`, `2.5m`, `1M` (decimal multipliers) into a request count.
pub fn parse_count(s: &str) -> Result<u64, String> {
    match parse_size::Config::new()
        .with_decimal()
        .parse_size(s.trim())
    {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(COUNT_FORM.into()),
    }
}

/// Parses a byte size: `4096`, `64KiB`, `1GiB`, `1GB` (KiB = 1024, kB = 1000).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    heapmeter::parse_size(s).map_err(|_| SIZE_FORM.into())
}

/// A byte size of at least 1 (a sampling rate).
fn parse_rate_bytes(s: &str) -> Result<u64, String> {
    match parse_bytes(s) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a size of at least 1 byte, like 4096 or 16KiB".into()),
    }
}

/// A plain whole number from `lo` to `hi` (no upper bound: `None`), e.g. `whole(1u32, Some(4096))`.
fn whole<T>(lo: T, hi: Option<T>) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
{
    move |s: &str| match s.trim().parse::<T>() {
        Ok(n) if n >= lo && hi.is_none_or(|hi| n <= hi) => Ok(n),
        _ => Err(match hi {
            Some(hi) => format!("expected a whole number from {lo} to {hi}"),
            None => format!("expected a whole number ≥ {lo}"),
        }),
    }
}

/// A duration: `250ms`, `30s`, `5m`, `1h 30m`, `0s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|_| DURATION_FORM.into())
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("expected a number of requests per second > 0, like 250 or 0.5".into()),
    }
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if d >= Duration::from_millis(10) => Ok(d),
        _ => Err("expected a duration of at least 10ms, like 100ms or 1s".into()),
    }
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

    fn compare_args(argv: &[&str]) -> CompareArgs {
        let mut all = vec!["compare"];
        all.extend_from_slice(argv);
        match parse(&all).expect("parses").command {
            Command::Compare(a) => a,
            other => panic!("not compare: {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_documented_workload() {
        let a = run_args(parse(&["raw"]).expect("parses"));
        assert_eq!(a.url.to_string(), "http://127.0.0.1:8080/");
        assert_eq!(a.workload.path_len, 1000);
        assert!(a.workload.unique);
        assert_eq!(a.workload.concurrency, 8);
        assert_eq!(a.workload.timeout, Duration::from_secs(30));
        assert_eq!(a.workload.body, BodyMode::Read);
        assert_eq!(a.workload.mem_limit, 1 << 30);
        assert_eq!(a.workload.requests, None);
        assert_eq!(a.workload.rounds, 1);
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
        assert_eq!(a.workload.requests, Some(10_000));
        assert_eq!(a.workload.mem_limit, 512 << 20);
        assert_eq!(a.workload.think, Duration::from_millis(5));
        assert_eq!(a.workload.inject_leak, 1024);
        assert!(!a.workload.unique);
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
            &["raw", "--sites-rate", "16KiB"],
            &["raw", "--sites", "--sites-rate", "0"],
            &["raw", "--sites-out", "x.json"],
            &["raw", "--inject-site", "nowhere"],
            &["raw", "--report-every", "1ms"],
            &["raw", "--frobnicate"],
            &["curl"],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?} must be rejected"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn compare_and_calibrate_keep_their_own_workload_defaults() {
        let c = compare_args(&[]);
        assert_eq!(c.workload.requests, Some(6_000));
        assert_eq!(c.workload.rounds, 3);
        assert_eq!(c.workload.linger, Duration::from_secs(1));
        assert_eq!(c.workload.concurrency, 8);
        assert_eq!(c.workload.path_len, 1000);
        assert_eq!(c.server.embedded.latency, Duration::from_millis(5));
        let Command::Calibrate(k) = parse(&["calibrate"]).expect("parses").command else {
            panic!("not calibrate")
        };
        assert_eq!(k.workload.requests, Some(10_000));
        assert_eq!(k.workload.rounds, 1);
        assert_eq!(k.workload.linger, Duration::from_millis(200));
        // The run commands keep theirs.
        let r = run_args(parse(&["ureq"]).expect("parses"));
        assert_eq!(r.workload, Workload::defaults());
        assert_eq!(r.workload.linger, Duration::ZERO);
    }

    #[test]
    fn compare_takes_every_workload_flag_a_run_takes() {
        let c = compare_args(&[
            "--rate",
            "250",
            "--max-body",
            "1MiB",
            "--inject-leak",
            "64",
            "--unique",
            "false",
            "--duration",
            "3s",
        ]);
        assert_eq!(c.workload.rate, Some(250.0));
        assert_eq!(c.workload.max_body, 1 << 20);
        assert_eq!(c.workload.inject_leak, 64);
        assert!(!c.workload.unique);
        assert_eq!(c.workload.duration, Some(Duration::from_secs(3)));
    }

    #[test]
    fn watch_takes_a_command_or_a_pid_and_shares_the_server_and_output_flags() {
        let Command::Watch(w) =
            parse(&["watch", "--json", "--requests", "10k", "--", "node", "a.js"])
                .expect("parses")
                .command
        else {
            panic!("not watch")
        };
        assert_eq!(w.command, ["node", "a.js"]);
        assert_eq!(w.requests, Some(10_000));
        assert!(w.outputs.json);
        assert_eq!(w.server.embedded.latency, Duration::from_millis(1));
        assert!(w.server.url.is_none());
        for bad in [
            &["watch"][..],
            &["watch", "--pid", "1", "--", "node"],
            &["watch", "--pid", "1", "--probe", "node"],
            &["watch", "--probe", "ruby", "--", "ruby", "a.rb"],
            &["watch", "--every", "1ms", "--", "true"],
            &["watch", "--probe-every", "1s", "--", "true"],
            &["watch", "--probe-tracemalloc", "--", "true"],
            &["watch", "--sites", "--", "true"],
            &[
                "watch",
                "--probe",
                "node",
                "--sites-rate",
                "8KiB",
                "--",
                "true",
            ],
            &[
                "watch",
                "--probe",
                "node",
                "--sites",
                "--sites-rate",
                "0",
                "--",
                "true",
            ],
            &["watch", "--retainers", "--", "true"],
            &["watch", "--pid", "1"],
            &["compare", "--watch", "no-equals-sign"],
            &["compare", "--watch", "raw=node a.js"],
            &["compare", "--watch", "node="],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?} must be rejected"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        let Command::Watch(p) = parse(&["watch", "--pid", "1", "--url", "http://127.0.0.1:8080/"])
            .expect("parses")
            .command
        else {
            panic!("not watch")
        };
        assert_eq!((p.pid, p.command.len()), (Some(1), 0));
        let Command::Watch(s) = parse(&[
            "watch",
            "--probe",
            "node",
            "--sites",
            "--sites-rate",
            "8KiB",
            "--",
            "node",
        ])
        .expect("parses")
        .command
        else {
            panic!("not watch")
        };
        assert!(s.sites);
        assert_eq!(s.sites_rate, Some(8 * 1024));
        let c = compare_args(&["--watch", "node=node examples/node/fetch.js read"]);
        assert_eq!(
            c.watch,
            [WatchSpec {
                name: "node".into(),
                command: "node examples/node/fetch.js read".into()
            }]
        );
    }

    /// A random workload within each flag's accepted range.
    fn random_workload(rng: &mut rand::rngs::StdRng) -> Workload {
        use rand::Rng;
        let dur = |rng: &mut rand::rngs::StdRng| match rng.gen_range(0..4) {
            0 => Duration::ZERO,
            1 => Duration::from_millis(rng.gen_range(1..100_000)),
            2 => Duration::from_secs(rng.gen_range(1..100_000)),
            _ => Duration::new(rng.gen_range(0..10_000), rng.gen_range(0..1_000_000_000)),
        };
        let sites = rng.gen_bool(0.5);
        let inject_leak = if rng.gen_bool(0.5) {
            rng.gen_range(1..1 << 20)
        } else {
            0
        };
        Workload {
            path_len: rng.gen_range(0..5000),
            unique: rng.gen_bool(0.5),
            seed: rng.r#gen(),
            requests: rng
                .gen_bool(0.7)
                .then(|| rng.gen_range(1..u64::from(u32::MAX))),
            duration: rng.gen_bool(0.5).then(|| dur(rng)).filter(|d| !d.is_zero()),
            until_verdict: rng.gen_bool(0.5),
            concurrency: rng.gen_range(1..=4096),
            think: dur(rng),
            rate: rng.gen_bool(0.5).then(|| rng.gen_range(0.001..1e6)),
            rounds: rng.gen_range(1..=10_000),
            pause: dur(rng),
            linger: dur(rng),
            timeout: dur(rng),
            ureq_timeout: if rng.gen_bool(0.5) {
                TimeoutMode::Phases
            } else {
                TimeoutMode::Global
            },
            body: if rng.gen_bool(0.5) {
                BodyMode::Read
            } else {
                BodyMode::Skip
            },
            max_body: rng.r#gen(),
            library_defaults: rng.gen_bool(0.5),
            report_every: Duration::from_millis(rng.gen_range(10..10_000_000)),
            sample_every: rng.gen_bool(0.5).then(|| rng.gen_range(1..u64::MAX)),
            mem_limit: rng.r#gen(),
            max_unreachable: dur(rng),
            inject_leak,
            inject_cap: (inject_leak > 0 && rng.gen_bool(0.5)).then(|| rng.r#gen()),
            inject_site: if rng.gen_bool(0.5) {
                InjectSite::Forget
            } else {
                InjectSite::Keep
            },
            sites,
            sites_rate: (sites && rng.gen_bool(0.5)).then(|| rng.gen_range(1..u64::MAX)),
        }
    }

    #[test]
    fn a_workload_survives_being_written_as_a_childs_argv() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut cases: Vec<Workload> = vec![Workload::defaults()];
        cases.extend((0..2000).map(|_| random_workload(&mut rng)));
        for w in cases {
            let mut argv = vec!["leak-client".to_string(), "raw".into()];
            argv.extend(w.to_args());
            let parsed =
                Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?} must parse: {e}"));
            assert_eq!(run_args(parsed).workload, w, "argv {argv:?}");
        }
    }

    #[test]
    fn the_dhat_profile_goes_with_the_runs_other_outputs() {
        let out = |argv: &[&str]| {
            let a = run_args(parse(argv).expect("parses"));
            a.config(VariantName::Raw).sites.map(|s| s.out)
        };
        assert_eq!(out(&["raw"]), None);
        assert_eq!(
            out(&["raw", "--sites"]),
            Some(PathBuf::from("leak-report/raw.dhat-heap.json"))
        );
        assert_eq!(
            out(&["raw", "--sites", "--jsonl", "runs/a.jsonl"]),
            Some(PathBuf::from("runs/a.dhat-heap.json"))
        );
        assert_eq!(
            out(&[
                "raw",
                "--sites",
                "--jsonl",
                "a.jsonl",
                "--sites-out",
                "p.json"
            ]),
            Some(PathBuf::from("p.json"))
        );
    }

    /// The exit codes a `--help` lists: the numbers opening its `Exit codes` section's lines.
    fn listed_codes(help: &str) -> Vec<u8> {
        let Some((_, section)) = help.split_once("Exit codes") else {
            return Vec::new();
        };
        section
            .lines()
            .filter_map(|l| l.strip_prefix("  ")?.split(' ').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn each_commands_help_lists_its_own_exit_codes() {
        use crate::exit::{FAILURE, INTERRUPTED, LEAK, OK, USAGE};
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let all = [OK, FAILURE, USAGE, LEAK, INTERRUPTED];
        let top = cli.render_long_help().to_string();
        assert_eq!(listed_codes(&top), all, "{top}");
        let help = |cli: &mut clap::Command, name: &str| -> String {
            match cli.find_subcommand_mut(name) {
                Some(c) => c.render_long_help().to_string(),
                None => panic!("no subcommand {name}"),
            }
        };
        for (name, codes) in [
            ("ureq", &all[..]),
            ("raw", &all),
            ("compare", &all),
            ("calibrate", &[OK, FAILURE, USAGE, INTERRUPTED]),
            ("watch", &all),
        ] {
            let h = help(&mut cli, name);
            assert_eq!(listed_codes(&h), codes, "{name}:\n{h}");
        }
        // Each lists only what applies to it.
        let watch = help(&mut cli, "watch");
        let section = watch.split_once("Exit codes").map_or("", |(_, s)| s);
        assert!(section.contains("exited before any request"), "{section}");
        for foreign in ["--max-unreachable", "compare", "control"] {
            assert!(
                !section.contains(foreign),
                "watch's codes mention {foreign}:\n{section}"
            );
        }
        let raw = help(&mut cli, "raw");
        let section = raw.split_once("Exit codes").map_or("", |(_, s)| s);
        for foreign in ["compare", "control", "kick"] {
            assert!(
                !section.contains(foreign),
                "raw's codes mention {foreign}:\n{section}"
            );
        }
    }

    #[test]
    fn watch_and_compare_take_every_latency_server_flag_for_their_own_server() {
        use clap::CommandFactory;
        let server = latency_server::cli::Cli::command();
        let client = Cli::command();
        for sub in ["watch", "compare"] {
            let cmd = client.find_subcommand(sub).expect("subcommand");
            for arg in server.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if ["help", "version"].contains(&long) {
                    continue;
                }
                let renamed = format!("server-{long}");
                assert!(
                    cmd.get_arguments()
                        .any(|a| a.get_long() == Some(long) || a.get_long() == Some(&renamed)),
                    "{sub} lacks latency-server's --{long}"
                );
            }
        }
        let Command::Watch(w) = parse(&[
            "watch",
            "--addr",
            "localhost:0",
            "--set-cookie",
            "session=1",
            "--jitter",
            "2ms",
            "--server-seed",
            "9",
            "--server-mem-limit",
            "64MiB",
            "--report-every",
            "2s",
            "--",
            "true",
        ])
        .expect("parses")
        .command
        else {
            panic!("not watch")
        };
        let e = &w.server.embedded;
        let config = e.config(e.seed());
        assert!(config.localhost && config.addr.port() == 0);
        assert_eq!(config.set_cookies, ["session=1"]);
        assert_eq!(config.jitter, Duration::from_millis(2));
        assert_eq!((config.seed, e.mem_limit), (9, Some(64 << 20)));
        assert_eq!(
            config.report_every, None,
            "the in-process server logs nothing by default"
        );
        assert_eq!(
            w.report_every,
            Duration::from_secs(2),
            "watch's own log line"
        );
        let c = compare_args(&["--seed", "3", "--server-seed", "4", "--latency", "7ms"]);
        assert_eq!((c.workload.seed, c.server.embedded.seed), (3, Some(4)));
        assert_eq!(c.server.embedded.latency, Duration::from_millis(7));
        assert_eq!(c.server.embedded.addr.addr.port(), 0);
    }

    /// Renders the error `argv` ends in, as the user sees it.
    fn error_of(argv: &[&str]) -> String {
        match parse(argv) {
            Ok(_) => panic!("{argv:?} must be rejected"),
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "{argv:?}");
                e.render().to_string()
            }
        }
    }

    #[test]
    fn bad_numbers_name_the_flag_and_the_expected_form() {
        let count = "expected a whole number ≥ 1, like 20000 or 20k";
        let size = "expected a size like 4096, 64KiB or 1GiB";
        let duration = "expected a duration like 0s, 250ms, 30s or 5m";
        let table: &[(&[&str], &str)] = &[
            (
                &["raw", "--requests", "-5"],
                "invalid value '-5' for '--requests <N>': ",
            ),
            (&["raw", "--requests", "-5"], count),
            (&["raw", "--requests=-5"], count),
            (&["raw", "-n", "-5"], count),
            (&["raw", "--requests", "0"], count),
            (&["raw", "--requests", "lots"], count),
            (&["watch", "--requests", "-5", "--", "true"], count),
            (&["watch", "--duration", "-5s", "--", "true"], duration),
            (
                &["watch", "--pid", "-1", "--url", "http://127.0.0.1:1/"],
                "expected a whole number ≥ 1",
            ),
            (
                &["raw", "--mem-limit", "1XB"],
                "invalid value '1XB' for '--mem-limit <SIZE>': ",
            ),
            (&["raw", "--mem-limit", "1XB"], size),
            (&["raw", "--mem-limit", "-1GiB"], size),
            (&["raw", "--max-body", "x"], size),
            (&["raw", "--inject-leak", "-64"], size),
            (&["calibrate", "--sizes", "16,-64"], size),
            (&["raw", "--sites", "--sites-rate", "0"], "at least 1 byte"),
            (
                &["raw", "--concurrency", "-2"],
                "expected a whole number from 1 to 4096",
            ),
            (
                &["raw", "--concurrency", "5000"],
                "expected a whole number from 1 to 4096",
            ),
            (
                &["raw", "--rounds", "-1"],
                "expected a whole number from 1 to 10000",
            ),
            (&["raw", "--path-len", "-1"], "expected a whole number ≥ 0"),
            (&["raw", "--seed", "-1"], "expected a whole number ≥ 0"),
            (
                &["raw", "--sample-every", "0"],
                "expected a whole number ≥ 1",
            ),
            (
                &["raw", "--rate", "-3"],
                "expected a number of requests per second > 0",
            ),
            (&["raw", "--think", "-5ms"], duration),
            (&["raw", "--timeout", "5 parsecs"], duration),
            (
                &["compare", "--latency", "-1ms"],
                "expected a duration like",
            ),
            (&["raw", "--report-every", "1ms"], "at least 10ms"),
            (&["watch", "--every", "-1s", "--", "true"], "at least 10ms"),
        ];
        for (argv, want) in table {
            let err = error_of(argv);
            assert!(err.contains(want), "{argv:?}: want {want:?} in:\n{err}");
            for internal in [
                "invalid digit",
                "unexpected argument",
                "ParseIntError",
                "'--'",
            ] {
                assert!(!err.contains(internal), "{argv:?}: {internal:?} in:\n{err}");
            }
        }
    }
}
