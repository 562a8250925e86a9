//! `Options::messages(n)`: a message channel sized in messages. `n` messages
//! of the largest size are queued at once wherever the ring's end falls,
//! the ring is a power of two no smaller than the capacity asked for, and
//! meaningless requests are refused with a clear error.

mod common;

use common::unique;
use std::time::Duration;
use svshm_channel::{Endpoint, Error, Options, Receiver, Sender, TrySendError};

fn opts(max: usize, n: usize) -> Options {
    Options::new()
        .capacity(4096)
        .max_message(max)
        .messages(n)
        .timeout(Some(Duration::from_secs(20)))
}

fn pair(tag: &str, o: &Options) -> (Sender, Receiver) {
    let name = unique(tag);
    let (n2, o2) = (name.clone(), o.clone());
    let t = std::thread::spawn(move || Receiver::connect(&Endpoint::name(n2), &o2).unwrap());
    let tx = Sender::connect(&Endpoint::name(name), o).unwrap();
    (tx, t.join().unwrap())
}

#[test]
fn n_largest_messages_fit_wherever_the_ring_ends() {
    for (max, n) in [(1000, 8), (4096, 3), (100, 200), (65536, 4)] {
        let (mut tx, mut rx) = pair("room", &opts(max, n));
        let cap = tx.capacity();
        assert!(cap.is_power_of_two() && cap >= 4096, "capacity {cap}");
        let msg = vec![7u8; max];
        // Start the burst at many different places in the ring, including
        // just before its end, where a message must skip to the start.
        for shift in 0..(cap / (max + 16)).min(40) + 2 {
            for k in 0..n {
                tx.try_send(&msg).unwrap_or_else(|e| {
                    panic!("max {max}, n {n}, shift {shift}: message {k} did not fit: {e:?}")
                });
            }
            for _ in 0..n {
                assert_eq!(rx.recv_ref().unwrap().unwrap().len(), max);
            }
            // One more small message moves the burst's start.
            tx.send(&msg[..shift % 48]).unwrap();
            assert_eq!(rx.recv_ref().unwrap().unwrap().len(), shift % 48);
        }
        // The room is not unbounded: a full ring refuses, and gives the
        // message back.
        let mut sent = 0;
        loop {
            match tx.try_send(&msg) {
                Ok(()) => sent += 1,
                Err(TrySendError::Full(m)) => {
                    assert_eq!(m.len(), max);
                    break;
                }
                Err(e) => panic!("{e:?}"),
            }
            assert!(sent <= cap / max, "{sent} messages of {max} in {cap} bytes");
        }
        assert!(sent >= n, "only {sent} of {n} fit");
    }
}

#[test]
fn the_ring_is_as_small_as_the_room_allows() {
    // 9 frames of 1016 bytes: 9144 bytes, so 16 KiB.
    let (tx, _rx) = pair("room-size", &opts(1000, 8));
    assert_eq!(tx.capacity(), 16384);
    // A capacity asked for that is already large enough stays.
    let (tx, _rx) = pair("room-cap", &opts(1000, 8).capacity(1 << 20));
    assert_eq!(tx.capacity(), 1 << 20);
}

#[test]
fn meaningless_room_is_refused() {
    let name = unique("room-bad");
    let ep = Endpoint::name(&name);
    let t = Some(Duration::from_millis(10));
    for (o, what) in [
        (opts(1000, 0).timeout(t), "0 messages"),
        (Options::new().messages(8).timeout(t), "set max_message too"),
        (
            opts(1 << 30, usize::MAX).timeout(t),
            "exceeds the largest ring",
        ),
    ] {
        match Sender::connect(&ep, &o) {
            Err(Error::Invalid(m)) => assert!(m.contains(what), "{m}"),
            Err(e) => panic!("{what}: {e:?}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
}
