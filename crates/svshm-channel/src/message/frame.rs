//! The frame format of a message ring: header, padding, skip marker, and the
//! parser that validates every frame a (possibly hostile) writer published.

use crate::ring::{Consumer, Mem, RingError};

pub(super) const SKIP: u32 = u32::MAX;

/// Largest message any channel carries: the frame length is a u32 and
/// `u32::MAX` is the skip marker.
pub const MAX_MESSAGE: u64 = (u32::MAX - 16) as u64;
/// The frame header: the tag word, then the length and its complement.
pub(super) const FRAME_HEADER: u64 = 16;
/// Frames start at multiples of this: a skip marker (a bare header) always
/// fits before the ring's end, and a header never straddles a cache line.
pub(super) const FRAME_ALIGN: u64 = 16;
/// Free bytes a send needs beyond its frame: the tag word after it, cleared
/// (see [`Producer::publish_frame`]).
pub(super) const NEXT_TAG: u64 = crate::ring::TAG_LEN;

/// Bytes a message of `len` bytes takes in the ring.
pub(crate) fn frame_len(len: u64) -> u64 {
    FRAME_HEADER + len.div_ceil(FRAME_ALIGN) * FRAME_ALIGN
}

pub(super) fn encode(len: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&len.to_le_bytes());
    h[4..].copy_from_slice(&(!len).to_le_bytes());
    h
}

/// Parses the frame at the consumer's read position, skipping wrap markers.
/// `Ok(None)`: no frame is tagged there yet (wait, then call again). Every
/// length and position is validated against the ring: a hostile writer gets
/// [`RingError::Corrupt`], never an out-of-bounds read.
pub(crate) fn parse_frame<M: Mem>(
    cons: &mut Consumer<M>,
    max_message: u64,
) -> Result<Option<(usize, usize)>, RingError> {
    let cap = cons.capacity();
    loop {
        let pos = cons.tail() & (cap - 1);
        if pos % FRAME_ALIGN != 0 || cap < 2 * FRAME_HEADER {
            return Err(RingError::Corrupt(format!(
                "frame position {pos} is not {FRAME_ALIGN}-aligned in a ring of {cap} bytes"
            )));
        }
        if !cons.tag_ready() {
            return Ok(None);
        }
        // The tag matched: the header and payload the writer stored before
        // it are visible.
        let mut h = [0u8; 8];
        cons.mem().read(pos as usize + 8, &mut h);
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let check = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if check != !len {
            return Err(RingError::Corrupt(format!(
                "frame header {h:02x?} fails its check"
            )));
        }
        if len == SKIP {
            let to_end = cap - pos;
            if pos == 0 {
                return Err(RingError::Corrupt(
                    "skip marker at the start of the ring".into(),
                ));
            }
            cons.accept(to_end)?;
            cons.advance(to_end);
            continue;
        }
        if u64::from(len) > max_message {
            return Err(RingError::Corrupt(format!(
                "frame of {len} bytes exceeds the channel's maximum of {max_message}"
            )));
        }
        let frame = frame_len(u64::from(len));
        if pos + frame > cap {
            return Err(RingError::Corrupt(format!(
                "frame of {frame} bytes at {pos} straddles the ring's end"
            )));
        }
        cons.accept(frame)?;
        return Ok(Some(((pos + FRAME_HEADER) as usize, len as usize)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_8_aligned() {
        assert_eq!(frame_len(0), 16);
        assert_eq!(frame_len(1), 32);
        assert_eq!(frame_len(16), 32);
        assert_eq!(frame_len(17), 48);
        assert_eq!(frame_len(48), 64);
        assert_eq!(encode(5)[4..], (!5u32).to_le_bytes());
    }

    use crate::ring::{Cursors, RawMem};
    use crate::sync::Ordering;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a hostile writer puts in the ring and the head cursor, the
        /// frame parser returns frames inside the ring or an error; it never
        /// panics, reads out of bounds, or loops forever.
        #[test]
        fn hostile_frames_are_contained(
            data in proptest::collection::vec(any::<u8>(), 64..512),
            head in 0u64..2048,
            tail_frac in 0u64..64,
            max in 1u64..200,
        ) {
            let cap = (data.len().next_power_of_two() / 2).max(64) as u64;
            let mut bytes = data.clone();
            bytes.resize(cap as usize, 0);
            let cur = Cursors::default();
            let tail = (tail_frac * 8).min(head);
            // Tag the 16-aligned positions the data marks (low bit of the
            // word's last byte) with the cursor they have in the lap starting
            // at `tail`, so that the parser follows chains of frames.
            for p in (0..cap).step_by(16) {
                if bytes[p as usize + 15] & 1 != 0 {
                    let c = tail + ((p + cap - tail % cap) % cap);
                    bytes[p as usize..][..8].copy_from_slice(&(!c).to_le_bytes());
                }
            }
            cur.head.0.store(head, Ordering::Relaxed);
            cur.tail.0.store(tail, Ordering::Relaxed);
            // SAFETY: `bytes` and `cur` outlive the consumer (same scope).
            let cons = unsafe { Consumer::new(&cur, RawMem::new(bytes.as_mut_ptr(), cap as usize), cap) };
            let Ok(mut cons) = cons else { return Ok(()) };
            for _ in 0..64 {
                match parse_frame(&mut cons, max) {
                    Ok(Some((pos, len))) => {
                        prop_assert!(pos as u64 + len as u64 <= cap);
                        prop_assert!(len as u64 <= max);
                        cons.advance(frame_len(len as u64));
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
