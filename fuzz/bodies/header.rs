//! Target `header`: channel header validation, reached through the two public
//! entry points that read a header another process wrote: [`inspect`] (what
//! `svshm ls/stat` and stale cleanup use) and joining a channel by id
//! ([`Receiver`], [`Sender`], [`StreamReader`], [`StreamWriter`]`::connect`).
//!
//! Input: `[size selector] [action] [header bytes...]`. The header bytes are
//! written at offset 0 of a real segment of the selected size. Checked:
//!
//! - nothing panics, and no call waits (timeouts are zero);
//! - `inspect` answers exactly what the layout spec says: `None` for a
//!   segment not shaped like a channel or without the magic, an "initializing"
//!   status when not READY, `Corrupt` for a READY header the spec rejects, and
//!   otherwise the header's own values, with a capacity that fits the segment;
//! - `connect` fails with exactly the documented kind (Mismatch, Closed,
//!   InUse, Timeout, Corrupt) whenever the spec says it must, and accepts only
//!   headers the spec accepts, with their capacity and maximum message;
//! - an accepted endpoint never writes outside its ring (the bytes between the
//!   ring's end and the segment's end stay zero).

use super::segment::{
    HEADER_FIELDS, HEADER_SIZE, Hostile, Input, KIND_MESSAGES, KIND_SERVICE, KIND_STREAM,
    KIND_TOPIC, LAYOUT_VERSION, MAGIC, SLOT_ATTACHED, SLOT_CLOSED, off, u32_at, u64_at,
};
use std::time::Duration;
use svshm_channel::{
    Endpoint, Error, Kind, Options, Receiver, Sender, StreamReader, StreamWriter, TryRecvError,
    TrySendError, inspect,
};

/// Segment sizes the fuzzer picks from: channel-shaped ones (a header page
/// plus a power-of-two ring) and a few that are not.
const SIZES: [usize; 8] = [
    HEADER_SIZE + 64,
    HEADER_SIZE + 4096,
    HEADER_SIZE + 65536,
    HEADER_SIZE,
    HEADER_SIZE + 100,
    HEADER_SIZE + 32,
    HEADER_SIZE + 8192,
    HEADER_SIZE + 128,
];

/// Largest ring capacity (`svshm_channel::MAX_CAPACITY`).
const MAX_CAPACITY: u64 = 1 << 40;
/// Largest message of any channel (message.rs `MAX_MESSAGE`).
const MAX_MESSAGE: u64 = (u32::MAX - 16) as u64;
/// Cursor limit of ring.rs (`ring::MAX_CURSOR`).
const MAX_CURSOR: u64 = 1 << 62;

/// The header as the spec reads it.
struct Spec {
    channel_sized: bool,
    magic: bool,
    magic_zero: bool,
    state: u32,
    kind: u32,
    capacity: u64,
    max_message: u64,
    name: String,
    /// `read_snapshot` must accept it.
    valid: bool,
    writer: u32,
    reader: u32,
    head: u64,
    tail: u64,
    writer_closed: u32,
    reader_closed: u32,
    /// A topic's published head and tail (its own block after the slots).
    topic_head: u64,
    topic_tail: u64,
}

impl Spec {
    fn of(b: &[u8], size: u64) -> Spec {
        let header = HEADER_SIZE as u64;
        let channel_sized = size >= header + 64 && (size - header).is_power_of_two();
        let kind = u32_at(b, off::KIND);
        let capacity = u64_at(b, off::CAPACITY);
        let max_message = u64_at(b, off::MAX_MESSAGE);
        let magic = b[..8] == MAGIC;
        let cap_ok = capacity.is_power_of_two() && (64..=MAX_CAPACITY).contains(&capacity);
        let valid = magic
            && u32_at(b, off::VERSION) == LAYOUT_VERSION
            && (kind == KIND_STREAM
                || kind == KIND_MESSAGES
                || kind == KIND_TOPIC
                || kind == KIND_SERVICE)
            && cap_ok
            && u64_at(b, off::DATA_OFFSET) == header
            && header + capacity <= size
            && (kind == KIND_STREAM
                || kind == KIND_SERVICE
                || (max_message != 0
                    // A topic frame's header is 24 bytes, a message frame's 16.
                    && max_message <= capacity / 2 - if kind == KIND_TOPIC { 32 } else { 16 }
                    && max_message <= MAX_MESSAGE));
        let name_len = (u32_at(b, off::NAME_LEN) as usize).min(64);
        Spec {
            channel_sized,
            magic,
            magic_zero: b[..8] == [0; 8],
            state: u32_at(b, off::STATE),
            kind,
            capacity,
            max_message,
            name: String::from_utf8_lossy(&b[off::NAME..off::NAME + name_len]).into_owned(),
            valid,
            writer: u32_at(b, off::WRITER),
            reader: u32_at(b, off::READER),
            head: u64_at(b, off::HEAD),
            tail: u64_at(b, off::TAIL),
            writer_closed: u32_at(b, off::WRITER_CLOSED),
            reader_closed: u32_at(b, off::READER_CLOSED),
            topic_head: u64_at(b, 512),
            topic_tail: u64_at(b, 640),
        }
    }

