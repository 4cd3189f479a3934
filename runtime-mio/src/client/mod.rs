//! The client port: etcd's gRPC API over HTTP/2 (h2c with prior knowledge, or TLS with ALPN
//! `h2`), plus plain HTTP requests such as `GET /health`, `GET /metrics` and the JSON gateway
//! on the same port: over HTTP/1.1, or over HTTP/2 when the request is not gRPC (not a POST
//! with `content-type: application/grpc`), as curl and Go's HTTP client send over TLS. Both
//! reach the application as `CallEvent::Http`. Sans-async: h2's futures are polled by hand
//! from the mio loop; no tokio runtime exists.
//!
//! # Driving it from a mio loop
//!
//! 1. Create the `mio::Poll` and one `mio::Waker` (token `W`) shared as `Arc`. Pass the listener,
//!    a `token_base`, the registry and the waker to [`GrpcServer::new`], and any further
//!    listeners (up to [`LISTENERS_MAX`] in all, each plaintext or TLS) to
//!    [`GrpcServer::add_listener`]. The server registers its listeners from `token_base` and
//!    each connection in `[token_base + LISTENERS_MAX, token_base + TOKEN_SPAN)`; keep other
//!    tokens outside `[token_base, token_base + TOKEN_SPAN)`.
//! 2. For every mio event whose token [`GrpcServer::owns`], call [`GrpcServer::handle_event`].
//!    When the waker's token `W` fires, call [`GrpcServer::on_wake`] (the waker may be shared
//!    with other parts of the loop: `on_wake` is cheap when nothing is queued).
//! 3. Drain [`GrpcServer::poll_call`] until `None`, answering with
//!    [`GrpcServer::send_message`], [`GrpcServer::finish`] and [`GrpcServer::respond_http`] (or
//!    [`GrpcServer::start_http_stream`] and its chunks), at any time later, from the loop thread.
//! 4. At the end of the loop turn call [`GrpcServer::flush`]. `send_message`, `finish` and
//!    `respond_http` only queue: they mark the connection and fire the mio waker, so without
//!    `flush` the bytes go out one loop turn later (in `on_wake`). `flush` writes them now, and
//!    fires the waker if it left events for `poll_call`.
//!
//!    A loop that always flushes may call [`GrpcServer::begin_turn`] at the start of each turn:
//!    until that turn's `flush`, queuing fires no waker (a waker write per response, and the
//!    empty loop turn it causes, are most of what a small response costs beyond its own write).
//!
//! 5. Call [`GrpcServer::tick`] with the loop's `Instant` on every loop tick (a tenth of a
//!    second or so): it applies the handshake, idle and keep-alive limits (see `liveness.rs`)
//!    and resumes accepting where a full server left newcomers in the listen backlog. Without
//!    it no connection times out, and a full server takes no new connection (it evicts only
//!    connections a tick has seen).
//!
//! Sockets are registered once, readable and writable, edge-triggered; the server reads and
//! writes until `WouldBlock` and never re-registers.
//!
//! A unary call is `Opened`, `Message`, `HalfClosed`, answered by one `send_message` and
//! `finish(Status::ok())`. Streaming calls use the same events and methods.

mod admission;
mod authority;
mod call;
pub(crate) mod cert_name;
mod config;
mod conn;
mod events;
mod framing;
mod h2http;
mod h2io;
mod hpack;
mod http1;
mod huffman;
mod liveness;
mod open_files;
mod status;
pub mod tls;

#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use mio::net::TcpListener;
use mio::{Interest, Token};

pub use authority::fuzz_hpack;
pub use call::CallError;
pub use config::GrpcConfig;
pub use events::{CallEvent, CallId, HttpRequestId};
pub use open_files::{FDS_RESERVED, connections_max_for_open_files, open_files_max};
pub use status::{Code, Status, percent_decode};
pub use tls::TlsError;

use conn::{Conn, Drive};
use events::Events;
use h2io::WakeQueue;
use liveness::{CloseLog, Timeouts};

/// Tokens the server may use from `token_base`: its listeners, then one per connection.
pub const TOKEN_SPAN: usize = 1 << 20;
/// Listeners one server may have (etcd's `--listen-client-urls` takes a list).
pub const LISTENERS_MAX: usize = 16;

/// Rounds of woken connections per drain; more wait for the next wake, so one drain cannot
/// starve the loop.
const DRAIN_ROUNDS_MAX: usize = 64;

