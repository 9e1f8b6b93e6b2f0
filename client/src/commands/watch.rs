//! `leak-client watch`: the wiring that judges any program. Starts the server (or polls a
//! running one's `/__stats`), starts COMMAND in its own process group with `LEAKPROBE_URL` (and
//! a probe, in a private folder), turns a `watch::session::Session` (which samples the tree —
//! every process the command starts, as `reaper` adopts orphans — and reads the probe against
//! the served count), kicks a server program, stops it (SIGTERM to the group, SIGKILL after a
//! grace period, then whatever left the group), and prints the summary. Nothing here measures memory or decides a
//! class itself.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::reaper::Reaper;
use super::shared::{Backend, install_signal_handler};
use crate::cli::WatchArgs;
use crate::exit;
use crate::jsonl::Jsonl;
use crate::private_dir::PrivateDir;
use crate::progress;
use crate::runtime::Runtime;
use crate::stop::Stop;
use crate::watch::clock::monotonic_ns;
use crate::watch::probe::{Probe, ProbeReader, ProbeSettings};
use crate::watch::proctree::{Root, TreeSampler};
use crate::watch::retainers::{self, control::Control};
use crate::watch::served::{Served, TICK, agent, http_get};
use crate::watch::session::{Session, Setup, SitesSetup};
use crate::watch::sites::{PY_TOP, node_rate};
use crate::watch::summary::{WatchStop, WatchSummary};

/// SIGTERM to SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// Messages from the kick thread.
enum Kick {
    Ready,
    NeverReady,
    Answered { url: String, status: u16 },
    Failed { url: String, why: String },
    Done,
}

/// `leak-client watch`: runs, prints the summary, returns the exit code.
pub fn watch(args: &WatchArgs) -> u8 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}

