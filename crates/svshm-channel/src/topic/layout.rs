#![allow(unsafe_code)] // Turns a topic segment's bytes into its atomics and copies frames.
//! The topic segment's layout after the common header fields, and the frame
//! memory: every access to the segment a topic end makes goes through
//! [`Shm`], which hands out single atomics and copies words with atomic
//! loads and stores (a lossy subscriber may copy bytes the publisher is
//! overwriting: it throws such a copy away, and no access is ever a data
//! race).
//!
//! | offset | what |
//! |---|---|
//! | 0 | common header: magic, version, kind `KIND_TOPIC`, state, geometry, name |
//! | 128 | the publisher's slot (state, pid, start time) |
//! | 256 | unused (the reader slot of a channel) |
//! | 384 | [`Block`]: parameters, progress, tail, wait words, end |
//! | 1152 | [`MAX_SUBSCRIBERS`] subscriber slots of 64 bytes |
//! | 4096 | the ring |

use crate::header::{self, HeaderView};
use crate::ring::Line;
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use svshm::Attachment;

/// The topic layout version, in [`Params::layout`]; bump on any change.
pub(crate) const TOPIC_LAYOUT: u32 = 1;
/// Most subscribers a topic can have (the slots that fit the header page).
pub const MAX_SUBSCRIBERS: usize = 32;
const BLOCK_OFFSET: usize = 384;
const SLOTS_OFFSET: usize = 1152;

/// Frame header: tag word, length and its complement, sequence number.
pub(crate) const FRAME_HEADER: u64 = 24;
/// Frames start at multiples of this (a skip marker always fits before the end).
pub(crate) const FRAME_ALIGN: u64 = 16;
/// Length of a skip marker (the rest of the ring up to its end is unused).
pub(crate) const SKIP: u32 = u32::MAX;
/// Bytes beyond a frame that a send clears: the next frame's tag word.
pub(crate) const NEXT_TAG: u64 = 8;

/// Bytes a message of `len` bytes takes in the ring.
pub(crate) fn frame_len(len: u64) -> u64 {
    (FRAME_HEADER + len).div_ceil(FRAME_ALIGN) * FRAME_ALIGN
}

/// What the publisher fixed at creation.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Params {
    pub layout: AtomicU32,
    pub subscribers: AtomicU32,
    /// 0 backpressure, 1 lossy.
    pub overflow: AtomicU32,
    _pad: AtomicU32,
}

/// What the publisher has published (informational: readers poll tags).
#[repr(C)]
#[derive(Default)]
pub(crate) struct Progress {
    /// The byte cursor after the last published frame.
    pub head: AtomicU64,
    /// The sequence number the next message gets (stored after its tag).
    pub next_seq: AtomicU64,
}

/// How the publisher ended.
#[repr(C)]
#[derive(Default)]
pub(crate) struct End {
    /// 0 while it publishes, then `ring::CLOSED` or `ring::ABORTED`.
    pub closed: AtomicU32,
    _pad: AtomicU32,
    /// Messages published in all, stored before `closed`.
    pub final_seq: AtomicU64,
}

/// The topic's control block, each part on its own line.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Block {
    pub params: Line<Params>,
    pub progress: Line<Progress>,
    /// Cursor of the oldest record still intact in the ring; the publisher
    /// raises it before it overwrites anything below it.
    pub tail: Line<AtomicU64>,
    /// 1 while a subscriber sleeps (or is about to) waiting for a message.
    pub data_wait: Line<AtomicU32>,
    /// 1 while the publisher sleeps (or is about to) waiting for room.
    pub space_wait: Line<AtomicU32>,
    pub end: Line<End>,
}

/// One subscriber's slot.
#[repr(C, align(64))]
#[derive(Default)]
pub(crate) struct SubSlot {
    /// `header::SLOT_EMPTY` → `SLOT_CLAIMING` (CAS) → `SLOT_ATTACHED` (CAS)
    /// → `SLOT_EMPTY` when it leaves or the publisher finds it dead.
    pub state: AtomicU32,
    pub pid: AtomicU32,
    pub start_time: AtomicU64,
    /// Cursor of the next record it reads: it is done with every byte below.
    pub cursor: AtomicU64,
    /// Sequence number of the next message it expects.
    pub seq: AtomicU64,
    /// Messages it lost to a lossy publisher, in all.
    pub missed: AtomicU64,
    /// When it claimed the slot (coarse monotonic ms, for reaping a claim
    /// abandoned half-way).
    pub claimed_at: AtomicU64,
    /// Its pid namespace (the inode of `/proc/self/ns/pid`; 0 unknown): its
    /// pid means something only to processes in the same one.
    pub pid_ns: AtomicU64,
}

#[cfg(not(svshm_loom))]
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<Block>() == 6 * 128);
    assert!(BLOCK_OFFSET + size_of::<Block>() == SLOTS_OFFSET);
    assert!(size_of::<SubSlot>() == 64);
    assert!(SLOTS_OFFSET + MAX_SUBSCRIBERS * 64 <= header::HEADER_SIZE);
};

