//! Regression tests from review: rendezvous races and leaks.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};
use svshm::{CreateOptions, Key, Segment};
use svshm_channel::{Endpoint, Error, Options, Receiver, Sender, StreamWriter};

#[test]
fn child() {
    let Some(role) = role() else { return };
    if role == "create-zeroed" {
        // What a creator killed between shmget and write_fresh leaves behind:
        // a zeroed, channel-sized segment with the "initialising" mode mark
        // (0600 | owner execute, see rendezvous::INIT_MARK).
        let name = std::env::var("NAME").unwrap();
        let seg = CreateOptions::new(4096 + (1 << 20))
            .key(svshm_channel::channel_key(&name))
            .mode(0o700)
            .create()
            .unwrap();
        println!("ID {}", seg.id());
    }
}

fn wait_for_key(key: Key) -> i32 {
    let t0 = Instant::now();
    loop {
        if let Some(i) = svshm::info::public_info_by_key(key) {
            return i.id;
        }
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// rendezvous.rs:391-399 (read_slot accepts SLOT_CLOSED) + rendezvous.rs:373-387
/// (Link::drop of a claimed link marks only the slot, never the ring's closed
/// flag): a joiner that attached before a timed-out creator's IPC_RMID
/// "connects" to an endpoint that gave up, then waits forever (the creator's
/// process is alive). Deterministic here by keeping the segment alive with a
/// third attachment and joining by id; by key the same happens when the
/// joiner's shmget/shmat falls between the creator's deadline and its RMID.
#[test]
fn joiner_does_not_connect_to_a_creator_that_timed_out() {
    let name = unique("rv-gaveup");
    let key = svshm_channel::channel_key(&name);
    let n2 = name.clone();
    let creator = std::thread::spawn(move || {
        Sender::connect(
            &Endpoint::name(n2),
            &Options::new().timeout(Some(Duration::from_millis(300))),
        )
        .map(|_| ())
    });
    let id = wait_for_key(key);
    let hold = Segment::from_id(id).attach().unwrap();
    let r = creator.join().unwrap();
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    let rx = Receiver::connect(
        &Endpoint::id(id),
        &Options::new().timeout(Some(Duration::from_secs(1))),
    );
    drop(hold);
    match rx {
        Err(e) => eprintln!("refused, fine: {e}"),
        Ok(mut rx) => {
            // recv() would block forever here; use a bound to show it.
            let r = rx.recv_timeout(Duration::from_millis(500));
            panic!(
                "receiver connected to a sender that had already returned Timeout; \
                 recv_timeout gives {r:?} (recv() would hang forever)"
            );
        }
    }
}

/// rendezvous.rs:584-592 and inspect.rs:111-113: a creator that dies between
/// shmget and write_fresh (rendezvous.rs:425-479: shmat + IPC_STAT in between;
/// any fatal signal) leaves a zeroed segment under the key. connect refuses it
/// with Mismatch forever and `is_stale`/`svshm gc` never reclaim it: the name is
/// dead until someone runs ipcrm by hand.
#[test]
fn zeroed_segment_of_a_dead_creator_is_reclaimable() {
    let name = unique("rv-zeroed");
    let mut c = spawn(
        "child",
        "create-zeroed",
        &[("NAME", name.clone())],
        Stdio::piped(),
    );
    let status = wait_child(&mut c, Duration::from_secs(30));
    assert!(status.success());
    let id = svshm::info::public_info_by_key(svshm_channel::channel_key(&name))
        .unwrap()
        .id;
    let _cleanup = Segment::from_id(id).remove_on_drop();
    let info = Segment::from_id(id).stat().unwrap();
    let stale = svshm_channel::judge_record(&info).is_abandoned();
    let r = StreamWriter::connect(
        &Endpoint::name(&name),
        &Options::new().timeout(Some(Duration::from_millis(300))),
    );
    let connect = match &r {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("{e}"),
    };
    assert!(
        stale || matches!(r, Err(Error::Timeout { .. })),
        "leftover of a dead creator: is_stale = {stale}, connect: {connect}"
    );
}
