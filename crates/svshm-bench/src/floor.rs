//! The floor: the same work between two threads of one process, with a plain
//! in-process SPSC byte ring (memcpy in, memcpy out, cursors on their own
//! cache lines, cached peer cursor) and a single-cache-line ping-pong. No
//! system calls, no cross-process set-up: what this machine's cores and
//! caches allow.

// Unsafe: the two-thread floor's ring buffer (raw pointers) and its futex calls.
#![allow(unsafe_code)]

use crate::roles::{ChildConfig, ChildReport, Workload, timed_rounds};
use crate::transport::Wait;
use crate::util::{
    body_matches, now_ns, pattern, pin_current_thread, read_stamp, stamp, stamp_sum,
};
use anyhow::{Result, bail};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

#[repr(C, align(128))]
struct Line(AtomicU64);

/// A single-producer single-consumer byte ring on the heap.
pub struct Ring {
    buf: *mut u8,
    cap: usize,
    head: Line,
    tail: Line,
}

// SAFETY: the writer only writes bytes in [head, tail + cap) and the reader only
// reads bytes in [tail, head); the Release/Acquire pairs on head and tail hand
// each byte range from one thread to the other, so no byte is accessed by both
// at once.
unsafe impl Sync for Ring {}
// SAFETY: the buffer is a heap allocation owned by the ring.
unsafe impl Send for Ring {}

impl Ring {
    /// A ring of `cap` bytes (a power of two).
    pub fn new(cap: usize) -> Ring {
        assert!(
            cap.is_power_of_two(),
            "ring capacity must be a power of two"
        );
        let b: Box<[u8]> = vec![0u8; cap].into_boxed_slice();
        Ring {
            buf: Box::into_raw(b).cast::<u8>(),
            cap,
            head: Line(AtomicU64::new(0)),
            tail: Line(AtomicU64::new(0)),
        }
    }

    /// Writer: copies all of `data` in, waiting (spinning) for room.
    /// `head` is the writer's own cursor, `tail` its cached copy of the reader's.
    pub fn write(&self, data: &[u8], head: &mut u64, tail: &mut u64) {
        let mut off = 0;
        while off < data.len() {
            let mut free = self.cap - (*head - *tail) as usize;
            if free == 0 {
                // SYNC: pairs with the reader's Release store of tail in read():
                // the reader no longer touches the bytes before it.
                *tail = self.tail.0.load(Ordering::Acquire);
                free = self.cap - (*head - *tail) as usize;
                if free == 0 {
                    std::hint::spin_loop();
                    continue;
                }
            }
            let n = free.min(data.len() - off);
            let pos = (*head as usize) & (self.cap - 1);
            let first = n.min(self.cap - pos);
            // SAFETY: [pos, pos + first) and [0, n - first) lie inside the buffer
            // and inside the free span the reader has released (see Sync).
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr().add(off), self.buf.add(pos), first);
                std::ptr::copy_nonoverlapping(data.as_ptr().add(off + first), self.buf, n - first);
            }
            *head += n as u64;
            // SYNC: publishes the bytes just written to the Acquire load in read().
            self.head.0.store(*head, Ordering::Release);
            off += n;
        }
    }

    /// Reader: fills all of `out`, waiting (spinning) for data.
    pub fn read(&self, out: &mut [u8], tail: &mut u64, head: &mut u64) {
        let mut off = 0;
        while off < out.len() {
            let mut avail = (*head - *tail) as usize;
            if avail == 0 {
                // SYNC: pairs with the writer's Release store of head in write().
                *head = self.head.0.load(Ordering::Acquire);
                avail = (*head - *tail) as usize;
                if avail == 0 {
                    std::hint::spin_loop();
                    continue;
                }
            }
            let n = avail.min(out.len() - off);
            let pos = (*tail as usize) & (self.cap - 1);
            let first = n.min(self.cap - pos);
            // SAFETY: [pos, pos + first) and [0, n - first) lie inside the buffer
            // and inside the span the writer has published (see Sync).
            unsafe {
                std::ptr::copy_nonoverlapping(self.buf.add(pos), out.as_mut_ptr().add(off), first);
                std::ptr::copy_nonoverlapping(
                    self.buf,
                    out.as_mut_ptr().add(off + first),
                    n - first,
                );
            }
            *tail += n as u64;
            // SYNC: releases the bytes just read to the writer's Acquire load in write().
            self.tail.0.store(*tail, Ordering::Release);
            off += n;
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `buf` came from Box::into_raw of a boxed slice of `cap` bytes
        // and is freed exactly once, here.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.buf, self.cap)) });
    }
}

