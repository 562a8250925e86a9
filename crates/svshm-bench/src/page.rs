//! The benchmark page (`svshm-bench all --markdown BENCHMARKS.md`): method,
//! machine, tables, targets, plots, sweeps and `file`, from one run. Every
//! sentence that states a number or a comparison is built here from the
//! measurements, so the page cannot drift from its own tables.

use crate::bench::{CaseKind, CaseResult};
use crate::driver::Target;
use crate::report::checks;
use crate::sweep::{Sweep, bytes_per_s, payload};
use crate::transport::{Kind, Wait};
use crate::util::fmt_size;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// What the page says about the machine.
pub struct Machine {
    /// CPU model name (/proc/cpuinfo).
    pub cpu: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// Memory (MemTotal), if known.
    pub memory: String,
    /// `rustc --version`, if a rustc is on the PATH.
    pub rustc: String,
    /// Date and time (UTC) when the page was made.
    pub date: String,
}

fn first_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    })
}

fn command_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Machine {
    /// Reads /proc and runs `rustc --version` and `date -u`.
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpu: first_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
            cpus: crate::util::allowed_cpus().len(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            memory: first_field(&meminfo, "MemTotal")
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map(|kib| format!("{:.1} GiB", kib as f64 / (1u64 << 20) as f64))
                .unwrap_or_else(|| "unknown".into()),
            rustc: command_line(
                &std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()),
                &["--version"],
            )
            .unwrap_or_else(|| "unknown (no rustc on the PATH)".into()),
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
                .unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// Everything the page is made of.
pub struct Page<'a> {
    /// The machine.
    pub machine: Machine,
    /// How the endpoints were placed.
    pub placement: String,
    /// Whether this was a `--quick` run.
    pub quick: bool,
    /// The run's header lines (machine line, placement, ring).
    pub header: &'a str,
    /// Runs, seconds, total time, load.
    pub run_line: &'a str,
    /// The measurements.
    pub results: &'a [CaseResult],
    /// Measured runs per row.
    pub runs: usize,
    /// Target seconds per measured run.
    pub seconds: f64,
    /// Ring size.
    pub ring: usize,
    /// The tables, memory table and targets, as printed on stdout.
    pub body: &'a str,
    /// The plots written (bench.svg first).
    pub plots: &'a [PathBuf],
    /// Where the page goes (plot links are made relative to it).
    pub markdown: &'a Path,
    /// The sweeps.
    pub sweep: &'a Sweep,
    /// The `file` table, or why it was not run.
    pub file: Result<String, String>,
    /// Input size of `file`.
    pub file_size: u64,
    /// Where the raw results went (`--json`), if to a file.
    pub json: Option<&'a Path>,
    /// Measured runs per `file` case.
    pub file_runs: usize,
    /// The `select` section, or why it was not run.
    pub many: Result<String, String>,
    /// The `parties` section, or why it was not run.
    pub parties: Result<String, String>,
}

/// `path` relative to the directory of `page`, when it lies below it.
fn link(page: &Path, path: &Path) -> String {
    let base = page.parent().unwrap_or(Path::new(""));
    let rel = if base.as_os_str().is_empty() {
        path
    } else {
        path.strip_prefix(base).unwrap_or(path)
    };
    rel.display().to_string()
}

fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}×", a / b)
}

/// A throughput or p50 value with its unit, for prose.
fn value(kind: &CaseKind, v: f64) -> String {
    match kind {
        CaseKind::Stream { .. } => format!("{v:.2} GB/s"),
        CaseKind::Messages { .. } => format!("{:.2} M messages/s", v / 1e6),
        CaseKind::PingPong { .. } => crate::plot::fmt_ns(v),
    }
}

fn stat(kind: &CaseKind) -> &'static str {
    if kind.higher_is_better() {
        "value"
    } else {
        "p50"
    }
}

fn med(cr: &CaseResult, t: Target) -> Option<f64> {
    cr.get(t)?
        .median(&cr.kind, stat(&cr.kind))
        .filter(|v| v.is_finite() && *v > 0.0)
}

