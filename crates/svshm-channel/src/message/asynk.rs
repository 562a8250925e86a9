//! Async sends and receives of whole messages, for any executor: the
//! `poll_*` methods, the futures over them, and (with the `futures` feature)
//! `Stream` for a [`Receiver`].

use super::{Receiver, Sender, Stop};
use crate::asynk::{AsyncEnd, Waiter, poll_op};
use crate::codec::{Decode, Encode};
use crate::error::Result;
use crate::rendezvous::Link;
use crate::ring::{Mem, WaitPolicy};
use core::future::Future;
use core::pin::Pin;
use std::task::{Context, Poll};

impl<T: ?Sized> AsyncEnd for Receiver<T> {
    fn parts(&mut self) -> (&mut Waiter, &Link, usize) {
        let addr = self.cons.wait_word().as_ptr() as usize;
        (&mut self.waiter, &self.link, addr)
    }
}

impl<T: ?Sized> AsyncEnd for Sender<T> {
    fn parts(&mut self) -> (&mut Waiter, &Link, usize) {
        let addr = self.prod.wait_word().as_ptr() as usize;
        (&mut self.waiter, &self.link, addr)
    }
}

/// What a non-waiting attempt gives [`poll_op`]: the result, or `Err(need)`
/// if it would wait.
fn attempt<R>(r: Result<R, Stop>, need: usize) -> Result<Result<R>, usize> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(Stop::Fail(e)) => Ok(Err(e)),
        Err(Stop::Timeout) => Err(need),
    }
}

impl<T: ?Sized + Decode> Receiver<T> {
    /// Polls for the next message: what [`recv_async`](Self::recv_async)'s
    /// future does, for code that implements a future or stream of its own.
    /// `Ready` with what [`recv`](Self::recv) would return; `Pending` after
    /// registering `cx`'s waker, which is woken when a message may be
    /// there, the sender closed or died, or spuriously.
    ///
    /// A poll that must wait spins first per the channel's
    /// [`Wait`](crate::Wait): `Adaptive` for its spin budget but at most 20 µs (a
    /// poll holds its executor thread), `Block` not at all, and `Spin` for
    /// 20 µs, then it wakes its task at once and returns `Pending` without
    /// sleeping (so the task keeps its core busy, as a spinning receiver
    /// does, while the executor can still run other tasks).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    ///
    /// A message is taken only by a poll that returns it: a poll that
    /// returns `Pending` consumed nothing. The registration is kept in the
    /// receiver, replaced by the next poll and removed when the receiver is
    /// dropped.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T::Output>>> {
        poll_op(self, cx, |rx| {
            attempt(rx.recv_policy(WaitPolicy::none()), 0)
        })
    }

    /// Receives the next message asynchronously: the future resolves to
    /// what [`recv`](Self::recv) returns — `Ok(Some(msg))`, or `Ok(None)`
    /// once the sender closed cleanly and every message was received. It
    /// works with any executor: no thread per channel, no runtime; one
    /// process-wide thread sleeps in `futex_waitv(2)` on the wait words of
    /// every endpoint that waits and wakes their tasks (see
    /// docs/ARCHITECTURE.md, "Async: one waker thread"). The waiting policy is
    /// [`poll_recv`](Self::poll_recv)'s.
    ///
    /// ```
    /// use svshm_channel::{Endpoint, Options, Receiver, Sender};
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     // The smallest executor: park until woken. Any other works too.
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl std::task::Wake for Unpark {
    /// #         fn wake(self: std::sync::Arc<Self>) { self.0.unpark() }
    /// #     }
    /// #     let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// let name = format!("doc-recv-async-{}", std::process::id());
    /// let n2 = name.clone();
    /// let tx = std::thread::spawn(move || -> svshm_channel::Result<()> {
    ///     let mut tx = Sender::connect(&Endpoint::name(n2), &Options::new())?;
    ///     block_on(tx.send_async(b"ping"))?;
    ///     tx.close()
    /// });
    /// let mut rx = Receiver::connect(&Endpoint::name(name), &Options::new())?;
    /// assert_eq!(block_on(rx.recv_async())?, Some(b"ping".to_vec()));
    /// assert_eq!(block_on(rx.recv_async())?, None); // the sender's clean close
    /// # tx.join().unwrap()?;
    /// # Ok::<(), svshm_channel::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv): [`Error::PeerDied`](crate::Error::PeerDied)
    /// if the sender died (noticed at once where the process-wide watcher
    /// follows it: its exit wakes the waker thread; else within a 20 ms
    /// probe slice; a sender that called exec(2), within about five
    /// seconds),
    /// [`Error::Aborted`](crate::Error::Aborted), both after every message it
    /// sent; [`Error::BadMessage`](crate::Error::BadMessage),
    /// [`Error::Corrupt`](crate::Error::Corrupt).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future before it completes (in a
    /// `select!`, on a timeout) loses no message; the next receive gets it.
    /// The drop removes the future's registration with the waker thread.
    pub fn recv_async(&mut self) -> impl Future<Output = Result<Option<T::Output>>> + '_ {
        Recv { rx: self }
    }
}

