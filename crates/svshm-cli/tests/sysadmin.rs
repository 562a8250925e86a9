//! What a system administrator meets: messages that name the cause and the
//! fix, exit codes (2 for usage mistakes, 1 for failures), output errors,
//! kernel limits (in a private IPC namespace), numbers at their extremes,
//! terminals (through `script`), and JSON that keeps every digit.

mod common;

use common::*;
use std::process::{Command as StdCommand, Stdio};

/// Runs `svshm ARGS` and returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = svshm().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a shell command line under a pseudo-terminal (util-linux `script`),
/// with stdin from /dev/null; returns what the terminal showed. `None` (and a
/// printed reason) when `script` is missing.
fn on_terminal(cmdline: &str) -> Option<String> {
    let out = StdCommand::new("script")
        .args(["-qec", cmdline, "/dev/null"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        Err(e) => {
            eprintln!("skipped: util-linux `script` cannot run ({e})");
            None
        }
    }
}

/// The svshm binary as a shell word.
fn bin() -> String {
    svshm_path().display().to_string()
}

// ---------------------------------------------------------------- output errors

#[test]
fn dump_to_a_full_device_names_the_output_and_the_count() {
    let g = private(4096);
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = StdCommand::new(svshm_path())
        .args(["dump", &g.0.to_string()])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stdout (/dev/full)"), "{err}");
    assert!(err.contains("after 0 bytes"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
}

#[test]
fn read_to_a_full_device_says_the_rest_is_lost() {
    let name = unique_name("full");
    let _g = NameGuard(name.clone());
    let full = std::fs::File::create("/dev/full").unwrap();
    let mut r = Proc(
        StdCommand::new(svshm_path())
            .args(["read", &name, "--wait", "60"])
            .stdin(Stdio::null())
            .stdout(full)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let w = svshm()
        .args(["write", &name, "--wait", "60"])
        .write_stdin(vec![7u8; 4 << 20]) // more than the ring holds
        .output()
        .unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut r.0.stderr.take().unwrap(), &mut err).unwrap();
    let code = r.0.wait().unwrap().code();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("stdout (/dev/full)"), "{err}");
    assert!(err.contains("remaining data is lost"), "{err}");
    assert!(err.contains("after 0 bytes"), "{err}");
    assert_eq!(w.status.code(), Some(1), "the writer sees the reader leave");
}

// ---------------------------------------------------------------- JSON

#[test]
fn limits_json_keeps_every_digit() {
    let v = json_of(&["limits", "--json"]);
    let limits = svshm::limits().unwrap();
    let shmmax = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "kernel.shmmax")
        .unwrap()["value"]
        .clone();
    if limits.shmmax > 1 << 53 {
        assert_eq!(shmmax, serde_json::json!(limits.shmmax.to_string()));
    } else {
        assert_eq!(shmmax.as_u64(), Some(limits.shmmax));
    }
    // No number anywhere beyond what a JSON reader keeps exactly.
    for row in v.as_array().unwrap() {
        if let Some(n) = row["value"].as_u64() {
            assert!(n <= 1 << 53, "{row}");
        }
    }
    let help = stdout_of(&["limits", "--help"]);
    assert!(help.contains("2^53"), "{help}");
}

// ---------------------------------------------------------------- numbers

#[test]
fn dump_length_that_wraps_is_an_error() {
    let g = private(4096);
    let (code, out, err) = run(&[
        "dump",
        &g.0.to_string(),
        "--offset",
        "1",
        "--length",
        "18446744073709551615",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty());
    assert!(err.contains("give --length at most 4095"), "{err}");
}

// ---------------------------------------------------------------- terminals

#[test]
fn dump_to_a_terminal_is_hex_and_redirected_is_raw() {
    let g = private(4096);
    let id = g.0.to_string();
    let Some(shown) = on_terminal(&format!("{} dump {id} -l 32", bin())) else {
        return;
    };
    assert!(shown.contains("00000000: 0000 0000"), "{shown:?}");
    assert!(shown.contains("00000010: "), "{shown:?}");
    let raw = svshm().args(["dump", &id, "-l", "32"]).output().unwrap();
    assert_eq!(raw.stdout, vec![0u8; 32]);
    let Some(forced) = on_terminal(&format!("{} dump {id} -l 4 --raw | od -An -tx1", bin())) else {
        return;
    };
    assert!(forced.contains("00 00 00 00"), "{forced:?}");
}

// ---------------------------------------------------------------- demo

#[test]
fn demo_of_too_little_data_compares_no_speeds() {
    let out = stdout_of(&["demo", "--bytes", "0"]);
    assert!(!out.contains("as fast"), "{out}");
    assert!(out.contains("too few to compare"), "{out}");
    let out = stdout_of(&["demo", "--bytes", "1"]);
    assert!(out.contains("svshm demo: 1 byte of"), "{out}");
    assert!(!out.contains("(1 bytes)"), "{out}");
}
