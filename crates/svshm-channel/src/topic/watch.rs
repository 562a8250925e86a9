//! Subscribers' liveness: who holds each slot, and freeing the slot of one
//! that died (so that a backpressure publisher never waits for it).

use super::layout::{MAX_SUBSCRIBERS, Shm, SubSlot};
use crate::header;
use crate::sync::Ordering;
use svshm::process::{ExitNotice, ProcessId, Status, Watch};

/// A claim left half-way (CLAIMING) for this long is taken for abandoned.
const CLAIM_LIMIT_MS: u64 = 1000;

/// `CLOCK_MONOTONIC` in milliseconds (system-wide, so comparable between
/// processes).
pub(crate) fn monotonic_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64)
        .wrapping_mul(1000)
        .wrapping_add(t.tv_nsec as u64 / 1_000_000)
}

struct SubWatch {
    id: ProcessId,
    watch: Watch,
    notice: Option<ExitNotice>,
}

impl SubWatch {
    fn dead(&self) -> bool {
        match &self.notice {
            Some(n) => n.has_exited(),
            None => self.watch.status() == Status::Dead,
        }
    }
}

/// The identity recorded in a slot that is ATTACHED.
pub(crate) fn holder(slot: &SubSlot) -> Option<ProcessId> {
    // SYNC: pairs with the subscriber's Release CAS to ATTACHED, made after
    // it stored its pid and start time.
    if slot.state.load(Ordering::Acquire) != header::SLOT_ATTACHED {
        return None;
    }
    Some(ProcessId {
        pid: slot.pid.load(Ordering::Relaxed) as i32,
        start_time: slot.start_time.load(Ordering::Relaxed),
    })
}

/// Our pid namespace: the inode of `/proc/self/ns/pid` (0 if unreadable).
pub(crate) fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    static NS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NS.get_or_init(|| std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino()))
}

/// Whether the subscriber recorded in `slot` as `id` is provably gone: it
/// recorded our pid namespace, and no process of that pid with that start
/// time runs in it. A subscriber of another (or an unknown) pid namespace is
/// never judged by its pid, which names some other process here: it counts
/// as alive until it leaves.
pub(crate) fn provably_dead(slot: &SubSlot, id: ProcessId) -> bool {
    let ns = slot.pid_ns.load(Ordering::Relaxed);
    if ns == 0 || ns != pid_namespace() {
        return false;
    }
    if id.pid <= 0 {
        return true;
    }
    match ProcessId::of(id.pid) {
        Some(now) => now.start_time != id.start_time,
        None => svshm::process::pid_exists(id.pid) == Some(false),
    }
}

/// Whether the slot's holder recorded our pid namespace.
fn same_ns(slot: &SubSlot) -> bool {
    let ns = slot.pid_ns.load(Ordering::Relaxed);
    ns != 0 && ns == pid_namespace()
}

/// The publisher's watches over the subscriber slots.
#[derive(Default)]
pub(crate) struct Watches {
    slots: Vec<Option<SubWatch>>,
    /// Reaps so far (paces the maps check).
    reaps: u32,
}

/// Every how many reaps the live subscribers' `/proc/PID/maps` are read, to
/// find one that called exec(2): alive, but no longer mapping the segment.
const MAPS_EVERY: u32 = 25;

impl Watches {
    /// Frees the slots of subscribers that died (and claims abandoned
    /// half-way); returns how many live subscribers hold a slot. Cheap while
    /// nothing changes: one atomic load per slot and one per exit flag.
    pub(crate) fn reap(&mut self, shm: &Shm, n: usize) -> usize {
        if self.slots.len() < n {
            self.slots.resize_with(n.min(MAX_SUBSCRIBERS), || None);
        }
        let mut live = 0;
        self.reaps = self.reaps.wrapping_add(1);
        let maps = self.reaps % MAPS_EVERY == 0;
        for i in 0..n {
            let slot = shm.slot(i);
            // SYNC: pairs with the subscriber's SeqCst CAS to ATTACHED and
            // Release stores when it leaves.
            let state = slot.state.load(Ordering::Acquire);
            if state == header::SLOT_CLAIMING {
                let at = slot.claimed_at.load(Ordering::Relaxed);
                if monotonic_ms().saturating_sub(at) > CLAIM_LIMIT_MS {
                    // SYNC: the CAS frees an abandoned claim once; a
                    // claimer's later CAS to ATTACHED fails on it.
                    let _ = slot.state.compare_exchange(
                        header::SLOT_CLAIMING,
                        header::SLOT_EMPTY,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                }
                continue;
            }
            let Some(id) = holder(slot) else {
                self.slots[i] = None;
                continue;
            };
            let cached = self.slots[i].as_ref().is_some_and(|w| w.id == id);
            if !cached && !same_ns(slot) {
                // Not ours to judge (see `provably_dead`).
                live += 1;
                continue;
            }
            if !cached {
                self.slots[i] = if provably_dead(slot, id) {
                    None
                } else {
                    let watch = Watch::new(id);
                    let notice = watch.exit_notice();
                    Some(SubWatch { id, watch, notice })
                };
                if self.slots[i].is_none() {
                    free(slot, id);
                    continue;
                }
            }
            let execed = maps
                && svshm::process::has_attached(id.pid, shm.att.id()) == Some(false)
                && self.slots[i].as_ref().is_some_and(|w| !w.dead());
            if execed || self.slots[i].as_ref().is_some_and(SubWatch::dead) {
                self.slots[i] = None;
                free(slot, id);
                continue;
            }
            live += 1;
        }
        live
    }
}

/// Frees `slot` if it still holds `id` (a subscriber found dead).
pub(crate) fn free(slot: &SubSlot, id: ProcessId) {
    if slot.pid.load(Ordering::Relaxed) as i32 != id.pid
        || slot.start_time.load(Ordering::Relaxed) != id.start_time
    {
        return;
    }
    // SYNC: the CAS makes the slot free once: a new claimer's CAS from EMPTY
    // comes after it (AcqRel), never between.
    let _ = slot.state.compare_exchange(
        header::SLOT_ATTACHED,
        header::SLOT_EMPTY,
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
}