fn run(args: &WatchArgs) -> Result<u8, String> {
    if args.retainers && args.probe != Some(Runtime::Node) {
        return Err("--retainers takes V8 heap snapshots: it needs --probe node".into());
    }
    let backend = Backend::start(&args.server)?;
    let url = backend.url.clone();
    let served = match &args.server.url {
        None => Served::InProcess(backend.server.as_ref()),
        Some(target) => {
            Served::remote(&target.authority).map_err(|e| format!("--url {url}: {e}"))?
        }
    };
    eprintln!("watch: LEAKPROBE_URL={url}");

    // The probe's folder: private to this run, removed at the end (kept with --keep-temp).
    let mut dir = match args.probe {
        Some(_) => Some(PrivateDir::create("leakprobe-watch-").map_err(|e| {
            let tmp = std::env::temp_dir();
            format!("cannot make a private folder in {}: {e}", tmp.display())
        })?),
        None => None,
    };
    let probe =
        match (args.probe, &dir) {
            (Some(p), Some(dir)) => Some(Probe::install(p, dir.path()).map_err(|e| {
                format!("cannot write the probe into {}: {e}", dir.path().display())
            })?),
            _ => None,
        };
    // --retainers: the heap snapshots' channel, in the same folder.
    let mut snapshots = match (args.retainers, &dir) {
        (true, Some(dir)) => Some(
            Control::create(dir.path())
                .map_err(|e| format!("cannot write into {}: {e}", dir.path().display()))?,
        ),
        _ => None,
    };
    let jsonl = match &args.outputs.jsonl {
        Some(p) => {
            Some(File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))?)
        }
        None => None,
    };

    let stop = Stop::new();
    install_signal_handler(&stop);

    let (mut child, pid) = match args.pid {
        Some(pid) => {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return Err(format!("--pid {pid}: no such process"));
            }
            (None, pid)
        }
        None => {
            if let Err(e) = super::reaper::adopt_orphans() {
                log::warn!("cannot adopt orphans ({e}): a process that detaches leaves the tree");
            }
            let ctl = snapshots.as_ref().map(Control::env);
            let child = spawn(args, &url, probe.as_ref(), ctl)?;
            let pid = child.id();
            eprintln!(
                "watch: started `{}` (pid {pid}, its own process group)",
                crate::child::shell_words(&args.command)
            );
            (Some(child), pid)
        }
    };

    let mut kicks = Kicks::start(args);
    let setup = Setup {
        command: args.command.clone(),
        pid,
        url: url.clone(),
        probe: args.probe,
        every: args.every,
        report_every: args.report_every,
        quiet: args.quiet,
        requests: args.requests,
        until_verdict: args.until_verdict,
        clock: monotonic_ns,
        sites: match (&probe, args.sites) {
            (Some(p), true) => Some(SitesSetup {
                dir: p.dir().to_path_buf(),
                heapprofile: heapprofile_out(args)?,
            }),
            _ => None,
        },
    };
    let mut reaper = child.as_ref().map(|_| Reaper::new(pid));
    let mut session = Session::new(
        setup,
        served,
        // A command's whole tree is the watcher's children: orphans are adopted (`reaper`).
        TreeSampler::new(match child {
            Some(_) => Root::ChildrenOf(std::process::id()),
            None => Root::Process(pid),
        }),
        probe.as_ref().map(|p| ProbeReader::new(p.out_path())),
        Jsonl::new(jsonl),
    );
    let mut exit_status: Option<String> = None;
    progress::start(progress::End::of(args.requests, args.duration), args.quiet);
    let first_snapshot_at = retainers::first_snapshot_at(args.requests);
    let stopped_by = loop {
        let count = session.tick();
        progress::set(count);
        if let Some(c) = snapshots.as_mut() {
            if c.requested() == 0 && count >= first_snapshot_at {
                ask(c, retainers::FIRST, count);
            }
            poll(c, |t| session.served_at(t));
        }
        kicks.drain(args.linger);
        if let Some(s) = exited(child.as_mut())? {
            exit_status = Some(s);
        }
        let now = Instant::now();
        let reason = if stop.is_set() {
            Some(WatchStop::Signal)
        } else if exit_status.is_some() {
            Some(WatchStop::Exited)
        } else if args.requests.is_some_and(|n| count >= n) {
            Some(WatchStop::Requests)
        } else if args.duration.is_some_and(|d| session.elapsed() >= d) {
            Some(WatchStop::Duration)
        } else if kicks.over(now) {
            Some(WatchStop::Kicks)
        } else {
            None
        };
        if session.due(now) || reason.is_some() {
            let s = session.sample(now);
            if let Some(r) = reaper.as_mut() {
                r.after_sample(s.joined, s.exited);
            }
            if args.pid.is_some() && !s.root_alive && reason.is_none() {
                exit_status = Some("the watched process exited".into());
                break WatchStop::Exited;
            }
            if reason.is_none() && session.settled() {
                break WatchStop::Verdict;
            }
        }
        if let Some(r) = reason {
            break r;
        }
        std::thread::sleep(TICK);
    };
    progress::finish();
    // --retainers: the end snapshot, before the program is stopped.
    let end_wait = snapshots.as_mut().map(|c| match stopped_by {
        WatchStop::Exited => Err("the program exited before the watch ended (end the watch \
                                  before it, with --requests, --duration or the kicks)"),
        WatchStop::Signal => Err("the watch was interrupted"),
        // Nothing to wait for: the summary says the first was never due.
        _ if c.requested() == 0 => Ok(Duration::ZERO),
        _ => Ok(wait_for_end_snapshot(
            c,
            &mut session,
            child.as_mut(),
            &stop,
        )),
    });

    // Also when the command exited by itself: what it left running in its group goes too.
    if let Some(c) = child.as_mut() {
        let status = stop_group(c);
        if exit_status.is_none() {
            exit_status = status;
        }
    }
    // Then what left the group (setsid, a daemon's double fork): nothing outlives the watch.
    let outlived = reaper.as_ref().map_or(0, |r| r.stop_descendants(GRACE));
    let jsonl_error = session.jsonl_error().map(str::to_owned);
    let mut summary = session.finish(stopped_by, exit_status);
    if let Some(r) = &reaper {
        summary.left_group = r.left_group().to_vec();
        summary.outlived = outlived;
    }
    backend.stop();
    if let (Some(c), Some(waited)) = (&snapshots, end_wait) {
        eprintln!("watch: analysing the heap snapshots");
        summary.retainers = Some(retainers::report(c, waited));
    }
    match dir.as_mut() {
        Some(d) if args.keep_temp => eprintln!("watch: kept {}", d.keep().display()),
        _ => drop(dir),
    }
    if let Some(e) = &kicks.error {
        eprintln!("error: {e}");
    }

    if summary.requests == 0 {
        eprintln!("error: {}", no_request(args, &summary, &url));
        return Ok(exit::FAILURE);
    }

    Ok(super::shared::finish_run(
        &|w| summary.print_human(w),
        &summary,
        jsonl_error.as_deref(),
        kicks.error.is_some(),
        summary.judged.verdict.class,
        &args.outputs,
    ))
}

