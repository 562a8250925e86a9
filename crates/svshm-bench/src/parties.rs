//! Many parties: topics and services against their peers.
//!
//! Threads of this process (svshm and iceoryx2 both work within one).
//!
//! - Fan-out 1→4: one publisher thread, four subscriber threads, 64 B and
//!   64 KiB messages, for about `seconds`; every subscriber receives every
//!   message. svshm: a topic with [`Overflow::Backpressure`], each subscriber
//!   reading in place through `recv_ref`; the publisher copies a small
//!   message in with `try_send` and writes a large one in place through a
//!   loan. iceoryx2: publish-subscribe without safe overflow, the publisher
//!   loaning a sample, writing it and retrying until delivered, each
//!   subscriber reading the sample in place. Both get the same buffering in
//!   bytes per subscriber. Five threads share the machine's CPUs, so nobody
//!   spins: every side polls and calls `yield_now` when its ring is empty or
//!   full. svshm has no non-blocking `recv_ref` or `loan`, so its ends ask a
//!   one-endpoint `Select::try_select` first; the topic waits with
//!   `Wait::Block`, so `try_send` is one look, not a spin. iceoryx2's
//!   publisher waits inside `send`, where its own adaptive wait yields the
//!   same way (for its first 10 000 rounds) before it would sleep. The
//!   threads are not pinned: the scheduler spreads them. Per-subscriber
//!   throughput: messages published ÷ time until the last subscriber had
//!   them all. The two transports' runs are interleaved.
//! - Request/response round trip, 64 B each way, client and server threads:
//!   svshm services (`Client::call`; `recv` and `reply`) with `Wait::Spin`
//!   and iceoryx2 request-response busy-polling, on two CPUs; svshm services
//!   with `Wait::Block` and a Unix socket pair (blocking `read`/`write`), on
//!   two CPUs and both on one (a hand-off is then a context switch on the
//!   spot, not the wake-up of another, maybe idle, CPU).
//!
//! Every message carries its sequence number at both ends and a known body;
//! every receiver checks all of its bytes where they lie. Names are unique
//! per run (pid and a counter); iceoryx2 gets a file prefix of its own per
//! run, and what it leaves in /dev/shm or /tmp/iceoryx2 is removed.

use crate::stats::{Latency, median};
use crate::transport::ice;
use crate::util::{
    allowed_cpus, expected_word_sum, fmt_size, pattern, pin_current_thread, read_stamp, stamp,
    word_sum,
};
use anyhow::{Result, anyhow, bail};
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use svshm_channel::{
    Client, Endpoint, Options, Overflow, Publisher, Select, Server, Subscriber, TrySendError, Wait,
};

/// Subscribers of the fan-out.
pub const FANOUT: usize = 4;
/// Small and large fan-out messages.
const SIZES: [usize; 2] = [64, 64 << 10];
/// Messages up to this size are published with `try_send` (copied in);
/// larger ones through a loan, written in place like an iceoryx2 sample.
const SMALL_COPY: usize = 4096;
/// Round-trip payload, each way.
const RT_PAYLOAD: usize = 64;
/// How long anything may make no progress before the run is declared hung.
const STALL: Duration = Duration::from_secs(15);
/// Round trips discarded at the start of each run.
const WARMUP: u64 = 50;

static RUN: AtomicU64 = AtomicU64::new(0);

/// A tag unique to this run: pid and counter.
fn tag() -> String {
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    format!("{}r{n}", std::process::id())
}

/// One fan-out measurement.
#[derive(Debug, Clone, Serialize)]
pub struct FanRow {
    /// `svshm` or `iceoryx2`.
    pub transport: String,
    /// Message size in bytes.
    pub size: usize,
    /// Messages each subscriber received per second (median of the runs).
    pub msgs_per_s: f64,
    /// The same in bytes per second.
    pub bytes_per_s: f64,
    /// Buffering each subscriber had, in bytes (svshm: the ring; iceoryx2:
    /// the queue depth × the size).
    pub buffer: usize,
}