impl Receiver<[u8]> {
    /// Polls for the next message, received into `buf` (cleared first)
    /// reusing its allocation: [`recv_into`](Self::recv_into) as a poll.
    /// See [`poll_recv`](Self::poll_recv).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    ///
    /// As [`poll_recv`](Self::poll_recv): `buf` is changed only by a poll
    /// that returns `Ready(Ok(Some(_)))`.
    pub fn poll_recv_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<Result<Option<usize>>> {
        poll_op(self, cx, |rx| {
            let frame = match rx.next_frame(WaitPolicy::none()) {
                Ok(f) => f,
                Err(e) => return attempt(Err(e), 0),
            };
            let Some((pos, len)) = frame else {
                return Ok(Ok(None));
            };
            buf.clear();
            buf.resize(len, 0);
            rx.cons.mem().read(pos, buf);
            rx.finish_frame(len);
            Ok(Ok(Some(len)))
        })
    }

    /// Receives the next message into `buf` (cleared first) asynchronously,
    /// reusing its allocation: [`recv_into`](Self::recv_into) as a future,
    /// resolving to `Ok(Some(len))` or `Ok(None)` at the end.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`recv_async`](Self::recv_async): a future dropped
    /// before it completes took no message and left `buf` as it was.
    pub fn recv_into_async<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
    ) -> impl Future<Output = Result<Option<usize>>> + 'a {
        RecvInto { rx: self, buf }
    }
}

impl<T: ?Sized + Encode> Sender<T> {
    /// Polls to send `msg`: what [`send_async`](Self::send_async)'s future
    /// does. `Ready` with what [`send`](Self::send) would return once the
    /// message is sent (or failed); `Pending` after registering `cx`'s
    /// waker, which is woken when room may have come, the receiver closed
    /// or died, or spuriously. Waiting spins first as
    /// [`Receiver::poll_recv`] says.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    ///
    /// # Cancel safety
    ///
    /// A message is sent whole by the poll that returns `Ready(Ok(()))`, or
    /// not at all: nothing is written to the ring by a poll that returns
    /// `Pending`.
    pub fn poll_send(&mut self, cx: &mut Context<'_>, msg: &T::Input) -> Poll<Result<()>> {
        poll_op(self, cx, |tx| {
            let mut len = 0;
            let r = tx.send_with_len(msg, WaitPolicy::none(), &mut len);
            attempt(r, len)
        })
    }

    /// Sends `msg` asynchronously, waiting for room without blocking the
    /// thread; see [`Receiver::recv_async`] for how it waits and for an
    /// example.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send): [`Error::Closed`](crate::Error::Closed) if
    /// the receiver closed its end, [`Error::PeerDied`](crate::Error::PeerDied)
    /// if it died, [`Error::MessageTooLarge`](crate::Error::MessageTooLarge),
    /// [`Error::Corrupt`](crate::Error::Corrupt).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: if the future is dropped before it completes, nothing
    /// was sent (a message is published whole, in the poll that completes
    /// the future). Send it again to send it.
    pub fn send_async<'a>(
        &'a mut self,
        msg: &'a T::Input,
    ) -> impl Future<Output = Result<()>> + 'a {
        Send { tx: self, msg }
    }
}

/// [`Receiver::recv_async`]'s future.
struct Recv<'a, T: ?Sized> {
    rx: &'a mut Receiver<T>,
}

impl<T: ?Sized + Decode> Future for Recv<'_, T> {
    type Output = Result<Option<T::Output>>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().rx.poll_recv(cx)
    }
}

impl<T: ?Sized> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        self.rx.waiter.cancel();
    }
}

/// [`Receiver::recv_into_async`]'s future.
struct RecvInto<'a> {
    rx: &'a mut Receiver<[u8]>,
    buf: &'a mut Vec<u8>,
}

impl Future for RecvInto<'_> {
    type Output = Result<Option<usize>>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.rx.poll_recv_into(cx, this.buf)
    }
}

impl Drop for RecvInto<'_> {
    fn drop(&mut self) {
        self.rx.waiter.cancel();
    }
}

/// [`Sender::send_async`]'s future.
struct Send<'a, T: ?Sized + Encode> {
    tx: &'a mut Sender<T>,
    msg: &'a T::Input,
}

impl<T: ?Sized + Encode> Future for Send<'_, T> {
    type Output = Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.tx.poll_send(cx, this.msg)
    }
}

impl<T: ?Sized + Encode> Drop for Send<'_, T> {
    fn drop(&mut self) {
        self.tx.waiter.cancel();
    }
}

/// The messages as a stream, up to the sender's clean close: `Ok(msg)`
/// items, then the end; an error is yielded once and ends the stream (as
/// [`Receiver::iter`] does). Polls as [`Receiver::poll_recv`] does.
///
/// Cancel safety: `poll_next` takes a message only when it yields it, so
/// dropping a `next()` future loses nothing.
#[cfg(feature = "futures")]
impl<T: ?Sized + Decode> futures_core::Stream for Receiver<T> {
    type Item = Result<T::Output>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.waiter.ended {
            return Poll::Ready(None);
        }
        let r = std::task::ready!(this.poll_recv(cx)).transpose();
        this.waiter.ended = !matches!(r, Some(Ok(_)));
        Poll::Ready(r)
    }
}

#[cfg(feature = "futures")]
impl<T: ?Sized + Decode> futures_core::FusedStream for Receiver<T> {
    fn is_terminated(&self) -> bool {
        self.waiter.ended
    }
}
