//! The one decision about a channel-sized segment: is it an svshm channel
//! someone may still use, an abandoned svshm channel that may be removed, or
//! something we cannot prove is ours (never removed)?
//!
//! Connecting (by key or by id), `svshm gc` and `svshm rm --stale` all ask
//! [`judge`] (or its core, `judge_with`), and only an [`Verdict::Abandoned`]
//! answer lets anything be removed. Proof rests on what the kernel reports
//! (IPC_STAT and `/proc/sysvipc/shm`: attach count, creator pid, change time,
//! resident and swapped pages) and on our header; a mode bit alone is never
//! proof:
//!
//! | shape | proof of "ours" | abandoned when |
//! |---|---|---|
//! | header READY | our magic | nobody attached (no initialising mark), or its creator is gone |
//! | header being written | our magic | nobody attached and its creator is gone |
//! | header all zero (creator killed between `shmget` and writing it) | a channel key ([`crate::channel_key`]), the initialising mark, channel geometry, and nothing to lose: no page ever touched (no resident or swapped pages), or only the header page, all zero (the creator killed while its first store faulted it in) | nobody attached and its creator is gone |
//! | anything else | none | never: refused with an error naming it |
//!
//! "Gone" is [`svshm::process::creator_status`] = `Dead`; a creator in a pid
//! namespace we cannot see is `Unknown` and keeps the segment.

use crate::error::{Error, Result};
use crate::header::{self, HeaderView};
use crate::rendezvous::INIT_MARK;
use crate::sync::Ordering;
use svshm::process::{ProcessId, Status, creator_status};
use svshm::{ErrorKind, Key, Segment, SegmentInfo};

/// What [`judge`] decided about a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Provably an svshm channel that nobody can use any more: safe to remove.
    Abandoned(String),
    /// An svshm channel (or one being created) that a live process may still
    /// use, or whose creator cannot be judged from here: kept.
    InUse(String),
    /// Not provably an svshm channel: never removed by svshm's cleanup.
    NotOurs(String),
}

impl Verdict {
    /// Whether this verdict allows removing the segment.
    pub fn is_abandoned(&self) -> bool {
        matches!(self, Verdict::Abandoned(_))
    }
    /// The reason, in words.
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Abandoned(r) | Verdict::InUse(r) | Verdict::NotOurs(r) => r,
        }
    }
}

/// A segment removed as an abandoned channel: what it was and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reclaimed {
    /// The segment id.
    pub id: i32,
    /// Its key.
    pub key: Key,
    /// Its size in bytes.
    pub size: u64,
    /// Why it was judged abandoned.
    pub reason: String,
}

impl core::fmt::Display for Reclaimed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "removed abandoned svshm channel segment {} (key {}, {} bytes): {}",
            self.id, self.key, self.size, self.reason
        )
    }
}

/// What the header of a segment says, read once through an attachment.
#[derive(Debug, Clone)]
pub(crate) struct HeaderFacts {
    pub magic: u64,
    /// The raw init state.
    pub state: u32,
    pub ready: bool,
    /// Identities recorded in the slots (start times help tell the creator).
    pub recorded: Vec<ProcessId>,
    /// Whether the first 64 bytes are all zero.
    pub zero: bool,
    /// Whether the whole segment reads zero although a page of it was
    /// touched (see [`blank_header_page`]); set by the caller that has the
    /// attachment.
    pub blank: bool,
    /// For a READY header: whether its fields describe a ring that fits
    /// (`Err` says what is wrong).
    pub layout: Result<(), String>,
}

impl HeaderFacts {
    /// Reads the header of a segment of `size` bytes.
    pub(crate) fn read(view: HeaderView<'_>, size: u64) -> HeaderFacts {
        let magic = view.magic();
        let zero = view.first_line_zero();
        // SYNC: pairs with the creator's Release store of READY in `create`.
        let state = view.state().load(Ordering::Acquire);
        let ready = state == header::STATE_READY;
        let recorded = view
            .slots()
            .into_iter()
            .filter_map(crate::rendezvous::read_slot)
            .collect();
        let layout = if ready && magic == header::MAGIC {
            view.snapshot(size).map(|_| ())
        } else {
            Ok(())
        };
        HeaderFacts {
            layout,
            magic,
            state,
            ready: ready && magic == header::MAGIC,
            recorded,
            zero,
            blank: false,
        }
    }

    /// [`read`](Self::read), with `blank` found from the attachment the
    /// view is of and the kernel's record sampled before that attach.
    pub(crate) fn read_attached(
        view: HeaderView<'_>,
        att: &svshm::Attachment,
        info: &SegmentInfo,
    ) -> Self {
        let mut facts = HeaderFacts::read(view, info.size);
        facts.blank = facts.zero && blank_header_page(att, info);
        facts
    }
}

