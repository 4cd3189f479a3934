//! Connection lifecycle: accept, dial, read, handshake, establish and close.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::TcpStream;
use mio::{Interest, Registry};
use rustls::pki_types::ServerName;

use super::PeerTransport;
use crate::peer::conn::{CloseReason, Conn, Phase, ReadStep};
use crate::peer::event::PeerEvent;
use crate::peer::frame::{self, FrameKind};
use crate::peer::wire::{self, HANDSHAKE_FRAME_BYTES_MAX, HandshakeStatus};

/// Delay before accepting again after a hard `accept` error.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

impl PeerTransport {
    /// Accepts every pending connection on listener `index` (none for an unknown one).
    pub(super) fn accept_all(&mut self, registry: &Registry, index: usize, now: Instant) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
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
                    // E.g. out of file descriptors: the listener stays readable, but an
                    // edge-triggered poll would not say so again. Retry from the timer.
                    eprintln!("tally peer {:x}: accept failed: {e}", self.local_id);
                    self.accept_retry_at = Some(now + ACCEPT_RETRY);
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

    pub(super) fn dial(&mut self, registry: &Registry, id: u64, now: Instant) {
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
        let dials = self.dials(id);
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.slot = None;
        if !dials {
            // The peer dials this member (it stopped dialing every peer meanwhile).
            peer.next_dial = None;
            return;
        }
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
    pub(super) fn drive(&mut self, registry: &Registry, slot: usize, readable: bool, now: Instant) {
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
            match conn.read_step(&mut self.scratch)? {
                ReadStep::Data { bytes, drained } => {
                    conn.last_recv = now;
                    read_bytes += bytes;
                    self.parse_frames(registry, slot, conn, now)?;
                    if drained {
                        return Ok(());
                    }
                    if read_bytes >= self.config.read_batch_bytes_max() {
                        conn.read_paused_at = Some(now);
                        return Ok(());
                    }
                }
                ReadStep::WouldBlock => return Ok(()),
                ReadStep::Eof => {
                    // TLS can deliver the last plaintext together with close_notify.
                    self.parse_frames(registry, slot, conn, now)?;
                    return Err(CloseReason::Eof);
                }
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
                    if let Some(&tag) = frame.first() {
                        self.stats.frames_received += 1;
                        self.on_frame(peer, tag, frame);
                    }
                }
                Phase::Connecting => return Ok(()),
            }
        }
    }

    /// Reports a frame by its kind; answers one of a kind this member does not know.
    fn on_frame(&mut self, peer: u64, tag: u8, frame: Bytes) {
        match FrameKind::of_tag(tag) {
            Some(FrameKind::Unsupported) => match frame::decode_unsupported(&frame) {
                Some(tag) => self.events.push_back(PeerEvent::Unsupported { peer, tag }),
                None => eprintln!(
                    "tally peer {:x}: malformed unsupported-kind answer from peer {peer:x}",
                    self.local_id
                ),
            },
            Some(kind) => self.events.push_back(PeerEvent::Frame {
                from: peer,
                kind,
                frame,
            }),
            None => {
                eprintln!(
                    "tally peer {:x}: peer {peer:x} sent a frame of unknown kind {tag:#04x} \
                     (a newer release?); answering that it is unsupported",
                    self.local_id
                );
                let answered = self
                    .peers
                    .get_mut(&peer)
                    .is_some_and(|p| p.queue.push(frame::encode_unsupported(tag)));
                if !answered {
                    self.stats.frames_dropped += 1;
                }
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
        let version = wire::common_version(hello.versions);
        let status = if version.is_none() {
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
        let ack_version = version.unwrap_or(wire::PROTOCOL_VERSION_MAX);
        let _ = conn
            .control
            .push(wire::encode_ack(ack_version, status, self.local_id));
        if version.is_none() {
            return Err(CloseReason::NoCommonVersion {
                theirs: hello.versions,
            });
        }
        if status == HandshakeStatus::WrongDirection
            && let Some(peer) = self.peers.get_mut(&hello.from)
            && peer.slot.is_none()
        {
            // The peer is back (a restarted member dials every peer until it hears a leader):
            // dial it now, not when the backoff from its outage says.
            peer.next_dial = Some(now);
        }
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
        let speaks =
            (wire::PROTOCOL_VERSION_MIN..=wire::PROTOCOL_VERSION_MAX).contains(&ack.version);
        if ack.status == HandshakeStatus::VersionMismatch
            || (ack.status == HandshakeStatus::Accepted && !speaks)
        {
            return Err(CloseReason::PeerVersion {
                theirs: ack.version,
            });
        }
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

    pub(super) fn close_conn(
        &mut self,
        registry: &Registry,
        slot: usize,
        mut conn: Conn,
        reason: CloseReason,
        now: Instant,
    ) {
        if matches!(
            reason,
            CloseReason::Rejected(_) | CloseReason::NoCommonVersion { .. }
        ) {
            // Best effort: the dialer logs the status instead of a bare EOF.
            let _ = conn.write_out(None, now);
        }
        conn.send_close_notify();
        let _ = registry.deregister(conn.stream_mut());
        self.free_slots.push(slot);
        if conn.is_inbound() {
            self.inbound -= 1;
        }
        if reason.is_refusal() && !matches!(conn.phase, Phase::Established { .. }) {
            let not_a_member = matches!(
                reason,
                CloseReason::RefusedByPeer(HandshakeStatus::UnknownMember)
            );
            let (peer, reason) = match conn.dialed {
                Some(id) => (
                    Some(id),
                    format!("peer {id:x} at {}: {reason}", conn.remote()),
                ),
                None => (None, format!("connection from {}: {reason}", conn.remote())),
            };
            self.events.push_back(PeerEvent::Refused {
                peer,
                reason,
                not_a_member,
            });
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
                if self.local_id < id || self.dial_every_peer {
                    let delay = peer.backoff.next_delay(&mut self.rng);
                    peer.next_dial = Some(now + delay);
                }
            }
            (_, Some(id)) => {
                let Some(peer) = self.peers.get_mut(&id).filter(|p| p.slot == Some(slot)) else {
                    return;
                };
                if matches!(
                    reason,
                    CloseReason::RefusedByPeer(HandshakeStatus::WrongDirection)
                ) {
                    // The peer knows this member and dials it at once.
                    peer.slot = None;
                    peer.next_dial = None;
                } else {
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
