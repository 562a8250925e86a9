//! `svshm top`: a live full-screen view of the host's segments and of the
//! caller's own channels (throughput, fill, peers), or one plain-text frame
//! with `--once`.

mod model;
mod ui;

use crate::cmd::ls::write_table;
use crate::util::{Secs, human_size, printable, status_words, usage_bail};
use anyhow::Result;
use model::{Sampler, Snapshot, SortKey, View};
use std::io::{IsTerminal, Write};
use std::time::Duration;

const AFTER_HELP: &str = "\
What it shows:
  Every segment of the host (IPC namespace), from the kernel's world-readable
  table /proc/sysvipc/shm: key, id, owner, size, resident (RSS) and swapped
  memory, attach count, status, creator and last pids, and the creator's command.
  Your channels: each svshm channel segment owned and created by your effective
  uid, with its name, state, fill, throughput and writer and reader (pid,
  marked (closed) or (dead)).

How channels are read:
  To read a channel's name, fill and cursors, top attaches each of YOUR
  channel-sized segments read-only, at every refresh, for a moment. That
  changes the segment's last attach/detach pid and times and, while it lasts,
  its attach count; it reads only the channel header, never the data, and
  never attaches another user's segment. --no-attach attaches nothing: channels
  are then listed as `?` in the segment table only.

Throughput:
  BYTES/S is how far the writer's cursor (total bytes written) moved between
  two refreshes, divided by the time between them. Messages per second are not
  shown: the cursors count bytes, and counting messages would mean reading the
  ring's contents.

Keys:
  q, Esc, Ctrl-C  quit
  s               cycle the sort: size, rss, nattch, id (largest first)
  /               filter: type text, Enter applies, Esc clears; rows whose
                  shown text contains it (any case) stay
  Up, Down, PageUp, PageDown, Home, End   scroll the focused table
  Tab             focus the other table
  r               refresh now
  ?               help

Examples:
  svshm top                          the live view, refreshed every second
  svshm top --interval 0.5 --sort rss
  svshm top --once                   one plain-text frame (rates over 1 s), for scripts
  svshm top --once --interval 0      one frame at once, without rates";

/// Live view of segments and of your channels' throughput (like top).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Seconds between refreshes (fractions allowed, at least 0.1; a century
    /// or more: only when you press r). With --once, the time the rates are
    /// measured over (0: one sample, no rates).
    #[arg(short = 'd', long, value_name = "SECS", default_value = "1", value_parser = crate::util::secs_arg, allow_negative_numbers = true)]
    interval: Secs,
    /// Print one frame as plain text (sizes in bytes, no colours or escape
    /// sequences) and exit; needs no terminal.
    #[arg(long)]
    once: bool,
    /// The initial order of the segment table.
    #[arg(long, value_enum, default_value_t = SortKey::Size)]
    sort: SortKey,
    /// Show only rows whose text (key, id, owner, channel name, command)
    /// contains TEXT, in any case.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Attach nothing, not even your own channels: no channel names, fill or
    /// throughput, only what the kernel's table says.
    #[arg(long)]
    no_attach: bool,
}

/// The shortest refresh interval on screen.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Runs `svshm top`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let view = View {
        sort: args.sort,
        filter: args.filter.clone().unwrap_or_default(),
    };
    let mut sampler = Sampler::new(!args.no_attach);
    if args.once {
        let Some(interval) = args.interval.duration() else {
            usage_bail!(
                "--once measures rates over --interval, which is too long to wait; give a number of seconds like 1, or 0 for no rates"
            );
        };
        let mut snap = sampler.sample()?;
        if !interval.is_zero() {
            std::thread::sleep(interval);
            snap = sampler.sample()?;
        }
        return write_plain(out, &snap, &view);
    }
    if let Some(d) = args.interval.duration()
        && d < MIN_INTERVAL
    {
        usage_bail!(
            "--interval {:.3} is shorter than the screen can follow; give at least 0.1 seconds (or use --once)",
            d.as_secs_f64()
        );
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        usage_bail!(
            "svshm top draws on a terminal, and stdin or stdout is not one; use `svshm top --once` for one plain-text frame"
        );
    }
    ui::run(sampler, view, args.interval.duration())
}

/// The header line: totals of the segment table and the sort.
fn summary(snap: &Snapshot, view: &View) -> String {
    let (size, rss, swap) = snap.totals();
    let mut s = format!(
        "{} segments, {} ({} resident, {} swapped); {} of your channels; sort: {}",
        snap.segs.len(),
        human_size(size),
        human_size(rss),
        human_size(swap),
        snap.chans.len(),
        view.sort.name(),
    );
    if !view.filter.is_empty() {
        s.push_str(&format!("; filter: {}", printable(&view.filter)));
    }
    s
}

/// One frame as plain text: the summary, the channel table, the segment
/// table. Sizes and rates in bytes; every cell escaped.
fn write_plain(out: &mut dyn Write, snap: &Snapshot, view: &View) -> Result<()> {
    writeln!(
        out,
        "svshm top {}: {}",
        chrono::Local::now().format("%H:%M:%S"),
        summary(snap, view)
    )?;
    writeln!(out)?;
    if snap.peeked {
        let over = match snap.over {
            Some(s) => format!("over {s:.1} s"),
            None => "not measured: one sample".to_string(),
        };
        writeln!(
            out,
            "Channels (yours; BYTES/S from the writer's cursor, {over}; messages/s cannot be read from cursors):"
        )?;
        let chans = view.chans(snap);
        let rows: Vec<Vec<String>> = chans
            .iter()
            .map(|c| {
                vec![
                    c.status.id.to_string(),
                    c.name().to_string(),
                    crate::chan::kind_name(c.status.kind).to_string(),
                    c.status.state().to_string(),
                    c.status.fill.to_string(),
                    format!("{}%", c.fill_percent()),
                    c.status.capacity.to_string(),
                    c.status.written.to_string(),
                    c.rate
                        .map_or_else(|| "-".to_string(), |r| format!("{}", r.round() as u64)),
                    c.writer(),
                    c.reader(),
                ]
            })
            .collect();
        write_table(
            out,
            &[
                "ID", "NAME", "KIND", "STATE", "FILL", "FILL%", "CAPACITY", "WRITTEN", "BYTES/S",
                "WRITER", "READER",
            ],
            &[
                true, false, false, false, true, true, true, true, true, false, false,
            ],
            &rows,
            true,
        )?;
        writeln!(out)?;
    } else {
        writeln!(out, "Channels: not read (--no-attach)")?;
        writeln!(out)?;
    }
    let segs = view.segs(snap);
    writeln!(out, "Segments (sort: {}):", view.sort.name())?;
    let rows: Vec<Vec<String>> = segs
        .iter()
        .map(|s| {
            let i = &s.info;
            vec![
                i.key.to_string(),
                i.id.to_string(),
                s.owner.clone(),
                i.size.to_string(),
                i.rss.map(|v| v.to_string()).unwrap_or_default(),
                i.swap.map(|v| v.to_string()).unwrap_or_default(),
                i.attach_count.to_string(),
                status_words(i).join(","),
                i.creator_pid.to_string(),
                i.last_pid.to_string(),
                s.channel.clone(),
                s.command.clone(),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "KEY", "ID", "OWNER", "SIZE", "RSS", "SWAP", "NATTCH", "STATUS", "CPID", "LPID",
            "CHANNEL", "COMMAND",
        ],
        &[
            false, true, true, true, true, true, true, false, true, true, false, false,
        ],
        &rows,
        true,
    )?;
    Ok(())
}
