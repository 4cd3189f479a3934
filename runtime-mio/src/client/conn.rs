//! One client connection: sniffing (and TLS), then HTTP/2 with its calls, or HTTP/1.1.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use h2::RecvStream;
use h2::server::{Connection, Handshake, SendResponse};
use http::{Method, Request, StatusCode};

use super::call::{Call, CallDrive, refuse};
use super::config::GrpcConfig;
use super::events::{CallEvent, CallId, Events, HttpRequestId};
use super::h2http::{EXCHANGES_PER_CONNECTION_MAX, H2Exchange};
use super::h2io::{ConnIo, ConnWaker, Readiness};
use super::http1::{H2_PREFACE, Http1Conn, Http1Step, Sniffed, sniff};
use super::liveness::Liveness;
use super::status::{Code, Status};
use super::tls::{ALPN_H2, ALPN_HTTP1};

/// Passes over a connection per drive; past it the connection wakes itself to go on later, so
/// one busy connection cannot hold the loop.
const DRIVE_PASSES_MAX: usize = 16;

enum Phase {
    Sniff {
        io: ConnIo,
        buf: Vec<u8>,
    },
    Handshake(Pin<Box<Handshake<ConnIo, Bytes>>>),
    H2(Box<Connection<ConnIo, Bytes>>),
    Http1 {
        conn: Box<Http1Conn>,
        request: Option<HttpRequestId>,
    },
    Closed,
}

impl std::fmt::Debug for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Phase::Sniff { .. } => "Sniff",
            Phase::Handshake(_) => "Handshake",
            Phase::H2(_) => "H2",
            Phase::Http1 { .. } => "Http1",
            Phase::Closed => "Closed",
        };
        f.write_str(name)
    }
}

/// Whether the connection lives on after a drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drive {
    Open,
    Closed,
}

#[derive(Debug)]
pub(crate) struct Conn {
    slot: usize,
    peer: SocketAddr,
    wake: Arc<ConnWaker>,
    waker: Waker,
    readiness: Arc<Readiness>,
    phase: Phase,
    calls: HashMap<u64, Call>,
    /// Plain HTTP requests on HTTP/2 streams (`/health`, the JSON gateway), by request id.
    exchanges: HashMap<u64, H2Exchange>,
    /// Already listed in `Events::stalled`.
    stalled: bool,
    liveness: Liveness,
    /// Keep-alive pings, once the connection speaks HTTP/2.
    ping_pong: Option<h2::PingPong>,
    /// The common name of the verified client certificate (HTTP/2 over TLS with client
    /// certificates), read once after the handshake.
    client_common_name: Option<String>,
}

impl Conn {
    /// A connection accepted when the server's sequence number was `accepted_seq`.
    pub(crate) fn new(
        slot: usize,
        peer: SocketAddr,
        io: ConnIo,
        wake: Arc<ConnWaker>,
        accepted_seq: u64,
    ) -> Conn {
        let waker = Waker::from(Arc::clone(&wake));
        Conn {
            slot,
            peer,
            wake,
            waker,
            readiness: io.readiness(),
            phase: Phase::Sniff {
                io,
                buf: Vec::with_capacity(H2_PREFACE.len()),
            },
            calls: HashMap::new(),
            exchanges: HashMap::new(),
            stalled: false,
            liveness: Liveness::new(accepted_seq),
            ping_pong: None,
            client_common_name: None,
        }
    }

    /// The common name of the client certificate the connection's TLS handshake verified.
    pub(crate) fn client_common_name(&self) -> Option<&str> {
        self.client_common_name.as_deref()
    }

    /// Records what mio reported for the socket, before the drive that follows.
    pub(crate) fn on_socket_event(&self, readable: bool, writable: bool) {
        self.readiness.mark(readable, writable);
    }

    /// Queues the connection for the next drain (and wakes the loop if none is running).
    pub(crate) fn wake(&self) {
        self.waker.wake_by_ref();
    }

    pub(crate) fn call(&self, call: CallId) -> Option<&Call> {
        self.calls.get(&call.raw())
    }

    pub(crate) fn call_mut(&mut self, call: CallId) -> Option<&mut Call> {
        self.calls.get_mut(&call.raw())
    }