/// One round-trip measurement.
#[derive(Debug, Clone, Serialize)]
pub struct RtRow {
    /// What was measured.
    pub name: String,
    /// Round trips (medians of the runs' percentiles).
    pub latency: Latency,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct Parties {
    /// Fan-out rows, svshm and iceoryx2 for each size.
    pub fanout: Vec<FanRow>,
    /// Round-trip rows.
    pub round_trips: Vec<RtRow>,
    /// Measured runs per row.
    pub runs: usize,
    /// Length of one run, in seconds.
    pub seconds: f64,
    /// CPUs the process could use (fewer than two: nothing was pinned).
    pub cpus: usize,
}

/// The CPUs this process could use before any pinning ([`run`] asks first).
fn cpus() -> &'static [usize] {
    static CPUS: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    CPUS.get_or_init(allowed_cpus)
}

/// Pins the calling thread to the `k`-th of [`cpus`], where there are two.
fn pin(k: usize) {
    let cpus = cpus();
    if cpus.len() >= 2 {
        let _ = pin_current_thread(cpus[k % cpus.len()]);
    }
}

/// Checks a received message: its stamps say `want`, its words sum to what
/// the pattern stamped with `want` sums to (every byte is read).
fn check(p: &[u8], len: usize, want: u64, base: u64, who: &str) -> Result<()> {
    if p.len() != len {
        bail!(
            "{who}: message {want} has {} bytes, expected {len}",
            p.len()
        );
    }
    if read_stamp(p) != Some(want) {
        bail!(
            "{who}: expected message {want}, got stamps {:?}",
            read_stamp(p)
        );
    }
    if word_sum(p) != expected_word_sum(base, want) {
        bail!("{who}: message {want} has a damaged body");
    }
    Ok(())
}

/// Ring bytes per subscriber for `size`-byte messages.
fn ring_for(size: usize) -> usize {
    if size <= 4096 { 256 << 10 } else { 1 << 20 }
}

/// iceoryx2 queue depth per subscriber: as many messages as the svshm ring
/// holds bytes for.
fn ice_depth(size: usize) -> usize {
    (ring_for(size) / size).clamp(2, 4096)
}

/// Since when an end has found nothing to do (empty or full).
#[derive(Default)]
struct Idle(Option<Instant>);

impl Idle {
    /// Nothing to do: yields the CPU, or fails once that has lasted
    /// [`STALL`].
    fn wait(&mut self, what: impl FnOnce() -> String) -> Result<()> {
        if self.0.get_or_insert_with(Instant::now).elapsed() > STALL {
            bail!("{} for {STALL:?}", what());
        }
        std::thread::yield_now();
        Ok(())
    }

    /// Progress: the clock starts again.
    fn moved(&mut self) {
        self.0 = None;
    }
}

/// The client's result once the server thread `h` has ended too.
fn finish<T>(r: Result<T>, h: std::thread::JoinHandle<Result<()>>) -> Result<T> {
    let served = join(h, "server");
    let v = r?;
    served.map(|()| v)
}

fn join<T>(h: std::thread::JoinHandle<Result<T>>, what: &str) -> Result<T> {
    h.join().map_err(|_| anyhow!("{what} thread panicked"))?
}

