//! A test gRPC client: h2's client futures polled by hand from a mio poll loop, as the server
//! does it, over plain TCP or rustls.

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2::client::{Connection, ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use http::{HeaderMap, Request};
use mio::net::TcpStream;
use rustls::ClientConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const DEADLINE: Duration = Duration::from_secs(20);

pub struct ClientIo {
    stream: TcpStream,
    tls: Option<ClientConnection>,
}

impl ClientIo {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.stream.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    other => other.map(|_| ())?,
                }
            }
            tls.read_tls(&mut self.stream)?;
            tls.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }

    fn flush_tls(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                tls.write_tls(&mut self.stream)?;
            }
        }
        Ok(())
    }

    fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.stream.write(buf);
        };
        let n = tls.writer().write(buf)?;
        match self.flush_tls() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }
}

fn into_poll<T>(r: io::Result<T>) -> Poll<io::Result<T>> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match into_poll(this.read_some(buf.initialize_unfilled())) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        into_poll(self.get_mut().write_some(buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        into_poll(self.get_mut().flush_tls())
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().stream.shutdown(std::net::Shutdown::Write))
    }
}

/// A finished call as the client saw it.
#[derive(Debug)]
pub struct Reply {
    pub http_status: u16,
    pub messages: Vec<Bytes>,
    pub grpc_status: Option<u32>,
    pub grpc_message: Option<String>,
    pub trailers_only: bool,
}

pub struct Client {
    poll: mio::Poll,
    events: mio::Events,
    send: SendRequest<Bytes>,
    conn: Connection<ClientIo, Bytes>,
    ping_pong: Option<h2::PingPong>,
}

/// One open call: the request body sender and the response side.
pub struct Stream {
    send: SendStream<Bytes>,
    response: Option<ResponseFuture>,
    body: Option<RecvStream>,
    buf: BytesMut,
    pub headers: HeaderMap,
}

pub fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(0);
    out.put_u32(u32::try_from(message.len()).expect("len"));
    out.put_slice(message);
    out.freeze()
}

