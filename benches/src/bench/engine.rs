//! The load engine: worker threads, each driving a few h2 connections from one mio poll, and
//! on each connection a number of clients with one call in flight each (h2 multiplexes them).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use h2::client::{ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use http::{HeaderMap, Request};

use super::hist::Histogram;
use super::io::{self, H2Connection, Tls};
use super::watch::WatchSlot;
use super::workload::{Call, ClientState, Outcome, Workload};

/// A call that gets no answer in this long is counted as an error.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often every connection is looked at even without socket events (timeouts, gates).
const IDLE_TICK: Duration = Duration::from_millis(20);
/// Largest response message accepted.
const MESSAGE_BYTES_MAX: usize = 64 << 20;

/// State every worker shares.
#[derive(Debug)]
pub struct Shared {
    issued: AtomicU64,
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    total: Option<u64>,
    duration: Option<Duration>,
    deadline: std::sync::OnceLock<Instant>,
    /// Counted calls wait until this many watchers are created (0: no gate).
    gate_watchers: u64,
    pub watchers_created: AtomicU64,
    /// Set when the writer of the watch workload has finished.
    pub writer_done: AtomicBool,
    /// Puts the watch writer got acknowledged.
    pub puts_acked: AtomicU64,
    pub epoch: Instant,
}

#[derive(Debug)]
pub enum Claim {
    Ticket(u64),
    Wait,
    Finished,
}

impl Shared {
    pub fn new(
        total: Option<u64>,
        duration: Option<Duration>,
        gate_watchers: u64,
        epoch: Instant,
    ) -> Shared {
        Shared {
            issued: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            total,
            duration,
            deadline: std::sync::OnceLock::new(),
            gate_watchers,
            watchers_created: AtomicU64::new(0),
            writer_done: AtomicBool::new(false),
            puts_acked: AtomicU64::new(0),
            epoch,
        }
    }

    pub fn claim(&self) -> Claim {
        if self.deadline.get().is_some_and(|&d| Instant::now() >= d) {
            return Claim::Finished;
        }
        if self.watchers_created.load(Ordering::Acquire) < self.gate_watchers {
            return Claim::Wait;
        }
        let ticket = self.issued.fetch_add(1, Ordering::Relaxed);
        if self.total.is_some_and(|t| ticket >= t) {
            return Claim::Finished;
        }
        Claim::Ticket(ticket)
    }

    /// Starts the clock for --duration.
    pub fn start(&self, now: Instant) {
        if let Some(duration) = self.duration {
            let _ = self.deadline.set(now + duration);
        }
    }

    pub fn total(&self) -> Option<u64> {
        self.total
    }
}

/// What one worker measured.
#[derive(Debug, Default)]
pub struct Stats {
    pub latency: Histogram,
    pub ok: u64,
    pub conflicts: u64,
    pub errors: BTreeMap<String, u64>,
    pub regressions: u64,
    pub finished_at: Option<Instant>,
}

impl Stats {
    pub fn error(&mut self, shared: &Shared, what: impl Into<String>) {
        *self.errors.entry(what.into()).or_insert(0) += 1;
        shared.errors.fetch_add(1, Ordering::Relaxed);
        shared.completed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn merge(&mut self, other: Stats) {
        self.latency.merge(&other.latency);
        self.ok += other.ok;
        self.conflicts += other.conflicts;
        for (what, n) in other.errors {
            *self.errors.entry(what).or_insert(0) += n;
        }
        self.regressions += other.regressions;
        self.finished_at = self.finished_at.max(other.finished_at);
    }
}

/// Spaces out the calls on one connection for --rate.
#[derive(Debug)]
pub struct Pacer {
    interval: Option<Duration>,
    next: Instant,
    pub wake_at: Option<Instant>,
}

impl Pacer {
    pub fn new(rate_per_conn: f64) -> Pacer {
        Pacer {
            interval: (rate_per_conn > 0.0).then(|| Duration::from_secs_f64(1.0 / rate_per_conn)),
            next: Instant::now(),
            wake_at: None,
        }
    }

