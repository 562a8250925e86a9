//! The driver: prepares channels, spawns the two endpoint processes (the bench
//! binary itself, re-executed with the hidden `__role` subcommand), starts them
//! together, collects their reports and cleans up every kernel object and file.

use crate::roles::{ChildConfig, ChildReport, Role, Workload};
use crate::stats::Latency;
use crate::transport::tlpi::TlpiObjects;
use crate::transport::{ChanSpec, Kind, Wait, fd, ice};
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What is measured: a transport between two processes, or the two-thread floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A transport between two processes.
    Transport(Kind),
    /// Two threads of one process (in-process ring / single cache line).
    Floor,
    /// Two threads of one process bouncing frames through two rings (spin
    /// ping-pong only): the floor of any framed message ring.
    FramedFloor,
}

impl Target {
    /// Name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Target::Transport(k) => k.name(),
            Target::Floor => "floor",
            Target::FramedFloor => "floor-framed",
        }
    }
}

/// Settings shared by every run of a session.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// CPUs for the two endpoints (writer/ping, reader/pong), if pinning.
    pub cpus: Option<(usize, usize)>,
    /// Ring / buffer size granted to every transport that has one.
    pub ring: usize,
    /// Kill a run that takes longer than this.
    pub timeout: Duration,
    /// Use `ring` as it is, even below two payloads (byte streams only: the
    /// ring-size sweep); otherwise [`ring_for`] raises it.
    pub exact_ring: bool,
}

impl Ctx {
    /// The ring a run of `payload`-byte units gets (see [`ring_for`]).
    pub fn ring_for(&self, payload: usize) -> usize {
        if self.exact_ring {
            self.ring
        } else {
            ring_for(self.ring, payload)
        }
    }
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Seconds from the writer's first send to the reader's last check.
    pub seconds: f64,
    /// Round-trip times (ping-pong).
    pub latency: Option<Latency>,
    /// Peak RSS of the two processes, KiB.
    pub rss_peak_kib: [u64; 2],
    /// CPU each process kept busy during the run, in cores (see
    /// [`ChildReport::cpu_busy`]); the floor's one process reports both threads.
    pub cpu_busy: [f64; 2],
    /// CPU time (user + system) each process used from the start signal to
    /// its report, in nanoseconds; the floor's one process reports both threads.
    pub cpu_ns: [u64; 2],
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Resources the driver holds for a run; dropping removes them.
struct Prepared {
    specs: Vec<ChanSpec>,
    fds: Vec<OwnedFd>,
    _tlpi: Vec<TlpiObjects>,
    ice_prefix: Option<String>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(p) = &self.ice_prefix {
            let left = ice::cleanup(p);
            if !left.is_empty() {
                eprintln!(
                    "svshm-bench: removed what iceoryx2 left: {}",
                    left.join(", ")
                );
            }
        }
    }
}

/// The ring / buffer size a run of `payload`-byte units gets: the session's
/// ring, but at least two units (so a writer can fill one while the reader
/// drains the other, as with iceoryx2's minimum queue of two samples).
pub fn ring_for(ring: usize, payload: usize) -> usize {
    ring.max(2 * payload.next_power_of_two())
}

/// iceoryx2 subscriber queue depth: as many payloads as fit in the ring.
pub fn ice_depth(ring: usize, payload: usize) -> usize {
    (ring / payload.max(1)).clamp(2, 4096)
}

