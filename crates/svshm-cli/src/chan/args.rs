//! How `write` and `read` name a channel and set its options on the command
//! line, and the checks that come with it.

use super::WaitNotice;
use crate::util::usage_bail;
use anyhow::Result;
use std::path::PathBuf;
use svshm::Key;
use svshm_channel::{Endpoint, Options};

/// How long `read` and `write` spin before sleeping when the ring is empty or
/// full. A bulk transfer's slower side works in bursts of tens to hundreds of
/// microseconds (one `write(2)` of a chunk to a file); a side that sleeps
/// through each burst pays a wake-up per hand-off. Measured on a 2 GiB file
/// into tmpfs: 50 µs (the library default) 1.9 s, 250 µs 1.2 s, 1 ms 1.1 s,
/// `cat` 0.84 s. An idle channel costs 1 ms of spinning per wake-up.
const CLI_SPIN: std::time::Duration = std::time::Duration::from_millis(1);

/// The most `read` and `write` move through the ring in one system call: a
/// quarter of the ring. Taking all there is would make the two sides take
/// turns (one waits for the ring while the other copies all of it); a quarter
/// keeps both copying at once. Measured on a 2 GiB file into tmpfs, 1 MiB
/// ring: a quarter 0.69 s, an eighth 0.70 s, all of it 1.05 s; `cat` 0.84 s.
pub fn piece(capacity: usize) -> usize {
    (capacity / 4).max(1)
}

/// The smallest ring a channel has (the library rounds smaller sizes up).
const MIN_RING: usize = 4096;

/// How a channel is named on the command line, shared by `write` and `read`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChannelArgs {
    /// The channel by key instead of by name (decimal, 0x hex or 0 octal).
    #[arg(short, long, value_parser = crate::util::key_arg, help_heading = "Channel")]
    pub key: Option<Key>,
    /// The channel by ftok(PATH, --proj) instead of by name.
    #[arg(
        short = 'f',
        long = "path",
        value_name = "PATH",
        help_heading = "Channel"
    )]
    pub path: Option<PathBuf>,
    /// Project id for ftok with --path (1..=255).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "path", value_parser = clap::value_parser!(u8).range(1..), help_heading = "Channel")]
    pub proj: u8,
    /// Ring size if this side creates the channel: at least 4K; K/M/G/T
    /// suffixes (powers of 1024); rounded up to a power of two.
    #[arg(long, value_name = "SIZE", value_parser = crate::util::size_arg, default_value = "1M", help_heading = "Channel")]
    pub ring: u64,
    /// Permission bits (octal). Give both sides the same -m: the side that
    /// creates the channel sets it, and the side that joins refuses a segment
    /// whose mode is wider than its own -m.
    #[arg(short, long, value_parser = crate::util::mode_arg, default_value = "600", help_heading = "Channel")]
    pub mode: u32,
    /// Join a channel that USER (a name or uid) creates and owns: a channel
    /// between two users.
    ///
    /// The other side, run by USER, creates the channel (a name then means
    /// USER's channel of that name) and must open its mode to admit this side,
    /// e.g. `-m 666`; give this side the same -m (a segment joined may not be
    /// wider than -m; root needs no mode bits to join, but the check holds).
    /// This side waits for USER's segment and checks the kernel's record that
    /// USER created and owns it. What that exposes: the segment's mode is its
    /// only lock, so every user the mode admits can read the data and forge or
    /// corrupt it, and root always can; keys and ids are public. Use it
    /// between users who trust each other, with the narrowest mode that works.
    #[arg(
        long,
        value_name = "USER",
        help_heading = "Channel",
        verbatim_doc_comment
    )]
    pub peer_user: Option<String>,
    /// Join an existing channel segment by id (see `svshm ls`), e.g. one
    /// created with IPC_PRIVATE, instead of by name.
    #[arg(long, value_parser = crate::util::id_arg, help_heading = "Channel")]
    pub id: Option<i32>,
    /// Say on stderr what this side waits for (with the command that starts
    /// the other side) and when the peer connects; on a terminal this is on
    /// after a second of waiting anyway.
    #[arg(short, long, help_heading = "Channel")]
    pub verbose: bool,
    /// Wait at most this many seconds for the other side to connect (default: forever; so does a century or more).
    #[arg(long, value_name = "SECS", value_parser = crate::util::secs_arg, allow_negative_numbers = true, help_heading = "Channel")]
    pub wait: Option<crate::util::Secs>,
}

