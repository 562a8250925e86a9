//! loom models of the ring protocol: reserve/commit (put/publish) and
//! peek/consume (take/publish), wrap-around, close and abort, lazy release,
//! the message frames (tags, lazy `head`, the skip marker, the cleared next
//! tag), and the waiting flag and wake. Run with
//! `RUSTFLAGS="--cfg svshm_loom" cargo test -p svshm-channel --release --test loom`.
//!
//! Each model notes a break it was checked against (an ordering weakened or a
//! step removed, which makes loom fail it).
//!
//! The data area is a row of loom-tracked cells, so a read of bytes the
//! producer has not yet published (a missing Release/Acquire) is reported as a
//! data race; the futex is modelled with a loom condition variable, so a lost
//! wake-up shows up as a deadlock. Its 8-byte words are also loom atomics, the
//! tag words: a copy that covers a whole word stores its bytes there too
//! (Relaxed), as a copy into real memory does, so payload bytes of an earlier
//! lap can be read as a tag.
#![cfg(svshm_loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering};
use svshm_channel::ring::{
    ABORTED, Consumer, Cursors, Liveness, Mem, Producer, RingError, Wait, WaitPolicy,
};

struct LoomMem(Arc<Vec<UnsafeCell<u8>>>, Arc<Vec<AtomicU64>>);

// SAFETY: the cells are only reached through `Mem`, whose callers (the ring)
// give each side exclusive use of the bytes it touches; loom checks that claim.
unsafe impl Send for LoomMem {}

