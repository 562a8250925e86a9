//! The system view: one segment's `shmid_ds` ([`SegmentInfo`]), the kernel's
//! limits ([`Limits`]) and usage ([`Usage`]), every segment ([`segments`]), and
//! which processes have a segment attached, where ([`attachers`]).

// c_ulong and friends are u64 here but u32 on 32-bit targets: keep the casts.
#![allow(clippy::unnecessary_cast)]

use crate::error::{Error, ErrorKind, Object, Op, Result};
use crate::key::Key;
use crate::sys;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Everything the kernel records about a segment: every field of `struct
/// shmid_ds`, plus resident and swapped bytes when read from `/proc/sysvipc/shm`.
///
/// All of it is public information: `/proc/sysvipc/shm` is world-readable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The key (`shm_perm.__key`). [`Key::PRIVATE`] for IPC_PRIVATE segments and
    /// for segments marked for destruction (the kernel hides their key).
    pub key: Key,
    /// The segment id (shmid).
    pub id: i32,
    /// Owner uid (`shm_perm.uid`).
    pub uid: u32,
    /// Owner gid (`shm_perm.gid`).
    pub gid: u32,
    /// Creator uid (`shm_perm.cuid`), kernel-attested.
    pub creator_uid: u32,
    /// Creator gid (`shm_perm.cgid`).
    pub creator_gid: u32,
    /// The full mode: permission bits plus SHM_DEST (0o1000) and SHM_LOCKED (0o2000).
    pub mode: u32,
    /// Size in bytes as requested at creation (`shm_segsz`).
    pub size: u64,
    /// Number of current attaches (`shm_nattch`). The kernel counts mappings:
    /// an attachment that `mprotect` split into pieces counts once per piece
    /// (see [`Attacher::pieces`]), and `fork` adds the child's copies.
    pub attach_count: u64,
    /// Pid of the creator (`shm_cpid`), kernel-attested.
    pub creator_pid: i32,
    /// Pid of the last shmat/shmdt (`shm_lpid`); 0 if never attached.
    pub last_pid: i32,
    /// Time of the last shmat (`shm_atime`), `None` if never.
    pub attach_time: Option<SystemTime>,
    /// Time of the last shmdt (`shm_dtime`), `None` if never.
    pub detach_time: Option<SystemTime>,
    /// Time of creation or last IPC_SET (`shm_ctime`).
    pub change_time: Option<SystemTime>,
    /// Resident bytes (only from `/proc/sysvipc/shm`).
    pub rss: Option<u64>,
    /// Swapped bytes (only from `/proc/sysvipc/shm`).
    pub swap: Option<u64>,
}

fn time_from_secs(secs: i64) -> Option<SystemTime> {
    (secs > 0).then(|| UNIX_EPOCH + Duration::from_secs(secs as u64))
}