    pub(crate) fn unstall(&mut self) {
        self.stalled = false;
        self.wake();
    }

    pub(crate) fn respond_http(
        &mut self,
        id: HttpRequestId,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) {
        if let Phase::Http1 { conn, request } = &mut self.phase {
            if *request == Some(id) {
                *request = None;
                conn.respond(status, content_type, body);
                self.wake();
            }
        } else if let Some(exchange) = self.exchanges.get_mut(&id.raw()) {
            exchange.respond(status, content_type, Bytes::copy_from_slice(body));
            self.wake();
        }
    }

    /// Starts a chunked answer to `id` (see [`Http1Conn::start_stream`]).
    pub(crate) fn start_http_stream(&mut self, id: HttpRequestId, status: u16, content_type: &str) {
        if let Phase::Http1 { conn, request } = &mut self.phase {
            if *request == Some(id) {
                conn.start_stream(status, content_type);
                self.wake();
            }
        } else if let Some(exchange) = self.exchanges.get_mut(&id.raw()) {
            exchange.start_stream(status, content_type);
            self.wake();
        }
    }

    /// False when `id` has no open stream here or the client is too far behind; the
    /// connection is then closed, and the application hears `Cancelled`.
    pub(crate) fn push_http_chunk(
        &mut self,
        id: HttpRequestId,
        data: &[u8],
        pending_bytes_max: usize,
    ) -> bool {
        let Phase::Http1 { conn, request } = &mut self.phase else {
            let Some(exchange) = self.exchanges.get_mut(&id.raw()) else {
                return false;
            };
            let queued = exchange.push_chunk(data, pending_bytes_max);
            self.wake();
            return queued;
        };
        if *request != Some(id) || !conn.is_streaming() {
            return false;
        }
        let queued = conn.push_chunk(data, pending_bytes_max);
        if !queued {
            // `request` stays: the close that follows reports it `Cancelled`.
            eprintln!(
                "grpc: {}: closing an HTTP stream: over {pending_bytes_max} bytes unread",
                self.peer
            );
            conn.end_stream();
        }
        self.wake();
        queued
    }

    /// Ends the stream answering `id`; the connection closes once it is written.
    pub(crate) fn end_http_stream(&mut self, id: HttpRequestId) {
        if let Phase::Http1 { conn, request } = &mut self.phase {
            if *request == Some(id) {
                *request = None;
                conn.end_stream();
                self.wake();
            }
        } else if let Some(exchange) = self.exchanges.get_mut(&id.raw()) {
            exchange.end_stream();
            self.wake();
        }
    }

    /// Ends every call (the application hears `Cancelled` for those it had not finished,
    /// and for an HTTP/1.1 request it had not answered or whose stream was still open).
    pub(crate) fn close(&mut self, events: &mut Events) {
        for (_, mut call) in self.calls.drain() {
            call.cancel(events);
        }
        for (_, mut exchange) in self.exchanges.drain() {
            exchange.cancel(events);
        }
        if let Phase::Http1 {
            request: Some(id), ..
        } = &self.phase
        {
            events.push(CallEvent::Cancelled {
                call: id.as_call_id(),
            });
        }
        self.phase = Phase::Closed;
    }

