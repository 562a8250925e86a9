#![allow(unsafe_code)] // Copies into and out of raw shared memory, and its tag words.
//! The memory a ring runs over: [`Mem`], and [`RawMem`] for a segment's data
//! area.

/// The data area the ring copies into and out of.
///
/// # Safety
///
/// `write(pos, src)` and `read(pos, dst)` must be sound whenever
/// `pos + len <= capacity` for the capacity the ring was created with, and the
/// ring's cursor protocol gives the calling side exclusive use of those bytes.
pub unsafe trait Mem {
    /// Copies `src` to `pos..pos + src.len()`.
    fn write(&self, pos: usize, src: &[u8]);
    /// Copies `pos..pos + dst.len()` into `dst`.
    fn read(&self, pos: usize, dst: &mut [u8]);
    /// A raw pointer to `pos` for zero-copy access, if this memory has one.
    fn ptr(&self, pos: usize) -> Option<*mut u8>;
    /// Loads the 8-byte tag word at `pos` (8-aligned, `pos + 8 <= capacity`)
    /// with Acquire ordering.
    fn tag(&self, pos: usize) -> u64;
    /// Stores `tag` into the tag word at `pos` with Release ordering.
    fn set_tag(&self, pos: usize, tag: u64);
    /// Stores 0 into the tag word at `pos` (Relaxed: published by a later
    /// [`set_tag`](Self::set_tag)).
    fn clear_tag(&self, pos: usize);
}

/// [`Mem`] over raw memory (a segment's data area).
#[derive(Debug, Clone, Copy)]
pub struct RawMem {
    base: *mut u8,
    len: usize,
}

impl RawMem {
    /// Memory at `base..base + len`.
    ///
    /// # Safety
    ///
    /// The range must stay mapped, readable and writable for as long as the
    /// `RawMem` (and any ring using it) is used.
    pub unsafe fn new(base: *mut u8, len: usize) -> RawMem {
        RawMem { base, len }
    }

    /// The address of `pos` (at most `len`).
    #[inline]
    pub fn at(&self, pos: usize) -> *mut u8 {
        debug_assert!(pos <= self.len);
        self.base.wrapping_add(pos)
    }
}

// SAFETY: a RawMem is an address range in a mapping that the owner keeps alive;
// it may be used from any thread.
unsafe impl Send for RawMem {}

// SAFETY: every access is bounds-checked against `len` (assert); the range is mapped for the RawMem's lifetime per `RawMem::new`'s contract; the
// ring gives the caller exclusive use of the bytes it copies.
unsafe impl Mem for RawMem {
    #[inline]
    fn write(&self, pos: usize, src: &[u8]) {
        assert!(
            pos <= self.len && src.len() <= self.len - pos,
            "RawMem::write out of bounds"
        );
        // SAFETY: in bounds (checked above); `src` is private memory, not overlapping.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(pos), src.len()) };
    }
    #[inline]
    fn read(&self, pos: usize, dst: &mut [u8]) {
        assert!(
            pos <= self.len && dst.len() <= self.len - pos,
            "RawMem::read out of bounds"
        );
        // SAFETY: in bounds (checked above); `dst` is private memory, not overlapping.
        unsafe { core::ptr::copy_nonoverlapping(self.base.add(pos), dst.as_mut_ptr(), dst.len()) };
    }
    #[inline]
    fn ptr(&self, pos: usize) -> Option<*mut u8> {
        Some(self.at(pos))
    }
    #[inline]
    fn tag(&self, pos: usize) -> u64 {
        // SYNC: pairs with the Release store in `set_tag` by the producer,
        // which wrote the tagged record before it.
        self.tag_word(pos)
            .load(core::sync::atomic::Ordering::Acquire)
    }
    #[inline]
    fn set_tag(&self, pos: usize, tag: u64) {
        // SYNC: publishes the record written before it to the consumer's
        // Acquire load in `tag`.
        self.tag_word(pos)
            .store(tag, core::sync::atomic::Ordering::Release);
    }
    #[inline]
    fn clear_tag(&self, pos: usize) {
        self.tag_word(pos)
            .store(0, core::sync::atomic::Ordering::Relaxed);
    }
}

impl RawMem {
    /// The tag word at `pos`, as an atomic.
    #[inline]
    fn tag_word(&self, pos: usize) -> &core::sync::atomic::AtomicU64 {
        assert!(
            pos % 8 == 0 && pos <= self.len && 8 <= self.len - pos,
            "RawMem tag word out of bounds or unaligned"
        );
        let p = self.base.wrapping_add(pos);
        assert!(p as usize % 8 == 0, "RawMem tag word unaligned");
        // SAFETY: in bounds and 8-aligned (checked above); the range is mapped
        // for the RawMem's lifetime; shared memory is only ever accessed
        // through atomics or under the ring's exclusivity protocol.
        unsafe { &*p.cast::<core::sync::atomic::AtomicU64>() }
    }
}
