//! Atomics and fences, from `core` normally and from `loom` under `--cfg svshm_loom`,
//! so the ring protocol can be model-checked unchanged.

#[cfg(svshm_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(not(svshm_loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// A hint inside spin loops (a yield under loom so the model can progress).
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(svshm_loom)]
    loom::thread::yield_now();
    #[cfg(not(svshm_loom))]
    core::hint::spin_loop();
}
