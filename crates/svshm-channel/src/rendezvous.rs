//! Rendezvous: endpoint → segment; create-or-open; verification; stale
//! reclaim; waiting for the peer; marking for destruction once both are in.

use crate::error::{Error, Result, Role};
use crate::header::{self, Header};
use crate::reclaim::{HeaderFacts, Reclaimed, Verdict, judge_shape, judge_with};
use crate::ring::{Cursors, Liveness, Producer, RawMem, Wait};
use crate::sync::Ordering;
use core::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use svshm::process::{ProcessId, Status, Watch};
use svshm::{Attachment, CreateOptions, ErrorKind, Key, Segment, SegmentInfo};

/// Where a channel lives: a name, a key, a path (ftok), a private segment's id,
/// or a new private segment.
///
/// ```
/// use svshm_channel::Endpoint;
/// let by_name = Endpoint::name("logs");           // key = channel_key("logs") (per user)
/// let by_key = Endpoint::key(svshm::Key::new(0x5eed));
/// let by_path = Endpoint::path("/tmp", 7);        // key = ftok("/tmp", 7)
/// assert_eq!(by_name.to_string(), "channel \"logs\"");
/// # let _ = (by_key, by_path);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(Repr);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    Name(String),
    Key(Key),
    Path(PathBuf, u8),
    Id(i32),
    Private,
}

impl Endpoint {
    /// A channel named `name`: its key is [`channel_key`] (the name and our
    /// uid), so the same name used by different users never collides, and a
    /// plain segment made with [`Key::from_name`] under the same name is never
    /// mistaken for the channel.
    pub fn name(name: impl Into<String>) -> Endpoint {
        Endpoint(Repr::Name(name.into()))
    }
    /// A channel under an explicit key.
    pub fn key(key: Key) -> Endpoint {
        Endpoint(Repr::Key(key))
    }
    /// A channel under `ftok(path, proj)`.
    pub fn path(path: impl Into<PathBuf>, proj: u8) -> Endpoint {
        Endpoint(Repr::Path(path.into(), proj))
    }
    /// An existing channel segment by id (typically an IPC_PRIVATE one whose id
    /// the creator passed on). Joins only; never creates.
    pub fn id(id: i32) -> Endpoint {
        Endpoint(Repr::Id(id))
    }
    /// A new IPC_PRIVATE segment: nobody can find it by key; hand its id
    /// (`segment_id()`) to the peer, which connects with [`Endpoint::id`].
    pub fn private() -> Endpoint {
        Endpoint(Repr::Private)
    }

    /// The System V key this endpoint uses (`None` for [`Endpoint::id`] and
    /// [`Endpoint::private`]).
    /// A named channel's key is the one its owner's processes use: the
    /// caller's, or `owner`'s for a channel between two users
    /// ([`Options::owner`]).
    pub fn sysv_key(&self, options: &Options) -> Result<Option<Key>> {
        self.key_of(options)
    }

    fn key_of(&self, options: &Options) -> Result<Option<Key>> {
        Ok(match &self.0 {
            Repr::Name(n) => Some(channel_key_for_uid(
                n,
                options.owner.unwrap_or_else(svshm::euid),
            )),
            Repr::Key(k) => Some(*k),
            Repr::Path(p, proj) => Some(Key::from_path(p, *proj)?),
            Repr::Id(_) | Repr::Private => None,
        })
    }

