//! `svshm pub` and `svshm sub`: stdin → topic → every subscriber's stdout.

use crate::util::{Secs, usage_bail};
use anyhow::{Result, anyhow};
use std::io::{BufRead, Read, Write};
use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Error as ChanError, Options, Overflow, Publisher, Subscriber};

const PUB_AFTER_HELP: &str = "\
The topic exists while svshm pub runs: subscribers join and leave at any time.
By default (backpressure) the publisher waits for the slowest live subscriber,
so nothing is lost; with --lossy it never waits, and a subscriber that falls a
ring behind skips what was overwritten (svshm sub says how many). At the end of
stdin the topic is closed cleanly: subscribers print what is left, then exit 0.
If svshm pub fails or is killed, subscribers exit 1.

Example:
  svshm sub ticks & seq 1 5 | svshm pub ticks --wait-for 1";

/// Create a topic and publish stdin to its subscribers, one message a line.
#[derive(Debug, clap::Args)]
#[command(after_help = PUB_AFTER_HELP)]
pub struct PubArgs {
    /// The topic's name (per user; `svshm sub NAME` joins it).
    #[arg(value_name = "NAME")]
    name: String,
    /// Read messages framed: each a 4-byte little-endian length, then its
    /// bytes (binary data, newlines and all). Default: one message per line,
    /// the newline stripped.
    #[arg(long)]
    framed: bool,
    /// The most subscribers the topic admits at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    subscribers: usize,
    /// Never wait for slow subscribers: overwrite the oldest messages (they
    /// lose them, and are told how many). Default: backpressure, nothing lost.
    #[arg(long)]
    lossy: bool,
    /// The largest message (K/M/G suffixes); a longer line or frame is an error.
    #[arg(long, value_name = "BYTES", value_parser = crate::util::size_arg, default_value = "64K")]
    max_message: u64,
    /// Ring size: at least 4K, rounded up to a power of two, and grown to hold
    /// two of the largest messages.
    #[arg(long, value_name = "SIZE", value_parser = crate::util::size_arg, default_value = "1M")]
    ring: u64,
    /// Permission bits (octal): who may subscribe. Subscribers of another
    /// user give --peer-user and the same -m.
    #[arg(short, long, value_parser = crate::util::mode_arg, default_value = "600")]
    mode: u32,
    /// Wait until N subscribers have joined before publishing (for scripts).
    #[arg(long, value_name = "N")]
    wait_for: Option<usize>,
    /// With --wait-for: give up after this many seconds (default: forever).
    #[arg(long, value_name = "SECS", value_parser = crate::util::secs_arg, allow_negative_numbers = true, requires = "wait_for")]
    timeout: Option<Secs>,
}

const SUB_AFTER_HELP: &str = "\
Prints each message followed by a newline (or --framed), as it comes, until the
publisher closes the topic (exit 0). If the publisher dies or gives up midway,
everything it had published is printed first, then svshm sub exits 1. On a lossy
topic a subscriber that falls behind says on stderr how many messages it skipped
and goes on.

Example:
  svshm sub ticks --count 10 --timeout 5     while elsewhere: seq 100 | svshm pub ticks";

/// Subscribe to a topic and print its messages.
#[derive(Debug, clap::Args)]
#[command(after_help = SUB_AFTER_HELP)]
pub struct SubArgs {
    /// The topic's name (as given to `svshm pub`).
    #[arg(value_name = "NAME")]
    name: String,
    /// Print messages framed: each a 4-byte little-endian length, then its
    /// bytes (what `svshm pub --framed` reads).
    #[arg(long)]
    framed: bool,
    /// Stop after N messages.
    #[arg(short = 'n', long, value_name = "N")]
    count: Option<u64>,
    /// First receive up to K recent messages still in the ring (published
    /// before this subscriber joined); default: only what comes after.
    #[arg(long, value_name = "K", default_value_t = 0)]
    history: usize,
    /// How many seconds to wait for the topic to exist (default: forever).
    #[arg(long, value_name = "SECS", value_parser = crate::util::secs_arg, allow_negative_numbers = true)]
    timeout: Option<Secs>,
    /// Permission bits (octal) the topic may have at most; give the
    /// publisher's -m.
    #[arg(short, long, value_parser = crate::util::mode_arg, default_value = "600")]
    mode: u32,
    /// Subscribe to the topic USER (a name or uid) publishes.
    #[arg(long, value_name = "USER")]
    peer_user: Option<String>,
}

