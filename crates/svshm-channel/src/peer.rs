//! Peer identity and liveness: a pid plus the process's start time (from
//! `/proc/PID/stat`), so a recycled pid is not mistaken for the peer.

use std::fs;

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
}
