//! Zero-copy on the byte stream: the writer produces its bytes directly in the
//! shared ring ([`StreamWriter::reserve`] lends the free space at the write
//! position, [`StreamWriter::commit`] publishes what was filled) and the
//! reader checks them where they lie ([`StreamReader::peek`] lends the
//! readable bytes, [`StreamReader::consume_bytes`] gives the space back), so
//! no byte is copied through a private buffer on either side. The reader runs
//! on a thread here for brevity; across processes the code is the same.
//!
//! A reserved slice ends at the ring's end, so a writer may get less than it
//! wants: it commits what it filled and reserves again. The stream ends
//! cleanly only with the writer's explicit `close()`.
//!
//! `cargo run -p svshm-channel --example zero_copy`

use std::time::Duration;
use svshm_channel::{Endpoint, Options, StreamReader, StreamWriter};

const TOTAL: u64 = 16 << 20;

/// The byte at stream position `pos`: a pattern that a lost, doubled or
/// misplaced byte breaks (251 is prime, so it does not align with the ring).
fn byte_at(pos: u64) -> u8 {
    (pos % 251) as u8
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("zero-copy-example-{}", std::process::id());
    let opts = Options::new()
        .capacity(64 << 10)
        .timeout(Some(Duration::from_secs(10)));

    let (n, o) = (name.clone(), opts.clone());
    let reader = std::thread::spawn(move || -> svshm_channel::Result<(u64, u64)> {
        let mut r = StreamReader::connect(&Endpoint::name(n), &o)?;
        let (mut pos, mut peeks) = (0u64, 0u64);
        loop {
            let data = r.peek()?;
            if data.is_empty() {
                return Ok((pos, peeks)); // the writer closed: end of stream
            }
            for (i, &b) in data.iter().enumerate() {
                assert_eq!(b, byte_at(pos + i as u64), "byte {}", pos + i as u64);
            }
            let n = data.len();
            r.consume_bytes(n)?;
            pos += n as u64;
            peeks += 1;
        }
    });

    let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts)?;
    let (mut pos, mut reserves) = (0u64, 0u64);
    while pos < TOTAL {
        let space = w.reserve()?;
        let n = space.len().min((TOTAL - pos) as usize);
        for (i, b) in space[..n].iter_mut().enumerate() {
            *b = byte_at(pos + i as u64);
        }
        w.commit(n)?;
        pos += n as u64;
        reserves += 1;
    }
    // The clean end of stream: dropping `w` instead would abort it.
    w.close()?;

    let (got, peeks) = reader.join().expect("reader panicked")?;
    println!(
        "wrote {pos} bytes in {reserves} reserve/commit steps; the reader checked {got} bytes in {peeks} peeks, in place"
    );
    assert_eq!(got, TOTAL);
    Ok(())
}