/// The uid of a --peer-user argument.
pub fn peer_uid(user: Option<&str>) -> Result<Option<u32>> {
    let Some(user) = user else {
        return Ok(None);
    };
    match crate::util::lookup_uid(user) {
        Some(uid) => Ok(Some(uid)),
        None => usage_bail!("--peer-user {user}: no such user; give a user name or a numeric uid"),
    }
}

/// A name for an endpoint, refusing the empty one.
pub fn named(name: &str, what: &str) -> Result<Endpoint> {
    if name.is_empty() {
        let like = if what == "topic" { "ticks" } else { "upper" };
        usage_bail!("the {what} name is empty; give a name like `{like}`");
    }
    Ok(Endpoint::name(name))
}

/// A byte count as a `usize` no larger than `max`, else a usage error.
pub fn bounded(v: u64, flag: &str, min: u64, max: u64) -> Result<usize> {
    if v < min || v > max {
        usage_bail!(
            "{flag} {v} is out of range: give {} to {}",
            crate::util::human_1letter(min),
            crate::util::human_1letter(max)
        );
    }
    Ok(v as usize)
}

/// Runs `svshm pub`.
pub fn run_pub(args: PubArgs, _out: &mut dyn Write) -> Result<()> {
    let ep = named(&args.name, "topic")?;
    let max = bounded(args.max_message, "--max-message", 1, 1 << 30)?;
    let ring = bounded(args.ring, "--ring", 4096, 1 << 40)?;
    if args.subscribers == 0 || args.subscribers > svshm_channel::MAX_SUBSCRIBERS {
        usage_bail!(
            "--subscribers {} is out of range: give 1 to {}",
            args.subscribers,
            svshm_channel::MAX_SUBSCRIBERS
        );
    }
    // Room for two of the largest messages, each with its frame header.
    let ring = ring.max((2 * (max + 64)).next_power_of_two());
    let opts = Options::new()
        .capacity(ring)
        .max_message(max)
        .mode(args.mode)
        .subscribers(args.subscribers)
        .overflow(if args.lossy {
            Overflow::Lossy
        } else {
            Overflow::Backpressure
        });
    let topic = format!("topic \"{}\"", args.name);
    let mut publisher = Publisher::create(&ep, &opts).map_err(|e| match e {
        ChanError::InUse { pid, .. } => anyhow::Error::new(crate::util::Hinted(
            format!(
                "publish to {topic}: it exists, published by pid {pid}: a topic has one publisher"
            ),
            format!(
                "`svshm sub {0}` subscribes to it; `svshm ls --peek` lists topics",
                args.name
            ),
        )),
        e => anyhow!(e).context(format!("publish to {topic}")),
    })?;
    for r in publisher.reclaimed() {
        crate::util::warn(r);
    }
    if let Some(n) = args.wait_for {
        let deadline = args
            .timeout
            .and_then(Secs::duration)
            .and_then(|d| Instant::now().checked_add(d));
        while publisher.subscribers() < n {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // Nothing published: subscribers that came see an aborted topic.
                return Err(crate::util::Hinted(
                    format!(
                        "publish to {topic}: {} of {n} subscribers joined within --timeout",
                        publisher.subscribers()
                    ),
                    format!("start them with `svshm sub {}`", args.name),
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut input = std::io::stdin().lock();
    let mut buf = Vec::new();
    let mut sent: u64 = 0;
    loop {
        buf.clear();
        let more = if args.framed {
            read_frame(&mut input, &mut buf, max)
        } else {
            read_line(&mut input, &mut buf, max)
        };
        match more {
            Ok(true) => {}
            Ok(false) => break,
            // Dropping the publisher without close aborts the topic:
            // subscribers do not take the cut-short input for all of it.
            Err(e) => return Err(e.context(format!("publish to {topic} ({sent} messages sent)"))),
        }
        publisher.send(&buf).map_err(|e| {
            anyhow!(e).context(format!("publish to {topic} ({sent} messages sent)"))
        })?;
        sent += 1;
    }
    publisher
        .close()
        .map_err(|e| anyhow!(e).context(format!("close {topic}")))?;
    Ok(())
}

/// One line into `buf`, without its newline; false at the end of input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> Result<bool> {
    let n = input
        .read_until(b'\n', buf)
        .map_err(|e| anyhow!(e).context("read stdin"))?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    if buf.len() > max {
        anyhow::bail!(
            "a line of {} bytes is longer than --max-message {max}; give a larger --max-message",
            buf.len()
        );
    }
    Ok(true)
}

/// One length-prefixed frame into `buf`; false at the end of input between
/// frames.
fn read_frame(input: &mut impl Read, buf: &mut Vec<u8>, max: usize) -> Result<bool> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => anyhow::bail!("stdin ended inside a frame's 4-byte length"),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow!(e).context("read stdin")),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        anyhow::bail!(
            "a frame of {len} bytes is longer than --max-message {max} (is the input framed: a 4-byte little-endian length, then the bytes?)"
        );
    }
    buf.resize(len, 0);
    input
        .read_exact(buf)
        .map_err(|e| anyhow!(e).context(format!("stdin ended inside a frame of {len} bytes")))?;
    Ok(true)
}

