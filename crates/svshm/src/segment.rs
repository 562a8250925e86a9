//! Segments: create and open (shmget), stat, set, remove, lock and unlock (shmctl).

use crate::attach::{AttachOptions, Attachment};
use crate::error::{Error, ErrorKind, Object, Op, Result};
use crate::info::{self, SegmentInfo, describe_uid};
use crate::key::Key;
use crate::sys;
use crate::text::human_size;

/// A System V shared memory segment, named by its id (shmid).
///
/// A `Segment` is a plain handle: copying or dropping it does nothing to the
/// kernel object. Segments have *kernel lifetime*: one exists until it is
/// [removed](Segment::remove) and its last attachment is gone, even after every
/// process that used it has exited. Use [`Segment::remove_on_drop`] to tie its
/// removal to a scope.
///
/// ```
/// use svshm::Segment;
/// let seg = Segment::create_private(4096)?;          // shmget(IPC_PRIVATE, 4096, 0600)
/// let _rm = seg.remove_on_drop();                    // shmctl(IPC_RMID) at scope end
/// let att = seg.attach()?;                           // shmat(id, NULL, 0)
/// att.write_at(0, b"hello")?;
/// let mut buf = [0u8; 5];
/// att.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// assert_eq!(seg.stat()?.attach_count, 1);
/// # Ok::<(), svshm::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Segment {
    id: i32,
}

/// Huge page size for [`CreateOptions::hugetlb`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugePageSize {
    /// The system's default huge page size.
    Default,
    /// 2 MiB pages (`SHM_HUGE_2MB`).
    Size2M,
    /// 1 GiB pages (`SHM_HUGE_1GB`).
    Size1G,
}

impl HugePageSize {
    fn flags(self) -> i32 {
        match self {
            HugePageSize::Default => 0,
            HugePageSize::Size2M => 21 << sys::SHM_HUGE_SHIFT,
            HugePageSize::Size1G => 30 << sys::SHM_HUGE_SHIFT,
        }
    }
}

/// How to create a segment: a builder over the flags of `shmget(2)`.
///
/// Defaults are the secure ones: key [`Key::PRIVATE`], mode `0600`, exclusive
/// (`IPC_CREAT|IPC_EXCL`, so an existing segment under the key is an error, never
/// silently reused).
///
/// ```
/// use svshm::{CreateOptions, Key};
/// let key = Key::new(0x5eed_0d0c ^ std::process::id() as i32);
/// let seg = CreateOptions::new(8192).key(key).mode(0o640).create()?;
/// let _rm = seg.remove_on_drop();
/// assert_eq!(seg.stat()?.permissions(), 0o640);
/// // Exclusive by default: the key is now taken.
/// let err = CreateOptions::new(8192).key(key).create().unwrap_err();
/// assert_eq!(err.kind(), svshm::ErrorKind::AlreadyExists);
/// # Ok::<(), svshm::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CreateOptions {
    key: Key,
    size: usize,
    mode: u32,
    exclusive: bool,
    huge: Option<HugePageSize>,
    noreserve: bool,
}

impl CreateOptions {
    /// Options for a segment of `size` bytes (the kernel rounds the allocation
    /// up to whole pages but records `size`).
    pub fn new(size: usize) -> CreateOptions {
        CreateOptions {
            key: Key::PRIVATE,
            size,
            mode: 0o600,
            exclusive: true,
            huge: None,
            noreserve: false,
        }
    }

    /// The key to create under (default [`Key::PRIVATE`]).
    pub fn key(mut self, key: Key) -> Self {
        self.key = key;
        self
    }

    /// Permission bits (default `0600`). Only the nine permission bits are
    /// accepted; anything else makes [`create`](Self::create) fail rather than
    /// smuggle flags into shmget.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// `IPC_EXCL` (default `true`): fail if the key exists. With `false`, an
    /// existing segment under the key is opened instead (its mode is then *not*
    /// changed — the classic squatting pitfall; verify what you got).
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// `SHM_HUGETLB` with a page size: back the segment with huge pages. Needs
    /// CAP_IPC_LOCK or membership of `vm.hugetlb_shm_group`, and reserved pages.
    pub fn hugetlb(mut self, size: HugePageSize) -> Self {
        self.huge = Some(size);
        self
    }

