//! The planted leak (`--inject-leak`): the positive control the detector must judge `leak`, at
//! one of two call sites that `--sites` must name. The only memory the run loop retains on purpose.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::cli::{InjectSite, Workload};

/// The planted leak: retains `bytes` per completed request, up to `cap` in all, at one of two
/// call sites (`--inject-site`). The lines marked `inject-site:` are what `--sites` must name
/// (the tests find them by the marker).
#[derive(Debug)]
pub(super) struct Injector {
    bytes: usize,
    cap: u64,
    site: InjectSite,
    held: AtomicU64,
    /// The `keep` site's list: reachable, never shrunk (freed with the injector, after the run).
    kept: Mutex<Vec<Box<[u8]>>>,
}

impl Injector {
    /// The leak `--inject-leak`, `--inject-cap` and `--inject-site` describe (none by default).
    pub(super) fn new(w: &Workload) -> Injector {
        Injector {
            bytes: w.inject_leak as usize,
            cap: w.inject_cap.unwrap_or(u64::MAX),
            site: w.inject_site,
            held: AtomicU64::new(0),
            kept: Mutex::new(Vec::new()),
        }
    }

    /// Called by a worker after each completed request.
    pub(super) fn after_request(&self) {
        if self.bytes == 0 || self.held.load(Relaxed) >= self.cap {
            return;
        }
        self.held.fetch_add(self.bytes as u64, Relaxed);
        match self.site {
            InjectSite::Forget => forget_block(self.bytes),
            InjectSite::Keep => self.keep_block(),
        }
    }

    /// The `keep` site: a block held in a growing list, as an unbounded cache holds entries.
    #[inline(never)]
    fn keep_block(&self) {
        let block = vec![0x5Au8; self.bytes].into_boxed_slice(); // inject-site: keep
        if let Ok(mut kept) = self.kept.lock() {
            kept.push(block);
        }
    }
}

/// The `forget` site: a block allocated and leaked. Non-zero fill touches every page, so the
/// leak shows in RSS as a real one would.
#[inline(never)]
fn forget_block(bytes: usize) {
    let block = vec![0xA5u8; bytes].into_boxed_slice(); // inject-site: forget
    Box::leak(block);
}
