//! `svshm ipcs`: the shared-memory output of util-linux 2.38.1 `ipcs -m`, byte
//! for byte, from `/proc/sysvipc/shm` like ipcs reads it.

use crate::util::{alt_octal, ctime, human_1letter, strtos32_or_err, warn};
use anyhow::Result;
use std::io::Write;
use std::time::SystemTime;
use svshm::SegmentInfo;

const AFTER_HELP: &str = "\
Output and exit status are those of util-linux 2.38.1 `ipcs -m` with the same
options, so scripts that parse ipcs keep working. Only the last of -t/-p/-c/-l/-u
counts, and the last of -b/--human; -i ignores them.

Examples:
  svshm ipcs             the segment table (ipcs -m)
  svshm ipcs -p          creator and last-operation pids
  svshm ipcs -i 5        every field of segment 5
  svshm ipcs -l --human  kernel limits with units";

/// Print segments exactly like `ipcs -m` (util-linux 2.38.1).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Shared memory segments (the default and only resource; accepted for ipcs compatibility).
    #[arg(short = 'm', long = "shmems")]
    shmems: bool,
    /// Refused: svshm handles shared memory only.
    #[arg(short = 'q', long = "queues", hide = true)]
    queues: bool,
    /// Refused: svshm handles shared memory only.
    #[arg(short = 's', long = "semaphores", hide = true)]
    semaphores: bool,
    /// Refused: svshm handles shared memory only (`-a` would add queues and semaphores).
    #[arg(short = 'a', long = "all", hide = true)]
    all: bool,
    /// Print details on the segment with this id (like `ipcs -m -i ID`).
    #[arg(short, long, value_name = "ID", allow_hyphen_values = true)]
    id: Option<String>,
    /// Show attach, detach and change times.
    #[arg(short, long, overrides_with_all = ["pid", "creator", "limits", "summary"])]
    time: bool,
    /// Show creator and last-operation pids.
    #[arg(short, long, overrides_with_all = ["time", "creator", "limits", "summary"])]
    pid: bool,
    /// Show creator and owner.
    #[arg(short, long, overrides_with_all = ["time", "pid", "limits", "summary"])]
    creator: bool,
    /// Show resource limits.
    #[arg(short, long, overrides_with_all = ["time", "pid", "creator", "summary"])]
    limits: bool,
    /// Show status summary (SHM_INFO).
    #[arg(short = 'u', long, overrides_with_all = ["time", "pid", "creator", "limits"])]
    summary: bool,
    /// Print sizes in bytes.
    #[arg(short, long, overrides_with = "human")]
    bytes: bool,
    /// Print sizes in human-readable form (4K, 1.5M).
    #[arg(long, overrides_with = "bytes")]
    human: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Default,
    Bytes,
    Kb,
    Human,
}

/// util-linux `ipc_print_size`: the optional label with its unit, then the
/// value with printf width `width` (negative = left-aligned), then `end`.
fn print_size(
    out: &mut dyn Write,
    unit: Unit,
    msg: Option<&str>,
    size: u64,
    end: &str,
    width: i32,
) -> Result<()> {
    if let Some(m) = msg {
        match unit {
            Unit::Bytes => write!(out, "{m} (bytes) = ")?,
            Unit::Kb => write!(out, "{m} (kbytes) = ")?,
            _ => write!(out, "{m} = ")?,
        }
    }
    let text = match unit {
        Unit::Default | Unit::Bytes => size.to_string(),
        Unit::Kb => (size / 1024).to_string(),
        Unit::Human => human_1letter(size),
    };
    let w = width.unsigned_abs() as usize;
    if width < 0 {
        write!(out, "{text:<w$}")?;
    } else {
        write!(out, "{text:>w$}")?;
    }
    out.write_all(end.as_bytes())?;
    Ok(())
}

/// The labels of `print_shm` use the `=`-less form: `bytes=4096\t`.
fn print_labelled_size(out: &mut dyn Write, unit: Unit, size: u64) -> Result<()> {
    if unit == Unit::Human {
        write!(out, "size={}\t", human_1letter(size))?;
    } else {
        write!(out, "bytes={size}\t")?;
    }
    Ok(())
}

/// util-linux `strtos32_or_err(optarg, "failed to parse id argument")`.
fn parse_ipcs_id(text: &str) -> Result<i32, String> {
    strtos32_or_err(text, "failed to parse id argument")
}

/// `ctime()` text padded like `%-26.24s`, or "Not set".
fn time_26(t: Option<SystemTime>) -> String {
    let s = t.map_or_else(|| "Not set".to_string(), ctime);
    format!("{:<26}", truncate(&s, 24))
}

