//! What the spawned endpoint processes do (the hidden `__role` subcommand).
//!
//! The driver passes a [`ChildConfig`] as JSON. The child pins itself, closes
//! the inherited descriptors it does not use, opens its channel ends, prints
//! `ready`, waits for `go` on stdin (so both sides start together, after all
//! connection set-up), runs the workload, and prints one JSON [`ChildReport`].

// Unsafe: closes descriptors inherited from the driver that this role does not use.
#![allow(unsafe_code)]

use crate::floor;
use crate::stats::Latency;
use crate::transport::{ChanSpec, Kind, Wait, open_rx, open_tx};
use crate::util::{
    body_matches, cpu_ns, expected_word_sum, now_ns, pattern, pin_current_thread, read_stamp,
    rss_peak_kib, stamp, stamp_sum, word_sum,
};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::time::Instant;

/// The work one run does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Workload {
    /// One-way byte stream: `bytes / chunk` writes of `chunk` bytes.
    Stream {
        /// Bytes per write and per read.
        chunk: usize,
        /// Total bytes.
        bytes: u64,
    },
    /// Round trips of `size` bytes; the first `warmup` are not recorded.
    PingPong {
        /// Payload bytes each way.
        size: usize,
        /// Recorded round trips.
        iters: u64,
        /// Unrecorded round trips before them.
        warmup: u64,
    },
    /// One-way messages of `size` bytes, `count` of them.
    Messages {
        /// Bytes per message.
        size: usize,
        /// Number of messages.
        count: u64,
    },
}

impl Workload {
    /// Payload bytes per send.
    pub fn payload(&self) -> usize {
        match *self {
            Workload::Stream { chunk, .. } => chunk,
            Workload::PingPong { size, .. } | Workload::Messages { size, .. } => size,
        }
    }

    /// (unit length, unit count) for one-way workloads.
    fn one_way(&self) -> Option<(usize, u64)> {
        match *self {
            Workload::Stream { chunk, bytes } => Some((chunk, bytes / chunk as u64)),
            Workload::Messages { size, count } => Some((size, count)),
            Workload::PingPong { .. } => None,
        }
    }

    /// `(size, iters, warmup)` of a ping-pong workload.
    fn ping_pong(&self) -> Option<(usize, u64, u64)> {
        match *self {
            Workload::PingPong {
                size,
                iters,
                warmup,
            } => Some((size, iters, warmup)),
            Workload::Stream { .. } | Workload::Messages { .. } => None,
        }
    }
}

/// Which end of the run a child is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// One-way sender (channel 0 is its Tx).
    Writer,
    /// One-way receiver (channel 0 is its Rx).
    Reader,
    /// Round-trip initiator: sends on channel 0, receives on channel 1, measures.
    Ping,
    /// Echo: receives on channel 0, sends on channel 1.
    Pong,
    /// Both ends as two threads of one process (the floor).
    Floor,
    /// The framed-ring floor of the spin ping-pong (two threads).
    FramedFloor,
}

/// Everything a child needs, passed as JSON on its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildConfig {
    /// What this process does.
    pub role: Role,
    /// Transport (None for the floor).
    pub kind: Option<Kind>,
    /// The work.
    pub workload: Workload,
    /// Wait mode.
    pub wait: Wait,
    /// CPUs to pin to: one for an endpoint, two (writer, reader) for the floor.
    pub cpus: Vec<usize>,
    /// The channels, in role order.
    pub chans: Vec<ChanSpec>,
    /// Inherited descriptors this child must close (the other side's ends).
    pub close_fds: Vec<i32>,
    /// Ring bytes (floor only).
    pub ring: usize,
}

/// What a child reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChildReport {
    /// CLOCK_MONOTONIC when the timed part began (writer / ping / floor).
    pub t_start: u64,
    /// CLOCK_MONOTONIC when it ended (reader: last byte checked).
    pub t_end: u64,
    /// Whether every payload checked out.
    pub verified: bool,
    /// Round-trip times (ping and floor ping-pong).
    pub latency: Option<Latency>,
    /// Peak RSS of this process (VmHWM), KiB.
    pub rss_peak_kib: u64,
    /// CPU time this process used from the start signal to its report,
    /// divided by the wall time between the two: 1.0 is one core kept busy.
    #[serde(default)]
    pub cpu_busy: f64,
    /// CPU time (user + system, all threads) this process used from the
    /// start signal to its report, in nanoseconds.
    #[serde(default)]
    pub cpu_ns: u64,
}

