//! What the commands share: how a measured run ends (`finish_run`), signal handling, the
//! allocator cap, the in-process server of the orchestrating commands and their output folder.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::Outputs;
use crate::exit;
use crate::stop::{Stop, StopReason};
use crate::verdict::Class;

/// How a measured run (`ureq`, `raw`, `watch`) ends: its summary in human form on stderr, a
/// failed JSONL write said after it, the JSON form on stdout with `--json`; then the exit code:
/// `FAILURE` when stdout or the JSONL file could not be written or the run `failed` (stopped
/// unreachable, a kick failed), `LEAK` for `--fail-on-leak` and a leak, else `OK`.
pub(super) fn finish_run(
    human: &dyn Fn(&mut dyn Write) -> io::Result<()>,
    summary: &impl serde::Serialize,
    jsonl_error: Option<&str>,
    failed: bool,
    class: Class,
    outputs: &Outputs,
) -> u8 {
    let _ = human(&mut std::io::stderr().lock());
    if let Some(e) = jsonl_error {
        eprintln!("error: writing the JSONL file failed: {e}");
    }
    if outputs.json {
        let mut stdout = std::io::stdout().lock();
        let written = serde_json::to_writer(&mut stdout, summary)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(stdout))
            .and_then(|()| stdout.flush());
        if written.is_err() {
            return exit::FAILURE;
        }
    }
    if jsonl_error.is_some() || failed {
        return exit::FAILURE;
    }
    if outputs.fail_on_leak && class == Class::Leak {
        return exit::LEAK;
    }
    exit::OK
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
            std::process::exit(i32::from(crate::exit::INTERRUPTED));
        }
        stop.request(StopReason::Signal);
    });
    if let Err(e) = result {
        log::warn!(
            "cannot install the Ctrl-C handler ({e}); Ctrl-C will end the run without a summary"
        );
    }
}

/// The server the orchestrating commands run against: the in-process latency server, or the
/// user's own `--url`.
pub(super) struct Backend {
    pub(super) url: String,
    pub(super) latency: Option<Duration>,
    pub(super) server: Option<latency_server::RunningServer>,
}

impl Backend {
    /// The server `args` asks for: `--url`, or the in-process one from the `latency-server`
    /// flags (whose log line is off unless `--server-report-every` asks for it: it would tear
    /// the progress bars, and the runs log their own).
    pub(super) fn start(args: &crate::cli::ServerArgs) -> Result<Backend, String> {
        let e = &args.embedded;
        Backend::start_with(args.url.as_ref(), e.config(e.seed()))
    }

    pub(super) fn start_with(
        url: Option<&crate::workload::Target>,
        config: latency_server::Config,
    ) -> Result<Backend, String> {
        if let Some(url) = url {
            return Ok(Backend {
                url: url.to_string(),
                latency: None,
                server: None,
            });
        }
        let latency = config.latency;
        let server = latency_server::Server::start(config)
            .map_err(|e| format!("cannot start the latency server: {e}"))?;
        Ok(Backend {
            url: format!("{}/", server.url()),
            latency: Some(latency),
            server: Some(server),
        })
    }

    pub(super) fn stop(self) {
        if let Some(s) = self.server {
            s.shutdown(Duration::from_secs(2));
        }
    }
}

/// What `compare` and `calibrate` need before their first run: this executable (which runs
/// each measured variant as a child), the output directory, and the server. Errors are
/// printed; `None` means exit with `FAILURE`.
pub(super) fn prepare(
    out: &Path,
    start: impl FnOnce() -> Result<Backend, String>,
) -> Option<(PathBuf, Backend)> {
    let exe = std::env::current_exe()
        .map_err(|e| eprintln!("error: cannot find this executable to run the variants: {e}"))
        .ok()?;
    std::fs::create_dir_all(out)
        .map_err(|e| eprintln!("error: cannot create {}: {e}", out.display()))
        .ok()?;
    let backend = start().map_err(|e| eprintln!("error: {e}")).ok()?;
    Some((exe, backend))
}

pub(super) fn now_utc() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

pub(super) fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("leak-client {}", crate::child::shell_words(&args))
}
