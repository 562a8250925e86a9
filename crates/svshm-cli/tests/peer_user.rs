//! Channels between two users from the command line: `--peer-user` on the
//! joining side. As root: a root reader and a uid-65534 writer (and the other
//! way round) meet, and the data arrives byte-exact. Skipped when not root.

mod common;

use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use svshm::Key;
use svshm_testkit::{NOBODY, command_as, nobody_unavailable};

/// Removes whatever is left under a key when dropped (the channel's segment
/// is marked for destruction once both sides connect; this covers failures).
struct KeyGuard(Key);

impl Drop for KeyGuard {
    fn drop(&mut self) {
        if let Ok(segs) = svshm::proc_segments() {
            for s in segs.iter().filter(|s| s.key == self.0) {
                let _ = svshm::Segment::from_id(s.id).remove();
            }
        }
    }
}

fn data() -> Vec<u8> {
    (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Runs `reader` and `writer` (reader first), feeding `payload` to the
/// writer; returns the reader's stdout and both exit statuses with stderr.
fn transfer(reader: &mut Command, writer: &mut Command, payload: &[u8]) -> (Vec<u8>, String) {
    let mut r = reader
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = writer
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = w.stdin.take().unwrap();
    let payload = payload.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&payload);
    });
    let mut got = Vec::new();
    r.stdout.take().unwrap().read_to_end(&mut got).unwrap();
    feeder.join().unwrap();
    let (ro, wo) = (r.wait_with_output().unwrap(), w.wait_with_output().unwrap());
    let report = format!(
        "reader {:?}: {}\nwriter {:?}: {}",
        ro.status.code(),
        String::from_utf8_lossy(&ro.stderr),
        wo.status.code(),
        String::from_utf8_lossy(&wo.stderr)
    );
    assert!(ro.status.success() && wo.status.success(), "{report}");
    (got, report)
}

/// One transfer of `payload` through channel `name`, between a root side and
/// a uid-65534 side: the writer (`creator`) makes the channel with `mode`, the
/// reader joins it with `--peer-user`.
fn meet(name: &str, root_reads: bool, mode: &str, payload: &[u8]) {
    let (creator_uid, peer) = if root_reads {
        (NOBODY, NOBODY.to_string())
    } else {
        (0, "root".to_string())
    };
    let _g = KeyGuard(svshm_channel::channel_key_for_uid(name, creator_uid));
    let read_args = [
        "read",
        name,
        "--peer-user",
        &peer,
        "-m",
        mode,
        "--wait",
        "60",
    ];
    let write_args = ["write", name, "-m", mode, "--wait", "60"];
    let mut root = Command::new(svshm_path());
    let mut nobody = command_as(&svshm_path(), NOBODY, NOBODY).unwrap();
    let (got, report) = if root_reads {
        root.args(read_args);
        nobody.args(write_args);
        transfer(&mut root, &mut nobody, payload)
    } else {
        nobody.args(read_args);
        root.args(write_args);
        transfer(&mut nobody, &mut root, payload)
    };
    assert!(
        got == payload,
        "root reads: {root_reads}: {} bytes arrived of {}; {report}",
        got.len(),
        payload.len()
    );
}

#[test]
fn root_and_nobody_meet_on_a_named_channel_both_ways() {
    if let Some(why) = nobody_unavailable(&svshm_path(), &["--version"]) {
        eprintln!("skipped: {why}");
        return;
    }
    let payload = data();
    // A uid-65534 writer creates its channel with -m 666; the root reader
    // joins it naming that user (by uid).
    meet(&unique_name("peer"), true, "666", &payload);
    // The other way: root writes into its own channel (mode 606), a
    // uid-65534 reader joins it naming root (by name).
    meet(&unique_name("peer"), false, "606", &payload);
}

#[test]
fn the_joiner_refuses_a_channel_its_user_did_not_create() {
    if !is_root() {
        eprintln!("skipped: needs root to name another user as the peer");
        return;
    }
    // Root's own channel under uid 65534's key: not created by that user.
    let name = unique_name("peer");
    let key = svshm_channel::channel_key_for_uid(&name, NOBODY);
    let _g = KeyGuard(key);
    let _seg = svshm::CreateOptions::new(4096 + 4096)
        .key(key)
        .create()
        .unwrap();
    let out = svshm()
        .args(["read", &name, "--peer-user", "65534", "--wait", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("65534"), "{err}");
}

#[test]
fn unknown_users_are_usage_errors_and_the_help_says_what_is_exposed() {
    let out = svshm()
        .args(["read", "x", "--peer-user", "no-such-user-svshm"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such user"));
    for cmd in ["read", "write"] {
        let help = stdout_of(&[cmd, "--help"]);
        for want in ["--peer-user", "forge", "-m 666"] {
            assert!(help.contains(want), "{cmd} --help lacks {want}:\n{help}");
        }
    }
}