/// One listening socket, and whether its connections speak TLS.
#[derive(Debug)]
struct Listener {
    socket: TcpListener,
    local_addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// The gRPC/HTTP server of the client listeners.
#[derive(Debug)]
pub struct GrpcServer {
    listeners: Vec<Listener>,
    token_base: usize,
    conns: Vec<Option<Conn>>,
    free_slots: Vec<usize>,
    open_conns: usize,
    wake: Arc<WakeQueue>,
    woken: Vec<usize>,
    /// Between `begin_turn` and `flush`: the loop will flush, so queuing needs no waker.
    turn_open: bool,
    events: Events,
    config: GrpcConfig,
    timeouts: Timeouts,
    h2: h2::server::Builder,
    /// Grows at every accept and every tick: a connection's last activity in this order
    /// decides which one is evicted first.
    seq: u64,
    /// An accept ran out of file descriptors with nothing to evict: retried at the next tick,
    /// as the edge-triggered listener reports no connection that is already waiting.
    accept_blocked: bool,
    close_log: CloseLog,
}

impl GrpcServer {
    /// Serves `listener`: h2c and HTTP/1.1 when `tls` is `None`, else TLS (see
    /// [`tls::server_config`]).
    pub fn new(
        mut listener: TcpListener,
        token_base: usize,
        registry: &mio::Registry,
        waker: Arc<mio::Waker>,
        config: GrpcConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<GrpcServer> {
        assert!(
            config.connections_max() < TOKEN_SPAN - LISTENERS_MAX,
            "connections_max must leave the listeners their tokens"
        );
        assert!(
            token_base.checked_add(TOKEN_SPAN).is_some(),
            "token_base too large"
        );
        let local_addr = listener.local_addr()?;
        registry.register(&mut listener, Token(token_base), Interest::READABLE)?;
        let first = Listener {
            socket: listener,
            local_addr,
            tls,
        };
        let mut h2 = h2::server::Builder::new();
        h2.initial_window_size(config.stream_window_bytes())
            .initial_connection_window_size(config.connection_window_bytes())
            .max_concurrent_streams(config.streams_per_connection_max())
            .max_frame_size(config.frame_bytes_max())
            .max_header_list_size(config.header_list_bytes_max())
            .max_send_buffer_size(config.stream_send_buffer_bytes_max());
        Ok(GrpcServer {
            listeners: vec![first],
            token_base,
            conns: Vec::new(),
            free_slots: Vec::new(),
            open_conns: 0,
            wake: Arc::new(WakeQueue::new(waker)),
            woken: Vec::new(),
            turn_open: false,
            events: Events::new(
                config.pending_events_max(),
                config.pending_event_bytes_max(),
            ),
            timeouts: Timeouts::new(&config),
            config,
            h2,
            seq: 0,
            accept_blocked: false,
            close_log: CloseLog::default(),
        })
    }

    /// Serves `listener` too: h2c and HTTP/1.1 when `tls` is `None`, else TLS. Returns its
    /// address; fails when the server has [`LISTENERS_MAX`] already.
    pub fn add_listener(
        &mut self,
        mut listener: TcpListener,
        registry: &mio::Registry,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<SocketAddr> {
        let index = self.listeners.len();
        if index == LISTENERS_MAX {
            return Err(io::Error::other(format!(
                "at most {LISTENERS_MAX} listeners per server"
            )));
        }
        let local_addr = listener.local_addr()?;
        registry.register(
            &mut listener,
            Token(self.token_base + index),
            Interest::READABLE,
        )?;
        self.listeners.push(Listener {
            socket: listener,
            local_addr,
            tls,
        });
        Ok(local_addr)
    }

    /// The first listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].local_addr
    }

    /// Every listener's address, in the order they were added.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.local_addr).collect()
    }

    /// Whether `token` is the listener's or a connection's.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.token_base && token.0 - self.token_base < TOKEN_SPAN
    }

    /// Open connections, gRPC and HTTP/1.
    pub fn connection_count(&self) -> usize {
        self.open_conns
    }

    /// Handles a mio event for a token this server [`owns`](Self::owns).
    pub fn handle_event(&mut self, registry: &mio::Registry, event: &mio::event::Event) {
        let token = event.token().0;
        // Wakes from h2 during this drive are picked up by the drain below, not by the loop.
        self.wake.begin_drain();
        assert!(
            self.owns(event.token()),
            "an event for another server's token"
        );
        let index = token - self.token_base;
        if index < LISTENERS_MAX {
            self.accept(registry, index);
        } else if let Some(slot) = token.checked_sub(self.token_base + LISTENERS_MAX) {
            // Errors and hang-ups count as both: the next read or write reports them.
            let failed = event.is_error() || event.is_read_closed() || event.is_write_closed();
            if let Some(conn) = self.conn_mut(slot) {
                conn.on_socket_event(event.is_readable() || failed, event.is_writable() || failed);
            }
            self.drive(slot);
        }
        self.drain();
    }

    /// Polls the connections whose wakers fired (h2 progress, or queued responses).
    pub fn on_wake(&mut self, _registry: &mio::Registry) {
        self.drain();
    }

    /// Promises a [`flush`](Self::flush) before the loop polls again; see the module docs.
    pub fn begin_turn(&mut self) {
        self.turn_open = true;
        self.wake.begin_drain();
    }

    /// Writes what `send_message`, `finish` and `respond_http` queued; see the module docs.
    pub fn flush(&mut self, _registry: &mio::Registry) {
        self.turn_open = false;
        self.drain();
        if !self.events.is_empty() {
            // Wake the loop so it comes back for them instead of blocking.
            self.wake_loop();
        }
    }

