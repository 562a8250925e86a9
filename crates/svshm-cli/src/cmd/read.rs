//! `svshm read`: channel → stdout, byte-exact (the reader half of TLPI's
//! svshm_xfr_reader, done right).

use crate::chan::ChannelArgs;
use crate::progress::Progress;
use anyhow::{Result, anyhow};
use std::io::Write;
use svshm_channel::{Error as ChanError, Role, StreamReader};

const AFTER_HELP: &str = "\
Either side may start first: the first creates the channel, the second joins it;
each waits for the other (for --wait seconds, default forever). After a second
of waiting it says what for and the command that starts the other side: on a
terminal, or anywhere with -v or --progress. Once both are connected the
segment is marked for destruction, so nothing is left behind however the two
programs end. If the writer dies without closing, everything it
had sent is written out, then svshm read exits 1 saying how many bytes came.

Examples:
  svshm read logs > out.bin              while elsewhere: svshm write logs in.bin
  svshm read -k 0x5eed0001 --wait 10 | tar x
  svshm read --id 131090                 join a channel by segment id (see svshm ls)
  svshm read logs --checksum             verify: print byte count and CRC-32, not the data";

/// Receive a byte stream from a channel and write it to stdout.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The channel's name (or use -k, --path or --id).
    #[arg(value_name = "CHANNEL")]
    name: Option<String>,
    #[command(flatten)]
    chan: ChannelArgs,
    /// Show bytes received and the rate on stderr, and a summary at the end.
    #[arg(long)]
    progress: bool,
    /// Do not write the data: print the byte count and its CRC-32 (hex) instead.
    #[arg(long)]
    checksum: bool,
}

/// Runs `svshm read`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let ep = args.chan.endpoint(args.name.as_deref())?;
    let opts = args.chan.options()?;
    args.chan.await_peer_creation(&ep, &opts)?;
    let notice = args
        .chan
        .wait_notice(Role::Reader, args.name.as_deref(), &ep, args.progress);
    let connected = StreamReader::connect(&ep, &opts);
    notice.connected(connected.as_ref().ok().map(StreamReader::peer_pid));
    let mut reader = connected.map_err(|e| args.chan.connect_error(e, "read from", &ep))?;
    for r in reader.reclaimed() {
        crate::util::warn(r);
    }
    let mut progress = Progress::new(args.progress, None, "received");
    progress.restart();
    let mut crc = crc32fast::Hasher::new();
    let mut got: u64 = 0;
    let piece = crate::chan::piece(reader.capacity());
    loop {
        let chunk = match reader.read_chunk() {
            Ok(c) => c,
            Err(e) => {
                progress.abandon();
                out.flush().map_err(|e| {
                    crate::util::output_failed(e, got, &format!("read from {ep}"), "")
                })?;
                return Err(match e {
                    ChanError::PeerDied { pid, .. } => anyhow!(
                        "read from {ep}: the writer (pid {pid}) died without closing the channel; \
                         {got} bytes were received and written out, all that it had sent — the data is incomplete"
                    ),
                    e => anyhow!("read from {ep}: {e} ({got} bytes received before)"),
                });
            }
        };
        if chunk.is_empty() {
            break;
        }
        // One piece at a time, released at once: the writer refills the rest
        // of the ring while this side writes its piece out.
        let (first, second) = chunk.as_slices();
        let first = &first[..first.len().min(piece)];
        let second = &second[..second.len().min(piece - first.len())];
        let n = first.len() + second.len();
        if args.checksum {
            crc.update(first);
            crc.update(second);
        } else {
            // Pass data on as it comes (like cat): a consumer may be waiting.
            let written = out
                .write_all(first)
                .and_then(|()| out.write_all(second))
                .and_then(|()| out.flush());
            if let Err(e) = written {
                progress.abandon();
                // Broken pipe: the consumer left; main ends quietly.
                return Err(crate::util::output_failed(
                    e,
                    got,
                    &format!("read from {ep}"),
                    "; the channel's remaining data is lost (the writer sees the reader leave)",
                ));
            }
        }
        chunk.consume(n);
        got += n as u64;
        progress.set(got);
    }
    progress.finish(got);
    if args.checksum {
        writeln!(out, "{got} {:08x}", crc.finalize())
            .and_then(|()| out.flush())
            .map_err(|e| crate::util::output_failed(e, 0, &format!("read from {ep}"), ""))?;
    }
    drop(reader);
    Ok(())
}
