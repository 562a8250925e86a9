//! Messages: [`Sender`] and [`Receiver`] of whole messages framed in the ring,
//! bytes or typed (see [`crate::codec`]).
//!
//! A frame is a 16-byte header — an 8-byte tag, then the length as a u32 and
//! its bitwise complement (a cheap integrity check) — then the payload, padded
//! to 16 bytes, so every frame starts 16-aligned. The tag is the frame's
//! cursor (its absolute stream position) bitwise inverted; the writer stores
//! it last, with Release, once the rest of the frame is written, and the
//! reader polls the tag at its own cursor: a match means the whole frame is
//! there, so a message travels in the cache lines of the frame alone. A frame
//! never straddles the ring's end: if it does not fit before the end, the
//! writer puts a skip marker (a header with length `u32::MAX`) there and
//! starts the frame at offset 0. So a reader — even after the writer crashed —
//! sees whole messages or nothing. See docs/ARCHITECTURE.md, "Protocol".

#![allow(unsafe_code)] // Loans and in-place receives lend slices of the link's mapped ring.

use crate::codec::{Decode, Encode};
use crate::error::{Error, Result, Role};
use crate::header::KIND_MESSAGES;
use crate::rendezvous::{Creator, Endpoint, Link, Options, connect};
use crate::ring::{Consumer, Mem, Producer, RawMem, RingError, WaitPolicy};
use crate::try_error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use core::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

mod asynk;
mod frame;
mod iter;

pub use frame::MAX_MESSAGE;
pub(crate) use frame::frame_len;
use frame::{FRAME_ALIGN, FRAME_HEADER, NEXT_TAG, SKIP, encode, parse_frame};
pub use iter::{IntoIter, Iter, TryIter};

/// Why a send or receive stopped without doing its job: its time ran out
/// (the ring full or empty until the deadline), or it failed.
enum Stop {
    Timeout,
    Fail(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Fail(e)
    }
}

/// The sending end of a message channel, for messages of type `T`: bytes by
/// default (`Sender` is `Sender<[u8]>`), or any type that implements
/// [`Encode`] — zerocopy types and, with the `serde` feature, `Postcard<T>`.
///
/// Its methods have the shape of crossbeam-channel's: [`send`](Self::send)
/// waits for room, [`try_send`](Self::try_send) does not, and
/// [`send_timeout`](Self::send_timeout) / [`send_deadline`](Self::send_deadline)
/// wait so long. A send that did not happen gives the message back.
///
/// ```
/// use svshm_channel::{Endpoint, Options, Receiver, Sender};
/// let name = format!("doc-msg-{}", std::process::id());
/// let n2 = name.clone();
/// let rx = std::thread::spawn(move || -> svshm_channel::Result<Vec<Vec<u8>>> {
///     let rx = Receiver::connect(&Endpoint::name(n2), &Options::new())?;
///     rx.into_iter().collect() // every message, up to the sender's close
/// });
/// let mut tx = Sender::connect(&Endpoint::name(name), &Options::new().max_message(1024))?;
/// tx.send(b"one")?;
/// let mut loan = tx.loan(3)?;            // zero-copy: write in place...
/// loan.copy_from_slice(b"two");
/// loan.send();                           // ...then publish
/// tx.close()?;                           // the end: the receiver's recv() gives Ok(None)
/// assert_eq!(rx.join().unwrap()?, vec![b"one".to_vec(), b"two".to_vec()]);
/// # Ok::<(), svshm_channel::Error>(())
/// ```
///
/// Typed, with zerocopy:
///
/// ```
/// use svshm_channel::{Endpoint, Options, Receiver, Sender};
/// use zerocopy::{Immutable, IntoBytes, KnownLayout, TryFromBytes};
///
/// #[derive(IntoBytes, TryFromBytes, KnownLayout, Immutable, Debug, PartialEq)]
/// #[repr(C)]
/// struct Reading { sensor: u32, celsius: f32 }
///
/// let name = format!("doc-typed-{}", std::process::id());
/// let n2 = name.clone();
/// let rx = std::thread::spawn(move || -> svshm_channel::Result<Option<Reading>> {
///     let mut rx = Receiver::<Reading>::connect_typed(&Endpoint::name(n2), &Options::new())?;
///     rx.recv() // validated: bytes that are no `Reading` are an error
/// });
/// let mut tx = Sender::<Reading>::connect_typed(&Endpoint::name(name), &Options::new())?;
/// tx.send(&Reading { sensor: 3, celsius: 21.5 })?;
/// tx.close()?;
/// assert_eq!(rx.join().unwrap()?, Some(Reading { sensor: 3, celsius: 21.5 }));
/// # Ok::<(), svshm_channel::Error>(())
/// ```
pub struct Sender<T: ?Sized = [u8]> {
    /// The async registration: first, so that it is gone before the
    /// segment is detached.
    waiter: crate::asynk::Waiter,
    prod: Producer<RawMem>,
    closed: bool,
    link: Link,
    _message: PhantomData<fn(&T)>,
}

