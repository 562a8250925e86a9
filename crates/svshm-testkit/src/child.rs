//! Child processes: a test binary re-executed to play a role (never `fork()`
//! inside the threaded test harness), and bounded waits and kills.

use std::io::Write;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the role a re-executed test binary plays.
pub const ROLE: &str = "SVSHM_TEST_ROLE";

/// The test-harness arguments that make a test binary run only the test
/// `entry`: exact match, output not captured, one thread, quiet.
pub fn child_args(entry: &str) -> [&str; 5] {
    ["--exact", entry, "--nocapture", "--test-threads=1", "-q"]
}

/// A command running this test binary as a child: only the test `entry`,
/// with [`ROLE`] set to `role`.
pub fn child_command(entry: &str, role: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("the test binary's path"));
    c.args(child_args(entry)).env(ROLE, role);
    c
}

/// Spawns [`child_command`] with the extra environment `env` and `stdout`.
pub fn spawn_child(entry: &str, role: &str, env: &[(&str, String)], stdout: Stdio) -> Child {
    let mut c = child_command(entry, role);
    c.stdout(stdout);
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn child test process")
}

/// The role this process plays, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// In a child: runs the role named in [`ROLE`] and exits with the code it
/// returns (role `noop`: exits 0). In the parent (variable unset): returns at
/// once.
pub fn dispatch(roles: impl FnOnce(&str) -> i32) {
    if let Some(role) = role() {
        let code = if role == "noop" { 0 } else { roles(&role) };
        let _ = std::io::stdout().flush();
        std::process::exit(code);
    }
}

/// Waits for a child with a bound (a hung child fails the test instead of
/// hanging CI); kills and reaps it, then panics, if the bound passes.
pub fn wait_child(child: &mut Child, bound: Duration) -> ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t0.elapsed() > bound {
            let _ = child.kill();
            let s = child.wait().unwrap();
            panic!(
                "child {} did not finish within {bound:?} (killed: {s})",
                child.id()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends SIGKILL to a child we spawned and have not reaped yet.
pub fn sigkill(child: &Child) {
    sigkill_pid(child.id() as i32).expect("kill(2) the child");
}

/// Sends SIGKILL to process `pid` (one the test started, such as a
/// grandchild it was told about). `Err`: no such process (gone already), or
/// `pid` is not positive.
pub fn sigkill_pid(pid: i32) -> std::io::Result<()> {
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| std::io::Error::other(format!("no process has pid {pid}")))?;
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)?;
    Ok(())
}
