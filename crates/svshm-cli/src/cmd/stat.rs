//! `svshm stat`: every field of one segment, its status words and the
//! processes attaching it (svshm_mon / `lsipc -m -i`, and more).

use crate::util::{
    Field, Obj, PeekArg, channel_sized_ring, ctime, group_or_gid, human_size, id_for_key, iso_time,
    perms_string, printable, process_cmdline, segment_info, status_words, user_or_uid, write_json,
};
use anyhow::Result;
use serde_json::json;
use std::io::Write;
use std::time::SystemTime;
use svshm::{Attacher, Key, SegmentInfo};
use svshm_channel::{ChannelStatus, Kind, SubscriberInfo};

/// A topic's live subscribers (none if it cannot be read).
fn topic_subscribers(id: i32) -> Vec<SubscriberInfo> {
    svshm_channel::topic::subscribers_of(id)
        .ok()
        .flatten()
        .unwrap_or_default()
}

const AFTER_HELP: &str = "\
Examples:
  svshm stat 5                 every field of segment 5
  svshm stat -k 0x5eed0001     the segment under a key
  svshm stat 5 --json | jq .attachers
  svshm stat 5 --peek          also read its channel header (attaches it read-only)
  svshm stat 5 --managed       also list a managed segment's named objects";

/// Show every field of one segment and who attaches it.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The segment id (as `svshm ls` shows it).
    #[arg(value_name = "ID", value_parser = crate::util::id_arg, required_unless_present = "key", conflicts_with = "key")]
    id: Option<i32>,
    /// Find the segment by its key instead (decimal, 0x hex or 0 octal).
    #[arg(short, long, value_parser = crate::util::key_arg)]
    key: Option<Key>,
    /// Print a JSON object instead.
    #[arg(short = 'J', long)]
    json: bool,
    /// Also attach the segment read-only and, if it is a managed segment
    /// (svshm::managed: allocator + named objects), show its state, free space
    /// and named objects. Attaching sets the segment's attach time and last
    /// pid, so it is not done unless asked (channels are recognised by size).
    #[arg(short = 'M', long)]
    managed: bool,
    #[command(flatten)]
    peek: PeekArg,
}

fn time_text(t: Option<SystemTime>) -> String {
    t.map_or_else(|| "Not set".to_string(), ctime)
}

fn attacher_json(a: &Attacher) -> Obj {
    Obj::new([
        ("pid", json!(a.pid)),
        ("command", json!(a.command)),
        ("start", json!(a.start)),
        ("end", json!(a.end)),
        ("start_hex", json!(format!("{:#x}", a.start))),
        ("end_hex", json!(format!("{:#x}", a.end))),
        ("size", json!(a.end - a.start)),
        ("read_only", json!(a.read_only)),
        ("executable", json!(a.executable)),
    ])
}