fn pin(cpus: &[usize], i: usize) -> Result<()> {
    match cpus.get(i) {
        Some(&c) => pin_current_thread(c),
        None => Ok(()),
    }
}

/// Runs the floor for `cfg.workload` in two threads; `ready` is the start barrier.
pub fn run(cfg: &ChildConfig, ready: fn() -> Result<()>) -> Result<ChildReport> {
    match cfg.workload {
        Workload::Stream { chunk, bytes } => one_way(cfg, ready, chunk, bytes / chunk as u64),
        Workload::Messages { size, count } => one_way(cfg, ready, size, count),
        Workload::PingPong { iters, warmup, .. } => {
            cache_line(cfg, ready, iters, warmup, cfg.wait == Wait::Block)
        }
    }
}

fn one_way(
    cfg: &ChildConfig,
    ready: fn() -> Result<()>,
    len: usize,
    n: u64,
) -> Result<ChildReport> {
    let ring = Ring::new(cfg.ring.next_power_of_two());
    let cpus = cfg.cpus.clone();
    ready()?;
    std::thread::scope(|s| {
        let r = &ring;
        let cpus_w = cpus.clone();
        let w = s.spawn(move || -> Result<u64> {
            pin(&cpus_w, 0)?;
            let mut buf = pattern(len);
            let (mut head, mut tail) = (0, 0);
            let t0 = now_ns();
            for i in 0..n {
                stamp(&mut buf, i);
                r.write(&buf, &mut head, &mut tail);
            }
            Ok(t0)
        });
        let rd = s.spawn(move || -> Result<(u64, bool)> {
            pin(&cpus, 1)?;
            let mut buf = vec![1u8; len];
            let (mut tail, mut head) = (0, 0);
            let (mut ok, mut sum) = (true, 0u64);
            for i in 0..n {
                r.read(&mut buf, &mut tail, &mut head);
                let st = read_stamp(&buf);
                ok &= st == Some(i);
                sum = sum.wrapping_add(st.unwrap_or(u64::MAX));
                if i == 0 || i + 1 == n {
                    ok &= body_matches(&buf);
                }
            }
            Ok((now_ns(), ok && sum == stamp_sum(n)))
        });
        let t_start = w
            .join()
            .map_err(|_| anyhow::anyhow!("floor writer panicked"))??;
        let (t_end, verified) = rd
            .join()
            .map_err(|_| anyhow::anyhow!("floor reader panicked"))??;
        Ok(ChildReport {
            t_start,
            t_end,
            verified,
            ..Default::default()
        })
    })
}

/// Sleeps while `*word == expected` (FUTEX_WAIT, shared, as svshm uses).
fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; a
    // null timeout means no timeout; spurious returns are handled by callers.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes one sleeper on `word` (FUTEX_WAKE).
fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE only reads the address.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1) };
}

#[repr(C, align(128))]
struct Word(AtomicU32);

