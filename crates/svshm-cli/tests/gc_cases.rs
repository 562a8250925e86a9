//! `svshm gc` against every shape a segment under a channel's key can take,
//! in a private IPC namespace (gc works system-wide): it removes exactly the
//! proven abandoned svshm channels, says why, and leaves everything else —
//! a user's data, a corrupt header, a live channel, a creator it cannot see.

mod common;

use common::svshm_path;
use std::process::Command;
use svshm::{CreateOptions, Segment};

const ROLE: &str = "SVSHM_GC_CASES_ROLE";

/// Roles run inside the test's IPC namespace by re-executing this binary.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let name = std::env::var("NAME").unwrap();
    let key = svshm_channel::channel_key(&name);
    match role.as_str() {
        // What a channel creator killed between shmget and writing the header
        // leaves: channel-sized, channel key, the initialising mark (0100), never
        // written.
        "zeroed" => {
            let seg = CreateOptions::new(4096 + 65536)
                .key(key)
                .mode(0o700)
                .create()
                .unwrap();
            println!("ID {}", seg.id());
        }
        // Our magic and READY, but a ring that does not fit the segment.
        "corrupt" => {
            let seg = CreateOptions::new(4096 + 65536)
                .key(key)
                .mode(0o600)
                .create()
                .unwrap();
            let att = seg.attach().unwrap();
            att.write_at(0, b"SVSHMCH\x01").unwrap();
            att.write_at(8, &2u32.to_le_bytes()).unwrap();
            att.write_at(12, &1u32.to_le_bytes()).unwrap();
            att.write_at(16, &1u32.to_le_bytes()).unwrap();
            att.write_at(24, &(1u64 << 30).to_le_bytes()).unwrap();
            att.write_at(40, &4096u64.to_le_bytes()).unwrap();
            println!("ID {}", seg.id());
        }
        // A user's own plain segment shaped like a channel, at the channel's
        // key, mode 0700, full of data, its creator gone.
        "userdata" => {
            let seg = CreateOptions::new(4096 + 65536)
                .key(key)
                .mode(0o700)
                .create()
                .unwrap();
            seg.attach()
                .unwrap()
                .write_at(0, &[0xAB; 4096 + 65536])
                .unwrap();
            println!("ID {}", seg.id());
        }
        "check-userdata" => {
            let id: i32 = std::env::var("ID").unwrap().parse().unwrap();
            let mut buf = vec![0; 4096 + 65536];
            Segment::from_id(id)
                .attach_read_only()
                .unwrap()
                .read_at(0, &mut buf)
                .unwrap();
            println!("INTACT {}", buf.iter().all(|&b| b == 0xAB));
        }
        r => panic!("unknown role {r}"),
    }
}

#[test]
fn gc_removes_exactly_the_proven_abandoned_channels() {
    let probe = Command::new("unshare")
        .args(["--ipc", "--pid", "--fork", "--mount-proc", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot create IPC and pid namespaces (unshare --ipc --pid needs root)");
        return;
    }
    // The test binary, run inside the namespace for the roles above.
    let me = std::env::current_exe().unwrap();
    let script = format!(
        r#"set -e
S={bin}
T="{me} --exact child --nocapture -q"
role() {{ env {role}=$1 NAME=$2 $T | sed -n 's/^ID //p'; }}
# Counted from the kernel's table: listing must not attach what it counts.
count() {{ tail -n +2 /proc/sysvipc/shm | wc -l; }}
# (1) a channel whose creator was killed before its peer came
$S write stale --wait 60 </dev/null & W=$!
n=0; until [ "$(count)" -ge 1 ]; do n=$((n+1)); [ $n -lt 600 ]; sleep 0.05; done
sleep 0.3
kill -9 $W; wait $W || true
# (2) a creator killed before writing the header
Z=$(role zeroed zeroed)
# (3) a corrupt header, creator gone
C=$(role corrupt corrupt)
# (4) a user's data under a channel's key
U=$(role userdata mydata)
# (5) a live channel waiting for its reader
$S write live --wait 60 </dev/null & L=$!
n=0; until [ "$(count)" -ge 5 ]; do n=$((n+1)); [ $n -lt 600 ]; sleep 0.05; done
sleep 0.3
echo "ids: Z=$Z C=$C U=$U"
echo "== gc from a pid namespace that cannot see the creators"
unshare --pid --fork --mount-proc $S gc -v
echo "== gc"
$S gc -v
echo "== gc again"
$S gc -v
echo "== left"
tail -n +2 /proc/sysvipc/shm | awk '{{print $2}}'
env {role}=check-userdata ID=$U NAME=x $T | grep INTACT
kill $L; wait $L || true
"#,
        bin = svshm_path().display(),
        me = me.display(),
        role = ROLE,
    );
    let out = Command::new("unshare")
        .args(["--ipc", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{text}\n{err}");
    let ids = text
        .lines()
        .find_map(|l| l.strip_prefix("ids: "))
        .unwrap_or_else(|| panic!("{text}"));
    let id = |tag: &str| -> String {
        ids.split_whitespace()
            .find_map(|f| f.strip_prefix(tag))
            .unwrap()
            .to_string()
    };
    let (z, c, u) = (id("Z="), id("C="), id("U="));
    let section = |from: &str, to: &str| -> String {
        let a = text.split(from).nth(1).unwrap_or_else(|| panic!("{text}"));
        a.split(to).next().unwrap().to_string()
    };
    let unseen = section(
        "== gc from a pid namespace that cannot see the creators\n",
        "== gc\n",
    );
    let first = section("== gc\n", "== gc again\n");
    let again = section("== gc again\n", "== left\n");
    let left = section("== left\n", "INTACT");
    // Seen from a pid namespace where no creator is visible: the stale
    // channel (nobody attached: kernel-attested) goes, the zeroed one stays
    // (its creator cannot be judged from there).
    assert_eq!(unseen.matches("removed segment").count(), 1, "{text}");
    assert!(unseen.contains("nobody is attached"), "{text}");
    assert!(!unseen.contains(&format!("id {z} ")), "{text}");
    // From our namespace: the zeroed one, with its reason.
    assert!(
        first.contains(&format!("removed segment id {z} ")) && first.contains("before writing"),
        "{text}"
    );
    assert_eq!(first.matches("removed segment").count(), 1, "{text}");
    assert!(again.contains("nothing to remove"), "{text}");
    // Left: the corrupt header, the user's data (intact), the live channel.
    let left_ids: Vec<&str> = left.split_whitespace().collect();
    assert!(
        left_ids.contains(&c.as_str()),
        "corrupt header removed: {text}"
    );
    assert!(
        left_ids.contains(&u.as_str()),
        "user's segment removed: {text}"
    );
    assert_eq!(left_ids.len(), 3, "{text}");
    assert!(text.contains("INTACT true"), "{text}");
}
