//! Hostile lifecycle: a writer dropped without `close()`, an end forged by a
//! same-uid scribbler, a third attacher (another user, or a read-only attach
//! of our own) hiding a dead peer, a slow writer whose reader dies, and a
//! user's plain segment under a channel key. Every peer is a real process
//! (this test binary re-executed with a role) and every death a real SIGKILL.
//!
//! These tests assert ordering facts, never durations: "the error arrived
//! while the third attacher still held its attachment", "the writer failed
//! before it had written a quarter of the ring after the kill".

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use svshm::{CreateOptions, Key, Segment};
use svshm_channel::{Endpoint, Error, Options, Receiver, Sender, StreamReader, StreamWriter};

/// Byte offset of the writer's closed flag (u32: 1 closed cleanly, 2 aborted).
const WRITER_CLOSED: usize = 896;
/// Byte offset of the reader's closed flag (u32).
const READER_CLOSED: usize = 1024;
/// Ring size of the channels whose peer is killed.
const RING: usize = 256 << 10;
/// Bytes an idle writer commits before it idles (fits the ring: never blocks).
const IDLE_WROTE: u64 = 100_000;
/// How long a third attacher holds its attachment before giving up (the
/// failing order: the dead writer is noticed only once it has let go).
const HOLD_SECS: u64 = 12;
/// Size of a user's plain segment: the size of a channel with a 64 KiB ring.
const PLAIN_SIZE: usize = 4096 + (64 << 10);

fn opts() -> Options {
    Options::new()
        .capacity(RING)
        .timeout(Some(Duration::from_secs(20)))
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child needs {name}"))
}

fn mode_from_env() -> u32 {
    std::env::var("MODE").map_or(0o600, |m| u32::from_str_radix(&m, 8).unwrap())
}

