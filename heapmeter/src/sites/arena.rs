//! The profiler's own memory: one reserved address range that sampled blocks are carved from, and
//! one metadata mapping (a record per page of that range, the call-site table). It must never
//! allocate from the heap it serves: everything here lives in anonymous mappings of its own.
//!
//! Layout, all behind the profiler's lock (`&mut self`):
//! - the **region**: [`REGION_LEN`] bytes of address space, reserved once (`MAP_NORESERVE`, so it
//!   costs nothing until touched). A sampled block is `2^k` whole pages, page-aligned, taken from
//!   the free list of class `k` or, failing that, from a bump pointer; freed blocks go back to
//!   their class's list after [`discard`] (zeroed in place, or `madvise(MADV_DONTNEED)` when
//!   large; done by the caller, outside the lock), so free memory always reads as zero and
//!   `alloc_zeroed` needs no memset. Only the pages the program's bytes reach are ever touched:
//!   rounding a block up costs address space, not RSS.
//! - **page records**: one [`PageRec`] per region page, indexed by page number, so the record of a
//!   block is found from its address by a subtraction and a shift (the "live-sample table keyed
//!   by address"). A live block's record is on a doubly-linked list of live samples (for
//!   snapshots); a free block's record is on its class's free list.
//! - the **site table**: call stacks (instruction pointers, deduplicated) with their running
//!   statistics, in insertion order, plus an open-addressing index of `u32` into it. Site 0 is
//!   reserved for samples whose stack did not fit (table full).

use std::io;
use std::ptr::NonNull;

use super::types::{SiteTotals, StackId};
use crate::hot::REGION_LEN;

/// Most frames kept per stack (innermost first, the allocator's own frames included).
pub(crate) const MAX_DEPTH: usize = 48;
/// Most distinct stacks; samples past it are counted under site 0.
pub(crate) const MAX_SITES: usize = 1 << 16;
const INDEX_SLOTS: usize = MAX_SITES * 2;
/// "No page": the end of a list.
pub(crate) const NIL: u32 = u32::MAX;
const CLASSES: usize = 40;

/// What the profiler knows of one region page that starts a block.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct PageRec {
    /// Unique, increasing number of the sample (never reused), to match snapshots.
    pub seq: u64,
    /// Bytes the program asked for.
    pub size: usize,
    /// Estimated bytes this sample stands for.
    pub weight: f64,
    /// When it was allocated, µs since the profiler started.
    pub t_alloc_us: u64,
    /// Its site.
    pub site: u32,
    /// Live list (live block) neighbours; `next` is the free-list link of a free block.
    pub prev: u32,
    pub next: u32,
    /// Block size class: `2^class` pages.
    pub class: u8,
}

#[repr(C)]
pub(crate) struct SiteEntry {
    hash: u64,
    depth: u32,
    frames: [usize; MAX_DEPTH],
    /// Its running figures, in estimated bytes and blocks (see `estimate`); `totals.site` is
    /// the entry's own id. Lifetimes count the blocks freed so far.
    pub totals: SiteTotals,
}

/// The mappings and the allocator state inside them. Owned by the profiler, behind its lock.
/// Nothing here allocates from the heap (errors are `io::Error`s without a payload), so it may
/// run while the lock is held.
pub(crate) struct Arena {
    base: NonNull<u8>,
    page_shift: u32,
    npages: u32,
    meta: NonNull<u8>,
    meta_len: usize,
    recs: NonNull<PageRec>,
    sites: NonNull<SiteEntry>,
    index: NonNull<u32>,
    nsites: u32,
    bump: u32,
    free: [u32; CLASSES],
    live_head: u32,
    live_count: u64,
    pages_in_use: u64,
}

// SAFETY: `Arena` owns its two mappings outright (nothing else holds their pointers except the
// program's own blocks, which it hands out); all access goes through `&mut self` behind the
// profiler's mutex, so moving it between threads is sound.
#[allow(unsafe_code)]
unsafe impl Send for Arena {}

fn map(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh private anonymous mapping at an address the kernel picks: it aliases no
    // existing memory, and the result is checked before use.
    #[allow(unsafe_code)]
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::ErrorKind::OutOfMemory.into())
}

fn unmap(p: NonNull<u8>, len: usize) {
    // SAFETY: `p..p+len` is a mapping this module made and nothing refers to any more.
    #[allow(unsafe_code)]
    unsafe {
        libc::munmap(p.as_ptr().cast(), len);
    }
}

/// Blocks up to this many bytes are zeroed with a memset when freed and stay resident; larger
/// ones are given back to the kernel. A `madvise` costs a syscall, a TLB shootdown across the
/// process's threads and a page fault at the next use — several µs, the largest part of a
/// sample's cost when measured — while zeroing 64 KiB takes about one; the pages kept are
/// bounded by the peak number of small sampled blocks live at once.
pub(crate) const ZERO_IN_PLACE: usize = 64 * 1024;

