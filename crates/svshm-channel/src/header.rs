#![allow(unsafe_code)] // Turns an attachment's first page into the header's atomics.
//! The on-segment header: `#[repr(C)]`, fixed-width fields, so 32- and 64-bit
//! processes agree on it. It occupies the first [`HEADER_SIZE`] bytes of the
//! segment; the data ring follows.
//!
//! Every field is an atomic: a peer (or any process that attaches the
//! segment) can write any of them at any time, so none is ever read with a
//! plain load. The creator stores the identity fields (magic, version, kind,
//! geometry, name) before `state` becomes [`STATE_READY`] (Release); readers
//! load them after an Acquire load of `state`, take one copy each and
//! validate the copies ([`HeaderView::snapshot`]).
//!
//! The rest of the crate reaches the header only through [`HeaderView`], which
//! hands out references to single atomic fields, never to the whole header.

use crate::error::Role;
use crate::ring::{Cursors, Line, RawMem};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::AtomicU8;
use svshm::Attachment;

/// `b"SVSHMCH\x01"` as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SVSHMCH\x01");
/// Layout version; bump on any incompatible change.
pub(crate) const VERSION: u32 = 3;
/// Bytes before the data ring (one page).
pub(crate) const HEADER_SIZE: usize = 4096;
/// Longest channel name stored in the header.
pub(crate) const NAME_MAX: usize = 64;

pub(crate) const STATE_INITIALIZING: u32 = 0;
pub(crate) const STATE_READY: u32 = 1;

pub(crate) const SLOT_EMPTY: u32 = 0;
pub(crate) const SLOT_CLAIMING: u32 = 1;
pub(crate) const SLOT_ATTACHED: u32 = 2;
pub(crate) const SLOT_CLOSED: u32 = 3;

pub(crate) const KIND_STREAM: u32 = 1;
pub(crate) const KIND_MESSAGES: u32 = 2;
/// A service's listener: the "ring" area holds its accept slots.
pub(crate) const KIND_SERVICE: u32 = 8;
/// A topic: one publisher, many subscribers (its own layout after the
/// common fields: `topic::layout`).
pub(crate) const KIND_TOPIC: u32 = 3;

/// One side's record: who holds it and whether it has left.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Slot {
    /// SLOT_EMPTY → SLOT_CLAIMING (CAS) → SLOT_ATTACHED → SLOT_CLOSED; a
    /// claim whose claimer died (nobody but the waiting side attached) goes
    /// back to SLOT_EMPTY.
    pub state: AtomicU32,
    /// Holder's pid.
    pub pid: AtomicU32,
    /// Holder's start time (clock ticks since boot).
    pub start_time: AtomicU64,
}

/// The header's bytes. Only [`HeaderView`] touches it.
#[repr(C)]
struct Header {
    magic: AtomicU64,
    version: AtomicU32,
    kind: AtomicU32,
    state: AtomicU32,
    flags: AtomicU32,
    capacity: AtomicU64,
    max_message: AtomicU64,
    data_offset: AtomicU64,
    name_len: AtomicU32,
    _pad: AtomicU32,
    name: [AtomicU8; NAME_MAX],
    _pad2: [AtomicU8; 8],
    writer: Line<Slot>,
    reader: Line<Slot>,
    cursors: Cursors,
}

// The header's layout, byte for byte (unchanged since version 2; version 3
// changed the message frame format): any change here is a new VERSION.
#[cfg(not(svshm_loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, kind) == 12);
    assert!(offset_of!(Header, state) == 16);
    assert!(offset_of!(Header, flags) == 20);
    assert!(offset_of!(Header, capacity) == 24);
    assert!(offset_of!(Header, max_message) == 32);
    assert!(offset_of!(Header, data_offset) == 40);
    assert!(offset_of!(Header, name_len) == 48);
    assert!(offset_of!(Header, name) == 56);
    assert!(offset_of!(Header, _pad2) == 120);
    assert!(offset_of!(Header, writer) == 128);
    assert!(offset_of!(Header, reader) == 256);
    assert!(offset_of!(Header, cursors) == 384);
    assert!(size_of::<Header>() == 384 + 7 * 128);
    assert!(size_of::<Header>() <= HEADER_SIZE);
    // The attachment is page-aligned, so the header at its start is aligned.
    assert!(align_of::<Header>() <= 4096);
    assert!(size_of::<Slot>() == 16);
};

/// The header fields as read (once) and validated.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub kind: u32,
    pub capacity: u64,
    pub max_message: u64,
    pub name: String,
}

/// A reference to one field of the header behind a [`HeaderView`], for the
/// view's lifetime. Only ever a single field (all atomics), never the whole
/// header: no reference covers bytes a peer may write non-atomically.
macro_rules! field {
    ($view:expr, $($f:tt)+) => {{
        let view: &HeaderView<'a> = $view;
        let hdr = view.hdr.as_ptr();
        // SAFETY: `hdr` starts HEADER_SIZE mapped bytes that stay mapped for
        // 'a (HeaderView's constructor contract); the place names one field
        // without making a reference to the whole header, and the field is
        // atomic, so a peer's concurrent writes are no data race.
        let r: &'a _ = unsafe { &(*hdr).$($f)+ };
        r
    }};
}

