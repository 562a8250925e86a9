//! `svshm ipcs` against the real util-linux `ipcs -m`, flag by flag, on
//! segments this test creates (in every state: attached, locked, marked for
//! destruction, owned by an unnamed uid).
//!
//! Other tests (and other programs) create and remove segments meanwhile, so
//! table outputs are compared on the header lines and the rows of our own
//! segments; whole-system outputs (-u) are compared when a real `ipcs` run
//! before and after ours agree.

mod common;

use common::*;
use std::process::Command as StdCommand;

const IPCS: &str = "/usr/bin/ipcs";

fn have_ipcs() -> bool {
    let ok = std::path::Path::new(IPCS).exists()
        && StdCommand::new(IPCS)
            .arg("-V")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("2.38"));
    if !ok {
        eprintln!("skipped: util-linux 2.38 ipcs not installed at {IPCS}");
    }
    ok
}

fn real(args: &[&str]) -> (String, String, i32) {
    let o = StdCommand::new(IPCS).arg("-m").args(args).output().unwrap();
    (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
        o.status.code().unwrap(),
    )
}

fn ours(args: &[&str]) -> (String, String, i32) {
    let o = svshm().arg("ipcs").args(args).output().unwrap();
    (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
        o.status.code().unwrap(),
    )
}

/// Keeps lines that are not segment rows, and rows of our segments. A row
/// starts with the key (default format) or the shmid (the others).
fn filter(text: &str, ids: &[i32]) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        let id_field = if first.starts_with("0x") {
            f.next()
        } else {
            Some(first)
        };
        let is_row = id_field.and_then(|s| s.parse::<i32>().ok()).is_some() && first != "max";
        if !is_row
            || ids
                .iter()
                .any(|id| Some(id.to_string().as_str()) == id_field)
        {
            out.push_str(line);
        }
    }
    out
}

fn compare_filtered(fx: &Fixture, args: &[&str]) {
    let (r_out, r_err, r_code) = real(args);
    let (o_out, o_err, o_code) = ours(args);
    assert_eq!(
        o_code, r_code,
        "exit status of ipcs -m {args:?}; stderr: {o_err}"
    );
    assert_eq!(
        o_err.is_empty(),
        r_err.is_empty(),
        "stderr of {args:?}: ours {o_err:?}, ipcs {r_err:?}"
    );
    let (r, o) = (filter(&r_out, &fx.ids), filter(&o_out, &fx.ids));
    assert_eq!(o, r, "svshm ipcs {args:?} differs from ipcs -m {args:?}");
    // Every one of our segments is in the listing.
    for id in &fx.ids {
        assert!(
            o.contains(&format!("{id} ")),
            "segment {id} missing from svshm ipcs {args:?}:\n{o}"
        );
    }
}

#[test]
fn tables_match_util_linux_for_every_format_flag() {
    if !have_ipcs() {
        return;
    }
    let fx = fixture("ipcs");
    for args in [
        &[][..],
        &["-b"],
        &["--human"],
        &["-t"],
        &["-p"],
        &["-c"],
        &["-t", "-p"],
        &["-p", "-c", "-t"],
        &["--human", "-b"],
        &["-b", "--human"],
        &["-m"],
        &["-mt"],
    ] {
        compare_filtered(&fx, args);
    }
}

#[test]
fn limits_match_util_linux() {
    if !have_ipcs() {
        return;
    }
    for args in [
        &["-l"][..],
        &["-l", "-b"],
        &["-l", "--human"],
        &["-u", "-l"],
    ] {
        let (r, _, rc) = real(args);
        let (o, _, oc) = ours(args);
        assert_eq!((o, oc), (r, rc), "ipcs -m {args:?}");
    }
}

#[test]
fn summary_matches_util_linux_at_a_quiet_moment() {
    if !have_ipcs() {
        return;
    }
    let _fx = fixture("ipcs");
    for args in [&["-u"][..], &["-u", "--human"], &["-l", "-u"]] {
        let mut matched = false;
        let mut last = (String::new(), String::new());
        // Other tests create and remove segments: find a moment when ipcs gives
        // the same answer before and after ours.
        for _ in 0..200 {
            let before = real(args).0;
            let mine = ours(args).0;
            let after = real(args).0;
            if before == after {
                last = (mine.clone(), before.clone());
                if mine == before {
                    matched = true;
                    break;
                }
            }
        }
        assert!(
            matched,
            "svshm ipcs {args:?} never matched a stable ipcs -m {args:?}; last: {last:?}"
        );
    }
}

#[test]
fn details_by_id_match_util_linux() {
    if !have_ipcs() {
        return;
    }
    let fx = fixture("ipcs");
    for id in &fx.ids {
        let id = id.to_string();
        for extra in [&[][..], &["--human"], &["-b"], &["-t"], &["-l"]] {
            let mut args = vec!["-i", id.as_str()];
            args.extend_from_slice(extra);
            let r = real(&args);
            let o = ours(&args);
            assert_eq!(o.0, r.0, "stdout of ipcs -m {args:?}");
            assert_eq!(
                (o.1.is_empty(), o.2),
                (r.1.is_empty(), r.2),
                "stderr/exit of {args:?}"
            );
        }
    }
}

#[test]
fn errors_keep_ipcs_exit_statuses() {
    // A missing id: a warning on stderr, nothing on stdout, exit 0.
    let free = {
        let g = private(4096);
        let id = g.0;
        drop(g);
        id
    };
    let (out, err, code) = ours(&["-i", &free.to_string()]);
    assert_eq!((out.as_str(), code), ("", 0));
    assert!(err.contains(&format!("id {free} not found")), "{err}");
    // Unparsable ids: exit 1 with ipcs's message.
    for bad in ["abc", "0x1", "", "5 "] {
        let (out, err, code) = ours(&["-i", bad]);
        assert_eq!((out.as_str(), code), ("", 1), "-i {bad:?}");
        assert!(
            err.contains(&format!("failed to parse id argument: '{bad}'")),
            "{err}"
        );
    }
    let (_, err, code) = ours(&["-i", "99999999999"]);
    assert_eq!(code, 1);
    assert!(err.contains("Numerical result out of range"), "{err}");
    // A bad option: exit 1 like ipcs (not clap's 2).
    let (_, err, code) = ours(&["-x"]);
    assert_eq!(code, 1, "{err}");
    if have_ipcs() {
        for args in [&["-i", "abc"][..], &["-x"], &["-i", &free.to_string()]] {
            assert_eq!(ours(args).2, real(args).2, "exit status of {args:?}");
        }
    }
}

#[test]
fn help_explains_and_exits_zero() {
    let (out, _, code) = ours(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Examples:") && out.contains("ipcs -m"),
        "{out}"
    );
}
