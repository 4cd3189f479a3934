//! A network driven by hand, for tests that replay an exact schedule: the test decides which
//! node ticks, which messages cross which partition, and when a node crashes.
//!
//! Writes complete at once, so a crash loses only what a node had not yet sent. After every
//! step the cluster checker (`testing::invariants`) runs, and so does one more rule: an entry
//! that any node applied is never replaced in a log that held it.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

use crate::action::Persist;
use crate::testing::disk::{Disk, StateMachine};
use crate::testing::invariants::Checker;
use crate::{
    Action, ConfState, Config, Entry, EntryKind, HardState, Message, MessageKind, NO_NODE, Node,
    NodeId, Role, Snapshot, SnapshotMeta, Status, StepError,
};

/// Messages delivered by one `settle` before it gives up: Raft goes quiet without ticks, so
/// more means two nodes answer each other forever.
const SETTLE_MESSAGES_MAX: usize = 100_000;

/// Ticks one node may take to start an election: its timeout is below 2 × election_ticks.
const CAMPAIGN_TICKS_MAX: u32 = 100;

pub(super) struct Net {
    configs: Vec<Config>,
    nodes: Vec<Option<Node>>,
    disks: Vec<Disk>,
    states: Vec<StateMachine>,
    /// The commit index each live node last showed, so the checker sees it never move back.
    commits: Vec<u64>,
    checker: Checker,
    /// Sent and not yet delivered, oldest first.
    queue: VecDeque<Message>,
    /// Partition group of each node; messages do not cross groups.
    groups: Vec<u8>,
    /// The term of every entry any node applied, by index.
    applied: BTreeMap<u64, u64>,
    /// Per node, the applied indexes its log was seen holding.
    held: Vec<BTreeSet<u64>>,
    /// Every `ReadReady`: (node, request, index).
    reads: Vec<(NodeId, u64, u64)>,
}

fn slot(id: NodeId) -> usize {
    usize::try_from(id - 1).expect("small node ids")
}

impl Net {
    /// `voters` nodes, ids 1..=voters, that share one committed entry (index 1, term 1) as in
    /// the Raft paper's figures. `tune` adjusts each node's config (10 election ticks, 1
    /// heartbeat tick, PreVote and CheckQuorum on).
    pub(super) fn new(voters: u64, tune: impl Fn(Config) -> Config) -> Net {
        let ids: Vec<NodeId> = (1..=voters).collect();
        let conf = ConfState::new(&ids, &[]);
        let count = ids.len();
        let mut net = Net {
            configs: Vec::new(),
            nodes: (0..count).map(|_| None).collect(),
            disks: Vec::new(),
            states: vec![StateMachine::default(); count],
            commits: vec![0; count],
            checker: Checker::default(),
            queue: VecDeque::new(),
            groups: vec![0; count],
            applied: BTreeMap::new(),
            held: vec![BTreeSet::new(); count],
            reads: Vec::new(),
        };
        for &id in &ids {
            let config = Config::new(id, 7)
                .with_election_ticks(10)
                .with_heartbeat_ticks(1);
            net.configs.push(tune(config));
            let snapshot = Snapshot::new(SnapshotMeta::new(0, 0, conf.clone()), Bytes::new());
            let first = Entry::new(1, 1, EntryKind::Normal, Bytes::new());
            let hard_state = HardState::new(1, NO_NODE, 1);
            let persist = Persist::new(Some(hard_state), Some(snapshot), vec![first], (1, 1));
            let mut disk = Disk::default();
            disk.write(&persist, None);
            net.disks.push(disk);
        }
        for id in ids {
            net.restart(id);
        }
        net
    }

    pub(super) fn node(&self, id: NodeId) -> &Node {
        self.nodes[slot(id)]
            .as_ref()
            .unwrap_or_else(|| panic!("node {id} is down"))
    }

    pub(super) fn status(&self, id: NodeId) -> Status {
        self.node(id).status()
    }

    pub(super) fn election_ticks(&self) -> u32 {
        self.configs[0].election_ticks()
    }

