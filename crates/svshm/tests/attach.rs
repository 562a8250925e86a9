//! shmat and shmdt against the real kernel: addresses, SHM_RND, SHM_RDONLY,
//! attach counts across processes, attach after IPC_RMID, and what happens to
//! the memory when processes detach or die (LTP shmat01/02, shmdt01/02,
//! shmctl01, shmt02/03/04/05).

mod common;

use common::{arg, child, key_for, report, spawn_many, spawn_waiting};
use std::os::unix::process::ExitStatusExt;
use svshm::{AttachOptions, Attachment, ErrorKind, Key, Segment};

/// Roles the children of this file play.
#[test]
fn child_entry() {
    common::dispatch(|role| {
        let seg = Segment::from_id(arg("SVSHM_TEST_ID"));
        match role {
            // Attach (read-only if asked), report where, hold it until released.
            "attach-and-wait" => {
                let ro = std::env::var("SVSHM_TEST_RO").is_ok();
                let att = if ro {
                    seg.attach_read_only()
                } else {
                    seg.attach()
                }
                .expect("child attach");
                let mut first = [0u8; 8];
                att.read_at(0, &mut first).unwrap();
                report("addr", att.address());
                report(
                    "data",
                    String::from_utf8_lossy(&first).trim_end_matches('\0'),
                );
                common::ready_then_wait();
                drop(att);
                0
            }
            // Write through a read-only mapping: the kernel must kill us with SIGSEGV.
            "write-read-only" => {
                let att = seg.attach_read_only().expect("child attach read-only");
                common::no_core_dumps();
                // SAFETY: deliberately writes one byte inside the mapping (so the
                // address is valid) that is mapped without PROT_WRITE; the kernel
                // delivers SIGSEGV, which is what the parent checks.
                unsafe { att.as_ptr().write_volatile(0x5a) };
                report("survived", "yes");
                1
            }
            // Attach, then count attaches while a forked child lives, with
            // and without MADV_DONTFORK.
            "fork-inheritance" => {
                let att = seg.attach().unwrap();
                // Inherited by default: the child counts as attached.
                assert_eq!(with_forked_child(|| seg.stat().unwrap().attach_count), 2);
                att.inherit_on_fork(false).unwrap();
                assert_eq!(with_forked_child(|| seg.stat().unwrap().attach_count), 1);
                // The attachment itself is untouched.
                att.write_at(0, b"still here").unwrap();
                let mut b = [0u8; 10];
                att.read_at(0, &mut b).unwrap();
                assert_eq!(&b, b"still here");
                att.inherit_on_fork(true).unwrap();
                assert_eq!(with_forked_child(|| seg.stat().unwrap().attach_count), 2);
                0
            }
            other => panic!("attach has no child role {other:?}"),
        }
    });
}

/// Finds a free, SHMLBA-aligned address range by attaching a scratch segment at
/// an address of the kernel's choice and detaching it (LTP PROBE_FREE_ADDR).
fn probe_free_address(len: usize) -> usize {
    let scratch = Segment::create_private(len).unwrap();
    let _rm = scratch.remove_on_drop();
    let att = scratch.attach().unwrap();
    let addr = att.address();
    att.detach().unwrap();
    addr
}

/// Attaches at a probed address; another test thread may map that range between
/// probe and attach, so retry a few times on InvalidAddress.
fn attach_at_probed(seg: Segment, make: impl Fn(usize) -> AttachOptions) -> (usize, Attachment) {
    let len = seg.stat().unwrap().size as usize;
    let mut last = None;
    for _ in 0..20 {
        let addr = probe_free_address(len);
        match seg.attach_with(&make(addr)) {
            Ok(att) => return (addr, att),
            Err(e) if e.kind() == ErrorKind::InvalidAddress => last = Some(e),
            Err(e) => panic!("attach at a probed address: {e}"),
        }
    }
    panic!("no probed address stayed free: {last:?}");
}

#[test]
fn attach_at_kernel_chosen_and_at_exact_aligned_address() {
    // LTP shmat01 (a) and (b).
    let seg = Segment::create_private(4).unwrap();
    let _rm = seg.remove_on_drop();
    let att = seg.attach().unwrap();
    assert_eq!(att.address() % svshm::shmlba(), 0);
    assert_eq!(att.len(), 4, "the length is shm_segsz");
    assert!(!att.is_read_only());
    assert_eq!(att.segment(), seg);
    let info = seg.stat().unwrap();
    assert_eq!((info.attach_count, info.size), (1, 4));
    drop(att);

    let (addr, att) = attach_at_probed(seg, |a| AttachOptions::new().at(a));
    assert_eq!(att.address(), addr, "an aligned address is used as given");
    assert_eq!(seg.stat().unwrap().attach_count, 1);
}

#[test]
fn shm_rnd_rounds_the_address_down_to_shmlba() {
    // LTP shmat01 (c).
    let lba = svshm::shmlba();
    let seg = Segment::create_private(2 * lba).unwrap();
    let _rm = seg.remove_on_drop();
    let (addr, att) = attach_at_probed(seg, |a| {
        AttachOptions::new().at(a + lba / 2 + 3).round(true)
    });
    assert_eq!(
        att.address(),
        addr,
        "{:#x} + {:#x} rounds down to {addr:#x}",
        addr,
        lba / 2 + 3
    );
    assert_eq!(att.address() % lba, 0);
}