    /// `SHM_NORESERVE`: do not reserve swap; a write may then fault with SIGSEGV
    /// under memory pressure.
    pub fn noreserve(mut self, noreserve: bool) -> Self {
        self.noreserve = noreserve;
        self
    }

    /// The shmget flags these options give.
    pub fn flags(&self) -> i32 {
        let mut f = sys::IPC_CREAT | (self.mode & 0o777) as i32;
        if self.exclusive {
            f |= sys::IPC_EXCL;
        }
        if let Some(h) = self.huge {
            f |= sys::SHM_HUGETLB | h.flags();
        }
        if self.noreserve {
            f |= sys::SHM_NORESERVE;
        }
        f
    }

    /// `shmget(key, size, IPC_CREAT[|IPC_EXCL]|flags|mode)`: creates the segment.
    ///
    /// # Errors
    ///
    /// - EEXIST → [`ErrorKind::AlreadyExists`]: exclusive, and the key is taken
    ///   (the message names the holder).
    /// - EINVAL → [`ErrorKind::InvalidSize`] (size 0, above `kernel.shmmax`, or
    ///   a huge page size this machine lacks), or, not exclusive, →
    ///   [`ErrorKind::SegmentTooSmall`]: the existing segment is smaller.
    /// - EACCES → [`ErrorKind::PermissionDenied`]: not exclusive, and the
    ///   existing segment's mode bits deny this mode.
    /// - ENOSPC → [`ErrorKind::NoSpace`]: `kernel.shmmni` segments exist, or the
    ///   new pages would pass `kernel.shmall` (the message says which).
    /// - ENOMEM → [`ErrorKind::OutOfMemory`]; EPERM (SHM_HUGETLB without the
    ///   right) → [`ErrorKind::HugePagesNotPermitted`]; ENFILE →
    ///   [`ErrorKind::FileTableFull`].
    /// - [`ErrorKind::InvalidArgument`], before any call: `mode` has bits
    ///   beyond `0o777`.
    ///
    /// # References
    ///
    /// [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html), [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html)
    #[doc(alias = "shmget")]
    #[doc(alias = "IPC_CREAT")]
    #[doc(alias = "IPC_EXCL")]
    pub fn create(&self) -> Result<Segment> {
        let object = Object::Key(self.key, self.size as u64);
        if self.mode & !0o777 != 0 {
            return Err(Error::new(
                Op::Create,
                object,
                ErrorKind::InvalidArgument,
                None,
                format!(
                    "mode {:#o} has bits beyond the permission bits 0777; give only permission bits",
                    self.mode
                ),
            ));
        }
        sys::shmget(self.key.raw(), self.size, self.flags())
            .map(|id| Segment { id })
            .map_err(|e| key_error(Op::Create, self.key, self.size, self.huge.is_some(), e))
    }
}

impl Segment {
    /// `shmget(key, size, IPC_CREAT|IPC_EXCL|0600)`: creates a new segment under
    /// `key`, exclusively. For other options use [`CreateOptions`].
    ///
    /// ```
    /// use svshm::{ErrorKind, Key, Segment};
    /// let key = Key::from_name(&format!("doc-create-{}", std::process::id()));
    /// let seg = Segment::create(key, 4096)?;
    /// let _rm = seg.remove_on_drop();
    /// assert_eq!(Segment::create(key, 4096).unwrap_err().kind(), ErrorKind::AlreadyExists);
    /// # Ok::<(), svshm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`CreateOptions::create`]; most often EEXIST →
    /// [`ErrorKind::AlreadyExists`] and ENOSPC → [`ErrorKind::NoSpace`].
    ///
    /// # References
    ///
    /// [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html)
    #[doc(alias = "shmget")]
    pub fn create(key: Key, size: usize) -> Result<Segment> {
        CreateOptions::new(size).key(key).create()
    }

