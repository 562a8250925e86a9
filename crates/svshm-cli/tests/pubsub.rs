//! `svshm pub` and `svshm sub` across processes: fan-out in order, framed
//! binary data, waiting for subscribers, a publisher's death, and a lossy
//! subscriber that falls behind.

mod common;

use common::kids::{Cleanup, named_segments, start, start_lines};
use common::unique_name;
use std::io::Write;

/// Lines `1` … `n`, each ended by a newline.
fn numbered(n: u32) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

#[test]
fn three_subscribers_each_get_every_line_in_order_then_exit_0() {
    let name = unique_name("fanout");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    let subs: Vec<_> = (0..3)
        .map(|_| start(&["sub", &name, "--timeout", "10"], false))
        .collect();
    let mut publisher = start(&["pub", &name, "--wait-for", "3", "--timeout", "10"], true);
    let input = numbered(2000);
    publisher
        .stdin
        .as_mut()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let p = publisher.wait(10);
    assert_eq!(p.code, Some(0), "pub: {}", p.stderr);
    for s in subs {
        let s = s.wait(10);
        assert_eq!(s.code, Some(0), "sub: {}", s.stderr);
        assert_eq!(s.text(), input, "every line once, in order");
    }
    assert!(named_segments(&name).is_empty(), "the topic is gone");
}

#[test]
fn framed_binary_messages_round_trip() {
    let name = unique_name("framed");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    let messages: Vec<Vec<u8>> = vec![
        b"plain".to_vec(),
        Vec::new(),
        b"two\nlines\n".to_vec(),
        vec![0, 0, 10, 0, 255, 13, 10],
        (0..=255u8).cycle().take(5000).collect(),
    ];
    let mut framed = Vec::new();
    for m in &messages {
        framed.extend_from_slice(&(m.len() as u32).to_le_bytes());
        framed.extend_from_slice(m);
    }
    let sub = start(&["sub", &name, "--framed", "--timeout", "10"], false);
    let mut publisher = start(
        &[
            "pub",
            &name,
            "--framed",
            "--wait-for",
            "1",
            "--timeout",
            "10",
        ],
        true,
    );
    publisher
        .stdin
        .as_mut()
        .unwrap()
        .write_all(&framed)
        .unwrap();
    let p = publisher.wait(10);
    assert_eq!(p.code, Some(0), "pub: {}", p.stderr);
    let s = sub.wait(10);
    assert_eq!(s.code, Some(0), "sub: {}", s.stderr);
    assert_eq!(s.stdout, framed, "the same frames, byte for byte");
}

#[test]
fn wait_for_holds_messages_until_subscribers_joined_and_gives_up_at_timeout() {
    let name = unique_name("waitfor");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    // Started first, the publisher would lose "early" to nobody without --wait-for.
    let mut publisher = start(&["pub", &name, "--wait-for", "2", "--timeout", "10"], true);
    publisher
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"early\n")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let a = start(&["sub", &name, "--timeout", "10"], false);
    let b = start(&["sub", &name, "--timeout", "10", "--count", "1"], false);
    let p = publisher.wait(10);
    assert_eq!(p.code, Some(0), "pub: {}", p.stderr);
    assert_eq!(a.wait(10).text(), "early\n");
    assert_eq!(b.wait(10).text(), "early\n");

    let lonely = start(&["pub", &name, "--wait-for", "1", "--timeout", "0.3"], true).wait(10);
    assert_eq!(lonely.code, Some(1));
    assert!(
        lonely.stderr.contains("0 of 1 subscribers joined") && lonely.stderr.contains("hint: "),
        "{}",
        lonely.stderr
    );
}

#[test]
fn a_killed_publisher_makes_sub_exit_1_saying_so() {
    let name = unique_name("pubdies");
    let sub = start_lines(&["sub", &name, "--timeout", "10"], false);
    let mut publisher = start(&["pub", &name, "--wait-for", "1", "--timeout", "10"], true);
    let _clean = Cleanup {
        name: name.clone(),
        pids: vec![publisher.pid()],
    };
    publisher
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"one\ntwo\n")
        .unwrap();
    assert_eq!(sub.line(), "one");
    assert_eq!(sub.line(), "two");
    let pid = publisher.pid();
    publisher.signal("KILL");
    let s = sub.wait(10);
    assert_eq!(s.code, Some(1), "{}", s.stderr);
    assert!(
        s.stderr
            .contains(&format!("the publisher (pid {pid}) died")),
        "{}",
        s.stderr
    );
}

#[test]
fn a_stalled_lossy_subscriber_is_told_what_it_skipped_and_ends_cleanly() {
    let name = unique_name("lossy");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    let sub = start_lines(&["sub", &name, "--timeout", "10"], false);
    let mut publisher = start(
        &[
            "pub",
            &name,
            "--lossy",
            "--ring",
            "4K",
            "--max-message",
            "64",
            "--wait-for",
            "1",
            "--timeout",
            "10",
        ],
        true,
    );
    publisher.stdin.as_mut().unwrap().write_all(b"0\n").unwrap();
    assert_eq!(sub.line(), "0", "the subscriber runs");
    sub.signal("STOP");
    publisher
        .stdin
        .as_mut()
        .unwrap()
        .write_all(numbered(5000).as_bytes())
        .unwrap();
    // Lossy: the publisher never waits for the stopped subscriber.
    let p = publisher.wait(10);
    sub.signal("CONT");
    assert_eq!(p.code, Some(0), "pub: {}", p.stderr);
    let s = sub.wait(10);
    assert_eq!(s.code, Some(0), "sub: {}", s.stderr);
    let skipped: u64 = s
        .stderr
        .split("skipped ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no skipped warning: {}", s.stderr));
    assert!(
        s.stderr.contains("messages (the publisher overwrote them)"),
        "{}",
        s.stderr
    );
    let got: Vec<u64> = s.text().lines().map(|l| l.parse().unwrap()).collect();
    // What it printed plus what it skipped is everything, with no gap but the one.
    assert_eq!(
        got.len() as u64 + skipped,
        5000,
        "{skipped} skipped, {} got",
        got.len()
    );
    assert_eq!(got.last(), Some(&5000));
    assert!(
        got.windows(2)
            .all(|w| w[1] == w[0] + 1 || w[1] == w[0] + 1 + skipped)
    );
}

#[test]
fn a_second_publisher_and_bad_sizes_are_refused_clearly() {
    let name = unique_name("twice");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    let first = start(&["pub", &name], true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while named_segments(&name).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no topic");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let second = start(&["pub", &name], false).wait(10);
    assert_eq!(second.code, Some(1));
    assert!(
        second
            .stderr
            .contains(&format!("it exists, published by pid {}", first.pid()))
            && second.stderr.contains(&format!("hint: `svshm sub {name}`")),
        "{}",
        second.stderr
    );
    drop(first);
    for bad in [
        &["--max-message", "0"][..],
        &["--ring", "1K"],
        &["--subscribers", "0"],
        &["--max-message", "lots"],
    ] {
        let mut args = vec!["pub", name.as_str()];
        args.extend_from_slice(bad);
        let r = start(&args, false).wait(10);
        assert_eq!(r.code, Some(2), "{bad:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(bad[0]) || r.stderr.contains("size"),
            "{bad:?}: {}",
            r.stderr
        );
    }
}
