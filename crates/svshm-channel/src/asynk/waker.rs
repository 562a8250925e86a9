//! The process-wide waker thread: one `futex_waitv(2)` over the wait words
//! of every endpoint whose async operation is pending, waking their
//! [`Waker`]s. One thread per group of [`GROUP`] registrations (126 words,
//! the group's control word and the peer watcher's exit count fill one
//! `futex_waitv` call), started on first use; a group's thread stays,
//! asleep at no cost, once it is empty.
//!
//! The thread never dereferences a registered word: the endpoint may be
//! dropped and its segment detached at any time, so its address is only
//! handed to the kernel, which answers `EFAULT` for one no longer mapped.

use crate::futex::{self, WAITV_MAX};
use crate::ring::POLL_SLICE;
use crate::sync::{AtomicU32, Ordering};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

/// Registrations one thread waits on: a `futex_waitv` call's words less the
/// control word and the exit count.
pub(crate) const GROUP: usize = WAITV_MAX - 2;

/// How often every registration is woken, whatever its peer's flag says, so
/// that its poll probes the peer in full: the exit flag does not announce a
/// peer that called exec(2) (alive, but no longer mapping the segment).
const FULL_PROBE_EVERY: Duration = Duration::from_secs(1);

/// Stack of a waker thread: it makes system calls and wakes wakers.
const STACK: usize = 128 << 10;

/// Where a registration lives: its group and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    group: usize,
    id: u64,
}

struct Entry {
    id: u64,
    /// The wait word's address: handed to the kernel only.
    addr: usize,
    waker: Waker,
    /// The watcher thread's exit flag for the endpoint's peer, if it has one.
    flag: Option<Arc<AtomicBool>>,
}

struct Group {
    /// Stored 1 (and woken) whenever the entries change; the thread stores 0
    /// under the lock as it takes its snapshot and waits expecting 0, so no
    /// change between snapshot and sleep goes unseen.
    control: &'static AtomicU32,
    entries: Vec<Entry>,
}

struct Registry {
    next_id: u64,
    groups: Vec<Group>,
    /// The pid of the process whose threads serve `groups`: a child forked
    /// after they started has the registry but not the threads.
    owner: u32,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next_id: 1,
    groups: Vec::new(),
    owner: 0,
});

fn lock() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tells a group's thread that its entries changed.
fn poke(control: &AtomicU32) {
    control.store(1, Ordering::Relaxed);
    futex::wake(control);
}

/// Registers `waker` to be woken when the word at `addr` is woken (or no
/// longer holds 1), when `flag` is set, or at the latest after a poll slice
/// without a flag (a second with one: see [`FULL_PROBE_EVERY`]). `None` if no waker thread could be
/// started: the caller must then wake itself (and poll again soon).
pub(crate) fn register(addr: usize, waker: &Waker, flag: Option<&Arc<AtomicBool>>) -> Option<Key> {
    let mut reg = lock();
    let pid = std::process::id();
    if reg.owner != pid {
        // First use, or a forked child: start afresh (the parent's entries
        // belong to its threads, which do not run here).
        reg.groups.clear();
        reg.owner = pid;
    }
    let group = match reg.groups.iter().position(|g| g.entries.len() < GROUP) {
        Some(g) => g,
        None => {
            let control: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
            let g = reg.groups.len();
            std::thread::Builder::new()
                .name(format!("svshm-async-{g}"))
                .stack_size(STACK)
                .spawn(move || run(g, control))
                .ok()?;
            reg.groups.push(Group {
                control,
                entries: Vec::with_capacity(GROUP),
            });
            g
        }
    };
    let id = reg.next_id;
    reg.next_id += 1;
    let grp = &mut reg.groups[group];
    grp.entries.push(Entry {
        id,
        addr,
        waker: waker.clone(),
        flag: flag.cloned(),
    });
    poke(grp.control);
    Some(Key { group, id })
}

/// Updates the waker of a registration that is still there (the thread has
/// not woken it yet): `true`, and nothing for the thread to re-read. `false`
/// if it is gone: register anew.
pub(crate) fn refresh(key: Key, waker: &Waker) -> bool {
    let mut reg = lock();
    if reg.owner != std::process::id() {
        return false;
    }
    let Some(e) = reg
        .groups
        .get_mut(key.group)
        .and_then(|g| g.entries.iter_mut().find(|e| e.id == key.id))
    else {
        return false;
    };
    if !e.waker.will_wake(waker) {
        e.waker = waker.clone();
    }
    true
}

/// Removes a registration, if the thread has not woken (and removed) it yet,
/// and tells the thread, which stops waiting on its word.
pub(crate) fn deregister(key: Key) {
    let mut reg = lock();
    if reg.owner != std::process::id() {
        return;
    }
    let Some(grp) = reg.groups.get_mut(key.group) else {
        return;
    };
    if let Some(i) = grp.entries.iter().position(|e| e.id == key.id) {
        grp.entries.swap_remove(i);
        poke(grp.control);
    }
}

