//! The channel's error type.

use crate::ring::RingError;
use core::fmt;

/// Which end of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The writing end (StreamWriter, Sender).
    Writer,
    /// The reading end (StreamReader, Receiver).
    Reader,
}

impl Role {
    /// The other end.
    pub fn peer(self) -> Role {
        match self {
            Role::Writer => Role::Reader,
            Role::Reader => Role::Writer,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
        })
    }
}

/// Everything that can go wrong on a channel. `Display` says what happened and
/// what to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A System V call failed (creating, opening, attaching, stat…).
    Sys(svshm::Error),
    /// The other side did not come, or no data/space came, before the timeout.
    Timeout {
        /// What we were waiting for.
        waiting_for: String,
    },
    /// The peer process died without closing its end. Everything it had
    /// committed was delivered first.
    PeerDied {
        /// The dead side.
        role: Role,
        /// Its pid.
        pid: i32,
    },
    /// The peer left without closing cleanly — it panicked, or gave up while
    /// connecting. Everything it had committed was delivered first, but the
    /// stream may be incomplete.
    Aborted {
        /// The side that left.
        role: Role,
    },
    /// The peer closed its end: for a writer, the reader is gone (like EPIPE);
    /// for a message receiver, the sender closed and every message was received.
    Closed {
        /// The side that closed.
        role: Role,
    },
    /// The segment's header or ring broke the protocol (a faulty or hostile
    /// peer, or memory overwritten by someone else).
    Corrupt {
        /// Segment id.
        id: i32,
        /// What was wrong.
        detail: String,
    },
    /// The segment under our key belongs to someone we do not trust: another
    /// owner or creator uid, or a mode wider than asked (squatting).
    Foreign {
        /// Segment id.
        id: i32,
        /// Why it is refused.
        detail: String,
    },
    /// The segment is not an svshm channel, or one of another kind/version.
    Mismatch {
        /// Segment id.
        id: i32,
        /// What differs.
        detail: String,
    },
    /// A segment under the channel's key (or id) that cannot be proven to be
    /// an svshm channel: left untouched.
    NotOurs {
        /// Segment id.
        id: i32,
        /// Its key.
        key: svshm::Key,
        /// Why it is not taken for a channel.
        detail: String,
    },
    /// Our side of the channel is already held by a live process.
    InUse {
        /// Segment id.
        id: i32,
        /// The side that is taken.
        role: Role,
        /// The live holder.
        pid: i32,
    },
    /// A message larger than the channel's maximum.
    MessageTooLarge {
        /// The message's length.
        len: usize,
        /// The channel's maximum.
        max: usize,
    },
    /// A received message is not a valid message of the receiver's type (a
    /// sender of another type, or a hostile one). The message was skipped;
    /// the channel goes on.
    BadMessage {
        /// Segment id.
        id: i32,
        /// Why the bytes are not a valid message.
        detail: String,
    },
    /// A lossy topic's subscriber fell behind: the publisher overwrote
    /// `missed` messages before it read them. Reported once; the next receive
    /// goes on from the oldest message still in the ring (as tokio's
    /// broadcast `RecvError::Lagged`).
    Lagged {
        /// How many messages were lost, exactly.
        missed: u64,
    },
    /// Every subscriber slot of the topic is held by a live subscriber.
    SubscribersFull {
        /// Segment id.
        id: i32,
        /// The topic's number of slots.
        max: usize,
    },
    /// Bad options or endpoint.
    Invalid(String),
}

impl Error {
    pub(crate) fn from_ring(
        e: RingError,
        id: i32,
        role: Role,
        peer_pid: i32,
        waiting_for: &str,
    ) -> Error {
        match e {
            RingError::Corrupt(detail) => Error::Corrupt { id, detail },
            RingError::Closed => Error::Closed { role: role.peer() },
            RingError::Aborted => Error::Aborted { role: role.peer() },
            RingError::PeerDied => Error::PeerDied {
                role: role.peer(),
                pid: peer_pid,
            },
            RingError::Timeout => Error::Timeout {
                waiting_for: waiting_for.to_string(),
            },
        }
    }

    /// Whether this is [`Error::PeerDied`].
    pub fn is_peer_died(&self) -> bool {
        matches!(self, Error::PeerDied { .. })
    }

