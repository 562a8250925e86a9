//! Rendezvous: endpoint → segment; create-or-open; verification; stale
//! reclaim; waiting for the peer; marking for destruction once both are in.

pub use crate::endpoint::*;
use crate::error::{Error, Result, Role};
use crate::header::{self, HeaderView};
pub use crate::link::*;
use crate::reclaim::{HeaderFacts, Reclaimed, Verdict, judge_shape, judge_with};
use crate::sync::Ordering;
use std::time::{Duration, Instant};
use svshm::process::ProcessId;
use svshm::{CreateOptions, ErrorKind, Key, Segment};

/// Connects one end: create the segment or join the one that is there, then wait
/// for the other end.
pub(crate) fn connect(ep: &Endpoint, opts: &Options, role: Role, kind: u32) -> Result<Link> {
    let deadline = opts.timeout.and_then(deadline_after);
    let mut link = establish(ep, opts, role, kind)?;
    link.wait_for_peer(deadline, &ep.to_string())?;
    Ok(link)
}

/// The first half of [`connect`]: creates the channel's segment or joins
/// the one there, without waiting for the peer (a service's client posts
/// the new segment's id before it waits).
pub(crate) fn establish(ep: &Endpoint, opts: &Options, role: Role, kind: u32) -> Result<Link> {
    let (capacity, max_message) = opts.ring_geometry(kind == header::KIND_MESSAGES)?;
    let deadline = opts.timeout.and_then(deadline_after);
    let request = Request {
        opts,
        role,
        kind,
        me: ProcessId::current(),
        capacity,
        max_message,
        name: ep.label(),
    };
    let label = ep.to_string();
    let key = ep.key_of(opts)?;
    let mut backoff = Duration::from_micros(100);
    let mut state = JoinState::default();
    let mut link = loop {
        let attempt = match (&ep.0, key) {
            (Repr::Id(id), _) => join(Segment::from_id(*id), &request, true, &mut state)?,
            (_, key) => {
                let key = key.unwrap_or(Key::PRIVATE);
                let total = header::HEADER_SIZE + capacity as usize;
                // Created with the owner-execute bit as a kernel-visible
                // "initialising" mark (cleared once READY), so a creator killed
                // before writing the header leaves a segment provably ours.
                let mode = opts.mode | INIT_MARK;
                match create_segment(CreateOptions::new(total).key(key).mode(mode), total, opts) {
                    Ok((seg, huge)) => {
                        let mut link = create(seg, &request)?;
                        link.huge_pages = huge;
                        Some(link)
                    }
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => match Segment::open(key, 0) {
                        Ok(seg) => join(seg, &request, false, &mut state)?,
                        // Removed between our create and open: try again.
                        Err(e) if e.kind() == ErrorKind::NotFound => None,
                        Err(e) => return Err(e.into()),
                    },
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if let Some(link) = attempt {
            break link;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Timeout {
                waiting_for: format!("{label} to become ready"),
            });
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(10));
    };
    link.reclaimed = state.reclaimed;
    Ok(link)
}

/// Rings at least this large are backed by huge pages where the system has
/// them: a 2 MiB page then maps what would take 512 TLB entries.
pub(crate) const HUGE_PAGE_RING: u64 = 2 << 20;

/// Creates the channel's segment: with `SHM_HUGETLB` when the ring is large
/// enough, the options allow it and the pool has free pages; otherwise, or if
/// the kernel refuses (no permission, no free huge pages), with ordinary
/// pages. Returns whether huge pages back it.
fn create_segment(
    co: CreateOptions,
    total: usize,
    opts: &Options,
) -> svshm::Result<(Segment, bool)> {
    let ring = total.saturating_sub(header::HEADER_SIZE) as u64;
    if opts.huge_pages && ring >= HUGE_PAGE_RING && huge_pages_free(total) {
        match co.clone().hugetlb(svshm::HugePageSize::Default).create() {
            Ok(seg) => return Ok((seg, true)),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::HugePagesNotPermitted
                        | ErrorKind::NoSpace
                        | ErrorKind::OutOfMemory
                        | ErrorKind::InvalidArgument
                        | ErrorKind::InvalidSize
                ) => {}
            Err(e) => return Err(e),
        }
    }
    co.create().map(|seg| (seg, false))
}

/// Whether the default huge-page pool has enough free pages for `bytes`
/// (`/proc/meminfo`: HugePages_Free × Hugepagesize). Unknown counts as no.
fn huge_pages_free(bytes: usize) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else {
        return false;
    };
    let field = |name: &str| -> Option<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    match (field("HugePages_Free:"), field("Hugepagesize:")) {
        (Some(free), Some(kib)) if kib > 0 => {
            free.saturating_mul(kib * 1024) >= (bytes as u64).div_ceil(kib * 1024) * kib * 1024
        }
        _ => false,
    }
}

