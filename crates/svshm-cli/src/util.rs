//! Parsing and formatting shared by the subcommands: sizes, modes, ids, keys,
//! times, user names and process facts from `/proc`.

use anyhow::{Result, anyhow};
use chrono::{Datelike, Local, TimeZone};
use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
pub use svshm::__private::{group_name, lookup_gid, lookup_uid, user_name};
use svshm::{Key, SegmentInfo};

/// Error that has already been reported to the user on stderr: `main` exits 1
/// without printing anything more.
#[derive(Debug)]
pub struct AlreadyReported;

impl std::fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed (see the messages above)")
    }
}

impl std::error::Error for AlreadyReported {}

/// A bad combination of arguments that clap cannot see (no channel named, or
/// named twice, ...): `main` prints it and exits 2, like clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Returns early with a [`UsageError`] (exit status 2).
macro_rules! usage_bail {
    ($($arg:tt)*) => {
        return Err($crate::util::UsageError(format!($($arg)*)).into())
    };
}
pub(crate) use usage_bail;

/// Prints a warning or per-object error on stderr, prefixed like every message
/// of this program. Messages may quote names read from segments or /proc, so
/// they go out through [`printable`].
pub fn warn(msg: impl std::fmt::Display) {
    let _ = writeln!(
        io::stderr().lock(),
        "svshm: {}",
        printable(&msg.to_string())
    );
}

/// Prints an error as [`warn`] does, followed by a `hint:` line naming the
/// `svshm` command that helps, when there is one (the library's messages say
/// what to do in terms of the kernel; the commands are ours to name).
pub fn warn_error(e: &anyhow::Error) {
    warn(format_args!("{e:#}"));
    if let Some(h) = hint(e) {
        let _ = writeln!(io::stderr().lock(), "hint: {h}");
    }
}

/// An error that names the command that helps: [`warn_error`] prints the
/// hint on a `hint:` line of its own.
#[derive(Debug)]
pub struct Hinted(pub String, pub String);

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Hinted {}

/// The `svshm` command that helps with the first library error in `e`'s chain.
pub fn hint(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| {
        if let Some(h) = c.downcast_ref::<Hinted>() {
            Some(h.1.clone())
        } else if let Some(e) = c.downcast_ref::<svshm::Error>() {
            sys_hint(e)
        } else {
            c.downcast_ref::<svshm_channel::Error>()
                .and_then(channel_hint)
        }
    })
}

/// The hint for a System V error, by kind and the object it was about.
fn sys_hint(e: &svshm::Error) -> Option<String> {
    use svshm::{ErrorKind as K, Object};
    let key = match e.object() {
        Object::Key(k, _) => Some(*k),
        _ => None,
    };
    let id = match e.object() {
        Object::Id(id) => Some(*id),
        _ => None,
    };
    Some(match (e.kind(), key, id) {
        (K::NotFound, ..) => "`svshm ls` lists the keys in use".into(),
        (K::InvalidId | K::Removed, ..) => "`svshm ls` lists the segments and their ids".into(),
        (K::AlreadyExists, Some(k), _) => {
            format!("`svshm stat -k {k}` shows the segment under the key; `svshm rm -k {k}` removes it")
        }
        (K::PermissionDenied, _, Some(id)) => {
            format!("its owner can widen the mode with `svshm set {id} -m MODE`")
        }
        (K::PermissionDenied, Some(k), _) => format!(
            "`svshm stat -k {k}` shows the segment's id; its owner can widen the mode with `svshm set ID -m MODE`"
        ),
        (K::NotOwner, _, Some(id)) => format!("`svshm stat {id}` shows its owner and creator"),
        (K::NoSpace, ..) => "list segments with `svshm ls`, remove one with `svshm rm ID`; `svshm gc` removes only abandoned svshm channels".into(),
        _ => return None,
    })
}

/// The hint for a channel error: a refused segment, or a System V error inside.
fn channel_hint(e: &svshm_channel::Error) -> Option<String> {
    use svshm_channel::Error as E;
    match e {
        E::Sys(e) => sys_hint(e),
        E::NotOurs { id, .. } => Some(format!(
            "`svshm stat {id}` shows what it is; `svshm rm {id}` removes it"
        )),
        E::Foreign { .. } => Some("`svshm ls` lists the segments and their ids".into()),
        _ => None,
    }
}

// ---------------------------------------------------------------- JSON