/// The JSON object `svshm stat --json` prints.
pub fn info_json(
    s: &SegmentInfo,
    attachers: &[Attacher],
    chan: Option<&ChannelStatus>,
    managed: bool,
) -> Obj {
    let alive = creator_alive(s);
    let mut o = Obj::new([
        ("key", json!(s.key.to_string())),
        ("id", json!(s.id)),
        ("size", json!(s.size)),
        ("mode", json!(s.mode)),
        ("permissions", json!(format!("{:04o}", s.permissions()))),
        ("perms", json!(perms_string(s.mode))),
        ("status", json!(status_words(s))),
        (
            "marked_for_destruction",
            json!(s.is_marked_for_destruction()),
        ),
        ("locked", json!(s.is_locked())),
        ("uid", json!(s.uid)),
        ("user", json!(user_or_uid(s.uid))),
        ("gid", json!(s.gid)),
        ("group", json!(group_or_gid(s.gid))),
        ("creator_uid", json!(s.creator_uid)),
        ("creator_user", json!(user_or_uid(s.creator_uid))),
        ("creator_gid", json!(s.creator_gid)),
        ("creator_group", json!(group_or_gid(s.creator_gid))),
        ("creator_pid", json!(s.creator_pid)),
        ("creator_alive", json!(alive)),
        (
            "creator_command",
            json!(process_cmdline(s.creator_pid).filter(|_| alive)),
        ),
        ("last_pid", json!(s.last_pid)),
        ("attach_count", json!(s.attach_count)),
        ("attach_time", json!(iso_time(s.attach_time))),
        ("detach_time", json!(iso_time(s.detach_time))),
        ("change_time", json!(iso_time(s.change_time))),
        ("rss", json!(s.rss)),
        ("swap", json!(s.swap)),
    ]);
    o.push(
        "attachers",
        Field::Objs(attachers.iter().map(attacher_json).collect()),
    );
    o.push(
        "channel_sized_ring",
        Field::Val(json!(channel_sized_ring(s))),
    );
    o.push(
        "channel",
        Field::Obj(chan.map(|c| {
            let mut o = crate::chan::status_obj(c);
            if c.kind == Kind::Topic {
                let list = topic_subscribers(c.id);
                o.push(
                    "subscriber_list",
                    Field::Objs(
                        list.iter()
                            .map(|s| {
                                Obj::new([
                                    ("slot", json!(s.slot)),
                                    ("pid", json!(s.pid)),
                                    ("lag", json!(s.lag)),
                                    ("missed", json!(s.missed)),
                                ])
                            })
                            .collect(),
                    ),
                );
            }
            o
        })),
    );
    if managed {
        o.push(
            "managed",
            Field::Obj(
                crate::managed::inspect(s)
                    .as_ref()
                    .map(crate::managed::summary_obj),
            ),
        );
    }
    o
}

