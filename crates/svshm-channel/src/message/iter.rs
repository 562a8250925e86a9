//! Iterating over a [`Receiver`]'s messages: blocking, non-blocking, owning.

use super::Receiver;
use crate::codec::Decode;
use crate::error::Result;
use crate::try_error::TryRecvError;

/// A blocking iterator over a [`Receiver`]'s messages; see [`Receiver::iter`].
pub struct Iter<'a, T: ?Sized + Decode = [u8]> {
    pub(super) rx: &'a mut Receiver<T>,
    pub(super) done: bool,
}

impl<T: ?Sized + Decode> Iterator for Iter<'_, T> {
    type Item = Result<T::Output>;
    fn next(&mut self) -> Option<Self::Item> {
        next_blocking(self.rx, &mut self.done)
    }
}

impl<T: ?Sized + Decode> core::iter::FusedIterator for Iter<'_, T> {}

/// The next message of a blocking iteration; `done` once it ended.
fn next_blocking<T: ?Sized + Decode>(
    rx: &mut Receiver<T>,
    done: &mut bool,
) -> Option<Result<T::Output>> {
    if *done {
        return None;
    }
    let r = rx.recv().transpose();
    *done = !matches!(r, Some(Ok(_)));
    r
}

/// A non-blocking iterator over the messages waiting now; see
/// [`Receiver::try_iter`].
pub struct TryIter<'a, T: ?Sized + Decode = [u8]> {
    pub(super) rx: &'a mut Receiver<T>,
    pub(super) done: bool,
}

impl<T: ?Sized + Decode> Iterator for TryIter<'_, T> {
    type Item = Result<T::Output>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.rx.try_recv() {
            Ok(m) => Some(Ok(m)),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                self.done = true;
                None
            }
            Err(TryRecvError::Failed(e)) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// An owning blocking iterator over a [`Receiver`]'s messages (`for msg in
/// receiver`); the receiver closes when it is dropped.
pub struct IntoIter<T: ?Sized + Decode = [u8]> {
    rx: Receiver<T>,
    pub(super) done: bool,
}

impl<T: ?Sized + Decode> Iterator for IntoIter<T> {
    type Item = Result<T::Output>;
    fn next(&mut self) -> Option<Self::Item> {
        next_blocking(&mut self.rx, &mut self.done)
    }
}

impl<T: ?Sized + Decode> core::iter::FusedIterator for IntoIter<T> {}

impl<T: ?Sized + Decode> IntoIterator for Receiver<T> {
    type Item = Result<T::Output>;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter {
            rx: self,
            done: false,
        }
    }
}

impl<'a, T: ?Sized + Decode> IntoIterator for &'a mut Receiver<T> {
    type Item = Result<T::Output>;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
