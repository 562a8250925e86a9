//! A fast writer→reader channel over one System V shared memory segment: TLPI's
//! §48.4 transfer program done right.
//!
//! TLPI's writer and reader hand one 1 KiB buffer back and forth with two
//! semaphores under a hard-coded key: two syscalls per KiB, the writer must
//! start first, and a crash leaves the objects behind. Here:
//!
//! - **No fixed key**: an [`Endpoint`] is a name (hashed with your uid), a key, a
//!   path (ftok), or a private segment's id.
//! - **Either side starts first**: the first creates the segment (IPC_EXCL, mode
//!   0600), the second verifies it — owner and creator uid from the kernel,
//!   mode, magic, layout version, kind, capacity — and joins; each waits for the
//!   other up to a timeout.
//! - **No leaks on crash**: once both sides are attached the segment is marked
//!   for destruction, so the kernel frees it when both are gone, however they
//!   end. A segment left by a creator that crashed before its peer came is
//!   reclaimed by the next connect ([`reclaim()`] / `svshm gc`) — only once it is
//!   proven to be an abandoned svshm channel ([`judge`]); anything else under
//!   a channel's key is refused, never removed.
//! - **Peer death detected**: each side records its pid and process start
//!   time; the other side verifies them against the kernel at rendezvous and
//!   watches that process ([`PeerWatch`]), so other attachments of the segment
//!   cannot hide a death. A survivor gets [`Error::PeerDied`] (not EOF) after
//!   everything the dead side had committed: a blocked side probes its peer
//!   every 20 ms poll slice, and calls that do not block probe at most every
//!   20 ms, so a death is noticed within about 20 ms of the next wait or call;
//!   a peer that called exec(2) (alive, but no longer mapping the segment) is
//!   noticed by a blocked side within five slices, about 100 ms.
//! - **Only an explicit close ends cleanly**: a writer dropped without
//!   `close()`, failing or panicking gives the reader [`Error::Aborted`]; a
//!   clean end carries the writer's final count and must add up.
//! - **Fast**: an SPSC ring of bytes with cursors on separate cache lines, copy
//!   or zero-copy, and no syscall on the fast path (see [`Wait`]).
//!
//! Two shapes over the same ring:
//!
//! - **A byte stream**: [`StreamWriter`] is `io::Write`, [`StreamReader`] is
//!   `io::Read + io::BufRead`; zero-copy through chunk guards
//!   ([`StreamWriter::write_chunk`], [`StreamReader::read_chunk`]) that lend
//!   both halves of the ring across its end and publish on a consuming
//!   `commit`/`consume`.
//! - **Messages**, whole or nothing: [`Sender<T>`] / [`Receiver<T>`] in the
//!   shape of crossbeam-channel's (`send`, `try_send`, `send_timeout`,
//!   `send_deadline`; `recv` giving `Ok(None)` at the sender's clean close,
//!   `try_recv`, `recv_timeout`, `iter`), typed by the message: bytes by
//!   default, any zerocopy type (validated on receipt, so a hostile sender's
//!   bytes are an error and never an invalid value), or any serde type as
//!   `Postcard<T>` with the `serde` feature. See [`codec`].
//!
//! One publisher, many subscribers: a [`Publisher`] writes each message once
//! into a topic's ring and every [`Subscriber`] reads it in place or copies it
//! out, with backpressure or lossy overflow ([`Overflow`]), late joiners with
//! history, and dead subscribers dropped so they never stall the others.
//!
//! Many channels, one thread: a [`Select`] waits on any mix of endpoints in
//! one `futex_waitv(2)` call and returns the one that is ready (or whose peer
//! closed or died), with no CPU while idle.
//!
//! **Async**, with any executor and no thread per channel:
//! [`Receiver::recv_async`], [`Sender::send_async`],
//! [`StreamReader::read_some_async`], [`StreamWriter::write_some_async`], and
//! `poll_*` methods on every endpoint; with the `tokio` feature [`StreamReader`] and
//! [`StreamWriter`] are tokio's `AsyncRead`/`AsyncWrite`, with the `futures`
//! feature the `futures` crate's, and [`Receiver`] is a `Stream`. One
//! process-wide thread sleeps in `futex_waitv(2)` on the wait words of every
//! endpoint that waits and wakes their tasks; dropping a future loses no
//! message and sends none.
//!
//! Every reference into the segment a safe call hands out ([`Loan`],
//! [`MessageRef`], [`WriteChunk`], [`ReadChunk`], `BufRead::fill_buf`)
//! covers bytes the ring protocol gives to that side alone; each type's docs
//! say why that is sound, what a peer that breaks the protocol can still do,
//! and which copying call avoids the reference (for a channel with another
//! user).
//!
//! Every value read from the segment is validated against what this process
//! recorded at connect time: a corrupt or hostile peer yields
//! [`Error::Corrupt`], never a panic, an out-of-bounds access or an endless wait.