impl Sender<[u8]> {
    /// Connects the sending end of a byte-message channel: creates the
    /// channel or joins the receiver that is waiting, then waits (up to the
    /// options' timeout) for the receiver. For typed messages see
    /// [`connect_typed`](Self::connect_typed).
    ///
    /// # Errors
    ///
    /// As [`StreamWriter::connect`](crate::StreamWriter::connect).
    pub fn connect(endpoint: &Endpoint, options: &Options) -> Result<Sender> {
        Sender::connect_typed(endpoint, options)
    }

    /// Creates or joins a byte-message channel without waiting for the
    /// receiver (see [`open_typed`](Self::open_typed) and
    /// [`StreamWriter::open`](crate::StreamWriter::open)).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), except the wait for the peer.
    pub fn open(endpoint: &Endpoint, options: &Options) -> Result<crate::Pending<Sender>> {
        Sender::open_typed(endpoint, options)
    }

    /// Zero-copy send, step 1: waits for room for a `len`-byte message and
    /// lends its bytes in the ring. Fill them, then [`Loan::send`]. Dropping
    /// the loan without sending discards it.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] past the channel's maximum; otherwise as
    /// [`send`](Self::send).
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_, [u8]>> {
        self.loan_frame(len)
    }
}

impl<T: ?Sized + Encode> Sender<T> {
    /// Connects the sending end of a channel of `T` messages (see
    /// [`connect`](Sender::connect) for bytes). Both ends must use the same
    /// type: the receiver validates every message against its own.
    ///
    /// # Errors
    ///
    /// As [`StreamWriter::connect`](crate::StreamWriter::connect). (A `T`
    /// larger than the channel's maximum message fails each send with
    /// [`Error::MessageTooLarge`]: give [`Options::max_message`] room for it.)
    pub fn connect_typed(endpoint: &Endpoint, options: &Options) -> Result<Sender<T>> {
        Sender::from_link(connect(endpoint, options, Role::Writer, KIND_MESSAGES)?)
    }

    /// Creates or joins the channel like [`connect_typed`](Self::connect_typed),
    /// but returns before the receiver comes (see
    /// [`StreamWriter::open`](crate::StreamWriter::open)).
    ///
    /// # Errors
    ///
    /// As [`connect_typed`](Self::connect_typed), except the wait for the peer.
    pub fn open_typed(endpoint: &Endpoint, options: &Options) -> Result<crate::Pending<Sender<T>>> {
        crate::pending::open(
            endpoint,
            options,
            Role::Writer,
            KIND_MESSAGES,
            Sender::from_link,
        )
    }

    /// The sender over a connected (or established) writer link.
    pub(crate) fn from_link(link: Link) -> Result<Sender<T>> {
        // SAFETY: the ring lives in `link`'s attachment, dropped after `prod`;
        // we hold the writer slot.
        let prod = unsafe { Producer::new(link.cursors(), link.mem(), link.capacity) }
            .map_err(|e| link.error(e, "connect"))?;
        if prod.head() % FRAME_ALIGN != 0 {
            return Err(Error::Corrupt {
                id: link.segment_id(),
                detail: format!(
                    "message cursor {} is not {FRAME_ALIGN}-aligned",
                    prod.head()
                ),
            });
        }
        Ok(Sender {
            waiter: crate::asynk::Waiter::default(),
            prod,
            closed: false,
            link,
            _message: PhantomData,
        })
    }

