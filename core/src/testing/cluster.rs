//! The deterministic cluster simulator.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::SimRng;
use super::disk::{Disk, StateMachine};
use super::invariants::Checker;
use crate::action::{Action, Persist};
use crate::codec;
use crate::config::Config;
use crate::error::{ProposeError, ReadIndexError};
use crate::node::{Node, Status};
use crate::types::{NodeId, Role};

/// Fault rates of the simulated world. Rates are per mille, per message or per tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    drop_per_mille: u32,
    duplicate_per_mille: u32,
    delay_ticks_max: u32,
    persist_delay_ticks_max: u32,
    crash_per_mille: u32,
    restart_per_mille: u32,
    partition_per_mille: u32,
    heal_per_mille: u32,
}

impl Faults {
    /// A perfect world: no loss, no delay, instant disks.
    pub fn none() -> Self {
        Faults {
            drop_per_mille: 0,
            duplicate_per_mille: 0,
            delay_ticks_max: 0,
            persist_delay_ticks_max: 0,
            crash_per_mille: 0,
            restart_per_mille: 0,
            partition_per_mille: 0,
            heal_per_mille: 0,
        }
    }

    /// A reliable network with latency and slow disks, but no loss, crashes or partitions.
    pub fn latency() -> Self {
        Faults {
            delay_ticks_max: 2,
            persist_delay_ticks_max: 2,
            ..Faults::none()
        }
    }

    /// Everything at once: loss, duplication, reordering, slow disks, crashes and partitions.
    pub fn chaos() -> Self {
        Faults {
            drop_per_mille: 50,
            duplicate_per_mille: 30,
            delay_ticks_max: 3,
            persist_delay_ticks_max: 3,
            crash_per_mille: 4,
            restart_per_mille: 60,
            partition_per_mille: 5,
            heal_per_mille: 40,
        }
    }

    pub fn with_drop_per_mille(mut self, rate: u32) -> Self {
        self.drop_per_mille = rate;
        self
    }
}

/// How to build a simulated cluster.
#[derive(Debug, Clone)]
pub struct SimConfig {
    nodes: usize,
    seed: u64,
    election_ticks: u32,
    heartbeat_ticks: u32,
    snapshot_interval_entries: u64,
    message_bytes_max: u64,
    check_invariants: bool,
    faults: Faults,
}

impl SimConfig {
    pub fn new(nodes: usize, seed: u64) -> Self {
        SimConfig {
            nodes,
            seed,
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_interval_entries: 64,
            message_bytes_max: 4096,
            check_invariants: true,
            faults: Faults::none(),
        }
    }

    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Invariant checks cost more than the protocol itself; benchmarks turn them off.
    pub fn with_invariant_checks(mut self, enabled: bool) -> Self {
        self.check_invariants = enabled;
        self
    }

    /// 0 disables snapshots.
    pub fn with_snapshot_interval_entries(mut self, entries: u64) -> Self {
        self.snapshot_interval_entries = entries;
        self
    }

    /// Small by default, so tests exercise multi-message catch-up.
    pub fn with_message_bytes_max(mut self, bytes: u64) -> Self {
        self.message_bytes_max = bytes;
        self
    }

    pub fn election_ticks(&self) -> u32 {
        self.election_ticks
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }
}

#[derive(Debug)]
struct Member {
    id: NodeId,
    node: Option<Node>,
    disk: Disk,
    state: StateMachine,
    /// The outstanding write and the virtual time it completes at.
    persist: Option<(u64, Persist)>,
}

#[derive(Debug, Clone)]
struct InFlight {
    deliver_at: u64,
    from: NodeId,
    to: NodeId,
    bytes: Bytes,
}

/// Message rounds delivered per tick before time moves on (bounds zero-delay ping-pong).
const DELIVERY_ROUNDS_MAX: usize = 64;

