//! Peer identity and liveness: a pid plus the process's start time (from
//! `/proc/PID/stat`), so a recycled pid is not mistaken for the peer.

use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Identity of a process: its pid and its start time in clock ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    /// The process id.
    pub pid: i32,
    /// Start time (field 22 of `/proc/PID/stat`), 0 if unknown.
    pub start_time: u64,
}

/// State of a process from `/proc/PID/stat`: start time, and whether it is a
/// zombie or dead (exited but not reaped counts as dead: it will never touch the
/// ring again).
fn stat_of(pid: i32) -> Option<(u64, bool)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may contain spaces and parentheses: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    // After the state come fields 4..; the start time is field 22, i.e. the
    // 19th after the state.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, matches!(state, "Z" | "X" | "x")))
}

impl ProcessId {
    /// The calling process.
    pub fn current() -> ProcessId {
        let pid = std::process::id() as i32;
        ProcessId {
            pid,
            start_time: stat_of(pid).map_or(0, |(s, _)| s),
        }
    }

    /// Whether this process still runs: the pid exists, is not a zombie, and has
    /// the same start time.
    pub fn is_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        if self.pid == std::process::id() as i32 {
            return true;
        }
        match stat_of(self.pid) {
            Some((start, dead)) => !dead && (self.start_time == 0 || start == self.start_time),
            None => false,
        }
    }
}

/// Whether a bare pid (e.g. a segment's creator pid) names a live process.
pub fn pid_alive(pid: i32) -> bool {
    pid > 0 && stat_of(pid).is_some_and(|(_, dead)| !dead)
}

/// Whether the process that created a segment still runs.
///
/// The kernel attests the creator's pid (`shm_cpid`), not its start time, so a
/// pid reused by a newer process would look alive. This also compares times:
/// the creator started before it created the segment, and the segment's
/// change time (`shm_ctime`: creation or a later IPC_SET) is never earlier
/// than its creation. A process holding that pid which started after the
/// change time (plus a margin for clock rounding and drift) cannot be the
/// creator, so the creator is gone. A recycled pid that started within the
/// margin still counts as alive: the answer errs on the side of keeping a
/// segment.
///
/// The wall clock is the weak point: `shm_ctime` was recorded with the clock
/// of its day, the start time is converted with today's boot time, so a clock
/// stepped forward since (a first NTP sync, `date -s`) makes a live creator
/// look younger than its segment. Where the creator's own record of its start
/// time is at hand, use [`creator_alive_with`].
pub fn creator_alive(info: &svshm::SegmentInfo) -> bool {
    creator_alive_with(info, &[])
}

/// [`creator_alive`], also given identities the creator may have recorded
/// (a channel's slots). A live process at the creator pid whose start time
/// (clock ticks since boot: no wall clock involved) equals a recorded one is
/// taken for the creator whatever the wall clock did. Only the start time is
/// compared, not the pid: a creator in another pid namespace recorded its pid
/// there. A forged record can only keep a segment, never condemn one.
pub fn creator_alive_with(info: &svshm::SegmentInfo, recorded: &[ProcessId]) -> bool {
    let pid = info.creator_pid;
    let Some((start, dead)) = (pid > 0).then(|| stat_of(pid)).flatten() else {
        return false;
    };
    if dead {
        return false;
    }
    if recorded
        .iter()
        .any(|r| r.start_time != 0 && r.start_time == start)
    {
        return true;
    }
    match (info.change_time, started_at(start)) {
        (Some(changed), Some(started)) => started <= changed + START_MARGIN,
        _ => true,
    }
}

/// Whether a segment's creator is known to be gone, for deciding to reclaim
/// it: [`creator_alive_with`] says no, and the kernel showed us its pid. A
/// creator pid of 0 means the creator runs in a pid namespace we cannot see
/// (not ours nor a descendant): unknown, so not gone — such a segment is kept
/// for a process that can see its creator (or `svshm rm`) to judge.
pub fn creator_gone(info: &svshm::SegmentInfo, recorded: &[ProcessId]) -> bool {
    info.creator_pid > 0 && !creator_alive_with(info, recorded)
}

