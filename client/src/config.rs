//! `RunConfig`: one run as the run loop, the summary and the report see it — the `Workload` as
//! the flags gave it, the target and outputs, and what is resolved from them. Built once from the
//! command line (`RunArgs::config`); parses no flag and reads no environment.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::cli::{RunArgs, Workload};
use crate::clients::VariantName;
use crate::variant::VariantConfig;
use crate::workload::Target;

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

/// Everything one measured run needs, checked. The workload's settings are read where they are
/// used, as `cfg.workload.NAME`: a new workload flag needs no field here.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    pub variant: VariantName,
    pub url: Target,
    /// The workload and how it is measured, as the flags gave it.
    pub workload: Workload,
    /// Where to append every sample, one JSON object per line.
    pub jsonl: Option<PathBuf>,
    /// Sample allocation sites (`--sites`); `None`: off.
    pub sites: Option<SitesConfig>,
}

impl RunArgs {
    /// The checked description of this run through `variant`.
    pub fn config(&self, variant: VariantName) -> RunConfig {
        let w = &self.workload;
        RunConfig {
            variant,
            url: self.url.clone(),
            workload: w.clone(),
            jsonl: self.outputs.jsonl.clone(),
            sites: w.sites.then(|| SitesConfig {
                rate: w
                    .sites_rate
                    .unwrap_or_else(|| SitesConfig::auto_rate(w.total_requests())),
                out: self.dhat_out(variant),
            }),
        }
    }
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

    /// A request sample every this many completed requests (`--sample-every`, or the default).
    pub fn sample_every(&self) -> u64 {
        let w = &self.workload;
        w.sample_every
            .unwrap_or_else(|| Self::default_sample_every(w.requests))
    }

    /// Live heap at which the run stops itself: 90% of `--mem-limit`.
    pub fn soft_limit(&self) -> usize {
        usize::try_from(self.workload.mem_limit / 10 * 9).unwrap_or(usize::MAX)
    }

    /// The settings every client of this run is built from; `connections` counts the TCP
    /// connections they open.
    pub fn variant_config(&self, connections: Arc<AtomicU64>) -> VariantConfig {
        let w = &self.workload;
        VariantConfig {
            timeout: w.timeout,
            timeout_mode: w.ureq_timeout,
            body: w.body,
            max_body: w.max_body,
            pool_idle: (!w.library_defaults).then_some(w.concurrency as usize),
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
