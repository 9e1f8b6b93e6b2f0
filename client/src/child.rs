//! Measured runs as child processes: one `leak-client <variant>` per `Job` (so each allocator
//! counts only its own work), its argv written from the job's `Workload`, its progress followed
//! through its JSONL, its summary and samples collected; and `compare --watch`'s
//! `leak-client watch` runs, started and collected the same way. Used by `compare`, `calibrate`
//! and the bench; this process is never measured and judges nothing.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{WatchSpec, Workload};
use crate::clients::VariantName;
use crate::plot::Point;
use crate::runtime::Runtime;
use crate::sample::Sample;
use crate::stop::Stop;
use crate::summary::Summary;
use crate::verdict::Verdict;
use crate::watch::summary::{WatchKind, WatchSample, WatchSummary};

/// One child run: a variant and the workload it runs.
#[derive(Debug, Clone)]
pub struct Job {
    /// Unique name; also the file stem of its JSONL and log (`ureq`, `raw`, `raw+leak`).
    pub name: String,
    pub variant: VariantName,
    pub workload: Workload,
    /// A planted-leak control run.
    pub control: bool,
}

impl Job {
    /// The child's argv after the executable: `<variant> --url URL <workload> --jsonl FILE --json`
    /// (and `--sites-out <name>.dhat-heap.json` beside the JSONL with `--sites`).
    pub fn argv(&self, url: &str, jsonl: &Path) -> Vec<String> {
        let mut args: Vec<String> = vec![self.variant.as_str().into(), "--url".into(), url.into()];
        args.extend(self.workload.to_args());
        args.extend([
            "--jsonl".into(),
            jsonl.display().to_string(),
            "--json".into(),
        ]);
        if self.workload.sites {
            // Beside the JSONL: `<name>.dhat-heap.json`.
            let dhat = jsonl.with_extension("dhat-heap.json");
            args.extend(["--sites-out".into(), dhat.display().to_string()]);
        }
        args
    }
}

/// What a measured run produced, a variant's or a watched command's: the summary of its kind,
/// the readings the plot draws, and its files.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Unique name: the column heading, and the file stem of its JSONL and log.
    pub name: String,
    /// A planted-leak control run (only variants have one).
    pub control: bool,
    pub summary: RunSummary,
    /// The heap readings the plot draws: a variant's live heap, a watched command's post-GC
    /// heap from its probe (none without `--probe`).
    pub points: Vec<Point>,
    pub jsonl: PathBuf,
    pub log: PathBuf,
    /// The run's command line, copy-pasteable.
    pub command: String,
}

/// What judged a measured run, by kind.
#[derive(Debug, Clone)]
pub enum RunSummary {
    /// A variant's own summary (`leak-client ureq|raw --json`).
    Variant(Box<Summary>),
    /// A watched command's (`compare --watch`): the watch's summary.
    Watch(Box<WatchSummary>),
}

impl RunResult {
    pub fn verdict(&self) -> &Verdict {
        match &self.summary {
            RunSummary::Variant(s) => &s.verdict,
            RunSummary::Watch(w) => &w.judged.verdict,
        }
    }

    /// Requests completed (a variant) or served to the watched command.
    pub fn requests(&self) -> u64 {
        match &self.summary {
            RunSummary::Variant(s) => s.requests,
            RunSummary::Watch(w) => w.requests,
        }
    }

    /// A variant's summary (`None` for a watched command's run).
    pub fn variant(&self) -> Option<&Summary> {
        match &self.summary {
            RunSummary::Variant(s) => Some(s),
            RunSummary::Watch(_) => None,
        }
    }
}

/// A child run that failed to produce a summary.
#[derive(Debug)]
pub struct JobError {
    pub name: String,
    pub why: String,
    pub log: PathBuf,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} run failed: {} (its log: {})",
            self.name,
            self.why,
            self.log.display()
        )
    }
}

impl std::error::Error for JobError {}

