//! Peers SIGKILLed at awkward moments of a channel's life — while creating
//! it, while pending, while joining a topic, in the middle of a service
//! connect. Whoever comes next on the same name (or the surviving peer)
//! never hangs and never joins the dead; nothing the dead process made is
//! left behind except what only `svshm gc` can know of, and that is proven
//! abandoned so `svshm gc` removes it.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};
use svshm_channel::{
    Client, Endpoint, Error, Options, Publisher, Receiver, Sender, Server, StreamReader,
    StreamWriter, Subscriber,
};

fn opts() -> Options {
    Options::new()
        .capacity(1 << 14)
        .timeout(Some(Duration::from_secs(600)))
}

/// Options for the survivor: a bound, so a hang fails the test instead.
fn quick(ms: u64) -> Options {
    Options::new()
        .capacity(1 << 14)
        .timeout(Some(Duration::from_millis(ms)))
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    let name = std::env::var("NAME").unwrap();
    let ep = Endpoint::name(&name);
    // Each role makes its part, says READY (with a segment id where the peer
    // needs it), then holds it until killed.
    match role.as_str() {
        "stream-writer" => {
            hold(StreamWriter::connect(&ep, &opts()));
        }
        "stream-reader" => {
            hold(StreamReader::connect(&ep, &opts()));
        }
        "sender" => {
            hold(Sender::connect(&ep, &opts()));
        }
        "receiver" => {
            hold(Receiver::connect(&ep, &opts()));
        }
        "private-sender" => {
            let p = Sender::open(&Endpoint::private(), &opts()).unwrap();
            println!("READY {}", p.segment_id());
            std::thread::sleep(Duration::from_secs(600));
        }
        "private-stream-reader" => {
            let p = StreamReader::open(&Endpoint::private(), &opts()).unwrap();
            println!("READY {}", p.segment_id());
            std::thread::sleep(Duration::from_secs(600));
        }
        "publisher" => {
            let _p = Publisher::create(&ep, &opts()).unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        "subscriber" => {
            let _s = Subscriber::connect(&ep, &opts()).unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        // Binds but never accepts: a client's connect waits on it.
        "server-idle" => {
            let _s = Server::bind(&ep, &opts()).unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        "server" => {
            let key = svshm::Key::new(std::env::var("KEY").unwrap().parse().unwrap());
            let _s = Server::bind(&Endpoint::key(key), &opts()).unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        "client" => {
            let _c = Client::connect(&ep, &opts());
            println!("READY");
            std::thread::sleep(Duration::from_secs(600));
        }
        // Makes the segment a channel's creator makes (channel geometry,
        // the initialising mark 0100) under KEY, touches one page of it as
        // TOUCH says, prints its id and exits: a creator killed before its
        // header.
        "headerless" => {
            let key = svshm::Key::new(std::env::var("KEY").unwrap().parse().unwrap());
            let size = std::env::var("SIZE").map_or(4096 + (1 << 14), |s| s.parse().unwrap());
            let seg = svshm::CreateOptions::new(size)
                .key(key)
                .mode(0o700)
                .create()
                .unwrap();
            let att = seg.attach().unwrap();
            match std::env::var("TOUCH").unwrap().as_str() {
                // What the first store of the header leaves when the creator
                // is killed while it faults the page in: the page, all zero.
                "header-page" => {
                    let mut b = [0u8; 8];
                    att.read_at(0, &mut b).unwrap();
                }
                "ring-page" => att.write_at(8192, b"data").unwrap(),
                _ => {}
            }
            println!("READY {}", seg.id());
        }
        // What a joiner killed between its claim's compare-and-swap and
        // its next store leaves: its side CLAIMING, nobody's pid in it.
        "claim-and-die" => {
            let id: i32 = std::env::var("ID").unwrap().parse().unwrap();
            let att = svshm::Segment::from_id(id).attach().unwrap();
            // The reader's slot state: header byte 256.
            att.write_at(256, &1u32.to_ne_bytes()).unwrap();
            println!("READY");
        }
        r => panic!("unknown role {r}"),
    }
}

/// Holds what a child role made until the child is killed.
fn hold<T>(made: T) {
    std::thread::sleep(Duration::from_secs(600));
    drop(made);
}

/// A child process killed and reaped however the test ends.
struct Kid(std::process::Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Kid {
    fn spawn(role: &str, name: &str, out: Stdio) -> Kid {
        Kid(spawn("child", role, &[("NAME", name.to_string())], out))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn kill(&mut self) {
        sigkill(&self.0);
        self.0.wait().unwrap();
    }

    /// Waits for the child's line starting with `prefix`, and returns its rest.
    fn line(&mut self, prefix: &str) -> String {
        let out = self.0.stdout.take().unwrap();
        let mut r = BufReader::new(out);
        let mut s = String::new();
        let t0 = Instant::now();
        loop {
            s.clear();
            assert!(
                r.read_line(&mut s).unwrap() > 0,
                "child ended before {prefix}"
            );
            if let Some(rest) = s.strip_prefix(prefix) {
                let rest = rest.trim().to_string();
                std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
                return rest;
            }
            assert!(t0.elapsed() < Duration::from_secs(20));
        }
    }
}

/// Segments a process created that are still there and not marked for
/// destruction: what it would leave behind.
fn left_by(pid: u32) -> Vec<svshm::SegmentInfo> {
    svshm::proc_segments()
        .unwrap()
        .into_iter()
        .filter(|s| s.creator_pid as u32 == pid && !s.is_marked_for_destruction())
        .collect()
}

/// Waits until `pid` has created `n` segments (bounded).
fn wait_made(pid: u32, n: usize) {
    let t0 = Instant::now();
    while left_by(pid).len() < n {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "pid {pid} made no channel"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Kills `kid` a random moment (0 to 300 µs) after a segment appeared under
/// `key`: in the middle of what its creator does right after, such as
/// writing the header. Polls without sleeping (one system call a poll) to
/// be there in time.
fn kill_just_after_key(kid: &mut Kid, key: svshm::Key, rng: &mut Rng) {
    let t0 = Instant::now();
    while svshm::Segment::open(key, 0).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "nobody made the channel"
        );
    }
    spin(rng.below(300));
    kid.kill();
}

fn spin(micros: u64) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_micros(micros) {
        std::hint::spin_loop();
    }
}

/// Waits until channel segment `id` is READY (its creator finished the header).
fn wait_ready(id: i32) {
    let t0 = Instant::now();
    while !svshm_channel::inspect(id)
        .ok()
        .flatten()
        .is_some_and(|s| s.ready)
    {
        assert!(t0.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Asserts that whatever `pid` left behind, `svshm gc` would remove: only
/// segments nobody else can know of (a private one a process was killed
/// while making) may outlive a dead process, and those must be judged
/// abandoned. Removes them, so the test leaves nothing either.
fn only_gc_material(pid: u32, what: &str) -> usize {
    let left = left_by(pid);
    for s in &left {
        let verdict = svshm_channel::judge(s.id).unwrap();
        assert!(
            verdict.is_abandoned(),
            "{what}: segment {} (key {:?}) of dead pid {pid} is not judged abandoned: {verdict:?}",
            s.id,
            s.key
        );
        let _ = svshm::Segment::from_id(s.id).remove();
    }
    left.len()
}

/// The first side of a named channel is killed before its peer joins, at
/// random moments of its connect (before, while and after it creates the
/// segment), then the other side connects by name: it reclaims the dead
/// channel (never joins it, never waits on it), and nothing of the dead
/// process remains.
fn the_peer_reclaims_a_named_channel_whose_creator_was_killed(
    creator_role: &str,
    survivor: fn(&Endpoint, &Options) -> svshm_channel::Result<i32>,
) {
    let base = rand_u64();
    println!("{creator_role}: base {base}");
    let mut rng = Rng(base);
    for round in 0..6 {
        let name = unique("crash-named");
        let mut creator = Kid::spawn(creator_role, &name, Stdio::null());
        let pid = creator.pid();
        let key = svshm_channel::channel_key(&name);
        let dead = if round % 2 == 0 {
            // After the channel is READY: the common crash.
            wait_made(pid, 1);
            let dead = left_by(pid)[0].id;
            wait_ready(dead);
            creator.kill();
            Some(dead)
        } else {
            // Right after it made the segment, maybe before its header.
            kill_just_after_key(&mut creator, key, &mut rng);
            svshm::Segment::open(key, 0).ok().map(|s| s.id())
        };
        let t0 = Instant::now();
        // The survivor's open must not wait on the dead (its own pending
        // channel is fresh; dropping it removes it).
        let id = survivor(&Endpoint::name(&name), &quick(1500))
            .unwrap_or_else(|e| panic!("round {round}: the survivor failed: {e}"));
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "round {round}: the survivor took {:?}",
            t0.elapsed()
        );
        assert!(
            dead != Some(id),
            "round {round}: the survivor joined the dead channel {id}"
        );
        let left = left_by(pid);
        assert!(
            left.is_empty(),
            "round {round}: the dead creator left {left:?}"
        );
    }
}

#[test]
fn a_stream_reader_reclaims_the_channel_of_a_writer_killed_before_it_joined() {
    the_peer_reclaims_a_named_channel_whose_creator_was_killed("stream-writer", |ep, o| {
        StreamReader::open(ep, o).map(|p| p.segment_id())
    });
}

#[test]
fn a_stream_writer_reclaims_the_channel_of_a_reader_killed_before_it_joined() {
    the_peer_reclaims_a_named_channel_whose_creator_was_killed("stream-reader", |ep, o| {
        StreamWriter::open(ep, o).map(|p| p.segment_id())
    });
}

#[test]
fn a_receiver_reclaims_the_channel_of_a_sender_killed_before_it_joined() {
    the_peer_reclaims_a_named_channel_whose_creator_was_killed("sender", |ep, o| {
        Receiver::open(ep, o).map(|p| p.segment_id())
    });
}

#[test]
fn a_sender_reclaims_the_channel_of_a_receiver_killed_before_it_joined() {
    the_peer_reclaims_a_named_channel_whose_creator_was_killed("receiver", |ep, o| {
        Sender::open(ep, o).map(|p| p.segment_id())
    });
}

/// A private channel's creator killed while its end is pending: a peer told
/// the id gets a clear error at once (not a timeout, not a connection to the
/// dead), and the segment is removed.
#[test]
fn joining_a_private_pending_channel_of_a_killed_creator_fails_at_once_and_removes_it() {
    for (role, join) in [
        (
            "private-sender",
            (|id| Receiver::connect(&Endpoint::id(id), &quick(1500)).map(drop))
                as fn(i32) -> svshm_channel::Result<()>,
        ),
        ("private-stream-reader", |id| {
            StreamWriter::connect(&Endpoint::id(id), &quick(1500)).map(drop)
        }),
    ] {
        let mut creator = Kid::spawn(role, "unused", Stdio::piped());
        let pid = creator.pid();
        let id: i32 = creator.line("READY ").parse().unwrap();
        creator.kill();
        let t0 = Instant::now();
        match join(id) {
            Err(Error::Invalid(why)) => eprintln!("{role}: refused: {why}"),
            other => panic!("{role}: joining a dead creator's channel: {other:?}"),
        }
        assert!(t0.elapsed() < Duration::from_millis(500), "{role}: slow");
        assert!(segment_gone(id), "{role}: the dead channel {id} is left");
        assert!(left_by(pid).is_empty());
    }
}

/// A publisher killed (while creating its topic, or once it is there) before
/// any subscriber came: the next subscriber reclaims the dead topic and
/// waits for a new publisher (no `PeerDied` from a topic nobody joined), and
/// the next publisher creates it afresh.
#[test]
fn a_topic_of_a_publisher_killed_before_any_subscriber_is_reclaimed_by_the_next_comer() {
    let base = rand_u64();
    println!("publisher kills: base {base}");
    let mut rng = Rng(base);
    for round in 0..6 {
        let name = unique("crash-pub");
        let mut publisher = Kid::spawn("publisher", &name, Stdio::piped());
        let pid = publisher.pid();
        if round % 2 == 0 {
            publisher.line("READY");
            publisher.kill();
        } else {
            kill_just_after_key(&mut publisher, svshm_channel::channel_key(&name), &mut rng);
        }
        let dead: Vec<i32> = left_by(pid).iter().map(|s| s.id).collect();
        let ep = Endpoint::name(&name);
        let t0 = Instant::now();
        if round % 4 < 2 {
            match Subscriber::connect(&ep, &quick(200)) {
                Err(Error::Timeout { .. }) => {}
                Err(Error::PeerDied { .. }) => {}
                Err(e) => panic!("round {round}: a subscriber of a dead topic: {e}"),
                Ok(s) => panic!(
                    "round {round}: a subscriber joined the dead topic {}",
                    s.segment_id()
                ),
            }
            assert!(t0.elapsed() < Duration::from_secs(1), "round {round}: slow");
        } else {
            let p = Publisher::create(&ep, &quick(200))
                .unwrap_or_else(|e| panic!("round {round}: a new publisher: {e}"));
            assert!(!dead.contains(&p.segment_id()), "round {round}");
            assert!(t0.elapsed() < Duration::from_secs(1), "round {round}: slow");
        }
        let left = left_by(pid);
        assert!(
            left.is_empty(),
            "round {round}: the dead publisher left {left:?}"
        );
    }
}

/// Subscribers killed at random moments of their connect: the publisher
/// keeps publishing (a dead subscriber holds nothing back for long), and
/// the subscriber made no segment of its own that could be left.
#[test]
fn subscribers_killed_while_joining_leave_nothing_and_stall_nobody() {
    let base = rand_u64();
    println!("subscriber kills: base {base}");
    let mut rng = Rng(base);
    let name = unique("crash-sub");
    let ep = Endpoint::name(&name);
    let mut p = Publisher::create(&ep, &opts().capacity(1 << 12)).unwrap();
    // How long a subscriber takes from its spawn to joined, measured in the
    // even rounds; the odd ones kill at a random moment of that.
    let mut took = Duration::ZERO;
    for round in 0..6 {
        let t0 = Instant::now();
        let mut sub = Kid::spawn("subscriber", &name, Stdio::piped());
        let pid = sub.pid();
        if round % 2 == 0 {
            sub.line("READY");
            took = took.max(t0.elapsed());
        } else {
            spin(rng.below(took.as_micros() as u64 + 1));
        }
        sub.kill();
        // Enough to fill the ring several times: a dead subscriber that
        // still held the ring back would stall these.
        let t0 = Instant::now();
        for n in 0..64u32 {
            p.send_timeout(&[n as u8; 200], Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("round {round}: send {n}: {e:?}"));
        }
        assert!(t0.elapsed() < Duration::from_secs(1), "round {round}: slow");
        assert!(left_by(pid).is_empty(), "round {round}");
    }
    let t0 = Instant::now();
    while p.subscribers() != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "dead subscribers still counted: {:?}",
            p.subscriber_list()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Clients killed late in `Client::connect`: after both their channels are
/// made, at a random moment around their post, or well after it. The
/// server's next accepts give no connection for them and remove what they
/// posted, and it keeps serving; what a client made but had not posted yet
/// only `svshm gc` can know of, and it is judged abandoned.
#[test]
fn clients_killed_around_their_post_leave_only_gc_material_and_the_server_serves_on() {
    let base = rand_u64();
    println!("client kills: base {base}");
    let mut rng = Rng(base);
    let name = unique("crash-client");
    let ep = Endpoint::name(&name);
    let mut server = Server::bind(&ep, &opts()).unwrap();
    let mut for_gc = 0;
    for round in 0..8 {
        let mut client = Kid::spawn("client", &name, Stdio::null());
        let pid = client.pid();
        // Both its channels made and READY (their headers written).
        let t0 = Instant::now();
        loop {
            let made = left_by(pid);
            if made.len() == 2
                && made.iter().all(|s| {
                    svshm_channel::inspect(s.id)
                        .ok()
                        .flatten()
                        .is_some_and(|c| c.ready)
                })
            {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "no channels");
        }
        if round % 2 == 0 {
            // Well after its post.
            std::thread::sleep(Duration::from_millis(20));
        } else {
            spin(rng.below(200));
        }
        client.kill();
        // Nobody completed its connect, so no accept yields it.
        assert!(
            server
                .accept_timeout(Duration::from_millis(50))
                .unwrap()
                .is_none(),
            "round {round}: a dead client was accepted"
        );
        if round % 2 == 0 {
            let left = left_by(pid);
            assert!(
                left.is_empty(),
                "round {round}: a posted dead client's channels are left: {left:?}"
            );
        } else {
            for_gc += only_gc_material(pid, "a client killed around its post");
        }
    }
    eprintln!("{for_gc} unposted client segments were left for gc");
    // The server still serves.
    let n2 = name.clone();
    let caller = std::thread::spawn(move || {
        Client::connect(&Endpoint::name(n2), &quick(5000))
            .unwrap()
            .call(b"ping")
            .unwrap()
    });
    let mut conn = server
        .accept_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("a live client is accepted");
    let req = conn.recv().unwrap().unwrap();
    conn.reply(&req).unwrap();
    assert_eq!(caller.join().unwrap(), b"ping");
}

/// Runs the `headerless` child under `key`, touching `touch`; returns the
/// segment it left (removed when the guard drops).
fn headerless(key: svshm::Key, touch: &str) -> (i32, svshm::RemoveOnDrop) {
    headerless_sized(key, touch, 4096 + (1 << 14))
}

fn headerless_sized(key: svshm::Key, touch: &str, size: usize) -> (i32, svshm::RemoveOnDrop) {
    let mut c = spawn(
        "child",
        "headerless",
        &[
            ("NAME", String::new()),
            ("SIZE", size.to_string()),
            ("KEY", key.raw().to_string()),
            ("TOUCH", touch.to_string()),
        ],
        Stdio::piped(),
    );
    let mut out = String::new();
    std::io::Read::read_to_string(c.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(c.wait().unwrap().success(), "{out}");
    let id: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("READY "))
        .unwrap()
        .parse()
        .unwrap();
    (id, svshm::Segment::from_id(id).remove_on_drop())
}

/// A named channel's creator killed while its first store into the header
/// faulted the page in: the page exists but reads zero, so the segment
/// counts as written although it holds nothing. The next connect on the
/// name reclaims it (it used to be refused as "not provably ours", which
/// blocked the name for good), and so would `svshm gc`.
#[test]
fn a_creator_killed_while_faulting_in_its_header_page_does_not_block_the_name() {
    let name = unique("crash-fault");
    let key = svshm_channel::channel_key(&name);
    let (dead, _guard) = headerless(key, "header-page");
    let info = svshm::info::public_info_by_id(dead).unwrap();
    assert_eq!(info.rss, Some(4096), "one page touched");
    let verdict = svshm_channel::judge(dead).unwrap();
    assert!(verdict.is_abandoned(), "{verdict:?}");
    let t0 = Instant::now();
    let p = StreamReader::open(&Endpoint::name(&name), &quick(1500)).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_ne!(p.segment_id(), dead);
    assert!(segment_gone(dead));
}

/// The same segment, except that the one page touched is not the header
/// but a page of the ring with data in it: it holds something, so it is
/// refused, and it and its data are kept.
#[test]
fn a_headerless_segment_with_data_beyond_its_header_page_is_kept() {
    let name = unique("crash-fault-data");
    let key = svshm_channel::channel_key(&name);
    let (id, _guard) = headerless(key, "ring-page");
    assert!(!svshm_channel::judge(id).unwrap().is_abandoned());
    match StreamReader::open(&Endpoint::name(&name), &quick(500)) {
        Err(Error::NotOurs { id: got, .. }) => assert_eq!(got, id),
        other => panic!("a segment with data: {:?}", other.map(|p| p.segment_id())),
    }
    let mut b = [0u8; 4];
    svshm::Segment::from_id(id)
        .attach_read_only()
        .unwrap()
        .read_at(8192, &mut b)
        .unwrap();
    assert_eq!(&b, b"data");
}

/// A server killed between making its listener and writing its header
/// (right after `shmget`, or while its first store faulted the page in):
/// the next bind on the service reclaims the listener instead of failing,
/// and a client meanwhile times out (it never waits on the dead listener
/// longer than its timeout).
#[test]
fn a_server_killed_before_its_listener_was_ready_does_not_block_the_service() {
    for touch in ["nothing", "header-page"] {
        let key = svshm_channel::channel_key(&unique("crash-listener"));
        let ep = Endpoint::key(key);
        // A listener is a 4096-byte header and a 4096-byte accept area.
        let (dead, _guard) = headerless_sized(key, touch, 8192);
        let t0 = Instant::now();
        let r = Client::connect(&ep, &quick(300));
        assert!(matches!(r, Err(Error::Timeout { .. })), "{touch}: {r:?}");
        assert!(t0.elapsed() < Duration::from_secs(2), "{touch}: slow");
        assert!(
            segment_gone(dead),
            "{touch}: the client left the dead listener"
        );
        let (dead, _guard) = headerless_sized(key, touch, 8192);
        let t0 = Instant::now();
        let server = Server::bind(&ep, &quick(300))
            .unwrap_or_else(|e| panic!("{touch}: bind over a dead listener: {e}"));
        assert!(t0.elapsed() < Duration::from_secs(1), "{touch}: slow");
        assert_ne!(server.segment_id(), dead);
        assert!(segment_gone(dead), "{touch}: the dead listener is left");
    }
}

/// Servers killed at random moments of their bind (right after `shmget`,
/// or once they serve): the next bind on the service succeeds at once and
/// nothing of the dead server remains.
#[test]
fn servers_killed_while_binding_never_block_the_next_bind() {
    let base = rand_u64();
    println!("server kills: base {base}");
    let mut rng = Rng(base);
    for round in 0..6 {
        let key = svshm_channel::channel_key(&unique("crash-bind"));
        let mut server = Kid(spawn(
            "child",
            "server",
            &[("KEY", key.raw().to_string()), ("NAME", String::new())],
            Stdio::piped(),
        ));
        let pid = server.pid();
        if round % 2 == 0 {
            server.line("READY");
            server.kill();
        } else {
            kill_just_after_key(&mut server, key, &mut rng);
        }
        let t0 = Instant::now();
        let s = Server::bind(&Endpoint::key(key), &quick(300))
            .unwrap_or_else(|e| panic!("round {round}: bind after a killed server: {e}"));
        assert!(t0.elapsed() < Duration::from_secs(1), "round {round}: slow");
        drop(s);
        let left = left_by(pid);
        assert!(
            left.is_empty(),
            "round {round}: the dead server left {left:?}"
        );
    }
}

/// A joiner killed at a random moment of its join (just after it attached,
/// in or after its claim), while the creator waits in `Pending::wait`: the
/// creator never hangs. Either it connected to the dead joiner, and sending
/// reports its death (and the name serves the next pair), or the dead
/// joiner never claimed its side, and the next joiner gets in.
#[test]
fn a_joiner_killed_while_joining_never_hangs_the_waiting_creator() {
    let base = rand_u64();
    println!("joiner kills: base {base}");
    let mut rng = Rng(base);
    for round in 0..6 {
        let name = unique("crash-joiner");
        let pending = Sender::open(&Endpoint::name(&name), &quick(3000)).unwrap();
        let id = pending.segment_id();
        let mut joiner = Kid::spawn("receiver", &name, Stdio::null());
        let pid = joiner.pid() as i32;
        let t0 = Instant::now();
        while svshm::Segment::from_id(id).stat().unwrap().attach_count < 2 {
            assert!(t0.elapsed() < Duration::from_secs(20), "nobody joined");
        }
        spin(rng.below(300));
        joiner.kill();
        let n2 = name.clone();
        let next = std::thread::spawn(move || {
            let mut rx = Receiver::connect(&Endpoint::name(n2), &quick(1000)).ok()?;
            rx.recv().ok().flatten()
        });
        let t0 = Instant::now();
        let mut tx = pending
            .wait()
            .unwrap_or_else(|e| panic!("round {round}: the creator's wait: {e}"));
        assert!(t0.elapsed() < Duration::from_secs(2), "round {round}: slow");
        if tx.peer_pid() == pid {
            let t0 = Instant::now();
            let err = loop {
                if let Err(e) = tx.send_timeout(&[7u8; 1000], Duration::from_secs(2)) {
                    break e;
                }
                assert!(t0.elapsed() < Duration::from_secs(2), "round {round}");
            };
            assert!(
                matches!(err, svshm_channel::SendTimeoutError::Failed(_, ref e) if e.is_peer_died()),
                "round {round}: {err:?}"
            );
            // The name is free again: the next joiner made a new channel
            // (or joins ours), and it works.
            let mut tx = Sender::connect(&Endpoint::name(&name), &quick(1000)).unwrap();
            tx.send(b"next").unwrap();
            assert_eq!(next.join().unwrap().as_deref(), Some(&b"next"[..]));
        } else {
            tx.send(b"hi").unwrap();
            assert_eq!(next.join().unwrap().as_deref(), Some(&b"hi"[..]));
        }
    }
}

/// The server dies while a client waits in `Client::connect` for it to
/// accept: the client gets `PeerDied` within a fraction of a second (not
/// its timeout), and the next bind takes the service over.
#[test]
fn a_server_killed_while_a_client_waits_to_be_accepted_fails_the_connect_at_once() {
    let name = unique("crash-srv-wait");
    let mut server = Kid::spawn("server-idle", &name, Stdio::piped());
    server.line("READY");
    let spid = server.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        server.kill();
    });
    let t0 = Instant::now();
    match Client::connect(&Endpoint::name(&name), &quick(10_000)) {
        Err(Error::PeerDied { pid, .. }) => assert_eq!(pid, spid as i32),
        other => panic!("expected PeerDied, got {:?}", other.map(|_| ())),
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    killer.join().unwrap();
    // The dead server's listener: the next bind reclaims it.
    let s = Server::bind(&Endpoint::name(&name), &quick(300)).unwrap();
    drop(s);
    let left = left_by(spid);
    assert!(left.is_empty(), "the dead server left {left:?}");
}

/// A joiner killed right after its claim's compare-and-swap (its side left
/// CLAIMING, with no pid to watch): the creator waiting in `Pending::wait`
/// does not wait out its timeout for it; once nobody but the creator is
/// attached, the side is free again and the next joiner gets in.
#[test]
fn a_joiner_killed_in_the_middle_of_its_claim_does_not_block_the_channel() {
    let pending = Sender::open(&Endpoint::private(), &quick(3000)).unwrap();
    let id = pending.segment_id();
    let out = child_command("child", "claim-and-die")
        .env("ID", id.to_string())
        .env("NAME", "")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("READY"));
    let next = std::thread::spawn(move || {
        let mut rx = Receiver::connect(&Endpoint::id(id), &quick(2000))?;
        rx.recv()
    });
    let t0 = Instant::now();
    let mut tx = pending.wait().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    tx.send(b"in").unwrap();
    assert_eq!(next.join().unwrap().unwrap().as_deref(), Some(&b"in"[..]));
}

/// Many clients find a killed server's listener at once: whichever of them
/// reclaims it, the others neither fail on its removal nor hang; they all
/// wait for a new server, and get it.
#[test]
fn clients_racing_to_reclaim_a_killed_servers_listener_all_wait_for_the_next_server() {
    for round in 0..6 {
        let name = unique("crash-srv-race");
        let mut server = Kid::spawn("server-idle", &name, Stdio::piped());
        server.line("READY");
        server.kill();
        let go = std::sync::Arc::new(std::sync::Barrier::new(9));
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let (n, go) = (name.clone(), go.clone());
                std::thread::spawn(move || {
                    go.wait();
                    let mut c = Client::connect(&Endpoint::name(n), &quick(3000))?;
                    c.call(b"up")
                })
            })
            .collect();
        go.wait();
        std::thread::sleep(Duration::from_millis(20));
        let mut s = Server::bind(&Endpoint::name(&name), &quick(300))
            .unwrap_or_else(|e| panic!("round {round}: bind: {e}"));
        let t0 = Instant::now();
        let mut served = 0;
        while served < 8 && t0.elapsed() < Duration::from_secs(3) {
            if let Some(mut conn) = s.accept_timeout(Duration::from_millis(100)).unwrap() {
                let req = conn.recv().unwrap().unwrap();
                conn.reply(&req).unwrap();
                served += 1;
            }
        }
        for c in clients {
            let r = c.join().unwrap();
            assert_eq!(r.as_deref().ok(), Some(&b"up"[..]), "round {round}: {r:?}");
        }
    }
}

/// A private channel's creator killed between making its segment and
/// writing the header (for a client: before it could post the id) leaves an
/// empty segment nobody knows the id of. `svshm gc` must be able to remove
/// it; it cannot yet: without a channel key nothing proves svshm made it.
#[test]
#[ignore = "an empty private segment is not provably a channel, so svshm gc keeps it"]
fn a_private_segment_of_a_creator_killed_before_its_header_is_gc_material() {
    let (id, _guard) = headerless(svshm::Key::PRIVATE, "nothing");
    let verdict = svshm_channel::judge(id).unwrap();
    assert!(verdict.is_abandoned(), "{verdict:?}");
}
