//! The client port end to end: a raw h2 client against `GrpcServer` on 127.0.0.1.

mod grpc_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use grpc_common::client::{Client, frame};
use grpc_common::{
    BIDI, FLOOD, FLOOD_MESSAGE_BYTES, HEADER, Pki, STATUS, UNARY, spawn_server, status_response,
};
use prost::Message;
use tally_runtime_mio::client::{GrpcConfig, tls};

fn config() -> GrpcConfig {
    GrpcConfig::default()
}

#[test]
fn grpc_unary_round_trip() {
    let server = spawn_server(config(), None);
    let mut client = Client::connect(server.addr(), None);
    for i in 0..3 {
        let body = format!("hello {i}");
        let reply = client.unary(UNARY, body.as_bytes());
        assert_eq!(reply.http_status, 200);
        assert_eq!(reply.grpc_status, Some(0), "{reply:?}");
        assert!(!reply.trailers_only);
        assert_eq!(reply.messages, vec![Bytes::from(body)]);
    }
    let reply = client.unary(STATUS, &[]);
    let status =
        tally_kvstore::proto::StatusResponse::decode(reply.messages[0].clone()).expect("decode");
    assert_eq!(status, status_response());
}

#[test]
fn grpc_bidi_streaming() {
    let server = spawn_server(config(), None);
    let mut client = Client::connect(server.addr(), None);
    let mut stream = client.open(BIDI, "application/grpc");
    for i in 0..5 {
        client.send(&mut stream, frame(format!("m{i}").as_bytes()), false);
        let reply = client.recv(&mut stream).expect("reply");
        assert_eq!(reply, Bytes::from(format!("echo:m{i}")));
    }
    // Several messages in one DATA frame, and one message split over frames.
    let mut joined = frame(b"a").to_vec();
    joined.extend_from_slice(&frame(b"b"));
    client.send(&mut stream, Bytes::from(joined), false);
    let split = frame(b"split-message");
    client.send(&mut stream, split.slice(..3), false);
    client.send(&mut stream, split.slice(3..), true);
    let reply = client.finish(&mut stream);
    assert_eq!(reply.grpc_status, Some(0));
    let want: Vec<Bytes> = ["echo:a", "echo:b", "echo:split-message"]
        .map(Bytes::from)
        .to_vec();
    assert_eq!(reply.messages, want);
}

#[test]
fn grpc_many_concurrent_calls_on_one_connection() {
    let server = spawn_server(config(), None);
    let mut client = Client::connect(server.addr(), None);
    let mut streams: Vec<_> = (0..50)
        .map(|_| client.open(UNARY, "application/grpc"))
        .collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        client.send(stream, frame(format!("c{i}").as_bytes()), true);
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        let reply = client.finish(stream);
        assert_eq!(reply.grpc_status, Some(0));
        assert_eq!(reply.messages, vec![Bytes::from(format!("c{i}"))]);
    }
}

#[test]
fn grpc_unknown_path_is_the_applications_answer() {
    let server = spawn_server(config(), None);
    let mut client = Client::connect(server.addr(), None);
    let reply = client.unary("/etcdserverpb.Nope/Nope", b"x");
    assert_eq!(reply.grpc_status, Some(12));
    assert!(reply.trailers_only, "an immediate error is trailers-only");
    assert_eq!(
        reply.grpc_message.as_deref(),
        Some("unknown method /etcdserverpb.Nope/Nope")
    );
}

#[test]
fn grpc_oversized_request_is_refused_and_connection_survives() {
    let server = spawn_server(config().with_request_bytes_max(1024), None);
    let mut client = Client::connect(server.addr(), None);
    let reply = client.unary(UNARY, &vec![7u8; 4096]);
    assert_eq!(reply.grpc_status, Some(8), "{reply:?}");
    // grpc-go's words, as etcd 3.4's clients get them for a message over its receive limit.
    assert_eq!(
        reply.grpc_message.as_deref(),
        Some("grpc: received message larger than max (4096 vs. 1024)")
    );
    let reply = client.unary(UNARY, b"next");
    assert_eq!(reply.grpc_status, Some(0));
    assert_eq!(reply.messages, vec![Bytes::from_static(b"next")]);
}