/// A JSON object whose keys keep the order given (serde_json's `Map` sorts
/// them unless a workspace-wide feature is switched on).
#[derive(Debug, Clone, Default)]
pub struct Obj(Vec<(String, Field)>);

/// A value inside an [`Obj`]: plain JSON, or nested ordered objects.
#[derive(Debug, Clone)]
pub enum Field {
    /// Any JSON value.
    Val(serde_json::Value),
    /// An ordered object, or null.
    Obj(Option<Obj>),
    /// An array of ordered objects.
    Objs(Vec<Obj>),
}

impl Obj {
    /// An object from `(key, value)` pairs, in order.
    pub fn new<K: Into<String>>(pairs: impl IntoIterator<Item = (K, serde_json::Value)>) -> Obj {
        Obj(pairs
            .into_iter()
            .map(|(k, v)| (k.into(), Field::Val(v)))
            .collect())
    }

    /// Appends a field.
    pub fn push(&mut self, key: impl Into<String>, value: Field) {
        self.0.push((key.into(), value));
    }
}

impl serde::Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Val(v) => v.serialize(s),
            Field::Obj(o) => o.serialize(s),
            Field::Objs(v) => v.serialize(s),
        }
    }
}

impl serde::Serialize for Obj {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Writes a value as pretty JSON and a newline.
pub fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

// ---------------------------------------------------------------- options

/// `--peek`, shared by the commands that look at segments (`ls`, `stat`):
/// without it they report what the kernel knows and attach nothing.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct PeekArg {
    /// Read the channel header of each segment sized like an svshm channel
    /// (name, state, fill, writer, reader). This attaches the segment
    /// read-only for a moment, which changes its last attach/detach pid and
    /// times and, while it lasts, its attach count (which other programs may
    /// watch); without --peek nothing is attached.
    #[arg(long)]
    pub peek: bool,
}

impl PeekArg {
    /// The channel header of a segment if asked to peek and it holds one.
    pub fn channel(self, info: &SegmentInfo) -> Option<svshm_channel::ChannelStatus> {
        if self.peek {
            crate::chan::inspect(info)
        } else {
            None
        }
    }
}

/// The header page in front of a channel's ring (the channel layout in
/// docs/ARCHITECTURE.md).
const CHANNEL_HEADER: u64 = 4096;

/// The ring capacity a channel of this segment's size would have (segment
/// size minus the header page), if its size fits a channel: kernel facts
/// only, nothing attached.
pub fn channel_sized_ring(info: &SegmentInfo) -> Option<u64> {
    crate::chan::might_be_channel(info).then(|| info.size.saturating_sub(CHANNEL_HEADER))
}

// ---------------------------------------------------------------- parsing

/// Parses a byte size: `4096`, `0x1000`, `4K`, `4KiB`, `1.5M`, `2G`, `1T` (all
/// binary, 1024-based; `B` and `KB`-style decimal units are accepted too, with
/// `KB` = 1000 as in `ipcmk`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let fix = "give a size like 4096, 64K, 1.5MiB or 2G (K/M/G/T/P/E = KiB … EiB; KB, MB … = powers of 1000)";
    if t.is_empty() {
        return Err(format!("empty size; {fix}"));
    }
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|_| format!("'{text}' is not a size; {fix}"));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "p" | "pib" => 1 << 50,
        "e" | "eib" => 1 << 60,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        "eb" => 1_000_000_000_000_000_000,
        _ => return Err(format!("unknown unit '{unit}' in '{text}'; {fix}")),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(format!("'{text}' is not a size; {fix}"));
    }
    let too_big = || format!("'{text}' is too large (more than 2^64 - 1 bytes)");
    let int_v: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_big())?
    };
    let mut total = int_v.checked_mul(mult).ok_or_else(too_big)?;
    if !frac.is_empty() {
        // Exact: frac_digits * mult / 10^len must be a whole number of bytes.
        let digits: u128 = frac
            .parse()
            .map_err(|_| format!("'{text}' is not a size; {fix}"))?;
        let scale = 10u128.checked_pow(frac.len() as u32).ok_or_else(too_big)?;
        let num = digits * u128::from(mult);
        if num % scale != 0 {
            return Err(format!("'{text}' is not a whole number of bytes; {fix}"));
        }
        let extra = u64::try_from(num / scale).map_err(|_| too_big())?;
        total = total.checked_add(extra).ok_or_else(too_big)?;
    }
    Ok(total)
}