/// Seconds since the epoch of an optional time, 0 for `None` (the kernel's "not set").
pub fn epoch_secs(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

impl SegmentInfo {
    pub(crate) fn from_ds(id: i32, ds: &libc::shmid_ds) -> SegmentInfo {
        SegmentInfo {
            key: Key::new(ds.shm_perm.__key),
            id,
            uid: ds.shm_perm.uid,
            gid: ds.shm_perm.gid,
            creator_uid: ds.shm_perm.cuid,
            creator_gid: ds.shm_perm.cgid,
            mode: u32::from(ds.shm_perm.mode),
            size: ds.shm_segsz as u64,
            attach_count: ds.shm_nattch as u64,
            creator_pid: ds.shm_cpid,
            last_pid: ds.shm_lpid,
            attach_time: time_from_secs(ds.shm_atime),
            detach_time: time_from_secs(ds.shm_dtime),
            change_time: time_from_secs(ds.shm_ctime),
            rss: None,
            swap: None,
        }
    }

    /// The nine permission bits (`mode & 0o777`).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o777
    }

    /// SHM_DEST: IPC_RMID was applied; the kernel destroys the segment at the last detach.
    pub fn is_marked_for_destruction(&self) -> bool {
        self.mode & sys::SHM_DEST != 0
    }

    /// SHM_LOCKED: the segment is locked in memory (SHM_LOCK).
    pub fn is_locked(&self) -> bool {
        self.mode & sys::SHM_LOCKED != 0
    }

    /// Parses one data line of `/proc/sysvipc/shm` (14 or 16 fields).
    pub fn parse_proc_line(line: &str) -> Option<SegmentInfo> {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 14 {
            return None;
        }
        let n = |i: usize| f[i].parse::<i64>().ok();
        let u = |i: usize| f[i].parse::<u64>().ok();
        Some(SegmentInfo {
            key: Key::new(n(0)? as i32),
            id: n(1)? as i32,
            mode: u32::from_str_radix(f[2], 8).ok()?,
            size: u(3)?,
            creator_pid: n(4)? as i32,
            last_pid: n(5)? as i32,
            attach_count: u(6)?,
            uid: u(7)? as u32,
            gid: u(8)? as u32,
            creator_uid: u(9)? as u32,
            creator_gid: u(10)? as u32,
            attach_time: time_from_secs(n(11)?),
            detach_time: time_from_secs(n(12)?),
            change_time: time_from_secs(n(13)?),
            rss: f.get(14).and_then(|s| s.parse().ok()),
            swap: f.get(15).and_then(|s| s.parse().ok()),
        })
    }
}

/// The kernel's shared memory limits (per IPC namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest segment in bytes (`kernel.shmmax`).
    pub shmmax: u64,
    /// Smallest segment in bytes (SHMMIN, always 1).
    pub shmmin: u64,
    /// Most segments in the namespace (`kernel.shmmni`).
    pub shmmni: u64,
    /// Most segments one process may attach (SHMSEG; Linux reports shmmni).
    pub shmseg: u64,
    /// Most pages in all segments together (`kernel.shmall`, in pages).
    pub shmall: u64,
    /// Page size, the unit of `shmall`.
    pub page_size: u64,
    /// `kernel.shm_rmid_forced`: every segment is destroyed at its last detach.
    /// `None` when the file cannot be read.
    pub rmid_forced: Option<bool>,
    /// `kernel.shm_next_id`: the id the next segment will get (-1: kernel's choice).
    /// `None` without CONFIG_CHECKPOINT_RESTORE.
    pub next_id: Option<i64>,
}

impl Limits {
    /// `shmall` in bytes, saturating.
    pub fn shmall_bytes(&self) -> u64 {
        self.shmall.saturating_mul(self.page_size)
    }
}

/// The sysctl file that holds a limit, for messages and docs.
pub const SYSCTL_DIR: &str = "/proc/sys/kernel";

