//! The transports under test, behind one small abstraction.
//!
//! A *channel* is one direction of transfer between two processes. The driver
//! (parent) prepares each channel ([`ChanSpec`]), spawns the two endpoint
//! processes and hands each its end; a ping-pong uses two channels. Every
//! endpoint implements [`Tx`] (send bytes) or [`Rx`] (receive exactly as many
//! bytes as asked), so the workload loops are the same for all transports.

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub mod fd;
pub mod ice;
pub mod svshm_ch;
pub mod tlpi;

/// A transport under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Anonymous pipe (pipe(2)), buffer raised to the ring size with F_SETPIPE_SZ.
    Pipe,
    /// Unix stream socket (socketpair(AF_UNIX, SOCK_STREAM)).
    Unix,
    /// TLPI §48.4: one SysV shm buffer of 1 KiB + a SysV semaphore pair.
    #[value(name = "tlpi-1k")]
    #[serde(rename = "tlpi-1k")]
    Tlpi1k,
    /// TLPI §48.4 with a 64 KiB buffer.
    #[value(name = "tlpi-64k")]
    #[serde(rename = "tlpi-64k")]
    Tlpi64k,
    /// iceoryx2 publish-subscribe of `[u8]`, copy in and copy out.
    Iceoryx2,
    /// iceoryx2 zero-copy: the publisher fills a loaned sample from its
    /// buffer, the subscriber reads the sample where it lies.
    #[value(name = "iceoryx2-zc")]
    #[serde(rename = "iceoryx2-zc")]
    Iceoryx2Zc,
    /// svshm byte stream (io::Write / io::Read).
    SvshmStream,
    /// svshm message channel (send / recv into a buffer).
    SvshmMsg,
    /// svshm zero-copy: the writer fills a loan, the reader reads in place.
    SvshmZc,
}

impl Kind {
    /// Every transport, in table order.
    pub const ALL: [Kind; 9] = [
        Kind::Pipe,
        Kind::Unix,
        Kind::Tlpi1k,
        Kind::Tlpi64k,
        Kind::Iceoryx2,
        Kind::Iceoryx2Zc,
        Kind::SvshmStream,
        Kind::SvshmMsg,
        Kind::SvshmZc,
    ];

    /// The name used in tables, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pipe => "pipe",
            Kind::Unix => "unix",
            Kind::Tlpi1k => "tlpi-1k",
            Kind::Tlpi64k => "tlpi-64k",
            Kind::Iceoryx2 => "iceoryx2",
            Kind::Iceoryx2Zc => "iceoryx2-zc",
            Kind::SvshmStream => "svshm-stream",
            Kind::SvshmMsg => "svshm-msg",
            Kind::SvshmZc => "svshm-zc",
        }
    }

    /// Whether this is a peer (not svshm).
    pub fn is_peer(self) -> bool {
        !self.is_svshm()
    }

    /// Whether this is one of svshm's own transports.
    pub fn is_svshm(self) -> bool {
        matches!(self, Kind::SvshmStream | Kind::SvshmMsg | Kind::SvshmZc)
    }

    /// Whether the reader consumes payloads in place instead of copying them out.
    pub fn reads_in_place(self) -> bool {
        matches!(self, Kind::SvshmZc | Kind::Iceoryx2Zc)
    }

    /// What `--wait default` means for this transport in stream and message runs.
    pub fn default_wait(self) -> Wait {
        match self {
            // Kernel objects are used the way programs use them: blocking calls.
            Kind::Pipe | Kind::Unix | Kind::Tlpi1k | Kind::Tlpi64k => Wait::Block,
            // iceoryx2 publish-subscribe has no blocking receive of its own;
            // its benchmarks busy-poll.
            Kind::Iceoryx2 | Kind::Iceoryx2Zc => Wait::Spin,
            Kind::SvshmStream | Kind::SvshmMsg | Kind::SvshmZc => Wait::Adaptive,
        }
    }
}

/// How an endpoint waits for its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Wait {
    /// Busy-poll (non-blocking calls in a loop for kernel transports).
    Spin,
    /// Sleep in the kernel until the peer wakes us.
    Block,
    /// Spin briefly, then block (svshm's default); kernel transports block;
    /// iceoryx2 polls as long as svshm spins (`DEFAULT_SPIN`), then sleeps on
    /// its event listener.
    Adaptive,
}

impl Wait {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Wait::Spin => "spin",
            Wait::Block => "block",
            Wait::Adaptive => "adaptive",
        }
    }
}

