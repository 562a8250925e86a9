//! Process identity and liveness: the one place that decides whether a
//! segment's creator, an attacher or a channel peer is alive.
//!
//! A pid alone names a process only until it exits and the number is reused,
//! so identity here is a pid plus the process's start time (field 22 of
//! `/proc/PID/stat`, clock ticks since boot): [`ProcessId`]. Liveness has three
//! answers, [`Status::Alive`], [`Status::Dead`] and [`Status::Unknown`] — the
//! last for a process in a pid namespace this one cannot see (the kernel
//! reports its pid as 0), which must never be taken for dead.
//!
//! - [`Watch`] follows one verified process with a pidfd (`pidfd_open(2)`,
//!   Linux 5.3), falling back to `/proc` where pidfds are unavailable: one
//!   non-blocking `poll` per probe, and a pid reused after the process exits
//!   can never be mistaken for it.
//! - [`creator_status`] judges a segment's creator from what the kernel
//!   reports (`shm_cpid`, `shm_ctime`), optionally helped by start times the
//!   creator recorded itself.
//! - [`same_ipc_namespace`] tells whether a process shares our IPC namespace
//!   (segment ids are per namespace).
//!
//! A stopped process (SIGSTOP, a debugger) is alive: it may continue.

use crate::SegmentInfo;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Identity of a process: its pid and its start time.
///
/// ```
/// let me = svshm::process::ProcessId::current();
/// assert_eq!(me.pid, std::process::id() as i32);
/// assert!(me.start_time > 0);
/// assert!(me.is_alive());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// The process id (in the pid namespace of whoever recorded it).
    pub pid: i32,
    /// Start time in clock ticks since boot (field 22 of `/proc/PID/stat`);
    /// 0 if unknown.
    pub start_time: u64,
}

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Start time in clock ticks since boot.
    pub start_time: u64,
    /// Whether it has exited (zombie `Z`, or dead `X`/`x`): it will never touch
    /// memory again, even if its parent has not reaped it yet.
    pub exited: bool,
}

/// Reads `/proc/PID/stat`. `None` if there is no such process in our pid
/// namespace (or /proc cannot be read).
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// `kill(pid, 0)`: whether a process with this pid exists in our pid
/// namespace (ESRCH means none; EPERM means one we may not signal). `None`
/// for pids that name no single process (0 or less).
///
/// ```
/// assert_eq!(svshm::process::pid_exists(std::process::id() as i32), Some(true));
/// assert_eq!(svshm::process::pid_exists(0), None);
/// ```
///
/// # References
///
/// [kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html)
#[doc(alias = "kill")]
pub fn pid_exists(pid: i32) -> Option<bool> {
    let pid = rustix::process::Pid::from_raw(pid)?;
    match rustix::process::test_kill_process(pid) {
        Ok(()) => Some(true),
        Err(rustix::io::Errno::SRCH) => Some(false),
        Err(_) => Some(true),
    }
}

/// Whether `/proc` shows our own pid namespace (it may be another's: after
/// `unshare --pid` without remounting it, or in a container given the
/// host's). Where it does not, start times and states read there describe
/// other processes, so nothing is judged from it.
fn proc_is_ours() -> bool {
    static OURS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OURS.get_or_init(|| {
        std::fs::read_link("/proc/self")
            .ok()
            .and_then(|p| p.to_str()?.parse::<u32>().ok())
            == Some(std::process::id())
    })
}

/// What `/proc` says about an existing process, as seen from here: `None` if
/// it cannot be read (hidden by `hidepid`, or `/proc` is not ours).
fn visible_stat(pid: i32) -> Option<ProcStat> {
    if !proc_is_ours() {
        return None;
    }
    let mut st = proc_stat(pid)?;
    if st.exited && live_threads(pid) {
        // A thread-group leader that called pthread_exit shows as a zombie
        // while its other threads run on.
        st.exited = false;
    }
    Some(st)
}

/// Whether a process whose leader is a zombie still has other threads.
fn live_threads(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))?
                .trim()
                .parse::<u32>()
                .ok()
        })
        .is_some_and(|n| n > 1)
}