fn read_sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(Path::new(SYSCTL_DIR).join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

/// A value from `/proc/sys/vm/`, trimmed.
pub(crate) fn read_vm_sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(Path::new("/proc/sys/vm").join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

/// This process's soft RLIMIT_AS in bytes (`ulimit -v`), from
/// `/proc/self/limits`; `None` when unlimited or unknown.
pub(crate) fn address_space_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `shmctl(0, IPC_INFO)`: the system-wide limits, plus
/// `/proc/sys/kernel/shm_rmid_forced` and `shm_next_id`.
///
/// ```
/// let l = svshm::limits().unwrap();
/// assert_eq!(l.shmmin, 1);
/// assert!(l.shmmni > 0);
/// ```
///
/// # Errors
///
/// - EINVAL or ENOSYS → [`ErrorKind::Unsupported`]: System V IPC is disabled
///   in this kernel (CONFIG_SYSVIPC).
/// - EFAULT → [`ErrorKind::Fault`]; any other errno → [`ErrorKind::Other`].
///
/// # References
///
/// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html), [proc(5)](https://man7.org/linux/man-pages/man5/proc.5.html) (`/proc/sys/kernel/shm*`)
#[doc(alias = "IPC_INFO")]
#[doc(alias = "shmctl")]
pub fn limits() -> Result<Limits> {
    let l = sys::shmctl_ipc_info().map_err(|e| errno_error(Op::Limits, Object::System, e))?;
    Ok(Limits {
        shmmax: l.shmmax as u64,
        shmmin: l.shmmin as u64,
        shmmni: l.shmmni as u64,
        shmseg: l.shmseg as u64,
        shmall: l.shmall as u64,
        page_size: sys::page_size() as u64,
        rmid_forced: read_sysctl("shm_rmid_forced").map(|s| s != "0"),
        next_id: read_sysctl("shm_next_id").and_then(|s| s.parse().ok()),
    })
}

/// System-wide usage from shmctl(SHM_INFO).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Number of segments that exist (`used_ids`).
    pub segments: u64,
    /// Highest index in use in the kernel's array (the call's return value).
    pub max_index: i32,
    /// Pages allocated (each segment rounded up to whole pages).
    pub pages_allocated: u64,
    /// Pages resident in memory.
    pub pages_resident: u64,
    /// Pages swapped out.
    pub pages_swapped: u64,
    /// Unused by Linux, always 0.
    pub swap_attempts: u64,
    /// Unused by Linux, always 0.
    pub swap_successes: u64,
}

/// `shmctl(0, SHM_INFO)`: system-wide usage (segments, pages allocated,
/// resident and swapped) and the highest index in use.
///
/// ```
/// let u = svshm::usage().unwrap();
/// assert!(u.pages_resident <= u.pages_allocated || u.pages_swapped > 0);
/// ```
///
/// # Errors
///
/// Those of [`limits`] (the same shmctl, another command).
///
/// # References
///
/// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html)
#[doc(alias = "SHM_INFO")]
#[doc(alias = "shmctl")]
pub fn usage() -> Result<Usage> {
    let (max, u) = sys::shmctl_shm_info().map_err(|e| errno_error(Op::Usage, Object::System, e))?;
    Ok(Usage {
        segments: u.used_ids.max(0) as u64,
        max_index: max,
        pages_allocated: u.shm_tot as u64,
        pages_resident: u.shm_rss as u64,
        pages_swapped: u.shm_swp as u64,
        swap_attempts: u.swap_attempts as u64,
        swap_successes: u.swap_successes as u64,
    })
}

/// `shmctl(index, SHM_STAT_ANY)` (or `SHM_STAT` with `any == false`): the
/// segment in a slot of the kernel's array, found by index rather than id.
///
/// Returns `Ok(None)` for an unused slot (EINVAL), and, for SHM_STAT, for a
/// segment we may not read (EACCES). SHM_STAT_ANY (Linux ≥ 4.17) checks no
/// permission.
///
/// ```
/// let seg = svshm::Segment::create_private(4096)?;
/// let _rm = seg.remove_on_drop();
/// let max = svshm::usage()?.max_index;
/// let found = (0..=max)
///     .filter_map(|i| svshm::info::stat_index(i, true).ok().flatten())
///     .any(|s| s.id == seg.id());
/// assert!(found);
/// # Ok::<(), svshm::Error>(())
/// ```
///
/// # Errors
///
/// EACCES with SHM_STAT_ANY (a security module refused) →
/// [`ErrorKind::PermissionDenied`]; EFAULT → [`ErrorKind::Fault`]; any other
/// errno but EINVAL → [`ErrorKind::Other`].
///
/// # References
///
/// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html)
#[doc(alias = "SHM_STAT")]
#[doc(alias = "SHM_STAT_ANY")]
#[doc(alias = "shmctl")]
pub fn stat_index(index: i32, any: bool) -> Result<Option<SegmentInfo>> {
    let cmd = if any {
        sys::SHM_STAT_ANY
    } else {
        sys::SHM_STAT
    };
    match sys::shmctl_stat(index, cmd) {
        Ok((id, ds)) => Ok(Some(SegmentInfo::from_ds(id, &ds))),
        Err(libc::EINVAL) => Ok(None),
        Err(libc::EACCES) if !any => Ok(None),
        Err(e) => Err(errno_error(Op::List, Object::Index(index), e)),
    }
}

/// `shmctl(0, SHM_INFO)`, then `shmctl(index, SHM_STAT_ANY)` for each index:
/// every segment in the IPC namespace, in kernel index order (the order `ipcs`
/// uses).
///
/// Uses SHM_INFO for the highest index, then SHM_STAT_ANY per index (Linux ≥
/// 4.17, no permission needed). If SHM_STAT_ANY is unavailable it falls back to
/// [`proc_segments`]. Segments that vanish during the scan are skipped.
///
/// ```
/// let seg = svshm::Segment::create_private(4096).unwrap();
/// let _guard = seg.remove_on_drop();
/// assert!(svshm::segments().unwrap().iter().any(|s| s.id == seg.id()));
/// ```
///
/// # Errors
///
/// Those of [`usage`] and [`stat_index`]; with the `/proc` fallback, a failed
/// read of `/proc/sysvipc/shm` → [`ErrorKind::Io`].
///
/// # References
///
/// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html), [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html)
#[doc(alias = "SHM_STAT_ANY")]
pub fn segments() -> Result<Vec<SegmentInfo>> {
    let u = usage()?;
    let mut out = Vec::with_capacity(u.segments as usize);
    for idx in 0..=u.max_index.max(0) {
        match stat_index(idx, true) {
            Ok(Some(info)) => out.push(info),
            Ok(None) => {}
            Err(e) if e.errno() == Some(libc::EACCES) => {}
            Err(e) => return Err(e),
        }
    }
    if out.is_empty() && u.segments > 0 {
        // SHM_STAT_ANY unsupported (pre-4.17): every index said EINVAL.
        return proc_segments();
    }
    Ok(out)
}

/// Path of the kernel's world-readable segment table.
pub const PROC_SYSVIPC_SHM: &str = "/proc/sysvipc/shm";

/// Every segment as listed in `/proc/sysvipc/shm`, including resident and
/// swapped bytes. The order is the kernel's index order.
pub fn proc_segments() -> Result<Vec<SegmentInfo>> {
    proc_segments_from(Path::new(PROC_SYSVIPC_SHM))
}

/// [`proc_segments`] from another file in the same format (for tests and for
/// reading a saved copy).
pub fn proc_segments_from(path: &Path) -> Result<Vec<SegmentInfo>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            Op::List,
            Object::Path(path.to_path_buf()),
            ErrorKind::Io,
            e.raw_os_error(),
            format!("{e}; is /proc mounted and System V IPC enabled in this kernel?"),
        )
    })?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(SegmentInfo::parse_proc_line)
        .collect())
}

