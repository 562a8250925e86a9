//! Managed segments: an allocator and named objects inside a shared
//! [`Region`] (the idea of Boost.Interprocess `managed_shared_memory`).
//!
//! [`Managed::format`] lays out a fresh region; [`Managed::open`] validates one
//! another process formatted. Both work over any [`Region`]: a real
//! [`Attachment`] (see [`Managed::create_segment`] and
//! [`Managed::open_segment`]) or a [`HeapRegion`](crate::HeapRegion) in tests.
//!
//! # Layout (version 1)
//!
//! ```text
//! offset  size            field
//! 0       192             header (#[repr(C)], fixed-width fields, see below)
//! 192     104 * names     name directory: one entry per possible name
//! heap    to the end      the heap: blocks that tile it exactly
//! ```
//!
//! The header (all fields fixed-width, so 32- and 64-bit processes agree):
//!
//! ```text
//! 0    magic "SVSHMMG\x01"      8    layout version (u32, 1)
//! 12   state (atomic u32: 0 initializing, 1 ready, 2 poisoned)
//! 16   header size (192)        24   total size the segment was formatted at
//! 32   directory offset (192)   40   directory capacity (names)
//! 48   heap start               56   heap end
//! 64   pthread_mutex_t (64 bytes reserved)
//! 128  free list head           136  free bytes      144  recoveries
//! 152  reserved (zero)
//! ```
//!
//! A directory entry: state (u32: empty, used, pending), name length (u32),
//! object offset, size, alignment, type tag (u64 each), name (64 bytes).
//! The directory and heap offsets are a pure function of the total size and
//! the capacity; [`Managed::open`] recomputes them and refuses any difference.
//!
//! Every heap block starts with a 16-byte header: its size (a multiple of 16,
//! at least 32) and a tag saying *free* or *used* (mixed with the block's own
//! offset, so a header copied elsewhere does not pass). Free blocks also hold
//! the offset of the next free block: the free list is kept in address order
//! (first fit, blocks split on allocation and coalesced with both neighbours on
//! free). All links are offsets from the region start, never pointers.
//!
//! # Concurrency and robustness
//!
//! Every change to the allocator or directory happens under the mutex in the
//! header: a process-shared (`PTHREAD_PROCESS_SHARED`), robust
//! (`PTHREAD_MUTEX_ROBUST`), error-checking mutex. If its holder dies, the next
//! locker gets `EOWNERDEAD`; it then runs a *check and repair*: the block tiling
//! must be intact (every block well-formed, the sizes summing to the heap), and
//! every directory entry must name a used block. What can be derived again is
//! rebuilt: the free list, the free byte count, coalescing of neighbouring free
//! blocks, and half-constructed or half-destroyed names (their blocks are
//! freed). Every update is ordered so that the tiling is valid after each single
//! store, so a crash anywhere leaves a repairable state (at worst one block
//! allocated by a dying `allocate` caller is leaked). If the check passes,
//! `pthread_mutex_consistent` makes the mutex usable again and the recovery
//! counter ([`Stats::recoveries`]) goes up; if it fails, the segment is marked
//! *poisoned*: the mutex is left unrecoverable and every later operation and
//! every [`Managed::open`] fail with a "poisoned" error. A lock guard dropped
//! while an update is half done (an error or a panic in this process) takes the
//! same path before unlocking.
//!
//! # Trust
//!
//! Everything read from the segment is validated before use (DESIGN.md rule
//! 2): a corrupt or hostile header, directory or heap gives an [`Error`], never
//! a panic or an access outside the region. The one exception is the mutex
//! itself: glibc keeps the robust-list links of a held mutex inside the mutex,
//! so a process that can write the segment can deadlock the others or corrupt
//! the memory of the lock holder. Share a managed segment only between
//! processes that trust each other (the default mode 0600: one user).
//!
//! # Limits
//!
//! Names are 1 to [`NAME_MAX`] bytes of UTF-8; the number of names is fixed at
//! format time ([`DEFAULT_MAX_NAMES`] unless [`Managed::format_with`] says
//! otherwise). Alignment is at most [`MAX_ALIGN`] (64, what every [`Region`]
//! guarantees for its base, so an offset aligned in one process is aligned in
//! all). Allocation is first fit over the free list and `deallocate` walks the
//! heap to prove the offset names a live block: both are O(blocks).
//!
//! ```
//! use svshm::managed::Managed;
//! use svshm::HeapRegion;
//!
//! let m = Managed::format(HeapRegion::new(64 * 1024))?;
//! let counter = m.construct("counter", &41u64)?;
//! counter.write(&(counter.read() + 1));
//! assert_eq!(m.find::<u64>("counter")?.read(), 42);
//! assert!(m.find::<u32>("counter").is_err()); // wrong type: size differs
//!
//! let off = m.allocate(100, 16)?;
//! m.deallocate(off)?;
//! assert!(m.deallocate(off).is_err()); // double free is an error, not UB
//! # Ok::<(), svshm::Error>(())
//! ```

