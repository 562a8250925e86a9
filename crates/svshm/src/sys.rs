//! The thin private syscall layer: raw libc calls plus the constants and structs
//! libc does not define. Nothing here is public; every function returns the raw
//! result and `errno` as an `Err(i32)`, and the typed API above turns that into
//! an [`Error`](crate::Error).

// Unsafe: the raw libc calls (shmget, shmat, shmdt, shmctl, madvise, NSS) live here.
#![allow(unsafe_code)]

use core::ffi::c_void;
use core::mem::MaybeUninit;

/// `IPC_PRIVATE`: the key that always creates a new segment.
pub const IPC_PRIVATE: libc::key_t = 0;
/// shmget flag: create if the key does not exist.
pub const IPC_CREAT: i32 = 0o1000;
/// shmget flag: with `IPC_CREAT`, fail if the key exists.
pub const IPC_EXCL: i32 = 0o2000;
/// shmget flag: back the segment with huge pages.
pub const SHM_HUGETLB: i32 = 0o4000;
/// shmget flag: do not reserve swap space.
pub const SHM_NORESERVE: i32 = 0o10000;
/// Shift of the log2 huge page size in the shmget flags.
pub const SHM_HUGE_SHIFT: i32 = 26;

/// shmat flag: attach read-only.
pub const SHM_RDONLY: i32 = 0o10000;
/// shmat flag: round the address down to SHMLBA.
pub const SHM_RND: i32 = 0o20000;
/// shmat flag: replace an existing mapping.
pub const SHM_REMAP: i32 = 0o40000;
/// shmat flag: allow execution.
pub const SHM_EXEC: i32 = 0o100000;

/// shmctl command: mark for destruction.
pub const IPC_RMID: i32 = 0;
/// shmctl command: set uid, gid, mode.
pub const IPC_SET: i32 = 1;
/// shmctl command: read the `shmid_ds`.
pub const IPC_STAT: i32 = 2;
/// shmctl command: system limits (`struct shminfo`).
pub const IPC_INFO: i32 = 3;
/// shmctl command: lock in memory.
pub const SHM_LOCK: i32 = 11;
/// shmctl command: unlock.
pub const SHM_UNLOCK: i32 = 12;
/// shmctl command: IPC_STAT by index.
pub const SHM_STAT: i32 = 13;
/// shmctl command: system usage (`struct shm_info`).
pub const SHM_INFO: i32 = 14;
/// shmctl command: SHM_STAT without the read-permission check (Linux >= 4.17).
pub const SHM_STAT_ANY: i32 = 15;

/// Mode bit: the segment is marked for destruction.
pub const SHM_DEST: u32 = 0o1000;
/// Mode bit: the segment is locked in memory.
pub const SHM_LOCKED: u32 = 0o2000;

/// `struct shminfo` (IPC_INFO), as the kernel fills it on 64-bit Linux.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct ShmInfoLimits {
    pub shmmax: libc::c_ulong,
    pub shmmin: libc::c_ulong,
    pub shmmni: libc::c_ulong,
    pub shmseg: libc::c_ulong,
    pub shmall: libc::c_ulong,
    pub _unused: [libc::c_ulong; 4],
}

/// `struct shm_info` (SHM_INFO).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct ShmInfoUsage {
    pub used_ids: libc::c_int,
    pub shm_tot: libc::c_ulong,
    pub shm_rss: libc::c_ulong,
    pub shm_swp: libc::c_ulong,
    pub swap_attempts: libc::c_ulong,
    pub swap_successes: libc::c_ulong,
}

// The kernel copies at most sizeof(struct shmid64_ds) into the buffer for every
// command; both our structs must be at least that small or the union below large
// enough. We always pass a buffer of the largest size.
const _: () =
    assert!(core::mem::size_of::<ShmInfoLimits>() <= core::mem::size_of::<libc::shmid_ds>());
const _: () =
    assert!(core::mem::size_of::<ShmInfoUsage>() <= core::mem::size_of::<libc::shmid_ds>());
#[cfg(target_pointer_width = "64")]
const _: () = assert!(core::mem::size_of::<ShmInfoUsage>() == 48);
#[cfg(target_pointer_width = "64")]
const _: () = assert!(core::mem::size_of::<ShmInfoLimits>() == 72);

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `shmget(2)`.
pub fn shmget(key: libc::key_t, size: usize, flags: i32) -> Result<i32, i32> {
    // SAFETY: shmget takes plain integers and touches no memory of ours.
    let r = unsafe { libc::shmget(key, size, flags) };
    if r < 0 { Err(errno()) } else { Ok(r) }
}