/// Runs `svshm stat`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let id = match (args.id, args.key) {
        (Some(id), _) => id,
        (None, Some(key)) => id_for_key(key)?,
        (None, None) => unreachable!("clap requires ID or -k"),
    };
    let s = segment_info(id)?;
    let attachers = svshm::attachers(id).unwrap_or_default();
    let chan = args.peek.channel(&s);
    if args.json {
        return write_json(out, &info_json(&s, &attachers, chan.as_ref(), args.managed));
    }
    // Values may hold text from the segment or /proc (names, command lines).
    let row = |out: &mut dyn Write, name: &str, value: String| {
        writeln!(out, "{:<24}{}", format!("{name}:"), printable(&value))
    };
    row(
        out,
        "Key",
        if s.key.is_private() {
            format!("{} (IPC_PRIVATE or removed)", s.key)
        } else {
            s.key.to_string()
        },
    )?;
    row(out, "ID", s.id.to_string())?;
    row(
        out,
        "Size",
        format!("{} bytes ({})", s.size, human_size(s.size)),
    )?;
    row(
        out,
        "Mode",
        format!("{:04o} ({})", s.permissions(), perms_string(s.mode)),
    )?;
    let mut status: Vec<String> = Vec::new();
    if s.is_marked_for_destruction() {
        status.push("dest (marked for destruction: freed at the last detach)".into());
    }
    if s.is_locked() {
        status.push("locked (SHM_LOCK: not swapped out)".into());
    }
    row(
        out,
        "Status",
        if status.is_empty() {
            "-".into()
        } else {
            status.join(", ")
        },
    )?;
    row(
        out,
        "Owner",
        format!(
            "{} (uid {}), group {} (gid {})",
            user_or_uid(s.uid),
            s.uid,
            group_or_gid(s.gid),
            s.gid
        ),
    )?;
    row(
        out,
        "Creator",
        format!(
            "{} (uid {}), group {} (gid {})",
            user_or_uid(s.creator_uid),
            s.creator_uid,
            group_or_gid(s.creator_gid),
            s.creator_gid
        ),
    )?;
    let creator = if creator_alive(&s) {
        match process_cmdline(s.creator_pid) {
            Some(c) => format!("{} (running: {c})", s.creator_pid),
            None => format!("{} (running)", s.creator_pid),
        }
    } else {
        format!("{} (exited)", s.creator_pid)
    };
    row(out, "Creator PID", creator)?;
    row(out, "Last attach/detach PID", s.last_pid.to_string())?;
    row(out, "Attached processes", s.attach_count.to_string())?;
    row(out, "Last attach", time_text(s.attach_time))?;
    row(out, "Last detach", time_text(s.detach_time))?;
    row(out, "Last change", time_text(s.change_time))?;
    if let Some(r) = s.rss {
        row(out, "Resident", format!("{r} bytes ({})", human_size(r)))?;
    }
    if let Some(w) = s.swap {
        row(out, "Swapped", format!("{w} bytes ({})", human_size(w)))?;
    }
    if let Some(c) = chan {
        let name = if c.name.is_empty() {
            "-".to_string()
        } else {
            format!("\"{}\"", c.name)
        };
        row(
            out,
            "Channel",
            format!("{name}, {} ({})", crate::chan::kind_name(c.kind), c.state()),
        )?;
        row(
            out,
            "Ring",
            format!(
                "{} of {} filled, {} written in total",
                human_size(c.fill),
                human_size(c.capacity),
                c.written
            ),
        )?;
        let peer = |p: Option<svshm_channel::PeerStatus>| match p {
            None => "not connected".to_string(),
            Some(p) => format!(
                "pid {}, {}{}",
                p.pid,
                if p.alive { "alive" } else { "dead" },
                if p.closed { ", closed its end" } else { "" }
            ),
        };
        match c.kind {
            Kind::Topic => {
                row(out, "Publisher", peer(c.writer))?;
                let list = topic_subscribers(c.id);
                let policy = c.topic_overflow.map_or("", crate::chan::policy_name);
                row(
                    out,
                    "Subscribers",
                    format!("{} ({policy})", c.topic_subscribers.unwrap_or(list.len())),
                )?;
                for s in &list {
                    writeln!(
                        out,
                        "{:<24}pid {}, {} messages behind, {} missed",
                        "", s.pid, s.lag, s.missed
                    )?;
                }
            }
            Kind::Service => {
                row(out, "Server", peer(c.writer))?;
                let (live, accepted) = c.connections.unwrap_or_default();
                row(
                    out,
                    "Connections",
                    format!("{live} live, {accepted} accepted in all"),
                )?;
            }
            _ => {
                row(out, "Writer", peer(c.writer))?;
                row(out, "Reader", peer(c.reader))?;
            }
        }
    } else if let Some(ring) = channel_sized_ring(&s) {
        row(
            out,
            "Channel",
            if args.peek.peek {
                "no svshm channel header (or not readable by this user)".to_string()
            } else {
                format!(
                    "sized like one ({} ring); --peek reads its header, attaching it read-only for a moment",
                    human_size(ring)
                )
            },
        )?;
    }
    if args.managed {
        match crate::managed::inspect(&s) {
            None => row(
                out,
                "Managed segment",
                "no (no svshm::managed header, or not readable by this user)".into(),
            )?,
            Some(Err(e)) => row(out, "Managed segment", format!("damaged: {e}"))?,
            Some(Ok(m)) => {
                row(out, "Managed segment", crate::managed::describe(&m))?;
                for (i, line) in crate::managed::objects(&m).into_iter().enumerate() {
                    if i == 0 {
                        row(out, "Named objects", line)?;
                    } else {
                        writeln!(out, "{:<24}{line}", "")?;
                    }
                }
            }
        }
    }
    if attachers.is_empty() {
        if s.attach_count > 0 {
            writeln!(
                out,
                "Attachments:            {} (their processes' maps are not readable by this user)",
                s.attach_count
            )?;
        }
    } else {
        writeln!(out, "Attachments:")?;
        crate::cmd::who::write_attachers(out, &attachers, "  ")?;
        if (attachers.len() as u64) < s.attach_count {
            writeln!(
                out,
                "  ({} more in processes whose maps this user may not read)",
                s.attach_count - attachers.len() as u64
            )?;
        }
    }
    Ok(())
}

/// Whether the segment's creator still runs, by the library's one rule
/// (a creator in a pid namespace not visible from here is not known alive).
fn creator_alive(s: &SegmentInfo) -> bool {
    svshm::process::creator_status(s, &[]) == svshm::process::Status::Alive
}
