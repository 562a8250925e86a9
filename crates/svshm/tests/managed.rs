//! Managed segments: allocator properties (proptest on HeapRegion), corrupt and
//! hostile headers, named objects, and real cross-process use of a segment,
//! including a lock holder killed with SIGKILL (the EOWNERDEAD path).

mod common;

use common::{arg, child, report, spawn_waiting};
use proptest::prelude::*;
use std::sync::Arc;
use svshm::managed::{MAX_ALIGN, NAME_MAX, type_tag};
use svshm::{Attachment, CreateOptions, ErrorKind, HeapRegion, Managed, Offset, Region, Segment};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Header field offsets (the layout documented in `managed.rs`).
const H_VERSION: usize = 8;
const H_HEADER_SIZE: usize = 16;
const H_TOTAL: usize = 24;
const H_DIR_OFFSET: usize = 32;
const H_DIR_CAPACITY: usize = 40;
const H_HEAP_START: usize = 48;
const H_HEAP_END: usize = 56;
const H_FREE_HEAD: usize = 128;
const H_FREE_BYTES: usize = 136;
const HEADER: usize = 192;

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Pair {
    a: u64,
    b: u32,
    c: u32,
}

/// Roles the children of this file play. Each opens the managed segment whose
/// id is in `SVSHM_TEST_ID`.
#[test]
fn child_entry() {
    common::dispatch(|role| {
        if role == "leak-guard" {
            return leak_guard_then_lock_again();
        }
        let seg = Segment::from_id(arg("SVSHM_TEST_ID"));
        let m = Managed::open_segment(seg).expect("child: open the managed segment");
        match role {
            // Find the pair, change it, and leave an object of our own.
            "modify" => {
                let pair = m.find::<Pair>("pair").expect("child: find pair");
                let mut v = pair.read();
                report("seen", v.a);
                v.a += 1;
                v.c = 0xc41d;
                pair.write(&v);
                m.construct("from-child", &(std::process::id() as u64))
                    .expect("child: construct");
                0
            }
            // Increment the counter under the lock, N times.
            "increment" => {
                let n: u64 = arg("SVSHM_TEST_N");
                for _ in 0..n {
                    let g = m.lock().expect("child: lock");
                    let c = g.find::<u64>("counter").expect("child: find counter");
                    c.write(&(c.read() + 1));
                }
                0
            }
            // Take the lock, optionally damage the allocator, and wait to be
            // killed while holding it.
            "hold-lock" => {
                let g = m.lock().expect("child: lock");
                let att: &Attachment = m.region();
                match std::env::var("SVSHM_TEST_DAMAGE").as_deref() {
                    Ok("links") => {
                        // A free block in the middle, then garbage in its link:
                        // repairable (the free list is rebuilt from the blocks).
                        let _a = g.allocate(100, 8).unwrap();
                        let b = g.allocate(100, 8).unwrap();
                        let _c = g.allocate(100, 8).unwrap();
                        g.deallocate(b).unwrap();
                        att.write_at(b.raw() as usize, &0xdead_beef_u64.to_ne_bytes())
                            .unwrap();
                    }
                    Ok("tiling") => {
                        // Garbage in a block's size: the blocks no longer tile
                        // the heap, which cannot be repaired.
                        let a = g.allocate(100, 8).unwrap();
                        att.write_at(a.raw() as usize - 16, &7u64.to_ne_bytes())
                            .unwrap();
                    }
                    _ => {}
                }
                common::no_core_dumps();
                common::ready_then_wait();
                std::mem::forget(g);
                0
            }
            other => panic!("managed has no child role {other:?}"),
        }
    });
}

/// Child role: leaks a lock guard (safe code may `mem::forget` anything), drops
/// the managed segment and its region, then locks another managed segment on
/// the same thread. glibc keeps a held robust mutex on the thread's robust
/// list, so if the region was unmapped, the next robust lock writes into it.
fn leak_guard_then_lock_again() -> i32 {
    common::no_core_dumps();
    // Big enough that the allocator maps it on its own and unmaps it on free.
    let m = Managed::format(HeapRegion::new(4 << 20)).unwrap();
    std::mem::forget(m.lock().unwrap());
    drop(m);
    let other = Managed::format(HeapRegion::new(64 * 1024)).unwrap();
    let g = other.lock().unwrap();
    g.allocate(8, 8).unwrap();
    drop(g);
    report("survived", 1);
    0
}

