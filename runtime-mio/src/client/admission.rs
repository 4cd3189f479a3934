//! Which connections the server holds: accepting, and the per-tick liveness rules of
//! `liveness.rs`.
//!
//! A full server (at `connections_max`, or out of file descriptors) takes a new connection by
//! evicting the one idle longest. When only connections accepted since the last tick could go,
//! it stops accepting until the next tick, so the listen backlog holds the newcomers; when
//! every connection has an open stream, it refuses the newcomer (accepts and closes it).

use std::io;
use std::sync::Arc;
use std::time::Instant;

use mio::{Interest, Token};

use super::GrpcServer;
use super::LISTENERS_MAX;
use super::conn::Conn;
use super::h2io::{ConnIo, ConnWaker};
use super::liveness::{Closing, Room, Verdict, make_room};

/// EMFILE and ENFILE (Linux): the process or the system is out of file descriptors.
const OUT_OF_FDS_ERRNOS: [i32; 2] = [24, 23];

impl GrpcServer {
    /// Applies the connection limits at the loop's tick `now` (see the module docs of
    /// `liveness.rs`): closes connections whose handshake, idleness or keep-alive ran out,
    /// sends keep-alive pings, and resumes accepting where a full server left newcomers in
    /// the listen backlog. `now` must not go back.
    pub fn tick(&mut self, registry: &mio::Registry, now: Instant) {
        self.seq += 1;
        let seq = self.seq;
        for slot in 0..self.conns.len() {
            let verdict = match self.conns[slot].as_mut() {
                Some(conn) => conn.tick(now, seq, &self.timeouts),
                None => continue,
            };
            match verdict {
                Verdict::Keep => {}
                Verdict::Ping => {
                    if let Some(conn) = self.conn_mut(slot) {
                        conn.send_ping();
                    }
                }
                Verdict::Close(why) => self.shut(slot, why),
            }
        }
        if std::mem::take(&mut self.accept_blocked) {
            for index in 0..self.listeners.len() {
                self.accept(registry, index);
            }
        }
        if let Some(report) = self.close_log.report(now) {
            eprintln!("grpc: {report}");
        }
        self.drain();
    }

    /// Closes the connection in `slot` for `why`: an HTTP/2 connection is told with a GOAWAY
    /// (written now if the socket takes it), then the socket is closed whatever the peer does.
    fn shut(&mut self, slot: usize, why: Closing) {
        let reason = match why {
            Closing::Idle | Closing::Evicted => Some(h2::Reason::NO_ERROR),
            Closing::TooManyPings => Some(h2::Reason::ENHANCE_YOUR_CALM),
            // Nothing the peer would read: it never finished a handshake, or stopped answering.
            Closing::Handshake | Closing::KeepaliveAck => None,
        };
        if let (Some(reason), Some(conn)) = (reason, self.conn_mut(slot)) {
            conn.go_away(reason);
            self.drive(slot);
        }
        if let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) {
            conn.close(&mut self.events);
            self.free_slots.push(slot);
            self.open_conns -= 1;
        }
        self.close_log.closed(why);
    }

    /// How the server can take one more connection (see `liveness::make_room`).
    fn room(&self) -> Room {
        make_room(
            self.conns
                .iter()
                .enumerate()
                .filter_map(|(slot, conn)| Some((slot, conn.as_ref()?.standing()))),
        )
    }

    /// Accepts what listener `index` has pending; see the module docs for a full server.
    pub(super) fn accept(&mut self, registry: &mio::Registry, index: usize) {
        let Some(listener) = self.listeners.get(index) else {
            return;
        };
        let tls_config = listener.tls.clone();
        loop {
            // Decided before the accept, so nothing is evicted for a backlog that turns out
            // to be empty, and young connections can leave newcomers in the backlog.
            let room = (self.open_conns >= self.config.connections_max()).then(|| self.room());
            if room == Some(Room::Later) {
                self.accept_blocked = true;
                return;
            }
            let (mut stream, peer) = match self.listeners[index].socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue;
                }
                Err(e)
                    if e.raw_os_error()
                        .is_some_and(|n| OUT_OF_FDS_ERRNOS.contains(&n)) =>
                {
                    // The limit is the process's, shared with the metrics listener and the
                    // peers: make room as for `connections_max`.
                    if let Room::Evict(slot) = self.room() {
                        self.shut(slot, Closing::Evicted);
                        continue;
                    }
                    self.accept_blocked = true;
                    return;
                }
                Err(e) => {
                    eprintln!("grpc: accept failed: {e}");
                    self.accept_blocked = true;
                    return;
                }
            };
            match room {
                None | Some(Room::Later) => {}
                Some(Room::Evict(slot)) => self.shut(slot, Closing::Evicted),
                Some(Room::Full) => {
                    // Every connection is busy: dropping the socket closes it.
                    self.close_log.refused();
                    continue;
                }
            }
            let _ = stream.set_nodelay(true);
            let tls = match &tls_config {
                Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                    Ok(mut tls) => {
                        tls.set_buffer_limit(Some(self.config.tls_buffer_bytes_max()));
                        Some(Box::new(tls))
                    }
                    Err(e) => {
                        eprintln!("grpc: {peer}: TLS setup failed: {e}");
                        continue;
                    }
                },
                None => None,
            };
            let slot = self.free_slots.pop().unwrap_or(self.conns.len());
            let token = Token(self.token_base + LISTENERS_MAX + slot);
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = registry.register(&mut stream, token, interest) {
                eprintln!("grpc: {peer}: register failed: {e}");
                self.free_slots.push(slot);
                continue;
            }
            let waker = Arc::new(ConnWaker::new(slot, Arc::clone(&self.wake)));
            self.seq += 1;
            let conn = Conn::new(slot, peer, ConnIo::new(stream, tls), waker, self.seq);
            if slot == self.conns.len() {
                self.conns.push(Some(conn));
            } else {
                self.conns[slot] = Some(conn);
            }
            self.open_conns += 1;
            assert!(
                self.open_conns <= self.config.connections_max(),
                "{} connections open, limit {}",
                self.open_conns,
                self.config.connections_max()
            );
            // Data may have arrived with the handshake already.
            self.drive(slot);
        }
    }
}