/// svshm fan-out: messages published and seconds until every subscriber
/// had them all.
fn fan_svshm(size: usize, seconds: f64) -> Result<(u64, f64)> {
    let ep = Endpoint::name(format!("bench-parties-{}", tag()));
    let opts = Options::new()
        .capacity(ring_for(size))
        .max_message(size)
        .subscribers(FANOUT)
        .overflow(Overflow::Backpressure)
        .wait(Wait::Block)
        .timeout(Some(Duration::from_secs(30)));
    let mut publisher = Publisher::create(&ep, &opts)?;
    let base = word_sum(&pattern(size));
    let start = Arc::new(Barrier::new(FANOUT + 1));
    let ends = (0..FANOUT)
        .map(|_| Subscriber::connect(&ep, &opts))
        .collect::<svshm_channel::Result<Vec<_>>>()?;
    let mut subs = Vec::new();
    for (i, mut sub) in ends.into_iter().enumerate() {
        let start = start.clone();
        subs.push(std::thread::spawn(move || -> Result<u64> {
            start.wait();
            let who = format!("svshm subscriber {i}");
            let mut want = 0u64;
            let mut idle = Idle::default();
            loop {
                if !has_news(&sub) {
                    idle.wait(|| format!("{who}: nothing after message {want}"))?;
                    continue;
                }
                idle.moved();
                match sub.recv_ref()? {
                    Some(m) => check(&m, size, want, base, &who)?,
                    None => return Ok(want),
                }
                want += 1;
            }
        }));
    }
    while publisher.subscribers() < FANOUT {
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut buf = pattern(size);
    start.wait();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(seconds);
    let mut seq = 0u64;
    let mut full = Idle::default();
    while Instant::now() < end {
        for _ in 0..16 {
            stamp(&mut buf, seq);
            let sent = if size <= SMALL_COPY {
                // One look (the topic waits with `Wait::Block`, so a
                // `try_send` does not spin): copied in if there is room.
                match publisher.try_send(&buf) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) => false,
                    Err(TrySendError::Disconnected(_)) => bail!("svshm publisher: topic closed"),
                    Err(TrySendError::Failed(_, e)) => return Err(e.into()),
                }
            } else if has_room(&publisher) {
                // Written in place, as into iceoryx2's loaned sample (the
                // loan returns at once: there is room).
                let mut loan = publisher.loan(size)?;
                loan.copy_from_slice(&buf);
                loan.send()?;
                true
            } else {
                false
            };
            if sent {
                seq += 1;
                full.moved();
            } else {
                full.wait(|| "svshm publisher: no room".into())?;
            }
        }
    }
    publisher.close()?;
    for (i, h) in subs.into_iter().enumerate() {
        let got = join(h, "subscriber")?;
        if got != seq {
            bail!("svshm subscriber {i} received {got} of {seq} messages");
        }
    }
    Ok((seq, t0.elapsed().as_secs_f64()))
}

/// Whether a message (or the end) is there now.
fn has_news(s: &Subscriber) -> bool {
    let mut sel = Select::new();
    sel.subscribe(s);
    sel.try_select().is_ok()
}

/// Whether a message of the topic's maximum size fits now.
fn has_room(p: &Publisher) -> bool {
    let mut sel = Select::new();
    sel.publish(p);
    sel.try_select().is_ok()
}

/// An iceoryx2 node of its own under `prefix` (one per thread: ports stay
/// in the thread that made them).
fn ice_node(prefix: &str) -> Result<Node<ipc::Service>> {
    set_log_level(LogLevel::Error);
    let mut config = Config::default();
    config.global.prefix = FileName::new(prefix.as_bytes())
        .map_err(|e| anyhow!("iceoryx2 prefix {prefix:?}: {e:?}"))?;
    NodeBuilder::new()
        .config(&config)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .map_err(|e| anyhow!("iceoryx2 node: {e:?}"))
}

fn ice_name(s: &str) -> Result<ServiceName> {
    s.try_into()
        .map_err(|e| anyhow!("iceoryx2 service name {s:?}: {e:?}"))
}

type PubSub =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>;

/// Opens (or creates) the fan-out service, retrying while another thread
/// is half-way through making it.
fn ice_pubsub(node: &Node<ipc::Service>, name: &ServiceName, depth: usize) -> Result<PubSub> {
    let t0 = Instant::now();
    loop {
        match node
            .service_builder(name)
            .publish_subscribe::<[u8]>()
            .max_publishers(1)
            .max_subscribers(FANOUT)
            .max_nodes(FANOUT + 1)
            .history_size(0)
            .subscriber_max_buffer_size(depth)
            .subscriber_max_borrowed_samples(1)
            .enable_safe_overflow(false)
            .open_or_create()
        {
            Ok(s) => return Ok(s),
            Err(_) if t0.elapsed() < STALL => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => bail!("iceoryx2 publish-subscribe service: {e:?}"),
        }
    }
}

