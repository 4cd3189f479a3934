//! The peer transport: dials, accepts, handshakes and moves frames for every peer.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;

use super::backoff::{Backoff, Rng};
use super::config::PeerConfig;
use super::conn::{CloseReason, Conn, Phase, ReadStep};
use super::error::PeerError;
use super::wire::{self, HANDSHAKE_FRAME_BYTES_MAX, HandshakeStatus, SendQueue};

/// What the transport reports to the event loop, drained with [`PeerTransport::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// A frame from a connected peer (a `tally_core::codec` encoded message, for tallyd).
    Frame {
        /// The member that sent it.
        from: u64,
        /// The frame's payload.
        frame: Bytes,
    },
    /// A link to the peer completed its handshake; queued frames are flowing.
    Connected {
        /// The member.
        peer: u64,
    },
    /// The link to the peer broke (tallyd calls `tally_core::Node::report_unreachable`).
    Disconnected {
        /// The member.
        peer: u64,
    },
}

/// Counters, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    frames_sent: u64,
    frames_received: u64,
    frames_dropped: u64,
    handshakes_rejected: u64,
    connections_refused: u64,
}

impl PeerStats {
    /// Frames fully handed to the kernel (or to rustls).
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent
    }
    /// Frames delivered as [`PeerEvent::Frame`].
    pub fn frames_received(&self) -> u64 {
        self.frames_received
    }
    /// Frames refused by [`PeerTransport::send`]: unknown peer, empty or oversized frame, or
    /// full queue.
    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped
    }
    /// Inbound connections closed before finishing the handshake (garbage, wrong cluster
    /// token, unknown member, TLS failure, timeout).
    pub fn handshakes_rejected(&self) -> u64 {
        self.handshakes_rejected
    }
    /// Inbound connections refused because `connections_max` were open.
    pub fn connections_refused(&self) -> u64 {
        self.connections_refused
    }
}

#[derive(Debug)]
struct Peer {
    addr: SocketAddr,
    queue: SendQueue,
    /// The connection serving this peer: outbound while dialing, or the established one.
    slot: Option<usize>,
    established: bool,
    backoff: Backoff,
    /// Dialer side only: when to dial next while there is no connection.
    next_dial: Option<Instant>,
}

/// Moves opaque frames between this member and its peers. See the [module docs](super).
#[derive(Debug)]
pub struct PeerTransport {
    config: PeerConfig,
    local_id: u64,
    listener: TcpListener,
    local_addr: SocketAddr,
    token_base: usize,
    peers: BTreeMap<u64, Peer>,
    slots: Vec<Option<Conn>>,
    free_slots: Vec<usize>,
    inbound: usize,
    events: VecDeque<PeerEvent>,
    rng: Rng,
    stats: PeerStats,
    scratch_ids: Vec<u64>,
}

impl PeerTransport {
    /// Takes over `listener` (registered as `token_base`). Connections use the tokens after it:
    /// the transport owns `token_base ..= token_base + connections_max + peers_max`.
    /// Peers with a higher id than ours are dialed from the first [`Self::handle_timeouts`].
    pub fn new(
        mut listener: TcpListener,
        token_base: usize,
        registry: &Registry,
        config: PeerConfig,
        peers: &[(u64, SocketAddr)],
        now: Instant,
    ) -> Result<Self, PeerError> {
        config.validate()?;
        let local_addr = listener.local_addr().map_err(|source| PeerError::Io {
            op: "listener address",
            source,
        })?;
        let slots_max = config.connections_max() + config.peers_max();
        assert!(
            token_base.checked_add(slots_max + 1).is_some(),
            "token range overflows"
        );
        registry
            .register(&mut listener, Token(token_base), Interest::READABLE)
            .map_err(|source| PeerError::Io {
                op: "register listener",
                source,
            })?;
        let mut transport = PeerTransport {
            local_id: config.local_id(),
            rng: Rng::new(config.seed()),
            config,
            listener,
            local_addr,
            token_base,
            peers: BTreeMap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            inbound: 0,
            events: VecDeque::new(),
            stats: PeerStats::default(),
            scratch_ids: Vec::new(),
        };
        for &(id, addr) in peers {
            transport.add_peer(id, addr, now)?;
        }
        Ok(transport)
    }

