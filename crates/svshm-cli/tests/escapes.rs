//! Names full of terminal escapes: a process name, a command line and a
//! channel name chosen by someone else reach the terminal escaped (`\xNN`),
//! never as raw ESC/BEL bytes or as newlines that forge rows.

mod common;

use common::*;
use std::os::unix::process::CommandExt;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

/// A title-setting OSC, a screen clear and a newline that starts a fake row.
const EVIL: &str = "e\u{1b}]0;x\u{7}\u{1b}[2J\nFORGED";

/// A temporary directory, removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `out` holds no raw ESC or BEL and no line the name forged.
fn assert_no_raw(what: &str, out: &str) {
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{7}'),
        "{what} printed raw escapes: {out:?}"
    );
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with("FORGED")),
        "{what} printed a forged line: {out:?}"
    );
}

/// `out` shows the name, escaped as `\xNN`.
fn assert_escaped(what: &str, out: &str) {
    assert_no_raw(what, out);
    assert!(
        out.contains("\\x1b"),
        "{what} did not show the name: {out:?}"
    );
}

#[test]
fn names_from_processes_and_channels_are_escaped() {
    // `svshm write`, run through a symlink whose name (the process's comm)
    // holds escapes, with escapes in argv[0] and in the channel name: it
    // creates the channel, attaches it and waits for a reader.
    let dir = TempDir(std::env::temp_dir().join(unique_name("escapes")));
    std::fs::create_dir(&dir.0).unwrap();
    let link = dir.0.join("e\u{1b}[2J\nF");
    std::os::unix::fs::symlink(svshm_path(), &link).unwrap();
    let name = format!("{}{EVIL}", unique_name("esc"));
    let _g = NameGuard(name.clone());
    let _w = Proc(
        StdCommand::new(&link)
            .arg0(EVIL)
            .args(["write", &name, "/dev/null", "--wait", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let key = svshm_channel::channel_key(&name);
    let t0 = Instant::now();
    let id = loop {
        if let Some(s) = svshm::info::public_info_by_key(key).filter(|s| s.attach_count > 0) {
            break s.id.to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no channel {name:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // Ready: its header is readable with --peek.
    while !stdout_of(&["stat", &id, "--peek"]).contains("waiting") {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "channel never ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for args in [
        vec!["who", &id],
        vec!["stat", &id],
        vec!["stat", &id, "--peek"],
        vec!["ls", "-o", "ID,CHANNEL,COMMAND"],
        vec!["ls", "--peek", "-o", "ID,CHANNEL,COMMAND"],
        vec!["lsipc", "-i", &id],
    ] {
        let out = stdout_of(&args);
        let mine: String = if args[0] == "ls" {
            out.lines()
                .filter(|l| l.split_whitespace().next() == Some(id.as_str()))
                .collect()
        } else {
            out.clone()
        };
        assert_escaped(&format!("svshm {args:?}"), &mine);
    }
    // The channel name itself, with --peek.
    let ls = stdout_of(&["ls", "--peek", "-o", "ID,CHANNEL"]);
    assert!(ls.contains("\\x1b]0;x\\x07\\x1b[2J\\x0aFORGED"), "{ls}");
    // JSON keeps the real text (serde escapes it).
    let v = json_of(&["stat", &id, "-J", "--peek"]);
    assert_eq!(v["channel"]["name"], name.as_str());
}

#[test]
fn error_messages_escape_the_names_they_quote() {
    let name = format!("{}{EVIL}", unique_name("esc-err"));
    let _g = NameGuard(name.clone());
    let out = svshm()
        .args(["read", &name, "--wait", "0.1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    assert_no_raw("read's timeout error", &stderr);
}
