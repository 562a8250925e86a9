//! Services: request/response between many clients and one server, each
//! caller identified by the kernel, not by what it says.
//!
//! A [`Server`] binds a name; a [`Client`] connects to it. Each connection
//! is two message channels the *client* creates — requests (client → server)
//! and responses (server → client) — whose ids it posts in the server's
//! listener segment. The server takes the caller's uid and pid from the
//! kernel's record of those segments (their creator: `shm_perm.cuid` and
//! `shm_cpid`), joins them with every check a channel's joiner makes, and
//! hands out a [`Connection`] whose [`caller`](Connection::caller) cannot be
//! forged: bytes a client writes into its requests change nothing about it.
//!
//! Deaths are events, as Binder's death notices are: a client that dies
//! ends its connection with [`Error::PeerDied`] on the server's next receive
//! (its pending requests are dropped with it), and a server that dies fails
//! every call in flight with [`Error::PeerDied`]. Once both ends of a
//! connection are attached its segments are marked for destruction, so no
//! crash leaves them behind; a dead server's listener is reclaimed by the
//! next [`Server::bind`] or client that finds it, or by `svshm gc`.

use crate::codec::{Decode, Encode};
use crate::error::{Error, Result, Role};
use crate::header::KIND_MESSAGES;
use crate::message::{Receiver, Sender};
use crate::rendezvous::{Endpoint, Options, deadline_after, establish};
use crate::sync::Ordering;
use crate::try_error::TryRecvError;
use core::fmt;
use core::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod listener;

pub(crate) use listener::counters as listener_counters;
use listener::{Listener, Post};

/// Who called: the uid and pid of the process that created the connection's
/// segments, as the kernel recorded them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The caller's user id (the segments' creator uid).
    pub uid: u32,
    /// The caller's process id in our pid namespace (the segments' creator
    /// pid; 0 if that process is not visible from here).
    pub pid: i32,
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid {} pid {}", self.uid, self.pid)
    }
}

/// The serving end of a service: binds a name, accepts connections.
///
/// ```
/// use svshm_channel::{Client, Endpoint, Options, Server};
/// let name = format!("doc-service-{}", std::process::id());
/// let mut server = Server::bind(&Endpoint::name(name.as_str()), &Options::new())?;
/// let n2 = name.clone();
/// let client = std::thread::spawn(move || -> svshm_channel::Result<Vec<u8>> {
///     // Normally another process.
///     let mut c = Client::connect(&Endpoint::name(n2), &Options::new())?;
///     c.call(b"ping")
/// });
/// let mut conn = server.accept()?;
/// assert_eq!(conn.caller().uid, svshm::euid());     // from the kernel, not the client
/// let req = conn.recv()?.expect("a request");
/// assert_eq!(req, b"ping");
/// conn.reply(b"pong")?;
/// assert_eq!(client.join().unwrap()?, b"pong");
/// # Ok::<(), svshm_channel::Error>(())
/// ```
pub struct Server<Req: ?Sized = [u8], Resp: ?Sized = [u8]> {
    listener: Arc<Listener>,
    opts: Options,
    name: String,
    /// When each claimed-but-unposted slot was first seen.
    stale: Vec<Option<Instant>>,
    _types: PhantomData<fn(&Resp) -> *const Req>,
}

impl<Req: ?Sized, Resp: ?Sized> fmt::Debug for Server<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("segment_id", &self.listener.segment_id())
            .finish_non_exhaustive()
    }
}

impl Server<[u8], [u8]> {
    /// Binds a byte-message service at `endpoint` (a name, key or path; a
    /// name's key is per user, apart from channel names). See
    /// [`bind_typed`](Self::bind_typed).
    ///
    /// # Errors
    ///
    /// As [`bind_typed`](Self::bind_typed).
    pub fn bind(endpoint: &Endpoint, options: &Options) -> Result<Server> {
        Server::bind_typed(endpoint, options)
    }
}

