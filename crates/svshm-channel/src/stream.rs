#![allow(unsafe_code)] // Rings over the link's mapped memory; reserve/peek lend slices of it.
//! The byte stream: [`StreamWriter`] (`io::Write`) and [`StreamReader`]
//! (`io::Read` + `io::BufRead`), with zero-copy `reserve`/`commit` and
//! `peek`/`consume`.

use crate::error::{Error, Result, Role};
use crate::header::KIND_STREAM;
use crate::rendezvous::{Creator, Endpoint, Link, Options, connect};
use crate::ring::{Consumer, Producer, RawMem, WaitPolicy};
use std::io;
use std::time::Duration;

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
    prod: Producer<RawMem>,
    /// Bytes handed out by `reserve` and not yet committed.
    reserved: usize,
    closed: bool,
    link: Link,
}

impl StreamWriter {
    crate::rendezvous::endpoint_accessors!("reader");

    /// Connects the writing end: creates the channel or joins the reader that
    /// is waiting, then waits (up to the options' timeout) for the reader.
    pub fn connect(endpoint: &Endpoint, options: &Options) -> Result<StreamWriter> {
        let link = connect(endpoint, options, Role::Writer, KIND_STREAM)?;
        // SAFETY: the cursors and data live in `link`'s attachment, which the
        // writer owns and drops after `prod` (field order); we are the only
        // writer (our slot is claimed).
        let prod = unsafe { Producer::new(link.cursors(), link.mem(), link.capacity) }
            .map_err(|e| link.error(e, "connect"))?;
        Ok(StreamWriter {
            prod,
            reserved: 0,
            closed: false,
            link,
        })
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.prod.head()
    }

    fn policy(&self, timeout: Option<Duration>) -> WaitPolicy {
        WaitPolicy {
            wait: self.link.wait,
            deadline: timeout.and_then(crate::rendezvous::deadline_after),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Invalid("the writer was closed".into()));
        }
        Ok(())
    }

    /// Writes some of `buf` (at least one byte, waiting for space if the ring is
    /// full) and publishes it. Returns the count.
    pub fn write_some(&mut self, buf: &[u8]) -> Result<usize> {
        self.check_open()?;
        // A copying write ends any zero-copy reservation.
        self.reserved = 0;
        self.link.writer_preflight(&self.prod)?;
        if buf.is_empty() {
            return Ok(0);
        }
        let policy = self.policy(None);
        let free = match self.prod.free(1) {
            Ok(f) if f > 0 => f,
            Ok(_) => {
                self.prod
                    .wait_free(1, policy, self.link.liveness())
                    .map_err(|e| self.link.error(e, "space in the ring"))?;
                self.prod.free(1).map_err(|e| self.link.error(e, "space"))?
            }
            Err(e) => return Err(self.link.error(e, "space")),
        };
        let n = buf.len().min(free as usize);
        self.prod.put(&buf[..n]);
        self.prod.publish();
        Ok(n)
    }

    /// Zero-copy write, step 1: waits for free space and returns the contiguous
    /// free bytes at the write position (at least `1`, at most up to the ring's
    /// end — call again after [`commit`](Self::commit) for the rest).
    ///
    /// The slice is a window into the shared segment that the ring protocol
    /// gives this writer exclusively until it is committed; the reader does not
    /// read it before then.
    pub fn reserve(&mut self) -> Result<&mut [u8]> {
        self.check_open()?;
        self.reserved = 0;
        self.link.writer_preflight(&self.prod)?;
        let policy = self.policy(None);
        if self.prod.free(1).map_err(|e| self.link.error(e, "space"))? == 0 {
            self.prod
                .wait_free(1, policy, self.link.liveness())
                .map_err(|e| self.link.error(e, "space in the ring"))?;
        }
        let (pos, len) = self.prod.contiguous_free();
        self.reserved = len;
        let p = self.prod.mem().at(pos);
        // SAFETY: [pos, pos + len) is inside the data area and is free space,
        // which the protocol reserves to the writer until `head` moves past it;
        // `&mut self` keeps this the only live view.
        Ok(unsafe { core::slice::from_raw_parts_mut(p, len) })
    }

    /// Zero-copy write, step 2: publishes the first `n` bytes of the last
    /// [`reserve`](Self::reserve)d slice.
    pub fn commit(&mut self, n: usize) -> Result<()> {
        if n > self.reserved {
            return Err(Error::Invalid(format!(
                "commit of {n} bytes exceeds the {} reserved",
                self.reserved
            )));
        }
        self.reserved = 0;
        self.prod.advance(n as u64);
        self.prod.publish();
        Ok(())
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
        self.link
            .end_writer(&mut self.prod, &mut self.closed, crate::ring::ABORTED);
    }
}

