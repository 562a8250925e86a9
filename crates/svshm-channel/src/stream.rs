//! The byte stream: [`StreamWriter`] (`io::Write`) and [`StreamReader`]
//! (`io::Read` + `io::BufRead`), with zero-copy chunks ([`WriteChunk`],
//! [`ReadChunk`]).

#![allow(unsafe_code)] // Chunks and fill_buf lend slices of the link's mapped ring.

use crate::error::{Error, Result, Role};
use crate::header::KIND_STREAM;
use crate::rendezvous::{Creator, Endpoint, Link, Options, connect};
use crate::ring::{Consumer, Mem, Producer, RawMem, WaitPolicy};
use std::io;
use std::time::Duration;

mod asynk;

/// The writing end of a byte stream.
///
/// ```
/// use std::io::{Read, Write};
/// use svshm_channel::{Endpoint, Options, StreamReader, StreamWriter};
/// let name = format!("doc-stream-{}", std::process::id());
/// let n2 = name.clone();
/// // Normally another process; either side may start first.
/// let reader = std::thread::spawn(move || {
///     let mut r = StreamReader::connect(&Endpoint::name(n2), &Options::new()).unwrap();
///     let mut s = String::new();
///     r.read_to_string(&mut s).unwrap();
///     s
/// });
/// let mut w = StreamWriter::connect(&Endpoint::name(name), &Options::new())?;
/// w.write_all(b"hello, reader")?;
/// w.close()?; // the reader gets the rest, then EOF (a drop without close: Aborted)
/// assert_eq!(reader.join().unwrap(), "hello, reader");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StreamWriter {
    /// The async registration: first, so that it is gone before the
    /// segment is detached.
    waiter: crate::asynk::Waiter,
    prod: Producer<RawMem>,
    closed: bool,
    link: Link,
}

impl StreamWriter {
    crate::rendezvous::endpoint_accessors!("reader");

    /// Connects the writing end: creates the channel or joins the reader that
    /// is waiting, then waits (up to the options' timeout) for the reader.
    pub fn connect(endpoint: &Endpoint, options: &Options) -> Result<StreamWriter> {
        StreamWriter::from_link(connect(endpoint, options, Role::Writer, KIND_STREAM)?)
    }

    /// Creates or joins the channel like [`connect`](Self::connect), but
    /// returns before the reader comes: the [`Pending`](crate::Pending)
    /// end knows its segment's id — hand it to the peer of an
    /// [`Endpoint::private`] channel — and [`wait`](crate::Pending::wait)s
    /// for the reader (up to the options' timeout).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), except the wait for the peer.
    pub fn open(endpoint: &Endpoint, options: &Options) -> Result<crate::Pending<StreamWriter>> {
        crate::pending::open(
            endpoint,
            options,
            Role::Writer,
            KIND_STREAM,
            StreamWriter::from_link,
        )
    }

    fn from_link(link: Link) -> Result<StreamWriter> {
        // SAFETY: the cursors and data live in `link`'s attachment, which the
        // writer owns and drops after `prod` (field order); we are the only
        // writer (our slot is claimed).
        let prod = unsafe { Producer::new(link.cursors(), link.mem(), link.capacity) }
            .map_err(|e| link.error(e, "connect"))?;
        Ok(StreamWriter {
            waiter: crate::asynk::Waiter::default(),
            prod,
            closed: false,
            link,
        })
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.prod.head()
    }

    fn policy(&self, timeout: Option<Duration>) -> WaitPolicy {
        self.link
            .policy(timeout.and_then(crate::rendezvous::deadline_after))
    }

    crate::queries::queue_queries!(prod, 1,
        len: "Bytes written and not yet read (published, not released by the reader).",
        empty: "Whether the reader has read everything written.",
        full: "Whether the ring has no free byte now.",
        closed: "Whether the reader has closed its end (or dropped it) or died: nothing written now would be read.");

