//! Helpers shared by the CLI tests: run the built `svshm`, and remove every
//! segment a test creates, even when it fails. Unique names and keys and the
//! segment guard come from `svshm_testkit`.

#![allow(dead_code, unused_imports)]

pub mod kids;

use assert_cmd::Command;
use std::io::Read;
use std::process::{Child, Command as StdCommand, Stdio};
use std::thread::JoinHandle;
use svshm::{Attachment, CreateOptions, Segment};

pub use svshm_testkit::{
    SegmentGuard as Guard, is_root, segment_exists as exists, unique_key, unique_name,
};

/// `svshm` (the binary under test) as an assert_cmd command.
pub fn svshm() -> Command {
    Command::cargo_bin("svshm").expect("the svshm binary is built")
}

/// Path of the built binary, for std::process::Command.
pub fn svshm_path() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("svshm")
}

/// Parses the id `svshm create` printed and guards it.
pub fn guard_from_stdout(stdout: &[u8]) -> Guard {
    let text = String::from_utf8_lossy(stdout);
    let id: i32 = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("create printed {text:?}, not an id"));
    Guard(id)
}

/// Creates a segment through the CLI; returns its guard.
pub fn create(args: &[&str]) -> Guard {
    let out = svshm().arg("create").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "svshm create {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    guard_from_stdout(&out.stdout)
}

/// Creates a private segment with the library.
pub fn private(size: usize) -> Guard {
    Guard(Segment::create_private(size).unwrap().id())
}

/// The id of a private segment that existed and has been removed: what a
/// command given a stale id meets.
pub fn removed_id() -> i32 {
    let gone = private(4096);
    let id = gone.0;
    drop(gone);
    id
}

/// stdout of a successful run, as text.
pub fn stdout_of(args: &[&str]) -> String {
    let out = svshm().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "svshm {args:?} exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// stdout of a successful run, parsed as JSON.
pub fn json_of(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&stdout_of(args))
        .unwrap_or_else(|e| panic!("svshm {args:?}: not JSON: {e}"))
}

/// The object of segment `id` in the JSON array `svshm ls -J ...` prints.
pub fn ls_entry(args: &[&str], id: i32) -> serde_json::Value {
    let v = json_of(args);
    let found = v.as_array().and_then(|a| a.iter().find(|o| o["id"] == id));
    found
        .cloned()
        .unwrap_or_else(|| panic!("segment {id} not in svshm {args:?}: {v}"))
}

/// Removes, when dropped, whatever segment is left under the key of channel
/// name `name` (a channel whose processes were killed before connecting).
#[derive(Debug)]
pub struct NameGuard(pub String);

impl Drop for NameGuard {
    fn drop(&mut self) {
        let key = svshm_channel::channel_key(&self.0);
        if let Ok(segs) = svshm::proc_segments() {
            for s in segs.iter().filter(|s| s.key == key) {
                let _ = Segment::from_id(s.id).remove();
            }
        }
    }
}

/// Segments in every state the listings show: several sizes and modes, one
/// attached and locked, one attached, locked and removed (`dest,locked`, key
/// 0), one attached and detached again (attach and detach times set), an
/// IPC_PRIVATE one and (as root) one owned by a uid and gid without names.
/// This process is their creator. Removed (even on a failed assertion) on drop.
pub struct Fixture {
    pub ids: Vec<i32>,
    _atts: Vec<Attachment>,
    _guards: Vec<Guard>,
}

pub fn fixture(tag: &str) -> Fixture {
    let mut guards = Vec::new();
    let mut atts = Vec::new();
    let mut ids = Vec::new();
    for (size, mode) in [
        (4096usize, 0o600u32),
        (1536, 0o640),
        (10000, 0o644),
        (1 << 20, 0o600),
        (1984, 0o400),
        (3 << 20, 0o666),
    ] {
        let seg = CreateOptions::new(size)
            .key(unique_key(tag))
            .mode(mode)
            .create()
            .unwrap();
        ids.push(seg.id());
        guards.push(Guard(seg.id()));
    }
    // Attached and locked (locking needs root or a memlock allowance).
    let locked = Segment::from_id(ids[3]);
    atts.push(locked.attach().unwrap());
    let _ = locked.lock();
    // Attached, locked, then removed: `dest,locked`, key shown as 0.
    let dest = Segment::from_id(ids[0]);
    atts.push(dest.attach().unwrap());
    atts.push(dest.attach_read_only().unwrap());
    let _ = dest.lock();
    dest.remove().unwrap();
    // Attached and detached again: ATTACH and DETACH times set.
    drop(Segment::from_id(ids[2]).attach().unwrap());
    // A private one, and (as root) one owned by an unnamed uid and gid.
    let p = Segment::create_private(8192).unwrap();
    ids.push(p.id());
    guards.push(Guard(p.id()));
    if is_root() {
        p.set(Some(54321), Some(54320), None).unwrap();
    }
    Fixture {
        ids,
        _atts: atts,
        _guards: guards,
    }
}

/// A spawned `svshm` that is killed (by its own id) if the test ends early.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn spawn(args: &[&str], stdin: Stdio) -> Proc {
    Proc(
        StdCommand::new(svshm_path())
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Collects a child's stdout and stderr on threads (so neither pipe fills up).
pub fn collect(p: &mut Proc) -> (JoinHandle<Vec<u8>>, JoinHandle<String>) {
    let mut so = p.0.stdout.take().unwrap();
    let mut se = p.0.stderr.take().unwrap();
    (
        std::thread::spawn(move || {
            let mut v = Vec::new();
            so.read_to_end(&mut v).unwrap();
            v
        }),
        std::thread::spawn(move || {
            let mut s = String::new();
            se.read_to_string(&mut s).unwrap();
            s
        }),
    )
}

pub struct Done {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

pub fn finish(mut p: Proc, io: (JoinHandle<Vec<u8>>, JoinHandle<String>)) -> Done {
    let status = p.0.wait().unwrap();
    Done {
        code: status.code(),
        stdout: io.0.join().unwrap(),
        stderr: io.1.join().unwrap(),
    }
}

/// Starts `svshm read` with `rargs`, then `svshm write` with `wargs` (neither
/// gets a stdin), and waits for both: returns (writer, reader).
pub fn reader_then_writer(rargs: &[&str], wargs: &[&str]) -> (Done, Done) {
    let mut r = spawn(rargs, Stdio::null());
    let rio = collect(&mut r);
    let mut w = spawn(wargs, Stdio::null());
    let wio = collect(&mut w);
    (finish(w, wio), finish(r, rio))
}