// ---------------------------------------------------------------------------
// Helpers.

fn poke_u64(r: &impl Region, off: usize, v: u64) {
    assert!(off + 8 <= r.len() && off % 8 == 0);
    // SAFETY: in bounds and aligned (asserted; the base is 64-aligned); the
    // region is private to this test and no Rust reference points into it.
    unsafe { r.base().add(off).cast::<u64>().write_volatile(v) };
}

fn peek_u64(r: &impl Region, off: usize) -> u64 {
    assert!(off + 8 <= r.len() && off % 8 == 0);
    // SAFETY: as in poke_u64.
    unsafe { r.base().add(off).cast::<u64>().read_volatile() }
}

fn copy_region(from: &impl Region, len: usize) -> HeapRegion {
    let to = HeapRegion::new(len);
    let n = len.min(from.len());
    // SAFETY: both ranges are n bytes inside their regions, which are distinct
    // allocations.
    unsafe { core::ptr::copy_nonoverlapping(from.base(), to.base(), n) };
    to
}

fn is_corrupt(e: &svshm::Error) -> bool {
    e.kind() == ErrorKind::Corrupt && e.message().contains("corrupt")
}

// ---------------------------------------------------------------------------
// Allocator.

#[derive(Debug, Clone)]
enum Step {
    Alloc { size: usize, align_log: u32 },
    Free { pick: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0usize..700, 0u32..7).prop_map(|(size, align_log)| Step::Alloc { size, align_log }),
        2 => any::<usize>().prop_map(|pick| Step::Free { pick }),
    ]
}

fn fill(r: &impl Region, off: u64, len: usize, byte: u8) {
    let p = Offset::<u8>::new(off).resolve(r).unwrap();
    // SAFETY: the block [off, off+len) was just allocated to this test and
    // lies in the region (checked by the test before calling).
    unsafe { p.write_bytes(byte, len) };
}