/// A topic segment's attachment, with the views its ends use. The pointers
/// point into `att`, which is dropped last.
pub(crate) struct Shm {
    block: *const Block,
    slots: *const SubSlot,
    ring: *mut u8,
    pub cap: u64,
    // Last: dropped after everything that points into it.
    pub att: Attachment,
}

// SAFETY: the pointers address the attachment `Shm` owns; every access
// through them is atomic.
unsafe impl Send for Shm {}

impl Shm {
    /// The views of `att` for a ring of `cap` bytes, or `None` if the
    /// attachment does not hold them.
    pub(crate) fn new(att: Attachment, cap: u64) -> Option<Shm> {
        let block = att
            .range_ptr(BLOCK_OFFSET, core::mem::size_of::<Block>())
            .ok()?;
        let slots = att.range_ptr(SLOTS_OFFSET, MAX_SUBSCRIBERS * 64).ok()?;
        let ring = att
            .range_ptr(header::HEADER_SIZE, usize::try_from(cap).ok()?)
            .ok()?;
        // shmat(2) returns page-aligned addresses; checked all the same.
        if block as usize % 128 != 0 || ring as usize % 16 != 0 || !cap.is_power_of_two() {
            return None;
        }
        Some(Shm {
            block: block.cast(),
            slots: slots.cast(),
            ring,
            cap,
            att,
        })
    }

    /// The common header.
    pub(crate) fn header(&self) -> HeaderView<'_> {
        HeaderView::new(&self.att).expect("a topic segment holds a header page (checked)")
    }

    pub(crate) fn block(&self) -> &Block {
        // SAFETY: in bounds and aligned (checked in `new`), mapped while
        // `self.att` lives; all fields are atomics.
        unsafe { &*self.block }
    }

    /// Subscriber slot `i` (< [`MAX_SUBSCRIBERS`]).
    pub(crate) fn slot(&self, i: usize) -> &SubSlot {
        assert!(i < MAX_SUBSCRIBERS, "subscriber slot {i} out of range");
        // SAFETY: in bounds (asserted; `new` checked the slot area), aligned
        // (the attachment is page-aligned), all fields atomics.
        unsafe { &*self.slots.add(i) }
    }

    /// The 8-byte word at ring position `pos` (8-aligned, inside the ring).
    #[inline]
    pub(crate) fn word(&self, pos: u64) -> &AtomicU64 {
        assert!(
            pos % 8 == 0 && pos + 8 <= self.cap,
            "topic ring word {pos} out of bounds"
        );
        // SAFETY: in bounds and 8-aligned (asserted; the ring start is
        // 16-aligned), mapped while `self.att` lives; only ever accessed
        // atomically or, for a frame lent to one side alone, through a slice
        // the protocol keeps from every other access.
        unsafe { &*self.ring.add(pos as usize).cast::<AtomicU64>() }
    }

    /// Copies `dst.len()` bytes from ring position `pos` (8-aligned; the
    /// words covering them inside the ring) with Relaxed word loads.
    pub(crate) fn load_bytes(&self, pos: u64, dst: &mut [u8]) {
        let mut at = pos;
        for chunk in dst.chunks_mut(8) {
            let w = self.word(at).load(Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
            at += 8;
        }
    }

    /// Copies `src` to ring position `pos` (8-aligned; the words covering it
    /// inside the ring) with Relaxed word stores; a last partial word is
    /// padded with zeros.
    pub(crate) fn store_bytes(&self, pos: u64, src: &[u8]) {
        let mut at = pos;
        for chunk in src.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.word(at)
                .store(u64::from_le_bytes(w), Ordering::Relaxed);
            at += 8;
        }
    }

    /// The `len` bytes at ring position `pos` as a slice.
    ///
    /// # Safety
    ///
    /// Nothing may write these bytes while the slice lives: the caller holds
    /// them under the backpressure protocol (a subscriber's unread frame,
    /// which the publisher never overwrites while the subscriber's cursor is
    /// below it; or the publisher's loaned frame, which no subscriber reads
    /// before its tag is stored).
    pub(crate) unsafe fn slice(&self, pos: u64, len: usize) -> &[u8] {
        assert!(
            pos + len as u64 <= self.cap,
            "topic ring slice out of bounds"
        );
        // SAFETY: in bounds (asserted), mapped while `self.att` lives;
        // unaliased by writes per the caller's contract.
        unsafe { core::slice::from_raw_parts(self.ring.add(pos as usize), len) }
    }

    /// As [`slice`](Self::slice), writable.
    ///
    /// # Safety
    ///
    /// As [`slice`](Self::slice), and nothing else reads the bytes either.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self, pos: u64, len: usize) -> &mut [u8] {
        assert!(
            pos + len as u64 <= self.cap,
            "topic ring slice out of bounds"
        );
        // SAFETY: as in `slice`, with exclusive use per the caller's contract.
        unsafe { core::slice::from_raw_parts_mut(self.ring.add(pos as usize), len) }
    }
}

