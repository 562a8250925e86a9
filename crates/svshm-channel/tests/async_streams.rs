//! The byte stream as tokio's and the `futures` crate's `AsyncRead` /
//! `AsyncWrite`: transfers, EOF at the clean close, shutdown, a writer
//! killed with SIGKILL, and reads cancelled on tiny timeouts.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Error, Options, StreamReader, StreamWriter, Wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn opts() -> Options {
    Options::new()
        .capacity(4096)
        .timeout(Some(Duration::from_secs(20)))
}

fn pair(name: &str, o: &Options) -> (StreamWriter, StreamReader) {
    let (n, o2) = (name.to_string(), o.clone());
    let h = std::thread::spawn(move || StreamWriter::connect(&Endpoint::name(n), &o2).unwrap());
    let r = StreamReader::connect(&Endpoint::name(name), o).unwrap();
    (h.join().unwrap(), r)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    let name = std::env::var("NAME").unwrap();
    match role.as_str() {
        "writer" => {
            let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts()).unwrap();
            let mut buf = vec![0u8; 1000];
            fill_pattern(0, &mut buf);
            std::io::Write::write_all(&mut w, &buf).unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        r => panic!("unknown role {r}"),
    }
}

#[test]
fn tokio_copy_then_eof_and_shutdown() {
    for wait in [Wait::Block, Wait::Adaptive] {
        let name = unique("astream-tokio");
        let (mut w, mut r) = pair(&name, &opts().wait(wait));
        let id = w.segment_id();
        const LEN: u64 = 4 << 20;
        runtime().block_on(async move {
            let writer = tokio::spawn(async move {
                let mut at = 0u64;
                let mut buf = vec![0u8; 3001];
                while at < LEN {
                    let n = buf.len().min((LEN - at) as usize);
                    fill_pattern(at, &mut buf[..n]);
                    w.write_all(&buf[..n]).await.unwrap();
                    at += n as u64;
                }
                w.flush().await.unwrap();
                w.shutdown().await.unwrap();
                // After the shutdown every write fails.
                let e = w.write_all(b"late").await.unwrap_err();
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
            });
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            assert_eq!(got.len() as u64, LEN);
            assert_eq!(check_pattern(0, &got), None);
            assert_eq!(r.read(&mut [0u8; 8]).await.unwrap(), 0, "EOF stays");
            writer.await.unwrap();
        });
        assert!(segment_gone(id), "segment {id} left behind");
    }
}

#[test]
fn futures_io_copy_then_eof() {
    let name = unique("astream-futures");
    let (mut w, mut r) = pair(&name, &opts().wait(Wait::Block));
    let id = w.segment_id();
    const LEN: u64 = 1 << 20;
    runtime().block_on(async move {
        let writer = tokio::spawn(async move {
            let mut buf = vec![0u8; LEN as usize];
            fill_pattern(0, &mut buf);
            futures_util::io::AsyncWriteExt::write_all(&mut w, &buf)
                .await
                .unwrap();
            futures_util::io::AsyncWriteExt::close(&mut w)
                .await
                .unwrap();
        });
        let mut got = Vec::new();
        futures_util::io::AsyncReadExt::read_to_end(&mut r, &mut got)
            .await
            .unwrap();
        assert_eq!(got.len() as u64, LEN);
        assert_eq!(check_pattern(0, &got), None);
        writer.await.unwrap();
    });
    assert!(segment_gone(id));
}

#[test]
fn cancelled_reads_lose_nothing() {
    let name = unique("astream-cancel");
    let (mut w, mut r) = pair(&name, &opts().wait(Wait::Block));
    let id = w.segment_id();
    const LEN: u64 = 1 << 19;
    let h = std::thread::spawn(move || {
        let mut rng = Rng(rand_u64());
        let mut at = 0u64;
        let mut buf = vec![0u8; 777];
        while at < LEN {
            let n = buf.len().min((LEN - at) as usize);
            fill_pattern(at, &mut buf[..n]);
            std::io::Write::write_all(&mut w, &buf[..n]).unwrap();
            at += n as u64;
            if rng.below(4) == 0 {
                std::thread::sleep(Duration::from_micros(rng.below(1500)));
            }
        }
        w.close().unwrap();
    });
    runtime().block_on(async {
        let mut rng = Rng(rand_u64());
        let mut at = 0u64;
        let mut buf = vec![0u8; 1500];
        let mut cancelled = 0u32;
        loop {
            let t = Duration::from_micros(rng.below(3) * rng.below(1000));
            match tokio::time::timeout(t, r.read(&mut buf)).await {
                Err(_) => cancelled += 1,
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => {
                    assert_eq!(check_pattern(at, &buf[..n]), None, "at {at}");
                    at += n as u64;
                }
                Ok(Err(e)) => panic!("{e}"),
            }
        }
        assert_eq!(at, LEN);
        eprintln!("{cancelled} reads cancelled by their timeout");
    });
    h.join().unwrap();
    drop(r);
    assert!(segment_gone(id));
}

#[test]
fn a_killed_writer_gives_peer_died_to_a_pending_read() {
    let name = unique("astream-kill");
    let mut c = spawn("child", "writer", &[("NAME", name.clone())], Stdio::piped());
    let mut r = StreamReader::connect(&Endpoint::name(&name), &opts()).unwrap();
    let id = r.segment_id();
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "child ended"
        );
    }
    let (took, err) = runtime().block_on(async {
        let mut got = vec![0u8; 1000];
        r.read_exact(&mut got).await.unwrap();
        assert_eq!(check_pattern(0, &got), None);
        let pending = tokio::time::timeout(Duration::from_millis(50), r.read(&mut got)).await;
        assert!(pending.is_err(), "nothing was written: {pending:?}");
        let t0 = Instant::now();
        sigkill(&c);
        let e = tokio::time::timeout(Duration::from_secs(5), r.read(&mut got))
            .await
            .expect("an error within 5 s")
            .unwrap_err();
        (t0.elapsed(), e)
    });
    let inner = err.into_inner().unwrap().downcast::<Error>().unwrap();
    assert!(inner.is_peer_died(), "{inner}");
    eprintln!("the async reader saw the writer's death after {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    c.wait().unwrap();
    drop(r);
    assert!(segment_gone(id));
}

/// The smallest executor: park the thread until woken.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark()
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Without tokio or futures: `read_some_async` / `write_some_async` on the
/// smallest executor, through a small ring, to the clean end.
#[test]
fn runtime_free_futures_on_the_smallest_executor() {
    let name = unique("astream-park");
    let (mut w, mut r) = pair(&name, &opts().capacity(1024).wait(Wait::Block));
    let id = w.segment_id();
    const LEN: u64 = 1 << 20;
    let h = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1000];
        let mut at = 0u64;
        while at < LEN {
            let n = buf.len().min((LEN - at) as usize);
            fill_pattern(at, &mut buf[..n]);
            let mut done = 0;
            while done < n {
                done += block_on(w.write_some_async(&buf[done..n])).unwrap();
            }
            at += n as u64;
        }
        w.close().unwrap();
    });
    let mut buf = vec![0u8; 700];
    let mut at = 0u64;
    loop {
        let n = block_on(r.read_some_async(&mut buf)).unwrap();
        if n == 0 {
            break;
        }
        assert_eq!(check_pattern(at, &buf[..n]), None, "at {at}");
        at += n as u64;
    }
    assert_eq!(at, LEN);
    h.join().unwrap();
    drop(r);
    assert!(segment_gone(id));
}