/// Clap value parser for sizes.
pub fn size_arg(text: &str) -> Result<u64, String> {
    parse_size(text)
}

/// Parses an octal mode that may hold only the nine permission bits:
/// `600`, `0640`, `0o644`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    if digits.is_empty() || !digits.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(format!(
            "'{text}' is not an octal mode; give permission bits in octal, e.g. 600 or 0640"
        ));
    }
    let v = u32::from_str_radix(digits, 8).map_err(|_| format!("mode '{text}' is too large"))?;
    if v & !0o777 != 0 {
        let mut extra = Vec::new();
        if v & 0o1000 != 0 {
            extra.push("01000 is SHM_DEST, set only by the kernel");
        }
        if v & 0o2000 != 0 {
            extra.push("02000 is SHM_LOCKED, use `svshm lock`");
        }
        if v & 0o4000 != 0 {
            extra.push("04000 is SHM_HUGETLB, use --hugetlb");
        }
        let why = if extra.is_empty() {
            String::new()
        } else {
            format!(" ({})", extra.join("; "))
        };
        return Err(format!(
            "mode {v:#o} has bits beyond the permission bits 0777{why}; give only permission bits, e.g. 600 or 0640"
        ));
    }
    Ok(v)
}

/// Clap value parser for modes.
pub fn mode_arg(text: &str) -> Result<u32, String> {
    parse_mode(text)
}

/// Parses a segment id: a non-negative decimal number.
pub fn parse_id(text: &str) -> Result<i32, String> {
    let t = text.trim();
    match t.parse::<i64>() {
        Ok(v) if v < 0 => Err(format!(
            "'{text}' is not a segment id: ids are never negative; list ids with `svshm ls`"
        )),
        Ok(v) if v > i64::from(i32::MAX) => Err(format!(
            "'{text}' is out of the range of segment ids (0..=2147483647)"
        )),
        Ok(v) => Ok(v as i32),
        Err(_) => Err(format!(
            "'{text}' is not a segment id; give the decimal id shown by `svshm ls` (`svshm stat -k KEY` shows the id of a key)"
        )),
    }
}

/// util-linux `strtos32_or_err(text, what)`: a decimal `i32` as `strtoimax`
/// reads it (leading blanks and a sign allowed, nothing after the digits), or
/// the message util-linux prints: `WHAT: 'TEXT'`, plus `: Numerical result out
/// of range` when it overflows.
pub fn strtos32_or_err(text: &str, what: &str) -> Result<i32, String> {
    let base = format!("{what}: '{text}'");
    let t = text.trim_start();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if t.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(base);
    }
    match t.parse::<i128>() {
        Ok(v) if v >= i128::from(i32::MIN) && v <= i128::from(i32::MAX) => Ok(v as i32),
        _ => Err(format!("{base}: Numerical result out of range")),
    }
}

/// A number of seconds from the command line (`--wait`, `--hold`): a
/// duration, or "forever" when it is too large to wait out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(Option<Duration>);

impl Secs {
    /// Durations from this long on mean "forever": no deadline computed from
    /// them (`Instant::now() + d`) can overflow, and nobody waits a century.
    pub const FOREVER_FROM: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    /// The duration, or `None` for forever.
    pub fn duration(self) -> Option<Duration> {
        self.0
    }
}

/// Parses a number of seconds: `10`, `0.5`, `1e3`. Any size is accepted: one
/// too large to represent, or of a century or more, means forever (`inf` too).
/// Negative numbers and NaN are errors.
pub fn parse_secs(text: &str) -> Result<Secs, String> {
    let bad = |why: &str| format!("'{text}' {why}; give a number of seconds, e.g. 10 or 0.5");
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| bad("is not a number of seconds"))?;
    if v.is_nan() {
        return Err(bad("is not a number"));
    }
    if v < 0.0 {
        return Err(bad("is negative"));
    }
    Ok(Secs(
        Duration::try_from_secs_f64(v)
            .ok()
            .filter(|&d| d < Secs::FOREVER_FROM),
    ))
}

/// Clap value parser for a number of seconds (`--wait`, `--hold`).
pub fn secs_arg(text: &str) -> Result<Secs, String> {
    parse_secs(text)
}

/// Clap value parser for segment ids.
pub fn id_arg(text: &str) -> Result<i32, String> {
    parse_id(text)
}

