//! `svshm lock` / `svshm unlock`: SHM_LOCK and SHM_UNLOCK (svshm_lock / svshm_unlock).

use crate::util::{AlreadyReported, warn_error};
use anyhow::Result;
use std::io::Write;
use svshm::Segment;

/// Lock segments in memory (SHM_LOCK): their pages are never swapped out.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Needs ownership and room under RLIMIT_MEMLOCK (`ulimit -l`), or CAP_IPC_LOCK.
`svshm ls` shows `locked` in STATUS afterwards.

Example:
  svshm lock 5")]
pub struct LockArgs {
    /// Segment ids.
    #[arg(value_name = "ID", required = true, value_parser = crate::util::id_arg)]
    ids: Vec<i32>,
}

/// Unlock segments (SHM_UNLOCK): their pages may be swapped out again.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  svshm unlock 5")]
pub struct UnlockArgs {
    /// Segment ids.
    #[arg(value_name = "ID", required = true, value_parser = crate::util::id_arg)]
    ids: Vec<i32>,
}

fn each(ids: &[i32], f: fn(Segment) -> svshm::Result<()>) -> Result<()> {
    let mut failed = false;
    for &id in ids {
        if let Err(e) = f(Segment::from_id(id)) {
            warn_error(&e.into());
            failed = true;
        }
    }
    if failed {
        Err(AlreadyReported.into())
    } else {
        Ok(())
    }
}

/// Runs `svshm lock`.
pub fn run_lock(args: LockArgs, _out: &mut dyn Write) -> Result<()> {
    each(&args.ids, Segment::lock)
}

/// Runs `svshm unlock`.
pub fn run_unlock(args: UnlockArgs, _out: &mut dyn Write) -> Result<()> {
    each(&args.ids, Segment::unlock)
}