fn intact(r: &impl Region, off: u64, len: usize, byte: u8) -> bool {
    (0..len).all(|i| {
        // SAFETY: as in fill: the block is ours and in bounds.
        unsafe { r.base().add(off as usize + i).read_volatile() == byte }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random alloc/free sequences: blocks are aligned, in the heap, never
    /// overlap each other (their contents survive), the segment checks
    /// consistent after every step, and freeing everything coalesces back to
    /// one free block of the whole heap.
    #[test]
    fn alloc_free_sequences(steps in proptest::collection::vec(step(), 1..120)) {
        let m = Managed::format_with(HeapRegion::new(16 * 1024), 2).unwrap();
        let start = m.stats().unwrap();
        prop_assert_eq!(start.free_bytes, start.heap_size());
        let mut live: Vec<(u64, usize, u8)> = Vec::new();
        let mut stamp = 0u8;
        for s in steps {
            match s {
                Step::Alloc { size, align_log } => {
                    let align = 1usize << align_log;
                    match m.allocate(size, align) {
                        Ok(off) => {
                            let o = off.raw();
                            prop_assert_eq!(o % align as u64, 0);
                            prop_assert!(o >= start.heap_start && o + size as u64 <= start.heap_end);
                            for &(p, n, _) in &live {
                                let disjoint = o + size.max(1) as u64 <= p || p + n.max(1) as u64 <= o;
                                prop_assert!(disjoint, "{o}+{size} overlaps {p}+{n}");
                            }
                            stamp = stamp.wrapping_add(1);
                            fill(m.region(), o, size, stamp);
                            live.push((o, size, stamp));
                        }
                        Err(e) => {
                            prop_assert_eq!(e.kind(), ErrorKind::OutOfMemory);
                            let want = format!("asked for {size} bytes");
                            prop_assert!(e.message().contains(&want));
                        }
                    }
                }
                Step::Free { pick } if !live.is_empty() => {
                    let (o, n, b) = live.swap_remove(pick % live.len());
                    prop_assert!(intact(m.region(), o, n, b), "block at {o} was overwritten");
                    m.deallocate(Offset::new(o)).unwrap();
                    let again = m.deallocate(Offset::new(o)).unwrap_err();
                    prop_assert!(again.kind() == ErrorKind::InvalidArgument);
                }
                Step::Free { .. } => {}
            }
            let st = m.check().unwrap();
            prop_assert_eq!(st.used_blocks, live.len() as u64);
        }
        for (o, n, b) in live.drain(..) {
            prop_assert!(intact(m.region(), o, n, b));
            m.deallocate(Offset::new(o)).unwrap();
        }
        let end = m.check().unwrap();
        prop_assert_eq!(end.free_blocks, 1);
        prop_assert_eq!(end.free_bytes, end.heap_size());
        prop_assert_eq!(end.largest_free, end.heap_size());
    }

    /// Random bytes are never taken for a managed segment, and never panic.
    #[test]
    fn random_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048), magic in any::<bool>()) {
        let r = HeapRegion::new(bytes.len().max(1));
        let mut bytes = bytes;
        if magic && bytes.len() >= 8 {
            bytes[..8].copy_from_slice(&svshm::managed::MAGIC);
        }
        // SAFETY: the region has bytes.len() bytes (or 1 when empty).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), r.base(), bytes.len()) };
        prop_assert!(Managed::open(r).is_err());
    }

    /// One header field (outside the mutex) replaced by a random value: open
    /// succeeds only if the value is the one that was there, else it errors.
    #[test]
    fn hostile_header_fields(field in 0usize..15, value in prop_oneof![any::<u64>(), 0u64..100_000]) {
        let r = Arc::new(HeapRegion::new(32 * 1024));
        Managed::format(r.clone()).unwrap().construct("x", &1u64).unwrap();
        let off = [0, 8, 16, 24, 32, 40, 48, 56, 128, 136, 144, 152, 160, 176, 184][field];
        let before = peek_u64(&*r, off);
        poke_u64(&*r, off, value);
        let changed = before != value;
        let structural = !(144..192).contains(&off) && changed;
        match Managed::open(r.clone()) {
            Ok(m) => {
                prop_assert!(!structural, "accepted a changed field at {off}");
                prop_assert_eq!(m.find::<u64>("x").unwrap().read(), 1);
            }
            Err(e) => prop_assert!(structural || off == 8, "refused an intact header: {e}"),
        }
    }

    /// A random u64 written anywhere in the directory and heap: open and every
    /// later operation return errors or work, never panic or escape.
    #[test]
    fn hostile_heap_and_directory(slot in 0usize..4000, value in prop_oneof![any::<u64>(), 0u64..20_000]) {
        let r = Arc::new(HeapRegion::new(32 * 1024));
        {
            let m = Managed::format(r.clone()).unwrap();
            m.construct("a", &Pair { a: 1, b: 2, c: 3 }).unwrap();
            let x = m.allocate(300, 32).unwrap();
            m.construct("b", &5u32).unwrap();
            m.allocate(40, 8).unwrap();
            m.deallocate(x).unwrap();
        }
        let off = HEADER + (slot * 8) % (r.len() - HEADER);
        poke_u64(&*r, off, value);
        if let Ok(m) = Managed::open(r.clone()) {
            let _ = m.find::<Pair>("a").map(|p| p.read());
            let _ = m.destroy("b");
            let _ = m.allocate(100, 16).and_then(|o| m.deallocate(o));
            let _ = m.construct("c", &7u64);
            let _ = m.names();
            let _ = m.check();
        }
    }
}

