//! The system view against the kernel's own files: segments() vs
//! /proc/sysvipc/shm, limits() vs /proc/sys/kernel/shm*, usage() vs the /proc
//! sums (LTP shmctl03/04), and attachers() vs real attachments.
//!
//! Other processes (other test binaries, other projects) create and remove
//! segments while these tests run, so comparisons of the whole table use
//! snapshots taken before and after, and retry until the table held still.

mod common;

use common::{arg, child, report, spawn_waiting};
use std::collections::{BTreeMap, BTreeSet};
use svshm::{CreateOptions, Segment, SegmentInfo};

#[test]
fn child_entry() {
    common::dispatch(|role| match role {
        "attach-read-only-and-wait" => {
            let att = Segment::from_id(arg("SVSHM_TEST_ID"))
                .attach_read_only()
                .expect("child attach");
            report("addr", att.address());
            common::ready_then_wait();
            drop(att);
            0
        }
        other => panic!("system_view has no child role {other:?}"),
    });
}

/// The fields both sources give (rss and swap only come from /proc).
fn comparable(s: &SegmentInfo) -> SegmentInfo {
    let mut s = s.clone();
    s.rss = None;
    s.swap = None;
    s
}

fn by_id(list: &[SegmentInfo]) -> BTreeMap<i32, SegmentInfo> {
    list.iter().map(|s| (s.id, comparable(s))).collect()
}

#[test]
fn segments_agree_with_proc_sysvipc_shm() {
    // Our own segments, in several states, are stable: compare them field by field.
    let a = CreateOptions::new(1000)
        .key(common::key_for("segments_agree_a"))
        .mode(0o640)
        .create()
        .unwrap();
    let _ra = a.remove_on_drop();
    let b = Segment::create_private(3 * 4096).unwrap();
    let _rb = b.remove_on_drop();
    let att = b.attach().unwrap();
    att.write_at(0, &[1; 4096]).unwrap();
    let c = Segment::create_private(4096).unwrap();
    let _rc = c.remove_on_drop();
    let _attc = c.attach_read_only().unwrap();
    c.remove().unwrap();

    let proc_before = svshm::proc_segments().unwrap();
    let listed = svshm::segments().unwrap();
    let proc_after = svshm::proc_segments().unwrap();

    let listed_map = by_id(&listed);
    let proc_map = by_id(&proc_after);
    for seg in [a, b, c] {
        let l = listed_map
            .get(&seg.id())
            .unwrap_or_else(|| panic!("segments() lists id {}", seg.id()));
        let p = proc_map
            .get(&seg.id())
            .unwrap_or_else(|| panic!("/proc lists id {}", seg.id()));
        assert_eq!(l, p, "same record from SHM_STAT_ANY and /proc");
        assert_eq!(l, &comparable(&seg.stat().unwrap()), "and from IPC_STAT");
    }
    assert!(listed_map[&c.id()].is_marked_for_destruction());
    assert_eq!(listed_map[&b.id()].attach_count, 1);

    // The whole table: whatever existed throughout is listed, and nothing is
    // listed that /proc never showed.
    let before: BTreeSet<i32> = proc_before.iter().map(|s| s.id).collect();
    let after: BTreeSet<i32> = proc_after.iter().map(|s| s.id).collect();
    let ids: BTreeSet<i32> = listed.iter().map(|s| s.id).collect();
    for id in before.intersection(&after) {
        assert!(
            ids.contains(id),
            "id {id} was in /proc before and after but not in segments()"
        );
    }
    for id in &ids {
        assert!(
            before.contains(id) || after.contains(id),
            "segments() invented id {id}"
        );
    }
}

fn read_proc_u64(name: &str) -> u64 {
    let path = format!("/proc/sys/kernel/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{path}: {text:?}: {e}"))
}

#[test]
fn limits_match_proc_sys_kernel() {
    // LTP shmctl03.
    let l = svshm::limits().unwrap();
    assert_eq!(l.shmmin, 1);
    assert_eq!(l.shmmax, read_proc_u64("shmmax"));
    assert_eq!(l.shmmni, read_proc_u64("shmmni"));
    assert_eq!(l.shmall, read_proc_u64("shmall"));
    assert_eq!(l.shmseg, l.shmmni, "Linux reports SHMSEG as shmmni");
    assert_eq!(l.page_size, svshm::page_size() as u64);
    assert_eq!(l.rmid_forced, Some(read_proc_u64("shm_rmid_forced") != 0));
    if let Ok(text) = std::fs::read_to_string("/proc/sys/kernel/shm_next_id") {
        assert_eq!(l.next_id, text.trim().parse().ok());
    }
}

/// What SHM_INFO should say, computed from one read of /proc/sysvipc/shm the way
/// LTP shmctl04 does.
fn proc_sums(list: &[SegmentInfo]) -> (u64, u64, u64, u64) {
    let page = svshm::page_size() as u64;
    let count = list.len() as u64;
    let total = list.iter().map(|s| s.size.div_ceil(page)).sum();
    let rss = list.iter().map(|s| s.rss.unwrap_or(0) / page).sum();
    let swap = list.iter().map(|s| s.swap.unwrap_or(0) / page).sum();
    (count, total, rss, swap)
}

