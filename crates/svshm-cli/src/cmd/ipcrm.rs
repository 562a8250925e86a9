//! `svshm ipcrm`: util-linux 2.38.1 `ipcrm` for shared memory, with its
//! syntax, messages, output and exit status.
//!
//! Its arguments are parsed like the C tool's (getopt_long, see
//! [`crate::getopt`]), not by clap: clap's definition below serves `--help`,
//! the man page and shell completions.

use crate::getopt::{Getopt, HasArg, LongOpt, strtoul};
use crate::util::{strtos32_or_err, warn};
use std::fmt::Write as _;
use svshm::{Key, Segment};

const AFTER_HELP: &str = "\
Arguments, messages, output and exit status are those of util-linux 2.38.1
`ipcrm`: options are done in order (-a after all others), a failure does not stop the later ones,
and the exit status is 1 if anything failed. IDs are decimal; keys are decimal,
0x hex or 0 octal. The old form `ipcrm shm ID...` prints `resource(s) deleted`.

One departure: only shared memory is covered. -q, -Q, -s, -S, --all=msg,
--all=sem and `ipcrm msg|sem ...` are refused with a message (use ipcrm(1) for
message queues and semaphores), and -a removes shared memory segments only.

Examples:
  svshm ipcrm -m 5            remove segment 5
  svshm ipcrm -v -M 0x5eed0001
  svshm ipcrm --all=shm       remove every segment this user may read";

/// Remove segments like util-linux `ipcrm` (shared memory only).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP, disable_version_flag = true)]
pub struct Args {
    /// Remove the shared memory segment with this id.
    #[arg(short = 'm', long = "shmem-id", value_name = "ID")]
    shmem_id: Vec<String>,
    /// Remove the shared memory segment with this key.
    #[arg(short = 'M', long = "shmem-key", value_name = "KEY")]
    shmem_key: Vec<String>,
    /// Remove all segments (that this user may read); `shm` is the only category.
    #[arg(short = 'a', long = "all", value_name = "shm", num_args = 0..=1, require_equals = true)]
    all: Option<Option<String>>,
    /// Say what is being done.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Print the version.
    #[arg(short = 'V', long = "version")]
    version: bool,
    /// The old form: `shm` then segment ids.
    #[arg(value_name = "shm ID", num_args = 0..)]
    old: Vec<String>,
}

const LONGS: &[LongOpt] = &[
    ("shmem-id", HasArg::Required, 'm'),
    ("shmem-key", HasArg::Required, 'M'),
    ("queue-id", HasArg::Required, 'q'),
    ("queue-key", HasArg::Required, 'Q'),
    ("semaphore-id", HasArg::Required, 's'),
    ("semaphore-key", HasArg::Required, 'S'),
    ("all", HasArg::Optional, 'a'),
    ("verbose", HasArg::No, 'v'),
    ("version", HasArg::No, 'V'),
    ("help", HasArg::No, 'h'),
];

/// The end of a run: exit at once with this status (util-linux `err()`).
struct Exit(u8);

struct Ipcrm {
    verbose: bool,
    /// stdout, written when the program ends (stdio's full buffering).
    out: String,
}

fn warnx(msg: impl std::fmt::Display) {
    warn(format_args!("ipcrm: {msg}"));
}

fn try_help() -> Exit {
    eprintln!("Try 'svshm ipcrm --help' for more information.");
    Exit(1)
}

fn only_shm(what: &str) {
    warnx(format_args!(
        "{what}: only shared memory is covered; use ipcrm(1) for message queues and semaphores"
    ));
}

impl Ipcrm {
    /// util-linux `remove_id`: IPC_RMID; whether it failed.
    fn remove_id(&mut self, iskey: bool, id: i32) -> Result<bool, Exit> {
        if self.verbose {
            let _ = writeln!(self.out, "removing shared memory segment id `{id}'");
        }
        let Err(e) = Segment::from_id(id).remove() else {
            return Ok(false);
        };
        let what = if iskey { "key" } else { "id" };
        let msg = match e.errno() {
            Some(libc_errno::EACCES | libc_errno::EPERM) => "permission denied for",
            Some(libc_errno::EINVAL) => "invalid",
            Some(libc_errno::EIDRM) => "already removed",
            errno => {
                warnx(format_args!("{what} failed: {}", strerror(errno, &e)));
                return Err(Exit(1));
            }
        };
        warnx(format_args!("{msg} {what} ({id})"));
        Ok(true)
    }

    /// util-linux `key_to_id`: the id under the key, or `None` after a message.
    fn key_to_id(&mut self, text: &str) -> Result<Option<i32>, Exit> {
        if text.is_empty() {
            // ipcrm reports whatever errno was left over from its start-up.
            warnx(format_args!(
                "failed to parse argument: '': No such file or directory"
            ));
            return Err(Exit(1));
        }
        let (v, end, over) = strtoul(text, 0);
        if over {
            warnx(format_args!(
                "failed to parse argument: '{text}': Numerical result out of range"
            ));
            return Err(Exit(1));
        }
        if end == 0 || end != text.len() {
            warnx(format_args!("failed to parse argument: '{text}'"));
            return Err(Exit(1));
        }
        let key = Key::new(v as u32 as i32);
        if key.is_private() {
            warnx(format_args!("illegal key ({text})"));
            return Ok(None);
        }
        match Segment::open(key, 0) {
            Ok(seg) => Ok(Some(seg.id())),
            Err(e) => {
                let msg = match e.errno() {
                    Some(libc_errno::EACCES) => "permission denied for key",
                    Some(libc_errno::EIDRM) => "already removed key",
                    Some(libc_errno::ENOENT) => "invalid key",
                    errno => {
                        warnx(format_args!("key failed: {}", strerror(errno, &e)));
                        return Err(Exit(1));
                    }
                };
                warnx(format_args!("{msg} ({text})"));
                Ok(None)
            }
        }
    }

