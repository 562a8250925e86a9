//! Helpers shared by the integration tests of the svshm crates.
//!
//! - Child processes ([`child_command`], [`spawn_child`], [`role`],
//!   [`dispatch`]): a child is the test binary itself, re-executed to run one
//!   test (its entry) with a role in [`ROLE`]; never `fork()` inside the
//!   threaded harness. [`wait_child`] waits with a bound, [`sigkill`] crashes it.
//! - Names and keys no other test uses ([`unique_name`], [`unique_key`],
//!   [`key_for`]), [`is_root`] and [`skip`] (a skipped test says why).
//! - Segments removed however a test ends ([`SegmentGuard`]), and
//!   [`segment_exists`] / [`segment_gone`].
//! - Deterministic data: [`Rng`], [`splitmix`], and a byte [`pattern`] any
//!   reader can check at any offset ([`fill_pattern`], [`check_pattern`]).
//!
//! Running a child as another user: the suite runs children as uid 65534
//! (`nobody`) to test what another user may do. A child so run must be able to
//! reach its executable; a checkout in a directory other users cannot enter (a
//! clone under `/root`, or in a mode-0700 directory) holds the test binaries
//! where `nobody` cannot. [`command_as`] therefore runs a copy placed in a
//! fresh directory anyone may enter, and removes it afterwards.

#![deny(unsafe_code)]

mod child;
mod names;
mod pattern;
mod segment;

pub use child::{
    ROLE, child_args, child_command, dispatch, role, sigkill, sigkill_pid, spawn_child, wait_child,
};
pub use names::{is_root, key_for, skip, unique_key, unique_name};
pub use pattern::{Rng, check_pattern, fill_pattern, pattern, rand_u64, splitmix};
pub use segment::{SegmentGuard, segment_exists, segment_gone};

use std::borrow::{Borrow, BorrowMut};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The uid and gid of `nobody`, the "other user" of the tests.
pub const NOBODY: u32 = 65534;

/// A copy of an executable in a fresh directory under `/tmp` (mode 0755, the
/// file mode 0755), so that any user can run it. The directory is removed on
/// drop; a child already started from the copy keeps running.
#[derive(Debug)]
pub struct ReachableCopy {
    dir: PathBuf,
    path: PathBuf,
}

impl ReachableCopy {
    /// Copies `exe` into a new directory under `/tmp` (not `$TMPDIR`, which
    /// may be private).
    pub fn of(exe: &Path) -> std::io::Result<ReachableCopy> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = exe
            .file_name()
            .ok_or_else(|| std::io::Error::other(format!("{} names no file", exe.display())))?;
        let dir = loop {
            let dir = PathBuf::from(format!(
                "/tmp/svshm-test-exe-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::DirBuilder::new().mode(0o755).create(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        };
        // The umask may have narrowed the mode given at creation.
        let copy = ReachableCopy {
            path: dir.join(name),
            dir,
        };
        std::fs::set_permissions(&copy.dir, std::fs::Permissions::from_mode(0o755))?;
        // Copied by cp(1), not by us: a file open for writing in this process
        // would be inherited by children other test threads fork meanwhile,
        // and exec of the copy would fail with ETXTBSY while they live.
        let status = Command::new("cp")
            .arg("--")
            .arg(exe)
            .arg(&copy.path)
            .stdin(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "cp {} {} failed ({status})",
                exe.display(),
                copy.path.display()
            )));
        }
        std::fs::set_permissions(&copy.path, std::fs::Permissions::from_mode(0o755))?;
        Ok(copy)
    }

    /// The copy's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ReachableCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A [`Command`] that runs a [`ReachableCopy`] as another user; the copy is
/// removed when this value drops (after `spawn` or `output` returned, the
/// child has started and no longer needs the file). Use it as a `Command`.
#[derive(Debug)]
pub struct CommandAs {
    command: Command,
    _copy: ReachableCopy,
}

impl Deref for CommandAs {
    type Target = Command;
    fn deref(&self) -> &Command {
        &self.command
    }
}

impl DerefMut for CommandAs {
    fn deref_mut(&mut self) -> &mut Command {
        &mut self.command
    }
}

impl Borrow<Command> for CommandAs {
    fn borrow(&self) -> &Command {
        &self.command
    }
}

impl BorrowMut<Command> for CommandAs {
    fn borrow_mut(&mut self) -> &mut Command {
        &mut self.command
    }
}

/// A command running a copy of `exe` that any user can reach, as `uid`/`gid`
/// (std drops the supplementary groups when root sets a uid), in `/` (the
/// checkout may not be enterable either).
pub fn command_as(exe: &Path, uid: u32, gid: u32) -> std::io::Result<CommandAs> {
    let copy = ReachableCopy::of(exe)?;
    let mut command = Command::new(copy.path());
    command.uid(uid).gid(gid).current_dir("/");
    Ok(CommandAs {
        command,
        _copy: copy,
    })
}

/// Why `exe` cannot be run as `nobody` here, or `None` if it can: this needs
/// root, and a copy of `exe` run with `probe_args` (which must make it exit 0
/// at once, e.g. a test binary's `--list`) must succeed.
pub fn nobody_unavailable(exe: &Path, probe_args: &[&str]) -> Option<String> {
    if !is_root() {
        return Some(format!("needs root to run a child as uid {NOBODY}"));
    }
    let mut c = match command_as(exe, NOBODY, NOBODY) {
        Ok(c) => c,
        Err(e) => {
            return Some(format!(
                "cannot copy {} to a directory uid {NOBODY} can reach: {e}",
                exe.display()
            ));
        }
    };
    match c
        .args(probe_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "a copy of {} run as uid {NOBODY} failed ({}): {}",
            exe.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!(
            "cannot run a copy of {} as uid {NOBODY} ({e}); is /tmp mounted noexec?",
            exe.display()
        )),
    }
}

/// [`nobody_unavailable`] for the running test binary (probed with `--list`).
pub fn nobody_unavailable_for_this_test() -> Option<String> {
    match std::env::current_exe() {
        Ok(exe) => nobody_unavailable(&exe, &["--list"]),
        Err(e) => Some(format!("cannot find the test binary's path: {e}")),
    }
}

/// A command running this test binary (a copy any user can reach) as `nobody`.
pub fn this_test_as_nobody() -> CommandAs {
    let exe = std::env::current_exe().expect("the test binary's path");
    command_as(&exe, NOBODY, NOBODY)
        .unwrap_or_else(|e| panic!("copy {} for uid {NOBODY}: {e}", exe.display()))
}
