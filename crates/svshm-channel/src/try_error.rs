//! The small error types of the non-blocking and timed message calls, in the
//! shape of crossbeam-channel's: a send that did not happen gives the message
//! back.

use crate::error::Error;
use core::fmt;

/// Why [`Sender::try_send`](crate::Sender::try_send) did not send. Every
/// variant gives the message back.
#[derive(Debug)]
pub enum TrySendError<M> {
    /// No room in the ring now; try again later.
    Full(M),
    /// The receiver closed its end (cleanly or by dropping it): nothing sent
    /// now can be received.
    Disconnected(M),
    /// Any other failure: the receiver died, the message is too large, the
    /// ring is corrupt.
    Failed(M, Error),
}

/// Why [`Sender::send_timeout`](crate::Sender::send_timeout) or
/// [`send_deadline`](crate::Sender::send_deadline) did not send. Every
/// variant gives the message back.
#[derive(Debug)]
pub enum SendTimeoutError<M> {
    /// No room came in time.
    Timeout(M),
    /// The receiver closed its end.
    Disconnected(M),
    /// Any other failure (see [`TrySendError::Failed`]).
    Failed(M, Error),
}

/// Why [`Receiver::try_recv`](crate::Receiver::try_recv) returned no message.
#[derive(Debug)]
pub enum TryRecvError {
    /// No message now; try again later.
    Empty,
    /// The sender closed cleanly and every message was received: the end.
    Disconnected,
    /// Any other failure: the sender died or aborted (after every message it
    /// sent was received), a message failed to decode, the ring is corrupt.
    Failed(Error),
}

/// Why [`Receiver::recv_timeout`](crate::Receiver::recv_timeout) or
/// [`recv_deadline`](crate::Receiver::recv_deadline) returned no message.
#[derive(Debug)]
pub enum RecvTimeoutError {
    /// No message came in time.
    Timeout,
    /// The sender closed cleanly and every message was received: the end.
    Disconnected,
    /// Any other failure (see [`TryRecvError::Failed`]).
    Failed(Error),
}

macro_rules! send_error_impls {
    ($ty:ident, $wait:ident, $waiting:literal) => {
        impl<M> $ty<M> {
            /// The message that was not sent.
            pub fn into_inner(self) -> M {
                match self {
                    $ty::$wait(m) | $ty::Disconnected(m) | $ty::Failed(m, _) => m,
                }
            }

            /// Whether the receiver closed its end.
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $ty::Disconnected(_))
            }

            /// The failure, as the channel's [`Error`] (the message dropped).
            pub fn into_error(self) -> Error {
                match self {
                    $ty::$wait(_) => Error::Timeout {
                        waiting_for: "room in the ring".into(),
                    },
                    $ty::Disconnected(_) => Error::Closed {
                        role: crate::Role::Reader,
                    },
                    $ty::Failed(_, e) => e,
                }
            }

            pub(crate) fn from_error(e: Error, m: M) -> Self {
                match e {
                    Error::Closed { .. } => $ty::Disconnected(m),
                    e => $ty::Failed(m, e),
                }
            }
        }

        impl<M> fmt::Display for $ty<M> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $ty::$wait(_) => f.write_str($waiting),
                    $ty::Disconnected(_) => {
                        f.write_str("the receiver closed the channel; the message was not sent")
                    }
                    $ty::Failed(_, e) => write!(f, "{e}"),
                }
            }
        }

        impl<M: fmt::Debug> std::error::Error for $ty<M> {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $ty::Failed(_, e) => Some(e),
                    _ => None,
                }
            }
        }

        impl<M> From<$ty<M>> for Error {
            fn from(e: $ty<M>) -> Error {
                e.into_error()
            }
        }
    };
}

send_error_impls!(
    TrySendError,
    Full,
    "the channel is full; the message was not sent"
);
send_error_impls!(
    SendTimeoutError,
    Timeout,
    "timed out waiting for room in the channel; the message was not sent"
);

impl<M> TrySendError<M> {
    /// Whether the ring was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
}

impl<M> SendTimeoutError<M> {
    /// Whether the time ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }
}

macro_rules! recv_error_impls {
    ($ty:ident, $wait:ident, $is_wait:ident, $waiting:literal) => {
        impl $ty {
            #[doc = concat!("Whether this is [`", stringify!($ty), "::", stringify!($wait), "`].")]
            pub fn $is_wait(&self) -> bool {
                matches!(self, $ty::$wait)
            }

            /// Whether the sender closed cleanly and everything was received.
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $ty::Disconnected)
            }

            /// The failure as the channel's [`Error`].
            pub fn into_error(self) -> Error {
                match self {
                    $ty::$wait => Error::Timeout {
                        waiting_for: "a message".into(),
                    },
                    $ty::Disconnected => Error::Closed {
                        role: crate::Role::Writer,
                    },
                    $ty::Failed(e) => e,
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $ty::$wait => f.write_str($waiting),
                    $ty::Disconnected => {
                        f.write_str("the sender closed the channel and every message was received")
                    }
                    $ty::Failed(e) => write!(f, "{e}"),
                }
            }
        }

        impl std::error::Error for $ty {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $ty::Failed(e) => Some(e),
                    _ => None,
                }
            }
        }

        impl From<$ty> for Error {
            fn from(e: $ty) -> Error {
                e.into_error()
            }
        }
    };
}

recv_error_impls!(
    TryRecvError,
    Empty,
    is_empty,
    "no message in the channel now"
);
recv_error_impls!(
    RecvTimeoutError,
    Timeout,
    is_timeout,
    "timed out waiting for a message"
);
