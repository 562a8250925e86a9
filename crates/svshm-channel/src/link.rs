//! One connected end of a channel ([`Link`]): its attachment, its slot, and
//! how it watches its peer.

use crate::error::{Error, Result, Role};
use crate::header::{self, HeaderView};
use crate::reclaim::Reclaimed;
use crate::ring::{Cursors, Liveness, Producer, RawMem, Wait, WaitPolicy};
use crate::sync::Ordering;
use std::time::{Duration, Instant};
use svshm::process::{ProcessId, Status, Watch};
use svshm::{Attachment, SegmentInfo};

/// The accessors every endpoint shares, over its `link` field.
macro_rules! endpoint_accessors {
    ($peer:literal) => {
        /// The channel segment's id.
        pub fn segment_id(&self) -> i32 {
            self.link.segment_id()
        }

        /// Ring capacity in bytes.
        pub fn capacity(&self) -> usize {
            self.link.capacity as usize
        }

        /// The channel's name as stored in its header.
        pub fn name(&self) -> &str {
            &self.link.name
        }

        #[doc = concat!("The ", $peer, "'s pid, as it recorded it in its own pid namespace.")]
        pub fn peer_pid(&self) -> i32 {
            self.link.peer.pid
        }

        #[doc = concat!("How this end watches the ", $peer, "'s liveness (see [`PeerWatch`](crate::PeerWatch)).")]
        pub fn peer_watch(&self) -> crate::PeerWatch {
            self.link.watch_kind()
        }

        /// Abandoned channel segments this end removed while connecting (a
        /// channel under the same key left by a crashed process), each with
        /// why it was judged abandoned.
        pub fn reclaimed(&self) -> &[crate::Reclaimed] {
            &self.link.reclaimed
        }

        /// Whether this end created the channel's segment with huge pages
        /// (see [`Options::huge_pages`](crate::Options::huge_pages)); `false`
        /// for the end that joined, which cannot tell.
        pub fn huge_pages(&self) -> bool {
            self.link.huge_pages
        }

        /// Kernel-attested creator of the segment (IPC_STAT).
        pub fn creator(&self) -> Creator {
            self.link.creator
        }
    };
}
pub(crate) use endpoint_accessors;

/// Kernel-attested facts about the channel segment (from IPC_STAT), not bytes a
/// peer could forge: the Binder lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creator {
    /// The segment id.
    pub segment_id: i32,
    /// Pid of the process that created the segment (`shm_cpid`).
    pub pid: i32,
    /// Uid that created it (`shm_perm.cuid`).
    pub uid: u32,
    /// Uid that owns it (`shm_perm.uid`).
    pub owner_uid: u32,
}

/// How an endpoint watches its peer's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerWatch {
    /// Not connected yet.
    NotConnected,
    /// The peer's process, identified at rendezvous (its recorded pid and
    /// start time, attested by the kernel) and followed by a pidfd (`pidfd`
    /// true) or through `/proc`. Other attachments of the segment change
    /// nothing.
    Process {
        /// The peer's pid in our pid namespace.
        pid: i32,
        /// Whether a pidfd follows it.
        pidfd: bool,
    },
    /// The peer's process cannot be seen from our pid namespace: the peer is
    /// taken for dead when the segment's attach count drops below 2. Another
    /// attachment (a monitor, root) can hide its death while it lasts.
    AttachCount,
}

enum Liveliness {
    NotYet,
    /// The peer's process, with the watcher thread's exit flag where it has
    /// one (then no probe costs more than an atomic load).
    Process(Watch, Option<svshm::process::ExitNotice>),
    AttachCount,
}

/// Every how many liveness probes (one per poll slice while blocked) the
/// peer's `/proc/PID/maps` is read to see that it still maps the segment.
const MAPS_EVERY: u32 = 5;

