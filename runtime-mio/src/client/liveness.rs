//! When a client connection has outstayed its welcome, and which one goes first when the server
//! is full. Sans-IO: the server passes in the loop's `Instant` and what it saw on the
//! connection, and carries out the verdict, so these rules are tested without sockets.
//!
//! - **Handshake.** A connection must settle its protocol (TLS handshake, then the HTTP/2
//!   preface and the client's first SETTINGS, or an HTTP/1 request head) within
//!   `handshake_ms_max` of its first tick, however it trickles bytes: a peer that never gets
//!   there holds a slot and a descriptor for nothing.
//! - **Idle.** A settled connection with no open stream that receives nothing for
//!   `idle_ms_max` is closed (HTTP/2: GOAWAY NO_ERROR first, on which gRPC clients reconnect).
//! - **Keep-alive** (HTTP/2, etcd's `--grpc-keepalive-interval` and `--grpc-keepalive-timeout`,
//!   as grpc-go's server does): after `keepalive_interval_ms` with nothing received the server
//!   PINGs; if nothing at all arrives within `keepalive_ack_ms_max` after, the peer is gone.
//! - **Ping policy** (etcd's `--grpc-keepalive-min-time`, grpc-go's enforcement): a client
//!   PING sooner than `client_ping_interval_ms_min` after its previous one (two hours when the
//!   connection has no stream, as etcd leaves `PermitWithoutStream` off) is a strike; past
//!   [`PING_STRIKES_MAX`] strikes the connection gets GOAWAY ENHANCE_YOUR_CALM. A response the
//!   server sends clears the strikes.
//! - **Eviction.** When the server is full, the connection that has been idle longest (no open
//!   stream; oldest activity) is closed to make room, so a new client is served as long as any
//!   connection is merely holding a slot. Connections with open streams are never evicted, nor
//!   are connections no tick has seen yet: they have not had the time to send a request, and a
//!   burst of new connections would otherwise evict the first of its own (a real client among
//!   them) before it could speak. When only such young connections could make room, new ones
//!   wait in the listen backlog until the next tick.
//!
//! The server looks at connections once per loop tick, so arrival times are known to a tick;
//! the ping policy gives the client the benefit of that doubt.

use std::time::{Duration, Instant};

use super::config::GrpcConfig;

/// grpc-go's `maxPingStrikes`: policy-breaking pings tolerated before GOAWAY.
pub(crate) const PING_STRIKES_MAX: u32 = 2;
/// grpc-go's `defaultPingTimeout`: the least interval between pings on a connection without
/// streams, since etcd does not permit keep-alive pings without streams.
const IDLE_PING_INTERVAL_MIN: Duration = Duration::from_secs(2 * 60 * 60);

/// The time limits of [`Liveness`], from a [`GrpcConfig`]; `None` is no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timeouts {
    handshake_max: Option<Duration>,
    idle_max: Option<Duration>,
    keepalive_interval: Option<Duration>,
    keepalive_ack_max: Duration,
    client_ping_interval_min: Duration,
}

fn millis(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

impl Timeouts {
    pub(crate) fn new(config: &GrpcConfig) -> Timeouts {
        Timeouts {
            handshake_max: millis(config.handshake_ms_max()),
            idle_max: millis(config.idle_ms_max()),
            keepalive_interval: millis(config.keepalive_interval_ms()),
            keepalive_ack_max: Duration::from_millis(config.keepalive_ack_ms_max()),
            client_ping_interval_min: Duration::from_millis(config.client_ping_interval_ms_min()),
        }
    }
}

/// Where a connection stands, as its owner sees it at a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// TLS, the HTTP/2 preface and SETTINGS, or an HTTP/1 request head still to come.
    Settling,
    /// Settled, with no open stream and no queued work.
    Idle { h2: bool },
    /// Settled, with an open stream (a call, an HTTP exchange) or queued work.
    Busy { h2: bool },
}

/// What has arrived on a connection since it opened: running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Arrived {
    bytes: u64,
    pings: u64,
}

impl Arrived {
    /// `bytes` read from the socket (TLS records included); `pings` HTTP/2 PING frames that
    /// were not acknowledgements.
    pub(crate) fn new(bytes: u64, pings: u64) -> Arrived {
        Arrived { bytes, pings }
    }
}

/// Why the server closes a connection on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closing {
    Handshake,
    Idle,
    KeepaliveAck,
    TooManyPings,
    /// Idle longest when the server was full (decided by the server, not by `on_tick`).
    Evicted,
}

impl Closing {
    const ALL: [Closing; 5] = [
        Closing::Handshake,
        Closing::Idle,
        Closing::KeepaliveAck,
        Closing::TooManyPings,
        Closing::Evicted,
    ];

