//! `svshm call` and `svshm serve`: one request from stdin, answered by a
//! command run for each request.

use super::topic::{bounded, named, peer_uid};
use crate::util::{Secs, usage_bail};
use anyhow::{Result, anyhow};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use svshm_channel::{Client, Connection, Error as ChanError, Options, Server};

const CALL_AFTER_HELP: &str = "\
Connects to the service (waiting up to --timeout for a server to accept), sends
all of stdin as one request and writes the response to stdout, byte for byte.
The server learns this process's uid and pid from the kernel, not from the
request. Exit 1 if no server answered or it died before answering.

Example:
  echo hello | svshm call upper        while elsewhere: svshm serve upper -- tr a-z A-Z";

/// Send stdin as one request to a service and print its response.
#[derive(Debug, clap::Args)]
#[command(after_help = CALL_AFTER_HELP)]
pub struct CallArgs {
    /// The service's name (as given to `svshm serve`).
    #[arg(value_name = "NAME")]
    name: String,
    /// How many seconds to wait for a server to accept (default 10; a
    /// century or more waits forever). The response itself is awaited as
    /// long as the server takes.
    #[arg(long, value_name = "SECS", value_parser = crate::util::secs_arg, allow_negative_numbers = true, default_value = "10")]
    timeout: Secs,
    /// The largest request and response (K/M/G suffixes): this side creates
    /// the connection, so its limit holds both ways.
    #[arg(long, value_name = "BYTES", value_parser = crate::util::size_arg, default_value = "1M")]
    max_message: u64,
    /// Permission bits (octal) the service may have at most; give the
    /// server's -m.
    #[arg(short, long, value_parser = crate::util::mode_arg, default_value = "600")]
    mode: u32,
    /// Call the service USER (a name or uid) serves.
    #[arg(long, value_name = "USER")]
    peer_user: Option<String>,
}

const SERVE_AFTER_HELP: &str = "\
For each request, runs CMD with the request on its stdin and sends CMD's stdout
back as the response; CMD's stderr goes to this program's stderr. CMD learns
who called from SVSHM_CALLER_UID and SVSHM_CALLER_PID, which the kernel
attests (the caller created the connection's segments): nothing in the request
can change them. A CMD that exits non-zero still has its stdout sent, with a
warning here. Each connection is served by a thread of its own, so calls run
concurrently. SIGINT and SIGTERM end it cleanly: the service's name is free
again at once.

Example:
  svshm serve upper -- tr a-z A-Z        then: echo hello | svshm call upper";

/// Serve requests by running a command for each one.
#[derive(Debug, clap::Args)]
#[command(after_help = SERVE_AFTER_HELP)]
pub struct ServeArgs {
    /// The service's name (per user; `svshm call NAME` calls it).
    #[arg(value_name = "NAME")]
    name: String,
    /// The command that answers each request, and its arguments.
    #[arg(value_name = "CMD", last = true, required = true, num_args = 1..)]
    command: Vec<String>,
    /// Exit after answering N requests.
    #[arg(long, value_name = "N")]
    max_requests: Option<u64>,
    /// The largest response sent (K/M/G suffixes); a longer output is not
    /// sent, and that connection is closed. Each caller's own
    /// --max-message bounds its connection.
    #[arg(long, value_name = "BYTES", value_parser = crate::util::size_arg, default_value = "1M")]
    max_message: u64,
    /// Permission bits (octal): who may call. Callers of another user give
    /// --peer-user and the same -m.
    #[arg(short, long, value_parser = crate::util::mode_arg, default_value = "600")]
    mode: u32,
    /// Say on stderr who connects and each request's size.
    #[arg(short, long)]
    verbose: bool,
}

/// Runs `svshm call`.
pub fn run_call(args: CallArgs, out: &mut dyn Write) -> Result<()> {
    let ep = named(&args.name, "service")?;
    let max = bounded(args.max_message, "--max-message", 1, 1 << 30)?;
    let mut opts = Options::new()
        .mode(args.mode)
        .max_message(max)
        .capacity((2 * (max + 64)).next_power_of_two())
        .timeout(args.timeout.duration());
    if let Some(uid) = peer_uid(args.peer_user.as_deref())? {
        opts = opts.owner(uid);
    }
    let mut request = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut request)
        .map_err(|e| anyhow!(e).context("read stdin"))?;
    if request.len() > max {
        usage_bail!(
            "the request ({} bytes) is longer than --max-message {max}; give a larger --max-message",
            request.len()
        );
    }
    let service = format!("service \"{}\"", args.name);
    let mut client = Client::connect(&ep, &opts).map_err(|e| match e {
        ChanError::Timeout { .. } => anyhow::Error::new(crate::util::Hinted(
            format!("call {service}: no server accepted within --timeout"),
            format!("start one with `svshm serve {} -- CMD [ARGS…]`", args.name),
        )),
        e => anyhow!(e).context(format!("call {service}")),
    })?;
    let server = client.server_pid();
    let response = client.call(&request).map_err(|e| match e {
        ChanError::PeerDied { .. } => {
            anyhow!("call {service}: the server (pid {server}) died before answering")
        }
        ChanError::Closed { .. } | ChanError::Aborted { .. } => anyhow!(
            "call {service}: the server (pid {server}) closed the connection without answering (its messages say why: a response past its --max-message, a command it could not run, or its --max-requests reached)"
        ),
        e => anyhow!(e).context(format!("call {service}")),
    })?;
    out.write_all(&response)?;
    out.flush()?;
    let _ = client.close();
    Ok(())
}

