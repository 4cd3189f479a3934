//! The event loop: one thread owns the core, the kvstore, the sockets and the timers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll, Token, Waker};
use tally_core::{Action, NO_NODE, Node};
use tally_kvstore::KvStore;

use super::auto_compaction::AutoCompactor;
use super::conf_waiters::ConfWaiters;
use super::flags::Flags;
use super::members::Members;
use super::metrics::Metrics;
use super::persistence::{PersistEvent, Persistence};
use super::reads::Reads;
use super::rpc::CallKind;
use super::snapshots::{
    InboundTransfers, SnapshotDone, SnapshotJob, SnapshotPacing, SnapshotTaking, SnapshotTransfers,
    SnapshotWorker,
};
use super::standing::Standing;
use super::start_check::{Start, StartCheck};
use super::startup::{Identity, Recovered, ServerError, io_error};
use super::storage;
use super::stream_backlog::StreamBacklogs;
use super::waiters::Waiters;
use crate::client::{CallEvent, CallId, GrpcConfig, GrpcServer};
use crate::peer::{PeerConfig, PeerTransport};
use crate::wal::{SnapshotStore, WalThread};

const WAKER: Token = Token(0);
const PEER_TOKENS: usize = 1 << 20;
const CLIENT_TOKENS: usize = 2 << 20;
const METRICS_TOKENS: usize = 3 << 20;

/// How long a client request may wait for commit or confirmation.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often watchers that asked for progress notifications get one.
const PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_secs(60);
/// Keys compacted per loop turn, so compaction never stalls applies.
const COMPACTION_KEYS_PER_TURN: usize = 1000;
/// History records replayed per loop turn to unsynced watchers.
const WATCH_SYNC_RECORDS_PER_TURN: usize = 1000;
/// Expired leases revoked per tick.
pub(super) const LEASE_REVOKES_PER_TICK_MAX: usize = 64;
/// Ticks a removed member keeps running before it stops (etcd's stopWithDelay of 10 ticks).
const REMOVED_STOP_TICKS: u32 = 10;

pub(super) struct Server {
    pub(super) flags: Flags,
    pub(super) identity: Identity,
    pub(super) poll: Poll,
    pub(super) node: Node,
    pub(super) kv: KvStore,
    pub(super) members: Members,
    /// The WAL hand-off.
    persistence: Persistence,
    pub(super) snapshots: Arc<SnapshotStore>,
    pub(super) snapshot_worker: SnapshotWorker,
    /// The core asked for a snapshot that could not be started yet.
    pub(super) snapshot_wanted: bool,
    /// A snapshot being taken: its store copy, a slice per turn, then its queued job.
    pub(super) snapshot_taking: Option<SnapshotTaking>,
    pub(super) snapshot_pacing: SnapshotPacing,
    /// The core compacted to this snapshot, but its file could not be written.
    pub(super) unsaved_snapshot: Option<crate::wal::SnapshotMeta>,
    pub(super) peers: PeerTransport,
    /// Snapshot messages to peers, in chunks.
    pub(super) transfers: SnapshotTransfers,
    /// Snapshot messages from peers, written to files as their chunks arrive.
    pub(super) inbound: InboundTransfers,
    /// The file of the received snapshot the core restored and has yet to persist.
    pub(super) received_snapshot: Option<crate::wal::IncomingSnapshot>,
    pub(super) clients: GrpcServer,
    metrics_http: Option<GrpcServer>,
    pub(super) calls: HashMap<CallId, CallKind>,
    pub(super) waiters: Waiters,
    /// `--auto-compaction-*`: when the leader proposes a compaction.
    pub(super) auto_compactor: AutoCompactor,
    /// Follower `LeaseTimeToLive` calls waiting for the leader's answer.
    pub(super) leader_queries: super::leader_query::LeaderQueries,
    pub(super) gateway_calls: super::gateway::GatewayCalls,
    /// Linearizable reads on their way.
    pub(super) reads: Reads,
    pub(super) watch_streams: super::rpc::WatchStreams,
    pub(super) conf_waiters: ConfWaiters,
    /// Keep-alive streams whose client closed its side while answers were still pending.
    pub(super) half_closed: std::collections::HashSet<CallId>,
    /// Messages waiting for send capacity on streaming calls, bounded per call.
    pub(super) outbound: StreamBacklogs,
    next_request_id: u64,
    started: Instant,
    tick_interval: Duration,
    next_tick: Instant,
    next_progress_notify: Instant,
    pub(super) leader: u64,
    /// Whether the member may take part, serves, dials every peer, or must stop.
    pub(super) standing: Standing,
    /// The WAL's disk is full: writes are refused here until it has room again.
    pub(super) wal_out_of_space: bool,
    /// When this member last proposed the NOSPACE alarm for a full disk.
    pub(super) nospace_for_disk_at: Option<Instant>,
    pub(super) pending_revokes: HashMap<i64, Instant>,
    attributes_published: bool,
    last_slow_warning: Option<Instant>,
    pub(super) metrics: Metrics,
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Send(_) => "send",
        Action::Persist(_) => "persist",
        Action::ApplySnapshot(_) => "snapshot install",
        Action::Apply(_) => "apply",
        Action::ReadReady { .. } => "read confirmation",
        Action::RequestSnapshot { .. } => "snapshot creation",
        Action::LeaderChanged { .. } => "leader change",
        _ => "core action",
    }
}