    fn send_with(&mut self, msg: &T::Input, policy: WaitPolicy) -> Result<(), Stop> {
        self.send_with_len(msg, policy, &mut 0)
    }

    /// [`send_with`](Self::send_with), telling the encoded length in `len`.
    fn send_with_len(
        &mut self,
        msg: &T::Input,
        policy: WaitPolicy,
        len: &mut usize,
    ) -> Result<(), Stop> {
        T::encode(msg, |bytes| {
            *len = bytes.len();
            self.reserve_frame(bytes.len(), policy)?;
            let start = self.prod.head();
            self.prod.advance(NEXT_TAG);
            self.prod.put(&encode(bytes.len() as u32));
            self.prod.put(bytes);
            let pad = frame_len(bytes.len() as u64) - FRAME_HEADER - bytes.len() as u64;
            self.prod.advance(pad);
            self.prod.publish_frame(start);
            Ok(())
        })?
    }

    /// Sends a message, waiting for room as long as it takes.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the receiver closed its end, [`Error::PeerDied`]
    /// if it died, [`Error::MessageTooLarge`] past the channel's maximum,
    /// [`Error::Corrupt`] if the ring broke the protocol.
    pub fn send(&mut self, msg: &T::Input) -> Result<()> {
        match self.send_with(msg, self.link.policy(None)) {
            Ok(()) => Ok(()),
            Err(Stop::Fail(e)) => Err(e),
            Err(Stop::Timeout) => unreachable!("a wait without a deadline timed out"),
        }
    }

    /// Sends a message if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if there is no room now,
    /// [`TrySendError::Disconnected`] if the receiver closed its end,
    /// [`TrySendError::Failed`] otherwise (see [`send`](Self::send)); each
    /// gives the message back.
    pub fn try_send<'m>(&mut self, msg: &'m T::Input) -> Result<(), TrySendError<&'m T::Input>> {
        match self.send_with(msg, WaitPolicy::none()) {
            Ok(()) => Ok(()),
            Err(Stop::Timeout) => Err(TrySendError::Full(msg)),
            Err(Stop::Fail(e)) => Err(TrySendError::from_error(e, msg)),
        }
    }

    /// Sends a message, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] if no room came in time; otherwise as
    /// [`try_send`](Self::try_send).
    pub fn send_timeout<'m>(
        &mut self,
        msg: &'m T::Input,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<&'m T::Input>> {
        self.send_until(msg, crate::rendezvous::deadline_after(timeout))
    }

    /// Sends a message, waiting for room until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout).
    pub fn send_deadline<'m>(
        &mut self,
        msg: &'m T::Input,
        deadline: Instant,
    ) -> Result<(), SendTimeoutError<&'m T::Input>> {
        self.send_until(msg, Some(deadline))
    }

    fn send_until<'m>(
        &mut self,
        msg: &'m T::Input,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<&'m T::Input>> {
        match self.send_with(msg, self.link.policy(deadline)) {
            Ok(()) => Ok(()),
            Err(Stop::Timeout) => Err(SendTimeoutError::Timeout(msg)),
            Err(Stop::Fail(e)) => Err(SendTimeoutError::from_error(e, msg)),
        }
    }
}

impl<T: FromBytes + IntoBytes + KnownLayout + Immutable> Sender<T> {
    /// Zero-copy send of a typed message: waits for room for one `T` and lends
    /// it, zeroed, in the ring. Fill it through `DerefMut`, then
    /// [`Loan::send`]. `T` must be [`FromBytes`] (every bit pattern valid), so
    /// that no bytes in the segment can make the lent `T` an invalid value,
    /// and aligned to at most 8 bytes (the alignment of frames) — checked at
    /// compile time.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn loan_typed(&mut self) -> Result<Loan<'_, T>> {
        const {
            assert!(
                core::mem::align_of::<T>() <= 8,
                "a typed loan needs a type aligned to at most 8 bytes"
            )
        };
        let mut loan = self.loan_frame(core::mem::size_of::<T>())?;
        loan.bytes_mut().fill(0);
        Ok(loan)
    }
}

