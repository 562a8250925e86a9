//! Typed messages and the crossbeam-shaped message API: round trips, a
//! hostile or mismatched sender's bytes (an error, never an invalid value),
//! typed loans, postcard, and the non-blocking calls that give the message
//! back.

mod common;

use common::unique;
use std::time::Duration;
use svshm_channel::{
    Endpoint, Error, Options, Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError,
};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, TryFromBytes};

fn opts() -> Options {
    Options::new()
        .capacity(4096)
        .max_message(256)
        .timeout(Some(Duration::from_secs(20)))
}

/// Connects a sender of `S` and a receiver of `R` on one fresh channel.
fn pair<S, R>(tag: &str) -> (Sender<S>, Receiver<R>)
where
    S: ?Sized + svshm_channel::Encode,
    R: ?Sized + svshm_channel::Decode + 'static,
{
    let name = unique(tag);
    let n2 = name.clone();
    let t = std::thread::spawn(move || {
        Receiver::<R>::connect_typed(&Endpoint::name(n2), &opts()).unwrap()
    });
    let tx = Sender::<S>::connect_typed(&Endpoint::name(name), &opts()).unwrap();
    (tx, t.join().unwrap())
}

#[derive(IntoBytes, TryFromBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
#[repr(u8)]
enum Mode {
    Off = 0,
    On = 1,
}

/// 8 bytes, no padding; `mode` and `flag` have invalid bit patterns.
#[derive(IntoBytes, TryFromBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
#[repr(C)]
struct Command {
    id: u32,
    mode: Mode,
    flag: bool,
    spare: [u8; 2],
}

fn command(id: u32) -> Command {
    Command {
        id,
        mode: if id % 2 == 0 { Mode::Off } else { Mode::On },
        flag: id % 3 == 0,
        spare: [0; 2],
    }
}

#[test]
fn typed_messages_round_trip_and_end_with_none() {
    let (mut tx, rx) = pair::<Command, Command>("typed-rt");
    for id in 0..100 {
        tx.send(&command(id)).unwrap();
    }
    tx.close().unwrap();
    let got: Vec<Command> = rx.into_iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(got, (0..100).map(command).collect::<Vec<_>>());
}

/// A sender of raw bytes on a typed channel (another program, or a hostile
/// one): bytes that are no `Command` are an error naming why, the message is
/// skipped, and the channel goes on.
#[test]
fn invalid_bytes_are_an_error_never_a_value() {
    let (mut tx, mut rx) = pair::<[u8], Command>("typed-hostile");
    let mut valid = command(7).as_bytes().to_vec();
    tx.send(&valid).unwrap();
    valid[4] = 2; // no Mode has discriminant 2
    tx.send(&valid).unwrap();
    valid[4] = 1;
    valid[5] = 9; // a bool is 0 or 1
    tx.send(&valid).unwrap();
    tx.send(&[1, 2, 3]).unwrap(); // too short
    tx.send(&[0; 16]).unwrap(); // too long
    tx.send(command(8).as_bytes()).unwrap();
    tx.close().unwrap();

    assert_eq!(rx.recv().unwrap(), Some(command(7)));
    for what in ["a bad enum", "a bad bool", "too short", "too long"] {
        match rx.recv() {
            Err(Error::BadMessage { detail, .. }) => {
                assert!(detail.contains("Command"), "{what}: {detail}")
            }
            other => panic!("{what}: expected BadMessage, got {other:?}"),
        }
    }
    assert_eq!(rx.recv().unwrap(), Some(command(8)));
    assert_eq!(rx.recv().unwrap(), None);
}

/// Iteration yields an error once and then ends: it never spins on a broken
/// channel.
#[test]
fn iteration_ends_after_an_error() {
    let (mut tx, mut rx) = pair::<[u8], Command>("typed-iter-err");
    tx.send(command(1).as_bytes()).unwrap();
    tx.send(&[0xFF; 8]).unwrap();
    tx.send(command(2).as_bytes()).unwrap();
    tx.close().unwrap();
    let items: Vec<_> = rx.iter().collect();
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(*items[0].as_ref().unwrap(), command(1));
    assert!(matches!(items[1], Err(Error::BadMessage { .. })));
    // The channel goes on after the iterator stopped.
    assert_eq!(rx.recv().unwrap(), Some(command(2)));
    assert!(rx.iter().next().is_none(), "the end: the iterator is empty");
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, PartialEq)]
#[repr(C)]
struct Sample {
    seq: u64,
    values: [f32; 6],
}

#[test]
fn typed_loans_are_zeroed_and_sent_in_place() {
    let (mut tx, mut rx) = pair::<Sample, Sample>("typed-loan");
    for seq in 0..50u64 {
        let mut loan = tx.loan_typed().unwrap();
        assert_eq!(loan.seq, 0, "a loan starts zeroed");
        assert_eq!(loan.values, [0.0; 6]);
        loan.seq = seq;
        loan.values[seq as usize % 6] = seq as f32;
        loan.send();
        let got = rx.recv().unwrap().unwrap();
        assert_eq!(got.seq, seq);
        assert_eq!(got.values[seq as usize % 6], seq as f32);
    }
    // A loan dropped without sending sends nothing.
    {
        let _unsent = tx.loan_typed().unwrap();
    }
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    tx.close().unwrap();
    assert_eq!(rx.recv().unwrap(), None);
}

