//! The handshake, idle, keep-alive, ping-policy and eviction rules, on a made-up clock.

use std::time::{Duration, Instant};

use super::super::config::GrpcConfig;
use super::*;

const TICK: Duration = Duration::from_millis(100);
const IDLE: State = State::Idle { h2: true };
const BUSY: State = State::Busy { h2: true };

fn timeouts() -> Timeouts {
    Timeouts::new(
        &GrpcConfig::default()
            .with_handshake_ms_max(5_000)
            .with_idle_ms_max(60_000)
            .with_keepalive_interval_ms(10_000)
            .with_keepalive_ack_ms_max(2_000)
            .with_client_ping_interval_ms_min(5_000),
    )
}

/// One connection driven tick by tick, with the totals it has received.
struct Clock {
    liveness: Liveness,
    now: Instant,
    seq: u64,
    bytes: u64,
    pings: u64,
    timeouts: Timeouts,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            liveness: Liveness::new(0),
            now: Instant::now(),
            seq: 0,
            bytes: 0,
            pings: 0,
            timeouts: timeouts(),
        }
    }

    fn with(timeouts: Timeouts) -> Clock {
        Clock {
            timeouts,
            ..Clock::new()
        }
    }

    fn tick(&mut self, state: State) -> Verdict {
        self.seq += 1;
        let verdict = self.liveness.on_tick(
            self.now,
            self.seq,
            Arrived::new(self.bytes, self.pings),
            state,
            &self.timeouts,
        );
        self.now += TICK;
        verdict
    }

    /// Ticks in `state` for `span`; returns the first verdict that is not `Keep`.
    fn run(&mut self, state: State, span: Duration) -> Option<Verdict> {
        let end = self.now + span;
        while self.now < end {
            match self.tick(state) {
                Verdict::Keep => {}
                other => return Some(other),
            }
        }
        None
    }

    fn receive(&mut self, bytes: u64) {
        self.bytes += bytes;
    }

    fn ping(&mut self) {
        self.pings += 1;
        self.bytes += 17;
    }
}

#[test]
fn a_connection_that_never_settles_is_closed_at_the_handshake_limit_however_it_trickles() {
    let mut c = Clock::new();
    let mut closed_after = None;
    for tick in 0..100u32 {
        c.receive(1);
        if c.tick(State::Settling) == Verdict::Close(Closing::Handshake) {
            closed_after = Some(TICK * tick);
            break;
        }
    }
    assert_eq!(closed_after, Some(Duration::from_secs(5)));
}

#[test]
fn a_settled_connection_is_past_the_handshake_rule_and_zero_disables_it() {
    let mut c = Clock::new();
    assert_eq!(c.run(State::Settling, Duration::from_secs(4)), None);
    // Nine seconds in all, past the five of the handshake limit (and short of a keep-alive).
    assert_eq!(c.run(BUSY, Duration::from_secs(5)), None);
    let mut off = Clock::with(Timeouts::new(
        &GrpcConfig::default().with_handshake_ms_max(0),
    ));
    assert_eq!(off.run(State::Settling, Duration::from_secs(3600)), None);
}

#[test]
fn an_idle_connection_is_closed_after_idle_max_of_nothing_received() {
    let mut c = Clock::new();
    // The server's keep-alive ping is answered (bytes arrive), so only idleness can close it.
    c.timeouts = Timeouts::new(
        &GrpcConfig::default()
            .with_idle_ms_max(60_000)
            .with_keepalive_interval_ms(0),
    );
    assert_eq!(c.run(IDLE, Duration::from_secs(59)), None);
    c.receive(9);
    assert_eq!(
        c.run(IDLE, Duration::from_secs(59)),
        None,
        "bytes restart it"
    );
    assert_eq!(
        c.run(IDLE, Duration::from_secs(2)),
        Some(Verdict::Close(Closing::Idle))
    );
}

#[test]
fn an_open_stream_is_never_idle_and_idleness_counts_from_its_end() {
    let mut c = Clock::new();
    c.timeouts = Timeouts::new(
        &GrpcConfig::default()
            .with_idle_ms_max(60_000)
            .with_keepalive_interval_ms(0),
    );
    assert_eq!(c.run(BUSY, Duration::from_secs(600)), None, "a quiet watch");
    assert_eq!(c.run(IDLE, Duration::from_secs(59)), None);
    assert_eq!(
        c.run(IDLE, Duration::from_secs(2)),
        Some(Verdict::Close(Closing::Idle))
    );
    let mut http1 = Clock::with(c.timeouts);
    assert_eq!(
        http1.run(State::Busy { h2: false }, Duration::from_secs(600)),
        None
    );
}

#[test]
fn keepalive_pings_after_the_interval_and_closes_when_nothing_answers() {
    let mut c = Clock::new();
    assert_eq!(c.run(BUSY, Duration::from_secs(9)), None);
    assert_eq!(c.run(BUSY, Duration::from_secs(2)), Some(Verdict::Ping));
    // The ack (any bytes) arrives: no close, and the next ping waits a whole interval.
    c.receive(17);
    assert_eq!(c.run(BUSY, Duration::from_secs(9)), None);
    assert_eq!(c.run(BUSY, Duration::from_secs(2)), Some(Verdict::Ping));
    assert_eq!(c.run(BUSY, Duration::from_millis(1_900)), None);
    assert_eq!(
        c.run(BUSY, Duration::from_millis(200)),
        Some(Verdict::Close(Closing::KeepaliveAck))
    );
}

