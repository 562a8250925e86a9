//! Glue to the svshm-channel crate: recognising and describing channel segments.

use crate::util::{Field, Obj};
use serde_json::json;
use svshm_channel::{ChannelStatus, Kind, PeerStatus};

/// Whether a segment's size fits a channel; checked before attaching anything,
/// so that listing does not touch (attach time, last pid) other segments.
pub fn might_be_channel(info: &svshm::SegmentInfo) -> bool {
    svshm_channel::might_be_channel(info)
}

/// The channel header of a segment, if it holds one we can read. Reading it
/// attaches the segment read-only for a moment.
pub fn inspect(info: &svshm::SegmentInfo) -> Option<ChannelStatus> {
    if !might_be_channel(info) {
        return None;
    }
    svshm_channel::inspect(info.id).ok().flatten()
}

/// `stream` or `messages`.
pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Stream => "stream",
        Kind::Messages => "messages",
    }
}

/// A peer for a table cell: `812`, `812(closed)`, `812(dead)`, `-`.
pub fn peer_cell(p: Option<PeerStatus>) -> String {
    match p {
        None => "-".to_string(),
        Some(p) if p.closed => format!("{}(closed)", p.pid),
        Some(p) if !p.alive => format!("{}(dead)", p.pid),
        Some(p) => p.pid.to_string(),
    }
}

/// A peer as a JSON object, or null.
pub fn peer_obj(p: Option<PeerStatus>) -> Field {
    Field::Obj(p.map(|p| {
        Obj::new([
            ("pid", json!(p.pid)),
            ("alive", json!(p.alive)),
            ("closed", json!(p.closed)),
        ])
    }))
}

/// The channel as a JSON object.
pub fn status_obj(s: &ChannelStatus) -> Obj {
    let mut o = Obj::new([
        ("name", json!(s.name)),
        ("kind", json!(kind_name(s.kind))),
        ("state", json!(s.state())),
        ("ready", json!(s.ready)),
        ("capacity", json!(s.capacity)),
        ("fill", json!(s.fill)),
        ("written", json!(s.written)),
    ]);
    o.push("writer", peer_obj(s.writer));
    o.push("reader", peer_obj(s.reader));
    o
}

// ---------------------------------------------------------------- endpoints

use crate::util::usage_bail;
use anyhow::Result;
use std::path::PathBuf;
use svshm::Key;
use svshm_channel::{Endpoint, Options};

/// The smallest ring a channel has (the library rounds smaller sizes up).
const MIN_RING: usize = 4096;

/// How a channel is named on the command line, shared by `write` and `read`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChannelArgs {
    /// The channel by key instead of by name (decimal, 0x hex or 0 octal).
    #[arg(short, long, value_parser = crate::util::key_arg, help_heading = "Channel")]
    pub key: Option<Key>,
    /// The channel by ftok(PATH, --proj) instead of by name.
    #[arg(
        short = 'f',
        long = "path",
        value_name = "PATH",
        help_heading = "Channel"
    )]
    pub path: Option<PathBuf>,
    /// Project id for ftok with --path (1..=255).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "path", value_parser = clap::value_parser!(u8).range(1..), help_heading = "Channel")]
    pub proj: u8,
    /// Ring size if this side creates the channel: at least 4K; K/M/G/T
    /// suffixes (powers of 1024); rounded up to a power of two.
    #[arg(long, value_name = "SIZE", value_parser = crate::util::size_arg, default_value = "256K", help_heading = "Channel")]
    pub ring: u64,
    /// Permission bits (octal). Give both sides the same -m: the side that
    /// creates the channel sets it, and the side that joins refuses a segment
    /// whose mode is wider than its own -m.
    #[arg(short, long, value_parser = crate::util::mode_arg, default_value = "600", help_heading = "Channel")]
    pub mode: u32,
    /// Join an existing channel segment by id (see `svshm ls`), e.g. one
    /// created with IPC_PRIVATE, instead of by name.
    #[arg(long, value_parser = crate::util::id_arg, help_heading = "Channel")]
    pub id: Option<i32>,
    /// Wait at most this many seconds for the other side to connect (default: forever; so does a century or more).
    #[arg(long, value_name = "SECS", value_parser = crate::util::secs_arg, allow_negative_numbers = true, help_heading = "Channel")]
    pub wait: Option<crate::util::Secs>,
}

