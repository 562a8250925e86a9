//! Where a channel lives ([`Endpoint`], channel-name keys) and how it is
//! made ([`Options`]).

use crate::error::{Error, Result};
use crate::ring::Wait;
use core::fmt;
use std::path::PathBuf;
use std::time::Duration;
use svshm::Key;

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
pub struct Endpoint(pub(crate) Repr);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Repr {
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
    /// A new IPC_PRIVATE segment: nobody can find it by key. Create it with
    /// an end's `open` (for instance
    /// [`StreamWriter::open`](crate::StreamWriter::open)), hand
    /// [`Pending::segment_id`](crate::Pending::segment_id) to the peer, which
    /// connects with [`Endpoint::id`], then [`wait`](crate::Pending::wait).
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

    pub(crate) fn key_of(&self, options: &Options) -> Result<Option<Key>> {
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

    pub(crate) fn label(&self) -> String {
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
/// let o = Options::new()
///     .capacity(1 << 20)            // the creator's ring size wins
///     .mode(0o600)                  // the default: our uid only
///     .timeout(Some(Duration::from_secs(5)))
///     .wait(Wait::Block);           // sleep at once: least CPU
/// # let _ = o;
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) capacity: usize,
    pub(crate) mode: u32,
    pub(crate) timeout: Option<Duration>,
    pub(crate) wait: Wait,
    pub(crate) spin: Duration,
    pub(crate) huge_pages: bool,
    pub(crate) max_message: Option<usize>,
    pub(crate) messages: Option<usize>,
    pub(crate) owner: Option<u32>,
    pub(crate) subscribers: usize,
    pub(crate) history: usize,
    pub(crate) overflow: crate::topic::Overflow,
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
            spin: crate::ring::DEFAULT_SPIN,
            huge_pages: true,
            max_message: None,
            messages: None,
            owner: None,
            subscribers: crate::topic::DEFAULT_SUBSCRIBERS,
            history: 0,
            overflow: crate::topic::Overflow::Backpressure,
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
    /// How long [`Wait::Adaptive`] spins before it sleeps (default
    /// [`DEFAULT_SPIN`](crate::DEFAULT_SPIN), 50 µs): a peer that answers
    /// within it costs no system call on either side. Longer suits bulk
    /// transfers whose peer works in bursts (fewer sleeps and wake-ups); shorter
    /// saves CPU on a mostly idle channel. This end's own setting: each side
    /// chooses its own. Any non-zero budget first spins 128 rounds without
    /// looking at the clock (from well under a microsecond to a few,
    /// depending on the CPU's spin-wait hint); `Duration::ZERO` sleeps at
    /// once, like [`Wait::Block`].
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }
    /// Whether a channel this side creates with a ring of 2 MiB or more may be
    /// backed by huge pages (`SHM_HUGETLB`; default `true`). It is, when the
    /// system's huge-page pool has free pages and the kernel lets this user
    /// use them (`CAP_IPC_LOCK` or `vm.hugetlb_shm_group`); otherwise the
    /// ring has ordinary pages, silently. An endpoint's `huge_pages()` says
    /// which it got.
    pub fn huge_pages(mut self, allow: bool) -> Self {
        self.huge_pages = allow;
        self
    }
    /// Largest message (message channels); the ring grows to at least twice
    /// its size. Without it, the largest message is half the ring.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = Some(bytes);
        self
    }
    /// Message channels this side creates: room for `n` messages of the
    /// largest size ([`max_message`](Self::max_message), which must be
    /// set too) queued at once,
    /// wherever the ring's end falls (a message never wraps around it, so
    /// the ring grows to `n + 1` frames, then to a power of two). The ring
    /// is at least [`capacity`](Self::capacity) either way; smaller
    /// messages fit more. Like the capacity, the creator's setting wins.
    ///
    /// ```
    /// use svshm_channel::Options;
    /// // Eight 1 MiB messages in flight: a 16 MiB ring.
    /// let o = Options::new().max_message(1 << 20).messages(8);
    /// # let _ = o;
    /// ```
    pub fn messages(mut self, n: usize) -> Self {
        self.messages = Some(n);
        self
    }
    /// The uid that must own and have created a segment we join (default: our
    /// effective uid). For channels between two users, the joiner names the
    /// creator's uid here and the creator opens up `mode`.
    pub fn owner(mut self, uid: u32) -> Self {
        self.owner = Some(uid);
        self
    }

    /// Topics: the most subscribers a topic this side creates admits at once
    /// (default 16, at most [`MAX_SUBSCRIBERS`](crate::MAX_SUBSCRIBERS)). A
    /// subscriber past it gets [`Error::SubscribersFull`].
    pub fn subscribers(mut self, n: usize) -> Self {
        self.subscribers = n;
        self
    }
    /// Topics: how many of the messages still in the ring a subscriber that
    /// joins late receives first (default 0: only messages published after
    /// it joined). A subscriber's own setting.
    pub fn history(mut self, k: usize) -> Self {
        self.history = k;
        self
    }
    /// Topics: what the publisher does when the ring is full (default
    /// [`Overflow::Backpressure`](crate::Overflow::Backpressure)). The
    /// publisher's setting wins; a subscriber adopts it.
    pub fn overflow(mut self, overflow: crate::topic::Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Capacity and maximum message actually used for a new ring.
    pub(crate) fn ring_geometry(&self, messages: bool) -> Result<(u64, u64)> {
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
            if let Some(n) = self.messages {
                let Some(m) = self.max_message else {
                    return Err(Error::Invalid(format!(
                        "room for {n} messages is counted in messages of the largest size: set max_message too"
                    )));
                };
                if n == 0 {
                    return Err(Error::Invalid(
                        "room for 0 messages: a channel holds at least one".into(),
                    ));
                }
                let need = (n as u64)
                    .checked_add(1)
                    .and_then(|k| k.checked_mul(crate::message::frame_len(m as u64)))
                    .filter(|&b| b <= MAX_CAPACITY as u64)
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "room for {n} messages of {m} bytes exceeds the largest ring, {MAX_CAPACITY} bytes"
                        ))
                    })?;
                cap = cap.max(need as usize);
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
