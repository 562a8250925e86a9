#![allow(unsafe_code)] // Rings over the link's mapped memory; loans lend slices of it.
//! Messages: [`Sender`] and [`Receiver`] of byte messages framed in the ring.
//!
//! A frame is an 8-byte header — the length as a u32 and its bitwise complement
//! (a cheap integrity check) — then the payload, padded to 8 bytes. A frame
//! never straddles the ring's end: if it does not fit before the end, the writer
//! puts a skip marker (length `u32::MAX`) there and starts the frame at offset
//! 0. `head` moves past a frame only once all of it is written, so a reader —
//! even after the writer crashed — sees whole messages or nothing.

use crate::error::{Error, Result, Role};
use crate::header::KIND_MESSAGES;
use crate::rendezvous::{Creator, Endpoint, Link, Options, connect};
use crate::ring::{Consumer, Mem, Producer, RawMem, RingError, WaitPolicy};
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

const SKIP: u32 = u32::MAX;

/// Largest message any channel carries: the frame length is a u32 and
/// `u32::MAX` is the skip marker.
pub const MAX_MESSAGE: u64 = (u32::MAX - 16) as u64;
const FRAME_HEADER: u64 = 8;

/// Bytes a message of `len` bytes takes in the ring.
pub(crate) fn frame_len(len: u64) -> u64 {
    FRAME_HEADER + len.div_ceil(8) * 8
}

fn encode(len: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&len.to_le_bytes());
    h[4..].copy_from_slice(&(!len).to_le_bytes());
    h
}

