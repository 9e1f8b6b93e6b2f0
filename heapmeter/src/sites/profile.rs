//! The profiler's state behind its one lock: turns sampled allocations and frees into page
//! records and per-site statistics, and copies them out for snapshots and totals. While the lock
//! is held nothing may allocate or free through the global allocator (that would re-enter the
//! allocator and deadlock on this lock): readers copy into `SysVec`s, which use `System`.

use std::io;
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::arena::{Arena, MAX_DEPTH, PageRec};
use super::estimate::weight;
use super::sysvec::SysVec;
use super::types::{LiveSample, SiteTotals, StackId};

/// Whole-profile figures (estimates over the sampled heap).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Global {
    pub samples: u64,
    pub live_bytes: f64,
    pub live_blocks: f64,
    pub max_bytes: f64,
    pub max_blocks: f64,
    pub t_gmax_us: u64,
    /// The live estimate is at its maximum and the sites' `gmax` figures are not yet recorded.
    at_peak: bool,
    /// Sampled allocations that could not be placed in the region (it was full).
    pub dropped_region_full: u64,
}

pub(crate) struct Profiler {
    arena: Option<Arena>,
    start: Option<Instant>,
    seq: u64,
    pub global: Global,
}

pub(crate) static PROFILER: Mutex<Profiler> = Mutex::new(Profiler {
    arena: None,
    start: None,
    seq: 0,
    global: Global {
        samples: 0,
        live_bytes: 0.0,
        live_blocks: 0.0,
        max_bytes: 0.0,
        max_blocks: 0.0,
        t_gmax_us: 0,
        at_peak: false,
        dropped_region_full: 0,
    },
});

