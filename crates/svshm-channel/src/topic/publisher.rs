#![allow(unsafe_code)] // Lends a reserved frame's bytes in the ring (`TopicLoan`).
//! The publishing end of a topic.

use super::Overflow;
use super::join;
use super::layout::{self, FRAME_HEADER, NEXT_TAG, SKIP, Shm};
use super::watch::{Watches, holder, monotonic_ms};
use crate::codec::Encode;
use crate::endpoint::{Endpoint, Options};
use crate::error::{Error, Result, Role};
use crate::reclaim::Reclaimed;
use crate::ring::{self, Liveness, POLL_SLICE, RingError, Wait, WaitPolicy};
use crate::sync::{Ordering, fence};
use crate::try_error::{SendTimeoutError, TrySendError};
use core::cell::RefCell;
use core::marker::PhantomData;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The publishing end of a topic: writes each message once for every
/// [`Subscriber`](crate::Subscriber). Typed by the message like
/// [`Sender`](crate::Sender): bytes by default, any [`Encode`] type with
/// [`create_typed`](Publisher::create_typed).
///
/// Only an explicit [`close`](Self::close) ends the topic cleanly; dropped
/// without it, subscribers get [`Error::Aborted`] after the last message.
pub struct Publisher<T: ?Sized = [u8]> {
    core: PubCore,
    _message: PhantomData<fn(&T)>,
}

/// A record the publisher wrote and has not overwritten yet.
struct Rec {
    end: u64,
}

pub(crate) struct PubCore {
    st: PubState,
    name: String,
    wait: Wait,
    spin: Duration,
    watches: RefCell<Watches>,
    last_reap_ms: u64,
    closed: bool,
    reclaimed: Vec<Reclaimed>,
    // Last: everything above points into it.
    shm: Shm,
}

/// What the publisher alone knows: the authority on the ring's records.
struct PubState {
    /// Records from `tail` on, oldest first (their start is the previous
    /// one's end, the first's is `tail`).
    records: VecDeque<Rec>,
    /// Our cursor: the authority, never read back from the segment.
    head: u64,
    /// Oldest intact record, as last published.
    tail: u64,
    /// Every live subscriber's cursor was at or past this when last checked
    /// after raising `tail`: room up to it needs no scan of the slots.
    confirmed: u64,
    next_seq: u64,
    max_message: u64,
    overflow: Overflow,
    n_slots: usize,
}

/// One subscriber as the publisher sees it (see
/// [`Publisher::subscriber_list`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriberInfo {
    /// Its slot in the topic.
    pub slot: usize,
    /// Its pid, as it recorded it in its own pid namespace.
    pub pid: i32,
    /// Messages published that it has not received yet.
    pub lag: u64,
    /// Messages it lost to overwriting ([`Overflow::Lossy`]), in all.
    pub missed: u64,
}

impl Publisher<[u8]> {
    /// Creates a topic of byte messages at `endpoint` (for typed messages
    /// see [`create_typed`](Publisher::create_typed)). Returns at once:
    /// subscribers come and go while it publishes. A topic left under the
    /// same key by a publisher that died is reclaimed first.
    ///
    /// ```
    /// use svshm_channel::{Endpoint, Options, Publisher};
    /// let ep = Endpoint::name(format!("doc-pub-{}", std::process::id()));
    /// let mut p = Publisher::create(&ep, &Options::new().subscribers(4))?;
    /// p.send(b"nobody listens yet")?;
    /// assert_eq!(p.subscribers(), 0);
    /// p.close()?;
    /// # Ok::<(), svshm_channel::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InUse`] if a live publisher holds the topic;
    /// [`Error::Foreign`], [`Error::NotOurs`] or [`Error::Mismatch`] for a
    /// segment under the key that is not ours, not a channel, or another
    /// kind; [`Error::Invalid`] for bad options; [`Error::Sys`] if the
    /// segment cannot be created.
    pub fn create(endpoint: &Endpoint, options: &Options) -> Result<Publisher> {
        Publisher::create_typed(endpoint, options)
    }