/// The reading end of a byte stream. See [`StreamWriter`] for an example.
pub struct StreamReader {
    cons: Consumer<RawMem>,
    eof: bool,
    link: Link,
}

impl StreamReader {
    crate::rendezvous::endpoint_accessors!("writer");

    /// Connects the reading end: creates the channel or joins the writer that is
    /// waiting, then waits (up to the options' timeout) for the writer.
    pub fn connect(endpoint: &Endpoint, options: &Options) -> Result<StreamReader> {
        let link = connect(endpoint, options, Role::Reader, KIND_STREAM)?;
        // SAFETY: as in StreamWriter::connect, for the single reader.
        let cons = unsafe { Consumer::new(link.cursors(), link.mem(), link.capacity) }
            .map_err(|e| link.error(e, "connect"))?;
        Ok(StreamReader {
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
        let policy = WaitPolicy::forever(self.link.wait);
        let more = self
            .cons
            .wait_available(1, policy, self.link.liveness())
            .map_err(|e| self.link.error(e, "data"))?;
        self.eof = !more;
        Ok(more)
    }

    /// Reads up to `buf.len()` bytes, waiting for at least one. `Ok(0)`: end of
    /// stream (the writer closed and everything was read).
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

    /// Zero-copy read, step 1: waits for data and returns the contiguous readable
    /// bytes at the read position (empty at end of stream).
    ///
    /// The slice is a window into the shared segment holding bytes the writer
    /// has published; the protocol gives them to this reader exclusively until
    /// they are consumed (a writer that breaks the protocol could still change
    /// them — copy before validating anything security-relevant).
    pub fn peek(&mut self) -> Result<&[u8]> {
        if !self.wait_data()? {
            return Ok(&[]);
        }
        let (pos, len) = self.cons.contiguous_available();
        let p = self.cons.mem().at(pos);
        // SAFETY: [pos, pos + len) is inside the data area and holds published,
        // unconsumed bytes, which the writer does not touch until `tail` moves
        // past them; the borrow of `self` keeps them unconsumed.
        Ok(unsafe { core::slice::from_raw_parts(p, len) })
    }

    /// Zero-copy read, step 2: consumes `n` bytes of what [`peek`](Self::peek)
    /// returned, giving the space back to the writer.
    pub fn consume_bytes(&mut self, n: usize) -> Result<()> {
        let (_, len) = self.cons.contiguous_available();
        if n > len {
            return Err(Error::Invalid(format!(
                "consume of {n} bytes exceeds the {len} peeked"
            )));
        }
        self.cons.advance(n as u64);
        self.cons.publish_lazy();
        Ok(())
    }

    /// Closes the reading end: the writer's next write fails with
    /// [`Error::Closed`].
    pub fn close(self) -> Result<()> {
        Ok(())
    }
}

impl io::Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_some(buf)?)
    }
}

impl io::BufRead for StreamReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(self.peek()?)
    }

    fn consume(&mut self, amt: usize) {
        let (_, len) = self.cons.contiguous_available();
        self.cons.advance(amt.min(len) as u64);
        self.cons.publish_lazy();
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        self.cons.close();
        self.link.mark_closed();
    }
}
