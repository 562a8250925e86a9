//! The allocator: heap blocks, the address-ordered free list, first-fit
//! allocation with splitting, and freeing with coalescing. Every update is
//! ordered so that the block tiling is valid after each single store.

use super::layout::{
    BLOCK_HEADER, ENTRY_EMPTY, FREE_TAG, GRAIN, H_FREE_BYTES, H_FREE_HEAD, MAX_ALIGN, MIN_BLOCK,
    USED_TAG, align_up,
};
use super::{Locked, corrupt, error, invalid};
use crate::error::{Error, ErrorKind, Object, Result};
use crate::offset::Offset;
use crate::region::Region;

/// One heap block, read and validated.
#[derive(Debug, Clone, Copy)]
pub(super) struct Block {
    pub(super) at: u64,
    pub(super) size: u64,
    pub(super) free: bool,
}

impl Block {
    pub(super) fn end(&self) -> u64 {
        self.at + self.size
    }
}

impl<'m, R: Region> Locked<'m, R> {
    /// Reads and validates the block at `at`.
    pub(super) fn block(&self, at: u64) -> Result<Block> {
        let g = self.geo();
        if at < g.heap_start || at % GRAIN != 0 || at > g.heap_end.saturating_sub(MIN_BLOCK) {
            return Err(corrupt(format_args!(
                "block offset {at} is not a 16-aligned offset inside the heap [{}, {})",
                g.heap_start, g.heap_end
            )));
        }
        let raw = self.raw();
        let size = raw.u64(at)?;
        let tag = raw.u64(at + 8)?;
        if size < MIN_BLOCK || size % GRAIN != 0 || size > g.heap_end - at {
            return Err(corrupt(format_args!(
                "block at {at} has size {size}, which is not a multiple of 16 of at least 32 ending inside the heap (end {})",
                g.heap_end
            )));
        }
        let free = if tag == FREE_TAG ^ at {
            true
        } else if tag == USED_TAG ^ at {
            false
        } else {
            return Err(corrupt(format_args!(
                "block at {at} has tag {tag:#x}, neither free nor used"
            )));
        };
        Ok(Block { at, size, free })
    }

    /// Every block, in address order; they must tile the heap exactly.
    pub(super) fn blocks(&self) -> Result<Vec<Block>> {
        let g = self.geo();
        let mut v = Vec::new();
        let mut at = g.heap_start;
        while at < g.heap_end {
            let b = self.block(at)?;
            at = b.end();
            v.push(b);
        }
        Ok(v)
    }

    pub(super) fn free_link(&self, at: u64) -> Result<u64> {
        self.raw().u64(at + 16)
    }

    pub(super) fn set_free_link(&self, at: u64, next: u64) -> Result<()> {
        self.raw().set_u64(at + 16, next)
    }

    /// Sets the link that points at the free block after `prev` (the list
    /// head when `prev` is 0).
    pub(super) fn link_after(&self, prev: u64, next: u64) -> Result<()> {
        if prev == 0 {
            self.raw().set_u64(H_FREE_HEAD, next)
        } else {
            self.set_free_link(prev, next)
        }
    }

    pub(super) fn add_free_bytes(&self, delta: i128) -> Result<()> {
        let raw = self.raw();
        let v = i128::from(raw.u64(H_FREE_BYTES)?) + delta;
        if !(0..=i128::from(self.geo().heap_size())).contains(&v) {
            return Err(corrupt(format_args!("free byte count would become {v}")));
        }
        raw.set_u64(H_FREE_BYTES, v as u64)
    }

