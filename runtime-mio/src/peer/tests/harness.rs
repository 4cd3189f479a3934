use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mio::net::TcpListener;
use mio::{Events, Poll};

use crate::peer::wire;
use crate::peer::{PeerConfig, PeerEvent, PeerTransport};

pub(super) const TOKEN: &[u8] = b"tally-test-cluster";
const WAIT_MAX: Duration = Duration::from_secs(20);
const POLL_TIMEOUT_MAX: Duration = Duration::from_millis(20);

pub(super) fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Fast timers so reconnect and timeout tests finish quickly.
pub(super) fn config(id: u64) -> PeerConfig {
    PeerConfig::new(id, TOKEN)
        .with_backoff_ms(5, 100)
        .with_handshake_timeout_ms(2_000)
}

#[derive(Debug)]
pub(super) struct Member {
    pub(super) transport: PeerTransport,
    /// Every event polled so far, in order.
    pub(super) log: Vec<PeerEvent>,
}

impl Member {
    pub(super) fn frames_from(&self, from: u64) -> Vec<Bytes> {
        self.log
            .iter()
            .filter_map(|e| match e {
                PeerEvent::Frame { from: f, frame, .. } if *f == from => Some(frame.clone()),
                _ => None,
            })
            .collect()
    }

    pub(super) fn count(&self, event: &PeerEvent) -> usize {
        self.log.iter().filter(|e| *e == event).count()
    }
}

/// Several transports in one `Poll`.
#[derive(Debug)]
pub(super) struct Net {
    poll: Poll,
    events: Events,
    pub(super) members: BTreeMap<u64, Member>,
}

impl Net {
    pub(super) fn new() -> Self {
        Net {
            poll: Poll::new().unwrap(),
            events: Events::with_capacity(256),
            members: BTreeMap::new(),
        }
    }

    pub(super) fn start(
        &mut self,
        config: PeerConfig,
        listener: TcpListener,
        peers: &[(u64, SocketAddr)],
    ) -> SocketAddr {
        let id = config.local_id();
        let transport = PeerTransport::new(
            listener,
            (id as usize + 1) * 1000,
            self.poll.registry(),
            config,
            peers,
            Instant::now(),
        )
        .unwrap();
        let addr = transport.local_addr();
        self.members.insert(
            id,
            Member {
                transport,
                log: Vec::new(),
            },
        );
        addr
    }

