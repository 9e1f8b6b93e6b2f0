//! What a run gives back: `RunOutput`, everything a finished run produced, or `RunError`, why it
//! could not start. Plain data: the summary reads it, nothing here runs anything.

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::counters::Counters;
use crate::monitor::MonitorOutput;
use crate::stop::StopReason;

/// A run that could not start.
#[derive(Debug)]
pub enum RunError {
    /// The target did not accept a TCP connection.
    Unreachable { url: String, why: String },
    /// The JSONL file could not be created.
    Jsonl { path: String, why: String },
    /// The operating system refused a thread the run needs.
    Thread(String),
    /// `--sites` could not switch the allocation sampler on.
    Sites(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Unreachable { url, why } => write!(
                f,
                "cannot reach {url}: {why} (is the server running? start one with `just server`, or use `leak-client compare`, which starts its own)"
            ),
            RunError::Jsonl { path, why } => write!(f, "cannot create {path}: {why}"),
            RunError::Thread(why) => f.write_str(why),
            RunError::Sites(why) => write!(f, "--sites: {why}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Everything a finished run produced: the counters, the monitor's series, the latencies.
/// (`summary::Summary::new` turns it and its `RunConfig` into the report.)
#[derive(Debug)]
pub struct RunOutput {
    pub stopped_by: StopReason,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
    pub counters: Arc<Counters>,
    pub monitor: MonitorOutput,
    /// The sampled allocation sites at the run's readings (`--sites`).
    pub sites: Option<crate::sites::Readings>,
}
