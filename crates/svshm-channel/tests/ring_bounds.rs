//! Regression tests from review: the public `ring` module's safe methods
//! (RawMem::write/read, Producer::put/advance, Consumer::take/advance) check
//! their bounds in every build, so no safe call writes outside the memory a
//! RawMem was given. (They once relied on debug_assert: release builds wrote
//! past the ring.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use svshm_channel::ring::{Cursors, Mem, Producer, RawMem};

const CAP: usize = 64;
const CANARY: usize = 256;

fn canary_intact(buf: &[u8]) -> bool {
    buf[CAP..].iter().all(|&b| b == 0x5A)
}

#[test]
fn safe_put_cannot_write_past_the_ring() {
    let mut buf = vec![0u8; CAP];
    buf.resize(CAP + CANARY, 0x5A); // bytes after the ring: not the ring's
    let cur = Box::<Cursors>::default();
    // SAFETY: correct use: `buf` holds CAP bytes at its start and outlives `p`;
    // `cur` outlives `p`; one producer.
    let mut p =
        unsafe { Producer::new(&*cur, RawMem::new(buf.as_mut_ptr(), CAP), CAP as u64) }.unwrap();
    // Safe call, precondition violated: more bytes than free.
    let r = catch_unwind(AssertUnwindSafe(|| p.put(&[0xAB; 200])));
    let _ = p;
    assert!(
        r.is_err() && canary_intact(&buf),
        "put() of 200 bytes into a {CAP}-byte ring returned normally = {} and wrote past it = {}",
        r.is_ok(),
        !canary_intact(&buf)
    );
}

#[test]
fn safe_rawmem_write_cannot_write_past_its_len() {
    let mut buf = vec![0u8; CAP];
    buf.resize(CAP + CANARY, 0x5A);
    // SAFETY: buf holds CAP mapped bytes and outlives `m`.
    let m = unsafe { RawMem::new(buf.as_mut_ptr(), CAP) };
    let r = catch_unwind(AssertUnwindSafe(|| m.write(CAP, &[0xAB; 16])));
    assert!(
        r.is_err() && canary_intact(&buf),
        "RawMem::write past len: returned normally = {}, canary clobbered = {}",
        r.is_ok(),
        !canary_intact(&buf)
    );
}

/// The tag words of message frames (`Mem::tag`/`set_tag`/`clear_tag` on a
/// RawMem) are bounds- and alignment-checked as well.
#[test]
fn safe_tag_access_cannot_reach_past_the_ring() {
    // u64s, so that the ring's start is 8-aligned as a segment's data area is.
    let mut words = vec![0x5A5A_5A5A_5A5A_5A5Au64; (CAP + CANARY) / 8];
    let base = words.as_mut_ptr().cast::<u8>();
    // SAFETY: `words` holds CAP + CANARY bytes at `base` and outlives `m`.
    let m = unsafe { RawMem::new(base, CAP) };
    for pos in [CAP, CAP - 4, 3, usize::MAX - 7] {
        let set = catch_unwind(AssertUnwindSafe(|| m.set_tag(pos, 1)));
        let clear = catch_unwind(AssertUnwindSafe(|| m.clear_tag(pos)));
        let load = catch_unwind(AssertUnwindSafe(|| m.tag(pos)));
        assert!(
            set.is_err() && clear.is_err() && load.is_err(),
            "tag access at {pos} in a {CAP}-byte ring was not refused"
        );
    }
    m.set_tag(CAP - 8, 7);
    assert_eq!(m.tag(CAP - 8), 7);
    m.clear_tag(CAP - 8);
    assert_eq!(m.tag(CAP - 8), 0);
    let _ = m;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    assert!(canary_intact(&bytes), "a tag access wrote past the ring");
}
