//! Permissions against the real kernel: the nine mode bits are the only lock on
//! a segment's data; ids, keys and metadata are public; IPC_RMID revokes
//! nothing; IPC_SET/IPC_RMID/SHM_LOCK need ownership; root bypasses the bits;
//! squatting is refused (LTP shmget02/04, shmat02, shmctl02/04; docs/SECURITY.md).
//!
//! "Another user" is a child process running as uid 65534 (nobody), which
//! needs root; without root those tests are skipped with a printed reason.

mod common;

use common::{arg, child_as_nobody, key_for, report};
use svshm::{CreateOptions, Error, ErrorKind, Key, Segment};

#[test]
fn child_entry() {
    common::dispatch(|role| {
        match role {
            "mode-zero-owner" => check_mode_zero_owner(),
            "other-user-on-0600" => other_user_on_0600(),
            "other-user-reads-0604" => other_user_reads_0604(),
            "squat" => {
                let key = Key::new(arg("SVSHM_TEST_KEY"));
                let seg = CreateOptions::new(4096)
                    .key(key)
                    .mode(0o666)
                    .create()
                    .expect("squat the key");
                report("id", seg.id());
            }
            "squat-and-disguise" => {
                // Squat the key, then hand ownership to root: the segment now
                // looks like root's, but the creator stays us, and the creator
                // keeps the owner's rights.
                let key = Key::new(arg("SVSHM_TEST_KEY"));
                let seg = Segment::create(key, 4096).expect("squat the key");
                report("id", seg.id());
                seg.set(Some(0), Some(0), None)
                    .expect("give the segment to root");
                seg.attach()
                    .expect("the creator still attaches rw")
                    .write_at(0, b"forged")
                    .unwrap();
                seg.set_mode(0o600).expect("the creator may still IPC_SET");
            }
            "attach-wait-write" => {
                let att = Segment::from_id(arg("SVSHM_TEST_ID"))
                    .attach()
                    .expect("attach rw");
                common::ready_then_wait();
                // The parent has narrowed the mode meanwhile; the mapping stays.
                att.write_at(0, b"after").expect("write");
            }
            "attach-denied" => {
                let seg = Segment::from_id(arg("SVSHM_TEST_ID"));
                assert_kind(
                    "attach read-only",
                    seg.attach_read_only(),
                    ErrorKind::PermissionDenied,
                    libc::EACCES,
                );
                assert_kind(
                    "attach",
                    seg.attach(),
                    ErrorKind::PermissionDenied,
                    libc::EACCES,
                );
            }
            other => panic!("permissions has no child role {other:?}"),
        }
        0
    });
}

fn assert_kind<T: std::fmt::Debug>(
    what: &str,
    r: Result<T, Error>,
    kind: ErrorKind,
    errno: i32,
) -> Error {
    let err = r.expect_err(what);
    assert_eq!(err.kind(), kind, "{what}: {err}");
    assert_eq!(err.errno(), Some(errno), "{what}: {err}");
    err
}

/// attach, attach read-only and IPC_STAT are all refused with EACCES; returns
/// the error of attach.
fn assert_no_access(seg: &Segment) -> Error {
    let err = assert_kind(
        "attach",
        seg.attach(),
        ErrorKind::PermissionDenied,
        libc::EACCES,
    );
    assert_kind(
        "attach read-only",
        seg.attach_read_only(),
        ErrorKind::PermissionDenied,
        libc::EACCES,
    );
    assert_kind(
        "IPC_STAT",
        seg.stat(),
        ErrorKind::PermissionDenied,
        libc::EACCES,
    );
    err
}

/// LTP shmget04 and shmctl02: the owner of a mode-0 segment is refused
/// whatever it asks for; what it may still do needs ownership, not mode bits.
fn check_mode_zero_owner() {
    let key = key_for("mode_zero_owner");
    let seg = CreateOptions::new(2048).key(key).mode(0).create().unwrap();
    let _rm = seg.remove_on_drop();

    for access in [0o400, 0o200, 0o600] {
        let err = assert_kind(
            &format!("open_with_access {access:#o}"),
            Segment::open_with_access(key, 2048, access),
            ErrorKind::PermissionDenied,
            libc::EACCES,
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("uid {}", svshm::euid())) && msg.contains("mode 0000"),
            "{msg}"
        );
    }
    assert_eq!(
        Segment::open(key, 0).unwrap(),
        seg,
        "asking for no permission finds it"
    );
    assert_no_access(&seg);
    let listed = svshm::segments()
        .unwrap()
        .into_iter()
        .find(|s| s.id == seg.id())
        .expect("SHM_STAT_ANY lists it");
    assert_eq!(listed.mode, 0);

    // IPC_SET needs ownership, not read permission: the owner can let itself in.
    seg.set_mode(0o600).unwrap();
    assert_eq!(seg.stat().unwrap().permissions(), 0o600);
    seg.attach().unwrap().write_at(0, b"ok").unwrap();
    seg.remove().unwrap();
}

