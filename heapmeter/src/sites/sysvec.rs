//! A growable array of plain `Copy` values in memory taken straight from `System`, outside the
//! counted heap: what the profiler fills while holding its lock and hands out (snapshots), so
//! that taking or keeping one neither changes what is measured nor re-enters the allocator.
//! It must stay minimal: push, slice views, clone, drop.

use std::alloc::{GlobalAlloc, Layout, System, handle_alloc_error};
use std::ptr::NonNull;

pub(crate) struct SysVec<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
}

// SAFETY: `SysVec<T>` owns its `T`s like a `Vec<T>` does.
#[allow(unsafe_code)]
unsafe impl<T: Copy + Send> Send for SysVec<T> {}
// SAFETY: shared access only reads, like `Vec<T>`.
#[allow(unsafe_code)]
unsafe impl<T: Copy + Sync> Sync for SysVec<T> {}

#[allow(unsafe_code)]
impl<T: Copy> SysVec<T> {
    pub(crate) const fn new() -> Self {
        const { assert!(size_of::<T>() != 0) };
        SysVec {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        }
    }

    fn layout(cap: usize) -> Layout {
        Layout::array::<T>(cap).unwrap_or_else(|_| handle_alloc_error(Layout::new::<T>()))
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        let want = self.len.saturating_add(additional);
        if want <= self.cap {
            return;
        }
        let cap = want.max(self.cap * 2).max(8);
        let new = Self::layout(cap);
        let p = if self.cap == 0 {
            // SAFETY: `new` has a non-zero size (T is not zero-sized, cap >= 8).
            unsafe { System.alloc(new) }
        } else {
            // SAFETY: `ptr` came from `System` with `layout(self.cap)`; `new.size()` is non-zero
            // and was checked not to overflow `isize` by `Layout::array`.
            unsafe { System.realloc(self.ptr.as_ptr().cast(), Self::layout(self.cap), new.size()) }
        };
        self.ptr = NonNull::new(p.cast()).unwrap_or_else(|| handle_alloc_error(new));
        self.cap = cap;
    }

    pub(crate) fn push(&mut self, v: T) {
        self.reserve(1);
        // SAFETY: `len < cap` after `reserve`; the slot is inside the allocation.
        unsafe { self.ptr.as_ptr().add(self.len).write(v) };
        self.len += 1;
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` slots are initialised; `ptr` is aligned and non-null.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[allow(unsafe_code)]
impl<T: Copy> Drop for SysVec<T> {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: allocated from `System` with exactly this layout.
            unsafe { System.dealloc(self.ptr.as_ptr().cast(), Self::layout(self.cap)) };
        }
    }
}

impl<T: Copy> Clone for SysVec<T> {
    fn clone(&self) -> Self {
        let mut v = SysVec::new();
        v.reserve(self.len);
        for &x in self.as_slice() {
            v.push(x);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_grow_and_clones_copy() {
        let mut v = SysVec::new();
        for i in 0..1000u64 {
            v.push(i);
        }
        v.as_mut_slice().reverse();
        let c = v.clone();
        drop(v);
        assert_eq!(c.as_slice().len(), 1000);
        assert_eq!(c.as_slice()[0], 999);
        assert_eq!(c.as_slice()[999], 0);
        assert!(SysVec::<u32>::new().as_slice().is_empty());
    }
}
