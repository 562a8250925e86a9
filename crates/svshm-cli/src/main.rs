//! `svshm`: inspect, manage and transfer through System V shared memory.
//!
//! One tool for what `ipcs`, `ipcrm`, `ipcmk`, `lsipc` and TLPI's `svshm_*`
//! programs do for shared memory, plus a fast writer→reader channel. Thin over
//! the `svshm` library; this crate makes no raw calls of its own.
//!
//! Exit status: 0 success, 1 error, 2 usage error. A closed stdout (EPIPE, e.g.
//! `svshm ls | head -1`) ends the program quietly with 0.

#![forbid(unsafe_code)]

mod chan;
mod cmd;
mod getopt;
mod managed;
mod progress;
mod util;

use clap::{CommandFactory, Parser, Subcommand};
use std::io::{self, Write};
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Examples:
  svshm demo                         stream 1 GiB through a channel and a pipe, compare
  svshm write logs /etc/os-release & svshm read logs > copy.txt
                                     a byte-exact transfer (either side may start first)
  svshm sub ticks & seq 5 | svshm pub ticks --wait-for 1
                                     publish lines to every subscriber of a topic
  svshm serve upper -- tr a-z A-Z & echo hi | svshm call upper
                                     a service: a command run for each request
  svshm create -n demo -s 1M         create a 1 MiB segment under the name \"demo\", print its id
  svshm ls                           list every segment (channels too)
  svshm stat 5                       every field of segment 5, and who attaches it
  svshm ipcs -t                      exactly what `ipcs -m -t` prints
  svshm lsipc -b -c                  exactly what `lsipc -m -b -c` prints
  svshm rm --stale -v                remove segments left behind by crashed svshm processes

Run `svshm help COMMAND` for the options and an example of each command.";

/// Inspect, manage and transfer through System V shared memory.
///
/// A superset of ipcs/ipcrm/ipcmk/lsipc (for shared memory) and of the TLPI
/// svshm_* programs.
#[derive(Debug, Parser)]
#[command(name = "svshm", version, after_help = AFTER_HELP, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Ipcs(cmd::ipcs::Args),
    Lsipc(cmd::lsipc::Args),
    Ls(cmd::ls::Args),
    Stat(cmd::stat::Args),
    Create(cmd::create::Args),
    Rm(cmd::rm::Args),
    Gc(cmd::rm::GcArgs),
    Set(cmd::set::Args),
    Lock(cmd::lock::LockArgs),
    Unlock(cmd::lock::UnlockArgs),
    Limits(cmd::limits::Args),
    Usage(cmd::usage::Args),
    Attach(cmd::attach::Args),
    Who(cmd::who::Args),
    Dump(cmd::dump::Args),
    Top(cmd::top::Args),
    Write(cmd::write::Args),
    Read(cmd::read::Args),
    Pub(cmd::topic::PubArgs),
    Sub(cmd::topic::SubArgs),
    Call(cmd::service::CallArgs),
    Serve(cmd::service::ServeArgs),
    Demo(cmd::demo::Args),
    Ipcrm(cmd::ipcrm::Args),
    Ipcmk(cmd::ipcmk::Args),
    Completions(cmd::shell::CompletionsArgs),
    Man(cmd::shell::ManArgs),
    /// Internal: the pipe side of `svshm demo` (stdin → byte count and CRC-32).
    #[command(hide = true)]
    DemoSink,
}

fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Ipcs(a) => cmd::ipcs::run(a, out),
        Command::Lsipc(a) => cmd::lsipc::run(a, out),
        Command::Ls(a) => cmd::ls::run(a, out),
        Command::Stat(a) => cmd::stat::run(a, out),
        Command::Create(a) => cmd::create::run(a, out),
        Command::Rm(a) => cmd::rm::run(a, out),
        Command::Gc(a) => cmd::rm::run(a.into_rm(), out),
        Command::Set(a) => cmd::set::run(a, out),
        Command::Lock(a) => cmd::lock::run_lock(a, out),
        Command::Unlock(a) => cmd::lock::run_unlock(a, out),
        Command::Limits(a) => cmd::limits::run(a, out),
        Command::Usage(a) => cmd::usage::run(a, out),
        Command::Attach(a) => cmd::attach::run(a, out),
        Command::Who(a) => cmd::who::run(a, out),
        Command::Dump(a) => cmd::dump::run(a, out),
        Command::Top(a) => cmd::top::run(a, out),
        Command::Write(a) => cmd::write::run(a, out),
        Command::Read(a) => cmd::read::run(a, out),
        Command::Pub(a) => cmd::topic::run_pub(a, out),
        Command::Sub(a) => cmd::topic::run_sub(a, out),
        Command::Call(a) => cmd::service::run_call(a, out),
        Command::Serve(a) => cmd::service::run_serve(a, out),
        Command::Demo(a) => cmd::demo::run(a, out),
        Command::DemoSink => cmd::demo::sink(out),
        Command::Completions(a) => cmd::shell::completions(a, Cli::command(), out),
        Command::Man(a) => cmd::shell::man(a, Cli::command(), out),
        // Parsed like the C tools before clap sees them (see main); reached
        // only if that is bypassed.
        Command::Ipcrm(_) | Command::Ipcmk(_) => {
            anyhow::bail!("ipcrm and ipcmk take their arguments as util-linux's tools do")
        }
    }
}

/// Whether the error chain holds an EPIPE on our output.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// On SIGINT, SIGTERM or SIGHUP, removes the segments this process created,
/// then exits as the signal would (128 + signal number).
///
/// A channel marks its segment for destruction once both sides are attached,
/// but one still waiting for its peer would otherwise outlive a Ctrl-C (the
/// default action kills us without running any Drop). Removing a connected
/// channel's segment again is harmless: it is already marked.
fn remove_created_segments_on_signal() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let me = std::process::id() as i32;
            if let Ok(list) = svshm::proc_segments() {
                for s in list.iter().filter(|s| s.creator_pid == me) {
                    let _ = svshm::Segment::from_id(s.id).remove();
                }
            }
            std::process::exit(128 + sig);
        }
    });
}

fn main() -> ExitCode {
    let help = |name: &str| {
        let mut cmd = Cli::command();
        cmd.build();
        cmd.find_subcommand_mut(name)
            .map(|c| c.render_help().to_string())
            .unwrap_or_default()
    };
    if let Some(code) = cmd::run_util_linux_style(&help) {
        return ExitCode::from(code);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            let code = match e.kind() {
                K::DisplayHelp
                | K::DisplayVersion
                | K::DisplayHelpOnMissingArgumentOrSubcommand
                    if e.exit_code() == 0 =>
                {
                    0
                }
                // `svshm ipcs` and `svshm lsipc` keep util-linux's exit status:
                // 1 for a bad option.
                _ if matches!(std::env::args().nth(1).as_deref(), Some("ipcs" | "lsipc")) => 1,
                _ => 2,
            };
            // Printing help to a closed pipe is not an error either.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if matches!(
        cli.command,
        Command::Write(_)
            | Command::Read(_)
            | Command::Demo(_)
            | Command::Pub(_)
            | Command::Sub(_)
            | Command::Call(_)
    ) {
        remove_created_segments_on_signal();
    }
    // Our own buffer over the file descriptor itself: std's stdout is line
    // buffered, which splits every large write at its last newline into two
    // system calls (a `svshm read` of binary data paid that per chunk).
    let mut out = io::BufWriter::with_capacity(64 << 10, util::Counted::new(util::raw_stdout()));
    let result = run(cli, &mut out).and_then(|()| out.flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<util::UsageError>().is_some() => {
            let _ = out.flush();
            util::warn(format_args!("{e:#}"));
            let _ = writeln!(io::stderr().lock(), "\nFor more information, try '--help'.");
            ExitCode::from(2)
        }
        Err(e) => {
            // Whatever was printed before the error still goes out (if it can).
            let _ = out.flush();
            let sink = out.get_ref();
            if sink.failed && e.chain().count() == 1 && e.downcast_ref::<io::Error>().is_some() {
                // A bare io error from our own output: say which and how far.
                let what = std::env::args().nth(1).unwrap_or_default();
                let e = e.downcast::<io::Error>().unwrap_or_else(io::Error::other);
                let e = util::output_failed(e, sink.written, &what, "");
                util::warn(format_args!("{e:#}"));
            } else if e.downcast_ref::<util::AlreadyReported>().is_none() {
                util::warn_error(&e);
            }
            ExitCode::from(1)
        }
    }
}
