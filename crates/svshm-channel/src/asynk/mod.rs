//! Async waiting without a thread per channel: the poll protocol every
//! endpoint's `poll_*` method follows, and the process-wide waker thread it
//! registers with ([`waker`]).
//!
//! A poll first tries the operation without waiting. If it would wait, it
//! spins a little (per the endpoint's [`Wait`]), then announces itself as
//! the blocking calls do — stores 1 in its side's wait word, issues a SeqCst
//! fence, re-checks — and only if still not ready registers the word's
//! address and the task's `Waker` with the waker thread and returns
//! `Pending`. The peer, after publishing, fences and finds the word set: it
//! clears it and wakes the futex, which ends the waker thread's
//! `futex_waitv(2)` at that word's index. See docs/ARCHITECTURE.md, "Async:
//! one waker thread".

pub(crate) mod waker;

use crate::rendezvous::Link;
use crate::ring::Wait;
use crate::select::Waitable;
use crate::sync::{Ordering, fence, spin_hint};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The most a poll spins before it registers (or, under [`Wait::Spin`],
/// yields to the executor): a poll that spins holds its executor thread, so
/// it spins at most this long however long the endpoint's adaptive budget is.
pub(crate) const ASYNC_SPIN_CAP: Duration = Duration::from_micros(20);

/// Spin iterations between two looks at the clock.
const SPINS_PER_CLOCK: u32 = 64;

/// How often a poll that must wait probes a peer with an exit flag in full
/// (the flag does not announce a peer that called exec(2)).
const FULL_PROBE_EVERY: Duration = Duration::from_secs(1);

/// Attempts of the operation per poll before it yields: a bound for the
/// case where the readiness check says "ready" but the operation would
/// still wait (an event that only a later call sorts out).
const ATTEMPTS: u32 = 3;

/// An endpoint's registration with the waker thread, kept in the endpoint so
/// that `poll_*` methods need no future object. Dropping it deregisters.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    key: Option<waker::Key>,
    /// When the peer was last probed in full by a poll that had to wait.
    last_full_probe: Option<Instant>,
    /// A stream over the receiver (the `futures` feature) has ended.
    #[cfg(feature = "futures")]
    pub(crate) ended: bool,
}

impl Waiter {
    /// Stops waiting: removes the registration, if any, synchronously.
    pub(crate) fn cancel(&mut self) {
        if let Some(k) = self.key.take() {
            waker::deregister(k);
        }
    }

    /// Whether it holds a registration (it may have been woken since).
    fn registered(&self) -> bool {
        self.key.is_some()
    }