#[test]
fn hostile_offsets_are_named() {
    let r = Arc::new(HeapRegion::new(16 * 1024));
    Managed::format(r.clone()).unwrap();
    let saved = copy_region(&*r, r.len());
    let restore = || {
        // SAFETY: both regions have r.len() bytes and are distinct.
        unsafe { core::ptr::copy_nonoverlapping(saved.base(), r.base(), r.len()) }
    };
    let cases: [(usize, u64); 9] = [
        (H_TOTAL, 1 << 40),         // bigger than the region
        (H_DIR_OFFSET, u64::MAX),   // overflow
        (H_DIR_OFFSET, 200),        // misplaced
        (H_DIR_CAPACITY, u64::MAX), // absurd directory
        (H_HEAP_START, 16 * 1024),  // heap outside
        (H_HEAP_END, 1 << 20),      // heap beyond the region
        (H_HEADER_SIZE, 64),        // wrong header size
        (H_FREE_HEAD, 8),           // free list into the header
        (H_FREE_BYTES, u64::MAX),   // count beyond the heap
    ];
    for (off, v) in cases {
        restore();
        poke_u64(&*r, off, v);
        let e = Managed::open(r.clone()).unwrap_err();
        assert!(is_corrupt(&e), "field {off} = {v:#x}: {e}");
    }
    // Misaligned free-list head, inside the heap.
    restore();
    let heap_start = peek_u64(&*r, H_HEAP_START);
    poke_u64(&*r, H_FREE_HEAD, heap_start + 8);
    assert!(is_corrupt(&Managed::open(r.clone()).unwrap_err()));
    // A newer layout version is Unsupported, with a clear message.
    restore();
    poke_u64(&*r, H_VERSION, u64::from(7u32) | u64::from(1u32) << 32);
    let e = Managed::open(r.clone()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    // Poisoned and initializing states are refused.
    restore();
    poke_u64(&*r, H_VERSION, 1 | (2u64 << 32));
    assert!(
        Managed::open(r.clone())
            .unwrap_err()
            .message()
            .contains("poisoned")
    );
    restore();
    poke_u64(&*r, H_VERSION, 1);
    assert!(
        Managed::open(r.clone())
            .unwrap_err()
            .message()
            .contains("not ready")
    );
    restore();
    assert!(Managed::open(r.clone()).is_ok());
}

#[test]
fn truncated_segment_is_refused() {
    let r = HeapRegion::new(64 * 1024);
    let m = Managed::format(r).unwrap();
    m.construct("x", &3u64).unwrap();
    for len in [0, 8, 100, HEADER, 4096, 64 * 1024 - 16] {
        let short = copy_region(m.region(), len);
        let e = Managed::open(short).unwrap_err();
        assert!(is_corrupt(&e), "{len} bytes: {e}");
    }
    // A longer region is fine: the header records the size it was formatted at.
    let long = copy_region(m.region(), 80 * 1024);
    assert_eq!(
        Managed::open(long)
            .unwrap()
            .find::<u64>("x")
            .unwrap()
            .read(),
        3
    );
}

#[test]
fn foreign_and_double_frees_are_errors() {
    let m = Managed::format(HeapRegion::new(16 * 1024)).unwrap();
    let st = m.stats().unwrap();
    let a = m.allocate(64, 16).unwrap();
    let b = m.allocate(64, 16).unwrap();
    let kind = |o: u64| m.deallocate(Offset::new(o)).unwrap_err().kind();
    assert_eq!(kind(0), ErrorKind::OutOfBounds);
    assert_eq!(kind(8), ErrorKind::OutOfBounds); // the header
    assert_eq!(kind(st.heap_end + 16), ErrorKind::OutOfBounds);
    assert_eq!(kind(a.raw() + 8), ErrorKind::Misaligned);
    assert_eq!(kind(a.raw() + 16), ErrorKind::InvalidArgument); // interior
    assert_eq!(kind(b.raw() + 64 + 16), ErrorKind::InvalidArgument); // in free space
    m.deallocate(a).unwrap();
    let e = m.deallocate(a).unwrap_err();
    assert!(e.message().contains("double free"), "{e}");
    m.check().unwrap();
    m.deallocate(b).unwrap();
    let end = m.check().unwrap();
    assert_eq!((end.free_blocks, end.free_bytes), (1, end.heap_size()));
}

#[test]
fn deallocating_a_named_object_is_refused() {
    let m = Managed::format(HeapRegion::new(16 * 1024)).unwrap();
    let x = m.construct("x", &7u64).unwrap();
    let e = m.deallocate(Offset::new(x.offset().raw())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.message().contains("\"x\""), "{e}");
    // Nothing changed: the segment is consistent and the object is intact.
    let st = m.check().unwrap();
    assert_eq!((st.names, st.used_blocks), (1, 1));
    assert_eq!(m.find::<u64>("x").unwrap().read(), 7);
    m.destroy("x").unwrap();
    let st = m.check().unwrap();
    assert_eq!((st.free_blocks, st.free_bytes), (1, st.heap_size()));
}

#[test]
fn leaked_guard_does_not_leave_a_dangling_lock() {
    let out = common::run(child("leak-guard"));
    out.assert_success();
    assert_eq!(out.get("survived"), "1");
}

#[test]
fn into_region_with_a_leaked_guard_panics_and_leaks() {
    std::thread::spawn(|| {
        let m = Managed::format(HeapRegion::new(8192)).unwrap();
        std::mem::forget(m.lock().unwrap());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.into_region()));
        assert!(r.is_err());
    })
    .join()
    .unwrap();
    // Without a leaked guard the region comes back.
    let m = Managed::format(HeapRegion::new(8192)).unwrap();
    drop(m.lock().unwrap());
    assert_eq!(m.into_region().len(), 8192);
}

