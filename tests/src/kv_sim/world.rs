//! The simulated world around the members: Raft nodes with their disks, each member's own
//! clock, a lossy network, partitions, crashes, restarts and pauses.

use bytes::Bytes;
use tally_core::testing::SimRng;
use tally_core::{Action, Config, Node, NodeId, Persist, Role, codec};

use super::events::{Answer, OpId, Request, SimEvent};
use super::replica::Replica;
use tally_core::testing::Disk;

/// Virtual time moves in steps of one tick of a perfect clock.
pub(crate) const STEP_MS: u64 = 100;
/// Raft timing, in ticks of each member's own clock: etcd's default election timeout (1 s) at
/// a 100 ms tick.
const ELECTION_TICKS: u32 = 10;
const HEARTBEAT_TICKS: u32 = 2;
/// A new leader extends every lease by its election timeout, as etcd and tallyd do.
pub(crate) const ELECTION_TIMEOUT_MS: u64 = ELECTION_TICKS as u64 * STEP_MS;
const PPM: u64 = 1_000_000;
/// Message rounds per step before time moves on (bounds zero-delay ping-pong).
const DELIVERY_ROUNDS_MAX: usize = 64;

/// Fault rates, per mille per message or per member per step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Faults {
    pub(crate) drop_per_mille: u32,
    pub(crate) duplicate_per_mille: u32,
    pub(crate) delay_steps_max: u64,
    pub(crate) persist_delay_steps_max: u64,
    pub(crate) crash_per_mille: u32,
    pub(crate) restart_per_mille: u32,
    pub(crate) pause_per_mille: u32,
    pub(crate) pause_steps_max: u64,
    pub(crate) partition_per_mille: u32,
    pub(crate) heal_per_mille: u32,
}

impl Faults {
    pub(crate) fn chaos() -> Faults {
        Faults {
            drop_per_mille: 50,
            duplicate_per_mille: 30,
            delay_steps_max: 3,
            persist_delay_steps_max: 3,
            crash_per_mille: 3,
            restart_per_mille: 60,
            pause_per_mille: 3,
            pause_steps_max: 40,
            partition_per_mille: 5,
            heal_per_mille: 40,
        }
    }

    /// Latency only: what the world looks like once healed.
    pub(crate) fn calm() -> Faults {
        Faults {
            drop_per_mille: 0,
            duplicate_per_mille: 0,
            crash_per_mille: 0,
            restart_per_mille: 0,
            pause_per_mille: 0,
            partition_per_mille: 0,
            heal_per_mille: 0,
            ..Faults::chaos()
        }
    }
}

/// A member's clock: skewed by `offset_ms` and drifting at `rate_ppm` of true time. It keeps
/// running through pauses, as a wall clock does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    offset_ms: u64,
    rate_ppm: u64,
}

impl Clock {
    pub(crate) fn now_ms(&self, true_ms: u64) -> u64 {
        self.offset_ms + true_ms * self.rate_ppm / PPM
    }
}

#[derive(Debug)]
struct Member {
    id: NodeId,
    node: Option<Node>,
    replica: Option<Replica>,
    disk: Disk,
    /// The outstanding write and the step it completes at.
    persist: Option<(u64, Persist)>,
    /// A paused member neither ticks nor processes anything until this step.
    paused_until: Option<u64>,
    clock: Clock,
    /// Progress towards the next Raft tick of this member's clock, in millionths of a tick.
    tick_progress_ppm: u64,
    starts: u64,
}

#[derive(Debug)]
struct InFlight {
    deliver_at: u64,
    from: NodeId,
    to: NodeId,
    bytes: Bytes,
}

#[derive(Debug)]
pub(crate) struct World {
    seed: u64,
    rng: SimRng,
    step: u64,
    faults: Faults,
    members: Vec<Member>,
    network: Vec<InFlight>,
    /// Partition group of each member; members talk only within a group.
    groups: Vec<u8>,
    /// The highest term any member has been elected leader in.
    newest_leader_term: u64,
    pub(crate) events: Vec<SimEvent>,
}