/// iceoryx2 fan-out, as [`fan_svshm`].
fn fan_ice(size: usize, seconds: f64, prefix: &str) -> Result<(u64, f64)> {
    let name = ice_name(&format!("svshm-bench/parties/{}", tag()))?;
    let depth = ice_depth(size);
    let node = ice_node(prefix)?;
    let service = ice_pubsub(&node, &name, depth)?;
    let base = word_sum(&pattern(size));
    let start = Arc::new(Barrier::new(FANOUT + 1));
    // Messages published in all, once the publisher is done.
    let total = Arc::new(AtomicU64::new(u64::MAX));
    let mut subs = Vec::new();
    for i in 0..FANOUT {
        let (start, total, prefix, name) = (start.clone(), total.clone(), prefix.to_string(), name);
        subs.push(std::thread::spawn(move || -> Result<u64> {
            let who = format!("iceoryx2 subscriber {i}");
            let node = ice_node(&prefix);
            let sub = node.and_then(|node| {
                let svc = ice_pubsub(&node, &name, depth)?;
                let sub = svc
                    .subscriber_builder()
                    .buffer_size(depth)
                    .create()
                    .map_err(|e| anyhow!("{who}: {e:?}"))?;
                Ok((sub, svc, node))
            });
            // Meet the others even after a failure, so nobody waits for ever.
            start.wait();
            let (sub, _svc, _node) = sub?;
            let mut want = 0u64;
            let mut idle = Idle::default();
            loop {
                match sub.receive().map_err(|e| anyhow!("{who}: {e:?}"))? {
                    Some(s) => {
                        check(s.payload(), size, want, base, &who)?;
                        want += 1;
                        idle.moved();
                    }
                    None if want == total.load(Ordering::Acquire) => return Ok(want),
                    None => idle.wait(|| format!("{who}: nothing after message {want}"))?,
                }
            }
        }));
    }
    let ready = (|| {
        let publisher = service
            .publisher_builder()
            .initial_max_slice_len(size)
            .max_loaned_samples(1)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(|e| anyhow!("iceoryx2 publisher: {e:?}"))?;
        let t0 = Instant::now();
        while service.dynamic_config().number_of_subscribers() < FANOUT {
            if t0.elapsed() > STALL {
                bail!(
                    "iceoryx2: only {} subscribers came",
                    service.dynamic_config().number_of_subscribers()
                );
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        publisher
            .update_connections()
            .map_err(|e| anyhow!("iceoryx2 connect publisher: {e:?}"))?;
        Ok(publisher)
    })();
    let publisher = match ready {
        Ok(p) => p,
        Err(e) => {
            // Release the subscribers: they stop at once with nothing.
            total.store(0, Ordering::Release);
            start.wait();
            for h in subs {
                let _ = h.join();
            }
            return Err(e);
        }
    };
    let mut buf = pattern(size);
    start.wait();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(seconds);
    let mut seq = 0u64;
    let mut full = Idle::default();
    let sent: Result<()> = (|| {
        while Instant::now() < end {
            for _ in 0..16 {
                let sample = match publisher.loan_slice_uninit(size) {
                    Ok(s) => s,
                    Err(e) => {
                        full.wait(|| format!("iceoryx2 loan: {e:?}"))?;
                        continue;
                    }
                };
                full.moved();
                stamp(&mut buf, seq);
                let n = sample
                    .write_from_slice(&buf)
                    .send()
                    .map_err(|e| anyhow!("iceoryx2 send: {e:?}"))?;
                if n != FANOUT {
                    bail!("iceoryx2: message {seq} reached {n} of {FANOUT} subscribers");
                }
                seq += 1;
            }
        }
        Ok(())
    })();
    total.store(if sent.is_ok() { seq } else { 0 }, Ordering::Release);
    let mut results = Vec::new();
    for h in subs {
        results.push(join(h, "subscriber"));
    }
    sent?;
    for (i, r) in results.into_iter().enumerate() {
        let got = r?;
        if got != seq {
            bail!("iceoryx2 subscriber {i} received {got} of {seq} messages");
        }
    }
    Ok((seq, t0.elapsed().as_secs_f64()))
}

/// Runs `f` with a fresh iceoryx2 prefix, then removes what it left.
fn with_prefix<T>(f: impl FnOnce(&str) -> Result<T>) -> Result<T> {
    let prefix = format!("svp{}_", tag());
    let r = f(&prefix);
    for left in ice::cleanup(&prefix) {
        eprintln!("svshm-bench: removed what iceoryx2 left: {left}");
    }
    r
}

/// Times round trips of `one` (send a request, wait for its answer, check
/// it) for about `seconds`: the first [`WARMUP`] are dropped.
fn time_round_trips(
    seconds: f64,
    mut one: impl FnMut(&mut [u8; RT_PAYLOAD], u64) -> Result<()>,
) -> Result<Latency> {
    let mut msg = [0u8; RT_PAYLOAD];
    msg.copy_from_slice(&pattern(RT_PAYLOAD));
    let mut samples = Vec::new();
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut k = 0u64;
    while Instant::now() < end || samples.len() < 100 {
        stamp(&mut msg, k);
        let t0 = Instant::now();
        one(&mut msg, k)?;
        let t = t0.elapsed().as_nanos() as u64;
        if k >= WARMUP {
            samples.push(t);
        }
        k += 1;
    }
    Ok(Latency::from_samples(&mut samples))
}

/// Checks an answer: the request echoed back.
fn check_answer(got: &[u8], sent: &[u8], k: u64, who: &str) -> Result<()> {
    match got == sent {
        true => Ok(()),
        false => bail!("{who}: round trip {k}: the answer differs from the request"),
    }
}

/// The client's CPU: the server's when `same`, another one otherwise.
fn client_cpu(same: bool) -> usize {
    usize::from(!same)
}

fn rt_svshm(wait: Wait, same: bool, seconds: f64) -> Result<Latency> {
    let ep = Endpoint::name(format!("bench-parties-svc-{}", tag()));
    let opts = Options::new()
        .capacity(16 << 10)
        .wait(wait)
        .timeout(Some(Duration::from_secs(30)));
    let mut server = Server::bind(&ep, &opts)?;
    let h = std::thread::spawn(move || -> Result<()> {
        pin(0);
        let conn = server.accept_timeout(Duration::from_secs(30))?;
        let mut conn = conn.ok_or_else(|| anyhow!("svshm service: no client came"))?;
        while let Some(req) = conn.recv()? {
            conn.reply(&req)?;
        }
        Ok(())
    });
    pin(client_cpu(same));
    let connected = Client::connect(&ep, &opts);
    let r = connected
        .map_err(anyhow::Error::from)
        .and_then(|mut client| {
            let lat = time_round_trips(seconds, |msg, k| {
                let back = client.call(&msg[..])?;
                check_answer(&back, msg, k, "svshm service")
            });
            client.close()?;
            lat
        });
    finish(r, h)
}

/// A 64-byte message as iceoryx2 carries it (a plain array type with a
/// default, which `[u8; 64]` lacks).
type Words = [u64; RT_PAYLOAD / 8];

fn to_words(b: &[u8; RT_PAYLOAD]) -> Words {
    let mut w = [0u64; RT_PAYLOAD / 8];
    for (i, c) in b.chunks_exact(8).enumerate() {
        w[i] = u64::from_le_bytes(c.try_into().expect("8 bytes"));
    }
    w
}

type ReqResp = iceoryx2::service::port_factory::request_response::PortFactory<
    ipc::Service,
    Words,
    (),
    Words,
    (),
>;

fn ice_rr(node: &Node<ipc::Service>, name: &ServiceName) -> Result<ReqResp> {
    let t0 = Instant::now();
    loop {
        match node
            .service_builder(name)
            .request_response::<Words, Words>()
            .max_clients(1)
            .max_servers(1)
            .max_nodes(2)
            .enable_safe_overflow_for_requests(false)
            .enable_safe_overflow_for_responses(false)
            .open_or_create()
        {
            Ok(s) => return Ok(s),
            Err(_) if t0.elapsed() < STALL => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => bail!("iceoryx2 request-response service: {e:?}"),
        }
    }
}

fn rt_ice(seconds: f64, prefix: &str) -> Result<Latency> {
    let name = ice_name(&format!("svshm-bench/parties-rr/{}", tag()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (stop2, prefix2, name2) = (stop.clone(), prefix.to_string(), name);
    let h = std::thread::spawn(move || -> Result<()> {
        pin(0);
        let node = ice_node(&prefix2)?;
        let svc = ice_rr(&node, &name2)?;
        let server = svc
            .server_builder()
            .create()
            .map_err(|e| anyhow!("iceoryx2 server: {e:?}"))?;
        while !stop2.load(Ordering::Relaxed) {
            match server
                .receive()
                .map_err(|e| anyhow!("iceoryx2 server receive: {e:?}"))?
            {
                Some(req) => {
                    let w = *req.payload();
                    req.send_copy(w)
                        .map_err(|e| anyhow!("iceoryx2 response: {e:?}"))?;
                }
                None => std::hint::spin_loop(),
            }
        }
        Ok(())
    });
    pin(1);
    let r = (|| -> Result<Latency> {
        let node = ice_node(prefix)?;
        let svc = ice_rr(&node, &name)?;
        let client = svc
            .client_builder()
            .create()
            .map_err(|e| anyhow!("iceoryx2 client: {e:?}"))?;
        let t0 = Instant::now();
        while svc.dynamic_config().number_of_servers() < 1 {
            if t0.elapsed() > STALL || h.is_finished() {
                bail!("iceoryx2: no server came");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        time_round_trips(seconds, |msg, k| {
            let want = to_words(msg);
            let since = Instant::now();
            loop {
                let pending = client
                    .send_copy(want)
                    .map_err(|e| anyhow!("iceoryx2 request: {e:?}"))?;
                if pending.number_of_server_connections() == 0 {
                    // Not connected yet (only while warming up).
                    if since.elapsed() > STALL {
                        bail!("iceoryx2: requests reach no server");
                    }
                    std::thread::sleep(Duration::from_micros(100));
                    continue;
                }
                loop {
                    match pending
                        .receive()
                        .map_err(|e| anyhow!("iceoryx2 receive response: {e:?}"))?
                    {
                        Some(resp) if *resp.payload() == want => return Ok(()),
                        Some(_) => bail!("iceoryx2: round trip {k}: the answer differs"),
                        None if since.elapsed() > STALL => {
                            bail!("iceoryx2: no answer to round trip {k}")
                        }
                        None => std::hint::spin_loop(),
                    }
                }
            }
        })
    })();
    stop.store(true, Ordering::Relaxed);
    finish(r, h)
}

fn rt_unix(same: bool, seconds: f64) -> Result<Latency> {
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair()?;
    let h = std::thread::spawn(move || -> Result<()> {
        pin(0);
        let mut buf = [0u8; RT_PAYLOAD];
        loop {
            match b.read_exact(&mut buf) {
                Ok(()) => b.write_all(&buf)?,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    });
    pin(client_cpu(same));
    let mut back = [0u8; RT_PAYLOAD];
    let r = time_round_trips(seconds, |msg, k| {
        a.write_all(msg)?;
        a.read_exact(&mut back)?;
        check_answer(&back, msg, k, "Unix socket")
    });
    drop(a);
    finish(r, h)
}

/// Medians over `runs` runs of each measurement. Runs in threads of its own,
/// so that pinning leaves the calling thread as it was.
pub fn run(runs: usize, seconds: f64) -> Result<Parties> {
    cpus();
    let r = std::thread::spawn(move || run_all(runs.max(1), seconds))
        .join()
        .map_err(|_| anyhow!("the parties benchmark panicked"));
    ice::remove_empty_root();
    r?
}

fn run_all(runs: usize, seconds: f64) -> Result<Parties> {
    let mut fanout = Vec::new();
    for size in SIZES {
        let transports = ["svshm", "iceoryx2"];
        let mut rates = [Vec::new(), Vec::new()];
        // Interleaved, the first one alternating, so that a change in the
        // machine's load weighs on both alike.
        for run in 0..runs {
            for k in 0..2 {
                let t = (k + run) % 2;
                let transport = transports[t];
                // Each run in a thread of its own: nothing pinned.
                let (n, secs) = std::thread::spawn(move || match transport {
                    "svshm" => fan_svshm(size, seconds),
                    _ => with_prefix(|p| fan_ice(size, seconds, p)),
                })
                .join()
                .map_err(|_| anyhow!("fan-out run panicked"))??;
                rates[t].push(n as f64 / secs);
            }
        }
        for (t, transport) in transports.into_iter().enumerate() {
            let msgs_per_s = median(&rates[t]);
            eprintln!(
                "parties: fan-out 1→{FANOUT}, {size} B, {transport}: {:.3} M messages/s per subscriber",
                msgs_per_s / 1e6
            );
            fanout.push(FanRow {
                transport: transport.into(),
                size,
                msgs_per_s,
                bytes_per_s: msgs_per_s * size as f64,
                buffer: if transport == "svshm" {
                    ring_for(size)
                } else {
                    ice_depth(size) * size
                },
            });
        }
    }
    let cases: [(&str, RoundTrips); 6] = [
        (SPIN, |s| rt_svshm(Wait::Spin, false, s)),
        (ICE, |s| with_prefix(|p| rt_ice(s, p))),
        (BLOCK2, |s| rt_svshm(Wait::Block, false, s)),
        (UNIX2, |s| rt_unix(false, s)),
        (BLOCK1, |s| rt_svshm(Wait::Block, true, s)),
        (UNIX1, |s| rt_unix(true, s)),
    ];
    let mut lats: Vec<Vec<Latency>> = vec![Vec::new(); cases.len()];
    for _ in 0..runs {
        for (i, (_, f)) in cases.iter().enumerate() {
            lats[i].push(f(seconds)?);
        }
    }
    let mut round_trips = Vec::new();
    for ((name, _), l) in cases.iter().zip(&lats) {
        let latency = Latency::median_of(l);
        eprintln!("parties: round trip, {name}: p50 {} ns", latency.p50);
        round_trips.push(RtRow {
            name: (*name).into(),
            latency,
        });
    }
    Ok(Parties {
        fanout,
        round_trips,
        runs,
        seconds,
        cpus: cpus().len(),
    })
}

const SPIN: &str = "svshm service, `Wait::Spin`, two CPUs";
const ICE: &str = "iceoryx2 request-response, busy-polling, two CPUs";
const BLOCK2: &str = "svshm service, `Wait::Block`, two CPUs";
const UNIX2: &str = "Unix socket pair, blocking read/write, two CPUs";
const BLOCK1: &str = "svshm service, `Wait::Block`, one CPU";
const UNIX1: &str = "Unix socket pair, blocking read/write, one CPU";

/// One way of timing round trips for about so many seconds.
type RoundTrips = fn(f64) -> Result<Latency>;

impl Parties {
    fn fan(&self, transport: &str, size: usize) -> Option<&FanRow> {
        self.fanout
            .iter()
            .find(|r| r.transport == transport && r.size == size)
    }

    fn p50(&self, name: &str) -> f64 {
        self.round_trips
            .iter()
            .find(|r| r.name == name)
            .map_or(f64::NAN, |r| r.latency.p50 as f64)
    }

    /// Whether the targets hold: per-subscriber fan-out throughput of svshm
    /// at least iceoryx2's at each size; svshm's spinning round trip no
    /// slower than iceoryx2's (p50); svshm's blocking round trip at most
    /// half the Unix socket's (p50).
    pub fn verdicts(&self) -> Vec<(String, bool)> {
        let mut v = Vec::new();
        for size in SIZES {
            if let (Some(s), Some(i)) = (self.fan("svshm", size), self.fan("iceoryx2", size)) {
                let ratio = s.msgs_per_s / i.msgs_per_s;
                v.push((
                    format!(
                        "fan-out 1→{FANOUT}, {}: per-subscriber throughput svshm ≥ iceoryx2: {:.2}×",
                        fmt_size(size as u64),
                        ratio
                    ),
                    ratio >= 1.0,
                ));
            }
        }
        let (spin, ice) = (self.p50(SPIN), self.p50(ICE));
        v.push((
            format!(
                "round trip p50, svshm service spinning ≤ iceoryx2 request-response: {:.2} µs vs {:.2} µs ({:.2}×)",
                spin / 1e3,
                ice / 1e3,
                spin / ice
            ),
            spin <= ice,
        ));
        for (block, unix, place) in [(BLOCK2, UNIX2, "two CPUs"), (BLOCK1, UNIX1, "one CPU")] {
            let (b, u) = (self.p50(block), self.p50(unix));
            v.push((
                format!(
                    "round trip p50 on {place}, svshm service with `Wait::Block` ≤ 0.5× the Unix socket's: {:.2} µs vs {:.2} µs ({:.2}×)",
                    b / 1e3,
                    u / 1e3,
                    b / u
                ),
                b <= 0.5 * u,
            ));
        }
        v
    }

    /// The markdown section: two tables and the verdicts.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Fan-out 1→{FANOUT}, every subscriber receiving every message (median of {} runs of about {} s):\n",
            self.runs, self.seconds
        );
        s.push_str("| message | transport | buffer per subscriber | per subscriber | vs iceoryx2 |\n|---:|---|---:|---:|---:|\n");
        for r in &self.fanout {
            let rate = if r.size >= 4096 {
                format!("{:.2} GB/s", r.bytes_per_s / 1e9)
            } else {
                format!("{:.2} M messages/s", r.msgs_per_s / 1e6)
            };
            let vs = self
                .fan("iceoryx2", r.size)
                .map_or(f64::NAN, |i| r.msgs_per_s / i.msgs_per_s);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {rate} | {vs:.2}× |",
                fmt_size(r.size as u64),
                r.transport,
                fmt_size(r.buffer as u64),
            );
        }
        let _ = writeln!(
            s,
            "\nRequest/response round trip, {RT_PAYLOAD} B each way (median of the runs' percentiles){}:\n",
            ["", "; one CPU only, nothing pinned"][usize::from(self.cpus < 2)]
        );
        s.push_str("| way | p50 | p99 | p99.9 | samples |\n|---|---:|---:|---:|---:|\n");
        for r in &self.round_trips {
            let _ = writeln!(
                s,
                "| {} | {:.2} µs | {:.2} µs | {:.2} µs | {} |",
                r.name,
                r.latency.p50 as f64 / 1e3,
                r.latency.p99 as f64 / 1e3,
                r.latency.p999 as f64 / 1e3,
                r.latency.n
            );
        }
        s.push('\n');
        for (text, met) in self.verdicts() {
            let _ = writeln!(s, "- {} {text}", if met { "**met**" } else { "**missed**" });
        }
        s
    }
}
