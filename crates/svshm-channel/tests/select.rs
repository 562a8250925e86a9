//! `Select`: waiting on many endpoints at once — the right index wakes, across
//! the 128-word groups of futex_waitv; closes and deaths are events; senders
//! and stream ends select too; and 64 writer channels whose processes send,
//! close, abort and die at random all reach a clean, exact tally.

mod common;

use common::*;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};
use svshm_channel::{
    Endpoint, Error, Options, Receiver, Select, SelectTimeoutError, Sender, StreamReader,
    StreamWriter, TryRecvError, TrySelectError, TrySendError,
};

fn opts() -> Options {
    Options::new()
        .capacity(4096)
        .timeout(Some(Duration::from_secs(30)))
}

/// `n` connected channels: the receivers here, the senders from a thread
/// (both sides connect in the same order, so each pair meets).
fn channels(n: usize, tag: &str) -> (Vec<Receiver>, Vec<Sender>) {
    let names: Vec<String> = (0..n).map(|i| unique(&format!("sel-{tag}-{i}"))).collect();
    let n2 = names.clone();
    let senders = std::thread::spawn(move || {
        n2.iter()
            .map(|n| Sender::connect(&Endpoint::name(n.as_str()), &opts()).unwrap())
            .collect::<Vec<_>>()
    });
    let rxs = names
        .iter()
        .map(|n| Receiver::connect(&Endpoint::name(n.as_str()), &opts()).unwrap())
        .collect();
    (rxs, senders.join().unwrap())
}

fn select_all(rxs: &[Receiver], timeout: Duration) -> Result<usize, SelectTimeoutError> {
    let mut sel = Select::new();
    for rx in rxs {
        sel.recv(rx);
    }
    sel.select_timeout(timeout)
}

#[test]
fn ready_endpoints_are_served_in_turn() {
    let (mut rxs, mut txs) = channels(3, "turn");
    assert_eq!(select_all(&rxs, Duration::ZERO), Err(SelectTimeoutError));
    for tx in &mut txs {
        tx.send(b"a").unwrap();
        tx.send(b"b").unwrap();
    }
    // All three are ready: successive selects must visit each one, not the
    // first again and again.
    let mut seen = Vec::new();
    for _ in 0..6 {
        let i = select_all(&rxs, Duration::from_secs(5)).unwrap();
        rxs[i].try_recv().unwrap();
        seen.push(i);
    }
    let mut count = [0; 3];
    for i in &seen {
        count[*i] += 1;
    }
    assert_eq!(count, [2, 2, 2], "order {seen:?}");
    assert_eq!(
        select_all(&rxs, Duration::from_millis(20)),
        Err(SelectTimeoutError)
    );
}

#[test]
fn the_right_index_wakes_across_futex_waitv_groups() {
    // 300 endpoints: the calling thread waits on the first 127, two helper
    // threads on the rest. A send on any one of them must end the sleep.
    let (mut rxs, txs) = channels(300, "groups");
    let txs = std::sync::Arc::new(std::sync::Mutex::new(txs));
    for target in [5usize, 126, 127, 200, 299] {
        let t2 = std::sync::Arc::clone(&txs);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            t2.lock().unwrap()[target].send(b"x").unwrap();
        });
        let t0 = Instant::now();
        let i = select_all(&rxs, Duration::from_secs(10)).unwrap();
        let took = t0.elapsed();
        sender.join().unwrap();
        assert_eq!(i, target);
        assert!(took < Duration::from_secs(5), "woke after {took:?}");
        assert_eq!(rxs[i].try_recv().unwrap(), b"x");
        assert_eq!(select_all(&rxs, Duration::ZERO), Err(SelectTimeoutError));
    }
}

#[test]
fn a_close_is_an_event_and_stays_one() {
    let (mut rxs, mut txs) = channels(2, "close");
    txs.remove(1).close().unwrap();
    let i = select_all(&rxs, Duration::from_secs(5)).unwrap();
    assert_eq!(i, 1);
    assert!(matches!(rxs[1].try_recv(), Err(TryRecvError::Disconnected)));
    // Ended endpoints stay ready: the caller stops adding them.
    assert_eq!(select_all(&rxs, Duration::ZERO), Ok(1));
    let mut sel = Select::new();
    sel.recv(&rxs[0]);
    let gone = sel.recv(&rxs[1]);
    sel.remove(gone);
    assert_eq!(sel.len(), 1);
    assert_eq!(sel.try_select(), Err(TrySelectError));
    drop(txs);
}

