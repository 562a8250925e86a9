//! A binary in a directory `nobody` cannot enter still runs as `nobody`
//! through `command_as`, and its copy is removed afterwards.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use svshm_testkit::{NOBODY, ReachableCopy, command_as};

/// A directory removed on drop.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_binary_in_a_private_directory_runs_as_nobody_through_a_copy() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipped: needs root to run a child as uid {NOBODY}");
        return;
    }
    // A mode-0700 directory (like a clone under /root) holding an executable.
    let private =
        Dir(std::env::temp_dir().join(format!("svshm-testkit-private-{}", std::process::id())));
    std::fs::create_dir(&private.0).unwrap();
    std::fs::set_permissions(&private.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let exe = private.0.join("true");
    std::fs::copy("/bin/true", &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();

    // Run directly as nobody, it cannot be reached ...
    let direct = Command::new(&exe).uid(NOBODY).gid(NOBODY).status();
    assert!(
        direct.is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied),
        "the private directory should keep uid {NOBODY} out"
    );
    // ... through a reachable copy it runs.
    let mut c = command_as(&exe, NOBODY, NOBODY).unwrap();
    let status = c.stdout(Stdio::null()).status().unwrap();
    assert!(status.success(), "{status}");

    // The copy's directory goes away with it.
    let copy = ReachableCopy::of(&exe).unwrap();
    let dir = copy.path().parent().unwrap().to_path_buf();
    assert!(dir.is_dir());
    drop(copy);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