fn prepare(kind: Kind, nchan: usize, payload: usize, ring: usize) -> Result<Prepared> {
    let tag = format!(
        "{}-{}",
        std::process::id(),
        RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut p = Prepared {
        specs: Vec::new(),
        fds: Vec::new(),
        _tlpi: Vec::new(),
        ice_prefix: None,
    };
    for i in 0..nchan {
        let spec = match kind {
            Kind::Pipe | Kind::Unix => {
                let (r, w, _) = if kind == Kind::Pipe {
                    fd::make_pipe(ring)?
                } else {
                    fd::make_socketpair(ring)?
                };
                let spec = ChanSpec::Fd {
                    read: r.as_raw_fd(),
                    write: w.as_raw_fd(),
                };
                p.fds.push(r);
                p.fds.push(w);
                spec
            }
            Kind::Tlpi1k | Kind::Tlpi64k => {
                let buf_size = if kind == Kind::Tlpi1k { 1024 } else { 65536 };
                let o = TlpiObjects::create(buf_size)?;
                let spec = ChanSpec::Tlpi {
                    shm_id: o.shm.segment().id(),
                    sem_id: o.sems.id(),
                    buf_size,
                };
                p._tlpi.push(o);
                spec
            }
            Kind::Iceoryx2 | Kind::Iceoryx2Zc => {
                let prefix = format!("svb{}_", tag.replace('-', "r"));
                p.ice_prefix = Some(prefix.clone());
                ChanSpec::Ice {
                    service: format!("svshm-bench/{tag}/{i}"),
                    prefix,
                    max_len: payload,
                    depth: ice_depth(ring, payload),
                }
            }
            Kind::SvshmStream | Kind::SvshmMsg | Kind::SvshmZc => ChanSpec::Svshm {
                name: format!("svshm-bench-{tag}-{i}"),
                capacity: ring,
                max_message: payload,
            },
        };
        p.specs.push(spec);
    }
    Ok(p)
}

/// The descriptors a child must close: all but the ones its role uses.
fn fds_to_close(specs: &[ChanSpec], uses: &[(usize, bool)]) -> Vec<i32> {
    let mut out = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        if let ChanSpec::Fd { read, write } = s {
            let keep_w = uses.contains(&(i, true));
            let keep_r = uses.contains(&(i, false));
            if !keep_w {
                out.push(*write);
            }
            if !keep_r {
                out.push(*read);
            }
        }
    }
    out
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    label: String,
}

impl Proc {
    fn spawn(cfg: &ChildConfig, label: String) -> Result<Proc> {
        let exe = std::env::current_exe().context("locate the bench binary")?;
        let mut child = Command::new(exe)
            .arg("__role")
            .arg(serde_json::to_string(cfg)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn endpoint process")?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("child stdout")?);
        Ok(Proc {
            child,
            stdin,
            stdout,
            label,
        })
    }

    /// Reads lines until one equal to `want` (or starting with `{` if `want` is
    /// empty); other lines are passed through to stderr.
    fn expect_line(&mut self, want: &str) -> Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                bail!(
                    "{} exited before saying {}",
                    self.label,
                    if want.is_empty() { "its report" } else { want }
                );
            }
            let t = line.trim();
            if (want.is_empty() && t.starts_with('{')) || (!want.is_empty() && t == want) {
                return Ok(t.to_string());
            }
            eprintln!("[{}] {t}", self.label);
        }
    }

    fn go(&mut self) -> Result<()> {
        self.stdin.write_all(b"go\n")?;
        self.stdin.flush()?;
        Ok(())
    }

    fn report(&mut self) -> Result<ChildReport> {
        let line = self.expect_line("")?;
        serde_json::from_str(&line).with_context(|| format!("{}: bad report {line:?}", self.label))
    }

    /// Lets the child drop its channel ends and exit (after every report is in).
    fn release(&mut self) {
        let _ = self.stdin.write_all(b"exit\n");
        let _ = self.stdin.flush();
    }

    fn finish(mut self) -> Result<()> {
        let st = self.child.wait()?;
        if !st.success() {
            bail!("{} failed ({st})", self.label);
        }
        Ok(())
    }
}

/// Kills the given processes (by pid, ours) unless cancelled in time.
struct Watchdog {
    cancel: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<bool>>,
}

