//! `leak-client ureq|raw`: one measured run in this process — cap the allocator, run, print the
//! summary (human on stderr, `--json` on stdout), and map the outcome to an exit code.

use super::shared::{Cap, install_signal_handler};
use crate::cli::RunArgs;
use crate::clients::VariantName;
use crate::exit;
use crate::progress;
use crate::run;
use crate::stop::{Stop, StopReason};
use crate::summary::Summary;

/// `leak-client ureq|raw`: runs, prints the summary, returns the exit code.
pub fn run_variant(variant: VariantName, args: &RunArgs, alloc: &dyn Cap) -> u8 {
    let cfg = args.config(variant);
    if !alloc.set_limit(usize::try_from(cfg.workload.mem_limit).unwrap_or(usize::MAX)) {
        eprintln!(
            "error: --mem-limit {} is below what the process already uses",
            cfg.workload.mem_limit
        );
        return exit::FAILURE;
    }
    let stop = Stop::new();
    install_signal_handler(&stop);
    // Before the run: the bar's own allocations are in the baseline (its draws, on a terminal
    // only, allocate and free).
    progress::start(
        progress::End::of(cfg.workload.total_requests(), cfg.workload.duration),
        false,
    );
    let ran = run::run(&cfg, stop, crate::summary::analysis(&cfg));
    progress::finish();
    let out = match ran {
        Ok(out) => out,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
    };
    let mut summary = Summary::new(&cfg, &out);
    // `run` keeps the profile (`Readings::finish`) whenever it samples sites.
    let profile = out.sites.as_ref().and_then(|r| r.profile.as_ref());
    if let (Some(sites), Some(sc), Some(profile)) = (&mut summary.sites, &cfg.sites, profile) {
        let cmd = crate::child::shell_words(&std::env::args().collect::<Vec<_>>());
        let opts = heapmeter::sites::DhatOptions {
            cmd: &cmd,
            trim: crate::sites::TRIM,
        };
        // The default `leak-report/` may not exist yet.
        let dir = sc.out.parent().filter(|d| !d.as_os_str().is_empty());
        let written = dir
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| heapmeter::sites::write_dhat_file(&sc.out, profile, &opts));
        match written {
            Ok(()) => sites.dhat = Some(sc.out.display().to_string()),
            Err(e) => {
                sites.dhat_error = Some(format!("cannot write {}: {e}", sc.out.display()));
            }
        }
    }
    super::shared::finish_run(
        &|w| summary.print_human(w),
        &summary,
        out.monitor.jsonl_error.as_deref(),
        summary.stopped_by == StopReason::Unreachable,
        summary.verdict.class,
        &args.outputs,
    )
}
