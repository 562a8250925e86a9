//! Creating a topic (the publisher) and joining one (a subscriber): the same
//! trust rules as a channel's rendezvous — kernel-attested owner and creator
//! uid, a mode no wider than asked, a header proven ours and validated — and
//! the same reclaim of a topic whose publisher died ([`judge_shape`]).

use super::layout::{self, MAX_SUBSCRIBERS, Shm};
use super::{Overflow, PubWatch};
use crate::endpoint::{Endpoint, Options, Repr};
use crate::error::{Error, Result, Role};
use crate::header::{self, HeaderView};
use crate::reclaim::{HeaderFacts, Reclaimed, Verdict, judge_shape};
use crate::rendezvous::{INIT_MARK, deadline_after};
use crate::sync::Ordering;
use std::time::{Duration, Instant};
use svshm::process::ProcessId;
use svshm::{CreateOptions, ErrorKind, Segment, SegmentInfo};

/// A topic's geometry, parameters and name as its creator fixed them.
pub(crate) struct Topic {
    pub shm: Shm,
    pub max_message: u64,
    pub overflow: Overflow,
    pub subscribers: usize,
    pub name: String,
    pub reclaimed: Vec<Reclaimed>,
}

/// Capacity and maximum message of a new topic.
fn geometry(opts: &Options) -> Result<(u64, u64)> {
    if opts.mode & !0o777 != 0 {
        return Err(Error::Invalid(format!(
            "mode {:#o} has bits beyond the permission bits 0777; give only permission bits",
            opts.mode
        )));
    }
    let mut cap = opts.capacity.max(4096);
    if let Some(m) = opts.max_message {
        if m == 0 || m as u64 > crate::message::MAX_MESSAGE {
            return Err(Error::Invalid(format!(
                "maximum message size {m} must be between 1 and {} bytes",
                crate::message::MAX_MESSAGE
            )));
        }
        cap = cap.max(2 * (m + 32));
    }
    if cap > crate::MAX_CAPACITY {
        return Err(Error::Invalid(format!(
            "ring capacity {cap} exceeds the maximum of {} bytes",
            crate::MAX_CAPACITY
        )));
    }
    let cap = cap.next_power_of_two() as u64;
    let max = match opts.max_message {
        Some(m) => m as u64,
        None => (cap / 2 - 32).min(crate::message::MAX_MESSAGE),
    };
    Ok((cap, max))
}

