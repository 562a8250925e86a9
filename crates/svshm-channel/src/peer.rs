//! Peer identity, as recorded in a channel's slots: a pid plus the process's
//! start time. Re-exported from [`svshm::process`], the one place that decides
//! whether a process is alive.

pub use svshm::process::{ProcessId, Status};