// SAFETY: bounds are guaranteed by the ring (pos + len <= capacity == cells);
// exclusivity is what the model verifies.
unsafe impl Mem for LoomMem {
    fn write(&self, pos: usize, src: &[u8]) {
        for (i, b) in src.iter().enumerate() {
            // SAFETY: loom tracks the access and reports a race if it overlaps a read.
            self.0[pos + i].with_mut(|p| unsafe { *p = *b });
        }
        // Whole 8-byte words written are what a tag load there would see.
        let first = pos.div_ceil(8) * 8;
        let mut w = first;
        while w + 8 <= pos + src.len() {
            let v = u64::from_le_bytes(src[w - pos..][..8].try_into().unwrap());
            self.1[w / 8].store(v, Ordering::Relaxed);
            w += 8;
        }
    }
    fn read(&self, pos: usize, dst: &mut [u8]) {
        for (i, d) in dst.iter_mut().enumerate() {
            // SAFETY: as above.
            *d = self.0[pos + i].with(|p| unsafe { *p });
        }
    }
    fn ptr(&self, _pos: usize) -> Option<*mut u8> {
        None
    }
    fn tag(&self, pos: usize) -> u64 {
        self.1[pos / 8].load(Ordering::Acquire)
    }
    fn set_tag(&self, pos: usize, tag: u64) {
        self.1[pos / 8].store(tag, Ordering::Release);
    }
    fn clear_tag(&self, pos: usize) {
        self.1[pos / 8].store(0, Ordering::Relaxed);
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

fn ring(cap: usize) -> (Arc<Cursors>, Producer<LoomMem>, Consumer<LoomMem>) {
    let cur = Arc::new(Cursors::default());
    let cells: Arc<Vec<UnsafeCell<u8>>> = Arc::new((0..cap).map(|_| UnsafeCell::new(0)).collect());
    let tags: Arc<Vec<AtomicU64>> =
        Arc::new((0..cap.div_ceil(8)).map(|_| AtomicU64::new(0)).collect());
    let p: *const Cursors = &*cur;
    // SAFETY: `cur` is kept alive by the returned Arc until both sides are done.
    let prod =
        unsafe { Producer::new(p, LoomMem(cells.clone(), tags.clone()), cap as u64) }.unwrap();
    // SAFETY: as above.
    let cons = unsafe { Consumer::new(p, LoomMem(cells, tags), cap as u64) }.unwrap();
    (cur, prod, cons)
}

const ALIVE: fn() -> Liveness = || Liveness::Alive;

/// A stream of 6 bytes through a 4-byte ring in chunks of 3: wraps, fills,
/// blocks both ways, closes. The reader must get exactly 0..6 then end.
#[test]
fn stream_wraps_blocks_and_closes() {
    model(|| {
        let (cur, mut prod, mut cons) = ring(4);
        let keep = cur.clone();
        let reader = loom::thread::spawn(move || {
            let _keep = keep;
            let mut got = Vec::new();
            let pol = WaitPolicy::forever(Wait::Block);
            while cons.wait_available(1, pol, ALIVE).unwrap() {
                let n = cons.available(1).unwrap().min(2) as usize;
                let mut buf = [0u8; 2];
                cons.take(&mut buf[..n]);
                cons.publish();
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        let pol = WaitPolicy::forever(Wait::Block);
        for chunk in [[0u8, 1, 2], [3, 4, 5]] {
            prod.wait_free(3, pol, ALIVE).unwrap();
            prod.put(&chunk);
            prod.publish();
        }
        prod.close();
        assert_eq!(reader.join().unwrap(), vec![0, 1, 2, 3, 4, 5]);
        drop(cur);
    });
}

/// Zero-copy shape: the producer advances after writing in place, the consumer
/// peeks then consumes; a consumer that closes makes a blocked producer fail.
#[test]
fn consumer_close_wakes_blocked_producer() {
    model(|| {
        let (cur, mut prod, mut cons) = ring(4);
        let keep = cur.clone();
        let reader = loom::thread::spawn(move || {
            let _keep = keep;
            let pol = WaitPolicy::forever(Wait::Block);
            assert!(cons.wait_available(2, pol, ALIVE).unwrap());
            let mut b = [0u8; 2];
            cons.peek_at(0, &mut b);
            assert_eq!(b, [7, 8]);
            cons.advance(2);
            cons.close();
        });
        let pol = WaitPolicy::forever(Wait::Block);
        prod.put(&[7, 8, 9, 10]);
        prod.publish();
        // The ring is full until the reader consumes 2; it then closes, so this
        // wait either succeeds (space freed first) or sees the close.
        let r = prod.wait_free(4, pol, ALIVE);
        assert!(r.is_err() || prod.free(0).unwrap() >= 2);
        reader.join().unwrap();
        drop(cur);
    });
}

/// `n` recognisable bytes, to check that a stream arrives intact.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| i as u8 ^ 0x5a).collect()
}

/// One run of a model over a fresh `cap`-byte ring: `read` gets the consumer
/// on a thread of its own, `write` the producer (and the control block) on
/// this one; returns what `read` returned.
fn two_sides<R: Send + 'static>(
    cap: usize,
    read: impl FnOnce(Consumer<LoomMem>) -> R + Send + 'static,
    write: impl FnOnce(&mut Producer<LoomMem>, &Cursors),
) -> R {
    let (cur, mut prod, cons) = ring(cap);
    let keep = cur.clone();
    let reader = loom::thread::spawn(move || {
        let _keep = keep;
        read(cons)
    });
    write(&mut prod, &cur);
    reader.join().unwrap()
}

/// Lazy release with both sides blocking: a 16-byte ring (so `publish_lazy`
/// holds back a single consumed byte), filled by the producer, which then
/// blocks for 1 byte of space while the consumer, holding one consumed but
/// unreleased byte, blocks for 16. Only the release at the top of
/// `wait_available` frees the producer: no lost wake-up, no deadlock, and the
/// 17 bytes arrive intact, then a clean end.
///
/// Checked to fail: without the `self.publish()` before waiting in
/// `Consumer::wait_available`, loom reports a deadlock (both sides asleep);
/// with the fence in `wake_if_waiting` weakened from SeqCst to AcqRel, a lost
/// wake-up shows up as a deadlock too (here and in every blocking model).
#[test]
fn lazy_release_with_blocking_waits() {
    model(|| {
        let data = pattern(17);
        let got = two_sides(
            16,
            |mut cons| {
                let pol = WaitPolicy::forever(Wait::Block);
                let mut got = vec![0u8; 17];
                assert!(cons.wait_available(1, pol, ALIVE).unwrap());
                cons.take(&mut got[..1]);
                cons.publish_lazy();
                assert!(cons.wait_available(16, pol, ALIVE).unwrap());
                cons.take(&mut got[1..]);
                cons.publish_lazy();
                assert!(!cons.wait_available(1, pol, ALIVE).unwrap());
                got
            },
            |prod, _| {
                let pol = WaitPolicy::forever(Wait::Block);
                prod.wait_free(16, pol, ALIVE).unwrap();
                prod.put(&data[..16]);
                prod.publish();
                prod.wait_free(1, pol, ALIVE).unwrap();
                prod.put(&data[16..]);
                prod.close();
            },
        );
        assert_eq!(got, data);
    });
}

/// Reads everything until the stream ends; returns the bytes and how it ended.
fn drain(mut cons: Consumer<LoomMem>) -> (Vec<u8>, Result<(), RingError>) {
    let pol = WaitPolicy::forever(Wait::Block);
    let mut got = Vec::new();
    loop {
        match cons.wait_available(1, pol, ALIVE) {
            Ok(true) => {}
            Ok(false) => return (got, Ok(())),
            Err(e) => return (got, Err(e)),
        }
        let n = cons.available(1).unwrap().min(2) as usize;
        let mut buf = [0u8; 2];
        cons.take(&mut buf[..n]);
        cons.publish_lazy();
        got.extend_from_slice(&buf[..n]);
    }
}

/// A producer that gives up mid-stream (`close_with(ABORTED)`, as a dropped
/// writer does) after blocking for space: the consumer reads every byte
/// published, then gets `Aborted` — never a clean end.
///
/// Checked to fail: without the re-read of `head` after the consumer sees the
/// closed flag (`self.refresh()` in `wait_available`), loom finds the run where
/// `head` is published between the consumer's last look at it and its load of
/// the flag, and the consumer reports `Aborted` after only [1, 2, 3]. (Making
/// the flag's Release store Relaxed is caught by `clean_close_adds_up`, not
/// here: loom does not produce the stale `head` that would need.)
#[test]
fn abort_mid_stream_is_never_a_clean_end() {
    model(|| {
        let (got, end) = two_sides(4, drain, |prod, _| {
            prod.put(&[1, 2, 3]);
            prod.publish();
            prod.wait_free(3, WaitPolicy::forever(Wait::Block), ALIVE)
                .unwrap();
            // Written but not yet published: close_with publishes it first.
            prod.put(&[4, 5, 6]);
            prod.close_with(ABORTED);
        });
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(end, Err(RingError::Aborted));
    });
}

/// A clean `close()` right after unpublished bytes: the consumer gets all of
/// them and a clean end, which means the inverted final cursor in
/// `writer_final` matched the published `head`.
///
/// Checked to fail: with the store of `writer_closed` in `close_with` made
/// Relaxed, loom finds a run where the consumer reads a stale `writer_final`
/// (0, inverted: 2^64 - 1) and reports the end as corrupt; without the re-read
/// of `head` after the flag, it ends after [1, 2] only.
#[test]
fn clean_close_adds_up() {
    model(|| {
        let (got, end) = two_sides(4, drain, |prod, cur| {
            prod.put(&[1, 2]);
            prod.publish();
            prod.put(&[3]);
            prod.close();
            assert_eq!(!cur.writer_final.0.load(Ordering::Relaxed), 3);
        });
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(end, Ok(()));
    });
}

// Message frames. The message layer (`Sender`/`Receiver`) is not built under
// loom (it needs real segments), so its framing is modelled here at the ring
// level, step for step: `send_frame` follows `Sender::reserve_frame` and
// `send_with`, `recv_frame` follows `parse_frame` and `Receiver::next_frame`.

const SKIP: u32 = u32::MAX;
const FRAME_HEADER: u64 = 16;
const FRAME_ALIGN: u64 = 16;
const NEXT_TAG: u64 = 8;

fn frame_len(len: u64) -> u64 {
    FRAME_HEADER + len.div_ceil(FRAME_ALIGN) * FRAME_ALIGN
}

fn encode(len: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&len.to_le_bytes());
    h[4..].copy_from_slice(&(!len).to_le_bytes());
    h
}

fn send_frame(prod: &mut Producer<LoomMem>, msg: &[u8]) {
    let frame = frame_len(msg.len() as u64);
    let cap = prod.capacity();
    let to_end = cap - (prod.head() & (cap - 1));
    // Room for the marker, the whole frame after it and the next tag word, as
    // `reserve_frame`.
    let need = if to_end < frame {
        to_end + frame + NEXT_TAG
    } else {
        frame + NEXT_TAG
    };
    prod.wait_free(need, WaitPolicy::forever(Wait::Block), ALIVE)
        .unwrap();
    if to_end < frame {
        let marker = prod.head();
        prod.advance(NEXT_TAG);
        prod.put(&encode(SKIP));
        prod.advance(to_end - FRAME_HEADER);
        prod.publish_frame(marker);
    }
    let start = prod.head();
    prod.advance(NEXT_TAG);
    prod.put(&encode(msg.len() as u32));
    prod.put(msg);
    prod.advance(frame - FRAME_HEADER - msg.len() as u64);
    prod.publish_frame(start);
}

/// What `recv_frame` gives: a message, the clean end, or the error the
/// consumer ends with.
type Got = Result<Option<Vec<u8>>, RingError>;

/// The next message, `Ok(None)` at a clean end.
fn recv_frame(cons: &mut Consumer<LoomMem>) -> Got {
    let cap = cons.capacity();
    let pol = WaitPolicy::forever(Wait::Block);
    loop {
        let pos = cons.tail() & (cap - 1);
        assert_eq!(pos % FRAME_ALIGN, 0);
        if !cons.tag_ready() {
            if !cons.wait_tagged(pol, ALIVE)? {
                return Ok(None);
            }
            continue;
        }
        let mut h = [0u8; 8];
        cons.mem().read(pos as usize + 8, &mut h);
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let check = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        assert_eq!(check, !len, "frame header {h:02x?} fails its check");
        if len == SKIP {
            let to_end = cap - pos;
            assert_ne!(pos, 0, "skip marker at the start of the ring");
            cons.accept(to_end)?;
            cons.advance(to_end);
            continue;
        }
        let frame = frame_len(u64::from(len));
        assert!(pos + frame <= cap, "frame straddles the ring's end");
        cons.accept(frame)?;
        let mut out = vec![0u8; len as usize];
        cons.peek_at(FRAME_HEADER, &mut out);
        cons.advance(frame);
        cons.publish_lazy_tagged();
        return Ok(Some(out));
    }
}

/// Every message up to the end, and how it ended.
fn recv_all(mut cons: Consumer<LoomMem>) -> (Vec<Vec<u8>>, Result<(), RingError>) {
    let mut got = Vec::new();
    loop {
        match recv_frame(&mut cons) {
            Ok(Some(m)) => got.push(m),
            Ok(None) => return (got, Ok(())),
            Err(e) => return (got, Err(e)),
        }
    }
}

/// Three messages through a 64-byte ring: 13 bytes (a 32-byte frame at 0),
/// an empty one (16 bytes at 32) and 1 byte, whose 32-byte frame does not fit
/// in the 16 bytes left before the ring's end. So the producer waits for 56
/// bytes of space (the marker's 16, the frame and the next tag word), puts a
/// skip marker at 48 and the frame at 0. The consumer releases the first frame
/// on its own (lazily: 32 bytes is more than an eighth of the ring), so there
/// is a moment with 48 bytes free, enough for the frame and the next tag word
/// but not for the marker too. Both sides block. The consumer must skip the
/// marker and get all three messages whole, then a clean end; `head`, stored
/// lazily, is the final cursor once closed.
///
/// Checked to fail: with `send_frame` waiting only for `frame + NEXT_TAG`
/// bytes (not the marker too), loom finds the run where the producer goes on
/// with 48 bytes free and trips the free-space assertion of
/// `Producer::publish_frame` (clearing the next tag word would overwrite the
/// unread second frame); with the tag store in `LoomMem::set_tag` made
/// Relaxed (the `Mem` contract asks for Release), loom reports the consumer's
/// read of the frame bytes as a causality violation.
#[test]
fn skip_marker_at_ring_end() {
    model(|| {
        let msgs = vec![pattern(13), Vec::new(), vec![0xc3u8]];
        let sent = msgs.clone();
        let (got, end) = two_sides(64, recv_all, |prod, cur| {
            for m in &sent {
                send_frame(prod, m);
            }
            prod.close();
            assert_eq!(cur.head.0.load(Ordering::Relaxed), 96);
        });
        assert_eq!(got, msgs);
        assert_eq!(end, Ok(()));
    });
}

/// Bytes of an earlier lap can never read as a tag: the first message's
/// payload holds, at ring position 16, exactly the tag the cursor 80 will have
/// a lap later (position 16 again), followed by a valid empty-frame header.
/// After four frames (32 + 16 + 16 + 16 bytes; the fourth at 0 in the second
/// lap) the consumer reaches cursor 80 and must find no frame there, then the
/// clean end at 80.
///
/// Checked to fail: without the clearing of the tag word at `head` in
/// `Producer::publish_frame`, the consumer reads the stale payload as a fifth,
/// empty message.
#[test]
fn stale_payload_is_never_a_tag() {
    model(|| {
        let mut forged = (!80u64).to_le_bytes().to_vec();
        forged.extend_from_slice(&encode(0));
        let msgs = vec![forged, Vec::new(), Vec::new(), Vec::new()];
        let sent = msgs.clone();
        let (got, end) = two_sides(64, recv_all, |prod, _| {
            for m in &sent {
                send_frame(prod, m);
            }
            prod.close();
        });
        assert_eq!(got, msgs);
        assert_eq!(end, Ok(()));
    });
}

/// A producer that aborts after two frames (the second written while the
/// consumer may sleep): the consumer gets both, then `Aborted`, never a clean
/// end.
///
/// Checked to fail: without the re-check of the tag after the consumer sees
/// the closed flag (`wait_tagged`), loom finds the run where the second tag is
/// stored between the consumer's last look and its load of the flag, and the
/// consumer reports `Aborted` after one message.
#[test]
fn abort_after_frames_delivers_them_first() {
    model(|| {
        let msgs = vec![pattern(3), pattern(1)];
        let sent = msgs.clone();
        let (got, end) = two_sides(64, recv_all, |prod, _| {
            for m in &sent {
                send_frame(prod, m);
            }
            prod.close_with(ABORTED);
        });
        assert_eq!(got, msgs);
        assert_eq!(end, Err(RingError::Aborted));
    });
}