#[test]
fn out_of_space_for_a_huge_request_names_the_largest_block() {
    let m = Managed::format_with(HeapRegion::new(4096), 1).unwrap();
    let st = m.stats().unwrap();
    let e = m.allocate(1 << 20, 8).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfMemory);
    let want = format!("largest free block holds {} bytes", st.largest_free - 16);
    assert!(e.message().contains(&want), "{e}");
    assert!(e.message().contains("aligned to 8"), "{e}");
}

#[test]
fn two_names_on_one_block_are_corrupt() {
    let r = Arc::new(HeapRegion::new(16 * 1024));
    let m = Managed::format(r.clone()).unwrap();
    m.construct("a", &1u64).unwrap();
    m.construct("b", &2u64).unwrap();
    let dir = peek_u64(&*r, H_DIR_OFFSET) as usize;
    // Entry 1 ("b") gets entry 0's offset (entry + 8; entries are 104 bytes).
    poke_u64(&*r, dir + 104 + 8, peek_u64(&*r, dir + 8));
    assert!(is_corrupt(&m.check().unwrap_err()));
}

#[test]
fn stale_handle_after_destroy_is_an_error_not_ub() {
    let m = Managed::format(HeapRegion::new(16 * 1024)).unwrap();
    m.construct("keep", &1u64).unwrap();
    let h = m.construct("x", &[5u64; 4]).unwrap();
    m.construct("after", &2u64).unwrap();
    m.destroy("x").unwrap();
    // The handle now points at a free block: writing clobbers its free link.
    h.write(&[u64::MAX; 4]);
    assert!(is_corrupt(&m.check().unwrap_err()));
    // Later operations work or fail, but stay in bounds and never panic.
    let _ = m.allocate(8, 8);
    let _ = m.allocate(2000, 8);
    assert!(is_corrupt(&m.check().unwrap_err()));
    assert_eq!(m.find::<u64>("keep").unwrap().read(), 1);
}

#[test]
fn out_of_space_says_how_much() {
    let m = Managed::format_with(HeapRegion::new(4096), 1).unwrap();
    let e = m.allocate(5000, 8).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfMemory);
    let msg = e.to_string();
    assert!(
        msg.contains("asked for 5000 bytes") && msg.contains("free"),
        "{msg}"
    );
    assert!(m.allocate(usize::MAX, 8).is_err());
    assert!(m.allocate(8, 3).is_err()); // not a power of two
    assert!(m.allocate(8, MAX_ALIGN * 2).is_err());
    // Fill it, then it is full; free one and it fits again.
    let mut v = Vec::new();
    while let Ok(o) = m.allocate(200, 8) {
        v.push(o);
    }
    assert!(!v.is_empty());
    m.deallocate(v.pop().unwrap()).unwrap();
    m.allocate(200, 8).unwrap();
}

