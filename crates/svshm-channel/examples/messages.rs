//! Whole messages over a message channel: a [`Sender`] sends with a copy
//! (`send`) and without one (`loan`: the message is written in place in the
//! ring, then published), and a [`Receiver`] takes them as owned vectors
//! (`recv`) or in place (`recv_ref`). The receiver runs on a thread here for
//! brevity; across processes the code is the same, each side connecting to the
//! same name.
//!
//! Only the sender's explicit `close()` ends the channel cleanly: the
//! receiver's `recv` then gives `Ok(None)` after the last message. A sender
//! dropped without closing makes it get `Error::Aborted` instead.
//!
//! `cargo run -p svshm-channel --example messages`

use std::time::Duration;
use svshm_channel::{Endpoint, Error, Options, Receiver, Sender};

const COUNT: u32 = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("messages-example-{}", std::process::id());
    let opts = Options::new()
        .max_message(4096)
        .timeout(Some(Duration::from_secs(10)));

    let (n, o) = (name.clone(), opts.clone());
    let receiver = std::thread::spawn(move || -> Result<(u32, u64), Error> {
        let mut rx = Receiver::connect(&Endpoint::name(n), &o)?;
        // The greeting, copied out.
        let hello = rx.recv()?.expect("a greeting before the end");
        println!("receiver: {:?}", String::from_utf8_lossy(&hello));
        // The numbered messages, read in place without a copy, until the
        // sender's close (`None`).
        let (mut count, mut total) = (0u32, 0u64);
        while let Some(m) = rx.recv_ref()? {
            let seq = u32::from_le_bytes(m[..4].try_into().unwrap());
            assert!(m[4..].iter().all(|&b| b == seq as u8), "message {seq}");
            count += 1;
            total += m.len() as u64;
            // Dropping `m` releases its bytes in the ring to the sender.
        }
        Ok((count, total))
    });

    let mut tx = Sender::connect(&Endpoint::name(&name), &opts)?;
    tx.send(b"hello, receiver")?;
    let mut sent = 0u64;
    for seq in 0..COUNT {
        let len = 4 + (seq as usize * 7) % 1000;
        // Zero-copy: borrow `len` bytes of the ring, fill them, publish.
        let mut msg = tx.loan(len)?;
        msg[..4].copy_from_slice(&seq.to_le_bytes());
        msg[4..].fill(seq as u8);
        msg.send();
        sent += len as u64;
    }
    // The clean end: without it the receiver would get `Aborted`.
    tx.close()?;

    let (count, total) = receiver.join().expect("receiver panicked")?;
    println!("sender: {COUNT} messages, {sent} bytes; receiver: {count} messages, {total} bytes");
    assert_eq!((count, total), (COUNT, sent));
    Ok(())
}