    fn label(&self) -> String {
        match &self.0 {
            Repr::Name(n) => n.clone(),
            Repr::Key(k) => k.to_string(),
            Repr::Path(p, proj) => format!("{}:{proj}", p.display()),
            Repr::Id(id) => format!("id {id}"),
            Repr::Private => "private".to_string(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Name(n) => write!(f, "channel {n:?}"),
            Repr::Key(k) => write!(f, "channel with key {k}"),
            Repr::Path(p, proj) => write!(f, "channel at {} (project {proj})", p.display()),
            Repr::Id(id) => write!(f, "channel segment {id}"),
            Repr::Private => f.write_str("private channel"),
        }
    }
}

/// Top byte of every channel-name key: channel keys live in their own part of
/// the key space, apart from plain segments named with [`Key::from_name`].
const CHANNEL_KEY_TAG: u32 = 0x5C;

/// The key of the channel named `name` for the calling user
/// ([`Endpoint::name`] uses it).
///
/// Stable across runs, machines and versions: the 64-bit FNV-1a hash of the
/// bytes `svshm-channel\0`, the name's UTF-8 bytes, `\0` and the uid as 4
/// little-endian bytes, folded to 32 bits by XOR of its halves; the low 24 bits
/// of that, under the top byte `0x5c`. [`is_channel_key`] recognises such keys,
/// which is part of how cleanup proves that an empty segment is a channel whose
/// creator died while making it.
///
/// ```
/// use svshm_channel::{channel_key, channel_key_for_uid, is_channel_key};
/// assert_eq!(channel_key_for_uid("logs", 1000), channel_key_for_uid("logs", 1000));
/// assert_ne!(channel_key_for_uid("logs", 1000), channel_key_for_uid("logs", 1001));
/// assert!(is_channel_key(channel_key("logs")));
/// assert_ne!(channel_key("logs"), svshm::Key::from_name("logs"));
/// ```
pub fn channel_key(name: &str) -> Key {
    channel_key_for_uid(name, svshm::euid())
}

/// [`channel_key`] for another uid: the key that user's processes use.
pub fn channel_key_for_uid(name: &str, uid: u32) -> Key {
    let folded = svshm::name_hash(b"svshm-channel\0", name, uid);
    Key::new(((CHANNEL_KEY_TAG << 24) | (folded & 0x00ff_ffff)) as i32)
}

/// Whether `key` lies in the channel-name part of the key space
/// ([`channel_key`]).
pub fn is_channel_key(key: Key) -> bool {
    (key.raw() as u32) >> 24 == CHANNEL_KEY_TAG
}

/// Channel options. Both sides pass options; the creator's capacity and maximum
/// message size win, the joiner adapts.
///
/// ```
/// use std::time::Duration;
/// use svshm_channel::{Options, Wait};
/// let o = Options::new().capacity(1 << 20).mode(0o600).timeout(Some(Duration::from_secs(5))).wait(Wait::Block);
/// assert_eq!(o.get_capacity(), 1 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    capacity: usize,
    mode: u32,
    timeout: Option<Duration>,
    wait: Wait,
    max_message: Option<usize>,
    owner: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

/// Default ring capacity: 256 KiB. Half a typical per-core L2: a ring that
/// fits next to both sides' buffers streams 64 KiB writes about 1.7x faster
/// here than a 1 MiB ring, which spills to L3 every lap (BENCHMARKS.md).
pub const DEFAULT_CAPACITY: usize = 256 << 10;
/// Largest ring capacity: 1 TiB.
pub const MAX_CAPACITY: usize = 1 << 40;

impl Options {
    /// Defaults: 256 KiB ring, mode 0600, wait forever for the peer, adaptive
    /// waiting, maximum message half the ring, peer must be our own uid.
    pub fn new() -> Options {
        Options {
            capacity: DEFAULT_CAPACITY,
            mode: 0o600,
            timeout: None,
            wait: Wait::Adaptive,
            max_message: None,
            owner: None,
        }
    }
    /// Ring capacity in bytes, rounded up to a power of two (at least 4096).
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }
    /// Permission bits of a segment we create (default 0600). Wider modes are
    /// opt-in; a segment we join may not be wider than this.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    /// How long `connect` waits for the other side (`None`: forever).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
    /// How to wait for data or space.
    pub fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }
    /// Largest message (message channels); the ring grows to hold two.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = Some(bytes);
        self
    }
    /// The uid that must own and have created a segment we join (default: our
    /// effective uid). For channels between two users, the joiner names the
    /// creator's uid here and the creator opens up `mode`.
    pub fn owner(mut self, uid: u32) -> Self {
        self.owner = Some(uid);
        self
    }
    /// The ring capacity asked for.
    pub fn get_capacity(&self) -> usize {
        self.capacity
    }
    /// The wait mode.
    pub fn get_wait(&self) -> Wait {
        self.wait
    }

    /// Capacity and maximum message actually used for a new ring.
    fn ring_geometry(&self, messages: bool) -> Result<(u64, u64)> {
        if self.mode & !0o777 != 0 {
            return Err(Error::Invalid(format!(
                "mode {:#o} has bits beyond the permission bits 0777; give only permission bits",
                self.mode
            )));
        }
        let mut cap = self.capacity.max(4096);
        if messages {
            if let Some(m) = self.max_message {
                if m == 0 || m as u64 > crate::message::MAX_MESSAGE {
                    return Err(Error::Invalid(format!(
                        "maximum message size {m} must be between 1 and {} bytes",
                        crate::message::MAX_MESSAGE
                    )));
                }
                cap = cap.max(2 * (m + 16));
            }
        }
        if cap > MAX_CAPACITY {
            return Err(Error::Invalid(format!(
                "ring capacity {cap} exceeds the maximum of {MAX_CAPACITY} bytes"
            )));
        }
        let cap = cap.next_power_of_two() as u64;
        let max = match (messages, self.max_message) {
            (false, _) => 0,
            (true, Some(m)) => m as u64,
            (true, None) => (cap / 2 - 16).min(crate::message::MAX_MESSAGE),
        };
        Ok((cap, max))
    }
}

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
    hdr: *const Header,
    pub(crate) role: Role,
    pub(crate) capacity: u64,
    pub(crate) max_message: u64,
    pub(crate) name: String,
    pub(crate) wait: Wait,
    pub(crate) peer: ProcessId,
    pub(crate) creator: Creator,
    /// How the peer's liveness is watched (set once it connected).
    watch: Liveliness,
    /// Coarse monotonic nanoseconds of the last liveness probe by a call
    /// that did not wait (a write into free space, try_recv).
    last_probe_ns: u64,
    /// Segments reclaimed as abandoned while connecting.
    pub(crate) reclaimed: Vec<Reclaimed>,
    /// Liveness probes so far (paces the maps check).
    probes: core::cell::Cell<u32>,
    /// An operation found the channel broken (peer gone or closed, corrupt
    /// ring): a later `close()` must not end the stream cleanly.
    pub(crate) broken: core::cell::Cell<bool>,
    /// We hold our slot (and so must close it).
    claimed: bool,
    /// The peer came; the segment is marked for destruction.
    connected: bool,
    created: bool,
    // Last: dropped after everything that points into it.
    att: Attachment,
}