    /// Before a write: fails once this end was shut down (an async
    /// `poll_shutdown`/`poll_close`), then as the link's preflight.
    fn preflight(&mut self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed { role: Role::Writer });
        }
        self.link.writer_preflight(&self.prod)
    }

    /// Waits until `want` bytes are free.
    fn wait_room(&mut self, want: u64) -> Result<()> {
        self.preflight()?;
        match self.prod.free(want) {
            Ok(f) if f >= want => Ok(()),
            Ok(_) => self
                .prod
                .wait_free(want, self.policy(None), self.link.liveness())
                .map_err(|e| self.link.error(e, "space in the ring")),
            Err(e) => Err(self.link.error(e, "space")),
        }
    }

    /// Writes some of `buf` (at least one byte, waiting for space if the ring is
    /// full) and publishes it. Returns the count. This is
    /// [`Write::write`](io::Write::write) with the channel's own [`Error`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the reader closed, [`Error::PeerDied`] if it
    /// died, [`Error::Corrupt`] if the ring broke the protocol.
    pub fn write_some(&mut self, buf: &[u8]) -> Result<usize> {
        if buf.is_empty() {
            self.preflight()?;
            return Ok(0);
        }
        self.wait_room(1)?;
        let free = self.prod.free(1).map_err(|e| self.link.error(e, "space"))?;
        let n = buf.len().min(free as usize);
        self.prod.put(&buf[..n]);
        self.prod.publish();
        Ok(n)
    }

    /// Zero-copy write: waits until `n` bytes of the ring are free and lends
    /// them as a [`WriteChunk`] — two slices, as the free space may wrap
    /// around the ring's end. Fill them, then [`commit`](WriteChunk::commit)
    /// what you wrote; dropping the chunk writes nothing.
    ///
    /// ```
    /// # use std::io::Read;
    /// # use svshm_channel::{Endpoint, Options, StreamReader, StreamWriter};
    /// # let name = format!("doc-chunk-{}", std::process::id());
    /// # let n2 = name.clone();
    /// # let reader = std::thread::spawn(move || {
    /// #     let mut r = StreamReader::connect(&Endpoint::name(n2), &Options::new()).unwrap();
    /// #     let mut s = Vec::new();
    /// #     r.read_to_end(&mut s).unwrap();
    /// #     s
    /// # });
    /// let mut w = StreamWriter::connect(&Endpoint::name(&name), &Options::new())?;
    /// let mut chunk = w.write_chunk(5)?;
    /// let (first, second) = chunk.as_mut_slices(); // second is empty unless it wraps
    /// let src = b"hello";
    /// first.copy_from_slice(&src[..first.len()]);
    /// second.copy_from_slice(&src[first.len()..]);
    /// chunk.commit_all(); // published: the reader may read it now
    /// w.close()?;
    /// # assert_eq!(reader.join().unwrap(), b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if `n` exceeds the ring's capacity; otherwise as
    /// [`Write::write`](io::Write::write): [`Error::Closed`] if the reader
    /// closed, [`Error::PeerDied`] if it died, [`Error::Corrupt`].
    pub fn write_chunk(&mut self, n: usize) -> Result<WriteChunk<'_>> {
        if n as u64 > self.prod.capacity() {
            return Err(Error::Invalid(format!(
                "a chunk of {n} bytes exceeds the ring's capacity of {}",
                self.prod.capacity()
            )));
        }
        self.wait_room(n as u64)?;
        Ok(self.chunk_of(n))
    }

    /// Zero-copy write of whatever fits: waits until at least one byte is
    /// free, and lends the free bytes, at most `max`, as a [`WriteChunk`].
    /// Suits a producer that fills what it gets, such as a `read` from a file
    /// into the chunk's first slice.
    ///
    /// # Errors
    ///
    /// As [`write_chunk`](Self::write_chunk).
    pub fn write_chunk_upto(&mut self, max: usize) -> Result<WriteChunk<'_>> {
        self.wait_room(1)?;
        let free = self.prod.free(1).map_err(|e| self.link.error(e, "space"))?;
        Ok(self.chunk_of(max.min(free as usize)))
    }

    /// The chunk of the next `n` free bytes (the caller made sure they are).
    fn chunk_of(&mut self, n: usize) -> WriteChunk<'_> {
        let (pos, contiguous) = self.prod.contiguous_free();
        let first = n.min(contiguous);
        WriteChunk {
            prod: &mut self.prod,
            pos,
            first,
            second: n - first,
        }
    }

    /// Ends the stream: the reader receives everything written, then EOF.
    ///
    /// Fails with [`Error::Closed`] or [`Error::PeerDied`] if the reader left
    /// with bytes still unread, so a successful close means everything written
    /// was read or is still there for a live reader. If an earlier call
    /// found the channel broken (the reader gone or closed, a corrupt ring),
    /// the end is marked aborted instead and `close` fails: a write that
    /// failed part-way never becomes a clean end.
    pub fn close(mut self) -> Result<()> {
        self.link.close_writer(&mut self.prod, &mut self.closed)
    }

    /// Ends the stream as cut short: the reader receives everything written so
    /// far, then an [`Error::Aborted`] error instead of end-of-file — for a
    /// writer that cannot deliver the rest (its own input failed, say) and
    /// must not let the reader take a truncated stream for a whole one.
    /// Dropping a writer without closing it does the same.
    ///
    /// ```
    /// # use std::io::{Read, Write};
    /// # use svshm_channel::{Endpoint, Error, Options, StreamReader, StreamWriter};
    /// # let name = format!("doc-abort-{}", std::process::id());
    /// # let n2 = name.clone();
    /// # let reader = std::thread::spawn(move || {
    /// #     let mut r = StreamReader::connect(&Endpoint::name(n2), &Options::new()).unwrap();
    /// #     let mut got = Vec::new();
    /// #     let e = r.read_to_end(&mut got).unwrap_err();
    /// #     (got, e.into_inner().unwrap().downcast::<Error>().unwrap().is_aborted())
    /// # });
    /// let mut w = StreamWriter::connect(&Endpoint::name(&name), &Options::new())?;
    /// w.write_all(b"first half")?;
    /// w.abort(); // the reader gets "first half", then Error::Aborted
    /// # assert_eq!(reader.join().unwrap(), (b"first half".to_vec(), true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn abort(mut self) {
        self.link
            .end_writer(&mut self.prod, &mut self.closed, crate::ring::ABORTED);
    }
}