impl<T: ?Sized> Sender<T> {
    crate::rendezvous::endpoint_accessors!("receiver");

    /// The largest message this channel carries, in bytes.
    pub fn max_message(&self) -> usize {
        self.link.max_message as usize
    }

    crate::queries::queue_queries!(prod, FRAME_HEADER + NEXT_TAG,
        len: "Bytes of the ring holding messages the receiver has not released yet (frames: a 16-byte header each, payloads padded to 16 bytes).",
        empty: "Whether the receiver has released every message sent.",
        full: "Whether the ring has no room now even for an empty message.",
        closed: "Whether the receiver has closed its end (or dropped it) or died: nothing sent now would be received.");

    /// The free bytes a frame of `len` payload bytes needs at the current
    /// position: the frame and the next tag word, plus the rest of the ring
    /// before its end if the frame must wrap.
    fn frame_need(&self, len: usize) -> u64 {
        let frame = frame_len(len as u64);
        let cap = self.prod.capacity();
        let to_end = cap - (self.prod.head() & (cap - 1));
        if to_end < frame {
            to_end + frame + NEXT_TAG
        } else {
            frame + NEXT_TAG
        }
    }

    /// Makes room for a frame of `len` payload bytes (and the tag word after
    /// it), writing and publishing a skip marker if it must wrap. Returns the
    /// data-area position of the frame.
    fn reserve_frame(&mut self, len: usize, policy: WaitPolicy) -> Result<usize, Stop> {
        self.link.writer_preflight(&self.prod)?;
        if len as u64 > self.link.max_message {
            return Err(Stop::Fail(Error::MessageTooLarge {
                len,
                max: self.link.max_message as usize,
            }));
        }
        let frame = frame_len(len as u64);
        let cap = self.prod.capacity();
        let to_end = cap - (self.prod.head() & (cap - 1));
        let need = self.frame_need(len);
        let free = self
            .prod
            .free(need)
            .map_err(|e| self.link.error(e, "space"))?;
        if free < need {
            match self.prod.wait_free(need, policy, self.link.liveness()) {
                Ok(()) => {}
                Err(RingError::Timeout) => {
                    // A polling sender must still learn that the receiver is gone.
                    if self.link.peer_gone_rate_limited() {
                        return Err(Stop::Fail(Error::PeerDied {
                            role: Role::Reader,
                            pid: self.link.peer.pid,
                        }));
                    }
                    return Err(Stop::Timeout);
                }
                Err(e) => return Err(Stop::Fail(self.link.error(e, "space in the ring"))),
            }
        }
        if to_end < frame {
            // Frames are 16-aligned and the capacity a power of two >= 64, so
            // `to_end` is a multiple of 16 and the marker fits. It is
            // published at once (clearing the tag word at 0, inside the space
            // reserved), so that it stands on its own: a loan dropped
            // unsent, or a close, leaves no marker behind untagged.
            let marker = self.prod.head();
            self.prod.advance(NEXT_TAG);
            self.prod.put(&encode(SKIP));
            self.prod.advance(to_end - FRAME_HEADER);
            self.prod.publish_frame(marker);
        }
        Ok((self.prod.head() & (cap - 1)) as usize)
    }

