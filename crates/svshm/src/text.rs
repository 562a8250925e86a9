//! Text for people, shared by this crate's messages and (through the hidden
//! `__private` module) the command-line tool: byte sizes with binary units, and
//! user and group names from NSS.

use crate::sys;

/// Formats a byte count with a binary unit: `512 B`, `4 KiB`, `1.5 MiB`, `10 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 0;
    let mut div = 1u64;
    while unit + 1 < UNITS.len() && bytes / div >= 1024 {
        div *= 1024;
        unit += 1;
    }
    if bytes % div == 0 {
        format!("{} {}", bytes / div, UNITS[unit])
    } else {
        format!("{:.1} {}", bytes as f64 / div as f64, UNITS[unit])
    }
}

/// User name of a uid (NSS `getpwuid_r`), `None` if unknown.
pub fn user_name(uid: u32) -> Option<String> {
    sys::user_by_uid(uid).map(|(n, _)| n)
}

/// Group name of a gid (NSS `getgrgid_r`), `None` if unknown.
pub fn group_name(gid: u32) -> Option<String> {
    sys::group_by_gid(gid)
}

/// Uid of a user name, or of a numeric string.
pub fn lookup_uid(name: &str) -> Option<u32> {
    name.parse().ok().or_else(|| sys::uid_by_name(name))
}

/// Gid of a group name, or of a numeric string.
pub fn lookup_gid(name: &str) -> Option<u32> {
    name.parse().ok().or_else(|| sys::gid_by_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(1536 * 1024), "1.5 MiB");
        assert_eq!(human_size(10 << 30), "10 GiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
    }
}
