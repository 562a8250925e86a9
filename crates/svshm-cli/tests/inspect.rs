//! Looking at segments: `ls`, `stat`, `who`, `attach`, `dump`, `limits`,
//! `usage` — text and `--json` (parsed and checked).

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::Value;
use std::io::Read;
use std::process::{Command as StdCommand, Stdio};
use svshm::{AttachOptions, Segment};

#[test]
fn ls_lists_our_segment_with_typed_json() {
    let key = unique_key("ls");
    let g = create(&["-k", &key.to_string(), "-s", "10000", "-m", "640"]);
    let _att = Segment::from_id(g.0).attach().unwrap();

    let text = stdout_of(&["ls"]);
    let header = text.lines().next().unwrap();
    for col in [
        "KEY", "ID", "PERMS", "OWNER", "SIZE", "NATTCH", "STATUS", "CTIME", "CPID", "LPID",
    ] {
        assert!(
            header.split_whitespace().any(|h| h == col),
            "{col} missing in {header}"
        );
    }
    let row = text
        .lines()
        .find(|l| l.contains(&key.to_string()))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("rw-r-----") && row.contains("9.8K"), "{row}");

    let v = json_of(&["ls", "--json"]);
    let arr = v.as_array().expect("an array");
    let me = arr
        .iter()
        .find(|o| o["id"] == g.0)
        .expect("our segment in --json");
    assert_eq!(me["key"], key.to_string());
    assert_eq!(me["size"], 10000);
    assert_eq!(me["nattch"], 1);
    assert_eq!(me["perms"], "rw-r-----");
    assert_eq!(
        me["cpid"].as_i64(),
        Some(i64::from(
            svshm::info::public_info_by_id(g.0).unwrap().creator_pid
        ))
    );
    assert!(me["status"].as_array().unwrap().is_empty());
    assert!(me["ctime"].as_str().unwrap().contains('T'));
    assert!(me["channel"].is_null() && me["writer"].is_null());

    // -o picks columns (case-insensitive), + appends, -b prints bytes.
    let text = stdout_of(&["ls", "-b", "-o", "id,SIZE,mode", "--noheadings"]);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&g.0.to_string()))
        .unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        [g.0.to_string().as_str(), "10000", "0640"]
    );
    let me = ls_entry(&["ls", "-J", "-o", "+MODE,CUID,RSS"], g.0);
    assert_eq!(me["mode"], 0o640);
    assert_eq!(me["cuid"], svshm::euid());
    assert!(me["rss"].is_u64());
    assert!(me.get("command").is_some(), "+ keeps the default columns");

    svshm()
        .args(["ls", "-o", "ID,BOGUS"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("unknown column 'BOGUS'")
                .and(predicate::str::contains("NATTCH")),
        );
}