#[test]
fn keepalive_is_for_http2_only() {
    let mut c = Clock::new();
    assert_eq!(
        c.run(State::Busy { h2: false }, Duration::from_secs(60)),
        None
    );
    let mut off = Clock::with(Timeouts::new(
        &GrpcConfig::default().with_keepalive_interval_ms(0),
    ));
    assert_eq!(off.run(BUSY, Duration::from_secs(3600)), None);
}

#[test]
fn pings_at_the_minimum_interval_are_fine_and_faster_ones_get_enhance_your_calm() {
    let mut c = Clock::new();
    // Every 5 s while a stream is open, whatever tick they land in: never a strike.
    for _ in 0..20 {
        c.ping();
        assert_eq!(c.run(BUSY, Duration::from_secs(5)), None);
    }
    // Every 2 s (the first of them 5 s after the last): strikes one, two, three; the third
    // is past PING_STRIKES_MAX.
    let mut verdicts = Vec::new();
    for _ in 0..4 {
        c.ping();
        verdicts.push(c.run(BUSY, Duration::from_secs(2)));
    }
    let calm_down = Some(Verdict::Close(Closing::TooManyPings));
    assert_eq!(verdicts, [None, None, None, calm_down]);
}

#[test]
fn a_burst_of_pings_in_one_tick_is_one_strike_each() {
    let mut c = Clock::new();
    for _ in 0..3 {
        c.ping();
    }
    assert_eq!(c.tick(BUSY), Verdict::Keep, "two strikes");
    c.ping();
    assert_eq!(c.tick(BUSY), Verdict::Close(Closing::TooManyPings));
}

#[test]
fn without_a_stream_pings_must_be_two_hours_apart() {
    let mut c = Clock::new();
    c.timeouts = Timeouts::new(
        &GrpcConfig::default()
            .with_idle_ms_max(0)
            .with_keepalive_interval_ms(0),
    );
    let mut verdict = None;
    for _ in 0..4 {
        c.ping();
        verdict = c.run(IDLE, Duration::from_secs(60));
    }
    assert_eq!(verdict, Some(Verdict::Close(Closing::TooManyPings)));
}

#[test]
fn a_response_from_the_server_clears_the_strikes() {
    let mut c = Clock::new();
    for _ in 0..20 {
        c.ping();
        c.liveness.on_response();
        assert_eq!(c.run(BUSY, Duration::from_secs(1)), None);
    }
}

#[test]
fn eviction_takes_the_longest_idle_and_never_a_busy_or_young_one() {
    let t = timeouts();
    let now = Instant::now();
    let nothing = Arrived::default();
    let mut old = Liveness::new(1);
    let mut young = Liveness::new(2);
    let mut settling = Liveness::new(3);
    let unseen = Liveness::new(5);
    let _ = old.on_tick(now, 4, nothing, IDLE, &t);
    let _ = young.on_tick(now, 4, Arrived::new(10, 0), IDLE, &t);
    let _ = settling.on_tick(now, 4, nothing, State::Settling, &t);
    assert_eq!(old.standing(IDLE, nothing), Standing::Idle(1));
    assert_eq!(
        young.standing(IDLE, Arrived::new(10, 0)),
        Standing::Idle(4),
        "active at the tick"
    );
    assert_eq!(
        settling.standing(State::Settling, nothing),
        Standing::Idle(3)
    );
    assert_eq!(old.standing(BUSY, nothing), Standing::Busy);
    assert_eq!(unseen.standing(State::Settling, nothing), Standing::Young);
    // Bytes since the last tick: the most recent of all.
    assert_eq!(
        old.standing(IDLE, Arrived::new(1, 0)),
        Standing::Idle(u64::MAX)
    );
}

#[test]
fn room_is_made_from_the_longest_idle_else_later_for_young_ones_else_none() {
    use Standing::{Busy, Idle, Young};
    let all = [
        (0, Busy),
        (1, Idle(4)),
        (2, Young),
        (3, Idle(1)),
        (4, Idle(3)),
    ];
    assert_eq!(make_room(all.into_iter()), Room::Evict(3));
    assert_eq!(
        make_room([(5, Idle(7)), (2, Idle(7))].into_iter()),
        Room::Evict(2)
    );
    assert_eq!(make_room([(0, Busy), (1, Young)].into_iter()), Room::Later);
    assert_eq!(make_room([(0, Busy), (1, Busy)].into_iter()), Room::Full);
    assert_eq!(make_room(std::iter::empty()), Room::Full);
}

#[test]
fn closes_are_reported_together_at_most_every_ten_seconds() {
    let now = Instant::now();
    let mut log = CloseLog::default();
    assert_eq!(log.report(now), None);
    for _ in 0..3 {
        log.closed(Closing::Handshake);
    }
    log.closed(Closing::Evicted);
    log.refused();
    let first = log.report(now).expect("a report");
    assert!(first.contains("3 handshake"), "{first}");
    assert!(first.contains("1 evicted"), "{first}");
    assert!(first.contains("1 refused"), "{first}");
    log.closed(Closing::Idle);
    assert_eq!(log.report(now + Duration::from_secs(9)), None);
    let second = log.report(now + Duration::from_secs(10)).expect("a report");
    assert_eq!(second, "closed client connections: 1 idle");
}

/// A busy client's BDP pings follow the responses, many to a tick: none of them is a strike.
#[test]
fn pings_in_a_tick_with_responses_are_all_forgiven() {
    let mut c = Clock::new();
    for _ in 0..20 {
        for _ in 0..10 {
            c.ping();
            c.liveness.on_response();
        }
        assert_eq!(c.run(BUSY, Duration::from_millis(100)), None);
    }
}
