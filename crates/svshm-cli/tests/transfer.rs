//! `svshm write` | `svshm read`: byte-exact transfers (empty, small, generated,
//! multi-GiB sparse), either side first, every way of naming a channel, a
//! killed peer, `--progress`, stale cleanup with `gc`, and `demo`.

mod common;

use common::*;
use predicates::prelude::*;
use std::io::{Read, Write};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

/// Deterministic pseudo-random bytes.
fn generated(len: usize, start: u64) -> Vec<u8> {
    let mut x = start | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn temp_file(tag: &str, data: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(unique_name(tag));
    std::fs::write(&p, data).unwrap();
    p
}

/// Sends `data` from a writer fed on stdin to a reader; `reader_first` picks
/// which starts first. Returns what the reader printed.
fn transfer(data: &[u8], reader_first: bool, extra: &[&str]) -> Vec<u8> {
    let name = unique_name("xfer");
    let _g = NameGuard(name.clone());
    let mut rargs = vec!["read", name.as_str(), "--wait", "60"];
    rargs.extend_from_slice(extra);
    let mut wargs = vec!["write", name.as_str(), "--wait", "60"];
    wargs.extend_from_slice(extra);
    let start_reader = || {
        let mut r = spawn(&rargs, Stdio::null());
        let io = collect(&mut r);
        (r, io)
    };
    let mut reader = None;
    if reader_first {
        reader = Some(start_reader());
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut w = spawn(&wargs, Stdio::piped());
    let mut stdin = w.0.stdin.take().unwrap();
    let payload = data.to_vec();
    let feeder = std::thread::spawn(move || {
        stdin.write_all(&payload).unwrap();
    });
    let wio = collect(&mut w);
    if !reader_first {
        std::thread::sleep(Duration::from_millis(200));
        reader = Some(start_reader());
    }
    let (r, rio) = reader.unwrap();
    feeder.join().unwrap();
    let wd = finish(w, wio);
    let rd = finish(r, rio);
    assert_eq!(wd.code, Some(0), "writer failed: {}", wd.stderr);
    assert_eq!(rd.code, Some(0), "reader failed: {}", rd.stderr);
    assert_eq!(wd.stderr, "");
    assert_eq!(rd.stderr, "");
    rd.stdout
}

#[test]
fn empty_small_and_generated_inputs_arrive_byte_exact() {
    for data in [
        Vec::new(),
        b"hello, reader\n".to_vec(),
        generated(3 << 20, 7),
    ] {
        for reader_first in [true, false] {
            let got = transfer(&data, reader_first, &[]);
            assert!(
                got == data,
                "{} bytes, reader_first {reader_first}: got {} bytes",
                data.len(),
                got.len()
            );
        }
    }
}

#[test]
fn small_rings_wrap_many_times() {
    let data = generated(5 << 20, 11);
    assert!(transfer(&data, true, &["--ring", "4K"]) == data);
    assert!(transfer(&data, false, &["--ring", "64K"]) == data);
}

#[test]
fn either_side_first_by_key_path_and_file_argument() {
    let data = generated(1 << 20, 3);
    let file = temp_file("xfer-in", &data);
    let key = unique_key("xfer-key").to_string();
    let anchor = temp_file("xfer-ftok", b"anchor");
    let anchor_s = anchor.to_str().unwrap().to_string();
    let by_key: [&str; 2] = ["-k", &key];
    let by_path: [&str; 4] = ["--path", &anchor_s, "--proj", "9"];
    for (ep, writer_first) in [
        (&by_key[..], true),
        (&by_key[..], false),
        (&by_path[..], true),
        (&by_path[..], false),
    ] {
        let mut wargs = vec!["write"];
        wargs.extend_from_slice(ep);
        wargs.extend_from_slice(&["--wait", "60", file.to_str().unwrap()]);
        let mut rargs = vec!["read"];
        rargs.extend_from_slice(ep);
        rargs.extend_from_slice(&["--wait", "60"]);
        let (first, second) = if writer_first {
            (&wargs, &rargs)
        } else {
            (&rargs, &wargs)
        };
        let mut a = spawn(first, Stdio::null());
        let aio = collect(&mut a);
        std::thread::sleep(Duration::from_millis(200));
        let mut b = spawn(second, Stdio::null());
        let bio = collect(&mut b);
        let (ad, bd) = (finish(a, aio), finish(b, bio));
        let (wd, rd) = if writer_first { (ad, bd) } else { (bd, ad) };
        assert_eq!(
            (wd.code, rd.code),
            (Some(0), Some(0)),
            "{ep:?}: {} / {}",
            wd.stderr,
            rd.stderr
        );
        assert!(
            rd.stdout == data,
            "{ep:?} writer_first {writer_first}: {} bytes",
            rd.stdout.len()
        );
    }
    let key_v: svshm::Key = key.parse().unwrap();
    assert!(
        svshm::info::public_info_by_key(key_v).is_none(),
        "a segment was left under {key}"
    );
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(anchor);
}

#[test]
fn multi_gib_sparse_input_arrives_intact() {
    // 2 GiB + 4097 bytes: data at both ends, a hole of zeros between.
    const LEN: u64 = (2 << 30) + 4097;
    let path = std::env::temp_dir().join(unique_name("sparse"));
    let head = generated(100_000, 5);
    let tail = generated(77_777, 6);
    {
        let mut f = std::fs::File::create(&path).unwrap();
        f.set_len(LEN).unwrap();
        f.write_all(&head).unwrap();
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(LEN - tail.len() as u64))
            .unwrap();
        f.write_all(&tail).unwrap();
    }
    // Expected CRC without reading 2 GiB: combine the CRC of the zero hole.
    let mut want = crc32fast::Hasher::new();
    want.update(&head);
    let hole = LEN - head.len() as u64 - tail.len() as u64;
    let mib = vec![0u8; 1 << 20];
    let mut zeros_mib = crc32fast::Hasher::new();
    zeros_mib.update(&mib);
    let mut rest = crc32fast::Hasher::new();
    rest.update(&mib[..(hole % (1 << 20)) as usize]);
    for _ in 0..hole / (1 << 20) {
        want.combine(&zeros_mib);
    }
    want.combine(&rest);
    let mut t = crc32fast::Hasher::new();
    t.update(&tail);
    want.combine(&t);
    let want = format!("{LEN} {:08x}\n", want.finalize());

    let name = unique_name("sparse");
    let _g = NameGuard(name.clone());
    let (wd, rd) = reader_then_writer(
        &["read", &name, "--checksum", "--wait", "60", "--ring", "4M"],
        &[
            "write",
            &name,
            path.to_str().unwrap(),
            "--wait",
            "60",
            "--ring",
            "4M",
        ],
    );
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        (wd.code, rd.code),
        (Some(0), Some(0)),
        "{} / {}",
        wd.stderr,
        rd.stderr
    );
    assert_eq!(String::from_utf8_lossy(&rd.stdout), want);
}

