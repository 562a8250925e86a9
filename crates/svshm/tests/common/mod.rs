//! Helpers shared by the integration tests: unique keys, skipping with a
//! printed reason, and child processes.
//!
//! The general helpers (keys, skipping, role dispatch) come from
//! `svshm_testkit`; what is here is this crate's own.
//!
//! A child process is this very test binary, run again with the filter
//! `child_entry` and the role in the `SVSHM_TEST_ROLE` environment variable
//! (never `fork()` inside the threaded test harness). Each test file
//! has a `#[test] fn child_entry()` that calls `dispatch`: without the
//! variable it does nothing; with it, it runs the role and exits the process
//! with the role's exit code. A child reports to the parent with
//! `REPORT name=value` lines on stdout ([`report`]).

// Each test file uses a different subset of these helpers.
#![allow(dead_code, unused_imports)]

use std::borrow::BorrowMut;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::str::FromStr;

pub use svshm_testkit::{NOBODY, ROLE, dispatch, is_root, key_for, skip};

/// In a child: sends `name=value` to the parent.
pub fn report(name: &str, value: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "REPORT {name}={value}");
    let _ = out.flush();
}

/// In a child: tells a [`Waiting`] parent that the child is ready, then blocks
/// until the parent releases it (closes our stdin, also when the parent dies).
pub fn ready_then_wait() {
    report("ready", "");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

/// In a child: a parameter the parent passed as environment variable `name`.
pub fn arg<T: FromStr>(name: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    let text = std::env::var(name)
        .unwrap_or_else(|_| panic!("child: environment variable {name} is not set"));
    text.parse()
        .unwrap_or_else(|e| panic!("child: {name}={text:?}: {e:?}"))
}

/// In a child: turns core dumps off before a deliberate crash (the host's
/// `core_pattern` may write `core` files into the working directory).
pub fn no_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct we pass, which lives across the call.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
    // SAFETY: PR_SET_DUMPABLE takes plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

/// The test each file's children run (its `#[test] fn child_entry`).
const ENTRY: &str = "child_entry";

/// A command that runs this test binary as a child playing `role`.
pub fn child(role: &str) -> Command {
    svshm_testkit::child_command(ENTRY, role)
}

/// Like [`child`], as uid/gid 65534 (nobody), running a copy of the test
/// binary that user can reach (the checkout may be in a private directory).
/// Use it as a `Command`; the copy is removed when it drops.
pub fn child_as_nobody(role: &str) -> svshm_testkit::CommandAs {
    let mut c = svshm_testkit::this_test_as_nobody();
    c.args(svshm_testkit::child_args(ENTRY)).env(ROLE, role);
    c
}

/// Why a child cannot run as `nobody` here, or `None` if it can: needs root,
/// and a copy of the test binary must run as uid 65534.
pub fn nobody_unavailable() -> Option<String> {
    svshm_testkit::nobody_unavailable_for_this_test()
}

/// The `unshare` options for a new IPC namespace: as root just `--ipc`;
/// otherwise inside a new user namespace where we are root, which may change
/// the IPC namespace's limits too.
fn unshare_options() -> &'static [&'static str] {
    if is_root() {
        &["--ipc"]
    } else {
        &["--user", "--map-root-user", "--ipc"]
    }
}

/// Like [`child`], inside a new IPC namespace (`unshare --ipc`).
pub fn child_in_new_ipc_namespace(role: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut c = Command::new("unshare");
    c.args(unshare_options())
        .arg(exe)
        .args(svshm_testkit::child_args(ENTRY))
        .env(ROLE, role);
    c
}

/// Why [`child_in_new_ipc_namespace`] cannot work here, or `None` if it can.
pub fn unshare_unavailable() -> Option<String> {
    let opts = unshare_options().join(" ");
    match Command::new("unshare")
        .args(unshare_options())
        .arg("true")
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`unshare {opts} true` failed ({}): {}; creating namespaces is not permitted here",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run `unshare` ({e}); install util-linux")),
    }
}

/// The `name=value` of a `REPORT` line. The harness may have printed
/// `test child_entry ... ` on the same line just before it.
fn parse_report(line: &str) -> Option<(&str, &str)> {
    let at = line.find("REPORT ")?;
    line[at + "REPORT ".len()..].split_once('=')
}

fn parse_reports(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .filter_map(parse_report)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A child that ran to the end.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub reports: HashMap<String, String>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// A reported value; panics with the child's whole output if missing.
    pub fn get(&self, name: &str) -> &str {
        match self.reports.get(name) {
            Some(v) => v,
            None => panic!("child did not report {name:?}: {self:#?}"),
        }
    }

    /// Panics with the child's whole output unless it exited with status 0.
    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "child failed: {self:#?}");
        self
    }
}

/// Runs a child to the end, capturing what it prints.
pub fn run(mut c: impl BorrowMut<Command>) -> Finished {
    let out = c
        .borrow_mut()
        .stdin(Stdio::null())
        .output()
        .expect("spawn the child test process");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Finished {
        status: out.status,
        reports: parse_reports(&stdout),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A child that reported `ready` and now waits for [`Waiting::finish`] (or for
/// this value to drop, which also releases and reaps it, so a failing test
/// leaves no process behind).
#[derive(Debug)]
pub struct Waiting {
    child: Child,
    stdin: Option<ChildStdin>,
    pub reports: HashMap<String, String>,
}

impl Waiting {
    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// A value the child reported before `ready`.
    pub fn get(&self, name: &str) -> &str {
        match self.reports.get(name) {
            Some(v) => v,
            None => panic!("child did not report {name:?}: {:?}", self.reports),
        }
    }

    /// Releases the child and waits for it to exit.
    pub fn finish(mut self) -> ExitStatus {
        drop(self.stdin.take());
        self.child.wait().expect("wait for the child")
    }

    /// Kills the child with SIGKILL (a crash) and waits for it.
    pub fn kill(mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("wait for the child")
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Spawns a child and reads its reports until it says `ready`.
pub fn spawn_waiting(mut c: impl BorrowMut<Command>) -> Waiting {
    let c = c.borrow_mut();
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().expect("spawn the child test process");
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reports = HashMap::new();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                let Some((k, v)) = parse_report(&line) else {
                    continue;
                };
                if k == "ready" {
                    break;
                }
                reports.insert(k.to_string(), v.to_string());
            }
            _ => {
                drop(stdin);
                let status = child.wait();
                panic!("child exited before it was ready: {status:?}; reports so far: {reports:?}");
            }
        }
    }
    Waiting {
        child,
        stdin,
        reports,
    }
}

/// Spawns `n` children from `make` and waits until all are ready.
pub fn spawn_many(n: usize, mut make: impl FnMut(usize) -> Command) -> Vec<Waiting> {
    (0..n).map(|i| spawn_waiting(make(i))).collect()
}
