//! Target `frame`: message frame parsing, reached through the public
//! [`Receiver`] joining a channel whose (valid) header the fuzzer shapes and
//! whose ring and cursors it fills.
//!
//! Input: `[capacity selector] [max_message: u16] [tail: u32] [fill: u16]
//! [flags] [ring bytes...]`; the ring bytes are placed from the read position
//! on (wrapping), so they read as the frames that follow. Checked against a
//! plain model of the frame format (docs/ARCHITECTURE.md, "Messages"):
//!
//! - every message `try_recv` / `recv_with` returns is exactly the model's
//!   next frame (so it lies inside the ring, within the channel's maximum);
//! - the first failure is exactly the model's: `Corrupt` for a bad check word,
//!   a misplaced skip marker, a frame too long or straddling the end, or a
//!   clean close that does not add up; `Empty`, `Closed` or `Aborted` when no
//!   frame is tagged at the read position;
//! - nothing panics, nothing waits, nothing is written outside the ring.

use super::segment::{HEADER_SIZE, Hostile, Input, LAYOUT_VERSION, MAGIC, off};
use std::time::Duration;
use svshm_channel::{Endpoint, Error, Options, Receiver, TryRecvError};

const CAPS: [u64; 4] = [64, 128, 256, 4096];
const SKIP: u32 = u32::MAX;

/// What the model says a receive gives.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Message(Vec<u8>),
    Corrupt,
    Empty,
    Closed,
    Aborted,
}

struct Model<'a> {
    ring: &'a [u8],
    cap: u64,
    max: u64,
    head: u64,
    tail: u64,
    writer_closed: u32,
}

impl Model<'_> {
    fn byte(&self, cursor: u64) -> u8 {
        self.ring[(cursor % self.cap) as usize]
    }

    fn u32_at(&self, cursor: u64) -> u32 {
        u32::from_le_bytes(core::array::from_fn(|i| self.byte(cursor + i as u64)))
    }

    fn u64_at(&self, cursor: u64) -> u64 {
        u64::from_le_bytes(core::array::from_fn(|i| self.byte(cursor + i as u64)))
    }

    fn next(&mut self) -> Next {
        loop {
            // A frame is there when the tag at the read position is that
            // position inverted; `head` plays no part in reading.
            if self.u64_at(self.tail) != !self.tail {
                return match self.writer_closed {
                    0 => Next::Empty,
                    // A clean end must add up: the final cursor (`head` here)
                    // is where the last frame ends.
                    1 if self.tail == self.head => Next::Closed,
                    1 => Next::Corrupt,
                    _ => Next::Aborted,
                };
            }
            let len = self.u32_at(self.tail + 8);
            if self.u32_at(self.tail + 12) != !len {
                return Next::Corrupt;
            }
            let pos = self.tail % self.cap;
            if len == SKIP {
                if pos == 0 {
                    return Next::Corrupt;
                }
                self.tail += self.cap - pos;
                continue;
            }
            let len = u64::from(len);
            let frame = 16 + len.div_ceil(16) * 16;
            if len > self.max || pos + frame > self.cap {
                return Next::Corrupt;
            }
            let msg = (0..len).map(|i| self.byte(self.tail + 16 + i)).collect();
            self.tail += frame;
            return Next::Message(msg);
        }
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let cap = CAPS[usize::from(input.u8() % 4)];
    // A header the spec accepts: 1 <= max <= cap/2 - 16.
    let max = 1 + u64::from(input.u16()) % (cap / 2 - 16);
    let tail = u64::from(input.u32());
    let head = tail + u64::from(input.u16());
    let flags = input.u8();
    let writer_closed = u32::from(flags & 3);
    let zero_copy = flags & 4 != 0;
    let ring_bytes = input.rest();

    let size = HEADER_SIZE + cap as usize;
    let seg = Hostile::new(size);
    seg.write(0, &MAGIC);
    seg.write_u32(off::VERSION, LAYOUT_VERSION);
    seg.write_u32(off::KIND, 2);
    seg.write_u64(off::CAPACITY, cap);
    seg.write_u64(off::MAX_MESSAGE, max);
    seg.write_u64(off::DATA_OFFSET, HEADER_SIZE as u64);
    seg.claim_slot(off::WRITER);
    seg.write_u64(off::HEAD, head);
    seg.write_u64(off::TAIL, tail);
    // A clean close records the final cursor (inverted), which must add up.
    seg.write_u64(off::WRITER_FINAL, !head);
    seg.write_u32(off::WRITER_CLOSED, writer_closed);
    // Ring bytes from the read position on, wrapping once at most.
    let mut ring = vec![0u8; cap as usize];
    for (i, &b) in ring_bytes.iter().take(cap as usize).enumerate() {
        ring[((tail + i as u64) % cap) as usize] = b;
    }
    seg.write(HEADER_SIZE, &ring);
    seg.write_u32(off::STATE, 1);

    let opts = Options::new().timeout(Some(Duration::ZERO));
    let rx = Receiver::connect(&Endpoint::id(seg.id()), &opts);
    let cursors_ok = head - tail <= cap && head <= 1 << 62;
    let aligned = head % 16 == 0 && tail % 16 == 0;
    let mut rx = match rx {
        Ok(rx) => {
            assert!(cursors_ok && aligned, "accepted cursors {tail}..{head}");
            rx
        }
        Err(Error::Corrupt { .. }) => {
            assert!(!(cursors_ok && aligned), "refused cursors {tail}..{head}");
            return;
        }
        Err(e) => panic!("Receiver::connect: unexpected error {e:?}"),
    };
    assert_eq!(rx.max_message() as u64, max);

    let mut model = Model {
        ring: &ring,
        cap,
        max,
        head,
        tail,
        writer_closed,
    };
    // recv_ref waits for a frame, which only ends when the writer closed.
    let zero_copy = zero_copy && writer_closed != 0;
    for i in 0..64 {
        let want = model.next();
        let got = if zero_copy {
            match rx.recv_ref() {
                Ok(Some(m)) => Ok(m.to_vec()),
                Ok(None) => Err(TryRecvError::Disconnected),
                Err(e) => Err(TryRecvError::Failed(e)),
            }
        } else {
            rx.try_recv()
        };
        let got = match got {
            Ok(m) => Next::Message(m),
            Err(TryRecvError::Failed(Error::Corrupt { .. })) => Next::Corrupt,
            Err(TryRecvError::Empty) => Next::Empty,
            Err(TryRecvError::Disconnected) => Next::Closed,
            Err(TryRecvError::Failed(Error::Aborted { .. })) => Next::Aborted,
            Err(e) => panic!("receive: unexpected error {e:?}"),
        };
        assert_eq!(got, want, "receive #{i} disagrees with the model");
        if !matches!(want, Next::Message(_)) {
            break;
        }
    }
    drop(rx);
    // The receiver writes only its cursor, flags and slot: the ring's bytes
    // and the header's plain fields are as they were.
    assert_eq!(
        seg.read(HEADER_SIZE, cap as usize),
        ring,
        "ring bytes changed"
    );
    assert_eq!(seg.read(0, 8), MAGIC);
}

