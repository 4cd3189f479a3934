//! Shared by the gRPC integration tests: a server thread running the real `GrpcServer` with a
//! small test application, an h2 client driven by hand over mio, and test certificates.
#![allow(dead_code)]

pub mod client;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use mio::{Events, Poll, Token, Waker};
use prost::Message;
use tally_kvstore::proto::{
    Event, EventType, KeyValue, PutResponse, ResponseHeader, StatusResponse, WatchRequest,
    WatchResponse, watch_request,
};
use tally_runtime_mio::client::{CallEvent, Code, GrpcConfig, GrpcServer, Status};

const WAKE: Token = Token(0);
const TOKEN_BASE: usize = 1;

pub const UNARY: &str = "/test.Echo/Unary";
pub const BIDI: &str = "/test.Echo/Bidi";
pub const STATUS: &str = "/etcdserverpb.Maintenance/Status";
/// Request: a u32 (big-endian) count; response: that many 64 KiB messages, sent with
/// back-pressure (`SendReady`).
pub const FLOOD: &str = "/test.Echo/Flood";
pub const FLOOD_MESSAGE_BYTES: usize = 64 << 10;
pub const PUT: &str = "/etcdserverpb.KV/Put";
/// Bidirectional: each create request is answered with `created`, then one PUT event of its
/// key with value `v1`.
pub const WATCH: &str = "/etcdserverpb.Watch/Watch";
/// Answers with the request's `token` header.
pub const HEADER: &str = "/test.Echo/Header";

/// A server on 127.0.0.1 in its own thread, stopped on drop.
pub struct ServerHandle {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
    /// Calls the application saw cancelled.
    pub cancelled: Arc<AtomicUsize>,
}