#[test]
fn a_killed_writer_makes_read_exit_1_saying_what_came() {
    let name = unique_name("kill-writer");
    let _g = NameGuard(name.clone());
    let mut r = spawn(&["read", &name, "--wait", "60"], Stdio::null());
    let mut w = spawn(&["write", &name, "--wait", "60"], Stdio::piped());
    let mut stdin = w.0.stdin.take().unwrap();
    stdin.write_all(&[b'x'; 1000]).unwrap();
    stdin.flush().unwrap();
    // Wait until the reader has passed the 1000 bytes on.
    let mut so = r.0.stdout.take().unwrap();
    let mut got = vec![0u8; 1000];
    so.read_exact(&mut got).unwrap();
    w.0.kill().unwrap();
    w.0.wait().unwrap();
    let mut rest = Vec::new();
    so.read_to_end(&mut rest).unwrap();
    let mut err = String::new();
    r.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = r.0.wait().unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(rest.is_empty());
    assert!(err.contains("died") && err.contains("1000 bytes"), "{err}");
    assert!(err.contains(&format!("channel \"{name}\"")), "{err}");
    assert!(
        svshm::info::public_info_by_key(svshm_channel::channel_key(&name)).is_none(),
        "segment left behind"
    );
}

#[test]
fn a_killed_reader_makes_write_exit_1() {
    let name = unique_name("kill-reader");
    let _g = NameGuard(name.clone());
    let mut r = spawn(&["read", &name, "--wait", "60"], Stdio::null());
    let mut w = spawn(
        &["write", &name, "--wait", "60", "--ring", "64K"],
        Stdio::piped(),
    );
    let mut stdin = w.0.stdin.take().unwrap();
    stdin.write_all(&[b'y'; 100]).unwrap();
    let mut so = r.0.stdout.take().unwrap();
    let mut got = [0u8; 100];
    so.read_exact(&mut got).unwrap();
    r.0.kill().unwrap();
    r.0.wait().unwrap();
    // Fill the ring so that the writer must wait, and notice.
    let feeder = std::thread::spawn(move || {
        let chunk = vec![b'z'; 64 << 10];
        for _ in 0..64 {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let wio = collect(&mut w);
    let wd = finish(w, wio);
    feeder.join().unwrap();
    assert_eq!(wd.code, Some(1), "{}", wd.stderr);
    assert!(
        wd.stderr.contains("reader") && wd.stderr.contains("bytes had been written"),
        "{}",
        wd.stderr
    );
}

#[test]
fn progress_reports_on_stderr() {
    let name = unique_name("progress");
    let _g = NameGuard(name.clone());
    let data = generated(2 << 20, 9);
    let file = temp_file("progress", &data);
    let (wd, rd) = reader_then_writer(
        &["read", &name, "--wait", "60", "--progress"],
        &[
            "write",
            &name,
            file.to_str().unwrap(),
            "--wait",
            "60",
            "--progress",
        ],
    );
    let _ = std::fs::remove_file(file);
    assert_eq!((wd.code, rd.code), (Some(0), Some(0)));
    assert!(rd.stdout == data);
    assert!(
        wd.stderr.contains("sent 2 MiB (2097152 bytes) in"),
        "{}",
        wd.stderr
    );
    assert!(
        rd.stderr.contains("received 2 MiB (2097152 bytes) in"),
        "{}",
        rd.stderr
    );
}

#[test]
fn transfer_errors_say_what_to_do() {
    svshm()
        .arg("read")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no channel given"));
    let name = unique_name("nobody");
    let _g = NameGuard(name.clone());
    svshm()
        .args(["read", &name, "--wait", "0.2"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("timed out").and(predicate::str::contains(&name)));
    assert!(
        svshm::info::public_info_by_key(svshm_channel::channel_key(&name)).is_none(),
        "a timed-out read left its segment"
    );
    svshm()
        .args(["write", &name, "/nonexistent/svshm-input"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/nonexistent/svshm-input"));
    svshm()
        .args(["write", "-k", "0x1234", "a", "b"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("only argument is the FILE"));
    svshm()
        .args(["read", &name, "-k", "0x1234"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("one way only"));
    svshm()
        .args(["write", &name, "--ring", "lots"])
        .assert()
        .code(2);
    svshm()
        .args(["write", &name, "-m", "1777"])
        .assert()
        .code(2);
    // --id of a segment that is not a channel.
    let g = private(8192);
    svshm()
        .args(["read", "--id", &g.0.to_string(), "--wait", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("segment {}", g.0)));
}

#[test]
fn gc_removes_only_stale_channel_segments() {
    // `gc` removes stale segments system-wide, so it runs in a new IPC namespace
    // where only this test's segments exist. There: a writer killed before any
    // reader came leaves its channel segment (nobody attached, creator dead, an
    // svshm header inside); a plain segment whose creator (`svshm create`)
    // exited and a live channel waiting for its reader must stay.
    let probe = StdCommand::new("unshare").args(["--ipc", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot create an IPC namespace (unshare --ipc needs root)");
        return;
    }
    let script = format!(
        r#"set -e
S={bin}
appear() {{ n=0; until $S ls --peek -o CHANNEL,STATE --noheadings | grep -q "^$1 *$2"; do n=$((n+1)); [ $n -lt 600 ]; sleep 0.05; done; }}
$S write stale --wait 60 --ring 4K </dev/null & W=$!
appear stale waiting
kill -9 $W; wait $W || true
P=$($S create -p -s 8192)
$S write live --wait 60 </dev/null & L=$!
appear live waiting
echo "stale: $($S ls --peek -o ID,CHANNEL,STATE,WRITER --noheadings | grep stale)"
echo "plain: $P"
$S rm --stale --dry-run
$S gc -v
$S gc -v
echo "left:"
$S ls --peek -o ID,CHANNEL --noheadings
kill $L; wait $L || true
"#,
        bin = svshm_path().display()
    );
    let out = StdCommand::new("unshare")
        .args(["--ipc", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_string()
    };
    let stale = field("stale: ");
    let stale_id = stale.split_whitespace().next().unwrap().to_string();
    assert!(
        stale.contains("broken") && stale.contains("(dead)"),
        "{text}"
    );
    let plain_id = field("plain: ");
    assert!(
        text.contains(&format!("would remove segment id {stale_id} ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("removed segment id {stale_id} ")),
        "{text}"
    );
    assert_eq!(text.matches("would remove").count(), 1, "{text}");
    assert_eq!(text.matches("removed segment").count(), 1, "{text}");
    assert!(
        text.contains("nothing to remove"),
        "a second gc finds nothing: {text}"
    );
    let left = text.split("left:\n").nth(1).unwrap();
    assert!(!left.contains("stale"), "{text}");
    assert!(
        left.lines().any(|l| l.trim() == plain_id),
        "gc removed a segment that is no channel: {text}"
    );
    assert!(left.contains("live"), "gc removed a live channel: {text}");
}

#[test]
fn demo_streams_verifies_and_leaves_nothing() {
    let out = svshm()
        .args(["demo", "--bytes", "8M", "--ring", "256K"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("shared memory") && text.contains("pipe"),
        "{text}"
    );
    assert_eq!(text.matches(" ok\n").count(), 2, "{text}");
    assert!(text.contains("no segment left"), "{text}");
    assert!(text.contains("as fast as the pipe"), "{text}");
}

/// Ctrl-C (SIGINT) or SIGTERM while `write` waits for a reader: the process
/// exits 128+signal and the segment it created does not outlive it.
#[test]
fn signal_while_waiting_for_the_peer_leaves_no_segment() {
    for (sig, code) in [(libc_sig::SIGINT, 130), (libc_sig::SIGTERM, 143)] {
        let name = unique_name("sigwait");
        let key = svshm_channel::channel_key(&name);
        let mut child = StdCommand::new(svshm_path())
            .args(["write", &name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        let id = loop {
            if let Some(s) = svshm::proc_segments()
                .unwrap()
                .into_iter()
                .find(|s| s.key == key)
            {
                break s.id;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "write never created its channel"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        // The handler thread may not be installed before the segment exists:
        // give it a moment.
        std::thread::sleep(Duration::from_millis(100));
        let _guard = svshm::Segment::from_id(id).remove_on_drop();
        let status = StdCommand::new("kill")
            .args([format!("-{sig}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let st = child.wait().unwrap();
        assert_eq!(st.code(), Some(code), "exit status after signal {sig}");
        assert!(!exists(id), "segment {id} outlived the signalled writer");
    }
}

/// Signal numbers for `kill -N` (no libc dependency in this crate's tests).
mod libc_sig {
    pub const SIGINT: i32 = 2;
    pub const SIGTERM: i32 = 15;
}

#[test]
fn channel_usage_errors_exit_2() {
    // Arguments that name no channel, or name it twice, are usage errors
    // (exit 2), like every other bad combination of arguments.
    svshm().arg("write").assert().code(2);
    svshm().args(["read", ""]).assert().code(2);
    svshm()
        .args(["write", "--path", "/etc/hostname", "x", "y"])
        .assert()
        .code(2);
    // A --wait that is not a number says what to give.
    svshm()
        .args(["read", "x", "--wait", "soon"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("seconds"));
    svshm()
        .args(["attach", "1", "--hold", "long"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("seconds"));
}

#[test]
fn an_input_error_in_write_is_not_a_clean_end_for_read() {
    // Reading /proc/self/mem at offset 0 fails with EIO after the channel is
    // connected: the reader must not take that for the end of the data.
    let name = unique_name("input-error");
    let _g = NameGuard(name.clone());
    let (w, r) = reader_then_writer(
        &["read", &name, "--wait", "60"],
        &["write", &name, "/proc/self/mem", "--wait", "60"],
    );
    assert_eq!(w.code, Some(1), "{}", w.stderr);
    assert!(w.stderr.contains("/proc/self/mem"), "{}", w.stderr);
    assert_eq!(
        r.code,
        Some(1),
        "the reader exited {:?} with {} bytes as if the stream were complete; stderr {:?}",
        r.code,
        r.stdout.len(),
        r.stderr
    );
    assert!(r.stderr.contains("incomplete"), "{}", r.stderr);
    assert!(
        svshm::info::public_info_by_key(svshm_channel::channel_key(&name)).is_none(),
        "segment left behind"
    );
}

#[test]
fn write_of_a_directory_fails_before_waiting_for_a_reader() {
    let name = unique_name("dir-input");
    let _g = NameGuard(name.clone());
    let dir = std::env::temp_dir();
    svshm()
        .args(["write", &name, dir.to_str().unwrap(), "--wait", "0.3"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(dir.to_str().unwrap())
                .and(predicate::str::contains("directory"))
                .and(predicate::str::contains("timed out").not()),
        );
}
