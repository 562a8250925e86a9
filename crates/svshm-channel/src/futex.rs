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
use std::time::Duration;

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