#[test]
fn every_alignment_is_honoured() {
    let m = Managed::format(HeapRegion::new(64 * 1024)).unwrap();
    for i in 0..200usize {
        let align = 1 << (i % 7);
        let o = m.allocate(i % 37, align).unwrap();
        assert_eq!(o.raw() % align as u64, 0);
        assert_eq!(m.region().base() as usize % align, 0);
    }
    m.check().unwrap();
}

#[test]
fn nested_lock_is_an_error_not_a_deadlock() {
    let m = Managed::format(HeapRegion::new(8192)).unwrap();
    let g = m.lock().unwrap();
    let e = m.allocate(8, 8).unwrap_err();
    assert!(e.message().contains("already held"), "{e}");
    g.allocate(8, 8).unwrap();
    drop(g);
    m.allocate(8, 8).unwrap();
}

#[test]
fn dead_thread_holding_the_lock_is_recovered() {
    let m = Managed::format(HeapRegion::new(8192)).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let g = m.lock().unwrap();
            g.allocate(100, 8).unwrap();
            std::mem::forget(g); // the thread ends holding the lock
        });
    });
    let st = m.check().unwrap();
    assert_eq!((st.recoveries, st.used_blocks), (1, 1));
    m.allocate(8, 8).unwrap();
}

// ---------------------------------------------------------------------------
// Named objects.

#[test]
fn named_objects_round_trip() {
    let m = Managed::format(HeapRegion::new(32 * 1024)).unwrap();
    let p = Pair { a: 1, b: 2, c: 3 };
    let h = m.construct("pair", &p).unwrap();
    assert_eq!(h.read(), p);
    h.write(&Pair { a: 10, ..p });
    assert_eq!(m.find::<Pair>("pair").unwrap().read().a, 10);
    assert_eq!(m.find::<Pair>("pair").unwrap().offset(), h.offset());
    m.construct("n", &[7u16; 5]).unwrap();
    assert_eq!(m.find::<[u16; 5]>("n").unwrap().read(), [7; 5]);
    assert_eq!(m.names().unwrap(), ["pair", "n"]);
    let e = m.entries().unwrap();
    assert_eq!((e[0].size, e[0].align, e[0].tag), (16, 8, 0));

    // Duplicates, unknown names, wrong types, bad names.
    assert_eq!(
        m.construct("pair", &1u8).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        m.find::<Pair>("nope").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        m.find::<u64>("pair").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        m.find::<[u32; 4]>("pair").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    ); // align
    assert!(m.construct("", &1u8).is_err());
    let long = "x".repeat(NAME_MAX + 1);
    assert!(m.construct(&long, &1u8).is_err());
    m.construct(&"y".repeat(NAME_MAX), &1u8).unwrap();

    // Tags tell same-sized types apart.
    let t = type_tag("metres u64");
    m.construct_tagged("len", t, &5u64).unwrap();
    assert_eq!(m.find_tagged::<u64>("len", t).unwrap().read(), 5);
    assert!(m.find::<u64>("len").is_err());
    assert!(m.find_tagged::<u64>("len", type_tag("feet u64")).is_err());

    // Destroy frees the memory; the name can be reused.
    let before = m.stats().unwrap();
    m.destroy("pair").unwrap();
    assert_eq!(m.destroy("pair").unwrap_err().kind(), ErrorKind::NotFound);
    assert!(m.stats().unwrap().free_bytes > before.free_bytes);
    m.construct("pair", &p).unwrap();
    for n in m.names().unwrap() {
        m.destroy(&n).unwrap();
    }
    let st = m.check().unwrap();
    assert_eq!(
        (st.names, st.free_blocks, st.free_bytes),
        (0, 1, st.heap_size())
    );
}