/// Creates the topic's segment (publisher). A topic under the key whose
/// publisher is gone is reclaimed; one with a live publisher is
/// [`Error::InUse`].
pub(crate) fn create(ep: &Endpoint, opts: &Options) -> Result<Topic> {
    let (cap, max_message) = geometry(opts)?;
    if opts.subscribers == 0 || opts.subscribers > MAX_SUBSCRIBERS {
        return Err(Error::Invalid(format!(
            "a topic admits 1 to {MAX_SUBSCRIBERS} subscribers, not {}",
            opts.subscribers
        )));
    }
    if matches!(ep.0, Repr::Id(_)) {
        return Err(Error::Invalid(
            "a publisher creates its topic: give a name, key, path or Endpoint::private(), not an id"
                .into(),
        ));
    }
    let key = ep.key_of(opts)?.unwrap_or(svshm::Key::PRIVATE);
    let total = header::HEADER_SIZE + cap as usize;
    let deadline = opts.timeout.and_then(deadline_after);
    let mut reclaimed = Vec::new();
    loop {
        let co = CreateOptions::new(total)
            .key(key)
            .mode(opts.mode | INIT_MARK);
        match co.create() {
            Ok(seg) => {
                let guard = seg.remove_on_drop();
                let att = seg.attach()?;
                att.inherit_on_fork(false)?;
                let shm = Shm::new(att, cap).ok_or_else(|| {
                    Error::Invalid(format!(
                        "a new {total}-byte topic segment cannot hold its ring"
                    ))
                })?;
                let name = ep.label();
                let hv = shm.header();
                hv.write_fresh(header::KIND_TOPIC, cap, max_message, &name);
                let p = &shm.block().params.0;
                p.layout.store(layout::TOPIC_LAYOUT, Ordering::Relaxed);
                p.subscribers
                    .store(opts.subscribers as u32, Ordering::Relaxed);
                p.overflow.store(opts.overflow as u32, Ordering::Relaxed);
                let me = ProcessId::current();
                let slot = hv.slot(Role::Writer);
                slot.pid.store(me.pid as u32, Ordering::Relaxed);
                slot.start_time.store(me.start_time, Ordering::Relaxed);
                slot.state.store(header::SLOT_ATTACHED, Ordering::Relaxed);
                // SYNC: publishes the header, parameters and publisher slot
                // to the Acquire load of `state` in `join` and `inspect`.
                hv.state().store(header::STATE_READY, Ordering::Release);
                seg.set_mode(opts.mode)?;
                guard.disarm();
                return Ok(Topic {
                    shm,
                    max_message,
                    overflow: opts.overflow,
                    subscribers: opts.subscribers,
                    name,
                    reclaimed,
                });
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                match Segment::open(key, 0) {
                    Ok(seg) => match look(seg, opts, false, &mut reclaimed)? {
                        Look::Retry => {}
                        Look::Topic(t) => {
                            let pid = t
                                .shm
                                .header()
                                .slot(Role::Writer)
                                .pid
                                .load(Ordering::Relaxed);
                            return Err(Error::InUse {
                                id: t.shm.att.id(),
                                role: Role::Writer,
                                pid: pid as i32,
                            });
                        }
                    },
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(Error::Timeout {
                        waiting_for: format!("the segment under {ep} to be freed"),
                    });
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Joins the topic (subscriber), waiting for it up to the options' timeout.
pub(crate) fn open(ep: &Endpoint, opts: &Options) -> Result<Topic> {
    let deadline = opts.timeout.and_then(deadline_after);
    let key = ep.key_of(opts)?;
    let mut reclaimed = Vec::new();
    let mut backoff = Duration::from_micros(100);
    loop {
        let seg = match (&ep.0, key) {
            (Repr::Id(id), _) => Some(Segment::from_id(*id)),
            (_, Some(key)) => match Segment::open(key, 0) {
                Ok(seg) => Some(seg),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e.into()),
            },
            (_, None) => {
                return Err(Error::Invalid(
                    "a private topic is joined by its id: Endpoint::id(publisher.segment_id())"
                        .into(),
                ));
            }
        };
        if let Some(seg) = seg {
            let by_id = matches!(ep.0, Repr::Id(_));
            if let Look::Topic(mut t) = look(seg, opts, by_id, &mut reclaimed)? {
                t.reclaimed = reclaimed;
                return Ok(t);
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Timeout {
                waiting_for: format!("the publisher of topic {ep} to create it"),
            });
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(10));
    }
}

enum Look {
    /// Not there, not ready, ended, or reclaimed: look again.
    Retry,
    Topic(Topic),
}

/// Vets and attaches an existing segment: ours, a topic, ready, its
/// publisher alive and publishing.
fn look(seg: Segment, opts: &Options, by_id: bool, reclaimed: &mut Vec<Reclaimed>) -> Result<Look> {
    let id = seg.id();
    let Some(mut info) = crate::rendezvous::stat_to_join(&seg, by_id)? else {
        return Ok(Look::Retry);
    };
    vet(&info, opts)?;
    if let Some(p) = svshm::info::public_info_by_id(id) {
        info.rss = p.rss;
        info.swap = p.swap;
    }
    let att = match seg.attach() {
        Ok(att) => att,
        Err(e) if !by_id && matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => {
            return Ok(Look::Retry);
        }
        Err(e) => return Err(e.into()),
    };
    att.inherit_on_fork(false)?;
    let not_ours = |detail: String| Error::NotOurs {
        id,
        key: info.key,
        detail,
    };
    let Some(view) = HeaderView::new(&att) else {
        return Err(not_ours("shorter than a channel header".into()));
    };
    let facts = HeaderFacts::read_attached(view, &att, &info);
    match judge_shape(&info, Some(&facts)) {
        Verdict::NotOurs(why) => return Err(not_ours(why)),
        Verdict::Abandoned(why) => {
            drop(att);
            if info.is_marked_for_destruction() {
                return if by_id {
                    Err(Error::Invalid(format!(
                        "topic segment {id} cannot be joined: {why}"
                    )))
                } else {
                    Ok(Look::Retry)
                };
            }
            if seg.remove().is_ok() {
                reclaimed.push(Reclaimed {
                    id,
                    key: info.key,
                    size: info.size,
                    reason: why,
                });
            }
            return Ok(Look::Retry);
        }
        Verdict::InUse(_) if !facts.ready => return Ok(Look::Retry),
        Verdict::InUse(_) => {}
    }
    let snap = view
        .snapshot(info.size)
        .map_err(|detail| Error::Mismatch { id, detail })?;
    if snap.kind != header::KIND_TOPIC {
        return Err(Error::Mismatch {
            id,
            detail: format!(
                "it is a {}, opened as a topic",
                crate::link::kind_name(snap.kind)
            ),
        });
    }
    let shm = Shm::new(att, snap.capacity).ok_or_else(|| Error::Corrupt {
        id,
        detail: "its ring does not fit the segment".into(),
    })?;
    let p = &shm.block().params.0;
    let version = p.layout.load(Ordering::Relaxed);
    if version != layout::TOPIC_LAYOUT {
        return Err(Error::Mismatch {
            id,
            detail: format!(
                "topic layout version {version}, this build speaks {}",
                layout::TOPIC_LAYOUT
            ),
        });
    }
    let subscribers = p.subscribers.load(Ordering::Relaxed) as usize;
    if subscribers == 0 || subscribers > MAX_SUBSCRIBERS {
        return Err(Error::Corrupt {
            id,
            detail: format!("{subscribers} subscriber slots (1 to {MAX_SUBSCRIBERS} allowed)"),
        });
    }
    let overflow = match p.overflow.load(Ordering::Relaxed) {
        0 => Overflow::Backpressure,
        1 => Overflow::Lossy,
        o => {
            return Err(Error::Corrupt {
                id,
                detail: format!("unknown overflow mode {o}"),
            });
        }
    };
    // SYNC: pairs with the Release store of `closed` when the publisher
    // ends (then its key is being removed).
    let closed = shm.block().end.0.closed.load(Ordering::Acquire);
    if closed != 0 {
        return if by_id {
            Err(if closed == crate::ring::CLOSED {
                Error::Closed { role: Role::Writer }
            } else {
                Error::Aborted { role: Role::Writer }
            })
        } else {
            Ok(Look::Retry)
        };
    }
    Ok(Look::Topic(Topic {
        shm,
        max_message: snap.max_message,
        overflow,
        subscribers,
        name: snap.name,
        reclaimed: Vec::new(),
    }))
}

/// The kernel's record must show our trust: owner and creator uid as
/// expected, mode no wider than asked, the shape of a channel segment.
pub(crate) fn vet(info: &SegmentInfo, opts: &Options) -> Result<()> {
    let id = info.id;
    let expected = opts.owner.unwrap_or_else(svshm::euid);
    if info.creator_uid != expected || info.uid != expected {
        return Err(Error::Foreign {
            id,
            detail: format!(
                "it is owned by uid {} and was created by uid {}, not by uid {expected} as expected",
                info.uid, info.creator_uid
            ),
        });
    }
    let perms = info.permissions() & !INIT_MARK;
    if perms & !opts.mode != 0 {
        return Err(Error::Foreign {
            id,
            detail: format!(
                "its mode {perms:04o} is wider than the {:04o} asked for (anyone it admits could read or forge messages); give both sides the same mode",
                opts.mode
            ),
        });
    }
    if !crate::inspect::might_be_channel(info) {
        return Err(Error::NotOurs {
            id,
            key: info.key,
            detail: format!(
                "a {}-byte segment is not shaped like a topic (a 4096-byte header plus a power-of-two ring)",
                info.size
            ),
        });
    }
    Ok(())
}

/// Identifies the publisher from its slot, cross-checked with the kernel's
/// creator pid and the process's start time, and watches it.
pub(crate) fn watch_publisher(shm: &Shm) -> (i32, PubWatch) {
    let slot = shm.header().slot(Role::Writer);
    // SYNC: pairs with the Release store of READY after the slot was written.
    let _ = shm.header().state().load(Ordering::Acquire);
    let recorded = ProcessId {
        pid: slot.pid.load(Ordering::Relaxed) as i32,
        start_time: slot.start_time.load(Ordering::Relaxed),
    };
    let kernel = shm.att.segment().stat().map_or(0, |i| i.creator_pid);
    for cand in [kernel, recorded.pid] {
        if cand <= 0 || recorded.start_time == 0 {
            continue;
        }
        match ProcessId::of(cand) {
            Some(now) if now.start_time == recorded.start_time => {
                let w = svshm::process::Watch::new(now);
                let notice = w.exit_notice();
                return (cand, PubWatch::Process(w, notice));
            }
            _ => {}
        }
    }
    if kernel > 0
        && (svshm::process::pid_exists(kernel) == Some(false)
            || ProcessId::of(kernel).is_some_and(|p| p.start_time != recorded.start_time))
    {
        // The kernel names the creator in our pid namespace and it is gone.
        return (kernel, PubWatch::Gone);
    }
    (recorded.pid, PubWatch::Unknown)
}
