//! The "waiting for the peer" notice of `write` and `read`.

/// "Connected (or given up)", set once connect returns, and its condvar.
type Connected = std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>;

/// The "waiting for the peer" message of `write` and `read`: printed from a
/// helper thread after about a second (connect blocks), and followed by a
/// "connected" line if it was printed.
pub struct WaitNotice {
    state: Option<(Connected, std::thread::JoinHandle<bool>)>,
    peer: svshm_channel::Role,
}

impl WaitNotice {
    /// How long to wait quietly: a peer that is already there connects at once.
    const QUIET: std::time::Duration = std::time::Duration::from_secs(1);

    pub(super) fn start(enabled: bool, text: String, peer: svshm_channel::Role) -> WaitNotice {
        use std::sync::{Arc, Condvar, Mutex};
        let state = enabled.then(|| {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let theirs = Arc::clone(&pair);
            let thread = std::thread::spawn(move || {
                let (done, cv) = &*theirs;
                let Ok(guard) = done.lock() else {
                    return false;
                };
                let Ok((guard, _)) = cv.wait_timeout_while(guard, Self::QUIET, |d| !*d) else {
                    return false;
                };
                if *guard {
                    return false;
                }
                crate::util::warn(&text);
                true
            });
            (pair, thread)
        });
        WaitNotice { state, peer }
    }

    /// Ends the wait: says the peer (pid `pid`; `None` when connecting
    /// failed) connected if the waiting message was shown.
    pub fn connected(self, pid: Option<i32>) {
        let Some((pair, thread)) = self.state else {
            return;
        };
        if let Ok(mut d) = pair.0.lock() {
            *d = true;
            pair.1.notify_all();
        }
        if thread.join().unwrap_or(false) {
            // Without a peer, the error that follows says why.
            if let Some(pid) = pid {
                crate::util::warn(format_args!("the {} (pid {pid}) connected", self.peer));
            }
        }
    }
}
