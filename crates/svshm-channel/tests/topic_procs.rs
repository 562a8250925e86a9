//! Topics across processes: fan-out to four subscriber processes (bytes and
//! a zerocopy struct), a slow subscriber holding the publisher back, a
//! subscriber killed mid-stream (the others go on within 100 ms), a
//! publisher killed mid-stream (subscribers drain, then PeerDied), a lossy
//! publisher outrunning its subscriber (exact lag, no torn or repeated
//! message), another uid refused, and a hostile process scribbling on the
//! segment. Every segment is gone at the end of each test.

mod common;

use common::*;
use std::io::BufRead;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use svshm_channel::{Endpoint, Error, Options, Overflow, Publisher, SendTimeoutError, Subscriber};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const N: u64 = 3000;
const MAX: usize = 1000;

fn opts() -> Options {
    Options::new()
        .capacity(16 << 10)
        .max_message(MAX)
        .timeout(Some(Duration::from_secs(20)))
}

fn lossy() -> Options {
    Options::new()
        .capacity(4096)
        .max_message(200)
        .overflow(Overflow::Lossy)
        .timeout(Some(Duration::from_secs(20)))
}

#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
#[repr(C)]
struct Tick {
    n: u64,
    value: u64,
    check: u64,
}

fn tick(n: u64) -> Tick {
    let value = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Tick {
        n,
        value,
        check: !(n ^ value),
    }
}

