//! `svshm ipcmk`: util-linux 2.38.1 `ipcmk -M SIZE [-p MODE]`, with its
//! syntax, messages, output and exit status.
//!
//! Its arguments are parsed like the C tool's (getopt_long, see
//! [`crate::getopt`]), not by clap: clap's definition below serves `--help`,
//! the man page and shell completions.

use crate::getopt::{Getopt, HasArg, LongOpt, strtosize, strtoul};
use crate::util::warn;
use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use svshm::{CreateOptions, ErrorKind, HugePageSize, Key};

const AFTER_HELP: &str = "\
Arguments, messages, output and exit status are those of util-linux 2.38.1
`ipcmk`: it prints `Shared memory id: N`. SIZE takes the suffixes K, M, G, T,
P, E (also KiB, ...: powers of 1024) and KB, MB, ... (powers of 1000), and a
fraction (1.5K is 1536); MODE is octal and all of its bits reach shmget(2), as
in ipcmk (04000 is SHM_HUGETLB, 010000 SHM_NORESERVE).

Departures: only shared memory is covered (-Q and -S are refused with a
message; use ipcmk(1) for message queues and semaphores), and the random key is
taken only if no segment has it yet (ipcmk would silently reuse such a segment).

Examples:
  svshm ipcmk -M 1M           a 1 MiB segment, mode 0644, under a random key
  svshm ipcmk -M 4096 -p 600";

/// Create a segment under a random key like util-linux `ipcmk -M`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP, disable_version_flag = true)]
pub struct Args {
    /// Create a shared memory segment of this size.
    #[arg(short = 'M', long = "shmem", value_name = "SIZE")]
    shmem: Option<String>,
    /// Permission bits of the segment, octal (default 0644).
    #[arg(short = 'p', long = "mode", value_name = "MODE")]
    mode: Option<String>,
    /// Print the version.
    #[arg(short = 'V', long = "version")]
    version: bool,
}

const LONGS: &[LongOpt] = &[
    ("shmem", HasArg::Required, 'M'),
    ("semaphore", HasArg::Required, 'S'),
    ("queue", HasArg::No, 'Q'),
    ("mode", HasArg::Required, 'p'),
    ("version", HasArg::No, 'V'),
    ("help", HasArg::No, 'h'),
];

const IPC_EXCL: u32 = 0o2000;
const SHM_HUGETLB: u32 = 0o4000;
const SHM_NORESERVE: u32 = 0o10000;
const SHM_HUGE_SHIFT: u32 = 26;

fn warnx(msg: impl std::fmt::Display) {
    warn(format_args!("ipcmk: {msg}"));
}

fn try_help() -> u8 {
    eprintln!("Try 'svshm ipcmk --help' for more information.");
    1
}

/// A key from the process's randomly keyed hasher (never IPC_PRIVATE).
fn random_key() -> Key {
    loop {
        let k = RandomState::new().hash_one(std::time::SystemTime::now()) as u32 as i32;
        if k != 0 {
            return Key::new(k);
        }
    }
}

/// `shmget(random key, size, flags | IPC_CREAT)` through the library, which
/// takes the flag bits ipcmk passes as options. The kernel's errno, or
/// EINVAL for huge page size bits it would refuse too.
fn create(size: u64, flags: u32) -> Result<i32, String> {
    let einval = || "Invalid argument".to_string();
    let size = usize::try_from(size).map_err(|_| einval())?;
    let mut opts = CreateOptions::new(size)
        .mode(flags & 0o777)
        .noreserve(flags & SHM_NORESERVE != 0);
    if flags & SHM_HUGETLB != 0 {
        opts = opts.hugetlb(match flags >> SHM_HUGE_SHIFT {
            0 => HugePageSize::Default,
            21 => HugePageSize::Size2M,
            30 => HugePageSize::Size1G,
            _ => return Err(einval()),
        });
    }
    // The key is random: another one if it is taken, unless IPC_EXCL was
    // asked for (then the kernel's answer stands, as in ipcmk).
    for _ in 0..100 {
        match opts.clone().key(random_key()).exclusive(true).create() {
            Ok(seg) => return Ok(seg.id()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && flags & IPC_EXCL == 0 => continue,
            Err(e) => {
                return Err(e
                    .errno()
                    .map_or_else(|| e.message().to_string(), svshm::error::errno_text));
            }
        }
    }
    Err("File exists".to_string())
}

fn run(args: Vec<String>, help: &dyn Fn() -> String, out: &mut String) -> u8 {
    let mut size: Option<u64> = None;
    let mut flags: u32 = 0o644;
    let mut other: Option<char> = None;
    for item in Getopt::new(args, "hM:QS:p:V", LONGS) {
        let (c, arg) = match item {
            Ok(o) => o,
            Err(msg) => {
                warnx(msg);
                return try_help();
            }
        };
        let arg = arg.unwrap_or_default();
        match c {
            'M' => match strtosize(&arg) {
                Ok(s) => size = Some(s),
                Err(e) => {
                    warnx(format_args!("failed to parse size: '{arg}': {}", e.text()));
                    return 1;
                }
            },
            'p' => {
                let (v, end, over) = strtoul(&arg, 8);
                if over || end == 0 || end != arg.len() {
                    // ipcmk 2.38.1 prints the errno of a successful call here.
                    warnx("failed to parse mode: Success");
                    return 1;
                }
                flags = v as u32;
            }
            'Q' | 'S' => other = Some(c),
            'h' => {
                out.push_str(&help());
                return 0;
            }
            'V' => {
                let _ = writeln!(out, "svshm ipcmk {}", env!("CARGO_PKG_VERSION"));
                return 0;
            }
            _ => return try_help(),
        }
    }
    if let Some(c) = other {
        warnx(format_args!(
            "-{c}: only shared memory is covered; use ipcmk(1) for message queues and semaphores"
        ));
        return 1;
    }
    let Some(size) = size else {
        warnx("bad usage");
        return try_help();
    };
    match create(size, flags) {
        Ok(id) => {
            let _ = writeln!(out, "Shared memory id: {id}");
            0
        }
        Err(why) => {
            warnx(format_args!("create share memory failed: {why}"));
            1
        }
    }
}

/// Runs `svshm ipcmk ARGS` (the words after `ipcmk`); returns the exit status.
pub fn main(args: Vec<String>, help: &dyn Fn() -> String) -> u8 {
    let mut out = String::new();
    let code = run(args, help, &mut out);
    crate::cmd::write_stdout(&out);
    code
}
