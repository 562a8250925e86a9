//! Trust: squatting by another user, modes wider than asked, corrupt headers
//! and cursors, a second writer, a kind mismatch, and timeouts that clean up.

mod common;

use common::*;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;
use svshm::{CreateOptions, Key, Segment};
use svshm_channel::{
    Endpoint, Error, Options, Receiver, RecvTimeoutError, Sender, StreamReader, StreamWriter,
    TryRecvError, TrySendError,
};

fn quick() -> Options {
    Options::new().timeout(Some(Duration::from_secs(20)))
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    if role == "squat" {
        // Runs as uid 65534: pre-create the victim's key, world-writable.
        let key: Key = std::env::var("KEY").unwrap().parse().unwrap();
        let seg = CreateOptions::new(1 << 16)
            .key(key)
            .mode(0o666)
            .create()
            .unwrap();
        println!("ID {}", seg.id());
    }
}

#[test]
fn foreign_owned_segment_under_our_key_is_refused() {
    if let Some(why) = svshm_testkit::nobody_unavailable_for_this_test() {
        eprintln!("skipped: {why}");
        return;
    }
    let name = unique("squat");
    let key = svshm_channel::channel_key(&name);
    let mut cmd = svshm_testkit::this_test_as_nobody();
    cmd.args(child_args("child"))
        .env(ROLE, "squat")
        .env("KEY", key.to_string())
        .stdout(Stdio::piped());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let id: i32 = text
        .lines()
        .find_map(|l| l.strip_prefix("ID "))
        .unwrap()
        .parse()
        .unwrap();
    let _guard = Segment::from_id(id).remove_on_drop();
    for reader in [false, true] {
        let err = if reader {
            StreamReader::connect(&Endpoint::name(&name), &quick())
                .err()
                .unwrap()
        } else {
            StreamWriter::connect(&Endpoint::name(&name), &quick())
                .err()
                .unwrap()
        };
        assert!(matches!(err, Error::Foreign { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("uid 65534"), "{msg}");
        assert!(msg.contains(&format!("segment {id}")), "{msg}");
    }
    // Nothing of the squatter's was touched.
    let info = Segment::from_id(id).stat().unwrap();
    assert_eq!(
        (info.uid, info.permissions(), info.attach_count),
        (65534, 0o666, 0)
    );
}

#[test]
fn segment_wider_than_asked_is_refused() {
    let name = unique("wide");
    let seg = CreateOptions::new(1 << 16)
        .key(svshm_channel::channel_key(&name))
        .mode(0o666)
        .create()
        .unwrap();
    let _guard = seg.remove_on_drop();
    let err = StreamReader::connect(&Endpoint::name(&name), &quick())
        .err()
        .unwrap();
    assert!(matches!(err, Error::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("0666"), "{err}");
}

#[test]
fn foreign_bytes_under_our_key_are_not_a_channel() {
    let name = unique("garbage");
    let seg = CreateOptions::new(1 << 16)
        .key(svshm_channel::channel_key(&name))
        .create()
        .unwrap();
    let _guard = seg.remove_on_drop();
    seg.attach()
        .unwrap()
        .write_at(0, b"NOT A CHANNEL HEADER")
        .unwrap();
    let err = StreamWriter::connect(&Endpoint::name(&name), &quick())
        .err()
        .unwrap();
    assert!(matches!(err, Error::NotOurs { .. }), "{err}");
    assert!(err.to_string().contains("left untouched"), "{err}");
    // Still there: never remove what is not provably ours.
    assert!(seg.stat().is_ok());
}

#[test]
fn connect_timeout_removes_the_segment() {
    let name = unique("timeout");
    let key = svshm_channel::channel_key(&name);
    let err = StreamWriter::connect(
        &Endpoint::name(&name),
        &Options::new().timeout(Some(Duration::from_millis(200))),
    )
    .err()
    .unwrap();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("reader"), "{err}");
    assert!(!svshm::proc_segments().unwrap().iter().any(|s| s.key == key));
}

#[test]
fn a_second_writer_is_refused_while_the_first_waits() {
    let name = unique("inuse");
    let n1 = name.clone();
    let first = std::thread::spawn(move || {
        let mut w = StreamWriter::connect(&Endpoint::name(&n1), &quick()).unwrap();
        w.write_all(b"first").unwrap();
        w.close().unwrap();
    });
    // Wait until the first writer's channel exists.
    let key = svshm_channel::channel_key(&name);
    while !svshm::proc_segments().unwrap().iter().any(|s| s.key == key) {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(20));
    let err = StreamWriter::connect(&Endpoint::name(&name), &quick())
        .err()
        .unwrap();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    let mut r = StreamReader::connect(&Endpoint::name(&name), &quick()).unwrap();
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "first");
    first.join().unwrap();
}

#[test]
fn kind_mismatch_is_an_error() {
    let name = unique("kind");
    let n1 = name.clone();
    let sender = std::thread::spawn(move || {
        // Times out: the stream reader below refuses to join.
        Sender::connect(
            &Endpoint::name(&n1),
            &Options::new().timeout(Some(Duration::from_millis(600))),
        )
        .err()
    });
    let key = svshm_channel::channel_key(&name);
    while !svshm::proc_segments().unwrap().iter().any(|s| s.key == key) {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(20));
    let err = StreamReader::connect(&Endpoint::name(&name), &quick())
        .err()
        .unwrap();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("message channel"), "{err}");
    assert!(matches!(
        sender.join().unwrap(),
        Some(Error::Timeout { .. })
    ));
}

