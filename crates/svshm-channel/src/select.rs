//! Waiting on many endpoints at once: [`Select`].
//!
//! Every endpoint sleeps on a futex word in its segment (its side's wait
//! word); the other side, after publishing, wakes that word only if it is set.
//! A `Select` sets the words of all its endpoints, re-checks them all, and
//! sleeps on all of them in one `futex_waitv(2)` call (Linux 5.16+), so a
//! server waits on many channels with one thread, one system call, and no CPU
//! while nothing happens; and the channels' fast path stays free of system
//! calls while nobody waits.

use crate::ring::POLL_SLICE;
use crate::sync::{AtomicU32, Ordering, fence};
use core::fmt;
use std::time::{Duration, Instant};

mod pool;

/// What an endpoint tells a [`Select`]: the word it sleeps on, and whether
/// its operation would proceed without waiting.
pub(crate) trait Waitable {
    /// The futex word this endpoint's side sleeps on.
    fn wait_word(&self) -> &AtomicU32;
    /// Whether the operation would not wait: data (or room for `need`
    /// bytes), or an event that ends it — the peer closed or died (by the
    /// watcher thread's flag), or the channel is broken.
    fn is_ready(&self, need: usize) -> bool;
    /// Whether the peer is gone, by a full probe (see `Link::peer_gone`).
    fn peer_gone(&self) -> bool;
    /// Whether the peer's death raises the watcher thread's flag, which
    /// [`is_ready`](Self::is_ready) reads, so that only an exec(2) needs a probe.
    fn has_exit_flag(&self) -> bool;
}

/// `Waitable` for a channel end with fields `$side` (its ring side) and
/// `link`: ready when `$ready` holds (data, or room for `need` bytes), or
/// when the peer closed, the channel broke, or the peer's exit flag is up.
macro_rules! waitable {
    ([$($gen:tt)*] $ty:ty, $side:ident, |$this:ident, $need:ident| $ready:expr) => {
        impl<$($gen)*> crate::select::Waitable for $ty {
            fn wait_word(&self) -> &crate::sync::AtomicU32 {
                self.$side.wait_word()
            }
            fn is_ready(&self, $need: usize) -> bool {
                let $this = self;
                let ready: bool = $ready;
                ready
                    || self.$side.peer_closed()
                    || self.link.broken.get()
                    || self.link.peer_exited()
            }
            fn peer_gone(&self) -> bool {
                self.link.peer_gone()
            }
            fn has_exit_flag(&self) -> bool {
                self.link.has_exit_flag()
            }
        }
    };
}
pub(crate) use waitable;

/// How often endpoints whose peer has an exit flag are probed in full while a
/// `Select` sleeps: the probe's `/proc` read (every fifth) only catches a
/// peer that called exec(2), which the flag does not announce.
const FLAGGED_PROBE_EVERY: Duration = Duration::from_secs(1);

struct Entry<'a> {
    end: &'a dyn Waitable,
    /// Bytes of room a sending end needs (0 for receiving ends).
    need: usize,
}

