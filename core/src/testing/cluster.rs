//! The deterministic cluster simulator.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::SimRng;
use super::clocks::{ClientCall, Clock};
use super::config::SimConfig;
use super::disk::{Disk, StateMachine};
use super::faults::{Faults, LeaderFate};
use super::invariants::Checker;
use super::network::InFlight;
use crate::action::{Action, Persist};
use crate::config::Config;
use crate::error::{ProposeError, ReadIndexError};
use crate::node::{Node, Status};
use crate::types::{NodeId, Role};

#[derive(Debug)]
pub(super) struct Member {
    pub(super) id: NodeId,
    pub(super) node: Option<Node>,
    pub(super) disk: Disk,
    pub(super) state: StateMachine,
    /// The outstanding write and the virtual time it completes at.
    pub(super) persist: Option<(u64, Persist)>,
    pub(super) clock: Clock,
    /// Client calls waiting for this member to resume from a pause.
    pub(super) calls: Vec<ClientCall>,
    /// A crash a Figure 8 episode scheduled for this member as leader.
    pub(super) fate: Option<LeaderFate>,
    /// When a crashed member restarts, if a fault scheduled it.
    pub(super) restart_at: Option<u64>,
    /// Crash once the current step is done, and restart this many ticks later (0: at once).
    pub(super) crash_after_step: Option<u64>,
}

/// Message rounds delivered per tick before time moves on (bounds zero-delay ping-pong).
const DELIVERY_ROUNDS_MAX: usize = 64;

/// A cluster of simulated nodes, driven by one seed.
#[derive(Debug)]
pub struct Cluster {
    pub(super) config: SimConfig,
    pub(super) rng: SimRng,
    pub(super) now: u64,
    pub(super) members: Vec<Member>,
    pub(super) network: Vec<InFlight>,
    /// Partition group of each member; members talk only within a group.
    pub(super) groups: Vec<u8>,
    /// Member ids in the order they tick within one tick of the world (by clock skew).
    pub(super) tick_order: Vec<NodeId>,
    /// A Figure 8 episode runs until this tick.
    pub(super) figure_8_until: u64,
    /// The members that leaders of a Figure 8 episode may reach, as a bit set by id.
    pub(super) figure_8_witnesses: u16,
    checker: Checker,
    commits: Vec<u64>,
    /// Reads in flight: request -> the applied index every acknowledged write had reached.
    reads: BTreeMap<u64, u64>,
    reads_done: Vec<(u64, u64)>,
    steps: u64,
}

impl Cluster {
    /// Bootstraps `nodes` voters with ids 1..=nodes.
    pub fn new(config: SimConfig) -> Cluster {
        assert!(
            config.nodes >= 1 && config.nodes <= 9,
            "the simulator runs 1 to 9 nodes"
        );
        let voters: Vec<NodeId> = (1..=config.nodes as NodeId).collect();
        let mut cluster = Cluster {
            rng: SimRng::new(config.seed),
            now: 0,
            members: Vec::new(),
            network: Vec::new(),
            groups: Vec::new(),
            tick_order: Vec::new(),
            figure_8_until: 0,
            figure_8_witnesses: 0,
            checker: Checker::default(),
            commits: Vec::new(),
            reads: BTreeMap::new(),
            reads_done: Vec::new(),
            steps: 0,
            config,
        };
        for &id in &voters {
            let node =
                Node::bootstrap(cluster.node_config(id), &voters).expect("valid bootstrap config");
            cluster.push_member(id, node);
        }
        for id in voters {
            cluster.drain(id);
        }
        cluster
    }

    fn node_config(&self, id: NodeId) -> Config {
        Config::new(id, self.config.seed.wrapping_mul(31).wrapping_add(id))
            .with_election_ticks(self.config.election_ticks)
            .with_heartbeat_ticks(self.config.heartbeat_ticks)
            .with_snapshot_interval_entries(self.config.snapshot_interval_entries)
            .with_compaction_trailing_entries(8)
            .with_inflight_max(8)
            .with_message_bytes_max(self.config.message_bytes_max)
    }

    fn push_member(&mut self, id: NodeId, node: Node) {
        assert_eq!(
            id as usize,
            self.members.len() + 1,
            "member ids are dense from 1"
        );
        let clock = Clock::drawn(&mut self.rng, &self.config.faults);
        self.members.push(Member {
            id,
            node: Some(node),
            disk: Disk::default(),
            state: StateMachine::default(),
            persist: None,
            clock,
            calls: Vec::new(),
            fate: None,
            restart_at: None,
            crash_after_step: None,
        });
        self.groups.push(0);
        self.commits.push(0);
        self.tick_order.push(id);
        // Stable: members with the same skew tick in id order.
        let members = &self.members;
        self.tick_order
            .sort_by_key(|&id| core::cmp::Reverse(members[id as usize - 1].clock.skew()));
    }