    /// Whether a call may start now; if not, remembers when one may.
    fn admit(&mut self, now: Instant) -> bool {
        let Some(interval) = self.interval else {
            return true;
        };
        if now < self.next {
            self.wake_at = Some(self.wake_at.map_or(self.next, |w| w.min(self.next)));
            return false;
        }
        // No catching up on a backlog of more than one interval: the rate is a ceiling.
        self.next = self.next.max(now - interval) + interval;
        true
    }
}

/// Everything a slot needs from its connection and worker while it advances.
#[derive(Debug)]
pub struct Env<'a> {
    pub shared: &'a Shared,
    pub workload: &'a Workload,
    pub stats: &'a mut Stats,
    pub pacer: &'a mut Pacer,
    pub scheme: &'static str,
    pub now: Instant,
}

/// The auth token every call carries (`--token`), set once before the workers start.
static TOKEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Sets the token of every call of this run; the first setting holds.
pub fn set_token(token: Option<String>) {
    let _ = TOKEN.set(token);
}

pub fn request(scheme: &str, path: &str) -> Request<()> {
    let mut builder = Request::post(format!("{scheme}://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(token) = TOKEN.get().and_then(Option::as_deref) {
        builder = builder.header("token", token);
    }
    builder.body(()).expect("a valid request")
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// An error message for a non-OK gRPC status, or None for OK.
pub fn grpc_error(headers: &HeaderMap) -> Option<String> {
    match header_str(headers, "grpc-status") {
        Some("0") => None,
        Some(code) => Some(format!(
            "grpc-status {code}: {}",
            header_str(headers, "grpc-message").unwrap_or("")
        )),
        None => Some("no grpc-status".into()),
    }
}

/// Takes one length-prefixed message off the front of `buf`, if it is all there.
pub fn take_message(buf: &mut BytesMut) -> Result<Option<Bytes>, String> {
    if buf.len() < 5 {
        return Ok(None);
    }
    if buf[0] != 0 {
        return Err("compressed response message".into());
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > MESSAGE_BYTES_MAX {
        return Err(format!("response message of {len} bytes"));
    }
    if buf.len() < 5 + len {
        return Ok(None);
    }
    buf.advance(5);
    Ok(Some(buf.split_to(len).freeze()))
}

enum Phase {
    Start,
    Ready(Call),
    Response(ResponseFuture, SendStream<Bytes>),
    Body(RecvStream, SendStream<Bytes>),
    Trailers(RecvStream, SendStream<Bytes>),
    Done,
}

/// One client: one call in flight at a time.
pub struct UnarySlot {
    send: SendRequest<Bytes>,
    state: ClientState,
    phase: Phase,
    path: &'static str,
    counted: bool,
    first_message: bool,
    started: Instant,
    buf: BytesMut,
}

impl std::fmt::Debug for UnarySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnarySlot")
            .field("path", &self.path)
            .finish()
    }
}

impl UnarySlot {
    pub fn new(send: SendRequest<Bytes>, client_id: u64) -> UnarySlot {
        UnarySlot {
            send,
            state: ClientState::new(client_id),
            phase: Phase::Start,
            path: "",
            counted: false,
            first_message: false,
            started: Instant::now(),
            buf: BytesMut::new(),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    pub fn regressions(&self) -> u64 {
        self.state.regressions
    }

    /// Fails the call in flight (the connection is gone) and stops.
    pub fn abort(&mut self, env: &mut Env<'_>, why: &str) {
        let in_flight = !matches!(self.phase, Phase::Start | Phase::Done | Phase::Ready(_));
        if in_flight && self.counted {
            env.stats.error(env.shared, why);
        }
        self.phase = Phase::Done;
    }

    fn fail(&mut self, env: &mut Env<'_>, why: String) {
        if self.counted {
            env.stats.error(env.shared, why);
        } else {
            // A failed set-up call: this client cannot go on.
            env.stats.error(env.shared, format!("set-up: {why}"));
            self.phase = Phase::Done;
            return;
        }
        self.phase = Phase::Start;
    }

    fn finish(&mut self, env: &mut Env<'_>, message: &[u8]) {
        let outcome = env.workload.check(&mut self.state, self.path, message);
        if !self.counted {
            match outcome {
                Outcome::Error(why) => self.fail(env, why),
                _ => self.phase = Phase::Start,
            }
            return;
        }
        match outcome {
            Outcome::Ok => env.stats.ok += 1,
            Outcome::Conflict => env.stats.conflicts += 1,
            Outcome::Error(why) => {
                self.fail(env, why);
                return;
            }
        }
        env.stats.latency.record(self.started.elapsed());
        env.shared.completed.fetch_add(1, Ordering::Relaxed);
        self.phase = Phase::Start;
    }

    /// Moves the call along as far as it goes without waiting; true if anything happened.
    pub fn advance(&mut self, env: &mut Env<'_>, cx: &mut Context<'_>) -> bool {
        let mut progressed = false;
        loop {
            let step = self.step(env, cx);
            if !step {
                return progressed;
            }
            progressed = true;
        }
    }

    fn step(&mut self, env: &mut Env<'_>, cx: &mut Context<'_>) -> bool {
        if !matches!(self.phase, Phase::Start | Phase::Done | Phase::Ready(_))
            && env.now - self.started > CALL_TIMEOUT
        {
            if let Phase::Response(_, send) | Phase::Body(_, send) | Phase::Trailers(_, send) =
                &mut self.phase
            {
                send.send_reset(h2::Reason::CANCEL);
            }
            self.fail(env, "timed out".into());
            return true;
        }
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Done => false,
            Phase::Start => {
                let call = if let Some(setup) = env.workload.setup(&self.state) {
                    setup
                } else {
                    if !env.pacer.admit(env.now) {
                        self.phase = Phase::Start;
                        return false;
                    }
                    match env.shared.claim() {
                        Claim::Ticket(ticket) => env.workload.call(&mut self.state, ticket),
                        Claim::Wait => {
                            self.phase = Phase::Start;
                            return false;
                        }
                        Claim::Finished => return true,
                    }
                };
                self.path = call.path;
                self.counted = call.counted;
                self.first_message = call.first_message;
                self.started = env.now;
                self.phase = Phase::Ready(call);
                true
            }
            Phase::Ready(call) => match self.send.poll_ready(cx) {
                Poll::Pending => {
                    self.phase = Phase::Ready(call);
                    false
                }
                Poll::Ready(Err(e)) => {
                    self.fail(env, format!("stream refused: {e}"));
                    true
                }
                Poll::Ready(Ok(())) => {
                    match self
                        .send
                        .send_request(request(env.scheme, call.path), false)
                    {
                        // KeepAliveOnce, as etcd's clientv3 does it, does not half-close: it
                        // reads one answer and then cancels the stream.
                        Ok((response, mut stream)) => {
                            match stream.send_data(call.body, !call.first_message) {
                                Ok(()) => self.phase = Phase::Response(response, stream),
                                Err(e) => self.fail(env, format!("send: {e}")),
                            }
                        }
                        Err(e) => self.fail(env, format!("send: {e}")),
                    }
                    true
                }
            },
            Phase::Response(mut response, stream) => match Pin::new(&mut response).poll(cx) {
                Poll::Pending => {
                    self.phase = Phase::Response(response, stream);
                    false
                }
                Poll::Ready(Err(e)) => {
                    self.fail(env, format!("response: {e}"));
                    true
                }
                Poll::Ready(Ok(response)) => {
                    let (parts, body) = response.into_parts();
                    if parts.status != http::StatusCode::OK {
                        self.fail(env, format!("http status {}", parts.status));
                    } else if parts.headers.contains_key("grpc-status") {
                        let why = grpc_error(&parts.headers)
                            .unwrap_or_else(|| "OK status without a message".into());
                        self.fail(env, why);
                    } else {
                        self.buf.clear();
                        self.phase = Phase::Body(body, stream);
                    }
                    true
                }
            },
            Phase::Body(body, stream) => self.poll_body(env, cx, body, stream),
            Phase::Trailers(mut body, stream) => match body.poll_trailers(cx) {
                Poll::Pending => {
                    self.phase = Phase::Trailers(body, stream);
                    false
                }
                Poll::Ready(Err(e)) => {
                    self.fail(env, format!("trailers: {e}"));
                    true
                }
                Poll::Ready(Ok(trailers)) => {
                    let trailers = trailers.unwrap_or_default();
                    if let Some(why) = grpc_error(&trailers) {
                        self.fail(env, why);
                        return true;
                    }
                    match take_message(&mut self.buf) {
                        Ok(Some(message)) => self.finish(env, &message),
                        Ok(None) => self.fail(env, "OK status without a message".into()),
                        Err(why) => self.fail(env, why),
                    }
                    true
                }
            },
        }
    }

    fn poll_body(
        &mut self,
        env: &mut Env<'_>,
        cx: &mut Context<'_>,
        mut body: RecvStream,
        mut stream: SendStream<Bytes>,
    ) -> bool {
        let mut progressed = false;
        loop {
            match body.poll_data(cx) {
                Poll::Pending => {
                    self.phase = Phase::Body(body, stream);
                    return progressed;
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    self.buf.extend_from_slice(&chunk);
                    progressed = true;
                    if self.first_message {
                        match take_message(&mut self.buf) {
                            Ok(Some(message)) => {
                                // KeepAliveOnce: one answer, then the stream is cancelled.
                                stream.send_reset(h2::Reason::CANCEL);
                                self.finish(env, &message);
                                return true;
                            }
                            Ok(None) => {}
                            Err(why) => {
                                self.fail(env, why);
                                return true;
                            }
                        }
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    self.fail(env, format!("response body: {e}"));
                    return true;
                }
                Poll::Ready(None) => {
                    self.phase = Phase::Trailers(body, stream);
                    return true;
                }
            }
        }
    }
}

#[derive(Debug)]
pub enum Slot {
    Unary(UnarySlot),
    Watch(WatchSlot),
}

/// One h2 connection and its clients.
#[derive(Debug)]
pub struct Conn {
    endpoint: String,
    h2: Option<H2Connection>,
    slots: Vec<Slot>,
    pacer: Pacer,
}

/// What a worker is given: per connection, its endpoint and what its slots are.
#[derive(Clone, Debug)]
pub struct ConnSpec {
    pub endpoint: String,
    /// Client ids of the unary clients on this connection.
    pub clients: Vec<u64>,
    /// Watchers per watch stream on this connection.
    pub watch_streams: Vec<usize>,
    pub rate_per_conn: f64,
}

impl Conn {
    fn finished(&self) -> bool {
        self.h2.is_none()
            || self.slots.iter().all(|s| match s {
                Slot::Unary(u) => u.is_done(),
                Slot::Watch(w) => w.is_done(),
            })
    }

    fn drive(
        &mut self,
        shared: &Shared,
        workload: &Workload,
        stats: &mut Stats,
        scheme: &'static str,
    ) {
        let mut cx = Context::from_waker(Waker::noop());
        self.pacer.wake_at = None;
        loop {
            let Some(h2) = self.h2.as_mut() else {
                return;
            };
            let closed = match Pin::new(h2).poll(&mut cx) {
                Poll::Pending => None,
                Poll::Ready(Ok(())) => Some("connection closed".to_string()),
                Poll::Ready(Err(e)) => Some(format!("connection: {e}")),
            };
            let mut env = Env {
                shared,
                workload,
                stats,
                pacer: &mut self.pacer,
                scheme,
                now: Instant::now(),
            };
            if let Some(why) = closed {
                let why = format!("{}: {why}", self.endpoint);
                for slot in &mut self.slots {
                    match slot {
                        Slot::Unary(u) => u.abort(&mut env, &why),
                        Slot::Watch(w) => w.abort(&mut env, &why),
                    }
                }
                self.h2 = None;
                return;
            }
            let mut progressed = false;
            for slot in &mut self.slots {
                progressed |= match slot {
                    Slot::Unary(u) => u.advance(&mut env, &mut cx),
                    Slot::Watch(w) => w.advance(&mut env, &mut cx),
                };
            }
            if !progressed {
                return;
            }
        }
    }

    fn close(&mut self, stats: &mut Stats) {
        for slot in &self.slots {
            stats.regressions += match slot {
                Slot::Unary(u) => u.regressions(),
                Slot::Watch(w) => w.regressions(),
            };
        }
        self.slots.clear();
        self.h2 = None;
    }
}

/// Runs one worker thread's connections to the end and returns what it measured.
pub fn run_worker(
    specs: Vec<ConnSpec>,
    tls: Tls,
    shared: Arc<Shared>,
    workload: Arc<Workload>,
    start: Arc<std::sync::Barrier>,
) -> Stats {
    let mut stats = Stats::default();
    let mut poll = match mio::Poll::new() {
        Ok(p) => p,
        Err(e) => {
            stats.error(&shared, format!("poll: {e}"));
            start.wait();
            return stats;
        }
    };
    let mut conns = Vec::with_capacity(specs.len());
    for (i, spec) in specs.into_iter().enumerate() {
        match io::connect(&spec.endpoint, &tls, poll.registry(), mio::Token(i)) {
            Ok((send, h2)) => {
                let mut slots: Vec<Slot> = spec
                    .clients
                    .iter()
                    .map(|&id| Slot::Unary(UnarySlot::new(send.clone(), id)))
                    .collect();
                slots.extend(
                    spec.watch_streams
                        .iter()
                        .map(|&n| Slot::Watch(WatchSlot::new(send.clone(), n))),
                );
                conns.push(Conn {
                    endpoint: spec.endpoint,
                    h2: Some(h2),
                    slots,
                    pacer: Pacer::new(spec.rate_per_conn),
                });
            }
            Err(why) => {
                for _ in 0..spec.clients.len().max(1) {
                    stats.error(&shared, why.clone());
                }
                conns.push(Conn {
                    endpoint: spec.endpoint,
                    h2: None,
                    slots: Vec::new(),
                    pacer: Pacer::new(0.0),
                });
            }
        }
    }
    start.wait();
    let scheme = tls.scheme();
    let mut events = mio::Events::with_capacity(256);
    let mut due: Vec<usize> = (0..conns.len()).collect();
    let mut last_sweep = Instant::now();
    loop {
        for &i in &due {
            let conn = &mut conns[i];
            if conn.h2.is_some() {
                conn.drive(&shared, &workload, &mut stats, scheme);
                if conn.finished() {
                    conn.close(&mut stats);
                    stats.finished_at = Some(Instant::now());
                }
            }
        }
        if conns.iter().all(|c| c.h2.is_none()) {
            for conn in &mut conns {
                conn.close(&mut stats);
            }
            break;
        }
        let now = Instant::now();
        let wake = conns.iter().filter_map(|c| c.pacer.wake_at).min();
        let timeout = wake
            .map_or(IDLE_TICK, |w| w.saturating_duration_since(now))
            .min(IDLE_TICK);
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                stats.error(&shared, format!("poll: {e}"));
                break;
            }
        }
        due.clear();
        due.extend(events.iter().map(|e| e.token().0));
        let now = Instant::now();
        if now - last_sweep >= IDLE_TICK {
            last_sweep = now;
            due.clear();
            due.extend(0..conns.len());
        } else {
            due.extend(
                conns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.pacer.wake_at.is_some_and(|w| w <= now))
                    .map(|(i, _)| i),
            );
            due.sort_unstable();
            due.dedup();
        }
    }
    stats
}
