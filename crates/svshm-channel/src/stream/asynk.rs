//! Async reads and writes of the byte stream, for any executor: the
//! `poll_*` methods, and with the `tokio` or `futures` feature those crates'
//! `AsyncRead` / `AsyncWrite` over them.

use super::{StreamReader, StreamWriter};
use crate::asynk::{AsyncEnd, Waiter, poll_op};
use crate::error::Result;
use crate::rendezvous::Link;
use crate::ring::{RingError, WaitPolicy};
use core::future::Future;
use core::pin::Pin;
use std::task::{Context, Poll};

impl AsyncEnd for StreamReader {
    fn parts(&mut self) -> (&mut Waiter, &Link, usize) {
        let addr = self.cons.wait_word().as_ptr() as usize;
        (&mut self.waiter, &self.link, addr)
    }
}

impl AsyncEnd for StreamWriter {
    fn parts(&mut self) -> (&mut Waiter, &Link, usize) {
        let addr = self.prod.wait_word().as_ptr() as usize;
        (&mut self.waiter, &self.link, addr)
    }
}

impl StreamReader {
    /// Whether data is there without waiting: `Some(true)`, `Some(false)`
    /// at the end of the stream, `None` if a read would wait.
    fn try_data(&mut self) -> Result<Option<bool>> {
        if self.eof {
            return Ok(Some(false));
        }
        match self.cons.available(1) {
            Ok(n) if n > 0 => return Ok(Some(true)),
            Ok(_) => {}
            Err(e) => return Err(self.link.error(e, "data")),
        }
        let r = self
            .cons
            .wait_available(1, WaitPolicy::none(), self.link.liveness());
        match r {
            Ok(more) => {
                self.eof = !more;
                Ok(Some(more))
            }
            Err(RingError::Timeout) => {
                // A polling reader must still learn that the writer is gone,
                // after everything it published.
                if !self.link.peer_gone_rate_limited() {
                    return Ok(None);
                }
                match self.cons.available(1) {
                    Ok(n) if n > 0 => Ok(Some(true)),
                    Ok(_) => Err(self.link.error(RingError::PeerDied, "data")),
                    Err(e) => Err(self.link.error(e, "data")),
                }
            }
            Err(e) => Err(self.link.error(e, "data")),
        }
    }

    /// Polls to read up to `buf.len()` bytes: [`read_some`](Self::read_some)
    /// as a poll, for any executor. `Ready(Ok(0))` at the end of the stream
    /// (or for an empty `buf`); `Pending` after registering `cx`'s waker,
    /// which is woken when data may be there, the writer closed or died, or
    /// spuriously. Waiting spins first as
    /// [`Receiver::poll_recv`](crate::Receiver::poll_recv) says. The
    /// `tokio` and `futures` features implement their `AsyncRead` with it.
    ///
    /// # Errors
    ///
    /// As [`read_some`](Self::read_some): [`Error::PeerDied`](crate::Error::PeerDied) or
    /// [`Error::Aborted`](crate::Error::Aborted) after everything the writer published was read,
    /// [`Error::Corrupt`](crate::Error::Corrupt).
    ///
    /// # Cancel safety
    ///
    /// Bytes are consumed only by a poll that returns them: a poll that
    /// returns `Pending` read nothing, so dropping a read future loses no
    /// data.
    pub fn poll_read_some(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        poll_op(self, cx, |r| {
            match r.try_data() {
                Ok(Some(true)) => {}
                Ok(Some(false)) => return Ok(Ok(0)),
                Ok(None) => return Err(0),
                Err(e) => return Ok(Err(e)),
            }
            let avail = match r.cons.available(1) {
                Ok(a) => a,
                Err(e) => return Ok(Err(r.link.error(e, "data"))),
            };
            let n = buf.len().min(avail as usize);
            r.cons.take(&mut buf[..n]);
            r.cons.publish_lazy();
            Ok(Ok(n))
        })
    }
}