/// Looks a segment up by id in `/proc/sysvipc/shm`, needing no permission on it.
pub fn public_info_by_id(id: i32) -> Option<SegmentInfo> {
    proc_segments().ok()?.into_iter().find(|s| s.id == id)
}

/// Looks a segment up by key in `/proc/sysvipc/shm`, needing no permission on it.
pub fn public_info_by_key(key: Key) -> Option<SegmentInfo> {
    if key.is_private() {
        return None;
    }
    proc_segments().ok()?.into_iter().find(|s| s.key == key)
}

/// One attachment of a segment by some process, from `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attacher {
    /// The process id.
    pub pid: i32,
    /// The process's command name (`/proc/PID/comm`), as the process set it:
    /// it may hold control characters; escape it before printing it.
    pub command: String,
    /// Start address of the attachment.
    pub start: usize,
    /// End address (exclusive).
    pub end: usize,
    /// Whether the mapping is read-only (SHM_RDONLY).
    pub read_only: bool,
    /// Whether the mapping is executable (SHM_EXEC).
    pub executable: bool,
    /// How many mappings (VMAs) the attachment spans: 1, or more once
    /// `mprotect` split it. The kernel's [`SegmentInfo::attach_count`] counts
    /// each piece.
    pub pieces: u64,
}

/// The processes that have segment `id` attached, and where — TLPI's "where
/// does the segment land in virtual memory", answered for every process.
///
/// Scans `/proc/*/maps` for mappings of `/SYSV%08x` whose inode is the shmid.
/// Adjacent pieces of one attachment (split by `mprotect`) are merged into one
/// [`Attacher`]. Processes whose maps we may not read (other users' processes,
/// unless we are root) are skipped: the list is complete when the sum of
/// [`Attacher::pieces`] equals [`SegmentInfo::attach_count`], and a larger
/// count means attachers we cannot see. Only processes of our IPC namespace
/// are listed: a segment id (the maps line's inode) means another segment in
/// another namespace, so a process whose `/proc/PID/ns/ipc` differs from ours
/// is skipped, and so is one whose namespace we may not read (we cannot tell
/// which segment it maps; it counts among those we cannot see). A process caught between `vfork` (or
/// `posix_spawn`) and `exec` shares its parent's address space, so it is listed
/// with the parent's attachments for that moment, though the kernel does not
/// count it.
///
/// ```
/// let seg = svshm::Segment::create_private(4096).unwrap();
/// let _guard = seg.remove_on_drop();
/// let att = seg.attach().unwrap();
/// let who = svshm::attachers(seg.id()).unwrap();
/// assert!(who.iter().any(|a| a.pid == std::process::id() as i32 && a.start == att.as_ptr() as usize));
/// ```
pub fn attachers(id: i32) -> Result<Vec<Attacher>> {
    let dir = std::fs::read_dir("/proc").map_err(|e| {
        Error::new(
            Op::Attachers,
            Object::Id(id),
            ErrorKind::Io,
            e.raw_os_error(),
            format!("cannot read /proc: {e}"),
        )
    })?;
    // Without namespace links (a kernel without namespaces) all are ours.
    let ours = ipc_namespace(Path::new("/proc/self"));
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let path: PathBuf = entry.path();
        let Ok(maps) = std::fs::read_to_string(path.join("maps")) else {
            continue;
        };
        let mut found = parse_maps(&maps, id);
        if found.is_empty() || ours.is_some() && ipc_namespace(&path) != ours {
            continue;
        }
        // Any bytes but '/' and NUL: another user's choice, kept (lossily) as
        // it is; callers that print it escape it.
        let command = std::fs::read(path.join("comm"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .trim_end_matches('\n')
                    .to_string()
            })
            .unwrap_or_default();
        for a in &mut found {
            a.pid = pid;
            a.command.clone_from(&command);
        }
        out.extend(found);
    }
    out.sort_by_key(|a| (a.pid, a.start));
    Ok(out)
}