    /// Whether this is [`Error::Aborted`]: the writer ended its side cut short
    /// (it called `abort`, or was dropped without `close`).
    pub fn is_aborted(&self) -> bool {
        matches!(self, Error::Aborted { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys(e) => write!(f, "{e}"),
            Error::Timeout { waiting_for } => {
                write!(
                    f,
                    "timed out waiting for {waiting_for}; start the other side, or wait longer"
                )
            }
            Error::PeerDied { role, pid } => write!(
                f,
                "the {role} (pid {pid}) died without closing the channel; everything it had committed was delivered"
            ),
            Error::Aborted { role } => write!(
                f,
                "the {role} left without closing cleanly (it panicked or gave up); everything it had committed was delivered, but the data may be incomplete"
            ),
            Error::Closed { role: Role::Reader } => {
                f.write_str("the reader closed the channel; nothing more can be written")
            }
            Error::Closed { role: Role::Writer } => {
                f.write_str("the writer closed the channel; no more messages")
            }
            Error::Corrupt { id, detail } => write!(
                f,
                "channel segment {id} is corrupt: {detail}; the peer is faulty or hostile, or another program wrote the segment"
            ),
            Error::Foreign { id, detail } => write!(
                f,
                "refusing segment {id}: {detail}; it is not a channel of ours — connected by name or key, choose another (someone else holds this one) or have its owner remove it; connected by id, check the id (/proc/sysvipc/shm lists the segments)"
            ),
            Error::Mismatch { id, detail } => write!(
                f,
                "segment {id} does not match: {detail}; both sides must use the same channel kind and svshm version"
            ),
            Error::NotOurs { id, key, detail } => write!(
                f,
                "segment {id} (key {key}) is in the channel's way: {detail}. It is not provably an svshm channel, so it was left untouched; if it is yours and no longer needed, remove it (shmctl({id}, IPC_RMID)), or use another channel name or key"
            ),
            Error::InUse { id, role, pid } => write!(
                f,
                "channel segment {id} already has a {role} (pid {pid}); a channel connects one writer and one reader"
            ),
            Error::MessageTooLarge { len, max } => write!(
                f,
                "message of {len} bytes exceeds the channel's maximum of {max} bytes; create the channel with a larger max_message"
            ),
            Error::BadMessage { id, detail } => write!(
                f,
                "channel segment {id}: a message was not valid: {detail}; both ends must use the same message type (it was skipped)"
            ),
            Error::Lagged { missed } => write!(
                f,
                "this subscriber fell behind and missed {missed} message(s) the publisher overwrote; it goes on from the oldest message still there (use a larger capacity or a Backpressure topic to lose none)"
            ),
            Error::SubscribersFull { id, max } => write!(
                f,
                "topic segment {id} has all its {max} subscriber slots taken by live subscribers; wait for one to leave, or have the publisher create the topic with more (Options::subscribers)"
            ),
            Error::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Sys(e) => Some(e),
            _ => None,
        }
    }
}

impl From<svshm::Error> for Error {
    fn from(e: svshm::Error) -> Error {
        Error::Sys(e)
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        use std::io::ErrorKind as K;
        let kind = match &e {
            Error::Sys(_) => K::Other,
            Error::Timeout { .. } => K::TimedOut,
            Error::PeerDied { .. } => K::ConnectionAborted,
            Error::Aborted { .. } => K::UnexpectedEof,
            Error::Closed { .. } => K::BrokenPipe,
            Error::Corrupt { .. } | Error::Mismatch { .. } | Error::NotOurs { .. } => {
                K::InvalidData
            }
            Error::Foreign { .. } => K::PermissionDenied,
            Error::InUse { .. } => K::AddrInUse,
            Error::MessageTooLarge { .. } | Error::Invalid(_) => K::InvalidInput,
            Error::BadMessage { .. } => K::InvalidData,
            Error::Lagged { .. } => K::Other,
            Error::SubscribersFull { .. } => K::AddrInUse,
        };
        std::io::Error::new(kind, e)
    }
}

/// Shorthand for `Result<T, svshm_channel::Error>`.
pub type Result<T, E = Error> = core::result::Result<T, E>;