use crate::attach::Attachment;
use crate::error::{Error, ErrorKind, Object, Op, Result};
use crate::offset::Offset;
use crate::region::Region;
use crate::segment::{CreateOptions, Segment};
use core::marker::PhantomData;
use core::mem::{ManuallyDrop, offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The magic at offset 0 of a managed segment.
pub const MAGIC: [u8; 8] = *b"SVSHMMG\x01";
/// The layout version this crate writes and reads.
pub const LAYOUT_VERSION: u32 = 1;
/// The longest name, in bytes of UTF-8.
pub const NAME_MAX: usize = 64;
/// The largest alignment [`Managed::allocate`] and named objects support.
pub const MAX_ALIGN: usize = 64;
/// The number of names [`Managed::format`] makes room for.
pub const DEFAULT_MAX_NAMES: usize = 32;

/// The types that can live in a managed segment: plain bytes, with every bit
/// pattern valid (another process may have written them) and no padding to
/// leak. Implemented for every type with the `zerocopy` traits; derive them:
///
/// ```
/// use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
/// #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy)]
/// #[repr(C)]
/// struct Point { x: u32, y: u32 }
/// fn takes_plain<T: svshm::managed::Plain>() {}
/// takes_plain::<Point>();
/// ```
pub trait Plain: FromBytes + IntoBytes + Immutable + KnownLayout {}
impl<T: FromBytes + IntoBytes + Immutable + KnownLayout> Plain for T {}

/// A 64-bit type tag from a string you choose (FNV-1a), for
/// [`Managed::construct_tagged`] and [`Managed::find_tagged`]. Rust has no type
/// id that is stable across builds, so name the type and its version yourself,
/// e.g. `type_tag("myapp::Stats v2")`.
///
/// ```
/// const TAG: u64 = svshm::managed::type_tag("myapp::Stats v2");
/// assert_ne!(TAG, svshm::managed::type_tag("myapp::Stats v3"));
/// ```
pub const fn type_tag(name: &str) -> u64 {
    let b = name.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < b.len() {
        h ^= b[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

// ---------------------------------------------------------------------------
// On-segment layout.

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
    dir_offset: u64,
    dir_capacity: u64,
    heap_start: u64,
    heap_end: u64,
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

const HEADER_SIZE: u64 = size_of::<Header>() as u64;
const ENTRY_SIZE: u64 = size_of::<DirEntry>() as u64;
const _: () = assert!(HEADER_SIZE == 192 && ENTRY_SIZE == 104);
const _: () = assert!(size_of::<libc::pthread_mutex_t>() <= 64);
const _: () = assert!(core::mem::align_of::<libc::pthread_mutex_t>() <= 8);
const _: () = assert!(offset_of!(Header, lock) % 8 == 0);

const H_MAGIC: u64 = offset_of!(Header, magic) as u64;
const H_VERSION: u64 = offset_of!(Header, version) as u64;
const H_STATE: u64 = offset_of!(Header, state) as u64;
const H_HEADER_SIZE: u64 = offset_of!(Header, header_size) as u64;
const H_TOTAL: u64 = offset_of!(Header, total_size) as u64;
const H_DIR_OFFSET: u64 = offset_of!(Header, dir_offset) as u64;
const H_DIR_CAPACITY: u64 = offset_of!(Header, dir_capacity) as u64;
const H_HEAP_START: u64 = offset_of!(Header, heap_start) as u64;
const H_HEAP_END: u64 = offset_of!(Header, heap_end) as u64;
const H_LOCK: u64 = offset_of!(Header, lock) as u64;
const H_FREE_HEAD: u64 = offset_of!(Header, free_head) as u64;
const H_FREE_BYTES: u64 = offset_of!(Header, free_bytes) as u64;
const H_RECOVERIES: u64 = offset_of!(Header, recoveries) as u64;

const E_STATE: u64 = offset_of!(DirEntry, state) as u64;
const E_NAME_LEN: u64 = offset_of!(DirEntry, name_len) as u64;
const E_OFFSET: u64 = offset_of!(DirEntry, offset) as u64;
const E_SIZE: u64 = offset_of!(DirEntry, size) as u64;
const E_ALIGN: u64 = offset_of!(DirEntry, align) as u64;
const E_TAG: u64 = offset_of!(DirEntry, tag) as u64;
const E_NAME: u64 = offset_of!(DirEntry, name) as u64;

const STATE_INITIALIZING: u32 = 0;
const STATE_READY: u32 = 1;
const STATE_POISONED: u32 = 2;

const ENTRY_EMPTY: u32 = 0;
const ENTRY_USED: u32 = 1;
/// Being constructed or destroyed: on recovery its block (if any) is freed.
const ENTRY_PENDING: u32 = 2;

/// Block granularity and block header size.
const GRAIN: u64 = 16;
const BLOCK_HEADER: u64 = 16;
/// Smallest block: header + next link, rounded to the grain.
const MIN_BLOCK: u64 = 32;
/// Tag of a free block at offset b: FREE_TAG ^ b; used: USED_TAG ^ b.
const FREE_TAG: u64 = 0x4652_4545_b10c_0000;
const USED_TAG: u64 = 0x5553_4544_b10c_0000;

const fn align_up(v: u64, a: u64) -> Option<u64> {
    match v.checked_add(a - 1) {
        Some(x) => Some(x & !(a - 1)),
        None => None,
    }
}

// ---------------------------------------------------------------------------
// Errors.

fn error(object: Object, kind: ErrorKind, msg: impl core::fmt::Display) -> Error {
    Error::new(
        Op::Managed,
        object,
        kind,
        None,
        format!("managed segment: {msg}"),
    )
}

fn invalid(msg: impl core::fmt::Display) -> Error {
    error(Object::System, ErrorKind::InvalidArgument, msg)
}

/// A header, directory or heap that breaks the layout's rules. Kind
/// [`ErrorKind::Corrupt`]; the message starts with "corrupt".
fn corrupt(msg: impl core::fmt::Display) -> Error {
    error(
        Object::System,
        ErrorKind::Corrupt,
        format_args!(
            "corrupt: {msg}; the segment was damaged by a crash or by a faulty process, or is not a managed segment: recreate it"
        ),
    )
}

fn poisoned() -> Error {
    error(
        Object::System,
        ErrorKind::Corrupt,
        "poisoned: a process died while changing the allocator and the damage could not be repaired; recreate the segment",
    )
}

// ---------------------------------------------------------------------------
// Raw access: the only unsafe code of this module, apart from the typed handle.

/// Bounds- and alignment-checked atomic access to a region's bytes (fields as
/// atomics of their size, byte ranges as byte-wise atomic copies).
#[derive(Clone, Copy)]
struct Raw<'a> {
    base: *mut u8,
    len: u64,
    _region: PhantomData<&'a ()>,
}

impl<'a> Raw<'a> {
    fn of<R: Region>(region: &'a R) -> Raw<'a> {
        Raw {
            base: region.base(),
            len: region.len() as u64,
            _region: PhantomData,
        }
    }

    /// A pointer to `[off, off + n)`, which must lie in the region, with `off`
    /// a multiple of `align` (the base is at least 64-aligned).
    fn at(&self, off: u64, n: u64, align: u64) -> Result<*mut u8> {
        match off.checked_add(n) {
            Some(end) if end <= self.len && off % align == 0 => {
                // SAFETY: off + n <= len, so the result stays inside the region
                // the Region contract keeps mapped for 'a.
                Ok(unsafe { self.base.add(off as usize) })
            }
            _ => Err(corrupt(format_args!(
                "access to {n} bytes at offset {off} (alignment {align}) is outside the {}-byte region",
                self.len
            ))),
        }
    }

    fn u64(&self, off: u64) -> Result<u64> {
        let p = self.at(off, 8, 8)?;
        // SAFETY: in bounds and 8-aligned (checked by `at`; the base is
        // 64-aligned), mapped for 'a; atomic because another thread or process
        // may write it (every access of this module to a u64 field is a u64
        // atomic, so the sizes match).
        Ok(unsafe { AtomicU64::from_ptr(p.cast()) }.load(Ordering::Relaxed))
    }

    fn set_u64(&self, off: u64, v: u64) -> Result<()> {
        let p = self.at(off, 8, 8)?;
        // SAFETY: in bounds and aligned (checked); the region is writable
        // (checked at format/open); atomic as in `u64`.
        unsafe { AtomicU64::from_ptr(p.cast()) }.store(v, Ordering::Relaxed);
        Ok(())
    }

    fn u32(&self, off: u64) -> Result<u32> {
        let p = self.at(off, 4, 4)?;
        // SAFETY: as in `u64`, for a 4-aligned u32 field.
        Ok(unsafe { AtomicU32::from_ptr(p.cast()) }.load(Ordering::Relaxed))
    }

    fn set_u32(&self, off: u64, v: u32) -> Result<()> {
        let p = self.at(off, 4, 4)?;
        // SAFETY: as in `set_u64`, for a 4-aligned u32 field.
        unsafe { AtomicU32::from_ptr(p.cast()) }.store(v, Ordering::Relaxed);
        Ok(())
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        let p = self.at(off, buf.len() as u64, 1)?;
        // SAFETY: the source range is inside the region (checked), mapped for
        // 'a; byte-wise atomic, like every safe copy of this crate, because
        // another thread or process may write the bytes meanwhile.
        unsafe { crate::copy::load(p, buf) };
        Ok(())
    }

    fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        let p = self.at(off, data.len() as u64, 1)?;
        // SAFETY: the destination is inside the writable region (checked);
        // byte-wise atomic as in `read`.
        unsafe { crate::copy::store(p, data) };
        Ok(())
    }

    fn fill_zero(&self, off: u64, n: u64) -> Result<()> {
        let p = self.at(off, n, 1)?;
        // SAFETY: the range is inside the writable region (checked); `n` fits
        // in usize because `off + n` is within the region's usize length;
        // byte-wise atomic as in `read`.
        unsafe { crate::copy::fill(p, 0, n as usize) };
        Ok(())
    }

    /// The header's state word, as an atomic (atomics are how shared memory
    /// may be referenced, DESIGN.md rule 1).
    fn state(&self) -> Result<&'a AtomicU32> {
        let p = self.at(H_STATE, 4, 4)?;
        // SAFETY: in bounds and 4-aligned; the memory stays mapped for 'a (the
        // Region contract); every access to this word is atomic.
        Ok(unsafe { AtomicU32::from_ptr(p.cast()) })
    }

    fn mutex(&self) -> Result<*mut libc::pthread_mutex_t> {
        Ok(self
            .at(H_LOCK, size_of::<libc::pthread_mutex_t>() as u64, 8)?
            .cast())
    }

    /// Initialises the robust, process-shared, error-checking mutex.
    fn init_mutex(&self) -> Result<()> {
        let m = self.mutex()?;
        let fail = |what: &str, rc: i32| {
            Error::new(
                Op::Managed,
                Object::System,
                ErrorKind::Other,
                Some(rc),
                format!(
                    "managed segment: {what} failed: {}",
                    crate::error::errno_text(rc)
                ),
            )
        };
        let mut attr = core::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is a local the call initialises.
        let rc = unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) };
        if rc != 0 {
            return Err(fail("pthread_mutexattr_init", rc));
        }
        // SAFETY: `attr` was initialised above; `m` points to 64 writable
        // bytes, 8-aligned, in the region, which no one uses before the
        // state word says READY (format is given the region by value).
        let rc = unsafe {
            let a = attr.as_mut_ptr();
            let mut rc = libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED);
            if rc == 0 {
                rc = libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST);
            }
            if rc == 0 {
                rc = libc::pthread_mutexattr_settype(a, libc::PTHREAD_MUTEX_ERRORCHECK);
            }
            if rc == 0 {
                rc = libc::pthread_mutex_init(m, a);
            }
            libc::pthread_mutexattr_destroy(a);
            rc
        };
        if rc != 0 {
            return Err(fail("initialising the robust process-shared mutex", rc));
        }
        Ok(())
    }

    /// pthread_mutex_lock; returns its code (0, EOWNERDEAD, ...).
    fn lock(&self) -> Result<i32> {
        let m = self.mutex()?;
        // SAFETY: `m` is the mutex `format` initialised (validated header);
        // glibc only reads and writes inside the pthread_mutex_t. Peers can
        // corrupt it; that is the trust limit documented at the module top.
        Ok(unsafe { libc::pthread_mutex_lock(m) })
    }

    /// pthread_mutex_unlock; returns its code (0 when the mutex was ours and
    /// left this thread's robust list).
    fn unlock(&self) -> i32 {
        match self.mutex() {
            // SAFETY: called only by the `Locked` guard, on the thread that
            // locked (the guard is !Send).
            Ok(m) => unsafe { libc::pthread_mutex_unlock(m) },
            Err(_) => libc::EINVAL,
        }
    }

    fn consistent(&self) -> i32 {
        match self.mutex() {
            // SAFETY: called by the thread that got EOWNERDEAD for `m`.
            Ok(m) => unsafe { libc::pthread_mutex_consistent(m) },
            Err(_) => libc::EINVAL,
        }
    }
}

