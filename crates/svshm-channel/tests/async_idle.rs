//! The waker threads' idle cost, alone in its test binary (another test's
//! traffic would show in the measure): 256 futures pending on live but
//! silent peers, one second, the threads' CPU time.

use std::time::Duration;
use svshm_channel::{Endpoint, Options, Receiver, Sender, Wait};

fn opts() -> Options {
    Options::new()
        .capacity(4096)
        .max_message(512)
        .wait(Wait::Block)
        .timeout(Some(Duration::from_secs(20)))
}

/// A connected pair on `name`: the sender connects in a thread.
fn pair(name: &str, o: &Options) -> (Sender, Receiver) {
    let (n, o2) = (name.to_string(), o.clone());
    let h = std::thread::spawn(move || Sender::connect(&Endpoint::name(n), &o2).unwrap());
    let rx = Receiver::connect(&Endpoint::name(name), o).unwrap();
    (h.join().unwrap(), rx)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// CPU time of thread `tid` of this process so far: nanoseconds from
/// schedstat where the kernel has it, else utime + stime ticks from stat.
fn thread_cpu_ns(tid: &str) -> u64 {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")) {
        if let Some(ns) = s.split(' ').next().and_then(|f| f.parse().ok()) {
            return ns;
        }
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of stat(5), counted from the state (field 3).
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks * 1_000_000_000 / rustix::param::clock_ticks_per_second()
}

fn waker_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| {
            let tid = e.ok()?.file_name().into_string().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
            comm.starts_with("svshm-async").then_some(tid)
        })
        .collect()
}

#[test]
fn the_waker_thread_is_idle_while_256_futures_wait() {
    const N: usize = 256;
    let name = svshm_testkit::unique_name("async-idle");
    let pairs: Vec<(Sender, Receiver)> = (0..N)
        .map(|i| pair(&format!("{name}-{i}"), &opts().wait(Wait::Block)))
        .collect();
    let (txs, rxs): (Vec<Sender>, Vec<Receiver>) = pairs.into_iter().unzip();
    let rt = runtime();
    let (ns, threads) = rt.block_on(async move {
        let tasks: Vec<_> = rxs
            .into_iter()
            .map(|mut rx| tokio::spawn(async move { rx.recv_async().await.map(|m| (m, rx)) }))
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let threads = waker_threads();
        assert!(
            threads.len() >= N.div_ceil(126),
            "waker threads: {threads:?}"
        );
        let before: u64 = threads.iter().map(|t| thread_cpu_ns(t)).sum();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after: u64 = threads.iter().map(|t| thread_cpu_ns(t)).sum();
        // Then every receiver gets its message (and every segment goes).
        let ids: Vec<i32> = txs.iter().map(|t| t.segment_id()).collect();
        let mut txs = txs;
        for tx in &mut txs {
            tx.send_async(b"wake").await.unwrap();
        }
        for t in tasks {
            let (m, _rx) = t.await.unwrap().unwrap();
            assert_eq!(m.as_deref(), Some(&b"wake"[..]));
        }
        drop(txs);
        for id in ids {
            assert!(svshm_testkit::segment_gone(id), "segment {id} left behind");
        }
        (after - before, threads.len())
    });
    let us = ns / 1000;
    eprintln!(
        "waker threads ({threads}) used {us} µs of CPU in an idle second with {N} pending futures"
    );
    // Generous: a loaded CI machine stretches every wake-up.
    assert!(us <= 50_000, "{us} µs of CPU in an idle second");
}