    fn describe(self) -> &'static str {
        match self {
            Closing::Handshake => "handshake not done in time",
            Closing::Idle => "idle",
            Closing::KeepaliveAck => "keep-alive ping unanswered",
            Closing::TooManyPings => "too many pings",
            Closing::Evicted => "evicted for a new client",
        }
    }
}

/// What the server must do with a connection after a tick.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    /// Send an HTTP/2 PING (keep-alive).
    Ping,
    Close(Closing),
}

/// One connection's clocks and counters.
#[derive(Clone, Debug)]
pub(crate) struct Liveness {
    /// The first tick that saw the connection.
    started_at: Option<Instant>,
    /// The tick before the latest one: what arrived since then came after it.
    previous_tick_at: Option<Instant>,
    arrived: Arrived,
    /// The last tick that saw new bytes (or the first tick).
    received_at: Option<Instant>,
    /// The last tick that saw bytes or an open stream (or the first tick).
    active_at: Option<Instant>,
    /// The server's sequence number when the connection was accepted or last seen active;
    /// smaller is idle longer.
    active_seq: u64,
    /// The server's keep-alive PING in flight, and when it was sent.
    ping_sent_at: Option<Instant>,
    /// The earliest the client's latest PING can have arrived.
    last_ping_earliest: Option<Instant>,
    ping_strikes: u32,
    /// The server sent a response since the last client PING.
    strikes_cleared: bool,
}

impl Liveness {
    /// A connection accepted when the server's sequence number was `accepted_seq`.
    pub(crate) fn new(accepted_seq: u64) -> Liveness {
        Liveness {
            started_at: None,
            previous_tick_at: None,
            arrived: Arrived::default(),
            received_at: None,
            active_at: None,
            active_seq: accepted_seq,
            ping_sent_at: None,
            last_ping_earliest: None,
            ping_strikes: 0,
            strikes_cleared: false,
        }
    }

    /// The server answered on this connection (headers, data or trailers went out).
    pub(crate) fn on_response(&mut self) {
        self.strikes_cleared = true;
    }

    /// Applies the rules at a tick. `now` never goes back; `seq` is the server's sequence
    /// number for this tick (it only grows); `arrived` holds totals, so it never shrinks.
    pub(crate) fn on_tick(
        &mut self,
        now: Instant,
        seq: u64,
        arrived: Arrived,
        state: State,
        timeouts: &Timeouts,
    ) -> Verdict {
        assert!(
            arrived.bytes >= self.arrived.bytes && arrived.pings >= self.arrived.pings,
            "arrival totals went back: {arrived:?} after {:?}",
            self.arrived
        );
        assert!(
            self.previous_tick_at.is_none_or(|at| at <= now),
            "the loop's clock went back"
        );
        let started_at = *self.started_at.get_or_insert(now);
        let previous_tick_at = self.previous_tick_at.replace(now).unwrap_or(now);
        let new_bytes = arrived.bytes != self.arrived.bytes;
        let new_pings = arrived.pings - self.arrived.pings;
        self.arrived = arrived;
        if new_bytes || self.received_at.is_none() {
            self.received_at = Some(now);
        }
        let busy = matches!(state, State::Busy { .. });
        if new_bytes || busy || self.active_at.is_none() {
            self.active_at = Some(now);
        }
        if new_bytes || busy {
            self.active_seq = seq;
        }
        let h2 = match state {
            State::Settling => {
                let late = timeouts
                    .handshake_max
                    .is_some_and(|max| now.duration_since(started_at) >= max);
                return if late {
                    Verdict::Close(Closing::Handshake)
                } else {
                    Verdict::Keep
                };
            }
            State::Idle { h2 } | State::Busy { h2 } => h2,
        };
        if h2 && self.police_pings(now, previous_tick_at, new_pings, busy, timeouts) {
            return Verdict::Close(Closing::TooManyPings);
        }
        let idle_for = now.duration_since(self.active_at.unwrap_or(now));
        if !busy && timeouts.idle_max.is_some_and(|max| idle_for >= max) {
            return Verdict::Close(Closing::Idle);
        }
        if h2 {
            return self.keepalive(now, new_bytes, timeouts);
        }
        Verdict::Keep
    }

    /// Counts strikes for the `new_pings` that arrived in `(previous_tick_at, now]`; true
    /// when the client is past [`PING_STRIKES_MAX`].
    fn police_pings(
        &mut self,
        now: Instant,
        previous_tick_at: Instant,
        new_pings: u64,
        busy: bool,
        timeouts: &Timeouts,
    ) -> bool {
        let interval_min = if busy {
            timeouts.client_ping_interval_min
        } else {
            IDLE_PING_INTERVAL_MIN
        };
        if self.strikes_cleared && new_pings > 0 {
            // grpc-go forgives the ping after each response it sends. Arrivals are seen a
            // tick at a time, so every ping of a tick in which the server answered is forgiven:
            // a busy client's BDP pings follow its responses, many to a tick.
            self.strikes_cleared = false;
            self.ping_strikes = 0;
            self.last_ping_earliest = Some(previous_tick_at);
            return false;
        }
        // Past a few, more pings in one tick change nothing: the verdict is already out.
        let counted = new_pings.min(u64::from(PING_STRIKES_MAX) + 2);
        for _ in 0..counted {
            if let Some(earliest) = self.last_ping_earliest {
                // The longest the client can have waited: from the earliest its previous
                // ping can have arrived to now.
                if now.duration_since(earliest) < interval_min {
                    self.ping_strikes += 1;
                }
            }
            self.last_ping_earliest = Some(previous_tick_at);
        }
        self.ping_strikes > PING_STRIKES_MAX
    }

