//! Glue to the svshm-channel crate: describing channel segments
//! ([`describe`]), naming a channel on the command line ([`args`]), and the
//! notice shown while waiting for the peer ([`notice`]).

mod args;
mod describe;
mod notice;

pub use args::{ChannelArgs, piece};
pub use describe::{
    inspect, kind_name, might_be_channel, peer_cell, peer_obj, policy_name, status_obj,
};
use notice::WaitNotice;