/// Connects a stream in-process and returns both ends.
fn pair(name: &str) -> (StreamWriter, StreamReader) {
    let n1 = name.to_string();
    let t =
        std::thread::spawn(move || StreamReader::connect(&Endpoint::name(n1), &quick()).unwrap());
    let w = StreamWriter::connect(&Endpoint::name(name), &quick()).unwrap();
    (w, t.join().unwrap())
}

/// Offset of the `head` cursor in the header (see header.rs layout asserts).
const HEAD_OFFSET: usize = 384;

#[test]
fn hostile_cursor_is_reported_not_obeyed() {
    let (mut w, mut r) = pair(&unique("cursor"));
    w.write_all(b"abc").unwrap();
    // A third party (here: us, by id — Linux allows attaching after removal)
    // moves the writer's cursor far past the ring.
    let evil = Segment::from_id(r.segment_id()).attach().unwrap();
    evil.write_at(HEAD_OFFSET, &(1u64 << 40).to_le_bytes())
        .unwrap();
    let mut buf = [0u8; 16];
    let err = r.read(&mut buf).unwrap_err();
    let inner = err.into_inner().unwrap().downcast::<Error>().unwrap();
    assert!(matches!(*inner, Error::Corrupt { .. }), "{inner}");
}

#[test]
fn hostile_frame_is_reported_not_obeyed() {
    let name = unique("frame");
    let n1 = name.clone();
    // Both sides ask for the same maximum: whichever creates decides it.
    let t = std::thread::spawn(move || {
        Receiver::connect(&Endpoint::name(n1), &quick().max_message(100)).unwrap()
    });
    let mut tx = Sender::connect(&Endpoint::name(&name), &quick().max_message(100)).unwrap();
    let mut rx = t.join().unwrap();
    tx.send(b"hello").unwrap();
    let evil = Segment::from_id(rx.segment_id()).attach().unwrap();
    // Rewrite the first frame's length (after its 8-byte tag, which stays
    // valid): 5000 bytes (over the 100 maximum) with a matching check word,
    // so only the bounds checks can catch it.
    let len = 5000u32;
    let mut h = len.to_le_bytes().to_vec();
    h.extend_from_slice(&(!len).to_le_bytes());
    evil.write_at(4096 + 8, &h).unwrap();
    let err = rx.recv().unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("maximum"), "{err}");
}

#[test]
fn oversized_message_is_refused_before_sending() {
    let name = unique("big");
    let n1 = name.clone();
    let t = std::thread::spawn(move || {
        Receiver::connect(&Endpoint::name(n1), &quick().max_message(64)).unwrap()
    });
    let mut tx = Sender::connect(&Endpoint::name(&name), &quick().max_message(64)).unwrap();
    let mut rx = t.join().unwrap();
    let err = tx.send(&[0; 65]).unwrap_err();
    assert!(
        matches!(err, Error::MessageTooLarge { len: 65, max: 64 }),
        "{err}"
    );
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    tx.send(&[1; 64]).unwrap();
    assert_eq!(rx.recv().unwrap(), Some(vec![1; 64]));
    // Fill the ring with try_send until Full, then drain.
    let mut sent = 0;
    loop {
        match tx.try_send(&[2; 64]) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full(m)) => {
                assert_eq!(m, &[2; 64], "Full gives the message back");
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent > 0);
    for _ in 0..sent {
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            vec![2; 64]
        );
    }
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(50)),
        Err(RecvTimeoutError::Timeout)
    ));
    tx.close().unwrap();
    assert!(matches!(rx.recv(), Ok(None)));
    assert!(matches!(rx.recv(), Ok(None)), "the end stays the end");
}

#[test]
fn kernel_attested_creator_is_reported() {
    let (w, r) = pair(&unique("creator"));
    let c = r.creator();
    assert_eq!(c.pid, std::process::id() as i32);
    assert_eq!(c.uid, svshm::euid());
    assert_eq!(c.segment_id, w.segment_id());
    let status = svshm_channel::inspect(w.segment_id()).unwrap().unwrap();
    assert_eq!(status.state(), "connected");
    assert!(status.writer.unwrap().alive && status.reader.unwrap().alive);
    let info = Segment::from_id(w.segment_id()).stat().unwrap();
    assert!(
        info.is_marked_for_destruction(),
        "both attached: marked for destruction"
    );
}