/// Parses the text of a `/proc/PID/stat` file.
fn parse_stat(text: &str) -> Option<ProcStat> {
    // The command may contain spaces and parentheses: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    // After the state (field 3) the start time is field 22: the 19th after it.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat {
        start_time,
        exited: matches!(state, "Z" | "X" | "x"),
    })
}

impl ProcessId {
    /// The calling process.
    pub fn current() -> ProcessId {
        let pid = std::process::id() as i32;
        ProcessId {
            pid,
            start_time: proc_stat(pid).map_or(0, |s| s.start_time),
        }
    }

    /// The process with this pid in our pid namespace now, if any (`None`
    /// also when `/proc` shows another pid namespace than ours).
    pub fn of(pid: i32) -> Option<ProcessId> {
        if !proc_is_ours() {
            return None;
        }
        proc_stat(pid).map(|s| ProcessId {
            pid,
            start_time: s.start_time,
        })
    }

    /// Whether this process still runs in our pid namespace: the pid exists,
    /// has not exited, and (when known) has the same start time.
    pub fn is_alive(&self) -> bool {
        self.status() == Status::Alive
    }

    /// [`Status`] of this process as seen from our pid namespace: `Dead` if
    /// the kernel knows no such pid, or it has exited, or it started at
    /// another time (the pid was reused); `Alive` if it runs with the same
    /// start time; `Unknown` if it exists but `/proc` cannot tell us more
    /// (hidden by `hidepid`, or `/proc` belongs to another pid namespace), or
    /// the pid is 0 or less.
    pub fn status(&self) -> Status {
        if self.pid <= 0 {
            return Status::Unknown;
        }
        if self.pid == std::process::id() as i32 {
            return Status::Alive;
        }
        match pid_exists(self.pid) {
            Some(false) => return Status::Dead,
            None => return Status::Unknown,
            Some(true) => {}
        }
        match visible_stat(self.pid) {
            Some(s) if s.exited => Status::Dead,
            Some(s) if self.start_time == 0 || s.start_time == self.start_time => Status::Alive,
            Some(_) => Status::Dead,
            None => Status::Unknown,
        }
    }

    /// Wall-clock time this process started, from its start time and the boot
    /// time in `/proc/stat` (`None` if unknown).
    pub fn started_at(&self) -> Option<SystemTime> {
        ticks_to_wall(self.start_time)
    }
}

/// Whether a process is alive, as far as this process can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It runs (or is stopped: a stopped process may continue).
    Alive,
    /// It has exited, or its pid now names another process.
    Dead,
    /// It cannot be seen from here (another pid namespace): neither alive nor
    /// dead as far as we know. Never reclaim on this answer.
    Unknown,
}

/// Follows one process until it exits: a pidfd where the kernel has them,
/// else its pid and start time read from `/proc`.
///
/// Opening is race-free: the pidfd is opened first, then the process's start
/// time is compared with the expected one, so the watch can never follow a
/// process that reused the pid.
///
/// ```
/// use svshm::process::{ProcessId, Status, Watch};
/// let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
/// let id = ProcessId::of(child.id() as i32).unwrap();
/// let watch = Watch::new(id);
/// assert_eq!(watch.status(), Status::Alive);
/// child.kill().unwrap();
/// child.wait().unwrap();
/// assert_eq!(watch.status(), Status::Dead);
/// ```
#[derive(Debug)]
pub struct Watch {
    id: ProcessId,
    /// `None`: the process was gone when the watch was made, or pidfds are
    /// unavailable (then `/proc` is read on every probe).
    pidfd: Option<OwnedFd>,
    gone_at_start: bool,
}