/// Parses a key: decimal, `0x` hex or `0` octal, as `ipcs` prints it.
pub fn key_arg(text: &str) -> Result<Key, String> {
    text.parse::<Key>().map_err(|e| e.message().to_string())
}

// ---------------------------------------------------------------- formatting

/// libsmartcols' "safe" encoding of a table cell, as lsipc prints one:
/// control and other non-printable characters as `\xNN` (each byte of their
/// UTF-8 form), and a backslash that would read as such an escape as `\x5c`.
/// Other non-ASCII characters stay when `utf8` (the locale is UTF-8).
pub fn safe_encode(s: &str, utf8: bool) -> String {
    let mut o = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\\' && chars.peek() == Some(&'x') {
            o.push_str("\\x5c");
        } else if ch.is_ascii() {
            if (' '..='~').contains(&ch) {
                o.push(ch);
            } else {
                o.push_str(&format!("\\x{:02x}", ch as u32));
            }
        } else if utf8 && !ch.is_control() {
            o.push(ch);
        } else {
            let mut b = [0u8; 4];
            for byte in ch.encode_utf8(&mut b).bytes() {
                o.push_str(&format!("\\x{byte:02x}"));
            }
        }
    }
    o
}

/// Text from a segment or from /proc (a channel name, a command line), made
/// safe for a terminal: escapes, BEL, newlines and other control characters
/// become `\xNN` ([`safe_encode`]), so another user's process or channel name
/// can neither drive the terminal nor forge lines.
pub fn printable(s: &str) -> String {
    safe_encode(s, true)
}

/// util-linux `size_to_human_string(SIZE_SUFFIX_1LETTER, bytes)`: `4K`, `1.5K`,
/// `9.8K`, `1024K`, `16E`, `512B`.
pub fn human_1letter(bytes: u64) -> String {
    const LETTERS: &[u8] = b"BKMGTPE";
    let mut exp = 10u32;
    while exp <= 60 {
        if bytes < (1u64 << exp) {
            break;
        }
        exp += 10;
    }
    let exp = exp - 10;
    let c = LETTERS[(exp / 10) as usize] as char;
    let (mut dec, mut frac) = if exp > 0 {
        (bytes >> exp, bytes & ((1u64 << exp) - 1))
    } else {
        (bytes, 0)
    };
    if frac != 0 {
        frac = if frac >= u64::MAX / 1000 {
            ((frac / 1024) * 1000) / (1u64 << (exp - 10))
        } else {
            (frac * 1000) / (1u64 << exp)
        };
        frac = (frac + 50) / 100 * 10;
        if frac == 100 {
            dec += 1;
            frac = 0;
        }
    }
    if frac != 0 {
        let mut s = format!("{dec}.{frac:02}");
        if s.ends_with('0') {
            s.pop();
        }
        s.push(c);
        s
    } else {
        format!("{dec}{c}")
    }
}

/// A byte count with a binary unit: `4 KiB`, `1.5 MiB`.
pub fn human_size(bytes: u64) -> String {
    svshm::__private::human_size(bytes)
}

/// A byte count for people: `1 byte`, `512 bytes`, `4 KiB (4096 bytes)`.
pub fn bytes_text(bytes: u64) -> String {
    match bytes {
        1 => "1 byte".to_string(),
        0..1024 => format!("{bytes} bytes"),
        _ => format!("{} ({bytes} bytes)", human_size(bytes)),
    }
}

/// printf `%#o`: `0644`, `01600`, and `0` for zero.
pub fn alt_octal(v: u32) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        format!("0{v:o}")
    }
}

