//! shmget against the real kernel: creating and opening segments, and every
//! error a create or open can give (LTP shmget01/02, TLPI §48.2).

mod common;

use common::key_for;
use svshm::{CreateOptions, ErrorKind, Key, Segment};

#[test]
fn child_entry() {
    common::dispatch(|role| panic!("create_open has no child role {role:?}"));
}

#[test]
fn open_of_missing_key_is_not_found() {
    let key = key_for("open_of_missing_key_is_not_found");
    let err = Segment::open(key, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.errno(), Some(libc::ENOENT));
    assert!(
        err.to_string().contains(&key.to_string()),
        "names the key: {err}"
    );
    assert!(
        err.message().contains("create it first"),
        "says what to do: {err}"
    );
    assert!(
        !err.to_string().contains("`svshm "),
        "a library message names no command-line tool: {err}"
    );
}

#[test]
fn exclusive_create_of_taken_key_names_the_owner() {
    let key = key_for("exclusive_create_of_taken_key_names_the_owner");
    let seg = Segment::create(key, 4096).unwrap();
    let _rm = seg.remove_on_drop();

    let err = Segment::create(key, 4096).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(err.errno(), Some(libc::EEXIST));
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("segment id {}", seg.id())),
        "names the existing segment: {msg}"
    );
    assert!(
        msg.contains(&format!("uid {}", svshm::euid())),
        "names its owner: {msg}"
    );
    assert!(msg.contains("mode 0600"), "gives its mode: {msg}");
    assert!(msg.contains("choose another key"), "says what to do: {msg}");
}

#[test]
fn non_exclusive_create_returns_the_existing_segment_unchanged() {
    let key = key_for("non_exclusive_create_returns_the_existing_segment_unchanged");
    let seg = Segment::create(key, 4096).unwrap();
    let _rm = seg.remove_on_drop();

    // IPC_CREAT without IPC_EXCL silently opens what exists, ignoring the mode
    // asked for: the squatting pitfall the secure default avoids.
    let again = CreateOptions::new(4096)
        .key(key)
        .mode(0o666)
        .exclusive(false)
        .create()
        .unwrap();
    assert_eq!(again, seg);
    assert_eq!(seg.stat().unwrap().permissions(), 0o600);
}

#[test]
fn size_zero_is_invalid_size() {
    let key = key_for("size_zero_is_invalid_size");
    let err = Segment::create(key, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
    assert_eq!(err.errno(), Some(libc::EINVAL));
    assert!(err.message().contains("SHMMIN"), "{err}");
    assert_eq!(
        Segment::open(key, 0).unwrap_err().kind(),
        ErrorKind::NotFound,
        "nothing was created"
    );
}

#[test]
fn size_above_shmmax_is_invalid_size() {
    let key = key_for("size_above_shmmax_is_invalid_size");
    let shmmax = svshm::limits().unwrap().shmmax;
    let Some(size) = shmmax.checked_add(1).and_then(|s| usize::try_from(s).ok()) else {
        common::skip(
            "size_above_shmmax_is_invalid_size",
            &format!("shmmax {shmmax} + 1 does not fit in usize"),
        );
        return;
    };
    let err = Segment::create(key, size).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
    assert_eq!(err.errno(), Some(libc::EINVAL));
    assert!(err.message().contains("kernel.shmmax"), "{err}");
    assert!(
        err.message().contains("/proc/sys/kernel/shmmax"),
        "says what to do: {err}"
    );
    assert_eq!(
        Segment::open(key, 0).unwrap_err().kind(),
        ErrorKind::NotFound,
        "nothing was created"
    );
}

#[test]
fn existing_segment_smaller_than_asked_is_segment_too_small() {
    let key = key_for("existing_segment_smaller_than_asked_is_segment_too_small");
    let seg = Segment::create(key, 2048).unwrap();
    let _rm = seg.remove_on_drop();

    for err in [
        Segment::open(key, 4096).unwrap_err(),
        CreateOptions::new(4096)
            .key(key)
            .exclusive(false)
            .create()
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::SegmentTooSmall, "{err}");
        assert_eq!(err.errno(), Some(libc::EINVAL));
        let msg = err.to_string();
        assert!(msg.contains(&format!("segment id {}", seg.id())), "{msg}");
        assert!(msg.contains("2048 bytes"), "gives the real size: {msg}");
    }
    // Up to the recorded size (not the page-rounded allocation) is fine; 0 accepts any.
    assert_eq!(Segment::open(key, 2048).unwrap(), seg);
    assert_eq!(Segment::open(key, 0).unwrap(), seg);
    assert_eq!(
        Segment::open(key, 2049).unwrap_err().kind(),
        ErrorKind::SegmentTooSmall
    );
}

