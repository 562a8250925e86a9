#![allow(unsafe_code)] // The SPSC protocol over raw memory: cursor pointers, data copies.
//! The single-producer single-consumer ring protocol, over any memory.
//!
//! Two byte cursors that only grow: `head` (written only by the producer) and
//! `tail` (written only by the consumer). The producer owns the bytes
//! `[head, tail + capacity)`, the consumer owns `[tail, head)`; the position of
//! cursor `c` in the data area is `c % capacity` (capacity is a power of two).
//!
//! Each side keeps its own cursor locally — it is the authority on it and never
//! re-reads it from shared memory — and caches the other's. A cursor read from
//! shared memory is validated before use: the peer's cursor
//! may only move forward and never past what the protocol allows, else the ring
//! is [corrupt](RingError::Corrupt).
//!
//! Waiting: each side has a wait word. A side that finds nothing to do spins
//! (per [`Wait`]), then sets its word to 1, issues a SeqCst fence, re-checks, and
//! futex-waits on the word. The other side, after publishing its cursor, issues
//! a SeqCst fence and looks at the word; only if it is set does it clear it and
//! make the wake syscall. The two fences order "publish, look" against "flag,
//! re-check", so a wake-up cannot be lost, and the fast path has no syscall.
//!
//! Tagged records (message frames): instead of publishing `head` for every
//! record, the producer can mark a record whole with a *tag*, an 8-byte word at
//! the record's 8-aligned start holding the record's cursor bitwise inverted,
//! stored last with Release ([`Producer::publish_frame`]). The consumer polls
//! the tag at its own cursor with Acquire ([`Consumer::tag_ready`]), so one
//! cache line carries both the news and the record. `head` is then published
//! lazily, for free-space accounting and inspection only.

use crate::sync::{AtomicU32, AtomicU64, Ordering};
use core::fmt;

mod mem;
mod wait;

pub use mem::{Mem, RawMem};
pub(crate) use wait::POLL_SLICE;
pub use wait::{DEFAULT_SPIN, Wait, WaitPolicy};
pub(crate) use wait::{block_on, block_on_quick, wake_if_waiting};

/// Why a ring operation could not proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingError {
    /// A value read from shared memory broke the protocol (the peer is faulty
    /// or hostile, or the memory was overwritten).
    Corrupt(String),
    /// The peer closed its end.
    Closed,
    /// The peer process died without closing.
    PeerDied,
    /// The peer left without closing cleanly (it panicked, or gave up); what it
    /// published before is valid but may be incomplete.
    Aborted,
    /// The deadline passed.
    Timeout,
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::Corrupt(m) => write!(f, "corrupt ring: {m}"),
            RingError::Closed => f.write_str("the peer closed the channel"),
            RingError::PeerDied => f.write_str("the peer process died"),
            RingError::Aborted => f.write_str("the peer left without closing cleanly"),
            RingError::Timeout => f.write_str("timed out"),
        }
    }
}

impl std::error::Error for RingError {}

/// What the liveness probe says about the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The peer is there.
    Alive,
    /// The peer process is gone.
    Dead,
}

/// One 128-byte line (two 64-byte lines: adjacent-line prefetch pairs them).
#[repr(C, align(128))]
#[derive(Default)]
pub struct Line<T>(pub T);

/// The ring's shared control block: cursors, closed flags and wait words, each
/// on its own line so the two sides do not false-share.
#[repr(C)]
#[derive(Default)]
pub struct Cursors {
    /// Producer cursor: bytes written and published.
    pub head: Line<AtomicU64>,
    /// Consumer cursor: bytes consumed and released.
    pub tail: Line<AtomicU64>,
    /// 1 while the consumer sleeps (or is about to) waiting for data.
    pub reader_wait: Line<AtomicU32>,
    /// 1 while the producer sleeps (or is about to) waiting for space.
    pub writer_wait: Line<AtomicU32>,
    /// Non-zero once the producer has closed its end.
    pub writer_closed: Line<AtomicU32>,
    /// Non-zero once the consumer has closed its end.
    pub reader_closed: Line<AtomicU32>,
    /// The producer's final cursor, bitwise inverted (so 0 is never valid),
    /// stored just before `writer_closed` becomes [`CLOSED`]: a clean end
    /// must add up to it.
    pub writer_final: Line<AtomicU64>,
}

