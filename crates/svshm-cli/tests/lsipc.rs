//! `svshm lsipc` against the real util-linux 2.38.1 `lsipc -m`, option set by
//! option set, on segments this test creates (in every state: attached,
//! locked, marked for destruction, a key and IPC_PRIVATE, owned by an unnamed
//! uid, several sizes and modes), with this test process as their live
//! creator (so COMMAND has text, with blanks for the raw and export escapes).
//!
//! Other tests and programs create and remove segments meanwhile, and a
//! table's column widths depend on every row. So:
//! - `-i ID` outputs (pretty, and one-row tables) are compared as they are;
//! - whole tables are compared at a quiet moment: a real run before and after
//!   ours agree, and ours equals them (retried until so);
//! - every comparison checks the real output holds our segments, so no test
//!   passes on an empty listing.
//!
//! Run as root, one more test compares whole outputs inside a private IPC
//! namespace (`unshare --ipc`), where no other segment exists.

mod common;

use common::*;
use std::process::Command as StdCommand;
use std::sync::{Mutex, MutexGuard};

const LSIPC: &str = "/usr/bin/lsipc";

/// The tests of this file run one at a time, so their fixtures do not keep
/// changing each other's tables.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn have_lsipc() -> bool {
    let ok = std::path::Path::new(LSIPC).exists()
        && StdCommand::new(LSIPC)
            .arg("-V")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("2.38"));
    if !ok {
        eprintln!("skipped: util-linux 2.38 lsipc not installed at {LSIPC}");
    }
    ok
}

type Run = (String, String, i32);

fn run(mut cmd: StdCommand) -> Run {
    let o = cmd.output().unwrap();
    (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
        o.status.code().unwrap(),
    )
}

fn real(args: &[&str]) -> Run {
    let mut c = StdCommand::new(LSIPC);
    c.arg("-m").args(args);
    run(c)
}

/// lsipc with exactly these arguments (no `-m` added).
fn real_as_given(args: &[&str]) -> Run {
    let mut c = StdCommand::new(LSIPC);
    c.args(args);
    run(c)
}

fn ours(args: &[&str]) -> Run {
    let mut c = StdCommand::new(svshm_path());
    c.arg("lsipc").args(args);
    run(c)
}

/// Asserts ours equals a real run at a moment when two real runs around it
/// agree. `check` must hold for the real output (it proves the listing holds
/// what the test is about).
fn compare_stable(args: &[&str], check: impl Fn(&str) -> bool) {
    compare_stable_with(args, real, ours, check);
}

fn compare_stable_with(
    args: &[&str],
    real: impl Fn(&[&str]) -> Run,
    ours: impl Fn(&[&str]) -> Run,
    check: impl Fn(&str) -> bool,
) {
    let mut last = None;
    for _ in 0..200 {
        let before = real(args);
        let mine = ours(args);
        let after = real(args);
        if before != after {
            continue;
        }
        assert!(
            check(&before.0),
            "lsipc -m {args:?} does not list the test's segments:\n{}",
            before.0
        );
        if mine.0 == before.0 && mine.2 == before.2 {
            assert_eq!(
                mine.1.is_empty(),
                before.1.is_empty(),
                "stderr of {args:?}: ours {:?}, lsipc {:?}",
                mine.1,
                before.1
            );
            return;
        }
        last = Some((mine, before));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (mine, theirs) = last.expect("the segment table never held still for two lsipc runs");
    assert_eq!(
        (mine.0.as_str(), mine.2),
        (theirs.0.as_str(), theirs.2),
        "svshm lsipc {args:?} differs from lsipc -m {args:?} (stdout, exit)"
    );
}

fn has_all(ids: &[i32]) -> impl Fn(&str) -> bool + '_ {
    move |out: &str| {
        ids.iter().all(|id| {
            out.contains(&format!("{id} "))
                || out.contains(&format!("\"{id}\""))
                || out.contains(&format!("{id}\n"))
        })
    }
}

#[test]
fn tables_match_util_linux_for_every_option_set() {
    if !have_lsipc() {
        return;
    }
    let _s = serial();
    let fx = fixture("lsipc");
    let sets: &[&[&str]] = &[
        &[],
        &["-b"],
        &["-P"],
        &["-c"],
        &["-t"],
        &["-b", "-P", "-c"],
        &["-t", "-c"],
        &["-c", "-t", "-b"],
        &["--time-format=iso"],
        &["--time-format", "full", "-t"],
        &["--time-format=short", "-c"],
        &["-o", "+CUSER,CGROUP,USER,GROUP,ATTACH,DETACH"],
        &["-o", "KEY,ID,COMMAND"],
        &["-o", "id,size,nattch,status", "-b"],
        &["-o", "ID,KEY", "-o", "+SIZE"],
        &["-o", "ID,SIZE", "-c"],
        &["-r"],
        &["-r", "-c", "-t"],
        &["-e"],
        &["-e", "-y", "-P"],
        &["-n"],
        &["-n", "-o", "ID,STATUS,COMMAND"],
        &["-J"],
        &["-J", "-t", "-c", "--time-format=iso"],
        &["-l"],
        &["-l", "-b"],
        &["--noheadings"],
        &["--noheadings", "-r"],
        &["--notruncate"],
        &["-y"],
        &["-y", "-J"],
        &["-m"],
        &["-m", "-m"],
        &["-mbP"],
        &["-i", "-1"],
        &["-i", "-7", "-J"],
    ];
    for args in sets {
        if args.iter().any(|a| a.starts_with("-m")) {
            // -m is implied by svshm lsipc; given, it counts as in lsipc
            // (`-m -m` doubles the default columns).
            compare_stable_with(args, real_as_given, ours, has_all(&fx.ids));
        } else {
            compare_stable(args, has_all(&fx.ids));
        }
    }
}