/// The IPC namespace of the process at `proc_dir` (`/proc/PID`): the target
/// of its `ns/ipc` link, `ipc:[INODE]`; `None` if it cannot be read.
fn ipc_namespace(proc_dir: &Path) -> Option<std::ffi::OsString> {
    std::fs::read_link(proc_dir.join("ns/ipc"))
        .ok()
        .map(PathBuf::into_os_string)
}

/// Parses a `/proc/PID/maps` text and returns the attachments of segment `id`
/// (pid and command left empty).
pub fn parse_maps(maps: &str, id: i32) -> Vec<Attacher> {
    let mut out: Vec<(Attacher, u64)> = Vec::new();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms), Some(off), Some(_dev), Some(inode), Some(name)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if !name.starts_with("/SYSV") || inode.parse::<i64>().ok() != Some(i64::from(id)) {
            continue;
        }
        let Some((s, e)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(off)) = (
            usize::from_str_radix(s, 16),
            usize::from_str_radix(e, 16),
            u64::from_str_radix(off, 16),
        ) else {
            continue;
        };
        let read_only = !perms.contains('w');
        let executable = perms.contains('x');
        // A piece continuing the previous one (same segment, next offset) is the
        // same attachment split by mprotect.
        if let Some((prev, prev_off)) = out.last_mut() {
            if prev.end == start && *prev_off + (prev.end - prev.start) as u64 == off {
                prev.end = end;
                prev.read_only &= read_only;
                prev.executable |= executable;
                prev.pieces += 1;
                continue;
            }
        }
        out.push((
            Attacher {
                pid: 0,
                command: String::new(),
                start,
                end,
                read_only,
                executable,
                pieces: 1,
            },
            off,
        ));
    }
    out.into_iter().map(|(a, _)| a).collect()
}