    /// Whether `token` belongs to this transport.
    pub fn owns(&self, token: Token) -> bool {
        let slots_max = self.config.connections_max() + self.config.peers_max();
        token.0 >= self.token_base && token.0 <= self.token_base + slots_max
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Counters since start.
    pub fn stats(&self) -> PeerStats {
        self.stats
    }

    /// Whether a handshaken link to `id` is up.
    pub fn is_connected(&self, id: u64) -> bool {
        self.peers.get(&id).is_some_and(|p| p.established)
    }

    /// Bytes queued for `id` (frame headers included), or `None` for an unknown peer.
    pub fn queued_bytes(&self, id: u64) -> Option<usize> {
        self.peers.get(&id).map(|p| p.queue.bytes())
    }

    /// The next event, in the order things happened.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// Queues `frame` for `to`; it is written by the next [`Self::flush`] once a link is up.
    /// False (frame dropped and counted) for an unknown peer, an empty frame, a frame over
    /// `frame_bytes_max`, or a full queue. Raft retries, so dropping is safe.
    pub fn send(&mut self, to: u64, frame: Bytes) -> bool {
        let frame_max = self.config.frame_bytes_max();
        let queued = match self.peers.get_mut(&to) {
            Some(peer) if !frame.is_empty() && frame.len() <= frame_max => peer.queue.push(frame),
            _ => false,
        };
        if !queued {
            self.stats.frames_dropped += 1;
        }
        queued
    }

    /// Learns a new member. Dials it at `now` if its id is higher than ours.
    pub fn add_peer(&mut self, id: u64, addr: SocketAddr, now: Instant) -> Result<(), PeerError> {
        if id == self.local_id {
            return Err(PeerError::SelfPeer(id));
        }
        if self.peers.contains_key(&id) {
            return Err(PeerError::DuplicatePeer(id));
        }
        if self.peers.len() >= self.config.peers_max() {
            return Err(PeerError::TooManyPeers {
                max: self.config.peers_max(),
            });
        }
        let (min_ms, max_ms) = self.config.backoff_ms();
        let dials = self.dials(id);
        self.peers.insert(
            id,
            Peer {
                addr,
                queue: SendQueue::new(self.config.send_queue_bytes_max()),
                slot: None,
                established: false,
                backoff: Backoff::new(min_ms, max_ms),
                next_dial: dials.then_some(now),
            },
        );
        Ok(())
    }

    /// Forgets a member: closes its link and drops its queue. No event is reported.
    pub fn remove_peer(
        &mut self,
        registry: &Registry,
        id: u64,
        now: Instant,
    ) -> Result<(), PeerError> {
        let peer = self.peers.remove(&id).ok_or(PeerError::UnknownPeer(id))?;
        if let Some(slot) = peer.slot
            && let Some(conn) = self.slots[slot].take()
        {
            self.close_conn(registry, slot, conn, CloseReason::Removed, now);
        }
        Ok(())
    }

    /// Changes a member's address. When we dial it, the current link is closed (reported as
    /// `Disconnected`) and the new address is dialed at once.
    pub fn update_peer(
        &mut self,
        registry: &Registry,
        id: u64,
        addr: SocketAddr,
        now: Instant,
    ) -> Result<(), PeerError> {
        let dials = self.dials(id);
        let peer = self.peers.get_mut(&id).ok_or(PeerError::UnknownPeer(id))?;
        if peer.addr == addr {
            return Ok(());
        }
        peer.addr = addr;
        if !dials {
            // The peer dials us; its next connection replaces the current one.
            return Ok(());
        }
        if let Some(slot) = peer.slot
            && let Some(conn) = self.slots[slot].take()
        {
            self.close_conn(registry, slot, conn, CloseReason::AddressChanged, now);
        }
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.backoff.reset();
            peer.next_dial = Some(now);
        }
        Ok(())
    }

