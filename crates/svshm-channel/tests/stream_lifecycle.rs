//! Regression tests from review: byte-stream API defects.

mod common;

use common::*;
use std::io::Write;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;
use svshm_channel::{Endpoint, Error, Options, StreamReader, StreamWriter};

fn opts() -> Options {
    Options::new()
        .capacity(4096)
        .timeout(Some(Duration::from_secs(10)))
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    if role == "overrun" {
        let name = std::env::var("NAME").unwrap();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let n2 = name.clone();
        let reader = std::thread::spawn(move || {
            let r = StreamReader::connect(&Endpoint::name(n2), &opts()).unwrap();
            let _ = stop_rx.recv();
            drop(r);
        });
        let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts()).unwrap();
        // All safe API: take a chunk of the whole ring, then commit one byte
        // more than it lends. (Writing with io::Write while the chunk lives
        // does not compile: the chunk borrows the writer.)
        let cap = w.capacity();
        let chunk = w.write_chunk(cap).unwrap();
        println!("LENT {}", chunk.len());
        std::panic::set_hook(Box::new(|_| {})); // the panic below is the point
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| chunk.commit(cap + 1)));
        let _ = std::panic::take_hook();
        match r {
            Err(_) => println!("COMMIT REFUSED"),
            Ok(()) => println!("COMMIT ACCEPTED: head is now past tail + capacity"),
        }
        // The ring is as before: nothing was published.
        println!("LEN {}", w.len());
        stop_tx.send(()).unwrap();
        reader.join().unwrap();
    }
}

/// A chunk commits at most what it lends: committing more panics and
/// publishes nothing, so head can never pass tail + capacity from safe code.
#[test]
fn commit_beyond_the_chunk_cannot_overrun_the_ring() {
    let name = unique("rv-overrun");
    let mut c = spawn(
        "child",
        "overrun",
        &[("NAME", name.clone())],
        Stdio::piped(),
    );
    let status = wait_child(&mut c, Duration::from_secs(60));
    let mut out = String::new();
    std::io::Read::read_to_string(c.stdout.as_mut().unwrap(), &mut out).unwrap();
    eprintln!("child stdout:\n{out}\nchild status: {status}");
    assert!(
        status.success() && out.contains("COMMIT REFUSED") && out.contains("LEN 0"),
        "a commit beyond the chunk must be refused; child: {status}, {out}"
    );
}

/// StreamReader::close doc (stream.rs:325): "the writer's next write fails
/// with Error::Closed". A dead or closed reader gives the writer an error
/// like EPIPE. Actually the writer keeps writing into the void until the ring
/// is full (reader_closed is only checked while waiting, ring.rs:441).
#[test]
fn write_after_reader_closed_fails() {
    let name = unique("rv-epipe");
    let n2 = name.clone();
    let (closed_tx, closed_rx) = mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let r = StreamReader::connect(&Endpoint::name(n2), &opts()).unwrap();
        r.close();
        closed_tx.send(()).unwrap();
    });
    let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts()).unwrap();
    closed_rx.recv().unwrap();
    t.join().unwrap();
    let r = w.write_some(b"hello, is anyone there?");
    assert!(
        matches!(r, Err(Error::Closed { .. })),
        "write after the reader closed: {r:?}"
    );
}

/// stream.rs:199-203: Drop always closes cleanly, also while unwinding, so a
/// writer that panics half-way looks like a complete stream (Ok(0) EOF) to
/// the reader instead of an error.
#[test]
fn writer_panicking_mid_stream_is_not_a_clean_eof() {
    use std::io::Read;
    let name = unique("rv-panic");
    let n2 = name.clone();
    let t = std::thread::spawn(move || {
        let mut w = StreamWriter::connect(&Endpoint::name(n2), &opts()).unwrap();
        w.write_all(b"first half of a record ").unwrap();
        panic!("writer bug (expected panic in this test)");
    });
    let mut r = StreamReader::connect(&Endpoint::name(&name), &opts()).unwrap();
    let mut got = Vec::new();
    let res = r.read_to_end(&mut got);
    assert!(t.join().is_err());
    assert!(
        res.is_err(),
        "reader of a writer that panicked mid-stream got {res:?} (clean EOF) after {:?}",
        String::from_utf8_lossy(&got)
    );
}

/// Any timeout a caller can give is accepted: one an `Instant` cannot hold
/// means forever, never a panic ("overflow when adding duration to instant").
#[test]
fn timeouts_too_large_for_an_instant_mean_forever() {
    let name = unique("huge-timeouts");
    let huge = Options::new().timeout(Some(Duration::MAX));
    let n2 = name.clone();
    let huge2 = huge.clone();
    let rx = std::thread::spawn(move || {
        let mut rx = svshm_channel::Receiver::connect(&Endpoint::name(n2), &huge2).unwrap();
        let m = rx.recv_timeout(Duration::MAX).unwrap();
        let end = rx.recv_timeout(Duration::MAX);
        (
            m,
            matches!(end, Err(svshm_channel::RecvTimeoutError::Disconnected)),
        )
    });
    let mut tx = svshm_channel::Sender::connect(&Endpoint::name(&name), &huge).unwrap();
    tx.send_timeout(b"far future", Duration::MAX).unwrap();
    tx.close().unwrap();
    assert_eq!(rx.join().unwrap(), (b"far future".to_vec(), true));
}
