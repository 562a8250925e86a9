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
//! Everything read from the segment is validated before use: a corrupt or
//! hostile header, directory or heap gives an [`Error`], never a panic or an
//! access outside the region. The one exception is the mutex itself: glibc
//! keeps the robust-list links of a held mutex inside the mutex, so a process
//! that can write the segment can deadlock the others or corrupt the memory
//! of the lock holder. Share a managed segment only between processes that
//! trust each other (the default mode 0600: one user).
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

// Unsafe: drops or takes the region out of its ManuallyDrop exactly once.
#![allow(unsafe_code)]

// This file: the `Managed` type, format/open, the lock and its guard.
mod allocator; // heap blocks, the free list, allocate and deallocate
mod check; // the consistency check and the repair after a holder died
mod directory; // named objects: construct, find, destroy, entries, peek
mod layout; // constants, the on-segment structs and the validated geometry
mod raw; // bounds-checked volatile access and the robust mutex

pub use check::Stats;
pub use directory::{Entry, Named, Plain, Summary, peek, type_tag};
pub use layout::{DEFAULT_MAX_NAMES, LAYOUT_VERSION, MAGIC, MAX_ALIGN, NAME_MAX};

use crate::attach::Attachment;
use crate::error::{Error, ErrorKind, Object, Op, Result};
use crate::offset::Offset;
use crate::region::Region;
use crate::segment::{CreateOptions, Segment};
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicUsize, Ordering};
use layout::{
    FREE_TAG, Geometry, H_DIR_CAPACITY, H_DIR_OFFSET, H_FREE_BYTES, H_FREE_HEAD, H_HEADER_SIZE,
    H_HEAP_END, H_HEAP_START, H_MAGIC, H_RECOVERIES, H_TOTAL, H_VERSION, HEADER_SIZE,
    STATE_INITIALIZING, STATE_POISONED, STATE_READY,
};
use raw::Raw;

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
        // SYNC: pairs with the Release store of POISONED in `Locked::poison`
        // (in this or another process).
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
                // SYNC: pairs with the Release store in `Locked::poison`; a
                // poisoner that held the lock before us is seen for certain.
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
// The lock guard. What it does under the lock is in allocator.rs,
// directory.rs and check.rs.

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

impl<'m, R: Region> Locked<'m, R> {
    fn raw(&self) -> Raw<'m> {
        self.m.raw()
    }

    fn geo(&self) -> Geometry {
        self.m.geo
    }

    fn poison(&self) -> Result<()> {
        // SYNC: pairs with the Acquire loads of the state in `Managed::lock`,
        // `open` and `peek`.
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
}
