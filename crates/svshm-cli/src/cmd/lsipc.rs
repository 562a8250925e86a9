//! `svshm lsipc`: the shared-memory output of util-linux 2.38.1 `lsipc -m`,
//! byte for byte, from `/proc/sysvipc/shm` like lsipc reads it.
//!
//! lsipc prints through libsmartcols; this module carries the parts of it that
//! lsipc uses: the column widths (and, on a terminal, the truncation of the
//! COMMAND column to the terminal width), the raw, export, newline, JSON and
//! "pretty" (`-i ID`) formats, and their escaping. Where 2.38.1 has a bug that
//! shows in its output, the bug is reproduced so the output stays identical;
//! each such place says so in a `2.38.1 quirk` comment.

use crate::util::{
    alt_octal, ctime, human_1letter, iso_time, perms_string, short_time, strtos32_or_err, warn,
};
use anyhow::Result;
use clap::ArgAction;
use std::io::{IsTerminal, Write};
use std::time::SystemTime;
use svshm::SegmentInfo;

const AFTER_HELP: &str = "\
Output and exit status are those of util-linux 2.38.1 `lsipc -m` with the same
options, so scripts that parse lsipc keep working (svshm handles shared memory
only: -m is implied, -q and -s are refused). For svshm's own listing with typed
JSON and channel columns, use `svshm ls`.

Formats: the default table (on a terminal the COMMAND column is cut to fit its
width unless --notruncate), -r raw (blanks escaped as \\x20), -e NAME=\"value\"
pairs, -n one NAME=\"value\" per line, -J JSON (every value a string, empty ones
null), -l the table. -i ID prints one segment as \"Name: value\" lines; with
-J/-r/-e/-n/-l it prints its table row instead.

Columns (-o LIST replaces the defaults, -o +LIST appends to them; case does not
matter): KEY ID OWNER PERMS CUID CUSER CGID CGROUP UID USER GID GROUP CTIME SIZE
NATTCH STATUS ATTACH DETACH COMMAND CPID LPID; with -g: RESOURCE DESCRIPTION
LIMIT USED USE%. Default: KEY ID PERMS OWNER SIZE NATTCH STATUS CTIME CPID LPID
COMMAND; -c adds CUID CGID UID GID, -t adds ATTACH DETACH before COMMAND.
As in lsipc 2.38.1, the CGID column shows the creator's uid, and -o cannot be
combined with -t (but can with -c).

Exit status: 0 (also when -i names no segment: a warning is printed), 1 for a
bad option, column or id.

Examples:
  svshm lsipc                          the segment table (lsipc -m)
  svshm lsipc -b -P -c                 sizes in bytes, octal modes, creator ids
  svshm lsipc -o ID,SIZE,NATTCH -n     chosen columns, one NAME=\"value\" per line
  svshm lsipc -t --time-format=iso     attach and detach times too, as ISO 8601
  svshm lsipc -o +CUSER                the default columns and the creator's name
  svshm lsipc -i 5                     every field of segment 5
  svshm lsipc -g                       the SHMMNI/SHMALL/SHMMAX/SHMMIN limits and use
  svshm lsipc -J | jq '.sharedmemory[] | select(.nattch == \"0\") | .id'";