    fn cursors_ok(&self) -> bool {
        self.tail <= self.head && self.head - self.tail <= self.capacity && self.head <= MAX_CURSOR
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Receiver,
    Sender,
    StreamReader,
    StreamWriter,
}

/// What `connect` must return, by the spec (rendezvous.rs `join`, then the
/// ring's cursor checks).
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    Invalid,
    Mismatch,
    Closed,
    InUse,
    Timeout,
    Corrupt,
    NotOurs,
}

fn expect_connect(s: &Spec, role: Role) -> Expect {
    let (kind, mine, theirs) = match role {
        Role::Receiver => (KIND_MESSAGES, s.reader, s.writer),
        Role::Sender => (KIND_MESSAGES, s.writer, s.reader),
        Role::StreamReader => (KIND_STREAM, s.reader, s.writer),
        Role::StreamWriter => (KIND_STREAM, s.writer, s.reader),
    };
    // Not provably an svshm channel (reclaim.rs `judge_with`): refused as
    // not ours, never removed.
    if !s.channel_sized || !s.magic {
        let _ = s.magic_zero;
        return Expect::NotOurs;
    }
    if s.state != 1 {
        // Not READY: our magic, still initialising (its creator, us, is
        // alive and attached), is worth waiting for; any other state is
        // impossible for a channel.
        return if s.state == 0 {
            Expect::Timeout
        } else {
            Expect::NotOurs
        };
    }
    if !s.valid || s.kind != kind {
        return Expect::Mismatch;
    }
    if theirs == SLOT_CLOSED {
        return Expect::Closed;
    }
    if mine == SLOT_CLOSED {
        // By id (as here), a side already used and closed is refused.
        return Expect::Invalid;
    }
    if mine == SLOT_ATTACHED {
        return Expect::InUse;
    }
    if mine != 0 {
        return Expect::Timeout;
    }
    if theirs != SLOT_ATTACHED {
        // The peer has not come and the timeout is zero.
        return Expect::Timeout;
    }
    if !s.cursors_ok() {
        return Expect::Corrupt;
    }
    let aligned = match role {
        Role::Sender => s.head % 8 == 0,
        Role::Receiver => s.head % 8 == 0 && s.tail % 8 == 0,
        _ => true,
    };
    if !aligned {
        return Expect::Corrupt;
    }
    Expect::Ok
}