impl ChannelArgs {
    /// Whether the channel is given by an option rather than a positional NAME.
    pub fn has_option_endpoint(&self) -> bool {
        self.key.is_some() || self.path.is_some() || self.id.is_some()
    }

    /// The endpoint and a label for messages (`channel "name"`, ...).
    pub fn endpoint(&self, name: Option<&str>) -> Result<Endpoint> {
        let id = self.id;
        let given = usize::from(name.is_some())
            + usize::from(self.key.is_some())
            + usize::from(self.path.is_some())
            + usize::from(id.is_some());
        if given == 0 {
            usage_bail!(
                "no channel given; name it (e.g. `logs`, the same name on both sides), or give -k KEY, --path PATH or --id ID"
            );
        }
        if given > 1 {
            usage_bail!("give the channel one way only: a NAME, -k KEY, --path PATH or --id ID");
        }
        Ok(if let Some(n) = name {
            if n.is_empty() {
                usage_bail!("the channel name is empty; give a name like `logs`");
            }
            Endpoint::name(n)
        } else if let Some(k) = self.key {
            if k.is_private() {
                usage_bail!(
                    "key 0 is IPC_PRIVATE and names no channel; give a non-zero key or a name"
                );
            }
            Endpoint::key(k)
        } else if let Some(p) = &self.path {
            Endpoint::path(p.clone(), self.proj)
        } else {
            Endpoint::id(id.unwrap_or_default())
        })
    }

    /// The error for a failed connect of `side` ("write to", "read from") to
    /// `ep`. A segment refused for its mode alone (ours by owner and creator,
    /// but wider than our -m) is two sides given different -m, not squatting:
    /// say so, with the -m that matches.
    pub fn connect_error(
        &self,
        e: svshm_channel::Error,
        side: &str,
        ep: &Endpoint,
    ) -> anyhow::Error {
        if let svshm_channel::Error::Foreign { id, .. } = &e {
            let me = svshm::euid();
            if let Ok(info) = svshm::Segment::from_id(*id).stat() {
                // 0o100 marks a channel still being initialised, not a mode.
                let perms = info.permissions() & !0o100;
                if info.uid == me && info.creator_uid == me && perms & !self.mode != 0 {
                    return anyhow::anyhow!(
                        "{side} {ep}: the channel's segment {id} is yours but has mode {perms:03o}, wider than this side's -m {:03o}: both sides must give the same -m; run this side with -m {perms:03o} (or start both again with the same -m)",
                        self.mode
                    );
                }
            }
        }
        anyhow::anyhow!("{side} {ep}: {e}")
    }

    /// The command line that starts the other side of this channel, as a
    /// user would type it: `svshm read logs > FILE`.
    pub fn peer_command(&self, me: svshm_channel::Role, name: Option<&str>) -> String {
        let mut cmd = match me {
            svshm_channel::Role::Writer => "svshm read".to_string(),
            svshm_channel::Role::Reader => "svshm write".to_string(),
        };
        if let Some(n) = name {
            cmd.push(' ');
            cmd.push_str(&shell_word(n));
        } else if let Some(k) = self.key {
            cmd.push_str(&format!(" -k {k}"));
        } else if let Some(p) = &self.path {
            cmd.push_str(&format!(" --path {}", shell_word(&p.to_string_lossy())));
            if self.proj != 1 {
                cmd.push_str(&format!(" --proj {}", self.proj));
            }
        } else if let Some(id) = self.id {
            cmd.push_str(&format!(" --id {id}"));
        }
        if self.mode != 0o600 {
            cmd.push_str(&format!(" -m {:03o}", self.mode));
        }
        cmd.push_str(match me {
            svshm_channel::Role::Writer => " > FILE",
            svshm_channel::Role::Reader => " FILE",
        });
        cmd
    }