impl io::Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.write_some(buf)?)
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write_some(buf)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Every write publishes; nothing is buffered.
        Ok(())
    }
}

/// Dropping without [`close`](StreamWriter::close) ends the stream as cut short
/// ([`abort`](StreamWriter::abort)): only an explicit, successful close tells the
/// reader that everything arrived.
impl Drop for StreamWriter {
    fn drop(&mut self) {
        self.waiter.cancel();
        self.link
            .end_writer(&mut self.prod, &mut self.closed, crate::ring::ABORTED);
    }
}

/// The reading end of a byte stream. See [`StreamWriter`] for an example.
pub struct StreamReader {
    /// The async registration: first, so that it is gone before the
    /// segment is detached.
    waiter: crate::asynk::Waiter,
    cons: Consumer<RawMem>,
    eof: bool,
    link: Link,
}

impl StreamReader {
    crate::rendezvous::endpoint_accessors!("writer");

    /// Connects the reading end: creates the channel or joins the writer that is
    /// waiting, then waits (up to the options' timeout) for the writer.
    pub fn connect(endpoint: &Endpoint, options: &Options) -> Result<StreamReader> {
        StreamReader::from_link(connect(endpoint, options, Role::Reader, KIND_STREAM)?)
    }

    /// Creates or joins the channel like [`connect`](Self::connect), but
    /// returns before the writer comes (see [`StreamWriter::open`]).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), except the wait for the peer.
    pub fn open(endpoint: &Endpoint, options: &Options) -> Result<crate::Pending<StreamReader>> {
        crate::pending::open(
            endpoint,
            options,
            Role::Reader,
            KIND_STREAM,
            StreamReader::from_link,
        )
    }