#[test]
fn unaligned_address_without_shm_rnd_is_invalid_address() {
    // LTP shmat02 / shmt05.
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    let addr = probe_free_address(4096) + 8;
    let err = seg.attach_with(&AttachOptions::new().at(addr)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidAddress, "{err}");
    assert_eq!(err.errno(), Some(libc::EINVAL));
    assert!(err.message().contains("SHMLBA"), "{err}");
    assert!(err.message().contains("SHM_RND"), "says what to do: {err}");
    assert_eq!(seg.stat().unwrap().attach_count, 0);
}

#[test]
fn invalid_and_removed_ids_cannot_be_attached() {
    // LTP shmat02: shmid -1; and a destroyed segment's id.
    let err = Segment::from_id(-1).attach().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidId, "{err}");

    let seg = Segment::create_private(4096).unwrap();
    seg.remove().unwrap(); // not attached: destroyed at once
    let err = seg.attach().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidId, "{err}");
    assert_eq!(err.errno(), Some(libc::EINVAL));
}

#[test]
fn read_only_attachment_refuses_writes_before_touching_memory() {
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    let ro = seg.attach_read_only().unwrap();
    assert!(ro.is_read_only());
    let err = ro.write_at(0, b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly, "{err}");
    assert!(err.message().contains("attach read-write"), "{err}");
}

#[test]
fn write_through_read_only_mapping_is_killed_by_sigsegv() {
    // LTP shmat01 (d): the mapping itself is read-only, not just our API.
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    let mut c = child("write-read-only");
    c.env("SVSHM_TEST_ID", seg.id().to_string());
    let done = common::run(c);
    assert_eq!(
        done.status.signal(),
        Some(libc::SIGSEGV),
        "child must die of SIGSEGV: {done:#?}"
    );
    assert!(!done.reports.contains_key("survived"));

    let info = seg.stat().unwrap();
    assert_eq!(info.attach_count, 0, "the dead child's attachment is gone");
    let mut b = [0xffu8];
    seg.attach_read_only().unwrap().read_at(0, &mut b).unwrap();
    assert_eq!(b, [0], "the write did not land");
}

#[test]
fn attach_count_across_processes() {
    // LTP shmctl01: nattch as children attach and detach; shmt04: they see our data.
    const CHILDREN: usize = 3;
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    assert_eq!(seg.stat().unwrap().attach_count, 0);
    let ours = seg.attach().unwrap();
    ours.write_at(0, b"parent").unwrap();
    assert_eq!(seg.stat().unwrap().attach_count, 1);

    let children = spawn_many(CHILDREN, |i| {
        let mut c = child("attach-and-wait");
        c.env("SVSHM_TEST_ID", seg.id().to_string());
        if i % 2 == 1 {
            c.env("SVSHM_TEST_RO", "1");
        }
        c
    });
    let info = seg.stat().unwrap();
    assert_eq!(info.attach_count, 1 + CHILDREN as u64, "{info:?}");
    assert!(
        children.iter().any(|c| c.pid() == info.last_pid),
        "shm_lpid is the last attacher: {info:?}"
    );
    for c in &children {
        assert_eq!(
            c.get("data"),
            "parent",
            "each child sees the parent's bytes"
        );
    }

    for c in children {
        let status = c.finish();
        assert!(status.success(), "{status}");
    }
    let info = seg.stat().unwrap();
    assert_eq!(info.attach_count, 1, "children detached: {info:?}");
    drop(ours);
    let info = seg.stat().unwrap();
    assert_eq!(info.attach_count, 0);
    assert_eq!(
        info.last_pid,
        std::process::id() as i32,
        "our detach was the last operation"
    );
    assert!(info.detach_time.is_some());
}

#[test]
fn attach_after_remove_is_allowed_on_linux() {
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    let first = seg.attach().unwrap();
    first.write_at(0, b"still").unwrap();
    seg.remove().unwrap();
    assert!(seg.stat().unwrap().is_marked_for_destruction());

    // Same process, by id.
    let second = seg.attach().unwrap();
    let mut buf = [0u8; 5];
    second.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"still");
    // Another process, by id: IPC_RMID revokes nothing.
    let mut c = child("attach-and-wait");
    c.env("SVSHM_TEST_ID", seg.id().to_string());
    let other = spawn_waiting(c);
    assert_eq!(other.get("data"), "still");
    assert_eq!(seg.stat().unwrap().attach_count, 3);
    assert!(other.finish().success());

    drop(first);
    drop(second);
    let err = seg.stat().unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidId,
        "destroyed at the last detach: {err}"
    );
}