#[test]
fn stat_shows_every_field_and_the_attachments() {
    let key = unique_key("stat");
    // 10000 bytes cannot be a channel, so nothing attaches it to look for a header.
    let seg = Segment::create(key, 10000).unwrap();
    let g = Guard(seg.id());
    let rw = seg.attach().unwrap();
    let ro = seg
        .attach_with(&AttachOptions::new().read_only(true))
        .unwrap();

    let text = stdout_of(&["stat", &g.0.to_string()]);
    for want in [
        format!("Key:                    {key}"),
        format!("ID:                     {}", g.0),
        "Size:                   10000 bytes (9.8 KiB)".to_string(),
        "Mode:                   0600 (rw-------)".to_string(),
        "Attached processes:     2".to_string(),
        format!("{:#x}", rw.address()),
        format!("{:#x}", ro.address()),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
    assert!(
        text.contains("Creator PID:") && text.contains("running"),
        "{text}"
    );

    let v = json_of(&["stat", "-k", &key.to_string(), "--json"]);
    assert_eq!(v["id"], g.0);
    assert_eq!(v["key"], key.to_string());
    assert_eq!(v["size"], 10000);
    assert_eq!(v["attach_count"], 2);
    assert_eq!(v["creator_alive"], true);
    assert_eq!(v["permissions"], "0600");
    assert!(v["attach_time"].is_string() && v["detach_time"].is_null());
    let atts = v["attachers"].as_array().unwrap();
    let mine: Vec<&Value> = atts
        .iter()
        .filter(|a| a["pid"] == std::process::id())
        .collect();
    assert_eq!(mine.len(), 2, "{atts:?}");
    let at = |addr: usize| mine.iter().find(|a| a["start"] == addr as u64).copied();
    assert_eq!(at(rw.address()).unwrap()["read_only"], false);
    assert_eq!(at(ro.address()).unwrap()["read_only"], true);
    assert_eq!(at(rw.address()).unwrap()["size"], 12288);
    assert!(v["channel"].is_null());

    // Status words.
    seg.remove().unwrap();
    let v = json_of(&["stat", &g.0.to_string(), "-J"]);
    assert_eq!(v["status"][0], "dest");
    assert_eq!(v["key"], "0x00000000");
    assert!(stdout_of(&["stat", &g.0.to_string()]).contains("marked for destruction"));
}

#[test]
fn stat_managed_lists_named_objects_only_when_asked() {
    let key = unique_key("stat-managed");
    let m = svshm::Managed::create_segment(&svshm::CreateOptions::new(64 * 1024).key(key)).unwrap();
    let g = Guard(m.region().id());
    m.construct("counter", &7u64).unwrap();
    m.construct_tagged("limits", svshm::managed::type_tag("Limits"), &[1u32, 2, 3])
        .unwrap();
    let id = g.0.to_string();

    // Without --managed nothing attaches the segment to look inside.
    let plain = stdout_of(&["stat", &id]);
    assert!(!plain.contains("Managed segment"), "{plain}");
    assert!(json_of(&["stat", &id, "--json"]).get("managed").is_none());

    let text = stdout_of(&["stat", &id, "--managed"]);
    assert!(
        text.contains("Managed segment:        ready, heap ") && text.contains("2 of 32 names"),
        "{text}"
    );
    assert!(
        text.contains("Named objects:          \"counter\": 8 bytes, align 8, at offset"),
        "{text}"
    );
    assert!(
        text.contains("\"limits\": 12 bytes, align 4, tag 0x"),
        "{text}"
    );

    let v = json_of(&["stat", &id, "-M", "--json"]);
    assert_eq!(v["managed"]["state"], "ready");
    assert_eq!(v["managed"]["objects"][0]["name"], "counter");
    assert_eq!(v["managed"]["objects"][1]["size"], 12);
    assert_eq!(v["managed"]["free_bytes"], m.stats().unwrap().free_bytes);

    // A plain segment: said plainly; a damaged header: said so, exit 0.
    let other = create(&["--private", "-s", "8192"]);
    let out = stdout_of(&["stat", &other.0.to_string(), "--managed"]);
    assert!(out.contains("Managed segment:        no "), "{out}");
    let att = svshm::Segment::from_id(other.0).attach().unwrap();
    att.write_at(0, &svshm::managed::MAGIC).unwrap();
    let out = stdout_of(&["stat", &other.0.to_string(), "--managed"]);
    assert!(out.contains("Managed segment:        damaged: "), "{out}");
    assert!(json_of(&["stat", &other.0.to_string(), "-MJ"])["managed"]["error"].is_string());
}

#[test]
fn stat_errors() {
    let gone_id = removed_id();
    svshm()
        .args(["stat", &gone_id.to_string()])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(format!("(id {gone_id})")).and(predicate::str::contains(
                "\nhint: `svshm ls` lists the segments",
            )),
        );
    let key = unique_key("stat-missing");
    svshm()
        .args(["stat", "-k", &key.to_string()])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(key.to_string())
                .and(predicate::str::contains("no segment has this key")),
        );
    svshm()
        .args(["stat", "-k", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("IPC_PRIVATE"));
    svshm().arg("stat").assert().code(2);
    svshm().args(["stat", "0x10"]).assert().code(2);
}

#[test]
fn who_lists_attaching_processes() {
    let g = private(4096);
    let id = g.0.to_string();
    svshm()
        .args(["who", &id])
        .assert()
        .success()
        .stdout(predicate::str::contains("not attached"));
    let ro = Segment::from_id(g.0).attach_read_only().unwrap();
    let out = stdout_of(&["who", &id]);
    let row = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&std::process::id().to_string()))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains(&format!("{:#x}", ro.address())) && row.trim_end().ends_with("ro"),
        "{row}"
    );
    assert!(out.trim_start().starts_with("PID"), "{out}");
    drop(ro);
    let gone_id = removed_id();
    svshm().args(["who", &gone_id.to_string()]).assert().code(1);
}