    fn from_link(link: Link) -> Result<StreamReader> {
        // SAFETY: as in StreamWriter::connect, for the single reader.
        let cons = unsafe { Consumer::new(link.cursors(), link.mem(), link.capacity) }
            .map_err(|e| link.error(e, "connect"))?;
        Ok(StreamReader {
            waiter: crate::asynk::Waiter::default(),
            cons,
            eof: false,
            link,
        })
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.cons.tail()
    }

    /// Waits for data. `Ok(false)` at end of stream.
    fn wait_data(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        match self.cons.available(1) {
            Ok(n) if n > 0 => return Ok(true),
            Ok(_) => {}
            Err(e) => return Err(self.link.error(e, "data")),
        }
        let policy = self.link.policy(None);
        let more = self
            .cons
            .wait_available(1, policy, self.link.liveness())
            .map_err(|e| self.link.error(e, "data"))?;
        self.eof = !more;
        Ok(more)
    }

    /// Reads up to `buf.len()` bytes, waiting for at least one. `Ok(0)`: end of
    /// stream (the writer closed and everything was read). This is
    /// [`Read::read`](io::Read::read) with the channel's own [`Error`].
    ///
    /// # Errors
    ///
    /// [`Error::PeerDied`] or [`Error::Aborted`] after everything the writer
    /// published was read, [`Error::Corrupt`] if the ring broke the protocol.
    pub fn read_some(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() || !self.wait_data()? {
            return Ok(0);
        }
        let avail = self
            .cons
            .available(1)
            .map_err(|e| self.link.error(e, "data"))?;
        let n = buf.len().min(avail as usize);
        self.cons.take(&mut buf[..n]);
        self.cons.publish_lazy();
        Ok(n)
    }

    /// Zero-copy read: waits for data and lends every byte readable now as a
    /// [`ReadChunk`] — two slices, as the data may wrap around the ring's end.
    /// An empty chunk means end of stream. [`consume`](ReadChunk::consume)
    /// what you used; dropping the chunk consumes nothing.
    ///
    /// ```
    /// # use std::io::Write;
    /// # use svshm_channel::{Endpoint, Options, StreamReader, StreamWriter};
    /// # let name = format!("doc-rchunk-{}", std::process::id());
    /// # let n2 = name.clone();
    /// # let writer = std::thread::spawn(move || {
    /// #     let mut w = StreamWriter::connect(&Endpoint::name(n2), &Options::new()).unwrap();
    /// #     w.write_all(b"hello").unwrap();
    /// #     w.close().unwrap();
    /// # });
    /// let mut r = StreamReader::connect(&Endpoint::name(&name), &Options::new())?;
    /// let mut got = Vec::new();
    /// loop {
    ///     let chunk = r.read_chunk()?;
    ///     if chunk.is_empty() {
    ///         break; // end of stream
    ///     }
    ///     let (first, second) = chunk.as_slices();
    ///     got.extend_from_slice(first);
    ///     got.extend_from_slice(second);
    ///     chunk.consume_all();
    /// }
    /// assert_eq!(got, b"hello");
    /// # writer.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Read::read`](io::Read::read): [`Error::PeerDied`] or
    /// [`Error::Aborted`] after everything the writer published was read,
    /// [`Error::Corrupt`].
    pub fn read_chunk(&mut self) -> Result<ReadChunk<'_>> {
        if !self.wait_data()? {
            return Ok(ReadChunk {
                cons: &mut self.cons,
                pos: 0,
                first: 0,
                second: 0,
            });
        }
        let avail = self
            .cons
            .available(1)
            .map_err(|e| self.link.error(e, "data"))? as usize;
        let (pos, contiguous) = self.cons.contiguous_available();
        let first = avail.min(contiguous);
        Ok(ReadChunk {
            cons: &mut self.cons,
            pos,
            first,
            second: avail - first,
        })
    }

    crate::queries::queue_queries!(cons, 1,
        len: "Bytes written and not yet read.",
        empty: "Whether no byte is waiting now.",
        full: "Whether the ring is full: the writer waits for this reader.",
        closed: "Whether the writer has closed its end (cleanly or not) or died. Bytes it wrote before may still be waiting to be read.");

    /// Closes the reading end: the writer's next write fails with
    /// [`Error::Closed`]. Dropping the reader does the same.
    pub fn close(self) {}
}

