#![allow(unsafe_code)] // Lends an unread frame's bytes in the ring (`TopicRef`).
//! The subscribing end of a topic.

use super::layout::{Record, Shm, read_record};
use super::watch::{monotonic_ms, provably_dead};
use super::{Overflow, PubWatch, join};
use crate::codec::Decode;
use crate::endpoint::{Endpoint, Options};
use crate::error::{Error, Result, Role};
use crate::header;
use crate::reclaim::Reclaimed;
use crate::ring::{self, Liveness, MAX_CURSOR, RingError, Wait, WaitPolicy};
use crate::sync::{Ordering, fence};
use crate::try_error::{RecvTimeoutError, TryRecvError};
use core::marker::PhantomData;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use svshm::process::ProcessId;

/// A subscribing end of a topic: receives every message its
/// [`Publisher`](crate::Publisher) publishes after it joined (or the last
/// [`Options::history`] still in the ring), in order, at its own pace.
///
/// Typed like [`Receiver`](crate::Receiver): bytes by default, any
/// [`Decode`] type with [`connect_typed`](Subscriber::connect_typed), each
/// message validated on receipt. Dropping it frees its slot at once.
pub struct Subscriber<T: ?Sized = [u8]> {
    core: SubCore,
    _message: PhantomData<fn() -> Box<T>>,
}

struct SubCore {
    /// Our slot index.
    slot: usize,
    /// Whether our claim of the slot went through to ATTACHED (else it is
    /// CLAIMING, or was taken from us).
    attached: bool,
    /// Whether our claim was taken from us before it went through: the
    /// slot is someone else's now, and leaving must not touch it.
    lost: bool,
    /// The next record to read: the authority, stored into the slot after
    /// each message.
    cursor: u64,
    /// The sequence number the next message must carry (`None`: whatever
    /// the first one carries, after a join the publisher lapped).
    expected: Option<u64>,
    max_message: u64,
    overflow: Overflow,
    publisher_pid: i32,
    publisher: PubWatch,
    wait: Wait,
    spin: Duration,
    name: String,
    reclaimed: Vec<Reclaimed>,
    /// This end's private copy of the last message (reused).
    buf: Vec<u8>,
    // Last: everything above points into it.
    shm: Shm,
}

/// What one look at the cursor found.
enum Got {
    Empty,
    Frame {
        pos: u64,
        len: usize,
        seq: u64,
        end: u64,
    },
}

impl Subscriber<[u8]> {
    /// Joins the topic of byte messages at `endpoint` (for typed messages
    /// see [`connect_typed`](Subscriber::connect_typed)), waiting up to the
    /// options' timeout for its publisher to create it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use svshm_channel::{Endpoint, Error, Options, Subscriber};
    /// let ep = Endpoint::name(format!("doc-nobody-{}", std::process::id()));
    /// let quick = Options::new().timeout(Some(Duration::from_millis(20)));
    /// assert!(matches!(Subscriber::connect(&ep, &quick), Err(Error::Timeout { .. })));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if no topic came in time;
    /// [`Error::SubscribersFull`] if every slot is held by a live subscriber;
    /// [`Error::Foreign`] for a segment of another owner or a wider mode
    /// than asked; [`Error::Mismatch`] for another kind of channel;
    /// [`Error::Corrupt`] for a header that breaks the layout.
    pub fn connect(endpoint: &Endpoint, options: &Options) -> Result<Subscriber> {
        Subscriber::connect_typed(endpoint, options)
    }

