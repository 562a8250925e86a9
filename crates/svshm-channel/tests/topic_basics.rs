//! Topics within one process: history for late joiners, exact lag counts,
//! slot exhaustion, zero-copy in both directions, corrupt slots and frames,
//! and nothing left behind.

mod common;

use common::*;
use std::time::Duration;
use svshm_channel::{
    Endpoint, Error, Options, Overflow, Publisher, Subscriber, TryRecvError, TrySendError,
};

fn opts() -> Options {
    Options::new()
        .capacity(4096)
        .timeout(Some(Duration::from_secs(10)))
}

#[test]
fn late_joiners_start_at_the_newest_or_with_history() {
    let ep = Endpoint::name(unique("topic-history"));
    let mut p = Publisher::create(&ep, &opts()).unwrap();
    let id = p.segment_id();
    for n in 0..10u64 {
        p.send(&n.to_le_bytes()).unwrap();
    }
    let mut fresh = Subscriber::connect(&ep, &opts()).unwrap();
    let mut three = Subscriber::connect(&ep, &opts().history(3)).unwrap();
    let mut all = Subscriber::connect(&ep, &opts().history(1000)).unwrap();
    assert!(matches!(fresh.try_recv(), Err(TryRecvError::Empty)));
    for n in 10..12u64 {
        p.send(&n.to_le_bytes()).unwrap();
    }
    p.close().unwrap();
    let got = |s: &mut Subscriber| -> Vec<u64> {
        s.iter()
            .map(|m| u64::from_le_bytes(m.unwrap().try_into().unwrap()))
            .collect()
    };
    assert_eq!(got(&mut fresh), [10, 11]);
    assert_eq!(got(&mut three), [7, 8, 9, 10, 11]);
    assert_eq!(got(&mut all), (0..12).collect::<Vec<_>>());
    drop((fresh, three, all));
    assert!(segment_gone(id));
}

#[test]
fn lossy_subscriber_gets_the_exact_lag_then_goes_on() {
    let ep = Endpoint::name(unique("topic-lossy"));
    let o = opts().overflow(Overflow::Lossy).max_message(200);
    let mut p = Publisher::create(&ep, &o).unwrap();
    let id = p.segment_id();
    let mut s = Subscriber::connect(&ep, &o).unwrap();
    for n in 0..500u64 {
        p.send(&numbered(n, 200)).unwrap();
    }
    let missed = match s.recv() {
        Err(Error::Lagged { missed }) => missed,
        other => panic!("expected Lagged, got {other:?}"),
    };
    assert!(missed > 0 && missed < 500);
    let mut next = missed;
    p.close().unwrap();
    while let Some(m) = s.recv().unwrap() {
        assert_eq!(check_numbered(&m, 200), next);
        next += 1;
    }
    assert_eq!(next, 500);
    assert!(s.recv_ref().is_err(), "recv_ref on a lossy topic");
    drop(s);
    assert!(segment_gone(id));
}

#[test]
fn backpressure_publisher_waits_for_the_slowest() {
    let ep = Endpoint::name(unique("topic-full"));
    let mut p = Publisher::create(&ep, &opts()).unwrap();
    let mut s = Subscriber::connect(&ep, &opts()).unwrap();
    let mut sent = 0u64;
    loop {
        match p.try_send(&[7u8; 100]) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full(_)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent > 10 && sent < 4096 / 100, "{sent} sent into 4 KiB");
    assert_eq!(p.subscriber_list()[0].lag, sent);
    assert!(
        p.send_timeout(&[1u8; 100], Duration::from_millis(30))
            .is_err()
    );
    assert_eq!(s.recv().unwrap().unwrap(), [7u8; 100]);
    p.try_send(&[8u8; 100]).unwrap();
    drop(s);
    // The only subscriber left: room at once.
    for _ in 0..100 {
        p.try_send(&[9u8; 100]).unwrap();
    }
}