/// Formats `uid` as `name (uid)` or just the number.
pub(crate) fn describe_uid(uid: u32) -> String {
    match crate::text::user_name(uid) {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// Maps a raw errno of a system-wide or listing call to an [`Error`].
pub(crate) fn errno_error(op: Op, object: Object, errno: i32) -> Error {
    let (kind, msg) = match errno {
        libc::EINVAL => (
            ErrorKind::Unsupported,
            "the kernel rejected the command; System V shared memory may be disabled (CONFIG_SYSVIPC)".to_string(),
        ),
        libc::EACCES => (ErrorKind::PermissionDenied, "permission denied".to_string()),
        libc::EFAULT => (ErrorKind::Fault, "bad buffer address".to_string()),
        libc::ENOSYS => (ErrorKind::Unsupported, "System V IPC is not available in this kernel".to_string()),
        e => (ErrorKind::Other, crate::error::errno_text(e)),
    };
    Error::new(op, object, kind, Some(errno), msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_line() {
        let l = "      4660          5   1600                  4096 12406 12411      1     0     0     0     0 1764215940          0 1764215940                  4096                     0";
        let s = SegmentInfo::parse_proc_line(l).unwrap();
        assert_eq!(s.key, Key::new(0x1234));
        assert_eq!(s.id, 5);
        assert!(s.is_marked_for_destruction());
        assert!(!s.is_locked());
        assert_eq!(s.permissions(), 0o600);
        assert_eq!(
            (s.creator_pid, s.last_pid, s.attach_count),
            (12406, 12411, 1)
        );
        assert_eq!(s.detach_time, None);
        assert_eq!(epoch_secs(s.attach_time), 1764215940);
        assert_eq!((s.rss, s.swap), (Some(4096), Some(0)));
        assert!(SegmentInfo::parse_proc_line("garbage").is_none());
        let neg = SegmentInfo::parse_proc_line("-763040998 16   2644 1048576 1 2 1 0 0 0 0 0 0 0")
            .unwrap();
        assert_eq!(neg.key.to_string(), "0xd284eb1a");
        assert!(neg.is_locked());
        assert_eq!(neg.rss, None);
    }

    #[test]
    fn parses_maps_and_merges_split_vmas() {
        let maps = "\
7f0000000000-7f0000001000 rw-s 00000000 00:01 5    /SYSV00001234 (deleted)
7f0000001000-7f0000002000 ---s 00001000 00:01 5    /SYSV00001234 (deleted)
7f0000010000-7f0000012000 r--s 00000000 00:01 5    /SYSV00001234 (deleted)
7f0000020000-7f0000021000 rw-s 00000000 00:01 6    /SYSV00000000 (deleted)
7f0000030000-7f0000031000 rw-p 00000000 00:01 5    /usr/lib/x
";
        let a = parse_maps(maps, 5);
        assert_eq!(a.len(), 2);
        assert_eq!(
            (a[0].start, a[0].end, a[0].read_only),
            (0x7f0000000000, 0x7f0000002000, false)
        );
        assert_eq!(
            (a[1].start, a[1].end, a[1].read_only),
            (0x7f0000010000, 0x7f0000012000, true)
        );
        assert_eq!((a[0].pieces, a[1].pieces), (2, 1));
        assert_eq!(parse_maps(maps, 6).len(), 1);
        assert!(!parse_maps(maps, 6)[0].read_only);
    }
}
