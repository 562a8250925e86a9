//! The on-segment layout: the constants, the `#[repr(C)]` header and
//! directory entry (used only for their field offsets), the block rules, and
//! [`Geometry`], the header's immutable numbers read once and validated.

use super::raw::Raw;
use super::{corrupt, error};
use crate::error::{ErrorKind, Object, Result};
use core::mem::{offset_of, size_of};

/// The magic at offset 0 of a managed segment.
pub const MAGIC: [u8; 8] = *b"SVSHMMG\x01";
/// The layout version this crate writes and reads.
pub const LAYOUT_VERSION: u32 = 1;
/// The longest name, in bytes of UTF-8.
pub const NAME_MAX: usize = 64;
/// The largest alignment [`Managed::allocate`](super::Managed::allocate) and
/// named objects support.
pub const MAX_ALIGN: usize = 64;
/// The number of names [`Managed::format`](super::Managed::format) makes room
/// for.
pub const DEFAULT_MAX_NAMES: usize = 32;

/// The header at offset 0. Only its layout is used (field offsets); the bytes
/// are reached through [`Raw`].
#[repr(C)]
struct Header {
    magic: [u8; 8],
    version: u32,
    /// STATE_*; atomic.
    state: u32,
    header_size: u64,
    total_size: u64,
    pub(super) dir_offset: u64,
    pub(super) dir_capacity: u64,
    pub(super) heap_start: u64,
    pub(super) heap_end: u64,
    /// The pthread_mutex_t (at most 64 bytes, 8-aligned).
    lock: [u64; 8],
    free_head: u64,
    free_bytes: u64,
    recoveries: u64,
    reserved: [u64; 5],
}

/// One directory entry.
#[repr(C)]
struct DirEntry {
    /// ENTRY_*.
    state: u32,
    name_len: u32,
    offset: u64,
    size: u64,
    align: u64,
    tag: u64,
    name: [u8; NAME_MAX],
}

pub(super) const HEADER_SIZE: u64 = size_of::<Header>() as u64;
pub(super) const ENTRY_SIZE: u64 = size_of::<DirEntry>() as u64;
const _: () = assert!(HEADER_SIZE == 192 && ENTRY_SIZE == 104);
const _: () = assert!(size_of::<libc::pthread_mutex_t>() <= 64);
const _: () = assert!(core::mem::align_of::<libc::pthread_mutex_t>() <= 8);
const _: () = assert!(offset_of!(Header, lock) % 8 == 0);

pub(super) const H_MAGIC: u64 = offset_of!(Header, magic) as u64;
pub(super) const H_VERSION: u64 = offset_of!(Header, version) as u64;
pub(super) const H_STATE: u64 = offset_of!(Header, state) as u64;
pub(super) const H_HEADER_SIZE: u64 = offset_of!(Header, header_size) as u64;
pub(super) const H_TOTAL: u64 = offset_of!(Header, total_size) as u64;
pub(super) const H_DIR_OFFSET: u64 = offset_of!(Header, dir_offset) as u64;
pub(super) const H_DIR_CAPACITY: u64 = offset_of!(Header, dir_capacity) as u64;
pub(super) const H_HEAP_START: u64 = offset_of!(Header, heap_start) as u64;
pub(super) const H_HEAP_END: u64 = offset_of!(Header, heap_end) as u64;
pub(super) const H_LOCK: u64 = offset_of!(Header, lock) as u64;
pub(super) const H_FREE_HEAD: u64 = offset_of!(Header, free_head) as u64;
pub(super) const H_FREE_BYTES: u64 = offset_of!(Header, free_bytes) as u64;
pub(super) const H_RECOVERIES: u64 = offset_of!(Header, recoveries) as u64;

pub(super) const E_STATE: u64 = offset_of!(DirEntry, state) as u64;
pub(super) const E_NAME_LEN: u64 = offset_of!(DirEntry, name_len) as u64;
pub(super) const E_OFFSET: u64 = offset_of!(DirEntry, offset) as u64;
pub(super) const E_SIZE: u64 = offset_of!(DirEntry, size) as u64;
pub(super) const E_ALIGN: u64 = offset_of!(DirEntry, align) as u64;
pub(super) const E_TAG: u64 = offset_of!(DirEntry, tag) as u64;
pub(super) const E_NAME: u64 = offset_of!(DirEntry, name) as u64;

pub(super) const STATE_INITIALIZING: u32 = 0;
pub(super) const STATE_READY: u32 = 1;
pub(super) const STATE_POISONED: u32 = 2;

pub(super) const ENTRY_EMPTY: u32 = 0;
pub(super) const ENTRY_USED: u32 = 1;
/// Being constructed or destroyed: on recovery its block (if any) is freed.
pub(super) const ENTRY_PENDING: u32 = 2;