/// A record as read at a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record {
    /// No record is tagged there yet.
    NotReady,
    /// A skip marker: the next record is at `end` (the ring's start).
    Skip { end: u64 },
    /// A frame: its payload at ring position `pos`, `len` bytes, sequence
    /// number `seq`; the next record at `end`.
    Frame {
        pos: u64,
        len: usize,
        seq: u64,
        end: u64,
    },
}

/// Reads the record at cursor `c` (tag Acquire, then its header) and
/// validates it against a ring of `shm.cap` bytes and `max_message`. For a
/// lossy reader an `Err` may come from bytes being overwritten: it checks
/// the tail before calling anything corrupt.
pub(crate) fn read_record(shm: &Shm, c: u64, max_message: u64) -> Result<Record, String> {
    let cap = shm.cap;
    let pos = c & (cap - 1);
    if pos % FRAME_ALIGN != 0 {
        return Err(format!(
            "record cursor {c} is not {FRAME_ALIGN}-aligned in a ring of {cap} bytes"
        ));
    }
    // SYNC: pairs with the publisher's Release store of the tag after the
    // record's bytes (`Publisher::publish_record`).
    if shm.word(pos).load(Ordering::Acquire) != !c {
        return Ok(Record::NotReady);
    }
    let w = shm.word(pos + 8).load(Ordering::Relaxed);
    let (len, check) = (w as u32, (w >> 32) as u32);
    if check != !len {
        return Err(format!("frame header {w:#018x} fails its check"));
    }
    if len == SKIP {
        if pos == 0 {
            return Err("skip marker at the start of the ring".into());
        }
        return Ok(Record::Skip {
            end: c + (cap - pos),
        });
    }
    if u64::from(len) > max_message {
        return Err(format!(
            "frame of {len} bytes exceeds the topic's maximum of {max_message}"
        ));
    }
    let flen = frame_len(u64::from(len));
    if pos + flen > cap {
        return Err(format!(
            "frame of {flen} bytes at {pos} straddles the ring's end"
        ));
    }
    let seq = shm.word(pos + 16).load(Ordering::Relaxed);
    Ok(Record::Frame {
        pos: pos + FRAME_HEADER,
        len: len as usize,
        seq,
        end: c + flen,
    })
}

/// The frame header's second word: the length and its complement.
pub(crate) fn len_word(len: u32) -> u64 {
    u64::from(len) | (u64::from(!len) << 32)
}

/// What a tool sees of a topic from outside: the publisher's head, the
/// tail, how many subscriber slots are held, and who holds them.
pub(crate) struct Peek {
    pub head: u64,
    pub tail: u64,
    pub next_seq: u64,
    pub subscribers: usize,
    /// The publisher's overflow policy (0 backpressure, 1 lossy).
    pub overflow: u32,
    /// (slot, pid, next sequence number due, messages missed in all).
    pub holders: Vec<(usize, i32, u64, u64)>,
}

/// Reads a topic's progress through any attachment (read-only is enough),
/// or `None` if the attachment does not hold a topic's header page.
pub(crate) fn peek(att: &Attachment) -> Option<Peek> {
    let block = att
        .range_ptr(BLOCK_OFFSET, core::mem::size_of::<Block>())
        .ok()?;
    let slots = att.range_ptr(SLOTS_OFFSET, MAX_SUBSCRIBERS * 64).ok()?;
    if block as usize % 128 != 0 {
        return None;
    }
    // SAFETY: in bounds and aligned (checked above), mapped while `att` is
    // borrowed; all fields are atomics, only loaded.
    let b = unsafe { &*block.cast::<Block>() };
    let n = (b.params.0.subscribers.load(Ordering::Relaxed) as usize).min(MAX_SUBSCRIBERS);
    let mut holders = Vec::new();
    for i in 0..n {
        // SAFETY: slot `i` < MAX_SUBSCRIBERS lies in the range checked above,
        // 64-aligned; atomics only.
        let s = unsafe { &*slots.add(i * 64).cast::<SubSlot>() };
        // SYNC: pairs with the subscriber's CAS to ATTACHED after it stored
        // its identity.
        if s.state.load(Ordering::Acquire) == header::SLOT_ATTACHED {
            holders.push((
                i,
                s.pid.load(Ordering::Relaxed) as i32,
                s.seq.load(Ordering::Relaxed),
                s.missed.load(Ordering::Relaxed),
            ));
        }
    }
    Some(Peek {
        head: b.progress.0.head.load(Ordering::Relaxed),
        tail: b.tail.0.load(Ordering::Relaxed),
        next_seq: b.progress.0.next_seq.load(Ordering::Relaxed),
        subscribers: holders.len(),
        overflow: b.params.0.overflow.load(Ordering::Relaxed),
        holders,
    })
}
