//! Scheme-qualified `:authority` (`http://127.0.0.1:2379`, what grpc-go sends for endpoints
//! given with a scheme) against `GrpcServer`: a raw HTTP/2 client, then etcdctl 3.4's
//! per-endpoint commands. The etcdctl tests are skipped with a message when etcdctl is
//! missing, except under CI=true where a missing etcdctl fails them.

mod grpc_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grpc_common::{Pki, etcdctl};
use mio::{Events, Poll, Token, Waker};
use prost::Message;
use tally_kvstore::proto::{
    HashKvResponse, Member, MemberListResponse, RangeResponse, ResponseHeader, StatusResponse,
};
use tally_runtime_mio::client::{CallEvent, Code, GrpcConfig, GrpcServer, Status, tls};

const WAKE: Token = Token(0);
const MEMBER_ID: u64 = 0x2a;

/// A server answering Status, Range, HashKV and MemberList (with itself as the only member,
/// its client URL `{scheme}://{addr}`), stopped on drop.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn spawn(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let poll = Poll::new().expect("poll");
    let waker = Arc::new(Waker::new(poll.registry(), WAKE).expect("waker"));
    let listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let config = GrpcConfig::default();
    let server = GrpcServer::new(
        listener,
        1,
        poll.registry(),
        Arc::clone(&waker),
        config,
        tls,
    )
    .expect("server");
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let client_url = format!("{scheme}://{addr}");
    let thread = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || serve(poll, server, &stop, &client_url))
    };
    Server {
        addr,
        stop,
        waker,
        thread: Some(thread),
    }
}

fn header() -> Option<ResponseHeader> {
    Some(ResponseHeader {
        cluster_id: 7,
        member_id: MEMBER_ID,
        revision: 9,
        raft_term: 3,
    })
}

fn answer(path: &str, client_url: &str) -> Option<Vec<u8>> {
    Some(match path {
        "/etcdserverpb.Maintenance/Status" => StatusResponse {
            header: header(),
            version: "3.4.23".to_string(),
            db_size: 4096,
            leader: MEMBER_ID,
            raft_index: 11,
            raft_term: 3,
            raft_applied_index: 11,
            db_size_in_use: 2048,
            ..StatusResponse::default()
        }
        .encode_to_vec(),
        "/etcdserverpb.KV/Range" => RangeResponse {
            header: header(),
            ..RangeResponse::default()
        }
        .encode_to_vec(),
        "/etcdserverpb.Maintenance/HashKV" => HashKvResponse {
            header: header(),
            hash: 3_735_928_559,
            compact_revision: 1,
            hash_revision: 9,
        }
        .encode_to_vec(),
        "/etcdserverpb.Cluster/MemberList" => MemberListResponse {
            header: header(),
            members: vec![Member {
                id: MEMBER_ID,
                name: "solo".to_string(),
                peer_urls: vec!["http://127.0.0.1:1".to_string()],
                client_urls: vec![client_url.to_string()],
                is_learner: false,
            }],
        }
        .encode_to_vec(),
        _ => return None,
    })
}

fn serve(mut poll: Poll, mut server: GrpcServer, stop: &AtomicBool, client_url: &str) {
    let mut events = Events::with_capacity(256);
    let mut paths = std::collections::HashMap::new();
    while !stop.load(Ordering::SeqCst) {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .expect("poll");
        server.tick(poll.registry(), std::time::Instant::now());
        for event in events.iter() {
            if server.owns(event.token()) {
                server.handle_event(poll.registry(), event);
            } else if event.token() == WAKE {
                server.on_wake(poll.registry());
            }
        }
        while let Some(event) = server.poll_call() {
            match event {
                CallEvent::Opened { call, path } => {
                    paths.insert(call, path);
                }
                CallEvent::Message { call, .. } => {
                    let path = paths.remove(&call).unwrap_or_default();
                    match answer(&path, client_url) {
                        Some(body) => {
                            server.send_message(call, Bytes::from(body)).expect("send");
                            server.finish(call, Status::ok());
                        }
                        None => {
                            let msg = format!("unknown method {path}");
                            server.finish(call, Status::new(Code::Unimplemented, msg));
                        }
                    }
                }
                CallEvent::Cancelled { call } => {
                    paths.remove(&call);
                }
                _ => {}
            }
        }
        server.flush(poll.registry());
    }
}

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("len").to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// HPACK literal with incremental indexing, new name, plain strings shorter than 127 bytes.
fn indexed_literal(block: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    block.push(0x40);
    for s in [name, value] {
        block.push(u8::try_from(s.len()).expect("short"));
        block.extend_from_slice(s);
    }
}

