//! The event loop: one thread owns the mio `Poll`, the timers and the dispatch. The work lives
//! in parts with one job each — the core ([`Node`]) and the store ([`KvStore`]), the call
//! table ([`Calls`]), the write path's waiters, the snapshots, the WAL hand-off, the member's
//! standing — and in the services, which the loop lends the parts they need for one call
//! (`contexts`). This folder is the only place that names the loop's type.
//!
//! - `start`: building the parts from what the data directory recovered;
//! - `clients`: client calls, dispatched by the method table to their service's context;
//! - `peers`: peer events, each frame kind to the part that speaks it;
//! - `actions`: the core's actions, the WAL's and the snapshot worker's completions, ticks.

/// The write path's context, from the loop's fields (`$server` is the loop), so that other
/// fields stay free to borrow beside it.
macro_rules! writes {
    ($server:expr) => {
        $crate::server::rpc::Proposer {
            identity: &$server.identity,
            node: &mut $server.node,
            kv: &mut $server.kv,
            calls: &mut $server.calls,
            waiters: &mut $server.waiters,
            ids: &mut $server.ids,
            quota: &mut $server.quota,
            metrics: &mut $server.metrics,
            caller: $server.caller.clone(),
        }
    };
}

mod actions;
mod clients;
mod contexts;
mod peers;
mod phases;
mod start;

use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use tally_core::Node;
use tally_kvstore::KvStore;
use tally_kvstore::proto::RequestHeader;

use super::apply_queue::ApplyQueue;
use super::auth::Auth;
use super::auto_compaction::AutoCompactor;
use super::calls::Calls;
use super::conf_waiters::ConfWaiters;
use super::coordination::Coordination;
use super::error::ServerError;
use super::flags::Flags;
use super::heap_trim::HeapTrimmer;
use super::identity::Identity;
use super::leader_query::LeaderQueries;
use super::lease_expiry::LeaseExpiry;
use super::members::Members;
use super::metrics::Metrics;
use super::persistence::Persistence;
use super::reads::Reads;
use super::request_ids::{Clock, RequestIds};
use super::rpc::{Quota, WatchStreams};
use super::sliced_ranges::SlicedRanges;
use super::snapshots::Snapshots;
use super::standing::Standing;
use super::startup::Recovered;
use super::waiters::Waiters;
use crate::client::GrpcServer;
use crate::peer::PeerTransport;
use phases::{Phases, SlowTurnWarning};

const WAKER: Token = Token(0);
const PEER_TOKENS: usize = 1 << 20;
const CLIENT_TOKENS: usize = 2 << 20;
const METRICS_TOKENS: usize = 3 << 20;

/// Socket events taken per poll.
const EVENTS_MAX: usize = 1024;
/// Ticks of the election timeout a starting member still waits once its start check has
/// passed and a peer link is up (as etcd's initial election tick advance leaves).
const ELECTION_TICKS_LEFT_AT_START: u32 = 2;

/// The loop and the parts it owns.
pub(super) struct Server {
    flags: Flags,
    identity: Identity,
    poll: Poll,
    node: Node,
    kv: KvStore,
    /// Committed entries not yet applied completely.
    applying: ApplyQueue,
    members: Members,
    /// The WAL hand-off.
    persistence: Persistence,
    snapshots: Snapshots,
    heap_trim: HeapTrimmer,
    peers: PeerTransport,
    calls: Calls,
    metrics_http: Option<GrpcServer>,
    waiters: Waiters,
    /// Linearizable reads on their way.
    reads: Reads,
    /// Ranges answered a slice per turn.
    sliced_ranges: SlicedRanges,
    conf_waiters: ConfWaiters,
    /// Calls put to the leader (a follower's `LeaseTimeToLive`, `MemberPromote`).
    leader_queries: LeaderQueries,
    watch_streams: WatchStreams,
    lease_expiry: LeaseExpiry,
    /// Lock and election calls in flight.
    coordination: Coordination,
    /// Tokens, the bcrypt worker, and the auth calls waiting on them.
    auth: Auth,
    /// Who the call being handled is (its token's user), for its proposals' header.
    caller: Option<RequestHeader>,
    /// `--auto-compaction-*`: when the leader proposes a compaction.
    auto_compactor: AutoCompactor,
    ids: RequestIds,
    clock: Clock,
    quota: Quota,
    /// Whether the member may take part, serves, dials every peer, or must stop.
    standing: Standing,
    leader: u64,
    attributes_published: bool,
    metrics: Metrics,
    tick_interval: Duration,
    next_tick: Instant,
    next_progress_notify: Instant,
    slow_turns: SlowTurnWarning,
}

/// Runs the member until it stops: the error it stops with.
pub(super) fn run(
    flags: Flags,
    identity: Identity,
    recovered: Recovered,
) -> Result<(), ServerError> {
    Server::start(flags, identity, recovered)?.run()
}