/// One sentence per case: the svshm row the targets use, against the best
/// peer and the floor, and the zero-copy race.
fn case_summary(cr: &CaseResult) -> Vec<String> {
    let mut out = Vec::new();
    let own = match cr.kind {
        CaseKind::Stream { .. } => Kind::SvshmStream,
        _ => Kind::SvshmMsg,
    };
    let what = if cr.kind.higher_is_better() {
        ""
    } else {
        " p50 round trip"
    };
    if let Some(v) = med(cr, Target::Transport(own)) {
        let mut s = format!(
            "**{}**: {}{what} {}",
            cr.kind.title(),
            own.name(),
            value(&cr.kind, v)
        );
        if let Some((t, b)) = cr.best_peer(stat(&cr.kind)) {
            let _ = write!(
                s,
                ", {} the best peer's ({}, {})",
                ratio(v, b),
                t.name(),
                value(&cr.kind, b)
            );
        }
        if let Some(f) = med(cr, Target::Floor) {
            let _ = write!(s, ", {} the floor's ({})", ratio(v, f), value(&cr.kind, f));
        }
        if let Some(f) = med(cr, Target::FramedFloor) {
            let _ = write!(
                s,
                ", {} the framed-ring floor's ({})",
                ratio(v, f),
                value(&cr.kind, f)
            );
        }
        out.push(s + ".");
    }
    let (zc, izc) = (
        med(cr, Target::Transport(Kind::SvshmZc)),
        med(cr, Target::Transport(Kind::Iceoryx2Zc)),
    );
    if let (Some(a), Some(b)) = (zc, izc) {
        let lead = if cr.kind.higher_is_better() == (a >= b) {
            "svshm-zc leads"
        } else {
            "iceoryx2-zc leads"
        };
        out.push(format!(
            "Zero-copy, {}: svshm-zc{what} is {} iceoryx2-zc's ({} against {}): {lead}.",
            cr.kind.title(),
            ratio(a, b),
            value(&cr.kind, a),
            value(&cr.kind, b)
        ));
    }
    if let CaseKind::PingPong {
        wait: Wait::Block | Wait::Adaptive,
        ..
    } = cr.kind
    {
        let cpu: Vec<String> = cr
            .series
            .iter()
            .filter(|s| s.error.is_none())
            .filter_map(|s| {
                s.cpu_per_unit()
                    .map(|c| format!("{} {:.1} µs", s.target.name(), c / 1e3))
            })
            .collect();
        if !cpu.is_empty() {
            out.push(format!(
                "CPU per round trip, {} (both endpoints, user + system): {}.",
                cr.kind.title(),
                cpu.join(", ")
            ));
        }
    }
    out
}