/// Runs `svshm sub`.
pub fn run_sub(args: SubArgs, out: &mut dyn Write) -> Result<()> {
    let ep = named(&args.name, "topic")?;
    let mut opts = Options::new()
        .mode(args.mode)
        .history(args.history)
        .timeout(args.timeout.and_then(Secs::duration));
    if let Some(uid) = peer_uid(args.peer_user.as_deref())? {
        opts = opts.owner(uid);
    }
    let topic = format!("topic \"{}\"", args.name);
    let mut sub = Subscriber::connect(&ep, &opts).map_err(|e| match e {
        ChanError::Timeout { .. } => anyhow::Error::new(crate::util::Hinted(
            format!("subscribe to {topic}: no publisher created it within --timeout"),
            format!("start one with `… | svshm pub {}`", args.name),
        )),
        e => anyhow!(e).context(format!("subscribe to {topic}")),
    })?;
    let publisher = sub.publisher_pid();
    let mut got: u64 = 0;
    let done = |got: u64| args.count.is_some_and(|c| got >= c);
    while !done(got) {
        // Print what is there at once; flush only before waiting for more.
        let next = match sub.try_recv() {
            Ok(m) => Ok(Some(m)),
            Err(svshm_channel::TryRecvError::Empty) => {
                out.flush()?;
                sub.recv()
            }
            Err(svshm_channel::TryRecvError::Disconnected) => Ok(None),
            Err(svshm_channel::TryRecvError::Failed(e)) => Err(e),
        };
        let msg = match next {
            Ok(m) => m,
            Err(ChanError::Lagged { missed }) => {
                out.flush()?;
                crate::util::warn(format_args!(
                    "skipped {missed} messages (the publisher overwrote them)"
                ));
                continue;
            }
            Err(e) => return Err(sub_error(e, &topic, publisher, got, out)),
        };
        let Some(msg) = msg else { break };
        if args.framed {
            let len = u32::try_from(msg.len()).map_err(|_| anyhow!("message too long to frame"))?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(&msg)?;
        } else {
            out.write_all(&msg)?;
            out.write_all(b"\n")?;
        }
        got += 1;
    }
    out.flush()?;
    Ok(())
}

/// The error that ends `svshm sub`, after flushing what was received.
fn sub_error(
    e: ChanError,
    topic: &str,
    publisher: i32,
    got: u64,
    out: &mut dyn Write,
) -> anyhow::Error {
    let _ = out.flush();
    match e {
        ChanError::PeerDied { pid, .. } => anyhow!(
            "{topic}: the publisher (pid {pid}) died without closing the topic; {got} messages were received, all that it had published to this subscriber"
        ),
        ChanError::Aborted { .. } => anyhow!(
            "{topic}: the publisher (pid {publisher}) gave up before the end of its input; {got} messages were received"
        ),
        e => anyhow!(e).context(format!("{topic} ({got} messages received)")),
    }
}