    fn keepalive(&mut self, now: Instant, new_bytes: bool, timeouts: &Timeouts) -> Verdict {
        let Some(interval) = timeouts.keepalive_interval else {
            return Verdict::Keep;
        };
        if let Some(sent_at) = self.ping_sent_at {
            // Anything read counts as an answer, as in grpc-go.
            if new_bytes {
                self.ping_sent_at = None;
            } else if now.duration_since(sent_at) >= timeouts.keepalive_ack_max {
                return Verdict::Close(Closing::KeepaliveAck);
            }
            return Verdict::Keep;
        }
        let silent_for = now.duration_since(self.received_at.unwrap_or(now));
        if silent_for >= interval {
            self.ping_sent_at = Some(now);
            return Verdict::Ping;
        }
        Verdict::Keep
    }

    /// The connection's place in the eviction order. `arrived` is what the socket has
    /// delivered so far: bytes since the last tick make the connection the most recent.
    pub(crate) fn standing(&self, state: State, arrived: Arrived) -> Standing {
        match state {
            State::Busy { .. } => Standing::Busy,
            _ if self.started_at.is_none() => Standing::Young,
            _ if arrived.bytes != self.arrived.bytes => Standing::Idle(u64::MAX),
            _ => Standing::Idle(self.active_seq),
        }
    }
}

/// Where a connection stands when the server needs room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    /// An open stream or queued work: never evicted.
    Busy,
    /// Accepted since the last tick: not yet had the time to send a request.
    Young,
    /// Evictable; smaller is idle longer.
    Idle(u64),
}

/// How the server can take one more connection.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// Close this slot's connection (the longest idle; ties go to the lower slot).
    Evict(usize),
    /// Only young connections could go: leave new ones waiting until the next tick.
    Later,
    /// Every connection is busy: a new one is refused.
    Full,
}

/// The room a full server can make, from each connection's standing.
pub(crate) fn make_room(standings: impl Iterator<Item = (usize, Standing)>) -> Room {
    let mut young = false;
    let mut longest_idle: Option<(u64, usize)> = None;
    for (slot, standing) in standings {
        match standing {
            Standing::Busy => {}
            Standing::Young => young = true,
            Standing::Idle(rank) => {
                if longest_idle.is_none_or(|best| (rank, slot) < best) {
                    longest_idle = Some((rank, slot));
                }
            }
        }
    }
    match (longest_idle, young) {
        (Some((_, slot)), _) => Room::Evict(slot),
        (None, true) => Room::Later,
        (None, false) => Room::Full,
    }
}

/// How often the server reports the connections it closed.
const CLOSE_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Counts of connections closed by rule, reported in one line at most every
/// `CLOSE_REPORT_INTERVAL`: a flood of bad connections would otherwise write a log line per
/// connection from the loop thread.
#[derive(Debug, Default)]
pub(crate) struct CloseLog {
    counts: [u64; Closing::ALL.len()],
    refused: u64,
    reported_at: Option<Instant>,
}

impl CloseLog {
    pub(crate) fn closed(&mut self, why: Closing) {
        let index = Closing::ALL
            .iter()
            .position(|&c| c == why)
            .expect("every reason is listed");
        self.counts[index] += 1;
    }

    /// A new connection was closed at once: the server was full of busy connections.
    pub(crate) fn refused(&mut self) {
        self.refused += 1;
    }

    /// The report due at `now`, if anything happened and the last report is old enough.
    pub(crate) fn report(&mut self, now: Instant) -> Option<String> {
        if self.refused == 0 && self.counts.iter().all(|&n| n == 0) {
            return None;
        }
        if self
            .reported_at
            .is_some_and(|at| now.duration_since(at) < CLOSE_REPORT_INTERVAL)
        {
            return None;
        }
        self.reported_at = Some(now);
        let mut parts: Vec<String> = Closing::ALL
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(why, n)| format!("{n} {}", why.describe()))
            .collect();
        if self.refused > 0 {
            parts.push(format!("{} refused (all busy)", self.refused));
        }
        *self = CloseLog {
            reported_at: self.reported_at,
            ..CloseLog::default()
        };
        Some(format!("closed client connections: {}", parts.join(", ")))
    }
}

#[cfg(test)]
mod tests;