// ---------------------------------------------------------------------------
// The geometry, read once at format/open and validated (rule 2).

#[derive(Debug, Clone, Copy)]
struct Geometry {
    total: u64,
    dir_offset: u64,
    dir_capacity: u64,
    heap_start: u64,
    heap_end: u64,
}

impl Geometry {
    fn compute(len: u64, max_names: usize) -> Result<Geometry> {
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
    fn read(raw: &Raw<'_>) -> Result<Geometry> {
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

    fn entry(&self, i: u64) -> u64 {
        self.dir_offset + i * ENTRY_SIZE
    }

    fn heap_size(&self) -> u64 {
        self.heap_end - self.heap_start
    }
}

// ---------------------------------------------------------------------------
// Public types.

/// Usage numbers of a managed segment, from a full consistency check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Size of the region the segment was formatted in.
    pub total_size: u64,
    /// Offset of the first heap byte.
    pub heap_start: u64,
    /// Offset one past the last heap byte.
    pub heap_end: u64,
    /// Bytes in free blocks (block headers included).
    pub free_bytes: u64,
    /// Number of free blocks (1 when everything is free: coalescing).
    pub free_blocks: u64,
    /// Size of the largest free block (its usable part is 16 bytes less).
    pub largest_free: u64,
    /// Number of allocated blocks (named objects included).
    pub used_blocks: u64,
    /// Number of named objects.
    pub names: u64,
    /// Room in the directory.
    pub max_names: u64,
    /// How often a lock holder died and the next locker repaired the state.
    pub recoveries: u64,
}

impl Stats {
    /// The heap's size in bytes: what `free_bytes` is when nothing is allocated.
    pub fn heap_size(&self) -> u64 {
        self.heap_end - self.heap_start
    }
}

/// A directory entry, as [`Managed::entries`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name.
    pub name: String,
    /// Where the object is.
    pub offset: Offset<u8>,
    /// `size_of` of its type.
    pub size: u64,
    /// `align_of` of its type.
    pub align: u64,
    /// Its type tag (0 for untagged).
    pub tag: u64,
}

/// What [`peek`] sees in a managed segment: the header's numbers and the
/// named objects, read without taking the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// `"ready"`, `"initializing"` (still being formatted) or `"poisoned"`.
    pub state: &'static str,
    /// Size of the region the segment was formatted in.
    pub total_size: u64,
    /// Offset of the first heap byte.
    pub heap_start: u64,
    /// Offset one past the last heap byte.
    pub heap_end: u64,
    /// Bytes in free blocks, as the header's counter says (not re-counted).
    pub free_bytes: u64,
    /// Room in the directory.
    pub max_names: u64,
    /// How often a lock holder died and the next locker repaired the state.
    pub recoveries: u64,
    /// The named objects.
    pub entries: Vec<Entry>,
}

/// Reads a managed segment's header and directory without the lock and
/// without writing anything, for inspection tools (`svshm stat`): a
/// read-only attachment is enough, and a process that holds the lock (or
/// died holding it) does not block it. Every field is validated as by
/// [`Managed::open`], but the heap is not walked and, since other processes
/// may be changing the directory meanwhile, the snapshot can be out of date
/// by the time it returns (or fail as corrupt if it caught an entry
/// half-written: retry).
///
/// ```
/// use svshm::{HeapRegion, managed::{Managed, peek}};
/// let m = Managed::format(HeapRegion::new(8192))?;
/// m.construct("n", &5u64)?;
/// let s = peek(m.region())?;
/// assert_eq!((s.state, s.entries.len()), ("ready", 1));
/// assert_eq!(s.entries[0].name, "n");
/// # Ok::<(), svshm::Error>(())
/// ```
pub fn peek(region: &impl Region) -> Result<Summary> {
    let raw = Raw::of(region);
    // SYNC: pairs with the Release store of READY in `format`, as in `open`.
    let state = raw.state().map(|s| s.load(Ordering::Acquire));
    let geo = Geometry::read(&raw)?;
    let state = match state? {
        STATE_READY => "ready",
        STATE_POISONED => "poisoned",
        STATE_INITIALIZING => "initializing",
        s => return Err(corrupt(format_args!("state word {s}"))),
    };
    let mut entries = Vec::new();
    for i in 0..geo.dir_capacity {
        let d = read_dir(&raw, &geo, i)?;
        if d.state == ENTRY_USED {
            entries.push(Entry {
                name: d.name,
                offset: Offset::new(d.offset),
                size: d.size,
                align: d.align,
                tag: d.tag,
            });
        }
    }
    Ok(Summary {
        state,
        total_size: geo.total,
        heap_start: geo.heap_start,
        heap_end: geo.heap_end,
        free_bytes: raw.u64(H_FREE_BYTES)?,
        max_names: geo.dir_capacity,
        recoveries: raw.u64(H_RECOVERIES)?,
        entries,
    })
}

/// A named object of type `T` in a managed segment.
///
/// The memory may be written by other processes at any time, so there is no
/// `&T`: [`read`](Named::read) and [`write`](Named::write) copy the whole
/// value with byte-wise atomic copies, and [`as_ptr`](Named::as_ptr) gives a raw
/// pointer for atomics of your own. The pointer always lies inside the region
/// (checked when the handle was made), so using it is never undefined
/// behaviour; but if this or another process destroys the object, the handle
/// keeps pointing at heap memory that is free or reused: writing through it
/// then clobbers allocator metadata (later operations report the segment
/// corrupt) or another object. Drop handles before destroying their object.
pub struct Named<'m, T> {
    ptr: *mut T,
    offset: Offset<T>,
    _m: PhantomData<&'m ()>,
}

impl<T: Plain> Named<'_, T> {
    /// The object's offset in the region (the same in every process).
    pub fn offset(&self) -> Offset<T> {
        self.offset
    }

    /// A raw pointer to the object, in bounds and aligned for `T`.
    pub fn as_ptr(&self) -> *mut T {
        self.ptr
    }

    /// Copies the object out.
    ///
    /// The copy is a byte-wise atomic load (`atomic_memcpy::atomic_load`), so
    /// it is sound while other threads or processes [`write`](Self::write) the
    /// object; it is not a snapshot: during a concurrent write the value may mix
    /// old and new bytes (every mix is a valid `T`, as `T: FromBytes`).
    pub fn read(&self) -> T {
        // SAFETY: `ptr` is in bounds and aligned for T (checked when the handle
        // was made) and stays mapped while the Managed borrow 'm lives; T has
        // no padding (IntoBytes), and concurrent safe writes of this object are
        // `atomic_store`s of the same T at the same address (same granularity).
        let v = unsafe { atomic_memcpy::atomic_load(self.ptr, Ordering::Relaxed) };
        // SAFETY: every byte was copied from initialised segment memory (the
        // kernel zero-fills segments) and every bit pattern is a valid T
        // (T: FromBytes).
        unsafe { v.assume_init() }
    }

    /// Copies `value` in, as a byte-wise atomic store
    /// (`atomic_memcpy::atomic_store`): concurrent writers may interleave
    /// bytes, but there is no data race.
    pub fn write(&self, value: &T) {
        // A bitwise copy that is never dropped, so a `T` with drop glue is not
        // dropped twice; ManuallyDrop<T> has the layout of T.
        // SAFETY: `value` is a valid, aligned reference.
        let copy = ManuallyDrop::new(unsafe { core::ptr::read(value) });
        // SAFETY: `ptr` points to size_of::<T>() writable bytes inside the
        // region, aligned for T (checked when the handle was made; the region
        // is writable, checked at format/open), mapped while 'm lives; T has no
        // padding (IntoBytes); concurrent safe accesses of this object use the
        // same T at the same address.
        unsafe {
            atomic_memcpy::atomic_store(self.ptr.cast::<ManuallyDrop<T>>(), copy, Ordering::Relaxed)
        };
    }
}

