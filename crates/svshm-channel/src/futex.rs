//! Shared (cross-process) futex wait and wake on a `u32` in the segment.
//!
//! Never uses FUTEX_PRIVATE_FLAG: the waiter and the waker are different
//! processes that map the word at different addresses; the kernel keys shared
//! futexes by the underlying page, so both reach the same wait queue.
//!
//! Under `--cfg svshm_loom` a futex is modelled with a loom mutex and condition
//! variable attached to the ring's control block, with the same semantics as the
//! kernel's: the value check and going to sleep are atomic with respect to wake.

#[cfg(not(svshm_loom))]
use crate::sync::AtomicU32;
#[cfg(not(svshm_loom))]
use std::time::{Duration, Instant};

/// Sleeps while `*word == expected`, at most `timeout`. Returns on wake, on
/// timeout, on a signal, or at once if the value differs; the caller re-checks
/// its condition in every case.
#[cfg(not(svshm_loom))]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    use rustix::thread::futex;
    let ts = futex::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    // EAGAIN (value changed), ETIMEDOUT and EINTR are all "re-check": ignore.
    let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes every waiter on `word`.
#[cfg(not(svshm_loom))]
pub(crate) fn wake(word: &AtomicU32) {
    use rustix::thread::futex;
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}

#[cfg(svshm_loom)]
pub(crate) use self::model::{wait, wake};

#[cfg(svshm_loom)]
mod model {
    use crate::sync::{AtomicU32, Ordering};
    use loom::sync::{Condvar, Mutex};
    use std::time::Duration;

    /// The modelled futex queue. One per process under loom: the models use one
    /// ring at a time.
    pub(crate) struct Queue {
        lock: Mutex<()>,
        cond: Condvar,
    }

    loom::lazy_static! {
        static ref QUEUE: Queue = Queue { lock: Mutex::new(()), cond: Condvar::new() };
    }

    pub(crate) fn wait(word: &AtomicU32, expected: u32, _timeout: Duration) {
        let guard = QUEUE.lock.lock().unwrap();
        // SYNC: ordered against `wake` by the queue's mutex, as the kernel's
        // hash-bucket lock orders FUTEX_WAIT's value check against FUTEX_WAKE.
        if word.load(Ordering::SeqCst) != expected {
            return;
        }
        // No timeout in the model: a lost wake-up shows up as a deadlock.
        drop(QUEUE.cond.wait(guard).unwrap());
    }

    pub(crate) fn wake(_word: &AtomicU32) {
        let _guard = QUEUE.lock.lock().unwrap();
        QUEUE.cond.notify_all();
    }
}

/// How [`wait_many`] returned.
#[cfg(not(svshm_loom))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woke {
    /// A wake on the word at this index (others may have changed too).
    Word(usize),
    /// Returned without telling which: a word did not hold its expected
    /// value, a signal, the timeout, or the slower fallback's slice ended.
    Unknown,
}

/// The most words one `futex_waitv(2)` call waits on (`FUTEX_WAITV_MAX`).
#[cfg(not(svshm_loom))]
pub(crate) const WAITV_MAX: usize = 128;

/// `futex_waitv(2)` is missing (Linux before 5.16): set once, on the first
/// `ENOSYS`, so later calls go straight to the fallback. Also set at the
/// first wait when the environment variable `SVSHM_NO_FUTEX_WAITV` is `1`,
/// so that the fallback can be tried on a kernel that has the call.
#[cfg(not(svshm_loom))]
static NO_WAITV: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether to use the fallback: the kernel lacks `futex_waitv`, or the
/// environment asks for it (read once).
#[cfg(not(svshm_loom))]
fn no_waitv() -> bool {
    use core::sync::atomic::Ordering::Relaxed;
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    NO_WAITV.load(Relaxed)
        || *FORCED
            .get_or_init(|| std::env::var_os("SVSHM_NO_FUTEX_WAITV").is_some_and(|v| v == "1"))
}