/// A cluster of simulated nodes, driven by one seed.
#[derive(Debug)]
pub struct Cluster {
    config: SimConfig,
    rng: SimRng,
    now: u64,
    members: Vec<Member>,
    network: Vec<InFlight>,
    /// Partition group of each member; members talk only within a group.
    groups: Vec<u8>,
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
        self.members.push(Member {
            id,
            node: Some(node),
            disk: Disk::default(),
            state: StateMachine::default(),
            persist: None,
        });
        self.groups.push(0);
        self.commits.push(0);
    }

    /// Adds a member that joins the running cluster (it still has to be added by a
    /// membership change). Returns its id.
    pub fn add_joining_member(&mut self) -> NodeId {
        let id = self.members.len() as NodeId + 1;
        let node = Node::join(self.node_config(id)).expect("valid join config");
        self.push_member(id, node);
        id
    }

    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn set_faults(&mut self, faults: Faults) {
        self.config.faults = faults;
    }

    pub fn member_ids(&self) -> Vec<NodeId> {
        self.members.iter().map(|m| m.id).collect()
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.member(id).node.is_some()
    }

    pub fn status(&self, id: NodeId) -> Option<Status> {
        self.member(id).node.as_ref().map(Node::status)
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

    /// Runs `f` on a live node, then carries out the actions it caused.
    pub fn with_node<R>(&mut self, id: NodeId, f: impl FnOnce(&mut Node) -> R) -> Option<R> {
        let result = f(self.member_mut(id).node.as_mut()?);
        self.drain(id);
        Some(result)
    }

    pub fn propose(&mut self, id: NodeId, payload: &[u8]) -> Result<(), ProposeError> {
        let data = Bytes::copy_from_slice(payload);
        self.with_node(id, |node| node.propose(data))
            .unwrap_or(Err(ProposeError::NoLeader))
    }

    /// Proposes every payload in one turn (one drain), as a runtime batches one loop turn.
    /// Returns how many were accepted.
    pub fn propose_batch(&mut self, id: NodeId, payloads: &[Bytes]) -> usize {
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
    /// acknowledged before this call.
    pub fn read_index(&mut self, id: NodeId, request: u64) -> Result<(), ReadIndexError> {
        // A reused id would mix two reads' floors; the caller must not reuse one in flight.
        let previous = self.reads.insert(request, self.checker.applied_len());
        assert!(previous.is_none(), "read id {request} is already in flight");
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

    pub fn crash(&mut self, id: NodeId) {
        let torn = self.rng.chance(500);
        let cut = self.rng.next_u64();
        let member = self.member_mut(id);
        if member.node.take().is_none() {
            return;
        }
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

    pub fn restart(&mut self, id: NodeId) {
        let config = self.node_config(id);
        let member = self.member_mut(id);
        if member.node.is_some() {
            return;
        }
        let recovered = member.disk.recover();
        member.state = StateMachine::decode(member.disk.snapshot().data());
        assert_eq!(
            member.state.applied(),
            member.disk.snapshot().meta().index(),
            "snapshot state matches its index"
        );
        member.node = Some(Node::restart(config, recovered).expect("recovered state is valid"));
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
        for id in self.member_ids() {
            if self.is_up(id) {
                self.with_node(id, Node::tick);
            }
        }
    }

    fn inject_faults(&mut self) {
        let faults = self.config.faults;
        for id in self.member_ids() {
            if self.is_up(id) {
                if self.rng.chance(faults.crash_per_mille) {
                    self.crash(id);
                }
            } else if self.rng.chance(faults.restart_per_mille) {
                self.restart(id);
            }
        }
        if self.rng.chance(faults.partition_per_mille) {
            for slot in 0..self.groups.len() {
                self.groups[slot] = (self.rng.below(2)) as u8;
            }
        } else if self.rng.chance(faults.heal_per_mille) {
            self.heal();
        }
    }

    /// Delivers the messages due now, in random order. Returns whether any was due.
    fn deliver_due(&mut self) -> bool {
        let now = self.now;
        let mut due = Vec::new();
        let mut position = 0;
        while position < self.network.len() {
            if self.network[position].deliver_at <= now {
                due.push(self.network.swap_remove(position));
            } else {
                position += 1;
            }
        }
        if due.is_empty() {
            return false;
        }
        // Reordering: a random permutation of everything due.
        for i in (1..due.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            due.swap(i, j);
        }
        for message in due {
            self.deliver(message);
        }
        true
    }

    fn deliver(&mut self, in_flight: InFlight) {
        let connected =
            self.groups[in_flight.from as usize - 1] == self.groups[in_flight.to as usize - 1];
        if !connected || !self.is_up(in_flight.to) {
            return;
        }
        let message =
            codec::decode(&in_flight.bytes).expect("the simulator only carries encoded messages");
        let stepped = self.with_node(in_flight.to, |node| node.step(message));
        assert!(
            matches!(stepped, Some(Ok(()))),
            "valid message refused: {stepped:?}"
        );
    }

    /// Completes the writes due by `now`. Returns whether any completed.
    fn complete_persists(&mut self, now: u64) -> bool {
        let mut completed = false;
        for id in self.member_ids() {
            let member = self.member_mut(id);
            let due = member.persist.as_ref().is_some_and(|(at, _)| *at <= now);
            if !due || member.node.is_none() {
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
    fn drain(&mut self, id: NodeId) {
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

    fn send(&mut self, message: crate::message::Message) {
        let faults = self.config.faults;
        let bytes = Bytes::from(codec::encode_to_vec(&message));
        if self.config.check_invariants {
            assert_eq!(
                codec::decode(&bytes).as_ref(),
                Ok(&message),
                "codec round trip"
            );
        }
        if self.rng.chance(faults.drop_per_mille) {
            return;
        }
        let copies = if self.rng.chance(faults.duplicate_per_mille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.below(u64::from(faults.delay_ticks_max) + 1);
            self.network.push(InFlight {
                deliver_at: self.now + delay,
                from: message.from(),
                to: message.to(),
                bytes: bytes.clone(),
            });
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

    fn member(&self, id: NodeId) -> &Member {
        &self.members[id as usize - 1]
    }

    fn member_mut(&mut self, id: NodeId) -> &mut Member {
        &mut self.members[id as usize - 1]
    }

    /// Fuzzing: messages in flight, so a schedule can pick one.
    pub(crate) fn in_flight_len(&self) -> usize {
        self.network.len()
    }

    /// Fuzzing: delivers (or drops, or duplicates) the message at `position` now.
    pub(crate) fn fuzz_message(&mut self, position: usize, how: u8) {
        if self.network.is_empty() {
            return;
        }
        let position = position % self.network.len();
        match how % 3 {
            0 => {
                let message = self.network.swap_remove(position);
                self.deliver(message);
            }
            1 => {
                self.network.swap_remove(position);
            }
            _ => {
                let message = self.network[position].clone();
                self.deliver(message);
            }
        }
    }

    /// Fuzzing: completes member `id`'s outstanding write now.
    pub(crate) fn fuzz_complete_persist(&mut self, id: NodeId) {
        if let Some(member) = self.members.get_mut(id as usize - 1) {
            if let Some((at, _)) = member.persist.as_mut() {
                *at = 0;
            }
        }
        self.complete_persists(0);
    }

    /// Fuzzing: ticks one member.
    pub(crate) fn fuzz_tick(&mut self, id: NodeId) {
        self.now += 1;
        if self.is_up(id) {
            self.with_node(id, Node::tick);
        }
    }
}
