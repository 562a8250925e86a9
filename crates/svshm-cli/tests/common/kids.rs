//! Running `svshm` processes side by side for the topic and service tests:
//! each killed if a test fails, waited for with a bound, and every segment
//! they made removed afterwards.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running `svshm`: killed and reaped on drop; its output gathered by
/// threads (stdout line by line when asked, else whole).
pub struct Kid {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    lines: Option<Receiver<String>>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<String>>,
}

/// How a finished `svshm` ended.
#[derive(Debug)]
pub struct Ended {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Ended {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Starts `svshm ARGS` with a piped stdin (dropped at once unless
/// `keep_stdin`), its stdout collected whole.
pub fn start(args: &[&str], keep_stdin: bool) -> Kid {
    start_in(
        Command::new(super::svshm_path()).args(args),
        keep_stdin,
        false,
    )
}

/// As [`start`], with stdout delivered line by line to [`Kid::line`].
pub fn start_lines(args: &[&str], keep_stdin: bool) -> Kid {
    start_in(
        Command::new(super::svshm_path()).args(args),
        keep_stdin,
        true,
    )
}

fn start_in(cmd: &mut Command, keep_stdin: bool, lines: bool) -> Kid {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("svshm starts");
    let stdin = child.stdin.take().filter(|_| keep_stdin);
    let out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stderr = Some(std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    }));
    let (lines, stdout) = if lines {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        (Some(rx), None)
    } else {
        let mut out = out;
        let h = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        (None, Some(h))
    };
    Kid {
        child,
        stdin,
        lines,
        stdout,
        stderr,
    }
}

impl Kid {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line of stdout, waiting at most 10 s.
    pub fn line(&self) -> String {
        self.lines
            .as_ref()
            .expect("started with start_lines")
            .recv_timeout(Duration::from_secs(10))
            .expect("a line within 10 s")
    }

    /// Sends a signal (by name: STOP, CONT, KILL, TERM, INT).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// Closes its stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits at most `secs` for it to exit (killing it then, and failing).
    pub fn wait(mut self, secs: u64) -> Ended {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let err = self.stderr.take().map(|h| h.join().unwrap());
                panic!(
                    "svshm (pid {}) still ran after {secs} s: {err:?}",
                    self.pid()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        if let Some(rx) = self.lines.take() {
            for l in rx.iter() {
                stdout.extend_from_slice(l.as_bytes());
                stdout.push(b'\n');
            }
        }
        Ended {
            code: status.code(),
            stdout,
            stderr: self
                .stderr
                .take()
                .map(|h| h.join().unwrap())
                .unwrap_or_default(),
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The ids of the segments whose channel header names `name` (a topic's or
/// a service's listener).
pub fn named_segments(name: &str) -> Vec<i32> {
    svshm::proc_segments()
        .unwrap_or_default()
        .iter()
        .filter(|s| {
            svshm_channel::inspect(s.id)
                .ok()
                .flatten()
                .is_some_and(|c| c.name == name)
        })
        .map(|s| s.id)
        .collect()
}

/// The ids of the segments created by process `pid`.
pub fn created_by(pid: i32) -> Vec<i32> {
    svshm::proc_segments()
        .unwrap_or_default()
        .iter()
        .filter(|s| s.creator_pid == pid)
        .map(|s| s.id)
        .collect()
}

/// Removes, when dropped, every segment named `name` (see
/// [`named_segments`]) and every one created by the pids given.
pub struct Cleanup {
    pub name: String,
    pub pids: Vec<i32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut ids = named_segments(&self.name);
        for &p in &self.pids {
            ids.extend(created_by(p));
        }
        for id in ids {
            let _ = svshm::Segment::from_id(id).remove();
        }
    }
}