#[test]
fn directory_full_is_no_space() {
    let m = Managed::format_with(HeapRegion::new(8192), 2).unwrap();
    m.construct("a", &1u8).unwrap();
    m.construct("b", &1u8).unwrap();
    assert_eq!(
        m.construct("c", &1u8).unwrap_err().kind(),
        ErrorKind::NoSpace
    );
    m.destroy("a").unwrap();
    m.construct("c", &1u8).unwrap();
}

#[test]
fn object_too_big_leaves_no_trace() {
    let m = Managed::format_with(HeapRegion::new(4096), 2).unwrap();
    let e = m.construct("big", &[0u64; 1024]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfMemory);
    assert!(m.names().unwrap().is_empty());
    m.check().unwrap();
}

#[test]
fn corrupt_directory_entry_is_reported() {
    let r = Arc::new(HeapRegion::new(16 * 1024));
    let m = Managed::format(r.clone()).unwrap();
    m.construct("x", &1u64).unwrap();
    let dir = peek_u64(&*r, H_DIR_OFFSET) as usize;
    // Point the entry's offset (entry + 8) into the header.
    poke_u64(&*r, dir + 8, 64);
    assert!(is_corrupt(&m.find::<u64>("x").unwrap_err()));
    assert!(is_corrupt(&Managed::open(r.clone()).unwrap_err()));
}

// ---------------------------------------------------------------------------
// Real segments, several processes.

fn managed_segment(test: &str, size: usize) -> (Managed<Attachment>, svshm::RemoveOnDrop) {
    let key = common::key_for(test);
    let seg = CreateOptions::new(size).key(key).create().unwrap();
    let guard = seg.remove_on_drop();
    let m = Managed::format(seg.attach().unwrap()).unwrap();
    (m, guard)
}

#[test]
fn create_and_open_segment() {
    let key = common::key_for("create_and_open_segment");
    let m = Managed::create_segment(&CreateOptions::new(64 * 1024).key(key)).unwrap();
    let _rm = m.region().segment().remove_on_drop();
    m.construct("v", &9u32).unwrap();
    let other = Managed::open_segment(Segment::open(key, 0).unwrap()).unwrap();
    assert_eq!(other.find::<u32>("v").unwrap().read(), 9);
    // A read-only attachment cannot take the lock.
    let ro = m.region().segment().attach_read_only().unwrap();
    assert_eq!(Managed::open(ro).unwrap_err().kind(), ErrorKind::ReadOnly);
    // A plain segment is not a managed one.
    let plain = Segment::create_private(8192).unwrap();
    let _rm2 = plain.remove_on_drop();
    assert!(Managed::open_segment(plain).is_err());
}

#[test]
fn child_finds_and_modifies_a_named_object() {
    let (m, guard) = managed_segment("child_modifies", 64 * 1024);
    let pair = m.construct("pair", &Pair { a: 41, b: 7, c: 0 }).unwrap();
    let mut cmd = child("modify");
    cmd.env("SVSHM_TEST_ID", guard.segment().id().to_string());
    let out = common::run(cmd);
    out.assert_success();
    assert_eq!(out.get("seen"), "41");
    assert_eq!(
        pair.read(),
        Pair {
            a: 42,
            b: 7,
            c: 0xc41d
        }
    );
    assert_eq!(m.names().unwrap(), ["pair", "from-child"]);
    let pid = m.find::<u64>("from-child").unwrap().read();
    assert!(pid > 0);
    m.check().unwrap();
}

#[test]
fn two_processes_increment_under_the_lock() {
    const N: u64 = 2000;
    let (m, guard) = managed_segment("two_increment", 64 * 1024);
    m.construct("counter", &0u64).unwrap();
    let cmd = {
        let mut c = child("increment");
        c.env("SVSHM_TEST_ID", guard.segment().id().to_string())
            .env("SVSHM_TEST_N", N.to_string());
        c
    };
    let kid = std::thread::spawn(move || common::run(cmd));
    for _ in 0..N {
        let g = m.lock().unwrap();
        let c = g.find::<u64>("counter").unwrap();
        c.write(&(c.read() + 1));
    }
    kid.join().unwrap().assert_success();
    assert_eq!(m.find::<u64>("counter").unwrap().read(), 2 * N);
}

