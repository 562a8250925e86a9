//! Unit tests of the ring protocol on heap memory.

use super::*;
use std::sync::Arc;

struct Heap {
    cur: Box<Cursors>,
    data: Vec<u8>,
}

fn ring(cap: usize) -> (Producer<RawMem>, Consumer<RawMem>, Arc<Heap>) {
    let mut h = Heap {
        cur: Box::default(),
        data: vec![0; cap],
    };
    let base = h.data.as_mut_ptr();
    let h = Arc::new(h);
    let cur: *const Cursors = &*h.cur;
    // SAFETY: `h` outlives the ring in every test (returned alongside).
    unsafe {
        (
            Producer::new(cur, RawMem::new(base, cap), cap as u64).unwrap(),
            Consumer::new(cur, RawMem::new(base, cap), cap as u64).unwrap(),
            h,
        )
    }
}

#[test]
fn wraps_and_preserves_bytes() {
    let (mut p, mut c, _h) = ring(16);
    let alive = || Liveness::Alive;
    let mut out = Vec::new();
    for round in 0u8..20 {
        let data: Vec<u8> = (0..7)
            .map(|i| round.wrapping_mul(7).wrapping_add(i))
            .collect();
        p.wait_free(7, WaitPolicy::none(), alive).unwrap();
        p.put(&data);
        p.publish();
        assert!(c.wait_available(7, WaitPolicy::none(), alive).unwrap());
        let mut buf = [0u8; 7];
        c.take(&mut buf);
        c.publish();
        out.extend_from_slice(&buf);
        assert_eq!(&buf[..], &data[..]);
    }
    assert_eq!(out.len(), 140);
}

#[test]
fn full_ring_times_out_and_close_gives_eof() {
    let (mut p, mut c, _h) = ring(8);
    let alive = || Liveness::Alive;
    p.put(&[1; 8]);
    assert_eq!(
        p.wait_free(1, WaitPolicy::none(), alive),
        Err(RingError::Timeout)
    );
    p.close();
    let mut b = [0; 8];
    assert!(c.wait_available(8, WaitPolicy::none(), alive).unwrap());
    c.take(&mut b);
    assert!(!c.wait_available(1, WaitPolicy::none(), alive).unwrap());
}

#[test]
fn dead_peer_is_reported_after_drain() {
    let (mut p, mut c, _h) = ring(8);
    p.put(&[5; 3]);
    p.publish();
    let dead = || Liveness::Dead;
    let pol = WaitPolicy::forever(Wait::Block);
    assert!(c.wait_available(3, pol, dead).unwrap());
    c.take(&mut [0; 3]);
    assert_eq!(c.wait_available(1, pol, dead), Err(RingError::PeerDied));
}

#[test]
fn hostile_cursors_are_errors() {
    let (mut p, mut c, h) = ring(8);
    h.cur.head.0.store(100, Ordering::Relaxed);
    assert!(matches!(c.available(1), Err(RingError::Corrupt(_))));
    h.cur.head.0.store(0, Ordering::Relaxed);
    h.cur.tail.0.store(5, Ordering::Relaxed);
    assert!(matches!(p.free(9), Err(RingError::Corrupt(_))));
}

#[test]
fn threads_stream_with_blocking_waits() {
    for wait in [Wait::Spin, Wait::Adaptive, Wait::Block] {
        let (mut p, mut c, h) = ring(64);
        let n = 100_000u64;
        let t = std::thread::spawn(move || {
            let _keep = h;
            let pol = WaitPolicy::forever(wait);
            let mut sum = 0u64;
            let mut got = 0u64;
            let mut buf = [0u8; 13];
            loop {
                if !c.wait_available(1, pol, || Liveness::Alive).unwrap() {
                    break;
                }
                let k = (c.available(1).unwrap() as usize).min(buf.len());
                c.take(&mut buf[..k]);
                c.publish();
                for &b in &buf[..k] {
                    sum += u64::from(b);
                }
                got += k as u64;
            }
            (got, sum)
        });
        let pol = WaitPolicy::forever(wait);
        let mut want = 0u64;
        let mut i = 0u64;
        while i < n {
            let k = ((n - i) as usize).min(11);
            p.wait_free(k as u64, pol, || Liveness::Alive).unwrap();
            let chunk: Vec<u8> = (i..i + k as u64).map(|x| x as u8).collect();
            want += chunk.iter().map(|&b| u64::from(b)).sum::<u64>();
            p.put(&chunk);
            p.publish();
            i += k as u64;
        }
        p.close();
        assert_eq!(t.join().unwrap(), (n, want), "{wait:?}");
    }
}