    /// The next event, oldest first.
    #[must_use]
    pub fn poll_call(&mut self) -> Option<CallEvent> {
        let event = self.events.pop();
        if self.events.has_room() && !self.events.stalled.is_empty() {
            for slot in std::mem::take(&mut self.events.stalled) {
                if let Some(conn) = self.conn_mut(slot) {
                    conn.unstall();
                }
            }
        }
        event
    }

    /// A request header (gRPC metadata) of an open call, e.g. etcd's `token` or `hasleader`;
    /// `None` when absent, not visible ASCII, or the call is unknown.
    pub fn request_header(&self, call: CallId, name: &str) -> Option<&str> {
        let conn = self.conns.get(call.slot()).and_then(Option::as_ref)?;
        conn.call(call)?.header(name)
    }

    /// The common name of the client certificate the call's connection presented and TLS
    /// verified (`--client-cert-auth`), if any.
    pub fn client_common_name(&self, call: CallId) -> Option<&str> {
        let conn = self.conns.get(call.slot()).and_then(Option::as_ref)?;
        conn.call(call)?;
        conn.client_common_name()
    }

    /// Queues one response message (the 5-byte prefix is added here). See
    /// [`GrpcConfig::pending_send_bytes_max`] for the bound.
    pub fn send_message(&mut self, call: CallId, message: Bytes) -> Result<(), CallError> {
        let pending_max = self.config.pending_send_bytes_max();
        let conn = self.conns.get_mut(call.slot()).and_then(Option::as_mut);
        let conn = conn.ok_or(CallError::UnknownCall)?;
        conn.call_mut(call)
            .ok_or(CallError::UnknownCall)?
            .queue(&message, pending_max)?;
        conn.on_response();
        conn.wake();
        Ok(())
    }

    /// Ends the call with `status` after the queued messages; `Status::ok()` is
    /// `grpc-status: 0`. Unknown or already ended calls are ignored.
    pub fn finish(&mut self, call: CallId, status: Status) {
        let Some(conn) = self.conns.get_mut(call.slot()).and_then(Option::as_mut) else {
            return;
        };
        if let Some(c) = conn.call_mut(call) {
            if c.finish(status) {
                self.events.live_calls -= 1;
                conn.on_response();
                conn.wake();
            }
        }
    }

    /// Answers an HTTP/1.1 request; the connection closes once the response is written.
    pub fn respond_http(
        &mut self,
        request: HttpRequestId,
        status: u16,
        content_type: &str,
        body: Bytes,
    ) {
        if let Some(conn) = self.conn_mut(request.slot()) {
            conn.on_response();
            conn.respond_http(request, status, content_type, &body);
        }
    }

    /// Answers an HTTP/1.1 request with a chunked stream: feed it with `send_http_chunk`, end
    /// it with `end_http_stream`. A client that hangs up ends it too (`Cancelled` for
    /// `request.as_call_id()`).
    pub fn start_http_stream(&mut self, request: HttpRequestId, status: u16, content_type: &str) {
        if let Some(conn) = self.conn_mut(request.slot()) {
            conn.start_http_stream(request, status, content_type);
        }
    }

    /// Queues one chunk of a stream. False when the stream is gone, or when its client has
    /// left `pending_send_bytes_max` bytes unread: the connection is then closed and the
    /// application hears `Cancelled`.
    pub fn send_http_chunk(&mut self, request: HttpRequestId, data: &[u8]) -> bool {
        let pending_bytes_max = self.config.pending_send_bytes_max();
        self.conn_mut(request.slot())
            .is_some_and(|conn| conn.push_http_chunk(request, data, pending_bytes_max))
    }

    /// Ends a stream begun with `start_http_stream`; the connection closes once it is written.
    pub fn end_http_stream(&mut self, request: HttpRequestId) {
        if let Some(conn) = self.conn_mut(request.slot()) {
            conn.end_http_stream(request);
        }
    }

    fn conn_mut(&mut self, slot: usize) -> Option<&mut Conn> {
        self.conns.get_mut(slot).and_then(Option::as_mut)
    }

    fn wake_loop(&self) {
        self.wake.notify_loop();
    }

    fn drive(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if conn.drive(&mut self.events, &self.config, &self.h2) == Drive::Closed {
            // Dropping the socket closes it, which also removes it from epoll.
            self.conns[slot] = None;
            self.free_slots.push(slot);
            self.open_conns -= 1;
        }
    }

    fn drain(&mut self) {
        self.wake.begin_drain();
        for _ in 0..DRAIN_ROUNDS_MAX {
            let mut woken = std::mem::take(&mut self.woken);
            self.wake.take(&mut woken);
            if woken.is_empty() {
                self.woken = woken;
                break;
            }
            for &slot in &woken {
                self.drive(slot);
            }
            woken.clear();
            self.woken = woken;
        }
        // Slots still queued (rounds ran out) make end_drain wake the loop to come back.
        if !self.turn_open {
            self.wake.end_drain();
        }
    }
}