#[test]
fn grpc_default_limit_is_etcds_and_allows_a_full_size_request() {
    let server = spawn_server(config(), None);
    let mut client = Client::connect(server.addr(), None);
    let reply = client.unary(UNARY, &vec![1u8; 1_572_864]);
    assert_eq!(reply.grpc_status, Some(0));
    assert_eq!(reply.messages[0].len(), 1_572_864);
    let reply = client.unary(UNARY, &vec![1u8; 1_572_865]);
    assert_eq!(reply.grpc_status, Some(8));
}

#[test]
fn grpc_malformed_frames_end_the_call_not_the_connection() {
    let server = spawn_server(config(), None);
    let mut client = Client::connect(server.addr(), None);
    // Flag 9 is no flag gRPC defines.
    let reply = client.call_raw(UNARY, &[Bytes::from_static(&[9, 0, 0, 0, 1, 0])]);
    assert_eq!(reply.grpc_status, Some(13), "{reply:?}");
    // A compressed message: we offer no compression.
    let reply = client.call_raw(UNARY, &[Bytes::from_static(&[1, 0, 0, 0, 1, 0])]);
    assert_eq!(reply.grpc_status, Some(12), "{reply:?}");
    // The stream ends inside a message.
    let reply = client.call_raw(BIDI, &[Bytes::from_static(&[0, 0, 0, 0, 9, 1, 2])]);
    assert_eq!(reply.grpc_status, Some(13), "{reply:?}");
    // Not gRPC at all: a plain HTTP request, which the application answers (404 here).
    let mut stream = client.open(UNARY, "application/json");
    client.send(&mut stream, Bytes::from_static(b"{}"), true);
    assert_eq!(client.plain_response(&mut stream).0, 404);
    let reply = client.unary(UNARY, b"still here");
    assert_eq!(reply.grpc_status, Some(0));
}

#[test]
fn grpc_client_reset_cancels_the_call() {
    let server = spawn_server(config(), None);
    let mut client = Client::connect(server.addr(), None);
    let mut stream = client.open(BIDI, "application/grpc");
    client.send(&mut stream, frame(b"one"), false);
    assert!(client.recv(&mut stream).is_some());
    drop(stream);
    // The reset reaches the server, which tells the application.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.cancelled.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "no Cancelled event");
        client.run(|_| std::task::Poll::Ready(()));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(client.unary(UNARY, b"ok").grpc_status, Some(0));
}

fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(bytes).expect("write");
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

#[test]
fn grpc_garbage_and_truncated_preface_close_only_that_connection() {
    let server = spawn_server(config(), None);
    let mut client = Client::connect(server.addr(), None);
    // h2's client sends its SETTINGS when its connection is first polled: a call does it, so
    // this connection is established before the truncated preface below waits out the
    // handshake limit (which would otherwise close this one too, as never established).
    assert_eq!(client.unary(UNARY, b"settled").grpc_status, Some(0));
    assert!(raw_exchange(server.addr(), b"\x16\x03\x01\x00\xff garbage").is_empty());
    assert!(raw_exchange(server.addr(), b"PRI * HTTP/2.0\r\n").is_empty());
    // A full preface followed by junk instead of SETTINGS.
    let mut junk = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    junk.extend_from_slice(&[0xff; 64]);
    let _ = raw_exchange(server.addr(), &junk);
    assert_eq!(client.unary(UNARY, b"alive").grpc_status, Some(0));
    let mut second = Client::connect(server.addr(), None);
    assert_eq!(second.unary(UNARY, b"new").grpc_status, Some(0));
}

