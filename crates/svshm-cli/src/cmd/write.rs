//! `svshm write`: stdin or FILE → channel (the writer half of TLPI's
//! svshm_xfr_writer, done right).

use crate::chan::ChannelArgs;
use crate::progress::Progress;
use anyhow::{Context, Result, anyhow, bail};
use std::io::{Read, Write};
use std::path::PathBuf;
use svshm_channel::{Error as ChanError, Role, StreamWriter};

const AFTER_HELP: &str = "\
Either side may start first: the first creates the channel (ring of --ring bytes,
mode -m), the second joins it; each waits for the other (for --wait seconds,
default forever). After a second of waiting it says what for and the command
that starts the other side: on a terminal, or anywhere with -v or --progress.
Once both are connected the segment is marked for destruction, so nothing is
left behind however the two programs end. If the reader dies or
closes early, svshm write exits 1 saying how many bytes had been written.

Examples:
  svshm write logs in.bin                while elsewhere: svshm read logs > out.bin
  tar c dir | svshm write backup --ring 8M --progress
  svshm write -k 0x5eed0001 --wait 10 < data
  svshm write --id 131090 data.bin        join a channel by segment id (see svshm ls)";

/// Send stdin (or FILE) through a channel to `svshm read`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The channel's name (or use -k, --path or --id; then the only argument
    /// is the FILE).
    #[arg(value_name = "CHANNEL")]
    channel: Option<String>,
    /// The one file to send (default stdin; `-` is stdin too).
    #[arg(value_name = "FILE")]
    file: Option<String>,
    #[command(flatten)]
    chan: ChannelArgs,
    /// Show bytes sent, the rate and (for a FILE) the ETA on stderr, and a summary.
    #[arg(long)]
    progress: bool,
}

/// Runs `svshm write`.
pub fn run(args: Args, _out: &mut dyn Write) -> Result<()> {
    let (name, file) = if args.chan.has_option_endpoint() {
        if args.file.is_some() {
            crate::util::usage_bail!(
                "with -k, --path or --id the channel is already given; the only argument is the FILE to send"
            );
        }
        (None, args.channel)
    } else {
        (args.channel, args.file)
    };
    let file = file.filter(|f| f != "-").map(PathBuf::from);
    let (mut input, total): (Box<dyn Read>, Option<u64>) = match &file {
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| {
                format!(
                    "open {}: check the path and that you may read it",
                    p.display()
                )
            })?;
            let meta = f.metadata().ok();
            if meta.as_ref().is_some_and(|m| m.is_dir()) {
                bail!(
                    "{} is a directory; give a file to send (for a directory: `tar c DIR | svshm write NAME`)",
                    p.display()
                );
            }
            let len = meta.filter(|m| m.is_file()).map(|m| m.len());
            (Box::new(f), len)
        }
        None => (Box::new(std::io::stdin().lock()), None),
    };
    let ep = args.chan.endpoint(name.as_deref())?;
    let opts = args.chan.options()?;
    args.chan.await_peer_creation(&ep, &opts)?;
    let notice = args
        .chan
        .wait_notice(Role::Writer, name.as_deref(), &ep, args.progress);
    let connected = StreamWriter::connect(&ep, &opts);
    notice.connected(connected.as_ref().ok().map(StreamWriter::peer_pid));
    let mut writer = connected.map_err(|e| args.chan.connect_error(e, "write to", &ep))?;
    for r in writer.reclaimed() {
        crate::util::warn(r);
    }
    let mut progress = Progress::new(args.progress, total, "sent");
    progress.restart();
    let mut sent: u64 = 0;
    let fail = |e: ChanError, sent: u64, cap: usize| match e {
        ChanError::PeerDied { pid, .. } => anyhow!(
            "write to {ep}: the reader (pid {pid}) died without closing the channel; {sent} bytes had been \
             written into the channel (the last up to {} of them may not have been read)",
            crate::util::human_size(cap as u64)
        ),
        ChanError::Closed { .. } => anyhow!(
            "write to {ep}: the reader closed the channel before the end; {sent} bytes had been written into it"
        ),
        e => anyhow!("write to {ep}: {e} ({sent} bytes written before)"),
    };
    let cap = writer.capacity();
    loop {
        // One piece at a time, published at once, so that the reader drains
        // one piece while this side reads the next.
        let mut chunk = match writer.write_chunk_upto(crate::chan::piece(cap)) {
            Ok(c) => c,
            Err(e) => {
                progress.abandon();
                return Err(fail(e, sent, cap));
            }
        };
        // Read straight into the ring: the first slice runs to the ring's
        // end, the next chunk starts over at its beginning.
        let n = match input.read(chunk.as_mut_slices().0) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                progress.abandon();
                let what = file
                    .as_ref()
                    .map_or("stdin".to_string(), |p| p.display().to_string());
                // Dropping (or closing) the writer would end the stream
                // cleanly, and the reader would take the truncated data for all
                // of it: abort, so the reader reports the data as incomplete.
                writer.abort();
                return Err(anyhow!(e).context(format!(
                    "write to {ep}: read {what} ({sent} bytes sent before; the reader is told the data is incomplete)"
                )));
            }
        };
        chunk.commit(n);
        if n == 0 {
            break;
        }
        sent += n as u64;
        progress.set(sent);
    }
    writer.close().map_err(|e| fail(e, sent, cap))?;
    progress.finish(sent);
    Ok(())
}
