//! A hostile "creator": a private segment whose bytes the fuzzer chooses, held
//! attached by this process (so the channel looks alive to a joiner) and marked
//! for destruction at once (so the kernel frees it when this process detaches
//! or dies, even if a fuzz target aborts).

use svshm::{Attachment, Segment};

/// Header page size (docs/ARCHITECTURE.md, "The channel segment").
pub const HEADER_SIZE: usize = 4096;
/// The channel layout version this build speaks.
pub const LAYOUT_VERSION: u32 = 3;
/// `b"SVSHMCH\x01"`.
pub const MAGIC: [u8; 8] = *b"SVSHMCH\x01";
/// Bytes of the header that carry fields: plain fields, two slots, the cursors.
pub const HEADER_FIELDS: usize = 384 + 7 * 128;

/// Field offsets.
pub mod off {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const KIND: usize = 12;
    pub const STATE: usize = 16;
    pub const CAPACITY: usize = 24;
    pub const MAX_MESSAGE: usize = 32;
    pub const DATA_OFFSET: usize = 40;
    pub const NAME_LEN: usize = 48;
    pub const NAME: usize = 56;
    pub const WRITER: usize = 128;
    pub const READER: usize = 256;
    pub const HEAD: usize = 384;
    pub const TAIL: usize = 512;
    pub const WRITER_CLOSED: usize = 896;
    pub const READER_CLOSED: usize = 1024;
    pub const WRITER_FINAL: usize = 1152;
}

pub const KIND_STREAM: u32 = 1;
pub const KIND_MESSAGES: u32 = 2;
/// A topic (one publisher, many subscribers): the same first 384 bytes.
pub const KIND_TOPIC: u32 = 3;
/// A service's listener: the same first 384 bytes, accept slots after.
pub const KIND_SERVICE: u32 = 8;
pub const SLOT_ATTACHED: u32 = 2;
pub const SLOT_CLOSED: u32 = 3;

/// A segment of `size` bytes that only this process can reach.
pub struct Hostile {
    pub att: Attachment,
    pub size: usize,
}

impl Hostile {
    /// Creates, attaches and marks the segment for destruction. Panics if the
    /// system refuses (that is the environment, not a finding, but a fuzz run
    /// cannot go on without segments).
    pub fn new(size: usize) -> Hostile {
        let seg = Segment::create_private(size).expect("create a private segment");
        let att = match seg.attach() {
            Ok(a) => a,
            Err(e) => {
                let _ = seg.remove();
                panic!("attach the new segment: {e}");
            }
        };
        // Linux lets processes attach a segment marked for destruction by id,
        // which is all a joiner by id does.
        seg.remove().expect("mark the segment for destruction");
        Hostile { att, size }
    }

    pub fn id(&self) -> i32 {
        self.att.id()
    }

    /// Copies `bytes` to `at`, cut to the segment's end.
    pub fn write(&self, at: usize, bytes: &[u8]) {
        if at >= self.size {
            return;
        }
        let n = bytes.len().min(self.size - at);
        self.att.write_at(at, &bytes[..n]).expect("in bounds");
    }

    pub fn write_u32(&self, at: usize, v: u32) {
        self.write(at, &v.to_le_bytes());
    }

    pub fn write_u64(&self, at: usize, v: u64) {
        self.write(at, &v.to_le_bytes());
    }

    pub fn read(&self, at: usize, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.att.read_at(at, &mut v).expect("in bounds");
        v
    }

    /// Claims the writer (or reader) slot for this live process, as the
    /// creator that waits for its peer would.
    pub fn claim_slot(&self, slot: usize) {
        self.write_u32(slot + 4, std::process::id());
        self.write_u32(slot, SLOT_ATTACHED);
    }
}

/// Little-endian field readers over a byte image.
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A small cursor over fuzzer bytes: reads past the end give zeros.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.u8();
        }
        out
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }

    pub fn rest(self) -> &'a [u8] {
        self.0
    }
}