/// Block granularity and block header size.
pub(super) const GRAIN: u64 = 16;
pub(super) const BLOCK_HEADER: u64 = 16;
/// Smallest block: header + next link, rounded to the grain.
pub(super) const MIN_BLOCK: u64 = 32;
/// Tag of a free block at offset b: FREE_TAG ^ b; used: USED_TAG ^ b.
pub(super) const FREE_TAG: u64 = 0x4652_4545_b10c_0000;
pub(super) const USED_TAG: u64 = 0x5553_4544_b10c_0000;

pub(super) const fn align_up(v: u64, a: u64) -> Option<u64> {
    match v.checked_add(a - 1) {
        Some(x) => Some(x & !(a - 1)),
        None => None,
    }
}

// ---------------------------------------------------------------------------
// The geometry, read once at format/open and validated.

#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub(super) total: u64,
    pub(super) dir_offset: u64,
    pub(super) dir_capacity: u64,
    pub(super) heap_start: u64,
    pub(super) heap_end: u64,
}

impl Geometry {
    pub(super) fn compute(len: u64, max_names: usize) -> Result<Geometry> {
        let too_small = |need: Option<u64>| {
            error(
                Object::System,
                ErrorKind::InvalidSize,
                format_args!(
                    "a region of {len} bytes is too small for the header, a directory of {max_names} names ({ENTRY_SIZE} bytes each) and a heap: it needs at least {} bytes; use a bigger region or fewer names",
                    need.map_or("more than 2^64".to_string(), |n| n.to_string())
                ),
            )
        };
        let dir_offset = align_up(HEADER_SIZE, 64).ok_or_else(|| too_small(None))?;
        let need = (max_names as u64)
            .checked_mul(ENTRY_SIZE)
            .and_then(|d| d.checked_add(dir_offset))
            .and_then(|e| align_up(e, 64));
        let heap_start = need.ok_or_else(|| too_small(None))?;
        let heap_end = len & !(GRAIN - 1);
        if heap_end < heap_start || heap_end - heap_start < MIN_BLOCK {
            return Err(too_small(heap_start.checked_add(MIN_BLOCK)));
        }
        Ok(Geometry {
            total: len,
            dir_offset,
            dir_capacity: max_names as u64,
            heap_start,
            heap_end,
        })
    }

    /// Reads and validates the immutable header fields.
    pub(super) fn read(raw: &Raw<'_>) -> Result<Geometry> {
        let len = raw.len;
        if len < HEADER_SIZE {
            return Err(corrupt(format_args!(
                "the region has {len} bytes, less than the {HEADER_SIZE}-byte header"
            )));
        }
        let mut magic = [0u8; 8];
        raw.read(H_MAGIC, &mut magic)?;
        if magic != MAGIC {
            return Err(error(
                Object::System,
                ErrorKind::Corrupt,
                format_args!(
                    "not a managed segment: magic {magic:02x?}, expected {MAGIC:02x?} (\"SVSHMMG\\x01\"); format it first, or open the right segment"
                ),
            ));
        }
        let version = raw.u32(H_VERSION)?;
        if version != LAYOUT_VERSION {
            return Err(error(
                Object::System,
                ErrorKind::Unsupported,
                format_args!(
                    "layout version {version}, but this build reads version {LAYOUT_VERSION}; use a matching svshm"
                ),
            ));
        }
        let header_size = raw.u64(H_HEADER_SIZE)?;
        if header_size != HEADER_SIZE {
            return Err(corrupt(format_args!(
                "header size {header_size}, expected {HEADER_SIZE}"
            )));
        }
        let total = raw.u64(H_TOTAL)?;
        if total > len {
            return Err(corrupt(format_args!(
                "the header says the segment has {total} bytes, but the region has only {len} (truncated?)"
            )));
        }
        let capacity = raw.u64(H_DIR_CAPACITY)?;
        let max_names = usize::try_from(capacity)
            .map_err(|_| corrupt(format_args!("directory capacity {capacity}")))?;
        // The layout is a pure function of (total, capacity): recompute it and
        // demand that every stored offset agrees.
        let expect = Geometry::compute(total, max_names).map_err(|_| {
            corrupt(format_args!(
                "directory capacity {capacity} does not fit {total} bytes"
            ))
        })?;
        let stored = Geometry {
            total,
            dir_offset: raw.u64(H_DIR_OFFSET)?,
            dir_capacity: capacity,
            heap_start: raw.u64(H_HEAP_START)?,
            heap_end: raw.u64(H_HEAP_END)?,
        };
        if (stored.dir_offset, stored.heap_start, stored.heap_end)
            != (expect.dir_offset, expect.heap_start, expect.heap_end)
        {
            return Err(corrupt(format_args!(
                "layout offsets {stored:?} disagree with the layout of a {total}-byte segment with {capacity} names {expect:?}"
            )));
        }
        Ok(expect)
    }

    pub(super) fn entry(&self, i: u64) -> u64 {
        self.dir_offset + i * ENTRY_SIZE
    }

    pub(super) fn heap_size(&self) -> u64 {
        self.heap_end - self.heap_start
    }
}