    fn register(&mut self, cx: &Context<'_>, link: &Link, addr: usize) {
        if let Some(k) = self.key {
            if waker::refresh(k, cx.waker()) {
                return;
            }
        }
        self.key = waker::register(addr, cx.waker(), link.exit_flag());
        if self.key.is_none() {
            // No waker thread: poll again at once (costly, but never stuck).
            cx.waker().wake_by_ref();
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// An endpoint that can wait asynchronously.
pub(crate) trait AsyncEnd: Waitable {
    /// Its registration, its link, and the address of its wait word.
    fn parts(&mut self) -> (&mut Waiter, &Link, usize);
}

/// The poll protocol: `attempt` tries the operation without waiting and
/// returns `Err(need)` if it would wait, where `need` is what the readiness
/// check is to ask (bytes of room for a sender, 0 for a receiver).
pub(crate) fn poll_op<E: AsyncEnd, R>(
    end: &mut E,
    cx: &mut Context<'_>,
    mut attempt: impl FnMut(&mut E) -> Result<R, usize>,
) -> Poll<R> {
    let mut spun = false;
    for _ in 0..ATTEMPTS {
        let need = match attempt(end) {
            Ok(r) => {
                finish(end);
                return Poll::Ready(r);
            }
            Err(need) => need,
        };
        let (wait, spin) = {
            let (_, link, _) = end.parts();
            (link.wait, link.spin)
        };
        if !spun && wait != Wait::Block {
            spun = true;
            let budget = match wait {
                Wait::Adaptive => spin.min(ASYNC_SPIN_CAP),
                _ => ASYNC_SPIN_CAP,
            };
            if spin_until_ready(end, need, budget) {
                continue;
            }
        }
        if wait == Wait::Spin {
            // Spin never sleeps: yield to the executor and come back.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // Announce, re-check, register.
        end.wait_word().store(1, Ordering::Relaxed);
        // SYNC: pairs with the fence in the other side's `wake_if_waiting`:
        // either it sees our flag and wakes the word (ending the waker
        // thread's wait at its index, or making it fail with EAGAIN), or we
        // see what it published below.
        fence(Ordering::SeqCst);
        if end.is_ready(need) {
            if !end.parts().0.registered() {
                // Nobody sleeps on it: spare the peer a wake-up call.
                end.wait_word().store(0, Ordering::Relaxed);
            }
            continue;
        }
        let (waiter, link, addr) = end.parts();
        if link.has_exit_flag() {
            let now = Instant::now();
            let last = *waiter.last_full_probe.get_or_insert(now);
            if now.duration_since(last) >= FULL_PROBE_EVERY {
                waiter.last_full_probe = Some(now);
                if link.probe_gone_latched() {
                    continue;
                }
            }
        }
        waiter.register(cx, link, addr);
        return Poll::Pending;
    }
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// After the operation proceeded: drop a registration still held, then
/// clear the word it may have left set (so the peer does not make a wake
/// system call for nobody). In that order: the deregistration pokes the
/// waker thread first, so a thread that then finds the word no longer 1
/// takes a new snapshot instead of waking every registration.
fn finish<E: AsyncEnd>(end: &mut E) {
    let registered = end.parts().0.registered();
    if registered {
        end.parts().0.cancel();
        end.wait_word().store(0, Ordering::Relaxed);
    }
}

/// Spins up to `budget` until the endpoint looks ready.
fn spin_until_ready<E: AsyncEnd>(end: &E, need: usize, budget: Duration) -> bool {
    if budget.is_zero() {
        return false;
    }
    let start = Instant::now();
    let mut i = 0u32;
    loop {
        if end.is_ready(need) {
            return true;
        }
        spin_hint();
        i = i.wrapping_add(1);
        if i % SPINS_PER_CLOCK == 0 && start.elapsed() >= budget {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Endpoint, Options, Receiver, Sender, Wait};
    use std::future::Future;
    use std::task::{Context, Waker};
    use std::time::Duration;

    /// The registry is process-wide: these tests count on it, one at a time.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    struct Count(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Waits up to 2 s for `count` to be woken once.
    fn woken(count: &Count) -> bool {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            if count.0.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// A word no longer mapped (the kernel says EFAULT) and a word that does
    /// not hold 1 (EAGAIN) both wake their registration instead of making
    /// the thread spin or sleep for ever; the thread goes on serving others.
    #[test]
    fn unmapped_and_changed_words_wake_their_waiter() {
        let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // Never mapped: page 0 of the address space.
        let bad = std::sync::Arc::new(Count(0.into()));
        let k = super::waker::register(64, &Waker::from(bad.clone()), None).unwrap();
        assert!(woken(&bad), "EFAULT did not wake");
        super::waker::deregister(k);
        // Holds 0, not 1.
        let zero: &'static crate::sync::AtomicU32 = Box::leak(Box::new(0.into()));
        let changed = std::sync::Arc::new(Count(0.into()));
        let addr = zero.as_ptr() as usize;
        let k = super::waker::register(addr, &Waker::from(changed.clone()), None).unwrap();
        assert!(woken(&changed), "EAGAIN did not wake");
        super::waker::deregister(k);
        // A word that holds 1 and is woken: only a futex wake ends it.
        let one: &'static crate::sync::AtomicU32 = Box::leak(Box::new(1.into()));
        let later = std::sync::Arc::new(Count(0.into()));
        let addr = one.as_ptr() as usize;
        let k = super::waker::register(addr, &Waker::from(later.clone()), None).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        one.store(0, crate::sync::Ordering::SeqCst);
        crate::futex::wake(one);
        assert!(woken(&later), "a futex wake did not wake");
        super::waker::deregister(k);
    }

    /// Registrations made and dropped in a loop leave none behind, whether
    /// dropped with the future, replaced by the next poll, or removed with
    /// the endpoint.
    #[test]
    fn churn_leaves_no_registration() {
        let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!("asynk-unit-churn-{}", std::process::id());
        let o = Options::new()
            .capacity(4096)
            .wait(Wait::Block)
            .timeout(Some(Duration::from_secs(20)));
        let (n2, o2) = (name.clone(), o.clone());
        let h = std::thread::spawn(move || Sender::connect(&Endpoint::name(n2), &o2).unwrap());
        let mut rx = Receiver::connect(&Endpoint::name(name), &o).unwrap();
        let tx = h.join().unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1000 {
            let mut f = Box::pin(rx.recv_async());
            assert!(f.as_mut().poll(&mut cx).is_pending());
            assert!(f.as_mut().poll(&mut cx).is_pending());
            // (At most: the waker thread may have woken it meanwhile.)
            assert!(super::waker::registered() <= 1);
        }
        assert_eq!(super::waker::registered(), 0);
        for _ in 0..10 {
            assert!(rx.poll_recv(&mut cx).is_pending());
        }
        assert!(super::waker::registered() <= 1);
        drop(rx);
        assert_eq!(super::waker::registered(), 0);
        drop(tx);
    }
}