/// How often calls that do not wait probe the peer.
const PROBE_EVERY_NS: u64 = crate::ring::POLL_SLICE.as_nanos() as u64;

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds: a vDSO read of a few nanoseconds,
/// precise to a scheduler tick, plenty for rate-limiting probes.
#[inline]
fn coarse_now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// One connected end of a channel: the attachment, the header, and the peer.
pub(crate) struct Link {
    pub(crate) role: Role,
    pub(crate) capacity: u64,
    pub(crate) max_message: u64,
    pub(crate) name: String,
    pub(crate) wait: Wait,
    /// How long [`Wait::Adaptive`] spins before sleeping.
    pub(crate) spin: Duration,
    pub(crate) peer: ProcessId,
    pub(crate) creator: Creator,
    /// How the peer's liveness is watched (set once it connected).
    watch: Liveliness,
    /// Coarse monotonic nanoseconds of the last liveness probe by a call
    /// that did not wait (a write into free space, try_recv).
    last_probe_ns: u64,
    /// Segments reclaimed as abandoned while connecting.
    pub(crate) reclaimed: Vec<Reclaimed>,
    /// This end created the segment with huge pages.
    pub(crate) huge_pages: bool,
    /// Liveness probes so far (paces the maps check).
    probes: core::cell::Cell<u32>,
    /// An operation found the channel broken (peer gone or closed, corrupt
    /// ring): a later `close()` must not end the stream cleanly.
    pub(crate) broken: core::cell::Cell<bool>,
    /// A full probe found the peer gone although its exit flag is clear (it
    /// called exec(2)): calls that only read the flag read this too.
    gone: core::cell::Cell<bool>,
    /// We hold our slot (and so must close it).
    claimed: bool,
    /// The peer came; the segment is marked for destruction.
    connected: bool,
    created: bool,
    // Last: dropped after everything that points into it.
    att: Attachment,
}

impl Link {
    /// A link over `att` (whose header page must be mapped: the caller checked
    /// the segment size), not yet holding a slot.
    pub(crate) fn new(
        att: Attachment,
        role: Role,
        (wait, spin): (Wait, Duration),
        info: &SegmentInfo,
        (capacity, max_message): (u64, u64),
        name: String,
        created: bool,
    ) -> Link {
        Link {
            role,
            capacity,
            max_message,
            name,
            wait,
            spin,
            peer: ProcessId {
                pid: 0,
                start_time: 0,
            },
            creator: Creator {
                segment_id: info.id,
                pid: info.creator_pid,
                uid: info.creator_uid,
                owner_uid: info.uid,
            },
            watch: Liveliness::NotYet,
            last_probe_ns: coarse_now_ns(),
            reclaimed: Vec::new(),
            huge_pages: false,
            probes: core::cell::Cell::new(0),
            broken: core::cell::Cell::new(false),
            gone: core::cell::Cell::new(false),
            claimed: false,
            connected: false,
            created,
            att,
        }
    }

    /// The waiting policy of one operation of this end, until `deadline`
    /// (`None`: for ever).
    pub(crate) fn policy(&self, deadline: Option<Instant>) -> WaitPolicy {
        WaitPolicy {
            wait: self.wait,
            deadline,
            spin: self.spin,
        }
    }

    pub(crate) fn segment_id(&self) -> i32 {
        self.att.id()
    }