/// A frame at `cursor`: its tag (the cursor inverted), length, check word,
/// payload padded to 16.
fn frame(cursor: u64, msg: &[u8]) -> Vec<u8> {
    header(cursor, msg.len() as u32, msg)
}

fn header(cursor: u64, len: u32, msg: &[u8]) -> Vec<u8> {
    let mut v = (!cursor).to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&(!len).to_le_bytes());
    v.extend_from_slice(msg);
    v.resize(16 + msg.len().div_ceil(16) * 16, 0);
    v
}

/// Frames one after the other from `cursor` (no wrap).
fn frames(mut cursor: u64, msgs: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for m in msgs {
        let f = frame(cursor, m);
        cursor += f.len() as u64;
        v.extend_from_slice(&f);
    }
    v
}

fn input(cap_sel: u8, max: u16, tail: u32, ring: &[u8], flags: u8) -> Vec<u8> {
    let mut v = vec![cap_sel];
    v.extend_from_slice(&max.to_le_bytes());
    v.extend_from_slice(&tail.to_le_bytes());
    v.extend_from_slice(&(ring.len() as u16).to_le_bytes());
    v.push(flags);
    v.extend_from_slice(ring);
    v
}

/// Hand-made starting points: valid frames, a wrap with a skip marker, an
/// empty message, a closed writer, and each way a frame can be wrong.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let msgs: [&[u8]; 3] = [b"hello", b"", b"twelve bytes"];
    let three = frames(0, &msgs);
    out.push(input(3, 1000, 0, &three, 0));
    out.push(input(3, 1000, 0, &three, 1 | 4));
    out.push(input(3, 1000, 0, &three, 2));
    // The same a lap later (tail 4096 in a 4096-byte ring).
    out.push(input(3, 1000, 4096, &frames(4096, &msgs), 1));
    // The last frame written but not tagged, then a clean close: it does
    // not add up.
    let mut untagged = three.clone();
    untagged[48..56].fill(0);
    out.push(input(3, 1000, 0, &untagged, 1));
    // Tags of an earlier lap: nothing there yet.
    out.push(input(0, 40, 64, &frames(0, &msgs), 0));
    // 128-byte ring, tail at 112: a skip marker to the end, then a frame at 0.
    let mut wrap = header(112, SKIP, &[]);
    wrap.extend_from_slice(&frame(128, b"wrapped around"));
    out.push(input(1, 48, 112, &wrap, 1));
    // Bad check word; too long for max; straddling the end; a skip marker at 0.
    let mut bad = frame(0, b"x");
    bad[12] ^= 1;
    out.push(input(3, 1000, 0, &bad, 0));
    out.push(input(0, 4, 0, &frame(0, b"longer than four"), 0));
    out.push(input(0, 16, 48, &frame(48, b"0123456789"), 0));
    out.push(input(1, 48, 128, &header(128, SKIP, &[]), 0));
    // Unaligned cursors.
    out.push(input(3, 1000, 3, &frame(3, b"abc"), 0));
    out.push(input(3, 1000, 8, &frame(8, b"abc"), 0));
    out
}
