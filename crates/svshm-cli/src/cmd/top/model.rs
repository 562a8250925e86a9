//! What `svshm top` shows, apart from how: samples of the segment table and of
//! the caller's own channels, throughput from the writers' cursors, sorting and
//! filtering. Text here is raw (as read from the kernel, /proc or a channel
//! header); the views escape it on output.

use crate::chan::peer_cell;
use crate::util::{printable, process_cmdline, user_or_uid};
use anyhow::Result;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;
use svshm::SegmentInfo;
use svshm_channel::ChannelStatus;

/// How many throughput samples a channel keeps for its sparkline.
pub const HISTORY: usize = 60;

/// The order of the segment table (and of the channel table, by the same
/// measure where it applies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    /// Largest segment first.
    #[default]
    Size,
    /// Most resident memory first (`/proc/sysvipc/shm`).
    Rss,
    /// Most attachments first.
    Nattch,
    /// Kernel order (by id).
    Id,
}

impl SortKey {
    /// The next key, for the `s` key.
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Size => SortKey::Rss,
            SortKey::Rss => SortKey::Nattch,
            SortKey::Nattch => SortKey::Id,
            SortKey::Id => SortKey::Size,
        }
    }

    /// Its name as shown (`sort: size`).
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Size => "size",
            SortKey::Rss => "rss",
            SortKey::Nattch => "nattch",
            SortKey::Id => "id",
        }
    }
}

/// One segment of the host.
#[derive(Debug, Clone)]
pub struct SegRow {
    /// The kernel's record (with rss and swap from `/proc/sysvipc/shm`).
    pub info: SegmentInfo,
    /// Owner's user name (or uid).
    pub owner: String,
    /// The channel name, if it is one of the caller's channels and was read;
    /// `?` if it is only sized like a channel.
    pub channel: String,
    /// The creator's command line, if it still runs.
    pub command: String,
}

/// One of the caller's channels.
#[derive(Debug, Clone)]
pub struct ChanRow {
    /// What its header said.
    pub status: ChannelStatus,
    /// Bytes per second written since the previous sample (`None` on the first).
    pub rate: Option<f64>,
    /// Recent rates, oldest first, for the sparkline.
    pub history: Vec<f64>,
}

impl ChanRow {
    /// Its name, or a word saying why there is none yet.
    pub fn name(&self) -> &str {
        if self.status.ready {
            &self.status.name
        } else {
            "(initializing)"
        }
    }

    /// Fill as a percentage of the ring (0 for an empty or unknown ring).
    pub fn fill_percent(&self) -> u64 {
        percent(self.status.fill, self.status.capacity)
    }

    /// `812`, `812(closed)`, `812(dead)` or `-`.
    pub fn writer(&self) -> String {
        peer_cell(self.status.writer)
    }

    /// `812`, `812(closed)`, `812(dead)` or `-`.
    pub fn reader(&self) -> String {
        peer_cell(self.status.reader)
    }
}

/// `part` as a whole percentage of `whole`, at most 100.
pub fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    ((u128::from(part.min(whole)) * 100) / u128::from(whole)) as u64
}

/// One refresh: every segment, and the caller's channels.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every segment, in kernel order.
    pub segs: Vec<SegRow>,
    /// The caller's channels, in kernel order.
    pub chans: Vec<ChanRow>,
    /// Seconds since the previous sample (what the rates were measured over).
    pub over: Option<f64>,
    /// Whether channel headers were read at all (not with --no-attach).
    pub peeked: bool,
}

impl Snapshot {
    /// Total size, resident and swapped bytes of all segments.
    pub fn totals(&self) -> (u64, u64, u64) {
        self.segs.iter().fold((0, 0, 0), |(s, r, w), g| {
            (
                s.saturating_add(g.info.size),
                r.saturating_add(g.info.rss.unwrap_or(0)),
                w.saturating_add(g.info.swap.unwrap_or(0)),
            )
        })
    }
}

/// Whether a segment is one `top` may read the channel header of: owned and
/// created by the caller's effective uid, and sized like a channel. Anything
/// else is only listed from the kernel's record.
pub fn is_own_channel(info: &SegmentInfo, euid: u32) -> bool {
    info.uid == euid && info.creator_uid == euid && crate::chan::might_be_channel(info)
}