/// Waits until one of many endpoints is ready: receivers and stream readers
/// with something to read, senders and stream writers with room — or any of
/// them whose peer closed or died, which its next operation then reports.
///
/// In the shape of crossbeam-channel's `Select`: add endpoints, each add
/// returns an index, and [`select`](Self::select) returns the index of a
/// ready one (endpoints are tried in turn from where the last call stopped,
/// so a busy channel cannot starve the others). The caller then performs the
/// operation itself, with a method that does not wait (`try_recv`,
/// `try_send`, `read_chunk`…): a `Select` borrows its endpoints only to look
/// at them, so build it anew in each loop turn, which costs a few
/// nanoseconds per endpoint.
///
/// An endpoint whose peer closed or died stays ready: its operation returns
/// the end (`Ok(None)`, [`TryRecvError::Disconnected`](crate::TryRecvError),
/// an error) every time. Stop adding it once it has ended, or
/// [`remove`](Self::remove) it.
///
/// Sleeping is one `futex_waitv(2)` over all the endpoints' wait words (Linux
/// 5.16 or later): no thread per channel and no CPU while idle. Up to 128
/// endpoints wait in the calling thread; beyond that, one helper thread per
/// further 127 endpoints joins the sleep (helpers come from a process-wide
/// pool and stay for the next sleep). On an older kernel a `Select` sleeps on one word at a time in
/// 1 ms slices: it works, with a millisecond of extra latency and a thousand
/// wake-ups a second while idle. A dead peer is noticed at once where the
/// process-wide watcher thread follows it (the usual case), else within a
/// 20 ms probe slice.
///
/// ```
/// use svshm_channel::{Endpoint, Options, Receiver, Select, Sender, TryRecvError};
/// let names: Vec<String> = (0..3).map(|i| format!("doc-select-{}-{i}", std::process::id())).collect();
/// // Three writers (normally other processes), each sending one message.
/// let writers: Vec<_> = names.iter().cloned().enumerate().map(|(i, n)| {
///     std::thread::spawn(move || -> svshm_channel::Result<()> {
///         let mut tx = Sender::connect(&Endpoint::name(n), &Options::new())?;
///         tx.send(format!("hello from {i}").as_bytes())?;
///         tx.close()
///     })
/// }).collect();
/// let mut rxs = names.iter()
///     .map(|n| Receiver::connect(&Endpoint::name(n.as_str()), &Options::new()))
///     .collect::<svshm_channel::Result<Vec<_>>>()?;
/// let mut got = Vec::new();
/// let mut open = vec![true; rxs.len()];
/// while open.contains(&true) {
///     let mut sel = Select::new();
///     let idx: Vec<usize> = (0..rxs.len()).filter(|&i| open[i]).collect();
///     for &i in &idx {
///         sel.recv(&rxs[i]);
///     }
///     let i = idx[sel.select()];
///     match rxs[i].try_recv() {
///         Ok(msg) => got.push(String::from_utf8(msg).unwrap()),
///         Err(TryRecvError::Empty) => {}           // (a spurious wake-up is allowed)
///         Err(TryRecvError::Disconnected) => open[i] = false, // the clean end
///         Err(TryRecvError::Failed(e)) => return Err(e),
///     }
/// }
/// got.sort();
/// assert_eq!(got, ["hello from 0", "hello from 1", "hello from 2"]);
/// # for w in writers { w.join().unwrap()?; }
/// # Ok::<(), svshm_channel::Error>(())
/// ```
pub struct Select<'a> {
    entries: Vec<Option<Entry<'a>>>,
    /// Where the next scan starts (round robin).
    next: usize,
    /// When endpoints with an exit flag were last probed in full.
    last_full_probe: Instant,
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("endpoints", &self.len())
            .finish_non_exhaustive()
    }
}

/// [`Select::try_select`] found no endpoint ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrySelectError;

impl fmt::Display for TrySelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no endpoint is ready")
    }
}

impl std::error::Error for TrySelectError {}

/// [`Select::select_timeout`] or [`Select::select_deadline`] found no endpoint
/// ready in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectTimeoutError;

impl fmt::Display for SelectTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for an endpoint to be ready")
    }
}

impl std::error::Error for SelectTimeoutError {}

