//! The client port's connection rules over real sockets: a full server evicts its longest-idle
//! connection for a new client, and the handshake, idle, keep-alive and ping limits close what
//! they should (the rules themselves are unit-tested in `grpc/liveness_tests.rs`).

mod grpc_common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use grpc_common::client::{Client, frame};
use grpc_common::{BIDI, UNARY, spawn_server};
use tally_runtime_mio::client::GrpcConfig;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const KIND_SETTINGS: u8 = 0x4;
const KIND_PING: u8 = 0x6;
const KIND_GOAWAY: u8 = 0x7;
const FLAG_ACK: u8 = 0x1;
const NO_ERROR: u32 = 0x0;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const WAIT: Duration = Duration::from_secs(10);

/// Only the limit under test: no timeouts unless a test sets them.
fn config() -> GrpcConfig {
    GrpcConfig::default()
        .with_handshake_ms_max(0)
        .with_idle_ms_max(0)
        .with_keepalive_interval_ms(0)
}

#[derive(Debug, PartialEq, Eq)]
enum Read2 {
    Frame {
        kind: u8,
        flags: u8,
        payload: Vec<u8>,
    },
    /// The server closed the connection (end of stream or reset).
    Closed,
    /// Nothing within the wait.
    Silent,
}

/// An HTTP/2 peer driven by hand, frame by frame.
struct RawH2 {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawH2 {
    /// Connects and sends the preface, and an empty SETTINGS when `settings`.
    fn connect(addr: SocketAddr, settings: bool) -> RawH2 {
        let mut raw = RawH2 {
            stream: TcpStream::connect(addr).expect("connect"),
            buf: Vec::new(),
        };
        raw.stream.write_all(PREFACE).expect("preface");
        if settings {
            raw.send(KIND_SETTINGS, 0, &[]);
        }
        raw
    }

    fn send(&mut self, kind: u8, flags: u8, payload: &[u8]) {
        self.try_send(kind, flags, payload).expect("send frame");
    }

    /// Sends a frame to a server that may have closed the connection already.
    fn try_send(&mut self, kind: u8, flags: u8, payload: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(payload.len()).expect("small").to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 0];
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)
    }

    fn next(&mut self, wait: Duration) -> Read2 {
        let deadline = Instant::now() + wait;
        loop {
            if self.buf.len() >= 9 {
                let len = usize::from(self.buf[0]) << 16
                    | usize::from(self.buf[1]) << 8
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let head: Vec<u8> = self.buf.drain(..9 + len).collect();
                    return Read2::Frame {
                        kind: head[3],
                        flags: head[4],
                        payload: head[9..].to_vec(),
                    };
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Read2::Silent;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Read2::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Read2::Silent;
                }
                Err(_) => return Read2::Closed,
            }
        }
    }

    /// Reads until the server's GOAWAY or the end; returns the GOAWAY's error code, if one
    /// came. Counts the server's PINGs; acknowledges them and its SETTINGS when `answer`.
    fn read_to_end(&mut self, answer: bool, pings: &mut usize) -> Option<u32> {
        loop {
            match self.next(WAIT) {
                Read2::Frame {
                    kind: KIND_GOAWAY,
                    payload,
                    ..
                } => {
                    let code = u32::from_be_bytes(payload[4..8].try_into().expect("code"));
                    return Some(code);
                }
                Read2::Frame {
                    kind,
                    flags: 0,
                    payload,
                } if kind == KIND_PING => {
                    *pings += 1;
                    if answer {
                        self.send(KIND_PING, FLAG_ACK, &payload);
                    }
                }
                Read2::Frame {
                    kind: KIND_SETTINGS,
                    flags: 0,
                    ..
                } if answer => self.send(KIND_SETTINGS, FLAG_ACK, &[]),
                Read2::Frame { .. } => {}
                Read2::Closed => return None,
                Read2::Silent => panic!("the server neither closed nor answered"),
            }
        }
    }
}