/// Registrations there now, for tests.
#[cfg(test)]
pub(crate) fn registered() -> usize {
    lock().groups.iter().map(|g| g.entries.len()).sum()
}

/// Removes the entries `take` picks from group `g` and returns their wakers.
fn take(g: usize, mut pick: impl FnMut(&Entry) -> bool) -> Vec<Waker> {
    let mut reg = lock();
    let grp = &mut reg.groups[g];
    let mut woken = Vec::new();
    grp.entries.retain_mut(|e| {
        if pick(e) {
            woken.push(e.waker.clone());
            false
        } else {
            true
        }
    });
    woken
}

fn wake_all(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

/// A group's thread: snapshot the words, sleep on them all, the control
/// word and the exit count, wake what woke. Registrations whose peer has an
/// exit flag need no timeout (the exit count wakes the thread when a flag
/// rises); the others are woken every [`POLL_SLICE`] for their probe.
fn run(g: usize, control: &'static AtomicU32) {
    let exits = svshm::process::ExitNotice::exit_count();
    let mut next_slice = Instant::now() + POLL_SLICE;
    let mut next_full = Instant::now() + FULL_PROBE_EVERY;
    let mut ids: Vec<u64> = Vec::with_capacity(GROUP);
    let mut addrs: Vec<usize> = Vec::with_capacity(GROUP);
    loop {
        // Wake the registrations whose peer's exit flag is set; snapshot the
        // rest. The control word is cleared under the lock: any change after
        // this snapshot stores 1 and makes the wait below return. The exit
        // count is loaded before the flags are: a flag raised after it moves
        // the count, which makes the wait return too.
        let mut dead = Vec::new();
        let mut unflagged = false;
        // SYNC: pairs with the peer watcher's Release increment after it
        // raised flags: those flags are visible below.
        let seen_exits = exits.load(Ordering::Acquire);
        {
            let mut reg = lock();
            control.store(0, Ordering::Relaxed);
            let grp = &mut reg.groups[g];
            ids.clear();
            addrs.clear();
            grp.entries.retain_mut(|e| {
                // SYNC: pairs with the watcher thread's Release store when
                // the peer exits; a waker that polls then sees it too.
                if e.flag.as_ref().is_some_and(|f| f.load(Ordering::Acquire)) {
                    dead.push(e.waker.clone());
                    return false;
                }
                unflagged |= e.flag.is_none();
                ids.push(e.id);
                addrs.push(e.addr);
                true
            });
        }
        wake_all(dead);
        let until = if ids.is_empty() {
            None
        } else if unflagged {
            Some(next_slice.min(next_full))
        } else {
            Some(next_full)
        };
        let r = futex::wait_raw(&[(control, 0), (exits, seen_exits)], &addrs, until);
        let now = Instant::now();
        match r {
            Ok(0 | 1) => {}
            Ok(i) => {
                let id = ids[i - 2];
                wake_all(take(g, |e| e.id == id));
            }
            Err(rustix::io::Errno::TIMEDOUT) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN)
                if control.load(Ordering::Relaxed) != 0
                    || exits.load(Ordering::Relaxed) != seen_exits =>
            {
                // The entries changed, or a peer exited: take a new
                // snapshot (a word that is not 1 any more shows again in
                // the next wait).
            }
            Err(rustix::io::Errno::NOSYS) => {
                // No futex_waitv (before Linux 5.16): wake everything every
                // millisecond or on a change; each poll re-checks.
                futex::wait(control, 0, Duration::from_millis(1));
                wake_all(take(g, |_| true));
            }
            Err(_) => {
                // EAGAIN (some word is no longer 1, we cannot tell which),
                // EFAULT (some word is no longer mapped), or anything else:
                // wake them all; each polls again and registers anew if it
                // must still wait.
                let snap = ids.clone();
                wake_all(take(g, |e| snap.contains(&e.id)));
            }
        }
        if ids.is_empty() {
            // Slept with nothing registered: the schedules start afresh, so
            // a new registration is not woken at once for a stale slice.
            next_slice = now + POLL_SLICE;
            next_full = now + FULL_PROBE_EVERY;
            continue;
        }
        let slice = now >= next_slice;
        if slice {
            next_slice = now + POLL_SLICE;
        }
        let full = now >= next_full;
        if full {
            next_full = now + FULL_PROBE_EVERY;
        }
        if slice || full {
            // Peers without an exit flag are noticed dead only by a probe in
            // the poll: wake those every slice; every registration once in a
            // while (a peer that called exec(2) raises no flag).
            wake_all(take(g, |e| full || e.flag.is_none()));
        }
    }
}