/// Writes the pattern from `at` up to `to` in chunks of `chunk` bytes.
fn write_pattern(w: &mut StreamWriter, mut at: u64, to: u64, chunk: usize) -> std::io::Result<u64> {
    let mut buf = vec![0u8; chunk];
    while at < to {
        let n = chunk.min((to - at) as usize);
        fill_pattern(at, &mut buf[..n]);
        w.write_all(&buf[..n])?;
        at += n as u64;
    }
    Ok(at)
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    match role.as_str() {
        // Writes some data, then drops the writer without close() (no
        // panic) and stays alive until killed.
        "drop-writer" => {
            let o = opts().capacity(64 << 10);
            let mut w = StreamWriter::connect(&Endpoint::name(env("NAME")), &o).unwrap();
            write_pattern(&mut w, 0, IDLE_WROTE, 4096).unwrap();
            drop(w);
            println!("DROPPED");
            std::thread::sleep(Duration::from_secs(60));
        }
        "drop-sender" => {
            let o = opts().capacity(64 << 10).max_message(1000);
            let mut tx = Sender::connect(&Endpoint::name(env("NAME")), &o).unwrap();
            for n in 0..500 {
                tx.send(&message(n, 1000)).unwrap();
            }
            drop(tx);
            println!("DROPPED");
            std::thread::sleep(Duration::from_secs(60));
        }
        // Writes 1 MiB, waits for a line on stdin, then writes the rest and
        // closes: a writer that is alive and not finished while paused.
        "paused-writer" => {
            let o = opts().capacity(64 << 10);
            let mut w = StreamWriter::connect(&Endpoint::name(env("NAME")), &o).unwrap();
            let at = write_pattern(&mut w, 0, FORGE_FIRST, 4096).unwrap();
            println!("PAUSED {at}");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            let res = write_pattern(&mut w, at, FORGE_TOTAL, 4096)
                .map_err(|e| e.to_string())
                .and_then(|_| w.close().map_err(|e| e.to_string()));
            println!("DONE {res:?}");
        }
        // Writes the pattern up to FORGE_TOTAL; on an error drops the writer
        // (the ordinary error path: `?` out of a function, no close, no panic)
        // and stays alive until killed.
        "steady-writer" => {
            let o = opts().capacity(64 << 10);
            let mut w = StreamWriter::connect(&Endpoint::name(env("NAME")), &o).unwrap();
            match write_pattern(&mut w, 0, FORGE_TOTAL, 4096) {
                Ok(_) => println!("FINISHED"),
                Err(e) => println!("FAILED {e}"),
            }
            drop(w);
            println!("DROPPED");
            std::thread::sleep(Duration::from_secs(60));
        }
        // Commits IDLE_WROTE bytes, then idles (holding the channel) until killed.
        "idle-writer" => {
            let o = opts().mode(mode_from_env());
            let mut w = StreamWriter::connect(&Endpoint::name(env("NAME")), &o).unwrap();
            write_pattern(&mut w, 0, IDLE_WROTE, 4096).unwrap();
            println!("WROTE {IDLE_WROTE}");
            std::thread::sleep(Duration::from_secs(600));
        }
        // Reads 1000 bytes, then sleeps (holding the channel) until killed.
        "sleepy-reader" => {
            let mut r = StreamReader::connect(&Endpoint::name(env("NAME")), &opts()).unwrap();
            let mut buf = [0u8; 1000];
            r.read_exact(&mut buf).unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        // A third attacher: attaches segment ID read-only (a plain shmat) and
        // holds it for HOLD seconds. Announces the release before detaching.
        "holder" => {
            let id: i32 = env("ID").parse().unwrap();
            let att = Segment::from_id(id).attach_read_only().unwrap();
            println!("HOLDING {}", att.len());
            std::thread::sleep(Duration::from_secs(env("HOLD").parse().unwrap()));
            println!("RELEASING");
            drop(att);
        }
        // A same-uid scribbler: stores a u32 at OFFSET of segment ID.
        "scribble" => {
            let id: i32 = env("ID").parse().unwrap();
            let off: usize = env("OFFSET").parse().unwrap();
            let val: u32 = env("VALUE").parse().unwrap();
            let att = Segment::from_id(id).attach().unwrap();
            att.write_at(off, &val.to_le_bytes()).unwrap();
            println!("SCRIBBLED");
        }
        // A user's plain segment at KEY, mode 0700, channel-sized; the
        // pattern from byte FROM to the end (none if FROM is the size).
        "plain-creator" => {
            let key: Key = env("KEY").parse().unwrap();
            let from: usize = env("FROM").parse().unwrap();
            let seg = CreateOptions::new(PLAIN_SIZE)
                .key(key)
                .mode(0o700)
                .create()
                .unwrap();
            if from < PLAIN_SIZE {
                seg.attach()
                    .unwrap()
                    .write_at(from, &plain_data(from))
                    .unwrap();
            }
            println!("ID {}", seg.id());
        }
        // The segment's user (not its creator): writes the pattern from FROM.
        "plain-user" => {
            let id: i32 = env("ID").parse().unwrap();
            let from: usize = env("FROM").parse().unwrap();
            let att = Segment::from_id(id).attach().unwrap();
            att.write_at(from, &plain_data(from)).unwrap();
            println!("WRITTEN");
        }
        r => panic!("unknown role {r}"),
    }
}

/// A child process that is killed (SIGKILL, by its own pid) and reaped when
/// dropped, whatever way the test ends.
struct Kid {
    child: Child,
    out: Option<BufReader<ChildStdout>>,
}

impl Kid {
    fn new(mut child: Child) -> Kid {
        let out = child.stdout.take().map(BufReader::new);
        Kid { child, out }
    }

    /// This test binary running only `child` with `role`; stdin and stdout
    /// are pipes.
    fn spawn(role: &str, env: &[(&str, String)]) -> Kid {
        let mut c = child_command("child", role);
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        Kid::new(c.spawn().expect("spawn child test process"))
    }

    /// Reads stdout lines until one starts with `prefix`; returns the rest of it.
    fn line(&mut self, prefix: &str) -> String {
        let (_, rest) = self.line_of(&[prefix]);
        rest
    }

    /// Reads stdout lines until one starts with one of `prefixes`; returns
    /// that prefix and the rest of the line.
    fn line_of<'p>(&mut self, prefixes: &[&'p str]) -> (&'p str, String) {
        let out = self.out.as_mut().expect("child stdout");
        let mut line = String::new();
        loop {
            line.clear();
            let n = out.read_line(&mut line).unwrap();
            assert!(
                n > 0,
                "child {} ended before printing any of {prefixes:?} (status {:?})",
                self.child.id(),
                self.child.try_wait()
            );
            for p in prefixes {
                if let Some(rest) = line.trim_end().strip_prefix(p) {
                    return (p, rest.trim().to_string());
                }
            }
        }
    }

    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// Everything the child printed that was not read yet (after it ended).
    fn rest_of_stdout(&mut self) -> String {
        let mut s = String::new();
        if let Some(out) = self.out.as_mut() {
            let _ = out.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Removes every segment left under `key` when dropped.
struct KeyGuard(Key);

impl Drop for KeyGuard {
    fn drop(&mut self) {
        if let Ok(segs) = svshm::proc_segments() {
            for s in segs.iter().filter(|s| s.key == self.0) {
                let _ = Segment::from_id(s.id).remove();
            }
        }
    }
}

/// This test binary running only `child` with `role`, as uid and gid 65534,
/// from a copy that user can reach (the repository may live in a mode-0700
/// directory). `Err`: it could not be started (e.g. /tmp is mounted noexec).
fn spawn_as_nobody(role: &str, env: &[(&str, String)]) -> std::io::Result<Kid> {
    let nobody = svshm_testkit::NOBODY;
    let mut c = svshm_testkit::command_as(&std::env::current_exe()?, nobody, nobody)?;
    c.args(child_args("child"))
        .env(ROLE, role)
        .stdout(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().map(Kid::new)
}

/// A same-uid scribbler process stores `value` at `offset` of segment `id`.
fn scribble(id: i32, offset: usize, value: u32) {
    let out = child_command("child", "scribble")
        .env("ID", id.to_string())
        .env("OFFSET", offset.to_string())
        .env("VALUE", value.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("SCRIBBLED"),
        "scribbler failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a short-lived child to completion; returns its stdout.
fn run_child(role: &str, env: &[(&str, String)]) -> String {
    let mut c = spawn("child", role, env, Stdio::piped());
    let status = wait_child(&mut c, Duration::from_secs(30));
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(status.success(), "child {role} failed: {status}; {out}");
    out
}

/// The channel error inside an `io::Error` from `io::Read`/`io::Write`.
fn chan_err(e: &std::io::Error) -> Option<&Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<Error>())
}

/// Reads from `at` until the stream ends or fails, checking every byte
/// against the pattern. Returns the stream position reached and the error
/// (`None`: a clean end of stream).
fn drain(r: &mut StreamReader, mut at: u64) -> (u64, Option<Error>) {
    let mut buf = vec![0u8; 8192];
    loop {
        match r.read_some(&mut buf) {
            Ok(0) => return (at, None),
            Ok(n) => {
                assert_eq!(check_pattern(at, &buf[..n]), None, "damaged byte");
                at += n as u64;
            }
            Err(e) => return (at, Some(e)),
        }
    }
}

/// The data a user keeps in a plain segment from byte `from` to its end.
fn plain_data(from: usize) -> Vec<u8> {
    let mut v = vec![0u8; PLAIN_SIZE - from];
    fill_pattern(from as u64, &mut v);
    v
}

// ---------------------------------------------------------------------------
// 1. Silent truncation: only an explicit close ends cleanly.
// ---------------------------------------------------------------------------

/// A StreamWriter dropped without `close()` (and without a panic) must not
/// look like a complete stream: the reader gets every committed byte, then
/// `Error::Aborted`, never a clean end of stream.
#[test]
fn a_stream_writer_dropped_without_close_is_aborted_not_a_clean_end() {
    let name = unique("hl-drop-writer");
    let mut w = Kid::spawn("drop-writer", &[("NAME", name.clone())]);
    let o = opts().capacity(64 << 10);
    let mut r = StreamReader::connect(&Endpoint::name(&name), &o).unwrap();
    let id = r.segment_id();
    let mut got = Vec::new();
    let res = r.read_to_end(&mut got);
    assert_eq!(check_pattern(0, &got), None, "damaged byte");
    w.line("DROPPED");
    match res {
        Ok(n) => panic!(
            "the writer was dropped without close() after {IDLE_WROTE} bytes, and the reader got \
             a clean end of stream after {n} bytes: it must get Error::Aborted instead"
        ),
        Err(e) => {
            let inner = chan_err(&e);
            assert!(
                inner.is_some_and(Error::is_aborted),
                "expected Error::Aborted, got {e} ({:?})",
                e.kind()
            );
        }
    }
    assert_eq!(got.len() as u64, IDLE_WROTE, "every committed byte first");
    drop(r);
    w.kill();
    assert!(segment_gone(id), "segment {id} left behind");
}

/// A message Sender dropped without `close()` (no panic): the receiver gets
/// every message, then `Error::Aborted`, not the clean `Error::Closed`.
#[test]
fn a_sender_dropped_without_close_is_aborted_not_closed() {
    let name = unique("hl-drop-sender");
    let mut s = Kid::spawn("drop-sender", &[("NAME", name.clone())]);
    let o = opts().capacity(64 << 10).max_message(1000);
    let mut rx = Receiver::connect(&Endpoint::name(&name), &o).unwrap();
    let id = rx.segment_id();
    let mut n = 0u64;
    let err = loop {
        match rx.recv() {
            Ok(m) => {
                assert_eq!(m, Some(message(n, 1000)), "message {n} damaged");
                n += 1;
            }
            Err(e) => break e,
        }
    };
    s.line("DROPPED");
    assert_eq!(n, 500, "every message first; then {err}");
    assert!(
        err.is_aborted(),
        "a Sender dropped without close() after 500 messages: the receiver got {err:?} ({err}); \
         it must get Error::Aborted"
    );
    drop(rx);
    s.kill();
    assert!(segment_gone(id), "segment {id} left behind");
}

/// A scribbler sets the reader's closed flag mid-stream: the writer's next
/// write fails, and the writer is dropped on that error path. The reader must
/// then get an error (`Aborted`), not a clean end with the prefix.
#[test]
fn a_writer_dropped_after_a_write_error_is_aborted_for_the_reader() {
    let name = unique("hl-error-path");
    let mut w = Kid::spawn("steady-writer", &[("NAME", name.clone())]);
    let o = opts().capacity(64 << 10);
    let mut r = StreamReader::connect(&Endpoint::name(&name), &o).unwrap();
    let id = r.segment_id();
    let mut first = vec![0u8; FORGE_FIRST as usize];
    r.read_exact(&mut first).unwrap();
    assert_eq!(check_pattern(0, &first), None);
    scribble(id, READER_CLOSED, 1);
    let (at, err) = drain(&mut r, FORGE_FIRST);
    let (outcome, failed) = w.line_of(&["FAILED", "FINISHED"]);
    assert_eq!(
        outcome, "FAILED",
        "the writer finished despite the reader's closed flag"
    );
    eprintln!("the writer failed: {failed}");
    w.line("DROPPED");
    match err {
        None => panic!(
            "the writer failed ({failed}) and was dropped on its error path, and the reader got \
             a clean end of stream after {at} of {FORGE_TOTAL} bytes: it must get Error::Aborted"
        ),
        Some(e) => assert!(e.is_aborted(), "expected Error::Aborted, got {e:?} ({e})"),
    }
    drop(r);
    w.kill();
    assert!(segment_gone(id), "segment {id} left behind");
}

// ---------------------------------------------------------------------------
// 2. Forged end: a same-uid scribbler sets writer_closed = 1 mid-stream.
// ---------------------------------------------------------------------------

const FORGE_FIRST: u64 = 1 << 20;
const FORGE_TOTAL: u64 = 4 << 20;

/// A scribbler sets the writer's closed flag while the writer is alive and
/// has written only a quarter of its stream: the reader must not report a
/// clean end with the truncated prefix. (An error, or all of the writer's
/// bytes followed by its own clean close, are both acceptable.)
#[test]
fn a_forged_writer_closed_flag_is_not_a_clean_end() {
    let name = unique("hl-forged-end");
    let mut w = Kid::spawn("paused-writer", &[("NAME", name.clone())]);
    let o = opts().capacity(64 << 10);
    let mut r = StreamReader::connect(&Endpoint::name(&name), &o).unwrap();
    let id = r.segment_id();
    let mut first = vec![0u8; FORGE_FIRST as usize];
    r.read_exact(&mut first).unwrap();
    assert_eq!(check_pattern(0, &first), None);
    assert_eq!(w.line("PAUSED"), FORGE_FIRST.to_string());
    // The writer is alive, connected and not finished; forge its clean end.
    scribble(id, WRITER_CLOSED, 1);
    // Let it go on a little later (only so that a reader that rightly keeps
    // waiting gets the rest).
    let mut stdin = w.child.stdin.take();
    let go = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(b"GO\n");
        }
    });
    let (at, err) = drain(&mut r, FORGE_FIRST);
    go.join().unwrap();
    match err {
        Some(e) => eprintln!("forged end reported as an error after {at} bytes: {e}"),
        None => assert_eq!(
            at, FORGE_TOTAL,
            "the reader reported a clean end of stream after {at} bytes, but the writer (alive \
             and still writing) had written {FORGE_FIRST} and would write {FORGE_TOTAL}: a \
             scribbled writer_closed flag was taken for the writer's close"
        ),
    }
    drop(r);
    w.kill();
    assert!(segment_gone(id), "segment {id} left behind");
}