    /// `shmget(IPC_PRIVATE, size, IPC_CREAT|IPC_EXCL|0600)`: creates a new
    /// segment no key can find. Other processes reach it by its id (or by
    /// inheriting an attachment across `fork`).
    ///
    /// # Errors
    ///
    /// Those of [`CreateOptions::create`] that a private key can meet: EINVAL →
    /// [`ErrorKind::InvalidSize`], ENOSPC → [`ErrorKind::NoSpace`], ENOMEM →
    /// [`ErrorKind::OutOfMemory`].
    ///
    /// # References
    ///
    /// [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html)
    #[doc(alias = "shmget")]
    #[doc(alias = "IPC_PRIVATE")]
    pub fn create_private(size: usize) -> Result<Segment> {
        CreateOptions::new(size).create()
    }

    /// `shmget(key, min_size, 0)`: opens the existing segment under `key`.
    ///
    /// No access is checked here (shmget with mode 0 asks for none); attaching
    /// checks it. `min_size` 0 accepts any size.
    ///
    /// ```
    /// use svshm::{ErrorKind, Key, Segment};
    /// let key = Key::from_name(&format!("doc-open-{}", std::process::id()));
    /// assert_eq!(Segment::open(key, 0).unwrap_err().kind(), ErrorKind::NotFound);
    /// let seg = Segment::create(key, 4096)?;
    /// let _rm = seg.remove_on_drop();
    /// assert_eq!(Segment::open(key, 0)?, seg);
    /// assert_eq!(Segment::open(key, 8192).unwrap_err().kind(), ErrorKind::SegmentTooSmall);
    /// # Ok::<(), svshm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - ENOENT → [`ErrorKind::NotFound`]: no segment has the key.
    /// - EINVAL → [`ErrorKind::SegmentTooSmall`]: the segment is smaller than
    ///   `min_size`.
    /// - [`ErrorKind::InvalidArgument`], before any call: `key` is
    ///   [`Key::PRIVATE`], which names no existing segment.
    ///
    /// # References
    ///
    /// [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html), [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html)
    #[doc(alias = "shmget")]
    pub fn open(key: Key, min_size: usize) -> Result<Segment> {
        Segment::open_with_access(key, min_size, 0)
    }

    /// `shmget(key, min_size, access)`: like [`Segment::open`], asking the kernel
    /// to check the permission bits in `access` (e.g. `0o600`: read and write
    /// for whichever class applies to us).
    ///
    /// # Errors
    ///
    /// Those of [`Segment::open`], and EACCES → [`ErrorKind::PermissionDenied`]:
    /// the segment's mode bits do not grant `access` (the message names its
    /// owner and mode).
    ///
    /// # References
    ///
    /// [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html)
    #[doc(alias = "shmget")]
    pub fn open_with_access(key: Key, min_size: usize, access: u32) -> Result<Segment> {
        if key.is_private() {
            return Err(Error::new(
                Op::Open,
                Object::Key(key, min_size as u64),
                ErrorKind::InvalidArgument,
                None,
                "IPC_PRIVATE cannot be opened by key; open the segment by its id",
            ));
        }
        sys::shmget(key.raw(), min_size, (access & 0o777) as i32)
            .map(|id| Segment { id })
            .map_err(|e| key_error(Op::Open, key, min_size, false, e))
    }

    /// A handle for segment `id`, without a system call. Nothing is checked: an
    /// id that names no segment makes every later call fail with
    /// [`ErrorKind::InvalidId`].
    pub const fn from_id(id: i32) -> Segment {
        Segment { id }
    }

    /// The segment id (shmid).
    pub const fn id(self) -> i32 {
        self.id
    }

