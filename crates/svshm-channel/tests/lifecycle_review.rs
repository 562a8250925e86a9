//! Lifecycle cases found in review of the process-watch design: a peer that
//! execs, a close after the channel broke, a forged end of an empty stream,
//! a segment that stays empty under a live creator, and the owner's key.

mod common;

use common::*;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;
use svshm::{CreateOptions, Segment};
use svshm_channel::{Endpoint, Error, Options, StreamReader, StreamWriter};

fn opts() -> Options {
    Options::new()
        .capacity(1 << 16)
        .timeout(Some(Duration::from_secs(20)))
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    let name = std::env::var("NAME").unwrap();
    if role == "write-then-exec" {
        let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts()).unwrap();
        w.write_all(b"before exec").unwrap();
        println!("WROTE");
        std::io::stdout().flush().unwrap();
        // exec(2) unmaps the segment without running any destructor: the
        // process lives on, the writer is gone without closing.
        let e =
            std::os::unix::process::CommandExt::exec(std::process::Command::new("sleep").arg("30"));
        panic!("exec failed: {e}");
    }
}

/// A writer process that calls exec(2) leaves its channel without closing,
/// while its pid stays alive: the reader gets PeerDied after the data (and
/// while the exec'd process still runs), not an endless wait.
#[test]
fn a_writer_that_execs_is_noticed_while_its_process_lives_on() {
    let name = unique("rv-exec");
    let mut c = spawn(
        "child",
        "write-then-exec",
        &[("NAME", name.clone())],
        Stdio::null(),
    );
    let mut r = StreamReader::connect(&Endpoint::name(&name), &opts()).unwrap();
    let mut got = Vec::new();
    let err = r
        .read_to_end(&mut got)
        .expect_err("the writer never closed");
    let inner = err.into_inner().unwrap().downcast::<Error>().unwrap();
    assert!(inner.is_peer_died(), "{inner}");
    assert_eq!(got, b"before exec");
    assert!(
        c.try_wait().unwrap().is_none(),
        "the exec'd process was still meant to be running"
    );
    sigkill(&c);
    c.wait().unwrap();
}

/// A write that failed because the channel broke, then `close()`: the close
/// fails and the end is not clean.
#[test]
fn close_after_a_failed_write_is_an_error() {
    let name = unique("rv-broken");
    let n2 = name.clone();
    let reader = std::thread::spawn(move || {
        let mut r = StreamReader::connect(&Endpoint::name(n2), &opts()).unwrap();
        let mut b = [0u8; 4];
        r.read_exact(&mut b).unwrap();
        // Leaves with data unread: the writer's next writes fail.
    });
    let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts()).unwrap();
    w.write_all(b"abcd").unwrap();
    reader.join().unwrap();
    let chunk = vec![7u8; 1 << 16];
    let err = loop {
        if let Err(e) = w.write_all(&chunk) {
            break e;
        }
    };
    assert!(err.to_string().contains("closed"), "{err}");
    let closed = w.close();
    assert!(closed.is_err(), "close after a failed write succeeded");
}

/// A third process sets the writer's closed flag on a stream with nothing
/// written yet: the reader must not take the empty stream for a clean end.
#[test]
fn a_forged_end_of_an_empty_stream_is_not_a_clean_end() {
    let name = unique("rv-forge-empty");
    let n2 = name.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let w = StreamWriter::connect(&Endpoint::name(n2), &opts()).unwrap();
        tx.send(w.segment_id()).unwrap();
        // Alive and silent until the reader is done.
        std::thread::sleep(Duration::from_millis(500));
        w.abort();
    });
    let mut r = StreamReader::connect(&Endpoint::name(&name), &opts()).unwrap();
    let id = rx.recv().unwrap();
    // The scribbler: writer_closed = CLOSED (offset 896), nothing else.
    Segment::from_id(id)
        .attach()
        .unwrap()
        .write_at(896, &1u32.to_le_bytes())
        .unwrap();
    let mut got = Vec::new();
    let res = r.read_to_end(&mut got);
    assert!(res.is_err(), "a forged flag made an empty clean end");
    writer.join().unwrap();
}

/// A segment under a channel's key whose pages were written but whose header
/// stays empty, its creator alive: connecting is refused after a bounded
/// look, naming the segment, which is left intact.
#[test]
fn a_segment_that_stays_headerless_under_a_live_creator_is_refused() {
    let name = unique("rv-headerless");
    let seg = CreateOptions::new(4096 + 65536)
        .key(svshm_channel::channel_key(&name))
        .mode(0o700)
        .create()
        .unwrap();
    let _rm = seg.remove_on_drop();
    // Written (pages resident), first page zero, data further on.
    seg.attach()
        .unwrap()
        .write_at(8192, b"the user's data")
        .unwrap();
    let err = StreamReader::connect(&Endpoint::name(&name), &opts())
        .err()
        .expect("a headerless segment was joined");
    assert!(matches!(err, Error::NotOurs { .. }), "{err}");
    assert!(err.to_string().contains(&seg.id().to_string()), "{err}");
    let mut b = [0u8; 15];
    seg.attach_read_only()
        .unwrap()
        .read_at(8192, &mut b)
        .unwrap();
    assert_eq!(&b, b"the user's data");
}

/// A named channel between two users lives under its owner's key.
#[test]
fn a_named_channel_for_another_owner_uses_the_owners_key() {
    let ep = Endpoint::name("shared-logs");
    assert_eq!(
        ep.sysv_key(&Options::new().owner(4242)).unwrap(),
        Some(svshm_channel::channel_key_for_uid("shared-logs", 4242))
    );
    assert_eq!(
        ep.sysv_key(&Options::new()).unwrap(),
        Some(svshm_channel::channel_key("shared-logs"))
    );
}