/// Makes the `size` bytes a block's owner could have written, from `p`, read as zero again:
/// zeroed in place for small blocks, given back to the kernel (`MADV_DONTNEED`, whole pages:
/// `size` rounded up to `page`) for large ones, or zeroed if `madvise` refuses.
///
/// # Safety
/// `p` starts a block of the region at least `size` bytes (rounded up to `page`) long that
/// nobody else uses now.
#[allow(unsafe_code)]
pub(crate) unsafe fn discard(p: *mut u8, size: usize, page: usize) {
    if size > ZERO_IN_PLACE {
        let len = size.div_ceil(page) * page;
        // SAFETY: the caller owns the page-aligned range; MADV_DONTNEED on a private anonymous
        // mapping only drops its pages (the next touch maps fresh zero pages).
        if unsafe { libc::madvise(p.cast(), len, libc::MADV_DONTNEED) } == 0 {
            return;
        }
    }
    // SAFETY: the caller owns `size` writable bytes from `p`.
    unsafe { std::ptr::write_bytes(p, 0, size) };
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n)
        .ok()
        .filter(|n| n.is_power_of_two())
        .unwrap_or(4096)
}

const fn align_up(n: usize, a: usize) -> usize {
    (n + a - 1) & !(a - 1)
}

fn hash(frames: &[usize]) -> u64 {
    // FxHash-style: the stacks are our own instruction pointers, not adversarial input.
    frames.iter().fold(frames.len() as u64, |h, &ip| {
        (h.rotate_left(5) ^ ip as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
    })
}

#[allow(unsafe_code)]
impl Arena {
    /// Reserves the region and the metadata mapping.
    pub(crate) fn new() -> io::Result<Arena> {
        let page = page_size();
        let npages = REGION_LEN / page;
        let npages32 = u32::try_from(npages)
            .ok()
            .filter(|&n| n < NIL)
            .ok_or(io::ErrorKind::Unsupported)?;
        let recs_len = align_up(npages * size_of::<PageRec>(), page);
        let sites_len = align_up(MAX_SITES * size_of::<SiteEntry>(), page);
        let index_len = align_up(INDEX_SLOTS * size_of::<u32>(), page);
        let meta_len = recs_len + sites_len + index_len;

        let base = map(REGION_LEN)?;
        let meta = match map(meta_len) {
            Ok(m) => m,
            Err(e) => {
                unmap(base, REGION_LEN);
                return Err(e);
            }
        };
        // SAFETY: the three offsets are within the `meta_len`-byte mapping and page-aligned,
        // which satisfies every field's alignment; zeroed memory is a valid `PageRec`,
        // `SiteEntry` (every field a number; site 0: depth 0, id 0, no figures) and index (all
        // slots empty).
        let (recs, sites, index) = unsafe {
            (
                meta.cast::<PageRec>(),
                meta.add(recs_len).cast::<SiteEntry>(),
                meta.add(recs_len + sites_len).cast::<u32>(),
            )
        };
        Ok(Arena {
            base,
            page_shift: page.trailing_zeros(),
            npages: npages32,
            meta,
            meta_len,
            recs,
            sites,
            index,
            nsites: 1,
            bump: 0,
            free: [NIL; CLASSES],
            live_head: NIL,
            live_count: 0,
            pages_in_use: 0,
        })
    }

    pub(crate) fn base_addr(&self) -> usize {
        self.base.as_ptr() as usize
    }

    pub(crate) fn page_size(&self) -> usize {
        1 << self.page_shift
    }

    /// The page record at `idx`.
    pub(crate) fn rec(&mut self, idx: u32) -> &mut PageRec {
        assert!(idx < self.npages, "page record out of range");
        // SAFETY: `idx < npages` and the mapping holds `npages` records; `&mut self` is exclusive.
        unsafe { &mut *self.recs.as_ptr().add(idx as usize) }
    }

    /// The page index of a block's address in the region.
    pub(crate) fn page_of(&self, ptr: *mut u8) -> u32 {
        ((ptr as usize - self.base_addr()) >> self.page_shift) as u32
    }

    /// Takes a block for `size` bytes; `None` when the region is exhausted.
    pub(crate) fn take_block(&mut self, size: usize) -> Option<(u32, NonNull<u8>)> {
        let pages = size.max(1).div_ceil(self.page_size());
        if pages > self.npages as usize {
            return None;
        }
        let class = pages.next_power_of_two().trailing_zeros() as usize;
        let span = 1u32 << class;
        let idx = if self.free[class] != NIL {
            let idx = self.free[class];
            self.free[class] = self.rec(idx).next;
            idx
        } else if self.npages - self.bump >= span {
            let idx = self.bump;
            self.bump += span;
            idx
        } else {
            return None;
        };
        self.rec(idx).class = class as u8;
        self.pages_in_use += u64::from(span);
        // SAFETY: `idx + span <= npages`, so the block lies inside the region mapping.
        let p = unsafe { self.base.add((idx as usize) << self.page_shift) };
        Some((idx, p))
    }

    /// Returns the block at `idx` to its class's free list (its pages already discarded).
    pub(crate) fn give_block(&mut self, idx: u32) {
        let class = self.rec(idx).class as usize;
        let head = self.free[class];
        self.rec(idx).next = head;
        self.free[class] = idx;
        self.pages_in_use -= 1u64 << class;
    }

    pub(crate) fn link_live(&mut self, idx: u32) {
        let head = self.live_head;
        let r = self.rec(idx);
        r.prev = NIL;
        r.next = head;
        if head != NIL {
            self.rec(head).prev = idx;
        }
        self.live_head = idx;
        self.live_count += 1;
    }

    pub(crate) fn unlink_live(&mut self, idx: u32) {
        let (prev, next) = {
            let r = self.rec(idx);
            (r.prev, r.next)
        };
        if prev == NIL {
            self.live_head = next;
        } else {
            self.rec(prev).next = next;
        }
        if next != NIL {
            self.rec(next).prev = prev;
        }
        self.live_count -= 1;
    }

    /// Live sampled blocks, newest first.
    pub(crate) fn live(&mut self) -> LiveIter<'_> {
        let next = self.live_head;
        LiveIter { arena: self, next }
    }

    pub(crate) fn live_count(&self) -> u64 {
        self.live_count
    }

    pub(crate) fn pages_in_use(&self) -> u64 {
        self.pages_in_use
    }

    pub(crate) fn nsites(&self) -> u32 {
        self.nsites
    }

    pub(crate) fn site(&mut self, id: u32) -> &mut SiteEntry {
        assert!(id < self.nsites, "site id out of range");
        // SAFETY: `id < nsites <= MAX_SITES`, inside the sites array; `&mut self` is exclusive.
        unsafe { &mut *self.sites.as_ptr().add(id as usize) }
    }

    /// The frames of site `id`.
    pub(crate) fn frames(&mut self, id: u32) -> &[usize] {
        let e = self.site(id);
        &e.frames[..e.depth as usize]
    }

    fn slot(&mut self, i: usize) -> &mut u32 {
        // SAFETY: callers mask `i` below INDEX_SLOTS, the index array's length.
        unsafe { &mut *self.index.as_ptr().add(i & (INDEX_SLOTS - 1)) }
    }

    /// The id of the site with these frames, inserted if new; 0 when the table is full.
    pub(crate) fn intern(&mut self, frames: &[usize]) -> u32 {
        let frames = &frames[..frames.len().min(MAX_DEPTH)];
        let h = hash(frames);
        let mut i = h as usize;
        loop {
            let v = *self.slot(i);
            if v == 0 {
                if self.nsites as usize >= MAX_SITES {
                    return 0;
                }
                let id = self.nsites;
                self.nsites += 1;
                let e = self.site(id);
                e.hash = h;
                e.depth = frames.len() as u32;
                e.frames[..frames.len()].copy_from_slice(frames);
                e.totals.site = StackId(id);
                *self.slot(i) = id + 1;
                return id;
            }
            let e = self.site(v - 1);
            if e.hash == h && &e.frames[..e.depth as usize] == frames {
                return v - 1;
            }
            i += 1;
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // Only reached if the profiler were torn down; it lives in a static, so in practice never.
        unmap(self.meta, self.meta_len);
        unmap(self.base, REGION_LEN);
    }
}

/// Walks the live list: `(page index, record)`.
pub(crate) struct LiveIter<'a> {
    arena: &'a mut Arena,
    next: u32,
}

