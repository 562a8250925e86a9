//! The program as a whole: help texts, exit statuses, a closed stdout.

mod common;

use common::*;
use predicates::prelude::*;
use std::io::Read;
use std::process::{Command as StdCommand, Stdio};

const SUBCOMMANDS: &[&str] = &[
    "ipcs", "ls", "stat", "create", "rm", "gc", "set", "lock", "unlock", "limits", "usage",
    "attach", "who", "dump", "write", "read", "demo",
];

#[test]
fn every_help_is_for_a_user_with_an_example() {
    let top = stdout_of(&["--help"]);
    assert!(top.contains("Examples:"), "{top}");
    for sub in SUBCOMMANDS {
        assert!(top.contains(sub), "{sub} not listed in --help:\n{top}");
        let help = stdout_of(&[sub, "--help"]);
        assert!(
            help.contains("Example"),
            "svshm {sub} --help has no example:\n{help}"
        );
        assert!(
            help.contains(&format!("svshm {sub}")),
            "svshm {sub} --help shows no invocation:\n{help}"
        );
        // `svshm help SUB` is the same text.
        assert_eq!(stdout_of(&["help", sub]), help);
    }
    svshm()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("svshm "));
}

#[test]
fn usage_errors_exit_2_and_say_what_to_do() {
    svshm()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Usage"));
    svshm()
        .arg("frobnicate")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("frobnicate"));
    svshm().args(["ls", "--nope"]).assert().code(2);
}

#[test]
fn a_closed_stdout_ends_quietly_with_success() {
    let g = private(8 << 20);
    let mut child = StdCommand::new(svshm_path())
        .args(["dump", &g.0.to_string(), "--hex"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(&first, b"00000000: ");
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}, stderr {err:?}");
    assert_eq!(err, "");
}

/// The example lines of a help text that run a listing command as is (no
/// pipe, no placeholder id): `svshm lsipc -b -c`, ...
fn runnable_examples(sub: &str) -> Vec<Vec<String>> {
    let help = stdout_of(&[sub, "--help"]);
    let prefix = format!("svshm {sub}");
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with(&prefix) && !l.contains('|'))
        .map(|l| {
            // The command ends where the explanation (two or more blanks) starts.
            let cmd = l.split("  ").next().unwrap();
            cmd.split_whitespace().skip(1).map(String::from).collect()
        })
        .filter(|args: &Vec<String>| !args.iter().any(|a| a == "5"))
        .collect()
}

#[test]
fn listing_examples_in_the_help_work_when_pasted() {
    let _fx = fixture("help-examples");
    for sub in ["ipcs", "lsipc", "ls", "limits", "usage"] {
        let examples = runnable_examples(sub);
        assert!(
            !examples.is_empty(),
            "no runnable example in `svshm {sub} --help`"
        );
        for args in examples {
            let out = svshm().args(&args).output().unwrap();
            assert!(
                out.status.success(),
                "the help example `svshm {}` exited {:?}: {}",
                args.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn a_bad_id_only_suggests_options_the_command_has() {
    // Only `stat` and `rm` take -k; the others must not suggest it.
    for sub in ["set", "lock", "unlock", "who", "dump"] {
        let mut args = vec![sub, "seven"];
        if sub == "set" {
            args.extend(["-m", "600"]);
        }
        let out = svshm().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "svshm {args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("'seven' is not a segment id"), "{err}");
        assert!(
            !err.contains("use -k"),
            "`svshm {sub}` has no -k, yet its error says so: {err}"
        );
    }
}