impl Watch {
    /// Watches the process `id` (a pid in our pid namespace and its start
    /// time). If no such process runs now, the watch reports `Dead`.
    pub fn new(id: ProcessId) -> Watch {
        let pidfd = rustix::process::Pid::from_raw(id.pid).and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        });
        // Compare after opening: if the process we opened is the one we
        // expect, the pidfd follows it and no later reuse of its pid matters.
        let gone_at_start = id.status() == Status::Dead;
        Watch {
            id,
            pidfd,
            gone_at_start,
        }
    }

    /// The process watched.
    pub fn id(&self) -> ProcessId {
        self.id
    }

    /// Whether the process still runs: one non-blocking `poll(2)` of the
    /// pidfd (readable once the process has exited), or a read of `/proc`.
    pub fn status(&self) -> Status {
        if self.gone_at_start {
            return Status::Dead;
        }
        match &self.pidfd {
            Some(fd) => {
                let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                let zero = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                match rustix::event::poll(&mut fds, Some(&zero)) {
                    Ok(0) => Status::Alive,
                    Ok(_) => Status::Dead,
                    // EINTR or an unexpected error: ask /proc instead.
                    Err(_) => self.id.status(),
                }
            }
            None => self.id.status(),
        }
    }

    /// The pidfd, if the watch has one (for callers that wait on it).
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// A flag that one process-wide watcher thread sets the moment the
    /// process exits: checking it is a load of a local atomic, cheap enough
    /// for every call on a hot path. The thread blocks in `poll(2)` on every
    /// registered pidfd at once (no CPU while nothing happens) and is started
    /// on first use. `None` if the watch has no pidfd or the thread cannot be
    /// started; then ask [`status`](Self::status).
    ///
    /// ```
    /// use svshm::process::{ProcessId, Watch};
    /// let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
    /// let notice = Watch::new(ProcessId::of(child.id() as i32).unwrap()).exit_notice().unwrap();
    /// assert!(!notice.has_exited());
    /// child.kill().unwrap();
    /// child.wait().unwrap();
    /// while !notice.has_exited() { std::thread::yield_now(); }
    /// ```
    pub fn exit_notice(&self) -> Option<ExitNotice> {
        if self.gone_at_start {
            let notice = ExitNotice {
                exited: Arc::new(AtomicBool::new(true)),
                id: 0,
            };
            return Some(notice);
        }
        let fd = self.pidfd.as_ref()?.try_clone().ok()?;
        watcher::register(fd)
    }
}

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Exits seen by the watcher thread: see [`ExitNotice::exit_count`].
static EXITS: AtomicU32 = AtomicU32::new(0);

/// Set by the process-wide watcher thread once a watched process has exited
/// ([`Watch::exit_notice`]). Dropping it stops the watching.
#[derive(Debug)]
pub struct ExitNotice {
    exited: Arc<AtomicBool>,
    /// Registration in the watcher (0: none, the process was already gone).
    id: u64,
}

impl ExitNotice {
    /// Whether the process has exited (one atomic load).
    #[inline]
    pub fn has_exited(&self) -> bool {
        // SYNC: pairs with the watcher thread's Release store in
        // `watcher::run` after poll(2) reported the pidfd readable.
        self.exited.load(Ordering::Acquire)
    }

    /// The flag itself, to share with code that cannot hold the notice (a
    /// thread that wakes waiters when a peer dies, say). The watcher thread
    /// sets it with `Release` once the process has exited and never clears
    /// it; read it with `Acquire`, as [`has_exited`](Self::has_exited)
    /// does. Once this notice is dropped, the watching stops: a flag still
    /// clear then stays clear.
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use svshm::process::{ProcessId, Watch};
    /// let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
    /// let notice = Watch::new(ProcessId::of(child.id() as i32).unwrap()).exit_notice().unwrap();
    /// let flag = std::sync::Arc::clone(notice.flag());
    /// child.kill().unwrap();
    /// child.wait().unwrap();
    /// while !flag.load(Ordering::Acquire) { std::thread::yield_now(); }
    /// ```
    pub fn flag(&self) -> &Arc<AtomicBool> {
        &self.exited
    }