    /// See [`Managed::allocate`](super::Managed::allocate).
    pub fn allocate(&self, size: usize, align: usize) -> Result<Offset<u8>> {
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(invalid(format_args!(
                "alignment {align} is not a power of two up to {MAX_ALIGN}"
            )));
        }
        let g = self.geo();
        let asked_align = align;
        let align = (align as u64).max(GRAIN);
        // None: bigger than the heap; the walk below still finds the largest
        // free block for the error.
        let need = align_up((size as u64).max(1), GRAIN)
            .filter(|p| *p <= g.heap_size())
            .map(|p| p + BLOCK_HEADER);
        let raw = self.raw();
        let mut prev = 0u64;
        let mut cur = raw.u64(H_FREE_HEAD)?;
        let mut largest = 0u64;
        while cur != 0 {
            if cur <= prev {
                return Err(corrupt(format_args!(
                    "free list is not in address order ({cur} after {prev})"
                )));
            }
            let f = self.block(cur)?;
            if !f.free {
                return Err(corrupt(format_args!(
                    "used block {cur} is on the free list"
                )));
            }
            largest = largest.max(f.size);
            let next = self.free_link(cur)?;
            // Where the block would start: after a front gap that is either
            // empty or big enough to stay a free block.
            let mut user = align_up(f.at + BLOCK_HEADER, align).unwrap_or(u64::MAX);
            let mut gap = user.saturating_sub(BLOCK_HEADER + f.at);
            if gap != 0 && gap < MIN_BLOCK {
                user = user.saturating_add(align);
                gap += align;
            }
            let start = f.at + gap;
            let fits = need
                .and_then(|n| start.checked_add(n))
                .filter(|end| *end <= f.end());
            if let Some(mut end) = fits {
                self.begin();
                let mut tail = f.end() - end;
                if tail < MIN_BLOCK {
                    end = f.end();
                    tail = 0;
                }
                // Order: headers of the new pieces (inside F, not yet part of
                // the tiling), then one store of F's size switches the tiling;
                // links last. Recovery rebuilds links from the tiling.
                if tail > 0 {
                    raw.set_u64(end, tail)?;
                    raw.set_u64(end + 8, FREE_TAG ^ end)?;
                    self.set_free_link(end, next)?;
                }
                let after = if tail > 0 { end } else { next };
                if gap > 0 {
                    raw.set_u64(start, end - start)?;
                    raw.set_u64(start + 8, USED_TAG ^ start)?;
                    raw.set_u64(f.at, gap)?;
                    self.set_free_link(f.at, after)?;
                } else {
                    raw.set_u64(f.at, end - f.at)?;
                    self.link_after(prev, after)?;
                    raw.set_u64(f.at + 8, USED_TAG ^ f.at)?;
                }
                self.add_free_bytes(-i128::from(end - start))?;
                self.end();
                return Ok(Offset::new(user));
            }
            prev = cur;
            cur = next;
        }
        Err(self.out_of_space(size, asked_align, largest))
    }

    pub(super) fn out_of_space(&self, size: usize, align: usize, largest: u64) -> Error {
        let free = self.raw().u64(H_FREE_BYTES).unwrap_or(0);
        error(
            Object::System,
            ErrorKind::OutOfMemory,
            format_args!(
                "out of space: asked for {size} bytes aligned to {align}, but only {free} of {} heap bytes are free, the largest free block holds {} bytes; free something or use a bigger segment",
                self.geo().heap_size(),
                largest.saturating_sub(BLOCK_HEADER)
            ),
        )
    }

    /// See [`Managed::deallocate`](super::Managed::deallocate).
    pub fn deallocate(&self, offset: Offset<u8>) -> Result<()> {
        let user = offset.raw();
        // A named object's block is freed by `destroy`, which also empties its
        // directory entry; freeing it here would leave a name on free memory.
        for i in 0..self.geo().dir_capacity {
            let d = self.dir(i)?;
            if d.state != ENTRY_EMPTY && d.offset == user {
                return Err(error(
                    Object::Address(user as usize),
                    ErrorKind::InvalidArgument,
                    format_args!(
                        "free of offset {user}: the block holds the named object {:?}; use destroy",
                        d.name
                    ),
                ));
            }
        }
        self.free_block(offset)
    }

    /// Frees the live block at `offset` (the directory is not consulted).
    pub(super) fn free_block(&self, offset: Offset<u8>) -> Result<()> {
        let g = self.geo();
        let user = offset.raw();
        let object = Object::Address(user as usize);
        if user < g.heap_start + BLOCK_HEADER || user >= g.heap_end {
            return Err(error(
                object,
                ErrorKind::OutOfBounds,
                format_args!(
                    "free of offset {user}: not inside the heap [{}, {}); it was not allocated here",
                    g.heap_start, g.heap_end
                ),
            ));
        }
        if user % GRAIN != 0 {
            return Err(error(
                object,
                ErrorKind::Misaligned,
                format_args!("free of offset {user}: not a block start (blocks are 16-aligned)"),
            ));
        }
        let target = user - BLOCK_HEADER;
        // Walk the tiling to prove `target` is a block, remembering the
        // physical predecessor and the last free block before it.
        let mut at = g.heap_start;
        let mut prev: Option<Block> = None;
        let mut prev_free = 0u64;
        let b = loop {
            let b = self.block(at)?;
            if b.at == target {
                break b;
            }
            if b.at > target || b.end() > target {
                return Err(error(
                    object,
                    ErrorKind::InvalidArgument,
                    format_args!(
                        "free of offset {user}: not the start of an allocated block (inside the block at {}); it was not allocated here",
                        b.at + BLOCK_HEADER
                    ),
                ));
            }
            if b.free {
                prev_free = b.at;
            }
            prev = Some(b);
            at = b.end();
        };
        if b.free {
            return Err(error(
                object,
                ErrorKind::InvalidArgument,
                format_args!("double free: the block at offset {user} is already free"),
            ));
        }
        let next = if b.end() < g.heap_end {
            Some(self.block(b.end())?)
        } else {
            None
        };
        let raw = self.raw();
        // The free block after `b` in the list: the list is in address order
        // and `b` is used, so it is the successor of `prev_free`.
        let list_next = if prev_free == 0 {
            raw.u64(H_FREE_HEAD)?
        } else {
            self.free_link(prev_free)?
        };
        let next_free = next.filter(|n| n.free);
        if let Some(n) = next_free {
            if list_next != n.at {
                return Err(corrupt(format_args!(
                    "free list skips the free block at {}",
                    n.at
                )));
            }
        }
        let after = match next_free {
            Some(n) => self.free_link(n.at)?,
            None => list_next,
        };
        self.begin();
        let merged = b.size + next_free.map_or(0, |n| n.size);
        match prev.filter(|p| p.free) {
            Some(p) => {
                // One store: P swallows B (and N).
                raw.set_u64(p.at, p.size + merged)?;
                self.set_free_link(p.at, after)?;
            }
            None => {
                raw.set_u64(b.at + 8, FREE_TAG ^ b.at)?;
                self.set_free_link(b.at, after)?;
                raw.set_u64(b.at, merged)?;
                self.link_after(prev_free, b.at)?;
            }
        }
        self.add_free_bytes(i128::from(b.size))?;
        self.end();
        Ok(())
    }
}