/// Where `--sites` writes Node's last profile: beside `--jsonl` (`run.jsonl` →
/// `run.heapprofile`), else `leak-report/watch.heapprofile` (the folder made if missing).
fn heapprofile_out(args: &WatchArgs) -> Result<std::path::PathBuf, String> {
    match &args.outputs.jsonl {
        Some(j) => Ok(j.with_extension("heapprofile")),
        None => {
            let dir = std::path::PathBuf::from("leak-report");
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            Ok(dir.join("watch.heapprofile"))
        }
    }
}

/// Why a watch that saw no request served fails: how it ended, and what the program must do.
fn no_request(args: &WatchArgs, summary: &WatchSummary, url: &str) -> String {
    format!(
        "{} before any request reached the server at {url}: the program must send its requests \
         to LEAKPROBE_URL{}",
        match (summary.stopped_by, &summary.exit_status) {
            (WatchStop::Exited, Some(s)) => format!("the command exited ({s})"),
            _ => format!("the watch ended ({})", summary.stopped_by.as_str()),
        },
        if args.ready.is_some() || !args.kick.is_empty() {
            " (or be started by --kick)"
        } else {
            ""
        }
    )
}

/// How the command ended, if it has (`None` also with `--pid`: that tree is not a child).
fn exited(child: Option<&mut Child>) -> Result<Option<String>, String> {
    match child.map(|c| c.try_wait()) {
        Some(Ok(Some(s))) => Ok(Some(s.to_string())),
        Some(Ok(None)) | None => Ok(None),
        Some(Err(e)) => Err(format!("cannot wait for the command: {e}")),
    }
}

/// `--retainers`: asks the probes for snapshot `n`.
fn ask(c: &mut Control, n: u32, count: u64) {
    match c.request(n) {
        Ok(()) => eprintln!("watch: heap snapshot {n} asked for at {count} requests"),
        Err(e) => log::warn!("cannot ask for heap snapshot {n}: {e}"),
    }
}

/// `--retainers`: reads the probes' answers, pairing each with the served count at its time.
fn poll(c: &mut Control, served_at: impl Fn(u64) -> Option<u64>) {
    if let Err(e) = c.poll(served_at) {
        log::warn!("cannot read the heap snapshots' answers: {e}");
    }
}

/// `--retainers`: asks for the end snapshot and waits until every process that answered the
/// first has answered it (or exited), at most `retainers::END_WAIT`, the served count recorded
/// meanwhile (the answers are paired with it). Returns how long it waited.
fn wait_for_end_snapshot<S, T>(
    c: &mut Control,
    session: &mut Session<S, T>,
    mut child: Option<&mut Child>,
    stop: &Stop,
) -> Duration
where
    S: crate::watch::served::ServedCount,
    T: crate::watch::session::Tree,
{
    let t0 = Instant::now();
    let count = session.tick();
    ask(c, retainers::SECOND, count);
    loop {
        session.tick();
        poll(c, |t| session.served_at(t));
        let done = c.answered(retainers::SECOND);
        let waiting: Vec<u32> = c
            .answered(retainers::FIRST)
            .into_iter()
            .filter(|p| !done.contains(p))
            .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
            .collect();
        let exited = matches!(exited(child.as_deref_mut()), Ok(Some(_)) | Err(_));
        if waiting.is_empty() || exited || stop.is_set() {
            break;
        }
        if t0.elapsed() >= retainers::END_WAIT {
            log::warn!(
                "no end heap snapshot from pid {waiting:?} after {:?}: stopping without it",
                retainers::END_WAIT
            );
            break;
        }
        std::thread::sleep(TICK);
    }
    let waited = t0.elapsed();
    eprintln!(
        "watch: end heap snapshot after {:.1} s",
        waited.as_secs_f64()
    );
    waited
}

