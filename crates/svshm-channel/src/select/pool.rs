//! Waiting on more words than one `futex_waitv(2)` takes: the words past the
//! first group go to helper threads from a process-wide pool, kept between
//! calls so that a sleep costs a hand-off, not a thread start.
//!
//! A sleep gets a fresh *bell*, a word every participant also waits on
//! (expecting 0). Whoever returns first — the caller or a helper, woken by
//! one of its words, the timeout or a signal — rings it (stores 1 and wakes
//! it), which ends every other participant's wait. A helper that picks up
//! its job late finds the bell rung and returns at once: the kernel compares
//! every word before sleeping, so a stale job never sleeps on words whose
//! endpoints may be gone. Helpers never read the words themselves; they
//! hand their addresses to the kernel, which checks them.

use crate::futex::{self, WAITV_MAX};
use crate::sync::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Stack of a helper thread: it makes one system call at a time.
const HELPER_STACK: usize = 64 << 10;

/// One sleep's share of a helper: the words (addresses) it waits on, and the
/// sleep's bell.
struct Job {
    words: Vec<usize>,
    bell: Arc<AtomicU32>,
    until: Instant,
}

/// A helper thread's mailbox.
struct Helper {
    job: Mutex<Option<Job>>,
    /// Bumped for each job; the thread sleeps on it between jobs.
    seq: AtomicU32,
}

/// The idle helpers, and the process that started them (a child forked
/// after they started has the list but not the threads).
static IDLE: Mutex<(u32, Vec<Arc<Helper>>)> = Mutex::new((0, Vec::new()));

fn helper_loop(h: &Helper) {
    let mut seen = 0;
    loop {
        // SYNC: pairs with the Release `fetch_add` in `sleep_on`, which
        // follows the job's store into the mailbox (itself under a mutex).
        let s = h.seq.load(Ordering::Acquire);
        if s == seen {
            futex::wait(&h.seq, s, Duration::from_secs(3600));
            continue;
        }
        seen = s;
        let job = h.job.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(job) = job {
            run(&job);
        }
    }
}

/// Waits on a job's words and its bell; rings the bell unless the bell
/// itself ended the wait.
fn run(job: &Job) {
    match futex::wait_raw(&[(&job.bell, 0)], &job.words, Some(job.until)) {
        Ok(0) => {}
        Err(rustix::io::Errno::NOSYS) => {
            // No futex_waitv: end the caller's sleep within a millisecond.
            std::thread::sleep(Duration::from_millis(1));
            ring(&job.bell);
        }
        _ => ring(&job.bell),
    }
}

fn ring(bell: &AtomicU32) {
    // SYNC: the bell carries no data; the kernel compares it in each
    // participant's futex_waitv, which orders it for them.
    bell.store(1, Ordering::Release);
    futex::wake(bell);
}

/// An idle helper, or a new one. `None` if no thread can be started.
fn take_helper() -> Option<Arc<Helper>> {
    {
        let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
        if idle.0 != std::process::id() {
            // Forked: the helpers listed run in the parent only.
            *idle = (std::process::id(), Vec::new());
        }
        if let Some(h) = idle.1.pop() {
            return Some(h);
        }
    }
    let h = Arc::new(Helper {
        job: Mutex::new(None),
        seq: AtomicU32::new(0),
    });
    let h2 = Arc::clone(&h);
    std::thread::Builder::new()
        .name("svshm-select".into())
        .stack_size(HELPER_STACK)
        .spawn(move || helper_loop(&h2))
        .ok()?;
    Some(h)
}

fn give_back(helpers: Vec<Arc<Helper>>) {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    if idle.0 == std::process::id() {
        idle.1.extend(helpers);
    }
}

/// Sleeps until one of `words` is woken or no longer 1, or `until`.
pub(super) fn sleep_on(words: &[&AtomicU32], until: Instant) {
    if words.len() <= WAITV_MAX {
        let v: Vec<(&AtomicU32, u32)> = words.iter().map(|w| (*w, 1)).collect();
        futex::wait_many(&v, until);
        return;
    }
    let per = WAITV_MAX - 1;
    let bell = Arc::new(AtomicU32::new(0));
    let mut helpers = Vec::new();
    let mut groups = words.chunks(per);
    let first = groups.next().unwrap_or_default();
    let mut short = false;
    for g in groups {
        let Some(h) = take_helper() else {
            short = true;
            break;
        };
        *h.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(Job {
            words: g.iter().map(|w| *w as *const AtomicU32 as usize).collect(),
            bell: Arc::clone(&bell),
            until,
        });
        // SYNC: pairs with the Acquire load in `helper_loop`.
        h.seq.fetch_add(1, Ordering::Release);
        futex::wake(&h.seq);
        helpers.push(h);
    }
    // Without enough helpers, do not sleep past what the others might bring.
    let until = if short {
        until.min(Instant::now() + Duration::from_millis(1))
    } else {
        until
    };
    let mut v: Vec<(&AtomicU32, u32)> = Vec::with_capacity(first.len() + 1);
    v.push((&bell, 0));
    v.extend(first.iter().map(|w| (*w, 1)));
    futex::wait_many(&v, until);
    ring(&bell);
    give_back(helpers);
}
