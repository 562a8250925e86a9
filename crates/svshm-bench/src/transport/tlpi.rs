//! The reader/writer transfer of TLPI §48.4 (svshm_xfr_writer.c /
//! svshm_xfr_reader.c), done faithfully over one System V shared buffer
//!
//! ```c
//! struct shmseg { int cnt; char buf[BUF_SIZE]; };
//! ```
//!
//! and a System V semaphore set of two, used as binary semaphores exactly as
//! TLPI's `binary_sems.c` does (`bsUseSemUndo = FALSE`, `bsRetryOnEintr = TRUE`):
//! `WRITE_SEM` (0, initially available = 1) and `READ_SEM` (1, initially in
//! use = 0). The writer reserves WRITE_SEM, fills `buf`, sets `cnt`, releases
//! READ_SEM; the reader reserves READ_SEM, copies out `cnt` bytes, releases
//! WRITE_SEM. `cnt == 0` is end of file; the writer then waits for the
//! reader's last release. Every BUF_SIZE bytes cost two `semop` calls on each
//! side. Spin mode (ping-pong only) adds `IPC_NOWAIT` and retries on EAGAIN.
//!
//! Unlike the book (fixed keys 0x1234/0x5678), the objects are IPC_PRIVATE,
//! created by the driver and removed by it on exit ([`TlpiObjects`]).

// Unsafe: the TLPI protocol's raw System V semaphore calls and shared buffer.
#![allow(unsafe_code)]

use super::{Rx, Tx, Wait};
use anyhow::{Context, Result, bail};
use std::io;
use svshm::{Attachment, RemoveOnDrop, Segment};

/// Index of the writer's semaphore (TLPI svshm_xfr.h).
pub const WRITE_SEM: u16 = 0;
/// Index of the reader's semaphore.
pub const READ_SEM: u16 = 1;
/// Offset of `buf` in `struct shmseg` (after `int cnt`).
const BUF_OFFSET: usize = std::mem::size_of::<libc::c_int>();

/// A System V semaphore set, removed (IPC_RMID) when dropped.
#[derive(Debug)]
pub struct SemSet {
    id: i32,
}

impl SemSet {
    /// `semget(IPC_PRIVATE, n, IPC_CREAT | 0600)`.
    pub fn create_private(n: i32) -> Result<SemSet> {
        // SAFETY: plain system call with integer arguments.
        let id = unsafe { libc::semget(libc::IPC_PRIVATE, n, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            return Err(io::Error::last_os_error()).context("semget(IPC_PRIVATE, 2)");
        }
        Ok(SemSet { id })
    }

    /// The semaphore set id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// `semctl(id, num, SETVAL, value)` (TLPI initSemAvailable / initSemInUse).
    pub fn set_value(&self, num: u16, value: i32) -> Result<()> {
        // SAFETY: SETVAL takes a `union semun` whose `val` member is an int; on
        // Linux the variadic argument is passed as that int.
        if unsafe { libc::semctl(self.id, libc::c_int::from(num), libc::SETVAL, value) } < 0 {
            return Err(io::Error::last_os_error()).context("semctl(SETVAL)");
        }
        Ok(())
    }
}

impl Drop for SemSet {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no fourth argument.
        unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) };
    }
}

/// The driver's side of one TLPI channel: the segment and the semaphore set,
/// both removed when this is dropped.
#[derive(Debug)]
pub struct TlpiObjects {
    /// The shared buffer (removed on drop).
    pub shm: RemoveOnDrop,
    /// The semaphore pair (removed on drop).
    pub sems: SemSet,
}

impl TlpiObjects {
    /// Creates `struct shmseg` with a `buf_size` buffer and the semaphore pair,
    /// initialised as TLPI's writer does: WRITE_SEM available, READ_SEM in use.
    pub fn create(buf_size: usize) -> Result<TlpiObjects> {
        let shm = Segment::create_private(BUF_OFFSET + buf_size)
            .context("TLPI shared buffer")?
            .remove_on_drop();
        let sems = SemSet::create_private(2)?;
        sems.set_value(WRITE_SEM, 1)?;
        sems.set_value(READ_SEM, 0)?;
        Ok(TlpiObjects { shm, sems })
    }
}