impl World {
    pub(crate) fn new(seed: u64, nodes: usize, faults: Faults) -> World {
        let mut rng = SimRng::new(seed ^ 0xC10C);
        let voters: Vec<NodeId> = (1..=nodes as NodeId).collect();
        let members = voters
            .iter()
            .map(|&id| Member {
                id,
                node: Some(Node::bootstrap(node_config(seed, id), &voters).expect("valid")),
                replica: Some(Replica::start(id, 0, &Default::default())),
                disk: Disk::default(),
                persist: None,
                paused_until: None,
                // Up to ten minutes of skew, and 10% drift either way.
                clock: Clock {
                    offset_ms: rng.below(600_000),
                    rate_ppm: PPM - PPM / 10 + rng.below(PPM / 5 + 1),
                },
                tick_progress_ppm: rng.below(PPM),
                starts: 0,
            })
            .collect();
        let mut world = World {
            seed,
            rng: SimRng::new(seed ^ 0x3E7),
            step: 0,
            faults,
            members,
            network: Vec::new(),
            groups: vec![0; nodes],
            newest_leader_term: 0,
            events: Vec::new(),
        };
        for id in voters {
            world.drain(id);
        }
        world
    }

    pub(crate) fn true_ms(&self) -> u64 {
        self.step * STEP_MS
    }

    pub(crate) fn ids(&self) -> Vec<NodeId> {
        self.members.iter().map(|m| m.id).collect()
    }

    pub(crate) fn clock(&self, id: NodeId) -> Clock {
        self.member(id).clock
    }

    fn member(&self, id: NodeId) -> &Member {
        &self.members[id as usize - 1]
    }

    fn member_mut(&mut self, id: NodeId) -> &mut Member {
        &mut self.members[id as usize - 1]
    }

    /// Up and not paused: able to serve.
    pub(crate) fn is_serving(&self, id: NodeId) -> bool {
        let member = self.member(id);
        member.node.is_some() && member.paused_until.is_none()
    }

    /// (applied index, store hash, lease count) of a live member.
    pub(crate) fn state_of(&self, id: NodeId) -> Option<(u64, u32, usize)> {
        let replica = self.member(id).replica.as_ref()?;
        Some((replica.applied(), replica.hash(), replica.lease_count()))
    }

    pub(crate) fn leader(&self) -> Option<NodeId> {
        self.members
            .iter()
            .filter(|m| m.paused_until.is_none())
            .filter_map(|m| m.node.as_ref())
            .map(Node::status)
            .filter(|s| s.role() == Role::Leader)
            .max_by_key(|s| s.term())
            .map(|s| s.id())
    }

    /// Starts one step of true time: faults, then each member's ticks. Clients submit
    /// requests between this and [`World::finish_step`].
    pub(crate) fn begin_step(&mut self) {
        self.step += 1;
        self.inject_faults();
        for id in self.ids() {
            self.tick_member(id);
        }
    }

    /// Ends the step: message delivery and disk writes until the world is quiet.
    pub(crate) fn finish_step(&mut self) {
        for _ in 0..DELIVERY_ROUNDS_MAX {
            let delivered = self.deliver_due();
            let completed = self.complete_persists();
            if !delivered && !completed {
                break;
            }
        }
    }

    /// Stops every fault: heals partitions, resumes and restarts every member.
    pub(crate) fn heal_all(&mut self) {
        self.faults = Faults::calm();
        self.groups.iter_mut().for_each(|g| *g = 0);
        for id in self.ids() {
            self.member_mut(id).paused_until = None;
            self.restart(id);
        }
    }

    fn tick_member(&mut self, id: NodeId) {
        if !self.is_serving(id) {
            return;
        }
        let member = self.member_mut(id);
        member.tick_progress_ppm += member.clock.rate_ppm;
        while self.member(id).tick_progress_ppm >= PPM {
            self.member_mut(id).tick_progress_ppm -= PPM;
            self.with_node(id, |node, _, _| node.tick());
            let now_ms = self.member(id).clock.now_ms(self.true_ms());
            self.with_node(id, |node, replica, events| {
                replica.on_tick(node, now_ms, events);
            });
        }
    }

