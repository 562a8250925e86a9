//! `svshm-bench file`: the command line at copy speed. A file goes through
//! `svshm write NAME FILE` into `svshm read NAME > OUT`, against one process
//! copying it (`cat FILE > OUT`) and a pipe between two (`cat FILE | cat >
//! OUT`), with OUT the null device and a file next to the input (tmpfs by
//! default). Every run is timed from the first spawn to the last exit; the
//! median of the runs is reported, with the targets.

use anyhow::{Context, Result, bail, ensure};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What to run.
pub struct FileBench {
    /// Bytes in the input file.
    pub size: u64,
    /// Where the input and output files go.
    pub dir: PathBuf,
    /// The `svshm` binary.
    pub svshm: PathBuf,
    /// Measured runs per case.
    pub runs: usize,
    /// One JSON object per result, if asked.
    pub json: Option<PathBuf>,
}

/// The ways to move the file, and the floor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    /// Not a transfer: the larger of reading the input alone and writing OUT
    /// alone, each from a buffer of its own: the least two processes working
    /// at once can take.
    Floor,
    Cat,
    CatPipeCat,
    Svshm,
}

impl Way {
    fn label(self) -> &'static str {
        match self {
            Way::Floor => "floor: max(read alone, write alone)",
            Way::Cat => "cat FILE > OUT",
            Way::CatPipeCat => "cat FILE | cat > OUT",
            Way::Svshm => "svshm write | svshm read > OUT",
        }
    }
}

/// The `svshm` binary next to this one (both are built into the same target
/// directory by `cargo build --release --workspace`).
pub fn default_svshm() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locate svshm-bench")?;
    let p = me.with_file_name("svshm");
    ensure!(
        p.is_file(),
        "no svshm binary next to {} (build it: cargo build --release -p svshm-cli), or give --svshm PATH",
        me.display()
    );
    Ok(p)
}

/// Fills `path` with `size` pseudo-random bytes (xorshift: not a repeating
/// pattern, and far faster than /dev/urandom).
fn make_input(path: &Path, size: u64) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut left = size;
    while left > 0 {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn out_file(out: &Path) -> Result<File> {
    if out == Path::new("/dev/null") {
        return File::options()
            .write(true)
            .open(out)
            .context("open /dev/null");
    }
    // Overwritten in place, not truncated: every way then copies into pages
    // that are already there. On a virtual machine, tmpfs pages allocated
    // afresh cost whatever the host charges for backing them at that moment
    // (the same 2 GiB transfer took 0.7 s or 6.9 s), which would decide the
    // race instead of the copying.
    File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(out)
        .with_context(|| format!("open {}", out.display()))
}

/// Runs one transfer of `input` to `out`; returns its wall time.
fn run_once(way: Way, input: &Path, out: &Path, svshm: &Path, n: usize) -> Result<Duration> {
    let dest = out_file(out)?;
    let t0 = Instant::now();
    let ok = match way {
        Way::Floor => {
            // Reading the input and writing OUT, each alone from a buffer of
            // its own; a transfer by two processes at once costs at least the
            // larger of the two.
            let mut buf = vec![0x5au8; 256 << 10];
            let mut src = File::open(input)?;
            while src.read(&mut buf)? != 0 {}
            let read_only = t0.elapsed();
            let mut dest = dest;
            let mut left = std::fs::metadata(input)?.len();
            let t1 = Instant::now();
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                dest.write_all(&buf[..n])?;
                left -= n as u64;
            }
            return Ok(read_only.max(t1.elapsed()));
        }
        Way::Cat => Command::new("cat")
            .arg(input)
            .stdout(dest)
            .status()?
            .success(),
        Way::CatPipeCat => {
            let mut first = Command::new("cat")
                .arg(input)
                .stdout(Stdio::piped())
                .spawn()?;
            let pipe = first.stdout.take().context("cat's stdout")?;
            let second = Command::new("cat").stdin(pipe).stdout(dest).status()?;
            first.wait()?.success() && second.success()
        }
        Way::Svshm => {
            let name = format!("svshm-bench-file-{}-{n}", std::process::id());
            let mut reader = Command::new(svshm)
                .args(["read", &name])
                .stdout(dest)
                .spawn()?;
            let writer = Command::new(svshm)
                .args(["write", &name])
                .arg(input)
                .status()?;
            reader.wait()?.success() && writer.success()
        }
    };
    let took = t0.elapsed();
    ensure!(ok, "{} failed", way.label());
    Ok(took)
}

