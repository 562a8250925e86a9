//! `svshm limits`: the kernel's shared memory limits, with their sysctl names.

use crate::cmd::ls::write_table;
use crate::util::{Obj, human_size, write_json};
use anyhow::Result;
use serde_json::{Value, json};
use std::io::Write;

/// Show the kernel's shared memory limits (IPC_INFO and /proc/sys/kernel).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Change a sysctl with e.g. `sysctl -w kernel.shmmax=1073741824` (root; per IPC namespace).

In --json, a value above 2^53 (9007199254740992, the largest integer a JSON reader
such as jq keeps exactly) is a string of decimal digits: the kernel's defaults for
kernel.shmmax and kernel.shmall are such \"no limit\" values. Every other value is a
number (or null when unknown); `tonumber` would round a string, compare it as text.

Examples:
  svshm limits
  svshm limits --json | jq -r '.[] | select(.name == \"kernel.shmmax\") | .value'")]
pub struct Args {
    /// Print a JSON array of {name, value, unit, file, description}; values
    /// above 2^53 are exact decimal strings (see below).
    #[arg(short = 'J', long)]
    json: bool,
}

struct Row {
    name: &'static str,
    value: Value,
    unit: &'static str,
    file: Option<&'static str>,
    description: String,
}

fn rows() -> Result<Vec<Row>> {
    let l = svshm::limits()?;
    let mut v = vec![
        Row {
            name: "kernel.shmmax",
            value: json!(l.shmmax),
            unit: "bytes",
            file: Some("/proc/sys/kernel/shmmax"),
            description: format!("largest segment ({})", human_size(l.shmmax)),
        },
        Row {
            name: "kernel.shmall",
            value: json!(l.shmall),
            unit: "pages",
            file: Some("/proc/sys/kernel/shmall"),
            description: format!(
                "all segments together, in pages of {} bytes ({})",
                l.page_size,
                match l.shmall.checked_mul(l.page_size) {
                    Some(bytes) => human_size(bytes),
                    None => "more than 16 EiB: no limit".to_string(),
                }
            ),
        },
        Row {
            name: "kernel.shmmni",
            value: json!(l.shmmni),
            unit: "segments",
            file: Some("/proc/sys/kernel/shmmni"),
            description: "most segments in this IPC namespace".into(),
        },
        Row {
            name: "SHMMIN",
            value: json!(l.shmmin),
            unit: "bytes",
            file: None,
            description: "smallest segment (a kernel constant)".into(),
        },
        Row {
            name: "SHMSEG",
            value: json!(l.shmseg),
            unit: "segments",
            file: None,
            description: "attachments per process (Linux reports shmmni and does not enforce it)"
                .into(),
        },
    ];
    v.push(Row {
        name: "kernel.shm_rmid_forced",
        value: json!(l.rmid_forced),
        unit: "boolean",
        file: Some("/proc/sys/kernel/shm_rmid_forced"),
        description: "1: every segment is destroyed when its last process detaches".into(),
    });
    v.push(Row {
        name: "kernel.shm_next_id",
        value: json!(l.next_id),
        unit: "id",
        file: Some("/proc/sys/kernel/shm_next_id"),
        description: "id of the next segment (-1: the kernel chooses)".into(),
    });
    v.push(Row {
        name: "SHMLBA",
        value: json!(svshm::shmlba()),
        unit: "bytes",
        file: None,
        description: "attach address granularity (the page size here)".into(),
    });
    Ok(v)
}

/// Runs `svshm limits`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let rows = rows()?;
    if args.json {
        // JSON readers keep integers exactly only up to 2^53; larger ones
        // (the kernel's "no limit" defaults) go out as decimal strings.
        let exact = |v: &Value| match v.as_u64() {
            Some(n) if n > 1 << 53 => json!(n.to_string()),
            _ => v.clone(),
        };
        let arr: Vec<Obj> = rows
            .iter()
            .map(|r| {
                Obj::new([
                    ("name", json!(r.name)),
                    ("value", exact(&r.value)),
                    ("unit", json!(r.unit)),
                    ("file", json!(r.file)),
                    ("description", json!(r.description)),
                ])
            })
            .collect();
        return write_json(out, &arr);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let value = match &r.value {
                Value::Null => "-".to_string(),
                Value::Bool(b) => u8::from(*b).to_string(),
                v => v.to_string(),
            };
            vec![
                r.name.to_string(),
                value,
                r.unit.to_string(),
                r.description.clone(),
            ]
        })
        .collect();
    write_table(
        out,
        &["NAME", "VALUE", "UNIT", "DESCRIPTION"],
        &[false, true, false, false],
        &cells,
        true,
    )
}
