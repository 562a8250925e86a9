//! Target `offset`: [`Offset::resolve`] and [`Offset::from_ptr`] on arbitrary
//! offsets, pointers, types and region lengths.
//!
//! Input: `[region length: u16] [ops...]`, each op `[selector] [value: u64]`:
//! the selector's low bits pick the type, the next bits pick resolve, from_ptr
//! of a pointer relative to the region, or from_ptr of an absolute address.
//!
//! Checked, for every type: `resolve` succeeds exactly when the offset is not
//! null, `raw + size_of::<T>()` fits the region without overflow, and the
//! address is aligned for `T`; then it returns `base + raw` (and the bytes are
//! really there: they are written and read back). Otherwise it fails with
//! `OutOfBounds` (null, out of bounds, overflow) or `Misaligned`, never
//! panicking. `from_ptr` returns an offset exactly when the whole `T` lies in
//! the region, and that offset resolves back to the pointer when aligned.

// Unsafe: writes and reads back the bytes a resolved offset points at.
#![allow(unsafe_code)]

use super::segment::Input;
use svshm::{ErrorKind, HeapRegion, Offset, Region};

/// A type of the largest alignment a region's base guarantees (4096).
#[repr(C, align(4096))]
struct Page([u8; 4096]);

#[repr(C)]
struct Odd([u8; 3]);

#[repr(C)]
struct Triple([u64; 3]);

fn check_resolve<T>(region: &HeapRegion, raw: u64) {
    let len = region.len() as u64;
    let size = core::mem::size_of::<T>() as u64;
    let align = core::mem::align_of::<T>() as u64;
    let in_bounds = raw != 0 && raw.checked_add(size).is_some_and(|end| end <= len);
    // The base is 4096-aligned, so alignment is the offset's.
    let aligned = raw % align == 0;
    match Offset::<T>::new(raw).resolve(region) {
        Ok(p) => {
            assert!(
                in_bounds && aligned,
                "resolve accepted {raw} for a {size}-byte, {align}-aligned type in {len} bytes"
            );
            assert_eq!(p as usize, region.base() as usize + raw as usize);
            assert_eq!(p as usize % align as usize, 0);
            let p = p.cast::<u8>();
            // SAFETY: resolve checked (and we re-checked above) that the
            // `size` bytes at `p` lie in the region, which only we use.
            unsafe {
                core::ptr::write_bytes(p, 0xC3, size as usize);
                for i in 0..size as usize {
                    assert_eq!(p.add(i).read(), 0xC3);
                }
            }
        }
        Err(e) => {
            let want = if in_bounds {
                assert!(!aligned, "resolve refused a valid offset {raw}: {e}");
                ErrorKind::Misaligned
            } else {
                ErrorKind::OutOfBounds
            };
            assert_eq!(e.kind(), want, "resolve({raw}) in {len} bytes: {e}");
        }
    }
}

fn check_from_ptr<T>(region: &HeapRegion, addr: usize) {
    let base = region.base() as usize;
    let len = region.len();
    let size = core::mem::size_of::<T>();
    // Addresses within size_of::<T>() of the top of the address space once
    // made `from_ptr` overflow (found by this target; the input is kept in
    // fuzz/regressions/offset/).
    let inside = addr >= base && addr.checked_add(size).is_some_and(|end| end <= base + len);
    let got = Offset::<T>::from_ptr(region, addr as *const T);
    match got {
        Some(o) => {
            assert!(
                inside,
                "from_ptr({addr:#x}) gave {o:?} for a {size}-byte type outside {base:#x}+{len}"
            );
            assert_eq!(o.raw() as usize, addr - base);
            if !o.is_null() && addr % core::mem::align_of::<T>() == 0 {
                assert_eq!(o.resolve(region).ok().map(|p| p as usize), Some(addr));
            }
        }
        None => assert!(
            !inside,
            "from_ptr({addr:#x}) refused a pointer inside the region"
        ),
    }
}

fn check<T>(region: &HeapRegion, op: u8, value: u64) {
    match op % 3 {
        0 => check_resolve::<T>(region, value),
        1 => check_from_ptr::<T>(
            region,
            (region.base() as usize).wrapping_add(value as usize),
        ),
        _ => check_from_ptr::<T>(region, value as usize),
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let len = usize::from(input.u16());
    let region = HeapRegion::new(len);
    for _ in 0..64 {
        if input.0.is_empty() {
            break;
        }
        let sel = input.u8();
        let value = input.u64();
        let op = sel >> 4;
        match sel & 15 {
            0 => check::<u8>(&region, op, value),
            1 => check::<u16>(&region, op, value),
            2 => check::<u32>(&region, op, value),
            3 => check::<u64>(&region, op, value),
            4 => check::<u128>(&region, op, value),
            5 => check::<Odd>(&region, op, value),
            6 => check::<Triple>(&region, op, value),
            7 => check::<Page>(&region, op, value),
            8 => check::<()>(&region, op, value),
            9 => check::<[u32; 0]>(&region, op, value),
            _ => check::<Offset<u64>>(&region, op, value),
        }
    }
}

/// Hand-made starting points: offsets at the edges of a 4096-byte region for
/// each type (first byte, last fitting, one past, misaligned, null, huge).
pub fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for ty in 0u8..11 {
        let mut v = 4096u16.to_le_bytes().to_vec();
        for raw in [0u64, 1, 8, 4088, 4095, 4096, 4097, u64::MAX - 3, u64::MAX] {
            v.push(ty);
            v.extend_from_slice(&raw.to_le_bytes());
        }
        for rel in [0u64, 64, 4095, 4096] {
            v.push(ty | 0x10);
            v.extend_from_slice(&rel.to_le_bytes());
        }
        out.push(v);
    }
    // An empty and a one-byte region.
    out.push(vec![0, 0, 3, 1, 0, 0, 0, 0, 0, 0, 0]);
    out.push(vec![1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    out
}