#[test]
fn usage_matches_the_proc_sums() {
    // LTP shmctl04. Make sure there is something resident to count.
    let seg = Segment::create_private(5 * 4096).unwrap();
    let _rm = seg.remove_on_drop();
    let att = seg.attach().unwrap();
    att.write_at(0, &[7; 2 * 4096]).unwrap();

    let mut tries = Vec::new();
    for _ in 0..1000 {
        let before = svshm::proc_segments().unwrap();
        let usage = svshm::usage().unwrap();
        let after = svshm::proc_segments().unwrap();
        if before != after {
            // The table changed under us (someone else's test); try again.
            std::thread::sleep(std::time::Duration::from_millis(5));
            continue;
        }
        let (count, total, rss, swap) = proc_sums(&after);
        let got = (
            usage.segments,
            usage.pages_allocated,
            usage.pages_resident,
            usage.pages_swapped,
        );
        if got == (count, total, rss, swap) {
            assert!(
                usage.pages_resident >= 2,
                "our two written pages are resident: {usage:?}"
            );
            assert_eq!((usage.swap_attempts, usage.swap_successes), (0, 0));
            // The highest index refers to a segment (SHM_STAT_ANY), unless
            // another test's segment went away meanwhile: then look again.
            let top = svshm::info::stat_index(usage.max_index, true).unwrap();
            if top.is_none() && svshm::proc_segments().unwrap() != after {
                continue;
            }
            assert!(
                top.is_some(),
                "max_index {} names a segment",
                usage.max_index
            );
            return;
        }
        tries.push((got, (count, total, rss, swap)));
    }
    panic!("SHM_INFO never matched a stable /proc/sysvipc/shm: (usage, proc) per try: {tries:?}");
}

#[test]
fn segment_count_matches_used_ids() {
    // LTP shmctl04: the valid indexes 0..=max (SHM_STAT_ANY) number used_ids.
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    for _ in 0..1000 {
        let u1 = svshm::usage().unwrap();
        let listed = svshm::segments().unwrap();
        let u2 = svshm::usage().unwrap();
        if u1 == u2 && listed.len() as u64 == u1.segments {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("segments().len() never matched SHM_INFO used_ids while the table held still");
}

/// `attachers()` limited to the given pids. While another test thread of this
/// process spawns a child, that child (between vfork and exec) shares our
/// address space, so its /proc/PID/maps briefly lists our attachments too.
fn attachers_among(seg: Segment, pids: &[i32]) -> Vec<svshm::Attacher> {
    let all = svshm::attachers(seg.id()).unwrap();
    all.into_iter().filter(|a| pids.contains(&a.pid)).collect()
}

#[test]
fn attachers_finds_this_process_and_a_child_at_their_addresses() {
    let size = 2 * 4096 + 100;
    let seg = Segment::create_private(size).unwrap();
    let _rm = seg.remove_on_drop();
    let ours = seg.attach().unwrap();
    let mut c = child("attach-read-only-and-wait");
    c.env("SVSHM_TEST_ID", seg.id().to_string());
    let other = spawn_waiting(c);
    let child_addr: usize = other.get("addr").parse().unwrap();

    let me = std::process::id() as i32;
    let found = attachers_among(seg, &[me, other.pid()]);
    let pieces: u64 = found.iter().map(|a| a.pieces).sum();
    assert_eq!(
        pieces,
        seg.stat().unwrap().attach_count,
        "complete as root or same uid: {found:?}"
    );
    assert_eq!(found.len(), 2);
    let me = std::process::id() as i32;
    let mine = found
        .iter()
        .find(|a| a.pid == me)
        .unwrap_or_else(|| panic!("this process in {found:?}"));
    assert_eq!(mine.start, ours.address());
    assert_eq!(
        mine.end - mine.start,
        3 * 4096,
        "the mapping covers whole pages"
    );
    assert!(!mine.read_only);
    let theirs = found
        .iter()
        .find(|a| a.pid == other.pid())
        .unwrap_or_else(|| panic!("the child in {found:?}"));
    assert_eq!(theirs.start, child_addr);
    assert!(theirs.read_only, "the child attached SHM_RDONLY");
    assert!(!theirs.command.is_empty());

    let child_pid = other.pid();
    assert!(other.finish().success());
    let found = attachers_among(seg, &[me, child_pid]);
    assert_eq!(found.len(), 1, "only this process is left: {found:?}");
}

#[test]
fn attachers_of_an_unattached_segment_is_empty() {
    let seg = Segment::create_private(4096).unwrap();
    let _rm = seg.remove_on_drop();
    assert!(svshm::attachers(seg.id()).unwrap().is_empty());
}

#[test]
fn attachment_split_by_mprotect_is_one_attacher_and_detaches_fully() {
    // LTP shmat04: the kernel counts each piece of a split attachment in
    // shm_nattch, and shmdt must remove every piece (nattch back to 0).
    let page = svshm::page_size();
    let seg = Segment::create_private(3 * page).unwrap();
    let _rm = seg.remove_on_drop();
    let att = seg.attach().unwrap();
    let middle = att.range_ptr(page, page).unwrap();
    // SAFETY: [page, 2 * page) lies inside this attachment (checked by
    // range_ptr), no reference into it exists, and nothing writes it after it
    // becomes read-only.
    let rc = unsafe { libc::mprotect(middle.cast(), page, libc::PROT_READ) };
    assert_eq!(rc, 0, "mprotect: {}", std::io::Error::last_os_error());
    assert_eq!(
        seg.stat().unwrap().attach_count,
        3,
        "one attachment, three VMAs"
    );

    let found = attachers_among(seg, &[std::process::id() as i32]);
    assert_eq!(found.len(), 1, "the pieces are merged: {found:?}");
    let a = &found[0];
    assert_eq!(
        (a.start, a.end, a.pieces),
        (att.address(), att.address() + 3 * page, 3)
    );
    assert!(!a.read_only, "the outer pieces are writable");

    att.detach().unwrap();
    assert_eq!(
        seg.stat().unwrap().attach_count,
        0,
        "shmdt unmapped every piece"
    );
    assert!(svshm::attachers(seg.id()).unwrap().is_empty());
}
