//! Rings of 2 MiB and more are backed by huge pages when the system has them,
//! and by ordinary pages otherwise (a smaller ring, a user without
//! permission, an empty pool, or `Options::huge_pages(false)`).

mod common;

use common::unique;
use std::io::{Read, Write};
use std::time::Duration;
use svshm_channel::{Endpoint, Options, StreamReader, StreamWriter};

const POOL: &str = "/proc/sys/vm/nr_hugepages";

/// Raises the default huge-page pool for the test and restores it on drop.
struct Pool {
    before: String,
}

impl Pool {
    fn reserve(pages: u64) -> Result<Pool, String> {
        if !svshm_testkit::is_root() {
            return Err("needs root to reserve huge pages".into());
        }
        let before = std::fs::read_to_string(POOL).map_err(|e| format!("{POOL}: {e}"))?;
        let have: u64 = before.trim().parse().unwrap_or(0);
        let pool = Pool { before };
        if have < pages {
            std::fs::write(POOL, (have + pages).to_string()).map_err(|e| format!("{POOL}: {e}"))?;
        }
        let got: u64 = std::fs::read_to_string(POOL)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if got < pages {
            return Err(format!(
                "the kernel reserved {got} of {pages} huge pages (memory fragmented)"
            ));
        }
        Ok(pool)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = std::fs::write(POOL, self.before.trim());
    }
}

/// Connects a stream pair with `opts`, sends `bytes` through it, checks them,
/// and returns whether the creating side got huge pages.
fn transfer(tag: &str, opts: &Options, bytes: usize) -> bool {
    let name = unique(tag);
    let n2 = name.clone();
    let o2 = opts.clone();
    let reader = std::thread::spawn(move || {
        let mut r = StreamReader::connect(&Endpoint::name(n2), &o2).unwrap();
        let huge = r.huge_pages();
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        (got, huge)
    });
    // Either side may create the segment: ask both.
    let mut w = StreamWriter::connect(&Endpoint::name(&name), opts).unwrap();
    let huge = w.huge_pages();
    let data: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    w.write_all(&data).unwrap();
    w.close().unwrap();
    let (got, reader_huge) = reader.join().unwrap();
    assert_eq!(got, data);
    assert!(!(huge && reader_huge), "only the creator says huge");
    huge || reader_huge
}

/// One test, in order: the pool is global, so the fallback is checked before
/// the pool is raised.
#[test]
fn large_rings_get_huge_pages_when_the_pool_has_them_and_fall_back_otherwise() {
    let opts = Options::new()
        .capacity(4 << 20)
        .timeout(Some(Duration::from_secs(20)));
    if free_huge_pages() == 0 {
        assert!(
            !transfer("huge-none", &opts, 8 << 20),
            "no free huge pages: ordinary pages"
        );
    }
    // Two segments of 4 MiB + a header page: 3 huge pages of 2 MiB each.
    let _pool = match Pool::reserve(8) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("skipped: the huge-page half of this test: {why}");
            return;
        }
    };
    assert!(
        transfer("huge", &opts, 20 << 20),
        "a 4 MiB ring with free huge pages"
    );
    assert!(
        !transfer("huge-off", &opts.clone().huge_pages(false), 1 << 20),
        "huge_pages(false)"
    );
    let small = Options::new()
        .capacity(1 << 20)
        .timeout(Some(Duration::from_secs(20)));
    assert!(!transfer("huge-small", &small, 1 << 20), "a 1 MiB ring");
}

fn free_huge_pages() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
