//! Looking changes nothing: `ls`, `ls -J`, `stat` and `who` attach no segment
//! (the kernel's last pid and attach/detach times stay as they were); only
//! `--peek` reads channel headers, and then the header shows.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};
use svshm::{CreateOptions, Segment};

/// The kernel's record of who touched a segment last, and when.
fn touched(
    id: i32,
) -> (
    i32,
    Option<std::time::SystemTime>,
    Option<std::time::SystemTime>,
    u64,
) {
    let s = Segment::from_id(id).stat().unwrap();
    (s.last_pid, s.attach_time, s.detach_time, s.attach_count)
}

/// `ls --peek` attaches every channel-sized segment, the other test's too:
/// the tests of this file take turns.
static TURNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURNS.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn listing_stat_and_who_attach_nothing() {
    let _turn = turn();
    // Channel-sized (a header page and a 64 KiB ring), never attached.
    let seg = CreateOptions::new(4096 + 65536)
        .key(unique_key("look"))
        .mode(0o600)
        .create()
        .unwrap();
    let g = Guard(seg.id());
    let id = g.0.to_string();
    let before = touched(g.0);
    let ls = stdout_of(&["ls"]);
    let json = ls_entry(&["ls", "-J"], g.0);
    let stat = stdout_of(&["stat", &id]);
    let stat_json = json_of(&["stat", &id, "-J"]);
    assert_eq!(touched(g.0), before, "ls or stat attached segment {id}");
    stdout_of(&["who", &id]);
    stdout_of(&["ls", "-o", "+KIND,CAPACITY,ATTACHERS"]);
    assert_eq!(touched(g.0), before, "looking attached segment {id}");

    // What the kernel says is still shown: a channel-sized segment, its ring.
    let row = ls
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(id.as_str()))
        .unwrap_or_else(|| panic!("segment {id} not in ls:\n{ls}"));
    assert!(row.split_whitespace().any(|c| c == "?"), "{row}");
    assert!(json["channel"].is_null(), "{json}");
    assert!(
        stat.contains("sized like one (64 KiB ring); --peek"),
        "{stat}"
    );
    assert_eq!(stat_json["channel_sized_ring"], 65536);
    assert!(stat_json["channel"].is_null());
}

#[test]
fn peek_reads_a_channel_header() {
    let _turn = turn();
    let name = unique_name("peek");
    let _g = NameGuard(name.clone());
    // A writer waiting for its reader keeps a READY channel under the name.
    let mut w = spawn(
        &["write", &name, "/dev/null", "--wait", "60"],
        Stdio::null(),
    );
    let wio = collect(&mut w);
    let key = svshm_channel::channel_key(&name);
    let t0 = Instant::now();
    let id = loop {
        if let Some(s) = svshm::info::public_info_by_key(key) {
            let peeked = stdout_of(&["stat", &s.id.to_string(), "--peek"]);
            if peeked.contains("waiting") {
                break s.id;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no channel {name}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let sid = id.to_string();
    let stat = stdout_of(&["stat", &sid, "--peek"]);
    assert!(stat.contains(&name) && stat.contains("Writer:"), "{stat}");
    let ls = stdout_of(&["ls", "--peek", "-o", "ID,CHANNEL,STATE,WRITER"]);
    assert!(
        ls.lines()
            .any(|l| l.contains(&sid) && l.contains(&name) && l.contains("waiting")),
        "{ls}"
    );
    assert_eq!(
        ls_entry(&["ls", "-J", "--peek"], id)["channel"],
        name.as_str()
    );
    assert_eq!(
        json_of(&["stat", &sid, "-J", "--peek"])["channel"]["name"],
        name.as_str()
    );
    // Let the writer finish: a reader takes its (empty) stream.
    let r = svshm()
        .args(["read", &name, "--wait", "60"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let done = finish(w, wio);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
}
