//! Verify and repair: the full consistency check behind
//! [`Managed::check`](super::Managed::check) and the repair a locker runs
//! after the previous lock holder died or abandoned an update.

use super::allocator::Block;
use super::layout::{
    BLOCK_HEADER, E_STATE, ENTRY_EMPTY, ENTRY_PENDING, FREE_TAG, H_FREE_BYTES, H_FREE_HEAD,
    H_RECOVERIES,
};
use super::{Locked, corrupt};
use crate::error::{Error, Result};
use crate::region::Region;

/// Usage numbers of a managed segment, from a full consistency check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Size of the region the segment was formatted in.
    pub total_size: u64,
    /// Offset of the first heap byte.
    pub heap_start: u64,
    /// Offset one past the last heap byte.
    pub heap_end: u64,
    /// Bytes in free blocks (block headers included).
    pub free_bytes: u64,
    /// Number of free blocks (1 when everything is free: coalescing).
    pub free_blocks: u64,
    /// Size of the largest free block (its usable part is 16 bytes less).
    pub largest_free: u64,
    /// Number of allocated blocks (named objects included).
    pub used_blocks: u64,
    /// Number of named objects.
    pub names: u64,
    /// Room in the directory.
    pub max_names: u64,
    /// How often a lock holder died and the next locker repaired the state.
    pub recoveries: u64,
}

impl Stats {
    /// The heap's size in bytes: what `free_bytes` is when nothing is allocated.
    pub fn heap_size(&self) -> u64 {
        self.heap_end - self.heap_start
    }
}

impl<'m, R: Region> Locked<'m, R> {
    /// See [`Managed::check`](super::Managed::check).
    pub fn check(&self) -> Result<Stats> {
        self.verify(false)
    }

    /// Check and repair after a holder died (or an update was abandoned).
    pub(super) fn repair(&self) -> Result<Stats> {
        match self.verify(true) {
            Ok(s) => Ok(s),
            Err(e) => {
                self.poison()?;
                Err(Error::new(
                    e.op(),
                    e.object().clone(),
                    e.kind(),
                    e.errno(),
                    format!("{}; the segment is now marked poisoned", e.message()),
                ))
            }
        }
    }

    /// The consistency check. With `repair`, rebuilds what can be derived
    /// from the tiling and resolves pending directory entries.
    pub(super) fn verify(&self, repair: bool) -> Result<Stats> {
        let g = self.geo();
        let raw = self.raw();
        let mut blocks = self.blocks()?;
        if repair {
            // Resolve pending names: free their blocks (if allocated).
            for d in self.dirs()? {
                if d.state != ENTRY_PENDING {
                    continue;
                }
                if d.offset != 0 {
                    let start = d.offset - BLOCK_HEADER;
                    if let Some(b) = blocks.iter_mut().find(|b| b.at == start && !b.free) {
                        raw.set_u64(b.at + 8, FREE_TAG ^ b.at)?;
                        b.free = true;
                    }
                }
                raw.set_u32(d.at + E_STATE, ENTRY_EMPTY)?;
            }
            // Coalesce neighbouring free blocks.
            let mut merged: Vec<Block> = Vec::with_capacity(blocks.len());
            for b in blocks {
                match merged.last_mut() {
                    Some(p) if p.free && b.free => {
                        p.size += b.size;
                        raw.set_u64(p.at, p.size)?;
                    }
                    _ => merged.push(b),
                }
            }
            blocks = merged;
            // Rebuild the free list and the free count.
            let mut prev = 0;
            for b in blocks.iter().filter(|b| b.free) {
                self.link_after(prev, b.at)?;
                prev = b.at;
            }
            self.link_after(prev, 0)?;
            let free: u64 = blocks.iter().filter(|b| b.free).map(|b| b.size).sum();
            raw.set_u64(H_FREE_BYTES, free)?;
        }
        // Check: no two free neighbours, list = free blocks in order, count.
        for w in blocks.windows(2) {
            if w[0].free && w[1].free {
                return Err(corrupt(format_args!(
                    "free blocks at {} and {} are not coalesced",
                    w[0].at, w[1].at
                )));
            }
        }
        let mut cur = raw.u64(H_FREE_HEAD)?;
        for b in blocks.iter().filter(|b| b.free) {
            if cur != b.at {
                return Err(corrupt(format_args!(
                    "free list has {cur} where the free block at {} belongs",
                    b.at
                )));
            }
            cur = self.free_link(b.at)?;
        }
        if cur != 0 {
            return Err(corrupt(format_args!(
                "free list continues to {cur} after the last free block"
            )));
        }
        let free: u64 = blocks.iter().filter(|b| b.free).map(|b| b.size).sum();
        let stored = raw.u64(H_FREE_BYTES)?;
        if stored != free {
            return Err(corrupt(format_args!(
                "free byte count is {stored}, the free blocks hold {free}"
            )));
        }
        // Directory: every name is unique and names a used block it fits in.
        let dirs = self.dirs()?;
        let mut names = 0u64;
        let mut seen = std::collections::HashSet::new();
        let mut owned = std::collections::HashSet::new();
        for d in &dirs {
            match d.state {
                ENTRY_EMPTY => continue,
                ENTRY_PENDING => {
                    return Err(corrupt(format_args!(
                        "directory entry {} ({:?}) is half constructed or destroyed",
                        d.index, d.name
                    )));
                }
                _ => {}
            }
            let start = d.offset - BLOCK_HEADER;
            let fits = blocks
                .binary_search_by_key(&start, |b| b.at)
                .ok()
                .map(|i| blocks[i])
                .is_some_and(|b| !b.free && d.size.max(1) <= b.size - BLOCK_HEADER);
            if !fits {
                return Err(corrupt(format_args!(
                    "directory entry {} ({:?}) at offset {} does not name a used block that holds its {} bytes",
                    d.index, d.name, d.offset, d.size
                )));
            }
            if !owned.insert(d.offset) {
                return Err(corrupt(format_args!(
                    "directory entry {} ({:?}) shares the block at offset {} with another name",
                    d.index, d.name, d.offset
                )));
            }
            if !seen.insert(d.name.as_str()) {
                return Err(corrupt(format_args!(
                    "the name {:?} appears twice in the directory",
                    d.name
                )));
            }
            names += 1;
        }
        Ok(Stats {
            total_size: g.total,
            heap_start: g.heap_start,
            heap_end: g.heap_end,
            free_bytes: free,
            free_blocks: blocks.iter().filter(|b| b.free).count() as u64,
            largest_free: blocks
                .iter()
                .filter(|b| b.free)
                .map(|b| b.size)
                .max()
                .unwrap_or(0),
            used_blocks: blocks.iter().filter(|b| !b.free).count() as u64,
            names,
            max_names: g.dir_capacity,
            recoveries: raw.u64(H_RECOVERIES)?,
        })
    }
}
