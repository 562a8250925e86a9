//! `svshm ls`: the modern listing (lsipc-like columns), with `--json`.

use crate::util::{
    Field, Obj, PeekArg, channel_sized_ring, group_or_gid, human_1letter, iso_time, perms_string,
    printable, process_cmdline, short_time, status_words, user_or_uid, write_json,
};
use anyhow::Result;
use serde_json::json;
use std::io::{IsTerminal, Write};
use svshm::SegmentInfo;

const AFTER_HELP: &str = "\
Columns (for -o; `+LIST` adds to the default ones):
  KEY ID PERMS MODE OWNER CUID CUSER CGID CGROUP UID USER GID GROUP SIZE NATTCH
  STATUS CTIME ATTACH DETACH CPID LPID COMMAND RSS SWAP
  ATTACHERS (pids of the processes attaching it, from /proc/*/maps)
  and, for svshm channels: CHANNEL (its name) KIND (stream, messages, topic or
  service) STATE FILL CAPACITY WRITER READER (WRITER/READER: the pid, marked
  (closed) or (dead); a topic's WRITER is its publisher, a service's its server)
  SUBSCRIBERS and POLICY (a topic's: backpressure or lossy) CONNECTIONS (a
  service's: live/accepted).
Default: KEY ID PERMS OWNER SIZE NATTCH STATUS CTIME CPID LPID CHANNEL KIND STATE
FILL WRITER READER SUBSCRIBERS POLICY CONNECTIONS COMMAND, where the table leaves out
the channel columns (CHANNEL … CONNECTIONS) that no segment fills; --json always
has them all. On a terminal each
line is cut to its width, as lsipc does (COMMAND, the last column, first).

Listing attaches nothing: every column but the channel ones comes from the kernel
(/proc/sysvipc/shm) and /proc. A segment sized like a channel shows CHANNEL `?` and
its CAPACITY; --peek reads the channel headers, attaching each such segment
read-only for a moment.

Examples:
  svshm ls                           every segment
  svshm ls -b -o ID,SIZE,NATTCH      chosen columns, sizes in bytes
  svshm ls -o +CUSER,RSS             the default columns and two more
  svshm ls --peek                    with channel names, states and peers
  svshm ls --json | jq '.[] | select(.nattch == 0) | .id'";

/// List segments (like `lsipc -m`), with typed `--json`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Print a JSON array of objects (numbers as numbers, sizes in bytes, times ISO 8601).
    #[arg(short = 'J', long)]
    json: bool,
    /// Columns to show, comma-separated; a leading `+` adds to the defaults.
    #[arg(short = 'o', long = "output", value_name = "COLUMNS")]
    output: Option<String>,
    /// Print sizes in bytes rather than 4K/1.5M.
    #[arg(short, long)]
    bytes: bool,
    /// Do not print the header line.
    #[arg(long)]
    noheadings: bool,
    #[command(flatten)]
    peek: PeekArg,
}

/// One column of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Key,
    Id,
    Perms,
    Mode,
    Owner,
    Cuid,
    Cuser,
    Cgid,
    Cgroup,
    Uid,
    User,
    Gid,
    Group,
    Size,
    Nattch,
    Status,
    Ctime,
    Attach,
    Detach,
    Cpid,
    Lpid,
    Command,
    Rss,
    Swap,
    Attachers,
    Channel,
    Kind,
    State,
    Fill,
    Capacity,
    Writer,
    Reader,
    Subscribers,
    Policy,
    Connections,
}

/// A segment and, when it is an svshm channel, its channel header.
struct Row {
    info: SegmentInfo,
    /// The channel header, read only with --peek.
    chan: Option<svshm_channel::ChannelStatus>,
    /// The ring capacity, when the segment is sized like a channel.
    ring: Option<u64>,
    /// Whether the header was read (or tried).
    peeked: bool,
    /// The pids attaching it, when the ATTACHERS column is shown.
    attachers: Vec<i32>,
}

const ALL: &[(Col, &str)] = &[
    (Col::Key, "KEY"),
    (Col::Id, "ID"),
    (Col::Perms, "PERMS"),
    (Col::Mode, "MODE"),
    (Col::Owner, "OWNER"),
    (Col::Cuid, "CUID"),
    (Col::Cuser, "CUSER"),
    (Col::Cgid, "CGID"),
    (Col::Cgroup, "CGROUP"),
    (Col::Uid, "UID"),
    (Col::User, "USER"),
    (Col::Gid, "GID"),
    (Col::Group, "GROUP"),
    (Col::Size, "SIZE"),
    (Col::Nattch, "NATTCH"),
    (Col::Status, "STATUS"),
    (Col::Ctime, "CTIME"),
    (Col::Attach, "ATTACH"),
    (Col::Detach, "DETACH"),
    (Col::Cpid, "CPID"),
    (Col::Lpid, "LPID"),
    (Col::Command, "COMMAND"),
    (Col::Rss, "RSS"),
    (Col::Swap, "SWAP"),
    (Col::Attachers, "ATTACHERS"),
    (Col::Channel, "CHANNEL"),
    (Col::Kind, "KIND"),
    (Col::State, "STATE"),
    (Col::Fill, "FILL"),
    (Col::Capacity, "CAPACITY"),
    (Col::Writer, "WRITER"),
    (Col::Reader, "READER"),
    (Col::Subscribers, "SUBSCRIBERS"),
    (Col::Policy, "POLICY"),
    (Col::Connections, "CONNECTIONS"),
];

const DEFAULT: &[Col] = &[
    Col::Key,
    Col::Id,
    Col::Perms,
    Col::Owner,
    Col::Size,
    Col::Nattch,
    Col::Status,
    Col::Ctime,
    Col::Cpid,
    Col::Lpid,
    Col::Channel,
    Col::Kind,
    Col::State,
    Col::Fill,
    Col::Writer,
    Col::Reader,
    Col::Subscribers,
    Col::Policy,
    Col::Connections,
    Col::Command,
];

impl Col {
    fn name(self) -> &'static str {
        ALL.iter().find(|(c, _)| *c == self).map_or("?", |(_, n)| n)
    }

    fn right_aligned(self) -> bool {
        matches!(
            self,
            Col::Id
                | Col::Owner
                | Col::Cuid
                | Col::Cgid
                | Col::Uid
                | Col::Gid
                | Col::Size
                | Col::Nattch
                | Col::Cpid
                | Col::Lpid
                | Col::Rss
                | Col::Swap
                | Col::Fill
                | Col::Capacity
                | Col::Subscribers
                | Col::Connections
        )
    }

    fn is_channel_column(self) -> bool {
        matches!(
            self,
            Col::Channel
                | Col::Kind
                | Col::State
                | Col::Fill
                | Col::Capacity
                | Col::Writer
                | Col::Reader
                | Col::Subscribers
                | Col::Policy
                | Col::Connections
        )
    }

    fn cell(self, row: &Row, bytes: bool) -> String {
        let s = &row.info;
        let size = |n: u64| {
            if bytes {
                n.to_string()
            } else {
                human_1letter(n)
            }
        };
        let ch = row.chan.as_ref();
        match self {
            Col::Key => s.key.to_string(),
            Col::Id => s.id.to_string(),
            Col::Perms => perms_string(s.mode),
            Col::Mode => format!("{:04o}", s.permissions()),
            Col::Owner | Col::User => user_or_uid(s.uid),
            Col::Cuid => s.creator_uid.to_string(),
            Col::Cuser => user_or_uid(s.creator_uid),
            Col::Cgid => s.creator_gid.to_string(),
            Col::Cgroup => group_or_gid(s.creator_gid),
            Col::Uid => s.uid.to_string(),
            Col::Gid => s.gid.to_string(),
            Col::Group => group_or_gid(s.gid),
            Col::Size => size(s.size),
            Col::Nattch => s.attach_count.to_string(),
            Col::Status => status_words(s).join(","),
            Col::Ctime => short_time(s.change_time),
            Col::Attach => short_time(s.attach_time),
            Col::Detach => short_time(s.detach_time),
            Col::Cpid => s.creator_pid.to_string(),
            Col::Lpid => s.last_pid.to_string(),
            Col::Command => process_cmdline(s.creator_pid).unwrap_or_default(),
            Col::Rss => s.rss.map(size).unwrap_or_default(),
            Col::Swap => s.swap.map(size).unwrap_or_default(),
            Col::Attachers => row
                .attachers
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(","),
            Col::Channel => match ch {
                Some(c) => c.name.clone(),
                None if row.ring.is_some() && !row.peeked => "?".to_string(),
                None => String::new(),
            },
            Col::Kind => ch
                .map(|c| crate::chan::kind_name(c.kind).to_string())
                .unwrap_or_default(),
            Col::State => ch.map(|c| c.state().to_string()).unwrap_or_default(),
            Col::Fill => ch.map(|c| size(c.fill)).unwrap_or_default(),
            Col::Capacity => ch
                .map(|c| c.capacity)
                .or(row.ring)
                .map(size)
                .unwrap_or_default(),
            Col::Writer => ch
                .map(|c| crate::chan::peer_cell(c.writer))
                .unwrap_or_default(),
            Col::Reader => ch
                .map(|c| crate::chan::peer_cell(c.reader))
                .unwrap_or_default(),
            Col::Subscribers => ch
                .and_then(|c| c.topic_subscribers)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            Col::Policy => ch
                .and_then(|c| c.topic_overflow)
                .map(|p| crate::chan::policy_name(p).to_string())
                .unwrap_or_default(),
            Col::Connections => ch
                .and_then(|c| c.connections)
                .map(|(live, accepted)| format!("{live}/{accepted}"))
                .unwrap_or_default(),
        }
    }

    fn json(self, row: &Row) -> Field {
        let s = &row.info;
        let ch = row.chan.as_ref();
        Field::Val(match self {
            Col::Key => json!(s.key.to_string()),
            Col::Id => json!(s.id),
            Col::Perms => json!(perms_string(s.mode)),
            Col::Mode => json!(s.permissions()),
            Col::Owner | Col::User => json!(user_or_uid(s.uid)),
            Col::Cuid => json!(s.creator_uid),
            Col::Cuser => json!(user_or_uid(s.creator_uid)),
            Col::Cgid => json!(s.creator_gid),
            Col::Cgroup => json!(group_or_gid(s.creator_gid)),
            Col::Uid => json!(s.uid),
            Col::Gid => json!(s.gid),
            Col::Group => json!(group_or_gid(s.gid)),
            Col::Size => json!(s.size),
            Col::Nattch => json!(s.attach_count),
            Col::Status => json!(status_words(s)),
            Col::Ctime => json!(iso_time(s.change_time)),
            Col::Attach => json!(iso_time(s.attach_time)),
            Col::Detach => json!(iso_time(s.detach_time)),
            Col::Cpid => json!(s.creator_pid),
            Col::Lpid => json!(s.last_pid),
            Col::Command => json!(process_cmdline(s.creator_pid)),
            Col::Rss => json!(s.rss),
            Col::Swap => json!(s.swap),
            Col::Attachers => json!(row.attachers),
            Col::Channel => json!(ch.map(|c| c.name.clone())),
            Col::Kind => json!(ch.map(|c| crate::chan::kind_name(c.kind))),
            Col::State => json!(ch.map(|c| c.state())),
            Col::Fill => json!(ch.map(|c| c.fill)),
            Col::Capacity => json!(ch.map(|c| c.capacity).or(row.ring)),
            Col::Writer => return crate::chan::peer_obj(ch.and_then(|c| c.writer)),
            Col::Reader => return crate::chan::peer_obj(ch.and_then(|c| c.reader)),
            Col::Subscribers => json!(ch.and_then(|c| c.topic_subscribers)),
            Col::Policy => json!(
                ch.and_then(|c| c.topic_overflow)
                    .map(crate::chan::policy_name)
            ),
            Col::Connections => {
                return Field::Obj(ch.and_then(|c| c.connections).map(|(live, accepted)| {
                    Obj::new([("live", json!(live)), ("accepted", json!(accepted))])
                }));
            }
        })
    }
}

fn parse_columns(list: Option<&str>) -> Result<Vec<Col>> {
    let Some(list) = list else {
        return Ok(DEFAULT.to_vec());
    };
    let (mut cols, rest) = match list.strip_prefix('+') {
        Some(rest) => (DEFAULT.to_vec(), rest),
        None => (Vec::new(), list),
    };
    for name in rest.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)) {
            Some((c, _)) => cols.push(*c),
            None => {
                let names: Vec<&str> = ALL.iter().map(|(_, n)| *n).collect();
                crate::util::usage_bail!(
                    "unknown column '{name}' in -o {list}; choose from {}",
                    names.join(",")
                );
            }
        }
    }
    if cols.is_empty() {
        crate::util::usage_bail!("-o '{list}' names no column; give e.g. -o ID,SIZE,NATTCH");
    }
    Ok(cols)
}

/// Renders rows as an aligned table: one space between columns, numbers
/// right-aligned, no trailing blanks. Cells may hold text from segments and
/// /proc (names, command lines): each is printed through [`printable`].
pub fn write_table(
    out: &mut dyn Write,
    headers: &[&str],
    right: &[bool],
    rows: &[Vec<String>],
    with_header: bool,
) -> Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| printable(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|h| if with_header { h.chars().count() } else { 0 })
        .collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                s.push(' ');
            }
            let w = widths[i];
            if right[i] {
                s.push_str(&format!("{c:>w$}"));
            } else {
                s.push_str(&format!("{c:<w$}"));
            }
        }
        s.trim_end().to_string()
    };
    if with_header {
        writeln!(out, "{}", line(&mut headers.iter().copied()))?;
    }
    for r in &rows {
        writeln!(out, "{}", line(&mut r.iter().map(String::as_str)))?;
    }
    Ok(())
}

/// Runs `svshm ls`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let cols = parse_columns(args.output.as_deref())?;
    let peek = args.peek.peek && cols.iter().any(|c| c.is_channel_column());
    let want_attachers = cols.contains(&Col::Attachers);
    let segs: Vec<Row> = svshm::proc_segments()?
        .into_iter()
        .map(|info| {
            let chan = if peek { args.peek.channel(&info) } else { None };
            let attachers = if want_attachers {
                let mut pids: Vec<i32> = svshm::attachers(info.id)
                    .unwrap_or_default()
                    .iter()
                    .map(|a| a.pid)
                    .collect();
                pids.dedup();
                pids
            } else {
                Vec::new()
            };
            Row {
                ring: channel_sized_ring(&info),
                peeked: peek,
                info,
                chan,
                attachers,
            }
        })
        .collect();
    if args.json {
        let arr: Vec<Obj> = segs
            .iter()
            .map(|s| {
                let mut o = Obj::default();
                for c in &cols {
                    o.push(c.name().to_ascii_lowercase(), c.json(s));
                }
                o
            })
            .collect();
        return write_json(out, &arr);
    }
    let mut cols = cols;
    let mut rows: Vec<Vec<String>> = segs
        .iter()
        .map(|s| cols.iter().map(|c| c.cell(s, args.bytes)).collect())
        .collect();
    if args.output.is_none() {
        // The default table leaves out channel columns no row fills (all of
        // them for ordinary segments); -o shows exactly what it names.
        let keep: Vec<bool> = (0..cols.len())
            .map(|i| !cols[i].is_channel_column() || rows.iter().any(|r| !r[i].is_empty()))
            .collect();
        let mut k = keep.iter();
        cols.retain(|_| *k.next().unwrap_or(&true));
        for r in &mut rows {
            let mut k = keep.iter();
            r.retain(|_| *k.next().unwrap_or(&true));
        }
    }
    let headers: Vec<&str> = cols.iter().map(|c| c.name()).collect();
    let right: Vec<bool> = cols.iter().map(|c| c.right_aligned()).collect();
    if !std::io::stdout().is_terminal() {
        return write_table(out, &headers, &right, &rows, !args.noheadings);
    }
    // On a terminal, like lsipc: lines cut to its width (COMMAND, last, goes first).
    let mut table = Vec::new();
    write_table(&mut table, &headers, &right, &rows, !args.noheadings)?;
    let width = crate::cmd::lsipc::render::terminal_width();
    for line in String::from_utf8_lossy(&table).lines() {
        let cut: String = line.chars().take(width).collect();
        writeln!(out, "{}", cut.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns() {
        assert_eq!(parse_columns(None).unwrap(), DEFAULT);
        assert_eq!(
            parse_columns(Some("id,SIZE")).unwrap(),
            vec![Col::Id, Col::Size]
        );
        assert_eq!(parse_columns(Some("+RSS")).unwrap().last(), Some(&Col::Rss));
        let e = parse_columns(Some("ID,BOGUS")).unwrap_err().to_string();
        assert!(
            e.contains("unknown column 'BOGUS'") && e.contains("NATTCH"),
            "{e}"
        );
        assert!(parse_columns(Some(",")).is_err());
    }

    #[test]
    fn table_alignment() {
        let mut v = Vec::new();
        let rows = vec![
            vec!["a".to_string(), "1".to_string()],
            vec!["bbb".to_string(), "100".to_string()],
        ];
        write_table(&mut v, &["NAME", "N"], &[false, true], &rows, true).unwrap();
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "NAME   N\na      1\nbbb  100\n"
        );
    }
}