    /// The live nodes that believe they lead.
    pub(super) fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .flatten()
            .filter(|node| node.status().role() == Role::Leader)
            .map(Node::id)
            .collect()
    }

    /// The term of the entry any node applied at `index`.
    pub(super) fn applied_term(&self, index: u64) -> Option<u64> {
        self.applied.get(&index).copied()
    }

    /// The index of node `id`'s `ReadReady` for `request`, if it gave one.
    pub(super) fn read_ready(&self, id: NodeId, request: u64) -> Option<u64> {
        self.reads
            .iter()
            .find(|&&(node, r, _)| node == id && r == request)
            .map(|&(_, _, index)| index)
    }

    pub(super) fn queued(&self) -> impl Iterator<Item = &Message> {
        self.queue.iter()
    }

    /// Runs `f` on node `id`, then carries out the actions it caused.
    pub(super) fn with_node<R>(&mut self, id: NodeId, f: impl FnOnce(&mut Node) -> R) -> R {
        let node = self.nodes[slot(id)]
            .as_mut()
            .unwrap_or_else(|| panic!("node {id} is down"));
        let result = f(node);
        self.drain(id);
        result
    }

    pub(super) fn tick(&mut self, id: NodeId) {
        self.with_node(id, Node::tick);
    }

    /// Ticks every live node once, then delivers everything.
    pub(super) fn tick_all(&mut self) {
        for position in 0..self.nodes.len() {
            if self.nodes[position].is_some() {
                self.tick(position as NodeId + 1);
            }
        }
        self.settle();
    }

    /// Ticks `id` alone until it asks for (pre-)votes; the requests stay queued.
    pub(super) fn campaign(&mut self, id: NodeId) {
        for _ in 0..CAMPAIGN_TICKS_MAX {
            let queued = self.queue.len();
            self.tick(id);
            let asked = self.queue.iter().skip(queued).any(|m| {
                m.from() == id && matches!(m.kind(), MessageKind::PreVote | MessageKind::Vote)
            });
            if asked {
                return;
            }
        }
        panic!("node {id} did not campaign");
    }

    /// Campaigns with `candidate` until it leads, delivering messages only until it does:
    /// what it sends as the new leader is still queued.
    pub(super) fn elect(&mut self, candidate: NodeId) {
        assert!(
            self.try_elect(candidate),
            "node {candidate} was not elected"
        );
    }

    /// `elect`, giving up after a few elections; returns whether `candidate` leads.
    pub(super) fn try_elect(&mut self, candidate: NodeId) -> bool {
        for _ in 0..4 {
            self.campaign(candidate);
            if self.deliver_until(|net| net.status(candidate).role() == Role::Leader) {
                return true;
            }
        }
        false
    }

    /// Ticks `candidates` together until one of them leads, and returns it.
    pub(super) fn tick_until_leader(&mut self, candidates: &[NodeId]) -> NodeId {
        for _ in 0..20 * self.election_ticks() {
            for &id in candidates {
                self.tick(id);
            }
            self.settle();
            let leader = candidates
                .iter()
                .copied()
                .find(|&id| self.status(id).role() == Role::Leader);
            if let Some(leader) = leader {
                return leader;
            }
        }
        panic!("none of {candidates:?} was elected");
    }

    /// Nodes in different groups cannot talk; unlisted nodes share one more group.
    pub(super) fn partition(&mut self, groups: &[&[NodeId]]) {
        self.groups.iter_mut().for_each(|group| *group = u8::MAX);
        for (number, members) in groups.iter().enumerate() {
            for &id in *members {
                self.groups[slot(id)] = u8::try_from(number).expect("few groups");
            }
        }
    }

    pub(super) fn heal(&mut self) {
        self.groups.iter_mut().for_each(|group| *group = 0);
    }

    /// Stops node `id`. What it had queued to send is lost with it, and so is what was on its
    /// way to it; its disk stays.
    pub(super) fn crash(&mut self, id: NodeId) {
        self.nodes[slot(id)] = None;
        self.commits[slot(id)] = 0;
        self.queue.retain(|m| m.from() != id && m.to() != id);
    }

    /// Starts node `id` again from its disk.
    pub(super) fn restart(&mut self, id: NodeId) {
        let position = slot(id);
        assert!(self.nodes[position].is_none(), "node {id} is already up");
        let recovered = self.disks[position].recover();
        let node = Node::restart(self.configs[position].clone(), recovered)
            .expect("recovered state is valid");
        self.nodes[position] = Some(node);
        self.states[position] = StateMachine::default();
        self.drain(id);
    }

    /// The hard state on node `id`'s disk.
    pub(super) fn durable_hard_state(&self, id: NodeId) -> HardState {
        *self.disks[slot(id)].recover().hard_state()
    }

    /// Delivers queued messages, oldest first, until the queue is empty.
    pub(super) fn settle(&mut self) {
        for _ in 0..SETTLE_MESSAGES_MAX {
            let Some(message) = self.queue.pop_front() else {
                return;
            };
            self.deliver(message);
        }
        panic!("the network did not settle");
    }

    /// Delivers queued messages, oldest first, until `done` holds (true) or the queue is
    /// empty (false).
    pub(super) fn deliver_until(&mut self, done: impl Fn(&Net) -> bool) -> bool {
        for _ in 0..SETTLE_MESSAGES_MAX {
            if done(self) {
                return true;
            }
            let Some(message) = self.queue.pop_front() else {
                return false;
            };
            self.deliver(message);
        }
        panic!("the network did not settle");
    }

    /// Delivers up to `count` queued messages, oldest first; returns how many there were.
    pub(super) fn deliver_count(&mut self, count: usize) -> usize {
        for delivered in 0..count {
            let Some(message) = self.queue.pop_front() else {
                return delivered;
            };
            self.deliver(message);
        }
        count
    }

    /// Steps a message made by the test into its recipient, whatever the partition.
    pub(super) fn inject(&mut self, message: Message) -> Result<(), StepError> {
        let to = message.to();
        self.with_node(to, |node| node.step(message))
    }

    fn deliver(&mut self, message: Message) {
        let (from, to) = (slot(message.from()), slot(message.to()));
        if self.groups[from] != self.groups[to] || self.nodes[to].is_none() {
            return;
        }
        let stepped = self.inject(message);
        assert_eq!(
            stepped,
            Ok(()),
            "a node refused a message another node sent"
        );
    }

    /// Carries out node `id`'s actions: sends are queued, writes complete at once.
    fn drain(&mut self, id: NodeId) {
        let position = slot(id);
        while let Some(action) = self.nodes[position].as_mut().and_then(Node::poll_action) {
            match action {
                Action::Send(message) => self.queue.push_back(message),
                Action::Persist(persist) => {
                    self.disks[position].write(&persist, None);
                    let node = self.nodes[position].as_mut().expect("node is up");
                    assert!(node.on_persisted(persist.last_index(), persist.last_term()));
                }
                Action::Apply(entries) => {
                    for entry in &entries {
                        self.states[position].apply(entry);
                        let hash = self.states[position].hash();
                        if let Err(violation) = self.checker.on_apply(id, entry, hash) {
                            panic!("{violation}");
                        }
                        self.applied.insert(entry.index(), entry.term());
                    }
                }
                Action::ReadReady { request, index } => self.reads.push((id, request, index)),
                _ => {}
            }
        }
        self.check();
    }

    fn check(&mut self) {
        let nodes: Vec<Option<&Node>> = self.nodes.iter().map(Option::as_ref).collect();
        if let Err(violation) = self.checker.check_step(&nodes, &mut self.commits) {
            panic!("{violation}");
        }
        for (position, node) in self.nodes.iter().enumerate() {
            let Some(node) = node else { continue };
            for (&index, &term) in &self.applied {
                match node.log_term(index) {
                    Some(held) if held == term => {
                        self.held[position].insert(index);
                    }
                    Some(other) if self.held[position].contains(&index) => panic!(
                        "node {} replaced the entry at index {index} (term {term}), which was \
                         applied, with one of term {other}",
                        node.id()
                    ),
                    _ => {}
                }
            }
        }
    }
}
