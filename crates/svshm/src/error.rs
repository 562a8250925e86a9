//! One error type for every operation: what was attempted ([`Op`]), on what
//! ([`Object`]), the `errno` the kernel gave, a [`ErrorKind`] for matching, and a
//! message that tells the user what to do.

use crate::key::Key;
use crate::text::human_size;
use core::fmt;
use std::path::PathBuf;

/// The operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// shmget with IPC_CREAT.
    Create,
    /// shmget of an existing key.
    Open,
    /// shmat.
    Attach,
    /// shmdt.
    Detach,
    /// shmctl IPC_STAT / SHM_STAT / SHM_STAT_ANY.
    Stat,
    /// shmctl IPC_SET.
    Set,
    /// shmctl IPC_RMID.
    Remove,
    /// shmctl SHM_LOCK.
    Lock,
    /// shmctl SHM_UNLOCK.
    Unlock,
    /// shmctl IPC_INFO or reading `/proc/sys/kernel/shm*`.
    Limits,
    /// shmctl SHM_INFO.
    Usage,
    /// Listing segments (SHM_STAT_ANY or `/proc/sysvipc/shm`).
    List,
    /// Scanning `/proc/*/maps` for attachers.
    Attachers,
    /// ftok: deriving a key from a path.
    KeyFromPath,
    /// Parsing a key from text.
    ParseKey,
    /// Copying bytes into or out of an attachment.
    Access,
    /// Resolving an [`Offset`](crate::Offset) in a region.
    Resolve,
    /// madvise on an attachment (e.g. keeping it out of forked children).
    Advise,
    /// An operation on a [managed segment](crate::managed) (allocate, free,
    /// named objects, validation).
    Managed,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Create => "create segment",
            Op::Open => "open segment",
            Op::Attach => "attach segment",
            Op::Detach => "detach segment",
            Op::Stat => "stat segment",
            Op::Set => "set segment owner/mode",
            Op::Remove => "remove segment",
            Op::Lock => "lock segment",
            Op::Unlock => "unlock segment",
            Op::Limits => "read shared memory limits",
            Op::Usage => "read shared memory usage",
            Op::List => "list segments",
            Op::Attachers => "find attached processes",
            Op::KeyFromPath => "derive key from path",
            Op::ParseKey => "parse key",
            Op::Access => "access segment memory",
            Op::Resolve => "resolve offset",
            Op::Advise => "advise kernel about attachment",
            Op::Managed => "use managed segment",
        })
    }
}

/// The object an operation was applied to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Object {
    /// No particular object (system-wide calls).
    System,
    /// A key, with the size asked for when it matters (0 = not given).
    Key(Key, u64),
    /// A segment id.
    Id(i32),
    /// An index into the kernel's segment array (SHM_STAT).
    Index(i32),
    /// A file system path (ftok, `/proc` files).
    Path(PathBuf),
    /// An address in this process (shmat, shmdt).
    Address(usize),
    /// Text that was being parsed.
    Text(String),
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::System => Ok(()),
            Object::Key(k, 0) => write!(f, " (key {k})"),
            Object::Key(k, size) => write!(f, " (key {k}, {})", human_size(*size)),
            Object::Id(id) => write!(f, " (id {id})"),
            Object::Index(i) => write!(f, " (index {i})"),
            Object::Path(p) => write!(f, " ({})", p.display()),
            Object::Address(a) => write!(f, " (address {a:#x})"),
            Object::Text(t) => write!(f, " ({t:?})"),
        }
    }
}

