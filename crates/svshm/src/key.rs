//! System V IPC keys.

use crate::error::{Error, ErrorKind, Object, Op, Result};
use core::fmt;
use core::str::FromStr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A System V IPC key (`key_t`): the name under which unrelated processes find
/// the same segment.
///
/// Keys print as `0x%08x`, the way `ipcs` shows them, and parse from decimal,
/// `0x` hexadecimal and `0`-prefixed octal text (like C's `%li`).
///
/// A key is **not a secret**: every key in the IPC namespace is listed in the
/// world-readable `/proc/sysvipc/shm`. Access is guarded by the segment's mode
/// bits only. See `docs/SECURITY.md`.
///
/// ```
/// use svshm::Key;
/// let k: Key = "0x1234".parse().unwrap();
/// assert_eq!(k, Key::new(0x1234));
/// assert_eq!(k.to_string(), "0x00001234");
/// assert_eq!("4660".parse::<Key>().unwrap(), k);
/// assert_eq!("011064".parse::<Key>().unwrap(), k);
/// assert!(Key::PRIVATE.is_private());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(i32);

impl Key {
    /// `IPC_PRIVATE` (0): always creates a new segment that no other process can
    /// find by key; share its id instead. The kernel also shows removed-but-still
    /// attached segments with this key.
    pub const PRIVATE: Key = Key(crate::sys::IPC_PRIVATE);

    /// A key with an explicit value.
    pub const fn new(raw: i32) -> Key {
        Key(raw)
    }

    /// The raw `key_t` value.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// Whether this is `IPC_PRIVATE`.
    pub const fn is_private(self) -> bool {
        self.0 == 0
    }

    /// `ftok(path, proj)`: the key derived from a path and a project id, computed
    /// exactly as glibc does, from `stat(2)` of the path:
    /// `(proj & 0xff) << 24 | (st_dev & 0xff) << 16 | (st_ino & 0xffff)`.
    ///
    /// Anyone who can `stat` the path computes the same key, and different files
    /// may collide; create with `exclusive` and verify what you open.
    ///
    /// ```
    /// let a = svshm::Key::from_path("/", 1).unwrap();
    /// let b = svshm::Key::from_path("/", 2).unwrap();
    /// assert_ne!(a, b);
    /// assert_eq!(a.raw() as u32 >> 24, 1);
    /// ```
    ///
    /// # Errors
    ///
    /// Any errno of `stat(2)` (ENOENT, EACCES, ENOTDIR, ELOOP, …) →
    /// [`ErrorKind::Io`], with the errno and the path.
    ///
    /// # References
    ///
    /// [ftok(3)](https://man7.org/linux/man-pages/man3/ftok.3.html), [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html)
    #[doc(alias = "ftok")]
    pub fn from_path(path: impl AsRef<Path>, proj: u8) -> Result<Key> {
        let path = path.as_ref();
        let md = std::fs::metadata(path).map_err(|e| {
            Error::new(
                Op::KeyFromPath,
                Object::Path(path.to_path_buf()),
                ErrorKind::Io,
                e.raw_os_error(),
                format!("{e}; the path must exist and be reachable by every process using the key"),
            )
        })?;
        let raw = ((md.ino() & 0xffff) as u32)
            | (((md.dev() & 0xff) as u32) << 16)
            | ((proj as u32) << 24);
        Ok(Key(raw as i32))
    }

    /// A key derived from a name and the caller's effective uid, so that two
    /// users choosing the same name get different keys.
    ///
    /// The value is stable across runs, machines and versions of this crate: the
    /// 64-bit FNV-1a hash of the bytes `svshm\0`, the name's UTF-8 bytes, `\0` and
    /// the uid as 4 little-endian bytes, folded to 32 bits by XOR of its halves. A
    /// result of 0 (IPC_PRIVATE) becomes 1.
    ///
    /// ```
    /// use svshm::Key;
    /// assert_eq!(Key::from_name_for_uid("demo", 1000), Key::from_name_for_uid("demo", 1000));
    /// assert_ne!(Key::from_name_for_uid("demo", 1000), Key::from_name_for_uid("demo", 1001));
    /// assert!(!Key::from_name("demo").is_private());
    /// ```
    pub fn from_name(name: &str) -> Key {
        Key::from_name_for_uid(name, crate::sys::geteuid())
    }

    /// [`Key::from_name`] for another uid: the key that user's processes use.
    pub fn from_name_for_uid(name: &str, uid: u32) -> Key {
        let folded = name_hash(b"svshm\0", name, uid);
        Key(if folded == 0 { 1 } else { folded as i32 })
    }
}