#[test]
fn details_by_id_match_util_linux() {
    if !have_lsipc() {
        return;
    }
    let _s = serial();
    let fx = fixture("lsipc");
    for id in &fx.ids {
        let id = id.to_string();
        for extra in [
            &[][..],
            &["-b"],
            &["-P"],
            &["-c"],
            &["-t"],
            &["-t", "-c", "--time-format=iso"],
            &["--time-format=short"],
            &["-o", "+KEY,SIZE"],
            &["-o", "ID,SIZE,COMMAND"],
            &["-J"],
            &["-J", "-c", "-t"],
            &["-r"],
            &["-e", "-y"],
            &["-n"],
            &["-l"],
            &["-l", "--noheadings"],
        ] {
            let mut args = vec!["-i", id.as_str()];
            args.extend_from_slice(extra);
            // Only the time of day can change between the two runs.
            compare_stable(&args, |o| o.contains(&id));
        }
    }
}

#[test]
fn global_limits_match_util_linux() {
    if !have_lsipc() {
        return;
    }
    let _s = serial();
    let _fx = fixture("lsipc");
    for args in [
        &["-g"][..],
        &["-g", "-b"],
        &["-g", "-J"],
        &["-g", "-J", "-y"],
        &["-g", "-e"],
        &["-g", "-r", "-y"],
        &["-g", "-n"],
        &["-g", "-c"],
        &["-g", "-t"],
        &["-g", "-o", "RESOURCE,USE%,LIMIT", "-y"],
        &["-g", "-o", "+used"],
        &["-g", "--noheadings"],
    ] {
        compare_stable(args, |o| o.contains("SHMMNI") && o.contains("SHMALL"));
    }
}

/// On a terminal lsipc cuts COMMAND to the terminal width (unless
/// --notruncate). Both run under `script` with a fixed width.
#[test]
fn terminal_output_truncates_like_util_linux() {
    if !have_lsipc() {
        return;
    }
    if StdCommand::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1) not installed; cannot run on a pseudo-terminal");
        return;
    }
    let _s = serial();
    let fx = fixture("lsipc");
    let in_tty = |prog: String, cols: usize, args: &[&str]| {
        let line = format!("stty cols {cols}; {prog} {}", args.join(" "));
        let mut c = StdCommand::new("script");
        c.args(["-qec", &line, "/dev/null"]);
        run(c)
    };
    let svshm = format!("{} lsipc", svshm_path().display());
    let id = fx.ids[1].to_string();
    for cols in [200usize, 90, 70, 40, 10] {
        for extra in [
            &["-l"][..],
            &["-l", "--notruncate"],
            &["-o", "ID,COMMAND,SIZE"],
            &["-o", "COMMAND,ID"],
            &["-o", "ID,COMMAND,STATUS,COMMAND", "--notruncate"],
            &["-r"],
        ] {
            // One segment: a deterministic table.
            let mut args = vec!["-i", id.as_str()];
            args.extend_from_slice(extra);
            compare_stable_with(
                &args,
                |a| in_tty(format!("{LSIPC} -m"), cols, a),
                |a| in_tty(svshm.clone(), cols, a),
                |o| o.contains(&id),
            );
        }
        // The whole table, for widths from many rows.
        compare_stable_with(
            &[],
            |a| in_tty(format!("{LSIPC} -m"), cols, a),
            |a| in_tty(svshm.clone(), cols, a),
            has_all(&fx.ids),
        );
    }
}

