//! `svshm set`: change a segment's owner, group and permission bits (IPC_SET).

use anyhow::{Result, anyhow};
use std::io::Write;
use svshm::Segment;

const AFTER_HELP: &str = "\
Only the segment's owner or creator (or root) may do this. The creator uid and gid
never change.

Examples:
  svshm set 5 -m 640              group may read
  svshm set 5 -u alice -g staff   hand the segment to alice:staff";

/// Change owner, group or mode of a segment (IPC_SET).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["mode", "user", "group"])))]
pub struct Args {
    /// The segment id.
    #[arg(value_name = "ID", value_parser = crate::util::id_arg)]
    id: i32,
    /// New permission bits, octal (e.g. 640). Only the nine permission bits.
    #[arg(short, long, value_parser = crate::util::mode_arg)]
    mode: Option<u32>,
    /// New owner: a user name or numeric uid.
    #[arg(short, long)]
    user: Option<String>,
    /// New group: a group name or numeric gid.
    #[arg(short, long)]
    group: Option<String>,
}

/// Runs `svshm set`.
pub fn run(args: Args, _out: &mut dyn Write) -> Result<()> {
    let uid = match &args.user {
        Some(u) => Some(crate::util::lookup_uid(u).ok_or_else(|| {
            anyhow!(
                "unknown user '{u}'; give a user name from the password database or a numeric uid"
            )
        })?),
        None => None,
    };
    let gid = match &args.group {
        Some(g) => Some(crate::util::lookup_gid(g).ok_or_else(|| {
            anyhow!(
                "unknown group '{g}'; give a group name from the group database or a numeric gid"
            )
        })?),
        None => None,
    };
    // (uid_t)-1 and (gid_t)-1 are no ids: the kernel rejects them (EINVAL).
    if uid == Some(u32::MAX) || gid == Some(u32::MAX) {
        crate::util::usage_bail!(
            "4294967295 is (uid_t)-1 / (gid_t)-1, which is no valid user or group; give a real uid or gid (or leave -u / -g out to keep it)"
        );
    }
    Segment::from_id(args.id).set(uid, gid, args.mode)?;
    Ok(())
}