/// Two threads take turns: on the second CPU `pong(i)` answers round `i`; on
/// the first, `ping(i)` starts round `i`, waits for the answer and returns the
/// instant it began, and its rounds are timed as in [`timed_rounds`].
fn two_thread_rounds(
    cfg: &ChildConfig,
    ready: fn() -> Result<()>,
    iters: u64,
    warmup: u64,
    pong: impl Fn(u64) + Send,
    mut ping: impl FnMut(u64) -> Instant,
) -> Result<ChildReport> {
    let cpus = cfg.cpus.clone();
    let total = warmup + iters;
    ready()?;
    std::thread::scope(|s| {
        let cpus_p = cpus.clone();
        let pong = s.spawn(move || -> Result<()> {
            pin(&cpus_p, 1)?;
            for i in 0..total {
                pong(i);
            }
            Ok(())
        });
        pin(&cpus, 0)?;
        let report = timed_rounds(warmup, iters, |i| Ok(ping(i)));
        if pong.join().is_err() {
            bail!("floor pong panicked");
        }
        report
    })
}

/// The blocking floor: the same hand-off, but each side sleeps in FUTEX_WAIT
/// and is woken with FUTEX_WAKE every time (no spinning at all) — what two
/// kernel wake-ups per round trip cost on this machine.
fn futex_pingpong(
    cfg: &ChildConfig,
    ready: fn() -> Result<()>,
    iters: u64,
    warmup: u64,
) -> Result<ChildReport> {
    let word = Word(AtomicU32::new(0));
    let w = &word;
    two_thread_rounds(
        cfg,
        ready,
        iters,
        warmup,
        |i| {
            let want = (2 * i + 1) as u32;
            loop {
                // SYNC: pairs with ping's Release store of 2i+1.
                let v = w.0.load(Ordering::Acquire);
                if v == want {
                    break;
                }
                futex_wait(&w.0, v);
            }
            // SYNC: pairs with ping's Acquire load waiting for 2i+2.
            w.0.store(want.wrapping_add(1), Ordering::Release);
            futex_wake(&w.0);
        },
        |i| {
            let t = Instant::now();
            let sent = (2 * i + 1) as u32;
            // SYNC: pairs with pong's Acquire load.
            w.0.store(sent, Ordering::Release);
            futex_wake(&w.0);
            loop {
                // SYNC: pairs with pong's Release store of 2i+2.
                let v = w.0.load(Ordering::Acquire);
                if v == sent.wrapping_add(1) {
                    break;
                }
                futex_wait(&w.0, v);
            }
            t
        },
    )
}

fn cache_line(
    cfg: &ChildConfig,
    ready: fn() -> Result<()>,
    iters: u64,
    warmup: u64,
    block: bool,
) -> Result<ChildReport> {
    if block {
        return futex_pingpong(cfg, ready, iters, warmup);
    }
    let line = Line(AtomicU64::new(0));
    let l = &line;
    two_thread_rounds(
        cfg,
        ready,
        iters,
        warmup,
        |i| {
            // SYNC: pairs with ping's Release store of 2i+1.
            while l.0.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            // SYNC: pairs with ping's Acquire load waiting for 2i+2.
            l.0.store(2 * i + 2, Ordering::Release);
        },
        |i| {
            let t = Instant::now();
            // SYNC: pairs with pong's Acquire load.
            l.0.store(2 * i + 1, Ordering::Release);
            // SYNC: pairs with pong's Release store of 2i+2.
            while l.0.load(Ordering::Acquire) != 2 * i + 2 {
                std::hint::spin_loop();
            }
            t
        },
    )
}

/// One ring of the framed floor: 64-bit words, frames of a 16-byte header
/// (the tag word, then the length) and the payload padded to 16 bytes.
struct Frames {
    words: Box<[AtomicU64]>,
    /// Index of the first word of the ring: page-aligned, as svshm's data
    /// area is (where frames fall on cache lines matters).
    base: usize,
    /// Words per frame.
    stride: usize,
    /// Frames in the ring (none straddles its end).
    count: u64,
}

impl Frames {
    fn new(ring: usize, payload: usize) -> Frames {
        let stride = 2 + payload.div_ceil(16) * 2;
        let len = (ring / 8).max(2 * stride);
        let words: Box<[AtomicU64]> = (0..len + 512).map(|_| AtomicU64::new(0)).collect();
        let base = (4096 - words.as_ptr() as usize % 4096) % 4096 / 8;
        Frames {
            words,
            base,
            stride,
            count: (len / stride) as u64,
        }
    }

