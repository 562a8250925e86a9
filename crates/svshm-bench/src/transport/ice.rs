//! iceoryx2 publish-subscribe of `[u8]` slices between two processes.
//!
//! The writer loans a slice sample (`loan_slice_uninit`), writes its buffer
//! into it in place and sends it. `iceoryx2` (copy): the reader receives a
//! sample and copies the payload out into its buffer. `iceoryx2-zc`
//! (zero-copy, the counterpart of `svshm-zc`): the same writer, and a reader
//! that checks the payload where it lies in the sample ([`Rx::recv_in_place`])
//! and copies nothing out; which reader runs is chosen by the roles through
//! [`super::Kind::reads_in_place`]. The service is
//! configured for lossless transfer (no safe overflow, publisher retries until
//! delivered), one publisher, one subscriber and a subscriber queue of
//! `depth` samples. Spin mode busy-polls `receive()`. Block mode pairs the
//! publish-subscribe service with an event service: the writer notifies after
//! each send, the reader waits on its listener when nothing is there — the
//! way iceoryx2 applications block.
//!
//! Every run uses its own file prefix, so the driver can remove whatever
//! iceoryx2 leaves in /dev/shm and /tmp/iceoryx2 ([`cleanup`]).

use super::{Rx, Tx, Wait};
use anyhow::{Result, anyhow, bail};
use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSubFactory;
use std::time::{Duration, Instant};

/// How long an endpoint waits for its peer before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a loan or receive may stall before the run is declared hung.
const STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Adaptive wait: poll this long before sleeping on the listener, as long as
/// svshm's Adaptive spins, so that the two are compared on equal terms.
const ADAPTIVE_SPIN: Duration = svshm_channel::DEFAULT_SPIN;

type PubSub = PubSubFactory<ipc::Service, [u8], ()>;

// Field order is drop order: services before the node that made them.
struct Common {
    service: PubSub,
    events: Option<iceoryx2::service::port_factory::event::PortFactory<ipc::Service>>,
    _node: Node<ipc::Service>,
}

fn open_common(service: &str, prefix: &str, depth: usize, wait: Wait) -> Result<Common> {
    set_log_level(LogLevel::Error);
    let mut config = Config::default();
    config.global.prefix = FileName::new(prefix.as_bytes())
        .map_err(|e| anyhow!("iceoryx2 prefix {prefix:?}: {e:?}"))?;
    let node = NodeBuilder::new()
        .config(&config)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .map_err(|e| anyhow!("iceoryx2 node: {e:?}"))?;
    let name: ServiceName = service
        .try_into()
        .map_err(|e| anyhow!("iceoryx2 service name {service:?}: {e:?}"))?;
    let start = Instant::now();
    // Both processes open-or-create; one may see the other's half-made service.
    let svc = loop {
        match node
            .service_builder(&name)
            .publish_subscribe::<[u8]>()
            .max_publishers(1)
            .max_subscribers(1)
            .max_nodes(2)
            .history_size(0)
            .subscriber_max_buffer_size(depth)
            .subscriber_max_borrowed_samples(1)
            .enable_safe_overflow(false)
            .open_or_create()
        {
            Ok(s) => break s,
            Err(e) if start.elapsed() < CONNECT_TIMEOUT => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => bail!("iceoryx2 publish-subscribe service {service}: {e:?}"),
        }
    };
    let events = if wait != Wait::Spin {
        let ev_name: ServiceName = format!("{service}/ev")
            .as_str()
            .try_into()
            .map_err(|e| anyhow!("iceoryx2 event name: {e:?}"))?;
        let start = Instant::now();
        Some(loop {
            match node
                .service_builder(&ev_name)
                .event()
                .max_nodes(2)
                .open_or_create()
            {
                Ok(s) => break s,
                Err(_) if start.elapsed() < CONNECT_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => bail!("iceoryx2 event service {service}/ev: {e:?}"),
            }
        })
    } else {
        None
    };
    Ok(Common {
        service: svc,
        events,
        _node: node,
    })
}

/// Publisher end.
pub struct IceTx {
    publisher: Publisher<ipc::Service, [u8], ()>,
    notifier: Option<Notifier<ipc::Service>>,
    warned: bool,
    // Dropped last: ports first, then services, then the node.
    _common: Common,
}