impl Iterator for LiveIter<'_> {
    type Item = (u32, PageRec);
    fn next(&mut self) -> Option<Self::Item> {
        if self.next == NIL {
            return None;
        }
        let idx = self.next;
        let r = *self.arena.rec(idx);
        self.next = r.next;
        Some((idx, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_page_classes_reused_by_class_and_stacks_dedup() {
        let mut a = Arena::new().expect("reserve the region");
        let page = a.page_size();
        let (i1, p1) = a.take_block(1).expect("block");
        let (i2, p2) = a.take_block(page + 1).expect("block");
        assert_eq!(a.rec(i2).class, 1, "two pages");
        assert_eq!(p1.as_ptr() as usize % page, 0);
        assert_eq!(p2.as_ptr() as usize - p1.as_ptr() as usize, page);
        assert_eq!(a.pages_in_use(), 3);
        a.give_block(i1);
        let (i3, p3) = a.take_block(page).expect("block");
        assert_eq!((i3, p3), (i1, p1), "one-page block reused");
        a.link_live(i2);
        a.link_live(i3);
        assert_eq!(a.live().map(|(i, _)| i).collect::<Vec<_>>(), [i3, i2]);
        a.unlink_live(i3);
        assert_eq!(a.live().map(|(i, _)| i).collect::<Vec<_>>(), [i2]);
        assert_eq!(a.page_of(p2.as_ptr()), i2);

        let s1 = a.intern(&[1, 2, 3]);
        let s2 = a.intern(&[1, 2, 4]);
        assert_ne!(s1, 0);
        assert_ne!(s1, s2);
        assert_eq!(a.intern(&[1, 2, 3]), s1);
        assert_eq!(a.frames(s2), [1, 2, 4]);
        assert_eq!(a.take_block(REGION_LEN + 1), None);
    }
}