// ---------------------------------------------------------------------------
// 3. A third attachment must not hide a dead peer.
// ---------------------------------------------------------------------------

/// Root's channel is readable by all (0644 on both sides); a process running
/// as uid 65534 attaches it read-only (a plain shmat) and holds it. The
/// writer is SIGKILLed: the reader must drain what was committed and get
/// `PeerDied` while the third attacher still holds its attachment.
#[test]
fn a_third_attacher_as_another_user_does_not_hide_a_dead_writer() {
    if svshm::euid() != 0 {
        eprintln!("skipped: needs root to run a third attacher as uid 65534");
        return;
    }
    let name = unique("hl-third-nobody");
    let mut w = Kid::spawn(
        "idle-writer",
        &[("NAME", name.clone()), ("MODE", "644".into())],
    );
    let mut r = StreamReader::connect(&Endpoint::name(&name), &opts().mode(0o644)).unwrap();
    let id = r.segment_id();
    w.line("WROTE");
    let mut holder = match spawn_as_nobody(
        "holder",
        &[("ID", id.to_string()), ("HOLD", HOLD_SECS.to_string())],
    ) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("skipped: cannot run this test binary as uid 65534: {e}");
            return;
        }
    };
    holder.line("HOLDING");
    let info = Segment::from_id(id).stat().unwrap();
    assert_eq!(
        info.attach_count, 3,
        "writer, reader and the third attacher"
    );
    sigkill(&w.child);
    w.child.wait().unwrap();
    let (at, err) = drain(&mut r, 0);
    // Stop the holder now and see whether it had begun to let go before.
    holder.kill();
    let said = holder.rest_of_stdout();
    let err = err.unwrap_or_else(|| panic!("clean end of stream from a killed writer"));
    assert!(err.is_peer_died(), "{err}");
    assert_eq!(at, IDLE_WROTE, "everything committed was drained first");
    assert!(
        !said.contains("RELEASING"),
        "the reader got PeerDied only once the third attacher (uid 65534, read-only) had let \
         go of the segment: its attachment hid the writer's death ({err})"
    );
    drop(r);
    assert!(segment_gone(id), "segment {id} left behind");
}