    fn loan_frame(&mut self, len: usize) -> Result<Loan<'_, T>> {
        let pos = match self.reserve_frame(len, self.link.policy(None)) {
            Ok(pos) => pos,
            Err(Stop::Fail(e)) => return Err(e),
            Err(Stop::Timeout) => unreachable!("a wait without a deadline timed out"),
        };
        Ok(Loan {
            prod: &mut self.prod,
            pos: pos + FRAME_HEADER as usize,
            len,
            _message: PhantomData,
        })
    }

    /// Closes the sending end: the receiver gets every message sent, then
    /// the end (`Ok(None)` from [`Receiver::recv`]).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] or [`Error::PeerDied`] if the receiver left with
    /// messages still unread. If an earlier call found the channel broken
    /// (the receiver gone or closed, a corrupt ring), the end is marked
    /// aborted instead and `close` fails with [`Error::Invalid`].
    pub fn close(mut self) -> Result<()> {
        self.link.close_writer(&mut self.prod, &mut self.closed)
    }

    /// Closes the sending end as cut short: the receiver gets every message
    /// sent so far, then [`Error::Aborted`] instead of the end — for a sender
    /// that cannot send the rest and must not look finished. Dropping a
    /// sender without closing it does the same.
    pub fn abort(mut self) {
        self.link
            .end_writer(&mut self.prod, &mut self.closed, crate::ring::ABORTED);
    }
}

/// Dropping without [`close`](Sender::close) ends the stream as cut short
/// ([`abort`](Sender::abort)): only an explicit, successful close tells the
/// receiver that everything arrived.
impl<T: ?Sized> Drop for Sender<T> {
    fn drop(&mut self) {
        self.waiter.cancel();
        self.link
            .end_writer(&mut self.prod, &mut self.closed, crate::ring::ABORTED);
    }
}

/// A message being written in place: see [`Sender::loan`] (bytes, derefs to
/// `[u8]`) and [`Sender::loan_typed`] (derefs to `T`). [`send`](Loan::send)
/// publishes it; dropping the loan discards it.
///
/// # Why a reference into shared memory is sound here
///
/// The bytes lent lie in the ring's free space, which the ring protocol gives
/// to this sender alone until it publishes them: the receiver does not read
/// them before, and never writes free space. A receiver that breaks the
/// protocol (a hostile process with write access to the segment) can change
/// only these bytes, which are the message this sender is composing for that
/// very receiver; it cannot reach this process's private memory, and a typed
/// loan's `T` is [`FromBytes`], valid whatever the bytes. To avoid even that,
/// for instance on a channel opened with another user ([`Options::owner`]),
/// use [`Sender::send`], which copies from private memory.
pub struct Loan<'a, T: ?Sized = [u8]> {
    prod: &'a mut Producer<RawMem>,
    pos: usize,
    len: usize,
    _message: PhantomData<fn(&T)>,
}

impl<T: ?Sized> Loan<'_, T> {
    /// Publishes the message.
    pub fn send(self) {
        let len = self.len;
        let start = self.prod.head();
        self.prod.advance(NEXT_TAG);
        self.prod.put(&encode(len as u32));
        self.prod.advance(frame_len(len as u64) - FRAME_HEADER);
        self.prod.publish_frame(start);
    }

    fn bytes(&self) -> &[u8] {
        let p = self.prod.mem().at(self.pos);
        // SAFETY: [pos, pos + len) lies in the free ring space reserved by
        // `reserve_frame` (the frame fits before the ring's end), which the
        // protocol gives to this sender alone until published (see the type's
        // docs); the loan borrows the sender mutably.
        unsafe { core::slice::from_raw_parts(p, self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let p = self.prod.mem().at(self.pos);
        // SAFETY: as in `bytes`; `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(p, self.len) }
    }
}

impl Deref for Loan<'_, [u8]> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl DerefMut for Loan<'_, [u8]> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes_mut()
    }
}

impl<T: FromBytes + IntoBytes + KnownLayout + Immutable> Deref for Loan<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        T::ref_from_bytes(self.bytes()).expect("a typed loan is sized and aligned for T")
    }
}

impl<T: FromBytes + IntoBytes + KnownLayout + Immutable> DerefMut for Loan<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        T::mut_from_bytes(self.bytes_mut()).expect("a typed loan is sized and aligned for T")
    }
}