    pub(crate) fn drive(
        &mut self,
        events: &mut Events,
        config: &GrpcConfig,
        h2: &h2::server::Builder,
    ) -> Drive {
        self.wake.clear();
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..DRIVE_PASSES_MAX {
            let phase = std::mem::replace(&mut self.phase, Phase::Closed);
            let (next, again) = match phase {
                Phase::Sniff { io, buf } => self.drive_sniff(io, buf, config, h2),
                Phase::Handshake(mut handshake) => match handshake.as_mut().poll(&mut cx) {
                    Poll::Ready(Ok(mut conn)) => {
                        self.ping_pong = conn.ping_pong();
                        (Phase::H2(Box::new(conn)), true)
                    }
                    Poll::Ready(Err(e)) => {
                        eprintln!("grpc: {}: HTTP/2 handshake failed: {e}", self.peer);
                        (Phase::Closed, false)
                    }
                    Poll::Pending => (Phase::Handshake(handshake), false),
                },
                Phase::H2(mut conn) => {
                    let (open, again) = self.drive_h2(&mut conn, &mut cx, events, config);
                    (if open { Phase::H2(conn) } else { Phase::Closed }, again)
                }
                Phase::Http1 {
                    mut conn,
                    mut request,
                } => match conn.drive() {
                    Http1Step::Request(req) => {
                        let id = events.next_http(self.slot);
                        request = Some(id);
                        let event = CallEvent::Http {
                            request: id,
                            method: req.method,
                            path: req.path,
                            body: req.body,
                            token: req.token,
                        };
                        events.push(event);
                        (Phase::Http1 { conn, request }, false)
                    }
                    Http1Step::Idle => (Phase::Http1 { conn, request }, false),
                    Http1Step::Close => {
                        if let Some(id) = request {
                            events.push(CallEvent::Cancelled {
                                call: id.as_call_id(),
                            });
                        }
                        (Phase::Closed, false)
                    }
                },
                Phase::Closed => (Phase::Closed, false),
            };
            self.phase = next;
            if matches!(self.phase, Phase::Closed) {
                self.close(events);
                return Drive::Closed;
            }
            if !again {
                return Drive::Open;
            }
        }
        self.wake();
        Drive::Open
    }

    fn drive_sniff(
        &mut self,
        mut io: ConnIo,
        mut buf: Vec<u8>,
        config: &GrpcConfig,
        h2: &h2::server::Builder,
    ) -> (Phase, bool) {
        loop {
            let verdict = if io.is_tls() && !io.tls_handshaking() && buf.is_empty() {
                match io.alpn() {
                    Some(ALPN_H2) => Sniffed::H2,
                    Some(ALPN_HTTP1) => Sniffed::Http1,
                    _ => Sniffed::NeedMore,
                }
            } else if buf.is_empty() {
                Sniffed::NeedMore
            } else {
                sniff(&buf)
            };
            match verdict {
                Sniffed::H2 => {
                    self.client_common_name = io.client_common_name();
                    io.unread(Bytes::from(buf));
                    io.filter_h2();
                    return (Phase::Handshake(Box::pin(h2.handshake(io))), true);
                }
                Sniffed::Http1 => {
                    let mut conn = Box::new(Http1Conn::new(
                        io,
                        config.http1_request_bytes_max(),
                        config.http1_body_bytes_max(),
                    ));
                    conn.push_initial(&buf);
                    return (
                        Phase::Http1 {
                            conn,
                            request: None,
                        },
                        true,
                    );
                }
                Sniffed::Garbage => {
                    eprintln!(
                        "grpc: {}: closing connection: neither HTTP/2 nor HTTP/1 (starts {:?})",
                        self.peer,
                        String::from_utf8_lossy(&buf)
                    );
                    return (Phase::Closed, false);
                }
                Sniffed::NeedMore => {}
            }
            let mut chunk = [0u8; H2_PREFACE.len()];
            let want = H2_PREFACE.len() - buf.len().min(H2_PREFACE.len());
            match io.read_some(&mut chunk[..want.max(1)]) {
                Ok(0) => {
                    if !buf.is_empty() {
                        eprintln!(
                            "grpc: {}: closing connection: ended after {} bytes of a preface",
                            self.peer,
                            buf.len()
                        );
                    }
                    return (Phase::Closed, false);
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A TLS handshake that just finished may have settled the protocol.
                    if io.is_tls() && !io.tls_handshaking() && buf.is_empty() && io.alpn().is_some()
                    {
                        continue;
                    }
                    return (Phase::Sniff { io, buf }, false);
                }
                Err(e) => {
                    eprintln!("grpc: {}: closing connection: {e}", self.peer);
                    return (Phase::Closed, false);
                }
            }
        }
    }