/// The same with a read-only attachment of the reader's own user (here the
/// test process itself, beside its reader): no root needed.
#[test]
fn a_read_only_third_attacher_of_the_same_user_does_not_hide_a_dead_writer() {
    let name = unique("hl-third-self");
    let mut w = Kid::spawn("idle-writer", &[("NAME", name.clone())]);
    let mut r = StreamReader::connect(&Endpoint::name(&name), &opts()).unwrap();
    let id = r.segment_id();
    w.line("WROTE");
    let mut third = Some(Segment::from_id(id).attach_read_only().unwrap());
    assert_eq!(Segment::from_id(id).stat().unwrap().attach_count, 3);
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let res = drain(&mut r, 0);
        let _ = tx.send(res);
        r
    });
    sigkill(&w.child);
    w.child.wait().unwrap();
    // Hold the third attachment until the reader reports, or HOLD_SECS.
    let (res, holding) = match rx.recv_timeout(Duration::from_secs(HOLD_SECS)) {
        Ok(res) => (res, true),
        Err(_) => {
            drop(third.take());
            let res = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the reader never returned, even after the third attacher let go");
            (res, false)
        }
    };
    drop(third);
    let r = reader.join().unwrap();
    let (at, err) = res;
    let err = err.unwrap_or_else(|| panic!("clean end of stream from a killed writer"));
    assert!(err.is_peer_died(), "{err}");
    assert_eq!(at, IDLE_WROTE, "everything committed was drained first");
    assert!(
        holding,
        "the reader got PeerDied only after the read-only third attacher let go: the \
         attachment hid the writer's death ({err})"
    );
    drop(r);
    assert!(segment_gone(id), "segment {id} left behind");
}

