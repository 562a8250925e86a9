//! Attachments: a segment mapped into this process (shmat), detached on Drop (shmdt).

// Unsafe: maps and unmaps memory (shmat/shmdt) and hands out raw pointers into it.
#![allow(unsafe_code)]

use crate::error::{Error, ErrorKind, Object, Op, Result};
use crate::segment::{Segment, id_error};
use crate::sys;
use core::ffi::c_void;
use core::ptr::NonNull;

/// How to attach: a builder over the flags and address of `shmat(2)`.
///
/// ```
/// use svshm::{AttachOptions, Segment};
/// let seg = Segment::create_private(3 * 4096)?;
/// let _rm = seg.remove_on_drop();
/// let rw = seg.attach()?;
/// let ro = seg.attach_with(&AttachOptions::new().read_only(true))?;
/// rw.write_at(100, &[7])?;
/// let mut b = [0];
/// ro.read_at(100, &mut b)?;
/// assert_eq!(b, [7]);
/// assert!(ro.write_at(0, &[1]).is_err()); // refused before touching memory
/// # Ok::<(), svshm::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    addr: Option<usize>,
    read_only: bool,
    round: bool,
    remap: bool,
    exec: bool,
}

impl AttachOptions {
    /// Read-write, at an address the kernel chooses.
    pub fn new() -> AttachOptions {
        AttachOptions::default()
    }

    /// `SHM_RDONLY`: map read-only (needs read permission only).
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }

    /// Attach at `addr`. It must be page-aligned unless [`round`](Self::round) is
    /// set, and must not overlap an existing mapping (the kernel refuses with
    /// [`ErrorKind::InvalidAddress`]).
    pub fn at(mut self, addr: usize) -> Self {
        self.addr = Some(addr);
        self
    }

    /// `SHM_RND`: round the address down to a multiple of SHMLBA.
    pub fn round(mut self, yes: bool) -> Self {
        self.round = yes;
        self
    }

    /// `SHM_EXEC`: allow executing the contents (needs execute permission).
    pub fn exec(mut self, yes: bool) -> Self {
        self.exec = yes;
        self
    }

    /// `SHM_REMAP`: replace whatever is mapped at the address given with
    /// [`at`](Self::at).
    ///
    /// # Safety
    ///
    /// The range `[addr, addr + segment size)` must hold no memory that any live
    /// Rust object, allocation or other mapping of this process still uses; the
    /// kernel silently replaces it. Typically it is a range this code reserved
    /// itself with `mmap(PROT_NONE)`.
    pub unsafe fn remap(mut self, yes: bool) -> Self {
        self.remap = yes;
        self
    }

    /// The shmat flags these options give.
    pub fn flags(&self) -> i32 {
        let mut f = 0;
        if self.read_only {
            f |= sys::SHM_RDONLY;
        }
        if self.round {
            f |= sys::SHM_RND;
        }
        if self.remap {
            f |= sys::SHM_REMAP;
        }
        if self.exec {
            f |= sys::SHM_EXEC;
        }
        f
    }
}

/// A segment attached to this process. Detached (shmdt) on Drop.
///
/// The memory is shared with every other process that attached the segment,
/// which may write it at any time. It is therefore never handed out as `&[u8]`
/// or `&mut [u8]` (memory another process can write is never a Rust reference): use the bounds-checked
/// [`read_at`](Self::read_at) / [`write_at`](Self::write_at) copies, or
/// [`as_ptr`](Self::as_ptr) with raw-pointer and atomic accesses of your own.
///
/// Attaching the same segment several times (even read-only and read-write at
/// once) gives independent mappings of the same memory.
#[derive(Debug)]
pub struct Attachment {
    ptr: NonNull<u8>,
    len: usize,
    id: i32,
    read_only: bool,
}

// SAFETY: an Attachment is an address range owned by the process, not by a
// thread; its methods only copy through raw pointers, byte-wise atomically, so
// copies from several threads at once do not race (the bytes may be changed
// concurrently by other processes anyway, and callers synchronise their own
// protocols with atomics). Detaching from another thread is fine for shmdt.
unsafe impl Send for Attachment {}
// SAFETY: see above; no method hands out references into the mapping, and
// `read_at`/`write_at` through `&self` are atomic per byte.
unsafe impl Sync for Attachment {}