    /// Zero-copy send, step 1: waits for room for a `len`-byte message and
    /// lends its bytes. Fill them, then [`TopicLoan::send`]. Dropping the
    /// loan discards it. In a [`Backpressure`](Overflow::Backpressure) topic
    /// the bytes are the frame in the ring; in a lossy one (where lagging
    /// subscribers may still read the old bytes there) a private buffer
    /// copied in at `send`.
    ///
    /// ```
    /// use svshm_channel::{Endpoint, Options, Publisher, Subscriber};
    /// let ep = Endpoint::name(format!("doc-loan-{}", std::process::id()));
    /// let mut p = Publisher::create(&ep, &Options::new())?;
    /// let mut s = Subscriber::connect(&ep, &Options::new())?;
    /// let mut loan = p.loan(4)?;
    /// loan.copy_from_slice(b"abcd");
    /// loan.send()?;
    /// assert_eq!(s.recv()?, Some(b"abcd".to_vec()));
    /// # Ok::<(), svshm_channel::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] past the topic's maximum; otherwise as
    /// [`send`](Self::send).
    pub fn loan(&mut self, len: usize) -> Result<TopicLoan<'_>> {
        let core = &mut self.core;
        core.check(len)?;
        if core.st.overflow == Overflow::Lossy {
            return Ok(TopicLoan {
                core,
                start: 0,
                len,
                buf: Some(vec![0; len]),
            });
        }
        let start = core.reserve(len, None)?;
        Ok(TopicLoan {
            core,
            start,
            len,
            buf: None,
        })
    }
}

impl<T: ?Sized + Encode> Publisher<T> {
    /// Creates a topic of `T` messages (see [`create`](Publisher::create)
    /// for bytes). Subscribers must use the same type: each validates every
    /// message against its own.
    ///
    /// ```
    /// use svshm_channel::{Endpoint, Options, Publisher, Subscriber};
    /// let ep = Endpoint::name(format!("doc-typed-{}", std::process::id()));
    /// let mut p = Publisher::<u64>::create_typed(&ep, &Options::new())?;
    /// let mut s = Subscriber::<u64>::connect_typed(&ep, &Options::new())?;
    /// p.send(&42)?;
    /// assert_eq!(s.recv()?, Some(42));
    /// # Ok::<(), svshm_channel::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`create`](Publisher::create).
    pub fn create_typed(endpoint: &Endpoint, options: &Options) -> Result<Publisher<T>> {
        let t = join::create(endpoint, options)?;
        Ok(Publisher {
            core: PubCore {
                st: PubState {
                    records: VecDeque::new(),
                    head: 0,
                    tail: 0,
                    confirmed: 0,
                    next_seq: 0,
                    max_message: t.max_message,
                    overflow: t.overflow,
                    n_slots: t.subscribers,
                },
                name: t.name,
                wait: options.wait,
                spin: options.spin,
                watches: RefCell::new(Watches::default()),
                last_reap_ms: 0,
                closed: false,
                reclaimed: t.reclaimed,
                shm: t.shm,
            },
            _message: PhantomData,
        })
    }

    /// Publishes `msg` to every subscriber. In a
    /// [`Backpressure`](Overflow::Backpressure) topic waits (for ever) for
    /// the slowest live subscriber to make room; a lossy topic never waits.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] past the topic's maximum;
    /// [`Error::Corrupt`] if a subscriber's slot breaks the protocol;
    /// [`Error::Invalid`] if the message cannot be encoded.
    pub fn send(&mut self, msg: &T::Input) -> Result<()> {
        T::encode(msg, |b| self.core.send_bytes(b, None))?
    }

