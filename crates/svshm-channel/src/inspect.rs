//! Looking at a channel from outside: for `svshm ls`, `svshm stat` and stale
//! cleanup.

use crate::error::{Error, Result};
use crate::header::{self, Header, read_snapshot};
use crate::peer::{ProcessId, creator_gone};
use crate::rendezvous::INIT_MARK;
use crate::sync::Ordering;
use svshm::{ErrorKind, Segment, SegmentInfo};

/// What kind of channel a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A byte stream (StreamWriter/StreamReader).
    Stream,
    /// A message channel (Sender/Receiver).
    Messages,
}

/// One side of a channel as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStatus {
    /// The holder's pid.
    pub pid: i32,
    /// Its start time as it recorded it (clock ticks since boot, field 22 of
    /// `/proc/PID/stat`; 0 if unknown).
    pub start_time: u64,
    /// Whether that process still runs (pid and start time match).
    pub alive: bool,
    /// Whether it closed its end.
    pub closed: bool,
}

/// A channel segment's state, read from its header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelStatus {
    /// Segment id.
    pub id: i32,
    /// The name the creator stored (the endpoint's label).
    pub name: String,
    /// Stream or messages.
    pub kind: Kind,
    /// Whether the creator finished initialising the header.
    pub ready: bool,
    /// Ring capacity in bytes.
    pub capacity: u64,
    /// Bytes written and not yet consumed.
    pub fill: u64,
    /// Total bytes written (the writer's cursor).
    pub written: u64,
    /// The writer, once it connected.
    pub writer: Option<PeerStatus>,
    /// The reader, once it connected.
    pub reader: Option<PeerStatus>,
}

impl ChannelStatus {
    /// A one-word state: `initializing`, `waiting` (one side), `connected`,
    /// `closed` (both left), `broken` (a side died without closing).
    pub fn state(&self) -> &'static str {
        if !self.ready {
            return "initializing";
        }
        let dead = |p: &Option<PeerStatus>| p.is_some_and(|p| !p.alive && !p.closed);
        if dead(&self.writer) || dead(&self.reader) {
            return "broken";
        }
        match (self.writer, self.reader) {
            (Some(w), Some(r)) if w.closed && r.closed => "closed",
            (Some(w), _) if w.closed => "draining",
            (Some(_), Some(_)) => "connected",
            _ => "waiting",
        }
    }
}

fn peer_status(slot: &header::Slot) -> Option<PeerStatus> {
    // SYNC: pairs with the Release stores of the slot state in rendezvous.
    let s = slot.state.load(Ordering::Acquire);
    if s != header::SLOT_ATTACHED && s != header::SLOT_CLOSED {
        return None;
    }
    let id = ProcessId {
        pid: slot.pid.load(Ordering::Relaxed) as i32,
        start_time: slot.start_time.load(Ordering::Relaxed),
    };
    Some(PeerStatus {
        pid: id.pid,
        start_time: id.start_time,
        alive: id.is_alive(),
        closed: s == header::SLOT_CLOSED,
    })
}

/// Reads the channel header of segment `id`. `Ok(None)` if the segment is not
/// an svshm channel (wrong size or magic). Attaches read-only, so it needs read
/// permission; changes nothing.
///
/// ```
/// let seg = svshm::Segment::create_private(8192).unwrap();
/// let _rm = seg.remove_on_drop();
/// assert_eq!(svshm_channel::inspect(seg.id()).unwrap(), None);
/// ```
pub fn inspect(id: i32) -> Result<Option<ChannelStatus>> {
    let seg = Segment::from_id(id);
    let info = seg.stat()?;
    if !might_be_channel(&info) {
        return Ok(None);
    }
    let att = seg.attach_read_only()?;
    let hdr = att.as_ptr().cast::<Header>();
    // The attachment maps at least HEADER_SIZE bytes (checked above). Each
    // reference below covers one atomic field, never the whole header, whose
    // plain fields a peer may write and are read volatile.
    // SAFETY: an atomic field of the mapped header page.
    let state = unsafe { &(*hdr).state };
    // SAFETY: an atomic field of the mapped header page.
    let writer = unsafe { &(*hdr).writer.0 };
    // SAFETY: an atomic field of the mapped header page.
    let reader = unsafe { &(*hdr).reader.0 };
    // SAFETY: an atomic field of the mapped header page.
    let cursors = unsafe { &(*hdr).cursors };
    let magic: u64 = header::field!(hdr, magic);
    if magic != header::MAGIC {
        return Ok(None);
    }
    // SYNC: pairs with the creator's Release store of READY.
    let ready = state.load(Ordering::Acquire) == header::STATE_READY;
    if !ready {
        return Ok(Some(ChannelStatus {
            id,
            name: String::new(),
            kind: Kind::Stream,
            ready,
            capacity: 0,
            fill: 0,
            written: 0,
            writer: peer_status(writer),
            reader: peer_status(reader),
        }));
    }
    // SAFETY: as above.
    let snap =
        unsafe { read_snapshot(hdr, info.size) }.map_err(|detail| Error::Corrupt { id, detail })?;
    let head = cursors.head.0.load(Ordering::Acquire);
    let tail = cursors.tail.0.load(Ordering::Acquire);
    Ok(Some(ChannelStatus {
        id,
        name: snap.name,
        kind: if snap.kind == header::KIND_STREAM {
            Kind::Stream
        } else {
            Kind::Messages
        },
        ready,
        capacity: snap.capacity,
        fill: head.saturating_sub(tail).min(snap.capacity),
        written: head,
        writer: peer_status(writer),
        reader: peer_status(reader),
    }))
}