/// `semop(id, {num, op, flags}, 1)`, retrying on EINTR (bsRetryOnEintr) and,
/// in spin mode, on EAGAIN.
fn semop(id: i32, num: u16, op: i16, spin: bool) -> Result<()> {
    let mut sop = libc::sembuf {
        sem_num: num,
        sem_op: op,
        sem_flg: if spin { libc::IPC_NOWAIT as i16 } else { 0 },
    };
    loop {
        // SAFETY: `sop` is one valid sembuf and we pass a count of 1.
        if unsafe { libc::semop(id, &mut sop, 1) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) if spin => std::hint::spin_loop(),
            _ => return Err(e).with_context(|| format!("semop(sem {num}, {op:+})")),
        }
    }
}

struct Shared {
    att: Attachment,
    sem_id: i32,
    buf_size: usize,
    spin: bool,
}

impl Shared {
    fn open(shm_id: i32, sem_id: i32, buf_size: usize, wait: Wait) -> Result<Shared> {
        let att = Segment::from_id(shm_id)
            .attach()
            .context("attach TLPI shared buffer")?;
        if att.len() < BUF_OFFSET + buf_size {
            bail!(
                "TLPI segment {shm_id} has {} bytes, need {}",
                att.len(),
                BUF_OFFSET + buf_size
            );
        }
        Ok(Shared {
            att,
            sem_id,
            buf_size,
            spin: wait == Wait::Spin,
        })
    }
    fn reserve(&self, num: u16) -> Result<()> {
        semop(self.sem_id, num, -1, self.spin)
    }
    fn release(&self, num: u16) -> Result<()> {
        semop(self.sem_id, num, 1, self.spin)
    }
    fn cnt(&self) -> Result<i32> {
        let mut b = [0u8; BUF_OFFSET];
        self.att.read_at(0, &mut b)?;
        Ok(i32::from_ne_bytes(b))
    }
    fn set_cnt(&self, cnt: i32) -> Result<()> {
        Ok(self.att.write_at(0, &cnt.to_ne_bytes())?)
    }
}

/// Writer side (svshm_xfr_writer.c).
pub struct TlpiTx {
    s: Shared,
}

impl TlpiTx {
    /// Attaches the shared buffer of an existing channel.
    pub fn open(shm_id: i32, sem_id: i32, buf_size: usize, wait: Wait) -> Result<TlpiTx> {
        Ok(TlpiTx {
            s: Shared::open(shm_id, sem_id, buf_size, wait)?,
        })
    }
}

impl Tx for TlpiTx {
    fn send(&mut self, data: &[u8]) -> Result<()> {
        for piece in data.chunks(self.s.buf_size) {
            self.s.reserve(WRITE_SEM)?; // wait for our turn
            self.s.att.write_at(BUF_OFFSET, piece)?;
            self.s.set_cnt(piece.len() as i32)?;
            self.s.release(READ_SEM)?; // give reader a turn
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.s.reserve(WRITE_SEM)?;
        self.s.set_cnt(0)?; // end of file
        self.s.release(READ_SEM)?;
        // Wait until the reader has let us have one more turn (it is done).
        self.s.reserve(WRITE_SEM)
    }
}

/// Reader side (svshm_xfr_reader.c).
pub struct TlpiRx {
    s: Shared,
}

impl TlpiRx {
    /// Attaches the shared buffer of an existing channel.
    pub fn open(shm_id: i32, sem_id: i32, buf_size: usize, wait: Wait) -> Result<TlpiRx> {
        Ok(TlpiRx {
            s: Shared::open(shm_id, sem_id, buf_size, wait)?,
        })
    }
}

impl Rx for TlpiRx {
    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        let mut got = 0;
        while got < buf.len() {
            self.s.reserve(READ_SEM)?; // wait for our turn
            let cnt = self.s.cnt()?;
            if cnt <= 0 || cnt as usize > self.s.buf_size {
                bail!(
                    "TLPI transfer: cnt {cnt} after {got} of {} bytes",
                    buf.len()
                );
            }
            let cnt = cnt as usize;
            if cnt > buf.len() - got {
                bail!(
                    "TLPI transfer of {cnt} bytes overruns the {}-byte read",
                    buf.len()
                );
            }
            self.s.att.read_at(BUF_OFFSET, &mut buf[got..got + cnt])?;
            self.s.release(WRITE_SEM)?; // give writer a turn
            got += cnt;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.s.reserve(READ_SEM)?;
        let cnt = self.s.cnt()?;
        self.s.release(WRITE_SEM)?;
        if cnt != 0 {
            bail!("TLPI transfer: expected end of file, got cnt {cnt}");
        }
        Ok(())
    }
}