/// Whether the one page the kernel counts for a segment is its header page
/// and that page reads zero from end to end: then every byte of the segment
/// is zero, as in one never written, and there is nothing to lose.
///
/// A creator killed while its first store (the magic) faulted the header
/// page in leaves exactly this: the page is allocated, the store never
/// happens. Without this, such a segment counted as written, was not
/// provably ours, and blocked its channel name for good (not even
/// `svshm gc` would remove it).
///
/// `info` is the kernel's record sampled before our attach. Reading a
/// never-touched page of a shared memory segment allocates it, so had the
/// header page been a hole (the counted page elsewhere, holding someone's
/// data), our read of it raised the count: it is sampled again afterwards.
pub(crate) fn blank_header_page(att: &svshm::Attachment, info: &SegmentInfo) -> bool {
    let page = header::HEADER_SIZE;
    let one_page = |i: &SegmentInfo| i.rss == Some(page as u64) && i.swap.unwrap_or(0) == 0;
    if svshm::page_size() != page || !one_page(info) {
        return false;
    }
    let mut bytes = vec![0u8; page];
    if att.read_at(0, &mut bytes).is_err() || bytes.iter().any(|&b| b != 0) {
        return false;
    }
    svshm::info::public_info_by_id(info.id).is_some_and(|now| one_page(&now))
}

/// The decision, from the kernel's record of the segment sampled *before* any
/// attach of ours (`info`, with `rss`/`swap` filled in where known) and the
/// header as read (`None`: not read; only a segment with no pages at all can
/// then be judged, as all-zero).
pub(crate) fn judge_with(info: &SegmentInfo, facts: Option<&HeaderFacts>) -> Verdict {
    match judge_shape(info, facts) {
        Verdict::Abandoned(_) if info.is_marked_for_destruction() => Verdict::InUse(
            "marked for destruction: the kernel frees it when its last process detaches".into(),
        ),
        v => v,
    }
}

/// [`judge_with`] before the marked-for-destruction rule: what the segment
/// is, whatever the kernel will do with it.
pub(crate) fn judge_shape(info: &SegmentInfo, facts: Option<&HeaderFacts>) -> Verdict {
    if !crate::inspect::might_be_channel(info) {
        return Verdict::NotOurs(format!(
            "a {}-byte segment is not shaped like a channel (a 4096-byte header plus a power-of-two ring)",
            info.size
        ));
    }
    let untouched = info.rss == Some(0) && info.swap.unwrap_or(0) == 0;
    // All zero, whether or not a page was touched: nothing to lose.
    let blank = untouched || facts.is_some_and(|f| f.blank);
    let marked = info.permissions() & INIT_MARK != 0;
    let recorded: &[ProcessId] = facts.map_or(&[], |f| &f.recorded);
    let creator = creator_status(info, recorded);
    let pid = info.creator_pid;
    let gone = creator == Status::Dead;
    let who = match creator {
        Status::Dead => format!("its creator (pid {pid}) is gone"),
        Status::Alive => format!("its creator (pid {pid}) still runs"),
        Status::Unknown => "its creator runs in a pid namespace not visible from here".into(),
    };
    let nobody = info.attach_count == 0;
    match facts {
        Some(f)
            if f.magic == header::MAGIC
                && f.state != header::STATE_READY
                && f.state != header::STATE_INITIALIZING =>
        {
            Verdict::NotOurs(format!(
                "it carries the svshm magic but an impossible init state {}",
                f.state
            ))
        }
        Some(HeaderFacts {
            layout: Err(why), ..
        }) => Verdict::NotOurs(format!(
            "it carries the svshm magic but its header does not hold together ({why})"
        )),
        Some(f) if f.magic == header::MAGIC => {
            if f.ready {
                // A count of 0 sampled while the initialising mark is still
                // set may predate the creator's own attach: then only a gone
                // creator settles it.
                if nobody && !marked {
                    Verdict::Abandoned(format!("nobody is attached to it and {who}"))
                } else if gone {
                    Verdict::Abandoned(format!("{who}, so no peer can ever join it"))
                } else {
                    Verdict::InUse(format!("a channel waiting for its peer; {who}"))
                }
            } else if nobody && gone {
                Verdict::Abandoned(format!(
                    "its header was never finished, nobody is attached, and {who}"
                ))
            } else {
                Verdict::InUse(format!("a channel being created; {who}"))
            }
        }
        Some(f) if !f.zero => {
            Verdict::NotOurs("it holds no svshm channel header (other data)".into())
        }
        // All zero, or not read (then only an untouched segment is judged).
        _ => {
            if !untouched && marked && creator == Status::Alive {
                // Its live creator may have just faulted the header page in
                // and not yet stored the magic (preempted in between).
                return Verdict::InUse(format!("an empty channel segment being created; {who}"));
            }
            if !blank {
                return Verdict::NotOurs(if facts.is_some() {
                    "its header is all zero but its pages have been written (it may hold someone's data)".into()
                } else {
                    "its header was not read".into()
                });
            }
            if !marked {
                return Verdict::NotOurs(
                    "it is empty and lacks the initialising mode mark (0100) of a channel being created".into(),
                );
            }
            if !crate::is_channel_key(info.key) {
                return Verdict::NotOurs(format!(
                    "it is empty, and its key {} is not a channel-name key, so nothing proves svshm made it",
                    info.key
                ));
            }
            if nobody && gone {
                Verdict::Abandoned(format!(
                    "its creator died before writing the header (empty, {}), and {who}",
                    if untouched {
                        "never written"
                    } else {
                        "its one page all zero"
                    }
                ))
            } else {
                Verdict::InUse(format!("an empty channel segment being created; {who}"))
            }
        }
    }
}

