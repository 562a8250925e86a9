//! Peer death: a writer or reader killed with SIGKILL mid-transfer. The
//! survivor gets PeerDied (not EOF), every committed byte and no partial
//! message, and no segment is left once the survivor is gone.

mod common;

use common::*;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Error, Options, Receiver, Sender, StreamReader, StreamWriter};

fn opts() -> Options {
    Options::new()
        .capacity(1 << 16)
        .timeout(Some(Duration::from_secs(60)))
        .max_message(4000)
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    let name = std::env::var("NAME").unwrap();
    match role.as_str() {
        // Writes the pattern forever (until killed).
        "writer" => {
            let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts()).unwrap();
            let mut at = 0u64;
            let mut buf = vec![0u8; 777];
            loop {
                fill_pattern(at, &mut buf);
                w.write_all(&buf).unwrap();
                at += buf.len() as u64;
            }
        }
        "sender" => {
            let mut tx = Sender::connect(&Endpoint::name(&name), &opts()).unwrap();
            for n in 0.. {
                tx.send(&message(n, 4000)).unwrap();
            }
        }
        // Reads a little, then sleeps (holding the channel) until killed.
        "reader" => {
            let mut r = StreamReader::connect(&Endpoint::name(&name), &opts()).unwrap();
            let mut buf = [0u8; 1000];
            r.read_exact(&mut buf).unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        // Writes a little, forks a child that outlives it (and must not
        // inherit the channel), reports the child's pid, then waits to be killed.
        "forking-writer" => {
            let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts()).unwrap();
            let mut buf = vec![0u8; 1000];
            fill_pattern(0, &mut buf);
            w.write_all(&buf).unwrap();
            w.flush().unwrap();
            // SAFETY: the forked child calls only async-signal-safe functions
            // (sleep, _exit) and never returns into Rust code.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: async-signal-safe calls only; _exit skips destructors.
                unsafe {
                    libc::sleep(60);
                    libc::_exit(0);
                }
            }
            assert!(pid > 0, "fork failed");
            println!("FORKED {pid}");
            std::thread::sleep(Duration::from_secs(600));
        }
        "connect-then-hang" => {
            // Creates the channel and waits for a peer that never comes.
            let _ = StreamWriter::connect(
                &Endpoint::name(&name),
                &Options::new().timeout(Some(Duration::from_secs(600))),
            );
        }
        r => panic!("unknown role {r}"),
    }
}

#[test]
fn killed_writer_gives_peer_died_after_every_committed_byte() {
    let name = unique("kill-writer");
    let mut c = spawn("child", "writer", &[("NAME", name.clone())], Stdio::null());
    let mut r = StreamReader::connect(&Endpoint::name(&name), &opts()).unwrap();
    let id = r.segment_id();
    let mut at = 0u64;
    let mut buf = vec![0u8; 5000];
    let mut killed_at = None;
    let err = loop {
        match r.read(&mut buf) {
            Ok(0) => panic!("EOF from a killed writer: must be PeerDied"),
            Ok(n) => {
                assert_eq!(check_pattern(at, &buf[..n]), None);
                at += n as u64;
                if at > (8 << 20) && killed_at.is_none() {
                    sigkill(&c);
                    killed_at = Some(at);
                }
            }
            Err(e) => break e,
        }
    };
    let inner = err.into_inner().unwrap().downcast::<Error>().unwrap();
    assert!(inner.is_peer_died(), "{inner}");
    assert!(at >= killed_at.unwrap());
    // The writer's committed bytes were all delivered: what it had published is
    // at least what we had seen at kill time, and everything after checked out.
    c.wait().unwrap();
    drop(r);
    assert!(segment_gone(id), "segment {id} left behind");
}

#[test]
fn killed_sender_gives_whole_messages_then_peer_died() {
    let name = unique("kill-sender");
    let mut c = spawn("child", "sender", &[("NAME", name.clone())], Stdio::null());
    let mut rx = Receiver::connect(&Endpoint::name(&name), &opts()).unwrap();
    let id = rx.segment_id();
    let mut n = 0u64;
    let err = loop {
        match rx.recv() {
            Ok(m) => {
                assert_eq!(m, Some(message(n, 4000)), "message {n} damaged");
                n += 1;
                if n == 20_000 {
                    sigkill(&c);
                }
            }
            Err(e) => break e,
        }
    };
    assert!(err.is_peer_died(), "{err}");
    assert!(n >= 20_000);
    c.wait().unwrap();
    drop(rx);
    assert!(segment_gone(id));
}

