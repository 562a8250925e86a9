//! `svshm rm` (ipcrm) and `svshm gc` (= `rm --stale`).

use crate::util::{AlreadyReported, human_size, id_for_key, warn};
use anyhow::Result;
use std::io::Write;
use svshm::{Key, Segment, SegmentInfo};

const AFTER_HELP: &str = "\
Removing marks a segment for destruction (IPC_RMID): the kernel frees it at once if
no process has it attached, else when the last one detaches. Errors on one segment
do not stop the others; the exit status is then 1.

--stale selects only segments proven to be abandoned svshm channels: an svshm
header that holds together with nobody attached or its creator gone, or an empty,
never-written segment under a channel-name key carrying a channel's initialising
mode mark whose creator is gone. Anything else is never removed by --stale (remove
it by id). -v says why each one was removed. `svshm gc` is the same.

Examples:
  svshm rm 5 6                  remove segments 5 and 6
  svshm rm -k 0x5eed0001        remove the segment under a key
  svshm rm --stale --dry-run    show what `svshm gc` would remove
  svshm rm --all -v             remove every segment you may remove";

/// Remove segments (ipcrm).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["ids", "keys", "all", "stale"])))]
pub struct Args {
    /// Segment ids to remove.
    #[arg(value_name = "ID", value_parser = crate::util::id_arg)]
    ids: Vec<i32>,
    /// Remove the segment under this key (repeatable).
    #[arg(short = 'k', long = "key", value_name = "KEY", value_parser = crate::util::key_arg)]
    keys: Vec<Key>,
    /// Remove every segment (one you may not remove is reported, and the exit status is 1).
    #[arg(short, long, conflicts_with = "stale")]
    all: bool,
    /// Remove segments left behind by svshm channels whose processes died.
    #[arg(long)]
    stale: bool,
    /// Show what would be removed; remove nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Print each segment as it is removed.
    #[arg(short, long)]
    verbose: bool,
}

/// Remove stale segments left by svshm channels (same as `svshm rm --stale`).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  svshm gc --dry-run     list what would be removed\n  svshm gc -v            remove it, one line per segment"
)]
pub struct GcArgs {
    /// Show what would be removed; remove nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Print each segment as it is removed.
    #[arg(short, long)]
    verbose: bool,
}

impl GcArgs {
    /// The equivalent `rm --stale`.
    pub fn into_rm(self) -> Args {
        Args {
            ids: Vec::new(),
            keys: Vec::new(),
            all: false,
            stale: true,
            dry_run: self.dry_run,
            verbose: self.verbose,
        }
    }
}

fn describe(info: Option<&SegmentInfo>) -> String {
    match info {
        Some(i) => {
            let mut s = format!("key {}, {}", i.key, human_size(i.size));
            if i.attach_count > 0 {
                s.push_str(&format!(
                    ", attached {} time(s): freed when the last process detaches",
                    i.attach_count
                ));
            }
            s
        }
        None => "not in /proc/sysvipc/shm".to_string(),
    }
}