/// Judges segment `id` (see the module docs): IPC_STAT and
/// `/proc/sysvipc/shm`, then — only if the kernel's record leaves the question
/// open (nobody attached, or the creator gone) — attaches it read-only for a
/// moment to read the header.
pub fn judge(id: i32) -> Result<Verdict> {
    let seg = Segment::from_id(id);
    let info = kernel_record(&seg)?;
    Ok(judge_info(&seg, &info))
}

/// The kernel's record of a segment: IPC_STAT, with resident and swapped
/// pages from `/proc/sysvipc/shm`.
fn kernel_record(seg: &Segment) -> Result<SegmentInfo> {
    let mut info = seg.stat()?;
    if let Some(p) = svshm::info::public_info_by_id(seg.id()) {
        info.rss = p.rss;
        info.swap = p.swap;
    }
    Ok(info)
}

/// [`judge`] from a kernel record sampled earlier (for instance before an
/// attach of ours, which would raise the attach count): what the kernel
/// showed then, and the header as it is now.
pub fn judge_record(info: &SegmentInfo) -> Verdict {
    let mut info = info.clone();
    if info.rss.is_none() {
        if let Some(p) = svshm::info::public_info_by_id(info.id) {
            info.rss = p.rss;
            info.swap = p.swap;
        }
    }
    judge_info(&Segment::from_id(info.id), &info)
}

fn judge_info(seg: &Segment, info: &SegmentInfo) -> Verdict {
    if info.is_marked_for_destruction() || !crate::inspect::might_be_channel(info) {
        return judge_with(info, None);
    }
    let open = info.attach_count == 0 || creator_status(info, &[]) == Status::Dead;
    if !open {
        return Verdict::InUse(
            "it is attached and its creator still runs (or cannot be seen from here)".into(),
        );
    }
    if info.rss == Some(0) && info.swap.unwrap_or(0) == 0 {
        // Never written: all zero. Judged without attaching (reading it would
        // give it pages).
        return judge_with(info, None);
    }
    read_and_judge(seg, info)
}

fn read_and_judge(seg: &Segment, info: &SegmentInfo) -> Verdict {
    match seg.attach_read_only() {
        Ok(att) => match HeaderView::new(&att) {
            Some(view) => judge_with(info, Some(&HeaderFacts::read_attached(view, &att, info))),
            None => Verdict::NotOurs(format!(
                "its attachment of {} bytes is shorter than a channel header",
                att.len()
            )),
        },
        Err(e) => Verdict::NotOurs(format!("its header cannot be read ({e})")),
    }
}

/// Removes segment `id` if [`judge`] finds it an abandoned svshm channel.
/// `Ok(None)`: kept (the verdict says why: [`judge`]).
pub fn reclaim(id: i32) -> Result<Option<Reclaimed>> {
    let seg = Segment::from_id(id);
    let info = kernel_record(&seg)?;
    let verdict = judge_info(&seg, &info);
    let Verdict::Abandoned(reason) = verdict else {
        return Ok(None);
    };
    match seg.remove() {
        Ok(()) => Ok(Some(Reclaimed {
            id,
            key: info.key,
            size: info.size,
            reason,
        })),
        Err(e) if matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => Ok(None),
        Err(e) => Err(Error::Sys(e)),
    }
}

/// Removes every abandoned svshm channel this process may remove (others'
/// are skipped); returns what was removed. With `dry_run`, removes nothing
/// and returns what would be removed.
pub fn reclaim_all(dry_run: bool) -> Result<Vec<Reclaimed>> {
    let mut out = Vec::new();
    for public in svshm::proc_segments()? {
        if !crate::inspect::might_be_channel(&public) || public.is_marked_for_destruction() {
            continue;
        }
        let seg = Segment::from_id(public.id);
        let mut info = match seg.stat() {
            Ok(i) => i,
            // Gone meanwhile, or not ours to read: not ours to judge.
            Err(_) => continue,
        };
        info.rss = public.rss;
        info.swap = public.swap;
        let Verdict::Abandoned(reason) = judge_info(&seg, &info) else {
            continue;
        };
        let done = Reclaimed {
            id: info.id,
            key: info.key,
            size: info.size,
            reason,
        };
        if !dry_run {
            match seg.remove() {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => continue,
                // Another user's channel we may read but not remove.
                Err(e) if e.kind() == ErrorKind::NotOwner => continue,
                Err(e) => return Err(Error::Sys(e)),
            }
        }
        out.push(done);
    }
    Ok(out)
}
