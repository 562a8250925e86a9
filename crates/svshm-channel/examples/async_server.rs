//! A tokio server reading many writer processes at once: one task per
//! channel, no thread per channel (one process-wide waker thread sleeps on
//! every waiting channel's futex word).
//!
//! Spawns `WRITERS` copies of itself as writers, each sending `MESSAGES`
//! messages on its own channel, reads them all concurrently and prints a
//! summary.
//!
//! ```text
//! cargo run -p svshm-channel --example async_server --features tokio
//! ```

use std::process::Command;
use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Options, Receiver, Sender, Wait};

const WRITERS: usize = 16;
const MESSAGES: u64 = 20_000;

fn options() -> Options {
    Options::new()
        .capacity(64 << 10)
        .max_message(256)
        .wait(Wait::Block)
        .timeout(Some(Duration::from_secs(10)))
}

/// A writer process: sends `MESSAGES` numbered messages, then closes.
fn writer(name: &str, id: u64) -> svshm_channel::Result<()> {
    let mut tx = Sender::connect(&Endpoint::name(name), &options())?;
    let mut msg = [0u8; 64];
    for n in 0..MESSAGES {
        msg[..8].copy_from_slice(&id.to_le_bytes());
        msg[8..16].copy_from_slice(&n.to_le_bytes());
        tx.send(&msg)?;
    }
    tx.close()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "writer" {
        writer(&args[2], args[3].parse()?)?;
        return Ok(());
    }
    let t0 = Instant::now();
    let base = format!("async-server-{}", std::process::id());
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let name = format!("{base}-{i}");
        children.push(
            Command::new(&exe)
                .args(["writer", &name, &i.to_string()])
                .spawn()?,
        );
        tasks.push(tokio::spawn(async move {
            // Connecting waits for the writer: off the runtime's threads.
            let mut rx = tokio::task::spawn_blocking(move || {
                Receiver::connect(&Endpoint::name(name), &options())
            })
            .await
            .expect("the connecting task")?;
            let (mut count, mut bytes) = (0u64, 0u64);
            while let Some(m) = rx.recv_async().await? {
                let n = u64::from_le_bytes(m[8..16].try_into().unwrap());
                assert_eq!(n, count, "writer {i}: message {count} out of order");
                count += 1;
                bytes += m.len() as u64;
            }
            Ok::<_, svshm_channel::Error>((count, bytes))
        }));
    }
    let (mut total, mut bytes) = (0u64, 0u64);
    for (i, t) in tasks.into_iter().enumerate() {
        let (count, b) = t.await??;
        assert_eq!(count, MESSAGES, "writer {i}");
        total += count;
        bytes += b;
    }
    for mut c in children {
        assert!(c.wait()?.success());
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{WRITERS} writer processes, {total} messages ({:.1} MB) read by {WRITERS} tokio tasks in {secs:.2} s: {:.2} M messages/s",
        bytes as f64 / 1e6,
        total as f64 / secs / 1e6
    );
    Ok(())
}
