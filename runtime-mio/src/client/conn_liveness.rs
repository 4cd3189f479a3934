//! What the liveness rules (`liveness.rs`) see of a connection, and how the server acts on
//! their verdicts.

use std::time::Instant;

use super::super::liveness::{Arrived, Standing, State, Timeouts, Verdict};
use super::{Conn, Phase};

impl Conn {
    /// Applies the liveness rules at the loop's tick `now` (see `Liveness::on_tick`).
    pub(crate) fn tick(&mut self, now: Instant, seq: u64, timeouts: &Timeouts) -> Verdict {
        let state = self.state();
        let arrived = self.arrived();
        self.liveness.on_tick(now, seq, arrived, state, timeouts)
    }

    /// The connection's place in the eviction order (see `Liveness::standing`).
    pub(crate) fn standing(&self) -> Standing {
        self.liveness.standing(self.state(), self.arrived())
    }

    /// The server answered on this connection: clears the client's ping strikes.
    pub(crate) fn on_response(&mut self) {
        self.liveness.on_response();
    }

    /// Sends a keep-alive PING; the next drive writes it.
    pub(crate) fn send_ping(&mut self) {
        if let Some(ping_pong) = &mut self.ping_pong {
            // Fails only with a PING in flight or the connection gone: nothing to add then.
            let _ = ping_pong.send_ping(h2::Ping::opaque());
            self.wake();
        }
    }

    /// Starts closing with a GOAWAY carrying `reason` (HTTP/2 only; other phases have nothing
    /// to say). The next drive writes it and shuts the socket down.
    pub(crate) fn go_away(&mut self, reason: h2::Reason) {
        if let Phase::H2(conn) = &mut self.phase {
            conn.abrupt_shutdown(reason);
        }
    }

    fn arrived(&self) -> Arrived {
        Arrived::new(self.readiness.received_bytes(), self.readiness.h2_pings())
    }

    fn state(&self) -> State {
        match &self.phase {
            Phase::Sniff { .. } | Phase::Handshake(_) | Phase::Closed => State::Settling,
            // h2 is done with the preface alone; the client's SETTINGS completes it.
            Phase::H2(_) if self.readiness.h2_settings() == 0 => State::Settling,
            Phase::H2(_) => {
                if self.calls.is_empty() && self.exchanges.is_empty() && !self.stalled {
                    State::Idle { h2: true }
                } else {
                    State::Busy { h2: true }
                }
            }
            Phase::Http1 { conn, request } => {
                if conn.is_reading() && request.is_none() {
                    State::Settling
                } else {
                    State::Busy { h2: false }
                }
            }
        }
    }
}