impl IceTx {
    /// Opens (or creates) the service and waits until the subscriber is there.
    pub fn open(
        service: &str,
        prefix: &str,
        max_len: usize,
        depth: usize,
        wait: Wait,
    ) -> Result<IceTx> {
        let common = open_common(service, prefix, depth, wait)?;
        let publisher = common
            .service
            .publisher_builder()
            .initial_max_slice_len(max_len)
            .max_loaned_samples(1)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(|e| anyhow!("iceoryx2 publisher: {e:?}"))?;
        let notifier = match &common.events {
            Some(ev) => Some(
                ev.notifier_builder()
                    .create()
                    .map_err(|e| anyhow!("iceoryx2 notifier: {e:?}"))?,
            ),
            None => None,
        };
        let start = Instant::now();
        while common.service.dynamic_config().number_of_subscribers() < 1 {
            if start.elapsed() > CONNECT_TIMEOUT {
                bail!("iceoryx2: no subscriber on {service} after {CONNECT_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        if let Some(ev) = &common.events {
            while ev.dynamic_config().number_of_listeners() < 1 {
                if start.elapsed() > CONNECT_TIMEOUT {
                    bail!("iceoryx2: no listener on {service}/ev after {CONNECT_TIMEOUT:?}");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        publisher
            .update_connections()
            .map_err(|e| anyhow!("iceoryx2 connect publisher: {e:?}"))?;
        Ok(IceTx {
            publisher,
            notifier,
            warned: false,
            _common: common,
        })
    }
}

impl Tx for IceTx {
    fn send(&mut self, data: &[u8]) -> Result<()> {
        let mut since: Option<Instant> = None;
        loop {
            let sample = match self.publisher.loan_slice_uninit(data.len()) {
                Ok(s) => s,
                // All samples are in flight: the subscriber still holds them.
                Err(e) => {
                    let t = *since.get_or_insert_with(Instant::now);
                    if t.elapsed() > STALL_TIMEOUT {
                        bail!("iceoryx2 loan of {} bytes: {e:?}", data.len());
                    }
                    std::hint::spin_loop();
                    continue;
                }
            };
            let sample = sample.write_from_slice(data);
            let recipients = sample.send().map_err(|e| anyhow!("iceoryx2 send: {e:?}"))?;
            if recipients == 0 {
                // The connection to the subscriber is not (yet) established:
                // the sample reached no one. Send it again rather than lose it.
                let t = *since.get_or_insert_with(Instant::now);
                if t.elapsed() > STALL_TIMEOUT {
                    bail!("iceoryx2: samples reach no subscriber for {STALL_TIMEOUT:?}");
                }
                if !self.warned {
                    self.warned = true;
                    eprintln!("iceoryx2: a sample reached no subscriber; sending it again");
                }
                let _ = self.publisher.update_connections();
                continue;
            }
            break;
        }
        if let Some(n) = &self.notifier {
            n.notify().map_err(|e| anyhow!("iceoryx2 notify: {e:?}"))?;
        }
        Ok(())
    }
}

/// Subscriber end.
pub struct IceRx {
    subscriber: Subscriber<ipc::Service, [u8], ()>,
    listener: Option<Listener<ipc::Service>>,
    /// How long to poll before sleeping on the listener (adaptive: as long as
    /// svshm's Adaptive spins, `DEFAULT_SPIN`; block: not at all).
    spin_for: Duration,
    _common: Common,
}

impl IceRx {
    /// Opens (or creates) the service and subscribes.
    pub fn open(
        service: &str,
        prefix: &str,
        _max_len: usize,
        depth: usize,
        wait: Wait,
    ) -> Result<IceRx> {
        let common = open_common(service, prefix, depth, wait)?;
        let subscriber = common
            .service
            .subscriber_builder()
            .buffer_size(depth)
            .create()
            .map_err(|e| anyhow!("iceoryx2 subscriber: {e:?}"))?;
        let listener = match &common.events {
            Some(ev) => Some(
                ev.listener_builder()
                    .create()
                    .map_err(|e| anyhow!("iceoryx2 listener: {e:?}"))?,
            ),
            None => None,
        };
        Ok(IceRx {
            subscriber,
            listener,
            spin_for: if wait == Wait::Adaptive {
                ADAPTIVE_SPIN
            } else {
                Duration::ZERO
            },
            _common: common,
        })
    }

    fn next(&mut self, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let mut since: Option<Instant> = None;
        loop {
            if let Some(sample) = self
                .subscriber
                .receive()
                .map_err(|e| anyhow!("iceoryx2 receive: {e:?}"))?
            {
                let p = sample.payload();
                if p.len() != len {
                    bail!("iceoryx2: received {} bytes, expected {len}", p.len());
                }
                f(p);
                return Ok(());
            }
            let t = *since.get_or_insert_with(Instant::now);
            match &self.listener {
                Some(_) if t.elapsed() < self.spin_for => std::hint::spin_loop(),
                Some(l) => {
                    l.timed_wait(|_| {}, STALL_TIMEOUT)
                        .map_err(|e| anyhow!("iceoryx2 listener wait: {e:?}"))?;
                }
                None => std::hint::spin_loop(),
            }
            if t.elapsed() > STALL_TIMEOUT {
                bail!("iceoryx2: nothing received for {STALL_TIMEOUT:?}");
            }
        }
    }
}

impl Rx for IceRx {
    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        let len = buf.len();
        self.next(len, &mut |p| buf.copy_from_slice(p))
    }

    fn recv_in_place(&mut self, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.next(len, f)
    }
}

/// Removes files iceoryx2 left under `prefix` in /dev/shm and /tmp/iceoryx2
/// (normally none: nodes clean up when dropped), then the /tmp/iceoryx2
/// directories if they are empty. Returns the paths it removed.
pub fn cleanup(prefix: &str) -> Vec<String> {
    fn walk(dir: &std::path::Path, prefix: &str, removed: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                if name.starts_with(prefix) {
                    if std::fs::remove_dir_all(&p).is_ok() {
                        removed.push(p.display().to_string());
                    }
                } else {
                    walk(&p, prefix, removed);
                }
            } else if name.starts_with(prefix) && std::fs::remove_file(&p).is_ok() {
                removed.push(p.display().to_string());
            }
        }
    }
    let mut removed = Vec::new();
    walk(std::path::Path::new("/dev/shm"), prefix, &mut removed);
    walk(std::path::Path::new("/tmp/iceoryx2"), prefix, &mut removed);
    removed
}

/// Removes the /tmp/iceoryx2 directory tree if it holds no files at all.
pub fn remove_empty_root() {
    fn prune(dir: &std::path::Path) -> bool {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return false;
        };
        let mut empty = true;
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                empty &= prune(&e.path());
            } else {
                empty = false;
            }
        }
        empty && std::fs::remove_dir(dir).is_ok()
    }
    prune(std::path::Path::new("/tmp/iceoryx2"));
}