    /// Returns (still open, drive again).
    fn drive_h2(
        &mut self,
        conn: &mut Connection<ConnIo, Bytes>,
        cx: &mut Context<'_>,
        events: &mut Events,
        config: &GrpcConfig,
    ) -> (bool, bool) {
        let mut progress = false;
        if let Some(ping_pong) = &mut self.ping_pong {
            // The answer itself is not needed (any bytes count), but h2 takes no new PING
            // until its last one's pong is collected.
            let _ = ping_pong.poll_pong(cx);
        }
        // Accept while there is room for the events; otherwise only drive the connection's
        // I/O (so responses still go out) and leave new streams waiting in h2.
        loop {
            let room = events.has_room();
            let polled = if room {
                conn.poll_accept(cx)
            } else {
                self.stall(events);
                match conn.poll_closed(cx) {
                    Poll::Ready(Ok(())) => Poll::Ready(None),
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                    Poll::Pending => Poll::Pending,
                }
            };
            match polled {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    self.open_call(request, respond, events, config);
                    progress = true;
                }
                Poll::Ready(Some(Err(e))) => {
                    if !e.is_io() || !is_reset(&e) {
                        eprintln!("grpc: {}: HTTP/2 connection failed: {e}", self.peer);
                    }
                    return (false, false);
                }
                Poll::Ready(None) => return (false, false),
                Poll::Pending => break,
            }
        }
        let mut ended = Vec::new();
        let mut sent_data = false;
        for (id, call) in &mut self.calls {
            let queued_bytes = call.queued_bytes();
            if let CallDrive::Done = call.drive(cx, events, &mut progress) {
                ended.push(*id);
            }
            sent_data |= call.queued_bytes() < queued_bytes;
        }
        if sent_data {
            // As grpc-go's server, which forgives the client's next PING after every DATA
            // frame it writes: a client reading one long response pings as it goes (BDP
            // pings), and each chunk handed out here is the next DATA frames.
            self.liveness.on_response();
        }
        for id in ended {
            self.calls.remove(&id);
        }
        self.exchanges.retain(|_, exchange| {
            matches!(exchange.drive(cx, events, &mut progress), CallDrive::Live)
        });
        if !events.has_room() {
            self.stall(events);
        }
        // Data handed to h2 above goes out on the next poll of the connection.
        (true, progress)
    }

    fn stall(&mut self, events: &mut Events) {
        if !self.stalled {
            self.stalled = true;
            events.stalled.push(self.slot);
        }
    }

    fn open_call(
        &mut self,
        request: Request<RecvStream>,
        respond: SendResponse<Bytes>,
        events: &mut Events,
        config: &GrpcConfig,
    ) {
        let (parts, recv) = request.into_parts();
        let grpc_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        if !grpc_type || parts.method != Method::POST {
            // Plain HTTP over h2, as etcd serves it: `/health`, `/metrics`, the gateway.
            if self.exchanges.len() >= EXCHANGES_PER_CONNECTION_MAX {
                let status = Status::new(Code::Unavailable, "too many HTTP requests at once");
                return refuse(respond, StatusCode::SERVICE_UNAVAILABLE, &status);
            }
            let id = events.next_http(self.slot);
            let token = ["authorization", "token"]
                .iter()
                .find_map(|name| parts.headers.get(*name))
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            let exchange = H2Exchange::new(
                id,
                (
                    parts.method.to_string(),
                    parts.uri.path().to_string(),
                    token,
                ),
                recv,
                respond,
                config.http1_body_bytes_max(),
            );
            self.exchanges.insert(id.raw(), exchange);
            return;
        }
        if events.live_calls >= config.pending_calls_max() {
            let status = Status::new(Code::ResourceExhausted, "grpc: too many pending calls");
            return refuse(respond, StatusCode::OK, &status);
        }
        let id = events.next_call(self.slot);
        events.live_calls += 1;
        events.push(CallEvent::Opened {
            call: id,
            path: parts.uri.path().to_string(),
        });
        self.calls.insert(
            id.raw(),
            Call::new(id, recv, respond, parts.headers, config.request_bytes_max()),
        );
    }
}

#[path = "conn_liveness.rs"]
mod liveness_view;

fn is_reset(e: &h2::Error) -> bool {
    e.get_io().is_some_and(|io| {
        matches!(
            io.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                // A peer that shut its socket down while h2 still flushed (etcdctl exiting).
                | io::ErrorKind::NotConnected
        )
    })
}
