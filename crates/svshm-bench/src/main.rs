//! `svshm-bench`: a cross-process comparison of ways to move bytes between two
//! processes on one Linux host — pipe, Unix socket, the TLPI §48.4 System V
//! protocol, iceoryx2 and svshm — with a two-thread floor measured in the same
//! run. See BENCHMARKS.md for the method.

// Unsafe code is confined to the modules that open with `#![allow(unsafe_code)]`
// and say why.
#![deny(unsafe_code)]

mod bench;
mod driver;
mod file;
mod floor;
mod plot;
mod report;
mod roles;
mod stats;
mod transport;
mod util;

use anyhow::{Context, Result, bail};
use bench::{Case, CaseKind, Plan};
use clap::{Args, Parser, Subcommand};
use driver::Ctx;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use transport::{Kind, Wait};
use util::parse_size;

#[derive(Parser)]
#[command(
    name = "svshm-bench",
    version,
    about = "Compare IPC transports between two processes, side by side"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One-way byte stream: GB/s (writer copies from its buffer, reader copies into its buffer).
    Stream {
        /// Bytes per write and per read.
        #[arg(long, value_parser = parse_size, default_value = "64K")]
        chunk: u64,
        /// Total bytes per run (default: calibrated to --seconds).
        #[arg(long, value_parser = parse_size)]
        bytes: Option<u64>,
        /// Wait mode (default: each transport's usual one).
        #[arg(long)]
        wait: Option<Wait>,
        #[command(flatten)]
        common: Common,
    },
    /// Round-trip latency over two one-way channels: p50, p99, p99.9, max.
    Pingpong {
        /// Payload bytes each way (at least 16).
        #[arg(long, value_parser = parse_size, default_value = "64")]
        size: u64,
        /// Recorded round trips (default: calibrated to --seconds).
        #[arg(long)]
        iters: Option<u64>,
        /// Spin (busy-poll) or block (sleep in the kernel).
        #[arg(long, default_value = "spin")]
        wait: Wait,
        #[command(flatten)]
        common: Common,
    },
    /// One-way message rate: messages/s.
    Messages {
        /// Bytes per message (at least 16).
        #[arg(long, value_parser = parse_size, default_value = "64")]
        size: u64,
        /// Messages per run (default: calibrated to --seconds).
        #[arg(long)]
        count: Option<u64>,
        /// Wait mode (default: each transport's usual one).
        #[arg(long)]
        wait: Option<Wait>,
        #[command(flatten)]
        common: Common,
    },
    /// The two-thread floor only: memcpy ring stream, 64 B messages, cache-line ping-pong.
    Floor {
        #[command(flatten)]
        common: Common,
    },
    /// Everything: streams of 4 KiB, 64 KiB and 1 MiB chunks, 64 B ping-pong
    /// (spin, block and adaptive), 64 B messages, and the floor; table, targets, plot.
    All {
        /// Shorter runs (about a quarter of the default time).
        #[arg(long)]
        quick: bool,
        /// Where to write the SVG plot.
        #[arg(long, default_value = "svshm-bench.svg")]
        svg: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// The command line at copy speed: a file through `svshm write` into
    /// `svshm read > OUT`, against `cat FILE > OUT` and `cat FILE | cat >
    /// OUT`, with OUT the null device and a file in --dir.
    File {
        /// Size of the input file (pseudo-random bytes, made in --dir).
        #[arg(long, value_parser = parse_size, default_value = "2G")]
        size: u64,
        /// Directory for the input and output files (tmpfs, so that the
        /// disk does not decide the race).
        #[arg(long, default_value = "/dev/shm")]
        dir: PathBuf,
        /// The svshm binary (default: the one next to svshm-bench).
        #[arg(long)]
        svshm: Option<PathBuf>,
        /// Measured runs per case (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Write one JSON object per result to this file (`-` for stdout).
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Internal: run one endpoint process (spawned by the driver).
    #[command(name = "__role", hide = true)]
    Role {
        /// The endpoint's configuration, as JSON.
        config: String,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// Transports to compare (comma-separated; default: all).
    #[arg(long, short, value_delimiter = ',')]
    transport: Vec<Kind>,
    /// Measured runs per transport and case (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Target length of one measured run, in seconds, when sizes are not given.
    #[arg(long)]
    seconds: Option<f64>,
    /// Ring / buffer size for every transport that has one (pipe, socket
    /// buffers, iceoryx2 queue, svshm ring, floor ring).
    #[arg(long, value_parser = parse_size, default_value = "256K")]
    ring: u64,
    /// Write one JSON object per result to this file (`-` for stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Do not pin the two processes to different CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Skip the two-thread floor.
    #[arg(long)]
    no_floor: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("svshm-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let mut floor_only = false;
    let (cases, common, svg, quick, wait) = match cli.cmd {
        Cmd::Role { config } => return roles::child_main(&config),
        Cmd::File {
            size,
            dir,
            svshm,
            runs,
            json,
        } => {
            let b = file::FileBench {
                size,
                dir,
                svshm: match svshm {
                    Some(p) => p,
                    None => file::default_svshm()?,
                },
                runs,
                json,
            };
            file::check(&b)?;
            print!("{}", file::run(&b)?);
            return Ok(());
        }
        Cmd::Stream {
            chunk,
            bytes,
            wait,
            common,
        } => {
            check_payload(chunk)?;
            (
                vec![Case {
                    kind: CaseKind::Stream {
                        chunk: chunk as usize,
                    },
                    fixed: bytes,
                }],
                common,
                None,
                false,
                wait,
            )
        }
        Cmd::Pingpong {
            size,
            iters,
            wait,
            common,
        } => {
            check_payload(size)?;
            (
                vec![Case {
                    kind: CaseKind::PingPong {
                        size: size as usize,
                        wait,
                    },
                    fixed: iters,
                }],
                common,
                None,
                false,
                None,
            )
        }
        Cmd::Messages {
            size,
            count,
            wait,
            common,
        } => {
            check_payload(size)?;
            (
                vec![Case {
                    kind: CaseKind::Messages {
                        size: size as usize,
                    },
                    fixed: count,
                }],
                common,
                None,
                false,
                wait,
            )
        }
        Cmd::Floor { mut common } => {
            floor_only = true;
            common.transport = Vec::new();
            let cases = default_cases();
            let mut plan_common = common.clone();
            plan_common.no_floor = false;
            (
                cases.into_iter().filter(|c| c.kind.has_floor()).collect(),
                plan_common,
                None,
                false,
                None,
            )
        }
        Cmd::All { quick, svg, common } => (default_cases(), common, Some(svg), quick, None),
    };
    let kinds = if common.transport.is_empty() {
        Kind::ALL.to_vec()
    } else {
        common.transport.clone()
    };
    let cpus = util::allowed_cpus();
    let pinned = if !common.no_pin && cpus.len() >= 2 {
        Some((cpus[0], cpus[1]))
    } else {
        None
    };
    let seconds = common.seconds.unwrap_or(if quick { 0.25 } else { 1.0 });
    if !common.ring.is_power_of_two() || common.ring < 4096 {
        bail!(
            "--ring must be a power of two of at least 4 KiB (got {})",
            common.ring
        );
    }
    let ctx = Ctx {
        cpus: pinned,
        ring: common.ring as usize,
        timeout: Duration::from_secs_f64((seconds * 40.0).max(60.0)),
        exact_ring: false,
    };
    let plan = Plan {
        cases,
        kinds: if floor_only { Vec::new() } else { kinds },
        floor: !common.no_floor,
        runs: common.runs.max(1),
        seconds,
        wait,
    };
    // Captured before the run: its load average is the one at the start.
    let machine = report::machine();
    let header = format!(
        "{}\n{}; ring {} (at least two payloads)",
        machine,
        report::placement(&ctx),
        util::fmt_size(ctx.ring as u64)
    );
    eprintln!("{header}");
    let started = Instant::now();
    let results = bench::run_plan(&plan, &ctx);
    let elapsed = started.elapsed();
    transport::ice::remove_empty_root();

    let lines = bench::json_lines(&results, &ctx);
    let mut out = std::io::stdout().lock();
    writeln!(out, "# svshm-bench results\n")?;
    writeln!(out, "{header}")?;
    writeln!(
        out,
        "{} measured run(s) per row (median shown), each about {seconds} s after a discarded calibration run; total {:.0} s; load average at the end {}",
        plan.runs,
        elapsed.as_secs_f64(),
        report::loadavg()
    )?;
    write!(out, "{}", report::tables(&results, plan.runs))?;
    let mem: Vec<&bench::JsonLine> = lines.iter().filter(|l| l.workload == "memory").collect();
    if !mem.is_empty() {
        writeln!(
            out,
            "\n### peak RSS of one endpoint process (max over stream and message runs)\n"
        )?;
        writeln!(out, "| transport | KiB | what |\n|---|---:|---|")?;
        for m in &mem {
            writeln!(
                out,
                "| {} | {:.0} | {} |",
                m.transport,
                m.value,
                m.parameters["stat"].as_str().unwrap_or("")
            )?;
        }
    }
    if svg.is_some() {
        writeln!(out, "\n### targets\n")?;
        write!(out, "{}", report::targets(&results, &lines))?;
    }
    out.flush()?;
    drop(out);
    if let Some(path) = &common.json {
        let mut text = String::new();
        for l in &lines {
            text.push_str(&serde_json::to_string(l)?);
            text.push('\n');
        }
        if path.as_os_str() == "-" {
            print!("{text}");
        } else {
            std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
        }
    }
    if let Some(path) = &svg {
        let sub = [
            machine.clone(),
            format!(
                "{}; median of {} runs; load average at the end {}",
                report::placement(&ctx),
                plan.runs,
                report::loadavg()
            ),
        ];
        plot::write_svg(&results, path, &sub)
            .with_context(|| format!("write {}", path.display()))?;
        eprintln!("plot written to {}", path.display());
    }
    let failed: Vec<String> = results
        .iter()
        .flat_map(|c| {
            c.series
                .iter()
                .filter(|s| s.error.is_some() || !s.failures.is_empty())
                .map(move |s| format!("{} / {}", c.kind.title(), s.target.name()))
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} series had failed runs (see the table notes): {}",
            failed.len(),
            failed.join("; ")
        );
    }
    Ok(())
}

fn check_payload(n: u64) -> Result<()> {
    if n < util::MIN_PAYLOAD as u64 || n > (1 << 30) {
        bail!(
            "payload size {n} out of range: use 16 bytes to 1 GiB (payloads carry 16 bytes of stamps)"
        );
    }
    Ok(())
}

fn default_cases() -> Vec<Case> {
    let mut v: Vec<Case> = [4096usize, 65536, 1 << 20]
        .iter()
        .map(|&c| Case {
            kind: CaseKind::Stream { chunk: c },
            fixed: None,
        })
        .collect();
    v.push(Case {
        kind: CaseKind::PingPong {
            size: 64,
            wait: Wait::Spin,
        },
        fixed: None,
    });
    v.push(Case {
        kind: CaseKind::PingPong {
            size: 64,
            wait: Wait::Block,
        },
        fixed: None,
    });
    v.push(Case {
        kind: CaseKind::PingPong {
            size: 64,
            wait: Wait::Adaptive,
        },
        fixed: None,
    });
    v.push(Case {
        kind: CaseKind::Messages { size: 64 },
        fixed: None,
    });
    v
}