#[test]
fn grpc_http1_health_and_metrics() {
    let server = spawn_server(config(), None);
    let out = raw_exchange(server.addr(), b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Length: 17\r\n"), "{text}");
    assert!(text.ends_with("{\"health\":\"true\"}"), "{text}");
    let text = String::from_utf8(raw_exchange(
        server.addr(),
        b"GET /metrics HTTP/1.1\r\n\r\n",
    ))
    .expect("utf8");
    assert!(text.ends_with("tally_up 1\n"), "{text}");
    let text = String::from_utf8(raw_exchange(server.addr(), b"GET nope\r\n\r\n")).expect("utf8");
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
}

/// A streamed answer (the JSON gateway's watch) goes out as HTTP/1.1 chunks, and ends with
/// the last chunk and a close.
#[test]
fn grpc_http1_streams_answer_in_chunks() {
    let server = spawn_server(config(), None);
    let request =
        b"POST /stream HTTP/1.1\r\nContent-Length: 26\r\n\r\none\n{\"result\":{}}\nsixteen!";
    let text = String::from_utf8(raw_exchange(server.addr(), request)).expect("utf8");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
    assert!(!text.contains("Content-Length"), "{text}");
    assert!(
        text.ends_with("\r\n\r\n3\r\none\r\nd\r\n{\"result\":{}}\r\n8\r\nsixteen!\r\n0\r\n\r\n"),
        "{text:?}"
    );
}

/// Over HTTP/2 (curl and Go's HTTP client negotiate it with TLS), a request that is not gRPC
/// is a plain HTTP exchange, as etcd serves `/health` and its JSON gateway there: the body
/// reaches the application whole, and answers go out whole or streamed, beside gRPC calls
/// on the same connection.
#[test]
fn grpc_plain_http_over_h2_is_served_beside_calls() {
    let server = spawn_server(config().with_http1_body_bytes_max(64 << 10), None);
    let mut client = Client::connect(server.addr(), None);
    let mut echo = client.open("/echo", "application/json");
    client.send(&mut echo, Bytes::from_static(b"{\"key\":"), false);
    client.send(&mut echo, Bytes::from_static(b"\"Zm9v\"}"), true);
    assert_eq!(
        client.plain_response(&mut echo),
        (200, Bytes::from_static(b"{\"key\":\"Zm9v\"}"))
    );
    let mut stream = client.open("/stream", "application/json");
    client.send(&mut stream, Bytes::from_static(b"one\ntwo"), true);
    assert_eq!(
        client.plain_response(&mut stream),
        (200, Bytes::from_static(b"onetwo"))
    );
    // A client that resets an open stream ends it: the application hears Cancelled.
    let mut held = client.open("/hold", "text/plain");
    client.send(&mut held, Bytes::new(), true);
    assert_eq!(client.recv_raw(&mut held), Bytes::from_static(b"held"));
    drop(held);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.cancelled.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "no Cancelled event");
        client.run(|_| std::task::Poll::Ready(()));
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut over = client.open("/echo", "text/plain");
    client.send(&mut over, Bytes::from(vec![b'x'; 65 << 10]), true);
    assert_eq!(client.plain_response(&mut over).0, 413);
    assert_eq!(client.unary(UNARY, b"still gRPC").grpc_status, Some(0));
}

/// A POST's body (the JSON gateway's requests) is read to its Content-Length, also when it
/// comes in pieces, and one over `http1_body_bytes_max` is refused with 413.
#[test]
fn grpc_http1_post_bodies_are_read_whole_and_bounded() {
    let server = spawn_server(config().with_http1_body_bytes_max(64 << 10), None);
    let body = vec![b'j'; 40 << 10];
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    for piece in body.chunks(7 << 10) {
        std::thread::sleep(Duration::from_millis(5));
        stream.write_all(piece).expect("write");
    }
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"), "{:?}", &out[..40]);
    assert!(out.ends_with(&body), "the body comes back whole");
    // curl asks `Expect: 100-continue` before a body over 1 KiB, and waits a second for it.
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    stream.write_all(head.as_bytes()).expect("write");
    let mut go_ahead = [0u8; 25];
    stream.read_exact(&mut go_ahead).expect("100 Continue");
    assert_eq!(&go_ahead, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"{}").expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n") && out.ends_with(b"{}"));
    let over = format!(
        "POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        65 << 10
    );
    let text = String::from_utf8(raw_exchange(server.addr(), over.as_bytes())).expect("utf8");
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let chunked = b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let text = String::from_utf8(raw_exchange(server.addr(), chunked)).expect("utf8");
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
}

