//! Services: calls across processes, the caller's identity from the kernel
//! (never from the request), either side first, many clients on one thread
//! with `Select`, deaths of clients and servers as events, hostile posts
//! ignored, and nothing left behind.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};
use svshm_channel::{Client, Endpoint, Error, Options, Select, Server, TryRecvError};

fn opts() -> Options {
    Options::new()
        .capacity(1 << 14)
        .timeout(Some(Duration::from_secs(20)))
}

/// Accepts with a bound: a client that failed must fail the test, not hang it.
fn accept(server: &mut Server) -> svshm_channel::Connection {
    server
        .accept_timeout(Duration::from_secs(20))
        .unwrap()
        .expect("a client connected within 20 s")
}

fn reversed(b: &[u8]) -> Vec<u8> {
    b.iter().rev().copied().collect()
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    let name = std::env::var("NAME").unwrap();
    match role.as_str() {
        // Serves every connection in turn, answering each request reversed;
        // prints BOUND once it serves.
        "server" => {
            // Every connection at once, with Select: a client that holds its
            // connection open must not keep the others waiting.
            let mut server = Server::bind(&Endpoint::name(&name), &opts()).unwrap();
            println!("BOUND");
            let mut conns: Vec<svshm_channel::Connection> = Vec::new();
            loop {
                let ready = {
                    let mut sel = Select::new();
                    let a = sel.accept(&server);
                    for c in &conns {
                        sel.recv(c.requests());
                    }
                    let i = sel.select();
                    (i != a).then(|| i - 1)
                };
                let Some(i) = ready else {
                    if let Some(c) = server.try_accept().unwrap() {
                        conns.push(c);
                    }
                    continue;
                };
                match conns[i].try_recv() {
                    Ok(req) => {
                        if req == b"hang" {
                            println!("HANGING");
                            std::thread::sleep(Duration::from_secs(600));
                        }
                        // A client gone meanwhile is its own event next time.
                        let _ = conns[i].reply(&reversed(&req));
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(_) => {
                        conns.remove(i);
                    }
                }
            }
        }
        // One call, then holds the connection until killed.
        "client" => {
            let mut c = Client::connect(&Endpoint::name(&name), &opts()).unwrap();
            assert_eq!(c.call(b"abc").unwrap(), b"cba");
            println!("CALLED");
            std::thread::sleep(Duration::from_secs(600));
        }
        r => panic!("unknown role {r}"),
    }
}

/// A child process killed and reaped however the test ends.
struct Kid(std::process::Child);

impl std::ops::Deref for Kid {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Kid {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kid(role: &str, name: &str, out: Stdio) -> Kid {
    Kid(spawn("child", role, &[("NAME", name.to_string())], out))
}

/// Spawns a child in `role` and waits for it to print `line`.
fn spawn_until(role: &str, name: &str, line: &str) -> Kid {
    let mut c = kid(role, name, Stdio::piped());
    wait_line(&mut c, line);
    c
}

/// Segments a process created that are still there and not marked for
/// destruction: what it would leave behind.
fn left_by(pids: &[u32]) -> Vec<svshm::SegmentInfo> {
    svshm::proc_segments()
        .unwrap()
        .into_iter()
        .filter(|s| pids.contains(&(s.creator_pid as u32)) && !s.is_marked_for_destruction())
        .collect()
}

/// Waits for a child to print `line` (its other output is skipped).
fn wait_line(c: &mut std::process::Child, line: &str) {
    let role = "the child";
    let out = c.stdout.take().unwrap();
    let mut r = BufReader::new(out);
    let mut s = String::new();
    let t0 = Instant::now();
    while !s.contains(line) {
        s.clear();
        assert!(
            r.read_line(&mut s).unwrap() > 0,
            "{role} ended before {line}"
        );
        assert!(t0.elapsed() < Duration::from_secs(20));
    }
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
}

#[test]
fn calls_cross_processes_and_the_caller_is_who_the_kernel_says() {
    let name = unique("svc-basic");
    let mut server = Server::bind(&Endpoint::name(name.as_str()), &opts()).unwrap();
    let mut client = kid("client", &name, Stdio::piped());
    let mut conn = accept(&mut server);
    assert_eq!(conn.caller().uid, svshm::euid());
    assert_eq!(conn.caller().pid, client.id() as i32);
    assert_eq!(server.connections(), 1);
    let req = conn.recv().unwrap().unwrap();
    assert_eq!(req, b"abc");
    conn.reply(&reversed(&req)).unwrap();
    wait_line(&mut client, "CALLED");
    // The client now holds the connection until killed: its death is this
    // connection's event, and its pending work goes with it.
    sigkill(&client);
    client.wait().unwrap();
    let t0 = Instant::now();
    match conn.recv() {
        Err(Error::PeerDied { pid, .. }) => assert_eq!(pid, client.id() as i32),
        other => panic!("expected PeerDied, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(2));
    drop(conn);
    assert_eq!(server.connections(), 0);
}

#[test]
fn either_side_may_start_first() {
    let name = unique("svc-first");
    let n2 = name.clone();
    let client = std::thread::spawn(move || {
        let mut c = Client::connect(&Endpoint::name(n2), &opts()).unwrap();
        c.call(b"early").unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut server = Server::bind(&Endpoint::name(name.as_str()), &opts()).unwrap();
    let mut conn = accept(&mut server);
    let req = conn.recv().unwrap().unwrap();
    conn.reply(&reversed(&req)).unwrap();
    assert_eq!(client.join().unwrap(), b"ylrae");
}

#[test]
fn a_fake_identity_in_the_request_changes_nothing() {
    // The request says it comes from root, pid 1: the connection's caller
    // is still the process that made the segments.
    let name = unique("svc-spoof");
    let mut server = Server::bind(&Endpoint::name(name.as_str()), &opts()).unwrap();
    let n2 = name.clone();
    let client = std::thread::spawn(move || {
        let mut c = Client::connect(&Endpoint::name(n2), &opts()).unwrap();
        c.call(b"uid=0 pid=1 SVSHM_CALLER_UID=0").unwrap()
    });
    let mut conn = accept(&mut server);
    let req = conn.recv().unwrap().unwrap();
    assert!(req.starts_with(b"uid=0"));
    assert_eq!(conn.caller().uid, svshm::euid());
    assert_eq!(conn.caller().pid, std::process::id() as i32);
    conn.reply(b"ok").unwrap();
    client.join().unwrap();
}

#[test]
fn a_second_server_is_refused_and_a_dead_ones_name_is_taken_over() {
    let name = unique("svc-bind");
    let mut first = spawn_until("server", &name, "BOUND");
    match Server::bind(&Endpoint::name(name.as_str()), &opts()) {
        Err(Error::InUse { pid, .. }) => assert_eq!(pid, first.id() as i32),
        other => panic!("expected InUse, got {other:?}"),
    }
    sigkill(&first);
    first.wait().unwrap();
    let server = Server::bind(&Endpoint::name(name.as_str()), &opts()).unwrap();
    drop(server);
}

#[test]
fn the_servers_death_fails_the_call_in_flight_and_leaves_nothing() {
    let name = unique("svc-srvdeath");
    let mut server = spawn_until("server", &name, "BOUND");
    let mut c = Client::connect(&Endpoint::name(name.as_str()), &opts()).unwrap();
    assert_eq!(c.call(b"xyz").unwrap(), b"zyx");
    let pid = server.id();
    let listener = left_by(&[pid]);
    assert_eq!(listener.len(), 1, "the server's listener: {listener:?}");
    let verdict = svshm_channel::judge(listener[0].id).unwrap();
    assert!(
        !verdict.is_abandoned(),
        "a live server's listener is not abandoned: {verdict:?}"
    );
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        sigkill(&server);
        server.wait().unwrap();
    });
    let t0 = Instant::now();
    match c.call(b"hang") {
        Err(Error::PeerDied { pid: p, .. }) => assert_eq!(p, pid as i32),
        other => panic!("expected PeerDied, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(5));
    killer.join().unwrap();
    drop(c);
    // The client reclaimed the dead server's listener; the connection's
    // segments were marked for destruction when both ends attached.
    let left = left_by(&[pid]);
    assert!(left.is_empty(), "the dead server left {left:?}");
}

#[test]
fn one_thread_serves_many_clients_with_select() {
    let name = unique("svc-select");
    let mut server = Server::bind(&Endpoint::name(name.as_str()), &opts()).unwrap();
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let n = name.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&Endpoint::name(n), &opts()).unwrap();
                for k in 0..20u32 {
                    let req = format!("{i}:{k}");
                    assert_eq!(c.call(req.as_bytes()).unwrap(), reversed(req.as_bytes()));
                }
                c.close().unwrap();
            })
        })
        .collect();
    let mut conns = Vec::new();
    let mut served = 0;
    let mut closed = 0;
    let t0 = Instant::now();
    while closed < 8 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "stuck: {served} served"
        );
        let i = {
            let mut sel = Select::new();
            let accept = sel.accept(&server);
            for c in &conns {
                sel.recv(svshm_channel::Connection::requests(c));
            }
            let i = sel.select_timeout(Duration::from_secs(10)).unwrap();
            if i == accept { None } else { Some(i - 1) }
        };
        match i {
            None => {
                if let Some(c) = server.try_accept().unwrap() {
                    conns.push(c);
                }
            }
            Some(i) => match conns[i].try_recv() {
                Ok(req) => {
                    conns[i].reply(&reversed(&req)).unwrap();
                    served += 1;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    conns.remove(i);
                    closed += 1;
                }
                Err(TryRecvError::Failed(e)) => panic!("{e}"),
            },
        }
    }
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(served, 160);
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_client_without_a_server_times_out_and_leaves_nothing() {
    let name = unique("svc-none");
    let t0 = Instant::now();
    let r = Client::connect(
        &Endpoint::name(name.as_str()),
        &opts().timeout(Some(Duration::from_millis(200))),
    );
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn hostile_posts_are_dropped_and_real_clients_still_get_in() {
    let name = unique("svc-hostile");
    let mut server = Server::bind(&Endpoint::name(name.as_str()), &opts()).unwrap();
    // Post garbage straight into the listener's accept slots: ids of no
    // segment, of the listener itself, the same id twice.
    let seg = svshm::Segment::from_id(server.segment_id());
    let att = seg.attach().unwrap();
    let words = |off: usize, vals: [u32; 4]| {
        // The accept area starts after the 4096-byte header; slots from word 16.
        let at = 4096 + 4 * (16 + 4 * off);
        for (k, v) in vals.iter().enumerate() {
            att.write_at(at + 4 * k + 4, &v.to_ne_bytes()[..]).ok();
        }
        att.write_at(at, &2u32.to_ne_bytes()).unwrap(); // POSTED
    };
    let me = server.segment_id() as u32;
    words(0, [0x7fff_fff0, 0x7fff_fff1, 0, 0]);
    words(1, [me, me, 0, 0]);
    words(2, [me, 0x7fff_fff2, 0, 0]);
    assert!(
        server
            .accept_timeout(Duration::from_millis(200))
            .unwrap()
            .is_none()
    );
    let n2 = name.clone();
    let client = std::thread::spawn(move || {
        Client::connect(&Endpoint::name(n2), &opts())
            .unwrap()
            .call(b"real")
            .unwrap()
    });
    let mut conn = accept(&mut server);
    let req = conn.recv().unwrap().unwrap();
    conn.reply(&reversed(&req)).unwrap();
    assert_eq!(client.join().unwrap(), b"laer");
}

#[test]
fn typed_requests_and_responses() {
    use zerocopy::{Immutable, IntoBytes, KnownLayout, TryFromBytes};
    #[derive(IntoBytes, TryFromBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
    #[repr(C)]
    struct Add {
        a: u32,
        b: u32,
    }
    let name = unique("svc-typed");
    let mut server =
        Server::<Add, str>::bind_typed(&Endpoint::name(name.as_str()), &opts()).unwrap();
    let n2 = name.clone();
    let client = std::thread::spawn(move || {
        let mut c = Client::<Add, str>::connect_typed(&Endpoint::name(n2), &opts()).unwrap();
        let sum = c.call(&Add { a: 2, b: 40 }).unwrap();
        c.close().unwrap();
        sum
    });
    let mut conn = server
        .accept_timeout(Duration::from_secs(20))
        .unwrap()
        .unwrap();
    let Add { a, b } = conn.recv().unwrap().unwrap();
    conn.reply(&(a + b).to_string()).unwrap();
    assert_eq!(client.join().unwrap(), "42");
    assert!(conn.recv().unwrap().is_none(), "the client closed");
}

/// Servers and clients killed at random moments, many times over: every
/// survivor gets the right error (never a hang), and once the dust settles
/// nothing abandoned is left — not even the listeners of killed servers,
/// which the next bind or a client that finds the server dead reclaims.
#[test]
fn random_kills_of_servers_and_clients_leave_nothing_and_hang_nothing() {
    let base = rand_u64();
    println!("random kills: base {base}");
    let mut rng = Rng(base);
    let name = unique("svc-kills");
    let mut pids = Vec::new();
    for round in 0..6 {
        let mut server = spawn_until("server", &name, "BOUND");
        pids.push(server.id());
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(kid("client", &name, Stdio::null()));
        }
        // Our own client, calling while things die around it.
        let mut me = Client::connect(&Endpoint::name(name.as_str()), &opts()).unwrap();
        assert_eq!(me.call(b"ab").unwrap(), b"ba");
        std::thread::sleep(Duration::from_millis(rng.below(30)));
        // Kill some clients, then maybe the server.
        for c in &mut clients {
            if rng.below(2) == 0 {
                sigkill(c);
            }
        }
        let kill_server = rng.below(2) == 0 || round == 5;
        if kill_server {
            sigkill(&server);
            server.wait().unwrap();
        }
        let t0 = Instant::now();
        match me.call(b"cd") {
            Ok(r) => {
                assert!(!kill_server, "a dead server answered");
                assert_eq!(r, b"dc");
            }
            Err(Error::PeerDied { .. }) => assert!(kill_server, "PeerDied from a live server"),
            Err(e) => panic!("round {round}: {e}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "a call hung");
        drop(me);
        drop(clients);
        drop(server);
    }
    // Each bind reclaimed the listener before it; the last round killed the
    // server and our call reclaimed its listener.
    let left = left_by(&pids);
    assert!(left.is_empty(), "the servers left {left:?}");
}

/// A client killed after it posted its connection and before the server
/// took it: the server's next accept finds the caller dead, removes the two
/// channels the caller made (nobody else knows their ids) and goes on
/// serving the next client.
#[test]
fn a_client_killed_before_its_accept_leaves_nothing() {
    let name = unique("svc-early-kill");
    let mut server = Server::bind(&Endpoint::name(name.as_str()), &opts()).unwrap();
    let mut early = kid("client", &name, Stdio::null());
    let pid = early.id();
    // Both of its channels exist (it posts them right after making them).
    let t0 = Instant::now();
    while left_by(&[pid]).len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the client made no channels"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    sigkill(&early);
    early.wait().unwrap();
    assert_eq!(
        left_by(&[pid]).len(),
        2,
        "its channels outlive it until the accept"
    );
    // The dead caller's post yields no connection.
    assert!(
        server
            .accept_timeout(Duration::from_millis(200))
            .unwrap()
            .is_none()
    );
    let left = left_by(&[pid]);
    assert!(
        left.is_empty(),
        "the dead client's channels are left: {left:?}"
    );
    // And the server still serves.
    let n2 = name.clone();
    let client = std::thread::spawn(move || {
        Client::connect(&Endpoint::name(n2.as_str()), &opts())
            .unwrap()
            .call(b"xy")
            .unwrap()
    });
    let mut conn = accept(&mut server);
    let req = conn.recv().unwrap().unwrap();
    conn.reply(&reversed(&req)).unwrap();
    assert_eq!(client.join().unwrap(), b"yx");
}
