//! `--progress`: bytes, rate and ETA on stderr (indicatif), and a summary line.

use crate::util::human_size;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};

/// A transfer's progress display; does nothing unless enabled.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    verb: &'static str,
}

impl Progress {
    /// A display for `verb` ("sent", "received"); `total` when known (for ETA).
    pub fn new(enabled: bool, total: Option<u64>, verb: &'static str) -> Progress {
        let bar = enabled.then(|| {
            let (bar, template) = match total {
                Some(t) => (
                    ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
                    "{spinner} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                ),
                None => (
                    ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                    "{spinner} {bytes} {binary_bytes_per_sec} elapsed {elapsed}",
                ),
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            start: Instant::now(),
            verb,
        }
    }

    /// Restarts the clock (after the peer connected).
    pub fn restart(&mut self) {
        self.start = Instant::now();
        if let Some(b) = &self.bar {
            b.reset_elapsed();
            b.reset_eta();
        }
    }

    /// Bytes done so far.
    pub fn set(&self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }

    /// Clears the bar and prints `svshm: sent 1.0 GiB (… bytes) in 0.52 s, 1.9 GiB/s`.
    pub fn finish(&self, done: u64) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
            let secs = self.start.elapsed().as_secs_f64();
            let rate = if secs > 0.0 {
                (done as f64 / secs) as u64
            } else {
                0
            };
            crate::util::warn(format_args!(
                "{} {} in {secs:.2} s, {}/s",
                self.verb,
                crate::util::bytes_text(done),
                human_size(rate)
            ));
        }
    }

    /// Clears the bar without a summary (on errors).
    pub fn abandon(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
