//! The client, on the main thread: starts and kills nodes, writes, reads, and watches events.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tally_core::NodeId;

use crate::{Counter, Event, Input, Network, RETRY_AFTER, TICK, WAIT_MAX, spawn_node};

pub(crate) struct Client {
    started: Instant,
    events: Receiver<Event>,
    events_tx: Sender<Event>,
    network: Network,
    dir: PathBuf,
    threads: BTreeMap<NodeId, JoinHandle<()>>,
    /// The latest counter each node reported.
    views: BTreeMap<NodeId, Counter>,
    /// The newest (term, leader) any node reported.
    leader: Option<(u64, NodeId)>,
    /// The leader each node follows.
    follows: BTreeMap<NodeId, NodeId>,
    /// Calls refused so far (no leader yet, or a leader change under way).
    refusals: u64,
    next_id: u64,
    pub(crate) total: i64,
    next_read: u64,
}

impl Client {
    pub(crate) fn new(
        started: Instant,
        events: Receiver<Event>,
        events_tx: Sender<Event>,
        network: Network,
        dir: PathBuf,
    ) -> Client {
        Client {
            started,
            events,
            events_tx,
            network,
            dir,
            threads: BTreeMap::new(),
            views: BTreeMap::new(),
            leader: None,
            follows: BTreeMap::new(),
            refusals: 0,
            next_id: 1,
            total: 0,
            next_read: 1,
        }
    }

    /// Writes applied so far.
    pub(crate) fn writes(&self) -> u64 {
        self.next_id - 1
    }

    pub(crate) fn say(&self, line: &str) {
        println!("[{:>6.3}s] {line}", self.started.elapsed().as_secs_f64());
    }

    pub(crate) fn start(&mut self, id: NodeId) {
        let dir = self.dir.join(format!("node-{id}"));
        let (inbox, handle) = spawn_node(id, dir, self.network.clone(), self.events_tx.clone());
        self.network.connect(id, inbox);
        self.threads.insert(id, handle);
    }

    pub(crate) fn stop(&mut self, id: NodeId) {
        self.network.send(id, Input::Kill);
        self.network.disconnect(id);
        if let Some(handle) = self.threads.remove(&id) {
            handle.join().expect("the node thread ended cleanly");
        }
        self.views.remove(&id);
        self.follows.remove(&id);
    }

    /// Handles one event (or none, after `wait`). Returns a read's answer if one came.
    fn next_event(&mut self, wait: Duration) -> Option<(u64, i64, u64)> {
        let event = self.events.recv_timeout(wait).ok()?;
        match event {
            Event::Leader { node, leader, term } => {
                self.follows.insert(node, leader);
                if leader != 0 && self.leader.is_none_or(|(seen, _)| term > seen) {
                    self.leader = Some((term, leader));
                    self.say(&format!(
                        "election: node {leader} is leader of term {term} (first seen by node {node})"
                    ));
                }
            }
            Event::Applied { node, counter } => {
                self.views.insert(node, counter);
            }
            Event::Refused { node, why } => {
                self.refusals += 1;
                self.say(&format!("node {node} refused {why}; will retry"));
            }
            Event::ReadDone {
                request,
                value,
                index,
            } => return Some((request, value, index)),
            Event::Restarted { node, detail } => {
                self.say(&format!("node {node} recovered from its log: {detail}"));
            }
            Event::Snapshot {
                node,
                index,
                installed,
            } => {
                if installed {
                    self.say(&format!(
                        "node {node} installed a snapshot at index {index} sent by the leader"
                    ));
                } else if node == self.leader.map_or(0, |(_, leader)| leader) {
                    self.say(&format!(
                        "node {node} took a snapshot at index {index} and compacted its log"
                    ));
                }
            }
        }
        None
    }

    fn wait_until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&Client) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + WAIT_MAX;
        while !done(self) {
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("timed out waiting for {what}"));
            }
            self.next_event(deadline - now);
        }
        Ok(())
    }

    /// Waits until every node of `nodes` follows one leader among them (other than `old`).
    pub(crate) fn wait_for_leader(
        &mut self,
        nodes: &[NodeId],
        old: Option<NodeId>,
    ) -> Result<NodeId, String> {
        self.wait_until("a leader that every live node knows", |client| {
            client.leader.is_some_and(|(_, leader)| {
                Some(leader) != old
                    && nodes.contains(&leader)
                    && nodes
                        .iter()
                        .all(|id| client.follows.get(id) == Some(&leader))
            })
        })?;
        Ok(self.leader.expect("a leader").1)
    }

    /// Writes `count` increments, sending each to the next node of `through` in turn
    /// (followers forward to the leader), one at a time: a write is done once any node has
    /// applied it, and sent again if it was refused, or if no node has applied it after
    /// `RETRY_AFTER` (a forwarded proposal is lost when the leader changes).
    pub(crate) fn write_many(&mut self, count: u64, through: &[NodeId]) -> Result<(), String> {
        for n in 0..count {
            let id = self.next_id;
            self.next_id += 1;
            let delta = id as i64;
            let target = through[n as usize % through.len()];
            let deadline = Instant::now() + WAIT_MAX;
            let applied = |client: &Client| client.views.values().any(|c| c.last_write >= id);
            while !applied(self) {
                if Instant::now() >= deadline {
                    return Err(format!("write {id} was never applied"));
                }
                self.network.send(target, Input::Add { id, delta });
                let refusals = self.refusals;
                let retry_at = Instant::now() + RETRY_AFTER;
                while !applied(self) && Instant::now() < retry_at {
                    self.next_event(retry_at.saturating_duration_since(Instant::now()));
                    if self.refusals != refusals {
                        // Refused at once (no leader yet): try again shortly.
                        thread::sleep(TICK);
                        break;
                    }
                }
            }
            self.total += delta;
        }
        let index = self.views.values().map(|c| c.applied).max().unwrap_or(0);
        self.say(&format!(
            "{count} writes committed (up to log index {index}); counter = {}",
            self.total
        ));
        Ok(())
    }

    /// Waits until every node of `nodes` has applied every write, and checks that they agree.
    pub(crate) fn wait_for_agreement(&mut self, nodes: &[NodeId]) -> Result<(), String> {
        let last = self.next_id - 1;
        self.wait_until("every node to apply every write", |client| {
            nodes
                .iter()
                .all(|id| client.views.get(id).is_some_and(|c| c.last_write == last))
        })?;
        for id in nodes {
            let value = self.views[id].value;
            if value != self.total {
                return Err(format!("node {id} holds {value}, want {}", self.total));
            }
        }
        let list: Vec<String> = nodes.iter().map(|id| id.to_string()).collect();
        self.say(&format!(
            "nodes {} agree: counter = {}",
            list.join(", "),
            self.total
        ));
        Ok(())
    }

    /// A linearizable read through `node`: it asks the leader for the commit index, waits
    /// until it has applied that far, and answers from its own counter.
    pub(crate) fn linearizable_read(&mut self, node: NodeId) -> Result<i64, String> {
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            let request = self.next_read;
            self.next_read += 1;
            self.network.send(node, Input::Read { request });
            let retry_at = Instant::now() + RETRY_AFTER;
            while Instant::now() < retry_at {
                let wait = retry_at.saturating_duration_since(Instant::now());
                if let Some((done, value, index)) = self.next_event(wait) {
                    if done == request {
                        self.say(&format!("read {request} confirmed at index {index}"));
                        return Ok(value);
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("read through node {node} never completed"));
            }
        }
    }
}