impl<'a> Select<'a> {
    /// An empty `Select`.
    pub fn new() -> Select<'a> {
        Select {
            entries: Vec::new(),
            next: 0,
            last_full_probe: Instant::now(),
        }
    }

    fn add(&mut self, end: &'a dyn Waitable, need: usize) -> usize {
        self.entries.push(Some(Entry { end, need }));
        self.entries.len() - 1
    }

    /// Adds a message receiver, ready when a whole message is there or the
    /// sender closed or died. Returns its index.
    pub fn recv<T: ?Sized>(&mut self, rx: &'a crate::Receiver<T>) -> usize {
        self.add(rx, 0)
    }

    /// Adds a message sender, ready when a message of its channel's
    /// [maximum size](crate::Sender::max_message) fits without waiting, or the
    /// receiver closed or died. See [`send_len`](Self::send_len) for smaller
    /// messages. Returns its index.
    pub fn send<T: ?Sized>(&mut self, tx: &'a crate::Sender<T>) -> usize {
        let max = tx.max_message();
        self.add(tx, max)
    }

    /// Adds a message sender, ready when a message of `len` bytes fits
    /// without waiting, or the receiver closed or died. Returns its index.
    pub fn send_len<T: ?Sized>(&mut self, tx: &'a crate::Sender<T>, len: usize) -> usize {
        self.add(tx, len)
    }

    /// Adds a topic subscriber, ready when a message is there, or the
    /// publisher closed or died, or (lossy) overwrote its next message.
    /// Returns its index.
    pub fn subscribe<T: ?Sized>(&mut self, s: &'a crate::Subscriber<T>) -> usize {
        self.add(s, 0)
    }

    /// Adds a topic publisher, ready when a message of the topic's
    /// [maximum size](crate::Publisher::max_message) fits without waiting
    /// (always, for a lossy topic). Returns its index.
    pub fn publish<T: ?Sized>(&mut self, p: &'a crate::Publisher<T>) -> usize {
        let max = p.max_message();
        self.add(p, max)
    }

    /// Adds a stream reader, ready when a byte is there or the writer closed
    /// or died. Returns its index.
    pub fn read(&mut self, r: &'a crate::StreamReader) -> usize {
        self.add(r, 0)
    }

    /// Adds a stream writer, ready when a byte fits or the reader closed or
    /// died. Returns its index.
    pub fn write(&mut self, w: &'a crate::StreamWriter) -> usize {
        self.add(w, 1)
    }

    /// Adds a service's server, ready when a client waits to be accepted
    /// ([`Server::try_accept`](crate::Server::try_accept)). Returns its index.
    pub fn accept<Req: ?Sized, Resp: ?Sized>(
        &mut self,
        server: &'a crate::Server<Req, Resp>,
    ) -> usize {
        self.add(server, 0)
    }

    /// Removes the endpoint at `index`; the other indexes stay as they are.
    ///
    /// # Panics
    ///
    /// If `index` was not returned by this `Select` or was removed already.
    pub fn remove(&mut self, index: usize) {
        let slot = self.entries.get_mut(index);
        assert!(
            slot.as_ref().is_some_and(|s| s.is_some()),
            "Select::remove: no endpoint at index {index}"
        );
        if let Some(s) = slot {
            *s = None;
        }
    }

    /// How many endpoints it waits on.
    pub fn len(&self) -> usize {
        self.entries.iter().flatten().count()
    }

    /// Whether it has no endpoints.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of a ready endpoint, without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySelectError`] if none is ready.
    pub fn try_select(&mut self) -> Result<usize, TrySelectError> {
        self.scan().ok_or(TrySelectError)
    }

    /// Waits until an endpoint is ready and returns its index.
    ///
    /// # Panics
    ///
    /// If the `Select` has no endpoints: it would wait for ever.
    pub fn select(&mut self) -> usize {
        assert!(
            !self.is_empty(),
            "Select::select with no endpoints would wait for ever"
        );
        self.wait(None)
            .expect("a wait without a deadline returns an endpoint")
    }

    /// Waits at most `timeout` for an endpoint to be ready.
    ///
    /// # Errors
    ///
    /// [`SelectTimeoutError`] if none was ready in time.
    pub fn select_timeout(&mut self, timeout: Duration) -> Result<usize, SelectTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(d) => self.select_deadline(d),
            None => Ok(self.select()),
        }
    }

    /// Waits until `deadline` at the latest for an endpoint to be ready.
    ///
    /// # Errors
    ///
    /// [`SelectTimeoutError`] if none was ready in time.
    pub fn select_deadline(&mut self, deadline: Instant) -> Result<usize, SelectTimeoutError> {
        self.wait(Some(deadline)).ok_or(SelectTimeoutError)
    }

    /// The first ready endpoint from `next` on, round robin.
    fn scan(&mut self) -> Option<usize> {
        let n = self.entries.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if let Some(e) = &self.entries[i] {
                if e.end.is_ready(e.need) {
                    self.next = (i + 1) % n;
                    return Some(i);
                }
            }
        }
        None
    }

    /// An endpoint whose peer a full probe finds gone: every endpoint without
    /// an exit flag at each call, the others once per
    /// [`FLAGGED_PROBE_EVERY`].
    fn probe(&mut self) -> Option<usize> {
        let all = self.last_full_probe.elapsed() >= FLAGGED_PROBE_EVERY;
        if all {
            self.last_full_probe = Instant::now();
        }
        self.entries.iter().position(|e| {
            e.as_ref()
                .is_some_and(|e| (all || !e.end.has_exit_flag()) && e.end.peer_gone())
        })
    }

    fn set_words(&self, v: u32) {
        for e in self.entries.iter().flatten() {
            e.end.wait_word().store(v, Ordering::Relaxed);
        }
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Option<usize> {
        if let Some(i) = self.scan() {
            return Some(i);
        }
        if self.is_empty() && deadline.is_none() {
            return None;
        }
        let mut slice_start = Instant::now();
        loop {
            // Announce on every word, then re-check every endpoint.
            self.set_words(1);
            // SYNC: pairs with the fence in the other side's
            // `wake_if_waiting`: either it sees our flag and wakes the word,
            // or we see what it published below (as in `block_on`).
            fence(Ordering::SeqCst);
            let found = self.scan();
            let now = Instant::now();
            let found = found.or_else(|| {
                if now.duration_since(slice_start) >= POLL_SLICE.min(FLAGGED_PROBE_EVERY) {
                    slice_start = now;
                    self.probe()
                } else {
                    None
                }
            });
            if found.is_some() || deadline.is_some_and(|d| now >= d) {
                self.set_words(0);
                return found;
            }
            // Endpoints whose peer has no exit flag need a probe every
            // slice; with flags everywhere, only the rare full probe.
            let slice = if self.entries.iter().flatten().all(|e| e.end.has_exit_flag()) {
                FLAGGED_PROBE_EVERY
            } else {
                POLL_SLICE
            };
            let until = match deadline {
                Some(d) => d.min(now + slice),
                None => now + slice,
            };
            let words: Vec<&AtomicU32> = self
                .entries
                .iter()
                .flatten()
                .map(|e| e.end.wait_word())
                .collect();
            if words.is_empty() {
                // Nothing to wait on but the deadline.
                std::thread::sleep(until.saturating_duration_since(now));
            } else {
                pool::sleep_on(&words, until);
            }
        }
    }
}