/// `rw-r-----` for the nine permission bits.
pub fn perms_string(mode: u32) -> String {
    let mut s = String::with_capacity(9);
    for shift in [6, 3, 0] {
        let b = (mode >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// Status words of a segment: `dest`, `locked`.
pub fn status_words(info: &SegmentInfo) -> Vec<&'static str> {
    let mut v = Vec::new();
    if info.is_marked_for_destruction() {
        v.push("dest");
    }
    if info.is_locked() {
        v.push("locked");
    }
    v
}

fn local(t: SystemTime) -> Option<chrono::DateTime<Local>> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Local.timestamp_opt(i64::try_from(secs).ok()?, 0).single()
}

/// `ctime(3)` text without the newline: `Fri Nov 27 03:59:00 2026` (local time).
pub fn ctime(t: SystemTime) -> String {
    match local(t) {
        Some(d) => d.format("%a %b %e %H:%M:%S %Y").to_string(),
        None => "?".to_string(),
    }
}

/// ISO 8601 local time with offset, `2026-11-27T03:53:00+00:00`.
pub fn iso_time(t: Option<SystemTime>) -> Option<String> {
    t.and_then(local)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%:z").to_string())
}

/// lsipc's short time: `HH:MM` today, `Nov27` this year, `2025-Nov27` before.
pub fn short_time(t: Option<SystemTime>) -> String {
    let Some(d) = t.and_then(local) else {
        return String::new();
    };
    let now = Local::now();
    if d.date_naive() == now.date_naive() {
        d.format("%H:%M").to_string()
    } else if d.year() == now.year() {
        d.format("%b%d").to_string()
    } else {
        d.format("%Y-%b%d").to_string()
    }
}

/// User name of a uid, or the number.
pub fn user_or_uid(uid: u32) -> String {
    user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// Group name of a gid, or the number.
pub fn group_or_gid(gid: u32) -> String {
    group_name(gid).unwrap_or_else(|| gid.to_string())
}

// ---------------------------------------------------------------- /proc

/// How to name standard output in an error: `stdout (/dev/full)`, or just
/// `stdout` for a pipe, socket or terminal-less descriptor.
pub fn stdout_name() -> String {
    match std::fs::read_link("/proc/self/fd/1") {
        Ok(p) if p.is_absolute() => format!("stdout ({})", printable(&p.to_string_lossy())),
        _ => "stdout".to_string(),
    }
}

/// The command line of a process (`/proc/PID/cmdline`, NULs as spaces), `None`
/// if it has exited or has none (kernel threads, zombies).
pub fn process_cmdline(pid: i32) -> Option<String> {
    if pid <= 0 {
        return None;
    }
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let s: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if s.is_empty() {
        None
    } else {
        Some(s.join(" "))
    }
}

/// Everything known about segment `id`: IPC_STAT when permitted, else the
/// world-readable `/proc/sysvipc/shm` line; resident/swapped bytes from the
/// latter when present.
pub fn segment_info(id: i32) -> Result<SegmentInfo> {
    let public = svshm::info::public_info_by_id(id);
    match svshm::Segment::from_id(id).stat() {
        Ok(mut info) => {
            if let Some(p) = &public {
                info.rss = p.rss;
                info.swap = p.swap;
            }
            Ok(info)
        }
        Err(e) => public.ok_or_else(|| anyhow!(e)),
    }
}

/// The segment id for a key, from `/proc/sysvipc/shm` (or shmget as a fallback).
pub fn id_for_key(key: Key) -> Result<i32> {
    if key.is_private() {
        usage_bail!(
            "key 0 is IPC_PRIVATE: many segments share it and none can be found by it; give the segment id instead (`svshm ls` lists them)"
        );
    }
    if let Some(info) = svshm::info::public_info_by_key(key) {
        return Ok(info.id);
    }
    let seg = svshm::Segment::open(key, 0)?;
    Ok(seg.id())
}

/// Standard output as the file it is, without std's line buffer (a
/// duplicate of descriptor 1; writes go straight to it). If it cannot be
/// duplicated (descriptor 1 closed), std's stdout, whose writes then fail as
/// they would have.
pub fn raw_stdout() -> Box<dyn Write> {
    use std::os::fd::AsFd;
    match io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(io::stdout()),
    }
}

/// Standard output under the program's buffer: counts the bytes the system
/// took and notes a failed write, so that main can name a bare output error.
pub struct Counted<W> {
    inner: W,
    /// Bytes written out so far.
    pub written: u64,
    /// Whether a write or flush failed.
    pub failed: bool,
}

impl<W> Counted<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Counted<W> {
        Counted {
            inner,
            written: 0,
            failed: false,
        }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.write(buf);
        match &r {
            Ok(n) => self.written += *n as u64,
            Err(_) => self.failed = true,
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.inner.flush();
        self.failed |= r.is_err();
        r
    }
}

/// The error for a write to stdout that failed after `written` bytes had
/// reached it, while doing `what`: names the output, the count and the cause,
/// then `after` (what it means). A broken pipe stays an io error, which main
/// ends quietly (the consumer left on purpose).
pub fn output_failed(e: io::Error, written: u64, what: &str, after: &str) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return anyhow!(e);
    }
    anyhow!(
        "{what}: write to {} failed after {} had been written: {e}{after}",
        stdout_name(),
        bytes_text(written)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_command_for_the_error() {
        use svshm::{Error, ErrorKind as K, Object, Op};
        let sys = |kind, object| {
            let e = Error::new(Op::Open, object, kind, None, "x");
            hint(&anyhow::Error::from(e).context("outer"))
        };
        let key = Key::new(0x1234);
        assert_eq!(
            sys(K::NoSpace, Object::System).as_deref(),
            Some(
                "list segments with `svshm ls`, remove one with `svshm rm ID`; `svshm gc` removes only abandoned svshm channels"
            )
        );
        assert!(
            sys(K::AlreadyExists, Object::Key(key, 0))
                .unwrap()
                .contains("`svshm rm -k 0x00001234`")
        );
        assert!(
            sys(K::PermissionDenied, Object::Id(7))
                .unwrap()
                .contains("`svshm set 7 -m MODE`")
        );
        assert!(
            sys(K::InvalidId, Object::Id(7))
                .unwrap()
                .contains("`svshm ls`")
        );
        assert_eq!(sys(K::Corrupt, Object::Id(7)), None);
        let not_ours = svshm_channel::Error::NotOurs {
            id: 9,
            key,
            detail: "other data".into(),
        };
        assert!(hint(&not_ours.into()).unwrap().contains("`svshm rm 9`"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("3 G"), Ok(3 << 30));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1EiB"), Ok(1 << 60));
        assert_eq!(parse_size("15E"), Ok(15 << 60));
        assert_eq!(parse_size("2PB"), Ok(2_000_000_000_000_000));
        for bad in [
            "",
            "abc",
            "1.2.3K",
            "4X",
            "1.0001K",
            "99999999999999999999",
            "16384P",
            "16E",
            "19EB",
            "K",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("0o644"), Ok(0o644));
        assert_eq!(parse_mode("0"), Ok(0));
        let e = parse_mode("1600").unwrap_err();
        assert!(e.contains("SHM_DEST"), "{e}");
        assert!(parse_mode("4600").unwrap_err().contains("--hugetlb"));
        assert!(parse_mode("800").is_err());
        assert!(parse_mode("").is_err());
        assert!(parse_mode("rw").is_err());
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(
            printable("evil\u{1b}]0;x\u{7}\nrow\u{9b}2J é\\n\\x"),
            "evil\\x1b]0;x\\x07\\x0arow\\xc2\\x9b2J é\\n\\x5cx"
        );
        assert_eq!(safe_encode("é\u{7f}", false), "\\xc3\\xa9\\x7f");
    }

    #[test]
    fn seconds() {
        let secs = |t: &str| parse_secs(t).map(Secs::duration);
        assert_eq!(secs("10"), Ok(Some(Duration::from_secs(10))));
        assert_eq!(secs("0.5"), Ok(Some(Duration::from_millis(500))));
        assert_eq!(secs("0"), Ok(Some(Duration::ZERO)));
        for forever in ["1e19", "1e300", "inf", "1.8e308", "3.2e9"] {
            assert_eq!(secs(forever), Ok(None), "{forever}");
        }
        for bad in ["-1", "-0.5", "NaN", "", "ten", "-inf"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids() {
        assert_eq!(parse_id("17"), Ok(17));
        assert!(parse_id("-1").is_err());
        assert!(parse_id("0x1").is_err());
        assert!(parse_id("99999999999").is_err());
    }

    #[test]
    fn human_like_util_linux() {
        for (n, s) in [
            (0, "0B"),
            (512, "512B"),
            (1024, "1K"),
            (1536, "1.5K"),
            (4096, "4K"),
            (10000, "9.8K"),
            (1984, "1.9K"),
            (1074, "1K"),
            (1048575, "1024K"),
            (1 << 20, "1M"),
            (18446744073692774399, "16E"),
            (u64::MAX, "16E"),
        ] {
            assert_eq!(human_1letter(n), s, "{n}");
        }
    }

    #[test]
    fn octal_alt_form() {
        assert_eq!(alt_octal(0), "0");
        assert_eq!(alt_octal(0o644), "0644");
        assert_eq!(alt_octal(0o1600), "01600");
    }

    #[test]
    fn perms() {
        assert_eq!(perms_string(0o600), "rw-------");
        assert_eq!(perms_string(0o754), "rwxr-xr--");
    }
}