// ---------------------------------------------------------------------------
// 4. Late death: a slow writer whose reader dies; a blocked reader.
// ---------------------------------------------------------------------------

/// A writer feeding 1 KiB every 20 ms into a 256 KiB ring; its reader is
/// SIGKILLed (and reaped). The writer must fail with `PeerDied` long before
/// the ring fills: after less than a quarter of the ring.
#[test]
fn a_slow_writer_notices_a_killed_reader_before_the_ring_fills() {
    const LIMIT: usize = 64 << 10;
    let name = unique("hl-late-death");
    let mut c = Kid::spawn("sleepy-reader", &[("NAME", name.clone())]);
    let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts()).unwrap();
    let id = w.segment_id();
    write_pattern(&mut w, 0, 1000, 1000).unwrap();
    c.line("READY");
    sigkill(&c.child);
    c.child.wait().unwrap();
    let t0 = Instant::now();
    let chunk = [0x5au8; 1024];
    let mut after = 0usize;
    let err = loop {
        assert!(
            after < LIMIT,
            "the writer wrote {after} bytes after its reader was SIGKILLed and reaped (1 KiB \
             every 20 ms into a {RING}-byte ring) without an error: a dead reader is noticed \
             only once the ring is full"
        );
        match w.write_some(&chunk) {
            Ok(n) => after += n,
            Err(e) => break e,
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "the writer failed after {after} more bytes, {:?} after the kill: {err}",
        t0.elapsed()
    );
    assert!(err.is_peer_died(), "{err}");
    drop(w);
    assert!(segment_gone(id), "segment {id} left behind");
}

