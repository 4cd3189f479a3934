//! Connections that never get to a request must not keep clients out. 2,000 of them (silent
//! TCP, the HTTP/2 preface with an empty SETTINGS, or a TLS ClientHello left unfinished) are
//! held against a member for 30 s, each reopened as soon as the server closes it, while a
//! probe puts and gets a key with etcdctl every second: every probe must succeed, as it does
//! against etcd 3.4.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tally_tests::process::{Options, ProcCluster, etcdctl_available};

const IDLE_CONNECTIONS: usize = 2000;
const HOLD: Duration = Duration::from_secs(30);
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Descriptors this process needs besides the idle sockets: etcdctl's pipes, logs, certs.
const FDS_SPARE: u64 = 200;
/// How often the holder looks for connections the server closed, and reopens them.
const HOLD_ROUND: Duration = Duration::from_millis(200);

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 0x4, 0, 0, 0, 0, 0];

/// What an idle connection sends once, after connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Idle {
    Silent,
    H2Preface,
    TlsHello,
}

impl Idle {
    fn opening(self) -> Vec<u8> {
        match self {
            Idle::Silent => Vec::new(),
            Idle::H2Preface => [H2_PREFACE, &EMPTY_SETTINGS].concat(),
            Idle::TlsHello => client_hello(),
        }
    }
}

/// A TLS 1.3 ClientHello offering h2, with an x25519 key share (the curve's base point): the
/// server answers with its half of the handshake and then waits for ours, which never comes.
fn client_hello() -> Vec<u8> {
    fn extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&u16::try_from(body.len()).expect("small").to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut extensions = Vec::new();
    extension(&mut extensions, 0x002b, &[0x02, 0x03, 0x04]); // supported_versions: 1.3
    extension(&mut extensions, 0x000a, &[0x00, 0x02, 0x00, 0x1d]); // groups: x25519
    let mut key_share = vec![0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 9];
    key_share.resize(key_share.len() + 31, 0);
    extension(&mut extensions, 0x0033, &key_share);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, ed25519
    extension(
        &mut extensions,
        0x000d,
        &[0, 6, 0x04, 0x03, 0x08, 0x04, 0x08, 0x07],
    );
    extension(&mut extensions, 0x0010, &[0, 3, 2, b'h', b'2']); // ALPN: h2
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0, 6, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03]);
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(
        &u16::try_from(extensions.len())
            .expect("small")
            .to_be_bytes(),
    );
    body.extend_from_slice(&extensions);
    let len = u32::try_from(body.len()).expect("small").to_be_bytes();
    let mut handshake = vec![0x01, len[1], len[2], len[3]];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&u16::try_from(handshake.len()).expect("small").to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// Raises this process's soft open files limit to its hard limit (the members inherit it);