/// `ctime()+4` padded like `%-20.16s`: `Nov 27 03:59:00 `, or "Not set".
fn time_20(t: Option<SystemTime>) -> String {
    let s = match t {
        Some(t) => {
            // ctime() is "Www Mmm dd hh:mm:ss yyyy\n"; +4 skips the weekday.
            let c = format!("{}\n", ctime(t));
            c.get(4..).unwrap_or("").to_string()
        }
        None => "Not set".to_string(),
    };
    format!("{:<20}", truncate(&s, 16))
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `"%-10d %-10.10s"`: id and owner name (truncated) or numeric uid.
fn id_owner(info: &SegmentInfo) -> String {
    match crate::util::user_name(info.uid) {
        Some(n) => format!("{:<10} {:<10}", info.id, truncate(&n, 10)),
        None => format!("{:<10} {:<10}", info.id, info.uid),
    }
}

fn name_or_num(name: Option<String>, num: u32) -> String {
    match name {
        Some(n) => format!(" {n:<10}"),
        None => format!(" {num:<10}"),
    }
}

/// Runs `svshm ipcs`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let _ = args.shmems;
    let refused = [
        (args.queues, "-q/--queues"),
        (args.semaphores, "-s/--semaphores"),
        (args.all, "-a/--all"),
    ];
    if let Some((_, opt)) = refused.iter().find(|(given, _)| *given) {
        warn(format_args!(
            "ipcs: {opt} is not supported: svshm handles System V shared memory only (`svshm ipcs` is `ipcs -m`); use util-linux `ipcs` for message queues and semaphores"
        ));
        return Err(crate::util::AlreadyReported.into());
    }
    let unit = if args.human {
        Unit::Human
    } else if args.bytes {
        Unit::Bytes
    } else {
        Unit::Default
    };
    if let Some(text) = &args.id {
        let id = match parse_ipcs_id(text) {
            Ok(id) => id,
            Err(msg) => {
                warn(format_args!("ipcs: {msg}"));
                return Err(crate::util::AlreadyReported.into());
            }
        };
        return print_shm(out, id, unit);
    }
    writeln!(out)?;
    do_shm(out, &args, unit)?;
    writeln!(out)?;
    Ok(())
}

fn print_shm(out: &mut dyn Write, id: i32, unit: Unit) -> Result<()> {
    let segs = svshm::proc_segments()?;
    // ipc_shm_get_info(id) with a negative id lists them all; print_shm then
    // shows the first one (under the id given).
    let found = if id < 0 {
        segs.first()
    } else {
        segs.iter().find(|s| s.id == id)
    };
    let Some(s) = found else {
        warn(format_args!("ipcs: id {id} not found"));
        return Ok(());
    };
    write!(out, "\nShared memory Segment shmid={id}\n")?;
    writeln!(
        out,
        "uid={}\tgid={}\tcuid={}\tcgid={}",
        s.uid, s.gid, s.creator_uid, s.creator_gid
    )?;
    writeln!(
        out,
        "mode={}\taccess_perms={}",
        alt_octal(s.mode),
        alt_octal(s.mode & 0o777)
    )?;
    print_labelled_size(out, unit, s.size)?;
    writeln!(
        out,
        "lpid={}\tcpid={}\tnattch={}",
        s.last_pid as u32, s.creator_pid as u32, s.attach_count
    )?;
    writeln!(out, "att_time={}", time_26(s.attach_time))?;
    writeln!(out, "det_time={}", time_26(s.detach_time))?;
    // ipcs prints ctime(0) for an unset change time (it never is unset).
    let ct = s.change_time.unwrap_or(std::time::UNIX_EPOCH);
    writeln!(
        out,
        "change_time={}",
        format_args!("{:<26}", truncate(&ctime(ct), 24))
    )?;
    writeln!(out)?;
    Ok(())
}