    /// A process-wide count of the exits the watcher thread has seen: it
    /// increments it (`Release`) after raising the flags of processes that
    /// exited, then wakes every thread waiting on it as a shared futex. So a
    /// thread can sleep until any watched process exits without polling the
    /// flags: load the count (`Acquire`), check the flags it cares about,
    /// then futex-wait while the count still holds the value loaded.
    pub fn exit_count() -> &'static AtomicU32 {
        &EXITS
    }
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        if self.id != 0 {
            watcher::unregister(self.id);
        }
    }
}

/// The process-wide watcher: one thread, blocked in `poll(2)` on an eventfd
/// (registrations changed) and every registered pidfd.
mod watcher {
    use super::ExitNotice;
    use std::os::fd::OwnedFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    struct Entry {
        id: u64,
        pidfd: Arc<OwnedFd>,
        exited: Arc<AtomicBool>,
    }

    struct Registry {
        next: u64,
        entries: Vec<Entry>,
    }

    static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
        next: 1,
        entries: Vec::new(),
    });
    /// The eventfd that wakes the thread and the pid of the process that
    /// started it; `None` if it could not be started.
    static WAKER: OnceLock<Option<(u32, Arc<OwnedFd>)>> = OnceLock::new();

    /// The waker, if the thread runs in *this* process: a child forked after
    /// it started has the statics but not the thread (nor, perhaps, an
    /// unlocked registry), so it gets no notices and callers ask
    /// `Watch::status` instead.
    fn waker() -> Option<&'static Arc<OwnedFd>> {
        let (owner, efd) = WAKER
            .get_or_init(|| {
                let efd = rustix::event::eventfd(
                    0,
                    rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
                )
                .ok()?;
                let efd = Arc::new(efd);
                let for_thread = Arc::clone(&efd);
                std::thread::Builder::new()
                    .name("svshm-peer-watch".into())
                    .spawn(move || run(&for_thread))
                    .ok()?;
                Some((std::process::id(), efd))
            })
            .as_ref()?;
        (*owner == std::process::id()).then_some(efd)
    }

    fn poke(efd: &OwnedFd) {
        let _ = rustix::io::write(efd, &1u64.to_ne_bytes());
    }

    pub(super) fn register(pidfd: OwnedFd) -> Option<ExitNotice> {
        let efd = waker()?;
        let exited = Arc::new(AtomicBool::new(false));
        let id = {
            let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            let id = reg.next;
            reg.next += 1;
            reg.entries.push(Entry {
                id,
                pidfd: Arc::new(pidfd),
                exited: Arc::clone(&exited),
            });
            id
        };
        poke(efd);
        Some(ExitNotice { exited, id })
    }

    pub(super) fn unregister(id: u64) {
        let Some(efd) = waker() else {
            return;
        };
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        reg.entries.retain(|e| e.id != id);
        drop(reg);
        poke(efd);
    }

    fn run(efd: &OwnedFd) {
        loop {
            // Snapshot: the Arcs keep each pidfd open while we poll it, even
            // if its notice is dropped meanwhile.
            let snapshot: Vec<(u64, Arc<OwnedFd>, Arc<AtomicBool>)> = {
                let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
                reg.entries
                    .iter()
                    .map(|e| (e.id, Arc::clone(&e.pidfd), Arc::clone(&e.exited)))
                    .collect()
            };
            let in_ = rustix::event::PollFlags::IN;
            let mut fds = Vec::with_capacity(snapshot.len() + 1);
            fds.push(rustix::event::PollFd::new(efd, in_));
            for (_, fd, _) in &snapshot {
                fds.push(rustix::event::PollFd::new(&**fd, in_));
            }
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => {
                    // Out of memory, or too many fds for our limit: do not
                    // spin; try again shortly.
                    drop(fds);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
            }
            let mut gone = Vec::new();
            for (i, pfd) in fds.iter().enumerate().skip(1) {
                if !pfd.revents().is_empty() {
                    gone.push(i - 1);
                }
            }
            let woken = !fds[0].revents().is_empty();
            drop(fds);
            if woken {
                let mut buf = [0u8; 8];
                let _ = rustix::io::read(efd, &mut buf);
            }
            if !gone.is_empty() {
                let ids: Vec<u64> = gone.iter().map(|&i| snapshot[i].0).collect();
                for &i in &gone {
                    // SYNC: pairs with the Acquire load in
                    // `ExitNotice::has_exited`.
                    snapshot[i].2.store(true, Ordering::Release);
                }
                // SYNC: the flags above are stored before the count moves:
                // a waiter that saw the old count and then a clear flag
                // sleeps on the count, and this wakes it.
                super::EXITS.fetch_add(1, Ordering::Release);
                rustix::thread::futex::wake(
                    &super::EXITS,
                    rustix::thread::futex::Flags::empty(),
                    u32::MAX,
                )
                .ok();
                let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
                reg.entries.retain(|e| !ids.contains(&e.id));
            }
        }
    }
}