impl io::Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_some(buf)?)
    }
}

/// `fill_buf` returns the readable bytes up to the ring's end, in place. Why a
/// reference into shared memory is sound here, and how to avoid one, is said
/// at [`ReadChunk`].
impl io::BufRead for StreamReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.wait_data()? {
            return Ok(&[]);
        }
        let (pos, len) = self.cons.contiguous_available();
        // SAFETY: [pos, pos + len) holds published, unconsumed bytes (see
        // `ReadChunk`); the borrow of `self` keeps them unconsumed.
        Ok(unsafe { ring_slice(&self.cons, pos, len) })
    }

    fn consume(&mut self, amt: usize) {
        let (_, len) = self.cons.contiguous_available();
        self.cons.advance(amt.min(len) as u64);
        self.cons.publish_lazy();
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        self.waiter.cancel();
        self.cons.close();
        self.link.mark_closed();
    }
}

/// Panics unless `n` bytes lie within a chunk of `len`: publishing more than
/// was lent would hand the peer bytes it never wrote, or bytes it still owns.
fn within_chunk(verb: &str, n: usize, len: usize) {
    assert!(n <= len, "{verb} of {n} bytes exceeds the {len} lent");
}

/// A view of `len` bytes of the consumer's ring at `pos`.
///
/// # Safety
///
/// `[pos, pos + len)` must lie in the data area and hold published bytes not
/// yet released, for as long as the returned slice lives.
unsafe fn ring_slice(cons: &Consumer<RawMem>, pos: usize, len: usize) -> &[u8] {
    assert!(pos as u64 + len as u64 <= cons.capacity());
    // SAFETY: in the data area (checked above), which stays mapped while the
    // consumer lives; the bytes are the consumer's per the caller.
    unsafe { core::slice::from_raw_parts(cons.mem().at(pos), len) }
}

/// Free bytes of the ring lent for writing in place; see
/// [`StreamWriter::write_chunk`]. [`commit`](Self::commit) publishes what
/// was written; dropping the chunk writes nothing.
///
/// The chunk borrows the writer, so misuse does not compile: no other write
/// can run while a chunk is out, and nothing can be written after `close`.
///
/// ```compile_fail
/// # use std::io::Write;
/// # fn f(mut w: svshm_channel::StreamWriter) -> std::io::Result<()> {
/// let chunk = w.write_chunk(4)?;
/// w.write_all(b"x")?; // error: `w` is borrowed by the chunk
/// chunk.commit_all();
/// # Ok(()) }
/// ```
///
/// ```compile_fail
/// # use std::io::Write;
/// # fn f(mut w: svshm_channel::StreamWriter) -> std::io::Result<()> {
/// w.close()?;
/// w.write_all(b"x")?; // error: `w` was moved by `close`
/// # Ok(()) }
/// ```
///
/// # Why a reference into shared memory is sound here
///
/// The bytes lent are free space, which the ring protocol gives to this
/// writer alone until it commits them: the reader reads only what was
/// committed and never writes the ring. A reader that breaks the protocol (a
/// hostile process with write access to the segment) can change only these
/// bytes — the data this writer is about to send it — and cannot reach this
/// process's private memory. To avoid even that, for instance on a channel
/// opened with another user ([`Options::owner`]), write with
/// [`Write::write`](io::Write::write), which copies from private memory.
pub struct WriteChunk<'a> {
    prod: &'a mut Producer<RawMem>,
    pos: usize,
    first: usize,
    second: usize,
}