/// Whether a segment's size fits a channel (one header page plus a
/// power-of-two ring of at least 64 bytes). Checked from the kernel's record
/// alone, so tools can skip other segments without attaching them (attaching
/// would change their last-attach time and pid).
pub fn might_be_channel(info: &SegmentInfo) -> bool {
    let header = header::HEADER_SIZE as u64;
    info.size >= header + 64 && (info.size - header).is_power_of_two()
}

/// Whether a segment is a stale svshm channel: nobody attached, its creator is
/// dead, and its header is ours. Such a segment can never be used again and is
/// safe to remove (`svshm rm --stale`).
///
/// Conservative: a creator pid now held by a process that started after the
/// segment was created counts as dead, but one that started within a few
/// seconds of it counts as alive (the segment is kept; see
/// [`peer::creator_gone`](crate::peer::creator_gone); a creator in a pid
/// namespace we cannot see counts as alive); and only segments whose
/// size fits a channel are attached to look.
///
/// Three shapes qualify: a READY channel nobody is attached to (whoever held it
/// is gone: a live side always holds its attachment) — but if `info` still
/// shows the "initialising" mode mark, its count may have been sampled before
/// the creator attached, so the creator must be gone too; our header never made
/// READY, creator gone; and a channel-sized segment still carrying the
/// "initialising" mode mark with a zeroed header, creator gone (the creator
/// died between shmget and writing the header).
pub fn is_stale(info: &SegmentInfo) -> bool {
    if info.attach_count != 0 || !might_be_channel(info) {
        return false;
    }
    let gone = || creator_gone(info, &[]);
    match inspect(info.id) {
        // A count sampled while the mode still carried the initialising mark
        // may predate the creator's attach: it has made the header READY
        // since and is waiting for its peer. Only a gone creator settles it;
        // the start times in the slots guard against a stepped wall clock.
        Ok(Some(s)) if s.ready => {
            let recorded: Vec<ProcessId> = [s.writer, s.reader]
                .into_iter()
                .flatten()
                .map(|p| ProcessId {
                    pid: p.pid,
                    start_time: p.start_time,
                })
                .collect();
            info.permissions() & INIT_MARK == 0 || creator_gone(info, &recorded)
        }
        Ok(Some(_)) => gone(),
        Ok(None) => info.permissions() & INIT_MARK != 0 && gone() && header_is_zero(info.id),
        Err(_) => false,
    }
}

fn header_is_zero(id: i32) -> bool {
    let mut b = [0u8; 64];
    Segment::from_id(id)
        .attach_read_only()
        .and_then(|a| a.read_at(0, &mut b))
        .is_ok_and(|()| b.iter().all(|&x| x == 0))
}

/// Removes every stale channel segment this process may remove; returns the
/// removed segments. `dry_run` only lists them.
pub fn remove_stale(dry_run: bool) -> Result<Vec<SegmentInfo>> {
    let mut out = Vec::new();
    for info in svshm::segments()? {
        if !is_stale(&info) {
            continue;
        }
        if !dry_run {
            match Segment::from_id(info.id).remove() {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => continue,
                // Another user's stale channel we may read but not remove:
                // not ours to reclaim; carry on with the rest.
                Err(e) if e.kind() == ErrorKind::NotOwner => continue,
                Err(e) => return Err(e.into()),
            }
        }
        out.push(info);
    }
    Ok(out)
}
