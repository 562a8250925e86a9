//! Pipes and Unix stream sockets: read(2)/write(2) on a file descriptor.
//!
//! Blocking mode uses blocking descriptors. Spin mode sets O_NONBLOCK and
//! retries on EAGAIN in a busy loop, so the process never sleeps in the kernel
//! (but still makes one system call per attempt).

// Unsafe: pipe, socketpair, fcntl, read and write on raw descriptors.
#![allow(unsafe_code)]

use super::{Rx, Tx, Wait};
use anyhow::{Context, Result, bail};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Creates a pipe whose ends survive exec (no O_CLOEXEC) and whose buffer is
/// raised to `size` bytes (F_SETPIPE_SZ; root may exceed pipe-max-size).
/// Returns (read end, write end, effective buffer size).
pub fn make_pipe(size: usize) -> Result<(OwnedFd, OwnedFd, usize)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error()).context("pipe");
    }
    // SAFETY: pipe(2) succeeded, so both descriptors are open and ours alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on an open descriptor with an integer argument.
    let got = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
    let eff = if got > 0 {
        got as usize
    } else {
        // SAFETY: as above, F_GETPIPE_SZ takes no argument.
        unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) }.max(0) as usize
    };
    Ok((r, w, eff))
}

/// Creates a connected pair of Unix stream sockets, inheritable across exec,
/// with SO_SNDBUF / SO_RCVBUF raised towards `size` (capped by
/// net.core.wmem_max / rmem_max). Returns (receiving end, sending end, effective
/// send buffer).
pub fn make_socketpair(size: usize) -> Result<(OwnedFd, OwnedFd, usize)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair(2) writes.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error()).context("socketpair(AF_UNIX, SOCK_STREAM)");
    }
    // SAFETY: socketpair(2) succeeded; both descriptors are open and ours alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let v = size.min(i32::MAX as usize) as libc::c_int;
    for (fd, opt) in [(&w, libc::SO_SNDBUF), (&r, libc::SO_RCVBUF)] {
        // SAFETY: `v` is a c_int and we pass its size; the descriptor is open.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    let mut eff: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `eff` and `len` are valid for writes; the descriptor is open.
    unsafe {
        libc::getsockopt(
            w.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&mut eff as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    Ok((r, w, eff.max(0) as usize))
}

fn set_nonblocking(fd: RawFd, yes: bool) -> Result<()> {
    // SAFETY: F_GETFL on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error()).context("fcntl(F_GETFL)");
    }
    let new = if yes {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL with flags derived from the current ones.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, new) } < 0 {
        return Err(io::Error::last_os_error()).context("fcntl(F_SETFL)");
    }
    Ok(())
}

/// Takes ownership of an inherited descriptor number.
fn adopt(fd: RawFd) -> Result<OwnedFd> {
    // SAFETY: F_GETFD only checks that the descriptor is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        bail!(
            "descriptor {fd} was not inherited: {}",
            io::Error::last_os_error()
        );
    }
    // SAFETY: the descriptor is open (checked) and was handed to this process
    // for its exclusive use by the driver; nothing else in it owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sending end: write(2) until everything is written.
pub struct FdTx {
    fd: OwnedFd,
}

impl FdTx {
    /// Adopts inherited descriptor `fd`.
    pub fn new(fd: RawFd, wait: Wait) -> Result<FdTx> {
        let fd = adopt(fd)?;
        set_nonblocking(fd.as_raw_fd(), wait == Wait::Spin)?;
        Ok(FdTx { fd })
    }
}

impl Tx for FdTx {
    fn send(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            // SAFETY: `data` is valid for reads of data.len() bytes.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => std::hint::spin_loop(),
                    Some(libc::EINTR) => {}
                    _ => return Err(e).context("write"),
                }
                continue;
            }
            data = &data[n as usize..];
        }
        Ok(())
    }
}

/// Receiving end: read(2) until the buffer is full.
pub struct FdRx {
    fd: OwnedFd,
}

impl FdRx {
    /// Adopts inherited descriptor `fd`.
    pub fn new(fd: RawFd, wait: Wait) -> Result<FdRx> {
        let fd = adopt(fd)?;
        set_nonblocking(fd.as_raw_fd(), wait == Wait::Spin)?;
        Ok(FdRx { fd })
    }
}

impl Rx for FdRx {
    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        let mut got = 0;
        while got < buf.len() {
            let rest = &mut buf[got..];
            // SAFETY: `rest` is valid for writes of rest.len() bytes.
            let n =
                unsafe { libc::read(self.fd.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => std::hint::spin_loop(),
                    Some(libc::EINTR) => {}
                    _ => return Err(e).context("read"),
                }
                continue;
            }
            if n == 0 {
                bail!("unexpected end of file after {got} of {} bytes", buf.len());
            }
            got += n as usize;
        }
        Ok(())
    }
}