impl Attachment {
    pub(crate) fn new(id: i32, options: &AttachOptions) -> Result<Attachment> {
        let addr = options.addr.unwrap_or(0) as *const c_void;
        // SAFETY: without SHM_REMAP the kernel refuses to map over an existing
        // mapping, so no memory of ours can be replaced; with SHM_REMAP the caller
        // made the promise in the `unsafe fn AttachOptions::remap`.
        let p = unsafe { sys::shmat(id, addr, options.flags()) }
            .map_err(|e| attach_error(id, options, e))?;
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| {
            Error::new(
                Op::Attach,
                Object::Id(id),
                ErrorKind::InvalidAddress,
                None,
                "the kernel returned a null address",
            )
        })?;
        // Owned from here on: an early return below detaches it.
        let mut att = Attachment {
            ptr,
            len: 0,
            id,
            read_only: options.read_only,
        };
        // We hold an attachment, so the segment exists; IPC_STAT may still be
        // refused (write-only mode bits do not allow attaching, so this is rare):
        // fall back to the public table.
        let len = match Segment::from_id(id).stat() {
            Ok(i) => i.size,
            Err(e) => crate::info::public_info_by_id(id)
                .map(|i| i.size)
                .ok_or(e)?,
        };
        let len = usize::try_from(len).map_err(|_| {
            Error::new(
                Op::Attach,
                Object::Id(id),
                ErrorKind::Overflow,
                None,
                "segment larger than the address space",
            )
        })?;
        att.len = len;
        Ok(att)
    }

    /// Start address of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Start address as a number (for printing and comparing with `/proc/PID/maps`).
    pub fn address(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Length in bytes: the segment's size (`shm_segsz`) read at attach time.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the segment has zero length (never true for a kernel segment).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The attached segment's id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The attached segment.
    pub fn segment(&self) -> Segment {
        Segment::from_id(self.id)
    }

    /// Whether this mapping is read-only (SHM_RDONLY).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// `madvise(addr, len, MADV_DOFORK or MADV_DONTFORK)`: whether child
    /// processes created by `fork(2)` inherit this attachment.
    ///
    /// Like any mapping, an attachment is inherited by default: the child gets
    /// the same memory at the same address, and the kernel counts it as one
    /// more attach (`shm_nattch`). `inherit_on_fork(false)` sets
    /// `MADV_DONTFORK`: a forked child gets no mapping there (a copied pointer
    /// faults instead of reaching the segment) and does not count as attached.
    /// Use it where a protocol allows one process per side and reads the attach
    /// count as "the peer is alive", as svshm-channel does. (`exec(2)` drops
    /// attachments anyway.)
    ///
    /// ```
    /// # use svshm::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 4096)?;
    /// let _rm = seg.remove_on_drop();
    /// let att = seg.attach()?;
    /// att.inherit_on_fork(false)?;
    /// # Ok::<(), svshm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Any errno of madvise → [`ErrorKind::Other`] with [`Op::Advise`] (the
    /// kernel refuses only a range that is not this process's mapping, which
    /// an `Attachment` always is).
    ///
    /// # References
    ///
    /// [madvise(2)](https://man7.org/linux/man-pages/man2/madvise.2.html)
    #[doc(alias = "madvise")]
    #[doc(alias = "MADV_DONTFORK")]
    pub fn inherit_on_fork(&self, yes: bool) -> Result<()> {
        let advice = if yes {
            libc::MADV_DOFORK
        } else {
            libc::MADV_DONTFORK
        };
        // SAFETY: `ptr..ptr+len` is this attachment's mapping, owned while `self`
        // lives; MADV_DONTFORK / MADV_DOFORK only change what fork(2) copies.
        let mut r = unsafe { sys::madvise(self.ptr.as_ptr().cast(), self.len, advice) };
        if r == Err(libc::EINVAL)
            && let Some(page) = mapping_page_size(self.address())
        {
            // A segment of huge pages is mapped in whole huge pages, and
            // madvise wants the range to end on one: the mapping's true end.
            let len = self.len.div_ceil(page) * page;
            // SAFETY: as above; the kernel says this attachment's mapping has
            // pages of `page` bytes, so it extends to the end of its last
            // page and this range is still ours alone.
            r = unsafe { sys::madvise(self.ptr.as_ptr().cast(), len, advice) };
        }
        r.map_err(|e| {
            Error::new(
                Op::Advise,
                Object::Address(self.address()),
                ErrorKind::Other,
                Some(e),
                format!(
                    "madvise({}) on segment {}: {}",
                    if yes { "MADV_DOFORK" } else { "MADV_DONTFORK" },
                    self.id,
                    crate::error::errno_text(e)
                ),
            )
        })
    }

    /// Checks that `[offset, offset + len)` lies inside the attachment and
    /// returns a raw pointer to its start.
    pub fn range_ptr(&self, offset: usize, len: usize) -> Result<*mut u8> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => {
                // SAFETY: offset <= len of the mapping, so the result is inside
                // (or one past the end of) the mapping.
                Ok(unsafe { self.ptr.as_ptr().add(offset) })
            }
            _ => Err(Error::new(
                Op::Access,
                Object::Id(self.id),
                ErrorKind::OutOfBounds,
                None,
                format!(
                    "range {offset}..{} is outside the {}-byte segment",
                    offset as u128 + len as u128,
                    self.len
                ),
            )),
        }
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the segment.
    ///
    /// The copy is byte-wise atomic (each byte is read as an `AtomicU8`), so it
    /// is sound while other threads call `read_at`/`write_at` on the same bytes
    /// through this or another `Attachment`, and while other processes write
    /// them: there is no data race. There is no snapshot either: during a
    /// concurrent write, `buf` may get some mix of old and new bytes, so a
    /// protocol that needs a consistent view publishes it with its own atomics
    /// (a sequence number or cursor) and checks after the copy.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let src = self.range_ptr(offset, buf.len())?;
        // SAFETY: `src..src+len` is inside the mapping (checked above) and stays
        // mapped while `self` lives; the safe copies of this crate that may run
        // concurrently on these bytes are byte-wise atomic too.
        unsafe { crate::copy::load(src, buf) };
        Ok(())
    }

    /// Copies `data` into the segment starting at `offset`. Refused with
    /// [`ErrorKind::ReadOnly`] on a read-only attachment.
    ///
    /// The copy is byte-wise atomic (each byte is stored as an `AtomicU8`), so
    /// it is sound while other threads call `read_at`/`write_at` on the same
    /// bytes: concurrent writers may interleave their bytes (the range may end
    /// up holding some bytes of each), but there is no data race and no
    /// undefined behaviour. Serialise writers yourself if the range must hold
    /// one writer's data whole.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        if self.read_only {
            return Err(Error::new(
                Op::Access,
                Object::Id(self.id),
                ErrorKind::ReadOnly,
                None,
                "this attachment is read-only (SHM_RDONLY); attach read-write to write",
            ));
        }
        let dst = self.range_ptr(offset, data.len())?;
        // SAFETY: `dst..dst+len` is inside a writable mapping (checked above) that
        // stays mapped while `self` lives; the safe copies of this crate that may
        // run concurrently on these bytes are byte-wise atomic too.
        unsafe { crate::copy::store(dst, data) };
        Ok(())
    }

    /// `shmdt(addr)`: detaches now, reporting an error (Drop detaches silently).
    ///
    /// ```
    /// let seg = svshm::Segment::create_private(4096)?;
    /// let _rm = seg.remove_on_drop();
    /// let att = seg.attach()?;
    /// assert_eq!(seg.stat()?.attach_count, 1);
    /// att.detach()?;
    /// assert_eq!(seg.stat()?.attach_count, 0);
    /// # Ok::<(), svshm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// EINVAL → [`ErrorKind::InvalidAddress`]: nothing is attached at the
    /// address any more (something else detached it, e.g. [`detach_at`]).
    ///
    /// # References
    ///
    /// [shmdt(2)](https://man7.org/linux/man-pages/man2/shmdt.2.html)
    #[doc(alias = "shmdt")]
    pub fn detach(self) -> Result<()> {
        let addr = self.address();
        let id = self.id;
        let p = self.ptr;
        core::mem::forget(self);
        // SAFETY: `self` is consumed; no method can reach the mapping any more.
        unsafe { sys::shmdt(p.as_ptr().cast()) }.map_err(|e| {
            Error::new(
                Op::Detach,
                Object::Address(addr),
                ErrorKind::InvalidAddress,
                Some(e),
                format!(
                    "nothing of segment {id} is attached here any more ({})",
                    crate::error::errno_text(e)
                ),
            )
        })
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // SAFETY: the attachment is being dropped; nothing can use the mapping.
        let _ = unsafe { sys::shmdt(self.ptr.as_ptr().cast()) };
    }
}

