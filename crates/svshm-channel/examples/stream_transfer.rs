//! A file sent from one process to another over a stream channel, as with a
//! pipe: the parent writes a 4 MiB file of pseudo-random bytes to a temporary
//! path and `io::copy`s it into a [`StreamWriter`]; a second process (this
//! program re-executed with `reader NAME`) `io::copy`s its [`StreamReader`]
//! into a checksum until end-of-file and prints the byte count and checksum,
//! which the parent compares with its own.
//!
//! The writer ends the stream with an explicit `close()`: only that is a clean
//! end of file. A writer dropped without it (an error, a panic) makes the
//! reader fail with `Aborted` instead, so a cut-short transfer never looks
//! complete. Once both sides have connected the segment is marked for removal,
//! so the kernel frees it when both are gone.
//!
//! `cargo run -p svshm-channel --example stream_transfer`

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use svshm_channel::{Endpoint, Options, StreamReader, StreamWriter};

const FILE_SIZE: usize = 4 << 20;

/// FNV-1a over everything written to it: enough to tell a changed, lost or
/// reordered byte.
struct Checksum {
    hash: u64,
    len: u64,
}

impl Checksum {
    fn new() -> Self {
        Checksum {
            hash: 0xcbf2_9ce4_8422_2325,
            len: 0,
        }
    }
}

impl Write for Checksum {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn options() -> Options {
    // Give up if the other side never comes (the default waits forever).
    Options::new().timeout(Some(Duration::from_secs(10)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("reader") {
        return reader(&args[2]);
    }

    // The file to send, and its checksum.
    let path = std::env::temp_dir().join(format!("svshm-stream-example-{}", std::process::id()));
    let mut expect = Checksum::new();
    {
        let mut f = File::create(&path)?;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut chunk = vec![0u8; 64 << 10];
        for _ in 0..FILE_SIZE / chunk.len() {
            for b in chunk.iter_mut() {
                // xorshift64: cheap bytes that are not a repeating pattern.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            f.write_all(&chunk)?;
            expect.write_all(&chunk)?;
        }
    }

    // The reader: either side may connect first; they meet by name.
    let name = format!("stream-example-{}", std::process::id());
    let child = Command::new(std::env::current_exe()?)
        .arg("reader")
        .arg(&name)
        .stdout(Stdio::piped())
        .spawn()?;

    let sent = (|| -> Result<u64, Box<dyn std::error::Error>> {
        let mut w = StreamWriter::connect(&Endpoint::name(&name), &options())?;
        let n = io::copy(&mut BufReader::new(File::open(&path)?), &mut w)?;
        // The clean end of file: without it the reader gets `Aborted`.
        w.close()?;
        Ok(n)
    })();
    std::fs::remove_file(&path)?;
    let out = child.wait_with_output()?;
    let sent = sent?;
    assert!(out.status.success(), "the reader failed: {}", out.status);

    let said = String::from_utf8(out.stdout)?;
    let want = format!("{} {:016x}", expect.len, expect.hash);
    println!("sent {sent} bytes, checksum {:016x}", expect.hash);
    println!("reader says: {}", said.trim());
    assert_eq!(said.trim(), want, "the reader got something else");
    println!("the file arrived intact");
    Ok(())
}

/// The second process: reads until end of file, prints "LEN CHECKSUM".
fn reader(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut r = StreamReader::connect(&Endpoint::name(name), &options())?;
    let mut sum = Checksum::new();
    // Ok(n) only at a clean end; an aborted or dead writer is an error here.
    io::copy(&mut r, &mut sum)?;
    println!("{} {:016x}", sum.len, sum.hash);
    Ok(())
}
