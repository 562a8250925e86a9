//! `svshm serve` and `svshm call` across processes: a command per request,
//! the caller's kernel-attested uid and pid, concurrent callers, no server,
//! a server killed mid-call; and `svshm ls` showing topics and services.

mod common;

use common::kids::{Cleanup, Kid, created_by, named_segments, start};
use common::unique_name;
use std::io::Write;
use std::time::{Duration, Instant};

/// Starts `svshm serve NAME EXTRA… -- CMD…` and waits (bounded) until it
/// listens.
fn serve(name: &str, extra: &[&str], cmd: &[&str]) -> Kid {
    let mut args = vec!["serve", name];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(cmd);
    let kid = start(&args, false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while named_segments(name).is_empty() {
        assert!(Instant::now() < deadline, "serve {name} did not listen");
        std::thread::sleep(Duration::from_millis(10));
    }
    kid
}

/// `echo INPUT | svshm call NAME ARGS…`, started.
fn call(name: &str, input: &[u8], extra: &[&str]) -> Kid {
    let mut args = vec!["call", name, "--timeout", "10"];
    args.extend_from_slice(extra);
    let mut kid = start(&args, true);
    kid.stdin.as_mut().unwrap().write_all(input).unwrap();
    kid.close_stdin();
    kid
}

#[test]
fn serve_runs_the_command_for_each_call() {
    let name = unique_name("upper");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    let server = serve(&name, &["--max-requests", "2"], &["tr", "a-z", "A-Z"]);
    for word in ["hello", "again"] {
        let c = call(&name, format!("{word}\n").as_bytes(), &[]).wait(10);
        assert_eq!(c.code, Some(0), "call: {}", c.stderr);
        assert_eq!(c.text(), format!("{}\n", word.to_uppercase()));
    }
    let s = server.wait(10);
    assert_eq!(
        s.code,
        Some(0),
        "serve ends after --max-requests: {}",
        s.stderr
    );
    assert!(named_segments(&name).is_empty(), "its listener is removed");
}

#[test]
fn the_command_learns_the_callers_uid_and_pid_which_the_request_cannot_forge() {
    let name = unique_name("whoami");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    let server = serve(
        &name,
        &["--max-requests", "1"],
        &[
            "sh",
            "-c",
            "cat >/dev/null; echo $SVSHM_CALLER_UID $SVSHM_CALLER_PID",
        ],
    );
    let c = call(&name, b"SVSHM_CALLER_UID=0\nSVSHM_CALLER_PID=1\n", &[]);
    let pid = c.pid();
    let c = c.wait(10);
    assert_eq!(c.code, Some(0), "call: {}", c.stderr);
    assert_eq!(c.text(), format!("{} {pid}\n", svshm::euid()));
    assert_eq!(server.wait(10).code, Some(0));
}

#[test]
fn eight_concurrent_callers_are_all_answered() {
    let name = unique_name("many");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    let server = serve(
        &name,
        &["--max-requests", "8"],
        &["sh", "-c", "sleep 1; tr a-z A-Z"],
    );
    let started = Instant::now();
    let calls: Vec<_> = (0..8)
        .map(|i| call(&name, format!("caller {i}").as_bytes(), &[]))
        .collect();
    for (i, c) in calls.into_iter().enumerate() {
        let c = c.wait(10);
        assert_eq!(c.code, Some(0), "call {i}: {}", c.stderr);
        assert_eq!(c.text(), format!("CALLER {i}"));
    }
    // One at a time would take 8 × 0.2 s at least.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.wait(10).code, Some(0));
}

#[test]
fn a_failing_command_still_answers_with_a_warning() {
    let name = unique_name("fails");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    let server = serve(
        &name,
        &["--max-requests", "1"],
        &["sh", "-c", "echo partial; exit 3"],
    );
    let c = call(&name, b"x", &[]).wait(10);
    assert_eq!(
        (c.code, c.text().as_str()),
        (Some(0), "partial\n"),
        "{}",
        c.stderr
    );
    let s = server.wait(10);
    assert!(s.stderr.contains("sent anyway"), "{}", s.stderr);
}

#[test]
fn a_response_past_max_message_closes_the_connection_on_both_sides() {
    let name = unique_name("toolong");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    let server = serve(
        &name,
        &["--max-requests", "1", "--max-message", "4"],
        &["cat"],
    );
    let c = call(&name, b"far too long", &[]).wait(10);
    assert_eq!(c.code, Some(1), "{}", c.stderr);
    assert!(
        c.stderr.contains("closed the connection without answering"),
        "{}",
        c.stderr
    );
    let s = server.wait(10);
    assert!(
        s.stderr.contains("longer than --max-message 4"),
        "{}",
        s.stderr
    );
}

#[test]
fn sigterm_ends_serve_cleanly_and_frees_the_name() {
    let name = unique_name("term");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    let server = serve(&name, &[], &["cat"]);
    server.signal("TERM");
    let s = server.wait(10);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    assert!(named_segments(&name).is_empty(), "its listener is removed");
}

#[test]
fn call_without_a_server_times_out_with_a_hint() {
    let name = unique_name("nobody");
    let _clean = Cleanup {
        name: name.clone(),
        pids: Vec::new(),
    };
    let c = start(&["call", &name, "--timeout", "0.3"], false).wait(10);
    assert_eq!(c.code, Some(1));
    assert!(
        c.stderr
            .contains(&format!("hint: start one with `svshm serve {name} -- CMD")),
        "{}",
        c.stderr
    );
}

#[test]
fn killing_serve_fails_the_pending_call_and_leaves_no_segment() {
    let name = unique_name("killed");
    let server = serve(&name, &[], &["sh", "-c", "sleep 2; cat"]);
    let serve_pid = server.pid();
    let c = call(&name, b"never answered", &[]);
    let _clean = Cleanup {
        name: name.clone(),
        pids: vec![serve_pid, c.pid()],
    };
    // Wait until the call is accepted (a connection is live), then kill.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live = named_segments(&name).first().and_then(|&id| {
            svshm_channel::inspect(id)
                .ok()
                .flatten()
                .and_then(|s| s.connections)
        });
        if live.is_some_and(|(live, _)| live > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "the call was not accepted");
        std::thread::sleep(Duration::from_millis(10));
    }
    let call_pid = c.pid();
    server.signal("KILL");
    let c = c.wait(10);
    assert_eq!(c.code, Some(1), "{}", c.stderr);
    assert!(
        c.stderr.contains(&format!(
            "the server (pid {serve_pid}) died before answering"
        )),
        "{}",
        c.stderr
    );
    drop(server);
    // The client reclaimed the dead server's listener; the connection's
    // segments went with their last process.
    assert!(
        named_segments(&name).is_empty(),
        "the listener is reclaimed"
    );
    assert!(created_by(serve_pid).is_empty() && created_by(call_pid).is_empty());
}