/// Takes the profiler's lock. Nothing panics while holding it, but a poisoned lock is used as is
/// (the state is a set of counters, consistent after every complete update).
pub(crate) fn lock() -> MutexGuard<'static, Profiler> {
    PROFILER.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Profiler {
    /// Maps the region on first use; returns its base address.
    pub(crate) fn ensure_arena(&mut self) -> io::Result<usize> {
        if let Some(a) = &self.arena {
            return Ok(a.base_addr());
        }
        let a = Arena::new()?;
        let base = a.base_addr();
        self.arena = Some(a);
        self.start.get_or_insert_with(Instant::now);
        Ok(base)
    }

    pub(crate) fn is_mapped(&self) -> bool {
        self.arena.is_some()
    }

    pub(crate) fn page_size(&self) -> Option<usize> {
        self.arena.as_ref().map(Arena::page_size)
    }

    pub(crate) fn now_us(&self) -> u64 {
        self.start.map_or(0, |s| {
            u64::try_from(s.elapsed().as_micros()).unwrap_or(u64::MAX)
        })
    }

    /// Places a sampled allocation of `size` bytes made at `frames` in the region and records it;
    /// `None` if the region is full (the caller allocates it unsampled).
    pub(crate) fn record_alloc(
        &mut self,
        frames: &[usize],
        size: usize,
        rate: u64,
    ) -> Option<NonNull<u8>> {
        let now = self.now_us();
        let arena = self.arena.as_mut()?;
        let Some((idx, ptr)) = arena.take_block(size) else {
            self.global.dropped_region_full += 1;
            return None;
        };
        let site = arena.intern(frames);
        let w = weight(size, rate);
        let blocks = w / size as f64;
        self.seq += 1;
        let r = arena.rec(idx);
        r.seq = self.seq;
        r.size = size;
        r.weight = w;
        r.t_alloc_us = now;
        r.site = site;
        arena.link_live(idx);

        let st = &mut arena.site(site).totals;
        st.samples += 1;
        st.live_samples += 1;
        st.total_bytes += w;
        st.total_blocks += blocks;
        st.live_bytes += w;
        st.live_blocks += blocks;
        if st.live_bytes >= st.max_bytes {
            st.max_bytes = st.live_bytes;
            st.max_blocks = st.live_blocks;
        }

        let g = &mut self.global;
        g.samples += 1;
        g.live_bytes += w;
        g.live_blocks += blocks;
        if g.live_bytes >= g.max_bytes {
            g.max_bytes = g.live_bytes;
            g.max_blocks = g.live_blocks;
            g.t_gmax_us = now;
            g.at_peak = true;
        }
        Some(ptr)
    }

    /// Forgets the sampled block at `ptr` (its pages already discarded) and frees its pages.
    pub(crate) fn record_free(&mut self, ptr: *mut u8) {
        let now = self.now_us();
        self.settle_peak();
        let Some(arena) = self.arena.as_mut() else {
            return;
        };
        let idx = arena.page_of(ptr);
        let r: PageRec = *arena.rec(idx);
        arena.unlink_live(idx);
        arena.give_block(idx);
        let blocks = r.weight / r.size as f64;
        let st = &mut arena.site(r.site).totals;
        st.live_samples -= 1;
        st.lifetimes_us += blocks * now.saturating_sub(r.t_alloc_us) as f64;
        // Running float sums drift; with no sample left the true figure is exactly zero.
        if st.live_samples == 0 {
            (st.live_bytes, st.live_blocks) = (0.0, 0.0);
        } else {
            st.live_bytes -= r.weight;
            st.live_blocks -= blocks;
        }
        if arena.live_count() == 0 {
            (self.global.live_bytes, self.global.live_blocks) = (0.0, 0.0);
        } else {
            self.global.live_bytes -= r.weight;
            self.global.live_blocks -= blocks;
        }
    }

    /// If the live estimate is at its maximum, records every site's share of it (DHAT's
    /// "at t-gmax"). Done lazily, when coming down from a peak, as dhat-rs does.
    pub(crate) fn settle_peak(&mut self) {
        if !self.global.at_peak {
            return;
        }
        self.global.at_peak = false;
        let Some(arena) = self.arena.as_mut() else {
            return;
        };
        for id in 0..arena.nsites() {
            let st = &mut arena.site(id).totals;
            st.gmax_bytes = st.live_bytes;
            st.gmax_blocks = st.live_blocks;
        }
    }

    /// Copies the live samples into `out`, in increasing `seq`.
    pub(crate) fn snapshot_into(&mut self, out: &mut SysVec<LiveSample>) {
        let Some(arena) = self.arena.as_mut() else {
            return;
        };
        out.reserve(arena.live_count() as usize);
        for (_, r) in arena.live() {
            out.push(LiveSample {
                seq: r.seq,
                site: StackId(r.site),
                size: r.size,
                weight: r.weight,
            });
        }
        out.as_mut_slice().reverse();
    }

    /// Copies every site's totals into `out`; lifetimes of blocks still live count up to now.
    pub(crate) fn totals_into(&mut self, out: &mut SysVec<SiteTotals>) {
        let now = self.now_us();
        self.settle_peak();
        let Some(arena) = self.arena.as_mut() else {
            return;
        };
        let n = arena.nsites();
        out.reserve(n as usize);
        for id in 0..n {
            let s = arena.site(id).totals;
            out.push(SiteTotals {
                site: StackId(id),
                samples: s.samples,
                live_samples: s.live_samples,
                total_bytes: s.total_bytes,
                total_blocks: s.total_blocks,
                live_bytes: s.live_bytes.max(0.0),
                live_blocks: s.live_blocks.max(0.0),
                max_bytes: s.max_bytes,
                max_blocks: s.max_blocks,
                gmax_bytes: s.gmax_bytes,
                gmax_blocks: s.gmax_blocks,
                lifetimes_us: s.lifetimes_us,
            });
        }
        let mut extra = SysVec::<(u32, f64)>::new();
        for (_, r) in arena.live() {
            let blocks = r.weight / r.size as f64;
            extra.push((r.site, blocks * now.saturating_sub(r.t_alloc_us) as f64));
        }
        let slots = out.as_mut_slice();
        for &(site, lt) in extra.as_slice() {
            if let Some(t) = slots.get_mut(site as usize) {
                t.lifetimes_us += lt;
            }
        }
    }

    /// Copies the frames of site `id` into `out`; returns how many.
    pub(crate) fn frames_of(&mut self, id: StackId, out: &mut [usize; MAX_DEPTH]) -> usize {
        let Some(arena) = self.arena.as_mut() else {
            return 0;
        };
        if id.0 >= arena.nsites() {
            return 0;
        }
        let f = arena.frames(id.0);
        out[..f.len()].copy_from_slice(f);
        f.len()
    }

    pub(crate) fn live_samples(&self) -> u64 {
        self.arena.as_ref().map_or(0, Arena::live_count)
    }

    pub(crate) fn sites(&self) -> u32 {
        self.arena.as_ref().map_or(0, |a| a.nsites() - 1)
    }

    pub(crate) fn pages_in_use(&self) -> u64 {
        self.arena.as_ref().map_or(0, Arena::pages_in_use)
    }
}