/// Parses the frame at the consumer's read position, skipping wrap markers.
/// `Ok(None)`: fewer than a frame header is published yet (wait, then call
/// again). Every length and position is validated against the ring: a hostile
/// writer gets [`RingError::Corrupt`], never an out-of-bounds read.
pub(crate) fn parse_frame<M: Mem>(
    cons: &mut Consumer<M>,
    max_message: u64,
) -> Result<Option<(usize, usize)>, RingError> {
    let cap = cons.capacity();
    loop {
        if cons.available(FRAME_HEADER)? < FRAME_HEADER {
            return Ok(None);
        }
        let mut h = [0u8; 8];
        cons.peek_at(0, &mut h);
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let check = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if check != !len {
            return Err(RingError::Corrupt(format!(
                "frame header {h:02x?} fails its check"
            )));
        }
        let pos = cons.tail() & (cap - 1);
        if len == SKIP {
            let to_end = cap - pos;
            if pos == 0 {
                return Err(RingError::Corrupt(
                    "skip marker at the start of the ring".into(),
                ));
            }
            if cons.available(to_end)? < to_end {
                return Err(RingError::Corrupt(
                    "skip marker past the published data".into(),
                ));
            }
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
        if cons.available(frame)? < frame {
            return Err(RingError::Corrupt(
                "frame extends past the published data".into(),
            ));
        }
        return Ok(Some(((pos + FRAME_HEADER) as usize, len as usize)));
    }
}

/// The sending end of a message channel.
///
/// ```
/// use svshm_channel::{Endpoint, Options, Receiver, Sender};
/// let name = format!("doc-msg-{}", std::process::id());
/// let n2 = name.clone();
/// let rx = std::thread::spawn(move || {
///     let mut rx = Receiver::connect(&Endpoint::name(n2), &Options::new()).unwrap();
///     let mut got = Vec::new();
///     while let Ok(m) = rx.recv() { got.push(m); } // Err(Closed) after the last one
///     got
/// });
/// let mut tx = Sender::connect(&Endpoint::name(name), &Options::new().max_message(1024))?;
/// tx.send(b"one")?;
/// let mut loan = tx.loan(3)?;            // zero-copy: write in place...
/// loan.copy_from_slice(b"two");
/// loan.send();                           // ...then publish
/// tx.close()?;                         // the end: the receiver gets Err(Closed) after "two"
/// assert_eq!(rx.join().unwrap(), vec![b"one".to_vec(), b"two".to_vec()]);
/// # Ok::<(), svshm_channel::Error>(())
/// ```
pub struct Sender {
    prod: Producer<RawMem>,
    closed: bool,
    link: Link,
}

impl Sender {
    crate::rendezvous::endpoint_accessors!("receiver");

    /// Connects the sending end (creates or joins, then waits for the receiver).
    pub fn connect(endpoint: &Endpoint, options: &Options) -> Result<Sender> {
        let link = connect(endpoint, options, Role::Writer, KIND_MESSAGES)?;
        // SAFETY: the ring lives in `link`'s attachment, dropped after `prod`;
        // we hold the writer slot.
        let prod = unsafe { Producer::new(link.cursors(), link.mem(), link.capacity) }
            .map_err(|e| link.error(e, "connect"))?;
        if prod.head() % 8 != 0 {
            return Err(Error::Corrupt {
                id: link.segment_id(),
                detail: format!("message cursor {} is not 8-aligned", prod.head()),
            });
        }
        Ok(Sender {
            prod,
            closed: false,
            link,
        })
    }

    /// The largest message this channel carries.
    pub fn max_message(&self) -> usize {
        self.link.max_message as usize
    }

    /// Makes room for a frame of `len` payload bytes, writing a skip marker if
    /// it must wrap. Returns the data-area position of the frame.
    fn reserve_frame(&mut self, len: usize, policy: WaitPolicy) -> Result<usize> {
        if self.closed {
            return Err(Error::Invalid("the sender was closed".into()));
        }
        self.link.writer_preflight(&self.prod)?;
        if len as u64 > self.link.max_message {
            return Err(Error::MessageTooLarge {
                len,
                max: self.link.max_message as usize,
            });
        }
        let frame = frame_len(len as u64);
        let cap = self.prod.capacity();
        let pos = self.prod.head() & (cap - 1);
        let to_end = cap - pos;
        let need = if to_end < frame {
            to_end + frame
        } else {
            frame
        };
        let free = self
            .prod
            .free(need)
            .map_err(|e| self.link.error(e, "space"))?;
        if free < need {
            let free = self
                .prod
                .wait_free(need, policy, self.link.liveness())
                .map_err(|e| match e {
                    RingError::Timeout if policy.deadline.is_some_and(|d| d <= Instant::now()) => {
                        Error::Full
                    }
                    e => self.link.error(e, "space in the ring"),
                });
            if let Err(Error::Full) = free {
                // A polling sender must still learn that the reader is gone.
                if self.link.peer_gone_rate_limited() {
                    return Err(Error::PeerDied {
                        role: Role::Reader,
                        pid: self.link.peer.pid,
                    });
                }
            }
            free?;
        }
        if to_end < frame {
            // Frames are 8-aligned and the capacity a power of two >= 64, so
            // `to_end` is a multiple of 8 and the marker fits.
            self.prod.put(&encode(SKIP));
            self.prod.advance(to_end - FRAME_HEADER);
        }
        Ok((self.prod.head() & (cap - 1)) as usize)
    }

    fn send_with(&mut self, msg: &[u8], policy: WaitPolicy) -> Result<()> {
        self.reserve_frame(msg.len(), policy)?;
        self.prod.put(&encode(msg.len() as u32));
        self.prod.put(msg);
        let pad = frame_len(msg.len() as u64) - FRAME_HEADER - msg.len() as u64;
        self.prod.advance(pad);
        self.prod.publish();
        Ok(())
    }

    /// Sends a message, waiting for room as long as it takes (or until the
    /// receiver closes or dies).
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_with(msg, WaitPolicy::forever(self.link.wait))
    }

    /// Sends a message if there is room now; [`Error::Full`] otherwise.
    pub fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_with(msg, WaitPolicy::none())
    }

    /// Sends a message, waiting at most `timeout` for room ([`Error::Full`]
    /// after that).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.send_with(
            msg,
            WaitPolicy {
                wait: self.link.wait,
                deadline: crate::rendezvous::deadline_after(timeout),
            },
        )
    }

    /// Zero-copy send, step 1: waits for room for a `len`-byte message and lends
    /// its bytes in the ring. Fill them, then [`Loan::send`]. Dropping the loan
    /// without sending discards it.
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>> {
        let pos = self.reserve_frame(len, WaitPolicy::forever(self.link.wait))?;
        Ok(Loan {
            sender: self,
            pos: pos + FRAME_HEADER as usize,
            len,
        })
    }

    /// Closes the sending end: the receiver gets every message sent, then
    /// [`Error::Closed`].
    ///
    /// Fails with [`Error::Closed`] or [`Error::PeerDied`] if the receiver left
    /// with messages still unread. If an earlier call found the channel
    /// broken (the receiver gone or closed, a corrupt ring), the end is marked
    /// aborted instead and `close` fails.
    pub fn close(mut self) -> Result<()> {
        self.link.close_writer(&mut self.prod, &mut self.closed)
    }

    /// Closes the sending end as cut short: the receiver gets every message
    /// sent so far, then [`Error::Aborted`] instead of [`Error::Closed`] — for
    /// a sender that cannot send the rest and must not look finished.
    /// Dropping a sender without closing it does the same.
    pub fn abort(mut self) {
        self.link
            .end_writer(&mut self.prod, &mut self.closed, crate::ring::ABORTED);
    }
}

