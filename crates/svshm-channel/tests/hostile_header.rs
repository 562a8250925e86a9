//! Regression tests from review: a hostile creator that hand-crafts a header the joiner accepts.
//! A hostile peer may make us return an error, never panic.

mod common;

use common::*;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;
use svshm::process::ProcessId;
use svshm::{Attachment, CreateOptions, RemoveOnDrop};
use svshm_channel::{Endpoint, Error, Options, Sender, StreamWriter};

const HDR: usize = 4096;
const CAP: u64 = 4096;

/// Creates a READY channel segment under `name` whose reader slot is held by
/// this (live) process, as a hostile reader-creator would.
fn hostile_reader_creator(name: &str, kind: u32, max_message: u64) -> (RemoveOnDrop, Attachment) {
    let seg = CreateOptions::new(HDR + CAP as usize)
        .key(svshm_channel::channel_key(name))
        .create()
        .unwrap();
    let guard = seg.remove_on_drop();
    let att = seg.attach().unwrap();
    let me = ProcessId::current();
    let w = |off: usize, b: &[u8]| att.write_at(off, b).unwrap();
    w(0, b"SVSHMCH\x01");
    w(8, &1u32.to_le_bytes()); // version
    w(12, &kind.to_le_bytes());
    w(24, &CAP.to_le_bytes());
    w(32, &max_message.to_le_bytes());
    w(40, &(HDR as u64).to_le_bytes());
    // reader slot: ATTACHED, our pid and start time
    w(256 + 4, &(me.pid as u32).to_le_bytes());
    w(256 + 8, &me.start_time.to_le_bytes());
    w(256, &2u32.to_le_bytes());
    w(16, &1u32.to_le_bytes()); // state READY
    (guard, att)
}

fn opts() -> Options {
    Options::new().timeout(Some(Duration::from_secs(5)))
}

/// header.rs:277 computes `frame_len(max_message)` = 8 + div_ceil(8)*8 on an
/// unvalidated u64: overflow -> panic (debug) / wraps to 8 and is accepted
/// (release).
#[test]
fn huge_max_message_in_header_is_an_error_not_a_panic() {
    let name = unique("rv-maxmsg");
    let (_guard, _att) = hostile_reader_creator(&name, 2, u64::MAX);
    let r = catch_unwind(AssertUnwindSafe(|| {
        Sender::connect(&Endpoint::name(&name), &opts())
    }));
    match r {
        Err(p) => panic!(
            "joiner panicked on a hostile header: {:?}",
            p.downcast_ref::<String>()
                .map(String::as_str)
                .or(p.downcast_ref::<&str>().copied())
        ),
        Ok(Ok(tx)) => panic!(
            "joiner accepted max_message = u64::MAX (reports max_message {})",
            tx.max_message()
        ),
        Ok(Err(e)) => assert!(matches!(e, Error::Mismatch { .. }), "{e}"),
    }
}

/// ring.rs:315-337 accepts any consistent head/tail; `head += n`
/// (ring.rs:403) then overflows: panic in debug, wrap + bogus Corrupt in release.
#[test]
fn cursors_near_u64_max_are_an_error_not_a_panic() {
    let name = unique("rv-cursor");
    let (_guard, att) = hostile_reader_creator(&name, 1, 0);
    let start = u64::MAX - 15;
    att.write_at(384, &start.to_le_bytes()).unwrap(); // head
    att.write_at(512, &start.to_le_bytes()).unwrap(); // tail
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts())?;
        w.write_all(&[7u8; 64])
            .map_err(|e| Error::Invalid(format!("write: {e}")))?;
        Ok::<_, Error>(())
    }));
    match r {
        Err(p) => panic!(
            "writer panicked on hostile cursors: {:?}",
            p.downcast_ref::<String>()
                .map(String::as_str)
                .or(p.downcast_ref::<&str>().copied())
        ),
        Ok(res) => eprintln!("result (error expected, no panic): {res:?}"),
    }
}

/// message.rs:187-191: with an initial head that is not 8-aligned (accepted by
/// ring.rs:325), `to_end` can be < FRAME_HEADER and `advance(to_end - 8)`
/// underflows: panic in debug, a wrapped head in release.
#[test]
fn unaligned_initial_cursor_is_an_error_not_a_panic() {
    let name = unique("rv-unaligned");
    let (_guard, att) = hostile_reader_creator(&name, 2, 1000);
    let start = CAP - 3;
    att.write_at(384, &start.to_le_bytes()).unwrap(); // head
    att.write_at(512, &start.to_le_bytes()).unwrap(); // tail
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut tx = Sender::connect(&Endpoint::name(&name), &opts())?;
        tx.send(&[7u8; 100])
    }));
    match r {
        Err(p) => panic!(
            "sender panicked on a hostile initial cursor: {:?}",
            p.downcast_ref::<String>()
                .map(String::as_str)
                .or(p.downcast_ref::<&str>().copied())
        ),
        Ok(res) => eprintln!("result (error expected, no panic): {res:?}"),
    }
}
