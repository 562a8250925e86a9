//! `svshm attach`: TLPI's svshm_attach — attach segments as asked and show where
//! they landed, with the `/proc/self/maps` line of each attachment.

use anyhow::{Context, Result};
use std::io::Write;
use svshm::{AttachOptions, Attachment, Segment};

const AFTER_HELP: &str = "\
Each SPEC is ID[:ADDR[rR]]: the segment id, optionally the address to attach at
(0 or none: the kernel chooses), and flags: r = SHM_RND (round ADDR down to SHMLBA),
R = SHM_RDONLY (read-only). The attachments last until the program exits; --hold
keeps them for a while, e.g. to look at them with `svshm who ID` meanwhile.

Examples:
  svshm attach 5                   attach segment 5 where the kernel likes
  svshm attach 5:R 5               twice: read-only, then read-write
  svshm attach 5:0x7f0000000000    at a fixed address
  svshm attach 5:0x7f0000000123r   rounded down to 0x7f0000000000
  svshm attach 5 --hold 30 &  sleep 1; svshm who 5";

/// One `ID[:ADDR[rR]]` argument.
#[derive(Debug, Clone)]
pub struct Spec {
    text: String,
    id: i32,
    addr: Option<usize>,
    round: bool,
    read_only: bool,
}

fn parse_spec(text: &str) -> Result<Spec, String> {
    let bad = |why: &str| {
        format!("'{text}': {why}; give ID[:ADDR[rR]], e.g. 5, 5:R or 5:0x7f0000000000r")
    };
    let (id_part, rest) = match text.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let id =
        crate::util::parse_id(id_part).map_err(|_| bad("the id is not a decimal segment id"))?;
    let mut spec = Spec {
        text: text.to_string(),
        id,
        addr: None,
        round: false,
        read_only: false,
    };
    if let Some(rest) = rest {
        let digits_end = rest.find(['r', 'R']).unwrap_or(rest.len());
        let (addr, flags) = rest.split_at(digits_end);
        for f in flags.chars() {
            match f {
                'r' => spec.round = true,
                'R' => spec.read_only = true,
                _ => {
                    return Err(bad(
                        "only r (SHM_RND) and R (SHM_RDONLY) may follow the address",
                    ));
                }
            }
        }
        if !addr.is_empty() {
            let v =
                svshm::parse_c_integer(addr).ok_or_else(|| bad("the address is not a number"))?;
            let v = usize::try_from(v).map_err(|_| bad("the address is out of range"))?;
            if v != 0 {
                spec.addr = Some(v);
            }
        }
    }
    Ok(spec)
}

/// Attach segments and show where they landed (TLPI svshm_attach).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// What to attach: ID[:ADDR[rR]].
    #[arg(value_name = "SPEC", required = true, value_parser = parse_spec)]
    specs: Vec<Spec>,
    /// Keep the attachments for this many seconds before detaching (a century or more: until killed).
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = crate::util::secs_arg, allow_negative_numbers = true)]
    hold: crate::util::Secs,
}

/// The `/proc/self/maps` lines that lie in `[start, end)`.
fn maps_lines(start: usize, end: usize) -> Vec<String> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    maps.lines()
        .filter(|l| {
            let Some(range) = l.split_whitespace().next() else {
                return false;
            };
            let Some((s, _)) = range.split_once('-') else {
                return false;
            };
            usize::from_str_radix(s, 16).is_ok_and(|s| s >= start && s < end)
        })
        .map(str::to_string)
        .collect()
}

/// Runs `svshm attach`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let lba = svshm::shmlba();
    writeln!(
        out,
        "SHMLBA = {lba} ({lba:#x}), PID = {}",
        std::process::id()
    )?;
    let mut held: Vec<Attachment> = Vec::new();
    for (j, spec) in args.specs.iter().enumerate() {
        let mut opts = AttachOptions::new()
            .read_only(spec.read_only)
            .round(spec.round);
        if let Some(a) = spec.addr {
            opts = opts.at(a);
        }
        let att = Segment::from_id(spec.id)
            .attach_with(&opts)
            .with_context(|| format!("shmat: {}", spec.text))?;
        writeln!(
            out,
            "{}: {} ==> {:#x} ({} bytes, {})",
            j + 1,
            spec.text,
            att.address(),
            att.len(),
            if att.is_read_only() {
                "read-only"
            } else {
                "read-write"
            }
        )?;
        let end = att.address().saturating_add(att.len().div_ceil(lba) * lba);
        // A mapped file's path may be anyone's choice of bytes.
        for line in maps_lines(att.address(), end) {
            writeln!(out, "   {}", crate::util::printable(&line))?;
        }
        held.push(att);
    }
    match args.hold.duration() {
        Some(d) if d.is_zero() => {}
        Some(d) => {
            writeln!(
                out,
                "Holding {} attachment(s) for {} seconds",
                held.len(),
                d.as_secs_f64()
            )?;
            out.flush()?;
            std::thread::sleep(d);
        }
        None => {
            writeln!(out, "Holding {} attachment(s) until killed", held.len())?;
            out.flush()?;
            loop {
                std::thread::park();
            }
        }
    }
    drop(held);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let s = parse_spec("5").unwrap();
        assert_eq!(
            (s.id, s.addr, s.round, s.read_only),
            (5, None, false, false)
        );
        let s = parse_spec("5:R").unwrap();
        assert_eq!((s.id, s.addr, s.read_only), (5, None, true));
        let s = parse_spec("7:0x7f0000000123rR").unwrap();
        assert_eq!(
            (s.id, s.addr, s.round, s.read_only),
            (7, Some(0x7f0000000123), true, true)
        );
        let s = parse_spec("7:0").unwrap();
        assert_eq!(s.addr, None);
        for bad in ["", "x", "5:zz", "5:0x10q", "-1", "5:0x10Rx"] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }
}