#[test]
fn owner_with_mode_zero_is_denied() {
    if !common::is_root() {
        check_mode_zero_owner();
        return;
    }
    // Root would bypass the bits (CAP_IPC_OWNER): be an ordinary owner instead.
    if let Some(why) = common::nobody_unavailable() {
        common::skip("owner_with_mode_zero_is_denied", &why);
        return;
    }
    common::run(child_as_nobody("mode-zero-owner")).assert_success();
}

/// As nobody, on a root-owned 0600 segment.
fn other_user_on_0600() {
    let key = Key::new(arg("SVSHM_TEST_KEY"));
    let seg = Segment::from_id(arg("SVSHM_TEST_ID"));
    let owner = "root (uid 0)";

    // The key and id are not secrets: shmget(key, 0, 0) answers anyone.
    assert_eq!(Segment::open(key, 0).unwrap(), seg);
    let err = assert_kind(
        "open rw",
        Segment::open_with_access(key, 0, 0o600),
        ErrorKind::PermissionDenied,
        libc::EACCES,
    );
    assert!(err.to_string().contains(owner), "names the owner: {err}");
    assert_kind(
        "open r",
        Segment::open_with_access(key, 0, 0o400),
        ErrorKind::PermissionDenied,
        libc::EACCES,
    );

    // The data: guarded by the mode bits.
    let err = assert_no_access(&seg);
    assert!(err.to_string().contains(owner), "names the owner: {err}");

    // Owner-only operations: EPERM.
    let err = assert_kind("IPC_RMID", seg.remove(), ErrorKind::NotOwner, libc::EPERM);
    assert!(err.to_string().contains(owner), "names the owner: {err}");
    assert_kind(
        "IPC_SET mode",
        seg.set_mode(0o666),
        ErrorKind::NotOwner,
        libc::EPERM,
    );
    assert_kind(
        "IPC_SET uid",
        seg.set(Some(common::NOBODY), None, None),
        ErrorKind::NotOwner,
        libc::EPERM,
    );
    assert_kind("SHM_LOCK", seg.lock(), ErrorKind::NotOwner, libc::EPERM);
    assert_kind("SHM_UNLOCK", seg.unlock(), ErrorKind::NotOwner, libc::EPERM);

    // The metadata: public (LTP shmctl04 as nobody), by syscall and by /proc.
    for (source, list) in [
        ("SHM_STAT_ANY", svshm::segments()),
        ("/proc", svshm::proc_segments()),
    ] {
        let info = list
            .unwrap()
            .into_iter()
            .find(|s| s.id == seg.id())
            .unwrap_or_else(|| panic!("{source}"));
        assert_eq!(
            (info.key, info.uid, info.permissions(), info.size),
            (key, 0, 0o600, 4096),
            "{source}"
        );
        report(
            &format!(
                "creator_pid_via_{}",
                if source == "/proc" { "proc" } else { "syscall" }
            ),
            info.creator_pid,
        );
    }
}

#[test]
fn other_user_is_denied_data_but_sees_metadata() {
    if let Some(why) = common::nobody_unavailable() {
        common::skip("other_user_is_denied_data_but_sees_metadata", &why);
        return;
    }
    let key = key_for("other_user_is_denied_data");
    let seg = Segment::create(key, 4096).unwrap();
    let _rm = seg.remove_on_drop();
    seg.attach().unwrap().write_at(0, b"secret").unwrap();

    let mut c = child_as_nobody("other-user-on-0600");
    c.env("SVSHM_TEST_KEY", key.raw().to_string())
        .env("SVSHM_TEST_ID", seg.id().to_string());
    let done = common::run(c);
    done.assert_success();
    let me = std::process::id().to_string();
    assert_eq!(
        done.get("creator_pid_via_syscall"),
        me,
        "cpid is visible to anyone"
    );
    assert_eq!(done.get("creator_pid_via_proc"), me);

    let info = seg.stat().unwrap();
    assert_eq!(info.permissions(), 0o600, "nothing changed");
    assert!(!info.is_marked_for_destruction() && !info.is_locked());
    let mut b = [0u8; 6];
    seg.attach().unwrap().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"secret");
}

/// As nobody, on a root-owned 0604 segment (already marked for destruction).
fn other_user_reads_0604() {
    let seg = Segment::from_id(arg("SVSHM_TEST_ID"));
    let att = seg.attach_read_only().expect("the other bits grant read");
    let mut b = [0u8; 6];
    att.read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"public");
    assert!(seg.stat().unwrap().is_marked_for_destruction());
    assert_kind(
        "attach rw",
        seg.attach(),
        ErrorKind::PermissionDenied,
        libc::EACCES,
    );
}

#[test]
fn other_user_reads_through_the_other_bits_even_after_remove() {
    if let Some(why) = common::nobody_unavailable() {
        common::skip(
            "other_user_reads_through_the_other_bits_even_after_remove",
            &why,
        );
        return;
    }
    let seg = CreateOptions::new(4096).mode(0o604).create().unwrap();
    let _rm = seg.remove_on_drop();
    let ours = seg.attach().unwrap();
    ours.write_at(0, b"public").unwrap();
    // IPC_RMID does not revoke access: only the mode bits do.
    seg.remove().unwrap();

    let mut c = child_as_nobody("other-user-reads-0604");
    c.env("SVSHM_TEST_ID", seg.id().to_string());
    common::run(c).assert_success();
}