fn classify(e: &Error) -> Expect {
    match e {
        Error::Invalid(_) => Expect::Invalid,
        Error::Mismatch { .. } => Expect::Mismatch,
        Error::Closed { .. } => Expect::Closed,
        Error::InUse { .. } => Expect::InUse,
        Error::Timeout { .. } => Expect::Timeout,
        Error::Corrupt { .. } => Expect::Corrupt,
        Error::NotOurs { .. } => Expect::NotOurs,
        other => panic!("connect failed with an undocumented kind of error: {other:?}"),
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let size = SIZES[usize::from(input.u8() % 8)];
    let action = input.u8();
    let bytes = input.rest();
    let seg = Hostile::new(size);
    let id = seg.id();
    seg.write(0, &bytes[..bytes.len().min(HEADER_FIELDS)]);
    let image = seg.read(0, HEADER_FIELDS.min(size));
    let mut padded = image.clone();
    padded.resize(HEADER_FIELDS, 0);
    let spec = Spec::of(&padded, size as u64);

    check_inspect(id, &spec);

    let role = [
        Role::Receiver,
        Role::Sender,
        Role::StreamReader,
        Role::StreamWriter,
    ][usize::from(action & 3)];
    let exercise = action & 4 != 0;
    let opts = Options::new().timeout(Some(Duration::ZERO));
    let ep = Endpoint::id(id);
    let want = expect_connect(&spec, role);
    let got = match role {
        Role::Receiver => Receiver::connect(&ep, &opts).map(|mut rx| {
            assert_eq!(rx.max_message() as u64, spec.max_message);
            assert_eq!(rx.capacity() as u64, spec.capacity);
            if exercise {
                for _ in 0..8 {
                    match rx.try_recv() {
                        Ok(m) => assert!(m.len() as u64 <= spec.max_message),
                        Err(
                            TryRecvError::Empty
                            | TryRecvError::Disconnected
                            | TryRecvError::Failed(Error::Corrupt { .. } | Error::Aborted { .. }),
                        ) => break,
                        Err(e) => panic!("try_recv: unexpected error {e:?}"),
                    }
                }
            }
        }),
        Role::Sender => Sender::connect(&ep, &opts).map(|mut tx| {
            assert_eq!(tx.max_message() as u64, spec.max_message);
            assert_eq!(tx.capacity() as u64, spec.capacity);
            if exercise {
                let n = usize::from(action >> 3) * 3;
                for _ in 0..4 {
                    match tx.try_send(&vec![0xA5; n]) {
                        Ok(()) => {}
                        Err(
                            TrySendError::Full(_)
                            | TrySendError::Disconnected(_)
                            | TrySendError::Failed(
                                _,
                                Error::MessageTooLarge { .. } | Error::Corrupt { .. },
                            ),
                        ) => break,
                        Err(e) => panic!("try_send: unexpected error {e:?}"),
                    }
                }
            }
        }),
        Role::StreamReader => StreamReader::connect(&ep, &opts).map(|mut r| {
            assert_eq!(r.capacity() as u64, spec.capacity);
            // A read waits for data or the writer's close; only then is it
            // safe to call with no peer that could ever write.
            if exercise && (spec.head > spec.tail || spec.writer_closed != 0) {
                let mut buf = [0u8; 64];
                match r.read_some(&mut buf) {
                    Ok(n) => assert!(n as u64 <= (spec.head - spec.tail).min(64)),
                    Err(Error::Aborted { .. } | Error::Corrupt { .. }) => {}
                    Err(e) => panic!("read_some: unexpected error {e:?}"),
                }
            }
        }),
        Role::StreamWriter => StreamWriter::connect(&ep, &opts).map(|mut w| {
            assert_eq!(w.capacity() as u64, spec.capacity);
            if exercise && (spec.head - spec.tail < spec.capacity || spec.reader_closed != 0) {
                match w.write_some(&[0x5A; 100]) {
                    Ok(n) => assert!(n as u64 <= spec.capacity - (spec.head - spec.tail)),
                    Err(Error::Closed { .. } | Error::Corrupt { .. }) => {}
                    Err(e) => panic!("write_some: unexpected error {e:?}"),
                }
            }
        }),
    };
    match got {
        Ok(()) => assert_eq!(
            want,
            Expect::Ok,
            "{role:?}::connect accepted a header the spec rejects"
        ),
        Err(e) => assert_eq!(classify(&e), want, "{role:?}::connect: {e}"),
    }

    // Whatever happened, nothing was written past the ring (or, for a
    // rejected header, past the header).
    let ring_end = if want == Expect::Ok {
        HEADER_SIZE + spec.capacity as usize
    } else {
        HEADER_SIZE
    };
    if ring_end < size {
        let tail = seg.read(ring_end, size - ring_end);
        assert!(
            tail.iter().all(|&b| b == 0),
            "bytes past the ring's end (offset {ring_end}) were written"
        );
    }
    // The plain header fields are the creator's: no joiner writes them.
    let after = seg.read(0, 128.min(size));
    assert_eq!(
        after[..],
        image[..128.min(size)],
        "plain header fields changed"
    );
}

fn check_inspect(id: i32, spec: &Spec) {
    let got = inspect(id);
    if !spec.channel_sized || !spec.magic {
        assert!(matches!(got, Ok(None)), "inspect of a non-channel: {got:?}");
        return;
    }
    if spec.state != 1 {
        let s = got
            .expect("inspect of an initialising channel")
            .expect("Some");
        assert!(!s.ready && s.capacity == 0 && s.fill == 0);
        assert_eq!(s.id, id);
        return;
    }
    if !spec.valid {
        assert!(
            matches!(got, Err(Error::Corrupt { id: i, .. }) if i == id),
            "inspect of a READY header the spec rejects: {got:?}"
        );
        return;
    }
    let s = got
        .expect("inspect of a valid channel")
        .expect("a valid channel is Some");
    assert_eq!(s.id, id);
    assert!(s.ready);
    assert_eq!(s.capacity, spec.capacity);
    assert!(s.capacity.is_power_of_two() && s.capacity >= 64);
    assert!(HEADER_SIZE as u64 + s.capacity <= spec_size(spec));
    assert_eq!(
        s.kind,
        match spec.kind {
            KIND_STREAM => Kind::Stream,
            KIND_TOPIC => Kind::Topic,
            KIND_SERVICE => Kind::Service,
            _ => Kind::Messages,
        }
    );
    assert_eq!(s.name, spec.name);
    assert!(s.name.len() <= 64 * 3);
    if spec.kind == KIND_SERVICE {
        // A listener: the server as the writer, its counters, no ring.
        assert!(s.connections.is_some() && s.reader.is_none());
        assert_eq!((s.written, s.fill), (0, 0));
        return;
    }
    assert!(s.connections.is_none());
    let (head, tail) = if spec.kind == KIND_TOPIC {
        (spec.topic_head, spec.topic_tail)
    } else {
        (spec.head, spec.tail)
    };
    assert_eq!(s.topic_subscribers.is_some(), spec.kind == KIND_TOPIC);
    assert_eq!(s.written, head);
    assert!(s.fill <= s.capacity);
    assert_eq!(s.fill, head.saturating_sub(tail).min(spec.capacity));
    for (status, slot) in [(s.writer, spec.writer), (s.reader, spec.reader)] {
        match status {
            Some(p) => {
                assert!(slot == SLOT_ATTACHED || slot == SLOT_CLOSED);
                assert_eq!(p.closed, slot == SLOT_CLOSED);
            }
            None => assert!(slot != SLOT_ATTACHED && slot != SLOT_CLOSED),
        }
    }
}

/// The smallest segment the spec's accepted capacity must fit: recorded in
/// `valid` already; restated here as the bound `inspect` promises.
fn spec_size(spec: &Spec) -> u64 {
    HEADER_SIZE as u64 + spec.capacity
}

/// Hand-made starting points: a valid READY header of each kind with the
/// creator's slot held, for each role, plus variants one field off.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (kind, roles) in [(KIND_MESSAGES, [0u8, 1]), (KIND_STREAM, [2u8, 3])] {
        for role in roles {
            let peer_slot = if role % 2 == 0 {
                off::WRITER
            } else {
                off::READER
            };
            let mut h = vec![0u8; HEADER_FIELDS];
            h[..8].copy_from_slice(&MAGIC);
            h[off::VERSION..][..4].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
            h[off::KIND..][..4].copy_from_slice(&kind.to_le_bytes());
            h[off::STATE..][..4].copy_from_slice(&1u32.to_le_bytes());
            h[off::CAPACITY..][..8].copy_from_slice(&4096u64.to_le_bytes());
            let max = if kind == KIND_MESSAGES { 1024u64 } else { 0 };
            h[off::MAX_MESSAGE..][..8].copy_from_slice(&max.to_le_bytes());
            h[off::DATA_OFFSET..][..8].copy_from_slice(&4096u64.to_le_bytes());
            h[off::NAME_LEN..][..4].copy_from_slice(&4u32.to_le_bytes());
            h[off::NAME..][..4].copy_from_slice(b"fuzz");
            h[peer_slot..][..4].copy_from_slice(&SLOT_ATTACHED.to_le_bytes());
            h[peer_slot + 4..][..4].copy_from_slice(&1u32.to_le_bytes());
            h[off::HEAD..][..8].copy_from_slice(&64u64.to_le_bytes());
            h[off::TAIL..][..8].copy_from_slice(&64u64.to_le_bytes());
            let input = |size_sel: u8, action: u8, h: &[u8]| {
                let mut v = vec![size_sel, action];
                v.extend_from_slice(h);
                v
            };
            // Valid, on a 4096-byte ring, exercised.
            out.push(input(1, role | 4, &h));
            // Truncated after the plain fields.
            out.push(input(1, role, &h[..128]));
            // Each plain field one off.
            for (at, len) in [
                (off::VERSION, 4),
                (off::KIND, 4),
                (off::STATE, 4),
                (off::CAPACITY, 8),
                (off::MAX_MESSAGE, 8),
                (off::DATA_OFFSET, 8),
            ] {
                let mut bad = h.clone();
                bad[at] ^= 1;
                let _ = len;
                out.push(input(1, role, &bad));
            }
            // The capacity larger than the segment.
            out.push(input(0, role, &h));
        }
    }
    out
}