/// Election timeouts without a leader after which a member dials every peer (`standing`).
const PROBE_PEERS_AFTER_ELECTIONS: u32 = 3;

/// At most one slow-turn warning per this interval.
const SLOW_WARNING_INTERVAL: Duration = Duration::from_secs(5);

/// Where one loop turn spent its time.
struct Phases {
    started: Instant,
    last: Instant,
    spent: Vec<(&'static str, Duration)>,
}

impl Phases {
    fn new(now: Instant) -> Self {
        Phases {
            started: now,
            last: now,
            spent: Vec::with_capacity(8),
        }
    }

    fn mark(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.spent.push((phase, now - self.last));
        self.last = now;
    }

    fn total(&self) -> Duration {
        self.last - self.started
    }

    fn describe(&self) -> String {
        self.spent
            .iter()
            .map(|(phase, d)| format!("{phase} {} ms", d.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Server {
    pub(super) fn start(
        flags: Flags,
        identity: Identity,
        recovered: Recovered,
    ) -> Result<Server, ServerError> {
        let Recovered {
            node,
            kv,
            members,
            opened,
            joined,
            bootstraps,
        } = recovered;
        let poll = Poll::new().map_err(io_error("create poll"))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_error("create waker"))?);
        let wal_waker = Arc::clone(&waker);
        let (wal, wal_done) = WalThread::spawn(
            opened.wal,
            Box::new(move || {
                let _ = wal_waker.wake();
            }),
        )
        .map_err(|e| ServerError::WalFailed(e.to_string()))?;
        let snapshots = Arc::new(opened.snapshots);
        let snapshot_worker = SnapshotWorker::spawn(Arc::clone(&snapshots), Arc::clone(&waker))?;
        let now = Instant::now();
        let peers = super::transports::start_peers(
            &flags,
            &identity,
            &members,
            poll.registry(),
            PEER_TOKENS,
            now,
        )?;
        let clients = super::transports::start_clients(
            &flags,
            poll.registry(),
            Arc::clone(&waker),
            CLIENT_TOKENS,
        )?;
        let metrics_http = super::transports::start_metrics(
            &flags,
            poll.registry(),
            Arc::clone(&waker),
            METRICS_TOKENS,
        )?;
        eprintln!(
            "tallyd: member {:x} ({}) serving clients on {}, peers on {}",
            identity.member_id,
            flags.name(),
            clients
                .local_addrs()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            peers.local_addr()
        );
        super::apply::log_fault_tolerance(node.status().conf().voters().len());
        let auto_compactor = AutoCompactor::new(flags.auto_compaction(), now, kv.revision());
        let others: Vec<u64> = members
            .ids()
            .filter(|id| *id != identity.member_id)
            .collect();
        // A joining member has nothing its peers could find wrong.
        let start = if bootstraps {
            Some(Start::Bootstrap)
        } else {
            opened.recovered.as_ref().map(|_| {
                let status = node.status();
                Start::Restart {
                    last_index: status.last_index(),
                    term: status.term(),
                }
            })
        };
        let start_check = start
            .filter(|_| !others.is_empty())
            .map(|start| StartCheck::new(identity.member_id, start, others, now));
        let tick_interval = Duration::from_millis(flags.heartbeat_interval_ms());
        let standing = Standing::new(
            joined,
            start_check,
            now,
            Duration::from_millis(flags.election_timeout_ms()) * PROBE_PEERS_AFTER_ELECTIONS,
            tick_interval * REMOVED_STOP_TICKS,
        );
        let mut node = node;
        // The recovered snapshot came from its file: keep it there, not in memory too.
        let recovered_snapshot = node.status().snapshot_index();
        if recovered_snapshot > 0 {
            let released = node.release_snapshot_data(recovered_snapshot);
            assert!(released, "the recovered snapshot is the core's latest");
        }
        Ok(Server {
            poll,
            node,
            kv,
            members,
            persistence: Persistence::new(wal, wal_done),
            snapshots,
            snapshot_worker,
            snapshot_wanted: false,
            snapshot_taking: None,
            snapshot_pacing: SnapshotPacing::default(),
            unsaved_snapshot: None,
            transfers: SnapshotTransfers::default(),
            inbound: InboundTransfers::default(),
            received_snapshot: None,
            peers,
            clients,
            metrics_http,
            calls: HashMap::new(),
            waiters: Waiters::default(),
            leader_queries: HashMap::new(),
            gateway_calls: HashMap::new(),
            auto_compactor,
            reads: Reads::default(),
            watch_streams: super::rpc::WatchStreams::default(),
            conf_waiters: ConfWaiters::default(),
            half_closed: std::collections::HashSet::new(),
            outbound: StreamBacklogs::new(),
            next_request_id: first_request_id(identity.member_id),
            started: now,
            tick_interval,
            next_tick: now + tick_interval,
            next_progress_notify: now + PROGRESS_NOTIFY_INTERVAL,
            leader: NO_NODE,
            standing,
            wal_out_of_space: false,
            nospace_for_disk_at: None,
            pending_revokes: HashMap::new(),
            attributes_published: false,
            last_slow_warning: None,
            metrics: Metrics::starting_now(),
            flags,
            identity,
        })
    }

    pub(super) fn run(&mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(1024);
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
            if self.transfers.wants_turn(&self.peers) {
                // The link took every chunk queued so far: no writable event will come.
                timeout = Duration::ZERO;
            }
            if self.kv.compaction_step_ready() {
                // A step a turn; waiting for a tick between them made a compaction of a few
                // hundred steps take a minute.
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
        self.clients.begin_turn();
        for event in events {
            let token = event.token();
            if self.peers.owns(token) {
                self.peers.handle_event(self.poll.registry(), event, now);
            } else if self.clients.owns(token) {
                self.clients.handle_event(self.poll.registry(), event);
            } else if let Some(http) = self.metrics_http.as_mut().filter(|h| h.owns(token)) {
                http.handle_event(self.poll.registry(), event);
            }
        }
        self.clients.on_wake(self.poll.registry());
        if let Some(http) = self.metrics_http.as_mut() {
            http.on_wake(self.poll.registry());
        }
        self.peers.handle_timeouts(self.poll.registry(), now);
        phases.mark("sockets");
        self.persistence.retry()?;
        self.drain_wal()?;
        self.drain_snapshot_writer()?;
        self.drain_peers();
        match self.standing.check(now, &self.peer_ids()) {
            Ok(true) => self.drain_actions()?,
            Ok(false) => {}
            Err(verdict) => return Err(self.stop_for(verdict)),
        }
        self.apply_standing_dialing(now);
        phases.mark("peers");
        self.drain_clients();
        self.flush_read_batch();
        phases.mark("clients");
        if self.standing.holds_the_core() {
            // Nothing of the core moves until the start check has passed.
            return Ok(());
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
        self.pump_transfers();
        self.peers.flush(self.poll.registry(), Instant::now());
        self.clients.flush(self.poll.registry());
        if let Some(http) = self.metrics_http.as_mut() {
            http.flush(self.poll.registry());
        }
        phases.mark("flush");
        self.warn_if_slow(&phases);
        Ok(())
    }

    /// A turn longer than a heartbeat delays every timer and message: say where it went.
    fn warn_if_slow(&mut self, phases: &Phases) {
        let total = phases.total();
        if total < self.tick_interval
            || self
                .last_slow_warning
                .is_some_and(|at| at.elapsed() < SLOW_WARNING_INTERVAL)
        {
            return;
        }
        self.last_slow_warning = Some(Instant::now());
        eprintln!(
            "tallyd: warning: slow loop turn took {} ms ({})",
            total.as_millis(),
            phases.describe()
        );
    }

    /// The other members this member knows.
    fn peer_ids(&self) -> Vec<u64> {
        self.members
            .ids()
            .filter(|id| *id != self.identity.member_id)
            .collect()
    }

    /// Why this member cannot join its cluster, while it has not and its peers refuse it.
    pub(super) fn join_refusal(&self) -> Option<String> {
        self.standing.refusal(Instant::now()).map(str::to_string)
    }

    /// Tells the transport whom to dial, when the member's standing changed that.
    fn apply_standing_dialing(&mut self, now: Instant) {
        if let Some(every_peer) = self.standing.poll_dial_every_peer() {
            self.peers.set_dial_every_peer(every_peer, now);
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(super) fn next_request_id(&mut self) -> u64 {
        self.next_request_id += 1;
        self.next_request_id
    }

    fn drain_clients(&mut self) {
        while let Some(event) = self.clients.poll_call() {
            self.handle_call_event(event);
        }
        let mut http_requests = Vec::new();
        if let Some(http) = self.metrics_http.as_mut() {
            while let Some(event) = http.poll_call() {
                http_requests.push(event);
            }
        }
        for event in http_requests {
            if let CallEvent::Http { request, path, .. } = event {
                let (status, content_type, body) = self.http_response(&path);
                if let Some(http) = self.metrics_http.as_mut() {
                    http.respond_http(request, status, content_type, body);
                }
            }
        }
    }

    fn drain_wal(&mut self) -> Result<(), ServerError> {
        while let Some(event) = self.persistence.poll_event()? {
            match event {
                PersistEvent::Persisted { index, term, took } => {
                    self.metrics.wal_fsync.observe(took);
                    let acknowledged = self.node.on_persisted(index, term);
                    assert!(
                        acknowledged,
                        "the core had no write outstanding ending at ({index}, {term})"
                    );
                }
                PersistEvent::MarkerDurable { index } => {
                    if let Err(e) = self.snapshots.retain(index) {
                        eprintln!("tallyd: could not remove old snapshots: {e}");
                    }
                }
                PersistEvent::OutOfSpace(error) => self.on_wal_out_of_space(&error),
                PersistEvent::SpaceRecovered => self.on_wal_space_recovered(),
            }
        }
        Ok(())
    }

    fn drain_snapshot_writer(&mut self) -> Result<(), ServerError> {
        while let Some(done) = self.snapshot_worker.poll() {
            self.on_snapshot_done(done)?;
        }
        Ok(())
    }

    /// Hands `job` to the snapshot worker, or does it here when the worker is busy: for jobs
    /// the core is waiting on (an installed snapshot's write).
    fn offload(&mut self, job: SnapshotJob) -> Result<(), ServerError> {
        match self.snapshot_worker.submit(job) {
            Ok(()) => Ok(()),
            Err(job) => {
                let done = super::snapshots::run(&self.snapshots, *job);
                self.on_snapshot_done(done)
            }
        }
    }

    fn on_snapshot_done(&mut self, done: SnapshotDone) -> Result<(), ServerError> {
        match done {
            SnapshotDone::InstalledSaved { batch, index, term } => {
                self.persistence.submit(batch, index, term)?;
            }
            SnapshotDone::InstallFailed(e) => return Err(e.into()),
            // A snapshot installed from the leader meanwhile supersedes this one.
            SnapshotDone::Written { index, .. } if index < self.node.status().snapshot_index() => {}
            SnapshotDone::Written { index, term, bytes } => {
                eprintln!("tallyd: saved snapshot at index {index}");
                self.unsaved_snapshot = None;
                self.snapshot_pacing.on_snapshot_bytes(bytes);
                self.persistence.record_snapshot(index, term);
            }
            SnapshotDone::Failed {
                meta,
                error,
                out_of_space,
            } => {
                eprintln!("tallyd: snapshot failed: {error}; retrying in a few seconds");
                if out_of_space {
                    self.raise_nospace_for_disk(&error);
                }
                self.unsaved_snapshot = Some(meta);
                self.snapshot_pacing.on_snapshot_failed(Instant::now());
                self.snapshot_wanted = true;
            }
        }
        Ok(())
    }

    /// Carries out every action the core has.
    pub(super) fn drain_actions(&mut self) -> Result<(), ServerError> {
        while let Some(action) = self.node.poll_action() {
            let started = Instant::now();
            let kind = action_name(&action);
            match action {
                Action::Send(message) if message.snapshot().is_some() => {
                    self.send_snapshot(message);
                }
                Action::Send(message) => {
                    let frame = Bytes::from(tally_core::codec::encode_to_vec(&message));
                    if !self.peers.send(message.to(), frame) {
                        self.metrics.peer_frames_dropped += 1;
                    }
                }
                Action::Persist(persist) => self.submit_persist(persist)?,
                Action::ApplySnapshot(snapshot) => self.install_snapshot(&snapshot)?,
                Action::Apply(entries) => {
                    // Sends come before applies in a drain: flushing them first gets the
                    // followers their appends and the new commit index before a long apply
                    // (a delete of a whole prefix), so they apply alongside the leader instead
                    // of waiting out its stall and then timing it out.
                    self.peers.flush(self.poll.registry(), Instant::now());
                    self.apply_entries(entries);
                }
                Action::ReadReady { request, index } => {
                    self.reads.confirmed(request, index);
                }
                Action::RequestSnapshot { index } => self.take_snapshot(index),
                Action::LeaderChanged { leader, term } => self.on_leader_changed(leader, term),
                _ => {}
            }
            let took = started.elapsed();
            if took >= self.tick_interval {
                eprintln!(
                    "tallyd: warning: {kind} took {} ms on the loop thread",
                    took.as_millis()
                );
            }
        }
        Ok(())
    }

    fn submit_persist(&mut self, persist: tally_core::Persist) -> Result<(), ServerError> {
        let (index, term) = (persist.last_index(), persist.last_term());
        let logged: usize = persist.entries().iter().map(|e| e.data().len()).sum();
        self.snapshot_pacing.on_logged(logged as u64);
        if let Some(snapshot) = persist.snapshot().filter(|s| s.meta().index() > 0) {
            // The worker saves (or seals) the file and hands the batch back (InstalledSaved);
            // the core emits no other write meanwhile.
            let job = if snapshot.data().is_empty() {
                let (index, term) = (snapshot.meta().index(), snapshot.meta().term());
                let file = self.take_received_snapshot(index, term);
                SnapshotJob::SealReceived { persist, file }
            } else {
                SnapshotJob::SaveInstalled(persist)
            };
            return self.offload(job);
        }
        let batch = storage::to_batch(persist, &self.snapshots)?;
        self.persistence.submit(batch, index, term)
    }

    /// The core waits for an answer to a snapshot it sent; one that never left must be
    /// reported, so the member is probed again (and gets the newer snapshot).
    pub(super) fn snapshot_not_sent(&mut self, to: u64, error: &str) {
        eprintln!("tallyd: snapshot for member {to:x} not sent: {error}");
        self.node.report_unreachable(to);
    }

    fn on_leader_changed(&mut self, leader: u64, term: u64) {
        self.leader = leader;
        if leader != self.identity.member_id && self.kv.is_primary() {
            // However it stepped down (to no leader first, or straight to another), this
            // member's clock no longer runs leases: a keep-alive it answered alone would never
            // reach the real leader, which would let the lease expire.
            self.kv.demote();
        }
        let now = Instant::now();
        self.standing.on_leader(leader, now);
        self.apply_standing_dialing(now);
        self.metrics.has_leader = leader != NO_NODE;
        self.metrics.is_leader = leader == self.identity.member_id;
        if leader == NO_NODE {
            eprintln!(
                "tallyd: member {:x} lost its leader at term {term}",
                self.identity.member_id
            );
            return;
        }
        self.metrics.leader_changes += 1;
        eprintln!(
            "tallyd: member {:x} elected leader {leader:x} at term {term}",
            self.identity.member_id
        );
        self.answer_move_leader(leader);
        if leader == self.identity.member_id {
            // A new leader extends every lease by an election timeout, as etcd does.
            self.kv
                .promote(self.now_ms(), self.flags.election_timeout_ms());
        }
        if !self.attributes_published {
            self.publish_attributes();
        }
    }

    fn publish_attributes(&mut self) {
        let Some(mut me) = self.members.get(self.identity.member_id).cloned() else {
            return;
        };
        me.name = self.flags.name().to_string();
        me.client_urls = self
            .flags
            .advertise_client_urls()
            .iter()
            .map(ToString::to_string)
            .collect();
        if self
            .node
            .propose(super::payload::encode_attributes(&me))
            .is_ok()
        {
            self.attributes_published = true;
        }
    }

    fn on_tick(&mut self, now: Instant) {
        self.kv.set_now_ms(self.now_ms());
        self.clients.tick(self.poll.registry(), now);
        if let Some(http) = self.metrics_http.as_mut() {
            http.tick(self.poll.registry(), now);
        }
        if self.leader != NO_NODE && !self.attributes_published {
            self.publish_attributes();
        }
        self.expire_waiters(now);
        self.standing.on_tick(now);
        self.apply_standing_dialing(now);
        if self.leader == self.identity.member_id {
            self.revoke_expired_leases(now);
        }
        self.auto_compact(now);
        if now >= self.next_progress_notify {
            self.next_progress_notify = now + PROGRESS_NOTIFY_INTERVAL;
            self.kv.progress_notify_tick();
        }
    }

    /// Work between applies: watch delivery, bounded compaction and watcher catch-up, and
    /// reads whose index is now applied.
    fn after_apply(&mut self) {
        if self.snapshot_wanted {
            // take_snapshot leaves it wanted until the pacing allows it.
            let applied = self.node.status().applied();
            self.take_snapshot(applied);
        }
        self.advance_snapshot();
        if self.kv.compaction_step_ready() {
            self.kv.compact_step(COMPACTION_KEYS_PER_TURN);
            // Also after the last step: that is when the waiting `physical` calls are done.
            self.release_compactions();
        }
        if self.kv.has_unsynced_watchers() {
            self.kv.sync_watchers_step(WATCH_SYNC_RECORDS_PER_TURN);
        }
        self.deliver_watch_events();
        self.serve_ready_reads();
        self.flush_outbound();
    }
}

pub(super) fn grpc_config(flags: &Flags) -> GrpcConfig {
    /// etcd's `grpcOverheadBytes`.
    const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;
    let request_bytes_max = flags.max_request_bytes() as usize;
    // The gateway's JSON carries keys and values in base64 (4/3), plus field names.
    let json_bytes_max = request_bytes_max.saturating_mul(2).max(64 << 10);
    // Unreadable (no /proc): assume the usual soft limit rather than none.
    let open_files_max = crate::client::open_files_max().unwrap_or(1024);
    GrpcConfig::default()
        // As etcd's gRPC server: a message up to --max-request-bytes plus this allowance is
        // read, and one over --max-request-bytes is then refused as "request is too large"
        // when proposed; one over the allowance is refused by the gRPC layer.
        .with_request_bytes_max(request_bytes_max + GRPC_OVERHEAD_BYTES)
        .with_http1_body_bytes_max(json_bytes_max)
        .with_connections_max(crate::client::connections_max_for_open_files(
            open_files_max,
        ))
        .with_client_ping_interval_ms_min(flags.grpc_keepalive_min_time_ms())
        .with_keepalive_interval_ms(flags.grpc_keepalive_interval_ms())
        .with_keepalive_ack_ms_max(flags.grpc_keepalive_timeout_ms())
}

/// Where this run's request IDs start: the member in the top 16 bits, and below them the wall
/// clock in microseconds. An entry proposed before a restart may be applied after it, and its
/// ID must not match a waiter of the new run: the new run starts past every ID the previous
/// one used, unless it issued more than one request per microsecond or the clock went back.
fn first_request_id(member_id: u64) -> u64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    ((member_id & 0xffff) << 48) | (micros & ((1 << 48) - 1))
}

pub(super) fn peer_config(identity: &Identity) -> PeerConfig {
    PeerConfig::new(identity.member_id, identity.token.clone())
}