// SAFETY: `hdr` points into `att`, which is Send; the link is used by one thread
// at a time (the owning endpoint takes `&mut self`).
unsafe impl Send for Link {}

impl Link {
    /// A link over `att` (whose header page must be mapped: the caller checked
    /// the segment size), not yet holding a slot.
    fn new(
        att: Attachment,
        role: Role,
        wait: Wait,
        info: &SegmentInfo,
        (capacity, max_message): (u64, u64),
        name: String,
        created: bool,
    ) -> Link {
        Link {
            hdr: att.as_ptr().cast::<Header>(),
            role,
            capacity,
            max_message,
            name,
            wait,
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
            probes: core::cell::Cell::new(0),
            broken: core::cell::Cell::new(false),
            claimed: false,
            connected: false,
            created,
            att,
        }
    }

    pub(crate) fn segment_id(&self) -> i32 {
        self.att.id()
    }

    pub(crate) fn cursors(&self) -> *const Cursors {
        // SAFETY: `hdr` points to the header page of `att`, mapped while `self`
        // lives; this takes the field's address without a reference to the
        // whole header (whose plain fields a peer may write).
        unsafe { core::ptr::addr_of!((*self.hdr).cursors) }
    }

    fn cursors_ref(&self) -> &Cursors {
        // SAFETY: as above; `Cursors` holds only atomics.
        unsafe { &*self.cursors() }
    }

    fn state(&self) -> &crate::sync::AtomicU32 {
        // SAFETY: as above; a reference to the atomic field only.
        unsafe { &(*self.hdr).state }
    }

    pub(crate) fn mem(&self) -> RawMem {
        // SAFETY: the data area [HEADER_SIZE, HEADER_SIZE + capacity) lies inside
        // the attachment (validated against the segment size) and stays mapped
        // while the link lives; the ring outlives no link (fields order).
        unsafe {
            RawMem::new(
                self.att.as_ptr().add(header::HEADER_SIZE),
                self.capacity as usize,
            )
        }
    }

