//! `svshm top`: the plain frame of `--once`, and the live view driven in tmux.

mod common;

use common::{Guard, NameGuard, svshm, svshm_path, unique_key, unique_name};
use std::process::Command;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use svshm::CreateOptions;
use svshm_channel::{Endpoint, Options, StreamReader, StreamWriter};

/// How long to wait for anything before failing (polling, never asserting a
/// time).
const PATIENCE: Duration = Duration::from_secs(60);

/// A connected stream channel, held open by two threads: the writer has
/// written `fill` bytes the reader has not read yet. On drop the writer
/// closes, the reader drains and closes, and whatever segment is left under
/// the name is removed.
struct OpenChannel {
    name: String,
    stop: Option<mpsc::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    _guard: NameGuard,
}

impl OpenChannel {
    fn new(name: &str, fill: usize) -> OpenChannel {
        let guard = NameGuard(name.to_string());
        let opts = Options::new()
            .capacity(4096)
            .timeout(Some(Duration::from_secs(60)));
        let (stop, stopped) = mpsc::channel::<()>();
        let (stop_r, stopped_r) = mpsc::channel::<()>();
        let (ready, is_ready) = mpsc::channel::<()>();
        let (n, o) = (name.to_string(), opts.clone());
        let reader = std::thread::spawn(move || {
            let mut r = StreamReader::connect(&Endpoint::name(n), &o).expect("reader connects");
            let _ = stopped_r.recv();
            let mut buf = [0u8; 4096];
            while r.read_some(&mut buf).map(|n| n > 0).unwrap_or(false) {}
            r.close();
        });
        let n = name.to_string();
        let writer = std::thread::spawn(move || {
            let mut w = StreamWriter::connect(&Endpoint::name(n), &opts).expect("writer connects");
            let data = vec![b'x'; fill];
            let mut done = 0;
            while done < fill {
                done += w.write_some(&data[done..]).expect("write");
            }
            let _ = ready.send(());
            let _ = stopped.recv();
            let _ = w.close();
            let _ = stop_r.send(());
        });
        is_ready
            .recv_timeout(PATIENCE)
            .expect("the channel connected and the writer wrote");
        OpenChannel {
            name: name.to_string(),
            stop: Some(stop),
            threads: vec![writer, reader],
            _guard: guard,
        }
    }
}

impl Drop for OpenChannel {
    fn drop(&mut self) {
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A plain (non-channel) segment of an odd size under a unique key.
fn plain_segment(size: usize) -> (Guard, String) {
    let key = unique_key("top-plain");
    let seg = CreateOptions::new(size).key(key).create().unwrap();
    (Guard(seg.id()), key.to_string())
}

#[test]
fn once_lists_a_channel_with_its_fill_and_a_plain_segment() {
    let name = unique_name("top");
    let chan = OpenChannel::new(&name, 1000);
    let (plain, key) = plain_segment(12345);
    let out = svshm()
        .args(["top", "--once", "--interval", "0.2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "svshm top --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\u{1b}'), "escape sequences in:\n{text}");
    // ID NAME KIND STATE FILL FILL% CAPACITY WRITTEN BYTES/S WRITER READER
    let row: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&chan.name.as_str()))
        .unwrap_or_else(|| panic!("channel {name} not listed:\n{text}"));
    assert_eq!(row[2], "stream", "{text}");
    assert_eq!(row[4], "1000", "fill, in:\n{text}");
    assert_eq!(row[5], "24%", "fill of the 4 KiB ring, in:\n{text}");
    assert_eq!(row[6], "4096", "capacity, in:\n{text}");
    assert_eq!(
        row[8], "0",
        "nothing written during the measurement, in:\n{text}"
    );
    // KEY ID OWNER SIZE ...
    let seg = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&key.as_str()))
        .unwrap_or_else(|| panic!("segment {key} not listed:\n{text}"));
    assert_eq!(seg[1], plain.0.to_string(), "{text}");
    assert_eq!(seg[3], "12345", "{text}");
    assert!(text.contains("messages/s"), "help on rates, in:\n{text}");
}