#[test]
fn try_send_gives_the_message_back_and_queries_agree() {
    let (mut tx, mut rx) = pair::<[u8], [u8]>("typed-full");
    assert!(tx.is_empty() && rx.is_empty());
    assert!(!tx.is_peer_closed() && !rx.is_peer_closed());
    // A 256-byte frame (a 16-byte header): with the 8 bytes a send keeps free
    // for the next frame's tag, 15 fit in the 4 KiB ring.
    let msg = [7u8; 240];
    let mut sent = 0;
    let back = loop {
        match tx.try_send(&msg) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full(m)) => break m,
            Err(e) => panic!("try_send: {e}"),
        }
    };
    assert_eq!(back, &msg[..], "Full gives the message back");
    assert_eq!(sent, 15);
    assert!(!tx.is_full() && !rx.is_full());
    // The 256 bytes left take 15 empty messages (16-byte frames), then the
    // ring has no room even for an empty one.
    let mut empties = 0;
    while tx.try_send(b"").is_ok() {
        empties += 1;
    }
    assert_eq!(empties, 15);
    assert!(tx.is_full() && rx.is_full());
    assert_eq!(tx.len(), 4080);
    assert_eq!(rx.len(), 4080);
    let r = tx.send_timeout(&msg, Duration::from_millis(30));
    assert!(matches!(r, Err(ref e) if e.is_timeout()), "{r:?}");
    assert_eq!(r.unwrap_err().into_inner(), &msg[..]);

    assert_eq!(rx.try_iter().count(), 30);
    assert!(rx.is_empty());
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    ));
    rx.close();
    assert!(tx.is_peer_closed());
    match tx.try_send(b"anyone?") {
        Err(TrySendError::Disconnected(m)) => assert_eq!(m, b"anyone?"),
        other => panic!("after the receiver closed: {other:?}"),
    }
}

#[test]
fn the_end_is_none_forever_and_the_receiver_sees_the_close() {
    let (mut tx, mut rx) = pair::<[u8], [u8]>("typed-end");
    tx.send(b"last").unwrap();
    tx.close().unwrap();
    assert!(rx.is_peer_closed(), "closed, with a message still waiting");
    assert_eq!(rx.len(), 32);
    let mut buf = Vec::new();
    assert_eq!(rx.recv_into(&mut buf).unwrap(), Some(4));
    assert_eq!(buf, b"last");
    for _ in 0..3 {
        assert_eq!(rx.recv().unwrap(), None);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
        assert!(matches!(
            rx.recv_deadline(std::time::Instant::now()),
            Err(RecvTimeoutError::Disconnected)
        ));
        assert!(rx.recv_ref().unwrap().is_none());
    }
}

#[test]
fn text_messages_are_checked_utf8() {
    let (mut tx, mut rx) = pair::<[u8], str>("typed-text");
    tx.send("grüße".as_bytes()).unwrap();
    tx.send(&[0x66, 0x6f, 0xff]).unwrap(); // not UTF-8
    tx.send(b"").unwrap();
    tx.close().unwrap();
    assert_eq!(rx.recv().unwrap().as_deref(), Some("grüße"));
    assert!(matches!(rx.recv(), Err(Error::BadMessage { .. })));
    assert_eq!(rx.recv().unwrap().as_deref(), Some(""));
    assert_eq!(rx.recv().unwrap(), None);

    let (mut tx, rx) = pair::<str, str>("typed-text-2");
    for line in ["one", "two", "three"] {
        tx.send(line).unwrap();
    }
    tx.close().unwrap();
    let got: Vec<String> = rx.into_iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(got, ["one", "two", "three"]);
}

/// An aborted sender is an error after its messages, for every receive call.
#[test]
fn an_abort_is_an_error_not_the_end() {
    let (mut tx, mut rx) = pair::<[u8], [u8]>("typed-abort");
    tx.send(b"partial").unwrap();
    tx.abort();
    assert_eq!(rx.recv().unwrap().unwrap(), b"partial");
    assert!(matches!(
        rx.try_recv(),
        Err(TryRecvError::Failed(Error::Aborted { .. }))
    ));
    assert!(rx.recv().unwrap_err().is_aborted());
}

#[cfg(feature = "serde")]
mod postcard {
    use super::*;
    use svshm_channel::Postcard;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    enum Job {
        Copy { from: String, to: String },
        Delete(Vec<String>),
        Stop,
    }

    #[test]
    fn serde_types_round_trip() {
        let jobs = vec![
            Job::Copy {
                from: "/a".into(),
                to: "/b".into(),
            },
            Job::Delete(vec!["x".into(), "y".into()]),
            Job::Stop,
        ];
        let (mut tx, rx) = pair::<Postcard<Job>, Postcard<Job>>("typed-postcard");
        for j in &jobs {
            tx.send(j).unwrap();
        }
        tx.close().unwrap();
        let got: Vec<Job> = rx.into_iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(got, jobs);
    }

    #[test]
    fn garbage_is_a_bad_message() {
        let (mut tx, mut rx) = pair::<[u8], Postcard<Job>>("typed-postcard-bad");
        tx.send(&[9, 9, 9]).unwrap(); // no variant 9
        tx.send(&[2, 0]).unwrap(); // Stop, then a stray byte
        tx.close().unwrap();
        assert!(matches!(rx.recv(), Err(Error::BadMessage { .. })));
        assert!(matches!(rx.recv(), Err(Error::BadMessage { .. })));
        assert_eq!(rx.recv().unwrap(), None);
    }
}