    /// Receives the next message in place, without copying: the guard
    /// derefs to its bytes in the ring, and consumes it when dropped.
    /// `Ok(None)` at the publisher's clean close. Backpressure topics only:
    /// in a lossy one the publisher may overwrite the bytes under the guard.
    ///
    /// ```
    /// use svshm_channel::{Endpoint, Options, Publisher, Subscriber};
    /// let ep = Endpoint::name(format!("doc-ref-{}", std::process::id()));
    /// let mut p = Publisher::create(&ep, &Options::new())?;
    /// let mut s = Subscriber::connect(&ep, &Options::new())?;
    /// p.send(b"in place")?;
    /// assert_eq!(&*s.recv_ref()?.unwrap(), b"in place");
    /// # Ok::<(), svshm_channel::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on a lossy topic; otherwise as
    /// [`recv`](Subscriber::recv).
    pub fn recv_ref(&mut self) -> Result<Option<TopicRef<'_>>> {
        if self.core.overflow == Overflow::Lossy {
            return Err(Error::Invalid(
                "recv_ref lends bytes in the ring, which a lossy publisher may overwrite meanwhile; use recv (a validated copy) on a lossy topic".into(),
            ));
        }
        match self.core.next(None, false)? {
            None => Ok(None),
            Some((pos, len, seq, end)) => Ok(Some(TopicRef {
                core: &mut self.core,
                pos,
                len,
                seq,
                end,
            })),
        }
    }
}

impl<T: ?Sized + Decode> Subscriber<T> {
    /// Joins a topic of `T` messages (see [`connect`](Subscriber::connect)
    /// for bytes).
    ///
    /// # Errors
    ///
    /// As [`connect`](Subscriber::connect).
    pub fn connect_typed(endpoint: &Endpoint, options: &Options) -> Result<Subscriber<T>> {
        let t = join::open(endpoint, options)?;
        let (publisher_pid, publisher) = join::watch_publisher(&t.shm);
        let mut core = SubCore {
            slot: 0,
            attached: false,
            lost: false,
            cursor: 0,
            expected: None,
            max_message: t.max_message,
            overflow: t.overflow,
            publisher_pid,
            publisher,
            wait: options.wait,
            spin: options.spin,
            name: t.name,
            reclaimed: t.reclaimed,
            buf: Vec::new(),
            shm: t.shm,
        };
        core.slot = core.claim(t.subscribers)?;
        if let Err(e) = core.start(options.history) {
            core.leave();
            return Err(e);
        }
        Ok(Subscriber {
            core,
            _message: PhantomData,
        })
    }

    /// Receives the next message, waiting for it (for ever). `Ok(None)`
    /// once the publisher closed cleanly and every message was received.
    ///
    /// # Errors
    ///
    /// [`Error::Lagged`] once when a lossy publisher overwrote messages this
    /// subscriber had not read (the next call goes on from the oldest still
    /// there); [`Error::PeerDied`] or [`Error::Aborted`] after the last
    /// message of a publisher that died or was dropped without closing;
    /// [`Error::BadMessage`] for a message that is not a valid `T` (skipped);
    /// [`Error::Corrupt`] if the ring breaks the protocol.
    pub fn recv(&mut self) -> Result<Option<T::Output>> {
        self.recv_until(None)
    }

