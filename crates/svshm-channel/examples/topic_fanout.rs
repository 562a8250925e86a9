//! One publisher, three subscriber processes: this program starts three
//! subscribers (itself, re-executed), publishes numbered price ticks — a
//! zerocopy struct, written once into the topic's ring and read by every
//! subscriber — then closes the topic. Each subscriber checks that it got
//! every tick, in order, and prints a summary. Nothing is left behind: the
//! topic's key goes at `close`, its segment when the last subscriber leaves.
//!
//! ```sh
//! cargo run -p svshm-channel --example topic_fanout
//! ```

use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Options, Publisher, Subscriber};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const SUBSCRIBERS: usize = 3;
const TICKS: u64 = 100_000;

#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
struct Tick {
    seq: u64,
    price_cents: u64,
    volume: u32,
    _pad: u32,
}

fn tick(seq: u64) -> Tick {
    Tick {
        seq,
        price_cents: 10_000 + seq % 500,
        volume: (seq % 97) as u32,
        _pad: 0,
    }
}

fn opts() -> Options {
    Options::new()
        .capacity(64 << 10)
        .timeout(Some(Duration::from_secs(5)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "subscriber" {
        return subscriber(&args[2], &args[3]);
    }
    let name = format!("topic-fanout-{}", std::process::id());
    let ep = Endpoint::name(name.as_str());
    // The publisher creates the topic first; subscribers wait for it.
    let mut publisher = Publisher::<Tick>::create_typed(&ep, &opts())?;
    let mut children = Vec::new();
    for i in 0..SUBSCRIBERS {
        children.push(
            std::process::Command::new(std::env::current_exe()?)
                .args(["subscriber", &name, &i.to_string()])
                .spawn()?,
        );
    }
    // Ticks published before a subscriber joined are not for it (no
    // history asked): wait for all three before the first.
    let t0 = Instant::now();
    while publisher.subscribers() < SUBSCRIBERS {
        if t0.elapsed() > Duration::from_secs(5) {
            return Err("the subscribers did not come".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let t0 = Instant::now();
    for seq in 0..TICKS {
        publisher.send(&tick(seq))?;
    }
    let took = t0.elapsed();
    for s in publisher.subscriber_list() {
        println!(
            "publisher: subscriber pid {} in slot {} is {} ticks behind",
            s.pid, s.slot, s.lag
        );
    }
    publisher.close()?;
    println!(
        "publisher: {TICKS} ticks to {SUBSCRIBERS} subscribers in {took:.2?} ({:.1} M ticks/s each)",
        TICKS as f64 / took.as_secs_f64() / 1e6
    );
    for mut c in children {
        let status = c.wait()?;
        if !status.success() {
            return Err(format!("a subscriber failed: {status}").into());
        }
    }
    Ok(())
}

fn subscriber(name: &str, index: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut sub = Subscriber::<Tick>::connect_typed(&Endpoint::name(name), &opts())?;
    let (mut next, mut turnover) = (0u64, 0u64);
    while let Some(t) = sub.recv()? {
        if t.seq != next || t.price_cents != tick(next).price_cents {
            return Err(format!("subscriber {index}: tick {} where {next} was due", t.seq).into());
        }
        turnover += t.price_cents * u64::from(t.volume);
        next += 1;
    }
    println!("subscriber {index}: all {next} ticks in order, turnover {turnover} cents");
    Ok(())
}