#[test]
fn grpc_tls_with_alpn_and_client_certificates() {
    let pki = Pki::new("alpn");
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("server.pem"),
        pki.path("server-key.pem"),
    );
    let (ccert, ckey) = (pki.path("client.pem"), pki.path("client-key.pem"));
    let server_tls = tls::server_config(&cert, &key, Some(&ca), true).expect("server tls");
    let server = spawn_server(config(), Some(server_tls));
    let client_tls =
        tls::client_config(&ca, Some((&ccert, &ckey)), &[tls::ALPN_H2]).expect("client tls");
    let mut client = Client::connect(server.addr(), Some(client_tls));
    let reply = client.unary(UNARY, b"secret");
    assert_eq!(reply.grpc_status, Some(0));
    assert_eq!(reply.messages, vec![Bytes::from_static(b"secret")]);
    let mut stream = client.open(BIDI, "application/grpc");
    for i in 0..3 {
        client.send(&mut stream, frame(&[i]), false);
        assert!(client.recv(&mut stream).is_some());
    }
    client.send(&mut stream, Bytes::new(), true);
    assert_eq!(client.finish(&mut stream).grpc_status, Some(0));
    // `curl https://…/health` negotiates h2 too: plain HTTP is served on the TLS link.
    let mut echo = client.open("/echo", "application/json");
    client.send(&mut echo, Bytes::from_static(b"{}"), true);
    assert_eq!(
        client.plain_response(&mut echo),
        (200, Bytes::from_static(b"{}"))
    );
    // Without a client certificate the handshake fails; the server goes on.
    let anonymous = tls::client_config(&ca, None, &[tls::ALPN_H2]).expect("client tls");
    let stream = std::net::TcpStream::connect(server.addr()).expect("connect");
    let mut conn = rustls::ClientConnection::new(anonymous, "localhost".try_into().expect("name"))
        .expect("conn");
    let mut stream = stream;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls_stream = rustls::Stream::new(&mut conn, &mut stream);
    let mut buf = [0u8; 16];
    let refused = tls_stream
        .write_all(b"PRI")
        .and_then(|_| tls_stream.read(&mut buf));
    assert!(refused.is_err() || refused.is_ok_and(|n| n == 0));
    assert_eq!(client.unary(UNARY, b"again").grpc_status, Some(0));
}

#[test]
fn grpc_tls_http1_health_by_alpn() {
    let pki = Pki::new("http1");
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("server.pem"),
        pki.path("server-key.pem"),
    );
    let server = spawn_server(
        config(),
        Some(tls::server_config(&cert, &key, None, false).expect("tls")),
    );
    let client_tls = tls::client_config(&ca, None, &[tls::ALPN_HTTP1]).expect("client tls");
    let mut conn = rustls::ClientConnection::new(client_tls, "localhost".try_into().expect("name"))
        .expect("conn");
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls_stream = rustls::Stream::new(&mut conn, &mut stream);
    tls_stream
        .write_all(b"GET /health HTTP/1.1\r\n\r\n")
        .expect("write");
    let mut out = Vec::new();
    let _ = tls_stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
}

#[test]
fn grpc_server_streaming_with_backpressure_and_flow_control() {
    // A send queue of two messages, so the application sees Backpressure and SendReady, and
    // more bytes than the 1 MiB stream window, so h2 flow control holds the server back too.
    let config = config().with_pending_send_bytes_max(2 * FLOOD_MESSAGE_BYTES);
    let server = spawn_server(config, None);
    let mut client = Client::connect(server.addr(), None);
    let count: u32 = 64;
    let reply = client.unary(FLOOD, &count.to_be_bytes());
    assert_eq!(reply.grpc_status, Some(0), "{:?}", reply.grpc_message);
    assert_eq!(reply.messages.len(), count as usize);
    for (i, message) in reply.messages.iter().enumerate() {
        let left = count - u32::try_from(i).expect("i");
        assert_eq!(message.len(), FLOOD_MESSAGE_BYTES);
        assert!(message.iter().all(|&b| u32::from(b) == left % 251));
    }
}