    /// Adds a member that joins the running cluster (it still has to be added by a
    /// membership change). Returns its id.
    pub fn add_joining_member(&mut self) -> NodeId {
        let id = self.members.len() as NodeId + 1;
        let node = Node::join(self.node_config(id)).expect("valid join config");
        self.push_member(id, node);
        id
    }

    /// The seed the cluster was built from.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// Virtual time: ticks of the world so far.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Drains carried out so far (one per input handled by a node).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Changes the faults from the next tick on. A Figure 8 episode under way ends, with the
    /// leader crashes it scheduled; pauses run their course (see `resume`), and the clocks
    /// keep the rates they were built with.
    pub fn set_faults(&mut self, faults: Faults) {
        self.config.faults = faults;
        self.end_figure_8();
    }

    /// Every member's id, up or down, in ascending order.
    pub fn member_ids(&self) -> Vec<NodeId> {
        self.members.iter().map(|m| m.id).collect()
    }

    /// Whether member `id` is running (not crashed).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.member(id).node.is_some()
    }

    /// Member `id`'s status; `None` while it is down.
    pub fn status(&self, id: NodeId) -> Option<Status> {
        self.member(id).node.as_ref().map(Node::status)
    }

    /// Member `id`'s node, to inspect; `None` while it is down.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.member(id).node.as_ref()
    }

    /// The live leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.leaders()
            .into_iter()
            .max_by_key(|&(_, term)| term)
            .map(|(id, _)| id)
    }

    /// Every live node that believes it leads, with its term.
    pub fn leaders(&self) -> Vec<(NodeId, u64)> {
        self.members
            .iter()
            .filter_map(|m| m.node.as_ref())
            .filter(|n| n.status().role() == Role::Leader)
            .map(|n| (n.id(), n.status().term()))
            .collect()
    }

    /// Runs `f` on a live node, then carries out the actions it caused. `None` if the node
    /// is down or paused.
    pub fn with_node<R>(&mut self, id: NodeId, f: impl FnOnce(&mut Node) -> R) -> Option<R> {
        let member = self.member_mut(id);
        if member.clock.is_paused() {
            return None;
        }
        let result = f(member.node.as_mut()?);
        self.drain(id);
        Some(result)
    }

    /// Proposes `payload` at member `id`. A paused member takes the call when it resumes
    /// (and `Ok` means only that it was queued).
    pub fn propose(&mut self, id: NodeId, payload: &[u8]) -> Result<(), ProposeError> {
        let data = Bytes::copy_from_slice(payload);
        if self.queue_if_paused(id, ClientCall::Propose(data.clone())) {
            return Ok(());
        }
        self.with_node(id, |node| node.propose(data))
            .unwrap_or(Err(ProposeError::NoLeader))
    }

    /// Proposes every payload in one turn (one drain), as a runtime batches one loop turn.
    /// Returns how many were accepted.
    pub fn propose_batch(&mut self, id: NodeId, payloads: &[Bytes]) -> usize {
        if self.is_up(id) && self.is_paused(id) {
            for data in payloads {
                self.queue_if_paused(id, ClientCall::Propose(data.clone()));
            }
            return payloads.len();
        }
        self.with_node(id, |node| {
            payloads
                .iter()
                .filter(|data| node.propose((*data).clone()).is_ok())
                .count()
        })
        .unwrap_or(0)
    }

    /// Entries applied by member `id`'s state machine.
    pub fn applied_index(&self, id: NodeId) -> u64 {
        self.member(id).state.applied()
    }

    /// Starts a linearizable read; its `ReadReady` index is checked against every write
    /// acknowledged before this call. A paused member takes the call when it resumes.
    pub fn read_index(&mut self, id: NodeId, request: u64) -> Result<(), ReadIndexError> {
        // A reused id would mix two reads' floors; the caller must not reuse one in flight.
        let previous = self.reads.insert(request, self.checker.applied_len());
        assert!(previous.is_none(), "read id {request} is already in flight");
        if self.queue_if_paused(id, ClientCall::Read(request)) {
            return Ok(());
        }
        self.with_node(id, |node| node.read_index(request))
            .unwrap_or(Err(ReadIndexError::NoLeader))
    }

    /// Reads confirmed so far: (request, read index).
    pub fn completed_reads(&self) -> &[(u64, u64)] {
        &self.reads_done
    }

    /// The log index at which `payload` was applied anywhere: it is then acknowledged.
    pub fn acknowledged_index(&self, payload: &[u8]) -> Option<u64> {
        self.checker.payload_index(payload)
    }

    /// How many distinct payloads were applied somewhere (acknowledged).
    pub fn acknowledged_count(&self) -> usize {
        self.checker.payload_count()
    }

    /// Whether member `id` has applied `payload`.
    pub fn applied_on(&self, id: NodeId, payload: &[u8]) -> bool {
        let state = &self.member(id).state;
        self.acknowledged_index(payload)
            .is_some_and(|index| index <= state.applied())
    }

    /// The state machine (applied index, hash) of member `id`.
    pub fn state_of(&self, id: NodeId) -> (u64, u64) {
        let state = &self.member(id).state;
        (state.applied(), state.hash())
    }

    /// A paused member queues client calls; returns whether it queued this one.
    fn queue_if_paused(&mut self, id: NodeId, call: ClientCall) -> bool {
        let member = self.member_mut(id);
        let queued = member.node.is_some() && member.clock.is_paused();
        if queued {
            member.calls.push(call);
        }
        queued
    }

    /// Kills member `id` (paused or not): whatever it had not persisted is lost, and so are
    /// the client calls waiting for it.
    pub fn crash(&mut self, id: NodeId) {
        let torn = self.rng.chance(500);
        let cut = self.rng.next_u64();
        let member = self.member_mut(id);
        if member.node.take().is_none() {
            return;
        }
        member.clock.unpause();
        member.calls.clear();
        member.fate = None;
        member.crash_after_step = None;
        if let Some((_, persist)) = member.persist.take() {
            // A crash mid-write may leave any prefix of the entries, but never the hard state.
            if torn && persist.snapshot().is_none() {
                let keep = (cut % (persist.entries().len() as u64 + 1)) as usize;
                member.disk.write(&persist, Some(keep));
            }
        }
        member.state = StateMachine::default();
        self.commits[id as usize - 1] = 0;
    }

    /// Starts crashed member `id` from what its disk holds. A disk on which nothing was
    /// written is an empty data directory: as the runtime does, a member of the initial
    /// cluster bootstraps again and a later one joins again.
    pub fn restart(&mut self, id: NodeId) {
        let config = self.node_config(id);
        let initial = id as usize <= self.config.nodes;
        let voters: Vec<NodeId> = (1..=self.config.nodes as NodeId).collect();
        let member = self.member_mut(id);
        if member.node.is_some() {
            return;
        }
        member.restart_at = None;
        let node = if member.disk.is_empty() {
            member.state = StateMachine::default();
            if initial {
                Node::bootstrap(config, &voters).expect("valid bootstrap config")
            } else {
                Node::join(config).expect("valid join config")
            }
        } else {
            let recovered = member.disk.recover();
            member.state = StateMachine::decode(member.disk.snapshot().data());
            assert_eq!(
                member.state.applied(),
                member.disk.snapshot().meta().index(),
                "snapshot state matches its index"
            );
            Node::restart(config, recovered).expect("recovered state is valid")
        };
        member.node = Some(node);
        self.drain(id);
    }

    /// Splits the cluster: members in different groups cannot talk. Unlisted members form one
    /// more group of their own.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        for group in self.groups.iter_mut() {
            *group = u8::MAX;
        }
        for (number, members) in groups.iter().enumerate() {
            for &id in *members {
                self.groups[id as usize - 1] = number as u8;
            }
        }
    }

    /// Ends every partition: all members can talk again.
    pub fn heal(&mut self) {
        self.groups.iter_mut().for_each(|g| *g = 0);
    }

    /// Advances virtual time by `ticks`, with the configured faults.
    pub fn run_ticks(&mut self, ticks: u64) {
        for _ in 0..ticks {
            self.tick_once();
        }
    }

    /// Runs until `done` holds or `ticks_max` ticks pass. Returns whether `done` held.
    pub fn run_until(&mut self, ticks_max: u64, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        for _ in 0..ticks_max {
            if done(self) {
                return true;
            }
            self.tick_once();
        }
        done(self)
    }

    /// Delivers every message and completes every write until the cluster is quiet, without
    /// advancing time. Used by benchmarks with `Faults::none()`.
    pub fn settle(&mut self) {
        while !self.network.is_empty() || self.members.iter().any(|m| m.persist.is_some()) {
            self.deliver_due();
            self.complete_persists(u64::MAX);
        }
    }

    fn tick_once(&mut self) {
        self.now += 1;
        self.inject_faults();
        for _ in 0..DELIVERY_ROUNDS_MAX {
            let delivered = self.deliver_due();
            let completed = self.complete_persists(self.now);
            if !delivered && !completed {
                break;
            }
        }
        self.tick_clocks();
    }

    /// Completes the writes due by `now`. Returns whether any completed.
    pub(super) fn complete_persists(&mut self, now: u64) -> bool {
        let mut completed = false;
        for id in self.member_ids() {
            let member = self.member_mut(id);
            let due = member.persist.as_ref().is_some_and(|(at, _)| *at <= now);
            if !due || member.node.is_none() || member.clock.is_paused() {
                continue;
            }
            let (_, persist) = member.persist.take().expect("due write exists");
            member.disk.write(&persist, None);
            let (index, term) = (persist.last_index(), persist.last_term());
            let acknowledged = self.with_node(id, |node| node.on_persisted(index, term));
            assert_eq!(
                acknowledged,
                Some(true),
                "the outstanding write was acknowledged"
            );
            completed = true;
        }
        completed
    }

    /// Carries out every action of node `id`, then checks the invariants.
    pub(super) fn drain(&mut self, id: NodeId) {
        loop {
            let Some(node) = self.member_mut(id).node.as_mut() else {
                return;
            };
            let Some(action) = node.poll_action() else {
                break;
            };
            self.carry_out(id, action);
        }
        self.steps += 1;
        if self.config.check_invariants {
            self.check();
        }
        self.after_step(id);
    }

    fn carry_out(&mut self, id: NodeId, action: Action) {
        match action {
            Action::Send(message) => self.send(message),
            Action::Persist(persist) => {
                let faults = self.config.faults;
                let delay = self
                    .rng
                    .below(u64::from(faults.persist_delay_ticks_max) + 1);
                let ready_at = self.now + delay;
                let member = self.member_mut(id);
                assert!(member.persist.is_none(), "at most one write is outstanding");
                if delay == 0 && faults.persist_delay_ticks_max == 0 {
                    member.disk.write(&persist, None);
                    let node = member.node.as_mut().expect("live node");
                    assert!(node.on_persisted(persist.last_index(), persist.last_term()));
                } else {
                    member.persist = Some((ready_at, persist));
                }
            }
            Action::ApplySnapshot(snapshot) => {
                let state = StateMachine::decode(snapshot.data());
                let index = snapshot.meta().index();
                assert_eq!(state.applied(), index, "snapshot data matches its index");
                self.fail_on(self.checker.on_snapshot(id, index, state.hash()));
                self.member_mut(id).state = state;
            }
            Action::Apply(entries) => {
                for entry in &entries {
                    let member = self.member_mut(id);
                    member.state.apply(entry);
                    let hash = member.state.hash();
                    let result = self.checker.on_apply(id, entry, hash);
                    self.fail_on(result);
                }
            }
            Action::ReadReady { request, index } => {
                if let Some(floor) = self.reads.remove(&request) {
                    if index < floor {
                        self.fail(format!("linearizability: read {request} got index {index} below acknowledged {floor}"));
                    }
                    self.reads_done.push((request, index));
                }
            }
            Action::RequestSnapshot { index } => {
                let member = self.member_mut(id);
                assert_eq!(
                    member.state.applied(),
                    index,
                    "snapshot requested at the applied index"
                );
                let data = member.state.encode();
                let node = member.node.as_mut().expect("live node");
                let snapshot = node
                    .compact(index, data)
                    .expect("compaction at the applied index");
                member.disk.save_snapshot(snapshot);
            }
            Action::LeaderChanged { .. } => {}
        }
    }

    fn check(&mut self) {
        let nodes: Vec<Option<&Node>> = self.members.iter().map(|m| m.node.as_ref()).collect();
        let result = self.checker.check_step(&nodes, &mut self.commits);
        self.fail_on(result);
    }

    fn fail_on(&self, result: Result<(), String>) {
        if let Err(violation) = result {
            self.fail(violation);
        }
    }

    fn fail(&self, violation: String) {
        panic!(
            "{violation} (seed {seed}, tick {now}; replay with SIM_SEED={seed})",
            seed = self.config.seed,
            now = self.now
        );
    }

    pub(super) fn member(&self, id: NodeId) -> &Member {
        &self.members[id as usize - 1]
    }

    pub(super) fn member_mut(&mut self, id: NodeId) -> &mut Member {
        &mut self.members[id as usize - 1]
    }
}
