//! The run loop: `run` checks the target, starts sampling sites, and hands the run to the
//! controller (`controller.rs`), which drives the workers (`worker.rs`, with their back-off)
//! and the monitor; the planted leak is `injector.rs`, what a run gives back `output.rs`.

mod controller;
mod injector;
mod output;
mod worker;

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use crate::config::RunConfig;
use crate::monitor::Analysis;
use crate::stop::Stop;
use controller::Controller;
pub use controller::new_histogram;
pub use output::{RunError, RunOutput};

/// Runs the workload described by `cfg` until a stop condition. `analysis` is what the analysis
/// lends the monitor (`summary::analysis(cfg)`): `--until-verdict`'s early stop, which stops the
/// run once the verdict is settled, and the log line's class; `Analysis::default()` for neither.
pub fn run(cfg: &RunConfig, stop: Arc<Stop>, analysis: Analysis) -> Result<RunOutput, RunError> {
    preflight(cfg)?;
    let jsonl = match &cfg.jsonl {
        Some(path) => Some(std::fs::File::create(path).map_err(|e| RunError::Jsonl {
            path: path.display().to_string(),
            why: e.to_string(),
        })?),
        None => None,
    };
    // Sampling starts before the clients are built, so what they hold from the start is
    // sampled too (a flat site, not a grower).
    let sites = match &cfg.sites {
        Some(s) => Some(
            crate::sites::Readings::start(s.rate, cfg.workload.seed).map_err(RunError::Sites)?,
        ),
        None => None,
    };
    let mut controller = Controller::launch(cfg, stop, jsonl, sites, analysis)?;
    let elapsed = controller.run_rounds();
    controller.linger();
    Ok(controller.finish(elapsed))
}

/// Checks that the target accepts a TCP connection, so a typo fails in one line, not as
/// thousands of connect errors.
fn preflight(cfg: &RunConfig) -> Result<(), RunError> {
    let url = cfg.url.to_string();
    let unreachable = |why: String| RunError::Unreachable {
        url: url.clone(),
        why,
    };
    let addrs = (cfg.url.host.as_str(), cfg.url.port)
        .to_socket_addrs()
        .map_err(|e| unreachable(format!("cannot resolve {}: {e}", cfg.url.host)))?;
    let timeout = cfg.workload.timeout.min(Duration::from_secs(5));
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(unreachable(last))
}
