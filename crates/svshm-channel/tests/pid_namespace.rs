//! Regression tests from review: peer identity is the pid the peer wrote about itself (its own pid
//! namespace), checked against our /proc. Two processes that share an IPC
//! namespace but not a pid namespace (containers with a shared IPC namespace)
//! get false deaths, or never notice a real one.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use svshm_channel::{Endpoint, Error, Options, Receiver, RecvTimeoutError, Sender};

fn opts() -> Options {
    Options::new().timeout(Some(Duration::from_secs(3)))
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    let name = std::env::var("NAME").unwrap();
    match role.as_str() {
        "sender-slow" => {
            let mut tx = Sender::connect(&Endpoint::name(&name), &opts()).unwrap();
            for m in [&b"one"[..], b"two", b"three"] {
                tx.send(m).unwrap();
                std::thread::sleep(Duration::from_millis(200));
            }
            tx.close().unwrap();
        }
        "sender-then-hang" => {
            // Host /proc is still mounted: /proc/self names our host pid.
            let host_pid = std::fs::read_link("/proc/self").unwrap();
            println!("HOSTPID {}", host_pid.display());
            let mut tx = Sender::connect(&Endpoint::name(&name), &opts()).unwrap();
            tx.send(b"hello").unwrap();
            println!("SENT");
            std::thread::sleep(Duration::from_secs(60));
        }
        r => panic!("unknown role {r}"),
    }
}

fn unshare_child(role: &str, name: &str, mount_proc: bool) -> Option<std::process::Child> {
    if svshm::euid() != 0
        || !Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .status()
            .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: needs root and unshare --pid");
        return None;
    }
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "--kill-child"]);
    if mount_proc {
        c.arg("--mount-proc");
    }
    c.arg(std::env::current_exe().unwrap())
        .args(child_args("child"))
        .env(ROLE, role)
        .env("NAME", name)
        .stdout(Stdio::piped());
    Some(c.spawn().unwrap())
}

/// Peer in its own pid namespace with its own /proc: it records pid 1; we
/// look up our pid 1 (another process, other start time) and call it dead —
/// and the joiner, looking up our pid in its /proc, calls *us* dead and
/// removes our live segment (rendezvous.rs:638-642).
#[test]
fn live_peer_in_another_pid_namespace_is_not_dead() {
    let name = unique("rv-pidns-live");
    let n2 = name.clone();
    let Some(mut c) = unshare_child("sender-slow", &name, true) else {
        return;
    };
    let rx = Receiver::connect(&Endpoint::name(&n2), &opts());
    let got = rx.map(|mut rx| {
        let mut got = Vec::new();
        let end = loop {
            match rx.recv() {
                Ok(Some(m)) => got.push(String::from_utf8(m).unwrap()),
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        (got, end)
    });
    let status = wait_child(&mut c, Duration::from_secs(30));
    match got {
        Ok((got, None)) if got == ["one", "two", "three"] => {}
        other => panic!("expected three messages then the end; got {other:?}; child {status}"),
    }
}

/// Peer in its own pid namespace seeing the host /proc: it records pid 1 with
/// the start time of the host's pid 1, which never dies. Kill it: we never get
/// PeerDied (recv() would hang forever).
#[test]
fn killed_peer_in_another_pid_namespace_is_noticed() {
    let name = unique("rv-pidns-dead");
    let Some(mut c) = unshare_child("sender-then-hang", &name, false) else {
        return;
    };
    let mut rx = Receiver::connect(&Endpoint::name(&name), &opts()).unwrap();
    let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
    let host_pid: i32 = lines
        .by_ref()
        .find_map(|l| {
            l.unwrap()
                .strip_prefix("HOSTPID ")
                .map(|p| p.parse().unwrap())
        })
        .unwrap();
    assert_eq!(rx.recv().unwrap().unwrap(), b"hello");
    // The namespace's init, a process we started (via unshare).
    sigkill_pid(host_pid).unwrap();
    let status = wait_child(&mut c, Duration::from_secs(30));
    eprintln!(
        "peer killed: {status}; peer pid as recorded: {}",
        rx.peer_pid()
    );
    let r = rx.recv_timeout(Duration::from_secs(2));
    assert!(
        matches!(r, Err(RecvTimeoutError::Failed(Error::PeerDied { .. }))),
        "sender was SIGKILLed; recv_timeout(2s) gives {r:?}"
    );
}
