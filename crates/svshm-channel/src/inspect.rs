//! Looking at a channel from outside: for `svshm ls`, `svshm stat` and stale
//! cleanup.

use crate::error::{Error, Result};
use crate::header::{self, HeaderView};
use crate::sync::Ordering;
use svshm::process::ProcessId;
use svshm::{Segment, SegmentInfo};

/// What kind of channel a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A byte stream (StreamWriter/StreamReader).
    Stream,
    /// A message channel (Sender/Receiver).
    Messages,
    /// A topic ([`Publisher`](crate::Publisher) and its
    /// [`Subscriber`](crate::Subscriber)s): the writer is the publisher;
    /// there is no single reader.
    Topic,
    /// A service's listener ([`Server`](crate::Server)): the writer is the
    /// server; there is no reader.
    Service,
}

/// One side of a channel as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStatus {
    /// The holder's pid.
    pub pid: i32,
    /// Its start time as it recorded it (clock ticks since boot, field 22 of
    /// `/proc/PID/stat`; 0 if unknown).
    pub start_time: u64,
    /// Whether that process may still run: false only when neither its
    /// recorded pid nor the segment's creator pid names a live process with
    /// its start time.
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
    /// Total bytes written (the writer's cursor as last stored; a message
    /// writer stores it lazily, every eighth of the ring and when it waits
    /// or closes).
    pub written: u64,
    /// The writer, once it connected.
    pub writer: Option<PeerStatus>,
    /// The reader, once it connected.
    pub reader: Option<PeerStatus>,
    /// For a service: its live connections and the connections it has
    /// accepted so far (as its server counts them).
    pub connections: Option<(u32, u32)>,
    /// A topic (one publisher, many subscribers; the publisher is `writer`,
    /// `reader` is `None`): how many subscribers hold a slot. `None` for a
    /// channel.
    pub topic_subscribers: Option<usize>,
    /// A topic's overflow policy, as its publisher set it. `None` for a
    /// channel.
    pub topic_overflow: Option<crate::Overflow>,
}

impl ChannelStatus {
    /// A one-word state: `initializing`, `waiting` (one side), `connected`,
    /// `closed` (both left), `broken` (a side died without closing).
    pub fn state(&self) -> &'static str {
        if !self.ready {
            return "initializing";
        }
        if self.kind == Kind::Topic {
            return match self.writer {
                Some(w) if w.closed => "draining",
                Some(w) if w.alive => "publishing",
                _ => "broken",
            };
        }
        if self.kind == Kind::Service {
            return match self.writer {
                Some(w) if w.closed => "closed",
                Some(w) if w.alive => "serving",
                _ => "broken",
            };
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

/// One side as recorded in its slot. Its pid is the one in *its* pid
/// namespace; the process is taken for dead only if neither that pid nor the
/// kernel-attested creator pid (`shm_cpid`, in ours) names a live process with
/// the recorded start time, and a process `/proc` cannot judge counts alive.
fn peer_status(slot: &header::Slot, creator_pid: i32) -> Option<PeerStatus> {
    // SYNC: pairs with the Release stores of the slot state in `Link::claim`
    // and `Link::mark_closed`: pid and start time are read after it.
    let s = slot.state.load(Ordering::Acquire);
    if s != header::SLOT_ATTACHED && s != header::SLOT_CLOSED {
        return None;
    }
    let id = ProcessId {
        pid: slot.pid.load(Ordering::Relaxed) as i32,
        start_time: slot.start_time.load(Ordering::Relaxed),
    };
    let as_creator = ProcessId {
        pid: creator_pid,
        ..id
    };
    let dead = |p: ProcessId| p.pid <= 0 || p.status() == svshm::process::Status::Dead;
    Some(PeerStatus {
        pid: id.pid,
        start_time: id.start_time,
        alive: !(dead(id) && dead(as_creator)),
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
    let Some(view) = HeaderView::new(&att) else {
        return Ok(None);
    };
    let [writer, reader] = view.slots();
    if view.magic() != header::MAGIC {
        return Ok(None);
    }
    // SYNC: pairs with the creator's Release store of READY.
    let ready = view.state().load(Ordering::Acquire) == header::STATE_READY;
    if !ready {
        return Ok(Some(ChannelStatus {
            id,
            name: String::new(),
            kind: Kind::Stream,
            ready,
            capacity: 0,
            fill: 0,
            written: 0,
            writer: peer_status(writer, info.creator_pid),
            reader: peer_status(reader, info.creator_pid),
            connections: None,
            topic_subscribers: None,
            topic_overflow: None,
        }));
    }
    let snap = view
        .snapshot(info.size)
        .map_err(|detail| Error::Corrupt { id, detail })?;
    if snap.kind == header::KIND_SERVICE {
        let (live, accepted) = crate::service::listener_counters(&att).unwrap_or((0, 0));
        return Ok(Some(ChannelStatus {
            id,
            name: snap.name,
            kind: Kind::Service,
            ready,
            capacity: snap.capacity,
            fill: 0,
            written: 0,
            writer: peer_status(writer, info.creator_pid),
            reader: None,
            connections: Some((live, accepted)),
            topic_subscribers: None,
            topic_overflow: None,
        }));
    }
    let topic = if snap.kind == header::KIND_TOPIC {
        crate::topic::peek(&att)
    } else {
        None
    };
    let (head, tail) = match &topic {
        Some(t) => (t.head, t.tail),
        // SYNC: pairs with the Release stores of `head` in
        // `Producer::publish` and of `tail` in `Consumer::publish`.
        None => (
            view.cursors().head.0.load(Ordering::Acquire),
            view.cursors().tail.0.load(Ordering::Acquire),
        ),
    };
    Ok(Some(ChannelStatus {
        id,
        name: snap.name,
        kind: match snap.kind {
            header::KIND_STREAM => Kind::Stream,
            header::KIND_TOPIC => Kind::Topic,
            _ => Kind::Messages,
        },
        ready,
        capacity: snap.capacity,
        fill: head.saturating_sub(tail).min(snap.capacity),
        written: head,
        writer: peer_status(writer, info.creator_pid),
        reader: peer_status(reader, info.creator_pid),
        connections: None,
        topic_subscribers: topic.as_ref().map(|t| t.subscribers),
        topic_overflow: topic.map(|t| {
            if t.overflow == crate::Overflow::Lossy as u32 {
                crate::Overflow::Lossy
            } else {
                crate::Overflow::Backpressure
            }
        }),
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