fn kill_while_locked(test: &str, damage: &str) -> (Managed<Attachment>, svshm::RemoveOnDrop) {
    let (m, guard) = managed_segment(test, 64 * 1024);
    m.construct("keep", &5u64).unwrap();
    let mut cmd = child("hold-lock");
    cmd.env("SVSHM_TEST_ID", guard.segment().id().to_string())
        .env("SVSHM_TEST_DAMAGE", damage);
    let w = spawn_waiting(cmd);
    let status = w.kill();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    (m, guard)
}

#[test]
fn lock_holder_killed_is_recovered() {
    let (m, _guard) = kill_while_locked("killed_clean", "none");
    // EOWNERDEAD: checked, made consistent, usable.
    let st = m.check().unwrap();
    assert_eq!(st.recoveries, 1);
    assert_eq!(m.find::<u64>("keep").unwrap().read(), 5);
    m.allocate(100, 8).unwrap();
    assert_eq!(m.check().unwrap().recoveries, 1);
}

#[test]
fn lock_holder_killed_mid_update_is_repaired() {
    let (m, guard) = kill_while_locked("killed_links", "links");
    let st = m.check().unwrap();
    assert_eq!(st.recoveries, 1);
    // The damaged free list was rebuilt: the freed block is reusable and the
    // two live blocks of the child (leaked by it) plus ours remain.
    assert_eq!(st.used_blocks, 3);
    let a = m.allocate(100, 8).unwrap();
    m.deallocate(a).unwrap();
    let again = Managed::open_segment(guard.segment()).unwrap();
    assert_eq!(again.find::<u64>("keep").unwrap().read(), 5);
}

#[test]
fn lock_holder_killed_with_broken_heap_poisons() {
    let (m, guard) = kill_while_locked("killed_tiling", "tiling");
    let e = m.check().unwrap_err();
    assert!(e.message().contains("poisoned"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    let e = m.allocate(8, 8).unwrap_err();
    assert!(e.message().contains("poisoned"), "{e}");
    let e = Managed::open_segment(guard.segment()).unwrap_err();
    assert!(e.message().contains("poisoned"), "{e}");
}

#[test]
fn peek_reads_a_read_only_attachment_without_the_lock() {
    let key = common::key_for("peek_read_only");
    let m = Managed::create_segment(&CreateOptions::new(64 * 1024).key(key)).unwrap();
    let _rm = m.region().segment().remove_on_drop();
    m.construct("alpha", &1u32).unwrap();
    m.construct_tagged("beta", type_tag("Pair"), &Pair { a: 1, b: 2, c: 3 })
        .unwrap();
    let ro = m.region().segment().attach_read_only().unwrap();
    // Holding the lock does not block a peek, and a peek writes nothing.
    let held = m.lock().unwrap();
    let s = svshm::managed::peek(&ro).unwrap();
    drop(held);
    assert_eq!(s.state, "ready");
    assert_eq!(s.total_size, 64 * 1024);
    assert_eq!(s.recoveries, 0);
    let stats = m.stats().unwrap();
    assert_eq!(s.free_bytes, stats.free_bytes);
    assert_eq!(s.max_names, stats.max_names);
    let names: Vec<_> = s.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(s.entries[1].size, size_of::<Pair>() as u64);
    assert_eq!(s.entries[1].tag, type_tag("Pair"));
    assert_eq!(s.entries, m.entries().unwrap());
}

#[test]
fn peek_refuses_what_open_refuses() {
    // Not formatted: not a managed segment.
    let e = svshm::managed::peek(&HeapRegion::new(8192)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert!(e.message().contains("not a managed segment"), "{e}");
    // A hostile directory capacity and a truncated header.
    let m = Managed::format(HeapRegion::new(8192)).unwrap();
    let r = copy_region(m.region(), 8192);
    poke_u64(&r, H_DIR_CAPACITY, u64::MAX);
    assert!(is_corrupt(&svshm::managed::peek(&r).unwrap_err()));
    let short = copy_region(m.region(), 100);
    assert!(is_corrupt(&svshm::managed::peek(&short).unwrap_err()));
}
