//! Every option that takes seconds accepts any number: one too large to wait
//! out means forever, and none makes the program panic; negative numbers and
//! NaN are usage errors.

mod common;

use common::*;
use predicates::prelude::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A run that ended (or was stopped) without a panic.
fn assert_no_panic(what: &str, code: Option<i32>, stderr: &str) {
    assert_ne!(code, Some(101), "{what} panicked: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
}

/// Lets `p` run until `started()` holds, and a moment more, then kills it:
/// whether it was still running then (no panic, no early exit), and its output.
fn running_after_start(mut p: Proc, what: &str, started: impl Fn() -> bool) -> (bool, Done) {
    let io = collect(&mut p);
    let t0 = Instant::now();
    while !started() && p.0.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{what} never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let running = p.0.try_wait().unwrap().is_none();
    let _ = p.0.kill();
    let done = finish(p, io);
    assert_no_panic(what, done.code, &done.stderr);
    (running, done)
}

#[test]
fn huge_waits_on_both_sides_of_a_transfer_mean_forever() {
    for wait in ["1e19", "1e300", "inf"] {
        let name = unique_name("huge-wait");
        let _g = NameGuard(name.clone());
        let (w, r) = reader_then_writer(
            &["read", &name, "--wait", wait],
            &["write", &name, "/dev/null", "--wait", wait],
        );
        assert_no_panic(&format!("write --wait {wait}"), w.code, &w.stderr);
        assert_no_panic(&format!("read --wait {wait}"), r.code, &r.stderr);
        assert_eq!(w.code, Some(0), "write --wait {wait}: {}", w.stderr);
        assert_eq!(r.code, Some(0), "read --wait {wait}: {}", r.stderr);
    }
}

#[test]
fn a_huge_wait_for_a_peer_that_never_comes_keeps_waiting() {
    let name = unique_name("huge-wait-alone");
    let _g = NameGuard(name.clone());
    let r = spawn(&["read", &name, "--wait", "1e19"], Stdio::null());
    // Waiting: its segment exists, and it is still running well after.
    let key = svshm_channel::channel_key(&name);
    let (running, done) = running_after_start(r, "read --wait 1e19", || {
        svshm::info::public_info_by_key(key).is_some()
    });
    assert!(running, "read --wait 1e19 ended: {}", done.stderr);
}

#[test]
fn attach_holds_forever_when_told_a_huge_number_of_seconds() {
    let g = private(4096);
    let id = g.0.to_string();
    for hold in ["1e19", "1e300"] {
        let a = spawn(&["attach", &id, "--hold", hold], Stdio::null());
        // Attached: the segment's attach count says so.
        let what = format!("attach --hold {hold}");
        let (running, done) = running_after_start(a, &what, || {
            svshm::Segment::from_id(g.0).stat().unwrap().attach_count > 0
        });
        assert!(running, "attach --hold {hold} ended: {}", done.stderr);
        assert!(
            String::from_utf8_lossy(&done.stdout).contains("until killed"),
            "{}",
            String::from_utf8_lossy(&done.stdout)
        );
    }
}

#[test]
fn negative_and_nan_seconds_are_usage_errors() {
    let g = private(4096);
    let id = g.0.to_string();
    for (args, bad) in [
        (vec!["read", "x", "--wait", "-1"], "negative"),
        (
            vec!["write", "x", "/dev/null", "--wait", "NaN"],
            "not a number",
        ),
        (vec!["attach", id.as_str(), "--hold", "-0.5"], "negative"),
        (
            vec!["attach", id.as_str(), "--hold", "soon"],
            "not a number",
        ),
    ] {
        svshm()
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(bad).and(predicate::str::contains("seconds")));
    }
}