    /// A client's request reaches member `id`.
    pub(crate) fn submit(&mut self, id: NodeId, op: OpId, request: Request) {
        if !self.is_serving(id) {
            self.events.push(SimEvent::Answer {
                op,
                index: None,
                answer: Answer::Refused("member down or paused".into()),
            });
            return;
        }
        let now_ms = self.member(id).clock.now_ms(self.true_ms());
        let trusted = self.counts_leader_local_answers(id);
        self.with_node(id, |node, replica, events| {
            replica.submit(node, op, request, now_ms, trusted, events);
        });
    }

    /// Whether a leader-local keep-alive answer from member `id` counts as acknowledged. A
    /// member that believes it leads counts only if it leads the newest term ever elected and
    /// has committed an entry of it: otherwise another leader's revoke, decided on a clock that
    /// never saw this renewal, may still commit (a deposed leader that has not yet heard of its
    /// successor renews on its own clock only, as etcd 3.4's does). A member that does not
    /// believe it leads must not answer from its own clock at all, so its answers always count.
    fn counts_leader_local_answers(&self, id: NodeId) -> bool {
        let Some(node) = self.member(id).node.as_ref() else {
            return false;
        };
        let status = node.status();
        status.role() != Role::Leader
            || (status.term() == self.newest_leader_term
                && node.log_term(status.commit()) == Some(status.term()))
    }