impl StreamReader {
    /// Reads up to `buf.len()` bytes asynchronously, waiting for at least
    /// one: [`read_some`](Self::read_some) as a future, for any executor
    /// (no feature needed; with `tokio` or `futures` the stream is also
    /// their `AsyncRead`). Resolves to the count, 0 at the end of the
    /// stream. Waits as [`poll_read_some`](Self::poll_read_some) says.
    ///
    /// # Errors
    ///
    /// As [`read_some`](Self::read_some).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a future dropped before it completes read nothing.
    pub fn read_some_async<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = Result<usize>> + 'a {
        ReadSome { r: self, buf }
    }
}

impl StreamWriter {
    /// Writes some of `buf` asynchronously (at least one byte, once there
    /// is room): [`write_some`](Self::write_some) as a future, for any
    /// executor (with `tokio` or `futures` the stream is also their
    /// `AsyncWrite`). Resolves to the count written. Waits as
    /// [`poll_write_some`](Self::poll_write_some) says.
    ///
    /// # Errors
    ///
    /// As [`write_some`](Self::write_some).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a future dropped before it completes wrote nothing.
    /// (A loop of these that is dropped part-way has written what the
    /// completed ones returned: [`bytes_written`](Self::bytes_written)
    /// tells.)
    pub fn write_some_async<'a>(
        &'a mut self,
        buf: &'a [u8],
    ) -> impl Future<Output = Result<usize>> + 'a {
        WriteSome { w: self, buf }
    }

    /// Polls to write some of `buf` (at least one byte once there is room)
    /// and publish it: [`write_some`](Self::write_some) as a poll, for any
    /// executor. `Pending` after registering `cx`'s waker, which is woken
    /// when room may have come, the reader closed or died, or spuriously.
    /// Waiting spins first as
    /// [`Receiver::poll_recv`](crate::Receiver::poll_recv) says. The
    /// `tokio` and `futures` features implement their `AsyncWrite` with it.
    ///
    /// # Errors
    ///
    /// As [`write_some`](Self::write_some): [`Error::Closed`](crate::Error::Closed) if the reader
    /// closed (or, with `role` [`Role::Writer`](crate::Role::Writer), if this end was shut down
    /// with [`poll_close`](Self::poll_close)), [`Error::PeerDied`](crate::Error::PeerDied),
    /// [`Error::Corrupt`](crate::Error::Corrupt).
    ///
    /// # Cancel safety
    ///
    /// Bytes are written only by a poll that returns their count: a poll
    /// that returns `Pending` wrote nothing.
    pub fn poll_write_some(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(self.preflight().map(|()| 0));
        }
        poll_op(self, cx, |w| {
            if let Err(e) = w.preflight() {
                return Ok(Err(e));
            }
            let free = match w.prod.free(1) {
                Ok(f) => f,
                Err(e) => return Ok(Err(w.link.error(e, "space"))),
            };
            if free == 0 {
                let r = w.prod.wait_free(1, WaitPolicy::none(), w.link.liveness());
                match r {
                    Ok(()) => {}
                    Err(RingError::Timeout) => return Err(1),
                    Err(e) => return Ok(Err(w.link.error(e, "space in the ring"))),
                }
            }
            let free = match w.prod.free(1) {
                Ok(f) => f,
                Err(e) => return Ok(Err(w.link.error(e, "space"))),
            };
            let n = buf.len().min(free as usize);
            w.prod.put(&buf[..n]);
            w.prod.publish();
            Ok(Ok(n))
        })
    }

    /// Ends the stream cleanly, as [`close`](Self::close) does, but in
    /// place, for `AsyncWrite::poll_shutdown` (tokio) and `poll_close`
    /// (futures): it never waits, so it is always `Ready`. After it every
    /// write fails with [`Error::Closed`](crate::Error::Closed) (`role` [`Role::Writer`](crate::Role::Writer)); a
    /// second call returns `Ok(())` at once.
    ///
    /// # Errors
    ///
    /// As [`close`](Self::close): [`Error::Closed`](crate::Error::Closed) or [`Error::PeerDied`](crate::Error::PeerDied)
    /// if the reader left with bytes unread, [`Error::Invalid`](crate::Error::Invalid) if an
    /// earlier call found the channel broken (then the end is marked
    /// aborted).
    ///
    /// # Cancel safety
    ///
    /// It completes in one poll.
    pub fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.waiter.cancel();
        if self.closed {
            return Poll::Ready(Ok(()));
        }
        Poll::Ready(self.link.close_writer(&mut self.prod, &mut self.closed))
    }
}