    /// Publishes `msg` if there is room now.
    ///
    /// ```
    /// use svshm_channel::{Endpoint, Options, Publisher, Subscriber, TrySendError};
    /// let ep = Endpoint::name(format!("doc-full-{}", std::process::id()));
    /// let mut p = Publisher::create(&ep, &Options::new().capacity(4096))?;
    /// let _idle = Subscriber::connect(&ep, &Options::new())?;
    /// let full = loop {
    ///     match p.try_send(&[0u8; 256]) {
    ///         Ok(()) => continue,
    ///         Err(e) => break e,
    ///     }
    /// };
    /// assert!(full.is_full()); // the idle subscriber holds the ring
    /// # Ok::<(), svshm_channel::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if a subscriber is a ring behind (Backpressure
    /// topics only); [`TrySendError::Failed`] as [`send`](Self::send). Each
    /// gives the message back.
    pub fn try_send<'m>(&mut self, msg: &'m T::Input) -> Result<(), TrySendError<&'m T::Input>> {
        match T::encode(msg, |b| self.core.send_bytes(b, Some(Instant::now()))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Error::Timeout { .. })) => Err(TrySendError::Full(msg)),
            Ok(Err(e)) | Err(e) => Err(TrySendError::from_error(e, msg)),
        }
    }

    /// Publishes `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] if no room came in time;
    /// [`SendTimeoutError::Failed`] as [`send`](Self::send). Each gives the
    /// message back.
    pub fn send_timeout<'m>(
        &mut self,
        msg: &'m T::Input,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<&'m T::Input>> {
        match crate::rendezvous::deadline_after(timeout) {
            Some(d) => self.send_deadline(msg, d),
            None => self
                .send(msg)
                .map_err(|e| SendTimeoutError::from_error(e, msg)),
        }
    }

    /// Publishes `msg`, waiting until `deadline` at the latest for room.
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout).
    pub fn send_deadline<'m>(
        &mut self,
        msg: &'m T::Input,
        deadline: Instant,
    ) -> Result<(), SendTimeoutError<&'m T::Input>> {
        match T::encode(msg, |b| self.core.send_bytes(b, Some(deadline))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Error::Timeout { .. })) => Err(SendTimeoutError::Timeout(msg)),
            Ok(Err(e)) | Err(e) => Err(SendTimeoutError::from_error(e, msg)),
        }
    }
}

impl<T: ?Sized> Publisher<T> {
    /// Ends the topic cleanly: subscribers receive every message, then
    /// `Ok(None)`. The topic's key is freed at once (a new publisher may
    /// create it again); subscribers still attached drain the old one.
    ///
    /// # Errors
    ///
    /// None so far; the `Result` leaves room for a check of the end.
    pub fn close(mut self) -> Result<()> {
        self.core.end(ring::CLOSED);
        Ok(())
    }

    /// How many live subscribers the topic has now (subscribers found dead
    /// are dropped first).
    pub fn subscribers(&self) -> usize {
        self.core.reap()
    }