/// What went wrong, for matching. Every documented errno of shmget, shmat, shmdt
/// and shmctl maps to one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// ENOENT: no segment has this key.
    NotFound,
    /// EINVAL on an id: no segment has this id (or it was destroyed).
    InvalidId,
    /// EIDRM: the segment was removed while the call ran.
    Removed,
    /// EEXIST: IPC_CREAT|IPC_EXCL and the key is taken.
    AlreadyExists,
    /// EACCES: the mode bits deny the access asked for.
    PermissionDenied,
    /// EPERM on IPC_SET / IPC_RMID / SHM_LOCK / SHM_UNLOCK: caller is neither
    /// owner nor creator and lacks the capability.
    NotOwner,
    /// EPERM on shmget with SHM_HUGETLB: not in `vm.hugetlb_shm_group`, no CAP_IPC_LOCK.
    HugePagesNotPermitted,
    /// EINVAL on create: size below SHMMIN (1) or above `kernel.shmmax`, or a bad
    /// huge page size.
    InvalidSize,
    /// EINVAL on open: the existing segment is smaller than the size asked for.
    SegmentTooSmall,
    /// EINVAL on shmat/shmdt: misaligned address, overlap without SHM_REMAP,
    /// nothing attached there.
    InvalidAddress,
    /// EINVAL for a bad argument not covered above (e.g. a command the kernel does
    /// not know).
    InvalidArgument,
    /// ENOSPC: `kernel.shmmni` segments exist, or `kernel.shmall` pages are used.
    NoSpace,
    /// ENOMEM: the kernel could not allocate memory (or huge pages).
    OutOfMemory,
    /// ENOMEM on SHM_LOCK: RLIMIT_MEMLOCK would be exceeded.
    LockLimit,
    /// ENFILE: the system-wide open file limit.
    FileTableFull,
    /// EOVERFLOW: a uid/gid does not fit the caller's structure.
    Overflow,
    /// EFAULT: the kernel could not read or write a buffer.
    Fault,
    /// A write through a read-only attachment was refused before touching memory.
    ReadOnly,
    /// An offset/length outside the attachment or region.
    OutOfBounds,
    /// An offset not aligned for the type it should hold.
    Misaligned,
    /// Data in shared memory breaks its layout's rules (a damaged or foreign
    /// header, a broken allocator list, a poisoned managed segment).
    Corrupt,
    /// The running kernel does not support the operation.
    Unsupported,
    /// Text that is not a valid key, size or mode.
    Parse,
    /// An I/O error reading `/proc` or a path.
    Io,
    /// Any other errno.
    Other,
}

/// The error type of every fallible operation in this crate.
///
/// `Display` names the operation and the object, says what happened, and says
/// what to do about it, e.g.
/// `create segment (key 0x5eed0001, 10 GiB): size exceeds kernel.shmmax (8 GiB); raise /proc/sys/kernel/shmmax or use a smaller size`.
#[derive(Debug, Clone)]
pub struct Error {
    op: Op,
    object: Object,
    errno: Option<i32>,
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Builds an error with a message of your own.
    pub fn new(
        op: Op,
        object: Object,
        kind: ErrorKind,
        errno: Option<i32>,
        message: impl Into<String>,
    ) -> Self {
        Error {
            op,
            object,
            errno,
            kind,
            message: message.into(),
        }
    }

    /// The operation that failed.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The object it was applied to.
    pub fn object(&self) -> &Object {
        &self.object
    }

    /// The raw `errno`, when the error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// What went wrong, for matching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message after the operation and object: what happened and what to do.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}: {}", self.op, self.object, self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match e.kind {
            ErrorKind::NotFound | ErrorKind::InvalidId | ErrorKind::Removed => {
                std::io::ErrorKind::NotFound
            }
            ErrorKind::AlreadyExists => std::io::ErrorKind::AlreadyExists,
            ErrorKind::PermissionDenied
            | ErrorKind::NotOwner
            | ErrorKind::HugePagesNotPermitted
            | ErrorKind::ReadOnly => std::io::ErrorKind::PermissionDenied,
            ErrorKind::OutOfMemory | ErrorKind::LockLimit => std::io::ErrorKind::OutOfMemory,
            ErrorKind::Unsupported => std::io::ErrorKind::Unsupported,
            ErrorKind::Parse
            | ErrorKind::InvalidSize
            | ErrorKind::SegmentTooSmall
            | ErrorKind::InvalidAddress
            | ErrorKind::InvalidArgument
            | ErrorKind::OutOfBounds
            | ErrorKind::Misaligned => std::io::ErrorKind::InvalidInput,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// `strerror(errno)` text.
pub fn errno_text(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"; keep only the C text.
    match s.rfind(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Shorthand for `Result<T, svshm::Error>`.
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_texts() {
        assert_eq!(errno_text(libc::ENOENT), "No such file or directory");
    }

    #[test]
    fn display_names_op_object_and_message() {
        let e = Error::new(
            Op::Remove,
            Object::Id(7),
            ErrorKind::InvalidId,
            Some(libc::EINVAL),
            "no segment has this id",
        );
        assert_eq!(
            e.to_string(),
            "remove segment (id 7): no segment has this id"
        );
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }
}
