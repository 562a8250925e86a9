//! `svshm who`: every process attaching a segment, where, and how.

use crate::cmd::ls::write_table;
use crate::util::{human_1letter, segment_info};
use anyhow::Result;
use std::io::Write;
use svshm::Attacher;

const AFTER_HELP: &str = "\
Reads /proc/*/maps and attaches nothing (a process whose maps you may not read is not
shown; root sees all; processes of other IPC namespaces are left out).

Example:
  svshm who 5
  PID COMMAND START          END            SIZE ACCESS
  812 svshm   0x7f3a1c000000 0x7f3a1c001000   4K rw";

/// List the processes that have a segment attached.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The segment id.
    #[arg(value_name = "ID", value_parser = crate::util::id_arg)]
    id: i32,
}

/// Prints attachers as a table, each line prefixed with `indent`.
pub fn write_attachers(out: &mut dyn Write, attachers: &[Attacher], indent: &str) -> Result<()> {
    let rows: Vec<Vec<String>> = attachers
        .iter()
        .map(|a| {
            let mut access = if a.read_only { "ro" } else { "rw" }.to_string();
            if a.executable {
                access.push('x');
            }
            vec![
                a.pid.to_string(),
                a.command.clone(),
                format!("{:#x}", a.start),
                format!("{:#x}", a.end),
                human_1letter((a.end - a.start) as u64),
                access,
            ]
        })
        .collect();
    let mut buf = Vec::new();
    write_table(
        &mut buf,
        &["PID", "COMMAND", "START", "END", "SIZE", "ACCESS"],
        &[true, false, false, false, true, false],
        &rows,
        true,
    )?;
    for line in String::from_utf8_lossy(&buf).lines() {
        writeln!(out, "{indent}{line}")?;
    }
    Ok(())
}

/// Runs `svshm who`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let info = segment_info(args.id)?;
    let attachers = svshm::attachers(args.id)?;
    if attachers.is_empty() {
        if info.attach_count == 0 {
            writeln!(out, "segment {} is not attached by any process", args.id)?;
        } else {
            writeln!(
                out,
                "segment {} has {} attachment(s), in processes whose maps this user may not read (run as root to see them)",
                args.id, info.attach_count
            )?;
        }
        return Ok(());
    }
    write_attachers(out, &attachers, "")?;
    Ok(())
}
