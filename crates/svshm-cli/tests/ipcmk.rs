//! `svshm ipcmk` against util-linux 2.38.1 `ipcmk`: the same arguments, each
//! in a fresh IPC namespace (so the new segment's id is the same); stdout,
//! stderr (after the program name), exit status and the segment made (its
//! size and mode, and that its key is not 0) must match. The random keys
//! differ by design.

mod common;
mod compat;

use common::*;

/// Key not 0 (1), id, mode, size.
const COLS: &str = "($1 != 0), $2, $3, $4";

#[test]
fn matches_util_linux_ipcmk_case_by_case() {
    if !compat::have("/usr/bin/ipcmk") {
        return;
    }
    let Some(bench) = compat::bench() else {
        return;
    };
    let cases: &[&[&str]] = &[
        &["-M", "4096"],
        &["-M", "1.5K", "-p", "600"],
        &["-M", "1.05K"],
        &["-M", "1.K"],
        &["-M", "1KB"],
        &["-M", "1kib"],
        &["-M", "1.5kb"],
        &["-M", "2M", "-p", "0640"],
        &["-M", "010"],
        &["-M", "0x100"],
        &["-M", " 4096"],
        &["-M", "4K", "-p", "40000000000"],
        &["-M", "4K", "-p", "10600"],
        &["-M", "4K", "-p", " +600"],
        &["--shmem=4K", "--mode=0600"],
        &["--sh", "4K"],
        &["-M", "4K", "-M", "8K"],
        &["-M", "4K", "foo"],
        &["-M4K", "-p444"],
        &[],
        &["-p", "600"],
        &["-M"],
        &["-M", "0"],
        &["-M", "0.00K"],
        &["-M", "1EiB"],
        &["-M", "abc"],
        &["-M", ""],
        &["-M", "4096 "],
        &["-M", "1.5"],
        &["-M", "1.00"],
        &["-M", "08"],
        &["-M", "-5"],
        &["-M", "1iB"],
        &["-M", "16E"],
        &["-M", "1Y"],
        &["-M", "18446744073709551616"],
        &["-M", "4096", "-p", "999"],
        &["-M", "4096", "-p", "abc"],
        &["-M", "4096", "-p", ""],
        &["-M", "4K", "-p", "-1"],
        &["-M", "4K", "-p", "37777777777"],
        &["-M", "abc", "-M", "4K"],
        &["-x"],
        &["--s", "4K"],
        &["--shmem"],
        &["--mode=600=1", "-M", "4K"],
    ];
    for args in cases {
        bench.compare("ipcmk", "", args, false, COLS);
    }
    // The comparison is not vacuous: a segment is made, of that size and mode.
    let o = bench.compare("ipcmk", "", &["-M", "1.5K", "-p", "640"], false, COLS);
    assert_eq!((o.stdout.as_str(), o.code), ("Shared memory id: 0\n", 0));
    assert_eq!(
        o.after.split_whitespace().collect::<Vec<_>>(),
        ["1", "0", "640", "1536"]
    );
    // As another user: the segment is that user's.
    bench.compare(
        "ipcmk",
        "",
        &["-M", "4K", "-p", "600"],
        true,
        "($1 != 0), $2, $3, $4, $8, $9",
    );
}

#[test]
fn creates_the_segment_asked_for_under_a_random_key() {
    let mut keys = Vec::new();
    for (args, size, mode) in [
        (&["-M", "1.5K", "-p", "640"][..], 1536, 0o640),
        (&["-M", "4096"], 4096, 0o644),
    ] {
        let out = svshm().arg("ipcmk").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let id: i32 = text
            .strip_prefix("Shared memory id: ")
            .and_then(|t| t.strip_suffix('\n'))
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{args:?} printed {text:?}"));
        let _g = Guard(id);
        let info = svshm::Segment::from_id(id).stat().unwrap();
        assert_eq!((info.size, info.permissions()), (size, mode), "{args:?}");
        assert!(!info.key.is_private(), "{args:?}: key 0");
        keys.push(info.key);
    }
    assert_ne!(keys[0], keys[1], "two runs, one key");
}

#[test]
fn other_ipc_kinds_are_refused_with_a_reason() {
    for args in [&["-Q"][..], &["-S", "2"], &["-M", "4K", "-Q"]] {
        let out = svshm().arg("ipcmk").args(args).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} created something");
        assert!(
            err.contains("only shared memory is covered"),
            "{args:?}: {err}"
        );
    }
}