/// What a channel looked like at the previous sample.
#[derive(Debug)]
struct Track {
    written: u64,
    at: Instant,
    history: VecDeque<f64>,
}

/// Takes samples and remembers enough of the previous one to compute rates.
#[derive(Debug)]
pub struct Sampler {
    peek: bool,
    euid: u32,
    last: Option<Instant>,
    tracks: HashMap<(i32, String), Track>,
    /// User names by uid (a lookup may go to NSS; once per uid is enough).
    users: HashMap<u32, String>,
}

impl Sampler {
    /// A sampler; with `peek` it reads the caller's own channel headers.
    pub fn new(peek: bool) -> Sampler {
        Sampler {
            peek,
            euid: svshm::euid(),
            last: None,
            tracks: HashMap::new(),
            users: HashMap::new(),
        }
    }

    /// Reads the segment table and the caller's channel headers.
    pub fn sample(&mut self) -> Result<Snapshot> {
        let infos = svshm::proc_segments()?;
        let now = Instant::now();
        let mut chans = Vec::new();
        let mut segs = Vec::with_capacity(infos.len());
        let mut seen = HashMap::new();
        for info in infos {
            let sized = crate::chan::might_be_channel(&info);
            // Ownership is judged from the kernel's table just read; the id
            // cannot name another segment by the time the header is read
            // unless ~65536 segments were created at its index meanwhile
            // (the kernel's sequence number in the id).
            let status = if self.peek && is_own_channel(&info, self.euid) {
                crate::chan::inspect(&info)
            } else {
                None
            };
            let channel = match &status {
                Some(s) if s.ready => s.name.clone(),
                Some(_) => "(initializing)".to_string(),
                None if sized => "?".to_string(),
                None => String::new(),
            };
            if let Some(status) = status {
                let key = (status.id, status.name.clone());
                let (rate, history) = self.track(&key, status.written, now);
                seen.insert(key, ());
                chans.push(ChanRow {
                    status,
                    rate,
                    history,
                });
            }
            segs.push(SegRow {
                owner: self
                    .users
                    .entry(info.uid)
                    .or_insert_with(|| user_or_uid(info.uid))
                    .clone(),
                command: process_cmdline(info.creator_pid).unwrap_or_default(),
                channel,
                info,
            });
        }
        // Forget channels that are gone (their id may come back as another).
        self.tracks.retain(|k, _| seen.contains_key(k));
        let over = self.last.map(|t| now.duration_since(t).as_secs_f64());
        self.last = Some(now);
        Ok(Snapshot {
            segs,
            chans,
            over,
            peeked: self.peek,
        })
    }

    /// Updates a channel's track with its writer's cursor; returns its rate
    /// since the previous sample and its recent history.
    fn track(
        &mut self,
        key: &(i32, String),
        written: u64,
        now: Instant,
    ) -> (Option<f64>, Vec<f64>) {
        let rate = match self.tracks.get_mut(key) {
            Some(t) => {
                let dt = now.duration_since(t.at).as_secs_f64();
                // Cursors only grow; one that went back is another channel
                // under the same id and name: start over.
                let rate =
                    (written >= t.written && dt > 0.0).then(|| (written - t.written) as f64 / dt);
                if rate.is_none() {
                    t.history.clear();
                }
                t.written = written;
                t.at = now;
                if let Some(r) = rate {
                    if t.history.len() == HISTORY {
                        t.history.pop_front();
                    }
                    t.history.push_back(r);
                }
                rate
            }
            None => {
                self.tracks.insert(
                    key.clone(),
                    Track {
                        written,
                        at: now,
                        history: VecDeque::new(),
                    },
                );
                None
            }
        };
        let history = self
            .tracks
            .get(key)
            .map(|t| t.history.iter().copied().collect())
            .unwrap_or_default();
        (rate, history)
    }
}

/// How the user looks at a snapshot: order and filter.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The segment order.
    pub sort: SortKey,
    /// Only rows whose shown text contains this (case-insensitive); empty for all.
    pub filter: String,
}