/// The receiving end of a message channel, for messages of type `T` (bytes by
/// default). See [`Sender`] for examples.
///
/// [`recv`](Self::recv) gives `Ok(Some(message))`, then `Ok(None)` once the
/// sender closed cleanly and every message was received; a sender that died
/// or aborted is an error after its last message. A `Receiver` iterates
/// ([`iter`](Self::iter), `for msg in receiver`) over `Result`s up to that end.
pub struct Receiver<T: ?Sized = [u8]> {
    /// The async registration: first, so that it is gone before the
    /// segment is detached.
    waiter: crate::asynk::Waiter,
    cons: Consumer<RawMem>,
    link: Link,
    /// The private copy a frame is decoded from.
    scratch: Vec<u8>,
    _message: PhantomData<fn() -> *const T>,
}

impl Receiver<[u8]> {
    /// Connects the receiving end of a byte-message channel (creates or
    /// joins, then waits for the sender). For typed messages see
    /// [`connect_typed`](Self::connect_typed).
    ///
    /// # Errors
    ///
    /// As [`StreamWriter::connect`](crate::StreamWriter::connect).
    pub fn connect(endpoint: &Endpoint, options: &Options) -> Result<Receiver> {
        Receiver::connect_typed(endpoint, options)
    }

    /// Creates or joins a byte-message channel without waiting for the
    /// sender (see [`open_typed`](Self::open_typed) and
    /// [`StreamWriter::open`](crate::StreamWriter::open)).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), except the wait for the peer.
    pub fn open(endpoint: &Endpoint, options: &Options) -> Result<crate::Pending<Receiver>> {
        Receiver::open_typed(endpoint, options)
    }

    /// Receives the next message into `buf` (cleared first), reusing its
    /// allocation: `Ok(Some(len))`, or `Ok(None)` at the end.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        let Some((pos, len)) = self.frame_forever()? else {
            return Ok(None);
        };
        buf.clear();
        buf.resize(len, 0);
        self.cons.mem().read(pos, buf);
        self.finish_frame(len);
        Ok(Some(len))
    }

    /// Receives the next message in place (zero-copy): the returned
    /// [`MessageRef`] derefs to the message's bytes in the ring, which are
    /// released when it is dropped. `Ok(None)` at the end.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_ref(&mut self) -> Result<Option<MessageRef<'_>>> {
        let Some((pos, len)) = self.frame_forever()? else {
            return Ok(None);
        };
        Ok(Some(MessageRef { rx: self, pos, len }))
    }
}

impl<T: ?Sized + Decode> Receiver<T> {
    /// Connects the receiving end of a channel of `T` messages (see
    /// [`connect`](Receiver::connect) for bytes).
    ///
    /// # Errors
    ///
    /// As [`StreamWriter::connect`](crate::StreamWriter::connect).
    pub fn connect_typed(endpoint: &Endpoint, options: &Options) -> Result<Receiver<T>> {
        Receiver::from_link(connect(endpoint, options, Role::Reader, KIND_MESSAGES)?)
    }