/// (CLOCK_MONOTONIC, process CPU time) when the driver said "go".
static AT_GO: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

/// Entry point of `svshm-bench __role JSON`.
pub fn child_main(json: &str) -> Result<()> {
    let cfg: ChildConfig = serde_json::from_str(json).context("parse child config")?;
    for &fd in &cfg.close_fds {
        // SAFETY: the driver lists descriptors it passed to us that this role
        // does not use; nothing in this process has adopted them.
        unsafe { libc::close(fd) };
    }
    if !matches!(cfg.role, Role::Floor | Role::FramedFloor) {
        if let Some(&cpu) = cfg.cpus.first() {
            pin_current_thread(cpu)?;
        }
    }
    match cfg.role {
        Role::Writer => writer(&cfg),
        Role::Reader => reader(&cfg),
        Role::Ping => ping(&cfg),
        Role::Pong => pong(&cfg),
        Role::Floor => emit(floor::run(&cfg, ready)?),
        Role::FramedFloor => emit(floor::framed(&cfg, ready)?),
    }
}

/// Prints the report, then waits for `exit` from the driver before returning
/// (and so before the caller drops its channel ends): a sender must not go
/// away before its receiver has everything — some transports (iceoryx2)
/// discard what is still queued when the publisher disappears.
fn emit(mut report: ChildReport) -> Result<()> {
    report.rss_peak_kib = rss_peak_kib();
    if let Some(&(t0, c0)) = AT_GO.get() {
        let wall = now_ns().saturating_sub(t0).max(1);
        report.cpu_ns = cpu_ns().saturating_sub(c0);
        report.cpu_busy = report.cpu_ns as f64 / wall as f64;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        out.flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(())
}

/// Tells the driver we are connected and waits for the start signal.
pub fn ready() -> Result<()> {
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready")?;
        out.flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "go" {
        bail!("expected \"go\" from the driver, got {line:?}");
    }
    let _ = AT_GO.set((now_ns(), cpu_ns()));
    Ok(())
}

fn kind(cfg: &ChildConfig) -> Result<Kind> {
    cfg.kind.context("endpoint role without a transport")
}

fn chan(cfg: &ChildConfig, i: usize) -> Result<&ChanSpec> {
    cfg.chans
        .get(i)
        .with_context(|| format!("role {:?} needs channel {i}", cfg.role))
}

fn writer(cfg: &ChildConfig) -> Result<()> {
    let (len, n) = cfg
        .workload
        .one_way()
        .context("writer needs a one-way workload")?;
    let mut tx = open_tx(kind(cfg)?, chan(cfg, 0)?, cfg.wait)?;
    let mut buf = pattern(len);
    ready()?;
    let t_start = now_ns();
    for i in 0..n {
        stamp(&mut buf, i);
        tx.send(&buf)?;
    }
    tx.close()?;
    let t_end = now_ns();
    emit(ChildReport {
        t_start,
        t_end,
        verified: true,
        ..Default::default()
    })
}

/// Receives `n` units of `len` bytes and checks them; returns whether all
/// checked out. Copying readers check both stamps of every unit and a running
/// stamp sum; in-place readers add up every word where it lies. Both compare
/// the first and last unit whole.
pub fn receive_units(
    rx: &mut dyn crate::transport::Rx,
    in_place: bool,
    len: usize,
    n: u64,
) -> Result<bool> {
    let mut ok = true;
    if in_place {
        let base = word_sum(&pattern(len));
        for i in 0..n {
            rx.recv_in_place(len, &mut |p: &[u8]| {
                ok &= read_stamp(p) == Some(i) && word_sum(p) == expected_word_sum(base, i);
                if i == 0 || i + 1 == n {
                    ok &= body_matches(p);
                }
            })
            .with_context(|| format!("receiving unit {i} of {n}"))?;
        }
    } else {
        let mut buf = vec![1u8; len];
        let mut sum = 0u64;
        for i in 0..n {
            rx.recv(&mut buf)
                .with_context(|| format!("receiving unit {i} of {n}"))?;
            let s = read_stamp(&buf);
            ok &= s == Some(i);
            sum = sum.wrapping_add(s.unwrap_or(u64::MAX));
            if i == 0 || i + 1 == n {
                ok &= body_matches(&buf);
            }
        }
        ok &= sum == stamp_sum(n);
    }
    Ok(ok)
}

fn reader(cfg: &ChildConfig) -> Result<()> {
    let (len, n) = cfg
        .workload
        .one_way()
        .context("reader needs a one-way workload")?;
    let k = kind(cfg)?;
    let mut rx = open_rx(k, chan(cfg, 0)?, cfg.wait)?;
    ready()?;
    let t_start = now_ns();
    let verified = receive_units(rx.as_mut(), k.reads_in_place(), len, n)?;
    let t_end = now_ns();
    rx.finish()?;
    emit(ChildReport {
        t_start,
        t_end,
        verified,
        ..Default::default()
    })
}

/// Runs `warmup + iters` rounds of `round(i)`, `i` counting from 0; each
/// round returns the instant its timed part began, and is timed from then
/// until it returns. The report's `t_start` and `t_end` bracket all rounds,
/// its latency covers the `iters` rounds after the warm-up, and it says
/// `verified` (the caller's own checks may say otherwise).
pub(crate) fn timed_rounds(
    warmup: u64,
    iters: u64,
    mut round: impl FnMut(u64) -> Result<Instant>,
) -> Result<ChildReport> {
    let mut samples = Vec::with_capacity(iters as usize);
    let t_start = now_ns();
    for i in 0..warmup + iters {
        let t = round(i)?;
        let dt = t.elapsed().as_nanos() as u64;
        if i >= warmup {
            samples.push(dt);
        }
    }
    let t_end = now_ns();
    Ok(ChildReport {
        t_start,
        t_end,
        verified: true,
        latency: Some(Latency::from_samples(&mut samples)),
        rss_peak_kib: 0,
        cpu_busy: 0.0,
        cpu_ns: 0,
    })
}

fn ping(cfg: &ChildConfig) -> Result<()> {
    let (size, iters, warmup) = cfg
        .workload
        .ping_pong()
        .context("ping needs a ping-pong workload")?;
    let k = kind(cfg)?;
    let mut tx = open_tx(k, chan(cfg, 0)?, cfg.wait)?;
    let mut rx = open_rx(k, chan(cfg, 1)?, cfg.wait)?;
    let mut buf = pattern(size);
    let mut back = vec![1u8; size];
    let mut ok = true;
    ready()?;
    let report = timed_rounds(warmup, iters, |i| {
        stamp(&mut buf, i);
        let t = Instant::now();
        tx.send(&buf)?;
        if k.reads_in_place() {
            rx.recv_in_place(size, &mut |p: &[u8]| ok &= read_stamp(p) == Some(i))?;
        } else {
            rx.recv(&mut back)?;
            ok &= read_stamp(&back) == Some(i);
        }
        Ok(t)
    })?;
    ok &= k.reads_in_place() || body_matches(&back);
    tx.close()?;
    rx.finish()?;
    emit(ChildReport {
        verified: ok,
        ..report
    })
}

fn pong(cfg: &ChildConfig) -> Result<()> {
    let (size, iters, warmup) = cfg
        .workload
        .ping_pong()
        .context("pong needs a ping-pong workload")?;
    let k = kind(cfg)?;
    let mut rx = open_rx(k, chan(cfg, 0)?, cfg.wait)?;
    let mut tx = open_tx(k, chan(cfg, 1)?, cfg.wait)?;
    let mut buf = vec![1u8; size];
    ready()?;
    let t_start = now_ns();
    for _ in 0..warmup + iters {
        if k.reads_in_place() {
            let mut res = Ok(());
            rx.recv_in_place(size, &mut |p: &[u8]| res = tx.send(p))?;
            res?;
        } else {
            rx.recv(&mut buf)?;
            tx.send(&buf)?;
        }
    }
    let t_end = now_ns();
    rx.finish()?;
    tx.close()?;
    emit(ChildReport {
        t_start,
        t_end,
        verified: true,
        ..Default::default()
    })
}
