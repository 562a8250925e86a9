//! Zero-copy on the byte stream: the writer produces its bytes directly in the
//! shared ring ([`StreamWriter::write_chunk`] lends free space, the chunk's
//! `commit` publishes what was filled) and the reader checks them where they
//! lie ([`StreamReader::read_chunk`] lends the readable bytes, the chunk's
//! `consume` gives the space back), so no byte is copied through a private
//! buffer on either side. The reader runs on a thread here for brevity;
//! across processes the code is the same.
//!
//! A chunk is two slices, because free space and readable data may wrap
//! around the ring's end. The stream ends cleanly only with the writer's
//! explicit `close()`.
//!
//! `cargo run -p svshm-channel --example zero_copy`

use std::time::Duration;
use svshm_channel::{Endpoint, Options, StreamReader, StreamWriter};

const TOTAL: u64 = 16 << 20;
const CHUNK: u64 = 8 << 10;

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
        let (mut pos, mut chunks) = (0u64, 0u64);
        loop {
            let chunk = r.read_chunk()?;
            if chunk.is_empty() {
                return Ok((pos, chunks)); // the writer closed: end of stream
            }
            let (first, second) = chunk.as_slices();
            for (i, &b) in first.iter().chain(second).enumerate() {
                assert_eq!(b, byte_at(pos + i as u64), "byte {}", pos + i as u64);
            }
            let n = chunk.len();
            chunk.consume_all();
            pos += n as u64;
            chunks += 1;
        }
    });

    let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts)?;
    let (mut pos, mut chunks) = (0u64, 0u64);
    while pos < TOTAL {
        let n = CHUNK.min(TOTAL - pos);
        let mut chunk = w.write_chunk(n as usize)?;
        let (first, second) = chunk.as_mut_slices();
        for (i, b) in first.iter_mut().chain(second).enumerate() {
            *b = byte_at(pos + i as u64);
        }
        chunk.commit_all();
        pos += n;
        chunks += 1;
    }
    // The clean end of stream: dropping `w` instead would abort it.
    w.close()?;

    let (got, read_chunks) = reader.join().expect("reader panicked")?;
    println!(
        "wrote {pos} bytes in {chunks} chunks; the reader checked {got} bytes in {read_chunks} chunks, in place"
    );
    assert_eq!(got, TOTAL);
    Ok(())
}