    /// Handles a readiness event for a token this transport [owns](Self::owns).
    pub fn handle_event(&mut self, registry: &Registry, event: &mio::event::Event, now: Instant) {
        let token = event.token();
        if token.0 == self.token_base {
            self.accept_all(registry, now);
            return;
        }
        let Some(slot) = token.0.checked_sub(self.token_base + 1) else {
            return;
        };
        self.drive(
            registry,
            slot,
            event.is_readable() || event.is_read_closed() || event.is_error(),
            now,
        );
    }

    /// Dials peers whose backoff expired, enforces handshake and idle timeouts, queues
    /// keepalives and resumes reads that stopped at `read_batch_bytes_max`.
    pub fn handle_timeouts(&mut self, registry: &Registry, now: Instant) {
        let mut due = std::mem::take(&mut self.scratch_ids);
        due.clear();
        due.extend(self.peers.iter().filter_map(|(&id, peer)| {
            (peer.slot.is_none() && peer.next_dial.is_some_and(|t| t <= now)).then_some(id)
        }));
        for &id in &due {
            self.dial(registry, id, now);
        }
        self.scratch_ids = due;

        let keepalive = Duration::from_millis(self.config.keepalive_interval_ms());
        let idle = Duration::from_millis(self.config.idle_timeout_ms());
        for slot in 0..self.slots.len() {
            let Some(conn) = self.slots[slot].as_ref() else {
                continue;
            };
            let reason = match conn.phase {
                Phase::Established { .. } if conn.last_recv + idle <= now => {
                    Some(CloseReason::IdleTimeout)
                }
                Phase::Established { .. } => None,
                _ if conn.handshake_deadline.is_some_and(|t| t <= now) => {
                    Some(CloseReason::HandshakeTimeout)
                }
                _ => None,
            };
            let keepalive_for = match conn.phase {
                Phase::Established { peer } if conn.last_send + keepalive <= now => Some(peer),
                _ => None,
            };
            let paused = conn.read_paused_at.is_some();
            if let Some(reason) = reason {
                if let Some(conn) = self.slots[slot].take() {
                    self.close_conn(registry, slot, conn, reason, now);
                }
                continue;
            }
            if let Some(peer) = keepalive_for.and_then(|id| self.peers.get_mut(&id))
                && peer.queue.is_empty()
            {
                // An empty frame proves liveness and flushes out half-open connections.
                let _ = peer.queue.push(Bytes::new());
            }
            if paused {
                self.drive(registry, slot, true, now);
            }
        }
    }

    /// The earliest instant [`Self::handle_timeouts`] has work; may be in the past (poll
    /// without blocking then).
    pub fn next_deadline(&self) -> Option<Instant> {
        let keepalive = Duration::from_millis(self.config.keepalive_interval_ms());
        let idle = Duration::from_millis(self.config.idle_timeout_ms());
        let dials = self
            .peers
            .values()
            .filter(|p| p.slot.is_none())
            .filter_map(|p| p.next_dial);
        let conns = self.slots.iter().flatten().filter_map(|conn| {
            let mut earliest = conn.read_paused_at;
            let mut consider = |t: Instant| {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            };
            match conn.phase {
                Phase::Established { peer } => {
                    consider(conn.last_recv + idle);
                    if self.peers.get(&peer).is_some_and(|p| p.queue.is_empty()) {
                        consider(conn.last_send + keepalive);
                    }
                }
                _ => conn.handshake_deadline.into_iter().for_each(&mut consider),
            }
            earliest
        });
        dials.chain(conns).min()
    }

    /// Writes queued frames on every link that has any, with as few syscalls as the socket
    /// allows. Call once per loop turn, after the turn's `send`s.
    pub fn flush(&mut self, registry: &Registry, now: Instant) {
        for slot in 0..self.slots.len() {
            let Some(conn) = self.slots[slot].as_ref() else {
                continue;
            };
            let queue = match conn.phase {
                Phase::Established { peer } => self.peers.get(&peer).map(|p| &p.queue),
                _ => None,
            };
            if conn.phase != Phase::Connecting && conn.wants_write(queue) {
                self.drive(registry, slot, false, now);
            }
        }
    }