#[test]
fn a_sender_is_ready_when_its_message_fits() {
    let (mut rxs, mut txs) = channels(1, "room");
    let mut sent = 0;
    loop {
        match txs[0].try_send(&[7u8; 100]) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full(_)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent > 10);
    {
        let mut sel = Select::new();
        sel.send_len(&txs[0], 100);
        assert_eq!(
            sel.select_timeout(Duration::from_millis(30)),
            Err(SelectTimeoutError)
        );
    }
    let mut rx = rxs.remove(0);
    let drain = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..sent {
            rx.recv().unwrap().unwrap();
        }
        rx
    });
    let mut sel = Select::new();
    let i = sel.send_len(&txs[0], 100);
    assert_eq!(sel.select_timeout(Duration::from_secs(10)), Ok(i));
    txs[0].try_send(&[8u8; 100]).unwrap();
    let mut rx = drain.join().unwrap();
    assert_eq!(rx.recv().unwrap().unwrap(), [8u8; 100]);
}

#[test]
fn stream_ends_select_too() {
    let name = unique("sel-stream");
    let n2 = name.clone();
    let writer = std::thread::spawn(move || {
        let mut w = StreamWriter::connect(&Endpoint::name(n2), &opts()).unwrap();
        {
            let mut sel = Select::new();
            let i = sel.write(&w);
            assert_eq!(sel.select(), i, "an empty ring has room");
        }
        std::thread::sleep(Duration::from_millis(50));
        w.write_all(b"hello").unwrap();
        w.close().unwrap();
    });
    let mut r = StreamReader::connect(&Endpoint::name(name), &opts()).unwrap();
    let mut got = Vec::new();
    loop {
        {
            let mut sel = Select::new();
            sel.read(&r);
            sel.select_timeout(Duration::from_secs(10)).unwrap();
        }
        let chunk = r.read_chunk().unwrap();
        if chunk.is_empty() {
            break;
        }
        let (a, b) = chunk.as_slices();
        got.extend_from_slice(a);
        got.extend_from_slice(b);
        chunk.consume_all();
    }
    assert_eq!(got, b"hello");
    writer.join().unwrap();
}

#[test]
fn an_empty_select_times_out_and_refuses_to_wait_for_ever() {
    let mut sel = Select::new();
    assert!(sel.is_empty());
    assert_eq!(sel.try_select(), Err(TrySelectError));
    let t0 = Instant::now();
    assert_eq!(
        sel.select_timeout(Duration::from_millis(30)),
        Err(SelectTimeoutError)
    );
    assert!(t0.elapsed() >= Duration::from_millis(30));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || sel.select()));
    assert!(r.is_err(), "select() on nothing would hang");
}

// ---- processes: death, and the 64-channel storm ----

/// Channels per writer process, and processes, in the storm.
const PER_PROC: usize = 4;
const PROCS: usize = 16;

#[test]
fn child() {
    let Some(role) = role() else { return };
    let names: Vec<String> = std::env::var("NAMES")
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let start: u64 = std::env::var("START").unwrap().parse().unwrap();
    match role.as_str() {
        // One message, then hold the channel until killed.
        "one-then-hang" => {
            let mut tx = Sender::connect(&Endpoint::name(&names[0]), &opts()).unwrap();
            tx.send(b"hi").unwrap();
            println!("SENT");
            std::thread::sleep(Duration::from_secs(600));
        }
        // Sends numbered messages on its channels in random order, closes
        // some, then ends as its plan says (see `plan`).
        "storm" => {
            let mut txs: Vec<Option<Sender>> = names
                .iter()
                .map(|n| Some(Sender::connect(&Endpoint::name(n.as_str()), &opts()).unwrap()))
                .collect();
            let (counts, closes, ending) = plan(start);
            let mut sent = vec![0u64; names.len()];
            for c in 0..names.len() {
                if counts[c] == 0 && closes[c] {
                    txs[c].take().unwrap().close().unwrap();
                }
            }
            let mut rng = Rng(start ^ 0x5e1ec7);
            while (0..names.len()).any(|c| sent[c] < counts[c]) {
                let c = (rng.next_u64() % names.len() as u64) as usize;
                if sent[c] == counts[c] {
                    continue;
                }
                let msg = storm_message(c, sent[c]);
                txs[c].as_mut().unwrap().send(&msg).unwrap();
                sent[c] += 1;
                if sent[c] == counts[c] && closes[c] {
                    txs[c].take().unwrap().close().unwrap();
                }
                if rng.next_u64() % 8 == 0 {
                    std::thread::sleep(Duration::from_micros(rng.next_u64() % 500));
                }
            }
            match ending {
                Ending::Exit => drop(txs), // open ones abort
                Ending::Kill => {
                    let _ = std::io::stdout().flush();
                    sigkill_pid(std::process::id() as i32).unwrap();
                    std::thread::sleep(Duration::from_secs(60));
                }
            }
        }
        r => panic!("unknown role {r}"),
    }
    std::process::exit(0);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    Exit,
    Kill,
}