/// `shmat(2)`. Returns the mapping address.
///
/// # Safety
///
/// With a non-null `addr`, the kernel maps at that address with MAP_FIXED
/// semantics; with `SHM_REMAP` it replaces whatever was mapped there. The caller
/// must make sure no live Rust object occupies that range.
pub unsafe fn shmat(id: i32, addr: *const c_void, flags: i32) -> Result<*mut c_void, i32> {
    // SAFETY: the caller guarantees that mapping at `addr` (if non-null) does not
    // clobber memory in use; with a null address the kernel picks a free range.
    let r = unsafe { libc::shmat(id, addr, flags) };
    if r as isize == -1 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// `shmdt(2)`.
///
/// # Safety
///
/// No reference or pointer into the mapping at `addr` may be used afterwards.
pub unsafe fn shmdt(addr: *const c_void) -> Result<(), i32> {
    // SAFETY: the caller guarantees nothing uses the mapping any more.
    let r = unsafe { libc::shmdt(addr) };
    if r < 0 { Err(errno()) } else { Ok(()) }
}

/// `madvise(2)` with an advice that only changes how the kernel treats the
/// range (never its contents).
///
/// # Safety
///
/// `addr..addr + len` must be a mapping this process owns, and `advice` must
/// not discard or replace its contents (MADV_DONTFORK and MADV_DOFORK qualify).
pub unsafe fn madvise(addr: *mut c_void, len: usize, advice: i32) -> Result<(), i32> {
    // SAFETY: the caller guarantees the range and that the advice keeps the
    // memory's contents and mapping intact in this process.
    let r = unsafe { libc::madvise(addr, len, advice) };
    if r < 0 { Err(errno()) } else { Ok(()) }
}

/// A buffer big enough for every shmctl command's output.
#[repr(C)]
union CtlBuf {
    ds: libc::shmid_ds,
    limits: ShmInfoLimits,
    usage: ShmInfoUsage,
}

/// `shmctl(2)` with an output buffer. Returns the call's non-negative result and
/// the (possibly) filled buffer.
fn shmctl_out(id: i32, cmd: i32) -> Result<(i32, CtlBuf), i32> {
    let mut buf = MaybeUninit::<CtlBuf>::zeroed();
    // SAFETY: `buf` is a valid, writable buffer at least as large as the largest
    // structure the kernel writes for any shmctl command (asserted above).
    let r = unsafe { libc::shmctl(id, cmd, buf.as_mut_ptr().cast()) };
    if r < 0 {
        return Err(errno());
    }
    // SAFETY: zero-initialised plain integer structs are valid for every field.
    Ok((r, unsafe { buf.assume_init() }))
}

/// `shmctl(id, cmd)` for IPC_STAT, SHM_STAT and SHM_STAT_ANY: the call's result
/// (the id, for the by-index commands) and the segment's `shmid_ds`.
pub fn shmctl_stat(id: i32, cmd: i32) -> Result<(i32, libc::shmid_ds), i32> {
    debug_assert!(matches!(cmd, IPC_STAT | SHM_STAT | SHM_STAT_ANY));
    let (r, buf) = shmctl_out(id, cmd)?;
    // SAFETY: these commands fill the `ds` variant; every variant is plain
    // integers, so any bytes (the zeroed buffer included) are a valid value.
    Ok((r, unsafe { buf.ds }))
}

/// `shmctl(0, IPC_INFO)`: the system limits.
pub fn shmctl_ipc_info() -> Result<ShmInfoLimits, i32> {
    let (_, buf) = shmctl_out(0, IPC_INFO)?;
    // SAFETY: IPC_INFO fills the `limits` variant (plain integers, see above).
    Ok(unsafe { buf.limits })
}

/// `shmctl(0, SHM_INFO)`: the highest index in use and the system usage.
pub fn shmctl_shm_info() -> Result<(i32, ShmInfoUsage), i32> {
    let (r, buf) = shmctl_out(0, SHM_INFO)?;
    // SAFETY: SHM_INFO fills the `usage` variant (plain integers, see above).
    Ok((r, unsafe { buf.usage }))
}

/// An all-zero `shmid_ds`, to fill in for IPC_SET.
pub fn zeroed_shmid_ds() -> libc::shmid_ds {
    // SAFETY: shmid_ds is a C struct of plain integers (and padding); all-zero
    // bytes are a valid value of every field.
    unsafe { MaybeUninit::<libc::shmid_ds>::zeroed().assume_init() }
}

/// `shmctl(2)` for commands that take no buffer (IPC_RMID, SHM_LOCK, SHM_UNLOCK).
pub fn shmctl_none(id: i32, cmd: i32) -> Result<(), i32> {
    // SAFETY: these commands ignore the buffer argument; null is allowed.
    let r = unsafe { libc::shmctl(id, cmd, core::ptr::null_mut()) };
    if r < 0 { Err(errno()) } else { Ok(()) }
}

/// `shmctl(id, IPC_SET, ds)`.
pub fn shmctl_set(id: i32, ds: &libc::shmid_ds) -> Result<(), i32> {
    let mut copy = *ds;
    // SAFETY: `copy` is a valid shmid_ds the kernel only reads.
    let r = unsafe { libc::shmctl(id, IPC_SET, &mut copy) };
    if r < 0 { Err(errno()) } else { Ok(()) }
}

/// `getpagesize()` / SHMLBA on the architectures we support.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let r = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if r > 0 { r as usize } else { 4096 }
}

