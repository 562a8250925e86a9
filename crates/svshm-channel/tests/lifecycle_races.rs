//! Regression tests from review: lifecycle races made deterministic.
//!
//! A rendezvous step that is microseconds wide is widened by running the child
//! under `strace -e inject=shmat:delay_enter=…:when=1`: its first `shmat` is
//! held at syscall entry, and the parent sees it there in
//! `/proc/PID/task/*/syscall`. Tests that need strace, root or `unshare
//! --mount` are skipped with a printed reason when those are missing.

mod common;

use common::*;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use svshm::{CreateOptions, Key, Segment};
use svshm_channel::{Endpoint, Error, Options, StreamReader, StreamWriter};

fn opts(secs: u64) -> Options {
    Options::new()
        .capacity(1 << 16)
        .timeout(Some(Duration::from_secs(secs)))
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    let name = std::env::var("NAME").unwrap();
    match role.as_str() {
        "read-all" => match StreamReader::connect(&Endpoint::name(&name), &opts(20)) {
            Ok(mut r) => {
                let mut s = String::new();
                match r.read_to_string(&mut s) {
                    Ok(_) => println!("GOT {s}"),
                    Err(e) => println!("ERR read: {e}"),
                }
            }
            Err(e) => println!("ERR connect: {e}"),
        },
        "write-hello" => match StreamWriter::connect(&Endpoint::name(&name), &opts(20)) {
            Ok(mut w) => {
                w.write_all(b"hello").unwrap();
                match w.close() {
                    Ok(()) => println!("SENT"),
                    Err(e) => println!("ERR close: {e}"),
                }
            }
            Err(e) => println!("ERR connect: {e}"),
        },
        "write-then-hang" => {
            let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts(20)).unwrap();
            w.write_all(b"hello").unwrap();
            w.flush().unwrap();
            println!("SENT");
            std::thread::sleep(Duration::from_secs(600));
        }
        "connect-then-hang" => {
            let _ = StreamWriter::connect(
                &Endpoint::name(&name),
                &opts(600).mode(std::env::var("MODE").unwrap().parse().unwrap()),
            );
        }
        "gc" => match svshm_channel::reclaim_all(false) {
            Ok(v) => println!("REMOVED {}", v.len()),
            Err(e) => println!("ERR {e}"),
        },
        r => panic!("unknown role {r}"),
    }
}

/// Kills (SIGKILL) and reaps the given children however the test ends, then
/// removes whatever segment is left under `key`.
struct Cleanup {
    key: Key,
    pids: Vec<i32>,
    children: Vec<Child>,
}

impl Cleanup {
    fn new(key: Key) -> Cleanup {
        Cleanup {
            key,
            pids: Vec::new(),
            children: Vec::new(),
        }
    }