#[test]
fn once_escapes_channel_names_and_filters() {
    let base = unique_name("top-evil");
    let name = format!("{base}\u{1b}]0;owned\u{7}\n");
    let _chan = OpenChannel::new(&name, 10);
    let (_plain, key) = plain_segment(4321);
    let out = svshm()
        .args(["top", "--once", "--interval", "0", "--filter", &base])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "raw control characters in:\n{text}"
    );
    assert!(
        text.contains(&format!("{base}\\x1b]0;owned\\x07\\x0a")),
        "escaped name missing:\n{text}"
    );
    assert!(!text.contains(&key), "the filter kept {key}:\n{text}");
}

#[test]
fn once_refuses_a_forever_interval_and_needs_no_terminal_for_help() {
    let out = svshm()
        .args(["top", "--once", "--interval", "1e300"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Without --once and without a terminal: a usage error, no escape codes.
    let out = svshm().arg("top").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--once"));
    let help = svshm().args(["top", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("read-only") && help.contains("Messages per second"));
}

/// A tmux server of our own (its own socket and config); killed on drop.
struct Tmux {
    socket: String,
    config: std::path::PathBuf,
}

impl Tmux {
    /// A new tmux server (its own socket and config) whose one 120x40 pane
    /// runs `svshm top ARGS` with `env` (`NAME=value ...`, may be empty), then
    /// reports its exit status and the terminal's modes, then waits for Enter.
    fn start(args: &str, env: &str) -> Tmux {
        let socket = unique_name("tmux");
        let config = std::env::temp_dir().join(format!("{socket}.conf"));
        // The pane stays (dead) after its process ends, so that can be seen.
        std::fs::write(&config, "set -g remain-on-exit on\n").unwrap();
        let tmux = Tmux { socket, config };
        let script = format!(
            "{env} '{}' top {args}; echo top-exited-$?; stty -a; read line",
            svshm_path().display()
        );
        let out = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "120",
            "-y",
            "40",
            &script,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The config is read as the server starts, which may race with the
        // first pane on some tmux versions: set it on the window too (the
        // pane's script waits for Enter at its end, so it is still there).
        tmux.cmd(&["set-option", "-w", "-t", "top", "remain-on-exit", "on"]);
        tmux
    }

    /// Waits for top to end with `status`, checks the terminal is as it was
    /// (normal screen, cursor shown, raw mode off), then lets the pane end.
    /// Returns the screen.
    fn assert_restored(&self, status: &str) -> String {
        let s = self.wait("top to exit", |s| s.contains("top-exited-"));
        assert!(s.contains(&format!("top-exited-{status}")), "{s}");
        assert_eq!(self.format("#{alternate_on}"), "0", "{s}");
        assert_eq!(self.format("#{cursor_flag}"), "1", "{s}");
        self.wait("stty's report", |s| s.contains("icanon"));
        let s = self.screen();
        assert!(!s.contains("-icanon") && !s.contains("-echo "), "{s}");
        assert!(
            !s.contains("Segments:"),
            "the view was left on screen:\n{s}"
        );
        self.keys(&["Enter"]);
        let start = Instant::now();
        while self.format("#{pane_dead}") != "1" {
            assert!(start.elapsed() < PATIENCE, "the pane's process did not end");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The shell's own status (its `read` returned): 0 when tmux recorded
        // one (some tmux versions mark a pane dead without a status).
        let status = self.format("#{pane_dead_status}");
        assert!(
            status.is_empty() || status == "0",
            "the pane's shell ended with {status}"
        );
        s
    }

    /// The pid of `svshm top`, the child of the pane's shell, once it draws.
    fn top_pid(&self) -> i32 {
        self.wait("the view", |s| s.contains("Segments:"));
        let shell = self.format("#{pane_pid}");
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("the pane's shell lists its children");
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no child of the pane's shell: {children:?}"))
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f"])
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    fn format(&self, f: &str) -> String {
        String::from_utf8_lossy(&self.cmd(&["display-message", "-p", "-t", "top", f]).stdout)
            .trim()
            .to_string()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    fn literal(&self, text: &str) {
        assert!(
            self.cmd(&["send-keys", "-t", "top", "-l", text])
                .status
                .success()
        );
    }

    /// Polls the screen until `ok` holds; panics with the last screen if it
    /// never does.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if start.elapsed() > PATIENCE {
                panic!("waited for {what}; the screen is:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Whether tmux runs here; says why the test is skipped when not.
fn have_tmux() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: tmux is not installed (apt-get install tmux)");
    }
    ok
}

#[test]
fn live_view_in_tmux_sorts_filters_and_quits_restoring_the_terminal() {
    if !have_tmux() {
        return;
    }
    let name = unique_name("top");
    let _chan = OpenChannel::new(&name, 1000);
    // Short enough to fit the NAME column; its escape must show as text.
    let evil = format!("ev{}\u{1b}[7mX", std::process::id());
    let _evil = OpenChannel::new(&evil, 10);
    let evil_shown = format!("ev{}\\x1b[7mX", std::process::id());
    let (_plain, key) = plain_segment(23456);
    let tmux = Tmux::start("--interval 0.3", "");

    tmux.wait("the header, the sort and the channels", |s| {
        s.contains("svshm top")
            && s.contains("sort: size")
            && s.contains(&name)
            && s.contains(&evil_shown)
    });
    assert_eq!(tmux.format("#{alternate_on}"), "1");

    tmux.keys(&["s"]);
    tmux.wait("the sort indicator to change", |s| s.contains("sort: rss"));

    // Filter by the channel's name: its row stays, the plain segment goes.
    tmux.keys(&["/"]);
    tmux.literal(&name);
    tmux.keys(&["Enter"]);
    tmux.wait("the filter by name", |s| {
        s.contains(&format!("filter: {name}"))
            && s.matches(name.as_str()).count() >= 2
            && !s.contains(&key)
    });

    // Filter by the plain segment's key: the channel goes.
    tmux.keys(&["/"]);
    tmux.literal(&key);
    tmux.keys(&["Enter"]);
    tmux.wait("the filter by key", |s| {
        s.contains(&format!("filter: {key}"))
            && s.matches(key.as_str()).count() >= 2
            && !s.contains(&name)
    });

    tmux.keys(&["q"]);
    tmux.assert_restored("0");
}

#[test]
fn live_view_restores_the_terminal_on_sigterm_and_on_panic() {
    if !have_tmux() {
        return;
    }
    // SIGTERM: the view ends as the signal would (128 + 15), terminal restored.
    let tmux = Tmux::start("", "");
    let top = tmux.top_pid();
    assert!(kill("-TERM", top));
    tmux.assert_restored("143");
    drop(tmux);

    // A panic (forced in debug builds) restores it before the message prints.
    if cfg!(debug_assertions) {
        let tmux = Tmux::start("", "SVSHM_TOP_TEST_PANIC=1 RUST_BACKTRACE=0");
        let s = tmux.assert_restored("101");
        assert!(s.contains("SVSHM_TOP_TEST_PANIC is set"), "{s}");
    }
}

/// Sends `signal` (`-TERM`) to `pid`, a process this test started.
fn kill(signal: &str, pid: i32) -> bool {
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether process `pid` has ended (gone, or a zombie not yet reaped).
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn live_view_ends_when_its_terminal_goes_away() {
    if !have_tmux() {
        return;
    }
    // Killing the server closes the pane's terminal under top: it must end,
    // not spin on a terminal nobody reads.
    let tmux = Tmux::start("", "");
    let top = tmux.top_pid();
    let _ = tmux.cmd(&["kill-server"]);
    let start = Instant::now();
    while !ended(top) {
        if start.elapsed() > PATIENCE {
            kill("-KILL", top);
            panic!("svshm top ({top}) still runs after its terminal closed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
