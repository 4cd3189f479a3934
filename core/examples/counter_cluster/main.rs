//! A replicated counter: `tally-core` embedded in a small runtime of its own, without mio.
//!
//! Three nodes run on three std threads. Each thread owns one [`Node`], a file-backed log and a
//! counter state machine, and runs the core's loop: feed inputs (ticks, peer messages, client
//! calls), then drain [`Node::poll_action`] and carry out every action in order. Peers talk over
//! std channels that carry the core's encoded messages as bytes, as a socket would. The main
//! thread is the client: it adds numbers to the counter through any node, kills the leader,
//! keeps writing through the two survivors, restarts the killed node from its log, and checks
//! that all three agree.
//!
//! ```sh
//! cargo run -p tally-core --example counter_cluster            # 40 writes per phase
//! cargo run -p tally-core --example counter_cluster -- --short # 12 writes per phase (CI)
//! ```
//!
//! This file holds the nodes and the state machine; `file_log.rs` the log, `client.rs` the
//! client that drives the scenario.
//!
//! The durability barrier: a `Persist` is written and `fdatasync`ed before
//! [`Node::on_persisted`] is called; the core holds back every message that promises durable
//! state (vote grants, append acknowledgements) until then, so this runtime may send whatever
//! the core hands it at once.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// `bytes` is a dependency of tally-core: its `Bytes` is the payload type of the core's API.
use bytes::Bytes;
use tally_core::{Action, Config, Entry, EntryKind, Node, NodeId, Snapshot, codec};

mod client;
mod file_log;

use client::Client;
use file_log::FileLog;

/// One logical clock tick of every node.
const TICK: Duration = Duration::from_millis(20);
/// Election timeout: 10 to 20 ticks (200–400 ms); heartbeats every 2 ticks.
const ELECTION_TICKS: u32 = 10;
const HEARTBEAT_TICKS: u32 = 2;
/// Applied entries between snapshots, and entries kept behind one: small, so that the
/// restarted node has to catch up from a snapshot.
const SNAPSHOT_INTERVAL_ENTRIES: u64 = 10;
const COMPACTION_TRAILING_ENTRIES: u64 = 2;
/// How long the client waits for any one thing before it gives up.
const WAIT_MAX: Duration = Duration::from_secs(15);
/// How long the client waits for a write to be applied before it sends it again.
const RETRY_AFTER: Duration = Duration::from_millis(800);
const VOTERS: [NodeId; 3] = [1, 2, 3];