impl<T> core::fmt::Debug for Named<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Named({:?})", self.offset)
    }
}

/// A managed segment over a [`Region`]: an allocator plus named objects,
/// usable by several processes at once. See the [module docs](self).
///
/// While a thread holds the lock, glibc keeps the lock's address on that
/// thread's robust list and writes through it on the thread's next robust lock
/// (and the kernel does at thread exit). So if a [`Locked`] guard is leaked
/// (`mem::forget`), dropping the `Managed` leaks the region instead of
/// unmapping or freeing it.
#[derive(Debug)]
pub struct Managed<R: Region> {
    region: ManuallyDrop<R>,
    geo: Geometry,
    /// Guards whose lock has not been released (successfully unlocked): while
    /// nonzero, some thread's robust list may point into the region.
    held: AtomicUsize,
}

impl<R: Region> Drop for Managed<R> {
    fn drop(&mut self) {
        if *self.held.get_mut() == 0 {
            // SAFETY: `region` is dropped only here or taken in
            // `into_region` (which does not run this Drop), exactly once.
            unsafe { ManuallyDrop::drop(&mut self.region) };
        }
        // Else a guard was leaked: the region stays mapped forever, so no
        // robust list entry dangles.
    }
}

impl<R: Region> Managed<R> {
    /// Formats `region` as an empty managed segment with room for
    /// [`DEFAULT_MAX_NAMES`] names.
    ///
    /// The region must not be in use by anyone else while it is formatted
    /// (a fresh segment: create it, format it, then let others open it).
    /// Everything in it is overwritten.
    pub fn format(region: R) -> Result<Self> {
        Self::format_with(region, DEFAULT_MAX_NAMES)
    }

    /// Like [`format`](Self::format), with room for `max_names` names (each
    /// takes 104 bytes of directory).
    ///
    /// ```
    /// use svshm::{HeapRegion, managed::Managed};
    /// let m = Managed::format_with(HeapRegion::new(4096), 4)?;
    /// assert_eq!(m.stats()?.max_names, 4);
    /// assert!(Managed::format(HeapRegion::new(1024)).is_err()); // too small
    /// # Ok::<(), svshm::Error>(())
    /// ```
    pub fn format_with(region: R, max_names: usize) -> Result<Self> {
        if !region.is_writable() {
            return Err(read_only());
        }
        let raw = Raw::of(&region);
        let geo = Geometry::compute(raw.len, max_names)?;
        raw.state()?.store(STATE_INITIALIZING, Ordering::Relaxed);
        raw.fill_zero(0, geo.heap_start)?;
        raw.set_u32(H_VERSION, LAYOUT_VERSION)?;
        raw.set_u64(H_HEADER_SIZE, HEADER_SIZE)?;
        raw.set_u64(H_TOTAL, geo.total)?;
        raw.set_u64(H_DIR_OFFSET, geo.dir_offset)?;
        raw.set_u64(H_DIR_CAPACITY, geo.dir_capacity)?;
        raw.set_u64(H_HEAP_START, geo.heap_start)?;
        raw.set_u64(H_HEAP_END, geo.heap_end)?;
        let b = geo.heap_start;
        raw.set_u64(b, geo.heap_size())?;
        raw.set_u64(b + 8, FREE_TAG ^ b)?;
        raw.set_u64(b + 16, 0)?;
        raw.set_u64(H_FREE_HEAD, b)?;
        raw.set_u64(H_FREE_BYTES, geo.heap_size())?;
        raw.set_u64(H_RECOVERIES, 0)?;
        raw.init_mutex()?;
        raw.write(H_MAGIC, &MAGIC)?;
        // SYNC: publishes the header, directory and heap written above to the
        // Acquire load of the state in `open`.
        raw.state()?.store(STATE_READY, Ordering::Release);
        Ok(Managed::new(region, geo))
    }

    fn new(region: R, geo: Geometry) -> Self {
        Managed {
            region: ManuallyDrop::new(region),
            geo,
            held: AtomicUsize::new(0),
        }
    }

    /// Opens a region another process (or this one) formatted, validating
    /// everything: magic, version, sizes, every layout offset (bounds and
    /// alignment), the state word, and then, under the lock, the whole heap
    /// and directory ([`check`](Self::check)). A corrupt or hostile segment
    /// gives an error (kind [`ErrorKind::Corrupt`], message starting
    /// "corrupt", "poisoned" or "not a managed segment"; a newer layout gives
    /// [`ErrorKind::Unsupported`]), never a panic or an access outside the
    /// region. The check takes the lock, so `open` waits while another
    /// process holds it, and repairs the state if its holder died.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use svshm::{HeapRegion, managed::Managed};
    /// let region = Arc::new(HeapRegion::new(16 * 1024));
    /// let a = Managed::format(region.clone())?;
    /// a.construct("x", &7u32)?;
    /// let b = Managed::open(region.clone())?; // as another process would
    /// assert_eq!(b.find::<u32>("x")?.read(), 7);
    /// assert!(Managed::open(HeapRegion::new(16 * 1024)).is_err()); // not formatted
    /// # Ok::<(), svshm::Error>(())
    /// ```
    pub fn open(region: R) -> Result<Self> {
        if !region.is_writable() {
            return Err(read_only());
        }
        let raw = Raw::of(&region);
        // SYNC: pairs with the Release store of READY at the end of `format`;
        // loaded before the header fields it publishes are read.
        let state = raw.state().map(|s| s.load(Ordering::Acquire));
        let geo = Geometry::read(&raw)?;
        match state? {
            STATE_READY => {}
            STATE_POISONED => return Err(poisoned()),
            STATE_INITIALIZING => {
                return Err(invalid(
                    "not ready: the segment is still being formatted; retry shortly",
                ));
            }
            s => return Err(corrupt(format_args!("state word {s}"))),
        }
        let m = Managed::new(region, geo);
        m.check()?;
        Ok(m)
    }

    /// The region underneath.
    pub fn region(&self) -> &R {
        &self.region
    }

    /// Gives the region back.
    ///
    /// # Panics
    ///
    /// If a [`Locked`] guard of this segment was leaked (`mem::forget`): the
    /// lock is still on that thread's robust list, so the region must stay
    /// mapped; it is leaked.
    pub fn into_region(self) -> R {
        let mut this = ManuallyDrop::new(self);
        assert!(
            *this.held.get_mut() == 0,
            "Managed::into_region: a lock guard was leaked (mem::forget) and still holds the lock; the region cannot be given back and is leaked"
        );
        // SAFETY: `this` is never dropped, so the region is taken exactly once
        // and Managed::drop does not run.
        unsafe { ManuallyDrop::take(&mut this.region) }
    }

