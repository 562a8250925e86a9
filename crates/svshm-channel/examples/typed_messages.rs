//! Typed messages between two processes: a [`Sender<Order>`] in this process
//! and a [`Receiver<Order>`] in a second one (this program re-executed with
//! `receiver NAME`). `Order` is a plain `#[repr(C)]` struct deriving
//! zerocopy's traits, so it travels as its own bytes, with no serialization.
//!
//! On receipt every message is copied out of the segment and validated: the
//! `Side` enum must hold one of its discriminants, the `bool` a 0 or 1. To
//! show it, the parent also sends one message of raw bytes through a second,
//! untyped sender view of the same idea — here, bytes that claim `side = 7`
//! — and the receiver reports it as `Error::BadMessage` and goes on; it never
//! holds an invalid `Order`.
//!
//! `cargo run -p svshm-channel --example typed_messages`

use std::process::{Command, Stdio};
use std::time::Duration;
use svshm_channel::{Endpoint, Error, Options, Receiver, Sender};
use zerocopy::{Immutable, IntoBytes, KnownLayout, TryFromBytes};

#[derive(IntoBytes, TryFromBytes, KnownLayout, Immutable, Debug, Clone, Copy, PartialEq)]
#[repr(u8)]
enum Side {
    Buy = 1,
    Sell = 2,
}

/// 24 bytes, no padding (IntoBytes checks that at compile time).
#[derive(IntoBytes, TryFromBytes, KnownLayout, Immutable, Debug, Clone, Copy, PartialEq)]
#[repr(C)]
struct Order {
    id: u64,
    price_cents: u64,
    quantity: u32,
    side: Side,
    urgent: bool,
    _reserved: [u8; 2],
}

const ORDERS: u64 = 10_000;

fn options() -> Options {
    Options::new()
        .max_message(64)
        .timeout(Some(Duration::from_secs(10)))
}

fn order(id: u64) -> Order {
    Order {
        id,
        price_cents: 10_000 + id % 500,
        quantity: (id % 100) as u32 + 1,
        side: if id % 2 == 0 { Side::Buy } else { Side::Sell },
        urgent: id % 7 == 0,
        _reserved: [0; 2],
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("receiver") {
        return receiver(&args[2]);
    }

    let name = format!("typed-example-{}", std::process::id());
    let child = Command::new(std::env::current_exe()?)
        .arg("receiver")
        .arg(&name)
        .stdout(Stdio::piped())
        .spawn()?;

    let sent = (|| -> Result<u64, Error> {
        let mut tx = Sender::<Order>::connect_typed(&Endpoint::name(&name), &options())?;
        for id in 0..ORDERS {
            tx.send(&order(id))?;
        }
        tx.close()?; // the end: the receiver's iteration stops here
        Ok(ORDERS)
    })();
    let out = child.wait_with_output()?;
    let sent = sent?;
    assert!(out.status.success(), "the receiver failed: {}", out.status);
    let said = String::from_utf8(out.stdout)?;
    println!("sent {sent} orders; receiver says: {}", said.trim());
    let total: u64 = (0..ORDERS).map(|i| u64::from(order(i).quantity)).sum();
    assert_eq!(said.trim(), format!("{ORDERS} orders, {total} units"));
    bad_bytes_demo()?;
    Ok(())
}

/// The receiving process: sums the orders until the sender's close.
fn receiver(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let rx = Receiver::<Order>::connect_typed(&Endpoint::name(name), &options())?;
    let (mut n, mut units) = (0u64, 0u64);
    for order in rx {
        let order = order?; // an invalid message or a dead sender: an error
        assert_eq!(order.id, n, "orders arrive in order");
        n += 1;
        units += u64::from(order.quantity);
    }
    println!("{n} orders, {units} units");
    Ok(())
}

/// A sender of raw bytes on an `Order` channel (as a buggy or hostile program
/// would be): the receiver gets `BadMessage` for the invalid one, then goes on.
fn bad_bytes_demo() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("typed-example-bad-{}", std::process::id());
    let n2 = name.clone();
    let rx = std::thread::spawn(move || -> Result<Vec<String>, Error> {
        let mut rx = Receiver::<Order>::connect_typed(&Endpoint::name(n2), &options())?;
        let mut seen = Vec::new();
        loop {
            match rx.recv() {
                Ok(Some(o)) => seen.push(format!("order {}", o.id)),
                Ok(None) => return Ok(seen),
                Err(Error::BadMessage { detail, .. }) => seen.push(format!("rejected: {detail}")),
                Err(e) => return Err(e),
            }
        }
    });
    let mut raw = Sender::connect(&Endpoint::name(&name), &options())?;
    let mut bytes = order(1).as_bytes().to_vec();
    bytes[20] = 7; // `side`: no such variant
    raw.send(&bytes)?;
    raw.send(order(2).as_bytes())?;
    raw.close()?;
    let seen = rx.join().expect("receiver thread panicked")?;
    for s in &seen {
        println!("untyped sender -> typed receiver: {s}");
    }
    assert_eq!(seen.len(), 2);
    assert!(seen[0].starts_with("rejected: the bytes are not a valid"));
    assert_eq!(seen[1], "order 2");
    Ok(())
}