// Unsafe code lives only in the modules that say why at their top:
// header.rs, ring.rs (and ring/mem.rs), message.rs, stream.rs, and
// topic/{layout,publisher,subscriber}.rs.
#![deny(unsafe_code)]

#[cfg(not(svshm_loom))]
mod asynk;
mod futex;
// The SPSC ring protocol: cursors, frames and their constants. Not public API;
// exposed only with the `internals` feature, for the crate's own model and
// bounds tests, the benchmark harness and the fuzz targets.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod ring;
#[cfg(not(feature = "internals"))]
mod ring;
mod sync;

#[cfg(not(svshm_loom))]
pub mod codec;
#[cfg(not(svshm_loom))]
mod endpoint;
#[cfg(not(svshm_loom))]
mod error;
#[cfg(not(svshm_loom))]
mod header;
#[cfg(not(svshm_loom))]
mod inspect;
#[cfg(not(svshm_loom))]
mod link;
#[cfg(not(svshm_loom))]
mod message;
#[cfg(not(svshm_loom))]
mod pending;
#[cfg(not(svshm_loom))]
mod queries;
#[cfg(not(svshm_loom))]
pub mod reclaim;
#[cfg(not(svshm_loom))]
mod rendezvous;
#[cfg(not(svshm_loom))]
mod select;
#[cfg(not(svshm_loom))]
mod service;
#[cfg(not(svshm_loom))]
mod stream;
#[cfg(not(svshm_loom))]
pub mod topic;
#[cfg(not(svshm_loom))]
mod try_error;

#[cfg(all(not(svshm_loom), feature = "serde"))]
pub use codec::Postcard;
#[cfg(not(svshm_loom))]
pub use codec::{Decode, Encode};
#[cfg(not(svshm_loom))]
pub use error::{Error, Result, Role};
#[cfg(not(svshm_loom))]
pub use inspect::{ChannelStatus, Kind, PeerStatus, inspect, might_be_channel};
#[cfg(not(svshm_loom))]
pub use message::{IntoIter, Iter, Loan, MessageRef, Receiver, Sender, TryIter};
#[cfg(not(svshm_loom))]
pub use pending::Pending;
#[cfg(not(svshm_loom))]
pub use reclaim::{Reclaimed, Verdict, judge, judge_record, reclaim, reclaim_all};
#[cfg(not(svshm_loom))]
pub use rendezvous::{
    Creator, DEFAULT_CAPACITY, Endpoint, MAX_CAPACITY, Options, PeerWatch, channel_key,
    channel_key_for_uid, is_channel_key,
};
pub use ring::{DEFAULT_SPIN, Wait};
#[cfg(not(svshm_loom))]
pub use select::{Select, SelectTimeoutError, TrySelectError};
#[cfg(not(svshm_loom))]
pub use service::{Caller, Client, Connection, Server};
#[cfg(not(svshm_loom))]
pub use stream::{ReadChunk, StreamReader, StreamWriter, WriteChunk};
#[cfg(not(svshm_loom))]
pub use topic::{
    DEFAULT_SUBSCRIBERS, MAX_SUBSCRIBERS, Overflow, Publisher, Subscriber, SubscriberInfo,
    TopicIter, TopicLoan, TopicRef,
};
#[cfg(not(svshm_loom))]
pub use try_error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};

/// The README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}