    fn raw(&self) -> Raw<'_> {
        Raw::of(&*self.region)
    }

    /// Takes the segment's lock, for several operations in one critical
    /// section (e.g. find-or-construct, read-modify-write of a named object).
    /// Operations on [`Managed`] itself take the lock too, so calling them
    /// while this thread holds a guard gives an error ("already locked by this
    /// thread") rather than a deadlock.
    ///
    /// If the previous holder died, the state is checked and repaired first
    /// (see the [module docs](self)); an unrepairable state gives a
    /// "poisoned" error, now and forever after.
    ///
    /// ```
    /// use svshm::{HeapRegion, managed::Managed};
    /// let m = Managed::format(HeapRegion::new(16 * 1024))?;
    /// m.construct("hits", &0u64)?;
    /// {
    ///     let g = m.lock()?;
    ///     let hits = g.find::<u64>("hits")?;
    ///     hits.write(&(hits.read() + 1)); // no other locker can interleave
    ///     assert!(m.allocate(8, 8).is_err()); // same thread, lock held: error
    /// }
    /// assert_eq!(m.find::<u64>("hits")?.read(), 1);
    /// # Ok::<(), svshm::Error>(())
    /// ```
    pub fn lock(&self) -> Result<Locked<'_, R>> {
        let raw = self.raw();
        if raw.state()?.load(Ordering::Acquire) == STATE_POISONED {
            return Err(poisoned());
        }
        let guard = |dirty| {
            // Counted until the guard's unlock succeeds (see Managed::drop).
            self.held.fetch_add(1, Ordering::Relaxed);
            Locked {
                m: self,
                dirty: core::cell::Cell::new(dirty),
                _not_send: PhantomData,
            }
        };
        match raw.lock()? {
            0 => {
                let g = guard(false);
                if raw.state()?.load(Ordering::Acquire) == STATE_POISONED {
                    return Err(poisoned()); // unlocks in Drop
                }
                Ok(g)
            }
            libc::EOWNERDEAD => {
                // The holder died, possibly mid-update. A guard marked dirty
                // repairs or poisons in its Drop if anything below fails.
                let g = guard(true);
                if let Err(e) = g.repair() {
                    // Poisoned by `repair`; unlocking without
                    // pthread_mutex_consistent leaves the mutex unrecoverable.
                    g.dirty.set(false);
                    return Err(e);
                }
                if raw.consistent() != 0 {
                    g.dirty.set(false);
                    g.poison()?;
                    return Err(poisoned());
                }
                let n = raw.u64(H_RECOVERIES)?;
                raw.set_u64(H_RECOVERIES, n.wrapping_add(1))?;
                g.dirty.set(false);
                Ok(g)
            }
            libc::ENOTRECOVERABLE => Err(poisoned()),
            libc::EDEADLK => Err(error(
                Object::System,
                ErrorKind::Other,
                "the lock is already held by this thread (a Locked guard is alive); use the guard's methods",
            )),
            rc => Err(Error::new(
                Op::Managed,
                Object::System,
                ErrorKind::Other,
                Some(rc),
                format!(
                    "managed segment: pthread_mutex_lock failed: {}; the lock word may be corrupt",
                    crate::error::errno_text(rc)
                ),
            )),
        }
    }

    /// Allocates `size` bytes (at least 1) aligned to `align` (a power of two,
    /// at most [`MAX_ALIGN`]). Out of space gives [`ErrorKind::OutOfMemory`]
    /// with the amount asked for, the free total and the largest free block.
    ///
    /// ```
    /// use svshm::{HeapRegion, managed::Managed};
    /// let m = Managed::format(HeapRegion::new(8192))?;
    /// let off = m.allocate(24, 8)?;
    /// let p = off.resolve(m.region())?; // raw pointer, bounds-checked
    /// // SAFETY: 24 bytes at p are ours (just allocated), in bounds.
    /// unsafe { p.write_bytes(0xab, 24) };
    /// let err = m.allocate(1 << 20, 8).unwrap_err();
    /// assert_eq!(err.kind(), svshm::ErrorKind::OutOfMemory);
    /// m.deallocate(off)?;
    /// # Ok::<(), svshm::Error>(())
    /// ```
    pub fn allocate(&self, size: usize, align: usize) -> Result<Offset<u8>> {
        self.lock()?.allocate(size, align)
    }

    /// Frees a block [`allocate`](Self::allocate) gave. An offset that is not
    /// the start of a live block (a double free, a foreign or interior offset)
    /// or that holds a named object (use [`destroy`](Self::destroy)) is an
    /// error and changes nothing.
    pub fn deallocate(&self, offset: Offset<u8>) -> Result<()> {
        self.lock()?.deallocate(offset)
    }

    /// Allocates an object named `name`, writes `value` into it, and returns a
    /// handle. Untagged: [`find`](Self::find) checks size and alignment.
    /// A taken name gives [`ErrorKind::AlreadyExists`]; a full directory
    /// [`ErrorKind::NoSpace`].
    pub fn construct<T: Plain>(&self, name: &str, value: &T) -> Result<Named<'_, T>> {
        self.lock()?.construct_tagged(name, 0, value)
    }

    /// Like [`construct`](Self::construct), recording `tag` (see
    /// [`type_tag`]) so that [`find_tagged`](Self::find_tagged) can tell types
    /// of the same size apart.
    ///
    /// ```
    /// use svshm::{HeapRegion, managed::{Managed, type_tag}};
    /// const CELSIUS: u64 = type_tag("celsius f64");
    /// const FAHRENHEIT: u64 = type_tag("fahrenheit f64");
    /// let m = Managed::format(HeapRegion::new(8192))?;
    /// m.construct_tagged("temp", CELSIUS, &21.5f64)?;
    /// assert_eq!(m.find_tagged::<f64>("temp", CELSIUS)?.read(), 21.5);
    /// assert!(m.find_tagged::<f64>("temp", FAHRENHEIT).is_err());
    /// assert!(m.find::<f64>("temp").is_err()); // untagged find wants tag 0
    /// # Ok::<(), svshm::Error>(())
    /// ```
    pub fn construct_tagged<T: Plain>(
        &self,
        name: &str,
        tag: u64,
        value: &T,
    ) -> Result<Named<'_, T>> {
        self.lock()?.construct_tagged(name, tag, value)
    }

    /// Finds the untagged object `name`; its recorded size and alignment must
    /// be those of `T` (else [`ErrorKind::InvalidArgument`]). No such name:
    /// [`ErrorKind::NotFound`].
    pub fn find<T: Plain>(&self, name: &str) -> Result<Named<'_, T>> {
        self.lock()?.find_tagged(name, 0)
    }

    /// Finds `name`, which must have been constructed with `tag` and a type of
    /// `T`'s size and alignment.
    pub fn find_tagged<T: Plain>(&self, name: &str, tag: u64) -> Result<Named<'_, T>> {
        self.lock()?.find_tagged(name, tag)
    }

    /// Destroys the object `name` and frees its memory. Handles to it in any
    /// process then point at free heap memory.
    pub fn destroy(&self, name: &str) -> Result<()> {
        self.lock()?.destroy(name)
    }

    /// The names in the directory, in directory order.
    pub fn names(&self) -> Result<Vec<String>> {
        Ok(self.entries()?.into_iter().map(|e| e.name).collect())
    }

    /// The directory: name, offset, size, alignment and tag of every object.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        self.lock()?.entries()
    }

    /// Checks the whole segment under the lock (every block, the free list,
    /// the free count, every directory entry) and returns usage numbers.
    /// Changes nothing.
    pub fn check(&self) -> Result<Stats> {
        self.lock()?.check()
    }

    /// Same as [`check`](Self::check).
    pub fn stats(&self) -> Result<Stats> {
        self.check()
    }
}

fn read_only() -> Error {
    error(
        Object::System,
        ErrorKind::ReadOnly,
        "the region is read-only; a managed segment needs a read-write attachment (its lock is written)",
    )
}

impl Managed<Attachment> {
    /// Creates a segment with `options` (exclusive, mode 0600 by default),
    /// attaches it and formats it. If anything after the create fails, the
    /// segment is removed. Remove it yourself when done
    /// (`m.region().segment().remove_on_drop()`).
    ///
    /// ```
    /// use svshm::{CreateOptions, Key, Segment, managed::Managed};
    /// let key = Key::from_name(&format!("managed-doc-{}", std::process::id()));
    /// let m = Managed::create_segment(&CreateOptions::new(64 * 1024).key(key))?;
    /// let _rm = m.region().segment().remove_on_drop();
    /// m.construct("answer", &42u32)?;
    ///
    /// // Another process:
    /// let other = Managed::open_segment(Segment::open(key, 0)?)?;
    /// assert_eq!(other.find::<u32>("answer")?.read(), 42);
    /// # Ok::<(), svshm::Error>(())
    /// ```
    pub fn create_segment(options: &CreateOptions) -> Result<Self> {
        let seg = options.create()?;
        let guard = seg.remove_on_drop();
        let m = Managed::format(seg.attach()?)?;
        guard.disarm();
        Ok(m)
    }

    /// Attaches `segment` read-write and [`open`](Managed::open)s it, after
    /// checking (IPC_STAT) that its owner and creator are this process's
    /// effective uid: a segment planted under the key by another user is
    /// refused ([`ErrorKind::PermissionDenied`]). To share with other users,
    /// attach yourself and call [`Managed::open`].
    pub fn open_segment(segment: Segment) -> Result<Self> {
        let info = segment.stat()?;
        let me = crate::sys::geteuid();
        if info.uid != me || info.creator_uid != me {
            return Err(Error::new(
                Op::Open,
                Object::Id(segment.id()),
                ErrorKind::PermissionDenied,
                None,
                format!(
                    "managed segment: owned by uid {} and created by uid {}, not by us (uid {me}); refusing a segment another user may have planted. Attach it yourself and use Managed::open if that is intended",
                    info.uid, info.creator_uid
                ),
            ));
        }
        Managed::open(segment.attach()?)
    }
}