/// Effective uid of the caller.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Effective gid of the caller.
pub fn getegid() -> u32 {
    // SAFETY: getegid cannot fail and touches no memory.
    unsafe { libc::getegid() }
}

/// Runs a `get*_r` style lookup with a growing buffer. `call` gets the buffer
/// pointer and length and returns the C function's result and whether an entry
/// was found.
fn with_nss_buffer<T>(
    mut call: impl FnMut(*mut libc::c_char, usize) -> (i32, Option<T>),
) -> Option<T> {
    let mut len = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        let (rc, found) = call(buf.as_mut_ptr(), buf.len());
        if rc == libc::ERANGE && len < (1 << 20) {
            len *= 4;
            continue;
        }
        return if rc == 0 { found } else { None };
    }
}

fn cstr_to_string(p: *const libc::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: NSS returns NUL-terminated strings inside the buffer we passed,
    // which outlives this call.
    Some(
        unsafe { core::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// `getpwuid_r`: user name and primary gid of a uid.
pub fn user_by_uid(uid: u32) -> Option<(String, u32)> {
    with_nss_buffer(|buf, len| {
        let mut pw = MaybeUninit::<libc::passwd>::zeroed();
        let mut out: *mut libc::passwd = core::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes given; `out` is set to
        // `pw` or null by the call.
        let rc = unsafe { libc::getpwuid_r(uid, pw.as_mut_ptr(), buf, len, &mut out) };
        if rc != 0 || out.is_null() {
            return (rc, None);
        }
        // SAFETY: `out` is non-null, so `pw` was filled in.
        let pw = unsafe { pw.assume_init() };
        (0, cstr_to_string(pw.pw_name).map(|n| (n, pw.pw_gid)))
    })
}

/// `getpwnam_r`: uid of a user name.
pub fn uid_by_name(name: &str) -> Option<u32> {
    let cname = std::ffi::CString::new(name).ok()?;
    with_nss_buffer(|buf, len| {
        let mut pw = MaybeUninit::<libc::passwd>::zeroed();
        let mut out: *mut libc::passwd = core::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes given.
        let rc = unsafe { libc::getpwnam_r(cname.as_ptr(), pw.as_mut_ptr(), buf, len, &mut out) };
        if rc != 0 || out.is_null() {
            return (rc, None);
        }
        // SAFETY: `out` is non-null, so `pw` was filled in.
        (0, Some(unsafe { pw.assume_init() }.pw_uid))
    })
}

/// `getgrgid_r`: group name of a gid.
pub fn group_by_gid(gid: u32) -> Option<String> {
    with_nss_buffer(|buf, len| {
        let mut gr = MaybeUninit::<libc::group>::zeroed();
        let mut out: *mut libc::group = core::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes given.
        let rc = unsafe { libc::getgrgid_r(gid, gr.as_mut_ptr(), buf, len, &mut out) };
        if rc != 0 || out.is_null() {
            return (rc, None);
        }
        // SAFETY: `out` is non-null, so `gr` was filled in.
        (0, cstr_to_string(unsafe { gr.assume_init() }.gr_name))
    })
}

/// `getgrnam_r`: gid of a group name.
pub fn gid_by_name(name: &str) -> Option<u32> {
    let cname = std::ffi::CString::new(name).ok()?;
    with_nss_buffer(|buf, len| {
        let mut gr = MaybeUninit::<libc::group>::zeroed();
        let mut out: *mut libc::group = core::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes given.
        let rc = unsafe { libc::getgrnam_r(cname.as_ptr(), gr.as_mut_ptr(), buf, len, &mut out) };
        if rc != 0 || out.is_null() {
            return (rc, None);
        }
        // SAFETY: `out` is non-null, so `gr` was filled in.
        (0, Some(unsafe { gr.assume_init() }.gr_gid))
    })
}