/// Whether two files hold the same bytes.
fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Text for a markdown table cell (a `|` would end the cell).
fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs every case; returns the table and the targets as markdown (progress
/// goes to stderr).
pub fn run(b: &FileBench) -> Result<String> {
    let mut text = String::new();
    // Appends one formatted line to `text`.
    macro_rules! say {
        () => {
            text.push('\n')
        };
        ($($t:tt)*) => {{
            text.push_str(&format!($($t)*));
            text.push('\n');
        }};
    }
    ensure!(b.runs > 0, "--runs must be at least 1");
    std::fs::create_dir_all(&b.dir)?;
    let input = b
        .dir
        .join(format!("svshm-bench-file-{}.in", std::process::id()));
    let output = b
        .dir
        .join(format!("svshm-bench-file-{}.out", std::process::id()));
    let result = (|| -> Result<()> {
        eprintln!(
            "making a {} MiB input file in {}",
            b.size >> 20,
            b.dir.display()
        );
        make_input(&input, b.size)?;
        let mut json = match &b.json {
            Some(p) if p == Path::new("-") => Some(Box::new(std::io::stdout()) as Box<dyn Write>),
            Some(p) => Some(Box::new(File::create(p)?) as Box<dyn Write>),
            None => None,
        };
        say!(
            "| OUT | {} | {} | {} | {} | svshm ÷ cat | cat\\|cat ÷ svshm | svshm ÷ floor |",
            md(Way::Floor.label()),
            md(Way::Cat.label()),
            md(Way::CatPipeCat.label()),
            md(Way::Svshm.label())
        );
        say!("|---|---:|---:|---:|---:|---:|---:|---:|");
        let mut misses = Vec::new();
        for out in [PathBuf::from("/dev/null"), output.clone()] {
            let mut times: [Vec<Duration>; 4] = Default::default();
            let ways = [Way::Floor, Way::Cat, Way::CatPipeCat, Way::Svshm];
            // One discarded round first: on a virtual machine, pages the guest
            // touches for the first time are slow to back (the first 2 GiB
            // written into tmpfs took up to 5x as long as the next), and
            // that would land on whichever way ran first. Then interleaved,
            // so that a noisy moment hits every way alike.
            for way in ways {
                run_once(way, &input, &out, &b.svshm, usize::MAX)?;
            }
            for run in 0..b.runs {
                for (i, way) in ways.into_iter().enumerate() {
                    let t = run_once(way, &input, &out, &b.svshm, run)?;
                    if way == Way::Svshm && run == 0 && out != Path::new("/dev/null") {
                        ensure!(
                            same_bytes(&input, &out)?,
                            "svshm delivered other bytes than the file's"
                        );
                    }
                    times[i].push(t);
                }
            }
            let [floor, cat, catcat, svshm] = times.map(median);
            let label = if out == Path::new("/dev/null") {
                "/dev/null".to_string()
            } else {
                format!("file in {}", b.dir.display())
            };
            let vs_cat = svshm.as_secs_f64() / cat.as_secs_f64();
            let vs_pipe = catcat.as_secs_f64() / svshm.as_secs_f64();
            let vs_floor = svshm.as_secs_f64() / floor.as_secs_f64();
            say!(
                "| {label} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {vs_cat:.2}× | {vs_pipe:.2}× | {vs_floor:.2}× |",
                floor.as_secs_f64(),
                cat.as_secs_f64(),
                catcat.as_secs_f64(),
                svshm.as_secs_f64()
            );
            if vs_cat > 1.25 {
                misses.push(format!("{label}: svshm {vs_cat:.2}× cat (target ≤ 1.25×)"));
            }
            if vs_pipe < 2.5 {
                let bound = catcat.as_secs_f64() / floor.as_secs_f64();
                misses.push(format!(
                    "{label}: svshm {vs_pipe:.2}× faster than cat|cat (target ≥ 2.5×); {}",
                    if bound < 2.5 {
                        format!("above the floor: writing OUT alone is only {bound:.2}× faster than cat|cat, and svshm takes {vs_floor:.2}× the floor")
                    } else {
                        format!("the floor allows {bound:.2}×")
                    }
                ));
            }
            if let Some(j) = json.as_mut() {
                for (way, t) in ways.into_iter().zip([floor, cat, catcat, svshm]) {
                    writeln!(
                        j,
                        "{}",
                        serde_json::json!({
                            "case": "file",
                            "out": label,
                            "way": way.label(),
                            "bytes": b.size,
                            "runs": b.runs,
                            "median_s": t.as_secs_f64(),
                            "gb_per_s": b.size as f64 / t.as_secs_f64() / 1e9,
                        })
                    )?;
                }
            }
        }
        say!();
        if misses.is_empty() {
            say!("targets: met (svshm ≤ 1.25× cat, ≥ 2.5× faster than cat|cat, for both outputs)");
        } else {
            for m in &misses {
                say!("target missed: {m}");
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    result.map(|()| text)
}

/// Checks the arguments before any file is made.
pub fn check(b: &FileBench) -> Result<()> {
    if b.size == 0 {
        bail!("--size must be at least one byte");
    }
    Ok(())
}
