//! `svshm demo`: the main job in one command — stream generated data from this
//! process to a reader process through a channel, verify it, compare with a
//! pipe moving the same data in the same run, and show that nothing is left.

use crate::util::{AlreadyReported, human_size};
use anyhow::{Context, Result, anyhow, bail};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Options, StreamWriter};

const AFTER_HELP: &str = "\
What happens: this process starts a reader process (`svshm read NAME --checksum`),
connects to it through a System V shared memory channel, writes SIZE bytes of
generated data into the ring, and the reader checks them with CRC-32. Then the
same data goes through a pipe to another process, checked the same way. Both
rates are printed, and /proc/sysvipc/shm is checked for a leftover segment.
Build with --release for real numbers.

Examples:
  svshm demo                   1 GiB (the default)
  svshm demo --bytes 8G --ring 4M
  cargo run --release -p svshm-cli -- demo";

/// Stream data through a channel to another process, verify it, compare with a pipe.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// How much data to stream (K/M/G suffixes).
    #[arg(long, value_name = "SIZE", value_parser = crate::util::size_arg, default_value = "1G")]
    bytes: u64,
    /// Ring size of the channel.
    #[arg(long, value_name = "SIZE", value_parser = crate::util::size_arg, default_value = "256K")]
    ring: u64,
    /// Skip the pipe comparison.
    #[arg(long)]
    no_pipe: bool,
}

/// The generated data: a pseudo-random block whose length is not a power of two,
/// repeated, so that a lost, doubled or misplaced ring-sized piece changes the CRC.
struct Pattern {
    base: Vec<u8>,
    pos: usize,
}

impl Pattern {
    const LEN: usize = (1 << 20) + 4093;

    fn new() -> Pattern {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut base = Vec::with_capacity(Self::LEN + 8);
        while base.len() < Self::LEN {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            base.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        base.truncate(Self::LEN);
        Pattern { base, pos: 0 }
    }

    /// The next up to `max` bytes of the stream.
    fn next(&mut self, max: usize) -> &[u8] {
        let start = self.pos;
        let n = max.min(Self::LEN - start);
        self.pos = (start + n) % Self::LEN;
        &self.base[start..start + n]
    }

    /// Fills `dst` with the next bytes of the stream.
    fn fill(&mut self, dst: &mut [u8]) {
        let mut off = 0;
        while off < dst.len() {
            let src = self.next(dst.len() - off);
            dst[off..off + src.len()].copy_from_slice(src);
            off += src.len();
        }
    }

    fn rewind(&mut self) {
        self.pos = 0;
    }
}

/// Kills and reaps a child process that is still running when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Reads a sink's report, `BYTES CRC`, and waits for it to exit.
fn report(child: &mut ChildGuard, what: &str) -> Result<(u64, u32)> {
    let mut text = String::new();
    if let Some(mut so) = child.0.stdout.take() {
        so.read_to_string(&mut text)
            .with_context(|| format!("read the {what} process's report"))?;
    }
    let status = child.0.wait()?;
    if !status.success() {
        bail!("the {what} process failed ({status}); its messages are above");
    }
    let mut f = text.split_whitespace();
    let bytes = f.next().and_then(|b| b.parse().ok());
    let crc = f.next().and_then(|c| u32::from_str_radix(c, 16).ok());
    match (bytes, crc) {
        (Some(b), Some(c)) => Ok((b, c)),
        _ => bail!("the {what} process reported {text:?}, not `BYTES CRC`"),
    }
}

/// Below this many bytes, timings are start-up noise: no speed comparison.
const MIN_COMPARED: u64 = 1 << 20;

fn rate(bytes: u64, d: Duration) -> String {
    let secs = d.as_secs_f64().max(1e-9);
    format!("{}/s", human_size((bytes as f64 / secs) as u64))
}

/// One result row: how much `label` moved, how fast, its CRC-32, and whether
/// it all checked out.
fn result_line(
    out: &mut dyn Write,
    label: &str,
    bytes: u64,
    time: Duration,
    crc: u32,
    ok: bool,
) -> std::io::Result<()> {
    writeln!(
        out,
        "  {label:<13}  {:>10} in {:>7.3} s  {:>12}  CRC-32 {crc:08x} {}",
        human_size(bytes),
        time.as_secs_f64(),
        rate(bytes, time),
        if ok { "ok" } else { "MISMATCH" }
    )
}

/// Runs `svshm demo`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let exe = std::env::current_exe().context("find this program's path to start the reader")?;
    let name = format!("svshm-demo-{}", std::process::id());
    let mut pattern = Pattern::new();
    writeln!(
        out,
        "svshm demo: {} of generated data from this process (pid {}) to another, checked with CRC-32\n",
        crate::util::bytes_text(args.bytes),
        std::process::id()
    )?;
    out.flush()?;
    let mut want = crc32fast::Hasher::new();
    let mut left = args.bytes;
    while left > 0 {
        let s = pattern.next(left.min(1 << 20) as usize);
        want.update(s);
        left -= s.len() as u64;
    }
    let want = want.finalize();