/// The instant `t` from now, or `None` (forever) if that is beyond what an
/// `Instant` can hold: any timeout a user can give is accepted.
pub(crate) fn deadline_after(t: Duration) -> Option<Instant> {
    Instant::now().checked_add(t)
}

/// Mode bit set while the creator initialises the header (owner execute: never
/// needed by a channel). Cleared with IPC_SET once the header is READY.
pub(crate) const INIT_MARK: u32 = 0o100;

/// What one end asks for, built once by [`connect`] and used by every
/// attempt to create or join the segment.
struct Request<'a> {
    opts: &'a Options,
    /// The side this end takes.
    role: Role,
    /// `header::KIND_STREAM` or `header::KIND_MESSAGES`.
    kind: u32,
    /// This process, as recorded in the slot it claims.
    me: ProcessId,
    /// Ring geometry for a segment this end creates (a joiner adopts the
    /// creator's).
    capacity: u64,
    max_message: u64,
    /// The name stored in a header this end writes.
    name: String,
}

/// Makes `seg` (new, IPC_EXCL or IPC_PRIVATE) a channel: writes the header,
/// claims our slot and publishes READY.
fn create(seg: Segment, req: &Request<'_>) -> Result<Link> {
    let Request {
        opts,
        role,
        kind,
        me,
        capacity,
        max_message,
        ref name,
    } = *req;
    let guard = seg.remove_on_drop();
    let att = seg.attach()?;
    // A forked child must not inherit the ring: its attach would keep the
    // count (our liveness signal) up after we die, and it could write into
    // an SPSC ring as a second writer or reader.
    att.inherit_on_fork(false)?;
    let info = seg.stat()?;
    let mut link = Link::new(
        att,
        role,
        (opts.wait, opts.spin),
        &info,
        (capacity, max_message),
        name.clone(),
        true,
    );
    // The segment is new and HEADER_SIZE + capacity bytes; state is
    // INITIALIZING, so no joiner reads the header yet.
    link.header().write_fresh(kind, capacity, max_message, name);
    link.claim(me);
    // SYNC: publishes the header fields written above to the Acquire load of
    // `state` in `join` and `inspect`.
    link.state().store(header::STATE_READY, Ordering::Release);
    if opts.mode & INIT_MARK == 0 {
        seg.set_mode(opts.mode)?;
    }
    // From here the link's Drop removes the segment if the peer never comes.
    guard.disarm();
    Ok(link)
}

/// What `join` carries from one attempt to the next.
#[derive(Default)]
struct JoinState {
    /// Segments reclaimed as abandoned.
    reclaimed: Vec<Reclaimed>,
    /// A segment seen empty-but-written with a live creator, and since when.
    unfinished: Option<(i32, Instant)>,
}

/// How long a segment may stay empty-but-written under a live creator before
/// it is refused as not a channel.
const UNFINISHED_LIMIT: Duration = Duration::from_secs(2);

