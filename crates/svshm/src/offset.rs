//! [`Offset<T>`]: a position inside a segment stored instead of a pointer.
//!
//! A segment lands at a different address in each process (TLPI §48.6), so a
//! pointer stored in it means nothing to the other side. Store the distance from
//! the segment's start instead and resolve it against the local mapping; every
//! resolve is checked against the region's bounds and the type's alignment,
//! because the stored value may have been written by a faulty or hostile peer.

// Unsafe: turns a stored offset back into a pointer inside a region.
#![allow(unsafe_code)]

use crate::error::{Error, ErrorKind, Object, Op, Result};
use crate::region::Region;
use core::marker::PhantomData;

/// A byte offset of a `T` from the start of a [`Region`]. Offset 0 is the null
/// value (the region's header lives there), so `Option`-like "no object" needs
/// no extra bit.
///
/// `Offset` is `#[repr(transparent)]` over a `u64`, so it can itself be stored
/// in shared memory and read by 32- and 64-bit processes alike.
///
/// ```
/// use svshm::{HeapRegion, Offset, Region};
/// let region = HeapRegion::new(4096);
/// let off: Offset<u64> = Offset::new(128);
/// let p = off.resolve(&region).unwrap();
/// // SAFETY: in bounds and aligned (checked by resolve); no one else uses it.
/// unsafe { p.write(42) };
/// assert!(Offset::<u64>::new(4093).resolve(&region).is_err()); // out of bounds
/// assert!(Offset::<u64>::new(129).resolve(&region).is_err());  // misaligned
/// assert!(Offset::<u64>::NULL.resolve(&region).is_err());      // null
/// ```
#[repr(transparent)]
pub struct Offset<T> {
    raw: u64,
    _t: PhantomData<*const T>,
}

impl<T> Offset<T> {
    /// The null offset.
    pub const NULL: Offset<T> = Offset {
        raw: 0,
        _t: PhantomData,
    };

    /// An offset of `raw` bytes from the region start.
    pub const fn new(raw: u64) -> Self {
        Offset {
            raw,
            _t: PhantomData,
        }
    }

    /// The offset of `ptr` inside `region`, if it lies inside it.
    pub fn from_ptr(region: &impl Region, ptr: *const T) -> Option<Self> {
        let base = region.base() as usize;
        let p = ptr as usize;
        let end = p.checked_add(core::mem::size_of::<T>())?;
        (p >= base && end <= base + region.len()).then(|| Offset::new((p - base) as u64))
    }

    /// The raw byte offset.
    pub const fn raw(self) -> u64 {
        self.raw
    }

    /// Whether this is the null offset.
    pub const fn is_null(self) -> bool {
        self.raw == 0
    }

    /// Resolves against `region`: a pointer to a `T` that lies wholly inside the
    /// region and is aligned for `T`. Errors (never panics) on null, out of
    /// bounds, overflow or misalignment.
    pub fn resolve(self, region: &impl Region) -> Result<*mut T> {
        let fail =
            |kind, msg: String| Err(Error::new(Op::Resolve, Object::System, kind, None, msg));
        if self.is_null() {
            return fail(ErrorKind::OutOfBounds, "null offset".into());
        }
        let size = core::mem::size_of::<T>() as u64;
        match self.raw.checked_add(size) {
            Some(end) if end <= region.len() as u64 => {}
            _ => {
                return fail(
                    ErrorKind::OutOfBounds,
                    format!(
                        "offset {} + {} bytes is outside the {}-byte region",
                        self.raw,
                        size,
                        region.len()
                    ),
                );
            }
        }
        // SAFETY: raw + size <= len, so the pointer stays inside the region.
        let p = unsafe { region.base().add(self.raw as usize) };
        if (p as usize) % core::mem::align_of::<T>() != 0 {
            return fail(
                ErrorKind::Misaligned,
                format!(
                    "offset {} is not aligned to {} bytes",
                    self.raw,
                    core::mem::align_of::<T>()
                ),
            );
        }
        Ok(p.cast())
    }
}

impl<T> Clone for Offset<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Offset<T> {}
impl<T> PartialEq for Offset<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<T> Eq for Offset<T> {}
impl<T> core::fmt::Debug for Offset<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Offset({:#x})", self.raw)
    }
}
// SAFETY: an Offset is a number; sending it to another thread is harmless.
unsafe impl<T> Send for Offset<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Offset<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::HeapRegion;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn resolve_never_escapes(raw in any::<u64>(), len in 1usize..10000) {
            let r = HeapRegion::new(len);
            if let Ok(p) = Offset::<u32>::new(raw).resolve(&r) {
                let p = p as usize;
                let base = r.base() as usize;
                prop_assert!(p > base && p + 4 <= base + len && p % 4 == 0);
            }
        }
    }

    #[test]
    fn from_ptr_roundtrip() {
        let r = HeapRegion::new(256);
        // SAFETY: 64 < 256.
        let p = unsafe { r.base().add(64) } as *const u64;
        let o = Offset::from_ptr(&r, p).unwrap();
        assert_eq!(o.raw(), 64);
        assert_eq!(o.resolve(&r).unwrap() as *const u64, p);
        assert!(Offset::<u64>::from_ptr(&r, std::ptr::dangling::<u64>()).is_none());
    }

    #[test]
    fn from_ptr_near_the_top_of_the_address_space_is_none() {
        // Found by the `offset` fuzz target: `ptr + size_of::<T>()` overflowed.
        let r = HeapRegion::new(4096);
        let top = (usize::MAX - 3) as *const u64;
        assert!(Offset::<u64>::from_ptr(&r, top).is_none());
    }
}
