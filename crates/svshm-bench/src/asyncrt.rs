//! Async round trips on tokio: svshm's `send_async`/`recv_async` against
//! tokio's `UnixStream`, 64 bytes each way between two tasks of one
//! multi-thread runtime (two workers).

use crate::stats::Latency;
use crate::util::now_ns;
use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Options, Receiver, Sender, Wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PAYLOAD: usize = 64;

/// One way of doing the round trip and its latencies.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured.
    pub what: String,
    /// Round trips (medians over the runs of each percentile).
    pub latency: Latency,
}

/// The result: svshm Adaptive (the default), svshm Block, tokio UnixStream.
#[derive(Debug, Clone, Serialize)]
pub struct AsyncRt {
    /// The rows, in that order.
    pub rows: Vec<Row>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .context("tokio runtime")
}

/// svshm: a request channel and a response channel, an echo task and a
/// client task.
fn svshm(wait: Wait, seconds: f64, run: usize) -> Result<Vec<u64>> {
    let opts = Options::new()
        .capacity(64 << 10)
        .wait(wait)
        .timeout(Some(Duration::from_secs(30)));
    let name = |s: &str| format!("bench-async-{}-{run}-{wait:?}-{s}", std::process::id());
    let (o2, req, resp) = (opts.clone(), name("req"), name("resp"));
    let server_ends = std::thread::spawn(move || -> svshm_channel::Result<(Receiver, Sender)> {
        Ok((
            Receiver::connect(&Endpoint::name(req), &o2)?,
            Sender::connect(&Endpoint::name(resp), &o2)?,
        ))
    });
    let mut tx = Sender::connect(&Endpoint::name(name("req")), &opts)?;
    let mut rx = Receiver::connect(&Endpoint::name(name("resp")), &opts)?;
    let (mut srx, mut stx) = server_ends
        .join()
        .map_err(|_| anyhow!("connecting thread panicked"))??;
    let rt = runtime()?;
    rt.block_on(async move {
        let server = tokio::spawn(async move {
            while let Some(m) = srx.recv_async().await? {
                stx.send_async(&m).await?;
            }
            stx.close()
        });
        let client = tokio::spawn(async move {
            let mut msg = vec![0u8; PAYLOAD];
            let mut samples = Vec::new();
            let end = Instant::now() + Duration::from_secs_f64(seconds);
            let mut k = 0u64;
            while Instant::now() < end || samples.len() < 100 {
                msg[..8].copy_from_slice(&k.to_le_bytes());
                let t0 = now_ns();
                tx.send_async(&msg).await?;
                let back = rx
                    .recv_async()
                    .await?
                    .ok_or_else(|| anyhow!("the echo task ended early"))?;
                let t = now_ns() - t0;
                if back != msg {
                    return Err(anyhow!("round trip {k}: the answer differs"));
                }
                if k >= 100 {
                    samples.push(t);
                }
                k += 1;
            }
            tx.close()?;
            Ok::<_, anyhow::Error>(samples)
        });
        let samples = client.await??;
        server.await??;
        Ok(samples)
    })
}

/// tokio's `UnixStream`: an echo task and a client task on a socket pair.
fn unix(seconds: f64) -> Result<Vec<u64>> {
    let rt = runtime()?;
    rt.block_on(async move {
        let (mut a, mut b) = tokio::net::UnixStream::pair()?;
        let server = tokio::spawn(async move {
            let mut buf = [0u8; PAYLOAD];
            loop {
                match b.read_exact(&mut buf).await {
                    Ok(_) => b.write_all(&buf).await?,
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                    Err(e) => return Err(anyhow::Error::from(e)),
                }
            }
        });
        let client = tokio::spawn(async move {
            let mut msg = [0u8; PAYLOAD];
            let mut back = [0u8; PAYLOAD];
            let mut samples = Vec::new();
            let end = Instant::now() + Duration::from_secs_f64(seconds);
            let mut k = 0u64;
            while Instant::now() < end || samples.len() < 100 {
                msg[..8].copy_from_slice(&k.to_le_bytes());
                let t0 = now_ns();
                a.write_all(&msg).await?;
                a.read_exact(&mut back).await?;
                let t = now_ns() - t0;
                if back != msg {
                    return Err(anyhow!("round trip {k}: the answer differs"));
                }
                if k >= 100 {
                    samples.push(t);
                }
                k += 1;
            }
            drop(a);
            Ok::<_, anyhow::Error>(samples)
        });
        let samples = client.await??;
        server.await??;
        Ok(samples)
    })
}

fn summarize(what: &str, runs: Vec<Vec<u64>>) -> Row {
    let lats: Vec<Latency> = runs
        .into_iter()
        .map(|mut s| Latency::from_samples(&mut s))
        .collect();
    Row {
        what: what.to_string(),
        latency: Latency::median_of(&lats),
    }
}

/// Medians over `runs` alternating runs of each way.
pub fn run(runs: usize, seconds: f64) -> Result<AsyncRt> {
    let (mut ad, mut bl, mut ux) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..runs.max(1) {
        ad.push(svshm(Wait::Adaptive, seconds, r)?);
        bl.push(svshm(Wait::Block, seconds, r)?);
        ux.push(unix(seconds)?);
    }
    Ok(AsyncRt {
        rows: vec![
            summarize("svshm `recv_async`/`send_async`, Adaptive (default)", ad),
            summarize("svshm `recv_async`/`send_async`, Block", bl),
            summarize("tokio `UnixStream`", ux),
        ],
    })
}

impl AsyncRt {
    /// Whether svshm's default (Adaptive) p50 is at most half tokio's
    /// `UnixStream`'s.
    pub fn verdicts(&self) -> Vec<(String, bool)> {
        let unix = self.rows[2].latency.p50 as f64;
        let ad = self.rows[0].latency.p50 as f64 / unix;
        let bl = self.rows[1].latency.p50 as f64 / unix;
        vec![(
            format!(
                "async round trip p50 ≤ 0.5× tokio `UnixStream`'s: {ad:.3}× with the default Adaptive wait ({bl:.2}× with Block)"
            ),
            ad <= 0.5,
        )]
    }

    /// The markdown table and verdicts.
    pub fn markdown(&self) -> String {
        let unix = self.rows[2].latency.p50 as f64;
        let mut s = String::from(
            "| tokio, 2 workers, 64 B each way | p50 | p99 | p99.9 | vs `UnixStream` |\n|---|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {:.2} µs | {:.2} µs | {:.2} µs | {:.3}× |",
                r.what,
                r.latency.p50 as f64 / 1e3,
                r.latency.p99 as f64 / 1e3,
                r.latency.p999 as f64 / 1e3,
                r.latency.p50 as f64 / unix
            );
        }
        s.push('\n');
        for (text, met) in self.verdicts() {
            let _ = writeln!(s, "- {} {text}", if met { "**met**" } else { "**missed**" });
        }
        s
    }
}