    /// `shmctl(id, IPC_STAT)`: everything the kernel records about the segment.
    /// Needs read permission ([`info::public_info_by_id`] needs none).
    ///
    /// # Errors
    ///
    /// - EINVAL → [`ErrorKind::InvalidId`]: no segment has this id (any more).
    /// - EIDRM → [`ErrorKind::Removed`]: it was destroyed during the call.
    /// - EACCES → [`ErrorKind::PermissionDenied`]: its mode bits deny reading.
    /// - EOVERFLOW → [`ErrorKind::Overflow`]; EFAULT → [`ErrorKind::Fault`].
    ///
    /// # References
    ///
    /// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html)
    #[doc(alias = "IPC_STAT")]
    #[doc(alias = "shmctl")]
    pub fn stat(self) -> Result<SegmentInfo> {
        let (_, ds) =
            sys::shmctl_stat(self.id, sys::IPC_STAT).map_err(|e| id_error(Op::Stat, self.id, e))?;
        Ok(SegmentInfo::from_ds(self.id, &ds))
    }

    /// `shmctl(id, IPC_SET)`: changes owner uid, gid and/or permission bits.
    ///
    /// `None` keeps the current value. Only the owner or creator (or
    /// CAP_SYS_ADMIN) may do this; it updates the change time.
    ///
    /// ```
    /// let seg = svshm::Segment::create_private(4096)?;
    /// let _rm = seg.remove_on_drop();
    /// seg.set(None, None, Some(0o640))?;
    /// assert_eq!(seg.stat()?.permissions(), 0o640);
    /// # Ok::<(), svshm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - EPERM → [`ErrorKind::NotOwner`]: the caller is neither owner nor
    ///   creator and lacks CAP_SYS_ADMIN (the message names both).
    /// - EINVAL → [`ErrorKind::InvalidId`] (no such segment), or
    ///   [`ErrorKind::InvalidArgument`] when the segment exists: the new uid or
    ///   gid is not valid in this user namespace.
    /// - EIDRM → [`ErrorKind::Removed`].
    /// - [`ErrorKind::InvalidArgument`], before any call: `mode` has bits
    ///   beyond `0o777`.
    ///
    /// # References
    ///
    /// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html)
    #[doc(alias = "IPC_SET")]
    #[doc(alias = "shmctl")]
    pub fn set(self, uid: Option<u32>, gid: Option<u32>, mode: Option<u32>) -> Result<()> {
        if let Some(m) = mode {
            if m & !0o777 != 0 {
                return Err(Error::new(
                    Op::Set,
                    Object::Id(self.id),
                    ErrorKind::InvalidArgument,
                    None,
                    format!(
                        "mode {m:#o} has bits beyond the permission bits 0777; give only permission bits"
                    ),
                ));
            }
        }
        let mut ds = self.current_owner_and_mode()?;
        if let Some(u) = uid {
            ds.shm_perm.uid = u;
        }
        if let Some(g) = gid {
            ds.shm_perm.gid = g;
        }
        if let Some(m) = mode {
            ds.shm_perm.mode = (u32::from(ds.shm_perm.mode) & !0o777 | m) as u16;
        }
        sys::shmctl_set(self.id, &ds).map_err(|e| id_error(Op::Set, self.id, e))
    }

    /// The `shmid_ds` that [`set`](Self::set) starts from: the kernel's record
    /// (IPC_STAT). IPC_STAT needs read permission but IPC_SET only ownership, so
    /// when IPC_STAT is refused (the owner of a mode-0 segment locking itself
    /// out, or a non-owner) the owner, group and mode come from the public table
    /// instead; the kernel then decides, and a non-owner gets EPERM
    /// ([`ErrorKind::NotOwner`]) rather than a misleading EACCES.
    fn current_owner_and_mode(self) -> Result<libc::shmid_ds> {
        match sys::shmctl_stat(self.id, sys::IPC_STAT) {
            Ok((_, ds)) => Ok(ds),
            Err(libc::EACCES) => {
                let public = info::public_info_by_id(self.id)
                    .ok_or_else(|| id_error(Op::Set, self.id, libc::EACCES))?;
                let mut ds = sys::zeroed_shmid_ds();
                ds.shm_perm.uid = public.uid;
                ds.shm_perm.gid = public.gid;
                // IPC_SET reads only uid, gid and the nine permission bits.
                ds.shm_perm.mode = (public.mode & 0o777) as u16;
                Ok(ds)
            }
            Err(e) => Err(id_error(Op::Set, self.id, e)),
        }
    }

