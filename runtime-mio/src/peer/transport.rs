//! The peer transport: dials, accepts, handshakes and moves frames for every peer.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

use super::backoff::Backoff;
use super::config::PeerConfig;
use super::conn::{CloseReason, Conn, Phase, READ_CHUNK_BYTES};
use super::error::PeerError;
use super::event::{PeerEvent, PeerStats};
use super::wire::SendQueue;

mod links;

/// Listeners one transport serves at most (etcd's `--listen-peer-urls` is a list). Their tokens
/// come first in the transport's range.
pub const LISTENERS_MAX: usize = 16;

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
    /// At most [`LISTENERS_MAX`]; the first is never removed.
    listeners: Vec<TcpListener>,
    local_addr: SocketAddr,
    token_base: usize,
    peers: BTreeMap<u64, Peer>,
    slots: Vec<Option<Conn>>,
    free_slots: Vec<usize>,
    inbound: usize,
    events: VecDeque<PeerEvent>,
    /// Reconnect jitter, seeded through `PeerConfig` so that it replays like the core's.
    rng: super::jitter::Jitter,
    stats: PeerStats,
    scratch_ids: Vec<u64>,
    /// Read buffer shared by all connections (`READ_CHUNK_BYTES`).
    scratch: Vec<u8>,
    accept_retry_at: Option<Instant>,
    /// Dial every peer, not only those with a higher id (see [`Self::set_dial_every_peer`]).
    dial_every_peer: bool,
}

impl PeerTransport {
    /// Takes over `listener` (registered as `token_base`; [`Self::add_listener`] adds more).
    /// Connections use the tokens after the listeners': the transport owns
    /// `token_base .. token_base + LISTENERS_MAX + connections_max + peers_max`.
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
            token_base.checked_add(LISTENERS_MAX + slots_max).is_some(),
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
            rng: super::jitter::Jitter::new(config.seed()),
            config,
            listeners: vec![listener],
            local_addr,
            token_base,
            peers: BTreeMap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            inbound: 0,
            events: VecDeque::new(),
            stats: PeerStats::default(),
            scratch_ids: Vec::new(),
            scratch: vec![0; READ_CHUNK_BYTES],
            accept_retry_at: None,
            dial_every_peer: false,
        };
        for &(id, addr) in peers {
            transport.add_peer(id, addr, now)?;
        }
        Ok(transport)
    }

    /// Accepts peers on `listener` too (with the same TLS settings as the first), e.g. a
    /// second `--listen-peer-urls` address. Fails when [`LISTENERS_MAX`] are served already.
    pub fn add_listener(
        &mut self,
        mut listener: TcpListener,
        registry: &Registry,
    ) -> Result<SocketAddr, PeerError> {
        let index = self.listeners.len();
        if index == LISTENERS_MAX {
            return Err(PeerError::InvalidConfig(
                "more than LISTENERS_MAX peer listeners",
            ));
        }
        let io = |op| move |source| PeerError::Io { op, source };
        let local_addr = listener.local_addr().map_err(io("listener address"))?;
        registry
            .register(
                &mut listener,
                Token(self.token_base + index),
                Interest::READABLE,
            )
            .map_err(io("register listener"))?;
        self.listeners.push(listener);
        Ok(local_addr)
    }

    /// Whether `token` belongs to this transport.
    pub fn owns(&self, token: Token) -> bool {
        let slots_max = self.config.connections_max() + self.config.peers_max();
        token.0 >= self.token_base && token.0 < self.token_base + LISTENERS_MAX + slots_max
    }

    /// The address the first listener is bound to.
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
    /// `frame_bytes_max`, or a full queue. Raft retries, so dropping is safe; a loop may
    /// also treat `false` as a sign to call `tally_core::Node::report_unreachable`, since
    /// `Disconnected` only follows a link that was up.
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
        let Some(index) = event.token().0.checked_sub(self.token_base) else {
            return;
        };
        if index < LISTENERS_MAX {
            self.accept_all(registry, index, now);
            return;
        }
        let slot = index - LISTENERS_MAX;
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
        if self.accept_retry_at.is_some_and(|t| t <= now) {
            self.accept_retry_at = None;
            for index in 0..self.listeners.len() {
                self.accept_all(registry, index, now);
            }
        }
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
        dials.chain(conns).chain(self.accept_retry_at).min()
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
        self.local_id < id || self.dial_every_peer
    }

    /// Normally only the member with the lower id dials. A member that has not joined its
    /// cluster, or has just restarted, dials every peer too: a peer that does not know it, or
    /// belongs to another cluster, never dials it, and only a dial of its own gets the refusal
    /// that says why ([`PeerEvent::Refused`]). A peer with a lower id that does know it
    /// answers "the member with the lower id must dial" and dials it at once.
    pub fn set_dial_every_peer(&mut self, on: bool, now: Instant) {
        self.dial_every_peer = on;
        let local_id = self.local_id;
        for (&id, peer) in &mut self.peers {
            if id < local_id && peer.slot.is_none() {
                peer.next_dial = on.then_some(now);
            }
        }
    }

    fn token(&self, slot: usize) -> Token {
        Token(self.token_base + LISTENERS_MAX + slot)
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
}
