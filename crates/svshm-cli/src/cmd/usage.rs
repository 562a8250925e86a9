//! `svshm usage`: system-wide usage from SHM_INFO, against the limits.

use crate::util::{Obj, human_size, write_json};
use anyhow::Result;
use serde_json::json;
use std::io::Write;

/// Show how much shared memory is in use (SHM_INFO).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Pages are counted per segment, each rounded up to whole pages (as `ipcs -u` shows them).

Examples:
  svshm usage
  svshm usage --json | jq .segments")]
pub struct Args {
    /// Print a JSON object.
    #[arg(short = 'J', long)]
    json: bool,
}

/// Runs `svshm usage`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let u = svshm::usage()?;
    let l = svshm::limits()?;
    let page = l.page_size;
    let bytes = |p: u64| p.saturating_mul(page);
    if args.json {
        let v = Obj::new([
            ("segments", json!(u.segments)),
            ("max_index", json!(u.max_index)),
            ("pages_allocated", json!(u.pages_allocated)),
            ("pages_resident", json!(u.pages_resident)),
            ("pages_swapped", json!(u.pages_swapped)),
            ("bytes_allocated", json!(bytes(u.pages_allocated))),
            ("bytes_resident", json!(bytes(u.pages_resident))),
            ("bytes_swapped", json!(bytes(u.pages_swapped))),
            ("page_size", json!(page)),
            ("shmmni", json!(l.shmmni)),
            ("shmall", json!(l.shmall)),
        ]);
        return write_json(out, &v);
    }
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    writeln!(
        out,
        "segments         {:>12}  of kernel.shmmni {} ({:.2}%)",
        u.segments,
        l.shmmni,
        pct(u.segments, l.shmmni)
    )?;
    writeln!(
        out,
        "pages allocated  {:>12}  {} (of kernel.shmall {} pages, {:.2}%)",
        u.pages_allocated,
        human_size(bytes(u.pages_allocated)),
        l.shmall,
        pct(u.pages_allocated, l.shmall)
    )?;
    writeln!(
        out,
        "pages resident   {:>12}  {}",
        u.pages_resident,
        human_size(bytes(u.pages_resident))
    )?;
    writeln!(
        out,
        "pages swapped    {:>12}  {}",
        u.pages_swapped,
        human_size(bytes(u.pages_swapped))
    )?;
    writeln!(out, "highest index    {:>12}", u.max_index)?;
    writeln!(out, "page size        {:>12}", page)?;
    Ok(())
}