// ---------------------------------------------------------------------------
// The lock guard and everything done under the lock.

/// The segment's lock, held (see [`Managed::lock`]). Released on Drop. Its
/// methods are those of [`Managed`], done in one critical section.
///
/// Not `Send`: a pthread mutex is unlocked by the thread that locked it.
pub struct Locked<'m, R: Region> {
    m: &'m Managed<R>,
    /// Set while an update is half done; Drop then repairs (or poisons).
    dirty: core::cell::Cell<bool>,
    _not_send: PhantomData<*mut ()>,
}

impl<R: Region> core::fmt::Debug for Locked<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Locked")
    }
}

impl<R: Region> Drop for Locked<'_, R> {
    fn drop(&mut self) {
        if self.dirty.get() && self.repair().is_err() {
            let _ = self.poison();
        }
        if self.raw().unlock() == 0 {
            self.m.held.fetch_sub(1, Ordering::Relaxed);
        }
        // Else the lock word was tampered with and the mutex may still be on
        // this thread's robust list: keep counting it, so the region is leaked
        // rather than unmapped under that list.
    }
}

/// One heap block, read and validated.
#[derive(Debug, Clone, Copy)]
struct Block {
    at: u64,
    size: u64,
    free: bool,
}

impl Block {
    fn end(&self) -> u64 {
        self.at + self.size
    }
}

/// One directory entry, read and validated.
struct Dir {
    index: u64,
    at: u64,
    state: u32,
    name: String,
    offset: u64,
    size: u64,
    align: u64,
    tag: u64,
}

/// Reads and validates directory entry `i`.
fn read_dir(raw: &Raw<'_>, g: &Geometry, i: u64) -> Result<Dir> {
    let at = g.entry(i);
    let state = raw.u32(at + E_STATE)?;
    let mut d = Dir {
        index: i,
        at,
        state,
        name: String::new(),
        offset: 0,
        size: 0,
        align: 0,
        tag: 0,
    };
    match state {
        ENTRY_EMPTY => return Ok(d),
        ENTRY_USED | ENTRY_PENDING => {}
        s => return Err(corrupt(format_args!("directory entry {i} has state {s}"))),
    }
    let len = raw.u32(at + E_NAME_LEN)? as usize;
    if len == 0 || len > NAME_MAX {
        return Err(corrupt(format_args!(
            "directory entry {i} has name length {len}"
        )));
    }
    let mut buf = [0u8; NAME_MAX];
    raw.read(at + E_NAME, &mut buf[..len])?;
    d.name = String::from_utf8(buf[..len].to_vec())
        .map_err(|_| corrupt(format_args!("directory entry {i}: name is not UTF-8")))?;
    d.offset = raw.u64(at + E_OFFSET)?;
    d.size = raw.u64(at + E_SIZE)?;
    d.align = raw.u64(at + E_ALIGN)?;
    d.tag = raw.u64(at + E_TAG)?;
    if !d.align.is_power_of_two() || d.align > MAX_ALIGN as u64 {
        return Err(corrupt(format_args!(
            "directory entry {i} ({:?}) has alignment {}",
            d.name, d.align
        )));
    }
    if state == ENTRY_USED || d.offset != 0 {
        let ok = d.offset >= g.heap_start + BLOCK_HEADER
            && d.offset % d.align.max(GRAIN) == 0
            && d.offset
                .checked_add(d.size.max(1))
                .is_some_and(|e| e <= g.heap_end);
        if !ok {
            return Err(corrupt(format_args!(
                "directory entry {i} ({:?}): object of {} bytes at offset {} (alignment {}) is not inside the heap [{}, {})",
                d.name, d.size, d.offset, d.align, g.heap_start, g.heap_end
            )));
        }
    }
    Ok(d)
}