    /// Runs `f` on a live member (it may report events), then carries out the actions it
    /// caused.
    fn with_node<R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut Node, &mut Replica, &mut Vec<SimEvent>) -> R,
    ) -> R {
        let member = &mut self.members[id as usize - 1];
        let node = member.node.as_mut().expect("a live member");
        let replica = member
            .replica
            .as_mut()
            .expect("a live member has a replica");
        let result = f(node, replica, &mut self.events);
        self.drain(id);
        result
    }

    fn drain(&mut self, id: NodeId) {
        loop {
            let Some(node) = self.member_mut(id).node.as_mut() else {
                return;
            };
            let Some(action) = node.poll_action() else {
                return;
            };
            self.carry_out(id, action);
        }
    }

    fn carry_out(&mut self, id: NodeId, action: Action) {
        let action = match action {
            Action::Send(message) => return self.send(&message),
            other => other,
        };
        let now_ms = self.member(id).clock.now_ms(self.true_ms());
        let persist_delay = self.rng.below(self.faults.persist_delay_steps_max + 1);
        let step = self.step;
        let member = &mut self.members[id as usize - 1];
        let node = member.node.as_mut().expect("a live member");
        let replica = member
            .replica
            .as_mut()
            .expect("a live member has a replica");
        match action {
            Action::Persist(persist) => {
                assert!(member.persist.is_none(), "at most one write is outstanding");
                member.persist = Some((step + persist_delay, persist));
            }
            Action::ApplySnapshot(snapshot) => {
                replica.install_snapshot(&snapshot, &mut self.events)
            }
            Action::Apply(entries) => replica.apply_entries(&entries, now_ms, &mut self.events),
            Action::ReadReady { request, index } => {
                replica.read_ready(request, index, &mut self.events);
            }
            Action::RequestSnapshot { index } => {
                let data = replica.snapshot_bytes(index);
                let snapshot = node
                    .compact(index, data)
                    .expect("compaction at the applied index");
                member.disk.save_snapshot(snapshot);
            }
            Action::LeaderChanged { leader, term } => {
                if leader == id {
                    self.newest_leader_term = self.newest_leader_term.max(term);
                }
                replica.on_leader_changed(leader, now_ms, ELECTION_TIMEOUT_MS);
            }
            other => panic!("member {id}: an action the simulation does not know: {other:?}"),
        }
    }

    fn send(&mut self, message: &tally_core::Message) {
        if self.rng.chance(self.faults.drop_per_mille) {
            return;
        }
        let bytes = Bytes::from(codec::encode_to_vec(message));
        let copies = if self.rng.chance(self.faults.duplicate_per_mille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.below(self.faults.delay_steps_max + 1);
            self.network.push(InFlight {
                deliver_at: self.step + delay,
                from: message.from(),
                to: message.to(),
                bytes: bytes.clone(),
            });
        }
    }

    /// Delivers the messages due now, in random order; messages to a paused member wait for
    /// it, as its sockets' buffers would. Returns whether any was delivered.
    fn deliver_due(&mut self) -> bool {
        let mut due = Vec::new();
        let mut position = 0;
        while position < self.network.len() {
            let message = &self.network[position];
            let paused = self.member(message.to).paused_until.is_some();
            if message.deliver_at <= self.step && !paused {
                due.push(self.network.swap_remove(position));
            } else {
                position += 1;
            }
        }
        for i in (1..due.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            due.swap(i, j);
        }
        let delivered = !due.is_empty();
        for message in due {
            let connected =
                self.groups[message.from as usize - 1] == self.groups[message.to as usize - 1];
            if !connected || self.member(message.to).node.is_none() {
                continue;
            }
            let decoded = codec::decode(&message.bytes).expect("the network carries encodings");
            let stepped = self.with_node(message.to, |node, _, _| node.step(decoded));
            assert!(stepped.is_ok(), "valid message refused: {stepped:?}");
        }
        delivered
    }

    /// Completes the disk writes due now. Returns whether any completed.
    fn complete_persists(&mut self) -> bool {
        let mut completed = false;
        for id in self.ids() {
            let step = self.step;
            let member = self.member_mut(id);
            let due = member.persist.as_ref().is_some_and(|(at, _)| *at <= step);
            if !due || member.node.is_none() || member.paused_until.is_some() {
                continue;
            }
            let (_, persist) = member.persist.take().expect("a due write");
            member.disk.write(&persist, None);
            let (index, term) = (persist.last_index(), persist.last_term());
            let acknowledged = self.with_node(id, |node, _, _| node.on_persisted(index, term));
            assert!(acknowledged, "the outstanding write was acknowledged");
            completed = true;
        }
        completed
    }

    fn inject_faults(&mut self) {
        let faults = self.faults;
        for id in self.ids() {
            let step = self.step;
            let member = self.member(id);
            if member.node.is_none() {
                if self.rng.chance(faults.restart_per_mille) {
                    self.restart(id);
                }
            } else if let Some(until) = member.paused_until {
                if step >= until {
                    self.member_mut(id).paused_until = None;
                }
            } else if self.rng.chance(faults.crash_per_mille) {
                self.crash(id);
            } else if self.rng.chance(faults.pause_per_mille) {
                let steps = 1 + self.rng.below(faults.pause_steps_max);
                self.member_mut(id).paused_until = Some(step + steps);
            }
        }
        if self.rng.chance(faults.partition_per_mille) {
            for slot in 0..self.groups.len() {
                self.groups[slot] = self.rng.below(2) as u8;
            }
        } else if self.rng.chance(faults.heal_per_mille) {
            self.groups.iter_mut().for_each(|g| *g = 0);
        }
    }

    /// kill -9: whatever did not reach the disk is lost, and a write in progress may leave any
    /// prefix of its entries (never its hard state).
    fn crash(&mut self, id: NodeId) {
        let torn = self.rng.chance(500);
        let cut = self.rng.next_u64();
        let member = self.member_mut(id);
        member.node = None;
        member.replica = None;
        member.paused_until = None;
        if let Some((_, persist)) = member.persist.take() {
            if torn && persist.snapshot().is_none() {
                let keep = (cut % (persist.entries().len() as u64 + 1)) as usize;
                member.disk.write(&persist, Some(keep));
            }
        }
    }

    /// A crashed member starts again from its disk: its store from the snapshot, then the
    /// core hands back the committed entries after it to re-apply.
    fn restart(&mut self, id: NodeId) {
        let seed = self.seed;
        let member = self.member_mut(id);
        if member.node.is_some() {
            return;
        }
        member.starts += 1;
        let recovered = member.disk.recover();
        member.replica = Some(Replica::start(id, member.starts, member.disk.snapshot()));
        member.node = Some(Node::restart(node_config(seed, id), recovered).expect("valid"));
        self.drain(id);
    }
}

fn node_config(seed: u64, id: NodeId) -> Config {
    Config::new(id, seed.wrapping_mul(31).wrapping_add(id))
        .with_election_ticks(ELECTION_TICKS)
        .with_heartbeat_ticks(HEARTBEAT_TICKS)
        .with_snapshot_interval_entries(16)
        .with_compaction_trailing_entries(4)
        .with_inflight_max(8)
        .with_message_bytes_max(4096)
}