/// How much later than a segment's change time its creator may seem to have
/// started (`shm_ctime` is truncated to seconds, start times are in clock
/// ticks from the boot time, and the boot time in `/proc/stat` is itself
/// rounded and moves when the wall clock is stepped).
const START_MARGIN: Duration = Duration::from_secs(3);

/// Wall-clock time of a start time in clock ticks since boot.
fn started_at(ticks: u64) -> Option<SystemTime> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(
        UNIX_EPOCH
            + Duration::from_secs(btime)
            + Duration::from_nanos(ticks.saturating_mul(1_000_000_000 / hz)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_is_alive_and_has_start_time() {
        let me = ProcessId::current();
        assert!(me.start_time > 0);
        assert!(me.is_alive());
        assert!(pid_alive(me.pid));
        assert!(
            !ProcessId {
                pid: me.pid + 1_000_000,
                start_time: 1
            }
            .is_alive()
        );
        assert!(!pid_alive(0));
    }

    #[test]
    fn reaped_child_is_dead_and_recycled_start_time_is_not_alive() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = stat_of(pid).unwrap().0;
        let id = ProcessId {
            pid,
            start_time: start,
        };
        assert!(id.is_alive());
        assert!(
            !ProcessId {
                pid,
                start_time: start + 1
            }
            .is_alive()
        );
        child.kill().unwrap();
        // A zombie (killed, not yet reaped) already counts as dead.
        let t0 = std::time::Instant::now();
        while id.is_alive() && t0.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!id.is_alive());
        child.wait().unwrap();
        assert!(!id.is_alive());
    }

    #[test]
    fn creator_alive_tells_a_recycled_pid_by_its_start_time() {
        let seg = svshm::Segment::create(svshm::Key::PRIVATE, 4096).unwrap();
        let _rm = seg.remove_on_drop();
        let info = seg.stat().unwrap();
        // We created it: alive.
        assert_eq!(info.creator_pid, std::process::id() as i32);
        assert!(creator_alive(&info));
        // A process that holds the creator's pid but started well after the
        // segment's change time is not its creator.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let mut recycled = info.clone();
        recycled.creator_pid = child.id() as i32;
        recycled.change_time = Some(SystemTime::now() - Duration::from_secs(60));
        assert!(!creator_alive(&recycled));
        // Started before the change time: it may be the creator.
        recycled.change_time = Some(SystemTime::now());
        assert!(creator_alive(&recycled));
        // Unknown change time: keep (alive).
        recycled.change_time = None;
        assert!(creator_alive(&recycled));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!creator_alive(&recycled));
        assert!(creator_gone(&recycled, &[]));
        // Pid 0: the creator is not visible in our pid namespace; not known
        // to be alive, but not known to be gone either.
        recycled.creator_pid = 0;
        assert!(!creator_alive(&recycled));
        assert!(!creator_gone(&recycled, &[]));
    }

    /// A wall clock stepped forward by an hour after the segment was made
    /// looks, to the time comparison, exactly like a creator that started an
    /// hour after its segment: the segment's change time is an hour before our
    /// start time as converted with today's boot time.
    #[test]
    fn a_clock_step_does_not_kill_a_creator_that_recorded_its_start_time() {
        let seg = svshm::Segment::create(svshm::Key::PRIVATE, 4096).unwrap();
        let _rm = seg.remove_on_drop();
        let mut info = seg.stat().unwrap();
        let me = ProcessId::current();
        let started = started_at(me.start_time).unwrap();
        info.change_time = Some(started - Duration::from_secs(3600));
        // The time comparison alone cannot tell this from a recycled pid...
        assert!(!creator_alive(&info));
        // ...the creator's own record of its start time can.
        assert!(creator_alive_with(&info, &[me]));
        // A record that names another start time proves nothing.
        let other = ProcessId {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(!creator_alive_with(&info, &[other]));
        // Unknown (0) start times prove nothing either.
        let unknown = ProcessId {
            pid: me.pid,
            start_time: 0,
        };
        assert!(!creator_alive_with(&info, &[unknown]));
        // A recycled pid: a process that is not the recorded one.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let mut recycled = info.clone();
        recycled.creator_pid = child.id() as i32;
        recycled.change_time = Some(SystemTime::now() - Duration::from_secs(60));
        assert!(!creator_alive_with(&recycled, &[me]));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
