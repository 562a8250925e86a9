//! Many channels, one waiting thread: round trips and message rate through a
//! `Select` over 1…256 channels against one channel's blocking round trip,
//! and the CPU a thread uses while it selects on 256 idle channels.
//!
//! Two threads of this process, pinned to different CPUs where there are
//! two: a client sends a 64-byte request on one of N request channels
//! (chosen at random), a server that sleeps in `Select` over all N receives
//! it and answers on one response channel, where the client sleeps in a
//! blocking `recv`. Every end waits with `Wait::Block`, so each hop is a
//! futex hand-off: this measures the wake-up path, not spinning.

use crate::stats::{Latency, median};
use crate::util::{allowed_cpus, cpu_ns, now_ns, pin_current_thread};
use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Options, Receiver, Select, Sender, TryRecvError, Wait};

/// Payload bytes of a request and a response.
const PAYLOAD: usize = 64;

/// One row: a channel count and what was measured with it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Channels the server selects over (0: the one-channel blocking
    /// baseline, no `Select`).
    pub channels: usize,
    /// Round trips (medians of the runs' percentiles).
    pub latency: Latency,
    /// One-way messages per second, spread over the channels.
    pub msgs_per_s: f64,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct Many {
    /// The baseline first, then each channel count.
    pub rows: Vec<Row>,
    /// CPU time of the process while a thread selects on this many idle
    /// channels…
    pub idle_channels: usize,
    /// …in nanoseconds per second of waiting.
    pub idle_cpu_ns_per_s: f64,
}

fn opts() -> Options {
    Options::new()
        .capacity(16 << 10)
        .wait(Wait::Block)
        .timeout(Some(Duration::from_secs(30)))
}

fn name(tag: &str, i: usize) -> String {
    format!("bench-many-{}-{tag}-{i}", std::process::id())
}

/// The server's ends: the request receivers and the response sender.
type ServerEnds = (Vec<Receiver>, Sender);
/// The client's ends: the request senders and the response receiver.
type ClientEnds = (Vec<Sender>, Receiver);

/// Connects `n` request channels and one response channel.
fn connect(n: usize, tag: &str) -> Result<(ServerEnds, ClientEnds)> {
    let tag2 = tag.to_string();
    let server = std::thread::spawn(move || -> svshm_channel::Result<_> {
        let rxs = (0..n)
            .map(|i| Receiver::connect(&Endpoint::name(name(&tag2, i)), &opts()))
            .collect::<svshm_channel::Result<Vec<_>>>()?;
        let resp = Sender::connect(&Endpoint::name(name(&tag2, n)), &opts())?;
        Ok((rxs, resp))
    });
    let txs = (0..n)
        .map(|i| Sender::connect(&Endpoint::name(name(tag, i)), &opts()))
        .collect::<svshm_channel::Result<Vec<_>>>()?;
    let resp = Receiver::connect(&Endpoint::name(name(tag, n)), &opts())?;
    let server = server
        .join()
        .map_err(|_| anyhow!("connecting thread panicked"))??;
    Ok((server, (txs, resp)))
}

/// Pins the calling thread to the `k`-th CPU this process could use when it
/// started (read once: pinning a thread narrows what later reads would see).
fn pin(k: usize) {
    static CPUS: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    let cpus = CPUS.get_or_init(allowed_cpus);
    if cpus.len() >= 2 {
        let _ = pin_current_thread(cpus[k % cpus.len()]);
    }
}

/// The server: answers every request until a request channel ends. With
/// `select` false (one channel), a plain blocking `recv`.
fn serve(mut rxs: Vec<Receiver>, mut resp: Sender, select: bool) -> Result<()> {
    pin(0);
    let mut buf = Vec::with_capacity(PAYLOAD);
    loop {
        let i = if select {
            let mut sel = Select::new();
            for rx in &rxs {
                sel.recv(rx);
            }
            sel.select()
        } else {
            0
        };
        let got = if select {
            match rxs[i].try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Empty) => continue,
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Failed(e)) => return Err(e.into()),
            }
        } else {
            rxs[i].recv_into(&mut buf)?.map(|_| buf.clone())
        };
        match got {
            Some(m) => resp.send(&m)?,
            None => return Ok(()),
        }
    }
}