/// The kernel's record of a segment about to be joined. `Ok(None)`: it is
/// gone (removed, or its id reused), and a join by key looks again; by id
/// that is an error. Another user's segment we may not even stat is
/// `Error::Foreign`.
pub(crate) fn stat_to_join(seg: &Segment, by_id: bool) -> Result<Option<svshm::SegmentInfo>> {
    match seg.stat() {
        Ok(i) => Ok(Some(i)),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(Error::Foreign {
            id: seg.id(),
            detail: e.message().to_string(),
        }),
        Err(e) if !by_id && matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Joins an existing segment. `Ok(None)`: not ready yet, closing, or reclaimed
/// as abandoned — try again.
///
/// Whether the segment is ours, in use or abandoned is decided by
/// [`judge_with`](crate::reclaim::judge_with) from the kernel's record sampled
/// before our own attach (as PostgreSQL does) and the header: only a proven
/// abandoned svshm channel is removed (and recorded in `reclaimed`); a
/// segment that cannot be proven ours is refused, untouched.
fn join(
    seg: Segment,
    req: &Request<'_>,
    by_id: bool,
    state: &mut JoinState,
) -> Result<Option<Link>> {
    let Request {
        opts,
        role,
        kind,
        me,
        ..
    } = *req;
    let reclaimed = &mut state.reclaimed;
    let id = seg.id();
    let Some(mut info) = stat_to_join(&seg, by_id)? else {
        return Ok(None);
    };
    let expected = opts.owner.unwrap_or_else(svshm::euid);
    if info.creator_uid != expected || info.uid != expected {
        let who = |uid| {
            svshm::__private::user_name(uid)
                .map_or(format!("uid {uid}"), |n| format!("{n} (uid {uid})"))
        };
        return Err(Error::Foreign {
            id,
            detail: format!(
                "it is owned by {} and was created by {}, not by {} as expected",
                who(info.uid),
                who(info.creator_uid),
                who(expected)
            ),
        });
    }
    // The initialising mark is ours, not a widening.
    let marked = opts.mode & INIT_MARK == 0 && info.permissions() & INIT_MARK != 0;
    let perms = if marked {
        info.permissions() & !INIT_MARK
    } else {
        info.permissions()
    };
    if perms & !opts.mode != 0 {
        return Err(Error::Foreign {
            id,
            detail: format!(
                "its mode {:04o} is wider than the {:04o} asked for (anyone it admits could read or forge the data); if both sides are yours, give both the same mode",
                perms, opts.mode
            ),
        });
    }
    let not_ours = |detail: String| Error::NotOurs {
        id,
        key: info.key,
        detail,
    };
    if !crate::inspect::might_be_channel(&info) {
        return Err(not_ours(format!(
            "a {}-byte segment is not shaped like a channel (a 4096-byte header plus a power-of-two ring)",
            info.size
        )));
    }
    // Resident and swapped pages, sampled before our attach: a segment with
    // none was never written, so it holds nothing to lose.
    if let Some(p) = svshm::info::public_info_by_id(id) {
        info.rss = p.rss;
        info.swap = p.swap;
    }
    // Abandoned: removed, and said so. By key the retry finds the key free
    // (or another joiner's new channel); by id it would find the same dead
    // segment again, so say so at once.
    let mut abandoned = |why: String| -> Result<Option<Link>> {
        if info.is_marked_for_destruction() {
            // Already going away when its last process detaches: nothing to
            // reclaim, and nobody can ever complete it.
            return if by_id {
                Err(Error::Invalid(format!(
                    "channel segment {id} cannot be joined: {why}; it is marked for destruction and goes away when its last process detaches. Start a new channel"
                )))
            } else {
                Ok(None)
            };
        }
        match seg.remove() {
            Ok(()) => reclaimed.push(Reclaimed {
                id,
                key: info.key,
                size: info.size,
                reason: why.clone(),
            }),
            // Gone already: another joiner reclaimed it first.
            Err(e) if matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => {}
            Err(e) => {
                return Err(Error::Foreign {
                    id,
                    detail: format!(
                        "it is an abandoned svshm channel ({why}) but cannot be removed ({e})"
                    ),
                });
            }
        }
        if by_id {
            return Err(Error::Invalid(format!(
                "channel segment {id} is abandoned ({why}), so no peer will ever come; it was removed. Start a new channel"
            )));
        }
        Ok(None)
    };
    if info.rss == Some(0) && info.swap.unwrap_or(0) == 0 {
        // Never written: judged without attaching (reading would give it pages).
        match judge_with(&info, None) {
            Verdict::Abandoned(why) => return abandoned(why),
            Verdict::NotOurs(why) => return Err(not_ours(why)),
            // Its creator is about to write the header: look again.
            Verdict::InUse(_) => return Ok(None),
        }
    }
    let att = match seg.attach() {
        Ok(att) => att,
        // Removed since our IPC_STAT (a creator that gave up, another joiner
        // or `svshm gc` reclaiming it): by key, look again.
        Err(e) if !by_id && matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    // A forked child must not inherit the ring: it could write into an SPSC
    // ring as a second writer or reader.
    att.inherit_on_fork(false)?;
    let Some(view) = HeaderView::new(&att) else {
        return Err(not_ours(format!(
            "its attachment of {} bytes is shorter than a channel header",
            att.len()
        )));
    };
    let mut facts = HeaderFacts::read_attached(view, &att, &info);
    // A READY header whose fields do not hold together is reported below as
    // a mismatch (another svshm version, or corrupt), and never reclaimed.
    let layout = std::mem::replace(&mut facts.layout, Ok(()));
    match judge_shape(&info, Some(&facts)) {
        Verdict::Abandoned(why) if layout.is_ok() => {
            drop(att);
            return abandoned(why);
        }
        Verdict::Abandoned(_) => {}
        Verdict::NotOurs(why) => return Err(not_ours(why)),
        // Empty but written, its creator alive: a creator between faulting
        // the header page in and storing the magic, which takes nanoseconds.
        // One that stays so is no channel being created.
        Verdict::InUse(_) if facts.magic != header::MAGIC => {
            match state.unfinished {
                Some((seen, since)) if seen == id => {
                    if since.elapsed() >= UNFINISHED_LIMIT {
                        return Err(not_ours(format!(
                            "it has stayed without a header for {} s although its pages were written and its creator (pid {}) runs; a channel's creator writes the header at once",
                            UNFINISHED_LIMIT.as_secs(),
                            info.creator_pid
                        )));
                    }
                }
                _ => state.unfinished = Some((id, Instant::now())),
            }
            return Ok(None);
        }
        // The creator is still writing the header.
        Verdict::InUse(_) if !facts.ready => return Ok(None),
        Verdict::InUse(_) => {}
    }
    // State READY (seen Acquire in `facts`) means the creator finished writing.
    let snap = view
        .snapshot(info.size)
        .map_err(|detail| Error::Mismatch { id, detail })?;
    if snap.kind != kind {
        return Err(Error::Mismatch {
            id,
            detail: format!(
                "it is a {}, opened as a {}",
                kind_name(snap.kind),
                kind_name(kind)
            ),
        });
    }
    let mut link = Link::new(
        att,
        role,
        (opts.wait, opts.spin),
        &info,
        (snap.capacity, snap.max_message),
        snap.name,
        false,
    );
    // SYNC: pairs with the Release stores of slot states (claim, mark_closed).
    let mine = link.slot(role).state.load(Ordering::Acquire);
    // SYNC: as above, for the peer's slot.
    let theirs = link.slot(role.peer()).state.load(Ordering::Acquire);
    if theirs == header::SLOT_CLOSED {
        // The other side gave up (timed out) and is removing the segment.
        if by_id {
            return Err(Error::Closed { role: role.peer() });
        }
        return Ok(None);
    }
    if mine == header::SLOT_CLOSED && by_id {
        // Our side was used and closed: a channel connects once, and this
        // segment will go when its other side leaves. (By key, look again:
        // the key is freed once the segment is marked for destruction.)
        return Err(Error::Invalid(format!(
            "channel segment {id}: its {role} side was already used and closed; a channel connects once, so start a new one"
        )));
    }
    if mine != header::SLOT_EMPTY {
        if let Some(holder) = read_slot(link.slot(role)) {
            if mine == header::SLOT_ATTACHED {
                return Err(Error::InUse {
                    id,
                    role,
                    pid: holder.pid,
                });
            }
        }
        // Claiming or closing: look again shortly.
        return Ok(None);
    }
    if !link.claim(me) {
        return Ok(None);
    }
    Ok(Some(link))
}