/// Sleeps while every `words[i] == expected[i]`, at most until `until`
/// (`CLOCK_MONOTONIC`), in one `futex_waitv(2)` call over at most
/// [`WAITV_MAX`] shared (not process-private) 32-bit words. The caller
/// re-checks its conditions in every case.
///
/// Where the kernel has no `futex_waitv` (before Linux 5.16) it sleeps on
/// `words[0]` alone for at most a millisecond: callers then notice a change
/// of any other word within about a millisecond, at the cost of a thousand
/// wake-ups a second while they wait.
#[cfg(not(svshm_loom))]
pub(crate) fn wait_many(words: &[(&AtomicU32, u32)], until: Instant) -> Woke {
    match wait_raw(words, &[], Some(until)) {
        Ok(i) => Woke::Word(i),
        Err(rustix::io::Errno::NOSYS) => {
            let (word, expected) = words[0];
            let slice = until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(1));
            wait(word, expected, slice);
            Woke::Unknown
        }
        // EAGAIN (a value changed), ETIMEDOUT, EINTR: re-check.
        Err(_) => Woke::Unknown,
    }
}

/// One `futex_waitv(2)` call on the `controls` words (each while it holds
/// its expected value) and on the 32-bit words at the raw addresses `words`
/// (each while it holds 1), at most until `until` (for ever if `None`).
/// Returns the index of the woken word (`controls` first, then `words`) or
/// the kernel's error:
/// `EAGAIN` (a word did not hold its value), `EFAULT` (an address is no
/// longer mapped), `ETIMEDOUT`, `EINTR`, `ENOSYS` (no `futex_waitv`, before
/// Linux 5.16, or the fallback forced by `SVSHM_NO_FUTEX_WAITV=1`).
///
/// The addresses are only handed to the kernel, never dereferenced here: the
/// memory behind them may be unmapped at any time (the kernel then says
/// `EFAULT`). At most [`WAITV_MAX`] words in all.
#[cfg(not(svshm_loom))]
pub(crate) fn wait_raw(
    controls: &[(&AtomicU32, u32)],
    words: &[usize],
    until: Option<Instant>,
) -> Result<usize, rustix::io::Errno> {
    use rustix::thread::futex;
    let n = controls.len() + words.len();
    assert!(
        n <= WAITV_MAX,
        "futex_waitv takes at most {WAITV_MAX} words"
    );
    if no_waitv() {
        return Err(rustix::io::Errno::NOSYS);
    }
    let mut v = [futex::Wait::new(); WAITV_MAX];
    for (w, (word, expected)) in v.iter_mut().zip(controls) {
        w.val = u64::from(*expected);
        w.uaddr = futex::WaitPtr::new(word.as_ptr().cast());
        w.flags = futex::WaitFlags::SIZE_U32;
    }
    for (w, &addr) in v[controls.len()..].iter_mut().zip(words) {
        w.val = 1;
        w.uaddr = futex::WaitPtr::new(addr as *mut core::ffi::c_void);
        w.flags = futex::WaitFlags::SIZE_U32;
    }
    let abs = until.map(|u| monotonic_after(u.saturating_duration_since(Instant::now())));
    let r = futex::waitv(
        &v[..n],
        futex::WaitvFlags::empty(),
        abs.as_ref(),
        rustix::time::ClockId::Monotonic,
    );
    if r == Err(rustix::io::Errno::NOSYS) {
        NO_WAITV.store(true, core::sync::atomic::Ordering::Relaxed);
    }
    r
}

/// `CLOCK_MONOTONIC` now plus `d`, as a timespec.
#[cfg(not(svshm_loom))]
fn monotonic_after(d: Duration) -> rustix::thread::futex::Timespec {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let mut sec = now
        .tv_sec
        .saturating_add(d.as_secs().min(i64::MAX as u64 / 2) as i64);
    let mut nsec = now.tv_nsec + i64::from(d.subsec_nanos());
    if nsec >= 1_000_000_000 {
        nsec -= 1_000_000_000;
        sec = sec.saturating_add(1);
    }
    rustix::thread::futex::Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}