/// returns the soft limit now in force.
fn raise_open_files_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            eprintln!("could not raise the open files limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The idle connections this process can hold: `IDLE_CONNECTIONS`, or fewer (said on
/// stderr) when the open files limit is lower.
fn idle_connection_count() -> usize {
    let limit = raise_open_files_limit();
    let room = usize::try_from(limit.saturating_sub(FDS_SPARE)).unwrap_or(usize::MAX);
    if room < IDLE_CONNECTIONS {
        eprintln!(
            "open files limit {limit}: holding {room} idle connections, not {IDLE_CONNECTIONS}"
        );
    }
    room.min(IDLE_CONNECTIONS)
}

/// What the holder saw.
#[derive(Debug, Default)]
struct Held {
    /// Per kind: connections the server closed (each reopened in the next round).
    closed: Vec<(Idle, usize)>,
    /// Per kind: connections that got any bytes from the server.
    answered: Vec<(Idle, usize)>,
    /// Connections not established within `CONNECT_WAIT` (the listen backlog was full).
    connect_failures: usize,
}

/// How long a connection may take to be established before it is given up and reopened.
const CONNECT_WAIT: Duration = Duration::from_secs(3);

/// One idle connection: opened without blocking, its opening bytes sent once it is up.
struct Slot {
    kind: Idle,
    opening: Vec<u8>,
    socket: Option<TcpStream>,
    /// Opening bytes sent so far.
    sent: usize,
    opened_at: Instant,
    answered: bool,
}

/// What became of a slot's connection in a round.
enum Step {
    Open,
    ClosedByServer,
    NeverConnected,
}

impl Slot {
    fn new(kind: Idle) -> Slot {
        Slot {
            kind,
            opening: kind.opening(),
            socket: None,
            sent: 0,
            opened_at: Instant::now(),
            answered: false,
        }
    }

    /// Starts a connection without waiting for it (a blocking connect would hold the holder
    /// up for a second whenever the server's listen backlog is full).
    fn open(&mut self, addr: SocketAddr) {
        use rustix::net::{AddressFamily, SocketFlags, SocketType, connect, socket_with};
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let Ok(fd) = socket_with(AddressFamily::INET, SocketType::STREAM, flags, None) else {
            return;
        };
        match connect(&fd, &addr) {
            Ok(()) | Err(rustix::io::Errno::INPROGRESS) => {
                self.socket = Some(TcpStream::from(fd));
                self.sent = 0;
                self.opened_at = Instant::now();
            }
            Err(_) => {}
        }
    }

    fn step(&mut self) -> Step {
        let Some(socket) = self.socket.as_mut() else {
            return Step::ClosedByServer;
        };
        let connected = socket.peer_addr().is_ok();
        if !connected {
            if socket.take_error().ok().flatten().is_some() {
                return Step::ClosedByServer;
            }
            if self.opened_at.elapsed() > CONNECT_WAIT {
                return Step::NeverConnected;
            }
            return Step::Open;
        }
        while self.sent < self.opening.len() {
            match socket.write(&self.opening[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return Step::ClosedByServer,
            }
        }
        if still_open(socket, &mut self.answered) {
            Step::Open
        } else {
            Step::ClosedByServer
        }
    }
}

/// Reads what the server sent; false when it closed the connection.
fn still_open(socket: &mut TcpStream, answered: &mut bool) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => *answered = true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Holds `kinds.len()` idle connections to `addr` until `stop`, reopening each one the
/// server closes in the next round.
fn hold(addr: SocketAddr, kinds: &[Idle], stop: &AtomicBool) -> Held {
    let mut held = Held::default();
    let mut slots: Vec<Slot> = kinds.iter().map(|&kind| Slot::new(kind)).collect();
    let mut closed = vec![0usize; slots.len()];
    for slot in &mut slots {
        slot.open(addr);
    }
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(HOLD_ROUND);
        for (index, slot) in slots.iter_mut().enumerate() {
            match slot.step() {
                Step::Open => continue,
                Step::ClosedByServer => closed[index] += usize::from(slot.socket.is_some()),
                Step::NeverConnected => held.connect_failures += 1,
            }
            slot.socket = None;
            slot.open(addr);
        }
    }
    for kind in [Idle::Silent, Idle::H2Preface, Idle::TlsHello] {
        let of_kind = || {
            slots
                .iter()
                .zip(&closed)
                .filter(move |(s, _)| s.kind == kind)
        };
        held.closed.push((kind, of_kind().map(|(_, &n)| n).sum()));
        held.answered
            .push((kind, of_kind().filter(|(s, _)| s.answered).count()));
    }
    held
}

fn count(of: &[(Idle, usize)], kind: Idle) -> usize {
    of.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
}

/// The holder thread; `finish` stops it and returns what it saw.
struct Holder {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Held>,
}

impl Holder {
    fn start(addr: SocketAddr, kinds: Vec<Idle>) -> Holder {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || hold(addr, &kinds, &stop))
        };
        Holder { stop, thread }
    }

    fn finish(self) -> Held {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("holder")
    }
}