impl ServerHandle {
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn spawn_server(config: GrpcConfig, tls: Option<Arc<rustls::ServerConfig>>) -> ServerHandle {
    let poll = Poll::new().expect("poll");
    let waker = Arc::new(Waker::new(poll.registry(), WAKE).expect("waker"));
    let listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let server = GrpcServer::new(
        listener,
        TOKEN_BASE,
        poll.registry(),
        Arc::clone(&waker),
        config,
        tls,
    )
    .expect("server");
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let thread = {
        let (stop, cancelled) = (Arc::clone(&stop), Arc::clone(&cancelled));
        std::thread::spawn(move || run_loop(poll, server, &stop, &cancelled))
    };
    ServerHandle {
        addr,
        stop,
        waker,
        thread: Some(thread),
        cancelled,
    }
}

fn run_loop(mut poll: Poll, mut server: GrpcServer, stop: &AtomicBool, cancelled: &AtomicUsize) {
    let mut events = Events::with_capacity(256);
    let mut app = TestApp::default();
    let tick = Duration::from_millis(100);
    let mut next_tick = std::time::Instant::now() + tick;
    while !stop.load(Ordering::SeqCst) {
        let timeout = next_tick.saturating_duration_since(std::time::Instant::now());
        poll.poll(&mut events, Some(timeout)).expect("poll");
        let now = std::time::Instant::now();
        if now >= next_tick {
            server.tick(poll.registry(), now);
            next_tick += tick;
        }
        for event in events.iter() {
            if server.owns(event.token()) {
                server.handle_event(poll.registry(), event);
            } else if event.token() == WAKE {
                server.on_wake(poll.registry());
            }
        }
        while let Some(event) = server.poll_call() {
            if let CallEvent::Cancelled { .. } = event {
                cancelled.fetch_add(1, Ordering::SeqCst);
            }
            app.handle(&mut server, event);
        }
        server.flush(poll.registry());
    }
}

/// Echo services, a hand-built Maintenance/Status, /health and /metrics.
#[derive(Default)]
struct TestApp {
    paths: std::collections::HashMap<tally_runtime_mio::client::CallId, String>,
    /// Flood calls and the messages they still owe.
    flood: std::collections::HashMap<tally_runtime_mio::client::CallId, u32>,
}

fn header() -> ResponseHeader {
    ResponseHeader {
        cluster_id: 7,
        member_id: 42,
        revision: 9,
        raft_term: 3,
    }
}

fn watch_reply(server: &mut GrpcServer, call: tally_runtime_mio::client::CallId, message: &[u8]) {
    let Ok(request) = WatchRequest::decode(message) else {
        return server.finish(
            call,
            Status::new(Code::InvalidArgument, "bad watch request"),
        );
    };
    let Some(watch_request::RequestUnion::CreateRequest(create)) = request.request_union else {
        return;
    };
    let created = WatchResponse {
        header: Some(header()),
        created: true,
        ..WatchResponse::default()
    };
    let kv = KeyValue {
        key: create.key,
        value: Bytes::from_static(b"v1"),
        create_revision: 9,
        mod_revision: 9,
        version: 1,
        lease: 0,
    };
    let event = Event {
        r#type: EventType::Put as i32,
        kv: Some(kv),
        prev_kv: None,
    };
    let events = WatchResponse {
        header: Some(header()),
        events: vec![event],
        ..WatchResponse::default()
    };
    for response in [created, events] {
        server
            .send_message(call, Bytes::from(response.encode_to_vec()))
            .expect("send");
    }
}

pub fn status_response() -> StatusResponse {
    StatusResponse {
        header: Some(header()),
        version: "3.4.23".to_string(),
        db_size: 4096,
        leader: 42,
        raft_index: 11,
        raft_term: 3,
        raft_applied_index: 11,
        db_size_in_use: 2048,
        ..StatusResponse::default()
    }
}

impl TestApp {
    fn handle(&mut self, server: &mut GrpcServer, event: CallEvent) {
        match event {
            CallEvent::Opened { call, path } => {
                if [UNARY, BIDI, STATUS, FLOOD, HEADER, PUT, WATCH].contains(&path.as_str()) {
                    self.paths.insert(call, path);
                } else {
                    let msg = format!("unknown method {path}");
                    server.finish(call, Status::new(Code::Unimplemented, msg));
                }
            }
            CallEvent::Message { call, message } => match self.paths.get(&call).map(String::as_str)
            {
                Some(UNARY) => {
                    let _ = server.send_message(call, message);
                    server.finish(call, Status::ok());
                    self.paths.remove(&call);
                }
                Some(FLOOD) => {
                    let count = message
                        .get(..4)
                        .map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4")));
                    self.flood.insert(call, count);
                    self.flood_more(server, call);
                }
                Some(HEADER) => {
                    let token = server
                        .request_header(call, "token")
                        .unwrap_or("none")
                        .to_string();
                    server.send_message(call, Bytes::from(token)).expect("send");
                    server.finish(call, Status::ok());
                    self.paths.remove(&call);
                }
                Some(PUT) => {
                    let body = PutResponse {
                        header: Some(header()),
                        prev_kv: None,
                    };
                    server
                        .send_message(call, Bytes::from(body.encode_to_vec()))
                        .expect("send");
                    server.finish(call, Status::ok());
                    self.paths.remove(&call);
                }
                Some(WATCH) => watch_reply(server, call, &message),
                Some(BIDI) => {
                    let mut reply = b"echo:".to_vec();
                    reply.extend_from_slice(&message);
                    server.send_message(call, Bytes::from(reply)).expect("send");
                }
                Some(_) => {
                    let body = status_response().encode_to_vec();
                    server.send_message(call, Bytes::from(body)).expect("send");
                    server.finish(call, Status::ok());
                    self.paths.remove(&call);
                }
                None => {}
            },
            CallEvent::HalfClosed { call } if self.paths.get(&call).is_some_and(|p| p == BIDI) => {
                self.paths.remove(&call);
                server.finish(call, Status::new(Code::Ok, ""));
            }
            CallEvent::Cancelled { call } => {
                self.paths.remove(&call);
                self.flood.remove(&call);
            }
            CallEvent::SendReady { call } => self.flood_more(server, call),
            CallEvent::Http {
                request,
                method,
                path,
                body,
                ..
            } => {
                if (method.as_str(), path.as_str()) == ("POST", "/hold") {
                    // A stream left open until the client goes (a JSON watch).
                    server.start_http_stream(request, 200, "text/plain");
                    assert!(server.send_http_chunk(request, b"held"));
                    return;
                }
                if (method.as_str(), path.as_str()) == ("POST", "/stream") {
                    // The body's lines, each as one chunk of a streamed answer.
                    server.start_http_stream(request, 200, "text/plain");
                    for line in body.split(|b| *b == b'\n') {
                        assert!(server.send_http_chunk(request, line));
                    }
                    server.end_http_stream(request);
                    return;
                }
                let (status, body) = match (method.as_str(), path.as_str()) {
                    ("GET", "/health") => (200, Bytes::from_static(b"{\"health\":\"true\"}")),
                    ("GET", "/metrics") => (200, Bytes::from_static(b"tally_up 1\n")),
                    ("POST", "/echo") => (200, body),
                    _ => (404, Bytes::from_static(b"not found")),
                };
                server.respond_http(request, status, "text/plain", body);
            }
            _ => {}
        }
    }
}

impl TestApp {
    fn flood_more(&mut self, server: &mut GrpcServer, call: tally_runtime_mio::client::CallId) {
        let Some(left) = self.flood.get_mut(&call) else {
            return;
        };
        while *left > 0 {
            let message = Bytes::from(vec![
                u8::try_from(*left % 251).expect("byte");
                FLOOD_MESSAGE_BYTES
            ]);
            match server.send_message(call, message) {
                Ok(()) => *left -= 1,
                Err(tally_runtime_mio::client::CallError::Backpressure { .. }) => return,
                Err(e) => panic!("flood send: {e}"),
            }
        }
        self.flood.remove(&call);
        self.paths.remove(&call);
        server.finish(call, Status::ok());
    }
}

/// Test PKI: a CA, a server certificate for 127.0.0.1/localhost and a client certificate.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let dir = std::env::temp_dir().join(format!("tally-grpc-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "tally test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("key");
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
        for (who, eku) in [
            ("server", ExtendedKeyUsagePurpose::ServerAuth),
            ("client", ExtendedKeyUsagePurpose::ClientAuth),
        ] {
            let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            let mut params = CertificateParams::new(names).expect("params");
            params
                .distinguished_name
                .push(DnType::CommonName, format!("tally {who}"));
            params.extended_key_usages = vec![eku];
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, &ca_cert, &ca_key).expect("sign");
            std::fs::write(dir.join(format!("{who}.pem")), cert.pem()).expect("write");
            std::fs::write(dir.join(format!("{who}-key.pem")), key.serialize_pem()).expect("write");
        }
        Pki { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian's `etcdctl`, if installed. Under `CI=true` a missing one fails the test; elsewhere
/// the caller skips.
pub fn etcdctl() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcdctl"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "etcdctl is missing under CI=true: install Debian's etcd-client"
        );
        eprintln!("skipping: etcdctl not found (apt-get install etcd-client)");
    }
    found
}