/// Reads frames until streams 1 and 3 have ended (or the connection did); returns the frame
/// types seen on each.
fn stream_frames(socket: &mut TcpStream) -> [Vec<u8>; 2] {
    let mut seen = [Vec::new(), Vec::new()];
    let mut ended = [false; 2];
    let mut head = [0u8; 9];
    while ended != [true; 2] {
        if socket.read_exact(&mut head).is_err() {
            break;
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        socket.read_exact(&mut payload).expect("payload");
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        if head[3] == 0x7 {
            seen[0].push(0x7);
            break;
        }
        let at = match id {
            1 => 0,
            3 => 1,
            _ => continue,
        };
        seen[at].push(head[3]);
        let end_stream = head[4] & 0x1 != 0 && matches!(head[3], 0x0 | 0x1);
        ended[at] |= end_stream || head[3] == 0x3;
    }
    seen
}

#[test]
fn grpc_authority_with_scheme_is_served_to_a_raw_client() {
    let server = spawn(None);
    let mut socket = TcpStream::connect(server.addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let authority = format!("http://{}", server.addr);
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    indexed_literal(&mut block, b":authority", authority.as_bytes());
    indexed_literal(&mut block, b":path", b"/etcdserverpb.Maintenance/Status");
    indexed_literal(&mut block, b"content-type", b"application/grpc");
    indexed_literal(&mut block, b"te", b"trailers");
    // Stream 3 refers to the same fields through the dynamic table (indexes 62..=65).
    let second = [0x83, 0x86, 0xc1, 0xc0, 0xbf, 0xbe];
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[]));
    for (stream_id, block) in [(1, &block[..]), (3, &second[..])] {
        out.extend(frame(0x1, 0x4, stream_id, block));
        out.extend(frame(0x0, 0x1, stream_id, &[0, 0, 0, 0, 0]));
    }
    socket.write_all(&out).expect("write");
    // Both answered with HEADERS, DATA, trailers: no RST_STREAM (3) and no GOAWAY (7).
    let ok = vec![0x1, 0x0, 0x1];
    assert_eq!(stream_frames(&mut socket), [ok.clone(), ok]);
}

fn etcdctl_run(etcdctl: &PathBuf, endpoint: &str, extra: &[String], args: &[&str]) -> String {
    let started = Instant::now();
    let out = Command::new(etcdctl)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(["--dial-timeout=5s", "--command-timeout=10s"])
        .args(extra)
        .args(args)
        .output()
        .expect("run etcdctl");
    let output = format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "etcdctl {args:?} at {endpoint} failed after {:?}: {output}",
        started.elapsed()
    );
    output
}

/// `endpoint status`, `health` and `hashkv`, each dialling the endpoint on its own, plus the
/// `--cluster` forms that dial the member list's client URLs.
fn per_endpoint_commands(etcdctl: &PathBuf, endpoint: &str, extra: &[String]) {
    let out = etcdctl_run(
        etcdctl,
        endpoint,
        extra,
        &["endpoint", "status", "-w", "json"],
    );
    for want in ["\"version\":\"3.4.23\"", "\"leader\":42", "\"raft_term\":3"] {
        assert!(out.contains(want), "missing {want} in: {out}");
    }
    let out = etcdctl_run(etcdctl, endpoint, extra, &["endpoint", "health"]);
    assert!(out.contains("is healthy"), "{out}");
    let out = etcdctl_run(
        etcdctl,
        endpoint,
        extra,
        &["endpoint", "hashkv", "-w", "json"],
    );
    assert!(out.contains("\"hash\":3735928559"), "{out}");
    let out = etcdctl_run(
        etcdctl,
        endpoint,
        extra,
        &["endpoint", "health", "--cluster"],
    );
    assert!(out.contains("is healthy"), "{out}");
    let out = etcdctl_run(
        etcdctl,
        endpoint,
        extra,
        &["endpoint", "status", "--cluster"],
    );
    assert!(out.contains("3.4.23"), "{out}");
}

#[test]
fn grpc_authority_etcdctl_endpoint_commands_with_http_scheme() {
    let Some(etcdctl) = etcdctl() else { return };
    let server = spawn(None);
    per_endpoint_commands(&etcdctl, &format!("http://{}", server.addr), &[]);
    // Without a scheme the authority was fine already; it still is.
    per_endpoint_commands(&etcdctl, &server.addr.to_string(), &[]);
}

#[test]
fn grpc_authority_etcdctl_endpoint_commands_with_https_scheme() {
    let Some(etcdctl) = etcdctl() else { return };
    let pki = Pki::new("authority-https");
    let config = tls::server_config(
        &pki.path("server.pem"),
        &pki.path("server-key.pem"),
        None,
        false,
    )
    .expect("tls");
    let server = spawn(Some(config));
    let extra = [format!("--cacert={}", pki.path("ca.pem").display())];
    per_endpoint_commands(&etcdctl, &format!("https://{}", server.addr), &extra);
}
