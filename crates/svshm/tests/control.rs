//! shmctl against the real kernel: IPC_STAT, IPC_SET, IPC_RMID, SHM_LOCK and
//! SHM_UNLOCK (LTP shmctl01/02/07/08).

mod common;

use common::key_for;
use std::time::Duration;
use svshm::{CreateOptions, ErrorKind, Key, Segment};

#[test]
fn child_entry() {
    common::dispatch(|role| panic!("control has no child role {role:?}"));
}

#[test]
fn lock_sets_the_locked_bit_and_unlock_clears_it() {
    // LTP shmctl07.
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    assert!(!seg.stat().unwrap().is_locked());
    match seg.lock() {
        Ok(()) => {}
        Err(e)
            if !common::is_root()
                && matches!(e.kind(), ErrorKind::NotOwner | ErrorKind::LockLimit) =>
        {
            common::skip(
                "lock_sets_the_locked_bit_and_unlock_clears_it",
                &format!("RLIMIT_MEMLOCK too low: {e}"),
            );
            return;
        }
        Err(e) => panic!("{e}"),
    }
    let info = seg.stat().unwrap();
    assert!(info.is_locked(), "{info:?}");
    assert_eq!(info.mode & svshm::SHM_LOCKED, svshm::SHM_LOCKED);
    assert_eq!(info.permissions(), 0o600, "permission bits unchanged");
    seg.lock().unwrap(); // locking twice is fine

    seg.unlock().unwrap();
    let info = seg.stat().unwrap();
    assert!(!info.is_locked(), "{info:?}");
    assert_eq!(info.mode, 0o600);
}

#[test]
fn set_changes_mode_and_change_time() {
    // LTP shmctl08: 0666 -> 0600 and shm_ctime moves on (after a 1 s sleep, as
    // the times have one-second resolution).
    let seg = CreateOptions::new(4096).mode(0o666).create().unwrap();
    let _rm = seg.remove_on_drop();
    let before = seg.stat().unwrap();
    assert_eq!(before.permissions(), 0o666);
    std::thread::sleep(Duration::from_millis(1100));

    seg.set_mode(0o600).unwrap();
    let after = seg.stat().unwrap();
    assert_eq!(after.permissions(), 0o600);
    assert!(
        after.change_time > before.change_time,
        "ctime {:?} -> {:?}",
        before.change_time,
        after.change_time
    );
    assert_eq!(
        (after.uid, after.gid),
        (before.uid, before.gid),
        "None keeps owner and group"
    );

    seg.set(None, None, Some(0o666)).unwrap();
    assert_eq!(seg.stat().unwrap().permissions(), 0o666, "restored");
}

#[test]
fn set_keeps_the_status_bits() {
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    let _att = seg.attach().unwrap();
    seg.remove().unwrap();
    seg.set_mode(0o640).unwrap();
    let info = seg.stat().unwrap();
    assert_eq!(info.permissions(), 0o640);
    assert!(
        info.is_marked_for_destruction(),
        "IPC_SET writes only the nine permission bits: {info:?}"
    );
}

#[test]
fn set_refuses_bits_beyond_the_permission_bits() {
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    let err = seg.set_mode(0o1600).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert_eq!(seg.stat().unwrap().permissions(), 0o600);
}

#[test]
fn set_owner_keeps_the_creator() {
    if !common::is_root() {
        common::skip(
            "set_owner_keeps_the_creator",
            "needs root (CAP_SYS_ADMIN) to give a segment to another uid",
        );
        return;
    }
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    seg.set(Some(common::NOBODY), Some(common::NOBODY), None)
        .unwrap();
    let info = seg.stat().unwrap();
    assert_eq!((info.uid, info.gid), (common::NOBODY, common::NOBODY));
    assert_eq!(
        (info.creator_uid, info.creator_gid),
        (0, svshm::egid()),
        "shm_perm.cuid/cgid never change"
    );
    assert_eq!(info.permissions(), 0o600);
}

#[test]
fn remove_twice_while_attached_succeeds_and_after_destruction_fails() {
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    let att = seg.attach().unwrap();
    seg.remove().unwrap();
    seg.remove().unwrap();
    drop(att);
    let err = seg.remove().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidId, "{err}");
    assert_eq!(err.errno(), Some(libc::EINVAL));
    assert!(err.message().contains("no segment has this id"), "{err}");
    assert!(
        !err.to_string().contains("`svshm "),
        "a library message names no command-line tool: {err}"
    );
}

#[test]
fn stat_of_bad_ids_is_invalid_id() {
    // LTP shmctl02: shmid -1 and the id of a removed segment.
    let err = Segment::from_id(-1).stat().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidId, "{err}");
    let seg = Segment::create_private(4096).unwrap();
    seg.remove().unwrap();
    let err = seg.stat().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidId, "{err}");
    assert!(
        err.to_string().contains(&format!("id {}", seg.id())),
        "{err}"
    );
}

#[test]
fn key_is_hidden_after_remove_while_attached() {
    let key = key_for("key_is_hidden_after_remove_while_attached");
    let seg = Segment::create(key, 4096).unwrap();
    let _rm = seg.remove_on_drop();
    let _att = seg.attach().unwrap();
    assert_eq!(seg.stat().unwrap().key, key);
    seg.remove().unwrap();

    let info = seg.stat().unwrap();
    assert_eq!(
        info.key,
        Key::PRIVATE,
        "the kernel sets the key to IPC_PRIVATE: {info:?}"
    );
    assert!(info.is_marked_for_destruction());
    assert_eq!(info.mode & svshm::SHM_DEST, svshm::SHM_DEST);
    assert_eq!(info.attach_count, 1);
    let err = Segment::open(key, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let listed = svshm::proc_segments()
        .unwrap()
        .into_iter()
        .find(|s| s.id == seg.id())
        .expect("listed in /proc");
    assert_eq!(listed.key, Key::PRIVATE);
    assert_eq!(listed.mode, 0o1600, "/proc shows the SHM_DEST bit");

    // The key is free again: a new, different segment can take it.
    let new = Segment::create(key, 4096).unwrap();
    let _rm_new = new.remove_on_drop();
    assert_ne!(new, seg);
}

#[test]
fn stat_tracks_attach_and_detach() {
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    let me = std::process::id() as i32;
    let att = seg.attach().unwrap();
    let info = seg.stat().unwrap();
    assert_eq!((info.attach_count, info.last_pid), (1, me));
    assert!(info.attach_time.is_some());
    assert_eq!(info.detach_time, None);
    drop(att);
    let info = seg.stat().unwrap();
    assert_eq!((info.attach_count, info.last_pid), (0, me));
    assert!(info.detach_time.is_some());
}