/// Starts COMMAND in its own process group, with `LEAKPROBE_URL` and the probe's variables
/// (and `--retainers`' control file).
fn spawn(
    args: &WatchArgs,
    url: &str,
    probe: Option<&Probe>,
    ctl: Option<(&str, &std::path::Path)>,
) -> Result<Child, String> {
    let Some((program, rest)) = args.command.split_first() else {
        return Err("nothing to watch: give -- COMMAND [ARGS…] or --pid PID".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(rest)
        .env("LEAKPROBE_URL", url)
        .stdin(Stdio::null())
        .process_group(0);
    if args.quiet {
        cmd.stdout(Stdio::null());
    }
    if let Some(p) = probe {
        let inherited: Option<OsString> = match p.runtime() {
            Runtime::Node => std::env::var_os("NODE_OPTIONS"),
            Runtime::Python => std::env::var_os("PYTHONPATH"),
        };
        let settings = ProbeSettings {
            interval: args.probe_every,
            tracemalloc: args.probe_tracemalloc,
            sites: args.sites.then(|| match p.runtime() {
                Runtime::Node => args.sites_rate.unwrap_or_else(|| node_rate(args.requests)),
                Runtime::Python => PY_TOP as u64,
            }),
        };
        for (k, v) in p.env(settings, inherited) {
            cmd.env(k, v);
        }
    }
    if let Some((k, v)) = ctl {
        cmd.env(k, v);
    }
    cmd.spawn()
        .map_err(|e| format!("cannot start `{program}`: {e}"))
}

/// SIGTERM to the command's process group, SIGKILL to what is left after [`GRACE`] (nothing is
/// sent to a group that is already gone). Returns how the command ended.
fn stop_group(child: &mut Child) -> Option<String> {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let group = Pid::from_raw(i32::try_from(child.id()).ok()?);
    let _ = killpg(group, Signal::SIGTERM);
    let t0 = Instant::now();
    let mut status = None;
    while t0.elapsed() < GRACE {
        if let Ok(Some(s)) = child.try_wait() {
            status = Some(s.to_string());
            // The leader is gone; the rest of the group gets what is left of the grace period.
            if killpg(group, None).is_err() {
                return status;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(group, Signal::SIGKILL);
    if status.is_none() {
        status = child.wait().ok().map(|s| s.to_string());
    }
    status
}

/// The `--ready` / `--kick` thread's progress, as the watch loop reads it.
struct Kicks {
    rx: Option<mpsc::Receiver<Kick>>,
    /// The kicks answered: the watch ends at this instant (after `--linger`).
    linger_until: Option<Instant>,
    /// Why a kick failed (or `--ready` never answered): the watch ends, and fails.
    error: Option<String>,
}

impl Kicks {
    /// Starts the kick thread, if there is anything to kick.
    fn start(args: &WatchArgs) -> Kicks {
        Kicks {
            rx: start_kicks(args),
            linger_until: None,
            error: None,
        }
    }

    /// Takes the thread's messages so far: says what happened, notes the end and any error.
    fn drain(&mut self, linger: Duration) {
        let Some(rx) = &self.rx else {
            return;
        };
        while let Ok(k) = rx.try_recv() {
            match k {
                Kick::Ready => eprintln!("watch: ready"),
                Kick::NeverReady => self.error = Some("--ready URL never answered 200".into()),
                Kick::Answered { url, status } => {
                    eprintln!("watch: kick {url} answered {status}");
                }
                Kick::Failed { url, why } => self.error = Some(format!("kick {url}: {why}")),
                Kick::Done => self.linger_until = Some(Instant::now() + linger),
            }
        }
    }

    /// Whether the kicks end the watch at `now`: all answered and `--linger` passed, or one failed.
    fn over(&self, now: Instant) -> bool {
        self.linger_until.is_some_and(|l| now >= l) || self.error.is_some()
    }
}

/// The kick thread: waits for `--ready`, then GETs each `--kick` in turn.
fn start_kicks(args: &WatchArgs) -> Option<mpsc::Receiver<Kick>> {
    if args.ready.is_none() && args.kick.is_empty() {
        return None;
    }
    let (tx, rx) = mpsc::channel();
    let ready = args.ready.clone();
    let kicks = args.kick.clone();
    std::thread::spawn(move || {
        if let Some(r) = ready {
            let t0 = Instant::now();
            let agent = agent(Duration::from_secs(120));
            while !matches!(http_get(&agent, &r), Ok((200, _))) {
                if t0.elapsed() > Duration::from_secs(600) {
                    let _ = tx.send(Kick::NeverReady);
                    return;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            let _ = tx.send(Kick::Ready);
        }
        // A kick answers when the program's loop is done: minutes, not seconds.
        let agent = agent(Duration::from_secs(24 * 3600));
        for k in kicks {
            match http_get(&agent, &k) {
                Ok((status, _)) => {
                    let _ = tx.send(Kick::Answered { url: k, status });
                }
                Err(e) => {
                    let _ = tx.send(Kick::Failed { url: k, why: e });
                    return;
                }
            }
        }
        let _ = tx.send(Kick::Done);
    });
    Some(rx)
}