/// Round trips for about `seconds`: the sorted samples.
fn round_trips(n: usize, select: bool, seconds: f64) -> Result<Latency> {
    let ((rxs, resp_tx), (mut txs, mut resp)) = connect(n, &format!("rt{n}{select}"))?;
    let server = std::thread::spawn(move || serve(rxs, resp_tx, select));
    pin(1);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut msg = vec![0u8; PAYLOAD];
    let mut back = Vec::with_capacity(PAYLOAD);
    let mut samples = Vec::new();
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut k = 0u64;
    while Instant::now() < end || samples.len() < 100 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let i = (rng % n as u64) as usize;
        msg[..8].copy_from_slice(&k.to_le_bytes());
        let t0 = now_ns();
        txs[i].send(&msg)?;
        resp.recv_into(&mut back)?
            .context("the server ended early")?;
        let t = now_ns() - t0;
        if back != msg {
            return Err(anyhow!(
                "round trip {k}: the answer differs from the request"
            ));
        }
        if k >= 50 {
            samples.push(t); // the first ones warm up
        }
        k += 1;
    }
    for tx in txs {
        tx.close()?;
    }
    server
        .join()
        .map_err(|_| anyhow!("server thread panicked"))??;
    Ok(Latency::from_samples(&mut samples))
}

/// One-way messages for about `seconds`, round robin over `n` channels, the
/// server draining whatever `Select` says is ready: messages per second.
fn rate(n: usize, seconds: f64) -> Result<f64> {
    let ((mut rxs, resp_tx), (txs, resp)) = connect(n, &format!("rate{n}"))?;
    drop((resp_tx, resp));
    let server = std::thread::spawn(move || -> Result<u64> {
        pin(0);
        let mut count = 0u64;
        let mut open = n;
        let mut ended = vec![false; n];
        while open > 0 {
            let i = {
                let mut sel = Select::new();
                let idx: Vec<usize> = (0..n).filter(|&i| !ended[i]).collect();
                for &i in &idx {
                    sel.recv(&rxs[i]);
                }
                idx[sel.select()]
            };
            loop {
                match rxs[i].try_recv() {
                    Ok(_) => count += 1,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        ended[i] = true;
                        open -= 1;
                        break;
                    }
                    Err(TryRecvError::Failed(e)) => return Err(e.into()),
                }
            }
        }
        Ok(count)
    });
    pin(1);
    let mut txs = txs;
    let msg = vec![7u8; PAYLOAD];
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(seconds);
    let mut sent = 0u64;
    while Instant::now() < end {
        for _ in 0..64 {
            txs[(sent % n as u64) as usize].send(&msg)?;
            sent += 1;
        }
    }
    for tx in txs {
        tx.close()?;
    }
    let got = server
        .join()
        .map_err(|_| anyhow!("server thread panicked"))??;
    let secs = t0.elapsed().as_secs_f64();
    if got != sent {
        return Err(anyhow!("sent {sent} messages, the server counted {got}"));
    }
    Ok(got as f64 / secs)
}

/// CPU nanoseconds per second of this process while a thread selects on `n`
/// idle channels for `seconds`.
fn idle_cpu(n: usize, seconds: f64) -> Result<f64> {
    let ((rxs, resp_tx), (txs, resp)) = connect(n, "idle")?;
    let t = std::thread::spawn(move || {
        // The whole process: the selecting thread, the helpers that wait on
        // the words past the first 128, the peer watcher.
        let cpu0 = cpu_ns();
        let t0 = Instant::now();
        let mut sel = Select::new();
        for rx in &rxs {
            sel.recv(rx);
        }
        let r = sel.select_timeout(Duration::from_secs_f64(seconds));
        let cpu = cpu_ns() - cpu0;
        (r.is_err(), cpu as f64 / t0.elapsed().as_secs_f64())
    });
    let (timed_out, cpu) = t.join().map_err(|_| anyhow!("idle thread panicked"))?;
    if !timed_out {
        return Err(anyhow!("an idle channel woke the select"));
    }
    for tx in txs {
        tx.close()?;
    }
    drop((resp_tx, resp));
    Ok(cpu)
}