    /// Starts members `ids` that all know each other, plaintext or with `tls`.
    pub(super) fn cluster(
        ids: &[u64],
        config: impl Fn(u64) -> PeerConfig,
    ) -> (Net, BTreeMap<u64, SocketAddr>) {
        let listeners: Vec<(u64, TcpListener)> = ids.iter().map(|&id| (id, listener())).collect();
        let addrs: BTreeMap<u64, SocketAddr> = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().unwrap()))
            .collect();
        let mut net = Net::new();
        for (id, listener) in listeners {
            let peers: Vec<(u64, SocketAddr)> = addrs
                .iter()
                .filter(|(p, _)| **p != id)
                .map(|(p, a)| (*p, *a))
                .collect();
            net.start(config(id), listener, &peers);
        }
        (net, addrs)
    }

    pub(super) fn member(&mut self, id: u64) -> &mut Member {
        self.members.get_mut(&id).unwrap()
    }

    pub(super) fn transport(&mut self, id: u64) -> &mut PeerTransport {
        &mut self.member(id).transport
    }

    pub(super) fn registry(&self) -> &mio::Registry {
        self.poll.registry()
    }

    /// Stops a member: its sockets close when the transport drops.
    pub(super) fn kill(&mut self, id: u64) {
        self.members.remove(&id);
    }

    /// One loop turn for every member, as tallyd's loop runs it.
    pub(super) fn turn(&mut self) {
        let now = Instant::now();
        let deadline = self
            .members
            .values()
            .filter_map(|m| m.transport.next_deadline())
            .min();
        let timeout = deadline
            .map_or(POLL_TIMEOUT_MAX, |d| d.saturating_duration_since(now))
            .min(POLL_TIMEOUT_MAX);
        self.poll.poll(&mut self.events, Some(timeout)).unwrap();
        let now = Instant::now();
        let registry = self.poll.registry();
        for event in self.events.iter() {
            for member in self.members.values_mut() {
                if member.transport.owns(event.token()) {
                    member.transport.handle_event(registry, event, now);
                }
            }
        }
        for member in self.members.values_mut() {
            member.transport.handle_timeouts(registry, now);
            while let Some(event) = member.transport.poll_event() {
                member.log.push(event);
            }
            member.transport.flush(registry, now);
        }
    }

    /// Turns until `done` holds; panics naming `what` after a generous deadline.
    pub(super) fn run_until(&mut self, what: &str, mut done: impl FnMut(&mut Net) -> bool) {
        let deadline = Instant::now() + WAIT_MAX;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.turn();
        }
    }

    /// Turns for a while (for "nothing happens" checks), bounded by turns, not sleeps.
    pub(super) fn run_for(&mut self, duration: Duration) {
        let end = Instant::now() + duration;
        while Instant::now() < end {
            self.turn();
        }
    }

    pub(super) fn all_connected(&self) -> bool {
        self.members.iter().all(|(id, m)| {
            self.members
                .keys()
                .filter(|p| *p != id)
                .all(|p| m.transport.is_connected(*p))
        })
    }
}

/// A hand-driven peer connection speaking the wire protocol over a non-blocking std socket.
#[derive(Debug)]
pub(super) struct RawPeer {
    stream: std::net::TcpStream,
    buf: BytesMut,
    pub(super) closed: bool,
}

impl RawPeer {
    pub(super) fn connect(addr: SocketAddr) -> Self {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_nonblocking(true).unwrap();
        RawPeer {
            stream,
            buf: BytesMut::new(),
            closed: false,
        }
    }

    pub(super) fn write_raw(&mut self, bytes: &[u8]) {
        // Small writes into an empty socket buffer: never short on loopback.
        self.stream.write_all(bytes).unwrap();
    }

    pub(super) fn write_frame(&mut self, payload: &[u8]) {
        let mut out = (payload.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(payload);
        self.write_raw(&out);
    }

    pub(super) fn hello(&mut self, token: &[u8], from: u64, to: u64) {
        let hello = wire::encode_hello(token, from, to);
        self.write_frame(&hello);
    }

    /// Reads what is available; records EOF or reset as `closed`.
    pub(super) fn pump(&mut self) {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }

    pub(super) fn next_frame(&mut self) -> Option<Bytes> {
        self.pump();
        wire::split_frame(&mut self.buf, 1 << 20).unwrap()
    }

    pub(super) fn is_closed(&mut self) -> bool {
        self.pump();
        self.closed
    }
}

/// Waits (driving `net`) for the raw peer's next frame.
pub(super) fn raw_frame(net: &mut Net, raw: &mut RawPeer, what: &str) -> Bytes {
    let mut got = None;
    net.run_until(what, |_| {
        got = raw.next_frame();
        got.is_some()
    });
    got.unwrap()
}

pub(super) fn ack_status(frame: &Bytes) -> wire::HandshakeStatus {
    wire::decode_ack(frame).unwrap().status
}

/// Payload `k` from `from` to `to`, of a size that varies with `k`; it starts with a known
/// frame kind's tag, as every frame tallyd sends does.
pub(super) fn payload(from: u64, to: u64, k: usize) -> Bytes {
    let mut out = vec![crate::peer::FrameKind::Raft.tag()];
    out.extend_from_slice(format!("{from}->{to}#{k}:").as_bytes());
    out.resize(out.len() + (k * 37) % 3000, b'x');
    Bytes::from(out)
}
