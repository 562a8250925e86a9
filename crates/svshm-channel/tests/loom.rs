//! loom models of the ring protocol: reserve/commit (put/publish) and
//! peek/consume (take/publish), wrap-around, close, and the waiting flag and
//! wake. Run with `RUSTFLAGS="--cfg svshm_loom" cargo test -p svshm-channel --release --test loom`.
//!
//! The data area is a row of loom-tracked cells, so a read of bytes the
//! producer has not yet published (a missing Release/Acquire) is reported as a
//! data race; the futex is modelled with a loom condition variable, so a lost
//! wake-up shows up as a deadlock.
#![cfg(svshm_loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use svshm_channel::ring::{Consumer, Cursors, Liveness, Mem, Producer, Wait, WaitPolicy};

struct LoomMem(Arc<Vec<UnsafeCell<u8>>>);

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
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

fn ring(cap: usize) -> (Arc<Cursors>, Producer<LoomMem>, Consumer<LoomMem>) {
    let cur = Arc::new(Cursors::default());
    let cells: Arc<Vec<UnsafeCell<u8>>> = Arc::new((0..cap).map(|_| UnsafeCell::new(0)).collect());
    let p: *const Cursors = &*cur;
    // SAFETY: `cur` is kept alive by the returned Arc until both sides are done.
    let prod = unsafe { Producer::new(p, LoomMem(cells.clone()), cap as u64) }.unwrap();
    // SAFETY: as above.
    let cons = unsafe { Consumer::new(p, LoomMem(cells), cap as u64) }.unwrap();
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