impl WriteChunk<'_> {
    /// The lent bytes: up to the ring's end, then from its start.
    pub fn as_mut_slices(&mut self) -> (&mut [u8], &mut [u8]) {
        let base = self.prod.mem().at(0);
        // SAFETY: [pos, pos + first) and [0, second) are disjoint ranges of
        // free space in the data area (`contiguous_free` and `wait_room`),
        // which the protocol gives to this writer until it commits (see the
        // type's docs); `&mut self` makes these the only views.
        unsafe {
            (
                core::slice::from_raw_parts_mut(base.add(self.pos), self.first),
                core::slice::from_raw_parts_mut(base, self.second),
            )
        }
    }

    /// Bytes lent.
    pub fn len(&self) -> usize {
        self.first + self.second
    }

    /// Whether no byte is lent (a chunk of 0 bytes was asked for).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Publishes the first `n` bytes lent (in the order of
    /// [`as_mut_slices`](Self::as_mut_slices)) to the reader.
    ///
    /// # Panics
    ///
    /// If `n` exceeds [`len`](Self::len).
    pub fn commit(self, n: usize) {
        within_chunk("commit", n, self.len());
        self.prod.advance(n as u64);
        self.prod.publish();
    }

    /// Publishes every byte lent.
    pub fn commit_all(self) {
        let n = self.len();
        self.commit(n);
    }
}

/// Readable bytes of the ring lent in place; see [`StreamReader::read_chunk`].
/// [`consume`](Self::consume) gives what was used back to the writer;
/// dropping the chunk consumes nothing.
///
/// # Why a reference into shared memory is sound here
///
/// The bytes lent were published by the writer, and the ring protocol gives
/// them to this reader alone until it consumes them: the writer does not
/// write them again before. A writer that breaks the protocol (a hostile
/// process with write access to the segment) can change only these bytes —
/// the data it sends — while they are looked at, and cannot reach this
/// process's private memory. So treat them as untrusted input: copy what you
/// validate before relying on it, and for a channel opened with another user
/// ([`Options::owner`]) prefer [`Read::read`](io::Read::read), which copies
/// into private memory first.
pub struct ReadChunk<'a> {
    cons: &'a mut Consumer<RawMem>,
    pos: usize,
    first: usize,
    second: usize,
}

impl ReadChunk<'_> {
    /// The lent bytes: up to the ring's end, then from its start.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        // SAFETY: [pos, pos + first) and [0, second) hold published bytes
        // not yet consumed (`read_chunk` took them from the validated head),
        // the reader's until consumed; the chunk borrows the reader.
        unsafe {
            (
                ring_slice(self.cons, self.pos, self.first),
                ring_slice(self.cons, 0, self.second),
            )
        }
    }

    /// Bytes lent.
    pub fn len(&self) -> usize {
        self.first + self.second
    }

    /// Whether no byte is lent: the end of the stream.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the lent bytes into `dst` (at most `dst.len()`), without
    /// consuming them; returns the count.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len());
        let a = n.min(self.first);
        self.cons.mem().read(self.pos, &mut dst[..a]);
        self.cons.mem().read(0, &mut dst[a..n]);
        n
    }

    /// Gives the first `n` bytes lent back to the writer.
    ///
    /// # Panics
    ///
    /// If `n` exceeds [`len`](Self::len).
    pub fn consume(self, n: usize) {
        within_chunk("consume", n, self.len());
        self.cons.advance(n as u64);
        self.cons.publish_lazy();
    }

    /// Gives every byte lent back to the writer.
    pub fn consume_all(self) {
        let n = self.len();
        self.consume(n);
    }
}

crate::select::waitable!([] StreamWriter, prod, |w, need| w.prod.room_now() >= need as u64);
crate::select::waitable!([] StreamReader, cons, |r, _need| r.eof || r.cons.queued() > 0);