/// Print segments exactly like `lsipc -m` (util-linux 2.38.1).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Shared memory segments (the default and only resource; accepted for lsipc compatibility).
    #[arg(short = 'm', long = "shmems", action = ArgAction::Count)]
    shmems: u8,
    /// Refused: svshm handles shared memory only.
    #[arg(short = 'q', long = "queues", action = ArgAction::Count, hide = true)]
    queues: u8,
    /// Refused: svshm handles shared memory only.
    #[arg(short = 's', long = "semaphores", action = ArgAction::Count, hide = true)]
    semaphores: u8,
    /// System-wide limits and usage (SHMMNI, SHMALL, SHMMAX, SHMMIN).
    #[arg(short = 'g', long, action = ArgAction::Count)]
    global: u8,
    /// Print details on the segment with this id.
    #[arg(short = 'i', long = "id", value_name = "ID", allow_hyphen_values = true, action = ArgAction::Append)]
    id: Vec<String>,
    /// Don't print headings.
    #[arg(long, action = ArgAction::Count)]
    noheadings: u8,
    /// Don't truncate the COMMAND column on a terminal.
    #[arg(long, action = ArgAction::Count)]
    notruncate: u8,
    /// Display dates in short, full or iso format.
    #[arg(long = "time-format", value_name = "TYPE", action = ArgAction::Append)]
    time_format: Vec<String>,
    /// Print SIZE (and -g limits) in bytes rather than in human-readable form.
    #[arg(short = 'b', long, action = ArgAction::Count)]
    bytes: u8,
    /// Show creator and owner (adds CUID CGID UID GID).
    #[arg(short = 'c', long, action = ArgAction::Count)]
    creator: u8,
    /// Display in an export-able output format (NAME="value").
    #[arg(short = 'e', long, action = ArgAction::Count)]
    export: u8,
    /// Use the JSON output format.
    #[arg(short = 'J', long, action = ArgAction::Count)]
    json: u8,
    /// Display each piece of information on a new line.
    #[arg(short = 'n', long, action = ArgAction::Count)]
    newline: u8,
    /// Force list output format (for example with --id).
    #[arg(short = 'l', long, action = ArgAction::Count)]
    list: u8,
    /// Define the columns to output (`+LIST` appends to the defaults).
    #[arg(short = 'o', long = "output", value_name = "LIST", allow_hyphen_values = true, action = ArgAction::Append)]
    output: Vec<String>,
    /// Print numeric permissions (PERMS column).
    #[arg(short = 'P', long = "numeric-perms", action = ArgAction::Count)]
    numeric_perms: u8,
    /// Display in raw mode.
    #[arg(short = 'r', long, action = ArgAction::Count)]
    raw: u8,
    /// Show attach, detach and change times (adds ATTACH DETACH).
    #[arg(short = 't', long, action = ArgAction::Count)]
    time: u8,
    /// Use column names usable as shell variable identifiers (USE% -> USE_PCT).
    #[arg(short = 'y', long, action = ArgAction::Count)]
    shell: u8,
}

// ---------------------------------------------------------------- columns

/// One column description of lsipc 2.38.1 (`coldescs[]`), in its order: the
/// generic, message-queue, shared-memory, semaphore and summary columns. The
/// non-shm ones are needed for `-i` (which lists every column, printing only
/// those with data) and for lsipc's "does not apply" errors.
struct ColDesc {
    name: &'static str,
    pretty: &'static str,
    right: bool,
}

const fn c(name: &'static str, pretty: &'static str, right: bool) -> ColDesc {
    ColDesc {
        name,
        pretty,
        right,
    }
}

const COLS: [ColDesc; 34] = [
    c("KEY", "Key", false),
    c("ID", "ID", false),
    c("OWNER", "Owner", true),
    c("PERMS", "Permissions", true),
    c("CUID", "Creator UID", true),
    c("CUSER", "Creator user", false),
    c("CGID", "Creator GID", true),
    c("CGROUP", "Creator group", false),
    c("UID", "UID", true),
    c("USER", "User name", false),
    c("GID", "GID", true),
    c("GROUP", "Group name", false),
    c("CTIME", "Last change", true),
    c("USEDBYTES", "Bytes used", true),
    c("MSGS", "Messages", false),
    c("SEND", "Msg sent", true),
    c("RECV", "Msg received", true),
    c("LSPID", "Msg sender", true),
    c("LRPID", "Msg receiver", true),
    c("SIZE", "Segment size", true),
    c("NATTCH", "Attached processes", true),
    c("STATUS", "Status", false),
    c("ATTACH", "Attach time", true),
    c("DETACH", "Detach time", true),
    c("COMMAND", "Creator command", false),
    c("CPID", "Creator PID", true),
    c("LPID", "Last user PID", true),
    c("NSEMS", "Semaphores", true),
    c("OTIME", "Last operation", true),
    c("RESOURCE", "Resource", false),
    c("DESCRIPTION", "Description", false),
    c("LIMIT", "Limit", true),
    c("USED", "Used", true),
    c("USE%", "Use", true),
];