#[test]
fn attach_prints_shmlba_addresses_and_maps_lines() {
    let g = private(3 * 4096);
    let id = g.0.to_string();
    let out = stdout_of(&["attach", &id, &format!("{id}:R")]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("SHMLBA = 4096 (0x1000), PID = "),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!("1: {id} ==> 0x")) && lines[1].contains("read-write"),
        "{out}"
    );
    assert!(
        lines[2].contains("rw-s") && lines[2].contains("/SYSV00000000"),
        "{out}"
    );
    assert!(
        lines[3].starts_with(&format!("2: {id}:R ==> 0x")) && lines[3].contains("read-only"),
        "{out}"
    );
    assert!(lines[4].contains("r--s"), "{out}");
    // The attachments are gone when it exits.
    assert_eq!(svshm::Segment::from_id(g.0).stat().unwrap().attach_count, 0);

    // --hold keeps them while `who` looks.
    let mut child = StdCommand::new(svshm_path())
        .args(["attach", &id, "--hold", "30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let mut got = String::new();
    let mut so = child.stdout.take().unwrap();
    while !got.contains("Holding") {
        let n = so.read(&mut buf).unwrap();
        assert!(n > 0, "attach exited early: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let who = stdout_of(&["who", &id]);
    assert!(who.contains(&child.id().to_string()), "{who}");
    child.kill().unwrap();
    child.wait().unwrap();

    // TLPI's fixed and rounded addresses, far from the usual mappings.
    let out = stdout_of(&[
        "attach",
        &format!("{id}:0x5a0000000000"),
        &format!("{id}:0x5a0000100123rR"),
    ]);
    assert!(
        out.contains(&format!("1: {id}:0x5a0000000000 ==> 0x5a0000000000 ")),
        "{out}"
    );
    assert!(
        out.contains(&format!("2: {id}:0x5a0000100123rR ==> 0x5a0000100000 ")),
        "{out}"
    );
    assert!(out.contains("5a0000100000-5a0000103000 r--s"), "{out}");
}

#[test]
fn attach_errors() {
    let g = private(4096);
    let id = g.0.to_string();
    // Unaligned without r.
    svshm()
        .args(["attach", &format!("{id}:0x7f0000000123")])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("SHMLBA").and(predicate::str::contains("SHM_RND")));
    svshm()
        .args(["attach", "x:1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ID[:ADDR[rR]]"));
    svshm()
        .args(["attach", &format!("{id}:0x1000q")])
        .assert()
        .code(2);
    svshm().arg("attach").assert().code(2);
    let gone_id = removed_id();
    svshm()
        .args(["attach", &gone_id.to_string()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "\nhint: `svshm ls` lists the segments",
        ));
}

#[test]
fn dump_raw_and_hex() {
    let g = private(64 * 1024 + 100);
    let att = Segment::from_id(g.0).attach().unwrap();
    let mut want: Vec<u8> = (0..att.len()).map(|i| (i * 7 % 251) as u8).collect();
    want[..20].copy_from_slice(b"hello, world!\n\x00\xffCDEF");
    att.write_at(0, &want).unwrap();
    let id = g.0.to_string();

    let out = svshm().args(["dump", &id]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, want);
    let out = svshm()
        .args(["dump", &id, "--offset", "1K", "--length", "64000"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, &want[1024..1024 + 64000]);

    let hex = stdout_of(&["dump", &id, "--hex", "--length", "20"]);
    assert_eq!(
        hex,
        "00000000: 6865 6c6c 6f2c 2077 6f72 6c64 210a 00ff  hello, world!...\n\
         00000010: 4344 4546                                CDEF\n"
    );
    let hex = stdout_of(&["dump", &id, "-x", "-o", "16", "-l", "4"]);
    assert_eq!(
        hex,
        "00000010: 4344 4546                                CDEF\n"
    );

    let size = att.len();
    svshm()
        .args(["dump", &id, "--offset", &(size + 1).to_string()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--offset at most"));
    svshm()
        .args([
            "dump",
            &id,
            "--offset",
            "100",
            "--length",
            &size.to_string(),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "--length at most {}",
            size - 100
        )));
}

#[test]
fn limits_and_usage_with_json() {
    let text = stdout_of(&["limits"]);
    for name in [
        "kernel.shmmax",
        "kernel.shmall",
        "kernel.shmmni",
        "SHMMIN",
        "kernel.shm_rmid_forced",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let v = json_of(&["limits", "--json"]);
    let get = |n: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap()
            .clone()
    };
    let shmmax: u64 = std::fs::read_to_string("/proc/sys/kernel/shmmax")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Above 2^53 (the kernel's "no limit" default) the value is a string
    // of digits, so that JSON readers keep it exactly.
    let value = &get("kernel.shmmax")["value"];
    let exact = value
        .as_u64()
        .or_else(|| value.as_str().and_then(|t| t.parse().ok()));
    assert_eq!(exact, Some(shmmax), "{value}");
    assert_eq!(get("kernel.shmmax")["file"], "/proc/sys/kernel/shmmax");
    assert_eq!(get("kernel.shmmax")["unit"], "bytes");
    assert_eq!(get("SHMMIN")["value"], 1);
    assert!(get("SHMMIN")["file"].is_null());

    let _g = private(4096);
    let v = json_of(&["usage", "--json"]);
    assert!(v["segments"].as_u64().unwrap() >= 1);
    assert!(v["pages_allocated"].as_u64().unwrap() >= 1);
    assert_eq!(v["page_size"].as_u64(), Some(svshm::page_size() as u64));
    assert!(stdout_of(&["usage"]).contains("kernel.shmmni"));
}

#[test]
fn limits_do_not_understate_a_shmall_beyond_16_eib() {
    // The default kernel.shmall (ULONG_MAX - 2^24 pages) is far beyond 2^64
    // bytes; the description must not claim 16 EiB. Only meaningful there.
    let l = svshm::limits().unwrap();
    if l.shmall.checked_mul(l.page_size).is_some() {
        eprintln!("skipped: kernel.shmall * page size fits in 64 bits here");
        return;
    }
    let out = stdout_of(&["limits"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("kernel.shmall"))
        .unwrap();
    assert!(line.contains("more than 16 EiB"), "{line}");
}
