//! Peers SIGKILLed at awkward moments of a channel's life. Whoever comes
//! next on the same name never hangs and never joins the dead; nothing the
//! dead process made is left behind that `svshm gc` could not remove.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Error, Options, StreamReader};

/// Options for the survivor: a bound, so a hang fails the test instead.
fn quick(ms: u64) -> Options {
    Options::new()
        .capacity(1 << 14)
        .timeout(Some(Duration::from_millis(ms)))
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    match role.as_str() {
        // Makes the segment a channel's creator makes (channel geometry,
        // the initialising mark 0100) under KEY, touches one page of it as
        // TOUCH says, prints its id and exits: a creator killed before its
        // header.
        "headerless" => {
            let key = svshm::Key::new(std::env::var("KEY").unwrap().parse().unwrap());
            let seg = svshm::CreateOptions::new(4096 + (1 << 14))
                .key(key)
                .mode(0o700)
                .create()
                .unwrap();
            let att = seg.attach().unwrap();
            match std::env::var("TOUCH").unwrap().as_str() {
                // What the first store of the header leaves when the creator
                // is killed while it faults the page in: the page, all zero.
                "header-page" => {
                    let mut b = [0u8; 8];
                    att.read_at(0, &mut b).unwrap();
                }
                "ring-page" => att.write_at(8192, b"data").unwrap(),
                _ => {}
            }
            println!("READY {}", seg.id());
        }
        r => panic!("unknown role {r}"),
    }
}

/// Runs the `headerless` child under `key`, touching `touch`; returns the
/// segment it left (removed when the guard drops).
fn headerless(key: svshm::Key, touch: &str) -> (i32, svshm::RemoveOnDrop) {
    let mut c = spawn(
        "child",
        "headerless",
        &[
            ("NAME", String::new()),
            ("KEY", key.raw().to_string()),
            ("TOUCH", touch.to_string()),
        ],
        Stdio::piped(),
    );
    let mut out = String::new();
    std::io::Read::read_to_string(c.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(c.wait().unwrap().success(), "{out}");
    let id: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("READY "))
        .unwrap()
        .parse()
        .unwrap();
    (id, svshm::Segment::from_id(id).remove_on_drop())
}

/// A named channel's creator killed while its first store into the header
/// faulted the page in: the page exists but reads zero, so the segment
/// counts as written although it holds nothing. The next connect on the
/// name reclaims it (it used to be refused as "not provably ours", which
/// blocked the name for good), and so would `svshm gc`.
#[test]
fn a_creator_killed_while_faulting_in_its_header_page_does_not_block_the_name() {
    let name = unique("crash-fault");
    let key = svshm_channel::channel_key(&name);
    let (dead, _guard) = headerless(key, "header-page");
    let info = svshm::info::public_info_by_id(dead).unwrap();
    assert_eq!(info.rss, Some(4096), "one page touched");
    let verdict = svshm_channel::judge(dead).unwrap();
    assert!(verdict.is_abandoned(), "{verdict:?}");
    let t0 = Instant::now();
    let p = StreamReader::open(&Endpoint::name(&name), &quick(1500)).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_ne!(p.segment_id(), dead);
    assert!(segment_gone(dead));
}

/// The same segment, except that the one page touched is not the header
/// but a page of the ring with data in it: it holds something, so it is
/// refused, and it and its data are kept.
#[test]
fn a_headerless_segment_with_data_beyond_its_header_page_is_kept() {
    let name = unique("crash-fault-data");
    let key = svshm_channel::channel_key(&name);
    let (id, _guard) = headerless(key, "ring-page");
    assert!(!svshm_channel::judge(id).unwrap().is_abandoned());
    match StreamReader::open(&Endpoint::name(&name), &quick(500)) {
        Err(Error::NotOurs { id: got, .. }) => assert_eq!(got, id),
        other => panic!("a segment with data: {:?}", other.map(|p| p.segment_id())),
    }
    let mut b = [0u8; 4];
    svshm::Segment::from_id(id)
        .attach_read_only()
        .unwrap()
        .read_at(8192, &mut b)
        .unwrap();
    assert_eq!(&b, b"data");
}
