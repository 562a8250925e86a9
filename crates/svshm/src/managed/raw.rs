//! Raw access to the region's bytes and the robust process-shared mutex:
//! apart from the typed [`Named`](super::Named) handle, the only code of the
//! managed segment that touches the region's memory through raw pointers.

// Unsafe: the managed segment's raw access to region memory and its pthread mutex.
#![allow(unsafe_code)]

use super::corrupt;
use super::layout::{H_LOCK, H_STATE};
use crate::error::{Error, ErrorKind, Object, Op, Result};
use crate::region::Region;
use core::marker::PhantomData;
use core::mem::size_of;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Bounds- and alignment-checked atomic access to a region's bytes (fields as
/// atomics of their size, byte ranges as byte-wise atomic copies).
#[derive(Clone, Copy)]
pub(super) struct Raw<'a> {
    pub(super) base: *mut u8,
    pub(super) len: u64,
    _region: PhantomData<&'a ()>,
}

impl<'a> Raw<'a> {
    pub(super) fn of<R: Region>(region: &'a R) -> Raw<'a> {
        Raw {
            base: region.base(),
            len: region.len() as u64,
            _region: PhantomData,
        }
    }

    /// A pointer to `[off, off + n)`, which must lie in the region, with `off`
    /// a multiple of `align` (the base is at least 64-aligned).
    pub(super) fn at(&self, off: u64, n: u64, align: u64) -> Result<*mut u8> {
        match off.checked_add(n) {
            Some(end) if end <= self.len && off % align == 0 => {
                // SAFETY: off + n <= len, so the result stays inside the region
                // the Region contract keeps mapped for 'a.
                Ok(unsafe { self.base.add(off as usize) })
            }
            _ => Err(corrupt(format_args!(
                "access to {n} bytes at offset {off} (alignment {align}) is outside the {}-byte region",
                self.len
            ))),
        }
    }

    pub(super) fn u64(&self, off: u64) -> Result<u64> {
        let p = self.at(off, 8, 8)?;
        // SAFETY: in bounds and 8-aligned (checked by `at`; the base is
        // 64-aligned), mapped for 'a; atomic because another thread or process
        // may write it (every access of this module to a u64 field is a u64
        // atomic, so the sizes match).
        Ok(unsafe { AtomicU64::from_ptr(p.cast()) }.load(Ordering::Relaxed))
    }

    pub(super) fn set_u64(&self, off: u64, v: u64) -> Result<()> {
        let p = self.at(off, 8, 8)?;
        // SAFETY: in bounds and aligned (checked); the region is writable
        // (checked at format/open); atomic as in `u64`.
        unsafe { AtomicU64::from_ptr(p.cast()) }.store(v, Ordering::Relaxed);
        Ok(())
    }

    pub(super) fn u32(&self, off: u64) -> Result<u32> {
        let p = self.at(off, 4, 4)?;
        // SAFETY: as in `u64`, for a 4-aligned u32 field.
        Ok(unsafe { AtomicU32::from_ptr(p.cast()) }.load(Ordering::Relaxed))
    }

    pub(super) fn set_u32(&self, off: u64, v: u32) -> Result<()> {
        let p = self.at(off, 4, 4)?;
        // SAFETY: as in `set_u64`, for a 4-aligned u32 field.
        unsafe { AtomicU32::from_ptr(p.cast()) }.store(v, Ordering::Relaxed);
        Ok(())
    }

    pub(super) fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        let p = self.at(off, buf.len() as u64, 1)?;
        // SAFETY: the source range is inside the region (checked), mapped for
        // 'a; byte-wise atomic, like every safe copy of this crate, because
        // another thread or process may write the bytes meanwhile.
        unsafe { crate::copy::load(p, buf) };
        Ok(())
    }

    pub(super) fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        let p = self.at(off, data.len() as u64, 1)?;
        // SAFETY: the destination is inside the writable region (checked);
        // byte-wise atomic as in `read`.
        unsafe { crate::copy::store(p, data) };
        Ok(())
    }

    pub(super) fn fill_zero(&self, off: u64, n: u64) -> Result<()> {
        let p = self.at(off, n, 1)?;
        // SAFETY: the range is inside the writable region (checked); `n` fits
        // in usize because `off + n` is within the region's usize length;
        // byte-wise atomic as in `read`.
        unsafe { crate::copy::fill(p, 0, n as usize) };
        Ok(())
    }

    /// The header's state word, as an atomic (shared memory is referenced
    /// only through atomics).
    pub(super) fn state(&self) -> Result<&'a AtomicU32> {
        let p = self.at(H_STATE, 4, 4)?;
        // SAFETY: in bounds and 4-aligned; the memory stays mapped for 'a (the
        // Region contract); every access to this word is atomic.
        Ok(unsafe { AtomicU32::from_ptr(p.cast()) })
    }

    pub(super) fn mutex(&self) -> Result<*mut libc::pthread_mutex_t> {
        Ok(self
            .at(H_LOCK, size_of::<libc::pthread_mutex_t>() as u64, 8)?
            .cast())
    }

    /// Initialises the robust, process-shared, error-checking mutex.
    pub(super) fn init_mutex(&self) -> Result<()> {
        let m = self.mutex()?;
        let fail = |what: &str, rc: i32| {
            Error::new(
                Op::Managed,
                Object::System,
                ErrorKind::Other,
                Some(rc),
                format!(
                    "managed segment: {what} failed: {}",
                    crate::error::errno_text(rc)
                ),
            )
        };
        let mut attr = core::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is a local the call initialises.
        let rc = unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) };
        if rc != 0 {
            return Err(fail("pthread_mutexattr_init", rc));
        }
        // SAFETY: `attr` was initialised above; `m` points to 64 writable
        // bytes, 8-aligned, in the region, which no one uses before the
        // state word says READY (format is given the region by value).
        let rc = unsafe {
            let a = attr.as_mut_ptr();
            let mut rc = libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED);
            if rc == 0 {
                rc = libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST);
            }
            if rc == 0 {
                rc = libc::pthread_mutexattr_settype(a, libc::PTHREAD_MUTEX_ERRORCHECK);
            }
            if rc == 0 {
                rc = libc::pthread_mutex_init(m, a);
            }
            libc::pthread_mutexattr_destroy(a);
            rc
        };
        if rc != 0 {
            return Err(fail("initialising the robust process-shared mutex", rc));
        }
        Ok(())
    }

    /// pthread_mutex_lock; returns its code (0, EOWNERDEAD, ...).
    pub(super) fn lock(&self) -> Result<i32> {
        let m = self.mutex()?;
        // SAFETY: `m` is the mutex `format` initialised (validated header);
        // glibc only reads and writes inside the pthread_mutex_t. Peers can
        // corrupt it; that is the trust limit documented at the module top.
        Ok(unsafe { libc::pthread_mutex_lock(m) })
    }

    /// pthread_mutex_unlock; returns its code (0 when the mutex was ours and
    /// left this thread's robust list).
    pub(super) fn unlock(&self) -> i32 {
        match self.mutex() {
            // SAFETY: called only by the `Locked` guard, on the thread that
            // locked (the guard is !Send).
            Ok(m) => unsafe { libc::pthread_mutex_unlock(m) },
            Err(_) => libc::EINVAL,
        }
    }

    pub(super) fn consistent(&self) -> i32 {
        match self.mutex() {
            // SAFETY: called by the thread that got EOWNERDEAD for `m`.
            Ok(m) => unsafe { libc::pthread_mutex_consistent(m) },
            Err(_) => libc::EINVAL,
        }
    }
}