/// One prepared channel, as handed to an endpoint process (JSON on its command line).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChanSpec {
    /// A pipe or a socketpair: `write` is the sending end, `read` the receiving end.
    Fd {
        /// Receiving end.
        read: i32,
        /// Sending end.
        write: i32,
    },
    /// TLPI shared buffer and semaphore set (both IPC_PRIVATE, created by the driver).
    Tlpi {
        /// Segment id of `struct { int cnt; char buf[buf_size]; }`.
        shm_id: i32,
        /// Semaphore set id (WRITE_SEM = 0... see tlpi.rs).
        sem_id: i32,
        /// BUF_SIZE.
        buf_size: usize,
    },
    /// iceoryx2 service.
    Ice {
        /// Service name (unique per run).
        service: String,
        /// File prefix (unique per run, so the driver can remove leftovers).
        prefix: String,
        /// Largest payload (initial_max_slice_len).
        max_len: usize,
        /// Subscriber queue depth.
        depth: usize,
    },
    /// svshm channel.
    Svshm {
        /// Channel name (unique per run).
        name: String,
        /// Ring capacity in bytes.
        capacity: usize,
        /// Largest message.
        max_message: usize,
    },
}

/// The sending end of a channel.
pub trait Tx {
    /// Sends all of `data` (one message for message transports).
    fn send(&mut self, data: &[u8]) -> Result<()>;
    /// Ends the transfer (end-of-stream where the transport has one).
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The receiving end of a channel.
pub trait Rx {
    /// Receives exactly `buf.len()` bytes (one message for message transports).
    fn recv(&mut self, buf: &mut [u8]) -> Result<()>;
    /// Receives `len` bytes and lets `f` read them where they lie (zero-copy
    /// transports); others receive into a scratch buffer.
    fn recv_in_place(&mut self, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let mut scratch = vec![0u8; len];
        self.recv(&mut scratch)?;
        f(&scratch);
        Ok(())
    }
    /// Waits for the end of the transfer (consumes an end-of-stream marker).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Opens the sending end of `spec` for transport `kind`.
pub fn open_tx(kind: Kind, spec: &ChanSpec, wait: Wait) -> Result<Box<dyn Tx>> {
    Ok(match (kind, spec) {
        (Kind::Pipe | Kind::Unix, ChanSpec::Fd { write, .. }) => {
            Box::new(fd::FdTx::new(*write, wait)?)
        }
        (
            Kind::Tlpi1k | Kind::Tlpi64k,
            ChanSpec::Tlpi {
                shm_id,
                sem_id,
                buf_size,
            },
        ) => Box::new(tlpi::TlpiTx::open(*shm_id, *sem_id, *buf_size, wait)?),
        (
            Kind::Iceoryx2 | Kind::Iceoryx2Zc,
            ChanSpec::Ice {
                service,
                prefix,
                max_len,
                depth,
            },
        ) => Box::new(ice::IceTx::open(service, prefix, *max_len, *depth, wait)?),
        (
            Kind::SvshmStream | Kind::SvshmMsg | Kind::SvshmZc,
            ChanSpec::Svshm {
                name,
                capacity,
                max_message,
            },
        ) => svshm_ch::open_tx(kind, name, *capacity, *max_message, wait)?,
        _ => anyhow::bail!("channel {spec:?} does not fit transport {}", kind.name()),
    })
}

/// Opens the receiving end of `spec` for transport `kind`.
pub fn open_rx(kind: Kind, spec: &ChanSpec, wait: Wait) -> Result<Box<dyn Rx>> {
    Ok(match (kind, spec) {
        (Kind::Pipe | Kind::Unix, ChanSpec::Fd { read, .. }) => {
            Box::new(fd::FdRx::new(*read, wait)?)
        }
        (
            Kind::Tlpi1k | Kind::Tlpi64k,
            ChanSpec::Tlpi {
                shm_id,
                sem_id,
                buf_size,
            },
        ) => Box::new(tlpi::TlpiRx::open(*shm_id, *sem_id, *buf_size, wait)?),
        (
            Kind::Iceoryx2 | Kind::Iceoryx2Zc,
            ChanSpec::Ice {
                service,
                prefix,
                max_len,
                depth,
            },
        ) => Box::new(ice::IceRx::open(service, prefix, *max_len, *depth, wait)?),
        (
            Kind::SvshmStream | Kind::SvshmMsg | Kind::SvshmZc,
            ChanSpec::Svshm {
                name,
                capacity,
                max_message,
            },
        ) => svshm_ch::open_rx(kind, name, *capacity, *max_message, wait)?,
        _ => anyhow::bail!("channel {spec:?} does not fit transport {}", kind.name()),
    })
}
