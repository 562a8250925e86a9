//! Runs a util-linux tool and `svshm`'s drop-in for it on identical segment
//! setups, each in a fresh IPC namespace (`unshare --ipc`, root only): the
//! namespace holds only the segments the setup made, so ids are the same in
//! both runs, and everything made in it goes away with it, even if a test fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use svshm_testkit::{NOBODY, ReachableCopy};

/// What one run printed and left: stdout, stderr, exit status, and the
/// segments afterwards (one line each, as `cols` of /proc/sysvipc/shm).
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
    pub after: String,
}

/// A place to run both tools from: a copy of `svshm` that uid 65534 can run.
pub struct Bench {
    pub svshm: ReachableCopy,
    dir: PathBuf,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether util-linux 2.38 `tool` is installed; says why not otherwise.
pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-V")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("2.38"));
    if !ok {
        eprintln!("skipped: util-linux 2.38 {tool} is not installed");
    }
    ok
}

/// A bench, or `None` (with the reason printed) when this cannot run: not
/// root, or no IPC namespace can be made.
pub fn bench() -> Option<Bench> {
    if svshm::euid() != 0 {
        eprintln!("skipped: needs root for unshare --ipc and to run a tool as uid {NOBODY}");
        return None;
    }
    match Command::new("unshare").args(["--ipc", "true"]).output() {
        Ok(o) if o.status.success() => {}
        other => {
            eprintln!("skipped: unshare --ipc does not work here: {other:?}");
            return None;
        }
    }
    let svshm = match ReachableCopy::of(&assert_cmd::cargo::cargo_bin("svshm")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: cannot copy svshm where uid {NOBODY} can run it: {e}");
            return None;
        }
    };
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "svshm-compat-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("skipped: cannot make {}: {e}", dir.display());
        return None;
    }
    Some(Bench { svshm, dir })
}

impl Bench {
    /// Runs `setup` (shell, `$S` is svshm) then `argv` in a fresh IPC
    /// namespace, as root or (`nobody`) as uid 65534; `cols` are the awk
    /// fields of /proc/sysvipc/shm recorded afterwards.
    pub fn run(&self, setup: &str, argv: &[&str], nobody: bool, cols: &str) -> Outcome {
        let d = self.dir.display();
        let runner = if nobody {
            format!("setpriv --reuid {NOBODY} --regid {NOBODY} --clear-groups")
        } else {
            String::new()
        };
        let script = format!(
            "S={s}\n{setup}\n\
             cd /\nrc=0\n{runner} \"$@\" >{d}/out 2>{d}/err || rc=$?\necho $rc >{d}/rc\n\
             awk 'NR>1{{print {cols}}}' /proc/sysvipc/shm >{d}/after\n",
            s = self.svshm.path().display()
        );
        let o = Command::new("unshare")
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
            .args(["--ipc", "sh", "-ec", &script, "sh"])
            .args(argv)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "setup failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap();
        Outcome {
            stdout: read("out"),
            stderr: read("err"),
            code: read("rc").trim().parse().unwrap(),
            after: read("after"),
        }
    }

    /// Runs `/usr/bin/TOOL ARGS` and `svshm TOOL ARGS` on the same setup and
    /// asserts the same stdout, stderr (after the program name) and status,
    /// and the same segments left. Returns the outcome.
    pub fn compare(
        &self,
        tool: &str,
        setup: &str,
        args: &[&str],
        nobody: bool,
        cols: &str,
    ) -> Outcome {
        // By name (found in /usr/bin): getopt's messages start with argv[0].
        let mut real_argv = vec![tool];
        real_argv.extend_from_slice(args);
        let s = self.svshm.path().display().to_string();
        let mut our_argv = vec![s.as_str(), tool];
        our_argv.extend_from_slice(args);
        let real = self.run(setup, &real_argv, nobody, cols);
        let mut ours = self.run(setup, &our_argv, nobody, cols);
        ours.stderr = ours
            .stderr
            .replace(&format!("svshm: {tool}: "), &format!("{tool}: "))
            .replace(
                &format!("'svshm {tool} --help'"),
                &format!("'{tool} --help'"),
            );
        assert_eq!(
            ours,
            real,
            "svshm {tool} {args:?} differs from {tool} {args:?} (as {})",
            if nobody { "nobody" } else { "root" }
        );
        ours
    }
}