/// As root: whole outputs in a private IPC namespace, where the only segments
/// are the ones made there (and the namespace takes them when it ends).
#[test]
fn whole_outputs_match_in_a_private_ipc_namespace() {
    if !have_lsipc() {
        return;
    }
    if !is_root() {
        eprintln!("skipped: needs root for unshare --ipc");
        return;
    }
    let svshm = svshm_path();
    let s = svshm.display();
    let mut script = String::from("n=0\n");
    let compare = |script: &mut String, args: &str| {
        script.push_str(&format!(
            "a=$({LSIPC} -m {args} 2>&1; echo rc=$?); b=$({s} lsipc {args} 2>&1 | sed 's/^svshm: lsipc: /lsipc: /'; echo rc=$?)\n\
             [ \"$a\" = \"$b\" ] || {{ echo \"DIFF for [{args}]\"; echo \"$a\"; echo ---; echo \"$b\"; exit 1; }}\n\
             n=$((n+1))\n"
        ));
    };
    // Empty first: no header at all, and JSON with an unnamed table.
    for args in ["", "-J", "-r", "-e", "-g", "-g -J"] {
        compare(&mut script, args);
    }
    script.push_str(&format!(
        "{s} create -p -s 4096 >/dev/null || exit 2\n\
         {s} create -k 0x5eed0001 -s 1M -m 640 >/dev/null || exit 2\n\
         {s} create -k 0x5eed0003 -s 100000 -m 604 >/dev/null || exit 2\n\
         {LSIPC} -m | grep -q 0x5eed0003 || exit 3\n"
    ));
    for args in [
        "",
        "-b -P -c",
        "-t",
        "-J",
        "-r",
        "-e",
        "-n",
        "-g",
        "-g -b -J",
        "--noheadings -o ID,SIZE",
        "-i -3",
    ] {
        compare(&mut script, args);
    }
    script.push_str("echo compared=$n\n");
    let mut c = StdCommand::new("unshare");
    c.args(["--ipc", "sh", "-c", &script]);
    let (out, err, code) = run(c);
    if code != 0 && out.is_empty() && err.contains("unshare") {
        eprintln!("skipped: unshare --ipc failed: {err}");
        return;
    }
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("compared=17"), "{out}{err}");
}

#[test]
fn errors_keep_lsipc_messages_and_exit_statuses() {
    let _s = serial();
    let free = removed_id().to_string();
    // A missing id: a warning, nothing on stdout, exit 0; JSON keeps its frame.
    let (out, err, code) = ours(&["-i", &free]);
    assert_eq!((out.as_str(), code), ("", 0));
    assert_eq!(err, format!("svshm: lsipc: id {free} not found\n"));
    let (out, _, code) = ours(&["-i", &free, "-J"]);
    assert_eq!((out.as_str(), code), ("{\n   \"\": [\n\n   ]\n}\n", 0));
    // -q and -s are refused with a reason.
    for opt in ["-q", "--semaphores"] {
        let (out, err, code) = ours(&[opt]);
        assert_eq!((out.as_str(), code), ("", 1), "{opt}");
        assert!(err.contains("shared memory only"), "{opt}: {err}");
    }
    let bad: &[&[&str]] = &[
        &["-i", "abc"],
        &["-i", ""],
        &["-i", "0x1"],
        &["-i", "99999999999"],
        &["-o", "KEY,BOGUS,ID"],
        &["-o", "KEY,"],
        &["-o", "KEY,,ID"],
        &["-o", ",KEY"],
        &["-o", "+"],
        &["-o", ""],
        &["-o", "KEY,USE%,SIZE"],
        &["-o", "NSEMS"],
        &["-o", "RESOURCE"],
        &["-g", "-o", "SIZE"],
        &["-g", "-o", "+SIZE"],
        &["-J", "-r"],
        &["-e", "-n"],
        &["-l", "-J"],
        &["-g", "-i", "1"],
        &["-i", "-1", "-g"],
        &["-o", "KEY", "-t"],
        &["-t", "-o", "KEY"],
        &["--time-format=foo"],
        &["--time-format", "ISO"],
        &["-x"],
        &["--bogus"],
        &["-i"],
    ];
    for args in bad {
        let (out, err, code) = ours(args);
        assert_eq!((out.as_str(), code), ("", 1), "svshm lsipc {args:?}: {err}");
        if have_lsipc() {
            let (r_out, r_err, r_code) = real(args);
            assert_eq!((out.as_str(), code), (r_out.as_str(), r_code), "{args:?}");
            // Our own messages are lsipc's, after our program name.
            if r_err.starts_with("lsipc: ") && !r_err.contains("option") {
                assert_eq!(err, format!("svshm: {r_err}"), "stderr of {args:?}");
            }
            assert_eq!(err.is_empty(), r_err.is_empty(), "stderr of {args:?}");
        }
    }
    // 2.38.1 quirk kept: -c combines with -o (the exclusion is never checked).
    if have_lsipc() {
        let id = removed_id().to_string();
        for args in [&["-c", "-o", "KEY", "-i", &id][..], &["-o", "KEY", "-c"]] {
            assert_eq!(ours(args).2, real(args).2, "{args:?}");
            assert_eq!(ours(args).2, 0, "{args:?}");
        }
    }
}

#[test]
fn help_explains_and_exits_zero() {
    let (out, _, code) = ours(&["--help"]);
    assert_eq!(code, 0);
    for want in ["Examples:", "lsipc -m", "--output", "--time-format", "-g"] {
        assert!(out.contains(want), "help lacks {want:?}:\n{out}");
    }
}
