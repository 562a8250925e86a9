//! Async messages on a tokio multi-thread runtime and on the smallest
//! executor: round trips, many channels in one runtime, a sender killed
//! with SIGKILL, the clean end, cancellation at every await point, and
//! registration churn. (The waker thread's idle cost is measured alone, in
//! async_idle.rs.)

mod common;

use common::*;
use futures_util::StreamExt;
use std::future::Future;
use std::pin::pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Options, Receiver, Sender, Wait};

fn opts() -> Options {
    Options::new()
        .capacity(4096)
        .max_message(512)
        .timeout(Some(Duration::from_secs(20)))
}

/// A connected pair on `name`: the sender connects in a thread.
fn pair(name: &str, o: &Options) -> (Sender, Receiver) {
    let (n, o2) = (name.to_string(), o.clone());
    let h = std::thread::spawn(move || Sender::connect(&Endpoint::name(n), &o2).unwrap());
    let rx = Receiver::connect(&Endpoint::name(name), o).unwrap();
    (h.join().unwrap(), rx)
}

fn seq(n: u64) -> Vec<u8> {
    let mut m = n.to_le_bytes().to_vec();
    m.resize(8 + (n % 97) as usize, n as u8);
    m
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The smallest executor: park the thread until woken.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark()
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    let name = std::env::var("NAME").unwrap();
    match role.as_str() {
        // Sends ten messages, says so, then idles until killed.
        "sender" => {
            let mut tx = Sender::connect(&Endpoint::name(&name), &opts()).unwrap();
            for n in 0..10 {
                tx.send(&seq(n)).unwrap();
            }
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        // Sends one message, then becomes another program (exec): alive,
        // but no longer mapping the segment, and never closed.
        "exec-sender" => {
            let mut tx = Sender::connect(&Endpoint::name(&name), &opts()).unwrap();
            tx.send(&seq(0)).unwrap();
            println!("READY");
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            let e = std::os::unix::process::CommandExt::exec(
                std::process::Command::new("sleep").arg("60"),
            );
            panic!("exec: {e}");
        }
        r => panic!("unknown role {r}"),
    }
}

#[test]
fn ping_pong_on_tokio_and_a_clean_end() {
    for wait in [Wait::Block, Wait::Adaptive, Wait::Spin] {
        let name = unique("async-pp");
        let o = opts().wait(wait);
        let (mut tx, mut rx) = pair(&format!("{name}-a"), &o);
        let (mut tx2, mut rx2) = pair(&format!("{name}-b"), &o);
        let ids = [tx.segment_id(), tx2.segment_id()];
        let rt = runtime();
        rt.block_on(async move {
            let echo = tokio::spawn(async move {
                while let Some(m) = rx.recv_async().await.unwrap() {
                    tx2.send_async(&m).await.unwrap();
                }
                tx2.close().unwrap();
            });
            for n in 0..2000 {
                tx.send_async(&seq(n)).await.unwrap();
                assert_eq!(rx2.recv_async().await.unwrap(), Some(seq(n)));
            }
            tx.close().unwrap();
            assert_eq!(rx2.recv_async().await.unwrap(), None);
            assert_eq!(rx2.recv_async().await.unwrap(), None, "the end stays");
            echo.await.unwrap();
        });
        for id in ids {
            assert!(segment_gone(id), "segment {id} left behind");
        }
    }
}

#[test]
fn works_on_the_smallest_executor() {
    let name = unique("async-park");
    let (mut tx, mut rx) = pair(&name, &opts().wait(Wait::Block));
    let id = rx.segment_id();
    let h = std::thread::spawn(move || {
        for n in 0..5000 {
            block_on(tx.send_async(&seq(n))).unwrap();
        }
        tx.close().unwrap();
    });
    let mut buf = Vec::new();
    for n in 0..5000 {
        assert_eq!(
            block_on(rx.recv_into_async(&mut buf)).unwrap(),
            Some(seq(n).len())
        );
        assert_eq!(buf, seq(n));
    }
    assert_eq!(block_on(rx.recv_into_async(&mut buf)).unwrap(), None);
    h.join().unwrap();
    drop(rx);
    assert!(segment_gone(id));
}

#[test]
fn sixty_four_channels_in_one_runtime() {
    const N: usize = 64;
    const MSGS: u64 = 500;
    let name = unique("async-many");
    let pairs: Vec<(Sender, Receiver)> = (0..N)
        .map(|i| pair(&format!("{name}-{i}"), &opts().wait(Wait::Block)))
        .collect();
    let ids: Vec<i32> = pairs.iter().map(|(t, _)| t.segment_id()).collect();
    let rt = runtime();
    let t0 = Instant::now();
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for (i, (mut tx, rx)) in pairs.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                for n in 0..MSGS {
                    tx.send_async(&seq(n * N as u64 + i as u64)).await.unwrap();
                    if n % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                tx.close().unwrap();
            }));
            tasks.push(tokio::spawn(async move {
                // As a `Stream`: ends at the clean close.
                let got: Vec<Vec<u8>> = rx.map(|m| m.unwrap()).collect().await;
                let want: Vec<Vec<u8>> = (0..MSGS).map(|n| seq(n * N as u64 + i as u64)).collect();
                assert_eq!(got, want, "channel {i}");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    eprintln!("{N} channels × {MSGS} messages in {:?}", t0.elapsed());
    for id in ids {
        assert!(segment_gone(id), "segment {id} left behind");
    }
}

#[test]
fn a_killed_sender_gives_peer_died_to_a_pending_recv() {
    let name = unique("async-kill");
    let mut c = spawn("child", "sender", &[("NAME", name.clone())], Stdio::piped());
    let mut rx = Receiver::connect(&Endpoint::name(&name), &opts()).unwrap();
    let id = rx.segment_id();
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "child ended"
        );
    }
    let rt = runtime();
    let (took, err) = rt.block_on(async {
        for n in 0..10 {
            assert_eq!(rx.recv_async().await.unwrap(), Some(seq(n)));
        }
        // Pending now; the kill must wake it.
        let pending = tokio::time::timeout(Duration::from_millis(50), rx.recv_async()).await;
        assert!(pending.is_err(), "nothing was sent: {pending:?}");
        let t0 = Instant::now();
        sigkill(&c);
        let r = tokio::time::timeout(Duration::from_secs(5), rx.recv_async())
            .await
            .expect("PeerDied within 5 s");
        (t0.elapsed(), r.unwrap_err())
    });
    assert!(err.is_peer_died(), "{err}");
    eprintln!("the async receiver saw the sender's death after {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    c.wait().unwrap();
    drop(rx);
    assert!(segment_gone(id));
}

/// Drops receive futures after 0, 1, 2… polls and on tiny timeouts while
/// a sender in another thread sends at an uneven pace: every message comes
/// exactly once, in order.
#[test]
fn cancelled_receives_lose_and_duplicate_nothing() {
    const MSGS: u64 = 3000;
    let name = unique("async-cancel-rx");
    let (mut tx, mut rx) = pair(&name, &opts().wait(Wait::Block));
    let id = rx.segment_id();
    let h = std::thread::spawn(move || {
        let mut rng = Rng(rand_u64());
        for n in 0..MSGS {
            tx.send(&seq(n)).unwrap();
            if rng.below(4) == 0 {
                std::thread::sleep(Duration::from_micros(rng.below(1500)));
            }
        }
        tx.close().unwrap();
    });
    let noop = Waker::noop();
    let mut next = 0u64;
    let mut polls = 0usize;
    // By hand: poll k times with a waker that does nothing, then drop.
    while next < MSGS / 2 {
        let mut f = Box::pin(rx.recv_async());
        let mut got = None;
        for _ in 0..polls % 4 {
            if let Poll::Ready(r) = f.as_mut().poll(&mut Context::from_waker(noop)) {
                got = Some(r.unwrap());
                break;
            }
        }
        drop(f);
        polls += 1;
        if let Some(m) = got {
            assert_eq!(m, Some(seq(next)));
            next += 1;
        }
    }
    // On tokio, with timeouts of 0 (cancelled after one poll) to 2 ms.
    let rt = runtime();
    rt.block_on(async {
        let mut rng = Rng(rand_u64());
        let mut timeouts = 0u32;
        loop {
            let t = Duration::from_micros(rng.below(3) * rng.below(1000));
            match tokio::time::timeout(t, rx.recv_async()).await {
                Err(_) => timeouts += 1,
                Ok(Ok(Some(m))) => {
                    assert_eq!(m, seq(next), "message {next}");
                    next += 1;
                }
                Ok(Ok(None)) => break,
                Ok(Err(e)) => panic!("{e}"),
            }
        }
        assert_eq!(next, MSGS);
        eprintln!("{timeouts} receives cancelled by their timeout");
    });
    h.join().unwrap();
    drop(rx);
    assert!(segment_gone(id));
}

/// The same for sends into a small ring: a send cancelled before it
/// completes sent nothing, so sending it again duplicates nothing.
#[test]
fn cancelled_sends_lose_and_duplicate_nothing() {
    const MSGS: u64 = 3000;
    let name = unique("async-cancel-tx");
    let o = opts().capacity(1024).wait(Wait::Block);
    let (mut tx, mut rx) = pair(&name, &o);
    let id = rx.segment_id();
    let h = std::thread::spawn(move || {
        let mut rng = Rng(rand_u64());
        for n in 0..MSGS {
            assert_eq!(rx.recv().unwrap(), Some(seq(n)), "message {n}");
            if rng.below(4) == 0 {
                std::thread::sleep(Duration::from_micros(rng.below(1500)));
            }
        }
        assert_eq!(rx.recv().unwrap(), None);
    });
    let noop = Waker::noop();
    let mut next = 0u64;
    let mut polls = 0usize;
    while next < MSGS / 2 {
        let m = seq(next);
        let mut f = Box::pin(tx.send_async(&m));
        let mut sent = false;
        for _ in 0..polls % 4 {
            if let Poll::Ready(r) = f.as_mut().poll(&mut Context::from_waker(noop)) {
                r.unwrap();
                sent = true;
                break;
            }
        }
        drop(f);
        polls += 1;
        next += u64::from(sent);
    }
    let rt = runtime();
    rt.block_on(async {
        let mut rng = Rng(rand_u64());
        let mut timeouts = 0u32;
        while next < MSGS {
            let t = Duration::from_micros(rng.below(3) * rng.below(1000));
            let m = seq(next);
            match tokio::time::timeout(t, tx.send_async(&m)).await {
                Ok(r) => {
                    r.unwrap();
                    next += 1;
                }
                Err(_) => timeouts += 1,
            }
        }
        eprintln!("{timeouts} sends cancelled by their timeout");
    });
    tx.close().unwrap();
    h.join().unwrap();
    assert!(segment_gone(id));
}

/// Futures registered and dropped in a tight loop, across many endpoints:
/// afterwards everything still works (nothing stale wakes or blocks).
#[test]
fn registration_churn() {
    let name = unique("async-churn");
    let mut pairs: Vec<(Sender, Receiver)> = (0..8)
        .map(|i| pair(&format!("{name}-{i}"), &opts().wait(Wait::Block)))
        .collect();
    let noop = Waker::noop();
    let t0 = Instant::now();
    for k in 0..20_000 {
        let (_, rx) = &mut pairs[k % 8];
        let mut f = Box::pin(rx.recv_async());
        assert!(f.as_mut().poll(&mut Context::from_waker(noop)).is_pending());
    }
    eprintln!("20000 register/deregister pairs in {:?}", t0.elapsed());
    let rt = runtime();
    rt.block_on(async {
        for (tx, rx) in &mut pairs {
            let (a, b) = tokio::join!(rx.recv_async(), async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                tx.send_async(b"after the churn").await
            });
            b.unwrap();
            assert_eq!(a.unwrap().as_deref(), Some(&b"after the churn"[..]));
        }
    });
}

/// A sender that called exec(2) raises no exit flag; the waker thread's
/// periodic full probe still gets `PeerDied` to a pending receive.
#[test]
fn a_sender_that_execs_gives_peer_died_to_a_pending_recv() {
    let name = unique("async-exec");
    let mut c = spawn(
        "child",
        "exec-sender",
        &[("NAME", name.clone())],
        Stdio::piped(),
    );
    let mut rx = Receiver::connect(&Endpoint::name(&name), &opts()).unwrap();
    let id = rx.segment_id();
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "child ended"
        );
    }
    let t0 = Instant::now();
    let err = runtime().block_on(async {
        assert_eq!(rx.recv_async().await.unwrap(), Some(seq(0)));
        tokio::time::timeout(Duration::from_secs(30), rx.recv_async())
            .await
            .expect("PeerDied within 30 s")
            .unwrap_err()
    });
    assert!(err.is_peer_died(), "{err}");
    eprintln!(
        "the async receiver saw the sender's exec after {:?}",
        t0.elapsed()
    );
    sigkill(&c);
    c.wait().unwrap();
    drop(rx);
    assert!(segment_gone(id));
}
