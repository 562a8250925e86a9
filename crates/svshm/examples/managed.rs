//! Named objects in a managed segment, shared by two processes: the parent
//! creates and formats a segment, constructs a typed object by name and
//! allocates a raw buffer whose *offset* (never a pointer) it stores in
//! another named object; a second process (this program re-executed with
//! `child KEY`) opens the segment, finds both by name and fills the buffer,
//! while both processes bump a shared counter under the segment's lock. The
//! parent then checks the result, lists the directory, frees everything and
//! removes the segment.
//!
//! `cargo run -p svshm --example managed`

use std::process::Command;
use svshm::managed::{Managed, type_tag};
use svshm::{Attachment, CreateOptions, Key, Offset, Segment};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A plain-bytes type: every bit pattern valid, no padding.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug)]
#[repr(C)]
struct Counter {
    hits: u64,
    last_pid: u32,
    _pad: u32,
}

/// Names the type and its version, so `find_tagged` refuses another type of
/// the same size.
const COUNTER_TAG: u64 = type_tag("svshm example Counter v1");
const BUF_LEN: usize = 256;
const ROUNDS: u64 = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(Key::new(args[2].parse()?));
    }

    let key = Key::from_name(&format!("svshm-example-managed-{}", std::process::id()));
    let m = Managed::create_segment(&CreateOptions::new(64 * 1024).key(key))?;
    // IPC_RMID when this guard drops (the end, or an error): the kernel frees
    // the segment once every attachment is gone.
    let _remove = m.region().segment().remove_on_drop();

    let zero = Counter {
        hits: 0,
        last_pid: 0,
        _pad: 0,
    };
    m.construct_tagged("counter", COUNTER_TAG, &zero)?;
    let buf = m.allocate(BUF_LEN, 16)?;
    m.construct("buffer offset", &buf.raw())?;

    let mut child = Command::new(std::env::current_exe()?)
        .arg("child")
        .arg(key.raw().to_string())
        .spawn()?;
    bump(&m, ROUNDS)?;
    assert!(child.wait()?.success(), "the child failed");

    let c = m.find_tagged::<Counter>("counter", COUNTER_TAG)?.read();
    assert_eq!(c.hits, 2 * ROUNDS, "no increment may be lost");
    println!("counter: {} hits, last by pid {}", c.hits, c.last_pid);

    let p = buf.resolve(m.region())?;
    let mut text = vec![0u8; BUF_LEN];
    // SAFETY: `p` is the start of our live BUF_LEN-byte block (bounds-checked by
    // `resolve`); the child has exited, so no one writes it meanwhile.
    unsafe { core::ptr::copy_nonoverlapping(p, text.as_mut_ptr(), BUF_LEN) };
    let text = String::from_utf8_lossy(&text);
    let text = text.trim_end_matches('\0');
    assert!(text.starts_with("written by the child"));
    println!("buffer: {text}");

    for e in m.entries()? {
        println!(
            "name {:?}: {} bytes at offset {}, tag {:#x}",
            e.name,
            e.size,
            e.offset.raw(),
            e.tag
        );
    }
    m.destroy("buffer offset")?;
    m.destroy("counter")?;
    m.deallocate(buf)?;
    let s = m.stats()?;
    assert_eq!((s.names, s.free_bytes), (0, s.heap_size()));
    println!(
        "after freeing: {} of {} heap bytes free in {} block(s)",
        s.free_bytes,
        s.heap_size(),
        s.free_blocks
    );
    Ok(())
}

/// Read-modify-write of the counter, each under the segment's lock so that
/// the other process cannot interleave.
fn bump(m: &Managed<Attachment>, rounds: u64) -> svshm::Result<()> {
    for _ in 0..rounds {
        let g = m.lock()?;
        let c = g.find_tagged::<Counter>("counter", COUNTER_TAG)?;
        let mut v = c.read();
        v.hits += 1;
        v.last_pid = std::process::id();
        c.write(&v);
    }
    Ok(())
}

/// The second process: opens the segment, finds the buffer by name and fills
/// it, and bumps the counter.
fn child(key: Key) -> Result<(), Box<dyn std::error::Error>> {
    // `open_segment` refuses a segment another user created under the key.
    let m = Managed::open_segment(Segment::open(key, 0)?)?;
    let buf = Offset::<u8>::new(m.find::<u64>("buffer offset")?.read());
    let msg = format!("written by the child, pid {}", std::process::id());
    let p = buf.resolve(m.region())?;
    assert!(msg.len() <= BUF_LEN);
    // SAFETY: the parent allocated BUF_LEN bytes at this offset for us and does
    // not touch them until we exit; `resolve` checked the start is in bounds.
    unsafe { core::ptr::copy_nonoverlapping(msg.as_ptr(), p, msg.len()) };
    bump(&m, ROUNDS)?;
    Ok(())
}