impl<'m, R: Region> Locked<'m, R> {
    fn raw(&self) -> Raw<'m> {
        self.m.raw()
    }

    fn geo(&self) -> Geometry {
        self.m.geo
    }

    fn poison(&self) -> Result<()> {
        self.raw().state()?.store(STATE_POISONED, Ordering::Release);
        Ok(())
    }

    /// Starts an update: if it returns early, Drop repairs.
    fn begin(&self) {
        self.dirty.set(true);
    }

    fn end(&self) {
        self.dirty.set(false);
    }

    /// Reads and validates the block at `at`.
    fn block(&self, at: u64) -> Result<Block> {
        let g = self.geo();
        if at < g.heap_start || at % GRAIN != 0 || at > g.heap_end.saturating_sub(MIN_BLOCK) {
            return Err(corrupt(format_args!(
                "block offset {at} is not a 16-aligned offset inside the heap [{}, {})",
                g.heap_start, g.heap_end
            )));
        }
        let raw = self.raw();
        let size = raw.u64(at)?;
        let tag = raw.u64(at + 8)?;
        if size < MIN_BLOCK || size % GRAIN != 0 || size > g.heap_end - at {
            return Err(corrupt(format_args!(
                "block at {at} has size {size}, which is not a multiple of 16 of at least 32 ending inside the heap (end {})",
                g.heap_end
            )));
        }
        let free = if tag == FREE_TAG ^ at {
            true
        } else if tag == USED_TAG ^ at {
            false
        } else {
            return Err(corrupt(format_args!(
                "block at {at} has tag {tag:#x}, neither free nor used"
            )));
        };
        Ok(Block { at, size, free })
    }

    /// Every block, in address order; they must tile the heap exactly.
    fn blocks(&self) -> Result<Vec<Block>> {
        let g = self.geo();
        let mut v = Vec::new();
        let mut at = g.heap_start;
        while at < g.heap_end {
            let b = self.block(at)?;
            at = b.end();
            v.push(b);
        }
        Ok(v)
    }

    fn free_link(&self, at: u64) -> Result<u64> {
        self.raw().u64(at + 16)
    }

    fn set_free_link(&self, at: u64, next: u64) -> Result<()> {
        self.raw().set_u64(at + 16, next)
    }

    /// Sets the link that points at the free block after `prev` (the list
    /// head when `prev` is 0).
    fn link_after(&self, prev: u64, next: u64) -> Result<()> {
        if prev == 0 {
            self.raw().set_u64(H_FREE_HEAD, next)
        } else {
            self.set_free_link(prev, next)
        }
    }

    fn add_free_bytes(&self, delta: i128) -> Result<()> {
        let raw = self.raw();
        let v = i128::from(raw.u64(H_FREE_BYTES)?) + delta;
        if !(0..=i128::from(self.geo().heap_size())).contains(&v) {
            return Err(corrupt(format_args!("free byte count would become {v}")));
        }
        raw.set_u64(H_FREE_BYTES, v as u64)
    }

    /// See [`Managed::allocate`].
    pub fn allocate(&self, size: usize, align: usize) -> Result<Offset<u8>> {
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(invalid(format_args!(
                "alignment {align} is not a power of two up to {MAX_ALIGN}"
            )));
        }
        let g = self.geo();
        let asked_align = align;
        let align = (align as u64).max(GRAIN);
        // None: bigger than the heap; the walk below still finds the largest
        // free block for the error.
        let need = align_up((size as u64).max(1), GRAIN)
            .filter(|p| *p <= g.heap_size())
            .map(|p| p + BLOCK_HEADER);
        let raw = self.raw();
        let mut prev = 0u64;
        let mut cur = raw.u64(H_FREE_HEAD)?;
        let mut largest = 0u64;
        while cur != 0 {
            if cur <= prev {
                return Err(corrupt(format_args!(
                    "free list is not in address order ({cur} after {prev})"
                )));
            }
            let f = self.block(cur)?;
            if !f.free {
                return Err(corrupt(format_args!(
                    "used block {cur} is on the free list"
                )));
            }
            largest = largest.max(f.size);
            let next = self.free_link(cur)?;
            // Where the block would start: after a front gap that is either
            // empty or big enough to stay a free block.
            let mut user = align_up(f.at + BLOCK_HEADER, align).unwrap_or(u64::MAX);
            let mut gap = user.saturating_sub(BLOCK_HEADER + f.at);
            if gap != 0 && gap < MIN_BLOCK {
                user = user.saturating_add(align);
                gap += align;
            }
            let start = f.at + gap;
            let fits = need
                .and_then(|n| start.checked_add(n))
                .filter(|end| *end <= f.end());
            if let Some(mut end) = fits {
                self.begin();
                let mut tail = f.end() - end;
                if tail < MIN_BLOCK {
                    end = f.end();
                    tail = 0;
                }
                // Order: headers of the new pieces (inside F, not yet part of
                // the tiling), then one store of F's size switches the tiling;
                // links last. Recovery rebuilds links from the tiling.
                if tail > 0 {
                    raw.set_u64(end, tail)?;
                    raw.set_u64(end + 8, FREE_TAG ^ end)?;
                    self.set_free_link(end, next)?;
                }
                let after = if tail > 0 { end } else { next };
                if gap > 0 {
                    raw.set_u64(start, end - start)?;
                    raw.set_u64(start + 8, USED_TAG ^ start)?;
                    raw.set_u64(f.at, gap)?;
                    self.set_free_link(f.at, after)?;
                } else {
                    raw.set_u64(f.at, end - f.at)?;
                    self.link_after(prev, after)?;
                    raw.set_u64(f.at + 8, USED_TAG ^ f.at)?;
                }
                self.add_free_bytes(-i128::from(end - start))?;
                self.end();
                return Ok(Offset::new(user));
            }
            prev = cur;
            cur = next;
        }
        Err(self.out_of_space(size, asked_align, largest))
    }

    fn out_of_space(&self, size: usize, align: usize, largest: u64) -> Error {
        let free = self.raw().u64(H_FREE_BYTES).unwrap_or(0);
        error(
            Object::System,
            ErrorKind::OutOfMemory,
            format_args!(
                "out of space: asked for {size} bytes aligned to {align}, but only {free} of {} heap bytes are free, the largest free block holds {} bytes; free something or use a bigger segment",
                self.geo().heap_size(),
                largest.saturating_sub(BLOCK_HEADER)
            ),
        )
    }

    /// See [`Managed::deallocate`].
    pub fn deallocate(&self, offset: Offset<u8>) -> Result<()> {
        let user = offset.raw();
        // A named object's block is freed by `destroy`, which also empties its
        // directory entry; freeing it here would leave a name on free memory.
        for i in 0..self.geo().dir_capacity {
            let d = self.dir(i)?;
            if d.state != ENTRY_EMPTY && d.offset == user {
                return Err(error(
                    Object::Address(user as usize),
                    ErrorKind::InvalidArgument,
                    format_args!(
                        "free of offset {user}: the block holds the named object {:?}; use destroy",
                        d.name
                    ),
                ));
            }
        }
        self.free_block(offset)
    }

    /// Frees the live block at `offset` (the directory is not consulted).
    fn free_block(&self, offset: Offset<u8>) -> Result<()> {
        let g = self.geo();
        let user = offset.raw();
        let object = Object::Address(user as usize);
        if user < g.heap_start + BLOCK_HEADER || user >= g.heap_end {
            return Err(error(
                object,
                ErrorKind::OutOfBounds,
                format_args!(
                    "free of offset {user}: not inside the heap [{}, {}); it was not allocated here",
                    g.heap_start, g.heap_end
                ),
            ));
        }
        if user % GRAIN != 0 {
            return Err(error(
                object,
                ErrorKind::Misaligned,
                format_args!("free of offset {user}: not a block start (blocks are 16-aligned)"),
            ));
        }
        let target = user - BLOCK_HEADER;
        // Walk the tiling to prove `target` is a block, remembering the
        // physical predecessor and the last free block before it.
        let mut at = g.heap_start;
        let mut prev: Option<Block> = None;
        let mut prev_free = 0u64;
        let b = loop {
            let b = self.block(at)?;
            if b.at == target {
                break b;
            }
            if b.at > target || b.end() > target {
                return Err(error(
                    object,
                    ErrorKind::InvalidArgument,
                    format_args!(
                        "free of offset {user}: not the start of an allocated block (inside the block at {}); it was not allocated here",
                        b.at + BLOCK_HEADER
                    ),
                ));
            }
            if b.free {
                prev_free = b.at;
            }
            prev = Some(b);
            at = b.end();
        };
        if b.free {
            return Err(error(
                object,
                ErrorKind::InvalidArgument,
                format_args!("double free: the block at offset {user} is already free"),
            ));
        }
        let next = if b.end() < g.heap_end {
            Some(self.block(b.end())?)
        } else {
            None
        };
        let raw = self.raw();
        // The free block after `b` in the list: the list is in address order
        // and `b` is used, so it is the successor of `prev_free`.
        let list_next = if prev_free == 0 {
            raw.u64(H_FREE_HEAD)?
        } else {
            self.free_link(prev_free)?
        };
        let next_free = next.filter(|n| n.free);
        if let Some(n) = next_free {
            if list_next != n.at {
                return Err(corrupt(format_args!(
                    "free list skips the free block at {}",
                    n.at
                )));
            }
        }
        let after = match next_free {
            Some(n) => self.free_link(n.at)?,
            None => list_next,
        };
        self.begin();
        let merged = b.size + next_free.map_or(0, |n| n.size);
        match prev.filter(|p| p.free) {
            Some(p) => {
                // One store: P swallows B (and N).
                raw.set_u64(p.at, p.size + merged)?;
                self.set_free_link(p.at, after)?;
            }
            None => {
                raw.set_u64(b.at + 8, FREE_TAG ^ b.at)?;
                self.set_free_link(b.at, after)?;
                raw.set_u64(b.at, merged)?;
                self.link_after(prev_free, b.at)?;
            }
        }
        self.add_free_bytes(i128::from(b.size))?;
        self.end();
        Ok(())
    }

    /// Reads and validates directory entry `i` (every state).
    fn dir(&self, i: u64) -> Result<Dir> {
        read_dir(&self.raw(), &self.geo(), i)
    }

    fn dirs(&self) -> Result<Vec<Dir>> {
        (0..self.geo().dir_capacity).map(|i| self.dir(i)).collect()
    }

    fn find_dir(&self, name: &str) -> Result<Option<Dir>> {
        for i in 0..self.geo().dir_capacity {
            let d = self.dir(i)?;
            if d.state == ENTRY_USED && d.name == name {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    /// See [`Managed::construct`].
    pub fn construct<T: Plain>(&self, name: &str, value: &T) -> Result<Named<'m, T>> {
        self.construct_tagged(name, 0, value)
    }

    /// See [`Managed::construct_tagged`].
    pub fn construct_tagged<T: Plain>(
        &self,
        name: &str,
        tag: u64,
        value: &T,
    ) -> Result<Named<'m, T>> {
        let object = || Object::Text(name.to_string());
        if name.is_empty() || name.len() > NAME_MAX {
            return Err(error(
                object(),
                ErrorKind::InvalidArgument,
                format_args!(
                    "a name must have 1 to {NAME_MAX} bytes, this one has {}",
                    name.len()
                ),
            ));
        }
        let (size, align) = (size_of::<T>() as u64, align_of::<T>() as u64);
        if align > MAX_ALIGN as u64 {
            return Err(error(
                object(),
                ErrorKind::InvalidArgument,
                format_args!("the type's alignment {align} exceeds the maximum {MAX_ALIGN}"),
            ));
        }
        let mut slot = None;
        for d in self.dirs()? {
            if d.state == ENTRY_USED && d.name == name {
                return Err(error(
                    object(),
                    ErrorKind::AlreadyExists,
                    "the name is taken; destroy the object first or choose another name",
                ));
            }
            if d.state == ENTRY_EMPTY && slot.is_none() {
                slot = Some(d.at);
            }
        }
        let Some(at) = slot else {
            return Err(error(
                object(),
                ErrorKind::NoSpace,
                format_args!(
                    "the directory is full ({} names); destroy a name or format with more room",
                    self.geo().dir_capacity
                ),
            ));
        };
        let raw = self.raw();
        self.begin();
        // PENDING first: if we die from here on, recovery frees the block and
        // empties the entry.
        raw.set_u64(at + E_OFFSET, 0)?;
        raw.set_u32(at + E_NAME_LEN, name.len() as u32)?;
        raw.write(at + E_NAME, name.as_bytes())?;
        raw.set_u64(at + E_SIZE, size)?;
        raw.set_u64(at + E_ALIGN, align)?;
        raw.set_u64(at + E_TAG, tag)?;
        raw.set_u32(at + E_STATE, ENTRY_PENDING)?;
        let off = match self.allocate(size as usize, align as usize) {
            Ok(o) => o,
            Err(e) => {
                raw.set_u32(at + E_STATE, ENTRY_EMPTY)?;
                if e.kind() == ErrorKind::OutOfMemory {
                    // Nothing changed; a corrupt heap stays dirty for repair.
                    self.end();
                }
                return Err(Error::new(
                    e.op(),
                    object(),
                    e.kind(),
                    e.errno(),
                    e.message(),
                ));
            }
        };
        self.begin(); // allocate ended its own update
        raw.set_u64(at + E_OFFSET, off.raw())?;
        raw.write(off.raw(), value.as_bytes())?;
        raw.set_u32(at + E_STATE, ENTRY_USED)?;
        self.end();
        self.handle(off.raw())
    }

    fn handle<T: Plain>(&self, off: u64) -> Result<Named<'m, T>> {
        let raw = self.raw();
        let p = raw.at(off, size_of::<T>() as u64, align_of::<T>() as u64)?;
        Ok(Named {
            ptr: p.cast(),
            offset: Offset::new(off),
            _m: PhantomData,
        })
    }

    /// See [`Managed::find`].
    pub fn find<T: Plain>(&self, name: &str) -> Result<Named<'m, T>> {
        self.find_tagged(name, 0)
    }

    /// See [`Managed::find_tagged`].
    pub fn find_tagged<T: Plain>(&self, name: &str, tag: u64) -> Result<Named<'m, T>> {
        let object = || Object::Text(name.to_string());
        let Some(d) = self.find_dir(name)? else {
            return Err(error(
                object(),
                ErrorKind::NotFound,
                "no object has this name; construct it first (list names with Managed::names)",
            ));
        };
        let (size, align) = (size_of::<T>() as u64, align_of::<T>() as u64);
        if (d.size, d.align, d.tag) != (size, align, tag) {
            return Err(error(
                object(),
                ErrorKind::InvalidArgument,
                format_args!(
                    "type mismatch: the object has size {}, alignment {}, tag {:#x}; asked for size {size}, alignment {align}, tag {tag:#x}",
                    d.size, d.align, d.tag
                ),
            ));
        }
        self.handle(d.offset)
    }

    /// See [`Managed::destroy`].
    pub fn destroy(&self, name: &str) -> Result<()> {
        let Some(d) = self.find_dir(name)? else {
            return Err(error(
                Object::Text(name.to_string()),
                ErrorKind::NotFound,
                "no object has this name",
            ));
        };
        let raw = self.raw();
        self.begin();
        raw.set_u32(d.at + E_STATE, ENTRY_PENDING)?;
        self.free_block(Offset::new(d.offset))?;
        self.begin();
        raw.set_u32(d.at + E_STATE, ENTRY_EMPTY)?;
        self.end();
        Ok(())
    }

    /// See [`Managed::entries`].
    pub fn entries(&self) -> Result<Vec<Entry>> {
        Ok(self
            .dirs()?
            .into_iter()
            .filter(|d| d.state == ENTRY_USED)
            .map(|d| Entry {
                name: d.name,
                offset: Offset::new(d.offset),
                size: d.size,
                align: d.align,
                tag: d.tag,
            })
            .collect())
    }

    /// See [`Managed::names`].
    pub fn names(&self) -> Result<Vec<String>> {
        Ok(self.entries()?.into_iter().map(|e| e.name).collect())
    }

    /// See [`Managed::check`].
    pub fn check(&self) -> Result<Stats> {
        self.verify(false)
    }

    /// Check and repair after a holder died (or an update was abandoned).
    fn repair(&self) -> Result<Stats> {
        match self.verify(true) {
            Ok(s) => Ok(s),
            Err(e) => {
                self.poison()?;
                Err(Error::new(
                    e.op(),
                    e.object().clone(),
                    e.kind(),
                    e.errno(),
                    format!("{}; the segment is now marked poisoned", e.message()),
                ))
            }
        }
    }

    /// The consistency check. With `repair`, rebuilds what can be derived
    /// from the tiling and resolves pending directory entries.
    fn verify(&self, repair: bool) -> Result<Stats> {
        let g = self.geo();
        let raw = self.raw();
        let mut blocks = self.blocks()?;
        if repair {
            // Resolve pending names: free their blocks (if allocated).
            for d in self.dirs()? {
                if d.state != ENTRY_PENDING {
                    continue;
                }
                if d.offset != 0 {
                    let start = d.offset - BLOCK_HEADER;
                    if let Some(b) = blocks.iter_mut().find(|b| b.at == start && !b.free) {
                        raw.set_u64(b.at + 8, FREE_TAG ^ b.at)?;
                        b.free = true;
                    }
                }
                raw.set_u32(d.at + E_STATE, ENTRY_EMPTY)?;
            }
            // Coalesce neighbouring free blocks.
            let mut merged: Vec<Block> = Vec::with_capacity(blocks.len());
            for b in blocks {
                match merged.last_mut() {
                    Some(p) if p.free && b.free => {
                        p.size += b.size;
                        raw.set_u64(p.at, p.size)?;
                    }
                    _ => merged.push(b),
                }
            }
            blocks = merged;
            // Rebuild the free list and the free count.
            let mut prev = 0;
            for b in blocks.iter().filter(|b| b.free) {
                self.link_after(prev, b.at)?;
                prev = b.at;
            }
            self.link_after(prev, 0)?;
            let free: u64 = blocks.iter().filter(|b| b.free).map(|b| b.size).sum();
            raw.set_u64(H_FREE_BYTES, free)?;
        }
        // Check: no two free neighbours, list = free blocks in order, count.
        for w in blocks.windows(2) {
            if w[0].free && w[1].free {
                return Err(corrupt(format_args!(
                    "free blocks at {} and {} are not coalesced",
                    w[0].at, w[1].at
                )));
            }
        }
        let mut cur = raw.u64(H_FREE_HEAD)?;
        for b in blocks.iter().filter(|b| b.free) {
            if cur != b.at {
                return Err(corrupt(format_args!(
                    "free list has {cur} where the free block at {} belongs",
                    b.at
                )));
            }
            cur = self.free_link(b.at)?;
        }
        if cur != 0 {
            return Err(corrupt(format_args!(
                "free list continues to {cur} after the last free block"
            )));
        }
        let free: u64 = blocks.iter().filter(|b| b.free).map(|b| b.size).sum();
        let stored = raw.u64(H_FREE_BYTES)?;
        if stored != free {
            return Err(corrupt(format_args!(
                "free byte count is {stored}, the free blocks hold {free}"
            )));
        }
        // Directory: every name is unique and names a used block it fits in.
        let dirs = self.dirs()?;
        let mut names = 0u64;
        let mut seen = std::collections::HashSet::new();
        let mut owned = std::collections::HashSet::new();
        for d in &dirs {
            match d.state {
                ENTRY_EMPTY => continue,
                ENTRY_PENDING => {
                    return Err(corrupt(format_args!(
                        "directory entry {} ({:?}) is half constructed or destroyed",
                        d.index, d.name
                    )));
                }
                _ => {}
            }
            let start = d.offset - BLOCK_HEADER;
            let fits = blocks
                .binary_search_by_key(&start, |b| b.at)
                .ok()
                .map(|i| blocks[i])
                .is_some_and(|b| !b.free && d.size.max(1) <= b.size - BLOCK_HEADER);
            if !fits {
                return Err(corrupt(format_args!(
                    "directory entry {} ({:?}) at offset {} does not name a used block that holds its {} bytes",
                    d.index, d.name, d.offset, d.size
                )));
            }
            if !owned.insert(d.offset) {
                return Err(corrupt(format_args!(
                    "directory entry {} ({:?}) shares the block at offset {} with another name",
                    d.index, d.name, d.offset
                )));
            }
            if !seen.insert(d.name.as_str()) {
                return Err(corrupt(format_args!(
                    "the name {:?} appears twice in the directory",
                    d.name
                )));
            }
            names += 1;
        }
        Ok(Stats {
            total_size: g.total,
            heap_start: g.heap_start,
            heap_end: g.heap_end,
            free_bytes: free,
            free_blocks: blocks.iter().filter(|b| b.free).count() as u64,
            largest_free: blocks
                .iter()
                .filter(|b| b.free)
                .map(|b| b.size)
                .max()
                .unwrap_or(0),
            used_blocks: blocks.iter().filter(|b| !b.free).count() as u64,
            names,
            max_names: g.dir_capacity,
            recoveries: raw.u64(H_RECOVERIES)?,
        })
    }
}
