//! Tests that need their own IPC namespace: exhausting `kernel.shmmni` (LTP
//! shmget03) and the separation of keys between namespaces (LTP
//! containers/sysvipc). The child runs under `unshare --ipc` (without root:
//! `unshare --user --map-root-user --ipc`), so limits it changes and segments
//! it leaves die with its namespace; the host's limits are never touched.
//! Where namespaces cannot be created the tests are skipped with a printed
//! reason.

mod common;

use common::{arg, child_in_new_ipc_namespace, report};
use svshm::{ErrorKind, Key, RemoveOnDrop, Segment};

/// The low shmmni the child sets inside its namespace.
const SHMMNI: u64 = 8;

fn ipc_namespace() -> String {
    let link = std::fs::read_link("/proc/self/ns/ipc").expect("read /proc/self/ns/ipc");
    link.to_string_lossy().into_owned()
}

#[test]
fn child_entry() {
    common::dispatch(|role| {
        // Refuse to do anything in the parent's namespace: the roles below
        // change kernel limits.
        let host: String = arg("SVSHM_TEST_HOST_NS");
        assert_ne!(
            ipc_namespace(),
            host,
            "child must run in a new IPC namespace"
        );
        match role {
            "fill-shmmni" => fill_shmmni(),
            "other-namespace" => other_namespace(),
            "attach-in-namespace" => attach_in_namespace(),
            other => panic!("namespace has no child role {other:?}"),
        }
        0
    });
}

/// In a fresh namespace: set shmmni low, fill it, check the ENOSPC error.
fn fill_shmmni() {
    std::fs::write("/proc/sys/kernel/shmmni", SHMMNI.to_string())
        .expect("write shmmni inside the namespace");
    assert_eq!(svshm::limits().unwrap().shmmni, SHMMNI);
    let existing = svshm::usage().unwrap().segments;
    assert_eq!(existing, 0, "a new IPC namespace starts empty");

    let mut guards: Vec<RemoveOnDrop> = Vec::new();
    let err = loop {
        match Segment::create_private(4096) {
            Ok(seg) => guards.push(seg.remove_on_drop()),
            Err(e) => break e,
        }
        assert!(
            guards.len() as u64 <= SHMMNI,
            "created more than shmmni segments"
        );
    };
    assert_eq!(guards.len() as u64, SHMMNI, "{err}");
    assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
    assert_eq!(err.errno(), Some(libc::ENOSPC));
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("kernel.shmmni ({SHMMNI})")),
        "names the limit and its value: {msg}"
    );
    assert!(
        msg.contains("/proc/sys/kernel/shmmni"),
        "says what to raise: {msg}"
    );
    report("filled", guards.len());

    // One freed id makes room again.
    guards.pop();
    guards.push(
        Segment::create_private(4096)
            .expect("room after a removal")
            .remove_on_drop(),
    );
    report("message", msg);
}

/// In a fresh namespace: the host's key does not exist here, and the same key
/// names a different segment.
fn other_namespace() {
    let key = Key::new(arg("SVSHM_TEST_KEY"));
    let host_id: i32 = arg("SVSHM_TEST_ID");
    let err = Segment::open(key, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        svshm::segments().unwrap().is_empty(),
        "nothing of the host is visible"
    );

    let seg = Segment::create(key, 4096).expect("the key is free in this namespace");
    let _rm = seg.remove_on_drop();
    seg.attach().unwrap().write_at(0, b"inside").unwrap();
    let listed = svshm::segments().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, key);
    report("id", seg.id());
    report(
        "host_id_visible",
        svshm::proc_segments()
            .unwrap()
            .iter()
            .any(|s| s.id == host_id && s.size == 8192),
    );
}

/// In a fresh namespace: attach a segment (its id repeats ids of the host's
/// namespace, which start at 0 too), report its id, hold it until released.
fn attach_in_namespace() {
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    let _att = seg.attach().unwrap();
    assert_eq!(
        svshm::attachers(seg.id()).unwrap().len(),
        1,
        "we see ourselves"
    );
    report("id", seg.id());
    report("pid", std::process::id());
    common::ready_then_wait();
}

#[test]
fn attachers_leave_out_processes_of_other_ipc_namespaces() {
    let test = "attachers_leave_out_processes_of_other_ipc_namespaces";
    if !common::is_root() {
        common::skip(
            test,
            "needs root to read the maps of a process in another IPC namespace",
        );
        return;
    }
    if let Some(why) = common::unshare_unavailable() {
        common::skip(test, &why);
        return;
    }
    // One of ours, attached, to check that ours are still listed.
    let mine = Segment::create_private(4096).unwrap();
    let _rm = mine.remove_on_drop();
    let _att = mine.attach().unwrap();

    let mut c = child_in_new_ipc_namespace("attach-in-namespace");
    c.env("SVSHM_TEST_HOST_NS", ipc_namespace());
    let child = common::spawn_waiting(c);
    let id: i32 = child.get("id").parse().unwrap();
    let pid: i32 = child.get("pid").parse().unwrap();
    let listed = svshm::attachers(id).unwrap();
    assert!(
        !listed.iter().any(|a| a.pid == pid),
        "segment {id} of another namespace listed as attached here: {listed:?}"
    );
    let me = std::process::id() as i32;
    assert!(
        svshm::attachers(mine.id())
            .unwrap()
            .iter()
            .any(|a| a.pid == me),
        "our own attachment is missing"
    );
    // Its segment dies with its namespace.
    assert!(child.finish().success());
}

#[test]
fn shmmni_exhaustion_in_a_private_namespace_is_no_space() {
    if let Some(why) = common::unshare_unavailable() {
        common::skip("shmmni_exhaustion_in_a_private_namespace_is_no_space", &why);
        return;
    }
    let host_shmmni = svshm::limits().unwrap().shmmni;
    let mut c = child_in_new_ipc_namespace("fill-shmmni");
    c.env("SVSHM_TEST_HOST_NS", ipc_namespace());
    let done = common::run(c);
    done.assert_success();
    assert_eq!(done.get("filled"), SHMMNI.to_string());
    assert!(
        done.get("message")
            .starts_with("create segment (key 0x00000000, 4 KiB): no room"),
        "{done:#?}"
    );
    assert_eq!(
        svshm::limits().unwrap().shmmni,
        host_shmmni,
        "the host's limit is untouched"
    );
}

#[test]
fn the_same_key_names_different_segments_in_different_namespaces() {
    if let Some(why) = common::unshare_unavailable() {
        common::skip(
            "the_same_key_names_different_segments_in_different_namespaces",
            &why,
        );
        return;
    }
    let key = common::key_for("the_same_key_in_different_namespaces");
    let seg = Segment::create(key, 8192).unwrap();
    let _rm = seg.remove_on_drop();
    seg.attach().unwrap().write_at(0, b"host").unwrap();

    let mut c = child_in_new_ipc_namespace("other-namespace");
    c.env("SVSHM_TEST_HOST_NS", ipc_namespace())
        .env("SVSHM_TEST_KEY", key.raw().to_string())
        .env("SVSHM_TEST_ID", seg.id().to_string());
    let done = common::run(c);
    done.assert_success();
    assert_eq!(done.get("host_id_visible"), "false");

    // Our segment is untouched, and the child's is gone with its namespace.
    assert_eq!(Segment::open(key, 0).unwrap(), seg);
    let info = seg.stat().unwrap();
    assert_eq!((info.size, info.attach_count), (8192, 0));
    let mut b = [0u8; 4];
    seg.attach().unwrap().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"host");
}
