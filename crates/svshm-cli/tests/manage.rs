//! Managing segments: `create`, `rm`, `gc`, `set`, `lock`, `unlock` — success
//! and error paths.

mod common;

use common::*;
use predicates::prelude::*;
use svshm::{Key, Segment};

#[test]
fn create_by_key_name_path_and_private() {
    let key = unique_key("create");
    let g = create(&["-k", &key.to_string(), "-s", "4K"]);
    let info = svshm::Segment::from_id(g.0).stat().unwrap();
    assert_eq!(
        (info.key, info.size, info.permissions()),
        (key, 4096, 0o600)
    );

    let name = unique_name("create-name");
    let g2 = create(&["-n", &name, "-s", "1.5K", "-m", "0640"]);
    let info = Segment::from_id(g2.0).stat().unwrap();
    assert_eq!(
        (info.key, info.size, info.permissions()),
        (Key::from_name(&name), 1536, 0o640)
    );

    // ftok of a fresh file (unique inode), project 7.
    let dir = std::env::temp_dir().join(unique_name("ftok"));
    std::fs::write(&dir, b"x").unwrap();
    let g3 = create(&["-f", dir.to_str().unwrap(), "--proj", "7", "-s", "1M"]);
    let info = Segment::from_id(g3.0).stat().unwrap();
    assert_eq!(
        (info.key, info.size),
        (Key::from_path(&dir, 7).unwrap(), 1 << 20)
    );
    drop(g3);
    let _ = std::fs::remove_file(&dir);

    let g4 = create(&["-p", "-s", "100", "-x"]);
    let info = Segment::from_id(g4.0).stat().unwrap();
    assert!(info.key.is_private());
    assert_eq!(info.creator_uid, svshm::euid());
}

#[test]
fn create_errors_name_the_object_and_the_fix() {
    let key = unique_key("create-dup");
    let _g = create(&["-k", &key.to_string(), "-s", "4096"]);
    // Exclusive: the key is taken.
    svshm()
        .args(["create", "-k", &key.to_string(), "-s", "4096"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            predicate::str::contains(key.to_string())
                .and(predicate::str::contains("already taken"))
                .and(predicate::str::contains(format!(
                    "\nhint: `svshm stat -k {key}` shows the segment under the key; `svshm rm -k {key}` removes it"
                ))),
        );
    // Size 0.
    svshm()
        .args(["create", "-p", "-s", "0"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("SHMMIN"));
    // Far too large: the kernel refuses, the message names the size.
    svshm()
        .args(["create", "-p", "-s", "16000P"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("create segment (key 0x00000000"));
    // Mode bits beyond 0777 are refused, not smuggled into shmget.
    svshm()
        .args(["create", "-p", "-s", "4096", "-m", "1600"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("SHM_DEST").and(predicate::str::contains("permission bits")),
        );
    svshm()
        .args(["create", "-p", "-s", "4096", "-m", "9"])
        .assert()
        .code(2);
    // Bad sizes and missing key source are usage errors.
    svshm()
        .args(["create", "-p", "-s", "lots"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("64K"));
    svshm().args(["create", "-s", "4096"]).assert().code(2);
    svshm()
        .args(["create", "-p", "-k", "5", "-s", "4096"])
        .assert()
        .code(2);
    svshm()
        .args(["create", "-k", "0", "-s", "4096"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("-p"));
    // ftok of a missing path.
    svshm()
        .args(["create", "-f", "/nonexistent/svshm-test", "-s", "4096"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/nonexistent/svshm-test"));
    // Huge pages: either they work here, or the error says what to do.
    let out = svshm()
        .args(["create", "-p", "-s", "2M", "--hugetlb"])
        .output()
        .unwrap();
    if out.status.success() {
        drop(guard_from_stdout(&out.stdout));
    } else {
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("huge"), "{err}");
    }
    svshm()
        .args(["create", "-p", "-s", "2M", "--hugetlb=3M"])
        .assert()
        .code(2);
}

#[test]
fn rm_by_id_and_key_with_verbose_and_dry_run() {
    let a = private(4096);
    let b = private(4096);
    let key = unique_key("rm");
    let c = create(&["-k", &key.to_string(), "-s", "4096"]);

    svshm()
        .args(["rm", "--dry-run", &a.0.to_string(), "-k", &key.to_string()])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "would remove segment id {}",
            a.0
        )))
        .stdout(predicate::str::contains(format!(
            "would remove segment id {}",
            c.0
        )));
    assert!(exists(a.0) && exists(c.0));

    svshm()
        .args(["rm", "-v", &a.0.to_string(), &b.0.to_string()])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "removed segment id {}",
            a.0
        )));
    assert!(!exists(a.0) && !exists(b.0));

    svshm()
        .args(["rm", "-k", &key.to_string()])
        .assert()
        .success()
        .stdout("");
    assert!(!exists(c.0));
}

#[test]
fn rm_of_an_attached_segment_marks_it_for_destruction() {
    let g = private(4096);
    let att = Segment::from_id(g.0).attach().unwrap();
    svshm()
        .args(["rm", "-v", &g.0.to_string()])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "freed when the last process detaches",
        ));
    let info = svshm::info::public_info_by_id(g.0).unwrap();
    assert!(info.is_marked_for_destruction());
    drop(att);
    assert!(!exists(g.0));
}