    /// util-linux `remove_all(SHM)`: SHM_INFO, then SHM_STAT on every index;
    /// what this user may not read is skipped silently.
    fn remove_all(&mut self) -> Result<bool, Exit> {
        let Ok(usage) = svshm::usage() else {
            warnx("kernel not configured for shared memory");
            return Err(Exit(1));
        };
        let mut failed = false;
        for index in 0..=usage.max_index {
            if let Ok(Some(info)) = svshm::info::stat_index(index, false) {
                failed |= self.remove_id(false, info.id)?;
            }
        }
        Ok(failed)
    }

    /// `ipcrm shm ID...`: ids read by `strtoul(_, 10)` into an int.
    fn old_form(&mut self, ids: &[String]) -> Result<u8, Exit> {
        if ids.is_empty() {
            warnx("not enough arguments");
            return Err(try_help());
        }
        let mut errors = 0;
        for text in ids {
            let (v, end, over) = strtoul(text, 10);
            // An empty text is id 0 to strtoul (no digits, but nothing after).
            let whole = if end == 0 {
                text.is_empty()
            } else {
                end == text.len()
            };
            if over || !whole {
                warnx(format_args!("invalid id: {text}"));
                errors += 1;
            } else if self.remove_id(false, v as u32 as i32)? {
                errors += 1;
            }
        }
        if errors > 0 {
            return Err(Exit(1));
        }
        self.out.push_str("resource(s) deleted\n");
        Ok(0)
    }

    fn run(&mut self, args: Vec<String>, help: &dyn Fn() -> String) -> Result<u8, Exit> {
        match args.first().map(String::as_str) {
            Some("shm") => return self.old_form(&args[1..]),
            Some(kind @ ("msg" | "sem")) => {
                only_shm(&format!("`ipcrm {kind}`"));
                return Err(Exit(1));
            }
            _ => {}
        }
        let mut errors = 0u32;
        let mut all = false;
        let mut opts = Getopt::new(args, "q:m:s:Q:M:S:a::vhV", LONGS);
        for item in opts.by_ref() {
            let (c, arg) = match item {
                Ok(o) => o,
                Err(msg) => {
                    warnx(msg);
                    return Err(try_help());
                }
            };
            if c == 'a' {
                // `-a`, `-ashm`, `--all=shm`; `--all=` is an unknown category.
                match arg.as_deref() {
                    None | Some("shm") => all = true,
                    Some(kind @ ("msg" | "sem")) => {
                        only_shm(&format!("--all={kind}"));
                        errors += 1;
                    }
                    Some(other) => {
                        warnx(format_args!("unknown argument: {other}"));
                        return Err(Exit(1));
                    }
                }
                continue;
            }
            let arg = arg.unwrap_or_default();
            match c {
                'M' => match self.key_to_id(&arg)? {
                    Some(id) => errors += u32::from(self.remove_id(true, id)?),
                    None => errors += 1,
                },
                'm' => {
                    let id = strtos32_or_err(&arg, "failed to parse argument").map_err(|m| {
                        warnx(m);
                        Exit(1)
                    })?;
                    errors += u32::from(self.remove_id(false, id)?);
                }
                'q' | 'Q' | 's' | 'S' => {
                    only_shm(&format!("-{c}"));
                    errors += 1;
                }
                'v' => self.verbose = true,
                'h' => {
                    self.out.push_str(&help());
                    return Err(Exit(0));
                }
                'V' => {
                    let _ = writeln!(self.out, "svshm ipcrm {}", env!("CARGO_PKG_VERSION"));
                    return Err(Exit(0));
                }
                _ => return Err(try_help()),
            }
        }
        if all && self.remove_all()? {
            errors += 1;
        }
        if let Some(first) = opts.rest.first() {
            warnx(format_args!("unknown argument: {first}"));
            return Err(try_help());
        }
        Ok(u8::from(errors > 0))
    }
}

/// The errno's `strerror` text, or the library's message without one.
fn strerror(errno: Option<i32>, e: &svshm::Error) -> String {
    errno.map_or_else(|| e.message().to_string(), svshm::error::errno_text)
}

/// The errno values ipcrm tells apart (Linux numbers).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EACCES: i32 = 13;
    pub const EINVAL: i32 = 22;
    pub const EIDRM: i32 = 43;
}

/// Runs `svshm ipcrm ARGS` (the words after `ipcrm`); returns the exit status.
pub fn main(args: Vec<String>, help: &dyn Fn() -> String) -> u8 {
    let mut me = Ipcrm {
        verbose: false,
        out: String::new(),
    };
    let code = match me.run(args, help) {
        Ok(c) => c,
        Err(Exit(c)) => c,
    };
    crate::cmd::write_stdout(&me.out);
    code
}
