//! `svshm write` | `svshm read` against a hostile or failing side: a
//! same-uid scribbler forging the reader's or the writer's closed flag
//! mid-transfer, and a user's plain segment under a channel's name. A
//! transfer that did not complete must never end with `svshm read` exiting
//! 0, and `svshm read` must never destroy a segment that is not its channel.

mod common;

use common::*;
use std::io::Read;
use std::process::{Child, Command as StdCommand, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use svshm::{Key, Segment};

/// Byte offset of the writer's closed flag in a channel segment (u32).
const WRITER_CLOSED: usize = 896;
/// Byte offset of the reader's closed flag (u32).
const READER_CLOSED: usize = 1024;
/// Size of the file sent.
const FILE_LEN: usize = 64 << 20;
/// Bytes the test takes from `svshm read` before the scribbler strikes.
const FIRST: usize = 1 << 20;

/// A spawned `svshm` that is killed (by its own id) if the test ends early.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn(args: &[&str]) -> Proc {
    Proc(
        StdCommand::new(svshm_path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Reads a child pipe to its end on a thread.
fn slurp<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    })
}

/// A file removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Deterministic pseudo-random bytes (xorshift, 8 bytes a step).
fn generated(len: usize, start: u64) -> Vec<u8> {
    let mut x = start | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// The id of the one System V segment process `pid` has attached, from
/// `/proc/PID/maps` (`/SYSV<key>` lines; the inode is the shmid).
fn attached_segment(pid: u32) -> i32 {
    let t0 = Instant::now();
    loop {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let mut ids: Vec<i32> = maps
            .lines()
            .filter(|l| l.contains("/SYSV"))
            .filter_map(|l| l.split_whitespace().nth(4)?.parse().ok())
            .collect();
        ids.dedup();
        if let [id] = ids[..] {
            return id;
        }
        assert!(
            ids.len() < 2,
            "process {pid} has several segments attached: {ids:?}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "process {pid} never attached a segment"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A same-uid scribbler (this test process) stores `value` at `offset`.
fn scribble(id: i32, offset: usize, value: u32) {
    let att = Segment::from_id(id).attach().unwrap();
    att.write_at(offset, &value.to_le_bytes()).unwrap();
    att.detach().unwrap();
}

fn signal(p: &Proc, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(p.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// Starts `svshm read NAME` and `svshm write NAME FILE` (64 MiB), takes the
/// first MiB of what `read` prints, and returns everything needed to go on.
struct Transfer {
    name: String,
    data: Vec<u8>,
    _file: TempFile,
    _guard: NameGuard,
    reader: Proc,
    writer: Proc,
    id: i32,
    first: Vec<u8>,
}

fn start_transfer(tag: &str) -> Transfer {
    let name = unique_name(tag);
    let guard = NameGuard(name.clone());
    let data = generated(FILE_LEN, 0x5eed);
    let path = std::env::temp_dir().join(unique_name(&format!("{tag}-in")));
    std::fs::write(&path, &data).unwrap();
    let file = TempFile(path);
    let mut reader = spawn(&["read", &name, "--wait", "60"]);
    let writer = spawn(&["write", &name, file.0.to_str().unwrap(), "--wait", "60"]);
    let mut first = vec![0u8; FIRST];
    reader
        .0
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert!(first[..] == data[..FIRST], "the first MiB arrived damaged");
    // `read` is stalled on its full stdout pipe and `write` on the full ring:
    // the transfer is under way, far from its end.
    let id = attached_segment(reader.0.id());
    Transfer {
        name,
        data,
        _file: file,
        _guard: guard,
        reader,
        writer,
        id,
        first,
    }
}

/// Waits for a `svshm` process; returns its exit code and stderr.
fn finish(p: &mut Proc, stderr: JoinHandle<Vec<u8>>) -> (Option<i32>, String) {
    let st = p.0.wait().unwrap();
    let err = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
    (st.code(), err)
}

/// A scribbler sets the reader's closed flag mid-transfer: `svshm write`
/// fails (exit 1). `svshm read` then has only a prefix of the file and must
/// exit non-zero, not 0 as if the transfer were complete.
#[test]
fn read_fails_when_write_fails_mid_transfer() {
    let mut t = start_transfer("ti-reader-closed");
    let rout = slurp(t.reader.0.stdout.take().unwrap());
    let rerr = slurp(t.reader.0.stderr.take().unwrap());
    let werr = slurp(t.writer.0.stderr.take().unwrap());
    let _ = t.writer.0.stdout.take();
    scribble(t.id, READER_CLOSED, 1);
    let (wcode, wstderr) = finish(&mut t.writer, werr);
    let (rcode, rstderr) = finish(&mut t.reader, rerr);
    let mut got = t.first.clone();
    got.extend_from_slice(&rout.join().unwrap());
    eprintln!("write: {wcode:?} {wstderr}read: {rcode:?} {rstderr}");
    assert_eq!(
        wcode,
        Some(1),
        "the writer should fail once the reader's closed flag is set: {wstderr}"
    );
    assert!(
        got.len() < t.data.len() && got[..] == t.data[..got.len()],
        "read printed {} bytes, not a prefix of the {}-byte file",
        got.len(),
        t.data.len()
    );
    assert_ne!(
        rcode,
        Some(0),
        "svshm write failed (exit 1) after sending part of the file, and svshm read exited 0 \
         after printing {} of {} bytes: a truncated transfer reported as complete (stderr {rstderr:?})",
        got.len(),
        t.data.len()
    );
    assert!(!exists(t.id), "segment {} left behind", t.id);
    assert!(
        svshm::info::public_info_by_key(svshm_channel::channel_key(&t.name)).is_none(),
        "a segment was left under the channel's key"
    );
}

/// A scribbler sets the writer's closed flag to "closed cleanly" while
/// `svshm write` is mid-file (stopped with SIGSTOP for a moment, so that the
/// reader meets the forged flag on an empty ring): `svshm read` must not exit
/// 0 with a truncated prefix. (An error exit, or the whole file once the
/// writer goes on and closes for real, are both acceptable.)
#[test]
fn a_forged_end_mid_transfer_is_not_a_clean_end_for_read() {
    let mut t = start_transfer("ti-forged-end");
    let werr = slurp(t.writer.0.stderr.take().unwrap());
    let _ = t.writer.0.stdout.take();
    signal(&t.writer, rustix::process::Signal::STOP);
    scribble(t.id, WRITER_CLOSED, 1);
    let rout = slurp(t.reader.0.stdout.take().unwrap());
    let rerr = slurp(t.reader.0.stderr.take().unwrap());
    // Give the reader the forged end on an empty ring, then let the writer go
    // on (a reader that rightly waits for more gets the rest).
    let t0 = Instant::now();
    while t.reader.0.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&t.writer, rustix::process::Signal::CONT);
    let (rcode, rstderr) = finish(&mut t.reader, rerr);
    let (wcode, wstderr) = finish(&mut t.writer, werr);
    let mut got = t.first.clone();
    got.extend_from_slice(&rout.join().unwrap());
    eprintln!("read: {rcode:?} {rstderr}write: {wcode:?} {wstderr}");
    assert!(
        got.len() <= t.data.len() && got[..] == t.data[..got.len()],
        "read printed {} bytes, not a prefix of the file",
        got.len()
    );
    if rcode == Some(0) {
        assert_eq!(
            got.len(),
            t.data.len(),
            "svshm read exited 0 after printing {} of the {} bytes svshm write was sending: a \
             scribbled writer_closed flag was taken for the writer's close (stderr {rstderr:?})",
            got.len(),
            t.data.len()
        );
    }
    assert!(!exists(t.id), "segment {} left behind", t.id);
}

/// Creates a user's plain segment under channel name `name` with the CLI
/// (`svshm create -n NAME -s 266240 -m 700`; that process, its creator, then
/// exits) and writes the pattern into it from byte `from`, as its user.
/// Returns its guard and full expected contents.
fn users_segment(name: &str, from: usize) -> (Guard, Vec<u8>) {
    let g = create(&["-n", name, "-s", "266240", "-m", "700"]);
    let mut want = vec![0u8; 266240];
    want[from..].copy_from_slice(&generated(266240 - from, 77));
    let att = Segment::from_id(g.0).attach().unwrap();
    att.write_at(from, &want[from..]).unwrap();
    att.detach().unwrap();
    (g, want)
}

fn assert_intact(id: i32, name: &str, want: &[u8], after: &str) {
    let info = Segment::from_id(id).stat();
    assert!(
        info.is_ok(),
        "{after} destroyed the user's segment {id} (mode 0700, creator gone, data in it)"
    );
    assert_eq!(
        info.unwrap().key,
        Key::from_name(name),
        "still under its key"
    );
    let mut now = vec![0u8; want.len()];
    Segment::from_id(id)
        .attach_read_only()
        .unwrap()
        .read_at(0, &mut now)
        .unwrap();
    assert!(now == want, "{after} changed the data in segment {id}");
}

/// `svshm read NAME` / `svshm write NAME` where NAME holds a user's own plain
/// segment (channel-sized, mode 0700, its creator gone, data in it — in every
/// byte, or beyond a zero first page): each fails with an error and leaves
/// the segment and its data alone.
#[test]
fn read_and_write_leave_a_users_plain_segment_alone() {
    for from in [0usize, 4096] {
        let name = unique_name("ti-mydata");
        let _ng = NameGuard(name.clone());
        let (g, want) = users_segment(&name, from);
        for args in [
            vec!["read", name.as_str(), "--wait", "0.5"],
            vec!["write", name.as_str(), "--wait", "0.5"],
        ] {
            let out = svshm().args(&args).output().unwrap();
            let what = format!("`svshm {}` (data from byte {from})", args.join(" "));
            eprintln!(
                "{what}: {:?} {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_intact(g.0, &name, &want, &what);
            assert_ne!(out.status.code(), Some(0), "{what} succeeded");
            assert!(!out.stderr.is_empty(), "{what} failed without saying why");
        }
    }
}

/// `svshm rm --stale --dry-run` (what `svshm gc` would remove) must not list
/// a user's plain segment whose first page happens to be zero but which its
/// user wrote beyond it.
#[test]
fn gc_dry_run_does_not_list_a_users_segment_with_a_zero_first_page() {
    let name = unique_name("ti-zero-page");
    let _ng = NameGuard(name.clone());
    let (g, want) = users_segment(&name, 4096);
    let out = svshm()
        .args(["rm", "--stale", "--dry-run"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_intact(g.0, &name, &want, "`svshm rm --stale --dry-run`");
    assert!(
        !text.contains(&format!("segment id {} ", g.0)),
        "gc would remove the user's segment {} (data beyond a zero first page): {text}",
        g.0
    );
}