    /// The live subscribers, with how far each is behind: for inspection
    /// tools and tests.
    ///
    /// ```
    /// use svshm_channel::{Endpoint, Options, Publisher, Subscriber};
    /// let ep = Endpoint::name(format!("doc-list-{}", std::process::id()));
    /// let mut p = Publisher::create(&ep, &Options::new())?;
    /// let _s = Subscriber::connect(&ep, &Options::new())?;
    /// p.send(b"x")?;
    /// let list = p.subscriber_list();
    /// assert_eq!(list.len(), 1);
    /// assert_eq!(list[0].lag, 1);
    /// assert_eq!(list[0].pid, std::process::id() as i32);
    /// # Ok::<(), svshm_channel::Error>(())
    /// ```
    pub fn subscriber_list(&self) -> Vec<SubscriberInfo> {
        self.core.reap();
        (0..self.core.st.n_slots)
            .filter_map(|i| {
                let slot = self.core.shm.slot(i);
                let id = holder(slot)?;
                let seq = slot.seq.load(Ordering::Relaxed);
                Some(SubscriberInfo {
                    slot: i,
                    pid: id.pid,
                    lag: self.core.st.next_seq.saturating_sub(seq),
                    missed: slot.missed.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    /// Messages published so far.
    pub fn published(&self) -> u64 {
        self.core.st.next_seq
    }

    /// Largest message the topic carries, in bytes.
    pub fn max_message(&self) -> usize {
        self.core.st.max_message as usize
    }

    /// The topic's overflow mode.
    pub fn overflow(&self) -> Overflow {
        self.core.st.overflow
    }

    /// The topic segment's id (subscribers of a private topic connect with
    /// [`Endpoint::id`]).
    pub fn segment_id(&self) -> i32 {
        self.core.shm.att.id()
    }

    /// Ring capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.core.shm.cap as usize
    }

    /// The topic's name as stored in its header.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// Abandoned segments removed while creating the topic (left under the
    /// same key by a process that died), each with why.
    pub fn reclaimed(&self) -> &[Reclaimed] {
        &self.core.reclaimed
    }
}

impl<T: ?Sized> Drop for Publisher<T> {
    fn drop(&mut self) {
        self.core.end(ring::ABORTED);
    }
}

impl PubCore {
    fn id(&self) -> i32 {
        self.shm.att.id()
    }

    fn check(&self, len: usize) -> Result<()> {
        if self.closed {
            return Err(Error::Invalid("the topic is closed".into()));
        }
        if len as u64 > self.st.max_message {
            return Err(Error::MessageTooLarge {
                len,
                max: self.st.max_message as usize,
            });
        }
        Ok(())
    }

    fn send_bytes(&mut self, bytes: &[u8], deadline: Option<Instant>) -> Result<()> {
        self.check(bytes.len())?;
        let start = self.reserve(bytes.len(), deadline)?;
        let pos = start & (self.shm.cap - 1);
        self.shm.store_bytes(pos + FRAME_HEADER, bytes);
        self.publish(start, bytes.len());
        Ok(())
    }

    /// Frees the slots of dead subscribers; the live count.
    fn reap(&self) -> usize {
        self.watches.borrow_mut().reap(&self.shm, self.st.n_slots)
    }

    /// Waits for room for a `len`-byte frame (publishing a skip marker
    /// first if it does not fit before the ring's end); returns the cursor
    /// the frame starts at.
    fn reserve(&mut self, len: usize, deadline: Option<Instant>) -> Result<u64> {
        let cap = self.shm.cap;
        let flen = layout::frame_len(len as u64);
        let to_end = cap - (self.st.head & (cap - 1));
        let skip = if flen > to_end { to_end } else { 0 };
        let need_end = self.st.head + skip + flen + NEXT_TAG;
        let now = monotonic_ms();
        if now.wrapping_sub(self.last_reap_ms) >= POLL_SLICE.as_millis() as u64 {
            self.last_reap_ms = now;
            self.reap();
        }
        let ready = self
            .st
            .room_for(&self.shm, need_end)
            .map_err(|e| self.error(e))?;
        if !ready {
            let policy = WaitPolicy {
                wait: self.wait,
                deadline,
                spin: self.spin,
            };
            let id = self.id();
            let n = self.st.n_slots;
            let PubCore {
                shm, st, watches, ..
            } = self;
            let result = ring::block_on(
                &shm.block().space_wait.0,
                policy,
                || st.room_for(shm, need_end),
                || {
                    watches.borrow_mut().reap(shm, n);
                    Liveness::Alive
                },
            );
            result.map_err(|e| match e {
                RingError::Timeout => Error::Timeout {
                    waiting_for: "room in the topic's ring (a subscriber is a ring behind)".into(),
                },
                RingError::Corrupt(detail) => Error::Corrupt { id, detail },
                _ => Error::Invalid(format!("topic segment {id}: {e}")),
            })?;
        }
        if skip > 0 {
            let shm = &self.shm;
            let pos = self.st.head & (cap - 1);
            shm.word(pos + 8)
                .store(layout::len_word(SKIP), Ordering::Relaxed);
            shm.word(0).store(0, Ordering::Relaxed);
            // SYNC: publishes the marker to a subscriber's Acquire load of the
            // tag in `read_record`.
            shm.word(pos).store(!self.st.head, Ordering::Release);
            self.st.head += skip;
            self.st.records.push_back(Rec { end: self.st.head });
        }
        Ok(self.st.head)
    }

    fn error(&self, e: RingError) -> Error {
        match e {
            RingError::Corrupt(detail) => Error::Corrupt {
                id: self.id(),
                detail,
            },
            e => Error::Invalid(format!("topic segment {}: {e}", self.id())),
        }
    }

    /// Publishes the frame of `len` bytes (payload already written) at
    /// cursor `start` (= head).
    fn publish(&mut self, start: u64, len: usize) {
        let cap = self.shm.cap;
        let pos = start & (cap - 1);
        let flen = layout::frame_len(len as u64);
        let shm = &self.shm;
        shm.word(pos + 8)
            .store(layout::len_word(len as u32), Ordering::Relaxed);
        shm.word(pos + 16)
            .store(self.st.next_seq, Ordering::Relaxed);
        shm.word((start + flen) & (cap - 1))
            .store(0, Ordering::Relaxed);
        // SYNC: publishes the frame and the cleared next tag to a
        // subscriber's Acquire load of the tag in `read_record`.
        shm.word(pos).store(!start, Ordering::Release);
        self.st.head = start + flen;
        self.st.next_seq += 1;
        self.st.records.push_back(Rec { end: self.st.head });
        let p = &shm.block().progress.0;
        // SYNC: pairs with the Acquire load of `next_seq` by a joining
        // subscriber: every frame before it is tagged.
        p.next_seq.store(self.st.next_seq, Ordering::Release);
        p.head.store(self.st.head, Ordering::Relaxed);
        ring::wake_if_waiting(&shm.block().data_wait.0);
    }

    /// Ends the topic once with `how` and frees its key.
    fn end(&mut self, how: u32) {
        if self.closed {
            return;
        }
        self.closed = true;
        let b = self.shm.block();
        b.end.0.final_seq.store(self.st.next_seq, Ordering::Relaxed);
        // SYNC: publishes every frame and `final_seq` to a subscriber's
        // Acquire load of `closed`.
        b.end.0.closed.store(how, Ordering::Release);
        let slot = self.shm.header().slot(Role::Writer);
        // SYNC: pairs with the Acquire loads of slot states in `inspect` and
        // `HeaderFacts::read` (the publisher left).
        slot.state
            .store(crate::header::SLOT_CLOSED, Ordering::Release);
        crate::futex::wake(&b.data_wait.0);
        // Subscribers attached go on draining; the kernel frees the segment
        // when the last one detaches, and nobody new can find it.
        let _ = self.shm.att.segment().remove();
    }
}

impl PubState {
    /// Whether the bytes up to cursor `need_end` may be written now (raising
    /// the tail over records nobody needs any more).
    fn room_for(&mut self, shm: &Shm, need_end: u64) -> Result<bool, RingError> {
        let floor = need_end.saturating_sub(shm.cap);
        if floor <= self.tail && floor <= self.confirmed {
            return Ok(true);
        }
        let raise_to = match self.overflow {
            Overflow::Lossy => u64::MAX,
            Overflow::Backpressure => self.min_active(shm)?,
        };
        let before = self.tail;
        while self.tail < floor {
            match self.records.front() {
                Some(r) if r.end <= raise_to => {
                    self.tail = r.end;
                    self.records.pop_front();
                }
                _ => break,
            }
        }
        if self.tail != before {
            // SYNC: a seqlock's write side: the tail is raised before any of
            // the bytes below it are overwritten (the fence orders it before
            // the stores that follow); a lossy subscriber that copied an
            // overwritten byte sees the raised tail after its Acquire fence.
            // SeqCst against a joining subscriber's store of its cursor and
            // load of the tail: either it sees this tail, or the scan below
            // sees its cursor.
            shm.block().tail.0.store(self.tail, Ordering::SeqCst);
            // SYNC: the seqlock's write fence (see above): orders the tail
            // before the overwriting stores that follow.
            fence(Ordering::SeqCst);
        }
        if self.tail < floor {
            return Ok(false);
        }
        if self.overflow == Overflow::Lossy {
            self.confirmed = self.tail;
            return Ok(true);
        }
        let m = self.min_active(shm)?;
        self.confirmed = self.tail.min(m);
        Ok(m >= floor)
    }

    /// The lowest cursor of a live subscriber (our head if none), each
    /// validated: a cursor past our head, or more than a ring behind it, is
    /// corrupt.
    fn min_active(&self, shm: &Shm) -> Result<u64, RingError> {
        let mut m = self.head;
        for i in 0..self.n_slots {
            let slot = shm.slot(i);
            // SYNC: pairs with the subscriber's SeqCst stores of its cursor
            // and state (see `room_for`), and its Release stores of its
            // cursor after reading (its reads happen before our overwrite).
            if slot.state.load(Ordering::SeqCst) != crate::header::SLOT_ATTACHED {
                continue;
            }
            // SYNC: as above: pairs with the subscriber's SeqCst and Release
            // stores of its cursor.
            let c = slot.cursor.load(Ordering::SeqCst);
            if c > self.head || c < self.head.saturating_sub(shm.cap) {
                return Err(RingError::Corrupt(format!(
                    "subscriber slot {i} holds cursor {c}, outside the ring's bytes [{}, {}]",
                    self.head.saturating_sub(shm.cap),
                    self.head
                )));
            }
            m = m.min(c);
        }
        Ok(m)
    }
}

/// A message being written in place ([`Publisher::loan`]): fill it through
/// `DerefMut`, then [`send`](Self::send). Dropped without `send`, nothing is
/// published.
pub struct TopicLoan<'a> {
    core: &'a mut PubCore,
    start: u64,
    len: usize,
    /// A lossy topic's private buffer (old bytes in the ring may still be
    /// read by a lagging subscriber, so they are never lent out).
    buf: Option<Vec<u8>>,
}

impl TopicLoan<'_> {
    /// Publishes the message to every subscriber.
    ///
    /// # Errors
    ///
    /// In a lossy topic, as [`Publisher::send`]; in a backpressure topic
    /// none (the room was reserved by [`Publisher::loan`]).
    pub fn send(self) -> Result<()> {
        match &self.buf {
            Some(buf) => self.core.send_bytes(buf, None),
            None => {
                self.core.publish(self.start, self.len);
                Ok(())
            }
        }
    }
}

impl core::ops::Deref for TopicLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.buf {
            Some(buf) => buf,
            // SAFETY: the frame's bytes at `start` lie beyond every tag a
            // subscriber may read (unpublished) and below every live
            // subscriber's cursor plus a ring (reserved): nobody else reads
            // or writes them until `send` tags the frame.
            None => unsafe { self.core.shm.slice(self.payload_pos(), self.len) },
        }
    }
}