    /// `shmctl(id, IPC_SET)` with new permission bits only: [`set`](Self::set)
    /// keeping owner and group.
    ///
    /// # Errors
    ///
    /// Those of [`set`](Self::set): mostly EPERM → [`ErrorKind::NotOwner`].
    ///
    /// # References
    ///
    /// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html)
    #[doc(alias = "IPC_SET")]
    pub fn set_mode(self, mode: u32) -> Result<()> {
        self.set(None, None, Some(mode))
    }

    /// `shmctl(id, IPC_RMID)`: marks the segment for destruction.
    ///
    /// The kernel destroys it when the last process detaches (at once if none is
    /// attached). Meanwhile it sets its key to IPC_PRIVATE, so `shmget(key)` no
    /// longer finds it, but on Linux it can still be attached **by id** — removal
    /// does not revoke access; only the mode bits do. Removing twice succeeds
    /// while it is still attached.
    ///
    /// ```
    /// use svshm::{ErrorKind, Segment};
    /// let seg = Segment::create_private(4096)?;
    /// seg.remove()?; // nothing attached: destroyed at once
    /// assert_eq!(seg.stat().unwrap_err().kind(), ErrorKind::InvalidId);
    /// # Ok::<(), svshm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - EPERM → [`ErrorKind::NotOwner`]: only the owner, the creator or a
    ///   process with CAP_SYS_ADMIN may remove it.
    /// - EINVAL → [`ErrorKind::InvalidId`]: no segment has this id (any more).
    /// - EIDRM → [`ErrorKind::Removed`].
    ///
    /// # References
    ///
    /// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html), [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html)
    #[doc(alias = "IPC_RMID")]
    #[doc(alias = "shmctl")]
    pub fn remove(self) -> Result<()> {
        sys::shmctl_none(self.id, sys::IPC_RMID).map_err(|e| id_error(Op::Remove, self.id, e))
    }

    /// `shmctl(id, SHM_LOCK)`: locks the segment in memory, so its pages are not
    /// swapped out once faulted in. Needs ownership and room in RLIMIT_MEMLOCK,
    /// or CAP_IPC_LOCK.
    ///
    /// # Errors
    ///
    /// - EPERM → [`ErrorKind::NotOwner`]: not the owner or creator (with
    ///   RLIMIT_MEMLOCK above 0), and no CAP_IPC_LOCK.
    /// - ENOMEM → [`ErrorKind::LockLimit`]: locking would pass RLIMIT_MEMLOCK.
    /// - EINVAL → [`ErrorKind::InvalidId`]; EIDRM → [`ErrorKind::Removed`].
    ///
    /// # References
    ///
    /// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html)
    #[doc(alias = "SHM_LOCK")]
    #[doc(alias = "shmctl")]
    pub fn lock(self) -> Result<()> {
        sys::shmctl_none(self.id, sys::SHM_LOCK).map_err(|e| id_error(Op::Lock, self.id, e))
    }

    /// `shmctl(id, SHM_UNLOCK)`: lets the segment's pages be swapped out again.
    ///
    /// # Errors
    ///
    /// EPERM → [`ErrorKind::NotOwner`] (not the owner or creator, no
    /// CAP_IPC_LOCK); EINVAL → [`ErrorKind::InvalidId`]; EIDRM →
    /// [`ErrorKind::Removed`].
    ///
    /// # References
    ///
    /// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html)
    #[doc(alias = "SHM_UNLOCK")]
    #[doc(alias = "shmctl")]
    pub fn unlock(self) -> Result<()> {
        sys::shmctl_none(self.id, sys::SHM_UNLOCK).map_err(|e| id_error(Op::Unlock, self.id, e))
    }