#[test]
fn read_only_and_read_write_attachments_share_the_data() {
    // LTP shmt03: one segment attached twice in one process.
    let seg = Segment::create_private(8192).unwrap();
    let _rm = seg.remove_on_drop();
    let rw = seg.attach().unwrap();
    let ro = seg.attach_read_only().unwrap();
    assert_ne!(rw.address(), ro.address());
    assert_eq!(seg.stat().unwrap().attach_count, 2);

    rw.write_at(5000, b"shared page").unwrap();
    let mut buf = [0u8; 11];
    ro.read_at(5000, &mut buf).unwrap();
    assert_eq!(&buf, b"shared page");

    let p = rw.range_ptr(100, 8).unwrap().cast::<u64>();
    // SAFETY: `range_ptr` checked that [100, 108) lies inside the writable
    // mapping, which this test alone uses; write_unaligned needs no alignment.
    unsafe { p.write_unaligned(0x0123_4567_89ab_cdef) };
    let mut word = [0u8; 8];
    ro.read_at(100, &mut word).unwrap();
    assert_eq!(u64::from_ne_bytes(word), 0x0123_4567_89ab_cdef);
}

#[test]
fn data_survives_remove_while_attached_and_recreate_gives_a_new_zeroed_segment() {
    // LTP shmt02.
    let key = key_for("data_survives_remove_while_attached");
    let old = Segment::create(key, 4096).unwrap();
    let _rm_old = old.remove_on_drop();
    let att = old.attach().unwrap();
    att.write_at(0, b"before rmid").unwrap();
    old.remove().unwrap();

    let mut buf = [0u8; 11];
    att.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"before rmid", "data stays while attached");
    drop(att);
    assert_eq!(
        old.stat().unwrap_err().kind(),
        ErrorKind::InvalidId,
        "destroyed at the last detach"
    );

    let new = Segment::create(key, 4096).unwrap();
    let _rm_new = new.remove_on_drop();
    assert_ne!(new, old, "a new segment, with a new id");
    let mut fresh = [0xffu8; 4096];
    new.attach().unwrap().read_at(0, &mut fresh).unwrap();
    assert!(
        fresh.iter().all(|&b| b == 0),
        "the new segment starts zeroed"
    );
}

#[test]
fn segment_marked_for_destruction_is_freed_when_its_last_attacher_is_killed() {
    // No leak even when the last user crashes.
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    let mut c = child("attach-and-wait");
    c.env("SVSHM_TEST_ID", seg.id().to_string());
    let holder = spawn_waiting(c);
    seg.remove().unwrap();
    let info = seg.stat().unwrap();
    assert!(info.is_marked_for_destruction());
    assert_eq!(info.attach_count, 1);

    let status = holder.kill();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let err = seg.stat().unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidId,
        "the kernel detached the dead child and destroyed it: {err}"
    );
}

#[test]
fn detach_twice_and_unaligned_detach_are_invalid_address() {
    // LTP shmdt01/02.
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    let att = seg.attach().unwrap();
    let addr = att.address();
    att.detach().unwrap();
    assert_eq!(
        seg.stat().unwrap().attach_count,
        0,
        "shmdt brings nattch back to 0"
    );

    // SAFETY: nothing is attached at `addr` any more (detached above) and
    // nothing in this test uses that range.
    let err = unsafe { svshm::detach_at(addr) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidAddress, "{err}");
    assert_eq!(err.errno(), Some(libc::EINVAL));
    // SAFETY: an unaligned address can name no attachment; the kernel refuses.
    let err = unsafe { svshm::detach_at(addr + 1) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidAddress, "{err}");
}

#[test]
fn copies_are_bounds_checked() {
    let seg = Segment::create_private(100).unwrap();
    let _rm = seg.remove_on_drop();
    let att = seg.attach().unwrap();
    att.write_at(96, b"1234").unwrap();
    for (offset, len) in [(97, 4), (101, 0), (usize::MAX, 2)] {
        let mut buf = vec![0u8; len];
        let err = att.read_at(offset, &mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfBounds, "{offset}+{len}: {err}");
        let err = att.write_at(offset, &buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfBounds, "{offset}+{len}: {err}");
    }
    assert!(
        att.range_ptr(100, 0).is_ok(),
        "an empty range at the end is in bounds"
    );
}

/// Forks a child that only sleeps (async-signal-safe, then `_exit`), runs `f`
/// while it lives, then kills and reaps it. fork(2) is the point of the test:
/// a spawned (exec'd) process never inherits mappings.
fn with_forked_child<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: the child calls only async-signal-safe functions and never
    // returns into Rust code.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: async-signal-safe calls only; _exit skips all destructors.
        unsafe {
            libc::sleep(30);
            libc::_exit(0);
        }
    }
    assert!(pid > 0, "fork failed");
    let r = f();
    // SAFETY: kill and reap our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    r
}

#[test]
fn inherit_on_fork_false_keeps_the_attachment_out_of_children() {
    // The forking runs in a child process of its own: a fork here, in the
    // threaded harness, would copy other tests' attachments and skew their
    // attach counts.
    let seg = Segment::create(Key::PRIVATE, 8192).unwrap();
    let _rm = seg.remove_on_drop();
    let status = child("fork-inheritance")
        .env("SVSHM_TEST_ID", seg.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "child checks failed: {status:?}");
    assert_eq!(seg.stat().unwrap().attach_count, 0);
}
