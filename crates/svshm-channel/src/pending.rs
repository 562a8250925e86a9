//! An end that has created or joined its channel but not yet met its peer:
//! [`Pending`].

use crate::error::{Result, Role};
use crate::link::Link;
use crate::rendezvous::{Endpoint, Options, deadline_after, establish};
use core::fmt;
use std::time::Instant;

/// A channel end that has created (or joined) its segment and waits to be
/// completed by its peer: made by `open` on [`StreamWriter`](crate::StreamWriter),
/// [`StreamReader`](crate::StreamReader), [`Sender`](crate::Sender) and
/// [`Receiver`](crate::Receiver).
///
/// Its [`segment_id`](Self::segment_id) is known at once, which is what a
/// private channel needs: the creator hands the id to its peer, then
/// [`wait`](Self::wait)s.
///
/// ```
/// use std::io::{Read, Write};
/// use svshm_channel::{Endpoint, Options, StreamReader, StreamWriter};
/// // An IPC_PRIVATE channel: nobody can find it by key.
/// let pending = StreamWriter::open(&Endpoint::private(), &Options::new())?;
/// let id = pending.segment_id();
/// let reader = std::thread::spawn(move || -> svshm_channel::Result<Vec<u8>> {
///     // Normally another process, told the id.
///     let mut r = StreamReader::connect(&Endpoint::id(id), &Options::new())?;
///     let mut v = Vec::new();
///     r.read_to_end(&mut v).map_err(|e| svshm_channel::Error::Invalid(e.to_string()))?;
///     Ok(v)
/// });
/// let mut w = pending.wait()?;              // the reader has joined
/// w.write_all(b"private hello").unwrap();
/// w.close()?;
/// assert_eq!(reader.join().unwrap()?, b"private hello");
/// # Ok::<(), svshm_channel::Error>(())
/// ```
///
/// Dropping it without waiting gives the segment back: a creator's segment
/// is removed (a peer that joined meanwhile gets an error, never a hang).
#[must_use = "a pending end does nothing until it waits for its peer"]
pub struct Pending<E> {
    link: Link,
    build: fn(Link) -> Result<E>,
    deadline: Option<Instant>,
    label: String,
}

impl<E> fmt::Debug for Pending<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("channel", &self.label)
            .field("segment_id", &self.link.segment_id())
            .finish_non_exhaustive()
    }
}

impl<E> Pending<E> {
    /// The channel segment's id (for [`Endpoint::id`] on the peer's side).
    pub fn segment_id(&self) -> i32 {
        self.link.segment_id()
    }

    /// Waits for the peer (until the options' timeout, counted from `open`),
    /// then returns the connected end.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) if the peer did not come in
    /// time, or as the end's `connect`.
    pub fn wait(mut self) -> Result<E> {
        self.link.wait_for_peer(self.deadline, &self.label)?;
        (self.build)(self.link)
    }
}

/// `open` for every end: establish, then hand back the pending end.
pub(crate) fn open<E>(
    ep: &Endpoint,
    opts: &Options,
    role: Role,
    kind: u32,
    build: fn(Link) -> Result<E>,
) -> Result<Pending<E>> {
    let deadline = opts.timeout.and_then(deadline_after);
    Ok(Pending {
        link: establish(ep, opts, role, kind)?,
        build,
        deadline,
        label: ep.to_string(),
    })
}