    /// A unique channel name for `tag`, its key, and a guard that cleans up
    /// under that key.
    fn named(tag: &str) -> (String, Key, Cleanup) {
        let name = unique(tag);
        let key = svshm_channel::channel_key(&name);
        (name, key, Cleanup::new(key))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &p in &self.pids {
            // A tracee pid we started (via strace); it may be gone already,
            // which is harmless.
            let _ = sigkill_pid(p);
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for _ in 0..10 {
            match svshm::info::public_info_by_key(self.key) {
                Some(i) => {
                    let _ = Segment::from_id(i.id).remove();
                }
                None => break,
            }
        }
    }
}

/// `Cleanup::named(tag)` if strace can hold a child at a syscall here;
/// otherwise says why the test is skipped.
fn traced_setup(tag: &str) -> Option<(String, Key, Cleanup)> {
    if !strace_works() {
        eprintln!("skipped: needs a working strace");
        return None;
    }
    Some(Cleanup::named(tag))
}

fn strace_works() -> bool {
    Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Spawns this test binary as `role` under strace, its first shmat held for
/// `delay`. Returns the strace child and the tracee's pid.
fn spawn_traced(role: &str, name: &str, delay: Duration) -> (Child, i32) {
    let inject = format!("shmat:delay_enter={}:when=1", delay.as_micros());
    let c = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=shmat"])
        .args(["-e", &format!("inject={inject}")])
        .arg(std::env::current_exe().unwrap())
        .args(child_args("child"))
        .env(ROLE, role)
        .env("NAME", name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let pid = loop {
        let kids = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", c.id()))
            .unwrap_or_default();
        // strace forks short-lived probes of its own first: wait for the one
        // that became this test binary.
        let me = std::env::current_exe().unwrap();
        if let Some(p) = kids
            .split_whitespace()
            .find(|p| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e == me))
        {
            break p.parse().unwrap();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "strace never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    (c, pid)
}

/// Whether some thread of `pid` sits at the entry of syscall `nr`.
fn in_syscall(pid: i32, nr: libc::c_long) -> bool {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    dir.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("syscall"))
            .is_ok_and(|s| s.split_whitespace().next() == Some(&nr.to_string()))
    })
}

fn wait_in_shmat(pid: i32) {
    let t0 = Instant::now();
    while !in_syscall(pid, libc::SYS_shmat) {
        if t0.elapsed() > Duration::from_secs(30) {
            let tasks: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|d| {
                    d.flatten()
                        .map(|t| {
                            std::fs::read_to_string(t.path().join("syscall")).unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default();
            panic!("tracee {pid} never reached shmat: {tasks:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn output(mut c: Child) -> String {
    let status = wait_child(&mut c, Duration::from_secs(60));
    let mut s = String::new();
    c.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    assert!(status.success(), "child failed ({status}): {s}");
    s
}

fn wait_key(key: Key) -> i32 {
    let t0 = Instant::now();
    loop {
        if let Some(i) = svshm::info::public_info_by_key(key) {
            return i.id;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "key never appeared");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// rendezvous.rs `join`: `seg.attach()?` after IPC_STAT. A segment removed in
/// between (a creator that timed out, another joiner or `svshm gc` reclaiming
/// it) makes connect fail with "invalid id" instead of trying again, although
/// the key is free and the next attempt would simply create the channel.
#[test]
fn a_segment_removed_between_stat_and_attach_is_retried() {
    let Some((name, key, mut guard)) = traced_setup("lc-toctou") else {
        return;
    };
    // What the joiner finds under the key: channel-sized, ours, mode 0600.
    let seg = CreateOptions::new(4096 + (1 << 16))
        .key(key)
        .mode(0o600)
        .create()
        .unwrap();
    // Touched, so the joiner must attach to read it (an untouched segment
    // is judged without attaching).
    seg.attach().unwrap().write_at(0, &[0]).unwrap();
    let (c, pid) = spawn_traced("read-all", &name, Duration::from_secs(3));
    guard.pids.push(pid);
    // The reader did its IPC_STAT and is about to attach: remove the segment.
    wait_in_shmat(pid);
    seg.remove().unwrap();
    let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts(20)).unwrap();
    w.write_all(b"hello").unwrap();
    w.close().unwrap();
    let out = output(c);
    assert!(out.contains("GOT hello"), "reader: {out}");
}

/// rendezvous.rs `join`, READY branch: `info.attach_count == 0` is taken as
/// "abandoned", but the count was sampled before our attach, possibly before
/// the creator's own attach (between its shmget and shmat; the mode still
/// carried the initialising mark). If the creator makes the header READY in the
/// meantime, the joiner removes a live creator's channel: the creator fails
/// ("removed by someone else"), the joiner creates a new channel nobody joins.
#[test]
fn a_joiner_does_not_remove_a_channel_whose_creator_was_initialising() {
    let Some((name, key, mut guard)) = traced_setup("lc-init") else {
        return;
    };
    let (creator, cpid) = spawn_traced("write-hello", &name, Duration::from_secs(2));
    guard.pids.push(cpid);
    let id = wait_key(key);
    wait_in_shmat(cpid);
    let (joiner, jpid) = spawn_traced("read-all", &name, Duration::from_secs(4));
    guard.pids.push(jpid);
    // The joiner finds a segment nobody has written yet (no resident pages)
    // whose creator still runs: it must wait, not reclaim it.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        in_syscall(cpid, libc::SYS_shmat),
        "creator moved on too soon"
    );
    assert!(
        Segment::from_id(id).stat().is_ok(),
        "the joiner removed a live creator's segment"
    );
    let w = output(creator);
    let r = output(joiner);
    assert!(
        w.contains("SENT") && r.contains("GOT hello"),
        "writer: {w}; reader: {r}"
    );
}

/// inspect.rs `is_stale`: a READY header with a sampled attach count of 0 is
/// judged stale, but the sample may predate the creator's attach (the mode
/// still carried the initialising mark). `svshm gc` lists segments first and
/// looks at each later, so it can remove a channel that has just come alive.
#[test]
fn is_stale_does_not_trust_a_count_sampled_while_the_creator_initialised() {
    let Some((name, key, mut guard)) = traced_setup("lc-gc") else {
        return;
    };
    let (creator, cpid) = spawn_traced("write-hello", &name, Duration::from_secs(1));
    guard.pids.push(cpid);
    let id = wait_key(key);
    wait_in_shmat(cpid);
    let sampled = Segment::from_id(id).stat().unwrap();
    assert_eq!(sampled.attach_count, 0);
    // The creator finishes: READY, waiting for a reader.
    let t0 = Instant::now();
    while !svshm_channel::inspect(id)
        .unwrap()
        .is_some_and(|s| s.ready && s.writer.is_some())
    {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(1));
    }
    let stale = svshm_channel::judge_record(&sampled).is_abandoned();
    let mut r = StreamReader::connect(&Endpoint::name(&name), &opts(20)).unwrap();
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello");
    let w = output(creator);
    assert!(w.contains("SENT"), "writer: {w}");
    assert!(!stale, "a live, waiting channel was judged stale");
}

/// peer.rs `creator_alive` compares the creator's start time, converted to
/// wall-clock time with the *current* boot time (`btime` in /proc/stat),
/// with `shm_ctime`, recorded with the wall clock at creation. When the clock
/// is stepped forward after the creator made its segment (NTP's first sync on
/// a machine without RTC, a manual `date -s`), btime moves forward by the
/// step, the live creator seems to have started after its segment was made,
/// and a joiner removes the live creator's channel. The step is simulated by
/// giving the joiner a /proc/stat whose btime is an hour later (a bind mount
/// in its own mount namespace).
#[test]
fn a_forward_clock_step_does_not_make_a_waiting_creator_look_dead() {
    if svshm::euid() != 0
        || !Command::new("unshare")
            .args(["--mount", "true"])
            .status()
            .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: needs root and unshare --mount");
        return;
    }
    let (name, key, mut guard) = Cleanup::named("lc-clock");
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let fake: String = stat
        .lines()
        .map(|l| match l.strip_prefix("btime ") {
            Some(b) => format!("btime {}\n", b.trim().parse::<u64>().unwrap() + 3600),
            None => format!("{l}\n"),
        })
        .collect();
    let fake_path = std::env::temp_dir().join(format!("{name}.stat"));
    std::fs::write(&fake_path, fake).unwrap();
    let n2 = name.clone();
    let creator = std::thread::spawn(move || -> Result<(), Error> {
        let mut w = StreamWriter::connect(&Endpoint::name(&n2), &opts(20))?;
        w.write_all(b"hello")
            .map_err(|e| Error::Invalid(e.to_string()))?;
        w.close()
    });
    let id = wait_key(key);
    let t0 = Instant::now();
    while !svshm_channel::inspect(id)
        .ok()
        .flatten()
        .is_some_and(|s| s.ready && s.writer.is_some())
    {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(1));
    }
    let joiner = Command::new("unshare")
        .args(["--mount", "--", "sh", "-c"])
        .arg(r#"mount --bind "$FAKE_STAT" /proc/stat && exec "$@""#)
        .arg("sh")
        .arg(std::env::current_exe().unwrap())
        .args(child_args("child"))
        .env(ROLE, "read-all")
        .env("NAME", &name)
        .env("FAKE_STAT", &fake_path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let w = creator.join().unwrap();
    if w.is_err() {
        // Let the joiner's own (second) channel time out quickly.
        guard.children.push(joiner);
        let _ = std::fs::remove_file(&fake_path);
        panic!("live creator lost its channel: {w:?}");
    }
    let r = output(joiner);
    let _ = std::fs::remove_file(&fake_path);
    assert!(r.contains("GOT hello"), "reader: {r}");
}

/// rendezvous.rs `join` by id: a channel whose creator is gone is "abandoned"
/// (removed, `Ok(None)`: try again); by key the retry creates a new channel,
/// but by id it retries the same segment, which the surviving peer keeps
/// alive: connect spins until its timeout (forever without one) and then
/// reports a misleading "timed out waiting for … to become ready". The
/// scenario: a supervisor restarts a crashed writer on the same channel id.
#[test]
fn connect_by_id_to_a_channel_whose_creator_died_fails_at_once() {
    let (name, key, mut guard) = Cleanup::named("lc-byid-dead");
    let c = spawn(
        "child",
        "write-then-hang",
        &[("NAME", name.clone())],
        Stdio::piped(),
    );
    guard.children.push(c);
    // The child must be the creator: join only once its channel is READY.
    let id = wait_key(key);
    let t0 = Instant::now();
    while !svshm_channel::inspect(id)
        .ok()
        .flatten()
        .is_some_and(|s| s.ready && s.writer.is_some())
    {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut r = StreamReader::connect(&Endpoint::name(&name), &opts(20)).unwrap();
    assert_eq!(r.segment_id(), id);
    let id = r.segment_id();
    let mut b = [0u8; 5];
    r.read_exact(&mut b).unwrap();
    let c = &mut guard.children[0];
    sigkill(c);
    c.wait().unwrap();
    refuse_writer_by_id(id, "a dead writer's channel");
    let err = r.read(&mut b).expect_err("the writer is dead");
    let inner = err.into_inner().unwrap().downcast::<Error>().unwrap();
    assert!(inner.is_peer_died(), "{inner}");
    drop(r);
    assert!(segment_gone(id));
}

/// rendezvous.rs `join`: our slot CLOSED ("claiming or closing: look again
/// shortly") is retried; by id it never changes, so connect spins until its
/// timeout and reports "timed out waiting for … to become ready". It now
/// fails at once (the fuzz model, fuzz/bodies/header.rs, says the same).
#[test]
fn connect_by_id_to_a_channel_whose_writer_closed_fails_at_once() {
    let (name, _key, _guard) = Cleanup::named("lc-byid-closed");
    let n2 = name.clone();
    let writer = std::thread::spawn(move || {
        let mut w = StreamWriter::connect(&Endpoint::name(n2), &opts(20)).unwrap();
        w.write_all(b"hello").unwrap();
        w.close().unwrap();
    });
    let mut r = StreamReader::connect(&Endpoint::name(&name), &opts(20)).unwrap();
    writer.join().unwrap();
    let id = r.segment_id();
    refuse_writer_by_id(id, "a closed writer's channel");
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello");
    drop(r);
    assert!(segment_gone(id));
}

/// inspect.rs `remove_stale`: "removes every stale channel segment this
/// process may remove", but the first one it may not remove (another user's
/// stale channel with a readable mode: EPERM) aborts the whole run with an
/// error, and the stale channels after it are left behind.
#[test]
fn gc_skips_stale_channels_it_may_not_remove() {
    if let Some(why) = svshm_testkit::nobody_unavailable_for_this_test() {
        eprintln!("skipped: {why}");
        return;
    }
    let (name, key, _guard) = Cleanup::named("lc-gc-foreign");
    // Root's channel, readable by all, abandoned by its creator.
    let mut c = spawn(
        "child",
        "connect-then-hang",
        &[("NAME", name.clone()), ("MODE", "420".into())], // 0o644
        Stdio::null(),
    );
    let id = wait_key(key);
    let t0 = Instant::now();
    while !svshm_channel::inspect(id)
        .ok()
        .flatten()
        .is_some_and(|s| s.ready && s.writer.is_some())
        || Segment::from_id(id).stat().unwrap().permissions() != 0o644
    {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(1));
    }
    sigkill(&c);
    c.wait().unwrap();
    assert!(svshm_channel::judge_record(&Segment::from_id(id).stat().unwrap()).is_abandoned());
    let mut cmd = svshm_testkit::this_test_as_nobody();
    cmd.args(child_args("child"))
        .env(ROLE, "gc")
        .env("NAME", &name)
        .stdout(Stdio::piped());
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Root's segment is still there (nobody may not remove it) ...
    assert!(!segment_gone(id));
    Segment::from_id(id).remove().unwrap();
    // ... and gc did not fail because of it.
    assert!(text.contains("REMOVED"), "gc as nobody: {text}");
}

/// A writer connecting by id to channel `id` must be refused at once with
/// `Error::Invalid`, neither connected nor left waiting for its timeout.
fn refuse_writer_by_id(id: i32, what: &str) {
    let t0 = Instant::now();
    let again = StreamWriter::connect(&Endpoint::id(id), &opts(3));
    let took = t0.elapsed();
    match &again {
        Err(Error::Timeout { .. }) | Ok(_) => {
            let again = again.as_ref().map(|_| "connected");
            panic!("by-id connect to {what}: {again:?} after {took:?}")
        }
        Err(e) => {
            assert!(matches!(e, Error::Invalid(_)), "{e:?}");
            eprintln!("refused after {took:?}: {e}");
        }
    }
}
