//! Copies to and from memory that other threads or processes may access at the
//! same time: byte-wise atomic copies (the "atomic memcpy" of C++ P1478).
//!
//! A plain `memcpy` racing with another copy into the same bytes is a data race,
//! undefined behaviour even when every byte value would be acceptable. These
//! copies access each byte as an `AtomicU8` with `Relaxed` ordering instead:
//! racing copies are then merely unordered, and a reader sees, byte by byte,
//! some value that was written there.
//!
//! The granularity is one byte on purpose. Rust forbids racing atomic accesses
//! of different sizes that partially overlap, and two copies of different
//! ranges would otherwise split the same machine word differently (one copy
//! reaching a word's first bytes one at a time, the other storing the whole
//! word). With every copy going byte by byte, two copies of any ranges always
//! meet at the same size. Chunked atomic copies (the `atomic-memcpy` crate) fit
//! values that are always accessed as the same type at the same place, such as
//! a managed segment's named objects.

// Unsafe: byte-wise atomic copies through raw pointers into shared memory.
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicU8, Ordering};

/// Copies `dst.len()` bytes from `src` into `dst`, each byte read atomically.
///
/// # Safety
///
/// `src..src + dst.len()` must be valid for reads for the whole call, and every
/// concurrent access to those bytes must be atomic (these copies are).
#[inline]
pub(crate) unsafe fn load(src: *const u8, dst: &mut [u8]) {
    for (i, d) in dst.iter_mut().enumerate() {
        // SAFETY: `src + i` is inside the readable range (the caller's promise,
        // i < dst.len()); an AtomicU8 has the size and alignment of a u8; every
        // concurrent access is atomic (the caller's promise), so no data race.
        *d = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) }.load(Ordering::Relaxed);
    }
}

/// Copies `src` to `dst`, each byte written atomically.
///
/// # Safety
///
/// `dst..dst + src.len()` must be valid for writes for the whole call, and
/// every concurrent access to those bytes must be atomic (these copies are).
#[inline]
pub(crate) unsafe fn store(dst: *mut u8, src: &[u8]) {
    for (i, s) in src.iter().enumerate() {
        // SAFETY: `dst + i` is inside the writable range (the caller's promise,
        // i < src.len()); alignment 1; every concurrent access is atomic.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(*s, Ordering::Relaxed);
    }
}

/// Sets `n` bytes at `dst` to `value`, each byte written atomically.
///
/// # Safety
///
/// As for [`store`], for `dst..dst + n`.
#[inline]
pub(crate) unsafe fn fill(dst: *mut u8, value: u8, n: usize) {
    for i in 0..n {
        // SAFETY: as in `store`: i < n, in the caller's writable range.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(value, Ordering::Relaxed);
    }
}