    /// Receives a message if one is there now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is; [`TryRecvError::Disconnected`]
    /// after the publisher's clean close; [`TryRecvError::Failed`] as
    /// [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<T::Output, TryRecvError> {
        match self.recv_until(Some(Instant::now())) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(TryRecvError::Disconnected),
            Err(Error::Timeout { .. }) => Err(TryRecvError::Empty),
            Err(e) => Err(TryRecvError::Failed(e)),
        }
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use svshm_channel::{Endpoint, Options, Publisher, RecvTimeoutError, Subscriber, TryRecvError};
    /// let ep = Endpoint::name(format!("doc-timeout-{}", std::process::id()));
    /// let p = Publisher::<str>::create_typed(&ep, &Options::new())?;
    /// let mut s = Subscriber::<str>::connect_typed(&ep, &Options::new())?;
    /// assert!(matches!(s.try_recv(), Err(TryRecvError::Empty)));
    /// let r = s.recv_timeout(Duration::from_millis(10));
    /// assert!(matches!(r, Err(RecvTimeoutError::Timeout)));
    /// p.close()?;
    /// assert!(matches!(s.try_recv(), Err(TryRecvError::Disconnected)));
    /// # Ok::<(), svshm_channel::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none came in time; otherwise as
    /// [`try_recv`](Self::try_recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T::Output, RecvTimeoutError> {
        self.recv_maybe_deadline(crate::rendezvous::deadline_after(timeout))
    }

    /// Receives a message, waiting until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<T::Output, RecvTimeoutError> {
        self.recv_maybe_deadline(Some(deadline))
    }

    fn recv_maybe_deadline(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<T::Output, RecvTimeoutError> {
        match self.recv_until(deadline) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(RecvTimeoutError::Disconnected),
            Err(Error::Timeout { .. }) => Err(RecvTimeoutError::Timeout),
            Err(e) => Err(RecvTimeoutError::Failed(e)),
        }
    }

    /// The messages until the publisher's clean close, each as
    /// [`recv`](Self::recv) gives it. After an error other than
    /// [`Error::Lagged`] or [`Error::BadMessage`] the iterator ends.
    ///
    /// ```
    /// use svshm_channel::{Endpoint, Options, Publisher, Subscriber};
    /// let ep = Endpoint::name(format!("doc-iter-{}", std::process::id()));
    /// let mut p = Publisher::<u32>::create_typed(&ep, &Options::new())?;
    /// let mut s = Subscriber::<u32>::connect_typed(&ep, &Options::new())?;
    /// for i in 0..3 { p.send(&i)?; }
    /// p.close()?;
    /// let got: Vec<u32> = s.iter().collect::<Result<_, _>>()?;
    /// assert_eq!(got, [0, 1, 2]);
    /// # Ok::<(), svshm_channel::Error>(())
    /// ```
    pub fn iter(&mut self) -> TopicIter<'_, T> {
        TopicIter {
            sub: self,
            done: false,
        }
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Option<T::Output>> {
        let id = self.core.shm.att.id();
        // The frame was copied into `buf` (and, lossy, re-validated after
        // the copy); its position in the ring is not needed.
        let Some((_, _, seq, end)) = self.core.next(deadline, true)? else {
            return Ok(None);
        };
        let mut buf = core::mem::take(&mut self.core.buf);
        self.core.advance(seq, end);
        let r = T::decode(&mut buf).map_err(|detail| Error::BadMessage { id, detail });
        self.core.buf = buf;
        r.map(Some)
    }
}

impl<T: ?Sized> Subscriber<T> {
    /// The topic's overflow mode (the publisher's choice).
    pub fn overflow(&self) -> Overflow {
        self.core.overflow
    }

    /// Largest message the topic carries, in bytes.
    pub fn max_message(&self) -> usize {
        self.core.max_message as usize
    }

    /// Ring capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.core.shm.cap as usize
    }

    /// The topic segment's id.
    pub fn segment_id(&self) -> i32 {
        self.core.shm.att.id()
    }

    /// The topic's name as stored in its header.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The publisher's pid.
    pub fn publisher_pid(&self) -> i32 {
        self.core.publisher_pid
    }

    /// This subscriber's slot in the topic.
    pub fn slot(&self) -> usize {
        self.core.slot
    }

    /// Abandoned segments removed while joining, each with why.
    pub fn reclaimed(&self) -> &[Reclaimed] {
        &self.core.reclaimed
    }
}

impl<T: ?Sized> Drop for Subscriber<T> {
    fn drop(&mut self) {
        self.core.leave();
    }
}

/// The iterator of [`Subscriber::iter`].
pub struct TopicIter<'a, T: ?Sized + Decode> {
    sub: &'a mut Subscriber<T>,
    done: bool,
}

impl<T: ?Sized + Decode> Iterator for TopicIter<'_, T> {
    type Item = Result<T::Output>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.sub.recv() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = !matches!(e, Error::Lagged { .. } | Error::BadMessage { .. });
                Some(Err(e))
            }
        }
    }
}

/// A message read in place ([`Subscriber::recv_ref`]): derefs to its bytes
/// in the ring; consumed when dropped.
pub struct TopicRef<'a> {
    core: &'a mut SubCore,
    pos: u64,
    len: usize,
    seq: u64,
    end: u64,
}