#[test]
fn squatted_key_is_refused_and_the_error_names_the_squatter() {
    if let Some(why) = common::nobody_unavailable() {
        common::skip(
            "squatted_key_is_refused_and_the_error_names_the_squatter",
            &why,
        );
        return;
    }
    let key = key_for("squatted_key");
    let mut c = child_as_nobody("squat");
    c.env("SVSHM_TEST_KEY", key.raw().to_string());
    let done = common::run(c);
    // Remove the squatter's segment whatever happens next (root may: CAP_SYS_ADMIN).
    let _rm = Segment::open(key, 0).map(Segment::remove_on_drop);
    done.assert_success();
    let squat = Segment::from_id(done.get("id").parse().unwrap());

    let err = assert_kind(
        "exclusive create",
        Segment::create(key, 4096),
        ErrorKind::AlreadyExists,
        libc::EEXIST,
    );
    let msg = err.to_string();
    assert!(msg.contains(&format!("segment id {}", squat.id())), "{msg}");
    assert!(msg.contains("uid 65534"), "names the squatter: {msg}");
    assert!(msg.contains("mode 0666"), "{msg}");

    // The pitfall the default avoids: IPC_CREAT without IPC_EXCL hands us the
    // attacker's segment, mode and owner unchanged.
    let got = CreateOptions::new(4096)
        .key(key)
        .exclusive(false)
        .create()
        .unwrap();
    assert_eq!(got, squat);
    let info = got.stat().unwrap();
    assert_eq!(
        (info.uid, info.creator_uid, info.permissions()),
        (common::NOBODY, common::NOBODY, 0o666)
    );
}

#[test]
fn root_bypasses_the_mode_bits() {
    if !common::is_root() {
        common::skip("root_bypasses_the_mode_bits", "needs root (CAP_IPC_OWNER)");
        return;
    }
    let seg = CreateOptions::new(4096).mode(0).create().unwrap();
    let _rm = seg.remove_on_drop();
    assert_eq!(seg.stat().unwrap().mode, 0);
    let att = seg.attach().unwrap();
    att.write_at(0, b"root").unwrap();
}

#[test]
fn only_the_creator_uid_attests_who_made_a_segment() {
    if let Some(why) = common::nobody_unavailable() {
        common::skip("only_the_creator_uid_attests_who_made_a_segment", &why);
        return;
    }
    let key = key_for("squat_and_disguise");
    let mut c = child_as_nobody("squat-and-disguise");
    c.env("SVSHM_TEST_KEY", key.raw().to_string());
    let done = common::run(c);
    let _rm = Segment::open(key, 0).map(Segment::remove_on_drop);
    done.assert_success();

    let seg = Segment::open(key, 0).unwrap();
    let info = seg.stat().unwrap();
    // Owner, group and mode all look like a root-made 0600 segment ...
    assert_eq!((info.uid, info.gid, info.permissions()), (0, 0, 0o600));
    // ... only the kernel's creator record tells the truth.
    assert_eq!(
        (info.creator_uid, info.creator_gid),
        (common::NOBODY, common::NOBODY)
    );
    let mut b = [0u8; 6];
    seg.attach().unwrap().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"forged");
    // An exclusive create names the creator, not just the (forged) owner.
    let err = assert_kind(
        "exclusive create",
        Segment::create(key, 4096),
        ErrorKind::AlreadyExists,
        libc::EEXIST,
    );
    assert!(
        err.to_string()
            .contains("owned by root (uid 0) but was created by nobody (uid 65534)"),
        "{err}"
    );
}

#[test]
fn narrowing_the_mode_does_not_revoke_an_existing_attachment() {
    if let Some(why) = common::nobody_unavailable() {
        common::skip(
            "narrowing_the_mode_does_not_revoke_an_existing_attachment",
            &why,
        );
        return;
    }
    let seg = CreateOptions::new(4096).mode(0o606).create().unwrap();
    let _rm = seg.remove_on_drop();
    let mut c = child_as_nobody("attach-wait-write");
    c.env("SVSHM_TEST_ID", seg.id().to_string());
    let other = common::spawn_waiting(c);

    // The kernel checks the mode bits at shmat only.
    seg.set_mode(0o600).unwrap();
    let status = other.finish();
    assert!(status.success(), "{status}");
    let mut b = [0u8; 5];
    seg.attach().unwrap().read_at(0, &mut b).unwrap();
    assert_eq!(
        &b, b"after",
        "the other user wrote through its old attachment"
    );

    // A new attach by that user is refused now.
    let mut c = child_as_nobody("attach-denied");
    c.env("SVSHM_TEST_ID", seg.id().to_string());
    common::run(c).assert_success();
}