fn header(map: &HeaderMap, name: &str) -> Option<String> {
    map.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Client {
    pub fn connect(addr: std::net::SocketAddr, tls: Option<Arc<rustls::ClientConfig>>) -> Client {
        let poll = mio::Poll::new().expect("poll");
        let std_stream = std::net::TcpStream::connect(addr).expect("connect");
        std_stream.set_nonblocking(true).expect("nonblocking");
        let mut stream = TcpStream::from_std(std_stream);
        let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
        poll.registry()
            .register(&mut stream, mio::Token(0), interest)
            .expect("register");
        let tls = tls.map(|config| {
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            ClientConnection::new(config, name).expect("tls client")
        });
        let mut handshake = Box::pin(h2::client::handshake(ClientIo { stream, tls }));
        let mut client_poll = (poll, mio::Events::with_capacity(16));
        let (send, mut conn) =
            wait(&mut client_poll, |cx| handshake.as_mut().poll(cx)).expect("h2 client handshake");
        let ping_pong = conn.ping_pong();
        Client {
            poll: client_poll.0,
            events: client_poll.1,
            send,
            conn,
            ping_pong,
        }
    }

    /// Polls `f` (and the connection) until it is ready, waiting on mio in between.
    pub fn run<T>(&mut self, mut f: impl FnMut(&mut Context<'_>) -> Poll<T>) -> T {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let _ = Pin::new(&mut self.conn).poll(&mut cx);
            if let Poll::Ready(v) = f(&mut cx) {
                let _ = Pin::new(&mut self.conn).poll(&mut cx);
                return v;
            }
            let _ = Pin::new(&mut self.conn).poll(&mut cx);
            assert!(Instant::now() < deadline, "client timed out");
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(5)))
                .expect("poll");
        }
    }

    /// Sends a PING and waits for its acknowledgement; false when the connection is gone.
    pub fn ping(&mut self) -> bool {
        let mut ping_pong = self.ping_pong.take().expect("a ping pong");
        let pong = ping_pong
            .send_ping(h2::Ping::opaque())
            .is_ok_and(|()| self.run(|cx| ping_pong.poll_pong(cx)).is_ok());
        self.ping_pong = Some(ping_pong);
        pong
    }

    /// Whether the server closed the connection (polls briefly).
    pub fn is_closed(&mut self) -> bool {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let deadline = Instant::now() + DEADLINE;
        loop {
            if Pin::new(&mut self.conn).poll(&mut cx).is_ready() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(5)))
                .expect("poll");
        }
    }

    pub fn open(&mut self, path: &str, content_type: &str) -> Stream {
        self.open_request(path, content_type, &[])
    }

    pub fn open_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Stream {
        self.open_request(path, "application/grpc", headers)
    }

    fn open_request(&mut self, path: &str, content_type: &str, headers: &[(&str, &str)]) -> Stream {
        let mut request = Request::post(format!("http://localhost{path}"))
            .header("content-type", content_type)
            .header("te", "trailers");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(()).expect("request");
        let mut send_request = self.send.clone();
        self.run(|cx| send_request.poll_ready(cx)).expect("ready");
        let (response, send) = send_request
            .send_request(request, false)
            .expect("send_request");
        Stream {
            send,
            response: Some(response),
            body: None,
            buf: BytesMut::new(),
            headers: HeaderMap::new(),
        }
    }

    pub fn send(&mut self, stream: &mut Stream, data: Bytes, end: bool) {
        stream.send.send_data(data, end).expect("send_data");
        self.run(|_| Poll::Ready(()));
    }

    /// The next response message, or None at the end of the response body.
    pub fn recv(&mut self, stream: &mut Stream) -> Option<Bytes> {
        self.ensure_headers(stream);
        loop {
            if stream.buf.len() >= 5 {
                let len = u32::from_be_bytes(stream.buf[1..5].try_into().expect("4")) as usize;
                if stream.buf.len() >= 5 + len {
                    stream.buf.advance(5);
                    return Some(stream.buf.split_to(len).freeze());
                }
            }
            let body = stream.body.as_mut()?;
            match self.run(|cx| body.poll_data(cx)) {
                Some(Ok(chunk)) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    stream.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => panic!("response body failed: {e}"),
                None => return None,
            }
        }
    }

    /// The next DATA of a plain HTTP answer (empty at its end).
    pub fn recv_raw(&mut self, stream: &mut Stream) -> Bytes {
        self.ensure_headers(stream);
        let Some(recv) = stream.body.as_mut() else {
            return Bytes::new();
        };
        match self.run(|cx| recv.poll_data(cx)) {
            Some(chunk) => {
                let chunk = chunk.expect("response body");
                let _ = recv.flow_control().release_capacity(chunk.len());
                chunk
            }
            None => Bytes::new(),
        }
    }

    /// The HTTP status and the whole response body, unframed (a plain HTTP answer).
    pub fn plain_response(&mut self, stream: &mut Stream) -> (u16, Bytes) {
        self.ensure_headers(stream);
        let status = header(&stream.headers, "x-http-status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut body = std::mem::take(&mut stream.buf);
        if let Some(recv) = stream.body.as_mut() {
            while let Some(chunk) = self.run(|cx| recv.poll_data(cx)) {
                let chunk = chunk.expect("response body");
                let _ = recv.flow_control().release_capacity(chunk.len());
                body.extend_from_slice(&chunk);
            }
        }
        (status, body.freeze())
    }

    fn ensure_headers(&mut self, stream: &mut Stream) {
        if let Some(mut response) = stream.response.take() {
            let response = self
                .run(|cx| Pin::new(&mut response).poll(cx))
                .expect("response");
            let (parts, body) = response.into_parts();
            stream.headers = parts.headers;
            stream
                .headers
                .insert("x-http-status", parts.status.as_u16().into());
            stream.body = Some(body);
        }
    }

    /// Reads the rest of the response: messages, then the status.
    pub fn finish(&mut self, stream: &mut Stream) -> Reply {
        let mut messages = Vec::new();
        while let Some(message) = self.recv(stream) {
            messages.push(message);
        }
        let http_status = header(&stream.headers, "x-http-status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut reply = Reply {
            http_status,
            messages,
            grpc_status: header(&stream.headers, "grpc-status").and_then(|s| s.parse().ok()),
            grpc_message: header(&stream.headers, "grpc-message"),
            trailers_only: stream.headers.contains_key("grpc-status"),
        };
        if !reply.trailers_only {
            if let Some(body) = stream.body.as_mut() {
                if let Ok(Some(trailers)) = self.run(|cx| body.poll_trailers(cx)) {
                    reply.grpc_status =
                        header(&trailers, "grpc-status").and_then(|s| s.parse().ok());
                    reply.grpc_message = header(&trailers, "grpc-message");
                }
            }
        }
        reply
    }

    /// A whole call: `frames` as the request body, then the reply.
    pub fn call_raw(&mut self, path: &str, frames: &[Bytes]) -> Reply {
        let mut stream = self.open(path, "application/grpc");
        for (i, f) in frames.iter().enumerate() {
            self.send(&mut stream, f.clone(), i + 1 == frames.len());
        }
        if frames.is_empty() {
            self.send(&mut stream, Bytes::new(), true);
        }
        self.finish(&mut stream)
    }

    pub fn unary(&mut self, path: &str, message: &[u8]) -> Reply {
        self.call_raw(path, &[frame(message)])
    }
}

fn wait<T>(
    (poll, events): &mut (mio::Poll, mio::Events),
    mut f: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> T {
    let mut cx = Context::from_waker(Waker::noop());
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Poll::Ready(v) = f(&mut cx) {
            return v;
        }
        assert!(Instant::now() < deadline, "client timed out");
        poll.poll(events, Some(Duration::from_millis(5)))
            .expect("poll");
    }
}