impl core::ops::DerefMut for TopicLoan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let pos = self.payload_pos();
        match &mut self.buf {
            Some(buf) => buf,
            // SAFETY: as in `deref`; `&mut self` makes this the only view.
            None => unsafe { self.core.shm.slice_mut(pos, self.len) },
        }
    }
}

impl TopicLoan<'_> {
    fn payload_pos(&self) -> u64 {
        (self.start & (self.core.shm.cap - 1)) + FRAME_HEADER
    }
}

impl<T: ?Sized> crate::select::Waitable for Publisher<T> {
    fn wait_word(&self) -> &crate::sync::AtomicU32 {
        &self.core.shm.block().space_wait.0
    }
    fn is_ready(&self, need: usize) -> bool {
        let c = &self.core;
        if c.closed || c.st.overflow == Overflow::Lossy {
            return true;
        }
        let cap = c.shm.cap;
        let flen = layout::frame_len(need.min(c.st.max_message as usize) as u64);
        let to_end = cap - (c.st.head & (cap - 1));
        let skip = if flen > to_end { to_end } else { 0 };
        let floor = (c.st.head + skip + flen + NEXT_TAG).saturating_sub(cap);
        // An error is "ready": the send reports it.
        c.st.min_active(&c.shm).map_or(true, |m| m >= floor)
    }
    fn peer_gone(&self) -> bool {
        // Subscribers that died are dropped; their room shows in `is_ready`.
        let before = self.core.st.min_active(&self.core.shm).ok();
        self.core.reap();
        self.core.st.min_active(&self.core.shm).ok() != before
    }
    fn has_exit_flag(&self) -> bool {
        false
    }
}
