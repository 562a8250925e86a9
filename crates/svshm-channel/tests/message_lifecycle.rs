//! Regression tests from review: message-channel API defects.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Error, Options, Receiver, Sender, TryRecvError};

fn pair(name: &str, opts: &Options) -> (Sender, Receiver) {
    let n2 = name.to_string();
    let o2 = opts.clone();
    let t = std::thread::spawn(move || Receiver::connect(&Endpoint::name(n2), &o2).unwrap());
    let tx = Sender::connect(&Endpoint::name(name), opts).unwrap();
    (tx, t.join().unwrap())
}

/// message.rs:382 + ring.rs:630: the receiver releases consumed frames only
/// once cap/8 accumulate, and only publishes eagerly when it *waits*. A
/// receiver that has received every message but is not blocked in recv leaves
/// the sender with a spurious `Full` (and a blocking `send` waits on it).
#[test]
fn try_send_is_not_full_when_every_message_was_received() {
    let opts = Options::new()
        .capacity(4096)
        .max_message(2032)
        .timeout(Some(Duration::from_secs(10)));
    let (mut tx, mut rx) = pair(&unique("rv-lazy"), &opts);
    assert_eq!(tx.capacity(), 4096);
    tx.send(&[1u8; 1992]).unwrap(); // frame 2016
    assert_eq!(rx.recv().unwrap().unwrap().len(), 1992); // >= cap/8: released
    tx.send(&[2u8; 92]).unwrap(); // frame 112, head at 2128
    assert_eq!(rx.recv().unwrap().unwrap().len(), 92); // 112 < cap/8: kept
    // The ring is empty: the receiver has taken everything. (A 2048-byte
    // frame does not fit in the 1968 bytes before the ring's end: the send
    // needs 4024 bytes free, a skip marker included.)
    let r = tx.try_send(&[3u8; 2032]);
    assert!(r.is_ok(), "try_send into an empty ring: {r:?}");
    assert_eq!(rx.recv().unwrap().unwrap().len(), 2032);
}

/// Receiver::close doc (message.rs:441): "the sender's next send fails with
/// Error::Closed". It does not while there is room (message.rs:173).
#[test]
fn send_after_receiver_closed_fails() {
    let opts = Options::new().timeout(Some(Duration::from_secs(10)));
    let (mut tx, rx) = pair(&unique("rv-rxclosed"), &opts);
    rx.close();
    let r = tx.send(b"into the void");
    assert!(
        matches!(r, Err(Error::Closed { .. })),
        "send after the receiver closed: {r:?}"
    );
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    if role == "send-one-and-die" {
        let name = std::env::var("NAME").unwrap();
        let mut tx = Sender::connect(
            &Endpoint::name(&name),
            &Options::new().timeout(Some(Duration::from_secs(10))),
        )
        .unwrap();
        tx.send(b"last words").unwrap();
        // Dies without closing (as after SIGKILL / abort).
        std::process::exit(0);
    }
}

/// message.rs:401-403 + ring.rs:251-256: try_recv uses a deadline of "now",
/// and block_on returns Timeout before it ever probes liveness, so a polling
/// receiver gets Empty forever from a dead sender, never PeerDied (same for
/// try_send / Full with a dead receiver).
#[test]
fn polling_try_recv_reports_a_dead_sender() {
    let name = unique("rv-tryrecv");
    let mut c = spawn(
        "child",
        "send-one-and-die",
        &[("NAME", name.clone())],
        Stdio::null(),
    );
    let mut rx = Receiver::connect(
        &Endpoint::name(&name),
        &Options::new().timeout(Some(Duration::from_secs(10))),
    )
    .unwrap();
    let status = wait_child(&mut c, Duration::from_secs(30));
    assert!(status.success());
    let t0 = Instant::now();
    let mut got = Vec::new();
    let last = loop {
        match rx.try_recv() {
            Ok(m) => got.push(m),
            Err(TryRecvError::Empty) if t0.elapsed() < Duration::from_secs(2) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => break e.into_error(),
        }
    };
    assert_eq!(got, vec![b"last words".to_vec()]);
    assert!(
        last.is_peer_died(),
        "sender died {:?} ago; try_recv still says {last:?}",
        t0.elapsed()
    );
}

/// `Sender::abort`: every message sent is delivered, then `Aborted` (not the
/// `Closed` of a clean end), so a receiver cannot take a cut-short sequence
/// for a whole one.
#[test]
fn abort_delivers_what_was_sent_then_aborted() {
    let opts = Options::new().timeout(Some(Duration::from_secs(10)));
    let (mut tx, mut rx) = pair(&unique("abort"), &opts);
    tx.send(b"one").unwrap();
    tx.send(b"two").unwrap();
    tx.abort();
    assert_eq!(rx.recv().unwrap().unwrap(), b"one");
    assert_eq!(rx.recv().unwrap().unwrap(), b"two");
    let e = rx.recv().unwrap_err();
    assert!(e.is_aborted(), "{e}");
    assert!(!e.is_peer_died());
}

/// A loan that wraps (a skip marker written before it) dropped unsent, then a
/// clean close: the marker stands on its own, so the receiver skips it and
/// gets the clean end, not a close that does not add up.
#[test]
fn dropped_loan_after_a_skip_marker_still_ends_cleanly() {
    let opts = Options::new()
        .capacity(4096)
        .max_message(1000)
        .timeout(Some(Duration::from_secs(10)));
    let (mut tx, mut rx) = pair(&unique("rv-loanwrap"), &opts);
    assert_eq!(tx.capacity(), 4096);
    tx.send(b"s").unwrap(); // frame 32
    for _ in 0..3 {
        tx.send(&[9u8; 1000]).unwrap(); // frames of 1024: head at 3104
    }
    assert_eq!(rx.recv().unwrap().unwrap(), b"s");
    for _ in 0..3 {
        assert_eq!(rx.recv().unwrap().unwrap().len(), 1000);
    }
    // 992 bytes before the end: a skip marker there, the loan at 0.
    {
        let _unsent = tx.loan(1000).unwrap();
    }
    tx.send(b"after").unwrap();
    assert_eq!(rx.recv().unwrap().unwrap(), b"after");
    // Again, then the close right after the dropped loan.
    for _ in 0..3 {
        tx.send(&[8u8; 1000]).unwrap();
    }
    for _ in 0..3 {
        assert_eq!(rx.recv().unwrap().unwrap().len(), 1000);
    }
    {
        let _unsent = tx.loan(1000).unwrap();
    }
    tx.close().unwrap();
    assert_eq!(rx.recv().unwrap(), None);
}
