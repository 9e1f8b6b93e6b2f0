//! Why and when a run stops: the `StopReason`s and the one shared `Stop` flag that the signal
//! handler, the workers and the controller set and read. No clock reads beyond `Stop::sleep`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum StopReason {
    /// Every round sent its `--requests`.
    Requests = 1,
    /// Every round ran its `--duration`.
    Duration,
    /// Ctrl-C or SIGTERM.
    Signal,
    /// Live heap reached 90% of `--mem-limit`.
    MemLimit,
    /// The server stayed unreachable for `--max-unreachable`.
    Unreachable,
    /// `--until-verdict`: the verdict was settled before the run's end.
    Verdict,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Requests => "requests",
            StopReason::Duration => "duration",
            StopReason::Signal => "signal",
            StopReason::MemLimit => "mem-limit",
            StopReason::Unreachable => "unreachable",
            StopReason::Verdict => "verdict",
        }
    }

    /// The reason whose discriminant is `code`; `None` for 0 (no stop) or an unknown code.
    fn from_code(code: u8) -> Option<StopReason> {
        const REQUESTS: u8 = StopReason::Requests as u8;
        const DURATION: u8 = StopReason::Duration as u8;
        const SIGNAL: u8 = StopReason::Signal as u8;
        const MEM_LIMIT: u8 = StopReason::MemLimit as u8;
        const UNREACHABLE: u8 = StopReason::Unreachable as u8;
        const VERDICT: u8 = StopReason::Verdict as u8;
        match code {
            REQUESTS => Some(StopReason::Requests),
            DURATION => Some(StopReason::Duration),
            SIGNAL => Some(StopReason::Signal),
            MEM_LIMIT => Some(StopReason::MemLimit),
            UNREACHABLE => Some(StopReason::Unreachable),
            VERDICT => Some(StopReason::Verdict),
            _ => None,
        }
    }
}

/// A stop request shared by the signal handler, the workers and the controller.
#[derive(Debug, Default)]
pub struct Stop {
    /// 0 = keep going; otherwise a `StopReason` discriminant.
    reason: AtomicU8,
}

impl Stop {
    pub fn new() -> Arc<Stop> {
        Arc::new(Stop::default())
    }

    /// Requests a stop; the first reason given wins.
    pub fn request(&self, reason: StopReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Relaxed, Relaxed);
    }

    pub fn reason(&self) -> Option<StopReason> {
        StopReason::from_code(self.reason.load(Relaxed))
    }

    pub fn is_set(&self) -> bool {
        self.reason.load(Relaxed) != 0
    }

    /// Sleeps up to `d`, waking early if a stop is requested.
    pub fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.is_set() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins_and_reads_back() {
        let stop = Stop::new();
        assert_eq!(stop.reason(), None);
        assert!(!stop.is_set());
        stop.request(StopReason::MemLimit);
        stop.request(StopReason::Signal);
        assert!(stop.is_set());
        assert_eq!(stop.reason(), Some(StopReason::MemLimit));
    }

    #[test]
    fn every_reason_round_trips_through_its_code() {
        for r in [
            StopReason::Requests,
            StopReason::Duration,
            StopReason::Signal,
            StopReason::MemLimit,
            StopReason::Unreachable,
            StopReason::Verdict,
        ] {
            assert_eq!(StopReason::from_code(r as u8), Some(r));
        }
        assert_eq!(StopReason::from_code(0), None);
        assert_eq!(StopReason::from_code(200), None);
    }
}