    // ---- through the channel
    let ring = args.ring.to_string();
    let child = Command::new(&exe)
        .args(["read", &name, "--checksum", "--wait", "30", "--ring", &ring])
        .stdout(Stdio::piped())
        .spawn()
        .context("start the reader process")?;
    let mut child = ChildGuard(child);
    let opts = Options::new()
        .capacity(
            usize::try_from(args.ring).map_err(|_| anyhow!("--ring {} is too large", args.ring))?,
        )
        .timeout(Some(Duration::from_secs(30)));
    let ep = Endpoint::name(&name);
    let mut w = StreamWriter::connect(&ep, &opts).map_err(|e| anyhow!("write to {ep}: {e}"))?;
    let seg = w.segment_id();
    writeln!(
        out,
        "  {ep}: segment {seg}, ring {}, reader pid {}",
        human_size(w.capacity() as u64),
        w.peer_pid()
    )?;
    out.flush()?;
    pattern.rewind();
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < args.bytes {
        let mut chunk = w
            .write_chunk_upto((args.bytes - sent).min(usize::MAX as u64) as usize)
            .map_err(|e| anyhow!("write to {ep}: {e} after {sent} bytes"))?;
        let n = chunk.len();
        let (first, second) = chunk.as_mut_slices();
        pattern.fill(first);
        pattern.fill(second);
        chunk.commit_all();
        sent += n as u64;
    }
    w.close().map_err(|e| anyhow!("close {ep}: {e}"))?;
    let (got, crc) = report(&mut child, "reader")?;
    let shm_time = t0.elapsed();
    let shm_ok = got == args.bytes && crc == want;
    result_line(out, "shared memory", got, shm_time, crc, shm_ok)?;
    out.flush()?;

    // ---- through a pipe, same data, same checks
    let mut pipe_result = None;
    if !args.no_pipe {
        let child = Command::new(&exe)
            .arg("demo-sink")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start the pipe reader process")?;
        let mut child = ChildGuard(child);
        pattern.rewind();
        let t0 = Instant::now();
        {
            let mut stdin = child
                .0
                .stdin
                .take()
                .ok_or_else(|| anyhow!("no pipe to the reader"))?;
            let mut left = args.bytes;
            while left > 0 {
                let s = pattern.next(left.min(128 << 10) as usize);
                stdin.write_all(s).context("write into the pipe")?;
                left -= s.len() as u64;
            }
        }
        let (pgot, pcrc) = report(&mut child, "pipe reader")?;
        let pipe_time = t0.elapsed();
        let ok = pgot == args.bytes && pcrc == want;
        result_line(out, "pipe", pgot, pipe_time, pcrc, ok)?;
        pipe_result = Some((ok, pipe_time));
    }
    if pipe_result.is_some() && args.bytes < MIN_COMPARED {
        writeln!(
            out,
            "  {} are too few to compare the speeds (start-up dominates); give --bytes {} or more (expected CRC-32 {want:08x})",
            crate::util::bytes_text(args.bytes),
            human_size(MIN_COMPARED)
        )?;
    } else if let Some((_, pipe_time)) = pipe_result {
        let x = pipe_time.as_secs_f64() / shm_time.as_secs_f64().max(1e-9);
        writeln!(
            out,
            "  shared memory moved the data {x:.1}x as fast as the pipe (expected CRC-32 {want:08x})"
        )?;
    }

    // ---- nothing left behind
    let key = svshm_channel::channel_key(&name);
    let left: Vec<_> = svshm::proc_segments()?
        .into_iter()
        .filter(|s| s.id == seg || (s.key == key && !key.is_private()))
        .collect();
    if left.is_empty() {
        writeln!(
            out,
            "  no segment left: segment {seg} and key {key} are gone from /proc/sysvipc/shm (check: ipcs -m)"
        )?;
    } else {
        writeln!(
            out,
            "  LEFT BEHIND: {} segment(s): {:?}",
            left.len(),
            left.iter().map(|s| s.id).collect::<Vec<_>>()
        )?;
    }
    out.flush()?;
    if !shm_ok || pipe_result.is_some_and(|(ok, _)| !ok) || !left.is_empty() {
        crate::util::warn("demo failed: see the lines marked MISMATCH or LEFT BEHIND above");
        return Err(AlreadyReported.into());
    }
    Ok(())
}

/// `svshm demo-sink`: reads stdin to the end, prints `BYTES CRC`.
pub fn sink(out: &mut dyn Write) -> Result<()> {
    let mut input = std::io::stdin().lock();
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = crc32fast::Hasher::new();
    let mut n_total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow!(e).context("read stdin")),
        };
        crc.update(&buf[..n]);
        n_total += n as u64;
    }
    writeln!(out, "{n_total} {:08x}", crc.finalize())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_a_repeating_stream() {
        let mut p = Pattern::new();
        let mut a = vec![0u8; Pattern::LEN + 100];
        p.fill(&mut a);
        assert_eq!(a[..100], a[Pattern::LEN..]);
        p.rewind();
        let mut b = Vec::new();
        while b.len() < a.len() {
            b.extend_from_slice(p.next(3000));
        }
        b.truncate(a.len());
        assert_eq!(a, b);
    }
}
