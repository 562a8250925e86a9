//! Cross-process transfers: random write and read sizes over many wraps,
//! messages of random sizes, either side first.

mod common;

use common::*;
use std::io::{BufRead, Read, Write};
use std::process::Stdio;
use std::time::Duration;
use svshm_channel::{Endpoint, Options, Receiver, Sender, StreamReader, StreamWriter, Wait};

const TOTAL: u64 = 24 << 20;
const RING: usize = 4096;
const MAX_MSG: usize = 1000;
const MESSAGES: u64 = 30_000;

fn opts(wait: &str) -> Options {
    let w = match wait {
        "spin" => Wait::Spin,
        "block" => Wait::Block,
        _ => Wait::Adaptive,
    };
    Options::new()
        .capacity(RING)
        .timeout(Some(Duration::from_secs(60)))
        .wait(w)
        .max_message(MAX_MSG)
}

/// Writes TOTAL pattern bytes in random sizes, via write or chunks.
fn write_stream(name: &str, wait: &str, rng_start: u64) {
    let mut w = StreamWriter::connect(&Endpoint::name(name), &opts(wait)).unwrap();
    let mut rng = Rng(rng_start);
    let mut at = 0u64;
    let mut buf = vec![0u8; 3 * RING];
    while at < TOTAL {
        let pick = rng.below(8);
        if pick < 2 {
            // A chunk of an exact size (waits for that much room), or of
            // whatever is free now; filled in place across the wrap.
            let want = (TOTAL - at).min(1 + rng.below(RING as u64)) as usize;
            let mut chunk = if pick == 0 {
                w.write_chunk(want).unwrap()
            } else {
                w.write_chunk_upto(want).unwrap()
            };
            let (first, second) = chunk.as_mut_slices();
            fill_pattern(at, first);
            fill_pattern(at + first.len() as u64, second);
            let n = chunk.len();
            chunk.commit_all();
            at += n as u64;
        } else {
            let n = (1 + rng.below(buf.len() as u64)).min(TOTAL - at) as usize;
            fill_pattern(at, &mut buf[..n]);
            w.write_all(&buf[..n]).unwrap();
            at += n as u64;
        }
    }
    w.close().unwrap();
}

/// Reads to EOF in random sizes, via read, fill_buf/consume or chunks; checks
/// every byte.
fn read_stream(name: &str, wait: &str, rng_start: u64) -> u64 {
    let mut r = StreamReader::connect(&Endpoint::name(name), &opts(wait)).unwrap();
    let mut rng = Rng(rng_start);
    let mut at = 0u64;
    let mut buf = vec![0u8; 3 * RING];
    loop {
        let pick = rng.below(6);
        if pick == 0 {
            let chunk = r.read_chunk().unwrap();
            if chunk.is_empty() {
                break;
            }
            let (first, second) = chunk.as_slices();
            assert_eq!(check_pattern(at, first), None, "bad byte");
            assert_eq!(
                check_pattern(at + first.len() as u64, second),
                None,
                "bad byte"
            );
            let n = (1 + rng.below(chunk.len() as u64)) as usize;
            chunk.consume(n);
            at += n as u64;
        } else if pick == 1 {
            let data = r.fill_buf().unwrap();
            if data.is_empty() {
                break;
            }
            let n = data.len().min(1 + rng.below(RING as u64) as usize);
            assert_eq!(check_pattern(at, &data[..n]), None, "bad byte");
            r.consume(n);
            at += n as u64;
        } else {
            let n = 1 + rng.below(buf.len() as u64) as usize;
            let got = r.read(&mut buf[..n]).unwrap();
            if got == 0 {
                break;
            }
            assert_eq!(check_pattern(at, &buf[..got]), None, "bad byte");
            at += got as u64;
        }
    }
    at
}

fn send_messages(name: &str, wait: &str) {
    let mut tx = Sender::connect(&Endpoint::name(name), &opts(wait)).unwrap();
    for n in 0..MESSAGES {
        let m = message(n, MAX_MSG);
        if n % 5 == 0 {
            let mut loan = tx.loan(m.len()).unwrap();
            loan.copy_from_slice(&m);
            loan.send();
        } else {
            tx.send(&m).unwrap();
        }
    }
    tx.close().unwrap();
}

fn recv_messages(name: &str, wait: &str) -> u64 {
    let mut rx = Receiver::connect(&Endpoint::name(name), &opts(wait)).unwrap();
    let mut n = 0u64;
    let mut buf = Vec::new();
    loop {
        let r = match n % 3 {
            0 => rx
                .recv()
                .map(|m| m.map(|m| assert_eq!(m, message(n, MAX_MSG), "message {n}"))),
            1 => rx
                .recv_into(&mut buf)
                .map(|l| l.map(|_| assert_eq!(buf, message(n, MAX_MSG), "message {n}"))),
            _ => rx
                .recv_ref()
                .map(|m| m.map(|m| assert_eq!(&m[..], &message(n, MAX_MSG)[..], "message {n}"))),
        };
        match r {
            Ok(Some(())) => n += 1,
            Ok(None) => break,
            Err(e) => panic!("recv: {e}"),
        }
    }
    n
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    let name = std::env::var("NAME").unwrap();
    let wait = std::env::var("WAIT").unwrap();
    let rng_start: u64 = std::env::var("RNG_START").unwrap().parse().unwrap();
    match role.as_str() {
        "writer" => write_stream(&name, &wait, rng_start),
        "reader" => println!("READ {}", read_stream(&name, &wait, rng_start)),
        "sender" => send_messages(&name, &wait),
        "receiver" => println!("RECEIVED {}", recv_messages(&name, &wait)),
        r => panic!("unknown role {r}"),
    }
}

