//! `svshm dump`: a segment's bytes, raw or as an xxd-style hex dump.

use anyhow::{Result, bail};
use std::io::{IsTerminal, Write};
use svshm::Segment;

const AFTER_HELP: &str = "\
Reading the bytes attaches the segment read-only (SHM_RDONLY) while it dumps, so
read permission is enough; like any attach, it sets the segment's last attach/detach
pid and times and raises its attach count meanwhile. Other processes may be writing
it meanwhile: the dump is a snapshot taken in chunks.

On a terminal the dump is a hex view (as with --hex), so that raw bytes cannot
drive the terminal; redirected, it is the raw bytes (--raw forces them anywhere).

Examples:
  svshm dump 5 --hex --length 64          the first 64 bytes, like xxd
  svshm dump 5 --offset 4K --length 1K > part.bin
  svshm dump 5 | cmp - expected.bin";

/// Print a segment's bytes (raw to stdout, or a hex dump).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The segment id.
    #[arg(value_name = "ID", value_parser = crate::util::id_arg)]
    id: i32,
    /// Start at this byte offset (K/M/G suffixes accepted).
    #[arg(short, long, value_parser = crate::util::size_arg, default_value = "0")]
    offset: u64,
    /// Dump this many bytes (default: to the end of the segment).
    #[arg(short, long, value_parser = crate::util::size_arg)]
    length: Option<u64>,
    /// Print an xxd-style hex dump instead of raw bytes (the default on a terminal).
    #[arg(short = 'x', long, conflicts_with = "raw")]
    hex: bool,
    /// Print the raw bytes even to a terminal.
    #[arg(short, long)]
    raw: bool,
}

/// One xxd line: `00000010: 6865 6c6c 6f0a                           hello.`
pub fn hex_line(offset: u64, chunk: &[u8]) -> String {
    let mut s = format!("{offset:08x}: ");
    for i in 0..16 {
        match chunk.get(i) {
            Some(b) => s.push_str(&format!("{b:02x}")),
            None => s.push_str("  "),
        }
        if i % 2 == 1 {
            s.push(' ');
        }
    }
    s.push(' ');
    s.extend(chunk.iter().map(|&b| {
        if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '.'
        }
    }));
    s
}

/// Runs `svshm dump`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let att = Segment::from_id(args.id).attach_read_only()?;
    let size = att.len() as u64;
    if args.offset > size {
        bail!(
            "dump segment (id {}): offset {} is beyond the end of the {size}-byte segment; give --offset at most {size}",
            args.id,
            args.offset
        );
    }
    let length = args.length.unwrap_or(size - args.offset);
    if args.offset.checked_add(length).is_none_or(|end| end > size) {
        bail!(
            "dump segment (id {}): {} bytes from offset {} run past the end of the {size}-byte segment; give --length at most {}",
            args.id,
            length,
            args.offset,
            size - args.offset
        );
    }
    let hex = args.hex || !args.raw && std::io::stdout().is_terminal();
    const CHUNK: usize = 64 * 1024;
    let mut buf = vec![0u8; CHUNK];
    let mut pos = args.offset;
    let end = args.offset + length;
    // Bytes of output that reached stdout (flushed chunk by chunk, so that a
    // failed write can say how much got out).
    let mut written: u64 = 0;
    while pos < end {
        let n = ((end - pos) as usize).min(CHUNK);
        att.read_at(pos as usize, &mut buf[..n])?;
        let mut text = Vec::new();
        let chunk = if hex {
            for (i, line) in buf[..n].chunks(16).enumerate() {
                writeln!(text, "{}", hex_line(pos + (i * 16) as u64, line))?;
            }
            &text[..]
        } else {
            &buf[..n]
        };
        out.write_all(chunk)
            .and_then(|()| out.flush())
            .map_err(|e| {
                crate::util::output_failed(
                    e,
                    written,
                    &format!("dump segment (id {})", args.id),
                    "",
                )
            })?;
        written += chunk.len() as u64;
        pos += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxd_format() {
        assert_eq!(
            hex_line(0, b"hello, world!\n\x00\xff"),
            "00000000: 6865 6c6c 6f2c 2077 6f72 6c64 210a 00ff  hello, world!..."
        );
        assert_eq!(
            hex_line(0x10, b"hi"),
            "00000010: 6869                                     hi"
        );
    }
}