#[test]
fn private_key_cannot_be_opened() {
    let err = Segment::open(Key::PRIVATE, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.message().contains("by its id"), "{err}");
}

#[test]
fn private_segments_are_distinct() {
    let a = Segment::create_private(4096).unwrap();
    let _ra = a.remove_on_drop();
    let b = Segment::create_private(4096).unwrap();
    let _rb = b.remove_on_drop();
    assert_ne!(a, b);
    assert_eq!(a.stat().unwrap().key, Key::PRIVATE);
}

#[test]
fn mode_beyond_permission_bits_is_refused() {
    let key = key_for("mode_beyond_permission_bits_is_refused");
    // 0o2600 would smuggle IPC_EXCL into shmget, 0o4600 SHM_HUGETLB (the ipcmk -p trap).
    for mode in [0o1600, 0o2600, 0o4600] {
        let err = CreateOptions::new(4096)
            .key(key)
            .mode(mode)
            .create()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert_eq!(err.errno(), None, "refused before any syscall");
    }
    assert_eq!(
        Segment::open(key, 0).unwrap_err().kind(),
        ErrorKind::NotFound,
        "nothing was created"
    );
}

#[test]
fn create_records_size_creator_and_mode() {
    // LTP shmget01: shm_segsz, shm_cpid and the mode as asked.
    let key = key_for("create_records_size_creator_and_mode");
    // shm_ctime is whole seconds from the kernel's coarse clock, which may lag
    // SystemTime::now() a little: compare seconds, with a second of slack.
    let before = svshm::info::epoch_secs(Some(std::time::SystemTime::now())) - 1;
    let seg = CreateOptions::new(2048)
        .key(key)
        .mode(0o640)
        .create()
        .unwrap();
    let _rm = seg.remove_on_drop();
    let after = svshm::info::epoch_secs(Some(std::time::SystemTime::now())) + 1;

    let info = seg.stat().unwrap();
    assert_eq!(info.id, seg.id());
    assert_eq!(info.key, key);
    assert_eq!(
        info.size, 2048,
        "the size asked for, not the page-rounded allocation"
    );
    assert_eq!(info.permissions(), 0o640);
    assert_eq!(info.mode, 0o640, "neither SHM_DEST nor SHM_LOCKED");
    assert_eq!(info.creator_pid, std::process::id() as i32);
    assert_eq!((info.uid, info.creator_uid), (svshm::euid(), svshm::euid()));
    assert_eq!((info.gid, info.creator_gid), (svshm::egid(), svshm::egid()));
    assert_eq!((info.attach_count, info.last_pid), (0, 0));
    assert_eq!((info.attach_time, info.detach_time), (None, None));
    let ctime = svshm::info::epoch_secs(Some(info.change_time.expect("creation sets shm_ctime")));
    assert!(
        (before..=after).contains(&ctime),
        "ctime {ctime} within the creation window {before}..={after}"
    );
}

#[test]
fn open_finds_the_created_segment() {
    let key = key_for("open_finds_the_created_segment");
    let seg = Segment::create(key, 8192).unwrap();
    let _rm = seg.remove_on_drop();
    assert_eq!(Segment::open(key, 8192).unwrap(), seg);
    assert_eq!(
        Segment::open_with_access(key, 0, 0o600).unwrap(),
        seg,
        "the owner has rw"
    );
    assert_eq!(Segment::from_id(seg.id()).stat().unwrap().key, key);
}

#[test]
fn new_segment_is_zeroed() {
    let seg = Segment::create_private(3 * 4096 + 5).unwrap();
    let _rm = seg.remove_on_drop();
    let att = seg.attach().unwrap();
    assert_eq!(att.len(), 3 * 4096 + 5);
    let mut buf = vec![0xffu8; att.len()];
    att.read_at(0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}