/// The channel header at the start of an attached segment.
///
/// A safe view: it can only be made over a mapping of at least
/// [`HEADER_SIZE`] bytes that outlives it, and it gives out references to
/// single atomic fields (never to the whole header, whose bytes a peer may
/// change at any time).
#[derive(Clone, Copy)]
pub(crate) struct HeaderView<'a> {
    hdr: NonNull<Header>,
    _mapping: PhantomData<&'a Attachment>,
}

impl<'a> HeaderView<'a> {
    /// The header of `att`, or `None` if the attachment is shorter than a
    /// header page (or, which shmat(2) never returns, not aligned for it).
    pub(crate) fn new(att: &'a Attachment) -> Option<HeaderView<'a>> {
        let base = att.range_ptr(0, HEADER_SIZE).ok()?;
        if base.align_offset(core::mem::align_of::<Header>()) != 0 {
            return None;
        }
        // SAFETY: `base` is aligned and starts HEADER_SIZE mapped bytes that
        // stay mapped while `att` (borrowed for 'a) lives.
        Some(unsafe { HeaderView::from_ptr(base) })
    }

    /// # Safety
    ///
    /// `base` must be aligned for the header and start at least
    /// [`HEADER_SIZE`] bytes that stay mapped (readable; writable for the
    /// writing methods) for `'a`.
    unsafe fn from_ptr(base: *mut u8) -> HeaderView<'a> {
        debug_assert!(base as usize % core::mem::align_of::<Header>() == 0);
        HeaderView {
            hdr: NonNull::new(base.cast::<Header>()).expect("a mapping is never at address 0"),
            _mapping: PhantomData,
        }
    }

    /// The init state (`STATE_INITIALIZING`, then `STATE_READY`).
    pub(crate) fn state(&self) -> &'a AtomicU32 {
        field!(self, state)
    }

    /// The slot of `role`.
    pub(crate) fn slot(&self, role: Role) -> &'a Slot {
        match role {
            Role::Writer => field!(self, writer.0),
            Role::Reader => field!(self, reader.0),
        }
    }

    /// Both slots, writer first.
    pub(crate) fn slots(&self) -> [&'a Slot; 2] {
        [self.slot(Role::Writer), self.slot(Role::Reader)]
    }

    /// The ring's cursors.
    pub(crate) fn cursors(&self) -> &'a Cursors {
        field!(self, cursors)
    }

    /// The magic word (one Relaxed load).
    pub(crate) fn magic(&self) -> u64 {
        field!(self, magic).load(Ordering::Relaxed)
    }

    /// Whether the first 64 bytes are all zero (a header never written).
    pub(crate) fn first_line_zero(&self) -> bool {
        const _: () = assert!(core::mem::offset_of!(Header, name) + 8 == 64);
        let r = Ordering::Relaxed;
        field!(self, magic).load(r) == 0
            && field!(self, version).load(r) == 0
            && field!(self, kind).load(r) == 0
            && field!(self, state).load(r) == 0
            && field!(self, flags).load(r) == 0
            && field!(self, capacity).load(r) == 0
            && field!(self, max_message).load(r) == 0
            && field!(self, data_offset).load(r) == 0
            && field!(self, name_len).load(r) == 0
            && field!(self, _pad).load(r) == 0
            && field!(self, name)[..8].iter().all(|b| b.load(r) == 0)
    }

    /// Reads (each field once) and validates the header of a segment of
    /// `segment_size` bytes. Read after an Acquire load of [`state`] that saw
    /// READY, it gives what the creator wrote (or what a peer scribbled since,
    /// validated all the same).
    ///
    /// [`state`]: HeaderView::state
    pub(crate) fn snapshot(&self, segment_size: u64) -> Result<Snapshot, String> {
        let r = Ordering::Relaxed;
        let magic = field!(self, magic).load(r);
        if magic != MAGIC {
            return Err("not an svshm channel (bad magic)".into());
        }
        let version = field!(self, version).load(r);
        if version != VERSION {
            return Err(format!(
                "channel layout version {version}, this build speaks {VERSION}"
            ));
        }
        let kind = field!(self, kind).load(r);
        if kind != KIND_STREAM
            && kind != KIND_MESSAGES
            && kind != KIND_TOPIC
            && kind != KIND_SERVICE
        {
            return Err(format!("unknown channel kind {kind}"));
        }
        let capacity = field!(self, capacity).load(r);
        let data_offset = field!(self, data_offset).load(r);
        if !capacity.is_power_of_two()
            || capacity < 64
            || capacity > crate::rendezvous::MAX_CAPACITY as u64
        {
            return Err(format!(
                "ring capacity {capacity} is not a power of two of at least 64"
            ));
        }
        if data_offset != HEADER_SIZE as u64 || HEADER_SIZE as u64 + capacity > segment_size {
            return Err(format!(
                "ring of {capacity} bytes at offset {data_offset} does not fit the {segment_size}-byte segment"
            ));
        }
        let max_message = field!(self, max_message).load(r);
        // Two of the largest frames must fit: a message frame's header is 16
        // bytes; a topic frame's is 24, rounded up with its payload to 16.
        let frame_header = if kind == KIND_TOPIC { 32 } else { 16 };
        // (A stream has no messages; a service's listener carries none.)
        if (kind == KIND_MESSAGES || kind == KIND_TOPIC)
            // Compare before any arithmetic on the peer's value.
            && (max_message == 0
                || max_message > capacity / 2 - frame_header
                || max_message > crate::message::MAX_MESSAGE)
        {
            return Err(format!(
                "maximum message size {max_message} does not fit a ring of {capacity} bytes"
            ));
        }
        let name_len = (field!(self, name_len).load(r) as usize).min(NAME_MAX);
        let name_bytes: Vec<u8> = field!(self, name)[..name_len]
            .iter()
            .map(|b| b.load(r))
            .collect();
        let name = String::from_utf8_lossy(&name_bytes).into_owned();
        Ok(Snapshot {
            kind,
            capacity,
            max_message,
            name,
        })
    }

    /// Writes a fresh header into a new segment (zeroed by the kernel, so
    /// cursors, slots and state start at 0). The caller publishes it with a
    /// Release store of READY into [`state`](HeaderView::state).
    ///
    /// The attachment must be writable (a store into a read-only mapping
    /// faults).
    pub(crate) fn write_fresh(&self, kind: u32, capacity: u64, max_message: u64, name: &str) {
        let r = Ordering::Relaxed;
        let n = name.len().min(NAME_MAX);
        field!(self, magic).store(MAGIC, r);
        field!(self, version).store(VERSION, r);
        field!(self, kind).store(kind, r);
        field!(self, capacity).store(capacity, r);
        field!(self, max_message).store(max_message, r);
        field!(self, data_offset).store(HEADER_SIZE as u64, r);
        field!(self, name_len).store(n as u32, r);
        for (slot, &b) in field!(self, name).iter().zip(&name.as_bytes()[..n]) {
            slot.store(b, r);
        }
    }
}