#[test]
fn killed_reader_gives_writer_peer_died_quickly() {
    let name = unique("kill-reader");
    let mut c = spawn("child", "reader", &[("NAME", name.clone())], Stdio::piped());
    let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts()).unwrap();
    let id = w.segment_id();
    let mut line = String::new();
    let mut buf = vec![0u8; 1000];
    fill_pattern(0, &mut buf);
    w.write_all(&buf).unwrap();
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    while !line.contains("READY") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "child ended early"
        );
    }
    sigkill(&c);
    c.wait().unwrap();
    // Fill the ring; the next blocking write notices the dead reader.
    let t0 = Instant::now();
    let chunk = vec![7u8; 4096];
    let err = loop {
        if let Err(e) = w.write_all(&chunk) {
            break e;
        }
    };
    let inner = err.into_inner().unwrap().downcast::<Error>().unwrap();
    assert!(inner.is_peer_died(), "{inner}");
    eprintln!("writer noticed the dead reader after {:?}", t0.elapsed());
    drop(w);
    assert!(segment_gone(id));
}

/// A writer that forked before dying: the fork must not inherit the ring's
/// mapping, or its attach would keep the kernel's count at two and hide the
/// writer's death (and a forked copy could even write into the ring).
#[test]
fn a_forked_child_does_not_keep_a_dead_writer_alive() {
    let name = unique("fork-writer");
    let mut c = spawn(
        "child",
        "forking-writer",
        &[("NAME", name.clone())],
        Stdio::piped(),
    );
    let ropts = opts().timeout(Some(Duration::from_secs(10)));
    let mut r = StreamReader::connect(&Endpoint::name(&name), &ropts).unwrap();
    let id = r.segment_id();
    let mut buf = vec![0u8; 1000];
    r.read_exact(&mut buf).unwrap();
    assert_eq!(check_pattern(0, &buf), None);
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    let grandchild: i32 = loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "child ended before forking"
        );
        if let Some(p) = line.trim().strip_prefix("FORKED ") {
            break p.parse().unwrap();
        }
    };
    // Reap-or-kill the grandchild however this test ends.
    struct KillOnDrop(i32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // The grandchild we were told about, re-parented to init, so no
            // reaping is ours to do.
            let _ = sigkill_pid(self.0);
        }
    }
    let _gc = KillOnDrop(grandchild);
    assert_eq!(
        svshm::Segment::from_id(id).stat().unwrap().attach_count,
        2,
        "the forked child inherited the channel's attachment"
    );
    sigkill(&c);
    c.wait().unwrap();
    let t0 = Instant::now();
    let err = r.read(&mut buf).expect_err("read after the writer died");
    let inner = err.into_inner().unwrap().downcast::<Error>().unwrap();
    assert!(inner.is_peer_died(), "{inner}");
    eprintln!("reader noticed the dead writer after {:?}", t0.elapsed());
    drop(r);
    assert!(segment_gone(id));
}

#[test]
fn crashed_creator_leaves_a_stale_channel_that_is_reclaimed() {
    let name = unique("stale");
    let key = svshm_channel::channel_key(&name);
    let mut c = spawn(
        "child",
        "connect-then-hang",
        &[("NAME", name.clone())],
        Stdio::null(),
    );
    // Wait for the child's segment to appear, then kill the child.
    let t0 = Instant::now();
    let info = loop {
        if let Some(i) = svshm::proc_segments()
            .unwrap()
            .into_iter()
            .find(|s| s.key == key)
        {
            if svshm_channel::inspect(i.id)
                .unwrap()
                .is_some_and(|s| s.ready)
            {
                break i;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "child never created the channel"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    sigkill(&c);
    c.wait().unwrap();
    let _guard = svshm::Segment::from_id(info.id).remove_on_drop();
    let now = svshm::Segment::from_id(info.id).stat().unwrap();
    assert_eq!(now.attach_count, 0);
    assert!(svshm_channel::judge_record(&now).is_abandoned());
    let status = svshm_channel::inspect(info.id).unwrap().unwrap();
    assert_eq!(status.state(), "broken");
    let listed = svshm_channel::reclaim_all(true).unwrap();
    assert!(listed.iter().any(|s| s.id == info.id));
    assert!(!segment_gone(info.id), "dry run removed it");
    // A new writer under the same name reclaims it.
    let n2 = name.clone();
    let reader = std::thread::spawn(move || {
        let mut r = StreamReader::connect(&Endpoint::name(n2), &opts()).unwrap();
        let mut s = Vec::new();
        r.read_to_end(&mut s).unwrap();
        s
    });
    let mut w = StreamWriter::connect(&Endpoint::name(&name), &opts()).unwrap();
    assert_ne!(w.segment_id(), info.id);
    w.write_all(b"fresh").unwrap();
    w.close().unwrap();
    assert_eq!(reader.join().unwrap(), b"fresh");
    assert!(segment_gone(info.id));
}