/// Puts and gets a key through etcdctl every `PROBE_INTERVAL` for `span`; returns the
/// failures, each with when it happened and what etcdctl said.
fn probe(cluster: &ProcCluster, span: Duration) -> (usize, Vec<String>) {
    let endpoint = cluster.endpoint(0);
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut probes = 0;
    while started.elapsed() < span {
        let this = Instant::now();
        probes += 1;
        let value = format!("v{probes}");
        let put = cluster.etcdctl(&endpoint, &["put", "probe", &value], None);
        let get = cluster.etcdctl(&endpoint, &["get", "probe", "--print-value-only"], None);
        let got = String::from_utf8_lossy(&get.stdout).trim().to_string();
        if !put.status.success() || !get.status.success() || got != value {
            failures.push(format!(
                "probe {probes} at {:.1}s: put {}, get {:?}: {}{}",
                started.elapsed().as_secs_f64(),
                put.status,
                got,
                String::from_utf8_lossy(&put.stderr).trim(),
                String::from_utf8_lossy(&get.stderr).trim()
            ));
        }
        std::thread::sleep(PROBE_INTERVAL.saturating_sub(this.elapsed()));
    }
    (probes, failures)
}

/// Starts a 1-member cluster, holds `first` and `second` idle connections half and half, and
/// probes; returns what the holder saw. Asserts every probe succeeded.
fn run(options: Options, first: Idle, second: Idle) -> Option<(ProcCluster, Held)> {
    if !etcdctl_available() {
        return None;
    }
    let count = idle_connection_count();
    let mut cluster = ProcCluster::start(1, options);
    assert!(
        cluster.wait_leader(Duration::from_secs(20)).is_some(),
        "no leader\n{}",
        cluster.logs()
    );
    let addr: SocketAddr = cluster.endpoint(0).parse().expect("addr");
    let kinds = (0..count)
        .map(|i| if i % 2 == 0 { first } else { second })
        .collect();
    let holder = Holder::start(addr, kinds);
    let (probes, failures) = probe(&cluster, HOLD);
    let held = holder.finish();
    eprintln!("{probes} probes against {count} idle connections: {held:?}");
    assert!(
        failures.is_empty(),
        "{} of {probes} probes failed with {count} idle connections held:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Some((cluster, held))
}

#[test]
fn idle_plaintext_connections_do_not_keep_clients_out() {
    let Some((_cluster, held)) = run(Options::default(), Idle::Silent, Idle::H2Preface) else {
        return;
    };
    // The silent ones never settle: the server closes them, and they come back.
    assert!(count(&held.closed, Idle::Silent) > 0, "{held:?}");
    assert!(
        count(&held.answered, Idle::H2Preface) > 0,
        "HTTP/2 was spoken"
    );
}

#[test]
fn unfinished_tls_handshakes_do_not_keep_clients_out() {
    let options = Options {
        tls: true,
        ..Options::default()
    };
    let Some((_cluster, held)) = run(options, Idle::Silent, Idle::TlsHello) else {
        return;
    };
    assert!(
        count(&held.answered, Idle::TlsHello) > 0,
        "the server began handshakes"
    );
    assert!(count(&held.closed, Idle::TlsHello) > 0, "{held:?}");
    assert!(count(&held.closed, Idle::Silent) > 0, "{held:?}");
}

/// With the usual soft limit of 1,024 open files the member cannot hold 2,000 connections:
/// it must close idle ones to let new clients in, not refuse the new clients.
#[test]
fn a_member_short_of_file_descriptors_evicts_idle_connections_for_new_clients() {
    let options = Options {
        open_files_max: Some(1024),
        ..Options::default()
    };
    let Some((cluster, held)) = run(options, Idle::Silent, Idle::H2Preface) else {
        return;
    };
    assert!(
        cluster.logs().contains("evicted for a new client"),
        "eviction was not needed: {held:?}\n{}",
        cluster.logs()
    );
}