    fn dials(&self, id: u64) -> bool {
        self.local_id < id
    }

    fn token(&self, slot: usize) -> Token {
        Token(self.token_base + 1 + slot)
    }

    fn alloc_slot(&mut self) -> Option<usize> {
        if let Some(slot) = self.free_slots.pop() {
            return Some(slot);
        }
        if self.slots.len() < self.config.connections_max() + self.config.peers_max() {
            self.slots.push(None);
            return Some(self.slots.len() - 1);
        }
        None
    }

    fn accept_all(&mut self, registry: &Registry, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, remote)) => self.accept_one(registry, stream, remote, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    eprintln!("tally peer {:x}: accept failed: {e}", self.local_id);
                    return;
                }
            }
        }
    }

    fn accept_one(
        &mut self,
        registry: &Registry,
        mut stream: TcpStream,
        remote: SocketAddr,
        now: Instant,
    ) {
        let refuse = |this: &mut Self, why: &dyn std::fmt::Display| {
            this.stats.connections_refused += 1;
            eprintln!(
                "tally peer {:x}: refused connection from {remote}: {why}",
                this.local_id
            );
        };
        if self.inbound >= self.config.connections_max() {
            return refuse(self, &"connections_max reached");
        }
        let Some(slot) = self.alloc_slot() else {
            return refuse(self, &"no free connection slot");
        };
        let tls = match self.config.tls() {
            None => None,
            Some(tls) => match rustls::ServerConnection::new(tls.server().clone()) {
                Ok(server) => Some(rustls::Connection::Server(server)),
                Err(e) => {
                    self.free_slots.push(slot);
                    return refuse(self, &e);
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let token = self.token(slot);
        if let Err(e) =
            registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            self.free_slots.push(slot);
            return refuse(self, &e);
        }
        let deadline = now + Duration::from_millis(self.config.handshake_timeout_ms());
        let conn = Conn::new(stream, tls, remote, Phase::AwaitHello, None, deadline, now);
        self.inbound += 1;
        self.slots[slot] = Some(conn);
        // Bytes that arrived before registration are reported by the first poll anyway.
    }

    fn dial(&mut self, registry: &Registry, id: u64, now: Instant) {
        let Some(addr) = self.peers.get(&id).map(|p| p.addr) else {
            return;
        };
        let Some(slot) = self.alloc_slot() else {
            return self.dial_failed(id, &"no free connection slot", now);
        };
        let tls = match self.config.tls() {
            None => None,
            Some(tls) => {
                let name = tls
                    .server_name()
                    .cloned()
                    .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
                match rustls::ClientConnection::new(tls.client().clone(), name) {
                    Ok(client) => Some(rustls::Connection::Client(client)),
                    Err(e) => {
                        self.free_slots.push(slot);
                        return self.dial_failed(id, &CloseReason::Tls(e), now);
                    }
                }
            }
        };
        let mut stream = match TcpStream::connect(addr) {
            Ok(stream) => stream,
            Err(e) => {
                self.free_slots.push(slot);
                return self.dial_failed(id, &CloseReason::Io(e), now);
            }
        };
        let _ = stream.set_nodelay(true);
        let token = self.token(slot);
        if let Err(e) =
            registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            self.free_slots.push(slot);
            return self.dial_failed(id, &CloseReason::Io(e), now);
        }
        let deadline = now + Duration::from_millis(self.config.handshake_timeout_ms());
        let mut conn = Conn::new(
            stream,
            tls,
            addr,
            Phase::Connecting,
            Some(id),
            deadline,
            now,
        );
        let hello = wire::encode_hello(self.config.cluster_token(), self.local_id, id);
        let queued = conn.control.push(hello);
        debug_assert!(queued);
        self.slots[slot] = Some(conn);
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.slot = Some(slot);
            peer.next_dial = None;
        }
    }

    /// Schedules the next dial; logs only the first failure of an outage.
    fn dial_failed(&mut self, id: u64, reason: &dyn std::fmt::Display, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.slot = None;
        if peer.backoff.failures() == 0 {
            eprintln!(
                "tally peer {:x}: cannot reach peer {id:x} at {}: {reason} (retrying with backoff)",
                self.local_id, peer.addr
            );
        }
        let delay = peer.backoff.next_delay(&mut self.rng);
        peer.next_dial = Some(now + delay);
    }

    /// Runs reads (if `readable`) and writes on one connection; closes it on any error.
    fn drive(&mut self, registry: &Registry, slot: usize, readable: bool, now: Instant) {
        let Some(mut conn) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        match self.drive_conn(registry, slot, &mut conn, readable, now) {
            Ok(()) => self.slots[slot] = Some(conn),
            Err(reason) => self.close_conn(registry, slot, conn, reason, now),
        }
    }

    fn drive_conn(
        &mut self,
        registry: &Registry,
        slot: usize,
        conn: &mut Conn,
        readable: bool,
        now: Instant,
    ) -> Result<(), CloseReason> {
        if conn.phase == Phase::Connecting {
            if !conn.connect_finished()? {
                return Ok(());
            }
            conn.phase = Phase::AwaitAck;
        }
        if readable || conn.read_paused_at.is_some() {
            self.read_conn(registry, slot, conn, now)?;
        }
        let queue = match conn.phase {
            Phase::Established { peer } => self.peers.get_mut(&peer).map(|p| &mut p.queue),
            _ => None,
        };
        self.stats.frames_sent += conn.write_out(queue, now)?;
        Ok(())
    }

    fn read_conn(
        &mut self,
        registry: &Registry,
        slot: usize,
        conn: &mut Conn,
        now: Instant,
    ) -> Result<(), CloseReason> {
        conn.read_paused_at = None;
        let mut read_bytes = 0;
        loop {
            match conn.read_step()? {
                ReadStep::Data(n) => {
                    conn.last_recv = now;
                    read_bytes += n;
                    self.parse_frames(registry, slot, conn, now)?;
                    if read_bytes >= self.config.read_batch_bytes_max() {
                        conn.read_paused_at = Some(now);
                        return Ok(());
                    }
                }
                ReadStep::WouldBlock => return Ok(()),
                ReadStep::Eof => return Err(CloseReason::Eof),
            }
        }
    }

    fn parse_frames(
        &mut self,
        registry: &Registry,
        slot: usize,
        conn: &mut Conn,
        now: Instant,
    ) -> Result<(), CloseReason> {
        loop {
            let max = match conn.phase {
                Phase::Connecting => return Ok(()),
                Phase::AwaitHello | Phase::AwaitAck => HANDSHAKE_FRAME_BYTES_MAX,
                Phase::Established { .. } => self.config.frame_bytes_max(),
            };
            let frame = match wire::split_frame(&mut conn.read_buf, max) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(too_large) if conn.phase == Phase::AwaitHello => {
                    // A hello is small: a huge length means this is not a tally peer.
                    let _ = too_large;
                    return Err(CloseReason::Garbage(wire::HandshakeDecodeError::BadMagic));
                }
                Err(too_large) => return Err(CloseReason::FrameTooLarge(too_large)),
            };
            match conn.phase {
                Phase::AwaitHello => self.on_hello(registry, slot, conn, &frame, now)?,
                Phase::AwaitAck => self.on_ack(slot, conn, &frame)?,
                Phase::Established { peer } => {
                    // Empty frames are keepalives.
                    if !frame.is_empty() {
                        self.stats.frames_received += 1;
                        self.events
                            .push_back(PeerEvent::Frame { from: peer, frame });
                    }
                }
                Phase::Connecting => return Ok(()),
            }
        }
    }

    fn on_hello(
        &mut self,
        registry: &Registry,
        slot: usize,
        conn: &mut Conn,
        frame: &Bytes,
        now: Instant,
    ) -> Result<(), CloseReason> {
        let hello = wire::decode_hello(frame).map_err(CloseReason::Garbage)?;
        let status = if hello.version != wire::PROTOCOL_VERSION {
            HandshakeStatus::VersionMismatch
        } else if hello.cluster_token != self.config.cluster_token() {
            HandshakeStatus::ClusterTokenMismatch
        } else if hello.to != self.local_id {
            HandshakeStatus::WrongMember
        } else if !self.peers.contains_key(&hello.from) {
            HandshakeStatus::UnknownMember
        } else if hello.from > self.local_id {
            HandshakeStatus::WrongDirection
        } else {
            HandshakeStatus::Accepted
        };
        let _ = conn.control.push(wire::encode_ack(status, self.local_id));
        if status != HandshakeStatus::Accepted {
            return Err(CloseReason::Rejected(status));
        }
        let id = hello.from;
        // Keep the newest connection: the old one is from before a restart or is half-open.
        if let Some(old_slot) = self.peers.get(&id).and_then(|p| p.slot)
            && old_slot != slot
            && let Some(old) = self.slots[old_slot].take()
        {
            self.close_conn(registry, old_slot, old, CloseReason::Replaced, now);
        }
        self.establish(slot, conn, id);
        Ok(())
    }

    fn on_ack(&mut self, slot: usize, conn: &mut Conn, frame: &Bytes) -> Result<(), CloseReason> {
        let ack = wire::decode_ack(frame).map_err(CloseReason::Garbage)?;
        if ack.status != HandshakeStatus::Accepted {
            return Err(CloseReason::RefusedByPeer(ack.status));
        }
        let Some(id) = conn.dialed else {
            return Err(CloseReason::Garbage(wire::HandshakeDecodeError::BadMagic));
        };
        if ack.from != id {
            return Err(CloseReason::AckFromWrongMember(ack.from));
        }
        self.establish(slot, conn, id);
        Ok(())
    }

    fn establish(&mut self, slot: usize, conn: &mut Conn, id: u64) {
        conn.phase = Phase::Established { peer: id };
        conn.handshake_deadline = None;
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.slot = Some(slot);
            peer.established = true;
            peer.next_dial = None;
            peer.backoff.reset();
        }
        eprintln!(
            "tally peer {:x}: peer {id:x} connected ({} {}{})",
            self.local_id,
            if conn.is_inbound() { "from" } else { "to" },
            conn.remote(),
            if conn.is_tls() { ", TLS" } else { "" }
        );
        self.events.push_back(PeerEvent::Connected { peer: id });
    }

    fn close_conn(
        &mut self,
        registry: &Registry,
        slot: usize,
        mut conn: Conn,
        reason: CloseReason,
        now: Instant,
    ) {
        if matches!(reason, CloseReason::Rejected(_)) {
            // Best effort: the dialer logs the status instead of a bare EOF.
            let _ = conn.write_out(None, now);
        }
        conn.send_close_notify();
        let _ = registry.deregister(conn.stream_mut());
        self.free_slots.push(slot);
        if conn.is_inbound() {
            self.inbound -= 1;
        }
        match (conn.phase, conn.dialed) {
            (Phase::Established { peer: id }, _) => {
                let Some(peer) = self.peers.get_mut(&id) else {
                    eprintln!(
                        "tally peer {:x}: peer {id:x} disconnected: {reason}",
                        self.local_id
                    );
                    return;
                };
                if peer.slot != Some(slot) {
                    return;
                }
                peer.slot = None;
                peer.established = false;
                peer.queue.discard_partial_head();
                eprintln!(
                    "tally peer {:x}: peer {id:x} disconnected: {reason}",
                    self.local_id
                );
                self.events.push_back(PeerEvent::Disconnected { peer: id });
                if self.local_id < id {
                    let delay = peer.backoff.next_delay(&mut self.rng);
                    peer.next_dial = Some(now + delay);
                }
            }
            (_, Some(id)) => {
                if self.peers.get(&id).is_some_and(|p| p.slot == Some(slot)) {
                    self.dial_failed(id, &reason, now);
                }
            }
            (_, None) => {
                if reason.counts_as_rejection() {
                    self.stats.handshakes_rejected += 1;
                }
                eprintln!(
                    "tally peer {:x}: handshake rejected from {}: {reason}",
                    self.local_id,
                    conn.remote()
                );
            }
        }
    }
}