fn do_shm(out: &mut dyn Write, args: &Args, unit: Unit) -> Result<()> {
    if args.limits {
        let lim = match svshm::limits() {
            Ok(l) => l,
            Err(_) => {
                writeln!(out, "unable to fetch shared memory limits")?;
                return Ok(());
            }
        };
        let pgsz = lim.page_size;
        writeln!(out, "------ Shared Memory Limits --------")?;
        writeln!(out, "max number of segments = {}", lim.shmmni)?;
        let u = if unit == Unit::Default {
            Unit::Kb
        } else {
            unit
        };
        print_size(out, u, Some("max seg size"), lim.shmmax, "\n", 0)?;
        if unit == Unit::Default {
            let k = pgsz / 1024;
            let tmp = lim
                .shmall
                .checked_mul(k)
                .unwrap_or(u64::MAX - (u64::MAX % k.max(1)));
            print_size(
                out,
                Unit::Default,
                Some("max total shared memory (kbytes)"),
                tmp,
                "\n",
                0,
            )?;
        } else {
            let tmp = lim
                .shmall
                .checked_mul(pgsz)
                .unwrap_or(u64::MAX - (u64::MAX % pgsz.max(1)));
            print_size(out, unit, Some("max total shared memory"), tmp, "\n", 0)?;
        }
        let u = if unit == Unit::Default {
            Unit::Bytes
        } else {
            unit
        };
        print_size(out, u, Some("min seg size"), lim.shmmin, "\n", 0)?;
        return Ok(());
    }
    if args.summary {
        let u = match svshm::usage() {
            Ok(u) => u,
            Err(_) => {
                writeln!(out, "kernel not configured for shared memory")?;
                return Ok(());
            }
        };
        writeln!(out, "------ Shared Memory Status --------")?;
        write!(
            out,
            "segments allocated {}\npages allocated {}\npages resident  {}\npages swapped   {}\nSwap performance: {} attempts\t {} successes\n",
            u.segments,
            u.pages_allocated,
            u.pages_resident,
            u.pages_swapped,
            u.swap_attempts,
            u.swap_successes
        )?;
        return Ok(());
    }
    if args.creator {
        writeln!(out, "------ Shared Memory Segment Creators/Owners --------")?;
        writeln!(
            out,
            "{:<10} {:<10} {:<10} {:<10} {:<10} {:<10}",
            "shmid", "perms", "cuid", "cgid", "uid", "gid"
        )?;
    } else if args.time {
        writeln!(
            out,
            "------ Shared Memory Attach/Detach/Change Times --------"
        )?;
        writeln!(
            out,
            "{:<10} {:<10} {:<20} {:<20} {:<20}",
            "shmid", "owner", "attached", "detached", "changed"
        )?;
    } else if args.pid {
        writeln!(out, "------ Shared Memory Creator/Last-op PIDs --------")?;
        writeln!(
            out,
            "{:<10} {:<10} {:<10} {:<10}",
            "shmid", "owner", "cpid", "lpid"
        )?;
    } else {
        writeln!(out, "------ Shared Memory Segments --------")?;
        writeln!(
            out,
            "{:<10} {:<10} {:<10} {:<10} {:<10} {:<10} {:<12}",
            "key",
            "shmid",
            "owner",
            "perms",
            if unit == Unit::Human { "size" } else { "bytes" },
            "nattch",
            "status"
        )?;
    }
    // ipcs prints the headers and nothing else when the table cannot be read.
    let Ok(segs) = svshm::proc_segments() else {
        return Ok(());
    };
    for s in &segs {
        if args.creator {
            writeln!(
                out,
                "{:<10} {:<10o}{}{}{}{}",
                s.id,
                s.mode & 0o777,
                name_or_num(crate::util::user_name(s.creator_uid), s.creator_uid),
                name_or_num(crate::util::group_name(s.creator_gid), s.creator_gid),
                name_or_num(crate::util::user_name(s.uid), s.uid),
                name_or_num(crate::util::group_name(s.gid), s.gid),
            )?;
        } else if args.time {
            writeln!(
                out,
                "{} {} {} {}",
                id_owner(s),
                time_20(s.attach_time),
                time_20(s.detach_time),
                time_20(s.change_time)
            )?;
        } else if args.pid {
            writeln!(
                out,
                "{} {:<10} {:<10}",
                id_owner(s),
                s.creator_pid as u32,
                s.last_pid as u32
            )?;
        } else {
            write!(out, "{} {} {:<10o} ", s.key, id_owner(s), s.mode & 0o777)?;
            if unit == Unit::Human {
                print_size(out, unit, None, s.size, "    ", 6)?;
            } else {
                print_size(out, unit, None, s.size, "", -10)?;
            }
            writeln!(
                out,
                " {:<10} {:<6} {:<6}",
                s.attach_count,
                if s.is_marked_for_destruction() {
                    "dest"
                } else {
                    " "
                },
                if s.is_locked() { "locked" } else { " " }
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_like_strtos32_or_err() {
        assert_eq!(parse_ipcs_id("5"), Ok(5));
        assert_eq!(parse_ipcs_id(" 5"), Ok(5));
        assert_eq!(parse_ipcs_id("+5"), Ok(5));
        assert_eq!(parse_ipcs_id("010"), Ok(10));
        assert_eq!(parse_ipcs_id("-1"), Ok(-1));
        assert_eq!(
            parse_ipcs_id("abc").unwrap_err(),
            "failed to parse id argument: 'abc'"
        );
        assert_eq!(
            parse_ipcs_id("0x1").unwrap_err(),
            "failed to parse id argument: '0x1'"
        );
        assert_eq!(
            parse_ipcs_id("5 ").unwrap_err(),
            "failed to parse id argument: '5 '"
        );
        assert_eq!(
            parse_ipcs_id("").unwrap_err(),
            "failed to parse id argument: ''"
        );
        assert_eq!(
            parse_ipcs_id("99999999999").unwrap_err(),
            "failed to parse id argument: '99999999999': Numerical result out of range"
        );
    }

    #[test]
    fn sizes_in_every_unit() {
        let mut v = Vec::new();
        print_size(
            &mut v,
            Unit::Kb,
            Some("max seg size"),
            18446744073692774399,
            "\n",
            0,
        )
        .unwrap();
        print_size(&mut v, Unit::Human, Some("min seg size"), 1, "\n", 0).unwrap();
        print_size(&mut v, Unit::Human, None, 1536, "    ", 6).unwrap();
        print_size(&mut v, Unit::Bytes, None, 4096, "", -10).unwrap();
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "max seg size (kbytes) = 18014398509465599\nmin seg size = 1B\n  1.5K    4096      "
        );
    }
}