/// The mirror case: a reader blocked on an idle writer that is SIGKILLed gets
/// every committed byte, then `PeerDied`.
#[test]
fn a_reader_blocked_on_an_idle_writer_gets_peer_died_when_it_is_killed() {
    let name = unique("hl-idle-writer");
    let mut w = Kid::spawn("idle-writer", &[("NAME", name.clone())]);
    let mut r = StreamReader::connect(&Endpoint::name(&name), &opts()).unwrap();
    let id = r.segment_id();
    w.line("WROTE");
    let mut all = vec![0u8; IDLE_WROTE as usize];
    r.read_exact(&mut all).unwrap();
    assert_eq!(check_pattern(0, &all), None);
    // Kill the writer while this reader is blocked waiting for more.
    let pid = w.child.id();
    let (killed_tx, killed_rx) = mpsc::channel();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
        killed_tx.send(Instant::now()).unwrap();
    });
    let (at, err) = drain(&mut r, IDLE_WROTE);
    let noticed = Instant::now();
    killer.join().unwrap();
    let killed = killed_rx.recv().unwrap();
    w.child.wait().unwrap();
    let err = err.unwrap_or_else(|| panic!("clean end of stream from a killed writer"));
    assert!(err.is_peer_died(), "{err}");
    assert_eq!(at, IDLE_WROTE);
    eprintln!(
        "the blocked reader noticed the dead writer {:?} after the kill",
        noticed.saturating_duration_since(killed)
    );
    drop(r);
    assert!(segment_gone(id), "segment {id} left behind");
}

// ---------------------------------------------------------------------------
// 5. Never destroy what is not provably ours.
// ---------------------------------------------------------------------------

