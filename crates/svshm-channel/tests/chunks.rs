//! The zero-copy guards at their edges: empty and oversized chunks, the end
//! of the stream, chunks mixed with copying calls, and message guards that are
//! dropped or forgotten.

mod common;

use common::unique;
use std::io::{BufRead, Read, Write};
use std::time::Duration;
use svshm_channel::{Endpoint, Error, Options, Receiver, Sender, StreamReader, StreamWriter};

fn opts() -> Options {
    Options::new()
        .capacity(4096)
        .timeout(Some(Duration::from_secs(20)))
}

fn stream_pair(tag: &str) -> (StreamWriter, StreamReader) {
    let name = unique(tag);
    let n2 = name.clone();
    let t =
        std::thread::spawn(move || StreamReader::connect(&Endpoint::name(n2), &opts()).unwrap());
    let w = StreamWriter::connect(&Endpoint::name(name), &opts()).unwrap();
    (w, t.join().unwrap())
}

fn message_pair(tag: &str) -> (Sender, Receiver) {
    let name = unique(tag);
    let n2 = name.clone();
    let o = opts().max_message(1024);
    let o2 = o.clone();
    let t = std::thread::spawn(move || Receiver::connect(&Endpoint::name(n2), &o2).unwrap());
    let tx = Sender::connect(&Endpoint::name(name), &o).unwrap();
    (tx, t.join().unwrap())
}

#[test]
fn empty_and_oversized_write_chunks() {
    let (mut w, mut r) = stream_pair("chunk-edges");
    let empty = w.write_chunk(0).unwrap();
    assert!(empty.is_empty());
    empty.commit_all();
    let e = w.write_chunk(4097).map(|c| c.len()).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    // The writer goes on after both.
    w.write_all(b"after").unwrap();
    assert!(!w.is_empty());
    let mut buf = [0u8; 5];
    r.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after");
}

#[test]
fn a_chunk_spans_the_wrap_in_two_slices() {
    let (mut w, mut r) = stream_pair("chunk-wrap");
    w.write_all(&[1; 3000]).unwrap();
    let mut sink = vec![0u8; 3000];
    r.read_exact(&mut sink).unwrap();
    // 1096 bytes to the ring's end, then 2904 from its start.
    let mut chunk = w.write_chunk(4000).unwrap();
    let (a, b) = chunk.as_mut_slices();
    assert_eq!((a.len(), b.len()), (1096, 2904));
    a.fill(7);
    b.fill(8);
    chunk.commit(3000); // less than lent: the rest stays free
    let chunk = r.read_chunk().unwrap();
    let (a, b) = chunk.as_slices();
    assert_eq!((a.len(), b.len()), (1096, 1904));
    assert!(a.iter().all(|&x| x == 7) && b.iter().all(|&x| x == 8));
    let mut copy = vec![0u8; 10_000];
    assert_eq!(chunk.copy_to(&mut copy), 3000);
    assert_eq!(&copy[1094..1098], &[7, 7, 8, 8]);
    chunk.consume(1000);
    // What was not consumed is still there, for any way of reading.
    assert_eq!(r.fill_buf().unwrap().len(), 96);
    r.consume(96);
    let mut rest = Vec::new();
    w.close().unwrap();
    r.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), 1904);
}

#[test]
fn the_end_is_an_empty_chunk_every_time() {
    let (mut w, mut r) = stream_pair("chunk-end");
    w.write_all(b"x").unwrap();
    w.close().unwrap();
    let c = r.read_chunk().unwrap();
    assert_eq!(c.len(), 1);
    c.consume_all();
    for _ in 0..3 {
        assert!(r.read_chunk().unwrap().is_empty());
    }
    assert!(r.is_peer_closed());
}

#[test]
fn an_aborted_stream_is_an_error_from_read_chunk_after_the_data() {
    let (mut w, mut r) = stream_pair("chunk-abort");
    w.write_all(b"partial").unwrap();
    w.abort();
    let c = r.read_chunk().unwrap();
    assert_eq!(c.len(), 7);
    c.consume_all();
    assert!(r.read_chunk().map(|c| c.len()).unwrap_err().is_aborted());
}

#[test]
fn a_dropped_loan_sends_nothing_even_across_the_wrap() {
    let (mut tx, mut rx) = message_pair("loan-drop");
    // Move the write position near the ring's end.
    for i in 1..=4 {
        tx.send(&[i; 992]).unwrap(); // a 1008-byte frame (16-byte header)
        assert_eq!(rx.recv().unwrap().unwrap(), vec![i; 992]);
    }
    {
        // 64 bytes before the end: a 128-byte frame does not fit, so a skip
        // marker is written first, then dropped with the loan's frame.
        let mut loan = tx.loan(100).unwrap();
        loan.fill(9);
    }
    tx.send(b"next").unwrap();
    tx.close().unwrap();
    assert_eq!(rx.recv().unwrap().unwrap(), b"next");
    assert_eq!(rx.recv().unwrap(), None);
}

#[test]
fn a_forgotten_message_ref_is_received_again() {
    let (mut tx, mut rx) = message_pair("ref-forget");
    tx.send(b"one").unwrap();
    tx.send(b"two").unwrap();
    let m = rx.recv_ref().unwrap().unwrap();
    assert_eq!(&m[..], b"one");
    std::mem::forget(m); // never released
    assert_eq!(&rx.recv_ref().unwrap().unwrap()[..], b"one");
    assert_eq!(rx.recv().unwrap().unwrap(), b"two");
}