impl ChannelArgs {
    /// Whether the channel is given by an option rather than a positional NAME.
    pub fn has_option_endpoint(&self) -> bool {
        self.key.is_some() || self.path.is_some() || self.id.is_some()
    }

    /// The endpoint and a label for messages (`channel "name"`, ...).
    pub fn endpoint(&self, name: Option<&str>) -> Result<Endpoint> {
        let id = self.id;
        let given = usize::from(name.is_some())
            + usize::from(self.key.is_some())
            + usize::from(self.path.is_some())
            + usize::from(id.is_some());
        if given == 0 {
            usage_bail!(
                "no channel given; name it (e.g. `logs`, the same name on both sides), or give -k KEY, --path PATH or --id ID"
            );
        }
        if given > 1 {
            usage_bail!("give the channel one way only: a NAME, -k KEY, --path PATH or --id ID");
        }
        Ok(if let Some(n) = name {
            if n.is_empty() {
                usage_bail!("the channel name is empty; give a name like `logs`");
            }
            Endpoint::name(n)
        } else if let Some(k) = self.key {
            if k.is_private() {
                usage_bail!(
                    "key 0 is IPC_PRIVATE and names no channel; give a non-zero key or a name"
                );
            }
            Endpoint::key(k)
        } else if let Some(p) = &self.path {
            Endpoint::path(p.clone(), self.proj)
        } else {
            Endpoint::id(id.unwrap_or_default())
        })
    }

    /// The error for a failed connect of `side` ("write to", "read from") to
    /// `ep`. A segment refused for its mode alone (ours by owner and creator,
    /// but wider than our -m) is two sides given different -m, not squatting:
    /// say so, with the -m that matches.
    pub fn connect_error(
        &self,
        e: svshm_channel::Error,
        side: &str,
        ep: &Endpoint,
    ) -> anyhow::Error {
        if let svshm_channel::Error::Foreign { id, .. } = &e {
            let me = svshm::euid();
            if let Ok(info) = svshm::Segment::from_id(*id).stat() {
                // 0o100 marks a channel still being initialised, not a mode.
                let perms = info.permissions() & !0o100;
                if info.uid == me && info.creator_uid == me && perms & !self.mode != 0 {
                    return anyhow::anyhow!(
                        "{side} {ep}: the channel's segment {id} is yours but has mode {perms:03o}, wider than this side's -m {:03o}: both sides must give the same -m; run this side with -m {perms:03o} (or start both again with the same -m)",
                        self.mode
                    );
                }
            }
        }
        anyhow::anyhow!("{side} {ep}: {e}")
    }

    /// Channel options from the flags.
    pub fn options(&self) -> Result<Options> {
        let timeout = self.wait.and_then(crate::util::Secs::duration);
        let Some(ring) = usize::try_from(self.ring)
            .ok()
            .filter(|&r| r <= svshm_channel::MAX_CAPACITY)
        else {
            usage_bail!(
                "--ring {} exceeds the largest ring ({}); give at most --ring {}",
                self.ring,
                crate::util::human_size(svshm_channel::MAX_CAPACITY as u64),
                crate::util::human_1letter(svshm_channel::MAX_CAPACITY as u64)
            );
        };
        if ring < MIN_RING {
            usage_bail!(
                "--ring {} is below the smallest ring ({MIN_RING} bytes, one page); give at least --ring 4K",
                self.ring
            );
        }
        Ok(Options::new()
            .capacity(ring)
            .mode(self.mode)
            .timeout(timeout))
    }
}