    /// Starts saying, on stderr after about a second, what this side waits
    /// for and how to start the other side: on a terminal, or anywhere with
    /// `--progress` (`progress`) or `-v`. Call [`WaitNotice::connected`] once
    /// connected.
    pub fn wait_notice(
        &self,
        me: svshm_channel::Role,
        name: Option<&str>,
        ep: &Endpoint,
        progress: bool,
    ) -> WaitNotice {
        use std::io::IsTerminal;
        let enabled = self.verbose || progress || std::io::stderr().is_terminal();
        let per_user = if name.is_some() {
            let user = crate::util::user_or_uid(svshm::euid());
            format!(
                " (channel names are per user: the {} must run as {user} too)",
                me.peer()
            )
        } else {
            String::new()
        };
        let text = format!(
            "waiting for a {} of {ep}{per_user}: start one with  {}",
            me.peer(),
            self.peer_command(me, name)
        );
        WaitNotice::start(enabled, text, me.peer())
    }

    /// Channel options from the flags.
    pub fn options(&self) -> Result<Options> {
        let timeout = self.wait.and_then(crate::util::Secs::duration);
        let Some(ring) = usize::try_from(self.ring)
            .ok()
            .filter(|&r| r <= svshm_channel::MAX_CAPACITY)
        else {
            usage_bail!(
                "--ring {} exceeds the largest ring ({}); give at most --ring {}",
                self.ring,
                crate::util::human_size(svshm_channel::MAX_CAPACITY as u64),
                crate::util::human_1letter(svshm_channel::MAX_CAPACITY as u64)
            );
        };
        if ring < MIN_RING {
            usage_bail!(
                "--ring {} is below the smallest ring ({MIN_RING} bytes, one page); give at least --ring 4K",
                self.ring
            );
        }
        let opts = Options::new()
            .capacity(ring)
            .mode(self.mode)
            .timeout(timeout)
            .spin(CLI_SPIN);
        Ok(match self.peer_uid()? {
            Some(uid) => opts.owner(uid),
            None => opts,
        })
    }

    /// The uid of --peer-user.
    fn peer_uid(&self) -> Result<Option<u32>> {
        let Some(user) = &self.peer_user else {
            return Ok(None);
        };
        match crate::util::lookup_uid(user) {
            Some(uid) => Ok(Some(uid)),
            None => {
                usage_bail!("--peer-user {user}: no such user; give a user name or a numeric uid")
            }
        }
    }

    /// With --peer-user, waits (up to --wait) until the peer has created the
    /// channel's segment: the side that joins another user's channel never
    /// creates it (a segment it made would be refused by its owner).
    pub fn await_peer_creation(&self, ep: &Endpoint, opts: &Options) -> Result<()> {
        if self.peer_user.is_none() {
            return Ok(());
        }
        let Some(key) = ep
            .sysv_key(opts)
            .map_err(|e| anyhow::anyhow!("{ep}: {e}"))?
        else {
            return Ok(());
        };
        let deadline = self
            .wait
            .and_then(crate::util::Secs::duration)
            .and_then(|d| std::time::Instant::now().checked_add(d));
        while svshm::info::public_info_by_key(key).is_none() {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                anyhow::bail!(
                    "{ep}: user {} created no channel (key {key}) within --wait; start the other side, run by that user, with the same name",
                    self.peer_user.as_deref().unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(())
    }
}

/// A word as a POSIX shell reads it back: as is when it holds only safe
/// characters, else in single quotes.
fn shell_word(w: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !w.is_empty() && w.chars().all(safe) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}