/// Why a segment is an abandoned svshm channel (`None`: it is not one, or it
/// may still be used, or nothing proves it ours). The decision is the channel
/// library's, the same one connecting uses.
fn is_stale(info: &SegmentInfo) -> Result<Option<String>> {
    if info.is_marked_for_destruction() || !svshm_channel::might_be_channel(info) {
        return Ok(None);
    }
    match svshm_channel::judge(info.id) {
        Ok(svshm_channel::Verdict::Abandoned(why)) => Ok(Some(why)),
        Ok(_) => Ok(None),
        // Vanished meanwhile, or not ours to read: not ours to judge.
        Err(svshm_channel::Error::Sys(e))
            if matches!(
                e.kind(),
                svshm::ErrorKind::PermissionDenied
                    | svshm::ErrorKind::InvalidId
                    | svshm::ErrorKind::Removed
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// `: an abandoned svshm channel: WHY` for segments removed as stale.
fn because(why: Option<&String>) -> String {
    why.map_or(String::new(), |w| {
        format!(": an abandoned svshm channel: {w}")
    })
}

/// `removed segment id N (what it was)[: why]` for -v.
fn removed_line(
    out: &mut dyn Write,
    id: i32,
    info: Option<&SegmentInfo>,
    why: Option<&String>,
) -> Result<()> {
    writeln!(
        out,
        "removed segment id {id} ({}){}",
        describe(info),
        because(why)
    )?;
    Ok(())
}

/// Runs `svshm rm`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let mut failed = false;
    // (id, what the user typed, for messages)
    let mut targets: Vec<(i32, String)> = args
        .ids
        .iter()
        .map(|&id| (id, format!("id {id}")))
        .collect();
    // A usage mistake: refused before anything is removed.
    if args.keys.iter().any(|k| k.is_private()) {
        crate::util::usage_bail!(
            "illegal key 0 (IPC_PRIVATE): it names no single segment; remove such segments by id"
        );
    }
    for key in &args.keys {
        match id_for_key(*key) {
            Ok(id) => targets.push((id, format!("key {key}"))),
            Err(e)
                if e.downcast_ref::<svshm::Error>()
                    .is_some_and(|e| e.kind() == svshm::ErrorKind::NotFound) =>
            {
                warn(format_args!(
                    "remove segment (key {key}): no segment has this key; check the key (list keys with `svshm ls`)"
                ));
                failed = true;
            }
            Err(e) => {
                crate::util::warn_error(&e);
                failed = true;
            }
        }
    }
    let mut reasons = std::collections::HashMap::new();
    if args.all || args.stale {
        for info in svshm::proc_segments()? {
            if args.stale {
                match is_stale(&info) {
                    Ok(Some(why)) => {
                        reasons.insert(info.id, why);
                    }
                    Ok(None) => continue,
                    Err(e) => {
                        warn(format_args!(
                            "segment id {}: cannot tell whether it is stale: {e:#}",
                            info.id
                        ));
                        failed = true;
                        continue;
                    }
                }
            }
            targets.push((info.id, format!("id {}", info.id)));
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut count = 0usize;
    for (id, what) in targets {
        if !seen.insert(id) {
            continue;
        }
        let info = svshm::info::public_info_by_id(id);
        if args.dry_run {
            if info.is_some() {
                writeln!(
                    out,
                    "would remove segment id {id} ({}){}",
                    describe(info.as_ref()),
                    because(reasons.get(&id))
                )?;
                count += 1;
            } else {
                warn(format_args!(
                    "{what}: no segment has this id; list segments with `svshm ls`"
                ));
                failed = true;
            }
            continue;
        }
        if reasons.contains_key(&id) && !args.all {
            // Judged again at the moment of removal (the library's one
            // decision): it may have come alive, or been reclaimed by a
            // connecting process, since the listing.
            match svshm_channel::reclaim(id) {
                Ok(Some(r)) => {
                    count += 1;
                    if args.verbose {
                        removed_line(out, id, info.as_ref(), Some(&r.reason))?;
                    }
                }
                Ok(None) => {}
                Err(svshm_channel::Error::Sys(e))
                    if matches!(
                        e.kind(),
                        svshm::ErrorKind::InvalidId | svshm::ErrorKind::Removed
                    ) => {}
                Err(svshm_channel::Error::Sys(e)) if e.kind() == svshm::ErrorKind::NotOwner => {
                    if args.verbose {
                        writeln!(out, "skipped segment id {id}: not ours to remove ({e})")?;
                    }
                }
                Err(e) => {
                    crate::util::warn_error(
                        &anyhow::Error::from(e).context(format!("segment id {id}")),
                    );
                    failed = true;
                }
            }
            continue;
        }
        match Segment::from_id(id).remove() {
            Ok(()) => {
                count += 1;
                if args.verbose {
                    removed_line(out, id, info.as_ref(), reasons.get(&id))?;
                }
            }
            Err(e) => {
                crate::util::warn_error(&e.into());
                failed = true;
            }
        }
    }
    if (args.verbose || args.dry_run) && count == 0 && !failed && (args.stale || args.all) {
        writeln!(out, "nothing to remove")?;
    }
    if failed {
        Err(AlreadyReported.into())
    } else {
        Ok(())
    }
}