#[test]
fn slots_run_out_with_a_clear_error_and_come_back() {
    let ep = Endpoint::name(unique("topic-slots"));
    let p = Publisher::create(&ep, &opts().subscribers(2)).unwrap();
    let a = Subscriber::connect(&ep, &opts()).unwrap();
    let b = Subscriber::connect(&ep, &opts()).unwrap();
    let err = Subscriber::connect(&ep, &opts()).err().unwrap();
    assert!(
        matches!(err, Error::SubscribersFull { max: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("subscriber slots"), "{err}");
    assert_eq!(p.subscribers(), 2);
    drop(a);
    assert_eq!(p.subscribers(), 1);
    let _c = Subscriber::connect(&ep, &opts()).unwrap();
    drop(b);
    assert!(
        Publisher::create(&ep, &opts()).is_err(),
        "a second publisher"
    );
}

#[test]
fn zero_copy_both_ways_across_the_ring_end() {
    let ep = Endpoint::name(unique("topic-zc"));
    let mut p = Publisher::create(&ep, &opts()).unwrap();
    let mut s = Subscriber::connect(&ep, &opts()).unwrap();
    for n in 0..300u64 {
        let m = numbered(n, 300);
        let mut loan = p.loan(m.len()).unwrap();
        loan.copy_from_slice(&m);
        loan.send().unwrap();
        let r = s.recv_ref().unwrap().unwrap();
        assert_eq!(r.seq(), n);
        assert_eq!(check_numbered(&r, 300), n);
    }
    // A dropped loan publishes nothing.
    drop(p.loan(10).unwrap());
    p.close().unwrap();
    assert!(s.recv().unwrap().is_none());
}

#[test]
fn private_topic_by_id_and_kind_mismatch() {
    let mut p = Publisher::create(&Endpoint::private(), &opts()).unwrap();
    let ep = Endpoint::id(p.segment_id());
    let mut s = Subscriber::connect(&ep, &opts()).unwrap();
    p.send(b"x").unwrap();
    assert_eq!(s.recv().unwrap().unwrap(), b"x");
    let st = svshm_channel::inspect(p.segment_id()).unwrap().unwrap();
    assert_eq!(st.topic_subscribers, Some(1));
    let err = svshm_channel::Receiver::connect(&ep, &opts())
        .err()
        .unwrap();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
}

#[test]
fn corrupt_subscriber_cursor_is_an_error_for_the_publisher() {
    let ep = Endpoint::name(unique("topic-badcursor"));
    let mut p = Publisher::create(&ep, &opts()).unwrap();
    let s = Subscriber::connect(&ep, &opts()).unwrap();
    // Our subscriber slot's cursor (slot 0 at 1152, cursor at +16) made to
    // point past the publisher's head.
    let seg = svshm::Segment::from_id(p.segment_id());
    let att = seg.attach().unwrap();
    let cursor = att.range_ptr(1152 + 16, 8).unwrap().cast::<u64>();
    // SAFETY: an aligned word inside our own attachment.
    unsafe { cursor.write_volatile(1 << 40) };
    let mut err = None;
    for _ in 0..1000 {
        if let Err(e) = p.send(&[0u8; 500]) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("the corrupt cursor was obeyed");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    drop(s);
}

#[test]
fn corrupt_frame_is_an_error_for_the_subscriber() {
    let ep = Endpoint::name(unique("topic-badframe"));
    let mut p = Publisher::create(&ep, &opts()).unwrap();
    let mut s = Subscriber::connect(&ep, &opts()).unwrap();
    p.send(b"hello").unwrap();
    let att = svshm::Segment::from_id(p.segment_id()).attach().unwrap();
    // The first frame's length word (ring at 4096, length at +8).
    let len = att.range_ptr(4096 + 8, 8).unwrap().cast::<u64>();
    // SAFETY: an aligned word inside our own attachment.
    unsafe { len.write_volatile(0x0000_0000_ffff_0000) };
    let err = s.recv_timeout(Duration::from_secs(1)).err().unwrap();
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[test]
fn a_publisher_dropped_without_close_is_drained_then_aborted() {
    let ep = Endpoint::name(unique("topic-abort"));
    let mut p = Publisher::create(&ep, &opts()).unwrap();
    let id = p.segment_id();
    let mut s = Subscriber::connect(&ep, &opts()).unwrap();
    p.send(b"a").unwrap();
    p.send(b"b").unwrap();
    drop(p);
    // The key is free at once: a new publisher may take the name.
    let p2 = Publisher::create(&ep, &opts()).unwrap();
    assert_ne!(p2.segment_id(), id);
    assert_eq!(s.recv().unwrap().unwrap(), b"a");
    assert_eq!(s.recv().unwrap().unwrap(), b"b");
    let err = s.recv().err().unwrap();
    assert!(err.is_aborted(), "{err}");
    drop(s);
    assert!(segment_gone(id));
}

#[test]
fn select_waits_on_subscribers_and_publishers() {
    use svshm_channel::Select;
    let (ea, eb) = (
        Endpoint::name(unique("topic-sel-a")),
        Endpoint::name(unique("topic-sel-b")),
    );
    let mut pa = Publisher::create(&ea, &opts()).unwrap();
    let pb = Publisher::create(&eb, &opts()).unwrap();
    let mut sa = Subscriber::connect(&ea, &opts()).unwrap();
    let mut sb = Subscriber::connect(&eb, &opts()).unwrap();
    {
        let mut sel = Select::new();
        sel.subscribe(&sa);
        sel.subscribe(&sb);
        assert!(sel.try_select().is_err(), "nothing published yet");
    }
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        pa.send(b"to a").unwrap();
        pa
    });
    let i = {
        let mut sel = Select::new();
        sel.subscribe(&sa);
        sel.subscribe(&sb);
        sel.select_timeout(Duration::from_secs(5)).unwrap()
    };
    assert_eq!(i, 0);
    assert_eq!(sa.try_recv().unwrap(), b"to a");
    let pa = t.join().unwrap();
    let mut sel = Select::new();
    let ia = sel.publish(&pa);
    sel.publish(&pb);
    assert_eq!(sel.try_select().unwrap(), ia);
    drop(sel);
    drop(pb);
    assert!(sb.recv().err().unwrap().is_aborted());
}

/// Joiners racing a busy backpressure publisher: the join's cursor
/// registration against the publisher's raising of the tail must never let
/// the publisher overwrite what a joiner is about to read.
#[test]
fn joiners_racing_a_busy_publisher_see_whole_contiguous_messages() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let name = unique("topic-race");
    let ep = Endpoint::name(&name);
    let o = opts().max_message(300);
    let mut p = Publisher::create(&ep, &o).unwrap();
    let id = p.segment_id();
    let mut keeper = Subscriber::connect(&ep, &o).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let publisher = std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            p.send(&numbered(n, 300)).unwrap();
            n += 1;
        }
        p.close().unwrap();
        n
    });
    let reader = std::thread::spawn(move || {
        let mut next = 0;
        while let Some(m) = keeper.recv().unwrap() {
            assert_eq!(check_numbered(&m, 300), next);
            next += 1;
        }
        next
    });
    let mut rng = Rng(rand_u64());
    for _ in 0..300 {
        let history = rng.below(6) as usize;
        let mut s = Subscriber::connect(&ep, &o.clone().history(history)).unwrap();
        let mut prev: Option<u64> = None;
        for _ in 0..10 {
            let m = s.recv_timeout(Duration::from_secs(10)).unwrap();
            let n = check_numbered(&m, 300);
            assert!(prev.is_none_or(|p| p + 1 == n), "{prev:?} then {n}");
            prev = Some(n);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent = publisher.join().unwrap();
    assert_eq!(reader.join().unwrap(), sent);
    assert!(segment_gone(id));
}
