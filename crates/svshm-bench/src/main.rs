//! `svshm-bench`: a cross-process comparison of ways to move bytes between two
//! processes on one Linux host — pipe, Unix socket, the TLPI §48.4 System V
//! protocol, iceoryx2 and svshm — with a two-thread floor measured in the same
//! run. See BENCHMARKS.md for the method.

// Unsafe code is confined to the modules that open with `#![allow(unsafe_code)]`
// and say why.
#![deny(unsafe_code)]

mod asyncrt;
mod bench;
mod driver;
mod file;
mod floor;
mod many;
mod page;
mod parties;
mod plot;
mod report;
mod roles;
mod stats;
mod sweep;
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
    /// With --markdown, also the sweeps and `file`, written as the benchmark page.
    All {
        /// Shorter runs (about a quarter of the default time; with
        /// --markdown, quick sweeps and a smaller file too).
        #[arg(long)]
        quick: bool,
        /// Where to write the SVG plot (default: svshm-bench.svg, or
        /// DOCS/bench.svg with --markdown).
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Also run `sweep` and `file` and write the whole benchmark page
        /// (method, machine, tables, targets, plots, generated summary) here.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// With --markdown: directory for bench.svg and the sweep plots.
        #[arg(long, default_value = "docs")]
        docs: PathBuf,
        /// With --markdown: input size of the `file` part (default 2G; 256M with --quick).
        #[arg(long, value_parser = parse_size)]
        file_size: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// How cost grows: throughput by message size (16 B … 16 MiB, messages and
    /// streams; svshm, iceoryx2, unix, pipe) and svshm-stream throughput by ring
    /// size (16 KiB … 64 MiB); markdown tables on stdout, log-log SVG plots.
    Sweep {
        /// Fewer points (×16 steps), one measured run each, shorter runs.
        #[arg(long)]
        quick: bool,
        /// Directory for sweep-size.svg and sweep-ring.svg.
        #[arg(long, default_value = "docs")]
        svg_dir: PathBuf,
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
    /// Many channels, one waiting thread: round trips and message rate
    /// through a `Select` over N channels against one channel's blocking
    /// round trip, the CPU of a thread selecting on 256 idle channels, and
    /// async round trips on tokio against tokio's `UnixStream`.
    Select {
        /// Channel counts to measure (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
        channels: Vec<usize>,
        /// Measured runs per count (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Length of one measured run, in seconds.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Write the result as JSON to this file (`-` for stdout).
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Many parties: fan-out 1→4 of svshm topics against iceoryx2
    /// publish-subscribe (64 B and 64 KiB), and request/response round trips
    /// of svshm services against iceoryx2 request-response and a Unix socket.
    Parties {
        /// Measured runs per row (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Length of one measured run, in seconds.
        #[arg(long, default_value_t = 0.5)]
        seconds: f64,
        /// Write the result as JSON to this file (`-` for stdout).
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

/// Settings of a `sweep` run (on its own or as part of the page).
struct SweepArgs {
    quick: bool,
    runs: usize,
    seconds: f64,
    kinds: Vec<Kind>,
}

impl SweepArgs {
    fn new(quick: bool, common: &Common) -> SweepArgs {
        SweepArgs {
            quick,
            runs: if quick { 1 } else { common.runs.max(1) },
            seconds: common.seconds.unwrap_or(if quick { 0.03 } else { 0.1 }),
            kinds: common.transport.clone(),
        }
    }

    fn run(&self, ctx: &Ctx) -> sweep::Sweep {
        let s = sweep::run(ctx, self.quick, self.runs, self.seconds, &self.kinds);
        transport::ice::remove_empty_root();
        s
    }
}

/// The session's context from the common options.
fn make_ctx(common: &Common, seconds: f64) -> Result<Ctx> {
    let cpus = util::allowed_cpus();
    let pinned = if !common.no_pin && cpus.len() >= 2 {
        Some((cpus[0], cpus[1]))
    } else {
        None
    };
    if !common.ring.is_power_of_two() || common.ring < 4096 {
        bail!(
            "--ring must be a power of two of at least 4 KiB (got {})",
            common.ring
        );
    }
    Ok(Ctx {
        cpus: pinned,
        ring: common.ring as usize,
        timeout: Duration::from_secs_f64((seconds * 40.0).max(60.0)),
        exact_ring: false,
    })
}

/// Subtitle lines of a plot: the machine and the placement.
fn plot_subtitle(machine: &str, ctx: &Ctx, runs: usize) -> [String; 2] {
    [
        machine.to_string(),
        format!(
            "{}; median of {} runs; load average at the end {}",
            report::placement(ctx),
            runs,
            report::loadavg()
        ),
    ]
}

fn run_sweep(quick: bool, svg_dir: PathBuf, common: Common) -> Result<()> {
    let args = SweepArgs::new(quick, &common);
    let ctx = make_ctx(&common, args.seconds)?;
    let machine = report::machine();
    eprintln!("{machine}\n{}", report::placement(&ctx));
    let sw = args.run(&ctx);
    let mut out = std::io::stdout().lock();
    writeln!(out, "# svshm-bench sweep\n")?;
    writeln!(
        out,
        "{machine}\n{}\n{} measured run(s) per point (median shown), each about {} s after a discarded calibration run; total {:.0} s\n",
        report::placement(&ctx),
        sw.runs,
        sw.seconds,
        sw.elapsed
    )?;
    write!(out, "{}", sw.markdown())?;
    out.flush()?;
    for p in sw.write_svgs(&svg_dir, &plot_subtitle(&machine, &ctx, sw.runs))? {
        eprintln!("plot written to {}", p.display());
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let mut floor_only = false;
    let mut page: Option<(PathBuf, PathBuf, Option<u64>)> = None;
    let (cases, common, svg, quick, wait) = match cli.cmd {
        Cmd::Sweep {
            quick,
            svg_dir,
            common,
        } => return run_sweep(quick, svg_dir, common),
        Cmd::Role { config } => return roles::child_main(&config),
        Cmd::Select {
            channels,
            runs,
            seconds,
            json,
        } => {
            if channels.contains(&0) {
                bail!("--channels: every count must be at least 1");
            }
            let m = many::run(&channels, runs, seconds)?;
            let a = asyncrt::run(runs, seconds)?;
            println!("# svshm-bench select\n\n{}\n", report::machine());
            print!("{}", m.markdown());
            println!("\n## Async round trips\n");
            print!("{}", a.markdown());
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&(&m, &a))? + "\n";
                if path.as_os_str() == "-" {
                    print!("{text}");
                } else {
                    std::fs::write(&path, text)
                        .with_context(|| format!("write {}", path.display()))?;
                }
            }
            return if m
                .verdicts()
                .iter()
                .chain(&a.verdicts())
                .all(|(_, met)| *met)
            {
                Ok(())
            } else {
                bail!("a select target was missed")
            };
        }
        Cmd::Parties {
            runs,
            seconds,
            json,
        } => {
            if !(seconds > 0.0 && seconds <= 60.0) {
                bail!("--seconds: give a length between 0 and 60 s");
            }
            let p = parties::run(runs, seconds)?;
            println!(
                "# svshm-bench parties\n\n{}\nload average at the end {}\n",
                report::machine(),
                report::loadavg()
            );
            print!("{}", p.markdown());
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&p)? + "\n";
                if path.as_os_str() == "-" {
                    print!("{text}");
                } else {
                    std::fs::write(&path, text)
                        .with_context(|| format!("write {}", path.display()))?;
                }
            }
            return if p.verdicts().iter().all(|(_, met)| *met) {
                Ok(())
            } else {
                bail!("a parties target was missed")
            };
        }
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
        Cmd::All {
            quick,
            svg,
            markdown,
            docs,
            file_size,
            common,
        } => {
            let svg = svg.unwrap_or_else(|| match &markdown {
                Some(_) => docs.join("bench.svg"),
                None => PathBuf::from("svshm-bench.svg"),
            });
            if let Some(md) = markdown {
                page = Some((md, docs, file_size));
            }
            (default_cases(), common, Some(svg), quick, None)
        }
    };
    let kinds = if common.transport.is_empty() {
        Kind::ALL.to_vec()
    } else {
        common.transport.clone()
    };
    let seconds = common.seconds.unwrap_or(if quick { 0.25 } else { 1.0 });
    let ctx = make_ctx(&common, seconds)?;
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
    let run_line = format!(
        "{} measured run(s) per row (median shown), each about {seconds} s after a discarded calibration run; total {:.0} s; load average at the end {}",
        plan.runs,
        elapsed.as_secs_f64(),
        report::loadavg()
    );
    let mut body = report::tables(&results, plan.runs);
    body.push_str(&report::memory(&lines));
    if svg.is_some() {
        body.push_str("\n### targets\n\n");
        body.push_str(&report::targets(&results, &lines));
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "# svshm-bench results\n")?;
        writeln!(out, "{header}")?;
        writeln!(out, "{run_line}")?;
        write!(out, "{body}")?;
        out.flush()?;
    }
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
    let subtitle = plot_subtitle(&machine, &ctx, plan.runs);
    if let Some(path) = &svg {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        plot::write_svg(&results, path, &subtitle)
            .with_context(|| format!("write {}", path.display()))?;
        eprintln!("plot written to {}", path.display());
    }
    if let (Some((md, docs, file_size)), Some(svg)) = (page, &svg) {
        let sw_args = SweepArgs::new(quick, &common);
        let sw = sw_args.run(&ctx);
        let mut plots = vec![svg.clone()];
        plots.extend(sw.write_svgs(&docs, &plot_subtitle(&machine, &ctx, sw.runs))?);
        let size = file_size.unwrap_or(if quick { 256 << 20 } else { 2 << 30 });
        let file_runs = if quick { 3 } else { 5 };
        let file_md = file::default_svshm().and_then(|svshm| {
            let b = file::FileBench {
                size,
                dir: PathBuf::from("/dev/shm"),
                svshm,
                runs: file_runs,
                json: None,
            };
            file::check(&b)?;
            file::run(&b)
        });
        let (sel_runs, sel_secs) = if quick { (1, 0.3) } else { (3, 1.0) };
        let many_md = many::run(&[1, 16, 64, 256], sel_runs, sel_secs).and_then(|m| {
            let a = asyncrt::run(sel_runs, sel_secs)?;
            Ok(format!(
                "{}\n### Async round trips\n\nTwo tasks of one tokio runtime (two workers) echo 64 B: svshm's \
                 `send_async`/`recv_async` over two message channels against tokio's `UnixStream` pair.\n\n{}",
                m.markdown(),
                a.markdown()
            ))
        });
        let (party_runs, party_secs) = if quick { (1, 0.3) } else { (3, 0.5) };
        let parties_md = parties::run(party_runs, party_secs).map(|p| p.markdown());
        let text = page::render(&page::Page {
            machine: page::Machine::probe(),
            placement: report::placement(&ctx),
            quick,
            header: &header,
            run_line: &run_line,
            results: &results,
            runs: plan.runs,
            seconds,
            ring: ctx.ring,
            body: &body,
            plots: &plots,
            markdown: &md,
            sweep: &sw,
            file: file_md.map_err(|e| format!("{e:#}")),
            file_size: size,
            json: common.json.as_deref().filter(|j| j.as_os_str() != "-"),
            file_runs,
            many: many_md.map_err(|e| format!("{e:#}")),
            parties: parties_md.map_err(|e| format!("{e:#}")),
        });
        std::fs::write(&md, text).with_context(|| format!("write {}", md.display()))?;
        eprintln!("page written to {}", md.display());
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