/// Runs `job` against `url` as a child process of `exe` (a `leak-client` binary: normally this
/// one), writing `<out>/<name>.jsonl` and `<out>/<name>.log`, with a progress bar on stderr
/// (hidden when stderr is not a terminal).
///
/// When `stop` is set (Ctrl-C, SIGTERM) and the child has not stopped by itself within 2 s, it
/// is sent SIGINT, so it stops the way a user's Ctrl-C stops it: summary printed, JSONL complete.
pub fn run_job(
    exe: &Path,
    job: &Job,
    url: &str,
    out: &Path,
    stop: &Stop,
) -> Result<RunResult, JobError> {
    let files = Files::new(out, &job.name);
    let args = job.argv(url, &files.jsonl);
    let mut child = files.spawn(exe, &mut files.command(exe, &args)?)?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| files.fail("no stdout pipe".into()))?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });

    let bar = progress_bar(job);
    let mut tail = Tail::new(&files.jsonl);
    let mut interrupted = false;
    let mut stopped_at: Option<Instant> = None;
    let mut last_line = Instant::now();
    let mut prev: Option<Sample> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(files.fail(format!("cannot wait for the child: {e}"))),
        }
        // A terminal's Ctrl-C reaches the child directly (same process group), and a second
        // signal would make it exit without its summary: forward only to a child still
        // running a while after the stop (e.g. a SIGTERM sent to this process alone).
        if stop.is_set() {
            let since = *stopped_at.get_or_insert_with(Instant::now);
            if !interrupted && since.elapsed() > Duration::from_secs(2) {
                interrupted = true;
                interrupt(&child);
            }
        }
        if let Some(s) = tail.last_sample() {
            let rate = match prev {
                Some(p) if s.t_ms > p.t_ms => {
                    (s.requests - p.requests.min(s.requests)) as f64 * 1000.0
                        / (s.t_ms - p.t_ms) as f64
                }
                _ => 0.0,
            };
            if prev.is_none_or(|p| s.t_ms >= p.t_ms + 1000) {
                prev = Some(s);
                bar.set_message(format!(
                    "{}/s  live {}  err {}",
                    crate::units::count(rate.round() as u64),
                    crate::units::bytes(s.live as f64),
                    crate::units::count(s.errors)
                ));
            }
            bar.set_position(s.requests);
            // No terminal (CI, a pipe, nohup): a plain progress line now and then instead.
            if bar.is_hidden() && last_line.elapsed() >= Duration::from_secs(30) {
                last_line = Instant::now();
                let total = job
                    .workload
                    .total_requests()
                    .map(|n| format!("/{}", crate::units::count(n)))
                    .unwrap_or_default();
                eprintln!(
                    "{:>9}: {}{total} requests, {}s, live {}, errors {}",
                    job.name,
                    crate::units::count(s.requests),
                    s.t_ms / 1000,
                    crate::units::bytes(s.live as f64),
                    crate::units::count(s.errors)
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    bar.finish_and_clear();
    let stdout = reader.join().unwrap_or_default();
    let summary: Summary = files.summary(&stdout, status)?;
    let points = files.lines::<Sample>()?.iter().map(Point::from).collect();
    Ok(files.result(
        &args,
        job.control,
        RunSummary::Variant(Box::new(summary)),
        points,
    ))
}

/// `compare --watch NAME=COMMAND`: runs `leak-client watch --url URL -- sh -c COMMAND` as a
/// child of `exe` (its JSONL and log in `out`, `REQUESTS` set to the workload's total unless
/// already set), and collects what the comparison shows of it: the watch's summary, and the
/// probe's post-GC heap readings as the plotted points.
pub fn run_watch(
    exe: &Path,
    spec: &WatchSpec,
    probe: Option<Runtime>,
    workload: &Workload,
    url: &str,
    out: &Path,
) -> Result<RunResult, JobError> {
    let files = Files::new(out, &spec.name);
    let mut args: Vec<String> = vec![
        "watch".into(),
        "--url".into(),
        url.into(),
        "--quiet".into(),
        "--json".into(),
        "--jsonl".into(),
        files.jsonl.display().to_string(),
    ];
    if let Some(p) = probe {
        args.push("--probe".into());
        args.push(p.name().into());
        // The workload's --sites, for the watched program too (its probe samples the sites).
        if workload.sites {
            args.push("--sites".into());
        }
    }
    args.extend(["--".into(), "sh".into(), "-c".into(), spec.command.clone()]);
    let mut cmd = files.command(exe, &args)?;
    if let (Some(n), None) = (workload.total_requests(), std::env::var_os("REQUESTS")) {
        cmd.env("REQUESTS", n.to_string());
    }
    eprintln!("{:>9}: watching `{}`", spec.name, spec.command);
    let output = files
        .spawn(exe, &mut cmd)?
        .wait_with_output()
        .map_err(|e| files.fail(format!("cannot wait for the child: {e}")))?;
    let summary: WatchSummary =
        files.summary(&String::from_utf8_lossy(&output.stdout), output.status)?;
    let points = files
        .lines::<WatchSample>()?
        .into_iter()
        .filter(|s| s.kind == WatchKind::Probe)
        .filter_map(|s| {
            Some(Point {
                requests: s.requests,
                bytes: s.live?,
                // A probe line does not say whether the program was idle: not marked.
                quiescent: false,
            })
        })
        .collect();
    Ok(files.result(&args, false, RunSummary::Watch(Box::new(summary)), points))
}

/// A child run's name and files (`<out>/<name>.jsonl`, `<out>/<name>.log`), and the steps every
/// child run takes with them: start it with its stderr in the log, read its summary from its
/// stdout and its lines from its JSONL, each failure a [`JobError`] pointing at the log.
struct Files {
    name: String,
    jsonl: PathBuf,
    log: PathBuf,
}

impl Files {
    fn new(out: &Path, name: &str) -> Files {
        Files {
            name: name.to_string(),
            jsonl: out.join(format!("{name}.jsonl")),
            log: out.join(format!("{name}.log")),
        }
    }

    fn fail(&self, why: String) -> JobError {
        JobError {
            name: self.name.clone(),
            why,
            log: self.log.clone(),
        }
    }

    /// `exe ARGS` with stdin closed, stdout piped (the summary) and stderr into the log (created
    /// here).
    fn command(&self, exe: &Path, args: &[String]) -> Result<Command, JobError> {
        let log = File::create(&self.log)
            .map_err(|e| self.fail(format!("cannot create {}: {e}", self.log.display())))?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        Ok(cmd)
    }

    fn spawn(&self, exe: &Path, cmd: &mut Command) -> Result<Child, JobError> {
        cmd.spawn()
            .map_err(|e| self.fail(format!("cannot start {}: {e}", exe.display())))
    }

    /// The child's summary: the last line of its stdout that parses as `T`.
    fn summary<T: DeserializeOwned>(
        &self,
        stdout: &str,
        status: ExitStatus,
    ) -> Result<T, JobError> {
        last_json(stdout).ok_or_else(|| {
            self.fail(format!(
                "no JSON summary on its stdout (exit status {status})"
            ))
        })
    }

    /// Every line of the child's JSONL that parses as `T`.
    fn lines<T: DeserializeOwned>(&self) -> Result<Vec<T>, JobError> {
        read_jsonl(&self.jsonl)
            .map_err(|e| self.fail(format!("cannot read {}: {e}", self.jsonl.display())))
    }

    fn result(
        self,
        args: &[String],
        control: bool,
        summary: RunSummary,
        points: Vec<Point>,
    ) -> RunResult {
        RunResult {
            name: self.name,
            control,
            summary,
            points,
            jsonl: self.jsonl,
            log: self.log,
            command: format!("leak-client {}", shell_words(args)),
        }
    }
}

#[cfg(unix)]
fn interrupt(child: &std::process::Child) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
    }
}