    /// Creates or joins the channel like [`connect_typed`](Self::connect_typed),
    /// but returns before the sender comes (see
    /// [`StreamWriter::open`](crate::StreamWriter::open)).
    ///
    /// # Errors
    ///
    /// As [`connect_typed`](Self::connect_typed), except the wait for the peer.
    pub fn open_typed(
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<crate::Pending<Receiver<T>>> {
        crate::pending::open(
            endpoint,
            options,
            Role::Reader,
            KIND_MESSAGES,
            Receiver::from_link,
        )
    }

    /// The receiver over a connected (or established) reader link.
    pub(crate) fn from_link(link: Link) -> Result<Receiver<T>> {
        // SAFETY: as in Sender::connect_typed, for the single reader.
        let cons = unsafe { Consumer::new(link.cursors(), link.mem(), link.capacity) }
            .map_err(|e| link.error(e, "connect"))?;
        if cons.tail() % FRAME_ALIGN != 0 || cons.head_seen() % FRAME_ALIGN != 0 {
            return Err(Error::Corrupt {
                id: link.segment_id(),
                detail: format!(
                    "message cursors {}..{} are not {FRAME_ALIGN}-aligned",
                    cons.tail(),
                    cons.head_seen()
                ),
            });
        }
        Ok(Receiver {
            waiter: crate::asynk::Waiter::default(),
            cons,
            link,
            scratch: Vec::new(),
            _message: PhantomData,
        })
    }

    fn recv_policy(&mut self, policy: WaitPolicy) -> Result<Option<T::Output>, Stop> {
        let Some((pos, len)) = self.next_frame(policy)? else {
            return Ok(None);
        };
        self.scratch.clear();
        self.scratch.resize(len, 0);
        self.cons.mem().read(pos, &mut self.scratch);
        self.finish_frame(len);
        T::decode(&mut self.scratch).map(Some).map_err(|detail| {
            Stop::Fail(Error::BadMessage {
                id: self.link.segment_id(),
                detail,
            })
        })
    }

    /// Receives the next message, waiting as long as it takes: `Ok(Some(msg))`,
    /// or `Ok(None)` once the sender closed cleanly and every message was
    /// received (and at every call after that).
    ///
    /// # Errors
    ///
    /// [`Error::PeerDied`] if the sender died, [`Error::Aborted`] if it
    /// aborted (both after every whole message it sent);
    /// [`Error::BadMessage`] if a message does not decode as a `T` (it is
    /// skipped; the next call goes on); [`Error::Corrupt`] if the ring broke
    /// the protocol.
    pub fn recv(&mut self) -> Result<Option<T::Output>> {
        match self.recv_policy(self.link.policy(None)) {
            Ok(m) => Ok(m),
            Err(Stop::Fail(e)) => Err(e),
            Err(Stop::Timeout) => unreachable!("a wait without a deadline timed out"),
        }
    }

    /// Receives a message if one is there now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if there is none now,
    /// [`TryRecvError::Disconnected`] at the end, [`TryRecvError::Failed`]
    /// as for [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<T::Output, TryRecvError> {
        match self.recv_policy(WaitPolicy::none()) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(TryRecvError::Disconnected),
            Err(Stop::Timeout) => Err(TryRecvError::Empty),
            Err(Stop::Fail(e)) => Err(TryRecvError::Failed(e)),
        }
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none came in time; otherwise as
    /// [`try_recv`](Self::try_recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T::Output, RecvTimeoutError> {
        self.recv_until(crate::rendezvous::deadline_after(timeout))
    }

    /// Receives a message, waiting until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<T::Output, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<T::Output, RecvTimeoutError> {
        match self.recv_policy(self.link.policy(deadline)) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(RecvTimeoutError::Disconnected),
            Err(Stop::Timeout) => Err(RecvTimeoutError::Timeout),
            Err(Stop::Fail(e)) => Err(RecvTimeoutError::Failed(e)),
        }
    }

    /// An iterator that waits for each message: `Ok(msg)` until the end, then
    /// `None`; an error is yielded once, and ends the iteration.
    pub fn iter(&mut self) -> Iter<'_, T> {
        Iter {
            rx: self,
            done: false,
        }
    }

    /// An iterator over the messages there now, without waiting; an error is
    /// yielded once, and ends the iteration.
    pub fn try_iter(&mut self) -> TryIter<'_, T> {
        TryIter {
            rx: self,
            done: false,
        }
    }
}

impl<T: ?Sized> Receiver<T> {
    crate::rendezvous::endpoint_accessors!("sender");

    /// The largest message this channel carries, in bytes.
    pub fn max_message(&self) -> usize {
        self.link.max_message as usize
    }

    /// Bytes of the ring holding messages not yet received (frames: a
    /// 16-byte header each, payloads padded to 16 bytes), as far as the
    /// sender has published its cursor, which it does lazily (every eighth
    /// of the ring, and whenever it waits or closes); at least a frame
    /// header's worth whenever a message is waiting.
    ///
    /// A snapshot: the other side may be moving as this returns.
    pub fn len(&self) -> usize {
        let q = self.cons.queued();
        if q == 0 && self.cons.tag_ready() {
            return FRAME_HEADER as usize;
        }
        q as usize
    }

