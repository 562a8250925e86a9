//! How a side of the ring waits: the spin budget, the futex sleep, and the
//! wake-up that can never be lost (see the protocol notes in the parent).

use super::{Liveness, RingError};
use crate::futex;
use crate::sync::{AtomicU32, Ordering, fence, spin_hint};
use std::time::{Duration, Instant};

/// How a side waits when the ring is full (producer) or empty (consumer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wait {
    /// Spin until there is work: lowest latency, burns a core while waiting.
    Spin,
    /// Spin for a while ([`DEFAULT_SPIN`] unless the channel's options set
    /// another budget), then sleep on a shared futex. The default.
    #[default]
    Adaptive,
    /// Sleep on the futex at once: least CPU, one wake syscall per hand-off
    /// while the other side sleeps.
    Block,
}

/// How long [`Wait::Adaptive`] spins before it sleeps, unless set otherwise:
/// long enough that a peer answering within it costs no system call on
/// either side, short enough that an idle end stops burning its core at once.
/// Measured in time, not iterations: the CPU's spin-wait hint costs from a few
/// to over a hundred cycles depending on the model.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);
/// Spin iterations between two looks at the clock (deadline, spin budget,
/// liveness probe): a clock read costs about as much as 2-3 spins.
const SPINS_PER_CLOCK: u32 = 128;
/// Longest single sleep: bounds how late a dead or closed peer is noticed.
pub(crate) const POLL_SLICE: Duration = Duration::from_millis(20);

/// The waiting policy of one operation.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    /// Spin, adaptive or block.
    pub wait: Wait,
    /// Give up with [`RingError::Timeout`] at this instant.
    pub deadline: Option<Instant>,
    /// How long [`Wait::Adaptive`] spins before sleeping.
    pub spin: Duration,
}

impl WaitPolicy {
    /// Wait forever in `wait` mode (adaptive: spinning [`DEFAULT_SPIN`]).
    /// (Endpoints take their policy from their options; this is for the
    /// ring's own tests and models.)
    #[cfg(any(test, feature = "internals"))]
    pub fn forever(wait: Wait) -> WaitPolicy {
        WaitPolicy {
            wait,
            deadline: None,
            spin: DEFAULT_SPIN,
        }
    }
    /// Do not wait: the operation times out at once.
    pub fn none() -> WaitPolicy {
        WaitPolicy {
            wait: Wait::Block,
            deadline: Some(Instant::now()),
            spin: Duration::ZERO,
        }
    }
}

/// Waits on `word` until `ready()` says so. `ready` returns `Ok(true)` when the
/// caller can proceed, or an error (closed, corrupt). `alive` is probed at most
/// every [`POLL_SLICE`] and when the deadline nears.
pub(crate) fn block_on(
    word: &AtomicU32,
    policy: WaitPolicy,
    mut ready: impl FnMut() -> Result<bool, RingError>,
    alive: impl FnMut() -> Liveness,
) -> Result<(), RingError> {
    block_on_quick(word, policy, &mut (), |_| true, |_| ready(), alive)
}

/// [`block_on`] over a `state` both checks look at, with a cheap first
/// look: while spinning, `quick(state)` (a load or two, inlined into the
/// loop) is asked on every round, and `ready(state)` only when `quick` says
/// there may be work, or once every `SPINS_PER_CLOCK` rounds (so that a
/// close or a corrupt cursor, which only `ready` sees, is still noticed).
/// A false `quick` must only mean "nothing new yet".
///
/// The first `SPINS_PER_CLOCK` rounds read no clock at all: in a
/// request/response exchange the answer usually comes within them. On the
/// 64-byte spin ping-pong, a loop that called the full check on each round
/// and read the clock twice before its first look cost about 100 ns more
/// per round trip.
#[inline]
pub(crate) fn block_on_quick<S: ?Sized>(
    word: &AtomicU32,
    policy: WaitPolicy,
    state: &mut S,
    quick: impl Fn(&S) -> bool,
    mut ready: impl FnMut(&mut S) -> Result<bool, RingError>,
    mut alive: impl FnMut() -> Liveness,
) -> Result<(), RingError> {
    // How long to spin before each sleep: `None` for ever.
    let spin_for = match policy.wait {
        Wait::Spin => None,
        Wait::Adaptive => Some(policy.spin),
        Wait::Block => Some(Duration::ZERO),
    };
    if policy.deadline.is_some_and(|d| Instant::now() >= d) {
        // Nothing to wait for (a `try_*` call, or an async poll's attempt),
        // whatever the wait mode — spinning towards a deadline that has
        // passed only burns time: one look, without announcing on the word.
        // Nobody sleeps, so no wake-up is needed; and an async
        // registration's word keeps its 1.
        return if ready(state)? {
            Ok(())
        } else {
            Err(RingError::Timeout)
        };
    }
    // The first spins need no clock: the peer is usually about to answer.
    if spin_for != Some(Duration::ZERO) {
        for _ in 0..SPINS_PER_CLOCK {
            if quick(state) && ready(state)? {
                return Ok(());
            }
            spin_hint();
        }
    }
    let mut last_probe = Instant::now();
    loop {
        // Spin phase.
        if spin_for != Some(Duration::ZERO) {
            let start = Instant::now();
            let mut i = 0u32;
            loop {
                if quick(state) && ready(state)? {
                    return Ok(());
                }
                spin_hint();
                i = i.wrapping_add(1);
                if i % SPINS_PER_CLOCK != 0 {
                    continue;
                }
                if ready(state)? {
                    return Ok(());
                }
                let now = Instant::now();
                if policy.deadline.is_some_and(|d| now >= d) {
                    return Err(RingError::Timeout);
                }
                if now.duration_since(last_probe) >= POLL_SLICE {
                    last_probe = now;
                    if alive() == Liveness::Dead {
                        return if ready(state)? {
                            Ok(())
                        } else {
                            Err(RingError::PeerDied)
                        };
                    }
                }
                if spin_for.is_some_and(|s| now.duration_since(start) >= s) {
                    break;
                }
            }
        }
        // Sleep phase: announce, re-check, sleep.
        word.store(1, Ordering::Relaxed);
        // SYNC: pairs with the fence in `wake_if_waiting` on the other side:
        // either it sees our flag, or we see its published cursor below.
        fence(Ordering::SeqCst);
        if ready(state)? {
            word.store(0, Ordering::Relaxed);
            return Ok(());
        }
        let now = Instant::now();
        let slice = match policy.deadline {
            Some(d) if now >= d => {
                word.store(0, Ordering::Relaxed);
                return Err(RingError::Timeout);
            }
            Some(d) => (d - now).min(POLL_SLICE),
            None => POLL_SLICE,
        };
        futex::wait(word, 1, slice);
        if last_probe.elapsed() >= POLL_SLICE || policy.deadline.is_some() {
            last_probe = Instant::now();
            if alive() == Liveness::Dead {
                word.store(0, Ordering::Relaxed);
                return if ready(state)? {
                    Ok(())
                } else {
                    Err(RingError::PeerDied)
                };
            }
        }
    }
}

/// Wakes the other side if its wait word says it sleeps.
#[inline]
pub(crate) fn wake_if_waiting(word: &AtomicU32) {
    // SYNC: pairs with the fence in `block_on` on the other side (see there).
    fence(Ordering::SeqCst);
    if word.load(Ordering::Relaxed) != 0 {
        word.store(0, Ordering::Relaxed);
        futex::wake(word);
    }
}