impl TopicRef<'_> {
    /// The message's sequence number in the topic (0 for the first the
    /// publisher sent).
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl core::ops::Deref for TopicRef<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: a backpressure topic (checked by `recv_ref`): the publisher
        // overwrites nothing at or past our cursor, which stays at this frame
        // until the guard is dropped.
        unsafe { self.core.shm.slice(self.pos, self.len) }
    }
}

impl Drop for TopicRef<'_> {
    fn drop(&mut self) {
        self.core.advance(self.seq, self.end);
    }
}

impl SubCore {
    fn id(&self) -> i32 {
        self.shm.att.id()
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            id: self.id(),
            detail,
        }
    }

    /// Claims a free slot among the topic's `n` (freeing those of
    /// subscribers that died if all are taken).
    fn claim(&mut self, n: usize) -> Result<usize> {
        let me = ProcessId::current();
        for round in 0..2 {
            for i in 0..n {
                let slot = self.shm.slot(i);
                if slot.state.load(Ordering::Relaxed) != header::SLOT_EMPTY {
                    continue;
                }
                // Stamped before the claim, not after: the publisher frees a
                // claim whose stamp is over a second old, and between our
                // CAS and a later store it would read the stamp of the
                // slot's previous claim and free ours at once (the join then
                // failed with "taken while joining"). A stamp written into a
                // slot that another joiner claims first only makes that
                // claim look younger. Published to the publisher by the
                // CAS's Release.
                slot.claimed_at.store(monotonic_ms(), Ordering::Relaxed);
                // SYNC: the CAS decides between racing claimers; a slot
                // freed by its holder (Release) is seen free here, and the
                // publisher's Acquire load of the state that reads our
                // CLAIMING sees the stamp above.
                if slot
                    .state
                    .compare_exchange(
                        header::SLOT_EMPTY,
                        header::SLOT_CLAIMING,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    slot.pid.store(me.pid as u32, Ordering::Relaxed);
                    slot.start_time.store(me.start_time, Ordering::Relaxed);
                    slot.missed.store(0, Ordering::Relaxed);
                    slot.pid_ns
                        .store(super::watch::pid_namespace(), Ordering::Relaxed);
                    return Ok(i);
                }
            }
            if round == 0 {
                for i in 0..n {
                    let slot = self.shm.slot(i);
                    if let Some(id) = super::watch::holder(slot) {
                        if provably_dead(slot, id) {
                            super::watch::free(slot, id);
                        }
                    }
                }
            }
        }
        Err(Error::SubscribersFull {
            id: self.id(),
            max: n,
        })
    }

    /// Frees our slot (if it is still ours) and wakes the publisher, which
    /// may wait for us.
    fn leave(&mut self) {
        let slot = self.shm.slot(self.slot);
        let me = std::process::id();
        if !self.lost && slot.pid.load(Ordering::Relaxed) == me {
            // Only the state we left it in: trying both, one after the
            // other, freed the claim of a joiner that took the slot between
            // the two (its pid not yet stored, ours still there).
            let ours = if self.attached {
                header::SLOT_ATTACHED
            } else {
                header::SLOT_CLAIMING
            };
            // SYNC: Release: our reads of the ring happen before a new
            // holder's (or the publisher's) use of the slot.
            let _ = slot.state.compare_exchange(
                ours,
                header::SLOT_EMPTY,
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
        ring::wake_if_waiting(&self.shm.block().space_wait.0);
    }

    /// The tail, validated.
    fn tail(&self) -> Result<u64> {
        // SYNC: pairs with the publisher's SeqCst store of the tail, made
        // before it overwrites anything below it.
        let t = self.shm.block().tail.0.load(Ordering::SeqCst);
        if t > MAX_CURSOR {
            return Err(self.corrupt(format!("tail cursor {t} is out of range")));
        }
        Ok(t)
    }

    /// Whether the publisher has overwritten (or begun to) the record at
    /// `c` since we read it: a seqlock's read side.
    fn lapped(&self, c: u64) -> bool {
        // SYNC: pairs with the fence after the publisher's store of the tail:
        // if anything we copied was overwritten, this load sees the raised
        // tail.
        fence(Ordering::Acquire);
        self.shm.block().tail.0.load(Ordering::Relaxed) > c
    }

    /// Registers our cursor at the tail (so that a backpressure publisher
    /// keeps everything from there), then moves it to where we start:
    /// the newest message, or the last `history` ones.
    fn start(&mut self, history: usize) -> Result<()> {
        let slot_i = self.slot;
        for _ in 0..1000 {
            let t = self.tail()?;
            let slot = self.shm.slot(slot_i);
            // SYNC: SeqCst against the publisher's store of the tail and
            // scan of the slots (see `PubState::room_for`): either we see its
            // raised tail below, or it sees our cursor.
            slot.cursor.store(t, Ordering::SeqCst);
            slot.seq.store(0, Ordering::Relaxed);
            if !self.attached {
                // SYNC: SeqCst with the publisher's scan of slot states (see
                // the cursor store above); publishes our identity too.
                if slot
                    .state
                    .compare_exchange(
                        header::SLOT_CLAIMING,
                        header::SLOT_ATTACHED,
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    )
                    .is_err()
                {
                    self.lost = true;
                    return Err(Error::Invalid(format!(
                        "topic segment {}: our subscriber slot {slot_i} was taken while joining (the join took over a second); connect again",
                        self.id()
                    )));
                }
                self.attached = true;
            }
            // SYNC: the Dekker fence between our cursor store and the tail
            // load below (the publisher: tail store, fence, slot scan).
            fence(Ordering::SeqCst);
            if self.tail()? != t {
                continue;
            }
            if let Some((cursor, expected)) = self.walk(t, history)? {
                self.cursor = cursor;
                self.expected = expected;
                let slot = self.shm.slot(slot_i);
                slot.seq.store(expected.unwrap_or(0), Ordering::Relaxed);
                // SYNC: Release: pairs with the publisher's loads of our
                // cursor (we are done with the bytes below it).
                slot.cursor.store(cursor, Ordering::Release);
                ring::wake_if_waiting(&self.shm.block().space_wait.0);
                return Ok(());
            }
        }
        // A lossy publisher laps the ring faster than we can walk it: start
        // at its tail and take the sequence number of what is found there.
        self.cursor = self.tail()?;
        self.expected = None;
        // SYNC: Release: pairs with the publisher's loads of our cursor.
        self.shm
            .slot(slot_i)
            .cursor
            .store(self.cursor, Ordering::Release);
        Ok(())
    }

    /// Walks the records from the tail `t` to the first not yet published;
    /// returns where to start and the sequence number found there, or
    /// `None` if a lossy publisher overwrote a record under the walk.
    fn walk(&self, t: u64, history: usize) -> Result<Option<(u64, Option<u64>)>> {
        let lossy = self.overflow == Overflow::Lossy;
        // SYNC: pairs with the Release store of `next_seq` after each tag:
        // every message numbered below it is tagged.
        let next_seq = self.shm.block().progress.0.next_seq.load(Ordering::Acquire);
        let mut last: VecDeque<(u64, u64)> = VecDeque::new();
        let mut prev: Option<u64> = None;
        let mut c = t;
        let steps = self.shm.cap / 16 + 2;
        for _ in 0..steps {
            let rec = read_record(&self.shm, c, self.max_message);
            if lossy && self.lapped(c) {
                return Ok(None);
            }
            match rec.map_err(|d| self.corrupt(d))? {
                Record::NotReady => {
                    let start = match last.front() {
                        Some(&(cur, seq)) if history > 0 => (cur, Some(seq)),
                        _ => (c, Some(prev.map_or(next_seq, |p| p + 1))),
                    };
                    return Ok(Some(start));
                }
                Record::Skip { end } => c = end,
                Record::Frame { seq, end, .. } => {
                    if prev.is_some_and(|p| p.checked_add(1) != Some(seq)) {
                        return Err(self.corrupt(format!(
                            "message {seq} follows message {} in the ring",
                            prev.unwrap_or(0)
                        )));
                    }
                    prev = Some(seq);
                    if history > 0 {
                        if last.len() == history {
                            last.pop_front();
                        }
                        last.push_back((c, seq));
                    }
                    c = end;
                }
            }
        }
        Err(self.corrupt("the ring's records never reach an unpublished one".into()))
    }

    /// One look at our cursor: the next message (copied into `buf` if
    /// `copy`), or nothing yet. A lossy subscriber that was overwritten
    /// gets [`Error::Lagged`] and is moved to the oldest message.
    fn poll(&mut self, copy: bool) -> Result<Got> {
        let lossy = self.overflow == Overflow::Lossy;
        loop {
            let c = self.cursor;
            let rec = read_record(&self.shm, c, self.max_message);
            if let (true, Ok(Record::Frame { pos, len, .. })) = (copy, &rec) {
                self.buf.resize(*len, 0);
                self.shm.load_bytes(*pos, &mut self.buf);
            }
            if lossy && self.lapped(c) {
                if let Some(missed) = self.resync()? {
                    return Err(Error::Lagged { missed });
                }
                continue;
            }
            match rec.map_err(|d| self.corrupt(d))? {
                Record::NotReady => return Ok(Got::Empty),
                Record::Skip { end } => {
                    self.cursor = end;
                    // SYNC: Release: we are done with the bytes below it.
                    self.shm
                        .slot(self.slot)
                        .cursor
                        .store(end, Ordering::Release);
                }
                Record::Frame { pos, len, seq, end } => {
                    if let Some(e) = self.expected {
                        if seq != e {
                            return Err(
                                self.corrupt(format!("message {seq} where message {e} was due"))
                            );
                        }
                    }
                    return Ok(Got::Frame { pos, len, seq, end });
                }
            }
        }
    }

    /// After being overwritten: moves to the oldest record still intact;
    /// returns how many messages were lost (`None`: none, go on).
    fn resync(&mut self) -> Result<Option<u64>> {
        for _ in 0..1000 {
            let mut c = self.tail()?;
            let rec = read_record(&self.shm, c, self.max_message);
            if self.lapped(c) {
                continue;
            }
            let rec = match rec.map_err(|d| self.corrupt(d))? {
                Record::Skip { end } => {
                    c = end;
                    let rec = read_record(&self.shm, c, self.max_message);
                    if self.lapped(c) {
                        continue;
                    }
                    rec.map_err(|d| self.corrupt(d))?
                }
                r => r,
            };
            let seq = match rec {
                Record::Frame { seq, .. } => seq,
                // Nothing intact is published at the tail: start there with
                // the number the next message gets.
                // SYNC: pairs with the Release store of `next_seq` after
                // each tag.
                _ => self.shm.block().progress.0.next_seq.load(Ordering::Acquire),
            };
            let missed = match self.expected {
                Some(e) if seq < e => {
                    return Err(self.corrupt(format!(
                        "the oldest message is {seq}, but message {e} was due"
                    )));
                }
                Some(e) => seq - e,
                None => 0,
            };
            self.cursor = c;
            self.expected = Some(seq);
            let slot = self.shm.slot(self.slot);
            // SYNC: Release: pairs with the publisher's loads of our cursor.
            slot.cursor.store(c, Ordering::Release);
            slot.seq.store(seq, Ordering::Relaxed);
            slot.missed.fetch_add(missed, Ordering::Relaxed);
            return Ok((missed > 0).then_some(missed));
        }
        Err(self.corrupt("the tail never settles on an intact record".into()))
    }

    /// Done with the message `seq` ending at `end`.
    fn advance(&mut self, seq: u64, end: u64) {
        self.cursor = end;
        self.expected = Some(seq + 1);
        let slot = self.shm.slot(self.slot);
        slot.seq.store(seq + 1, Ordering::Relaxed);
        // SYNC: Release: our reads of the frame happen before the
        // publisher's Acquire load of the cursor and its overwrite.
        slot.cursor.store(end, Ordering::Release);
        if self.overflow == Overflow::Backpressure {
            ring::wake_if_waiting(&self.shm.block().space_wait.0);
        }
    }

    /// Whether there is something to look at: a tagged record, the end, or
    /// (lossy) a lap.
    fn has_news(&self) -> bool {
        let c = self.cursor;
        let pos = c & (self.shm.cap - 1);
        // SYNC: as in `read_record`.
        self.shm.word(pos & !7).load(Ordering::Acquire) == !c
            || self.shm.block().end.0.closed.load(Ordering::Acquire) != 0
            || (self.overflow == Overflow::Lossy
                && self.shm.block().tail.0.load(Ordering::Acquire) > c)
    }

    /// The next message (copied into `buf` if `copy`) as (payload position,
    /// length, sequence number, end), or `None` at the publisher's clean
    /// close; waits until `deadline`.
    fn next(
        &mut self,
        deadline: Option<Instant>,
        copy: bool,
    ) -> Result<Option<(u64, usize, u64, u64)>> {
        loop {
            if let Got::Frame { pos, len, seq, end } = self.poll(copy)? {
                return Ok(Some((pos, len, seq, end)));
            }
            // SYNC: pairs with the publisher's Release store of `closed`:
            // every frame it published is visible to the look below.
            let closed = self.shm.block().end.0.closed.load(Ordering::Acquire);
            let dead = closed == 0 && self.publisher.dead();
            if closed != 0 || dead {
                if let Got::Frame { pos, len, seq, end } = self.poll(copy)? {
                    return Ok(Some((pos, len, seq, end)));
                }
                if dead {
                    // Its key would stay behind: nobody else removes it.
                    let _ = self.shm.att.segment().remove();
                    return Err(Error::PeerDied {
                        role: Role::Writer,
                        pid: self.publisher_pid,
                    });
                }
                if closed != ring::CLOSED {
                    return Err(Error::Aborted { role: Role::Writer });
                }
                let total = self.shm.block().end.0.final_seq.load(Ordering::Relaxed);
                if self.overflow == Overflow::Backpressure
                    && self.expected.is_some_and(|e| e != total)
                {
                    return Err(self.corrupt(format!(
                        "the publisher closed after {total} messages, but message {} was due",
                        self.expected.unwrap_or(0)
                    )));
                }
                return Ok(None);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout {
                    waiting_for: "a message".into(),
                });
            }
            let policy = WaitPolicy {
                wait: self.wait,
                deadline,
                spin: self.spin,
            };
            let r = ring::block_on(
                &self.shm.block().data_wait.0,
                policy,
                || Ok(self.has_news()),
                || {
                    if self.publisher.dead() {
                        Liveness::Dead
                    } else {
                        Liveness::Alive
                    }
                },
            );
            match r {
                Ok(()) | Err(RingError::PeerDied) => {}
                Err(RingError::Timeout) => {
                    return Err(Error::Timeout {
                        waiting_for: "a message".into(),
                    });
                }
                Err(e) => return Err(self.corrupt(e.to_string())),
            }
        }
    }
}

impl<T: ?Sized> crate::select::Waitable for Subscriber<T> {
    fn wait_word(&self) -> &crate::sync::AtomicU32 {
        &self.core.shm.block().data_wait.0
    }
    fn is_ready(&self, _need: usize) -> bool {
        self.core.has_news()
            || matches!(&self.core.publisher, PubWatch::Process(_, Some(n)) if n.has_exited())
    }
    fn peer_gone(&self) -> bool {
        self.core.publisher.dead()
    }
    fn has_exit_flag(&self) -> bool {
        matches!(&self.core.publisher, PubWatch::Process(_, Some(_)))
    }
}