#[test]
fn grpc_tiny_event_queue_still_serves_everything() {
    // One queued event at a time: connections stall and resume as the application drains.
    let config = config()
        .with_pending_events_max(1)
        .with_pending_event_bytes_max(16);
    let server = spawn_server(config, None);
    let mut client = Client::connect(server.addr(), None);
    let mut streams: Vec<_> = (0..20)
        .map(|_| client.open(UNARY, "application/grpc"))
        .collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        client.send(stream, frame(format!("t{i}").as_bytes()), true);
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        let reply = client.finish(stream);
        assert_eq!(reply.messages, vec![Bytes::from(format!("t{i}"))]);
    }
    let mut stream = client.open(BIDI, "application/grpc");
    let mut batch = Vec::new();
    for i in 0..10u8 {
        batch.extend_from_slice(&frame(&[i; 40]));
    }
    client.send(&mut stream, Bytes::from(batch), true);
    let reply = client.finish(&mut stream);
    assert_eq!(reply.grpc_status, Some(0));
    assert_eq!(reply.messages.len(), 10);
}

#[test]
fn grpc_request_metadata_is_visible_to_the_application() {
    let server = spawn_server(config(), None);
    let mut client = Client::connect(server.addr(), None);
    let reply = client.unary(HEADER, b"");
    assert_eq!(reply.messages, vec![Bytes::from_static(b"none")]);
    let mut stream = client.open_with(HEADER, &[("token", "abc.123")]);
    client.send(&mut stream, frame(b""), true);
    assert_eq!(
        client.finish(&mut stream).messages,
        vec![Bytes::from_static(b"abc.123")]
    );
}

#[test]
fn grpc_silent_connections_time_out() {
    let server = spawn_server(config().with_handshake_ms_max(300), None);
    let mut client = Client::connect(server.addr(), None);
    // h2's client sends its SETTINGS when its connection is first polled: a call does it.
    assert_eq!(client.unary(UNARY, b"settled").grpc_status, Some(0));
    let started = std::time::Instant::now();
    let mut silent = TcpStream::connect(server.addr()).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = [0u8; 8];
    assert_eq!(silent.read(&mut buf).expect("closed"), 0);
    assert!(started.elapsed() < Duration::from_secs(20));
    // An established HTTP/2 connection is not a handshake: it stays.
    assert_eq!(client.unary(UNARY, b"idle is fine").grpc_status, Some(0));
}

/// A server takes up to `LISTENERS_MAX` listeners, each registered under its own token.
#[test]
fn a_server_takes_listeners_up_to_its_limit() {
    use tally_runtime_mio::client::{GrpcServer, LISTENERS_MAX};
    let bind = || mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut poll = mio::Poll::new().unwrap();
    let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
    let base = 1 << 24;
    let mut server = GrpcServer::new(bind(), base, poll.registry(), waker, config(), None).unwrap();
    for _ in 1..LISTENERS_MAX {
        server.add_listener(bind(), poll.registry(), None).unwrap();
    }
    let addrs = server.local_addrs();
    assert_eq!(addrs.len(), LISTENERS_MAX);
    assert_eq!(addrs[0], server.local_addr());
    assert!(server.add_listener(bind(), poll.registry(), None).is_err());
    // Each listener is registered under its own token: a connection to it wakes that token.
    for index in [0, LISTENERS_MAX - 1] {
        let _client = std::net::TcpStream::connect(addrs[index]).unwrap();
        let mut events = mio::Events::with_capacity(16);
        poll.poll(&mut events, Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let tokens: Vec<usize> = events.iter().map(|e| e.token().0).collect();
        assert!(tokens.contains(&(base + index)), "{tokens:?}");
        assert!(server.owns(mio::Token(base + index)));
    }
}
