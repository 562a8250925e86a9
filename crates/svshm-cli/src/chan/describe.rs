//! Recognising and describing channel segments, for `ls`, `stat` and `top`.

use crate::util::{Field, Obj};
use serde_json::json;
use svshm_channel::{ChannelStatus, Kind, PeerStatus};

/// Whether a segment's size fits a channel; checked before attaching anything,
/// so that listing does not touch (attach time, last pid) other segments.
pub fn might_be_channel(info: &svshm::SegmentInfo) -> bool {
    svshm_channel::might_be_channel(info)
}

/// The channel header of a segment, if it holds one we can read. Reading it
/// attaches the segment read-only for a moment.
pub fn inspect(info: &svshm::SegmentInfo) -> Option<ChannelStatus> {
    if !might_be_channel(info) {
        return None;
    }
    svshm_channel::inspect(info.id).ok().flatten()
}

/// `stream` or `messages`.
pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Stream => "stream",
        Kind::Messages => "messages",
        Kind::Topic => "topic",
        Kind::Service => "service",
    }
}

/// A topic's overflow policy: `backpressure` or `lossy`.
pub fn policy_name(p: svshm_channel::Overflow) -> &'static str {
    match p {
        svshm_channel::Overflow::Lossy => "lossy",
        _ => "backpressure",
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
    if let Some(n) = s.topic_subscribers {
        o.push("subscribers", Field::Val(json!(n)));
    }
    if let Some(p) = s.topic_overflow {
        o.push("policy", Field::Val(json!(policy_name(p))));
    }
    if let Some((live, accepted)) = s.connections {
        o.push(
            "connections",
            Field::Obj(Some(Obj::new([
                ("live", json!(live)),
                ("accepted", json!(accepted)),
            ]))),
        );
    }
    o
}