const KEY: usize = 0;
const ID: usize = 1;
const OWNER: usize = 2;
const PERMS: usize = 3;
const CUID: usize = 4;
const CUSER: usize = 5;
const CGID: usize = 6;
const CGROUP: usize = 7;
const UID: usize = 8;
const USER: usize = 9;
const GID: usize = 10;
const GROUP: usize = 11;
const CTIME: usize = 12;
const SIZE: usize = 19;
const NATTCH: usize = 20;
const STATUS: usize = 21;
const ATTACH: usize = 22;
const DETACH: usize = 23;
const COMMAND: usize = 24;
const CPID: usize = 25;
const LPID: usize = 26;
const RESOURCE: usize = 29;
const DESCRIPTION: usize = 30;
const LIMIT: usize = 31;
const USED: usize = 32;
const USE_PERC: usize = 33;

/// The shm columns (`-m`) and the summary columns (`-g`): the ranges `-o` may
/// name besides the generic KEY..CTIME.
const SHM_RANGE: (usize, usize) = (SIZE, LPID);
const SUM_RANGE: (usize, usize) = (RESOURCE, USE_PERC);

/// `columns[ARRAY_SIZE(coldescs) * 2]`: lsipc's fixed column array.
const MAX_COLUMNS: usize = COLS.len() * 2;

const DEFAULT: [usize; 11] = [
    KEY, ID, PERMS, OWNER, SIZE, NATTCH, STATUS, CTIME, CPID, LPID, COMMAND,
];

/// The only truncatable column (`SCOLS_FL_TRUNC`), unless --notruncate.
fn is_trunc(col: usize, ctl: &Ctl) -> bool {
    col == COMMAND && !ctl.notrunc
}

/// `SCOLS_FL_NOEXTREMES`: very long cells do not widen the column on a terminal.
fn is_noextremes(col: usize) -> bool {
    col == STATUS
}

/// `scols_column_get_name_as_shellvar`: `USE%` → `USE_PCT`.
fn shellvar(name: &str) -> String {
    let mut s = String::new();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.push('_');
    }
    s.extend(
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    if name.ends_with('%') {
        s.push_str("PCT");
    }
    s
}

