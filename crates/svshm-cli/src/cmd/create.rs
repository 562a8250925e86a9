//! `svshm create`: create a segment and print its id (svshm_create / ipcmk).

use crate::util::usage_bail;
use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;
use svshm::{CreateOptions, HugePageSize, Key};

const AFTER_HELP: &str = "\
The segment is created exclusively (IPC_CREAT|IPC_EXCL: an existing segment under
the key is an error, never silently reused) with mode 0600 unless -m says otherwise.
It stays until removed (`svshm rm ID`), even after every process has exited.

Examples:
  svshm create -n scratch -s 64K          key derived from a name (and your uid)
  svshm create -k 0x5eed0001 -s 1M -m 640 an explicit key, group-readable
  svshm create -f /etc/hostname --proj 7 -s 4096   key from ftok(path, 7)
  id=$(svshm create -p -s 2M --hugetlb)   a private segment on huge pages";

/// Create a segment and print its id.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
#[command(group(clap::ArgGroup::new("keysource").required(true).args(["key", "file", "name", "private"])))]
pub struct Args {
    /// Use this key (decimal, 0x hex or 0 octal).
    #[arg(short, long, value_parser = crate::util::key_arg)]
    key: Option<Key>,
    /// Derive the key from an existing path with ftok(3).
    #[arg(short, long, value_name = "PATH", visible_alias = "path")]
    file: Option<PathBuf>,
    /// Project id for ftok with -f (1..=255).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "file", value_parser = clap::value_parser!(u8).range(1..))]
    proj: u8,
    /// Derive the key from a name and your uid (what `svshm write NAME` uses).
    #[arg(short, long)]
    name: Option<String>,
    /// IPC_PRIVATE: a new segment reachable only by its id (not ipcmk's -p
    /// MODE: the mode is -m here).
    #[arg(short, long)]
    private: bool,
    /// Size in bytes: 4096, 0x1000, 64K, 1.5M; K/M/G/T/P/E (or KiB … EiB) are
    /// powers of 1024, KB/MB/GB/TB/PB/EB powers of 1000.
    #[arg(short, long, value_parser = crate::util::size_arg)]
    size: u64,
    /// Permission bits in octal. Only the nine permission bits.
    #[arg(short, long, value_parser = crate::util::mode_arg, default_value = "600")]
    mode: u32,
    /// Fail if the key exists (IPC_EXCL). This is always so; accepted for svshm_create.
    #[arg(short = 'x', long)]
    exclusive: bool,
    /// Back the segment with huge pages (SHM_HUGETLB), of the default size or 2M / 1G.
    #[arg(long, value_name = "SIZE", num_args = 0..=1, default_missing_value = "default", value_parser = parse_huge)]
    hugetlb: Option<HugePageSize>,
    /// Do not reserve swap space (SHM_NORESERVE).
    #[arg(long)]
    noreserve: bool,
    /// Words clap would reject bare, caught to explain ipcmk habits (`-p 0640`).
    #[arg(hide = true, value_name = "EXTRA")]
    extra: Vec<String>,
}

fn parse_huge(text: &str) -> Result<HugePageSize, String> {
    match text.to_ascii_lowercase().as_str() {
        "default" | "" => Ok(HugePageSize::Default),
        "2m" | "2mb" | "2mib" => Ok(HugePageSize::Size2M),
        "1g" | "1gb" | "1gib" => Ok(HugePageSize::Size1G),
        _ => Err(format!(
            "huge page size '{text}' is not 2M or 1G; give --hugetlb, --hugetlb=2M or --hugetlb=1G"
        )),
    }
}

/// Runs `svshm create`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let _ = args.exclusive;
    if let Some(word) = args.extra.first() {
        if args.private && crate::util::parse_mode(word).is_ok() {
            usage_bail!(
                "unexpected argument '{word}': -p is --private (IPC_PRIVATE) here, not ipcmk's -p MODE; give the mode with -m, e.g. -m {word}"
            );
        }
        usage_bail!(
            "unexpected argument '{word}'; svshm create takes only options (e.g. -n NAME -s SIZE -m MODE)"
        );
    }
    let key = if let Some(k) = args.key {
        if k.is_private() {
            usage_bail!(
                "key 0 is IPC_PRIVATE; use -p for a private segment, or give a non-zero key"
            );
        }
        k
    } else if let Some(path) = &args.file {
        Key::from_path(path, args.proj)?
    } else if let Some(name) = &args.name {
        if name.is_empty() {
            usage_bail!("the name is empty; give a name like -n scratch");
        }
        Key::from_name(name)
    } else {
        Key::PRIVATE
    };
    let Ok(size) = usize::try_from(args.size) else {
        usage_bail!(
            "size {} does not fit this machine's address space",
            args.size
        );
    };
    let mut opts = CreateOptions::new(size)
        .key(key)
        .mode(args.mode)
        .noreserve(args.noreserve);
    if let Some(h) = args.hugetlb {
        opts = opts.hugetlb(h);
    }
    let seg = opts.create()?;
    // The id is the only handle on the segment (IPC_PRIVATE has no other): if
    // it reaches no one (stdout full, closed or a broken pipe), remove the
    // segment rather than leave one nobody knows about.
    if let Err(e) = writeln!(out, "{}", seg.id()).and_then(|()| out.flush()) {
        let removed = match seg.remove() {
            Ok(()) => "removed it again".to_string(),
            Err(r) => format!(
                "could not remove it ({r}); remove it with `svshm rm {}`",
                seg.id()
            ),
        };
        return Err(anyhow::Error::new(e).context(format!(
            "create segment (key {key}): created segment id {} but could not print its id; {removed}",
            seg.id()
        )));
    }
    Ok(())
}
