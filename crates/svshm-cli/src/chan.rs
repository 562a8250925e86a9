//! Glue to the svshm-channel crate: recognising and describing channel segments.

use crate::util::{Field, Obj};
use serde_json::json;
use svshm_channel::{ChannelStatus, Kind, PeerStatus};

/// Whether a segment's size fits a channel: a 4 KiB header page and a
/// power-of-two ring. Checked before attaching anything, so that listing does
/// not touch (attach time, last pid) segments that cannot be channels.
/// Keep in step with svshm-channel's layout (header.rs, rendezvous.rs).
pub fn might_be_channel(info: &svshm::SegmentInfo) -> bool {
    const HEADER: u64 = 4096;
    info.size > HEADER && (info.size - HEADER).is_power_of_two()
}

/// The channel header of a segment, if it holds one we can read. Reading it
/// attaches the segment read-only for a moment.
pub fn inspect(info: &svshm::SegmentInfo) -> Option<ChannelStatus> {
    if !might_be_channel(info) {
        return None;
    }
    svshm_channel::inspect(info.id).ok().flatten()
}

/// Whether segment `id` holds an svshm channel header. Segments we may not read
/// (or that vanished meanwhile) are not ours to judge: `false`.
pub fn is_channel(info: &svshm::SegmentInfo) -> anyhow::Result<bool> {
    if !might_be_channel(info) {
        return Ok(false);
    }
    match svshm_channel::inspect(info.id) {
        Ok(s) => Ok(s.is_some()),
        Err(svshm_channel::Error::Sys(e))
            if matches!(
                e.kind(),
                svshm::ErrorKind::PermissionDenied
                    | svshm::ErrorKind::InvalidId
                    | svshm::ErrorKind::Removed
            ) =>
        {
            Ok(false)
        }
        // A corrupt or mismatched header is still an svshm channel segment.
        Err(svshm_channel::Error::Corrupt { .. }) | Err(svshm_channel::Error::Mismatch { .. }) => {
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

/// `stream` or `messages`.
pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Stream => "stream",
        Kind::Messages => "messages",
    }
}

/// A peer for a table cell: `812`, `812(closed)`, `812(dead)`, `-`.
pub fn peer_cell(p: Option<PeerStatus>) -> String {
    match p {
        None => "-".to_string(),
        Some(p) if p.closed => format!("{}(closed)", p.pid),
        Some(p) if !p.alive => format!("{}(dead)", p.pid),
        Some(p) => p.pid.to_string(),
    }
}

/// A peer as a JSON object, or null.
pub fn peer_obj(p: Option<PeerStatus>) -> Field {
    Field::Obj(p.map(|p| {
        Obj::new([
            ("pid", json!(p.pid)),
            ("alive", json!(p.alive)),
            ("closed", json!(p.closed)),
        ])
    }))
}

/// The channel as a JSON object.
pub fn status_obj(s: &ChannelStatus) -> Obj {
    let mut o = Obj::new([
        ("name", json!(s.name)),
        ("kind", json!(kind_name(s.kind))),
        ("state", json!(s.state())),
        ("ready", json!(s.ready)),
        ("capacity", json!(s.capacity)),
        ("fill", json!(s.fill)),
        ("written", json!(s.written)),
    ]);
    o.push("writer", peer_obj(s.writer));
    o.push("reader", peer_obj(s.reader));
    o
}