/// Connects each end by `key` with a short timeout; each must fail, and the
/// user's segment `id` must keep existing, under `key`, with `want` in it.
fn connects_fail_and_keep(key: Key, id: i32, want: &[u8]) {
    let o = Options::new().timeout(Some(Duration::from_millis(500)));
    for role in ["reader", "writer"] {
        let res = if role == "reader" {
            StreamReader::connect(&Endpoint::key(key), &o).map(|r| r.segment_id())
        } else {
            StreamWriter::connect(&Endpoint::key(key), &o).map(|w| w.segment_id())
        };
        let info = Segment::from_id(id).stat();
        assert!(
            info.is_ok(),
            "a {role} connecting by key {key} destroyed the user's plain segment {id} \
             (mode 0700, creator gone, data in it); connect returned {res:?}"
        );
        match res {
            Ok(got) => panic!("a {role} connected to segment {got} under the user's key {key}"),
            Err(e) => eprintln!("{role} by key {key}: {e}"),
        }
        assert_eq!(info.unwrap().key, key, "segment {id} still under {key}");
        let mut now = vec![0u8; PLAIN_SIZE];
        Segment::from_id(id)
            .attach_read_only()
            .unwrap()
            .read_at(0, &mut now)
            .unwrap();
        assert!(now == want, "the data in segment {id} changed");
    }
}

/// A user's own plain segment (mode 0700, a channel's size, the pattern in
/// every byte) whose creator has exited: connecting a channel by its key must
/// fail with an error and leave the segment and its data alone.
#[test]
fn connecting_by_key_leaves_a_users_plain_segment_and_its_data_alone() {
    let key = Key::from_name(&unique("hl-plain"));
    let _kg = KeyGuard(key);
    let out = run_child(
        "plain-creator",
        &[("KEY", key.to_string()), ("FROM", "0".into())],
    );
    let id: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("ID "))
        .unwrap()
        .parse()
        .unwrap();
    let _g = Segment::from_id(id).remove_on_drop();
    connects_fail_and_keep(key, id, &plain_data(0));
}

/// A plain segment whose first page is all zero (no header of any kind),
/// whose creator is gone, and which its user attached and wrote beyond the
/// first page: not an abandoned channel, so never removed.
#[test]
fn a_zero_first_page_segment_written_by_its_user_is_not_reclaimed() {
    let key = Key::from_name(&unique("hl-zero-page"));
    let _kg = KeyGuard(key);
    let out = run_child(
        "plain-creator",
        &[("KEY", key.to_string()), ("FROM", PLAIN_SIZE.to_string())],
    );
    let id: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("ID "))
        .unwrap()
        .parse()
        .unwrap();
    let _g = Segment::from_id(id).remove_on_drop();
    run_child(
        "plain-user",
        &[("ID", id.to_string()), ("FROM", "4096".into())],
    );
    let mut want = vec![0u8; 4096];
    want.extend_from_slice(&plain_data(4096));
    connects_fail_and_keep(key, id, &want);
}

/// The same kind of segment (first page zero, creator gone, its user wrote
/// beyond the first page) is not a stale channel for stale cleanup either: a
/// dry run of `remove_stale` (what `svshm gc` removes) must not list it.
#[test]
fn a_zero_first_page_segment_written_by_its_user_is_not_listed_as_stale() {
    let key = Key::from_name(&unique("hl-zero-gc"));
    let _kg = KeyGuard(key);
    let out = run_child(
        "plain-creator",
        &[("KEY", key.to_string()), ("FROM", PLAIN_SIZE.to_string())],
    );
    let id: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("ID "))
        .unwrap()
        .parse()
        .unwrap();
    let _g = Segment::from_id(id).remove_on_drop();
    run_child(
        "plain-user",
        &[("ID", id.to_string()), ("FROM", "4096".into())],
    );
    let listed = svshm_channel::reclaim_all(true).unwrap();
    assert!(
        !listed.iter().any(|s| s.id == id),
        "stale cleanup would remove the user's segment {id} (mode 0700, creator gone, zero \
         first page, data beyond it)"
    );
    assert!(Segment::from_id(id).stat().is_ok());
}
