//! [`Region`]: a byte range shared with others, the common ground of a real
//! [`Attachment`](crate::Attachment) and a heap-backed [`HeapRegion`] (for tests
//! and model checking of protocols built on top).

// Unsafe: the `Region` contract (a live, shared byte range) and the heap region's allocation.
#![allow(unsafe_code)]

use crate::attach::Attachment;
use core::ptr::NonNull;
use std::alloc::{Layout, alloc_zeroed, dealloc};

/// A contiguous range of memory that other parties may read and write
/// concurrently, reached only through raw pointers.
///
/// Because of that, code that copies bytes in or out of a region while others
/// may access them does so with atomics (the safe copies of this crate are
/// byte-wise atomic); this trait itself copies nothing.
///
/// # Safety
///
/// Implementors guarantee that `base()..base() + len()` stays mapped, readable
/// and (unless [`is_writable`](Region::is_writable) says otherwise) writable for
/// as long as the value lives, that `base()` is aligned to at least 64 bytes,
/// and that `base()` and `len()` never change.
pub unsafe trait Region: Send + Sync {
    /// Start of the range.
    fn base(&self) -> *mut u8;
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the range may be written.
    fn is_writable(&self) -> bool {
        true
    }
    /// Whether the range is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// SAFETY: an attachment maps the whole segment (page-aligned) until it is
// dropped; its address and length are fixed at attach time.
unsafe impl Region for Attachment {
    fn base(&self) -> *mut u8 {
        self.as_ptr()
    }
    fn len(&self) -> usize {
        Attachment::len(self)
    }
    fn is_writable(&self) -> bool {
        !self.is_read_only()
    }
}

/// A zeroed, page-aligned heap allocation standing in for a segment.
#[derive(Debug)]
pub struct HeapRegion {
    ptr: NonNull<u8>,
    len: usize,
}

const HEAP_ALIGN: usize = 4096;

impl HeapRegion {
    /// Allocates `len` zeroed bytes (at least 1), aligned to 4096.
    pub fn new(len: usize) -> HeapRegion {
        let layout =
            Layout::from_size_align(len.max(1), HEAP_ALIGN).expect("region size overflows");
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        HeapRegion { ptr, len }
    }
}

impl Drop for HeapRegion {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.len.max(1), HEAP_ALIGN).expect("checked in new");
        // SAFETY: allocated in `new` with this very layout.
        unsafe { dealloc(self.ptr.as_ptr(), layout) };
    }
}

// SAFETY: the allocation is owned by the value and only reached through raw
// pointers; sharing it across threads is the point.
unsafe impl Send for HeapRegion {}
// SAFETY: as above.
unsafe impl Sync for HeapRegion {}

// SAFETY: the allocation lives until drop, is 4096-aligned and fixed in place.
unsafe impl Region for HeapRegion {
    fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
}

// SAFETY: forwards to the pointee, which upholds the contract.
unsafe impl<R: Region + ?Sized> Region for std::sync::Arc<R> {
    fn base(&self) -> *mut u8 {
        (**self).base()
    }
    fn len(&self) -> usize {
        (**self).len()
    }
    fn is_writable(&self) -> bool {
        (**self).is_writable()
    }
}