/// Whether the server has closed `socket` (which sent nothing and was sent nothing).
fn closed_by_server(socket: &mut TcpStream, wait: Duration) -> bool {
    socket.set_read_timeout(Some(wait)).expect("timeout");
    let mut byte = [0u8; 1];
    match socket.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

fn silent_sockets(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let sockets = (0..count)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    // Accepted in order, each with its own place in the eviction order.
    std::thread::sleep(Duration::from_millis(300));
    sockets
}

#[test]
fn a_full_server_evicts_its_longest_idle_connection_for_each_new_client() {
    let server = spawn_server(config().with_connections_max(4), None);
    let mut silent = silent_sockets(server.addr(), 4);
    let mut first = Client::connect(server.addr(), None);
    assert_eq!(first.unary(UNARY, b"made room").grpc_status, Some(0));
    assert!(closed_by_server(&mut silent[0], WAIT), "the oldest went");
    let mut second = Client::connect(server.addr(), None);
    assert_eq!(second.unary(UNARY, b"made room").grpc_status, Some(0));
    assert!(
        closed_by_server(&mut silent[1], WAIT),
        "then the next oldest"
    );
    for socket in &mut silent[2..] {
        assert!(!closed_by_server(socket, Duration::from_millis(200)));
    }
    assert_eq!(first.unary(UNARY, b"still here").grpc_status, Some(0));
}

#[test]
fn a_new_client_is_refused_only_when_every_connection_has_an_open_stream() {
    let server = spawn_server(config().with_connections_max(2), None);
    let mut clients: Vec<_> = (0..2)
        .map(|_| Client::connect(server.addr(), None))
        .collect();
    let mut streams: Vec<_> = clients
        .iter_mut()
        .map(|client| {
            let mut stream = client.open(BIDI, "application/grpc");
            client.send(&mut stream, frame(b"open"), false);
            assert!(client.recv(&mut stream).is_some(), "echoed");
            stream
        })
        .collect();
    let mut newcomer = TcpStream::connect(server.addr()).expect("connect");
    assert!(closed_by_server(&mut newcomer, WAIT), "no room: refused");
    for (client, stream) in clients.iter_mut().zip(&mut streams) {
        client.send(stream, frame(b"done"), true);
        assert_eq!(client.finish(stream).grpc_status, Some(0), "busy ones kept");
    }
}

#[test]
fn a_handshake_without_settings_is_closed_and_one_with_settings_stays() {
    let server = spawn_server(config().with_handshake_ms_max(300), None);
    let mut preface_only = RawH2::connect(server.addr(), false);
    let mut settled = RawH2::connect(server.addr(), true);
    assert_eq!(preface_only.read_to_end(false, &mut 0), None, "closed");
    // Four times the limit later, the settled one is still open.
    let deadline = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < deadline {
        assert!(matches!(
            settled.next(Duration::from_millis(100)),
            Read2::Frame { .. } | Read2::Silent
        ));
    }
}

#[test]
fn an_idle_http2_connection_gets_goaway_no_error_then_is_closed() {
    let server = spawn_server(config().with_idle_ms_max(300), None);
    let mut idle = RawH2::connect(server.addr(), true);
    assert_eq!(idle.read_to_end(false, &mut 0), Some(NO_ERROR));
    assert_eq!(idle.next(WAIT), Read2::Closed);
}

#[test]
fn keepalive_pings_a_silent_peer_and_closes_it_when_nothing_answers() {
    let keepalive = config()
        .with_keepalive_interval_ms(300)
        .with_keepalive_ack_ms_max(300);
    let server = spawn_server(keepalive, None);
    let mut mute = RawH2::connect(server.addr(), true);
    let mut answering = RawH2::connect(server.addr(), true);
    let answerer = std::thread::spawn(move || {
        let mut answered = 0;
        while answered < 4 {
            match answering.next(WAIT) {
                Read2::Frame {
                    kind: KIND_PING,
                    flags: 0,
                    payload,
                } => {
                    answered += 1;
                    answering.send(KIND_PING, FLAG_ACK, &payload);
                }
                Read2::Frame { .. } => {}
                other => return Err(format!("after {answered} pings: {other:?}")),
            }
        }
        Ok(answered)
    });
    let mut mute_pings = 0;
    assert_eq!(mute.read_to_end(false, &mut mute_pings), None, "no GOAWAY");
    assert_eq!(mute_pings, 1);
    let answered = answerer.join().expect("answerer");
    assert_eq!(answered, Ok(4), "an answering peer is kept");
}

#[test]
fn pings_faster_than_the_minimum_get_goaway_enhance_your_calm() {
    let server = spawn_server(config().with_client_ping_interval_ms_min(5_000), None);
    let mut pinger = RawH2::connect(server.addr(), true);
    let deadline = Instant::now() + WAIT;
    let code = loop {
        assert!(Instant::now() < deadline, "never told to calm down");
        // The GOAWAY may already be on its way, and the connection closed behind it.
        let _ = pinger.try_send(KIND_PING, 0, b"12345678");
        if let Read2::Frame {
            kind: KIND_GOAWAY,
            payload,
            ..
        } = pinger.next(Duration::from_millis(150))
        {
            break u32::from_be_bytes(payload[4..8].try_into().expect("code"));
        }
    };
    assert_eq!(code, ENHANCE_YOUR_CALM);
}

#[test]
fn a_client_pinging_while_it_reads_one_long_response_is_not_told_to_calm_down() {
    let server = spawn_server(config().with_client_ping_interval_ms_min(5_000), None);
    let mut client = Client::connect(server.addr(), None);
    // One response far larger than the client's 64 KiB window, read a window at a time with a
    // PING after each (as a grpc-go client's BDP pings): many pings, spread over the server's
    // ticks, and only one response.
    let message = vec![7u8; 1 << 20];
    let mut call = client.open(UNARY, "application/grpc");
    client.send(&mut call, frame(&message), true);
    let mut received = 0;
    loop {
        let chunk = client.recv_raw(&mut call);
        if chunk.is_empty() {
            break;
        }
        received += chunk.len();
        assert!(
            client.ping(),
            "the connection closed after {received} bytes"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(received, 5 + message.len(), "the whole response");
    assert!(client.ping(), "the connection stays open");
}