impl<Req: ?Sized + Decode, Resp: ?Sized + Encode> Server<Req, Resp> {
    /// Binds a service of `Req` requests and `Resp` responses. The options'
    /// mode says who may call (0600 by default: this user only); clients
    /// must give the same mode. Connections get the options' capacity and
    /// maximum message.
    ///
    /// # Errors
    ///
    /// [`Error::InUse`] if a live server holds the name;
    /// [`Error::Foreign`]/[`Error::NotOurs`]/[`Error::Mismatch`] if something
    /// else sits under its key (never removed); [`Error::Sys`] if the system
    /// refuses the segment. A dead server's listener is reclaimed.
    pub fn bind_typed(endpoint: &Endpoint, options: &Options) -> Result<Server<Req, Resp>> {
        let key = listener::key_of(endpoint, options)?.ok_or_else(|| {
            Error::Invalid(format!(
                "a service needs a name, key or path, not a {endpoint}"
            ))
        })?;
        let name = endpoint.label();
        for _ in 0..8 {
            if let Some(l) = Listener::create(key, options, &name)? {
                return Ok(Server {
                    listener: Arc::new(l),
                    opts: options.clone(),
                    name,
                    stale: vec![None; listener::SLOTS],
                    _types: PhantomData,
                });
            }
            // Something is there: a live server, a dead one's listener, or
            // not ours at all.
            let Some(old) = Listener::open(key, options)? else {
                continue; // gone meanwhile, or being created: try again
            };
            if old.server_alive() {
                return Err(Error::InUse {
                    id: old.segment_id(),
                    role: Role::Writer,
                    pid: old.server().map_or(0, |p| p.pid),
                });
            }
            reclaim_listener(old.segment_id())?;
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(Error::Invalid(format!(
            "{endpoint} could not be bound: its key stays taken by a segment that cannot be reclaimed"
        )))
    }

    /// Waits for the next connection.
    ///
    /// # Errors
    ///
    /// Only what the system reports; posts that fail the checks (a client
    /// that died, segments not its own, not channels) are dropped silently.
    pub fn accept(&mut self) -> Result<Connection<Req, Resp>> {
        loop {
            if let Some(c) = self.accept_deadline(None)? {
                return Ok(c);
            }
        }
    }

    /// The next connection if a client is waiting, without waiting.
    ///
    /// # Errors
    ///
    /// As [`accept`](Self::accept).
    pub fn try_accept(&mut self) -> Result<Option<Connection<Req, Resp>>> {
        self.accept_deadline(Some(Instant::now()))
    }

    /// Waits at most `timeout` for the next connection (`Ok(None)`: none came).
    ///
    /// # Errors
    ///
    /// As [`accept`](Self::accept).
    pub fn accept_timeout(&mut self, timeout: Duration) -> Result<Option<Connection<Req, Resp>>> {
        self.accept_deadline(deadline_after(timeout))
    }

    fn accept_deadline(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<Connection<Req, Resp>>> {
        loop {
            while let Some(post) = self.listener.take(&mut self.stale) {
                if let Some(c) = self.join(post) {
                    return Ok(Some(c));
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            // Announce, re-check, sleep: a client's post wakes the word only
            // if it is set (see `Listener::post`).
            let word = self.listener.wait_word();
            word.store(1, Ordering::Relaxed);
            // SYNC: pairs with the fence in `Listener::post`: either the
            // client sees our flag and wakes us, or we see its post.
            crate::sync::fence(Ordering::SeqCst);
            if self.listener.has_post() {
                word.store(0, Ordering::Relaxed);
                continue;
            }
            let slice = deadline.map_or(crate::ring::POLL_SLICE * 50, |d| d - now);
            crate::futex::wait(word, 1, slice.min(Duration::from_secs(1)));
        }
    }

    /// Joins a posted connection: both segments made by one process, which
    /// is the caller. `None` if the post fails any check.
    fn join(&mut self, post: Post) -> Option<Connection<Req, Resp>> {
        let req_info = svshm::Segment::from_id(post.req).stat().ok()?;
        let resp_info = svshm::Segment::from_id(post.resp).stat().ok()?;
        if post.req == post.resp
            || req_info.creator_uid != resp_info.creator_uid
            || req_info.creator_pid != resp_info.creator_pid
        {
            return None;
        }
        let caller = Caller {
            uid: req_info.creator_uid,
            pid: req_info.creator_pid,
        };
        // The channels' joiner checks: owned and created by the caller, mode
        // no wider than ours, our header, the caller's slot claimed.
        let opts = self
            .opts
            .clone()
            .owner(caller.uid)
            .timeout(Some(Duration::from_secs(2)));
        let deadline = deadline_after(Duration::from_secs(2));
        // Both, whatever the first says: joining a dead caller's channel
        // removes it (nobody else knows its id), and so must the second.
        let rl = establish(&Endpoint::id(post.req), &opts, Role::Reader, KIND_MESSAGES);
        let wl = establish(&Endpoint::id(post.resp), &opts, Role::Writer, KIND_MESSAGES);
        let (mut rl, mut wl) = (rl.ok()?, wl.ok()?);
        rl.wait_for_peer(deadline, "a connection's requests").ok()?;
        wl.wait_for_peer(deadline, "a connection's responses")
            .ok()?;
        let requests = Receiver::from_link(rl).ok()?;
        let responses = Sender::from_link(wl).ok()?;
        if requests.creator().pid != caller.pid || responses.creator().pid != caller.pid {
            return None;
        }
        Some(Connection {
            requests,
            responses,
            caller,
            _counted: Counted::new(&self.listener),
        })
    }

    /// The listener segment's id.
    pub fn segment_id(&self) -> i32 {
        self.listener.segment_id()
    }

    /// Connections accepted and not yet dropped.
    pub fn connections(&self) -> usize {
        self.listener.connections().load(Ordering::Relaxed) as usize
    }
}

impl<Req: ?Sized, Resp: ?Sized> Drop for Server<Req, Resp> {
    fn drop(&mut self) {
        // No new clients: the name is free again once the listener goes.
        // Accepted connections live on, each on its own segments.
        self.listener.close();
        let _ = self.listener.segment().remove();
    }
}

/// One client's connection, on the server's side: its requests in, its
/// responses out, and who it is.
///
/// To serve many connections with one thread, wait on their
/// [`requests`](Self::requests) (and on [`Server`] for new ones) with a
/// [`Select`](crate::Select).
pub struct Connection<Req: ?Sized = [u8], Resp: ?Sized = [u8]> {
    requests: Receiver<Req>,
    responses: Sender<Resp>,
    caller: Caller,
    /// Counted in its listener's live connections while it lives.
    _counted: Counted,
}

impl<Req: ?Sized, Resp: ?Sized> fmt::Debug for Connection<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

impl<Req: ?Sized + Decode, Resp: ?Sized + Encode> Connection<Req, Resp> {
    /// Who called, as the kernel recorded it.
    pub fn caller(&self) -> Caller {
        self.caller
    }

    /// The next request: `Ok(None)` once the client closed the connection.
    ///
    /// # Errors
    ///
    /// [`Error::PeerDied`] once the client died (its unanswered requests are
    /// dropped with it), or as [`Receiver::recv`].
    pub fn recv(&mut self) -> Result<Option<Req::Output>> {
        self.requests.recv()
    }

    /// The next request if one is there, without waiting.
    ///
    /// # Errors
    ///
    /// As [`Receiver::try_recv`].
    pub fn try_recv(&mut self) -> core::result::Result<Req::Output, TryRecvError> {
        self.requests.try_recv()
    }

    /// Answers the oldest unanswered request.
    ///
    /// # Errors
    ///
    /// As [`Sender::send`]: [`Error::Closed`] or [`Error::PeerDied`] once the
    /// client is gone.
    pub fn reply(&mut self, response: &Resp::Input) -> Result<()> {
        self.responses.send(response)
    }

    /// The request receiver, for a [`Select`](crate::Select).
    pub fn requests(&self) -> &Receiver<Req> {
        &self.requests
    }

    /// Closes the connection cleanly: the client's next call fails with
    /// [`Error::Closed`].
    ///
    /// # Errors
    ///
    /// As [`Sender::close`].
    pub fn close(self) -> Result<()> {
        let Connection {
            requests,
            responses,
            ..
        } = self;
        drop(requests);
        responses.close()
    }
}

/// Counts a connection in its listener's live connections while it lives.
struct Counted(Arc<Listener>);

impl Counted {
    fn new(l: &Arc<Listener>) -> Counted {
        l.connections().fetch_add(1, Ordering::Relaxed);
        l.accepted().fetch_add(1, Ordering::Relaxed);
        Counted(Arc::clone(l))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let _ = self
            .0
            .connections()
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// The calling end of a service: [`call`](Self::call) sends a request and
/// waits for its response. See [`Server`] for an example.
pub struct Client<Req: ?Sized = [u8], Resp: ?Sized = [u8]> {
    requests: Sender<Req>,
    responses: Receiver<Resp>,
    /// The listener it connected through: reclaimed once the server is
    /// found dead, so a crashed server leaves nothing behind.
    listener_id: i32,
}

impl<Req: ?Sized, Resp: ?Sized> fmt::Debug for Client<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server_pid", &self.requests.peer_pid())
            .finish_non_exhaustive()
    }
}

impl Client<[u8], [u8]> {
    /// Connects to the byte-message service at `endpoint`. See
    /// [`connect_typed`](Self::connect_typed).
    ///
    /// # Errors
    ///
    /// As [`connect_typed`](Self::connect_typed).
    pub fn connect(endpoint: &Endpoint, options: &Options) -> Result<Client> {
        Client::connect_typed(endpoint, options)
    }
}

impl<Req: ?Sized + Encode, Resp: ?Sized + Decode> Client<Req, Resp> {
    /// Connects to the service at `endpoint`, waiting (up to the options'
    /// timeout) for it to be served and to accept: either side may start
    /// first. Give the options the server's mode, and for another user's
    /// service its uid as [`owner`](Options::owner).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if no live server accepted in time;
    /// [`Error::PeerDied`] if the server died while accepting us;
    /// [`Error::Foreign`]/[`Error::Mismatch`] if what sits under the name is
    /// not that user's service; [`Error::Sys`] if the system refuses.
    pub fn connect_typed(endpoint: &Endpoint, options: &Options) -> Result<Client<Req, Resp>> {
        let key = listener::key_of(endpoint, options)?.ok_or_else(|| {
            Error::Invalid(format!(
                "a service is found by name, key or path, not by a {endpoint}"
            ))
        })?;
        let deadline = options.timeout.and_then(deadline_after);
        let label = format!("service {}", endpoint.label());
        let mut backoff = Duration::from_micros(100);
        loop {
            match Listener::open(key, options)? {
                Some(l) if l.server_alive() => {
                    let mut rq =
                        establish(&Endpoint::private(), options, Role::Writer, KIND_MESSAGES)?;
                    let mut rs =
                        establish(&Endpoint::private(), options, Role::Reader, KIND_MESSAGES)?;
                    let post = Post {
                        req: rq.segment_id(),
                        resp: rs.segment_id(),
                    };
                    if l.post(post) {
                        let server = l.server().map_or(0, |p| p.pid);
                        let mut alive = || {
                            if l.server_alive() {
                                Ok(())
                            } else {
                                Err(Error::PeerDied {
                                    role: Role::Reader,
                                    pid: server,
                                })
                            }
                        };
                        rq.wait_for_peer_while(deadline, &label, &mut alive)?;
                        rs.wait_for_peer_while(deadline, &label, &mut alive)?;
                        return Ok(Client {
                            requests: Sender::from_link(rq)?,
                            responses: Receiver::from_link(rs)?,
                            listener_id: l.segment_id(),
                        });
                    }
                    // Every accept slot taken: wait for the server to catch up.
                }
                Some(l) => {
                    // A dead server's listener: reclaim it, and wait for a new one.
                    let id = l.segment_id();
                    drop(l);
                    reclaim_listener(id)?;
                }
                None => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout {
                    waiting_for: format!("{label} to be served and accept"),
                });
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(10));
        }
    }

    /// Sends `request` and waits for its response.
    ///
    /// # Errors
    ///
    /// [`Error::PeerDied`] if the server died (before or while answering),
    /// [`Error::Closed`] if it closed the connection, or as [`Sender::send`]
    /// and [`Receiver::recv`] (a response that is no valid `Resp`:
    /// [`Error::BadMessage`]).
    pub fn call(&mut self, request: &Req::Input) -> Result<Resp::Output> {
        self.send(request)?;
        match self.recv()? {
            Some(r) => Ok(r),
            None => Err(Error::Closed { role: Role::Writer }),
        }
    }

    /// Sends a request without waiting for its response (responses come in
    /// request order: [`recv`](Self::recv)).
    ///
    /// # Errors
    ///
    /// As [`Sender::send`].
    pub fn send(&mut self, request: &Req::Input) -> Result<()> {
        let r = self.requests.send(request);
        self.after(r)
    }

    /// Reclaims the listener of a server found dead (the kernel's record
    /// and the header must agree that it is abandoned), then passes `r` on.
    /// The server's death can be seen a moment before the kernel has
    /// detached all of its mappings, so the reclaim is retried for a short
    /// while (on this error path only).
    fn after<R>(&self, r: Result<R>) -> Result<R> {
        if let Err(Error::PeerDied { .. }) = &r {
            let until = Instant::now() + Duration::from_millis(200);
            loop {
                let gone = match crate::reclaim::reclaim(self.listener_id) {
                    Ok(Some(_)) => true,
                    // Gone already (a new server reclaimed it), or not ours
                    // to judge from here.
                    Err(Error::Sys(e)) => matches!(
                        e.kind(),
                        svshm::ErrorKind::InvalidId
                            | svshm::ErrorKind::Removed
                            | svshm::ErrorKind::PermissionDenied
                    ),
                    _ => false,
                };
                if gone || Instant::now() >= until {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        r
    }

    /// The next response, in request order: `Ok(None)` once the server
    /// closed the connection.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv`].
    pub fn recv(&mut self) -> Result<Option<Resp::Output>> {
        let r = self.responses.recv();
        self.after(r)
    }

    /// The response receiver, for a [`Select`](crate::Select).
    pub fn responses(&self) -> &Receiver<Resp> {
        &self.responses
    }

    /// The server's pid, as verified when it accepted.
    pub fn server_pid(&self) -> i32 {
        self.requests.peer_pid()
    }

    /// Closes the connection cleanly: the server's next receive gives
    /// `Ok(None)`.
    ///
    /// # Errors
    ///
    /// As [`Sender::close`].
    pub fn close(self) -> Result<()> {
        self.requests.close()
    }
}

impl<Req: ?Sized, Resp: ?Sized> crate::select::Waitable for Server<Req, Resp> {
    fn wait_word(&self) -> &crate::sync::AtomicU32 {
        self.listener.wait_word()
    }
    fn is_ready(&self, _need: usize) -> bool {
        self.listener.has_post()
    }
    fn peer_gone(&self) -> bool {
        false
    }
    fn has_exit_flag(&self) -> bool {
        // No peer to watch: nothing to probe.
        true
    }
}

/// Reclaims a dead server's listener found under the service's key. Gone
/// already is no error: when a server dies, its clients (and a new server's
/// bind) all find the listener at once, and all but the first find it
/// removed; the caller looks again and waits for the next server, as the
/// others do.
fn reclaim_listener(id: i32) -> Result<()> {
    match crate::reclaim::reclaim(id) {
        Err(Error::Sys(e))
            if matches!(
                e.kind(),
                svshm::ErrorKind::InvalidId | svshm::ErrorKind::Removed
            ) =>
        {
            Ok(())
        }
        r => r.map(drop),
    }
}