/// What the connection threads of `svshm serve` share.
struct Shared {
    command: Vec<String>,
    max_requests: Option<u64>,
    /// Requests taken (counted before running CMD, to honour --max-requests).
    taken: AtomicU64,
    /// The largest response sent.
    max_message: usize,
    /// Requests answered (or failed to answer).
    finished: AtomicU64,
    verbose: bool,
}

/// Runs `svshm serve`.
pub fn run_serve(args: ServeArgs, _out: &mut dyn Write) -> Result<()> {
    let ep = named(&args.name, "service")?;
    let max = bounded(args.max_message, "--max-message", 1, 1 << 30)?;
    if let Some(missing) = missing_program(&args.command[0]) {
        usage_bail!("{missing}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let opts = Options::new()
        .mode(args.mode)
        .max_message(max)
        .capacity((2 * (max + 64)).next_power_of_two());
    let service = format!("service \"{}\"", args.name);
    let mut server = Server::bind(&ep, &opts).map_err(|e| match e {
        ChanError::InUse { pid, .. } => anyhow::Error::new(crate::util::Hinted(
            format!("serve {service}: it is served already, by pid {pid}"),
            format!(
                "`svshm call {}` calls it; stop that server first to serve it here",
                args.name
            ),
        )),
        e => anyhow!(e).context(format!("serve {service}")),
    })?;
    let shared = Arc::new(Shared {
        command: args.command,
        max_requests: args.max_requests,
        taken: AtomicU64::new(0),
        max_message: max,
        finished: AtomicU64::new(0),
        verbose: args.verbose,
    });
    let all_done = |s: &Shared| {
        s.max_requests
            .is_some_and(|m| s.finished.load(Ordering::Acquire) >= m)
    };
    // The accepting thread: a short accept slice, so that a signal or the
    // last of --max-requests is seen within it. Connections get a thread
    // each (CMD runs for as long as it takes; one slow caller holds up no
    // other).
    while !stop.load(Ordering::Relaxed) && !all_done(&shared) {
        let conn = server
            .accept_timeout(Duration::from_millis(50))
            .map_err(|e| anyhow!(e).context(format!("serve {service}")))?;
        let Some(conn) = conn else { continue };
        if shared.verbose {
            crate::util::warn(format_args!("connected: {}", conn.caller()));
        }
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || serve_connection(conn, &shared));
    }
    // Dropping the server removes its listener: the name is free again.
    drop(server);
    Ok(())
}

/// Answers one connection's requests until the caller leaves.
fn serve_connection(mut conn: Connection, shared: &Shared) {
    let caller = conn.caller();
    loop {
        let request = match conn.recv() {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                if shared.verbose {
                    crate::util::warn(format_args!("{caller}: {e}"));
                }
                return;
            }
        };
        let n = shared.taken.fetch_add(1, Ordering::AcqRel);
        if shared.max_requests.is_some_and(|m| n >= m) {
            // Past --max-requests: closing the connection tells the caller.
            let _ = conn.close();
            return;
        }
        if shared.verbose {
            crate::util::warn(format_args!(
                "{caller}: a request of {} bytes",
                request.len()
            ));
        }
        let answered = match run_command(&shared.command, &request, caller) {
            Ok(response) if response.len() > shared.max_message => Err(anyhow!(
                "the response of {} bytes to {caller} is longer than --max-message {}: not sent; its connection is closed",
                response.len(),
                shared.max_message
            )),
            Ok(response) => conn.reply(&response).map_err(|e| {
                anyhow!(e).context(format!(
                    "the response of {} bytes to {caller} was not sent; its connection is closed",
                    response.len()
                ))
            }),
            Err(e) => Err(e.context(format!(
                "the request of {caller} was not answered; its connection is closed"
            ))),
        };
        shared.finished.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = answered {
            crate::util::warn_error(&e);
            let _ = conn.close();
            return;
        }
    }
}

/// Runs CMD with `request` on its stdin and the caller in its environment;
/// returns its stdout (warning if it failed).
fn run_command(
    command: &[String],
    request: &[u8],
    caller: svshm_channel::Caller,
) -> Result<Vec<u8>> {
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .env("SVSHM_CALLER_UID", caller.uid.to_string())
        .env("SVSHM_CALLER_PID", caller.pid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| anyhow!(e).context(format!("run {}", command[0])))?;
    // Fed from another thread: CMD may write its output before reading all
    // of its input.
    let mut stdin = child.stdin.take();
    let feed = request.to_vec();
    let feeder = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            // A CMD that does not read its input closes the pipe: fine.
            let _ = s.write_all(&feed);
        }
    });
    let mut response = Vec::new();
    if let Some(mut so) = child.stdout.take() {
        so.read_to_end(&mut response)
            .map_err(|e| anyhow!(e).context(format!("read the output of {}", command[0])))?;
    }
    let _ = feeder.join();
    let status = child
        .wait()
        .map_err(|e| anyhow!(e).context(format!("wait for {}", command[0])))?;
    if !status.success() {
        crate::util::warn(format_args!(
            "{} {status} for the request of {caller}; its output ({} bytes) was sent anyway",
            command[0],
            response.len()
        ));
    }
    Ok(response)
}

/// Why `program` cannot be run, if it is plainly missing (as a path, or on
/// no directory of $PATH).
fn missing_program(program: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return (!runnable(std::path::Path::new(program)))
            .then(|| format!("{program}: no such executable file"));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|d| runnable(&d.join(program)));
    (!found).then(|| format!("{program}: command not found in $PATH"))
}