/// A writer process's plan from its starting value: messages per channel, which
/// channels it closes after them, and how the process ends.
fn plan(start: u64) -> (Vec<u64>, Vec<bool>, Ending) {
    let mut rng = Rng(start);
    let counts = (0..PER_PROC).map(|_| rng.next_u64() % 300).collect();
    let closes = (0..PER_PROC).map(|_| rng.next_u64() % 2 == 0).collect();
    let ending = if rng.next_u64() % 2 == 0 {
        Ending::Exit
    } else {
        Ending::Kill
    };
    (counts, closes, ending)
}

fn storm_message(channel: usize, n: u64) -> Vec<u8> {
    let mut m = n.to_le_bytes().to_vec();
    m.extend(std::iter::repeat_n(channel as u8, (n % 50) as usize));
    m
}

#[test]
fn a_dead_writer_is_an_event() {
    let (mut rxs, _txs) = channels(1, "idle");
    let name = unique("sel-dead");
    let mut child = spawn(
        "child",
        "one-then-hang",
        &[("NAMES", name.clone()), ("START", "0".into())],
        Stdio::piped(),
    );
    rxs.push(Receiver::connect(&Endpoint::name(name), &opts()).unwrap());
    assert_eq!(select_all(&rxs, Duration::from_secs(10)), Ok(1));
    assert_eq!(rxs[1].try_recv().unwrap(), b"hi");
    assert_eq!(
        select_all(&rxs, Duration::from_millis(50)),
        Err(SelectTimeoutError)
    );
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        sigkill(&child);
        child.wait().unwrap();
    });
    let t0 = Instant::now();
    let i = select_all(&rxs, Duration::from_secs(10));
    let took = t0.elapsed();
    killer.join().unwrap();
    assert_eq!(i, Ok(1));
    assert!(
        took < Duration::from_secs(2),
        "death noticed after {took:?}"
    );
    assert!(matches!(
        rxs[1].try_recv(),
        Err(TryRecvError::Failed(Error::PeerDied { .. }))
    ));
}

#[test]
fn sixty_four_writers_send_close_abort_and_die_at_random() {
    let base = rand_u64();
    println!("storm starting value {base}");
    let mut children = Vec::new();
    let mut rxs = Vec::new();
    let mut plans = Vec::new();
    for p in 0..PROCS {
        let start = base.wrapping_add(p as u64);
        let names: Vec<String> = (0..PER_PROC)
            .map(|c| unique(&format!("sel-storm-{p}-{c}")))
            .collect();
        children.push(spawn(
            "child",
            "storm",
            &[("NAMES", names.join(",")), ("START", start.to_string())],
            Stdio::null(),
        ));
        for n in &names {
            rxs.push(Receiver::connect(&Endpoint::name(n.as_str()), &opts()).unwrap());
        }
        plans.push(plan(start));
    }
    let mut got = vec![0u64; rxs.len()];
    let mut ended: Vec<Option<String>> = vec![None; rxs.len()];
    let t0 = Instant::now();
    while ended.iter().any(Option::is_none) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "storm hung: {ended:?}"
        );
        let i = {
            let mut sel = Select::new();
            let open: Vec<usize> = (0..rxs.len()).filter(|&i| ended[i].is_none()).collect();
            for &i in &open {
                sel.recv(&rxs[i]);
            }
            open[sel
                .select_timeout(Duration::from_secs(30))
                .expect("a select woke")]
        };
        match rxs[i].try_recv() {
            Ok(m) => {
                assert_eq!(m, storm_message(i % PER_PROC, got[i]), "channel {i}");
                got[i] += 1;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => ended[i] = Some("closed".into()),
            Err(TryRecvError::Failed(Error::PeerDied { .. })) => ended[i] = Some("died".into()),
            Err(TryRecvError::Failed(Error::Aborted { .. })) => ended[i] = Some("aborted".into()),
            Err(TryRecvError::Failed(e)) => panic!("channel {i}: {e}"),
        }
    }
    for c in &mut children {
        wait_child(c, Duration::from_secs(30));
    }
    for (i, end) in ended.iter().enumerate() {
        let (counts, closes, ending) = &plans[i / PER_PROC];
        let c = i % PER_PROC;
        assert_eq!(got[i], counts[c], "channel {i}: messages");
        let want = match (closes[c], ending) {
            (true, _) => "closed",
            (false, Ending::Exit) => "aborted",
            (false, Ending::Kill) => "died",
        };
        assert_eq!(end.as_deref(), Some(want), "channel {i}");
    }
}

/// The whole suite again in a child that takes the fallback for kernels
/// without futex_waitv(2) (forced by the environment): slower, still right.
#[test]
fn the_fallback_without_futex_waitv_works() {
    if role().is_some() || std::env::var_os("SVSHM_NO_FUTEX_WAITV").is_some() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--test-threads=1", "-q"])
        .env("SVSHM_NO_FUTEX_WAITV", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the suite failed on the fallback:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