impl Server {
    fn run(&mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(EVENTS_MAX);
        self.apply_standing_dialing(Instant::now());
        self.ask_peers_about_this_member();
        if !self.standing.holds_the_core() {
            self.drain_actions()?;
        }
        loop {
            let now = Instant::now();
            let mut timeout = self.next_tick.saturating_duration_since(now);
            if let Some(deadline) = self.peers.next_deadline() {
                timeout = timeout.min(deadline.saturating_duration_since(now));
            }
            if self.snapshots.wants_turn(&self.peers) {
                // The link took every chunk queued so far: no writable event will come.
                timeout = Duration::ZERO;
            }
            if !self.sliced_ranges.is_empty() {
                // A slice a turn, as with compaction below.
                timeout = Duration::ZERO;
            }
            if self.kv.compaction_step_ready() || self.applying.has_work() {
                // A step a turn; waiting for a tick between them made a compaction of a few
                // hundred steps take a minute. Entries waiting to be applied go on the same way.
                timeout = Duration::ZERO;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(ServerError::Io {
                        what: "poll".into(),
                        source: e,
                    });
                }
            }
            self.turn(&events)?;
        }
    }

    /// One loop turn: everything that arrived goes into the core, then its actions come out.
    fn turn(&mut self, events: &Events) -> Result<(), ServerError> {
        let now = Instant::now();
        let mut phases = Phases::new(now);
        self.calls.sink_mut().begin_turn();
        self.applying.begin_turn();
        for event in events {
            let token = event.token();
            if self.peers.owns(token) {
                self.peers.handle_event(self.poll.registry(), event, now);
            } else if self.calls.sink().owns(token) {
                self.calls
                    .sink_mut()
                    .handle_event(self.poll.registry(), event);
            } else if let Some(http) = self.metrics_http.as_mut().filter(|h| h.owns(token)) {
                http.handle_event(self.poll.registry(), event);
            }
        }
        self.calls.sink_mut().on_wake(self.poll.registry());
        if let Some(http) = self.metrics_http.as_mut() {
            http.on_wake(self.poll.registry());
        }
        self.peers.handle_timeouts(self.poll.registry(), now);
        phases.mark("sockets");
        self.persistence.retry()?;
        self.drain_wal()?;
        self.drain_snapshot_worker()?;
        self.auth_service().drain_worker();
        self.drain_peers();
        match self.standing.check(now, &self.peer_ids()) {
            Ok(true) => self.drain_actions()?,
            Ok(false) => {}
            Err(verdict) => {
                return Err(verdict.into_error(self.identity.member_id, self.flags.data_dir()));
            }
        }
        self.apply_standing_dialing(now);
        phases.mark("peers");
        self.drain_clients();
        self.kv_service().flush_read_batch();
        phases.mark("clients");
        if self.standing.holds_the_core() {
            // Nothing of the core moves until the start check has passed.
            return Ok(());
        }
        if self.standing.poll_election_advance() {
            // Ticks that only age the election timer: fewer than its timeout, so no campaign
            // starts here, and the loop's per-tick work is not run for them.
            for _ in 0..self
                .flags
                .election_ticks()
                .saturating_sub(ELECTION_TICKS_LEFT_AT_START)
            {
                self.node.tick();
            }
        }
        if now >= self.next_tick {
            // At most one tick per turn, as Go's ticker drops ticks for a busy receiver: after
            // a stalled turn, a burst of ticks would expire election timers before the peer
            // messages that arrived meanwhile were even read.
            self.next_tick = (self.next_tick + self.tick_interval).max(now);
            self.node.tick();
            self.on_tick(now);
        }
        self.drain_actions()?;
        phases.mark("raft+apply");
        self.after_apply();
        phases.mark("watch+reads");
        self.snapshots
            .pump(&mut self.peers, &mut self.node, &mut self.metrics);
        self.peers.flush(self.poll.registry(), Instant::now());
        self.calls.sink_mut().flush(self.poll.registry());
        if let Some(http) = self.metrics_http.as_mut() {
            http.flush(self.poll.registry());
        }
        phases.mark("flush");
        self.slow_turns.check(&phases, self.tick_interval);
        Ok(())
    }

    /// The other members this member knows.
    fn peer_ids(&self) -> Vec<u64> {
        self.members
            .ids()
            .filter(|id| *id != self.identity.member_id)
            .collect()
    }

    /// Tells the transport whom to dial, when the member's standing changed that.
    fn apply_standing_dialing(&mut self, now: Instant) {
        if let Some(every_peer) = self.standing.poll_dial_every_peer() {
            self.peers.set_dial_every_peer(every_peer, now);
        }
    }
}
