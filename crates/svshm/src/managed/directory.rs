//! The named directory: [`Plain`] and [`type_tag`], the [`Named`] handle,
//! directory entries ([`Entry`], reading and validating them), construct,
//! find and destroy under the lock, and the lock-free [`peek`].

// Unsafe: typed reads and writes of named objects in shared memory.
#![allow(unsafe_code)]

use super::layout::{
    BLOCK_HEADER, E_ALIGN, E_NAME, E_NAME_LEN, E_OFFSET, E_SIZE, E_STATE, E_TAG, ENTRY_EMPTY,
    ENTRY_PENDING, ENTRY_USED, GRAIN, Geometry, H_FREE_BYTES, H_RECOVERIES, MAX_ALIGN, NAME_MAX,
    STATE_INITIALIZING, STATE_POISONED, STATE_READY,
};
use super::raw::Raw;
use super::{Locked, corrupt, error};
use crate::error::{Error, ErrorKind, Object, Result};
use crate::offset::Offset;
use crate::region::Region;
use core::marker::PhantomData;
use core::mem::size_of;
use core::sync::atomic::Ordering;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

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
/// [`Managed::construct_tagged`](super::Managed::construct_tagged) and
/// [`Managed::find_tagged`](super::Managed::find_tagged). Rust has no type id
/// that is stable across builds, so name the type and its version yourself,
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

/// A directory entry, as [`Managed::entries`](super::Managed::entries) lists it.
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
/// [`Managed::open`](super::Managed::open), but the heap is not walked and, since other processes
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
        let copy = core::mem::ManuallyDrop::new(unsafe { core::ptr::read(value) });
        // SAFETY: `ptr` points to size_of::<T>() writable bytes inside the
        // region, aligned for T (checked when the handle was made; the region
        // is writable, checked at format/open), mapped while 'm lives; T has no
        // padding (IntoBytes); concurrent safe accesses of this object use the
        // same T at the same address.
        unsafe {
            atomic_memcpy::atomic_store(
                self.ptr.cast::<core::mem::ManuallyDrop<T>>(),
                copy,
                Ordering::Relaxed,
            )
        };
    }
}

impl<T> core::fmt::Debug for Named<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Named({:?})", self.offset)
    }
}

/// One directory entry, read and validated.
pub(super) struct Dir {
    pub(super) index: u64,
    pub(super) at: u64,
    pub(super) state: u32,
    pub(super) name: String,
    pub(super) offset: u64,
    pub(super) size: u64,
    pub(super) align: u64,
    pub(super) tag: u64,
}

/// Reads and validates directory entry `i`.
pub(super) fn read_dir(raw: &Raw<'_>, g: &Geometry, i: u64) -> Result<Dir> {
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
    /// Reads and validates directory entry `i` (every state).
    pub(super) fn dir(&self, i: u64) -> Result<Dir> {
        read_dir(&self.raw(), &self.geo(), i)
    }

    pub(super) fn dirs(&self) -> Result<Vec<Dir>> {
        (0..self.geo().dir_capacity).map(|i| self.dir(i)).collect()
    }

    pub(super) fn find_dir(&self, name: &str) -> Result<Option<Dir>> {
        for i in 0..self.geo().dir_capacity {
            let d = self.dir(i)?;
            if d.state == ENTRY_USED && d.name == name {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    /// See [`Managed::construct`](super::Managed::construct).
    pub fn construct<T: Plain>(&self, name: &str, value: &T) -> Result<Named<'m, T>> {
        self.construct_tagged(name, 0, value)
    }

    /// See [`Managed::construct_tagged`](super::Managed::construct_tagged).
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

    pub(super) fn handle<T: Plain>(&self, off: u64) -> Result<Named<'m, T>> {
        let raw = self.raw();
        let p = raw.at(off, size_of::<T>() as u64, align_of::<T>() as u64)?;
        Ok(Named {
            ptr: p.cast(),
            offset: Offset::new(off),
            _m: PhantomData,
        })
    }

    /// See [`Managed::find`](super::Managed::find).
    pub fn find<T: Plain>(&self, name: &str) -> Result<Named<'m, T>> {
        self.find_tagged(name, 0)
    }

    /// See [`Managed::find_tagged`](super::Managed::find_tagged).
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

    /// See [`Managed::destroy`](super::Managed::destroy).
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

    /// See [`Managed::entries`](super::Managed::entries).
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

    /// See [`Managed::names`](super::Managed::names).
    pub fn names(&self) -> Result<Vec<String>> {
        Ok(self.entries()?.into_iter().map(|e| e.name).collect())
    }
}
