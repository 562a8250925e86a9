//! Moves N GiB from this process to a child through a stream channel and
//! reports the throughput: a quick sanity check (the real comparison is
//! `svshm-bench`).
//!
//! `cargo run --release -p svshm-channel --example pipe_speed -- [GIB] [CHUNK]`

use std::io::{Read, Write};
use std::time::Instant;
use svshm_channel::{Endpoint, Options, StreamReader, StreamWriter};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let gib: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(4);
    let chunk: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64 << 10);
    let total = gib << 30;
    if let Ok(name) = std::env::var("PIPE_SPEED_READER") {
        let mut r = StreamReader::connect(&Endpoint::name(name), &Options::new()).unwrap();
        let mut buf = vec![0u8; chunk];
        let mut sum = 0u64;
        let mut got = 0u64;
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            sum = sum
                .wrapping_add(u64::from(buf[0]))
                .wrapping_add(u64::from(buf[n - 1]));
            got += n as u64;
        }
        println!("{got} {sum}");
        return;
    }
    let name = format!("pipe-speed-{}", std::process::id());
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(&args[1..])
        .env("PIPE_SPEED_READER", &name)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let cap: usize = std::env::var("RING")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1 << 20);
    let mut w =
        StreamWriter::connect(&Endpoint::name(&name), &Options::new().capacity(cap)).unwrap();
    let buf = vec![0x5au8; chunk];
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        w.write_all(&buf).unwrap();
        sent += chunk as u64;
    }
    w.close().unwrap();
    let out = child.wait_with_output().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{} GiB in {:.2} s = {:.2} GB/s (chunk {} B; reader said {})",
        gib,
        secs,
        sent as f64 / secs / 1e9,
        chunk,
        String::from_utf8_lossy(&out.stdout).trim()
    );
}