/// SHMLBA: the attach address granularity (the page size on x86-64 and arm64).
pub fn shmlba() -> usize {
    sys::page_size()
}

/// `shmdt(addr)`: detaches whatever segment is attached at `addr`, for tools
/// that got an address some other way.
///
/// # Errors
///
/// EINVAL → [`ErrorKind::InvalidAddress`]: no segment is attached at `addr`, or
/// `addr` is not page-aligned.
///
/// # References
///
/// [shmdt(2)](https://man7.org/linux/man-pages/man2/shmdt.2.html)
///
/// # Safety
///
/// Nothing in this process may use the mapping at `addr` afterwards, including
/// an [`Attachment`] that owns it (it would detach again on Drop, harmlessly
/// failing, but its pointers would dangle).
#[doc(alias = "shmdt")]
pub unsafe fn detach_at(addr: usize) -> Result<()> {
    // SAFETY: the caller promises nothing uses the mapping any more.
    unsafe { sys::shmdt(addr as *const c_void) }.map_err(|e| {
        Error::new(
            Op::Detach,
            Object::Address(addr),
            ErrorKind::InvalidAddress,
            Some(e),
            "no segment is attached at this address, or it is not page-aligned",
        )
    })
}

fn attach_error(id: i32, options: &AttachOptions, errno: i32) -> Error {
    if errno == libc::EINVAL && id >= 0 && crate::info::public_info_by_id(id).is_some() {
        let msg = if options.remap && options.addr.is_none() {
            "SHM_REMAP needs an address".to_string()
        } else if let Some(a) = options.addr {
            let lba = shmlba();
            if !options.round && a % lba != 0 {
                format!(
                    "address {a:#x} is not a multiple of SHMLBA ({lba:#x}); align it or ask for rounding (SHM_RND)"
                )
            } else {
                format!(
                    "cannot attach at {a:#x}: the range overlaps an existing mapping or is outside the address space; choose another address or let the kernel choose"
                )
            }
        } else {
            "the kernel refused the attach flags".to_string()
        };
        return Error::new(
            Op::Attach,
            Object::Id(id),
            ErrorKind::InvalidAddress,
            Some(errno),
            msg,
        );
    }
    let refused =
        |kind, msg: String| Error::new(Op::Attach, Object::Id(id), kind, Some(errno), msg);
    match (errno, options.addr) {
        // The security check on mmap addresses (shmat goes through do_mmap).
        (libc::EPERM, Some(a)) => {
            let min = crate::info::read_vm_sysctl("mmap_min_addr");
            let floor = min.as_deref().map_or("vm.mmap_min_addr".to_string(), |m| {
                format!("vm.mmap_min_addr ({m})")
            });
            let lba = shmlba();
            let at = if options.round && a % lba != 0 {
                format!("{a:#x} (rounded down to {:#x})", a - a % lba)
            } else {
                format!("{a:#x}")
            };
            return refused(
                ErrorKind::InvalidAddress,
                format!(
                    "cannot attach at {at}: addresses below {floor} may not be mapped (a guard against NULL-pointer bugs); choose a higher address or let the kernel choose"
                ),
            );
        }
        // do_mmap's ENOMEM is about this process's address space, not the
        // kernel's memory: the segment's pages already exist.
        (libc::ENOMEM, _) => {
            let limit = crate::info::address_space_limit().map_or(String::new(), |l| {
                format!(" (here {})", crate::text::human_size(l))
            });
            return refused(
                ErrorKind::OutOfMemory,
                format!(
                    "no room in this process's address space: the mapping would exceed its address-space limit RLIMIT_AS{limit}, raise it with `ulimit -v`; or the process has vm.max_map_count mappings, or no free range is large enough"
                ),
            );
        }
        _ => {}
    }
    id_error(Op::Attach, id, errno)
}

/// The page size of the mapping that holds `addr`, from `/proc/self/smaps`
/// (`KernelPageSize`), if it is larger than the base page: a segment of huge
/// pages. `None` if it cannot be read.
fn mapping_page_size(addr: usize) -> Option<usize> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        let head = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = head.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            inside = a <= addr && addr < b;
            continue;
        }
        if inside && let Some(kib) = line.strip_prefix("KernelPageSize:") {
            let kib: usize = kib.trim().strip_suffix("kB")?.trim().parse().ok()?;
            return (kib * 1024 > crate::page_size()).then_some(kib * 1024);
        }
    }
    None
}