/// How much later than a segment's change time its creator may seem to have
/// started (`shm_ctime` is in whole seconds, start times are clock ticks from a
/// boot time that is itself rounded to the second).
const START_MARGIN: Duration = Duration::from_secs(3);

/// Whether the process that created a segment still runs, judged from what
/// the kernel reports about the segment.
///
/// - `shm_cpid` of 0: the creator runs in a pid namespace we cannot see
///   ([`Status::Unknown`]).
/// - No process at that pid (the kernel says so), or a zombie:
///   [`Status::Dead`]. A process `/proc` cannot show us (`hidepid`, a `/proc`
///   of another pid namespace) is [`Status::Unknown`].
/// - A live process at that pid whose start time equals one in `recorded`
///   (start times the creator wrote down itself, such as a channel's slots) is
///   the creator: [`Status::Alive`], whatever the wall clock did. A forged
///   record can only keep a segment, never condemn one.
/// - Otherwise the kernel attests the pid, not the start time, so a reused
///   pid would look alive: a process at that pid that started after the
///   segment's change time (`shm_ctime`, plus a margin for rounding) cannot be
///   its creator, so the creator is [`Status::Dead`]. A wall clock stepped
///   forward since the segment was made (a first NTP sync, `date -s`) makes a
///   live creator look younger than it is; pass `recorded` where the creator
///   left its start time.
pub fn creator_status(info: &SegmentInfo, recorded: &[ProcessId]) -> Status {
    let pid = info.creator_pid;
    if pid <= 0 {
        return Status::Unknown;
    }
    if pid == std::process::id() as i32 {
        return Status::Alive;
    }
    match pid_exists(pid) {
        Some(false) => return Status::Dead,
        None => return Status::Unknown,
        Some(true) => {}
    }
    let Some(stat) = visible_stat(pid) else {
        return Status::Unknown;
    };
    if stat.exited {
        return Status::Dead;
    }
    if recorded
        .iter()
        .any(|r| r.start_time != 0 && r.start_time == stat.start_time)
    {
        return Status::Alive;
    }
    match (info.change_time, ticks_to_wall(stat.start_time)) {
        (Some(changed), Some(started)) if started > changed + START_MARGIN => Status::Dead,
        _ => Status::Alive,
    }
}

/// Wall-clock time of a start time in clock ticks since boot.
fn ticks_to_wall(ticks: u64) -> Option<SystemTime> {
    if ticks == 0 {
        return None;
    }
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    UNIX_EPOCH.checked_add(Duration::from_secs(btime).checked_add(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000 / hz),
    ))?)
}

/// The IPC namespace of a process (the inode of `/proc/PID/ns/ipc`), `None`
/// if it cannot be read (the process is gone, or belongs to another user and
/// we lack the right to look).
pub fn ipc_namespace(pid: i32) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let path = if pid == std::process::id() as i32 {
        "/proc/self/ns/ipc".to_string()
    } else {
        format!("/proc/{pid}/ns/ipc")
    };
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Whether process `pid` is in our IPC namespace (`None`: cannot tell).
pub fn same_ipc_namespace(pid: i32) -> Option<bool> {
    Some(ipc_namespace(pid)? == ipc_namespace(std::process::id() as i32)?)
}