impl View {
    fn matches(&self, fields: &[&str]) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let needle = self.filter.to_lowercase();
        fields
            .iter()
            .any(|f| printable(f).to_lowercase().contains(&needle))
    }

    /// The segments to show, filtered and sorted (ties in kernel order).
    pub fn segs<'a>(&self, snap: &'a Snapshot) -> Vec<&'a SegRow> {
        let mut v: Vec<&SegRow> = snap
            .segs
            .iter()
            .filter(|s| {
                self.matches(&[
                    &s.info.key.to_string(),
                    &s.info.id.to_string(),
                    &s.owner,
                    &s.channel,
                    &s.command,
                ])
            })
            .collect();
        match self.sort {
            SortKey::Size => v.sort_by_key(|s| std::cmp::Reverse(s.info.size)),
            SortKey::Rss => v.sort_by_key(|s| std::cmp::Reverse(s.info.rss)),
            SortKey::Nattch => v.sort_by_key(|s| std::cmp::Reverse(s.info.attach_count)),
            SortKey::Id => v.sort_by_key(|s| s.info.id),
        }
        v
    }

    /// The channels to show, filtered; the busiest first, then by name.
    pub fn chans<'a>(&self, snap: &'a Snapshot) -> Vec<&'a ChanRow> {
        let mut v: Vec<&ChanRow> = snap
            .chans
            .iter()
            .filter(|c| self.matches(&[c.name(), &c.status.id.to_string()]))
            .collect();
        v.sort_by(|a, b| {
            b.rate
                .unwrap_or(0.0)
                .total_cmp(&a.rate.unwrap_or(0.0))
                .then_with(|| a.name().cmp(b.name()))
                .then_with(|| a.status.id.cmp(&b.status.id))
        });
        v
    }
}

/// A rate as text: `0 B/s`, `1.5 MiB/s`, `-` when not measured yet.
pub fn rate_text(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("{}/s", crate::util::human_size(r.max(0.0) as u64)),
        None => "-".to_string(),
    }
}

/// A sparkline of `values` in `width` block characters (the newest last),
/// scaled to the largest shown.
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let shown = &values[values.len().saturating_sub(width)..];
    let max = shown.iter().copied().fold(0.0f64, f64::max);
    shown
        .iter()
        .map(|&v| {
            if max <= 0.0 || v <= 0.0 {
                '▁'
            } else {
                BARS[((v / max) * 8.0).ceil().clamp(1.0, 8.0) as usize]
            }
        })
        .collect()
}

/// A fill bar of `width` cells and the percentage: `████░░░░ 50%`.
pub fn fill_bar(percent: u64, width: usize) -> String {
    let full = (percent.min(100) as usize * width).div_ceil(100);
    let full = if percent == 0 { 0 } else { full.max(1) };
    format!(
        "{}{} {percent:>3}%",
        "█".repeat(full),
        "░".repeat(width.saturating_sub(full))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_cycle() {
        let mut k = SortKey::Size;
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(k.name());
            k = k.next();
        }
        assert_eq!(k, SortKey::Size);
        assert_eq!(seen, ["size", "rss", "nattch", "id"]);
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(0, 0), 0);
        assert_eq!(percent(50, 100), 50);
        assert_eq!(percent(u64::MAX, u64::MAX), 100);
        assert_eq!(percent(u64::MAX, 1), 100);
    }

    #[test]
    fn bars_and_lines() {
        assert_eq!(fill_bar(0, 4), "░░░░   0%");
        assert_eq!(fill_bar(1, 4), "█░░░   1%");
        assert_eq!(fill_bar(100, 4), "████ 100%");
        assert_eq!(sparkline(&[0.0, 1.0, 2.0], 2), "▄█");
        assert_eq!(sparkline(&[], 5), "");
        assert_eq!(sparkline(&[0.0, 0.0], 5), "▁▁");
        assert_eq!(rate_text(None), "-");
        assert_eq!(rate_text(Some(0.0)), "0 B/s");
    }

    #[test]
    fn filter_is_case_insensitive_and_escaped() {
        let v = View {
            sort: SortKey::Size,
            filter: "ABC".into(),
        };
        assert!(v.matches(&["xabcx"]));
        assert!(!v.matches(&["ab"]));
        let esc = View {
            sort: SortKey::Size,
            filter: "\\x1b".into(),
        };
        assert!(esc.matches(&["a\u{1b}b"]));
        assert!(View::default().matches(&[]));
    }
}
