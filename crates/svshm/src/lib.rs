//! Safe, complete System V shared memory for Linux.
//!
//! This crate wraps every flag and command of `shmget(2)`, `shmat(2)`,
//! `shmdt(2)` and `shmctl(2)` in a typed API, tested against the real kernel:
//!
//! - [`Key`]: IPC_PRIVATE, explicit values, `ftok` ([`Key::from_path`]), names
//!   ([`Key::from_name`]).
//! - [`Segment`] / [`CreateOptions`]: create and open (shmget), [`stat`](Segment::stat),
//!   [`set`](Segment::set), [`remove`](Segment::remove), [`lock`](Segment::lock) /
//!   [`unlock`](Segment::unlock) (shmctl).
//! - [`Attachment`] / [`AttachOptions`]: shmat with SHM_RDONLY, SHM_RND,
//!   SHM_REMAP and SHM_EXEC; detach on Drop; bounds-checked copies.
//! - The system view: [`limits`], [`usage`], [`segments`], [`proc_segments`] and
//!   [`attachers`] (which processes map a segment, and where).
//! - [`Region`] and [`Offset`]: shared byte ranges and base-relative positions
//!   inside them (store offsets, never pointers).
//! - [`managed`]: [`Managed`], an allocator and named objects inside a shared
//!   region, for several processes at once, under a robust process-shared lock
//!   (the Boost.Interprocess `managed_shared_memory` idea).
//! - [`process`]: process identity (pid + start time) and liveness — the one
//!   place that decides whether a creator, attacher or peer is alive.
//! - [`Error`]: one error type with the operation, the object, the errno, an
//!   [`ErrorKind`] and a message that says what to do.
//!
//! Memory another process can write is never handed out as a Rust reference:
//! you get raw pointers and copies.
//!
//! ```
//! use svshm::{Key, Segment};
//! // Writer side: create under a name-derived key, 0600, exclusively.
//! let key = Key::from_name(&format!("doc-example-{}", std::process::id()));
//! let seg = Segment::create(key, 4096)?;
//! let _cleanup = seg.remove_on_drop();
//! seg.attach()?.write_at(0, b"hi")?;
//!
//! // Reader side (normally another process): open by key, attach read-only.
//! let same = Segment::open(key, 4096)?;
//! let mut buf = [0; 2];
//! same.attach_read_only()?.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"hi");
//! # Ok::<(), svshm::Error>(())
//! ```

// Unsafe code is confined to the modules that open with `#![allow(unsafe_code)]`
// and say why.
#![deny(unsafe_code)]

mod attach;
mod copy;
pub mod error;
pub mod info;
mod key;
pub mod managed;
mod offset;
pub mod process;
mod region;
mod segment;
mod sys;
mod text;

pub use attach::{AttachOptions, Attachment, detach_at, shmlba};
pub use error::{Error, ErrorKind, Object, Op, Result};
pub use info::{
    Attacher, Limits, SegmentInfo, Usage, attachers, limits, proc_segments, segments, usage,
};
pub use key::{Key, name_hash, parse_c_integer};
pub use managed::Managed;
pub use offset::Offset;
pub use region::{HeapRegion, Region};
pub use segment::{CreateOptions, HugePageSize, RemoveOnDrop, Segment};

/// Helpers the `svshm` command-line tool and the channel crate share with this
/// crate's messages (sizes, NSS user and group names). Not part of the API:
/// they may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::text::{group_name, human_size, lookup_gid, lookup_uid, user_name};
}

/// The mode bit SHM_DEST (0o1000): marked for destruction.
pub const SHM_DEST: u32 = sys::SHM_DEST;
/// The mode bit SHM_LOCKED (0o2000): locked in memory.
pub const SHM_LOCKED: u32 = sys::SHM_LOCKED;

/// `sysconf(_SC_PAGESIZE)`: the system page size (also SHMLBA on x86-64 and
/// arm64).
#[doc(alias = "sysconf")]
pub fn page_size() -> usize {
    sys::page_size()
}

/// `geteuid()`: the caller's effective uid (the owner of segments it creates).
#[doc(alias = "geteuid")]
pub fn euid() -> u32 {
    sys::geteuid()
}

/// `getegid()`: the caller's effective gid (the group of segments it creates).
#[doc(alias = "getegid")]
pub fn egid() -> u32 {
    sys::getegid()
}