/// Whether process `pid` (in our pid namespace) has segment `id` attached, as
/// its `/proc/PID/maps` shows (kernel-attested; `None` if the maps cannot be
/// read, e.g. another user's process, or `/proc` shows another pid
/// namespace).
pub fn has_attached(pid: i32, id: i32) -> Option<bool> {
    if !proc_is_ours() {
        return None;
    }
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    Some(!crate::info::parse_maps(&maps, id).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_is_alive_and_has_start_time() {
        let me = ProcessId::current();
        assert!(me.start_time > 0);
        assert!(me.is_alive());
        assert_eq!(Watch::new(me).status(), Status::Alive);
        let absent = ProcessId {
            pid: i32::MAX - 7,
            start_time: 1,
        };
        assert_eq!(absent.status(), Status::Dead);
        assert_eq!(Watch::new(absent).status(), Status::Dead);
        assert_eq!(
            ProcessId {
                pid: 0,
                start_time: 0
            }
            .status(),
            Status::Unknown
        );
    }

    #[test]
    fn parse_stat_survives_odd_command_names() {
        let text = "42 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 20";
        assert_eq!(
            parse_stat(text),
            Some(ProcStat {
                start_time: 777,
                exited: false
            })
        );
        assert_eq!(parse_stat("42 (x) Z 1"), None);
        assert!(
            parse_stat("1 (z) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 5")
                .unwrap()
                .exited
        );
    }

    #[test]
    fn a_watch_sees_exit_and_ignores_a_wrong_start_time() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let id = ProcessId::of(child.id() as i32).unwrap();
        let watch = Watch::new(id);
        assert_eq!(watch.status(), Status::Alive);
        // A record naming another start time is not this process.
        let wrong = ProcessId {
            start_time: id.start_time + 1,
            ..id
        };
        assert_eq!(Watch::new(wrong).status(), Status::Dead);
        child.kill().unwrap();
        // A zombie (killed, not yet reaped) is already dead.
        let t0 = std::time::Instant::now();
        while watch.status() == Status::Alive && t0.elapsed().as_secs() < 10 {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(watch.status(), Status::Dead);
        assert_eq!(id.status(), Status::Dead);
        child.wait().unwrap();
        assert_eq!(watch.status(), Status::Dead);
    }

    #[test]
    fn creator_status_tells_a_recycled_pid_by_its_start_time() {
        let seg = crate::Segment::create(crate::Key::PRIVATE, 4096).unwrap();
        let _rm = seg.remove_on_drop();
        let info = seg.stat().unwrap();
        assert_eq!(creator_status(&info, &[]), Status::Alive);
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let mut recycled = info.clone();
        recycled.creator_pid = child.id() as i32;
        // Started well after the segment changed: not its creator.
        recycled.change_time = Some(SystemTime::now() - Duration::from_secs(60));
        assert_eq!(creator_status(&recycled, &[]), Status::Dead);
        // Unless the creator recorded exactly this start time (a clock step).
        let rec = ProcessId::of(child.id() as i32).unwrap();
        assert_eq!(creator_status(&recycled, &[rec]), Status::Alive);
        // Started before the change time: it may be the creator.
        recycled.change_time = Some(SystemTime::now());
        assert_eq!(creator_status(&recycled, &[]), Status::Alive);
        recycled.change_time = None;
        assert_eq!(creator_status(&recycled, &[]), Status::Alive);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(creator_status(&recycled, &[rec]), Status::Dead);
        // Pid 0: in a pid namespace we cannot see.
        recycled.creator_pid = 0;
        assert_eq!(creator_status(&recycled, &[]), Status::Unknown);
    }

    #[test]
    fn namespaces_and_maps() {
        let me = std::process::id() as i32;
        assert_eq!(same_ipc_namespace(me), Some(true));
        assert_eq!(same_ipc_namespace(i32::MAX - 7), None);
        let seg = crate::Segment::create_private(4096).unwrap();
        let _rm = seg.remove_on_drop();
        assert_eq!(has_attached(me, seg.id()), Some(false));
        let _att = seg.attach().unwrap();
        assert_eq!(has_attached(me, seg.id()), Some(true));
    }
}