    /// `shmat(id, NULL, 0)`: maps the segment read-write at an address the
    /// kernel chooses. The [`Attachment`] detaches (shmdt) on Drop.
    ///
    /// # Errors
    ///
    /// - EACCES → [`ErrorKind::PermissionDenied`]: the mode bits deny reading
    ///   and writing.
    /// - EINVAL → [`ErrorKind::InvalidId`]; EIDRM → [`ErrorKind::Removed`].
    /// - ENOMEM → [`ErrorKind::OutOfMemory`]: no room in this process's address
    ///   space (RLIMIT_AS, `vm.max_map_count`).
    ///
    /// # References
    ///
    /// [shmat(2)](https://man7.org/linux/man-pages/man2/shmat.2.html)
    #[doc(alias = "shmat")]
    pub fn attach(self) -> Result<Attachment> {
        Attachment::new(self.id, &AttachOptions::new())
    }

    /// `shmat(id, NULL, SHM_RDONLY)`: maps the segment read-only; writes
    /// through the [`Attachment`] are refused with [`ErrorKind::ReadOnly`].
    ///
    /// # Errors
    ///
    /// Those of [`attach`](Self::attach), where EACCES means the mode bits deny
    /// reading.
    ///
    /// # References
    ///
    /// [shmat(2)](https://man7.org/linux/man-pages/man2/shmat.2.html)
    #[doc(alias = "shmat")]
    #[doc(alias = "SHM_RDONLY")]
    pub fn attach_read_only(self) -> Result<Attachment> {
        Attachment::new(self.id, &AttachOptions::new().read_only(true))
    }

    /// `shmat(id, addr, flags)`: maps the segment with explicit
    /// [`AttachOptions`] (address, SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC).
    ///
    /// # Errors
    ///
    /// Those of [`attach`](Self::attach), and, for an explicit address:
    /// - EINVAL → [`ErrorKind::InvalidAddress`]: not a multiple of SHMLBA
    ///   without SHM_RND, overlapping a mapping without SHM_REMAP, or SHM_REMAP
    ///   without an address.
    /// - EPERM → [`ErrorKind::InvalidAddress`]: below `vm.mmap_min_addr`.
    ///
    /// # References
    ///
    /// [shmat(2)](https://man7.org/linux/man-pages/man2/shmat.2.html)
    #[doc(alias = "shmat")]
    pub fn attach_with(self, options: &AttachOptions) -> Result<Attachment> {
        Attachment::new(self.id, options)
    }

    /// A guard that removes the segment when dropped (ignoring errors: it may
    /// already be gone).
    pub fn remove_on_drop(self) -> RemoveOnDrop {
        RemoveOnDrop { segment: self }
    }
}

/// Removes its segment (IPC_RMID) when dropped — also during a panic, so tests
/// and tools never leak a segment. See [`Segment::remove_on_drop`].
#[derive(Debug)]
#[must_use = "the segment is removed when the guard is dropped"]
pub struct RemoveOnDrop {
    segment: Segment,
}

impl RemoveOnDrop {
    /// The guarded segment.
    pub fn segment(&self) -> Segment {
        self.segment
    }

    /// Gives up the guard without removing the segment.
    pub fn disarm(self) -> Segment {
        let s = self.segment;
        core::mem::forget(self);
        s
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = self.segment.remove();
    }
}

/// Who holds a segment, for messages. The owner uid can be set to anything by
/// the owner or creator (IPC_SET), so the creator uid, which never changes, is
/// named too when it differs: that is the kernel's word on who made it.
fn owner_text(info: &SegmentInfo) -> String {
    let creator = if info.creator_uid == info.uid {
        String::new()
    } else {
        format!(" but was created by {}", describe_uid(info.creator_uid))
    };
    format!(
        "segment id {} is owned by {}{creator}, mode {:04o}",
        info.id,
        describe_uid(info.uid),
        info.permissions()
    )
}

