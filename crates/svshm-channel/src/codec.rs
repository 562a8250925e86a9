//! How typed messages become bytes and back: [`Encode`] and [`Decode`].
//!
//! A message channel carries byte frames. [`Sender<T>`](crate::Sender) and
//! [`Receiver<T>`](crate::Receiver) are typed by the message type `T`:
//!
//! - `[u8]` (the default): bytes, sent from a `&[u8]` and received as a
//!   `Vec<u8>`.
//! - `str`: text, sent from a `&str` and received as a `String` (checked to
//!   be UTF-8).
//! - Any [`zerocopy`] type: sent as its in-memory bytes ([`IntoBytes`]), and on
//!   receipt copied out of the segment and *validated* ([`TryFromBytes`]), so a
//!   hostile or mismatched sender's bytes become an error, never an invalid
//!   value (a `bool` that is 2, an enum with no such variant).
//! - `Postcard<T>` (feature `serde`): any serde type, encoded with postcard.
//!
//! Other encodings implement these two traits for a marker type of their own,
//! as `Postcard` does.

use crate::error::Error;
use zerocopy::{Immutable, IntoBytes, KnownLayout, TryFromBytes};

/// A type a [`Sender`](crate::Sender) can send: how a message is turned into
/// the bytes of one frame.
pub trait Encode {
    /// What [`Sender::send`](crate::Sender::send) takes a reference to: the
    /// type itself for zerocopy types and `[u8]`, the serialized type for
    /// `Postcard`.
    type Input: ?Sized;

    /// Encodes `msg` and hands its bytes to `write`, which puts them in the
    /// ring. An encoding that can fail returns [`Error::Invalid`] without
    /// calling `write`.
    fn encode<R>(msg: &Self::Input, write: impl FnOnce(&[u8]) -> R) -> Result<R, Error>;
}

/// A type a [`Receiver`](crate::Receiver) can receive: how the bytes of one
/// frame become a message.
pub trait Decode {
    /// What [`Receiver::recv`](crate::Receiver::recv) returns.
    type Output;

    /// Decodes one message. `frame` is the receiver's private copy of the
    /// frame's bytes, never a view of shared memory, so what is validated is
    /// what is used; the implementation may take the vector.
    ///
    /// # Errors
    ///
    /// A description of why the bytes are not a valid message; the receiver
    /// reports it as [`Error::BadMessage`].
    fn decode(frame: &mut Vec<u8>) -> Result<Self::Output, String>;
}

/// Bytes and every zerocopy type that can be viewed as bytes.
impl<T: ?Sized + IntoBytes + Immutable> Encode for T {
    type Input = T;

    #[inline]
    fn encode<R>(msg: &T, write: impl FnOnce(&[u8]) -> R) -> Result<R, Error> {
        Ok(write(msg.as_bytes()))
    }
}

/// Bytes: the frame itself, handed over without another copy.
impl Decode for [u8] {
    type Output = Vec<u8>;

    #[inline]
    fn decode(frame: &mut Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(core::mem::take(frame))
    }
}

/// Text: the frame must be UTF-8 (sent as a `str`, which is [`Encode`] as
/// bytes); anything else is an error, never a `String` holding invalid text.
impl Decode for str {
    type Output = String;

    fn decode(frame: &mut Vec<u8>) -> Result<String, String> {
        String::from_utf8(core::mem::take(frame)).map_err(|e| {
            format!(
                "a message of {} bytes is not UTF-8 text: {}",
                e.as_bytes().len(),
                e.utf8_error()
            )
        })
    }
}

/// zerocopy types: the frame must be exactly `size_of::<T>()` bytes and a
/// valid `T` (every field's bit pattern checked, as `TryFromBytes` defines).
impl<T: TryFromBytes + KnownLayout + Immutable> Decode for T {
    type Output = T;

    fn decode(frame: &mut Vec<u8>) -> Result<T, String> {
        T::try_read_from_bytes(frame).map_err(|_| {
            if frame.len() != core::mem::size_of::<T>() {
                format!(
                    "a message of {} bytes is not a {} ({} bytes)",
                    frame.len(),
                    core::any::type_name::<T>(),
                    core::mem::size_of::<T>()
                )
            } else {
                format!(
                    "the bytes are not a valid {}: a field holds a bit pattern its type does not allow",
                    core::any::type_name::<T>()
                )
            }
        })
    }
}

/// Messages of any serde type, encoded with [postcard]: use `Postcard<T>` as a
/// channel's message type. (Feature `serde`.)
///
/// [postcard]: https://docs.rs/postcard
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use svshm_channel::{Endpoint, Options, Postcard, Receiver, Sender};
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Job { id: u32, path: String }
///
/// let name = format!("doc-postcard-{}", std::process::id());
/// let n2 = name.clone();
/// let rx = std::thread::spawn(move || {
///     let mut rx = Receiver::<Postcard<Job>>::connect_typed(&Endpoint::name(n2), &Options::new())?;
///     rx.recv()
/// });
/// let mut tx = Sender::<Postcard<Job>>::connect_typed(&Endpoint::name(name), &Options::new())?;
/// tx.send(&Job { id: 7, path: "/tmp/x".into() })?;
/// tx.close()?;
/// assert_eq!(rx.join().unwrap()?, Some(Job { id: 7, path: "/tmp/x".into() }));
/// # }
/// # Ok::<(), svshm_channel::Error>(())
/// ```
#[cfg(feature = "serde")]
pub struct Postcard<T>(core::marker::PhantomData<fn(T) -> T>);

#[cfg(feature = "serde")]
impl<T: serde::Serialize> Encode for Postcard<T> {
    type Input = T;

    fn encode<R>(msg: &T, write: impl FnOnce(&[u8]) -> R) -> Result<R, Error> {
        let bytes = postcard::to_allocvec(msg)
            .map_err(|e| Error::Invalid(format!("cannot encode the message: {e}")))?;
        Ok(write(&bytes))
    }
}

#[cfg(feature = "serde")]
impl<T: serde::de::DeserializeOwned> Decode for Postcard<T> {
    type Output = T;

    fn decode(frame: &mut Vec<u8>) -> Result<T, String> {
        let (value, rest) = postcard::take_from_bytes(frame)
            .map_err(|e| format!("not a postcard {}: {e}", core::any::type_name::<T>()))?;
        if !rest.is_empty() {
            return Err(format!(
                "{} bytes left over after a postcard {}",
                rest.len(),
                core::any::type_name::<T>()
            ));
        }
        Ok(value)
    }
}
