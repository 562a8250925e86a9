//! The on-segment header: `#[repr(C)]`, fixed-width fields, so 32- and 64-bit
//! processes agree on it. It occupies the first [`HEADER_SIZE`] bytes of the
//! segment; the data ring follows.
//!
//! Plain fields are written by the creator before `state` becomes
//! [`STATE_READY`] (Release) and only read after it (Acquire), always through
//! volatile raw-pointer reads into local copies that are then validated
//! (never a reference into peer-writable memory; read once, then validated): a peer can scribble over them at any time.

use crate::ring::{Cursors, Line};
use crate::sync::{AtomicU32, AtomicU64};

/// `b"SVSHMCH\x01"` as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SVSHMCH\x01");
/// Layout version; bump on any incompatible change.
pub(crate) const VERSION: u32 = 2;
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

/// One side's record: who holds it and whether it has left.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Slot {
    /// SLOT_EMPTY → SLOT_CLAIMING (CAS) → SLOT_ATTACHED → SLOT_CLOSED.
    pub state: AtomicU32,
    /// Holder's pid.
    pub pid: AtomicU32,
    /// Holder's start time (clock ticks since boot).
    pub start_time: AtomicU64,
}

#[repr(C)]
pub(crate) struct Header {
    pub magic: u64,
    pub version: u32,
    pub kind: u32,
    pub state: AtomicU32,
    pub flags: u32,
    pub capacity: u64,
    pub max_message: u64,
    pub data_offset: u64,
    pub name_len: u32,
    pub _pad: u32,
    pub name: [u8; NAME_MAX],
    pub _pad2: [u8; 8],
    pub writer: Line<Slot>,
    pub reader: Line<Slot>,
    pub cursors: Cursors,
}

#[cfg(not(svshm_loom))]
const _: () = {
    assert!(core::mem::offset_of!(Header, writer) == 128);
    assert!(core::mem::offset_of!(Header, reader) == 256);
    assert!(core::mem::offset_of!(Header, cursors) == 384);
    assert!(core::mem::size_of::<Header>() <= HEADER_SIZE);
};

/// The header fields as read (once) and validated.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub kind: u32,
    pub capacity: u64,
    pub max_message: u64,
    pub name: String,
}

/// Reads a plain header field through a raw pointer (volatile: the peer may
/// change it; we take one copy).
macro_rules! field {
    ($hdr:expr, $f:ident) => {
        // SAFETY: `$hdr` points to a mapped header of HEADER_SIZE bytes (caller's
        // contract); the field is plain bytes, so any value is a valid read.
        unsafe { core::ptr::addr_of!((*$hdr).$f).read_volatile() }
    };
}
pub(crate) use field;

/// Reads and validates the header of a segment of `segment_size` bytes.
///
/// # Safety
///
/// `hdr` must point to at least `HEADER_SIZE` mapped, readable bytes.
pub(crate) unsafe fn read_snapshot(
    hdr: *const Header,
    segment_size: u64,
) -> Result<Snapshot, String> {
    let magic: u64 = field!(hdr, magic);
    if magic != MAGIC {
        return Err("not an svshm channel (bad magic)".into());
    }
    let version: u32 = field!(hdr, version);
    if version != VERSION {
        return Err(format!(
            "channel layout version {version}, this build speaks {VERSION}"
        ));
    }
    let kind: u32 = field!(hdr, kind);
    if kind != KIND_STREAM && kind != KIND_MESSAGES {
        return Err(format!("unknown channel kind {kind}"));
    }
    let capacity: u64 = field!(hdr, capacity);
    let data_offset: u64 = field!(hdr, data_offset);
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
    let max_message: u64 = field!(hdr, max_message);
    if kind == KIND_MESSAGES
        // Compare before any arithmetic on the peer's value.
        && (max_message == 0
            || max_message > capacity / 2 - 16
            || max_message > crate::message::MAX_MESSAGE)
    {
        return Err(format!(
            "maximum message size {max_message} does not fit a ring of {capacity} bytes"
        ));
    }
    let name_len: u32 = field!(hdr, name_len);
    let name_len = (name_len as usize).min(NAME_MAX);
    let name_bytes: [u8; NAME_MAX] = field!(hdr, name);
    let name = String::from_utf8_lossy(&name_bytes[..name_len]).into_owned();
    Ok(Snapshot {
        kind,
        capacity,
        max_message,
        name,
    })
}

/// Writes a fresh header (the segment is zeroed by the kernel, so cursors,
/// slots and state start at 0).
///
/// # Safety
///
/// `hdr` must point to at least `HEADER_SIZE` mapped, writable bytes that no one
/// else uses yet (state is still `STATE_INITIALIZING`).
pub(crate) unsafe fn write_fresh(
    hdr: *mut Header,
    kind: u32,
    capacity: u64,
    max_message: u64,
    name: &str,
) {
    let mut name_buf = [0u8; NAME_MAX];
    let n = name.len().min(NAME_MAX);
    name_buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: per the contract, the header is ours to write.
    unsafe {
        core::ptr::addr_of_mut!((*hdr).magic).write_volatile(MAGIC);
        core::ptr::addr_of_mut!((*hdr).version).write_volatile(VERSION);
        core::ptr::addr_of_mut!((*hdr).kind).write_volatile(kind);
        core::ptr::addr_of_mut!((*hdr).capacity).write_volatile(capacity);
        core::ptr::addr_of_mut!((*hdr).max_message).write_volatile(max_message);
        core::ptr::addr_of_mut!((*hdr).data_offset).write_volatile(HEADER_SIZE as u64);
        core::ptr::addr_of_mut!((*hdr).name_len).write_volatile(n as u32);
        core::ptr::addr_of_mut!((*hdr).name).write_volatile(name_buf);
    }
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
            // SAFETY: the region holds HEADER_SIZE readable bytes.
            if let Ok(s) = unsafe { read_snapshot(base.cast(), size) } {
                prop_assert!(s.capacity.is_power_of_two());
                prop_assert!(HEADER_SIZE as u64 + s.capacity <= size);
                prop_assert!(s.name.len() <= NAME_MAX * 3);
            }
        }
    }
}