fn env_name() -> String {
    std::env::var("NAME").unwrap_or_default()
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    let ep = Endpoint::name(env_name());
    match role.as_str() {
        // Receives messages 0..N in order, each intact, then the clean end.
        "sub" | "sub-slow" => {
            let mut s = Subscriber::connect(&ep, &opts()).unwrap();
            let mut next = 0u64;
            while let Some(m) = s.recv().unwrap() {
                assert_eq!(check_numbered(&m, MAX), next);
                next += 1;
                if role == "sub-slow" {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            assert_eq!(next, N);
            println!("GOT {next}");
        }
        "sub-typed" => {
            let mut s = Subscriber::<Tick>::connect_typed(&ep, &opts()).unwrap();
            let mut next = 0u64;
            while let Some(t) = s.recv().unwrap() {
                assert_eq!(t, tick(next));
                next += 1;
            }
            assert_eq!(next, N);
            println!("GOT {next}");
        }
        // Joins late with HISTORY: receives FIRST.. in order, to the end.
        "late" => {
            let history: usize = std::env::var("HISTORY").unwrap().parse().unwrap();
            let first: u64 = std::env::var("FIRST").unwrap().parse().unwrap();
            let mut s = Subscriber::connect(&ep, &opts().history(history)).unwrap();
            let mut next = first;
            while let Some(m) = s.recv().unwrap() {
                assert_eq!(check_numbered(&m, MAX), next);
                next += 1;
            }
            println!("GOT {}", next - first);
        }
        // Joins, then never reads (until killed).
        "stall" => {
            let _s = Subscriber::connect(&ep, &opts()).unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        // Publishes 500 messages once a subscriber is there, then hangs.
        "pub-hang" => {
            let mut p = Publisher::create(&ep, &opts().capacity(1 << 20)).unwrap();
            wait_subscribers(&p, 1);
            for n in 0..500 {
                p.send(&numbered(n, MAX)).unwrap();
            }
            println!("SENT");
            std::thread::sleep(Duration::from_secs(600));
        }
        // Floods a small lossy ring, then closes.
        "pub-lossy" => {
            let mut p = Publisher::create(&ep, &lossy()).unwrap();
            wait_subscribers(&p, 1);
            for n in 0..20_000 {
                p.send(&numbered(n, 200)).unwrap();
            }
            p.close().unwrap();
        }
        // Runs as uid 65534: tries to join root's topic.
        "nobody-sub" => {
            let o = Options::new()
                .owner(0)
                .timeout(Some(Duration::from_secs(2)));
            match Subscriber::connect(&ep, &o) {
                Ok(_) => println!("JOINED"),
                Err(e) => println!("REFUSED {e}"),
            }
        }
        // A hostile process: one word of the segment overwritten.
        "scribble" => {
            let id: i32 = std::env::var("ID").unwrap().parse().unwrap();
            let off: usize = std::env::var("OFFSET").unwrap().parse().unwrap();
            let val: u64 = std::env::var("VALUE").unwrap().parse().unwrap();
            let att = svshm::Segment::from_id(id).attach().unwrap();
            let p = att.range_ptr(off, 8).unwrap().cast::<u64>();
            // SAFETY: an 8-aligned word inside the attachment.
            unsafe { p.write_volatile(val) };
        }
        r => panic!("unknown role {r}"),
    }
}

fn wait_subscribers<T: ?Sized>(p: &Publisher<T>, n: usize) {
    let t0 = Instant::now();
    while p.subscribers() < n {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "subscribers never came"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn spawn_role(role: &str, name: &str) -> Child {
    spawn("child", role, &[("NAME", name.to_string())], Stdio::piped())
}

/// Waits for a child and checks it succeeded and printed `GOT {N}`.
fn expect_got(mut c: Child) {
    let status = wait_child(&mut c, Duration::from_secs(60));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut c.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "subscriber failed: {status}");
    assert!(out.contains(&format!("GOT {N}")), "{out}");
}

/// Reads a child's stdout until a line containing `what`.
fn read_until(c: &mut Child, what: &str) -> std::io::BufReader<std::process::ChildStdout> {
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains(what) {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
    }
    out
}

#[test]
fn fan_out_to_four_processes_in_order_bytes_and_typed() {
    for typed in [false, true] {
        let name = unique("topic-fanout");
        let role = if typed { "sub-typed" } else { "sub" };
        let kids: Vec<Child> = (0..4).map(|_| spawn_role(role, &name)).collect();
        let ep = Endpoint::name(&name);
        let id;
        if typed {
            let mut p = Publisher::<Tick>::create_typed(&ep, &opts()).unwrap();
            id = p.segment_id();
            wait_subscribers(&p, 4);
            for n in 0..N {
                p.send(&tick(n)).unwrap();
            }
            p.close().unwrap();
        } else {
            let mut p = Publisher::create(&ep, &opts()).unwrap();
            id = p.segment_id();
            wait_subscribers(&p, 4);
            for n in 0..N {
                p.send(&numbered(n, MAX)).unwrap();
            }
            assert_eq!(p.published(), N);
            p.close().unwrap();
        }
        kids.into_iter().for_each(expect_got);
        assert!(segment_gone(id), "segment {id} left behind");
    }
}

#[test]
fn a_slow_subscriber_holds_the_publisher_back_and_loses_nothing() {
    let name = unique("topic-slow");
    let kids = vec![spawn_role("sub-slow", &name), spawn_role("sub", &name)];
    let mut p = Publisher::create(&Endpoint::name(&name), &opts().capacity(4096)).unwrap();
    let id = p.segment_id();
    wait_subscribers(&p, 2);
    let mut max_lag = 0;
    for n in 0..N {
        p.send(&numbered(n, MAX)).unwrap();
        if n % 100 == 0 {
            max_lag = p
                .subscriber_list()
                .iter()
                .map(|s| s.lag)
                .fold(max_lag, u64::max);
        }
    }
    p.close().unwrap();
    kids.into_iter().for_each(expect_got);
    assert!(max_lag > 1, "the slow subscriber never lagged");
    assert!(segment_gone(id));
}

#[test]
fn a_killed_subscriber_stalls_nobody_for_more_than_100ms() {
    let name = unique("topic-kill-sub");
    let mut stall = spawn_role("stall", &name);
    let kids = vec![spawn_role("sub", &name), spawn_role("sub", &name)];
    let mut p = Publisher::create(&Endpoint::name(&name), &opts().capacity(4096)).unwrap();
    let id = p.segment_id();
    wait_subscribers(&p, 3);
    let _ = read_until(&mut stall, "READY");
    let mut n = 0;
    // Fill the ring up to the staller.
    let pending = loop {
        let m = numbered(n, MAX);
        match p.send_timeout(&m, Duration::from_millis(300)) {
            Ok(()) => n += 1,
            Err(SendTimeoutError::Timeout(_)) => break m,
            Err(e) => panic!("{e}"),
        }
    };
    assert!(n > 0 && p.subscribers() == 3);
    sigkill(&stall);
    let t0 = Instant::now();
    p.send(&pending).unwrap();
    let took = t0.elapsed();
    eprintln!("the publisher went on {took:?} after the kill");
    assert!(took < Duration::from_millis(100), "{took:?}");
    stall.wait().unwrap();
    assert_eq!(p.subscribers(), 2);
    for n in n + 1..N {
        p.send(&numbered(n, MAX)).unwrap();
    }
    p.close().unwrap();
    kids.into_iter().for_each(expect_got);
    assert!(segment_gone(id));
}

#[test]
fn a_killed_publisher_is_drained_then_peer_died() {
    let name = unique("topic-kill-pub");
    let mut c = spawn_role("pub-hang", &name);
    let mut s = Subscriber::connect(&Endpoint::name(&name), &opts()).unwrap();
    let id = s.segment_id();
    let _ = read_until(&mut c, "SENT");
    sigkill(&c);
    let t0 = Instant::now();
    let mut n = 0;
    let err = loop {
        match s.recv() {
            Ok(Some(m)) => {
                assert_eq!(check_numbered(&m, MAX), n);
                n += 1;
            }
            Ok(None) => panic!("a clean end from a killed publisher"),
            Err(e) => break e,
        }
    };
    assert!(err.is_peer_died(), "{err}");
    assert_eq!(n, 500, "every published message first");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    c.wait().unwrap();
    drop(s);
    assert!(segment_gone(id), "segment {id} left behind");
}

#[test]
fn a_lossy_subscriber_sees_exact_gaps_and_never_a_torn_message() {
    let name = unique("topic-lossy");
    let mut c = spawn_role("pub-lossy", &name);
    let mut s = Subscriber::connect(&Endpoint::name(&name), &lossy()).unwrap();
    let id = s.segment_id();
    let (mut next, mut missed, mut got, mut lags) = (0u64, 0u64, 0u64, 0u32);
    loop {
        match s.recv() {
            Ok(Some(m)) => {
                // Exactly the message due: never torn, repeated or skipped
                // without a Lagged that counted it.
                assert_eq!(check_numbered(&m, 200), next);
                next += 1;
                got += 1;
                if got % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
            Ok(None) => break,
            Err(Error::Lagged { missed: k }) => {
                assert!(k > 0);
                missed += k;
                next += k;
                lags += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got + missed, 20_000);
    eprintln!("received {got}, missed {missed} in {lags} lags");
    assert!(lags > 0, "the publisher never outran the subscriber");
    assert!(wait_child(&mut c, Duration::from_secs(30)).success());
    drop(s);
    assert!(segment_gone(id));
}

#[test]
fn a_subscriber_of_another_uid_is_refused() {
    if let Some(why) = svshm_testkit::nobody_unavailable_for_this_test() {
        eprintln!("skipped: {why}");
        return;
    }
    let name = unique("topic-uid");
    let p = Publisher::create(&Endpoint::name(&name), &opts()).unwrap();
    let mut cmd = svshm_testkit::this_test_as_nobody();
    cmd.args(child_args("child"))
        .env(ROLE, "nobody-sub")
        .env("NAME", &name)
        .stdout(Stdio::piped());
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("REFUSED"), "{text}");
    assert!(text.contains("refusing segment"), "{text}");
    assert_eq!(p.subscribers(), 0);
}

/// Runs the hostile child on segment `id`: the word at `off` becomes `val`.
fn scribble(id: i32, off: usize, val: u64) {
    let mut c = spawn(
        "child",
        "scribble",
        &[
            ("ID", id.to_string()),
            ("OFFSET", off.to_string()),
            ("VALUE", val.to_string()),
        ],
        Stdio::null(),
    );
    assert!(wait_child(&mut c, Duration::from_secs(20)).success());
}

#[test]
fn a_hostile_process_gets_corrupt_never_a_hang() {
    let name = unique("topic-hostile");
    let ep = Endpoint::name(&name);
    let quick = opts().timeout(Some(Duration::from_millis(500)));
    let mut p = Publisher::create(&ep, &opts()).unwrap();
    let id = p.segment_id();
    let mut s = Subscriber::connect(&ep, &quick).unwrap();
    p.send(b"one").unwrap();
    // A frame's length word (the ring starts at 4096).
    scribble(id, 4096 + 8, 0xdead_beef);
    let err = s.recv_timeout(Duration::from_secs(2)).err().unwrap();
    assert!(err.to_string().contains("corrupt"), "{err}");
    // The subscriber's cursor in its slot (slot 0 at 1152, cursor at +16).
    scribble(id, 1152 + 16, 1 << 50);
    let err = (0..100)
        .find_map(|_| p.send(&[1u8; 900]).err())
        .expect("a corrupt cursor was obeyed");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    drop(s);
    // The number of subscriber slots and the layout version, as a joiner
    // reads them.
    scribble(id, 384, u64::from(99u32) << 32 | 1);
    let err = Subscriber::connect(&ep, &quick).err().unwrap();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    scribble(id, 384, 7);
    let err = Subscriber::connect(&ep, &quick).err().unwrap();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    drop(p);
    assert!(segment_gone(id));
}

#[test]
fn late_joiner_processes_start_at_the_newest_or_with_history() {
    let name = unique("topic-late");
    let mut p = Publisher::create(&Endpoint::name(&name), &opts()).unwrap();
    let id = p.segment_id();
    for n in 0..10 {
        p.send(&numbered(n, MAX)).unwrap();
    }
    let late = |history: usize, first: u64| {
        spawn(
            "child",
            "late",
            &[
                ("NAME", name.clone()),
                ("HISTORY", history.to_string()),
                ("FIRST", first.to_string()),
            ],
            Stdio::piped(),
        )
    };
    let kids = [late(0, 10), late(3, 7), late(100, 0)];
    wait_subscribers(&p, 3);
    for n in 10..20 {
        p.send(&numbered(n, MAX)).unwrap();
    }
    p.close().unwrap();
    for (mut c, got) in kids.into_iter().zip([10, 13, 20]) {
        let status = wait_child(&mut c, Duration::from_secs(60));
        let mut out = String::new();
        std::io::Read::read_to_string(&mut c.stdout.take().unwrap(), &mut out).unwrap();
        assert!(
            status.success() && out.contains(&format!("GOT {got}")),
            "{status}: {out}"
        );
    }
    assert!(segment_gone(id));
}