    /// Writes frame `seq`: header and payload, then the tag (`!seq`) last.
    fn send(&self, seq: u64, payload: &[u8]) {
        let at = self.base + (seq % self.count) as usize * self.stride;
        self.words[at + 1].store(payload.len() as u64, Ordering::Relaxed);
        // SAFETY: the payload area of frame `seq` lies inside the ring
        // (`stride` words per frame, `count` frames); the reader touches it
        // only after it sees this frame's tag, stored below, and the two
        // threads take turns (a frame is rewritten a whole lap later, long
        // after the reader answered it).
        unsafe {
            std::ptr::copy_nonoverlapping(
                payload.as_ptr(),
                self.words[at + 2].as_ptr().cast::<u8>(),
                payload.len(),
            )
        };
        // SYNC: publishes the header and payload to the reader's Acquire load.
        self.words[at].store(!seq, Ordering::Release);
    }

    /// Waits for frame `seq`'s tag, then copies its payload into `out`.
    fn recv(&self, seq: u64, out: &mut [u8]) -> bool {
        let at = self.base + (seq % self.count) as usize * self.stride;
        // SYNC: pairs with the writer's Release store of the tag in `send`.
        while self.words[at].load(Ordering::Acquire) != !seq {
            std::hint::spin_loop();
        }
        let len = self.words[at + 1].load(Ordering::Relaxed) as usize;
        let n = len.min(out.len());
        // SAFETY: as in `send`: the frame is published and not rewritten
        // while it is read.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.words[at + 2].as_ptr().cast::<u8>(),
                out.as_mut_ptr(),
                n,
            )
        };
        len == out.len()
    }
}

/// The framed-ring floor of the spin ping-pong: what any message ring costs
/// on this machine. Two threads, two rings of frames shaped like svshm's
/// (tag word first, stored last with Release; the reader polls it with
/// Acquire and copies the payload out), nothing else: no free-space
/// accounting, no release of read frames, no wake-up handshake, no checks
/// of what the peer wrote. Against the cache-line floor, it shows what
/// putting a payload in a frame at a new place each time costs.
pub fn framed(cfg: &ChildConfig, ready: fn() -> Result<()>) -> Result<ChildReport> {
    let Workload::PingPong {
        size,
        iters,
        warmup,
    } = cfg.workload
    else {
        bail!("the framed floor measures ping-pong only");
    };
    let (there, back) = (Frames::new(cfg.ring, size), Frames::new(cfg.ring, size));
    let (there, back) = (&there, &back);
    let ok = std::sync::atomic::AtomicBool::new(true);
    let okr = &ok;
    let mut buf = pattern(size);
    let mut got = vec![0u8; size];
    let echo = std::cell::RefCell::new(vec![0u8; size]);
    let report = two_thread_rounds(
        cfg,
        ready,
        iters,
        warmup,
        // Like the transports' pong: receive, send back, check nothing.
        move |i| {
            let mut echo = echo.borrow_mut();
            if !there.recv(i, &mut echo) {
                okr.store(false, Ordering::Relaxed);
            }
            back.send(i, &echo);
        },
        |i| {
            stamp(&mut buf, i);
            let t = Instant::now();
            there.send(i, &buf);
            if !back.recv(i, &mut got) || read_stamp(&got) != Some(i) {
                ok.store(false, Ordering::Relaxed);
            }
            t
        },
    )?;
    Ok(ChildReport {
        verified: ok.load(Ordering::Relaxed) && body_matches(&got),
        ..report
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_moves_bytes_in_order_across_wraps() {
        let ring = Ring::new(64);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                let (mut h, mut t) = (0, 0);
                for c in data.chunks(37) {
                    ring.write(c, &mut h, &mut t);
                }
            });
            let mut out = vec![0u8; data.len()];
            let (mut t, mut h) = (0, 0);
            for c in out.chunks_mut(53) {
                ring.read(c, &mut t, &mut h);
            }
            assert_eq!(out, data);
        });
    }
}