fn main() -> ExitCode {
    let mut writes_per_phase = 40;
    let mut keep = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--short" => writes_per_phase = 12,
            "--keep" => keep = true,
            _ => {
                eprintln!("usage: counter_cluster [--short] [--keep]");
                return ExitCode::from(2);
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("tally-counter-cluster-{}", std::process::id()));
    let result = run(&dir, writes_per_phase);
    if keep {
        println!("logs kept in {}", dir.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("counter_cluster: FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path, writes_per_phase: u64) -> Result<(), String> {
    let started = Instant::now();
    let (events_tx, events_rx) = mpsc::channel();
    let network = Network::default();
    let mut cluster = Client::new(started, events_rx, events_tx, network, dir.to_path_buf());
    println!("starting 3 nodes; their logs are in {}", dir.display());
    for id in VOTERS {
        cluster.start(id);
    }

    let leader = cluster.wait_for_leader(&[1, 2, 3], None)?;
    cluster.say(&format!(
        "node {leader} leads; writing {writes_per_phase} increments through all nodes"
    ));
    cluster.write_many(writes_per_phase, &[1, 2, 3])?;
    cluster.wait_for_agreement(&[1, 2, 3])?;

    cluster.say(&format!("killing node {leader}, the leader"));
    cluster.stop(leader);
    let survivors: Vec<NodeId> = VOTERS.iter().copied().filter(|&id| id != leader).collect();
    let new_leader = cluster.wait_for_leader(&survivors, Some(leader))?;
    cluster.say(&format!(
        "node {new_leader} leads with 2 of 3 nodes up; writing {writes_per_phase} more"
    ));
    cluster.write_many(writes_per_phase, &survivors)?;
    cluster.wait_for_agreement(&survivors)?;

    cluster.say(&format!("restarting node {leader} from its log"));
    cluster.start(leader);
    cluster.wait_for_agreement(&[1, 2, 3])?;

    let follower = survivors
        .iter()
        .copied()
        .find(|&id| id != new_leader)
        .unwrap_or(leader);
    let value = cluster.linearizable_read(follower)?;
    if value != cluster.total {
        return Err(format!(
            "linearizable read at node {follower} gave {value}, want {}",
            cluster.total
        ));
    }
    cluster.say(&format!(
        "linearizable read through node {follower} (a follower): counter = {value}"
    ));
    for id in VOTERS {
        cluster.stop(id);
    }
    println!(
        "OK: {} writes, one leader killed and restarted; all 3 nodes hold counter = {}",
        cluster.writes(),
        cluster.total
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The network: one channel per node. A message to a stopped node is lost, as on a real network;
// the core resends what matters.

#[derive(Clone, Default)]
struct Network {
    inboxes: Arc<Mutex<BTreeMap<NodeId, Sender<Input>>>>,
}

impl Network {
    fn send(&self, to: NodeId, input: Input) {
        let inboxes = self.inboxes.lock().expect("network lock");
        if let Some(inbox) = inboxes.get(&to) {
            let _ = inbox.send(input);
        }
    }

    fn connect(&self, id: NodeId, inbox: Sender<Input>) {
        self.inboxes.lock().expect("network lock").insert(id, inbox);
    }

    fn disconnect(&self, id: NodeId) {
        self.inboxes.lock().expect("network lock").remove(&id);
    }
}

/// What a node's thread receives.
enum Input {
    /// An encoded Raft message from a peer.
    Peer(Vec<u8>),
    /// Add `delta` to the counter; `id` makes a retried write apply once.
    Add { id: u64, delta: i64 },
    /// A linearizable read of the counter.
    Read { request: u64 },
    /// Stop at once, as `kill -9` would: nothing is flushed, the log stays as it is.
    Kill,
}

/// What a node's thread tells the client.
enum Event {
    Leader {
        node: NodeId,
        leader: NodeId,
        term: u64,
    },
    Applied {
        node: NodeId,
        counter: Counter,
    },
    Refused {
        node: NodeId,
        why: String,
    },
    ReadDone {
        request: u64,
        value: i64,
        index: u64,
    },
    Restarted {
        node: NodeId,
        detail: String,
    },
    Snapshot {
        node: NodeId,
        index: u64,
        installed: bool,
    },
}

// ---------------------------------------------------------------------------------------------
// The state machine: a counter. Each command carries the client's write id; a write applies
// only if its id is newer than the last one applied, so the client may resend a write whose
// answer it did not see.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counter {
    applied: u64,
    value: i64,
    last_write: u64,
}

impl Counter {
    fn apply(&mut self, entry: &Entry) {
        assert_eq!(entry.index(), self.applied + 1, "entries apply in order");
        self.applied = entry.index();
        // Membership changes and the leader's empty no-op carry no command.
        if entry.kind() != EntryKind::Normal || entry.data().is_empty() {
            return;
        }
        let (id, delta) = decode_command(entry.data());
        if id > self.last_write {
            self.last_write = id;
            self.value += delta;
        }
    }

    fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(&self.applied.to_le_bytes());
        out.extend_from_slice(&self.value.to_le_bytes());
        out.extend_from_slice(&self.last_write.to_le_bytes());
        Bytes::from(out)
    }

    /// The counter a snapshot holds; an empty one (a cluster's first) is a zero counter.
    fn from_snapshot(snapshot: &Snapshot) -> Counter {
        let data = snapshot.data();
        if data.len() != 24 {
            return Counter {
                applied: snapshot.meta().index(),
                ..Counter::default()
            };
        }
        let word = |at: usize| <[u8; 8]>::try_from(&data[at..at + 8]).expect("8 bytes");
        Counter {
            applied: u64::from_le_bytes(word(0)),
            value: i64::from_le_bytes(word(8)),
            last_write: u64::from_le_bytes(word(16)),
        }
    }
}

fn encode_command(id: u64, delta: i64) -> Bytes {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&delta.to_le_bytes());
    Bytes::from(out)
}

fn decode_command(data: &[u8]) -> (u64, i64) {
    assert_eq!(data.len(), 16, "commands are 16 bytes");
    let id = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    let delta = i64::from_le_bytes(data[8..].try_into().expect("8 bytes"));
    (id, delta)
}

// ---------------------------------------------------------------------------------------------
// One node's thread: the core's loop.

struct NodeThread {
    id: NodeId,
    node: Node,
    log: FileLog,
    counter: Counter,
    network: Network,
    events: Sender<Event>,
    /// Linearizable reads confirmed by the core, waiting for the counter to reach their index.
    reads: Vec<(u64, u64)>,
}

fn spawn_node(
    id: NodeId,
    dir: PathBuf,
    network: Network,
    events: Sender<Event>,
) -> (Sender<Input>, JoinHandle<()>) {
    let (inbox_tx, inbox_rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(format!("node-{id}"))
        .spawn(move || {
            let mut node = match NodeThread::open(id, &dir, network, events) {
                Ok(node) => node,
                Err(error) => panic!(
                    "node {id}: cannot open its log in {}: {error}",
                    dir.display()
                ),
            };
            if let Err(error) = node.run(inbox_rx) {
                panic!("node {id}: log write failed: {error}");
            }
        })
        .expect("spawn a node thread");
    (inbox_tx, handle)
}

impl NodeThread {
    fn open(id: NodeId, dir: &Path, network: Network, events: Sender<Event>) -> io::Result<Self> {
        let config = Config::new(id, 0x7a11_c0de)
            .with_election_ticks(ELECTION_TICKS)
            .with_heartbeat_ticks(HEARTBEAT_TICKS)
            .with_snapshot_interval_entries(SNAPSHOT_INTERVAL_ENTRIES)
            .with_compaction_trailing_entries(COMPACTION_TRAILING_ENTRIES);
        let (log, recovered) = FileLog::open(dir)?;
        let (node, counter) = match recovered {
            // An empty log: this node is one of the cluster's first members.
            None => {
                let node = Node::bootstrap(config, &VOTERS).expect("a valid bootstrap config");
                (node, Counter::default())
            }
            Some(recovered) => {
                let counter = Counter::from_snapshot(recovered.snapshot());
                let _ = events.send(Event::Restarted {
                    node: id,
                    detail: format!(
                        "snapshot at index {}, {} entries after it, term {}, counter {} in the snapshot",
                        recovered.snapshot().meta().index(),
                        recovered.entries().len(),
                        recovered.hard_state().term(),
                        counter.value
                    ),
                });
                let node = Node::restart(config, recovered)
                    .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
                (node, counter)
            }
        };
        Ok(NodeThread {
            id,
            node,
            log,
            counter,
            network,
            events,
            reads: Vec::new(),
        })
    }

    /// The loop: wait for an input or the next tick, take every input that has arrived (so
    /// one turn's proposals share one append and one fsync), tick if due, then drain.
    fn run(&mut self, inbox: Receiver<Input>) -> io::Result<()> {
        let mut next_tick = Instant::now() + TICK;
        self.drain()?;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let first = match inbox.recv_timeout(wait) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            for input in first.into_iter().chain(inbox.try_iter()) {
                if !self.handle(input) {
                    return Ok(());
                }
            }
            if Instant::now() >= next_tick {
                self.node.tick();
                next_tick += TICK;
            }
            self.drain()?;
        }
    }

    /// Feeds one input to the core. Returns false when the node must stop.
    fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Peer(bytes) => match codec::decode(&Bytes::from(bytes)) {
                Ok(message) => {
                    if let Err(error) = self.node.step(message) {
                        eprintln!("node {}: refused a message: {error}", self.id);
                    }
                }
                Err(error) => eprintln!("node {}: undecodable message: {error}", self.id),
            },
            Input::Add { id, delta } => {
                if let Err(error) = self.node.propose(encode_command(id, delta)) {
                    self.tell(Event::Refused {
                        node: self.id,
                        why: format!("write {id}: {error}"),
                    });
                }
            }
            Input::Read { request } => {
                if let Err(error) = self.node.read_index(request) {
                    self.tell(Event::Refused {
                        node: self.id,
                        why: format!("read {request}: {error}"),
                    });
                }
            }
            Input::Kill => return false,
        }
        true
    }

    /// Carries out every action, in the order the core gives them.
    fn drain(&mut self) -> io::Result<()> {
        let applied_before = self.counter.applied;
        while let Some(action) = self.node.poll_action() {
            match action {
                // Safe to send at once: the core holds back anything that needs a durable log.
                Action::Send(message) => self
                    .network
                    .send(message.to(), Input::Peer(codec::encode_to_vec(&message))),
                // Durable first, then acknowledged: this is what lets the core release the
                // vote grants and append acknowledgements it was holding back.
                Action::Persist(persist) => {
                    self.log.write(&persist)?;
                    let acknowledged = self
                        .node
                        .on_persisted(persist.last_index(), persist.last_term());
                    assert!(acknowledged, "the one outstanding write was acknowledged");
                }
                Action::ApplySnapshot(snapshot) => {
                    self.counter = Counter::from_snapshot(&snapshot);
                    self.tell(Event::Snapshot {
                        node: self.id,
                        index: snapshot.meta().index(),
                        installed: true,
                    });
                }
                Action::Apply(entries) => {
                    for entry in &entries {
                        self.counter.apply(entry);
                    }
                }
                Action::ReadReady { request, index } => self.reads.push((request, index)),
                Action::RequestSnapshot { index } => {
                    assert_eq!(
                        self.counter.applied, index,
                        "actions are carried out in order"
                    );
                    let snapshot = self
                        .node
                        .compact(index, self.counter.encode())
                        .expect("compaction at the applied index");
                    self.log.save_snapshot(snapshot)?;
                    self.tell(Event::Snapshot {
                        node: self.id,
                        index,
                        installed: false,
                    });
                }
                Action::LeaderChanged { leader, term } => self.tell(Event::Leader {
                    node: self.id,
                    leader,
                    term,
                }),
                // Actions a later version of the core may add.
                _ => {}
            }
        }
        if self.counter.applied != applied_before {
            self.tell(Event::Applied {
                node: self.id,
                counter: self.counter,
            });
        }
        let counter = self.counter;
        let events = &self.events;
        self.reads.retain(|&(request, index)| {
            let ready = counter.applied >= index;
            if ready {
                let _ = events.send(Event::ReadDone {
                    request,
                    value: counter.value,
                    index,
                });
            }
            !ready
        });
        Ok(())
    }

    fn tell(&self, event: Event) {
        let _ = self.events.send(event);
    }
}