/// Medians over `runs` runs of each measurement. Runs in threads of its own,
/// so that pinning leaves the calling thread as it was.
pub fn run(counts: &[usize], runs: usize, seconds: f64) -> Result<Many> {
    let counts = counts.to_vec();
    std::thread::spawn(move || run_pinned(&counts, runs, seconds))
        .join()
        .map_err(|_| anyhow!("the select benchmark panicked"))?
}

fn run_pinned(counts: &[usize], runs: usize, seconds: f64) -> Result<Many> {
    let mut rows = Vec::new();
    for (n, select) in std::iter::once((1, false)).chain(counts.iter().map(|&n| (n, true))) {
        let mut lats = Vec::new();
        let mut rates = Vec::new();
        for _ in 0..runs.max(1) {
            lats.push(round_trips(n, select, seconds)?);
            rates.push(if select { rate(n, seconds)? } else { f64::NAN });
        }
        let latency = Latency::median_of(&lats);
        rows.push(Row {
            channels: if select { n } else { 0 },
            latency,
            msgs_per_s: median(&rates),
        });
        eprintln!(
            "select: {} channels: p50 {} ns",
            if select {
                n.to_string()
            } else {
                "1 (no Select)".into()
            },
            latency.p50
        );
    }
    let idle_channels = 256;
    let idle_cpu_ns_per_s = idle_cpu(idle_channels, seconds.max(1.0))?;
    Ok(Many {
        rows,
        idle_channels,
        idle_cpu_ns_per_s,
    })
}

impl Many {
    /// The baseline's p50: one channel, a blocking `recv`.
    fn baseline_p50(&self) -> f64 {
        self.rows
            .iter()
            .find(|r| r.channels == 0)
            .map_or(f64::NAN, |r| r.latency.p50 as f64)
    }

    /// Whether the targets hold: a round trip through `Select` over the
    /// largest count within 1.5× the one-channel blocking round trip, and
    /// idle CPU under 0.5% of a core.
    pub fn verdicts(&self) -> Vec<(String, bool)> {
        let base = self.baseline_p50();
        let mut v = Vec::new();
        if let Some(big) = self
            .rows
            .iter()
            .filter(|r| r.channels > 0)
            .max_by_key(|r| r.channels)
        {
            let ratio = big.latency.p50 as f64 / base;
            v.push((
                format!(
                    "round trip through Select over {} channels ≤ 1.5× one channel's Wait::Block round trip: {:.2}×",
                    big.channels, ratio
                ),
                ratio <= 1.5,
            ));
        }
        let pct = self.idle_cpu_ns_per_s / 1e7;
        v.push((
            format!(
                "a thread selecting on {} idle channels uses ≈ no CPU (≤ 0.5% of a core): {pct:.3}%",
                self.idle_channels
            ),
            pct <= 0.5,
        ));
        v
    }

    /// The markdown section.
    pub fn markdown(&self) -> String {
        let base = self.baseline_p50();
        let mut s = String::new();
        s.push_str(
            "| channels | round trip p50 | p99 | p99.9 | vs one channel, Block | messages/s |\n",
        );
        s.push_str("|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.rows {
            let label = if r.channels == 0 {
                "1, no `Select` (`recv`, Block)".to_string()
            } else {
                format!("{}, `Select`", r.channels)
            };
            let rate = if r.msgs_per_s.is_finite() {
                format!("{:.2} M", r.msgs_per_s / 1e6)
            } else {
                "—".into()
            };
            let _ = writeln!(
                s,
                "| {label} | {:.1} µs | {:.1} µs | {:.1} µs | {:.2}× | {rate} |",
                r.latency.p50 as f64 / 1e3,
                r.latency.p99 as f64 / 1e3,
                r.latency.p999 as f64 / 1e3,
                r.latency.p50 as f64 / base,
            );
        }
        let _ = writeln!(
            s,
            "\nWhile a thread selected on {} idle channels, the process used {:.1} µs of CPU per second ({:.3}% of a core).\n",
            self.idle_channels,
            self.idle_cpu_ns_per_s / 1e3,
            self.idle_cpu_ns_per_s / 1e7
        );
        for (text, met) in self.verdicts() {
            let _ = writeln!(s, "- {} {text}", if met { "**met**" } else { "**missed**" });
        }
        s
    }
}