/// Why shmget found no room (ENOSPC), worked out as the kernel does (newseg:
/// first the page total against `kernel.shmall`, then the segment count
/// against `kernel.shmmni`) from SHM_INFO's counts and IPC_INFO's limits.
fn no_space_text(size: usize) -> String {
    const FREE: &str = "remove segments you no longer need (list them with SHM_STAT_ANY or /proc/sysvipc/shm, remove one with shmctl IPC_RMID)";
    let (Ok(l), Ok(u)) = (info::limits(), info::usage()) else {
        return format!(
            "no room: all kernel.shmmni segment ids are in use, or the total would exceed kernel.shmall; {FREE}, or raise /proc/sys/kernel/shmmni or /proc/sys/kernel/shmall"
        );
    };
    let pages = (size as u64).div_ceil(l.page_size.max(1));
    if u.pages_allocated.saturating_add(pages) > l.shmall {
        format!(
            "no room: all segments together may hold kernel.shmall ({} pages, {}); {} are in use and this segment needs {pages} more; {FREE}, or raise /proc/sys/kernel/shmall",
            l.shmall,
            human_size(l.shmall_bytes()),
            u.pages_allocated
        )
    } else if u.segments >= l.shmmni {
        format!(
            "no room: all kernel.shmmni ({}) segment ids are in use ({} segments exist); {FREE}, or raise /proc/sys/kernel/shmmni",
            l.shmmni, u.segments
        )
    } else {
        format!(
            "no room under kernel.shmmni ({} segments, {} in use) or kernel.shmall ({} pages, {} in use) as last counted; {FREE}, or raise /proc/sys/kernel/shmmni or /proc/sys/kernel/shmall",
            l.shmmni, u.segments, l.shmall, u.pages_allocated
        )
    }
}

/// Error for a failed shmget.
pub(crate) fn key_error(op: Op, key: Key, size: usize, huge: bool, errno: i32) -> Error {
    let object = Object::Key(key, size as u64);
    let existing = || info::public_info_by_key(key);
    let (kind, msg) = match errno {
        libc::ENOENT => (
            ErrorKind::NotFound,
            "no segment has this key; create it first (IPC_CREAT), or check the key (/proc/sysvipc/shm lists the keys in use)".to_string(),
        ),
        libc::EEXIST => (
            ErrorKind::AlreadyExists,
            match existing() {
                Some(i) => format!(
                    "the key is already taken: {}; choose another key, open the existing segment, or remove it (shmctl({}, IPC_RMID))",
                    owner_text(&i),
                    i.id
                ),
                None => "the key is already taken; choose another key or remove the existing segment".to_string(),
            },
        ),
        libc::EINVAL => match existing() {
            Some(i) if i.size < size as u64 => (
                ErrorKind::SegmentTooSmall,
                format!(
                    "the existing segment id {} under this key has only {} ({} bytes), less than the {} bytes asked for; ask for at most its size (0 accepts any) or remove it",
                    i.id,
                    human_size(i.size),
                    i.size,
                    size
                ),
            ),
            _ if size == 0 => (
                ErrorKind::InvalidSize,
                "size 0 is below the minimum segment size (SHMMIN = 1 byte); give a size of at least 1 byte".to_string(),
            ),
            _ if huge => (
                ErrorKind::InvalidSize,
                "the kernel rejected the huge page size; check /sys/kernel/mm/hugepages for the sizes this machine has"
                    .to_string(),
            ),
            _ => {
                let max = info::limits().map(|l| l.shmmax).unwrap_or(0);
                if max > 0 && size as u64 > max {
                    (
                        ErrorKind::InvalidSize,
                        format!(
                            "size exceeds kernel.shmmax ({}); raise /proc/sys/kernel/shmmax or use a smaller size",
                            human_size(max)
                        ),
                    )
                } else {
                    (ErrorKind::InvalidSize, "invalid size for a new segment".to_string())
                }
            }
        },
        libc::EACCES => (
            ErrorKind::PermissionDenied,
            match existing() {
                Some(i) => format!(
                    "permission denied: {}; ask its owner to widen the mode (shmctl({}, IPC_SET)) or run as that user",
                    owner_text(&i),
                    i.id
                ),
                None => "permission denied by the segment's mode bits".to_string(),
            },
        ),
        libc::ENOSPC => (ErrorKind::NoSpace, no_space_text(size)),
        libc::ENOMEM if huge => (
            ErrorKind::OutOfMemory,
            "not enough free huge pages; reserve some in /proc/sys/vm/nr_hugepages (or /sys/kernel/mm/hugepages/*/nr_hugepages)".to_string(),
        ),
        libc::ENOMEM => (
            ErrorKind::OutOfMemory,
            "the kernel could not allocate memory for the segment; free memory or use a smaller size".to_string(),
        ),
        libc::EPERM => (
            ErrorKind::HugePagesNotPermitted,
            "huge pages need CAP_IPC_LOCK or membership of the group in /proc/sys/vm/hugetlb_shm_group".to_string(),
        ),
        libc::ENFILE => (
            ErrorKind::FileTableFull,
            "the system-wide limit on open files is reached; raise /proc/sys/fs/file-max or close files".to_string(),
        ),
        e => (ErrorKind::Other, crate::error::errno_text(e)),
    };
    Error::new(op, object, kind, Some(errno), msg)
}