fn env(name: &str, wait: &str, rng_start: u64) -> Vec<(&'static str, String)> {
    vec![
        ("NAME", name.to_string()),
        ("WAIT", wait.to_string()),
        ("RNG_START", rng_start.to_string()),
    ]
}

fn stream_between_processes(wait: &str, parent_writes: bool) {
    let name = unique(&format!("stream-{wait}-{parent_writes}"));
    let rng_start = rand_u64();
    eprintln!("rng start {rng_start}");
    if parent_writes {
        let c = spawn(
            "child",
            "reader",
            &env(&name, wait, rng_start),
            Stdio::piped(),
        );
        write_stream(&name, wait, rng_start);
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l == format!("READ {TOTAL}"))
        );
    } else {
        let mut c = spawn(
            "child",
            "writer",
            &env(&name, wait, rng_start),
            Stdio::null(),
        );
        assert_eq!(read_stream(&name, wait, rng_start), TOTAL);
        assert!(wait_child(&mut c, Duration::from_secs(300)).success());
    }
}

#[test]
fn stream_adaptive_parent_writes() {
    stream_between_processes("adaptive", true);
}

#[test]
fn stream_block_parent_reads() {
    stream_between_processes("block", false);
}

#[test]
fn stream_spin_parent_reads() {
    stream_between_processes("spin", false);
}

#[test]
fn messages_between_processes() {
    for (wait, parent_sends) in [("adaptive", true), ("block", false)] {
        let name = unique(&format!("msg-{wait}"));
        if parent_sends {
            let c = spawn("child", "receiver", &env(&name, wait, 0), Stdio::piped());
            send_messages(&name, wait);
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            assert!(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|l| l == format!("RECEIVED {MESSAGES}"))
            );
        } else {
            let mut c = spawn("child", "sender", &env(&name, wait, 0), Stdio::null());
            assert_eq!(recv_messages(&name, wait), MESSAGES);
            assert!(wait_child(&mut c, Duration::from_secs(300)).success());
        }
    }
}

#[test]
fn either_side_first() {
    for reader_first in [true, false] {
        let name = unique(&format!("first-{reader_first}"));
        let rng_start = rand_u64();
        let first = if reader_first { "reader" } else { "writer" };
        let mut c = spawn(
            "child",
            first,
            &env(&name, "adaptive", rng_start),
            Stdio::piped(),
        );
        // Let the child create the channel and wait for us.
        std::thread::sleep(Duration::from_millis(300));
        if reader_first {
            write_stream(&name, "adaptive", rng_start);
        } else {
            assert_eq!(read_stream(&name, "adaptive", rng_start), TOTAL);
        }
        assert!(wait_child(&mut c, Duration::from_secs(300)).success());
    }
}

#[test]
fn private_segment_by_id() {
    // The creator makes an IPC_PRIVATE channel, learns its id before the
    // peer comes (`open`), passes it on, then waits for the peer.
    let pending = StreamWriter::open(
        &Endpoint::private(),
        &Options::new().timeout(Some(Duration::from_secs(30))),
    )
    .unwrap();
    let id = pending.segment_id();
    let t = std::thread::spawn(move || {
        let mut r = StreamReader::connect(&Endpoint::id(id), &Options::new()).unwrap();
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    });
    let mut w = pending.wait().unwrap();
    w.write_all(b"private hello").unwrap();
    w.close().unwrap();
    assert_eq!(t.join().unwrap(), b"private hello");
    assert!(segment_gone(id));
}

#[test]
fn every_end_opens_before_its_peer_and_a_dropped_pending_end_leaves_nothing() {
    let opts = Options::new().timeout(Some(Duration::from_secs(30)));
    // A receiver created first, its sender joining by id.
    let pending = svshm_channel::Receiver::open(&Endpoint::private(), &opts).unwrap();
    let id = pending.segment_id();
    let o2 = opts.clone();
    let t = std::thread::spawn(move || {
        let mut tx = svshm_channel::Sender::connect(&Endpoint::id(id), &o2).unwrap();
        tx.send(b"by id").unwrap();
        tx.close().unwrap();
    });
    let mut rx = pending.wait().unwrap();
    assert_eq!(rx.recv().unwrap().unwrap(), b"by id");
    assert!(rx.recv().unwrap().is_none());
    t.join().unwrap();
    // A sender and a stream reader opened and dropped without their peer.
    let p = svshm_channel::Sender::open(&Endpoint::private(), &opts).unwrap();
    let id = p.segment_id();
    drop(p);
    assert!(
        segment_gone(id),
        "a dropped pending sender removes its segment"
    );
    let p = StreamReader::open(&Endpoint::private(), &opts).unwrap();
    let id = p.segment_id();
    drop(p);
    assert!(
        segment_gone(id),
        "a dropped pending reader removes its segment"
    );
    // A pending end whose peer never comes times out on wait.
    let p = StreamReader::open(
        &Endpoint::private(),
        &Options::new().timeout(Some(Duration::from_millis(100))),
    )
    .unwrap();
    let id = p.segment_id();
    assert!(matches!(
        p.wait(),
        Err(svshm_channel::Error::Timeout { .. })
    ));
    assert!(segment_gone(id));
}