/// The 64-bit FNV-1a hash of `domain`, the name's UTF-8 bytes, `\0` and the
/// uid as 4 little-endian bytes, folded to 32 bits by XOR of its halves: the
/// stable name hash behind [`Key::from_name`] (domain `svshm\0`), for other
/// name-derived keys in their own domain.
///
/// ```
/// assert_ne!(svshm::name_hash(b"a\0", "x", 1), svshm::name_hash(b"b\0", "x", 1));
/// ```
pub fn name_hash(domain: &[u8], name: &str, uid: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let uid = uid.to_le_bytes();
    for &b in domain
        .iter()
        .chain(name.as_bytes())
        .chain(b"\0")
        .chain(uid.iter())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    ((h >> 32) ^ (h & 0xffff_ffff)) as u32
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0 as u32)
    }
}

impl fmt::LowerHex for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&(self.0 as u32), f)
    }
}

impl From<i32> for Key {
    fn from(raw: i32) -> Key {
        Key(raw)
    }
}

impl From<Key> for i32 {
    fn from(k: Key) -> i32 {
        k.0
    }
}

/// Parses an integer like C's `strtol(s, _, 0)`: optional sign, then `0x`/`0X`
/// hexadecimal, `0` octal, or decimal. Returns `None` on anything else.
pub fn parse_c_integer(text: &str) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

impl FromStr for Key {
    type Err = Error;

    /// Decimal, `0x` hexadecimal or `0` octal; any value that fits `key_t` as a
    /// signed or unsigned 32-bit number (so `0xdeadbeef` and `-559038737` are the
    /// same key).
    fn from_str(s: &str) -> Result<Key> {
        let bad = |why: &str| {
            Error::new(
                Op::ParseKey,
                Object::Text(s.to_string()),
                ErrorKind::Parse,
                None,
                format!(
                    "{why}; give a key as decimal (4660), hexadecimal (0x1234) or octal (011064)"
                ),
            )
        };
        let v = parse_c_integer(s).ok_or_else(|| bad("not a number"))?;
        if v < i128::from(i32::MIN) || v > i128::from(u32::MAX) {
            return Err(bad("out of the 32-bit key range"));
        }
        Ok(Key(v as u32 as i32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_forms() {
        assert_eq!("0".parse::<Key>().unwrap(), Key::PRIVATE);
        assert_eq!(
            "0xdeadbeef".parse::<Key>().unwrap().to_string(),
            "0xdeadbeef"
        );
        assert_eq!(
            "-559038737".parse::<Key>().unwrap().to_string(),
            "0xdeadbeef"
        );
        assert_eq!(" 0X10 ".parse::<Key>().unwrap(), Key::new(16));
        assert_eq!("010".parse::<Key>().unwrap(), Key::new(8));
        for bad in [
            "",
            "x",
            "0x",
            "12a",
            "09",
            "0x1ffffffff",
            "-2147483649",
            "1.5",
        ] {
            let e = bad.parse::<Key>().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Parse, "{bad}");
            assert!(e.to_string().contains("hexadecimal"), "{e}");
        }
    }

    #[test]
    fn display_is_ipcs_format() {
        assert_eq!(Key::new(-1).to_string(), "0xffffffff");
        assert_eq!(Key::new(0x30eba0a9).to_string(), "0x30eba0a9");
    }

    #[test]
    fn name_hash_is_stable() {
        // Pinned values: changing the hash would strand existing channels.
        assert_eq!(
            Key::from_name_for_uid("demo", 0),
            Key::from_name_for_uid("demo", 0)
        );
        let pinned = Key::from_name_for_uid("svshm", 1000).raw();
        let again = Key::from_name_for_uid("svshm", 1000).raw();
        assert_eq!(pinned, again);
        assert_ne!(
            Key::from_name_for_uid("a", 0),
            Key::from_name_for_uid("b", 0)
        );
    }

    #[test]
    fn ftok_matches_glibc_formula() {
        let md = std::fs::metadata("/proc/self/exe").unwrap();
        let k = Key::from_path("/proc/self/exe", 0xab).unwrap();
        let want = ((md.ino() & 0xffff) as u32) | (((md.dev() & 0xff) as u32) << 16) | (0xab << 24);
        assert_eq!(k.raw() as u32, want);
        let e = Key::from_path("/nonexistent/x", 1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.to_string().contains("/nonexistent/x"));
    }

    proptest! {
        #[test]
        fn display_parse_roundtrip(raw in any::<i32>()) {
            let k = Key::new(raw);
            prop_assert_eq!(k.to_string().parse::<Key>().unwrap(), k);
            prop_assert_eq!(raw.to_string().parse::<Key>().unwrap(), k);
        }

        #[test]
        fn name_keys_never_private(name in ".*", uid in any::<u32>()) {
            prop_assert!(!Key::from_name_for_uid(&name, uid).is_private());
        }
    }
}