/// Dropping without [`close`](Sender::close) ends the stream as cut short
/// ([`abort`](Sender::abort)): only an explicit, successful close tells the
/// reader that everything arrived.
impl Drop for Sender {
    fn drop(&mut self) {
        self.link
            .end_writer(&mut self.prod, &mut self.closed, crate::ring::ABORTED);
    }
}

/// A message being written in place; see [`Sender::loan`]. Derefs to the
/// message's bytes, which the ring protocol gives to this sender exclusively
/// until sent.
pub struct Loan<'a> {
    sender: &'a mut Sender,
    pos: usize,
    len: usize,
}

impl Loan<'_> {
    /// Publishes the message.
    pub fn send(self) {
        let len = self.len;
        let s = &mut *self.sender;
        s.prod.put(&encode(len as u32));
        s.prod.advance(frame_len(len as u64) - FRAME_HEADER);
        s.prod.publish();
    }
}

impl Deref for Loan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let p = self.sender.prod.mem().at(self.pos);
        // SAFETY: [pos, pos + len) lies in free ring space reserved by
        // `reserve_frame` (the frame fits before the ring's end), which the
        // reader does not read until `head` is published past it.
        unsafe { core::slice::from_raw_parts(p, self.len) }
    }
}

impl DerefMut for Loan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let p = self.sender.prod.mem().at(self.pos);
        // SAFETY: as in `deref`; `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(p, self.len) }
    }
}

/// The receiving end of a message channel. See [`Sender`] for an example.
pub struct Receiver {
    cons: Consumer<RawMem>,
    link: Link,
}

impl Receiver {
    crate::rendezvous::endpoint_accessors!("sender");

    /// Connects the receiving end (creates or joins, then waits for the sender).
    pub fn connect(endpoint: &Endpoint, options: &Options) -> Result<Receiver> {
        let link = connect(endpoint, options, Role::Reader, KIND_MESSAGES)?;
        // SAFETY: as in Sender::connect, for the single reader.
        let cons = unsafe { Consumer::new(link.cursors(), link.mem(), link.capacity) }
            .map_err(|e| link.error(e, "connect"))?;
        if cons.tail() % 8 != 0 || cons.head_seen() % 8 != 0 {
            return Err(Error::Corrupt {
                id: link.segment_id(),
                detail: format!(
                    "message cursors {}..{} are not 8-aligned",
                    cons.tail(),
                    cons.head_seen()
                ),
            });
        }
        Ok(Receiver { cons, link })
    }