#[cfg(not(svshm_loom))]
const _: () = assert!(core::mem::size_of::<Cursors>() == 7 * 128);

/// Hints the CPU to start loading the cache line at `p` (no effect on memory,
/// never faults).
#[inline(always)]
fn prefetch(p: Option<*mut u8>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = p {
        // SAFETY: PREFETCHT0 has no architectural effect and cannot fault,
        // whatever the address.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Bytes of a tag word (see [`Producer::publish_frame`]).
pub const TAG_LEN: u64 = 8;

fn corrupt(msg: String) -> RingError {
    RingError::Corrupt(msg)
}

/// Largest cursor value a ring accepts when taking over: leaves 2^62 bytes of
/// headroom, so cursor arithmetic can never overflow.
pub const MAX_CURSOR: u64 = 1 << 62;

fn check_cursors(head: u64, tail: u64, capacity: u64) -> Result<(), RingError> {
    if capacity > MAX_CURSOR || tail > head || head - tail > capacity || head > MAX_CURSOR {
        return Err(corrupt(format!(
            "cursors head {head}, tail {tail} for capacity {capacity}"
        )));
    }
    Ok(())
}

/// Value of a closed flag: closed cleanly (everything was written).
pub const CLOSED: u32 = 1;
/// Value of a closed flag: the side went away mid-stream (dropped without an
/// explicit close, or gave up connecting); what it wrote may be incomplete.
pub const ABORTED: u32 = 2;

/// The producer (writer) side of a ring.
pub struct Producer<M: Mem> {
    cur: *const Cursors,
    mem: M,
    cap: u64,
    /// Our cursor: the authority. `published` trails it until `publish` or
    /// `publish_frame`.
    head: u64,
    /// The bytes made visible to the consumer (by `head` or by tags).
    published: u64,
    /// The value last stored into the shared `head` word.
    stored: u64,
    tail_cache: u64,
}

// SAFETY: the producer only touches the control block through atomics and the
// data through `Mem`; it may move to another thread with its owner.
unsafe impl<M: Mem + Send> Send for Producer<M> {}

impl<M: Mem> Producer<M> {
    /// The producer side of the ring whose control block is at `cur` and whose
    /// data area of `capacity` bytes is `mem`. Reads the current cursors
    /// (validated), so a producer can take over a ring.
    ///
    /// # Safety
    ///
    /// `cur` must point to a `Cursors` that stays valid for the producer's
    /// lifetime; `mem` must hold `capacity` bytes; at most one producer may exist
    /// for a ring at a time.
    pub unsafe fn new(cur: *const Cursors, mem: M, capacity: u64) -> Result<Self, RingError> {
        if !capacity.is_power_of_two() {
            return Err(corrupt(format!(
                "capacity {capacity} is not a power of two"
            )));
        }
        // SAFETY: valid per the caller.
        let c = unsafe { &*cur };
        // SYNC: pairs with the Release store of `head` in `Producer::publish`
        // by a previous producer of this ring, whose cursor we take over.
        let head = c.head.0.load(Ordering::Acquire);
        // SYNC: pairs with the consumer's Release store of `tail` in
        // `Consumer::publish`: the bytes before it are no longer read.
        let tail = c.tail.0.load(Ordering::Acquire);
        check_cursors(head, tail, capacity)?;
        Ok(Producer {
            cur,
            mem,
            cap: capacity,
            head,
            published: head,
            stored: head,
            tail_cache: tail,
        })
    }

    #[inline]
    fn cursors(&self) -> &Cursors {
        // SAFETY: valid for our lifetime per `new`'s contract.
        unsafe { &*self.cur }
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.cap
    }

    /// Our cursor (bytes written, including unpublished ones).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Free bytes by the cached tail, refreshing it if fewer than `want`.
    #[inline]
    pub fn free(&mut self, want: u64) -> Result<u64, RingError> {
        let free = self.cap - (self.head - self.tail_cache);
        if free >= want {
            return Ok(free);
        }
        self.refresh()?;
        Ok(self.cap - (self.head - self.tail_cache))
    }

    #[inline]
    fn refresh(&mut self) -> Result<(), RingError> {
        // SYNC: pairs with the consumer's Release store of `tail` in
        // `Consumer::publish`: the bytes before it are no longer read.
        let t = self.cursors().tail.0.load(Ordering::Acquire);
        // The consumer can only have released what we published.
        if t < self.tail_cache || t > self.published {
            return Err(corrupt(format!(
                "reader cursor moved from {} to {t} (writer cursor {})",
                self.tail_cache, self.head
            )));
        }
        self.tail_cache = t;
        Ok(())
    }

    /// Position of `head` in the data area and the contiguous free bytes there
    /// (by the cached tail; call [`free`](Self::free) first).
    #[inline]
    pub fn contiguous_free(&self) -> (usize, usize) {
        let pos = self.head & (self.cap - 1);
        let free = self.cap - (self.head - self.tail_cache);
        (pos as usize, free.min(self.cap - pos) as usize)
    }

    /// Copies `src` at `head` (wrapping) without publishing. The caller checked
    /// that `src.len()` bytes are free.
    #[inline]
    pub fn put(&mut self, src: &[u8]) {
        assert!(
            src.len() as u64 <= self.cap - (self.head - self.tail_cache),
            "put beyond free space"
        );
        let pos = (self.head & (self.cap - 1)) as usize;
        let first = src.len().min(self.cap as usize - pos);
        self.mem.write(pos, &src[..first]);
        if first < src.len() {
            self.mem.write(0, &src[first..]);
        }
        self.head += src.len() as u64;
    }

    /// Moves `head` by `n` bytes written in place (zero-copy). The caller checked
    /// that `n` bytes are free.
    #[inline]
    pub fn advance(&mut self, n: u64) {
        assert!(
            n <= self.cap - (self.head - self.tail_cache),
            "advance beyond free space"
        );
        self.head += n;
    }

    /// The data memory.
    pub fn mem(&self) -> &M {
        &self.mem
    }

    /// Publishes everything written so far to the consumer, waking it if it sleeps.
    #[inline]
    pub fn publish(&mut self) {
        self.published = self.head;
        if self.head == self.stored {
            return;
        }
        self.stored = self.head;
        // SYNC: publishes bytes [old head, head) to the consumer's Acquire load
        // of `head` in `Consumer::refresh`.
        self.cursors().head.0.store(self.head, Ordering::Release);
        wake_if_waiting(&self.cursors().reader_wait.0);
    }

    /// Publishes the tagged record (see the module docs) written from cursor
    /// `start` up to `head`. First clears the tag word at `head`, so that
    /// bytes of an earlier lap there can never read as the next record's tag:
    /// the caller reserved 8 free bytes past `head` for it. Then stores the
    /// tag, wakes the consumer if it sleeps, and stores `head` itself only
    /// once an eighth of the ring has gone by since it last did.
    #[inline]
    pub fn publish_frame(&mut self, start: u64) {
        assert!(
            self.cap - (self.head - self.tail_cache) >= TAG_LEN
                && start < self.head
                && start == self.published,
            "publish_frame outside the written, unpublished bytes"
        );
        let mask = self.cap - 1;
        self.mem.clear_tag((self.head & mask) as usize);
        self.mem.set_tag((start & mask) as usize, !start);
        self.published = self.head;
        wake_if_waiting(&self.cursors().reader_wait.0);
        if self.head - self.stored >= self.cap / 8 {
            self.stored = self.head;
            // SYNC: pairs with the Acquire loads of `head` by a consumer taking
            // over (`Consumer::new`) and by inspection; the tagged consumer does
            // not need it.
            self.cursors().head.0.store(self.head, Ordering::Release);
        }
    }

    /// Waits until at least `want` bytes are free.
    pub fn wait_free(
        &mut self,
        want: u64,
        policy: WaitPolicy,
        alive: impl FnMut() -> Liveness,
    ) -> Result<(), RingError> {
        if self.free(want)? >= want {
            return Ok(());
        }
        // Make sure the consumer can see everything before we sleep.
        self.publish();
        let cur = self.cur;
        block_on_quick(
            // SAFETY: valid for our lifetime per `new`'s contract.
            unsafe { &(*cur).writer_wait.0 },
            policy,
            self,
            // SYNC: a hint only; `free` loads `tail` again with Acquire.
            |p| {
                p.cursors()
                    .tail
                    .0
                    .load(Ordering::Relaxed)
                    .saturating_add(p.cap)
                    >= p.head + want
            },
            |p| {
                if p.free(want)? >= want {
                    return Ok(true);
                }
                // SYNC: pairs with the consumer's Release store in `Consumer::close`.
                if p.cursors().reader_closed.0.load(Ordering::Acquire) != 0 {
                    return Err(RingError::Closed);
                }
                Ok(false)
            },
            alive,
        )
    }

    /// Whether the consumer has closed its end.
    pub fn peer_closed(&self) -> bool {
        // SYNC: pairs with the Release store in `Consumer::close`.
        self.cursors().reader_closed.0.load(Ordering::Acquire) != 0
    }

    /// Bytes published but not yet released by the consumer, by a fresh read
    /// of `tail` that changes nothing (a value out of bounds is clamped: this
    /// is a snapshot for display, not a step of the protocol).
    pub fn queued(&self) -> u64 {
        // SYNC: pairs with the consumer's Release store of `tail` in
        // `Consumer::publish`; only a count is derived from it.
        let t = self.cursors().tail.0.load(Ordering::Acquire);
        self.published - t.clamp(self.tail_cache, self.published)
    }

    /// Free bytes by a fresh read of `tail` that changes nothing (clamped,
    /// like [`queued`](Self::queued)): what a waiter on many rings checks
    /// without taking the producer's cursor cache.
    pub fn room_now(&self) -> u64 {
        // SYNC: pairs with the consumer's Release store of `tail` in
        // `Consumer::publish`; the caller acts on it only through
        // `free`/`refresh`, which read it again.
        let t = self.cursors().tail.0.load(Ordering::Acquire);
        self.cap - (self.head - t.clamp(self.tail_cache, self.published))
    }

    /// The word this side sleeps on while the ring is full.
    pub fn wait_word(&self) -> &AtomicU32 {
        &self.cursors().writer_wait.0
    }

    /// Bytes published but not yet released by the consumer (refreshes the
    /// cached tail).
    pub fn unconsumed(&mut self) -> Result<u64, RingError> {
        self.refresh()?;
        Ok(self.published - self.tail_cache)
    }

    /// Publishes, then marks the producer's end closed and wakes the consumer.
    /// (The crate closes through [`close_with`](Self::close_with); this is for
    /// the ring's own tests and models.)
    #[cfg(any(test, feature = "internals"))]
    pub fn close(&mut self) {
        self.close_with(CLOSED);
    }

    /// Publishes, then marks the producer's end [`CLOSED`] or [`ABORTED`] and
    /// wakes the consumer.
    pub fn close_with(&mut self, how: u32) {
        self.publish();
        if how == CLOSED {
            // Stored inverted, so the zero a never-closed ring holds is no
            // valid final cursor (cursors stay below MAX_CURSOR): a forger
            // cannot make a clean end of an empty stream with one flag.
            // Published by the Release store of `writer_closed` below.
            self.cursors()
                .writer_final
                .0
                .store(!self.head, Ordering::Relaxed);
        }
        // SYNC: pairs with the consumer's Acquire load of `writer_closed` in
        // `Consumer::wait_available`; `head` and `writer_final` were stored
        // before it.
        self.cursors().writer_closed.0.store(how, Ordering::Release);
        wake_if_waiting(&self.cursors().reader_wait.0);
    }
}

/// The consumer (reader) side of a ring.
pub struct Consumer<M: Mem> {
    cur: *const Cursors,
    mem: M,
    cap: u64,
    /// Our cursor: the authority. `released` trails it until `publish`.
    tail: u64,
    released: u64,
    head_cache: u64,
}

// SAFETY: as for Producer.
unsafe impl<M: Mem + Send> Send for Consumer<M> {}

impl<M: Mem> Consumer<M> {
    /// The consumer side of the ring (see [`Producer::new`]).
    ///
    /// # Safety
    ///
    /// As for [`Producer::new`], with "at most one consumer".
    pub unsafe fn new(cur: *const Cursors, mem: M, capacity: u64) -> Result<Self, RingError> {
        if !capacity.is_power_of_two() {
            return Err(corrupt(format!(
                "capacity {capacity} is not a power of two"
            )));
        }
        // SAFETY: valid per the caller.
        let c = unsafe { &*cur };
        // SYNC: pairs with the Release store of `tail` in `Consumer::publish`
        // by a previous consumer of this ring, whose cursor we take over.
        let tail = c.tail.0.load(Ordering::Acquire);
        // SYNC: pairs with the producer's Release store of `head` in
        // `Producer::publish`: bytes [tail, head) are written.
        let head = c.head.0.load(Ordering::Acquire);
        check_cursors(head, tail, capacity)?;
        Ok(Consumer {
            cur,
            mem,
            cap: capacity,
            tail,
            released: tail,
            head_cache: head,
        })
    }

    #[inline]
    fn cursors(&self) -> &Cursors {
        // SAFETY: valid for our lifetime per `new`'s contract.
        unsafe { &*self.cur }
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.cap
    }

    /// Our cursor (bytes consumed, including unreleased ones).
    pub fn tail(&self) -> u64 {
        self.tail
    }

    /// The producer's cursor as last read (validated).
    pub fn head_seen(&self) -> u64 {
        self.head_cache
    }

    /// Bytes published and not yet consumed, by a fresh read of `head` that
    /// changes nothing (a value out of bounds is clamped: a snapshot for
    /// display, not a step of the protocol).
    pub fn queued(&self) -> u64 {
        // SYNC: pairs with the producer's Release store of `head` in
        // `Producer::publish`; only a count is derived from it.
        let h = self.cursors().head.0.load(Ordering::Acquire);
        h.clamp(self.head_cache, self.released + self.cap) - self.tail
    }

    /// The word this side sleeps on while the ring is empty.
    pub fn wait_word(&self) -> &AtomicU32 {
        &self.cursors().reader_wait.0
    }

    /// Whether the producer has closed its end (cleanly or not).
    pub fn peer_closed(&self) -> bool {
        // SYNC: pairs with the Release store in `Producer::close_with`.
        self.cursors().writer_closed.0.load(Ordering::Acquire) != 0
    }

    #[inline]
    fn refresh(&mut self) -> Result<(), RingError> {
        // SYNC: pairs with the producer's Release store of `head` in
        // `Producer::publish`: bytes [tail, head) are written.
        let h = self.cursors().head.0.load(Ordering::Acquire);
        // The producer can only have written up to one capacity past what we
        // released.
        if h < self.head_cache || h - self.released > self.cap {
            return Err(corrupt(format!(
                "writer cursor moved from {} to {h} (reader cursor {}, capacity {})",
                self.head_cache, self.tail, self.cap
            )));
        }
        if self.head_cache == self.tail && h > self.tail {
            // We were empty and data arrived: start fetching its first two
            // lines now, in parallel, rather than one after the other as the
            // frame header and then the payload are read.
            let pos = (self.tail & (self.cap - 1)) as usize;
            prefetch(self.mem.ptr(pos));
            if pos + 64 < self.cap as usize && h - self.tail > 64 - (pos as u64 & 63) {
                prefetch(self.mem.ptr(pos + 64));
            }
        }
        self.head_cache = h;
        Ok(())
    }

    /// Readable bytes by the cached head, refreshing it if fewer than `want`.
    #[inline]
    pub fn available(&mut self, want: u64) -> Result<u64, RingError> {
        let avail = self.head_cache - self.tail;
        if avail >= want {
            return Ok(avail);
        }
        self.refresh()?;
        Ok(self.head_cache - self.tail)
    }

    /// Position of `tail` and the contiguous readable bytes there (by the cache).
    #[inline]
    pub fn contiguous_available(&self) -> (usize, usize) {
        let pos = self.tail & (self.cap - 1);
        let avail = self.head_cache - self.tail;
        (pos as usize, avail.min(self.cap - pos) as usize)
    }

    /// Copies `dst.len()` bytes from `tail` (wrapping) and moves `tail`, without
    /// releasing. The caller checked that they are available.
    #[inline]
    pub fn take(&mut self, dst: &mut [u8]) {
        assert!(
            dst.len() as u64 <= self.head_cache - self.tail,
            "take beyond available data"
        );
        let pos = (self.tail & (self.cap - 1)) as usize;
        let first = dst.len().min(self.cap as usize - pos);
        self.mem.read(pos, &mut dst[..first]);
        if first < dst.len() {
            self.mem.read(0, &mut dst[first..]);
        }
        self.tail += dst.len() as u64;
    }

    /// Copies `dst.len()` bytes at `tail + skip` without moving `tail`.
    /// (The message layer reads frames through [`mem`](Self::mem); this is for
    /// the ring's models.)
    #[cfg(feature = "internals")]
    #[inline]
    pub fn peek_at(&self, skip: u64, dst: &mut [u8]) {
        assert!(
            skip.checked_add(dst.len() as u64)
                .is_some_and(|e| e <= self.head_cache - self.tail),
            "peek beyond available data"
        );
        let pos = ((self.tail + skip) & (self.cap - 1)) as usize;
        let first = dst.len().min(self.cap as usize - pos);
        self.mem.read(pos, &mut dst[..first]);
        if first < dst.len() {
            self.mem.read(0, &mut dst[first..]);
        }
    }

    /// Moves `tail` by `n` bytes consumed in place.
    #[inline]
    pub fn advance(&mut self, n: u64) {
        assert!(
            n <= self.head_cache - self.tail,
            "advance beyond available data"
        );
        self.tail += n;
    }

    /// The data memory.
    pub fn mem(&self) -> &M {
        &self.mem
    }

    /// The producer closed its end (`how`, loaded with Acquire) and nothing
    /// more is there to read, which ends at `end`: `Ok` for a clean end whose
    /// final cursor is `end`, else `Aborted`, or `Corrupt` for a clean end
    /// that does not add up.
    fn check_end(&self, how: u32, end: u64, what: &str) -> Result<(), RingError> {
        if how != CLOSED {
            return Err(RingError::Aborted);
        }
        // Ordered by the caller's Acquire load of `writer_closed`.
        let fin = !self.cursors().writer_final.0.load(Ordering::Relaxed);
        if fin != end {
            return Err(RingError::Corrupt(format!(
                "the writer's end does not add up: it closed at byte {fin}, but {what} at byte {end}; the stream is incomplete"
            )));
        }
        Ok(())
    }

    /// Whether a tagged record (see [`Producer::publish_frame`]) starts at
    /// `tail`: its tag word holds `tail` inverted. If so, every byte the
    /// producer wrote before that tag is visible.
    #[inline]
    pub fn tag_ready(&self) -> bool {
        self.mem.tag((self.tail & (self.cap - 1)) as usize) == !self.tail
    }

    /// Accepts `n` bytes at `tail` as a tagged record's (the caller found its
    /// tag and validated its length against the ring), so that they can be
    /// read and consumed.
    #[inline]
    pub fn accept(&mut self, n: u64) -> Result<(), RingError> {
        if n > self.cap - (self.tail & (self.cap - 1)) {
            return Err(corrupt(format!(
                "a record of {n} bytes at {} crosses the ring's end",
                self.tail
            )));
        }
        self.head_cache = self.head_cache.max(self.tail + n);
        Ok(())
    }

    /// After consuming tagged records: releases them once an eighth of the
    /// ring has accumulated, or when no next record is tagged yet (so a
    /// drained ring is never reported full, as with
    /// [`publish_lazy`](Self::publish_lazy)).
    #[inline]
    pub fn publish_lazy_tagged(&mut self) {
        if self.tail - self.released >= self.cap / 8 || !self.tag_ready() {
            self.publish();
        }
    }

    /// Waits until a tagged record starts at `tail` ([`tag_ready`](Self::tag_ready)).
    /// Returns `Ok(false)` at a clean end: the producer closed with its final
    /// cursor at `tail`. `Err(Aborted)` or `Err(PeerDied)` if it aborted or
    /// died — in every case after all the records it tagged were seen.
    pub fn wait_tagged(
        &mut self,
        policy: WaitPolicy,
        alive: impl FnMut() -> Liveness,
    ) -> Result<bool, RingError> {
        if self.tag_ready() {
            return Ok(true);
        }
        // A clean end must add up: the producer's final cursor is where the
        // last record ends.
        self.wait_readable(
            policy,
            alive,
            |c| c.tag_ready(),
            |c| Ok(c.tag_ready()),
            |c| (c.tail, "the records end"),
        )
    }

    /// Waits on the reader's wait word until `ready` says there is something
    /// to read. Once the producer has closed and `ready`, asked again after
    /// the flag, still says no, this is the end: `Ok(false)` for a clean one
    /// whose final cursor is where the readable data ends (`end`), else the
    /// error. A dead producer is asked `ready` once more (a drain).
    fn wait_readable(
        &mut self,
        policy: WaitPolicy,
        alive: impl FnMut() -> Liveness,
        quick: impl Fn(&Self) -> bool,
        mut ready: impl FnMut(&mut Self) -> Result<bool, RingError>,
        end: impl Fn(&Self) -> (u64, &'static str),
    ) -> Result<bool, RingError> {
        self.publish();
        let cur = self.cur;
        let mut closed = false;
        let r = block_on_quick(
            // SAFETY: valid for our lifetime per `new`'s contract.
            unsafe { &(*cur).reader_wait.0 },
            policy,
            self,
            quick,
            |c| {
                if ready(c)? {
                    return Ok(true);
                }
                // SYNC: pairs with the Release store in `Producer::close_with`,
                // which follows the producer's last publish of `head` or tag.
                let how = c.cursors().writer_closed.0.load(Ordering::Acquire);
                if how == 0 {
                    return Ok(false);
                }
                // Re-check: what was published just before the close is
                // visible now.
                if ready(c)? {
                    return Ok(true);
                }
                let (at, what) = end(c);
                c.check_end(how, at, what)?;
                closed = true;
                Ok(true)
            },
            alive,
        );
        match r {
            Ok(()) => Ok(!closed),
            // Drain: whatever the dead producer published is still valid.
            Err(RingError::PeerDied) if ready(self)? => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Releases everything consumed so far to the producer, waking it if it sleeps.
    #[inline]
    pub fn publish(&mut self) {
        if self.tail == self.released {
            return;
        }
        self.released = self.tail;
        // SYNC: releases bytes [old tail, tail) to the producer's Acquire load of
        // `tail` in `Producer::refresh`.
        self.cursors().tail.0.store(self.tail, Ordering::Release);
        wake_if_waiting(&self.cursors().writer_wait.0);
    }

    /// Releases consumed bytes only once an eighth of the ring has accumulated,
    /// or when the consumer has caught up with everything published (so a
    /// drained ring is never reported full): saves a store, a fence and a
    /// cache-line transfer per small message while a backlog is drained. Safe
    /// because every wait ([`wait_available`](Self::wait_available)) and
    /// [`close`](Self::close) publishes first, so a producer waiting for space is
    /// never left waiting on bytes the consumer has already finished with while
    /// the consumer itself waits.
    #[inline]
    pub fn publish_lazy(&mut self) {
        if self.tail - self.released >= self.cap / 8 || self.tail == self.head_cache {
            self.publish();
        }
    }

    /// Waits until at least `want` bytes are readable. Returns `Ok(false)` if the
    /// producer closed with fewer left (end of stream), `Err(PeerDied)` if it died
    /// with fewer left — in both cases after everything published is readable.
    pub fn wait_available(
        &mut self,
        want: u64,
        policy: WaitPolicy,
        alive: impl FnMut() -> Liveness,
    ) -> Result<bool, RingError> {
        if self.available(want)? >= want {
            return Ok(true);
        }
        // A clean end must add up: everything the producer says it wrote was
        // published.
        self.wait_readable(
            policy,
            alive,
            // SYNC: a hint only; `available` loads `head` again with Acquire.
            |c| c.cursors().head.0.load(Ordering::Relaxed) >= c.tail + want,
            |c| Ok(c.available(want)? >= want),
            |c| (c.head_cache, "what was published ends"),
        )
    }

    /// Releases, then marks the consumer's end closed and wakes the producer.
    pub fn close(&mut self) {
        self.publish();
        // SYNC: pairs with the producer's Acquire load of `reader_closed` in
        // `Producer::wait_free`.
        self.cursors().reader_closed.0.store(1, Ordering::Release);
        wake_if_waiting(&self.cursors().writer_wait.0);
    }
}

#[cfg(all(test, not(svshm_loom)))]
mod tests;
