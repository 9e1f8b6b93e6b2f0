//! The `latency-server` binary: installs the counting allocator, parses flags, runs the
//! server until Ctrl-C/SIGTERM, prints the final counters. All logic is in the library.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use latency_server::Server;
use latency_server::cli::Cli;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

fn main() -> ExitCode {
    let cli = Cli::parse().server;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    if let Some(limit) = cli.mem_limit {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if let Err(e) = ALLOC.set_limit(limit) {
            log::error!("cannot set --mem-limit: {e:?}");
            return ExitCode::FAILURE;
        }
    }
    let seed = cli.seed();
    let config = cli.config(seed);
    let needed = latency_server::server_descriptors_needed(config.max_in_flight as u64);
    let what = format!(
        "--max-in-flight {} (two per connection)",
        config.max_in_flight
    );
    if let Err(e) = latency_server::raise_open_files_limit(needed, &what) {
        log::warn!("cannot read or raise the open files limit: {e}");
    }
    if cli.latency_random.is_some() || !config.jitter.is_zero() {
        log::info!("seed {seed} (pass --seed {seed} to repeat these latencies)");
    }
    let grace = config.latency + config.jitter + Duration::from_secs(5);

    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    let mut signals = 0u32;
    if let Err(e) = ctrlc::set_handler(move || {
        signals += 1;
        if signals > 1 {
            // A second Ctrl-C means "now".
            std::process::exit(130);
        }
        let _ = stop_tx.try_send(());
    }) {
        log::warn!("no Ctrl-C/SIGTERM handler ({e}); stop with SIGKILL");
    }

    let server = match Server::start(config) {
        Ok(server) => server,
        Err(e) => {
            log::error!("cannot start on {}: {e}", cli.addr);
            return ExitCode::FAILURE;
        }
    };
    let _ = stop_rx.recv();
    log::info!(
        "stopping: no new connections; waiting up to {} for requests in flight",
        humantime::format_duration(grace)
    );
    let last = server.shutdown(grace);
    log::info!(
        "final: served {} | peak in flight {} | 503s {} | 400s {} | connections {} | uptime {}",
        last.served,
        last.peak_in_flight,
        last.rejected_503,
        last.bad_requests,
        last.connections,
        humantime::format_duration(Duration::from_millis(last.uptime_ms)),
    );
    ExitCode::SUCCESS
}
