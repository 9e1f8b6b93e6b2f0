//! `RunConfig`: one run, checked and resolved, as the run loop, the summary and the report see
//! it. Built once from the command line (`cli`); holds no clap types and reads no environment.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::clients::VariantName;
use crate::variant::{BodyMode, TimeoutMode, VariantConfig};
use crate::workload::Target;

/// A planted leak: the positive control (`--inject-leak`, `--inject-cap`, `--inject-site`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Injection {
    /// Bytes retained per completed request (0: none).
    pub bytes: u64,
    /// Stop retaining once this many bytes are held (a bounded cache); `None`: never.
    pub cap: Option<u64>,
    /// Which call site retains them.
    pub site: InjectSite,
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

/// Sampled allocation sites (`--sites`), resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitesConfig {
    /// Mean bytes allocated between samples.
    pub rate: u64,
    /// Where the DHAT profile goes.
    pub out: PathBuf,
}

impl SitesConfig {
    /// Smallest automatic rate: below it the samples cost more than they resolve.
    pub const MIN_AUTO_RATE: u64 = 4 * 1024;

    /// The default rate for a run of `total_requests`: one sample per N bytes for N requests
    /// (so a site growing 64 B/request leaves about 64 samples, ±25% at 2σ), clamped to
    /// [`Self::MIN_AUTO_RATE`] and heapmeter's [`DEFAULT_RATE`](heapmeter::sites::DEFAULT_RATE);
    /// the latter when the run has no request count.
    pub fn auto_rate(total_requests: Option<u64>) -> u64 {
        let max = heapmeter::sites::DEFAULT_RATE;
        total_requests.map_or(max, |n| n.clamp(Self::MIN_AUTO_RATE, max))
    }
}

/// Everything one measured run needs, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    pub variant: VariantName,
    pub url: Target,
    /// Total path length of each request (0: the URL's path as given).
    pub path_len: usize,
    /// Every URL unique (`false`: one generated URL repeated).
    pub unique: bool,
    pub seed: u64,
    /// Requests per round; with neither this nor `duration` a round runs until stopped.
    pub requests: Option<u64>,
    /// Length of each round.
    pub duration: Option<Duration>,
    /// Worker threads.
    pub concurrency: u32,
    /// Each worker's pause between its requests.
    pub think: Duration,
    /// Overall requests per second, if throttled.
    pub rate: Option<f64>,
    pub rounds: u32,
    pub pause: Duration,
    pub linger: Duration,
    pub timeout: Duration,
    /// How the ureq variant applies `timeout`.
    pub ureq_timeout: TimeoutMode,
    pub body: BodyMode,
    pub max_body: u64,
    /// Use the client library's pool defaults instead of sizing the pool from `concurrency`.
    pub library_defaults: bool,
    /// Interval of the memory log line.
    pub report_every: Duration,
    /// A request sample every this many completed requests (resolved from `--sample-every`).
    pub sample_every: u64,
    /// Heap cap of the process, bytes.
    pub mem_limit: u64,
    pub inject: Injection,
    /// Stop the run once the server has been unreachable this long.
    pub max_unreachable: Duration,
    /// Where to append every sample, one JSON object per line.
    pub jsonl: Option<PathBuf>,
    /// Sample allocation sites (`--sites`); `None`: off.
    pub sites: Option<SitesConfig>,
}

impl RunConfig {
    /// The default request-sample stride: about 1,000 samples per round, at least every
    /// request; every 10 requests when the round has no request count.
    pub fn default_sample_every(requests: Option<u64>) -> u64 {
        match requests {
            Some(n) => (n / 1000).max(1),
            None => 10,
        }
    }

    /// Live heap at which the run stops itself: 90% of `--mem-limit`.
    pub fn soft_limit(&self) -> usize {
        usize::try_from(self.mem_limit / 10 * 9).unwrap_or(usize::MAX)
    }

    /// The settings every client of this run is built from; `connections` counts the TCP
    /// connections they open.
    pub fn variant_config(&self, connections: Arc<AtomicU64>) -> VariantConfig {
        VariantConfig {
            timeout: self.timeout,
            timeout_mode: self.ureq_timeout,
            body: self.body,
            max_body: self.max_body,
            pool_idle: (!self.library_defaults).then_some(self.concurrency as usize),
            connections_opened: connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_sampling_rate_follows_the_request_count_within_bounds() {
        let max = heapmeter::sites::DEFAULT_RATE;
        assert_eq!(SitesConfig::auto_rate(None), max);
        assert_eq!(SitesConfig::auto_rate(Some(20_000)), 20_000);
        assert_eq!(
            SitesConfig::auto_rate(Some(100)),
            SitesConfig::MIN_AUTO_RATE
        );
        assert_eq!(SitesConfig::auto_rate(Some(10_000_000)), max);
    }
}
