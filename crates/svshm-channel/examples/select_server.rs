//! One thread serving many writers with `Select`: this program starts eight
//! writer processes (itself, re-executed), each sending a few numbered
//! messages on its own channel at its own pace; the server waits on all
//! eight channels at once and prints what arrives, until every writer has
//! closed. One of the writers dies half-way (it exits without closing), and
//! the server hears of it as that channel's event.
//!
//! ```sh
//! cargo run -p svshm-channel --example select_server
//! ```

use std::time::Duration;
use svshm_channel::{Endpoint, Error, Options, Receiver, Select, Sender, TryRecvError};

const WRITERS: usize = 8;
const MESSAGES: u32 = 5;

fn opts() -> Options {
    Options::new().timeout(Some(Duration::from_secs(10)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "writer" {
        return writer(&args[2], args[3].parse()?);
    }
    let names: Vec<String> = (0..WRITERS)
        .map(|i| format!("select-server-{}-{i}", std::process::id()))
        .collect();
    let mut children = Vec::new();
    for (i, name) in names.iter().enumerate() {
        children.push(
            std::process::Command::new(std::env::current_exe()?)
                .args(["writer", name, &i.to_string()])
                .spawn()?,
        );
    }
    let mut rxs = names
        .iter()
        .map(|n| Receiver::<str>::connect_typed(&Endpoint::name(n.as_str()), &opts()))
        .collect::<svshm_channel::Result<Vec<_>>>()?;
    let mut open: Vec<usize> = (0..WRITERS).collect();
    let mut received = 0;
    while !open.is_empty() {
        // A Select borrows the receivers only to look at them: build it
        // anew each turn, over the channels still open.
        let i = {
            let mut sel = Select::new();
            for &i in &open {
                sel.recv(&rxs[i]);
            }
            open[sel.select()]
        };
        match rxs[i].try_recv() {
            Ok(text) => {
                received += 1;
                println!("writer {i}: {text}");
            }
            Err(TryRecvError::Empty) => {} // woken, but someone was quicker
            Err(TryRecvError::Disconnected) => {
                println!("writer {i}: closed");
                open.retain(|&j| j != i);
            }
            Err(TryRecvError::Failed(e @ (Error::Aborted { .. } | Error::PeerDied { .. }))) => {
                println!("writer {i}: ended without closing ({e})");
                open.retain(|&j| j != i);
            }
            Err(TryRecvError::Failed(e)) => return Err(e.into()),
        }
    }
    for mut c in children {
        c.wait()?;
    }
    println!("{received} messages from {WRITERS} writers, one thread, no polling");
    Ok(())
}

/// A writer process: messages at its own pace; writer 3 leaves half-way
/// without closing.
fn writer(name: &str, i: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut tx = Sender::<str>::connect_typed(&Endpoint::name(name), &opts())?;
    for n in 0..MESSAGES {
        std::thread::sleep(Duration::from_millis(5 * (i + 1)));
        tx.send(&format!("message {n}"))?;
        if i == 3 && n == MESSAGES / 2 {
            std::process::exit(0); // no close: the server gets an error, not an end
        }
    }
    tx.close()?;
    Ok(())
}