/// A poll's result with the channel's error as an `io::Error`.
#[cfg(any(feature = "tokio", feature = "futures"))]
fn io_result<T>(r: Poll<Result<T>>) -> Poll<std::io::Result<T>> {
    r.map(|r| r.map_err(std::io::Error::from))
}

/// tokio's `AsyncRead` over [`StreamReader::poll_read_some`]: `Ok(())`
/// with nothing filled is the end of the stream. Cancel-safe: a read future
/// dropped before it completes consumed nothing.
///
/// ```
/// use svshm_channel::{Endpoint, Options, StreamReader, StreamWriter};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = format!("doc-tokio-{}", std::process::id());
/// let n2 = name.clone();
/// // Connecting waits for the peer (normally another process): off the runtime.
/// let w = tokio::task::spawn_blocking(move || {
///     StreamWriter::connect(&Endpoint::name(n2), &Options::new())
/// });
/// let mut r = tokio::task::spawn_blocking(move || {
///     StreamReader::connect(&Endpoint::name(name), &Options::new())
/// })
/// .await??;
/// let mut w = w.await??;
/// let writing = tokio::spawn(async move {
///     w.write_all(b"hello, tokio").await?;
///     w.shutdown().await // the clean end: the reader gets EOF
/// });
/// let mut got = String::new();
/// r.read_to_string(&mut got).await?;
/// assert_eq!(got, "hello, tokio");
/// writing.await??;
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "tokio")]
impl tokio::io::AsyncRead for StreamReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let dst = buf.initialize_unfilled();
        let n = std::task::ready!(io_result(this.poll_read_some(cx, dst)))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// tokio's `AsyncWrite` over [`StreamWriter::poll_write_some`]:
/// `poll_flush` is `Ready` at once (every write publishes; nothing is
/// buffered), `poll_shutdown` is [`StreamWriter::poll_close`], a clean end
/// after which writes fail. Cancel-safe: a write future dropped before it
/// completes wrote nothing.
#[cfg(feature = "tokio")]
impl tokio::io::AsyncWrite for StreamWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        io_result(self.get_mut().poll_write_some(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        io_result(self.get_mut().poll_close(cx))
    }
}

/// The `futures` crate's `AsyncRead` over [`StreamReader::poll_read_some`]:
/// `Ok(0)` is the end of the stream. Cancel-safe, as for tokio's.
#[cfg(feature = "futures")]
impl futures_io::AsyncRead for StreamReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        io_result(self.get_mut().poll_read_some(cx, buf))
    }
}

/// The `futures` crate's `AsyncWrite` over
/// [`StreamWriter::poll_write_some`]: `poll_flush` is `Ready` at once,
/// `poll_close` is [`StreamWriter::poll_close`], a clean end after which
/// writes fail. Cancel-safe, as for tokio's.
#[cfg(feature = "futures")]
impl futures_io::AsyncWrite for StreamWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        io_result(self.get_mut().poll_write_some(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        io_result(StreamWriter::poll_close(self.get_mut(), cx))
    }
}

/// [`StreamReader::read_some_async`]'s future.
struct ReadSome<'a> {
    r: &'a mut StreamReader,
    buf: &'a mut [u8],
}

impl Future for ReadSome<'_> {
    type Output = Result<usize>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.r.poll_read_some(cx, this.buf)
    }
}

impl Drop for ReadSome<'_> {
    fn drop(&mut self) {
        self.r.waiter.cancel();
    }
}

/// [`StreamWriter::write_some_async`]'s future.
struct WriteSome<'a> {
    w: &'a mut StreamWriter,
    buf: &'a [u8],
}

impl Future for WriteSome<'_> {
    type Output = Result<usize>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.w.poll_write_some(cx, this.buf)
    }
}

impl Drop for WriteSome<'_> {
    fn drop(&mut self) {
        self.w.waiter.cancel();
    }
}