    /// The largest message this channel carries.
    pub fn max_message(&self) -> usize {
        self.link.max_message as usize
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            id: self.link.segment_id(),
            detail,
        }
    }

    /// Waits for the next whole frame; returns its payload position and length.
    fn next_frame(&mut self, policy: WaitPolicy) -> Result<(usize, usize)> {
        loop {
            let id = self.link.segment_id();
            match parse_frame(&mut self.cons, self.link.max_message) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => {
                    return Err(Error::from_ring(
                        e,
                        id,
                        Role::Reader,
                        self.link.peer.pid,
                        "a message",
                    ));
                }
            }
            let more = self
                .cons
                .wait_available(FRAME_HEADER, policy, self.link.liveness())
                .map_err(|e| match e {
                    RingError::Timeout if policy.deadline.is_some_and(|d| d <= Instant::now()) => {
                        Error::Empty
                    }
                    e => self.link.error(e, "a message"),
                });
            let more = match more {
                // A polling receiver must still learn that the sender is gone
                // (after everything it sent: the ring is empty here).
                Err(Error::Empty) if self.link.peer_gone_rate_limited() => {
                    if self.cons.available(FRAME_HEADER).unwrap_or(0) >= FRAME_HEADER {
                        continue;
                    }
                    return Err(Error::PeerDied {
                        role: Role::Writer,
                        pid: self.link.peer.pid,
                    });
                }
                m => m?,
            };
            if !more {
                if self.cons.available(1).unwrap_or(0) != 0 {
                    return Err(self.corrupt("the writer closed in the middle of a frame".into()));
                }
                return Err(Error::Closed { role: Role::Writer });
            }
        }
    }

    fn finish_frame(&mut self, len: usize) {
        self.cons.advance(frame_len(len as u64));
        self.cons.publish_lazy();
    }

    fn recv_policy(&mut self, policy: WaitPolicy) -> Result<Vec<u8>> {
        let (pos, len) = self.next_frame(policy)?;
        let mut out = vec![0u8; len];
        crate::ring::Mem::read(self.cons.mem(), pos, &mut out);
        self.finish_frame(len);
        Ok(out)
    }

    /// Receives the next message, waiting as long as it takes. After the sender
    /// closed and every message was received: [`Error::Closed`]; if it died:
    /// [`Error::PeerDied`] (after every whole message it sent).
    pub fn recv(&mut self) -> Result<Vec<u8>> {
        self.recv_policy(WaitPolicy::forever(self.link.wait))
    }

    /// Receives a message if one is there; [`Error::Empty`] otherwise.
    pub fn try_recv(&mut self) -> Result<Vec<u8>> {
        self.recv_policy(WaitPolicy::none())
    }

    /// Receives a message, waiting at most `timeout` ([`Error::Empty`] after).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        self.recv_policy(WaitPolicy {
            wait: self.link.wait,
            deadline: crate::rendezvous::deadline_after(timeout),
        })
    }

    /// Receives the next message into `buf` (cleared first), reusing its
    /// allocation. Returns the length.
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        let (pos, len) = self.next_frame(WaitPolicy::forever(self.link.wait))?;
        buf.clear();
        buf.resize(len, 0);
        crate::ring::Mem::read(self.cons.mem(), pos, buf);
        self.finish_frame(len);
        Ok(len)
    }

    /// Receives the next message in place (zero-copy): `f` sees the bytes in the
    /// ring; they are released when it returns.
    ///
    /// The slice is a window into the shared segment holding a published frame,
    /// which the protocol gives to this receiver exclusively until released (a
    /// sender that breaks the protocol could still change it: copy before
    /// validating anything security-relevant).
    pub fn recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let (pos, len) = self.next_frame(WaitPolicy::forever(self.link.wait))?;
        let p = self.cons.mem().at(pos);
        // SAFETY: [pos, pos + len) is inside the data area (validated in
        // `next_frame`) and holds a published, unreleased frame.
        let r = f(unsafe { core::slice::from_raw_parts(p, len) });
        self.finish_frame(len);
        Ok(r)
    }

    /// Closes the receiving end: the sender's next send fails with
    /// [`Error::Closed`].
    pub fn close(self) -> Result<()> {
        Ok(())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.cons.close();
        self.link.mark_closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_8_aligned() {
        assert_eq!(frame_len(0), 8);
        assert_eq!(frame_len(1), 16);
        assert_eq!(frame_len(8), 16);
        assert_eq!(frame_len(9), 24);
        assert_eq!(encode(5)[4..], (!5u32).to_le_bytes());
    }

    use crate::ring::Cursors;
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