    /// The channel header of our attachment.
    pub(crate) fn header(&self) -> HeaderView<'_> {
        HeaderView::new(&self.att)
            .expect("a link's segment holds a header page (its maker checked)")
    }

    /// The ring's cursors, as the ring's constructors take them.
    pub(crate) fn cursors(&self) -> *const Cursors {
        self.header().cursors()
    }

    pub(crate) fn state(&self) -> &crate::sync::AtomicU32 {
        self.header().state()
    }

    /// The data ring: the `capacity` bytes after the header, valid while the
    /// link lives (the attachment is its last field, dropped after the rest).
    pub(crate) fn mem(&self) -> RawMem {
        header::ring_mem(&self.att, self.capacity)
            .expect("a link's ring fits its segment (checked against the segment size)")
    }

    pub(crate) fn slot(&self, role: Role) -> &header::Slot {
        self.header().slot(role)
    }

    /// A liveness probe of the peer for the ring's waits (see [`PeerWatch`]).
    pub(crate) fn liveness(&self) -> impl FnMut() -> Liveness + '_ {
        move || {
            if self.peer_status() == Status::Dead {
                Liveness::Dead
            } else {
                Liveness::Alive
            }
        }
    }

    /// Whether the peer is alive: its process watched through a pidfd (or
    /// `/proc`), or, where its pid cannot be seen from here, the attach count.
    fn peer_status(&self) -> Status {
        match &self.watch {
            Liveliness::NotYet => Status::Alive,
            Liveliness::Process(_, Some(n)) if n.has_exited() => Status::Dead,
            Liveliness::Process(w, notice) => {
                if notice.is_none() && w.status() == Status::Dead {
                    return Status::Dead;
                }
                // A peer that called exec(2) lives on without the segment (and
                // without having closed): every few probes, ask whether it
                // still maps it (where its maps are readable).
                let n = self.probes.get().wrapping_add(1);
                self.probes.set(n);
                if n % MAPS_EVERY == 0
                    && svshm::process::has_attached(w.id().pid, self.segment_id()) == Some(false)
                    && w.status() != Status::Dead
                {
                    return Status::Dead;
                }
                Status::Alive
            }
            Liveliness::AttachCount => match self.att.segment().stat() {
                Ok(info) if info.attach_count < 2 => Status::Dead,
                _ => Status::Alive,
            },
        }
    }

    pub(crate) fn watch_kind(&self) -> PeerWatch {
        match &self.watch {
            Liveliness::NotYet => PeerWatch::NotConnected,
            Liveliness::Process(w, _) => PeerWatch::Process {
                pid: w.id().pid,
                pidfd: w.pidfd().is_some(),
            },
            Liveliness::AttachCount => PeerWatch::AttachCount,
        }
    }

    /// Identifies the connected peer from what it recorded in its slot,
    /// cross-checked against the kernel, and starts watching it.
    ///
    /// The slot holds the peer's pid in *its* pid namespace and its start
    /// time. A process in our pid namespace is taken for the peer only if its
    /// start time equals the recorded one and the kernel attests it: it is the
    /// segment's creator (`shm_cpid`) or last attacher (`shm_lpid`), or its
    /// `/proc/PID/maps` shows this segment attached. Where no process can be
    /// verified (the peer's pid namespace is not visible from ours, or its
    /// maps are unreadable and a third process attached since), the attach
    /// count is all that is left (docs/SECURITY.md: the residual case).
    fn start_watch(&mut self) {
        let peer = self.peer;
        let id = self.segment_id();
        let kernel = match self.att.segment().stat() {
            Ok(info) if self.created => info.last_pid,
            Ok(info) => info.creator_pid,
            Err(_) => 0,
        };
        let mut found = None;
        for cand in [kernel, peer.pid] {
            if cand <= 0 || peer.start_time == 0 {
                continue;
            }
            let Some(now) = ProcessId::of(cand) else {
                continue;
            };
            if now.start_time != peer.start_time {
                continue;
            }
            if cand == kernel || svshm::process::has_attached(cand, id) == Some(true) {
                found = Some(now);
                break;
            }
        }
        if found.is_none() && !self.created && kernel > 0 {
            // The kernel names the creator (our peer) in our pid namespace,
            // and no process there is it any more: it died before we looked.
            if svshm::process::pid_exists(kernel) == Some(false)
                || ProcessId::of(kernel).is_some_and(|p| p.start_time != peer.start_time)
            {
                let gone = ProcessId {
                    pid: kernel,
                    start_time: peer.start_time,
                };
                self.watch = Liveliness::Process(Watch::new(gone), None);
                return;
            }
        }
        self.watch = match found {
            Some(p) => {
                // Watch compares the start time again after opening the
                // pidfd, so it follows this very process.
                let w = Watch::new(p);
                let notice = w.exit_notice();
                Liveliness::Process(w, notice)
            }
            None => Liveliness::AttachCount,
        };
    }

    /// For calls that do not wait (writes into free space, try_send,
    /// try_recv): true if the peer is gone. With the watcher thread's exit
    /// flag this is one load of a local atomic; otherwise the peer is probed
    /// at most once per poll slice, by a coarse clock read per call.
    #[inline]
    pub(crate) fn peer_gone_rate_limited(&mut self) -> bool {
        if let Liveliness::Process(_, Some(n)) = &self.watch {
            return n.has_exited() || self.gone.get();
        }
        let now = coarse_now_ns();
        if now.wrapping_sub(self.last_probe_ns) < PROBE_EVERY_NS {
            return false;
        }
        self.last_probe_ns = now;
        self.peer_status() == Status::Dead
    }

    /// Whether the watcher thread has seen the peer exit: one load of a
    /// local atomic, `false` where the peer has no such flag (then only
    /// [`peer_gone`](Self::peer_gone) knows).
    #[inline]
    pub(crate) fn peer_exited(&self) -> bool {
        matches!(&self.watch, Liveliness::Process(_, Some(n)) if n.has_exited())
    }

    /// Whether the peer's death is announced by the watcher thread's flag
    /// (else only a probe finds it).
    pub(crate) fn has_exit_flag(&self) -> bool {
        matches!(&self.watch, Liveliness::Process(_, Some(_)))
    }

    /// The watcher thread's exit flag for the peer, if it has one: what the
    /// async waker thread looks at to wake a waiter whose peer died.
    pub(crate) fn exit_flag(&self) -> Option<&std::sync::Arc<std::sync::atomic::AtomicBool>> {
        match &self.watch {
            Liveliness::Process(_, Some(n)) => Some(n.flag()),
            _ => None,
        }
    }

    /// A full probe of the peer (see [`peer_gone`](Self::peer_gone)) whose
    /// verdict "gone" sticks: later rate-limited checks report it even where
    /// the exit flag never rises (a peer that called exec(2)).
    pub(crate) fn probe_gone_latched(&self) -> bool {
        let gone = self.gone.get() || self.peer_gone();
        self.gone.set(gone);
        gone
    }

    /// Whether the peer is gone now.
    pub(crate) fn peer_gone(&self) -> bool {
        self.peer_status() == Status::Dead
    }

    /// Before a write: a reader that closed makes writing pointless (EPIPE),
    /// and a reader that died is noticed within a poll slice even while the
    /// ring has room.
    #[inline]
    pub(crate) fn writer_preflight(&mut self, prod: &Producer<RawMem>) -> Result<()> {
        if prod.peer_closed() {
            self.broken.set(true);
            return Err(Error::Closed { role: Role::Reader });
        }
        if self.peer_gone_rate_limited() {
            self.broken.set(true);
            return Err(Error::PeerDied {
                role: Role::Reader,
                pid: self.peer.pid,
            });
        }
        Ok(())
    }

    /// Ends a writer's end once with `how` (CLOSED after an explicit close,
    /// ABORTED otherwise).
    pub(crate) fn end_writer(&self, prod: &mut Producer<RawMem>, closed: &mut bool, how: u32) {
        if !*closed {
            *closed = true;
            prod.close_with(how);
            self.mark_closed();
        }
    }

    /// Ends a writer's end on an explicit close: CLOSED, unless an earlier
    /// operation found the channel broken, then ABORTED and an error (a
    /// write that failed part-way must not become a clean end).
    pub(crate) fn close_writer(
        &self,
        prod: &mut Producer<RawMem>,
        closed: &mut bool,
    ) -> Result<()> {
        if self.broken.get() {
            self.end_writer(prod, closed, crate::ring::ABORTED);
            return Err(Error::Invalid(format!(
                "channel segment {}: an earlier operation found the channel broken, so the {} ended it as aborted, not as a clean end",
                self.segment_id(),
                self.role
            )));
        }
        self.end_writer(prod, closed, crate::ring::CLOSED);
        self.writer_close_check(prod)
    }

    /// After the writer closed: succeeds if the reader consumed everything or
    /// is still there to do so; otherwise says why the data is lost.
    pub(crate) fn writer_close_check(&self, prod: &mut Producer<RawMem>) -> Result<()> {
        let unread = prod.unconsumed().map_err(|e| self.error(e, "close"))?;
        if unread == 0 {
            return Ok(());
        }
        if prod.peer_closed() {
            return Err(Error::Closed { role: Role::Reader });
        }
        if self.peer_gone() {
            return Err(Error::PeerDied {
                role: Role::Reader,
                pid: self.peer.pid,
            });
        }
        Ok(())
    }

    /// Marks our slot closed (the ring's own closed flag is set by the endpoint).
    pub(crate) fn mark_closed(&self) {
        // SYNC: pairs with Acquire loads of slot states in `inspect`/`join`.
        self.slot(self.role)
            .state
            .store(header::SLOT_CLOSED, Ordering::Release);
    }

    pub(crate) fn error(&self, e: crate::ring::RingError, waiting_for: &str) -> Error {
        if e != crate::ring::RingError::Timeout {
            self.broken.set(true);
        }
        Error::from_ring(e, self.segment_id(), self.role, self.peer.pid, waiting_for)
    }

    /// Claims our slot: EMPTY → CLAIMING (CAS), identity, → ATTACHED (Release).
    pub(crate) fn claim(&mut self, me: ProcessId) -> bool {
        let slot = self.slot(self.role);
        // SYNC: the CAS decides between two racing joiners of the same role:
        // only one moves the slot out of EMPTY, and only a claim whose
        // claimer is provably gone moves it back (`wait_for_peer_while`). A
        // loser's Acquire load pairs with the winner's Release stores of
        // ATTACHED / CLOSED (`claim`, `mark_closed`) when it reads them.
        if slot
            .state
            .compare_exchange(
                header::SLOT_EMPTY,
                header::SLOT_CLAIMING,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return false;
        }
        slot.pid.store(me.pid as u32, Ordering::Relaxed);
        slot.start_time.store(me.start_time, Ordering::Relaxed);
        // SYNC: publishes pid/start_time to the Acquire load of `state` in
        // `read_slot` on the peer side.
        slot.state.store(header::SLOT_ATTACHED, Ordering::Release);
        self.claimed = true;
        true
    }

    /// Waits until the peer has claimed its slot, then marks the segment for
    /// destruction (the kernel frees it when both have detached, however they end).
    pub(crate) fn wait_for_peer(&mut self, deadline: Option<Instant>, label: &str) -> Result<()> {
        self.wait_for_peer_while(deadline, label, || Ok(()))
    }

    /// [`wait_for_peer`](Self::wait_for_peer), giving up early with the
    /// error `still` returns (asked about every 100 ms): a service's client
    /// stops waiting once the server it posted to is gone.
    pub(crate) fn wait_for_peer_while(
        &mut self,
        deadline: Option<Instant>,
        label: &str,
        mut still: impl FnMut() -> Result<()>,
    ) -> Result<()> {
        let mut sleep = Duration::from_micros(50);
        let mut last_check = Instant::now();
        loop {
            if let Some(p) = read_slot(self.slot(self.role.peer())) {
                self.peer = p;
                break;
            }
            let now = Instant::now();
            let gave_up = if now.duration_since(last_check) >= Duration::from_millis(100) {
                still().err()
            } else {
                None
            };
            if let Some(e) = gave_up {
                self.mark_closed();
                return Err(e);
            }
            if deadline.is_some_and(|d| now >= d) {
                // Give up: close our slot first, then look once more. A peer that
                // claimed in between finds our slot closed and the ring aborted
                // (Drop), so it fails instead of waiting forever.
                self.mark_closed();
                if let Some(p) = read_slot(self.slot(self.role.peer())) {
                    self.peer = p;
                }
                return Err(Error::Timeout {
                    waiting_for: format!("the {} of {label} to connect", self.role.peer()),
                });
            }
            if now.duration_since(last_check) >= Duration::from_millis(100) {
                last_check = now;
                // SYNC: pairs with the claimer's CAS; read before the attach
                // count below (see there).
                let claiming = self.slot(self.role.peer()).state.load(Ordering::Acquire)
                    == header::SLOT_CLAIMING;
                // Someone removed the segment while we wait: the peer can never
                // find it by key now.
                if let Ok(info) = self.att.segment().stat() {
                    // A joiner killed between its claim's CAS and its next
                    // store leaves the peer's side CLAIMING with no pid to
                    // watch: nobody would ever finish that claim, and we and
                    // every later joiner would wait out our timeouts. A
                    // claimer stays attached from before its CAS until its
                    // claim is done, so if the side was CLAIMING before a
                    // moment when nobody but us is attached, that claimer is
                    // gone (only we move CLAIMING back): free the side.
                    if claiming && info.attach_count == 1 {
                        let _ = self.slot(self.role.peer()).state.compare_exchange(
                            header::SLOT_CLAIMING,
                            header::SLOT_EMPTY,
                            // SYNC: pairs with the next joiner's CAS in
                            // `claim`, which takes the side from EMPTY anew.
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        );
                    }
                    let came = read_slot(self.slot(self.role.peer())).is_some();
                    if info.is_marked_for_destruction() && self.created && !came {
                        return Err(Error::Invalid(format!(
                            "channel segment {} was removed by someone else while waiting for the {}",
                            self.segment_id(),
                            self.role.peer()
                        )));
                    }
                }
            }
            std::thread::sleep(sleep);
            sleep = (sleep * 2).min(Duration::from_millis(5));
        }
        self.connected = true;
        // Both are attached: from now on the kernel owns the cleanup.
        let _ = self.att.segment().remove();
        self.start_watch();
        Ok(())
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if !self.claimed {
            return;
        }
        self.mark_closed();
        if !self.connected {
            // The peer never came: nobody else will clean up.
            let _ = self.att.segment().remove();
        }
        // If the endpoint did not close the ring (connect failed after the
        // claim, or the endpoint was never built), mark our end aborted so a
        // peer that did connect fails instead of waiting forever.
        let c = self.header().cursors();
        let flag = match self.role {
            Role::Writer => &c.writer_closed.0,
            Role::Reader => &c.reader_closed.0,
        };
        // SYNC: the Release pairs with the peer's Acquire load of our closed
        // flag in `Consumer::wait_available` / `Producer::wait_free` (and
        // `peer_closed`); a failed exchange (already closed) publishes nothing.
        let _ = flag.compare_exchange(
            0,
            crate::ring::ABORTED,
            Ordering::Release,
            Ordering::Relaxed,
        );
        // Wake the peer in case it sleeps on either word.
        crate::futex::wake(&c.reader_wait.0);
        crate::futex::wake(&c.writer_wait.0);
    }
}

/// The identity in a slot, once it is ATTACHED or CLOSED.
pub(crate) fn read_slot(slot: &header::Slot) -> Option<ProcessId> {
    // SYNC: pairs with the Release store in `Link::claim`.
    let s = slot.state.load(Ordering::Acquire);
    if s != header::SLOT_ATTACHED && s != header::SLOT_CLOSED {
        return None;
    }
    let pid = slot.pid.load(Ordering::Relaxed) as i32;
    let start_time = slot.start_time.load(Ordering::Relaxed);
    Some(ProcessId { pid, start_time })
}

pub(crate) fn kind_name(kind: u32) -> &'static str {
    match kind {
        header::KIND_STREAM => "byte stream",
        header::KIND_TOPIC => "topic",
        _ => "message channel",
    }
}
