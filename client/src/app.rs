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
}

/// The allocator cap, as the binary's `#[global_allocator]` exposes it.
pub trait Cap: Sync {
    fn set_limit(&self, bytes: usize) -> Result<(), ()>;
}

impl<H> Cap for cap::Cap<H>
where
    H: Sync,
{
    fn set_limit(&self, bytes: usize) -> Result<(), ()> {
        cap::Cap::set_limit(self, bytes)
    }
}

/// Installs a Ctrl-C / SIGTERM handler that requests a stop; a second signal exits at once.
pub fn install_signal_handler(stop: &Arc<Stop>) {
    let stop = stop.clone();
    let result = ctrlc::set_handler(move || {
        if stop.is_set() {
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
    if alloc
        .set_limit(usize::try_from(args.mem_limit).unwrap_or(usize::MAX))
        .is_err()
    {
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

/// `leak-client compare` (wired in once the embeddable server lands).
pub fn compare(_args: CompareArgs) -> u8 {
    eprintln!("error: compare is not available yet");
    exit::FAILURE
}

/// `leak-client calibrate` (wired in once the embeddable server lands).
pub fn calibrate(_args: CalibrateArgs) -> u8 {
    eprintln!("error: calibrate is not available yet");
    exit::FAILURE
}