#[test]
fn ls_lists_a_live_topic_and_service_with_their_counts() {
    let topic = unique_name("lstopic");
    let service = unique_name("lsservice");
    let _t = Cleanup {
        name: topic.clone(),
        pids: Vec::new(),
    };
    let _s = Cleanup {
        name: service.clone(),
        pids: Vec::new(),
    };
    let publisher = start(&["pub", &topic, "--lossy"], true);
    let subs: Vec<Kid> = (0..2)
        .map(|_| start(&["sub", &topic, "--timeout", "10"], false))
        .collect();
    let server = serve(&service, &[], &["cat"]);
    let answered = call(&service, b"ping", &[]).wait(10);
    assert_eq!(answered.text(), "ping");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (t, s) = loop {
        let all = common::json_of(&["ls", "--peek", "-J"]);
        let find = |n: &str| {
            all.as_array()
                .unwrap()
                .iter()
                .find(|o| o["channel"] == n)
                .cloned()
        };
        if let (Some(t), Some(s)) = (find(&topic), find(&service)) {
            if t["subscribers"] == 2 {
                break (t, s);
            }
        }
        assert!(Instant::now() < deadline, "ls never showed both: {all}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(t["kind"], "topic");
    assert_eq!(t["policy"], "lossy");
    assert_eq!(t["writer"]["pid"], publisher.pid());
    assert_eq!(s["kind"], "service");
    assert_eq!(s["writer"]["pid"], server.pid());
    assert_eq!(s["connections"]["accepted"], 1);
    let table = common::stdout_of(&[
        "ls",
        "--peek",
        "-o",
        "CHANNEL,KIND,SUBSCRIBERS,POLICY,CONNECTIONS",
    ]);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [topic.as_str(), "topic", "2", "lossy"]),
        "{table}"
    );
    assert!(
        table.lines().any(|l| {
            let w: Vec<_> = l.split_whitespace().collect();
            w.len() == 3 && w[..2] == [service.as_str(), "service"] && w[2].ends_with("/1")
        }),
        "{table}"
    );
    // stat: each subscriber's pid and lag; the server and its connections.
    let tid = t["id"].as_i64().unwrap().to_string();
    let st = common::json_of(&["stat", &tid, "--peek", "-J"]);
    let mut pids: Vec<i64> = st["channel"]["subscriber_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_i64().unwrap())
        .collect();
    pids.sort_unstable();
    let mut want: Vec<i64> = subs.iter().map(|s| i64::from(s.pid())).collect();
    want.sort_unstable();
    assert_eq!(pids, want, "{st}");
    assert_eq!(st["channel"]["policy"], "lossy");
    let text = common::stdout_of(&["stat", &tid, "--peek"]);
    assert!(text.contains("Subscribers:            2 (lossy)"), "{text}");
    assert!(text.contains("0 messages behind"), "{text}");
    let sid = s["id"].as_i64().unwrap().to_string();
    let text = common::stdout_of(&["stat", &sid, "--peek"]);
    assert!(
        text.contains(&format!(
            "Server:                 pid {}, alive",
            server.pid()
        )) && text.contains("Connections:            0 live, 1 accepted in all"),
        "{text}"
    );
}
