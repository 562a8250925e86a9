//! Every transport moves a small payload correctly between two processes
//! (the bench binary re-executes itself), and nothing is left behind.

use std::process::Command;
use std::sync::Mutex;

/// Runs are serialised: they pin to the same CPUs and some of them spin.
static SERIAL: Mutex<()> = Mutex::new(());

const PEERS: &[&str] = &[
    "pipe",
    "unix",
    "tlpi-1k",
    "tlpi-64k",
    "iceoryx2",
    "iceoryx2-zc",
];
const SVSHM: &[&str] = &["svshm-stream", "svshm-msg", "svshm-zc"];

fn all() -> Vec<&'static str> {
    PEERS.iter().chain(SVSHM).copied().collect()
}

struct Run {
    ok: bool,
    pid: u32,
    stdout: String,
    stderr: String,
}

fn bench(args: &[&str]) -> Run {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let child = Command::new(env!("CARGO_BIN_EXE_svshm-bench"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn svshm-bench");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for svshm-bench");
    Run {
        ok: out.status.success(),
        pid,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json_results(r: &Run) -> Vec<serde_json::Value> {
    r.stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Checks the run succeeded and every transport in `names` has a positive value
/// for `workload`; returns the results.
fn check(r: &Run, workload: &str, names: &[&str]) -> Vec<serde_json::Value> {
    assert!(
        r.ok,
        "svshm-bench failed\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    let res = json_results(r);
    for name in names {
        let line = res
            .iter()
            .find(|j| j["transport"] == *name && j["workload"] == workload)
            .unwrap_or_else(|| panic!("no {workload} result for {name} in\n{}", r.stdout));
        assert!(
            line["value"].as_f64().unwrap_or(0.0) > 0.0,
            "{name}: {line}"
        );
        assert!(line.get("error").is_none(), "{name}: {line}");
        assert!(
            line["unit"].is_string() && line["parameters"].is_object(),
            "{line}"
        );
    }
    // iceoryx2 files of this run are gone.
    let prefix = format!("svb{}r", r.pid);
    for dir in ["/dev/shm", "/tmp/iceoryx2/services", "/tmp/iceoryx2/nodes"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                assert!(!n.starts_with(&prefix), "left behind: {dir}/{n}");
            }
        }
    }
    res
}

#[test]
fn every_transport_streams_bytes_across_processes() {
    let t = all().join(",");
    // 4 KiB chunks through 1 KiB TLPI buffers exercise the splitting; the last
    // chunk is compared whole and every chunk's stamps are checked.
    let r = bench(&[
        "stream",
        "--chunk",
        "4K",
        "--bytes",
        "1M",
        "--runs",
        "1",
        "--no-floor",
        "-t",
        &t,
        "--json",
        "-",
    ]);
    let res = check(&r, "stream", &all());
    let streams = res.iter().filter(|j| j["workload"] == "stream");
    assert!(
        streams.clone().count() == all().len()
            && streams.clone().all(|j| j["parameters"]["bytes"] == 1 << 20)
    );
}

#[test]
fn every_transport_ping_pongs_spin_and_block() {
    let t = all().join(",");
    for wait in ["spin", "block"] {
        let r = bench(&[
            "pingpong",
            "--size",
            "64",
            "--iters",
            "300",
            "--wait",
            wait,
            "--runs",
            "1",
            "--no-floor",
            "-t",
            &t,
            "--json",
            "-",
        ]);
        let res = check(&r, "pingpong", &all());
        for name in all() {
            let stats: Vec<&str> = res
                .iter()
                .filter(|j| j["transport"] == name && j["workload"] == "pingpong")
                .filter_map(|j| j["parameters"]["stat"].as_str())
                .collect();
            assert_eq!(stats, ["p50", "p99", "p99.9", "max"], "{name}");
        }
    }
}

#[test]
fn every_transport_sends_messages_and_the_floor_runs() {
    let t = all().join(",");
    let r = bench(&[
        "messages", "--size", "64", "--count", "2000", "--runs", "1", "-t", &t, "--json", "-",
    ]);
    let mut names = all();
    names.push("floor");
    check(&r, "messages", &names);
}

#[test]
fn floor_alone() {
    let r = bench(&["floor", "--seconds", "0.02", "--runs", "1", "--json", "-"]);
    check(&r, "stream", &["floor"]);
    check(&r, "pingpong", &["floor"]);
    check(&r, "messages", &["floor"]);
    // The spin ping-pong also has the framed-ring floor, verified like the
    // transports (a wrong or torn echo fails the run).
    let spin = json_results(&r)
        .into_iter()
        .filter(|j| j["transport"] == "floor-framed")
        .map(|j| j["parameters"]["wait"].as_str().map(str::to_owned))
        .collect::<Vec<_>>();
    assert!(
        !spin.is_empty() && spin.iter().all(|w| w.as_deref() == Some("spin")),
        "{spin:?}\n{}",
        r.stdout
    );
}

#[test]
fn bad_sizes_are_usage_errors() {
    let r = bench(&["pingpong", "--size", "8", "--iters", "10", "-t", "pipe"]);
    assert!(!r.ok);
    assert!(r.stderr.contains("16 bytes"), "{}", r.stderr);
}

/// Inside a fresh IPC namespace, no System V segment or semaphore set may be
/// left once the bench has run every transport.
#[test]
fn no_system_v_object_is_left_behind() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("unshare").arg("--version").output().is_err()
    {
        eprintln!("skipped: needs root and unshare(1) for a private IPC namespace");
        return;
    }
    let exe = env!("CARGO_BIN_EXE_svshm-bench");
    let script = format!(
        "{exe} stream --chunk 4K --bytes 256K --runs 1 -t {t} >/dev/null && \
         {exe} pingpong --iters 100 --wait block --runs 1 --no-floor -t {t} >/dev/null && \
         ipcs -m | awk 'NR>3 && NF' | wc -l && ipcs -s | awk 'NR>3 && NF' | wc -l",
        t = all().join(",")
    );
    let out = Command::new("unshare")
        .args(["--ipc", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(counts, ["0", "0"], "segments, semaphore sets left: {text}");
}

#[test]
fn quick_sweep_writes_tables_and_plots() {
    let dir = std::env::temp_dir().join(format!("svshm-bench-sweep-{}", std::process::id()));
    let d = dir.to_string_lossy().into_owned();
    let r = bench(&[
        "sweep",
        "--quick",
        "--seconds",
        "0.01",
        "-t",
        "svshm-stream,svshm-msg",
        "--svg-dir",
        &d,
    ]);
    assert!(
        r.ok,
        "sweep failed\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    for heading in ["one-way messages", "byte streams", "ring size"] {
        assert!(
            r.stdout.contains(heading),
            "no {heading} table in\n{}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("| 16 MiB |"), "{}", r.stdout);
    for svg in ["sweep-size.svg", "sweep-ring.svg"] {
        let text = std::fs::read_to_string(dir.join(svg)).expect(svg);
        assert!(
            text.contains("<svg") && text.contains("svshm-stream"),
            "{svg}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_case_copies_through_the_command_line_and_cleans_up() {
    let svshm = std::path::Path::new(env!("CARGO_BIN_EXE_svshm-bench")).with_file_name("svshm");
    if !svshm.exists() {
        eprintln!(
            "skipped: no svshm binary next to svshm-bench ({}); `cargo test --workspace` builds it",
            svshm.display()
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("svshm-bench-file-{}", std::process::id()));
    let d = dir.to_string_lossy().into_owned();
    let r = bench(&["file", "--size", "8M", "--runs", "1", "--dir", &d]);
    assert!(
        r.ok,
        "file failed\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    // Both outputs measured, every way, with the verdict line.
    for row in ["| /dev/null |", "| file in "] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row} row in\n{}", r.stdout));
        assert_eq!(line.matches(" s |").count(), 4, "{line}");
    }
    assert!(r.stdout.contains("target"), "{}", r.stdout);
    // The input and output files are gone.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {d}: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
