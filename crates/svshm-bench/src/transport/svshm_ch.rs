//! svshm channel transports, each over one svshm-channel segment per direction:
//!
//! - `svshm-stream`: [`StreamWriter`] / [`StreamReader`] as `io::Write` /
//!   `io::Read` (`write_all` of each chunk, `read_exact` into the reader's buffer).
//! - `svshm-msg`: [`Sender::send`] of each chunk as one message;
//!   [`Receiver::recv_ref`] copying it into the reader's buffer.
//! - `svshm-zc`: zero-copy messages: the writer fills a [`Sender::loan`]
//!   straight from its buffer; the reader reads the message where it lies
//!   (`recv_ref`) without copying it out.
//!
//! Channels are named (unique per run) with the ring capacity of the session;
//! message channels ask for `max_message` = the payload and room for as many
//! messages as iceoryx2's queue holds ([`Options::messages`]), and the
//! library grows the ring (to a power of two) where their frames need it.

use super::{Kind, Rx, Tx, Wait};
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::time::Duration;
use svshm_channel::{Endpoint, Options, Receiver, Sender, StreamReader, StreamWriter};

fn options(capacity: usize, max_message: usize, wait: Wait) -> Options {
    Options::new()
        .capacity(capacity)
        .timeout(Some(Duration::from_secs(30)))
        .max_message(max_message)
        // Message channels queue as many messages as iceoryx2's subscriber
        // queue holds samples (its frames' headers make the ring larger than
        // `capacity` where they would not fit); byte streams ignore it.
        .messages(crate::driver::ice_depth(capacity, max_message))
        .wait(match wait {
            Wait::Spin => svshm_channel::Wait::Spin,
            Wait::Block => svshm_channel::Wait::Block,
            Wait::Adaptive => svshm_channel::Wait::Adaptive,
        })
}

/// Opens the sending end of an svshm channel.
pub fn open_tx(
    kind: Kind,
    name: &str,
    capacity: usize,
    max_message: usize,
    wait: Wait,
) -> Result<Box<dyn Tx>> {
    let ep = Endpoint::name(name);
    let o = options(capacity, max_message, wait);
    Ok(match kind {
        Kind::SvshmStream => Box::new(StreamTx(Some(
            StreamWriter::connect(&ep, &o)
                .with_context(|| format!("svshm stream writer {name}"))?,
        ))),
        Kind::SvshmMsg | Kind::SvshmZc => Box::new(MsgTx {
            s: Some(Sender::connect(&ep, &o).with_context(|| format!("svshm sender {name}"))?),
            zero_copy: kind == Kind::SvshmZc,
        }),
        _ => bail!("{} is not an svshm transport", kind.name()),
    })
}

/// Opens the receiving end of an svshm channel.
pub fn open_rx(
    kind: Kind,
    name: &str,
    capacity: usize,
    max_message: usize,
    wait: Wait,
) -> Result<Box<dyn Rx>> {
    let ep = Endpoint::name(name);
    let o = options(capacity, max_message, wait);
    Ok(match kind {
        Kind::SvshmStream => Box::new(StreamRx(
            StreamReader::connect(&ep, &o)
                .with_context(|| format!("svshm stream reader {name}"))?,
        )),
        Kind::SvshmMsg | Kind::SvshmZc => Box::new(MsgRx(
            Receiver::connect(&ep, &o).with_context(|| format!("svshm receiver {name}"))?,
        )),
        _ => bail!("{} is not an svshm transport", kind.name()),
    })
}

struct StreamTx(Option<StreamWriter>);

impl Tx for StreamTx {
    fn send(&mut self, data: &[u8]) -> Result<()> {
        self.0
            .as_mut()
            .context("stream already closed")?
            .write_all(data)
            .context("svshm stream write")
    }
    fn close(&mut self) -> Result<()> {
        match self.0.take() {
            Some(w) => w.close().context("svshm stream close"),
            None => Ok(()),
        }
    }
}

struct StreamRx(StreamReader);

impl Rx for StreamRx {
    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        self.0.read_exact(buf).context("svshm stream read")
    }
    fn finish(&mut self) -> Result<()> {
        let mut b = [0u8; 1];
        match self.0.read(&mut b).context("svshm stream end")? {
            0 => Ok(()),
            _ => bail!("svshm stream: data after the expected end"),
        }
    }
}

struct MsgTx {
    s: Option<Sender>,
    zero_copy: bool,
}

impl Tx for MsgTx {
    fn send(&mut self, data: &[u8]) -> Result<()> {
        let s = self.s.as_mut().context("sender already closed")?;
        if self.zero_copy {
            let mut loan = s.loan(data.len()).context("svshm loan")?;
            loan.copy_from_slice(data);
            loan.send();
            Ok(())
        } else {
            s.send(data).context("svshm send")
        }
    }
    fn close(&mut self) -> Result<()> {
        match self.s.take() {
            Some(s) => s.close().context("svshm sender close"),
            None => Ok(()),
        }
    }
}

struct MsgRx(Receiver);

impl MsgRx {
    fn next(&mut self, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let m = self
            .0
            .recv_ref()
            .context("svshm recv")?
            .context("svshm: the sender closed before the expected end")?;
        if m.len() != len {
            bail!("svshm: received {} bytes, expected {len}", m.len());
        }
        f(&m);
        Ok(())
    }
}

impl Rx for MsgRx {
    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        let len = buf.len();
        self.next(len, &mut |m| buf.copy_from_slice(m))
    }
    fn recv_in_place(&mut self, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.next(len, f)
    }
    fn finish(&mut self) -> Result<()> {
        match self.0.recv_ref().context("svshm end of messages")? {
            None => Ok(()),
            Some(m) => bail!("svshm: a {}-byte message after the expected end", m.len()),
        }
    }
}
