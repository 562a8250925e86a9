//! `read_at` / `write_at` from several threads on the same bytes of one
//! attachment: allowed by the API (an `Attachment` is `Sync` and the copies
//! take `&self`), so it must be defined behaviour. The copies are byte-wise
//! atomic: a reader gets, byte by byte, values some writer stored, in any mix.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use svshm::Segment;

const LEN: usize = 4096;

#[test]
fn threads_racing_read_at_and_write_at_on_the_same_range_see_only_written_bytes() {
    let seg = Segment::create_private(LEN).unwrap();
    let _rm = seg.remove_on_drop();
    let att = seg.attach().unwrap();
    let stop = AtomicBool::new(false);
    // Two writers fill overlapping ranges with their own byte, at offsets that
    // split machine words differently; a reader checks that every byte it sees
    // is 0 (never written yet), 0xAA or 0x55.
    std::thread::scope(|s| {
        let writers = [(0xAAu8, 1usize, 3000usize), (0x55, 7, 2990)];
        for (byte, off, len) in writers {
            let (att, stop) = (&att, &stop);
            s.spawn(move || {
                let data = vec![byte; len];
                while !stop.load(Ordering::Relaxed) {
                    att.write_at(off, &data).unwrap();
                }
            });
        }
        let reader = s.spawn(|| {
            let mut buf = vec![0u8; LEN - 3];
            let mut mixed = 0u64;
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                att.read_at(3, &mut buf).unwrap();
                assert!(buf.iter().all(|b| matches!(b, 0 | 0xAA | 0x55)));
                if buf.contains(&0xAA) && buf.contains(&0x55) {
                    mixed += 1;
                }
            }
            mixed
        });
        let mixed = reader.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        eprintln!("reads that saw both writers' bytes: {mixed}");
    });
    // After the writers stop, the last full copy's bytes are all there.
    let mut tail = [0u8; 4];
    att.read_at(2997, &mut tail).unwrap();
    assert!(tail.iter().all(|b| matches!(b, 0xAA | 0x55)));
}

/// Copy speed of 64 KiB through `write_at` and `read_at`, for the record:
/// `cargo test -p svshm --release --test concurrent_copy -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn copy_speed_64k() {
    const N: usize = 64 * 1024;
    const ROUNDS: u32 = 20_000;
    let seg = Segment::create_private(N + 4096).unwrap();
    let _rm = seg.remove_on_drop();
    let att = seg.attach().unwrap();
    let data = vec![0x5Au8; N];
    let mut buf = vec![0u8; N];
    for (name, off) in [("aligned", 0usize), ("offset 3", 3)] {
        let t = Instant::now();
        for _ in 0..ROUNDS {
            att.write_at(off, std::hint::black_box(&data)).unwrap();
        }
        let w = t.elapsed() / ROUNDS;
        let t = Instant::now();
        for _ in 0..ROUNDS {
            att.read_at(off, std::hint::black_box(&mut buf)).unwrap();
        }
        let r = t.elapsed() / ROUNDS;
        let gbs = |d: Duration| N as f64 / d.as_secs_f64() / 1e9;
        eprintln!(
            "64 KiB {name}: write_at {w:?} ({:.1} GB/s), read_at {r:?} ({:.1} GB/s)",
            gbs(w),
            gbs(r)
        );
    }
    assert_eq!(buf, data);
}
