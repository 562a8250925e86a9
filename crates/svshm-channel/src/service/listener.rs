//! A service's listener: a small segment under the service's key where
//! clients post the ids of the two channel segments they made for a
//! connection, and where the server waits for them.
//!
//! Layout: a channel header (kind `KIND_SERVICE`; the server holds the writer
//! slot) and a 4096-byte area of 32-bit words:
//!
//! | words | what |
//! |---|---|
//! | 0 | live connections (kept by the server, for inspection) |
//! | 1 | connections accepted so far |
//! | 16 + 4 k … | accept slot k: state, request segment id, response segment id, poster's pid (a hint only) |
//!
//! A slot goes FREE → CLAIMED (a client's CAS) → POSTED (Release, after the
//! ids) → FREE (the server, after reading them). The client then wakes the
//! server's wait word (the header's reader wait word) the way a ring wakes
//! its reader: only if it is set, after a SeqCst fence.
//!
//! Nothing posted is trusted: the server takes the caller's identity from
//! the kernel's record of the posted segments (their creator), joins them
//! with the same checks as any channel, and drops a post that fails them.

use crate::endpoint::Endpoint;
use crate::error::{Error, Result, Role};
use crate::header::{self, HEADER_SIZE, HeaderView};
use crate::rendezvous::{INIT_MARK, Options};
use crate::sync::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};
use svshm::process::{ProcessId, Status};
use svshm::{Attachment, CreateOptions, ErrorKind, Key, Segment};

/// Bytes of the accept area.
pub(crate) const AREA: usize = 4096;
const WORDS: usize = AREA / 4;
const W_CONNECTIONS: usize = 0;
const W_ACCEPTED: usize = 1;
const FIRST_SLOT: usize = 16;
/// Accept slots: clients that may be waiting to be accepted at once.
pub(crate) const SLOTS: usize = 128;

const FREE: u32 = 0;
const CLAIMED: u32 = 1;
const POSTED: u32 = 2;

/// A claimed slot whose poster is gone is freed after this long.
const STALE_CLAIM: Duration = Duration::from_secs(1);

const _: () = assert!(FIRST_SLOT + 4 * SLOTS <= WORDS);

/// Top byte of the listener keys: the channel part of the key space, so
/// cleanup tools recognise a dead server's listener as svshm's.
const SERVICE_KEY_TAG: u32 = 0x5C;

/// The key of the service named `name` owned by `uid`: like a channel's
/// name key, hashed with its own prefix so a channel and a service may share
/// a name.
pub(crate) fn service_key(name: &str, uid: u32) -> Key {
    let folded = svshm::name_hash(b"svshm-service\0", name, uid);
    Key::new(((SERVICE_KEY_TAG << 24) | (folded & 0x00ff_ffff)) as i32)
}

/// The key a service endpoint names, for the options' owner.
pub(crate) fn key_of(ep: &Endpoint, opts: &Options) -> Result<Option<Key>> {
    match &ep.0 {
        crate::endpoint::Repr::Name(n) => {
            Ok(Some(service_key(n, opts.owner.unwrap_or_else(svshm::euid))))
        }
        _ => ep.key_of(opts),
    }
}

/// One attachment of a listener segment.
pub(crate) struct Listener {
    att: Attachment,
}

/// A posted connection, as read from a slot: two segment ids.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Post {
    pub req: i32,
    pub resp: i32,
}

impl Listener {
    fn area(&self) -> &[AtomicU32] {
        header::atomic_words(&self.att, HEADER_SIZE, WORDS)
            .expect("a listener's accept area fits its segment (checked at open)")
    }

