//! Topics: one [`Publisher`], many [`Subscriber`]s, on one segment.
//!
//! The publisher writes each message once into a ring of frames; every
//! subscriber reads it in place (zero-copy with
//! [`Subscriber::recv_ref`]) or copies it out, at its own pace, from its
//! own cursor. In the shape of tokio's `broadcast` and crossbeam's channels:
//!
//! - [`Overflow::Backpressure`] (the default): the publisher waits for the
//!   slowest live subscriber; nothing is lost. A subscriber that dies is
//!   found (its process is watched through a pidfd) and dropped within a
//!   poll slice, so it never stalls the others; its slot is freed.
//! - [`Overflow::Lossy`]: the publisher never waits; a subscriber that falls
//!   a ring behind gets [`Error::Lagged`] once, with the exact number of
//!   messages it missed, and goes on from the oldest message still there.
//!
//! A subscriber that joins late starts at the newest message, or with the
//! last [`Options::history`] messages still in the ring. The publisher's
//! [`close`](Publisher::close) ends the topic cleanly: subscribers drain it,
//! then receive `Ok(None)`. A publisher dropped without `close` gives
//! [`Error::Aborted`], one that died [`Error::PeerDied`], each after
//! everything it published.
//!
//! ```
//! use std::time::Duration;
//! use svshm_channel::{Endpoint, Options, Publisher, Subscriber};
//! let ep = Endpoint::name(format!("doc-topic-{}", std::process::id()));
//! let opts = Options::new().timeout(Some(Duration::from_secs(5)));
//! let mut publisher = Publisher::create(&ep, &opts)?;
//! let mut a = Subscriber::connect(&ep, &opts)?;
//! let mut b = Subscriber::connect(&ep, &opts)?;
//! publisher.send(b"hello")?;
//! publisher.close()?;
//! assert_eq!(a.recv()?, Some(b"hello".to_vec()));
//! assert_eq!(b.recv()?, Some(b"hello".to_vec()));
//! assert_eq!(a.recv()?, None);
//! # Ok::<(), svshm_channel::Error>(())
//! ```
//!
//! See docs/ARCHITECTURE.md, "Topics", for the layout and the protocol.
//!
//! [`Error::Lagged`]: crate::Error::Lagged
//! [`Error::Aborted`]: crate::Error::Aborted
//! [`Error::PeerDied`]: crate::Error::PeerDied
//! [`Options::history`]: crate::Options::history

pub(crate) mod join;
mod layout;
mod publisher;
mod subscriber;
mod watch;

pub use layout::MAX_SUBSCRIBERS;
pub(crate) use layout::peek;
pub use publisher::{Publisher, SubscriberInfo, TopicLoan};
pub use subscriber::{Subscriber, TopicIter, TopicRef};

/// Default most subscribers of a topic.
pub const DEFAULT_SUBSCRIBERS: usize = 16;

/// What a topic's publisher does when the ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u32)]
pub enum Overflow {
    /// Wait for the slowest live subscriber: no message is ever lost.
    #[default]
    Backpressure = 0,
    /// Overwrite the oldest messages: the publisher never waits, and a
    /// subscriber that falls behind gets [`Error::Lagged`](crate::Error::Lagged)
    /// with the exact number it missed, then the oldest message still there.
    ///
    /// ```
    /// use svshm_channel::{Endpoint, Error, Options, Overflow, Publisher, Subscriber};
    /// let ep = Endpoint::name(format!("doc-lossy-{}", std::process::id()));
    /// let opts = Options::new().capacity(4096).overflow(Overflow::Lossy);
    /// let mut p = Publisher::<u64>::create_typed(&ep, &opts)?;
    /// let mut s = Subscriber::<u64>::connect_typed(&ep, &opts)?;
    /// for n in 0..1000u64 {
    ///     p.send(&n)?; // never waits
    /// }
    /// let Err(Error::Lagged { missed }) = s.recv() else { panic!("not lagged") };
    /// assert_eq!(s.recv()?, Some(missed)); // the oldest still in the ring
    /// # Ok::<(), svshm_channel::Error>(())
    /// ```
    Lossy = 1,
}

/// The live subscribers of topic segment `id`, as seen from outside (for
/// inspection tools): each one's slot, pid, lag behind the publisher and
/// messages missed. `Ok(None)` if the segment is not a ready topic.
/// Attaches read-only, so it needs read permission; changes nothing.
///
/// ```
/// use svshm_channel::{Endpoint, Options, Publisher, Subscriber, topic};
/// let ep = Endpoint::name(format!("doc-peek-{}", std::process::id()));
/// let mut p = Publisher::create(&ep, &Options::new())?;
/// let _s = Subscriber::connect(&ep, &Options::new())?;
/// p.send(b"a")?;
/// p.send(b"b")?;
/// let list = topic::subscribers_of(p.segment_id())?.unwrap();
/// assert_eq!((list.len(), list[0].lag), (1, 2));
/// # Ok::<(), svshm_channel::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Sys`](crate::Error::Sys) if the segment cannot be looked at or
/// attached.
pub fn subscribers_of(id: i32) -> crate::Result<Option<Vec<SubscriberInfo>>> {
    let seg = svshm::Segment::from_id(id);
    let info = seg.stat()?;
    if !crate::inspect::might_be_channel(&info) {
        return Ok(None);
    }
    let att = seg.attach_read_only()?;
    let Some(view) = crate::header::HeaderView::new(&att) else {
        return Ok(None);
    };
    // SYNC: pairs with the creator's Release store of READY.
    let ready = view.state().load(crate::sync::Ordering::Acquire) == crate::header::STATE_READY;
    if view.magic() != crate::header::MAGIC || !ready {
        return Ok(None);
    }
    match view.snapshot(info.size) {
        Ok(s) if s.kind == crate::header::KIND_TOPIC => {}
        _ => return Ok(None),
    }
    let Some(peek) = layout::peek(&att) else {
        return Ok(None);
    };
    Ok(Some(
        peek.holders
            .into_iter()
            .map(|(slot, pid, seq, missed)| SubscriberInfo {
                slot,
                pid,
                lag: peek.next_seq.saturating_sub(seq),
                missed,
            })
            .collect(),
    ))
}

/// How a subscriber watches its publisher.
pub(crate) enum PubWatch {
    /// The publisher's process, with the watcher thread's exit flag where it
    /// has one.
    Process(svshm::process::Watch, Option<svshm::process::ExitNotice>),
    /// The kernel's creator pid names no process with the recorded start
    /// time: the publisher is gone.
    Gone,
    /// Not visible from our pid namespace: only its end flag tells.
    Unknown,
}

impl PubWatch {
    /// Whether the publisher is gone (one atomic load with an exit flag,
    /// else a pidfd poll).
    pub(crate) fn dead(&self) -> bool {
        match self {
            PubWatch::Process(_, Some(n)) => n.has_exited(),
            PubWatch::Process(w, None) => w.status() == svshm::process::Status::Dead,
            PubWatch::Gone => true,
            PubWatch::Unknown => false,
        }
    }
}