/// The data ring of a channel segment: the `capacity` bytes after the
/// header, or `None` if the attachment does not hold them.
///
/// The returned `RawMem` points into `att` without borrowing it: whoever
/// keeps it must not use it after `att` is detached (a [`Link`] owns both,
/// the attachment dropped last).
///
/// [`Link`]: crate::link::Link
pub(crate) fn ring_mem(att: &Attachment, capacity: u64) -> Option<RawMem> {
    let len = usize::try_from(capacity).ok()?;
    let base = att.range_ptr(HEADER_SIZE, len).ok()?;
    // SAFETY: `range_ptr` checked that [HEADER_SIZE, HEADER_SIZE + capacity)
    // lies inside the mapping; it stays valid while `att` lives, which the
    // holder ensures (above).
    Some(unsafe { RawMem::new(base, len) })
}

/// `count` 32-bit atomics at byte `offset` of `att`, or `None` if they do
/// not lie inside the mapping or are misaligned. Shared memory that other
/// processes write is only ever reached through atomics.
pub(crate) fn atomic_words(att: &Attachment, offset: usize, count: usize) -> Option<&[AtomicU32]> {
    let base = att.range_ptr(offset, count.checked_mul(4)?).ok()?;
    if base as usize % core::mem::align_of::<AtomicU32>() != 0 {
        return None;
    }
    // SAFETY: `range_ptr` checked that the `count * 4` bytes lie inside the
    // mapping, which stays valid while `att` (whose borrow bounds the
    // slice) lives; the pointer is aligned (checked); `AtomicU32` has the
    // size and validity of `u32`, and every access goes through the atomics.
    Some(unsafe { core::slice::from_raw_parts(base.cast::<AtomicU32>(), count) })
}

#[cfg(all(test, not(svshm_loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes in the header page and any segment size: a validated
        /// snapshot or an error, never a panic, and an accepted ring always fits.
        #[test]
        fn hostile_headers_are_contained(
            bytes in proptest::collection::vec(any::<u8>(), 128),
            magic_ok in any::<bool>(),
            size in 0u64..(1 << 24),
        ) {
            let region = svshm::HeapRegion::new(HEADER_SIZE);
            let base = svshm::Region::base(&region);
            // SAFETY: 128 bytes into a HEADER_SIZE allocation we own.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), base, bytes.len()) };
            if magic_ok {
                // SAFETY: in bounds, aligned (page-aligned region).
                unsafe { base.cast::<u64>().write(MAGIC) };
                // SAFETY: offset 8 is inside the region and 4-aligned.
                unsafe { base.add(8).cast::<u32>().write(VERSION) };
            }
            // SAFETY: the region holds HEADER_SIZE page-aligned bytes, alive
            // for this block.
            let view = unsafe { HeaderView::from_ptr(base) };
            if let Ok(s) = view.snapshot(size) {
                prop_assert!(s.capacity.is_power_of_two());
                prop_assert!(HEADER_SIZE as u64 + s.capacity <= size);
                prop_assert!(s.name.len() <= NAME_MAX * 3);
            }
        }
    }
}