    fn slot(&self, role: Role) -> &header::Slot {
        // SAFETY: `hdr` points to the mapped header page; a reference to the
        // slot (atomics only), not to the whole header.
        unsafe {
            match role {
                Role::Writer => &(*self.hdr).writer.0,
                Role::Reader => &(*self.hdr).reader.0,
            }
        }
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
            return n.has_exited();
        }
        let now = coarse_now_ns();
        if now.wrapping_sub(self.last_probe_ns) < PROBE_EVERY_NS {
            return false;
        }
        self.last_probe_ns = now;
        self.peer_status() == Status::Dead
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
    fn claim(&mut self, me: ProcessId) -> bool {
        let slot = self.slot(self.role);
        // SYNC: the CAS decides between two racing joiners of the same role:
        // only one moves the slot out of EMPTY, and nothing moves it back. A
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
    fn wait_for_peer(&mut self, deadline: Option<Instant>, label: &str) -> Result<()> {
        let mut sleep = Duration::from_micros(50);
        let mut last_check = Instant::now();
        loop {
            if let Some(p) = read_slot(self.slot(self.role.peer())) {
                self.peer = p;
                break;
            }
            let now = Instant::now();
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
                // Someone removed the segment while we wait: the peer can never
                // find it by key now.
                if let Ok(info) = self.att.segment().stat() {
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
        let c = self.cursors_ref();
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

fn kind_name(kind: u32) -> &'static str {
    if kind == header::KIND_STREAM {
        "byte stream"
    } else {
        "message channel"
    }
}

/// Connects one end: create the segment or join the one that is there, then wait
/// for the other end.
pub(crate) fn connect(ep: &Endpoint, opts: &Options, role: Role, kind: u32) -> Result<Link> {
    let (capacity, max_message) = opts.ring_geometry(kind == header::KIND_MESSAGES)?;
    let deadline = opts.timeout.and_then(deadline_after);
    let me = ProcessId::current();
    let label = ep.to_string();
    let key = ep.key_of(opts)?;
    let mut backoff = Duration::from_micros(100);
    let mut state = JoinState::default();
    let mut link = loop {
        let attempt = match (&ep.0, key) {
            (Repr::Id(id), _) => join(
                Segment::from_id(*id),
                opts,
                role,
                kind,
                me,
                true,
                &mut state,
            )?,
            (_, key) => {
                let key = key.unwrap_or(Key::PRIVATE);
                let total = header::HEADER_SIZE + capacity as usize;
                // Created with the owner-execute bit as a kernel-visible
                // "initialising" mark (cleared once READY), so a creator killed
                // before writing the header leaves a segment provably ours.
                let mode = opts.mode | INIT_MARK;
                match CreateOptions::new(total).key(key).mode(mode).create() {
                    Ok(seg) => Some(create(
                        seg,
                        opts,
                        role,
                        kind,
                        capacity,
                        max_message,
                        me,
                        &ep.label(),
                    )?),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => match Segment::open(key, 0) {
                        Ok(seg) => join(seg, opts, role, kind, me, false, &mut state)?,
                        // Removed between our create and open: try again.
                        Err(e) if e.kind() == ErrorKind::NotFound => None,
                        Err(e) => return Err(e.into()),
                    },
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if let Some(link) = attempt {
            break link;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Timeout {
                waiting_for: format!("{label} to become ready"),
            });
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(10));
    };
    link.reclaimed = state.reclaimed;
    link.wait_for_peer(deadline, &label)?;
    Ok(link)
}

/// The instant `t` from now, or `None` (forever) if that is beyond what an
/// `Instant` can hold: any timeout a user can give is accepted.
pub(crate) fn deadline_after(t: Duration) -> Option<Instant> {
    Instant::now().checked_add(t)
}

/// Mode bit set while the creator initialises the header (owner execute: never
/// needed by a channel). Cleared with IPC_SET once the header is READY.
pub(crate) const INIT_MARK: u32 = 0o100;

#[allow(clippy::too_many_arguments)]
fn create(
    seg: Segment,
    opts: &Options,
    role: Role,
    kind: u32,
    capacity: u64,
    max_message: u64,
    me: ProcessId,
    name: &str,
) -> Result<Link> {
    let guard = seg.remove_on_drop();
    let att = seg.attach()?;
    // A forked child must not inherit the ring: its attach would keep the
    // count (our liveness signal) up after we die, and it could write into
    // an SPSC ring as a second writer or reader.
    att.inherit_on_fork(false)?;
    let info = seg.stat()?;
    let hdr = att.as_ptr().cast::<Header>();
    // SAFETY: the segment is new (IPC_EXCL or IPC_PRIVATE) and at least
    // HEADER_SIZE bytes; state is INITIALIZING so no joiner reads it yet.
    unsafe { header::write_fresh(hdr, kind, capacity, max_message, name) };
    let mut link = Link::new(
        att,
        role,
        opts.wait,
        &info,
        (capacity, max_message),
        name.to_string(),
        true,
    );
    link.claim(me);
    // SYNC: publishes the header fields written above to the Acquire load of
    // `state` in `join` and `inspect`.
    link.state().store(header::STATE_READY, Ordering::Release);
    if opts.mode & INIT_MARK == 0 {
        seg.set_mode(opts.mode)?;
    }
    // From here the link's Drop removes the segment if the peer never comes.
    guard.disarm();
    Ok(link)
}

/// What `join` carries from one attempt to the next.
#[derive(Default)]
struct JoinState {
    /// Segments reclaimed as abandoned.
    reclaimed: Vec<Reclaimed>,
    /// A segment seen empty-but-written with a live creator, and since when.
    unfinished: Option<(i32, Instant)>,
}

/// How long a segment may stay empty-but-written under a live creator before
/// it is refused as not a channel.
const UNFINISHED_LIMIT: Duration = Duration::from_secs(2);

/// Joins an existing segment. `Ok(None)`: not ready yet, closing, or reclaimed
/// as abandoned — try again.
///
/// Whether the segment is ours, in use or abandoned is decided by
/// [`judge_with`](crate::reclaim::judge_with) from the kernel's record sampled
/// before our own attach (as PostgreSQL does) and the header: only a proven
/// abandoned svshm channel is removed (and recorded in `reclaimed`); a
/// segment that cannot be proven ours is refused, untouched.
#[allow(clippy::too_many_arguments)]
fn join(
    seg: Segment,
    opts: &Options,
    role: Role,
    kind: u32,
    me: ProcessId,
    by_id: bool,
    state: &mut JoinState,
) -> Result<Option<Link>> {
    let reclaimed = &mut state.reclaimed;
    let id = seg.id();
    let mut info = match seg.stat() {
        Ok(i) => i,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err(Error::Foreign {
                id,
                detail: e.message().to_string(),
            });
        }
        Err(e) if matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => {
            if by_id {
                return Err(e.into());
            }
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let expected = opts.owner.unwrap_or_else(svshm::euid);
    if info.creator_uid != expected || info.uid != expected {
        let who = |uid| {
            svshm::info::user_name(uid).map_or(format!("uid {uid}"), |n| format!("{n} (uid {uid})"))
        };
        return Err(Error::Foreign {
            id,
            detail: format!(
                "it is owned by {} and was created by {}, not by {} as expected",
                who(info.uid),
                who(info.creator_uid),
                who(expected)
            ),
        });
    }
    // The initialising mark is ours, not a widening.
    let marked = opts.mode & INIT_MARK == 0 && info.permissions() & INIT_MARK != 0;
    let perms = if marked {
        info.permissions() & !INIT_MARK
    } else {
        info.permissions()
    };
    if perms & !opts.mode != 0 {
        return Err(Error::Foreign {
            id,
            detail: format!(
                "its mode {:04o} is wider than the {:04o} asked for (anyone it admits could read or forge the data); if both sides are yours, give both the same mode",
                perms, opts.mode
            ),
        });
    }
    let not_ours = |detail: String| Error::NotOurs {
        id,
        key: info.key,
        detail,
    };
    if !crate::inspect::might_be_channel(&info) {
        return Err(not_ours(format!(
            "a {}-byte segment is not shaped like a channel (a 4096-byte header plus a power-of-two ring)",
            info.size
        )));
    }
    // Resident and swapped pages, sampled before our attach: a segment with
    // none was never written, so it holds nothing to lose.
    if let Some(p) = svshm::info::public_info_by_id(id) {
        info.rss = p.rss;
        info.swap = p.swap;
    }
    // Abandoned: removed, and said so. By key the retry finds the key free
    // (or another joiner's new channel); by id it would find the same dead
    // segment again, so say so at once.
    let mut abandoned = |why: String| -> Result<Option<Link>> {
        if info.is_marked_for_destruction() {
            // Already going away when its last process detaches: nothing to
            // reclaim, and nobody can ever complete it.
            return if by_id {
                Err(Error::Invalid(format!(
                    "channel segment {id} cannot be joined: {why}; it is marked for destruction and goes away when its last process detaches. Start a new channel"
                )))
            } else {
                Ok(None)
            };
        }
        match seg.remove() {
            Ok(()) => reclaimed.push(Reclaimed {
                id,
                key: info.key,
                size: info.size,
                reason: why.clone(),
            }),
            // Gone already: another joiner reclaimed it first.
            Err(e) if matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => {}
            Err(e) => {
                return Err(Error::Foreign {
                    id,
                    detail: format!(
                        "it is an abandoned svshm channel ({why}) but cannot be removed ({e})"
                    ),
                });
            }
        }
        if by_id {
            return Err(Error::Invalid(format!(
                "channel segment {id} is abandoned ({why}), so no peer will ever come; it was removed. Start a new channel"
            )));
        }
        Ok(None)
    };
    if info.rss == Some(0) && info.swap.unwrap_or(0) == 0 {
        // Never written: judged without attaching (reading would give it pages).
        match judge_with(&info, None) {
            Verdict::Abandoned(why) => return abandoned(why),
            Verdict::NotOurs(why) => return Err(not_ours(why)),
            // Its creator is about to write the header: look again.
            Verdict::InUse(_) => return Ok(None),
        }
    }
    let att = match seg.attach() {
        Ok(att) => att,
        // Removed since our IPC_STAT (a creator that gave up, another joiner
        // or `svshm gc` reclaiming it): by key, look again.
        Err(e) if !by_id && matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    // A forked child must not inherit the ring: it could write into an SPSC
    // ring as a second writer or reader.
    att.inherit_on_fork(false)?;
    let hdr = att.as_ptr().cast::<Header>();
    // SAFETY: `hdr` points to the attachment's first page, and the segment is
    // at least HEADER_SIZE bytes (checked above).
    let mut facts = unsafe { HeaderFacts::read(hdr, info.size) };
    // A READY header whose fields do not hold together is reported below as
    // a mismatch (another svshm version, or corrupt), and never reclaimed.
    let layout = std::mem::replace(&mut facts.layout, Ok(()));
    match judge_shape(&info, Some(&facts)) {
        Verdict::Abandoned(why) if layout.is_ok() => {
            drop(att);
            return abandoned(why);
        }
        Verdict::Abandoned(_) => {}
        Verdict::NotOurs(why) => return Err(not_ours(why)),
        // Empty but written, its creator alive: a creator between faulting
        // the header page in and storing the magic, which takes nanoseconds.
        // One that stays so is no channel being created.
        Verdict::InUse(_) if facts.magic != header::MAGIC => {
            match state.unfinished {
                Some((seen, since)) if seen == id => {
                    if since.elapsed() >= UNFINISHED_LIMIT {
                        return Err(not_ours(format!(
                            "it has stayed without a header for {} s although its pages were written and its creator (pid {}) runs; a channel's creator writes the header at once",
                            UNFINISHED_LIMIT.as_secs(),
                            info.creator_pid
                        )));
                    }
                }
                _ => state.unfinished = Some((id, Instant::now())),
            }
            return Ok(None);
        }
        // The creator is still writing the header.
        Verdict::InUse(_) if !facts.ready => return Ok(None),
        Verdict::InUse(_) => {}
    }
    // SAFETY: as above; state READY means the creator finished writing.
    let snap = unsafe { header::read_snapshot(hdr, info.size) }
        .map_err(|detail| Error::Mismatch { id, detail })?;
    if snap.kind != kind {
        return Err(Error::Mismatch {
            id,
            detail: format!(
                "it is a {}, opened as a {}",
                kind_name(snap.kind),
                kind_name(kind)
            ),
        });
    }
    let mut link = Link::new(
        att,
        role,
        opts.wait,
        &info,
        (snap.capacity, snap.max_message),
        snap.name,
        false,
    );
    // SYNC: pairs with the Release stores of slot states (claim, mark_closed).
    let mine = link.slot(role).state.load(Ordering::Acquire);
    // SYNC: as above, for the peer's slot.
    let theirs = link.slot(role.peer()).state.load(Ordering::Acquire);
    if theirs == header::SLOT_CLOSED {
        // The other side gave up (timed out) and is removing the segment.
        if by_id {
            return Err(Error::Closed { role: role.peer() });
        }
        return Ok(None);
    }
    if mine == header::SLOT_CLOSED && by_id {
        // Our side was used and closed: a channel connects once, and this
        // segment will go when its other side leaves. (By key, look again:
        // the key is freed once the segment is marked for destruction.)
        return Err(Error::Invalid(format!(
            "channel segment {id}: its {role} side was already used and closed; a channel connects once, so start a new one"
        )));
    }
    if mine != header::SLOT_EMPTY {
        if let Some(holder) = read_slot(link.slot(role)) {
            if mine == header::SLOT_ATTACHED {
                return Err(Error::InUse {
                    id,
                    role,
                    pid: holder.pid,
                });
            }
        }
        // Claiming or closing: look again shortly.
        return Ok(None);
    }
    if !link.claim(me) {
        return Ok(None);
    }
    Ok(Some(link))
}