#[test]
fn rm_errors_do_not_stop_the_others() {
    let a = private(4096);
    let gone_id = removed_id();
    let key = unique_key("rm-missing");
    svshm()
        .args([
            "rm",
            &gone_id.to_string(),
            &a.0.to_string(),
            "-k",
            &key.to_string(),
        ])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(format!("id {gone_id}")).and(predicate::str::contains(
                "\nhint: `svshm ls` lists the segments",
            )),
        )
        .stderr(predicate::str::contains(key.to_string()));
    assert!(
        !exists(a.0),
        "the valid id was removed despite the other errors"
    );
    // Usage errors.
    svshm().arg("rm").assert().code(2);
    svshm().args(["rm", "abc"]).assert().code(2);
    svshm()
        .args(["rm", "--", "-1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("never negative"));
    svshm()
        .args(["rm", "-k", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("IPC_PRIVATE"));
    svshm().args(["rm", "-k", "zz"]).assert().code(2);
    svshm().args(["rm", "--all", "--stale"]).assert().code(2);
}

#[test]
fn rm_all_in_a_private_ipc_namespace() {
    // --all would remove other programs' segments on the host: run it inside a
    // new IPC namespace, where only ours exist.
    let probe = std::process::Command::new("unshare")
        .args(["--ipc", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot create an IPC namespace (unshare --ipc needs root)");
        return;
    }
    let bin = svshm_path();
    let script = format!(
        r#"set -e
S={bin}
$S create -p -s 4096 >/dev/null
$S create -k 0x1234 -s 8192 >/dev/null
$S rm --all --dry-run | grep -c "would remove"
$S rm --all -v | grep -c "removed segment"
$S ls -o ID --noheadings | wc -l
$S rm --all -v"#,
        bin = bin.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["--ipc", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2\n2\n0\nnothing to remove\n"
    );
}

#[test]
fn set_changes_mode_owner_and_group() {
    let g = private(4096);
    let id = g.0.to_string();
    svshm()
        .args(["set", &id, "-m", "640"])
        .assert()
        .success()
        .stdout("");
    assert_eq!(Segment::from_id(g.0).stat().unwrap().permissions(), 0o640);
    if is_root() {
        svshm()
            .args(["set", &id, "-u", "nobody", "-g", "12345"])
            .assert()
            .success();
        let info = Segment::from_id(g.0).stat().unwrap();
        assert_eq!(
            (info.uid, info.gid),
            (svshm::__private::lookup_uid("nobody").unwrap(), 12345)
        );
        assert_eq!(info.creator_uid, 0, "the creator never changes");
    }
    svshm()
        .args(["set", &id, "-u", "no-such-user-svshm"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "unknown user 'no-such-user-svshm'",
        ));
    svshm().args(["set", &id]).assert().code(2);
    svshm()
        .args(["set", &id, "-m", "2600"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("svshm lock"));
    let gone_id = removed_id();
    svshm()
        .args(["set", &gone_id.to_string(), "-m", "600"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("(id {gone_id})")));
}

#[test]
fn lock_and_unlock() {
    let g = private(8192);
    let id = g.0.to_string();
    let out = svshm().args(["lock", &id]).output().unwrap();
    if out.status.success() {
        assert!(Segment::from_id(g.0).stat().unwrap().is_locked());
        let ls = stdout_of(&["ls", "-o", "ID,STATUS"]);
        assert!(
            ls.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [id.as_str(), "locked"]),
            "{ls}"
        );
        svshm().args(["unlock", &id]).assert().success();
        assert!(!Segment::from_id(g.0).stat().unwrap().is_locked());
    } else {
        // Unprivileged with RLIMIT_MEMLOCK 0: the error says how to fix it.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("RLIMIT_MEMLOCK") || err.contains("CAP_IPC_LOCK"),
            "{err}"
        );
    }
    svshm().arg("lock").assert().code(2);
    let gone_id = removed_id();
    svshm()
        .args(["unlock", &gone_id.to_string()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "unlock segment (id {gone_id})"
        )));
}

/// Runs `svshm create -k KEY -s 4096` with `stdout`, then asserts (after
/// removing it, so nothing leaks) that no segment was left under the key.
fn create_with_stdout(key: svshm::Key, stdout: std::process::Stdio) -> std::process::Output {
    let out = std::process::Command::new(svshm_path())
        .args(["create", "-k", &key.to_string(), "-s", "4096"])
        .stdout(stdout)
        .output()
        .unwrap();
    let left = svshm::info::public_info_by_key(key);
    if let Some(s) = &left {
        let _ = Segment::from_id(s.id).remove();
    }
    assert!(
        left.is_none(),
        "create left a segment nobody knows the id of"
    );
    out
}

#[test]
fn create_leaves_no_segment_when_its_id_cannot_be_printed() {
    // stdout is /dev/full (ENOSPC) or a pipe nobody reads (EPIPE): the id
    // reaches no one, so nobody could ever remove the segment by it.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let key = unique_key("create-full");
    let out = create_with_stdout(key, full.into());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&key.to_string()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let key = unique_key("create-epipe");
    // A socket whose peer is gone: writing to it fails with EPIPE.
    let (w, r) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(r);
    let out = create_with_stdout(key, std::os::fd::OwnedFd::from(w).into());
    assert_eq!(out.stderr, b"", "EPIPE is quiet");
}

#[test]
fn rm_of_an_unknown_key_does_not_advise_creating_it() {
    let key = unique_key("rm-unknown");
    svshm()
        .args(["rm", "-k", &key.to_string()])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(key.to_string())
                .and(predicate::str::contains("no segment has this key"))
                .and(predicate::str::contains("create it").not()),
        );
}