impl Watchdog {
    fn start(pids: Vec<u32>, timeout: Duration) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
                for pid in pids {
                    // A child we spawned and have not reaped (the driver reaps
                    // only after cancelling this watchdog), so the pid is still its.
                    crate::util::sigkill(pid);
                }
                return true;
            }
            false
        });
        Watchdog {
            cancel: Some(tx),
            thread: Some(thread),
        }
    }

    /// Whether the watchdog had to kill.
    fn stop(mut self) -> bool {
        drop(self.cancel.take());
        self.thread
            .take()
            .map(|t| t.join().unwrap_or(false))
            .unwrap_or(false)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.cancel.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `workload` once on `target` and returns what the processes measured.
pub fn run_once(target: Target, workload: Workload, wait: Wait, ctx: &Ctx) -> Result<Outcome> {
    let cpus_a: Vec<usize> = ctx.cpus.map(|c| vec![c.0]).unwrap_or_default();
    let cpus_b: Vec<usize> = ctx.cpus.map(|c| vec![c.1]).unwrap_or_default();
    let kind = match target {
        Target::Floor | Target::FramedFloor => {
            let cfg = ChildConfig {
                role: if target == Target::Floor {
                    Role::Floor
                } else {
                    Role::FramedFloor
                },
                kind: None,
                workload,
                wait,
                cpus: ctx.cpus.map(|c| vec![c.0, c.1]).unwrap_or_default(),
                chans: Vec::new(),
                close_fds: Vec::new(),
                ring: ctx.ring_for(workload.payload()),
            };
            let mut p = Proc::spawn(&cfg, "floor".into())?;
            let dog = Watchdog::start(vec![p.child.id()], ctx.timeout);
            let res = (|| {
                p.expect_line("ready")?;
                p.go()?;
                let r = p.report();
                p.release();
                r
            })();
            let killed = dog.stop();
            let fin = p.finish();
            if killed {
                bail!("floor run timed out after {:?}", ctx.timeout);
            }
            let r = res?;
            fin?;
            if !r.verified {
                bail!("floor: payload verification failed");
            }
            return Ok(Outcome {
                seconds: (r.t_end.saturating_sub(r.t_start)) as f64 / 1e9,
                latency: r.latency,
                rss_peak_kib: [r.rss_peak_kib, 0],
                cpu_busy: [r.cpu_busy, 0.0],
                cpu_ns: [r.cpu_ns, 0],
            });
        }
        Target::Transport(k) => k,
    };
    let pingpong = matches!(workload, Workload::PingPong { .. });
    let nchan = if pingpong { 2 } else { 1 };
    let mut prep = prepare(
        kind,
        nchan,
        workload.payload(),
        ctx.ring_for(workload.payload()),
    )?;
    let (role_a, role_b) = if pingpong {
        (Role::Ping, Role::Pong)
    } else {
        (Role::Writer, Role::Reader)
    };
    // A sends on channel 0 and (ping) receives on 1; B the other way round.
    let uses_a: &[(usize, bool)] = if pingpong {
        &[(0, true), (1, false)]
    } else {
        &[(0, true)]
    };
    let uses_b: &[(usize, bool)] = if pingpong {
        &[(0, false), (1, true)]
    } else {
        &[(0, false)]
    };
    let mk = |role, cpus: Vec<usize>, uses: &[(usize, bool)]| ChildConfig {
        role,
        kind: Some(kind),
        workload,
        wait,
        cpus,
        chans: prep.specs.clone(),
        close_fds: fds_to_close(&prep.specs, uses),
        ring: ctx.ring_for(workload.payload()),
    };
    let cfg_a = mk(role_a, cpus_a, uses_a);
    let cfg_b = mk(role_b, cpus_b, uses_b);
    let mut a = Proc::spawn(&cfg_a, format!("{} {:?}", kind.name(), role_a))?;
    let b = Proc::spawn(&cfg_b, format!("{} {:?}", kind.name(), role_b));
    let mut b = match b {
        Ok(b) => b,
        Err(e) => {
            let _ = a.child.kill();
            let _ = a.child.wait();
            return Err(e);
        }
    };
    // Both children hold their ends now; the driver's copies must go, or a
    // reader would never see end of file.
    prep.fds.clear();
    let dog = Watchdog::start(vec![a.child.id(), b.child.id()], ctx.timeout);
    let res = (|| -> Result<(ChildReport, ChildReport)> {
        a.expect_line("ready")?;
        b.expect_line("ready")?;
        b.go()?;
        a.go()?;
        let rb = b.report()?;
        let ra = a.report()?;
        b.release();
        a.release();
        Ok((ra, rb))
    })();
    if res.is_err() {
        // Do not wait for the timeout when one side already failed.
        let _ = a.child.kill();
        let _ = b.child.kill();
    }
    let killed = dog.stop();
    let fa = a.finish();
    let fb = b.finish();
    drop(prep);
    if killed {
        bail!("{} run timed out after {:?}", kind.name(), ctx.timeout);
    }
    let (ra, rb) = res?;
    fa?;
    fb?;
    if !(ra.verified && rb.verified) {
        bail!("{}: payload verification failed", kind.name());
    }
    let seconds = if pingpong {
        (ra.t_end.saturating_sub(ra.t_start)) as f64 / 1e9
    } else {
        (rb.t_end.saturating_sub(ra.t_start)) as f64 / 1e9
    };
    Ok(Outcome {
        seconds,
        latency: ra.latency,
        rss_peak_kib: [ra.rss_peak_kib, rb.rss_peak_kib],
        cpu_busy: [ra.cpu_busy, rb.cpu_busy],
        cpu_ns: [ra.cpu_ns, rb.cpu_ns],
    })
}