    fn view(&self) -> HeaderView<'_> {
        HeaderView::new(&self.att).expect("a listener holds a header page (checked at open)")
    }

    /// The word the server sleeps on while no post is there.
    pub(crate) fn wait_word(&self) -> &AtomicU32 {
        &self.view().cursors().reader_wait.0
    }

    pub(crate) fn segment_id(&self) -> i32 {
        self.att.id()
    }

    /// Creates the listener under `key` for this process, the server:
    /// `Ok(None)` if a segment is there already.
    pub(crate) fn create(key: Key, opts: &Options, name: &str) -> Result<Option<Listener>> {
        if opts.mode & !0o777 != 0 {
            return Err(Error::Invalid(format!(
                "mode {:#o} has bits beyond the permission bits 0777; give only permission bits",
                opts.mode
            )));
        }
        let total = HEADER_SIZE + AREA;
        let seg = match CreateOptions::new(total)
            .key(key)
            .mode(opts.mode | INIT_MARK)
            .create()
        {
            Ok(seg) => seg,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let guard = seg.remove_on_drop();
        let att = seg.attach()?;
        att.inherit_on_fork(false)?;
        let l = Listener { att };
        let view = l.view();
        view.write_fresh(header::KIND_SERVICE, AREA as u64, 0, name);
        let me = ProcessId::current();
        let slot = view.slot(Role::Writer);
        slot.pid.store(me.pid as u32, Ordering::Relaxed);
        slot.start_time.store(me.start_time, Ordering::Relaxed);
        // SYNC: publishes pid/start_time to `read_slot`'s Acquire load.
        slot.state.store(header::SLOT_ATTACHED, Ordering::Release);
        // SYNC: publishes the header to the Acquire load of `state` in `open`.
        view.state().store(header::STATE_READY, Ordering::Release);
        seg.set_mode(opts.mode)?;
        guard.disarm();
        Ok(Some(l))
    }

    /// Opens the listener under `key` as a client (or a server looking at
    /// what is there), with the checks a channel's joiner makes: owner and
    /// creator uid, mode no wider than asked, our header of kind service.
    /// `Ok(None)`: no segment under the key.
    pub(crate) fn open(key: Key, opts: &Options) -> Result<Option<Listener>> {
        let seg = match Segment::open(key, 0) {
            Ok(seg) => seg,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let id = seg.id();
        let info = match seg.stat() {
            Ok(i) => i,
            Err(e) if matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        // The trust a channel's joiner asks of the kernel's record: owner
        // and creator uid, mode no wider than asked, a channel's shape.
        crate::topic::join::vet(&info, opts)?;
        if info.size != (HEADER_SIZE + AREA) as u64 {
            return Err(Error::Mismatch {
                id,
                detail: format!("a {}-byte segment is not a service listener", info.size),
            });
        }
        let att = match seg.attach() {
            Ok(a) => a,
            Err(e) if matches!(e.kind(), ErrorKind::InvalidId | ErrorKind::Removed) => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        att.inherit_on_fork(false)?;
        let l = Listener { att };
        let view = l.view();
        // SYNC: pairs with the Release store of READY in `create`.
        if view.state().load(Ordering::Acquire) != header::STATE_READY {
            // Being created, or never finished: a server killed between
            // making it and READY leaves it so for good, and every bind
            // and connect on the service would find it "being created"
            // until `svshm gc`. Reclaim it if it is provably abandoned
            // (after our own detach, which would count as a user); a live
            // creator's is kept. Either way the caller retries, and an
            // error here (gone meanwhile) changes nothing for that.
            drop(l);
            let _ = crate::reclaim::reclaim(id);
            return Ok(None);
        }
        let snap = view
            .snapshot(info.size)
            .map_err(|detail| Error::Mismatch { id, detail })?;
        if snap.kind != header::KIND_SERVICE {
            return Err(Error::Mismatch {
                id,
                detail: format!(
                    "the segment under the service's key is a {}, not a service",
                    crate::link::kind_name(snap.kind)
                ),
            });
        }
        Ok(Some(l))
    }

    /// The server recorded in the header, if any.
    pub(crate) fn server(&self) -> Option<ProcessId> {
        crate::link::read_slot(self.view().slot(Role::Writer))
    }

    /// Whether the recorded server still serves: it has not closed, and its
    /// process (pid with start time) runs.
    pub(crate) fn server_alive(&self) -> bool {
        // SYNC: pairs with the Release stores of the slot state in `create`
        // and `close`.
        let open =
            self.view().slot(Role::Writer).state.load(Ordering::Acquire) == header::SLOT_ATTACHED;
        open && self
            .server()
            .is_some_and(|p| p.pid > 0 && p.status() != Status::Dead)
    }

    /// Client: claims a free slot and posts `post` in it, then wakes the
    /// server. `false` if every slot is taken.
    pub(crate) fn post(&self, post: Post) -> bool {
        let area = self.area();
        for k in 0..SLOTS {
            let w = FIRST_SLOT + 4 * k;
            // SYNC: the CAS hands the slot to one client; the server's
            // Release store of FREE (after reading the ids) pairs with it.
            if area[w]
                .compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            area[w + 3].store(std::process::id(), Ordering::Relaxed);
            area[w + 1].store(post.req as u32, Ordering::Relaxed);
            area[w + 2].store(post.resp as u32, Ordering::Relaxed);
            // SYNC: publishes the ids to the server's Acquire load in `take`.
            area[w].store(POSTED, Ordering::Release);
            // SYNC: pairs with the fence in `Server`'s sleep (announce,
            // fence, re-check), as in the ring's `wake_if_waiting`.
            fence(Ordering::SeqCst);
            let word = self.wait_word();
            if word.load(Ordering::Relaxed) != 0 {
                word.store(0, Ordering::Relaxed);
                crate::futex::wake(word);
            }
            return true;
        }
        false
    }

    /// Whether a post is waiting.
    pub(crate) fn has_post(&self) -> bool {
        let area = self.area();
        (0..SLOTS).any(|k| area[FIRST_SLOT + 4 * k].load(Ordering::Relaxed) == POSTED)
    }

    /// Server: takes the first post, freeing its slot; frees slots claimed
    /// long ago by a process that is gone.
    pub(crate) fn take(&self, stale: &mut [Option<Instant>]) -> Option<Post> {
        let area = self.area();
        for (k, seen) in stale.iter_mut().enumerate().take(SLOTS) {
            let w = FIRST_SLOT + 4 * k;
            // SYNC: pairs with the Release store of POSTED in `post`.
            match area[w].load(Ordering::Acquire) {
                POSTED => {
                    let post = Post {
                        req: area[w + 1].load(Ordering::Relaxed) as i32,
                        resp: area[w + 2].load(Ordering::Relaxed) as i32,
                    };
                    area[w + 3].store(0, Ordering::Relaxed);
                    // SYNC: hands the slot back to the next client's CAS.
                    area[w].store(FREE, Ordering::Release);
                    *seen = None;
                    return Some(post);
                }
                CLAIMED => {
                    let since = *seen.get_or_insert_with(Instant::now);
                    let pid = area[w + 3].load(Ordering::Relaxed) as i32;
                    if since.elapsed() >= STALE_CLAIM
                        && (pid <= 0 || !svshm::process::pid_exists(pid).unwrap_or(true))
                    {
                        // SYNC: hands the slot back to the next client's CAS.
                        area[w].store(FREE, Ordering::Release);
                        *seen = None;
                    }
                }
                _ => *seen = None,
            }
        }
        None
    }

    /// The live-connection counter.
    pub(crate) fn connections(&self) -> &AtomicU32 {
        &self.area()[W_CONNECTIONS]
    }

    /// The accepted-connection counter.
    pub(crate) fn accepted(&self) -> &AtomicU32 {
        &self.area()[W_ACCEPTED]
    }

    /// Server going away: its slot closed, so clients stop posting.
    pub(crate) fn close(&self) {
        // SYNC: pairs with Acquire loads of slot states in `read_slot`.
        self.view()
            .slot(Role::Writer)
            .state
            .store(header::SLOT_CLOSED, Ordering::Release);
    }

    /// The segment, for removal.
    pub(crate) fn segment(&self) -> Segment {
        self.att.segment()
    }
}

/// A listener's live connections and accepted total, read from a read-only
/// attachment (for inspection).
pub(crate) fn counters(att: &Attachment) -> Option<(u32, u32)> {
    let area = header::atomic_words(att, HEADER_SIZE, WORDS)?;
    Some((
        area[W_CONNECTIONS].load(Ordering::Relaxed),
        area[W_ACCEPTED].load(Ordering::Relaxed),
    ))
}
