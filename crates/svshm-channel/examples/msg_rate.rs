//! Sends N 64-byte messages to a child process and reports messages/s, and
//! runs a 64-byte ping-pong for round-trip latency: a quick sanity check (the
//! real comparison is `svshm-bench`).
//!
//! `cargo run --release -p svshm-channel --example msg_rate -- [COUNT] [spin|adaptive|block]`

use std::time::Instant;
use svshm_channel::{Endpoint, Options, Receiver, Sender, Wait};

fn wait_mode(s: &str) -> Wait {
    match s {
        "spin" => Wait::Spin,
        "block" => Wait::Block,
        _ => Wait::Adaptive,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000_000);
    let wait = wait_mode(args.get(2).map_or("adaptive", |s| s.as_str()));
    let opts = Options::new().wait(wait).max_message(64);
    if let Ok(name) = std::env::var("MSG_RATE_CHILD") {
        let mut rx = Receiver::connect(&Endpoint::name(format!("{name}-a")), &opts).unwrap();
        let mut n = 0u64;
        while let Ok(Some(_)) = rx.recv_ref() {
            n += 1;
        }
        eprintln!("child received {n}");
        // Ping-pong: echo.
        let mut rx = Receiver::connect(&Endpoint::name(format!("{name}-ping")), &opts).unwrap();
        let mut tx = Sender::connect(&Endpoint::name(format!("{name}-pong")), &opts).unwrap();
        let mut buf = Vec::new();
        while rx.recv_into(&mut buf).is_ok() {
            tx.send(&buf).unwrap();
        }
        return;
    }
    let name = format!("msg-rate-{}", std::process::id());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(&args[1..])
        .env("MSG_RATE_CHILD", &name)
        .spawn()
        .unwrap();
    let mut tx = Sender::connect(&Endpoint::name(format!("{name}-a")), &opts).unwrap();
    let msg = [7u8; 64];
    let t0 = Instant::now();
    for _ in 0..count {
        tx.send(&msg).unwrap();
    }
    drop(tx);
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{count} x 64 B in {secs:.2} s = {:.2} M msgs/s",
        count as f64 / secs / 1e6
    );
    let mut ping = Sender::connect(&Endpoint::name(format!("{name}-ping")), &opts).unwrap();
    let mut pong = Receiver::connect(&Endpoint::name(format!("{name}-pong")), &opts).unwrap();
    let mut lat = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..100_000 {
        let t = Instant::now();
        ping.send(&msg).unwrap();
        pong.recv_into(&mut buf).unwrap();
        lat.push(t.elapsed().as_nanos() as u64);
    }
    drop(ping);
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    println!(
        "round trip 64 B: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        p(0.5),
        p(0.99),
        p(0.999),
        lat[lat.len() - 1]
    );
    child.wait().unwrap();
}
