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

/// The id of the segment under `key`, once the process starting it created it.
fn segment_of_key(key: svshm::Key) -> i32 {
    loop {
        let segs = svshm::proc_segments().unwrap();
        if let Some(s) = segs.iter().find(|s| s.key == key) {
            return s.id;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
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

// ---------------------------------------------------------------- exit codes

#[test]
fn usage_mistakes_exit_2_and_failures_exit_1() {
    let gone = removed_id().to_string();
    let g = private(4096);
    let id = g.0.to_string();
    let name = unique_name("codes");
    let _n = NameGuard(name.clone());
    let cases: &[(&[&str], i32, &str)] = &[
        (&["create", "-n", "", "-s", "4096"], 2, "name is empty"),
        (&["create", "-k", "0", "-s", "4096"], 2, "IPC_PRIVATE"),
        (&["create", "-s", "1M", "-p", "0640"], 2, "-m 0640"),
        (
            &["create", "-p", "-s", "1M", "extra"],
            2,
            "unexpected argument",
        ),
        (&["write", &name, "--ring", "2T"], 2, "largest ring"),
        (&["write", &name, "--ring", "16E"], 2, "too large"),
        (&["read", &name, "--ring", "64"], 2, "at least --ring 4K"),
        (&["read", ""], 2, "name is empty"),
        (&["read", "-k", "0"], 2, "IPC_PRIVATE"),
        (&["write", "--id", &id, "-k", "0x1234"], 2, "one way only"),
        (&["stat", "-k", "0"], 2, "IPC_PRIVATE"),
        (&["rm", "-k", "0"], 2, "IPC_PRIVATE"),
        (&["ls", "-o", "ID,BOGUS"], 2, "unknown column"),
        (&["set", &id, "-u", "4294967295"], 2, "(uid_t)-1"),
        (&["dump", &id, "--offset", "4097"], 1, "beyond the end"),
        (&["stat", &gone], 1, "no segment has this id"),
        (&["dump", &gone], 1, "no segment has this id"),
        (&["set", &gone, "-m", "600"], 1, "no segment has this id"),
        (&["read", &name, "--wait", "0.1"], 1, "timed out"),
        (&["create", "-p", "-s", "0"], 1, "SHMMIN"),
    ];
    for (args, code, text) in cases {
        let (got, _, err) = run(args);
        assert_eq!(got, Some(*code), "svshm {args:?}: {err}");
        assert!(err.contains(text), "svshm {args:?}: {err}");
    }
}

// ---------------------------------------------------------------- usage lines

#[test]
fn ipcs_explains_that_only_shared_memory_is_covered() {
    for opt in ["-a", "-q", "-s", "--all"] {
        let (code, out, err) = run(&["ipcs", opt]);
        assert_eq!(code, Some(1), "ipcs {opt}: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("shared memory only"), "ipcs {opt}: {err}");
        assert!(err.contains(opt), "ipcs {opt}: {err}");
    }
}

#[test]
fn help_texts_say_what_is_accepted() {
    let write = stdout_of(&["write", "--help"]);
    assert!(write.contains("[CHANNEL] [FILE]"), "{write}");
    assert!(!write.contains("[FILE]..."), "{write}");
    assert!(write.contains("--id <ID>"), "{write}");
    let create = stdout_of(&["create", "--help"]);
    assert!(create.contains("K/M/G/T/P/E"), "{create}");
    assert!(create.contains("KB/MB"), "{create}");
    for side in ["write", "read"] {
        let help = stdout_of(&[side, "--help"]);
        assert!(help.contains("Give both sides the same -m"), "{help}");
        assert!(
            !help.contains("if this side creates the channel (octal)"),
            "{help}"
        );
    }
}

#[test]
fn the_transfer_example_of_the_help_works_when_pasted() {
    let help = stdout_of(&["--help"]);
    let line = help
        .lines()
        .find(|l| l.contains("svshm write ") && l.contains("svshm read "))
        .unwrap_or_else(|| panic!("no transfer example in {help}"))
        .trim();
    let name = unique_name("example");
    let _n = NameGuard(name.clone());
    let dir = std::env::temp_dir().join(unique_name("example-dir"));
    std::fs::create_dir(&dir).unwrap();
    // Removed however the test ends.
    struct RmDir(std::path::PathBuf);
    impl Drop for RmDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = RmDir(dir.clone());
    // Pasted as shown; only the program path and the channel name (unique to
    // this run) differ.
    let pasted = line
        .replace("svshm ", &format!("{} ", bin()))
        .replace(" logs ", &format!(" {name} "));
    let out = StdCommand::new("sh")
        .args(["-c", &format!("{pasted}; wait")])
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{pasted}: {err}");
    let input = line.split_whitespace().nth(3).unwrap();
    let output = line.split_whitespace().last().unwrap();
    assert_eq!(
        std::fs::read(dir.join(output)).unwrap(),
        std::fs::read(input).unwrap(),
        "{pasted}"
    );
}

#[test]
fn write_joins_a_channel_by_id() {
    let key = unique_key("by-id");
    let mut r = spawn(
        &["read", "-k", &key.to_string(), "--wait", "60"],
        Stdio::null(),
    );
    let rio = collect(&mut r);
    let id = segment_of_key(key);
    let _g = Guard(id);
    svshm()
        .args(["write", "--id", &id.to_string(), "--wait", "60"])
        .write_stdin("joined by id\n")
        .assert()
        .success();
    let done = finish(r, rio);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(done.stdout, b"joined by id\n");
}

// ---------------------------------------------------------------- kernel limits

/// Runs a shell script in a new IPC namespace (its segments and limits die
/// with it); `None` (and a printed reason) when that is not possible here.
fn in_private_ipc_namespace(script: &str) -> Option<(Option<i32>, String)> {
    if !is_root() {
        eprintln!("skipped: changing kernel limits in a new IPC namespace needs root");
        return None;
    }
    let out = StdCommand::new("unshare")
        .args(["--ipc", "sh", "-c", script])
        .output();
    match out {
        Ok(o) if o.status.code() == Some(97) => {
            eprintln!(
                "skipped: cannot set the limits: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Ok(o) => Some((
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )),
        Err(e) => {
            eprintln!("skipped: cannot run unshare --ipc ({e})");
            None
        }
    }
}

#[test]
fn out_of_segment_ids_names_shmmni_only() {
    let b = bin();
    let Some((code, err)) = in_private_ipc_namespace(&format!(
        "echo 3 > /proc/sys/kernel/shmmni || exit 97
         for i in 1 2 3; do {b} create -p -s 4096 > /dev/null || exit 98; done
         exec {b} create -p -s 4096"
    )) else {
        return;
    };
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("all kernel.shmmni (3) segment ids are in use"),
        "{err}"
    );
    assert!(!err.contains("shmall"), "{err}");
    assert!(
        err.contains("\nhint: list segments with `svshm ls`, remove one with `svshm rm ID`"),
        "{err}"
    );
}

#[test]
fn out_of_pages_names_shmall_only() {
    let b = bin();
    let Some((code, err)) = in_private_ipc_namespace(&format!(
        "echo 4 > /proc/sys/kernel/shmall || exit 97
         {b} create -p -s 8K > /dev/null || exit 98
         exec {b} create -p -s 64K"
    )) else {
        return;
    };
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("kernel.shmall (4 pages, 16 KiB)"), "{err}");
    assert!(!err.contains("shmmni"), "{err}");
    assert!(
        err.contains("\nhint: list segments with `svshm ls`, remove one with `svshm rm ID`"),
        "{err}"
    );
}

// ---------------------------------------------------------------- errno causes

#[test]
fn attach_below_mmap_min_addr_names_it() {
    let min: u64 = std::fs::read_to_string("/proc/sys/vm/mmap_min_addr")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if min == 0 {
        eprintln!("skipped: vm.mmap_min_addr is 0, no address lies below it");
        return;
    }
    // Page 0 is always below the floor; 0x800 rounded down (SHM_RND) is 0.
    let spec = |id: i32| format!("{id}:0x800r");
    let exe = svshm_path();
    if let Some(why) = svshm_testkit::nobody_unavailable(&exe, &["--version"]) {
        // Root (CAP_SYS_RAWIO) may map below the floor: only another user meets it.
        eprintln!("skipped: {why}");
        return;
    }
    let seg = svshm::CreateOptions::new(4096)
        .mode(0o666)
        .create()
        .unwrap();
    let _g = Guard(seg.id());
    let out = svshm_testkit::command_as(&exe, svshm_testkit::NOBODY, svshm_testkit::NOBODY)
        .unwrap()
        .args(["attach", &spec(seg.id())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("vm.mmap_min_addr"), "{err}");
    assert!(!err.contains("owner"), "{err}");
}

#[test]
fn attach_beyond_the_address_space_limit_names_ulimit() {
    let seg = svshm::CreateOptions::new(1 << 30).noreserve(true).create();
    let Ok(seg) = seg else {
        eprintln!("skipped: cannot create a 1 GiB segment here");
        return;
    };
    let _g = Guard(seg.id());
    let out = StdCommand::new("sh")
        .args([
            "-c",
            &format!("ulimit -v 400000 && exec {} attach {}", bin(), seg.id()),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ulimit -v"), "{err}");
    assert!(!err.contains("kernel is out of memory"), "{err}");
}

// ---------------------------------------------------------------- channels

#[test]
fn different_modes_on_the_two_sides_are_not_called_squatting() {
    let name = unique_name("modes");
    let _n = NameGuard(name.clone());
    let mut r = spawn(&["read", &name, "-m", "660", "--wait", "60"], Stdio::null());
    let rio = collect(&mut r);
    let key = svshm_channel::channel_key(&name);
    segment_of_key(key);
    let (code, _, err) = run(&["write", &name, "--wait", "60"]);
    drop(r);
    drop(rio);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("both sides must give the same -m"), "{err}");
    assert!(err.contains("-m 660"), "{err}");
    assert!(!err.contains("not a channel of ours"), "{err}");
}

#[test]
fn a_writer_waiting_on_a_terminal_says_what_for_and_how_to_start_the_reader() {
    let name = unique_name("lonely");
    let _n = NameGuard(name.clone());
    let Some(shown) = on_terminal(&format!("{} write {name} /etc/hostname --wait 2", bin())) else {
        return;
    };
    assert!(
        shown.contains(&format!("waiting for a reader of channel \"{name}\"")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("start one with  svshm read {name} > FILE")),
        "{shown}"
    );
    assert!(shown.contains("per user"), "{shown}");
    assert!(shown.contains("timed out"), "{shown}");
}

#[test]
fn waiting_is_quiet_on_a_pipe_without_progress_or_verbose() {
    let name = unique_name("quiet");
    let _n = NameGuard(name.clone());
    let (code, _, err) = run(&["read", &name, "--wait", "2"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(!err.contains("waiting for a writer"), "{err}");
}

#[test]
fn progress_shows_the_waiting_state_and_the_connection() {
    use std::io::BufRead;
    let name = unique_name("progress-wait");
    let _n = NameGuard(name.clone());
    let mut r = spawn(
        &["read", &name, "--progress", "-m", "640", "--wait", "60"],
        Stdio::null(),
    );
    let mut err = std::io::BufReader::new(r.0.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(
        first.contains(&format!("waiting for a writer of channel \"{name}\"")),
        "{first}"
    );
    assert!(
        first.contains(&format!("svshm write {name} -m 640 FILE")),
        "{first}"
    );
    let w = svshm()
        .args(["write", &name, "-m", "640", "--wait", "60"])
        .write_stdin("hello\n")
        .output()
        .unwrap();
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(rest.contains("the writer (pid "), "{rest}");
    assert!(rest.contains("connected"), "{rest}");
    assert_eq!(r.0.wait().unwrap().code(), Some(0), "{rest}");
}

// ---------------------------------------------------------------- ls

#[test]
fn default_ls_leaves_out_empty_channel_columns_and_fits_the_terminal() {
    let g = private(4096);
    let text = stdout_of(&["ls"]);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    for empty in ["STATE", "FILL", "WRITER", "READER"] {
        assert!(!header.contains(&empty), "{empty} in {header:?}");
    }
    for kept in [
        "KEY", "ID", "PERMS", "OWNER", "SIZE", "NATTCH", "CPID", "COMMAND",
    ] {
        assert!(header.contains(&kept), "{kept} missing in {header:?}");
    }
    // Asked for, a column is shown even when empty.
    let asked = stdout_of(&["ls", "-o", "+STATE"]);
    assert!(asked.lines().next().unwrap().contains("STATE"), "{asked}");
    // JSON keeps every default field.
    let me = ls_entry(&["ls", "-J"], g.0);
    assert!(
        me.get("state").is_some() && me.get("writer").is_some(),
        "{me}"
    );

    let Some(shown) = on_terminal(&format!("stty cols 60 && {} ls", bin())) else {
        return;
    };
    assert!(shown.contains("KEY"), "{shown}");
    for line in shown.lines() {
        let line = line.trim_end_matches('\r');
        assert!(line.chars().count() <= 60, "wider than 60: {line:?}");
    }
}

#[test]
fn any_command_names_a_failed_stdout() {
    let _g = private(4096);
    for cmd in ["ls", "limits"] {
        let out = StdCommand::new(svshm_path())
            .arg(cmd)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "svshm: {cmd}: write to stdout (/dev/full) failed after 0 bytes"
            )),
            "{err}"
        );
    }
}

#[test]
fn set_with_an_invalid_uid_is_not_called_a_missing_segment() {
    let g = private(4096);
    let e = svshm::Segment::from_id(g.0)
        .set(Some(u32::MAX), None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("uid or gid is not valid"), "{e}");
    assert!(!e.contains("no segment has this id"), "{e}");
}