/// Error for a failed shmctl or shmat on an id.
pub(crate) fn id_error(op: Op, id: i32, errno: i32) -> Error {
    let object = Object::Id(id);
    let public = || info::public_info_by_id(id);
    let (kind, msg) = match errno {
        libc::EINVAL if id < 0 => (
            ErrorKind::InvalidId,
            "a segment id is never negative".to_string(),
        ),
        // IPC_SET on a segment that exists: the new uid or gid is invalid.
        libc::EINVAL if op == Op::Set && public().is_some() => (
            ErrorKind::InvalidArgument,
            "the kernel rejected the new owner or group: the uid or gid is not valid in this user namespace (4294967295 is (uid_t)-1, never valid); give a uid or gid that exists here"
                .to_string(),
        ),
        libc::EINVAL => (
            ErrorKind::InvalidId,
            "no segment has this id (it may have been destroyed); check the id against /proc/sysvipc/shm"
                .to_string(),
        ),
        libc::EIDRM => (
            ErrorKind::Removed,
            "the segment was removed while the call ran".to_string(),
        ),
        libc::EACCES => (
            ErrorKind::PermissionDenied,
            match public() {
                Some(i) => format!(
                    "permission denied: {}; ask its owner to widen the mode (shmctl({id}, IPC_SET)) or run as that user",
                    owner_text(&i)
                ),
                None => "permission denied by the segment's mode bits".to_string(),
            },
        ),
        libc::EPERM => {
            let who = match public() {
                Some(i) => format!(
                    "only its owner ({}) or creator ({})",
                    describe_uid(i.uid),
                    describe_uid(i.creator_uid)
                ),
                None => "only its owner or creator".to_string(),
            };
            let cap = match op {
                Op::Lock | Op::Unlock => "CAP_IPC_LOCK",
                _ => "CAP_SYS_ADMIN",
            };
            let extra = if op == Op::Lock {
                " (with RLIMIT_MEMLOCK above 0)"
            } else {
                ""
            };
            (
                ErrorKind::NotOwner,
                format!(
                    "operation not permitted: {who}{extra}, or a process with {cap}, may do this"
                ),
            )
        }
        libc::ENOMEM if op == Op::Lock => (
            ErrorKind::LockLimit,
            "locking would exceed RLIMIT_MEMLOCK; raise it (`ulimit -l`) or run with CAP_IPC_LOCK"
                .to_string(),
        ),
        libc::ENOMEM => (
            ErrorKind::OutOfMemory,
            "the kernel is out of memory".to_string(),
        ),
        libc::EOVERFLOW => (
            ErrorKind::Overflow,
            "a uid or gid of the segment does not fit the structure (32-bit caller?)".to_string(),
        ),
        libc::EFAULT => (
            ErrorKind::Fault,
            "the kernel could not access the buffer".to_string(),
        ),
        e => (ErrorKind::Other, crate::error::errno_text(e)),
    };
    Error::new(op, object, kind, Some(errno), msg)
}