// ---------------------------------------------------------------- control

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum OutMode {
    Human,
    Export,
    Newline,
    Raw,
    Json,
    Pretty,
    List,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TimeMode {
    Short,
    Full,
    Iso,
}

struct Ctl {
    outmode: OutMode,
    noheadings: bool,
    notrunc: bool,
    shellvar: bool,
    bytes: bool,
    numperms: bool,
    time_mode: TimeMode,
}

/// A usage error already reported on stderr: exit 1 like lsipc.
fn fail(msg: impl std::fmt::Display) -> anyhow::Error {
    warn(format_args!("lsipc: {msg}"));
    crate::util::AlreadyReported.into()
}

/// lsipc's `column_name_to_id`: `name` is the rest of the `-o` list from this
/// column on, `len` the length of this column's name.
///
/// 2.38.1 quirk: the messages quote the rest of the list, not just the column
/// (`unknown column: BOGUS,ID`).
fn column_name_to_id(name: &str, len: usize, range: (usize, usize)) -> Result<usize> {
    let this = &name.as_bytes()[..len];
    for (i, d) in COLS.iter().enumerate() {
        if d.name.as_bytes().eq_ignore_ascii_case(this) {
            if i > CTIME && !(range.0..=range.1).contains(&i) {
                return Err(fail(format_args!(
                    "column {name} does not apply to the specified IPC"
                )));
            }
            return Ok(i);
        }
    }
    Err(fail(format_args!("unknown column: {name}")))
}

/// util-linux `string_add_to_idarray`: `+LIST` appends, `LIST` replaces. An
/// empty list or an empty name (`KEY,,ID`, `,KEY`, `+`) fails with no message,
/// as does overflowing lsipc's column array.
fn add_columns(list: &str, cols: &mut Vec<usize>, range: (usize, usize)) -> Result<()> {
    let silent = || anyhow::Error::from(crate::util::AlreadyReported);
    if list.is_empty() {
        return Err(silent());
    }
    let rest = match list.strip_prefix('+') {
        Some(r) => r,
        None => {
            cols.clear();
            list
        }
    };
    if rest.is_empty() {
        return Err(silent());
    }
    let avail = MAX_COLUMNS - cols.len();
    let b = rest.as_bytes();
    let mut begin: Option<usize> = None;
    let mut n = 0;
    for p in 0..b.len() {
        if n >= avail {
            return Err(silent());
        }
        let start = *begin.get_or_insert(p);
        let mut end = None;
        if b[p] == b',' {
            end = Some(p);
        }
        if p + 1 == b.len() {
            end = Some(p + 1);
        }
        let Some(end) = end else { continue };
        if end <= start {
            return Err(silent());
        }
        cols.push(column_name_to_id(&rest[start..], end - start, range)?);
        n += 1;
        begin = None;
        if end == b.len() {
            break;
        }
    }
    Ok(())
}

fn push_column(cols: &mut Vec<usize>, col: usize) -> Result<()> {
    if cols.len() >= MAX_COLUMNS {
        return Err(fail(format_args!(
            "too many columns specified, the limit is {} columns",
            MAX_COLUMNS - 1
        )));
    }
    cols.push(col);
    Ok(())
}

// ---------------------------------------------------------------- data

/// lsipc's `make_time`.
fn make_time(mode: TimeMode, t: SystemTime) -> String {
    match mode {
        // asctime() and ctime() print the same text.
        TimeMode::Full => ctime(t),
        TimeMode::Short => short_time(Some(t)),
        TimeMode::Iso => iso_time(Some(t)).unwrap_or_default(),
    }
}

/// util-linux `pid_get_cmdline`: one read of up to BUFSIZ-1 bytes of
/// `/proc/PID/cmdline`, NULs turned into spaces except a final one.
fn pid_cmdline(pid: i32) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/proc/{pid}/cmdline")).ok()?;
    let mut buf = vec![0u8; 8191];
    let n = f.read(&mut buf).ok()?;
    if n == 0 {
        return None;
    }
    buf.truncate(n);
    if buf[n - 1] == 0 {
        buf.pop();
    }
    for b in &mut buf {
        if *b == 0 {
            *b = b' ';
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// lsipc's STATUS text.
///
/// 2.38.1 quirk: the comma is only counted after `dest`, so flags after
/// `locked` would be glued on (`lockedhugetlb`). The kernel never reports
/// SHM_HUGETLB/SHM_NORESERVE in the mode, so only `dest,locked` shows.
fn status_text(mode: u32) -> String {
    const SHM_DEST: u32 = 0o1000;
    const SHM_LOCKED: u32 = 0o2000;
    const SHM_HUGETLB: u32 = 0o4000;
    const SHM_NORESERVE: u32 = 0o10000;
    let mut s = String::new();
    let mut comma = false;
    if mode & SHM_DEST != 0 {
        s.push_str("dest");
        comma = true;
    }
    for (bit, word) in [
        (SHM_LOCKED, "locked"),
        (SHM_HUGETLB, "hugetlb"),
        (SHM_NORESERVE, "noreserve"),
    ] {
        if mode & bit != 0 {
            if comma {
                s.push(',');
            }
            s.push_str(word);
        }
    }
    s
}

fn size_text(ctl: &Ctl, v: u64) -> String {
    if ctl.bytes {
        v.to_string()
    } else {
        human_1letter(v)
    }
}

/// One cell of a segment's row; `None` is a cell lsipc leaves unset.
fn shm_cell(col: usize, s: &SegmentInfo, ctl: &Ctl) -> Option<String> {
    let user = crate::util::user_name;
    let group = crate::util::group_name;
    let time = |t: Option<SystemTime>| t.map(|t| make_time(ctl.time_mode, t));
    match col {
        KEY => Some(s.key.to_string()),
        ID => Some(s.id.to_string()),
        OWNER => Some(user(s.uid).unwrap_or_else(|| s.uid.to_string())),
        PERMS if ctl.numperms => Some(alt_octal(s.mode & 0o777)),
        PERMS => Some(perms_string(s.mode)),
        CUID => Some(s.creator_uid.to_string()),
        CUSER => user(s.creator_uid),
        // 2.38.1 quirk: CGID prints the creator's uid (fixed upstream by
        // 929fcc95e "lsipc: report shared memory creator GID correctly").
        CGID => Some(s.creator_uid.to_string()),
        CGROUP => group(s.creator_gid),
        UID => Some(s.uid.to_string()),
        USER => user(s.uid),
        GID => Some(s.gid.to_string()),
        GROUP => group(s.gid),
        CTIME => time(s.change_time),
        SIZE => Some(size_text(ctl, s.size)),
        NATTCH => Some(s.attach_count.to_string()),
        STATUS => Some(status_text(s.mode)),
        ATTACH => time(s.attach_time),
        DETACH => time(s.detach_time),
        COMMAND => pid_cmdline(s.creator_pid),
        CPID => Some((s.creator_pid as u32).to_string()),
        LPID => Some((s.last_pid as u32).to_string()),
        _ => None,
    }
}

/// lsipc's `global_set_data`: one row of the `-g` table.
fn global_row(
    cols: &[usize],
    ctl: &Ctl,
    (resource, desc): (&str, &str),
    used: u64,
    limit: u64,
    usage: bool,
    byte_unit: bool,
) -> Vec<Option<String>> {
    let num = |v: u64| {
        if !byte_unit || ctl.bytes {
            v.to_string()
        } else {
            human_1letter(v)
        }
    };
    cols.iter()
        .map(|&c| match c {
            RESOURCE => Some(resource.to_string()),
            DESCRIPTION => Some(desc.to_string()),
            USED if usage => Some(num(used)),
            USE_PERC if usage => {
                let p = used as f64 / limit as f64 * 100.0;
                // printf("%2.2f%%"): glibc prints 0.0/0.0 as "-nan".
                Some(if p.is_nan() {
                    "-nan%".to_string()
                } else {
                    format!("{p:.2}%")
                })
            }
            USED | USE_PERC => Some("-".to_string()),
            LIMIT => Some(num(limit)),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------- run

struct Table {
    /// JSON name: unset when no segment was listed (2.38.1 prints `"": [`).
    name: Option<&'static str>,
    cols: Vec<usize>,
    rows: Vec<Vec<Option<String>>>,
}

/// Runs `svshm lsipc`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    if args.queues > 0 || args.semaphores > 0 {
        let opt = if args.queues > 0 {
            "-q/--queues"
        } else {
            "-s/--semaphores"
        };
        return Err(fail(format_args!(
            "{opt} is not supported: svshm handles System V shared memory only; use util-linux `lsipc` for message queues and semaphores"
        )));
    }
    // lsipc's exclusive option groups ({-J -e -l -n -r}, {-g -i}, {-c -o -t}).
    let modes = [args.json, args.export, args.list, args.newline, args.raw];
    if modes.iter().filter(|&&n| n > 0).count() > 1 {
        return Err(fail(
            "mutually exclusive arguments: --json --export --list --newline --raw",
        ));
    }
    if args.global > 0 && !args.id.is_empty() {
        return Err(fail("mutually exclusive arguments: --global --id"));
    }
    // 2.38.1 quirk: its exclusion table is not in ASCII order, so -c is never
    // checked: only -o with -t is refused, -c goes with either.
    if !args.output.is_empty() && args.time > 0 {
        return Err(fail(
            "mutually exclusive arguments: --creator --output --time",
        ));
    }
    let mut id = -1;
    for text in &args.id {
        id = strtos32_or_err(text, "failed to parse IPC identifier").map_err(fail)?;
    }
    let mut time_mode = None;
    for t in &args.time_format {
        time_mode = Some(match t.as_str() {
            "iso" => TimeMode::Iso,
            "full" => TimeMode::Full,
            "short" => TimeMode::Short,
            _ => return Err(fail(format_args!("unknown time format: {t}"))),
        });
    }
    let mut outmode = if args.json > 0 {
        OutMode::Json
    } else if args.export > 0 {
        OutMode::Export
    } else if args.list > 0 {
        OutMode::List
    } else if args.newline > 0 {
        OutMode::Newline
    } else if args.raw > 0 {
        OutMode::Raw
    } else {
        OutMode::Human
    };
    let global = args.global > 0;
    let (show_creat, show_time) = (args.creator > 0, args.time > 0);

    // Every -m adds the default columns once more (`lsipc -m -m` prints them
    // twice); -m is implied here.
    let mut cols = Vec::new();
    for _ in 0..args.shmems.max(1) {
        for c in DEFAULT {
            push_column(&mut cols, c)?;
        }
    }
    let mut range = SHM_RANGE;
    if global {
        for c in [RESOURCE, DESCRIPTION, LIMIT, USED, USE_PERC] {
            push_column(&mut cols, c)?;
        }
        range = SUM_RANGE;
    }
    // `-i -1` is no -i at all: -1 is lsipc's "no id" value.
    if id != -1 && outmode == OutMode::Human {
        outmode = OutMode::Pretty;
    }
    let ctl = Ctl {
        outmode,
        noheadings: args.noheadings > 0,
        notrunc: args.notruncate > 0,
        shellvar: args.shell > 0,
        bytes: args.bytes > 0,
        numperms: args.numeric_perms > 0,
        time_mode: time_mode.unwrap_or(if outmode == OutMode::Pretty {
            TimeMode::Full
        } else {
            TimeMode::Short
        }),
    };
    if outmode == OutMode::Pretty && !(show_creat || show_time) {
        // All columns for `lsipc -m -i ID` (only those with data print).
        cols = (0..COLS.len()).collect();
    } else {
        if show_creat {
            for c in [CUID, CGID, UID, GID] {
                push_column(&mut cols, c)?;
            }
        }
        if show_time {
            // Keep COMMAND as the last column.
            let cmd = cols.last() == Some(&COMMAND);
            if cmd {
                cols.pop();
            }
            push_column(&mut cols, ATTACH)?;
            push_column(&mut cols, DETACH)?;
            if cmd {
                push_column(&mut cols, COMMAND)?;
            }
        }
    }
    if let Some(list) = args.output.last() {
        add_columns(list, &mut cols, range)?;
    }

    let mut table = Table {
        name: None,
        cols,
        rows: Vec::new(),
    };
    if global {
        table.name = Some("ipclimits");
        do_shm_global(&mut table, &ctl)?;
    } else {
        do_shm(&mut table, &ctl, id);
    }
    match ctl.outmode {
        OutMode::Pretty => print_pretty(out, &table),
        OutMode::Json => print_json(out, &table, &ctl),
        OutMode::Raw => print_raw(out, &table, &ctl),
        OutMode::Export => print_export(out, &table, &ctl, " "),
        OutMode::Newline => print_export(out, &table, &ctl, "\n"),
        OutMode::Human | OutMode::List => print_human(out, &table, &ctl),
    }
}

fn do_shm(table: &mut Table, ctl: &Ctl, id: i32) {
    // lsipc reads /proc/sysvipc/shm; an unreadable table lists nothing.
    let segs = svshm::proc_segments().unwrap_or_default();
    // A non-negative id selects that segment; any other negative id than -1
    // lists them all (and -i prints the first).
    let found: Vec<&SegmentInfo> = if id > -1 {
        segs.iter().filter(|s| s.id == id).take(1).collect()
    } else {
        segs.iter().collect()
    };
    if found.is_empty() {
        if id > -1 {
            warn(format_args!("lsipc: id {id} not found"));
        }
        return;
    }
    table.name = Some("sharedmemory");
    for s in found {
        let row = table.cols.iter().map(|&c| shm_cell(c, s, ctl)).collect();
        table.rows.push(row);
    }
}

fn do_shm_global(table: &mut Table, ctl: &Ctl) -> Result<()> {
    let lim = svshm::limits()?;
    let segs = svshm::proc_segments().unwrap_or_default();
    let nsegs = segs.len() as u64;
    let sum: u64 = segs.iter().map(|s| s.size).fold(0, u64::wrapping_add);
    let page = lim.page_size.max(1);
    let c = &table.cols;
    let rows = vec![
        global_row(
            c,
            ctl,
            ("SHMMNI", "Shared memory segments"),
            nsegs,
            lim.shmmni,
            true,
            false,
        ),
        global_row(
            c,
            ctl,
            ("SHMALL", "Shared memory pages"),
            sum / page,
            lim.shmall,
            true,
            false,
        ),
        global_row(
            c,
            ctl,
            ("SHMMAX", "Max size of shared memory segment (bytes)"),
            0,
            lim.shmmax,
            false,
            true,
        ),
        global_row(
            c,
            ctl,
            ("SHMMIN", "Min size of shared memory segment (bytes)"),
            0,
            lim.shmmin,
            false,
            true,
        ),
    ];
    table.rows = rows;
    Ok(())
}

// ---------------------------------------------------------------- output

/// The column name as printed: `-y` gives shell-variable names.
fn header_name(col: usize, ctl: &Ctl) -> String {
    if ctl.shellvar {
        shellvar(COLS[col].name)
    } else {
        COLS[col].name.to_string()
    }
}

pub(crate) mod render;
use render::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_keeps_the_2_38_1_comma_bug() {
        assert_eq!(status_text(0o600), "");
        assert_eq!(status_text(0o1600), "dest");
        assert_eq!(status_text(0o3600), "dest,locked");
        assert_eq!(status_text(0o2600), "locked");
        assert_eq!(status_text(0o6600), "lockedhugetlb");
    }

    #[test]
    fn shell_variable_names() {
        assert_eq!(shellvar("USE%"), "USE_PCT");
        assert_eq!(shellvar("KEY"), "KEY");
        assert_eq!(shellvar("1FOO%"), "_1FOO_PCT");
    }

    #[test]
    fn output_lists_like_string_add_to_idarray() {
        let mut cols = DEFAULT.to_vec();
        add_columns("+key,Size", &mut cols, SHM_RANGE).unwrap();
        assert_eq!(cols.len(), 13);
        assert_eq!(&cols[11..], &[KEY, SIZE]);
        add_columns("ID,NATTCH", &mut cols, SHM_RANGE).unwrap();
        assert_eq!(cols, [ID, NATTCH]);
        for bad in ["", "+", "KEY,,ID", ",KEY", "KEY,", "BOGUS", "USE%", "NSEMS"] {
            assert!(add_columns(bad, &mut cols, SHM_RANGE).is_err(), "{bad:?}");
        }
        add_columns("RESOURCE,use%", &mut cols, SUM_RANGE).unwrap();
        assert_eq!(cols, [RESOURCE, USE_PERC]);
    }

    #[test]
    fn escapes() {
        assert_eq!(nonblank("a b\\c\té"), "a\\x20b\\x5cc\\x09\\xc3\\xa9");
        assert_eq!(quoted("a \"$`\\"), "\"a \\x22\\x24\\x60\\x5c\"");
        assert_eq!(json_quoted("A\"\n\u{1}", true), "\"a\\\"\\n\\u0001\"");
        assert_eq!(
            crate::util::safe_encode("a\\xb\u{7}é", false),
            "a\\x5cxb\\x07\\xc3\\xa9"
        );
        assert_eq!(crate::util::safe_encode("é", true), "é");
    }

    #[test]
    fn terminal_widths_cut_only_command() {
        let ctl = Ctl {
            outmode: OutMode::Human,
            noheadings: false,
            notrunc: false,
            shellvar: false,
            bytes: false,
            numperms: false,
            time_mode: TimeMode::Short,
        };
        let cols = [ID, COMMAND, SIZE];
        let lens = vec![vec![10], vec![100], vec![2]];
        let mut w = vec![Width::default(); 3];
        calculate(&mut w, &lens, &cols, &ctl, 50);
        assert_eq!(
            w.iter().map(|w| w.width).collect::<Vec<_>>(),
            [10, 34, 4],
            "ID 10 + COMMAND cut to fit + SIZE (header width) = 50 with separators"
        );
        let mut w = vec![Width::default(); 3];
        calculate(&mut w, &lens, &cols, &ctl, 10);
        assert_eq!(w[1].width, 7, "never below the header");
    }
}
