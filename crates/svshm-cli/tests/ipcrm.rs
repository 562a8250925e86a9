//! `svshm ipcrm` against util-linux 2.38.1 `ipcrm`: the same argument sets on
//! identical segments, each in a fresh IPC namespace; stdout, stderr (after
//! the program name), exit status and the segments left must all match.

mod common;
mod compat;

use common::*;

/// Segment 0: key 0x5eed0001, root's, mode 600. 1: key 0x5eed0002, root's,
/// 644 (uid 65534 may read it, not remove it). 2: private. 3: key
/// 0x5eed0004, owned by uid 65534, mode 600.
const SETUP: &str = "\
$S create -k 0x5eed0001 -s 4096 -m 600 >/dev/null
$S create -k 0x5eed0002 -s 1M -m 644 >/dev/null
$S create -p -s 8192 >/dev/null
id=$($S create -k 0x5eed0004 -s 4096 -m 600)
$S set $id -u 65534 -g 65534";

const COLS: &str = "$2, $3, $4, $8";

#[test]
fn matches_util_linux_ipcrm_case_by_case() {
    if !compat::have("/usr/bin/ipcrm") {
        return;
    }
    let Some(bench) = compat::bench() else {
        return;
    };
    let cases: &[&[&str]] = &[
        &[],
        &["-m", "0"],
        &["-v", "-m", "0", "-m", "0"],
        &["--shmem-id=2", "--verbose", "-m", "1"],
        &["-m", "999999"],
        &["-m", "abc"],
        &["-m", "0x1"],
        &["-m", "010"],
        &["-m", ""],
        &["-m", "99999999999"],
        &["-m", "-1"],
        &["-M", "0x5eed0002"],
        &["-v", "-M", "0x5eed0002", "-M", "0x12345678", "-m", "2"],
        &["-M", "1592590337"],
        &["-M", "0"],
        &["-M", "0x100000000"],
        &["-M", "zz"],
        &["-M", "0x"],
        &["-M", ""],
        &["-M", "-1"],
        &["-M", "99999999999999999999999"],
        &["shm", "0", "2"],
        &["shm", "0", "abc", "", "99999999999", "-1"],
        &["shm"],
        &["-a"],
        &["-v", "--all=shm"],
        &["-vashm"],
        &["--all"],
        &["--all=bogus"],
        &["--all="],
        &["-a", "shm"],
        &["-v", "-m", "1", "foo", "-m", "0"],
        &["-m", "0", "--", "-m", "1"],
        &["-x"],
        &["-m"],
        &["--shmem-id"],
        &["--bogus"],
        &["--s", "1"],
        &["--verbose=1"],
        &["-m", "0", "-z", "-m", "1"],
    ];
    for args in cases {
        bench.compare("ipcrm", SETUP, args, false, COLS);
    }
    // The comparison is not vacuous: the setup is there, and removal removes.
    let o = bench.compare("ipcrm", SETUP, &["-v", "-m", "0"], false, COLS);
    assert_eq!(o.stdout, "removing shared memory segment id `0'\n");
    assert_eq!((o.code, o.after.lines().count()), (0, 3), "{o:?}");
    // As another user: permission denied for what it may not remove; -a
    // removes its own and skips what it may not read.
    let nobody_cases: &[&[&str]] = &[
        &["-m", "0"],
        &["-m", "1"],
        &["-M", "0x5eed0001"],
        &["-v", "-M", "0x5eed0002"],
        &["-m", "3"],
        &["-v", "-a"],
        &["shm", "1", "3"],
    ];
    for args in nobody_cases {
        bench.compare("ipcrm", SETUP, args, true, COLS);
    }
}

#[test]
fn removes_by_id_and_key_and_reports_like_ipcrm() {
    let a = private(4096);
    let key = unique_key("ipcrm");
    let b = Guard(
        svshm::CreateOptions::new(4096)
            .key(key)
            .create()
            .unwrap()
            .id(),
    );
    let out = svshm()
        .args([
            "ipcrm",
            "-v",
            "-m",
            &a.0.to_string(),
            "-M",
            &key.to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "removing shared memory segment id `{}'\nremoving shared memory segment id `{}'\n",
            a.0, b.0
        )
    );
    assert!(!exists(a.0) && !exists(b.0));
    // Again: both are gone now.
    let out = svshm()
        .args(["ipcrm", "-m", &a.0.to_string(), "-M", &key.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "svshm: ipcrm: invalid id ({})\nsvshm: ipcrm: invalid key ({key})\n",
            a.0
        )
    );
}

#[test]
fn other_ipc_kinds_are_refused_with_a_reason() {
    for args in [
        &["-q", "1"][..],
        &["-Q", "0x1"],
        &["-s", "1"],
        &["-S", "1"],
        &["--all=msg"],
        &["--all=sem"],
        &["msg", "1"],
        &["sem", "1"],
    ] {
        let out = svshm().arg("ipcrm").args(args).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("only shared memory is covered") && err.contains("ipcrm(1)"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn help_documents_the_syntax_and_the_departure() {
    for args in [
        &["ipcrm", "--help"][..],
        &["ipcrm", "-h"],
        &["help", "ipcrm"],
    ] {
        let out = svshm().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        for want in [
            "--shmem-id",
            "--shmem-key",
            "--all",
            "--verbose",
            "only shared memory",
        ] {
            assert!(text.contains(want), "{args:?} lacks {want}:\n{text}");
        }
    }
}