/// Sentences about one size sweep: where svshm leads, and its ratio to the
/// best other transport at the smallest and the largest size.
fn sweep_summary(label: &str, own: Kind, cases: &[CaseResult]) -> Option<String> {
    let me = Target::Transport(own);
    let mut lead = 0;
    let mut points = Vec::new();
    for cr in cases {
        let Some(v) = bytes_per_s(cr, me) else {
            continue;
        };
        let best = cr
            .series
            .iter()
            .filter(|s| s.target != me)
            .filter_map(|s| bytes_per_s(cr, s.target).map(|b| (s.target, b)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((t, b)) = best {
            if v >= b {
                lead += 1;
            }
            points.push((payload(cr), v, t, b));
        }
    }
    let (first, last) = (points.first()?, points.last()?);
    let at = |p: &(usize, f64, Target, f64)| {
        format!(
            "at {} it is {} the best other transport ({})",
            fmt_size(p.0 as u64),
            ratio(p.1, p.3),
            p.2.name()
        )
    };
    Some(format!(
        "{label}: {} is the fastest at {lead} of {} sizes; {}, and {}.",
        own.name(),
        points.len(),
        at(first),
        at(last)
    ))
}

fn ring_summary(sw: &Sweep) -> Option<String> {
    let pts: Vec<(usize, f64)> = sw
        .rings
        .iter()
        .filter_map(|(r, cr)| {
            bytes_per_s(cr, Target::Transport(Kind::SvshmStream)).map(|v| (*r, v))
        })
        .collect();
    let lo = pts.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
    let hi = pts.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    Some(format!(
        "Ring size: svshm-stream with {} chunks ranges from {:.2} GB/s (ring {}) to {:.2} GB/s (ring {}), {} apart.",
        fmt_size(crate::sweep::RING_CHUNK as u64),
        lo.1 / 1e9,
        fmt_size(lo.0 as u64),
        hi.1 / 1e9,
        fmt_size(hi.0 as u64),
        ratio(hi.1, lo.1)
    ))
}

/// The generated summary: targets met and missed, then one line per case
/// and per sweep.
fn summary(p: &Page) -> String {
    let mut s = String::new();
    let cs = checks(p.results);
    let judged: Vec<_> = cs.iter().filter(|c| c.met().is_some()).collect();
    let met = judged.iter().filter(|c| c.met() == Some(true)).count();
    let _ = writeln!(
        s,
        "- Relative targets: {met} of {} met in this run.",
        judged.len()
    );
    for c in judged.iter().filter(|c| c.met() == Some(false)) {
        if let Some((m, r, _)) = c.got {
            let _ = writeln!(
                s,
                "  - missed: {} — {m:.2}× (per-round {r:.2}×, limit {:.2}×)",
                c.what,
                c.limit.unwrap_or(f64::NAN)
            );
        }
    }
    for cr in p.results {
        for line in case_summary(cr) {
            let _ = writeln!(s, "- {line}");
        }
    }
    for line in [
        sweep_summary("Message size, messages", Kind::SvshmMsg, &p.sweep.messages),
        sweep_summary(
            "Message size, byte streams",
            Kind::SvshmStream,
            &p.sweep.streams,
        ),
        ring_summary(p.sweep),
    ]
    .into_iter()
    .flatten()
    {
        let _ = writeln!(s, "- {line}");
    }
    s
}

/// The page as markdown.
pub fn render(p: &Page) -> String {
    let m = &p.machine;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Benchmarks\n\n<!-- Generated by `svshm-bench all --markdown`; edit the generator \
         (crates/svshm-bench/src/page.rs), not this file. -->\n"
    );
    s.push_str(
        "`crates/svshm-bench` (binary `svshm-bench`) moves the same bytes between **two processes** \
         over every transport and prints the results side by side, with the two-thread hardware \
         floor measured in the same run. This page is one run of `svshm-bench all --markdown`: \
         the method, the machine, the tables, the targets with their verdicts, the plots, the \
         size sweeps and the command-line copy. Every number and every comparison in it was \
         written by the program from that run.\n\n",
    );
    if p.quick {
        s.push_str(
            "> **Quick run** (`--quick`): short runs, few sweep points and a small file, made to \
             check the generator. Do not quote these numbers.\n\n",
        );
    }
    s.push_str(
        "```sh\ncargo build --release --workspace\n\
         ./target/release/svshm-bench all --runs 5 --markdown BENCHMARKS.md --json docs/bench.jsonl   # this page\n\
         ./target/release/svshm-bench all --quick                             # tables and targets only\n\
         ./target/release/svshm-bench sweep --quick                           # size sweeps only\n\
         ./target/release/svshm-bench file --size 1G                          # svshm write | svshm read\n\
         ./target/release/svshm-bench parties                                 # topics and services vs their peers\n```\n\n",
    );
    let _ = writeln!(s, "## Machine\n\n| | |\n|---|---|");
    let _ = writeln!(s, "| CPU | {} |", m.cpu);
    let _ = writeln!(s, "| CPUs usable | {} |", m.cpus);
    let _ = writeln!(s, "| memory | {} |", m.memory);
    let _ = writeln!(s, "| kernel | {} |", m.kernel);
    let _ = writeln!(s, "| rustc | {} |", m.rustc);
    let _ = writeln!(s, "| date | {} |", m.date);
    let _ = writeln!(s, "| placement | {} |", p.placement);
    let _ = writeln!(s, "\n## Summary\n");
    s.push_str(&summary(p));
    s.push_str(&method(p));
    let _ = writeln!(s, "\n## Results\n\n```\n{}\n{}\n```", p.header, p.run_line);
    if let Some(bench) = p.plots.first() {
        let _ = writeln!(
            s,
            "\n![throughput by chunk size and round-trip percentiles]({})",
            link(p.markdown, bench)
        );
    }
    if let Some(j) = p.json {
        let _ = writeln!(
            s,
            "\nRaw results, one JSON object per line (every run's value, CPU): [`{0}`]({0}).",
            link(p.markdown, j)
        );
    }
    s.push_str(p.body);
    let _ = writeln!(
        s,
        "\n## How cost grows\n\n{} measured run(s) per point (median shown), each about {} s after a \
         discarded calibration run; the sweeps took {:.0} s. Payloads start at 16 B (each carries two \
         8-byte stamps). Ring: {} for the size sweep (at least two payloads); the ring sweep gives \
         svshm-stream exactly the ring named, even below two chunks, and moves a fixed 256 MiB \
         per run (8 laps of the ring when that is more), without a calibration run.\n",
        p.sweep.runs,
        p.sweep.seconds,
        p.sweep.elapsed,
        fmt_size(p.ring as u64)
    );
    for plot in p.plots.iter().skip(1) {
        let alt = plot
            .file_stem()
            .map(|n| n.to_string_lossy().replace('-', " "))
            .unwrap_or_default();
        let _ = writeln!(s, "![{alt}]({})\n", link(p.markdown, plot));
    }
    s.push_str(&p.sweep.markdown());
    let _ = writeln!(
        s,
        "\n## The command line at copy speed (`svshm-bench file`)\n\n\
         A {} file of pseudo-random bytes in /dev/shm goes through `svshm write NAME FILE` into \
         `svshm read NAME > OUT`, against `cat FILE > OUT` and `cat FILE | cat > OUT`; OUT is the \
         null device and a file in /dev/shm (overwritten in place, so that no way pays for fresh pages); median of {} runs after one discarded round, every way interleaved.\n",
        fmt_size(p.file_size),
        p.file_runs
    );
    match &p.file {
        Ok(t) => s.push_str(t),
        Err(e) => {
            let _ = writeln!(s, "Not run: {e}");
        }
    }
    let _ = writeln!(
        s,
        "\n## Many channels, one thread (`svshm-bench select`)\n\n\
         A server thread sleeps in `Select` over N request channels; a client thread sends a \
         64 B request on one of them, chosen at random, and sleeps in `recv` on the response \
         channel. Every end uses `Wait::Block`, so each hop is a futex hand-off; the first row \
         is the same round trip over one channel with a blocking `recv` instead of `Select`. \
         Messages/s: the client sends round robin over the N channels, the server drains \
         whatever `Select` reports ready.\n"
    );
    match &p.many {
        Ok(t) => s.push_str(t),
        Err(e) => {
            let _ = writeln!(s, "Not run: {e}");
        }
    }
    let _ = writeln!(
        s,
        "\n## Many parties: topics and services (`svshm-bench parties`)\n\n\
         Threads of one process. Fan-out: one publisher thread and four subscriber threads, \
         unpinned; every subscriber receives and checks every message, reading it in place \
         (svshm: a backpressure topic and `recv_ref`; iceoryx2: publish-subscribe without safe \
         overflow, the publisher retrying until delivered, and the received sample). The \
         publishers write each message once: iceoryx2 into a loaned sample, svshm with \
         `try_send` (64 B) or into a loan (64 KiB). Both get the same buffering in bytes per \
         subscriber. With five threads on few CPUs, busy-spinning starves the thread that holds \
         the data, so both sides of both transports poll and call `yield_now` when the ring is \
         empty or full (svshm asks a one-endpoint `Select::try_select` whether a message or \
         room is there; iceoryx2's publisher waits inside `send`, where its own adaptive wait \
         yields the same way). Per-subscriber throughput is the messages published divided by \
         the time until the last subscriber had them all; the two transports' runs are \
         interleaved. Round trips: a client thread and a server thread, 64 B echoed back and \
         compared. svshm services (`Client::call`, the server's `recv` and `reply`) spinning, \
         against iceoryx2 request-response with both sides busy-polling, on two CPUs; svshm \
         services with `Wait::Block` (a futex hand-off each way) against a Unix socket pair \
         with blocking `read` and `write`, on two CPUs and both on one CPU, where a hand-off \
         is a context switch on the spot instead of the wake-up of another CPU.\n"
    );
    match &p.parties {
        Ok(t) => s.push_str(t),
        Err(e) => {
            let _ = writeln!(s, "Not run: {e}");
        }
    }
    s.push_str(LIMITS);
    s
}

fn method(p: &Page) -> String {
    format!(
        "\n## Method\n\n\
**Processes.** The driver re-executes its own binary with a hidden `__role` subcommand, once per \
endpoint — never `fork` and never threads. It prepares each channel first (pipe or socketpair, the \
TLPI segment and semaphore set, or unique iceoryx2 / svshm names), spawns the two endpoints, and \
each closes the other side's descriptors. Both connect, print `ready` and start together on `go`; \
each prints a JSON report and stays until the driver says `exit`, so a sender never leaves before \
its receiver has everything. A watchdog kills a run that hangs.\n\n\
**Verification.** Every payload carries its sequence number in its first 8 bytes and `seq ^ magic` \
in its last 8. Copying readers check both for every unit and a running sum at the end; in-place \
readers (`svshm-zc`, `iceoryx2-zc`) add up every 8-byte word where it lies; all compare the first \
and last unit byte for byte. Loss, duplication, reordering and tearing fail the run.\n\n\
**Workloads.** `stream`: the writer copies chunks from its buffer into the transport, the reader \
copies them out into its buffer; GB/s (10⁹ bytes/s) from the writer's first send to the reader's \
last check. `pingpong`: 64 B each way over two one-way channels, timed on the ping side; the first \
10 % are warm-up; p50/p99/p99.9/max are nearest-rank percentiles, each the median over the runs. \
`spin` busy-polls; `block` sleeps in the kernel on every hand-off (svshm `Wait::Block`); \
`adaptive` is each transport's blocking call as a program uses it (kernel transports block, svshm \
`Wait::Adaptive` spins briefly then sleeps on a futex, iceoryx2 polls as long then waits on its \
event listener). `messages`: one-way, one send and one receive per message.\n\n\
**CPU.** Each endpoint reports its process CPU time (user + system, all threads, \
`CLOCK_PROCESS_CPUTIME_ID`) from the start signal to its report. *CPU busy* is that over the wall \
time, summed over both endpoints (2.00: two cores spinning); *CPU µs per round trip* is the sum of \
both divided by the round trips (warm-up included).\n\n\
**Floor.** The same work between two threads of one process: a plain SPSC byte ring (memcpy in, \
memcpy out) for streams and messages, one cache line bounced between the cores for spin \
ping-pong, FUTEX_WAIT/FUTEX_WAKE on every hand-off for block ping-pong. Spin ping-pong also has \
a *framed-ring floor* (`floor-framed`): two rings of frames shaped like svshm's (a 16-byte header \
whose tag word is stored last with Release, the payload after it), the reader polling the tag \
and copying the payload out, and nothing else — what any ring of messages costs here.\n\n\
**Sizing and order.** Each (case, transport) pair gets one discarded calibration run that sizes \
the measured runs to about {seconds} s; then every pair runs {runs} time(s), the order of the \
transports rotated every round and reversed every other round, so drift hits all alike. Tables \
show the median and the range. Targets are checked two ways — ratio of the medians and median of \
the per-round ratios — and count as met only if both meet them.\n\n\
**Transports** (each gets a {ring} ring or buffer, or two payloads if larger): `pipe` \
(`pipe(2)` with `F_SETPIPE_SZ`), `unix` (`socketpair(AF_UNIX, SOCK_STREAM)`), `tlpi-1k` / \
`tlpi-64k` (TLPI §48.4: one System V segment and two System V semaphores, 1 KiB or 64 KiB buffer), \
`iceoryx2` (publish-subscribe of `[u8]`: the writer loans a slice sample and writes its buffer into \
it, the reader copies the payload out), `iceoryx2-zc` (the same writer; the reader reads the \
sample in place), `svshm-stream` (`StreamWriter::write_all` / `StreamReader::read_exact`), \
`svshm-msg` (`Sender::send` / `Receiver::recv_ref` copied out), `svshm-zc` (the writer fills a \
`Sender::loan`, the reader reads in place). The zero-copy pair does one copy instead of two and is \
compared with each other, not with the copying targets. *Best peer* is the best non-svshm row of \
a table; stream targets use `svshm-stream`, latency and message targets `svshm-msg`. \
The message transports queue the same number of messages: iceoryx2 a subscriber queue of as many \
samples as payloads fit in the ring, svshm's message channels room for as many frames \
(`Options::messages`: a frame's 16-byte header can double the ring to a power of two).\n",
        seconds = p.seconds,
        runs = p.runs,
        ring = fmt_size(p.ring as u64),
    )
}

const LIMITS: &str = "\n## Limits of this harness\n\n\
- One machine per page: SMT siblings against separate cores, or several sockets, need runs on \
such machines.\n\
- Latencies are percentiles of every recorded round trip, not an HDR histogram; `--json` keeps \
p50/p99/p99.9/max of every run.\n\
- Killing the driver with SIGKILL skips its cleanup: the current run's TLPI segment and \
semaphore set and iceoryx2 files under its `svb<pid>r<n>_` prefix stay until removed (`ipcrm`, \
`rm /dev/shm/svb*`). Every other ending removes them.\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_to_the_page() {
        assert_eq!(
            link(Path::new("BENCHMARKS.md"), Path::new("docs/bench.svg")),
            "docs/bench.svg"
        );
        assert_eq!(
            link(Path::new("/a/B.md"), Path::new("/a/docs/x.svg")),
            "docs/x.svg"
        );
    }
}
