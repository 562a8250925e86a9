//! The life of one System V segment, across two processes: create it under a
//! name-derived key, attach it and write, let a second process (this program
//! re-executed with `child KEY`) open it by key, read the greeting and write a
//! reply, then read the reply back, look at the kernel's record (`stat`) and
//! remove the segment. Nothing is left behind, even if a step fails.
//!
//! `cargo run -p svshm --example segment_basics`

use std::process::Command;
use svshm::{ErrorKind, Key, Segment};

const SIZE: usize = 4096;
const GREETING: &[u8] = b"hello from the creator";
const REPLY_AT: usize = 1024;
const REPLY: &[u8] = b"hello back from the child";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(Key::new(args[2].parse()?));
    }

    // Create: exclusive, mode 0600, under a key derived from a name and our uid.
    let key = Key::from_name(&format!("svshm-example-basics-{}", std::process::id()));
    let seg = Segment::create(key, SIZE)?;
    // Removes the segment if anything below fails; disarmed at the end.
    let guard = seg.remove_on_drop();
    println!("created segment id {} under key {key}", seg.id());

    // Attach read-write and write the greeting.
    let mem = seg.attach()?;
    mem.write_at(0, GREETING)?;

    // The other process opens the segment by key and answers.
    let status = Command::new(std::env::current_exe()?)
        .arg("child")
        .arg(key.raw().to_string())
        .status()?;
    assert!(status.success(), "the child failed: {status}");

    let mut reply = vec![0u8; REPLY.len()];
    mem.read_at(REPLY_AT, &mut reply)?;
    assert_eq!(reply, REPLY);
    println!("parent read: {}", String::from_utf8_lossy(&reply));

    // The kernel's record of the segment.
    let info = seg.stat()?;
    println!(
        "stat: size {} bytes, mode {:o}, {} attachment(s), created by pid {}, last shmat/shmdt by pid {}",
        info.size, info.mode, info.attach_count, info.creator_pid, info.last_pid
    );
    assert_eq!(info.size, SIZE as u64);
    assert_eq!(info.attach_count, 1); // only ours: the child has detached

    // Detach, then remove: the key is free again.
    mem.detach()?;
    guard.disarm().remove()?;
    let gone = Segment::open(key, 0).unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    println!("removed; opening the key again says: {gone}");
    Ok(())
}

/// The second process: opens the segment by key, reads, replies.
fn child(key: Key) -> Result<(), Box<dyn std::error::Error>> {
    let seg = Segment::open(key, SIZE)?;
    let mem = seg.attach()?;
    let mut greeting = vec![0u8; GREETING.len()];
    mem.read_at(0, &mut greeting)?;
    assert_eq!(greeting, GREETING);
    println!(
        "child {} read: {}",
        std::process::id(),
        String::from_utf8_lossy(&greeting)
    );
    mem.write_at(REPLY_AT, REPLY)?;
    Ok(())
}