    /// Whether no message is waiting now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring has no room now even for an empty message.
    pub fn is_full(&self) -> bool {
        self.cons.capacity() - (self.len() as u64) < FRAME_HEADER + NEXT_TAG
    }

    /// Whether the sender has closed its end (cleanly or not) or died.
    /// Messages it sent before may still be waiting to be received.
    pub fn is_peer_closed(&self) -> bool {
        self.cons.peer_closed() || self.link.peer_gone()
    }

    fn frame_forever(&mut self) -> Result<Option<(usize, usize)>> {
        match self.next_frame(self.link.policy(None)) {
            Ok(f) => Ok(f),
            Err(Stop::Fail(e)) => Err(e),
            Err(Stop::Timeout) => unreachable!("a wait without a deadline timed out"),
        }
    }

    /// Waits for the next whole frame; returns its payload position and
    /// length, or `None` at a clean end.
    fn next_frame(&mut self, policy: WaitPolicy) -> Result<Option<(usize, usize)>, Stop> {
        loop {
            match parse_frame(&mut self.cons, self.link.max_message) {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(e) => return Err(Stop::Fail(self.link.error(e, "a message"))),
            }
            match self.cons.wait_tagged(policy, self.link.liveness()) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(RingError::Timeout) => {
                    // A polling receiver must still learn that the sender is
                    // gone (after everything it sent: the ring is empty here).
                    if self.link.peer_gone_rate_limited() {
                        if self.cons.tag_ready() {
                            continue;
                        }
                        return Err(Stop::Fail(Error::PeerDied {
                            role: Role::Writer,
                            pid: self.link.peer.pid,
                        }));
                    }
                    return Err(Stop::Timeout);
                }
                Err(e) => return Err(Stop::Fail(self.link.error(e, "a message"))),
            }
        }
    }

    fn finish_frame(&mut self, len: usize) {
        self.cons.advance(frame_len(len as u64));
        self.cons.publish_lazy_tagged();
    }

    /// Closes the receiving end: the sender's next send fails with
    /// [`Error::Closed`] ([`TrySendError::Disconnected`]). Dropping the
    /// receiver does the same.
    pub fn close(self) {}
}

impl<T: ?Sized> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.waiter.cancel();
        self.cons.close();
        self.link.mark_closed();
    }
}

/// A message received in place: see [`Receiver::recv_ref`]. Derefs to the
/// message's bytes in the ring; dropping it releases them to the sender.
///
/// # Why a reference into shared memory is sound here
///
/// The bytes lie in a frame the sender has published, which the ring protocol
/// gives to this receiver alone until it releases them: the sender does not
/// write published bytes before they are released. A sender that breaks the
/// protocol (a hostile process with write access to the segment) can change
/// only these bytes — its own message — while they are looked at; it cannot
/// reach this process's private memory. So treat them as untrusted input:
/// copy what you validate before relying on it, and for a channel opened with
/// another user ([`Options::owner`]) prefer [`Receiver::recv`] or
/// [`Receiver::recv_into`], which copy the message into private memory first.
pub struct MessageRef<'a> {
    rx: &'a mut Receiver<[u8]>,
    pos: usize,
    len: usize,
}

impl Deref for MessageRef<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let p = self.rx.cons.mem().at(self.pos);
        // SAFETY: [pos, pos + len) is inside the data area (validated by
        // `parse_frame`) and holds a published, unreleased frame, which the
        // protocol gives to this receiver until `drop` releases it (see the
        // type's docs).
        unsafe { core::slice::from_raw_parts(p, self.len) }
    }
}

impl Drop for MessageRef<'_> {
    fn drop(&mut self) {
        self.rx.finish_frame(self.len);
    }
}

crate::select::waitable!([T: ?Sized] Sender<T>, prod, |tx, need| {
    tx.prod.room_now() >= tx.frame_need(need.min(tx.link.max_message as usize))
});
crate::select::waitable!([T: ?Sized] Receiver<T>, cons, |rx, _need| rx.cons.tag_ready());