#[cfg(not(unix))]
fn interrupt(_child: &std::process::Child) {}

fn progress_bar(job: &Job) -> ProgressBar {
    let target = ProgressDrawTarget::stderr_with_hz(4);
    let bar = match job.workload.total_requests() {
        Some(n) => ProgressBar::with_draw_target(Some(n), target),
        None => ProgressBar::with_draw_target(None, target),
    };
    let template = "{prefix:>9} [{bar:30}] {pos}/{len} requests  ETA {eta}  {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(job.name.clone());
    bar
}

/// Every line of a JSONL file that parses as `T` (a torn last line, or a line of another kind,
/// is skipped).
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> std::io::Result<Vec<T>> {
    let file = File::open(path)?;
    Ok(BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect())
}

/// The last line of a child's stdout that parses as `T`: its JSON summary.
pub fn last_json<T: DeserializeOwned>(stdout: &str) -> Option<T> {
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
}

/// Follows a growing JSONL file from where it last read.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: String,
    last: Option<Sample>,
}

impl Tail {
    fn new(path: &Path) -> Tail {
        Tail {
            path: path.to_path_buf(),
            offset: 0,
            partial: String::new(),
            last: None,
        }
    }

    fn last_sample(&mut self) -> Option<Sample> {
        if let Ok(mut f) = File::open(&self.path) {
            if f.seek(SeekFrom::Start(self.offset)).is_ok() {
                let mut chunk = String::new();
                if let Ok(n) = f.read_to_string(&mut chunk) {
                    self.offset += n as u64;
                    self.partial.push_str(&chunk);
                    if let Some(end) = self.partial.rfind('\n') {
                        let complete: String = self.partial.drain(..=end).collect();
                        if let Some(s) = complete
                            .lines()
                            .rev()
                            .find_map(|l| serde_json::from_str(l).ok())
                        {
                            self.last = Some(s);
                        }
                    }
                }
            }
        }
        self.last
    }
}

/// Quotes arguments for a copy-pasteable command line.
pub fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A wall-clock budget helper for messages: "took 12.3s".
pub fn took(since: Instant) -> String {
    format!("{:.1}s", since.elapsed().as_secs_f64())
}
