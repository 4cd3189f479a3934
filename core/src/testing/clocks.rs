//! Each simulated node's clock, and pauses.
//!
//! Simulated time advances in ticks of the world. A node takes its own ticks (the only time a
//! Raft node knows) at its own rate: a drifting clock runs between the rates that `Faults`
//! allows, so over a thousand ticks of the world a slow node ticks 800 times and a fast one
//! 1250. Its skew is a constant offset in when its ticks happen: a fraction of a tick it is
//! ahead of the world, which also orders the nodes that tick in the same world tick.
//!
//! A paused node is a SIGSTOPped process: it takes no ticks and handles nothing. Messages to it
//! queue (as they would in its socket buffers), its disk writes are not acknowledged, and
//! client requests to it wait. When it resumes, it handles everything that queued, one
//! connection after another in random order, with the view of the cluster it had when it
//! stopped: a paused leader still believes it leads, even if the others have elected a
//! successor meanwhile, and may answer a client before it reads its peers' news. A crash of a
//! paused node (kill -9) ends the pause.

use alloc::vec::Vec;
use bytes::Bytes;

use super::SimRng;
use super::cluster::Cluster;
use super::faults::Faults;
use super::network::InFlight;
use crate::types::NodeId;

/// Clock rates are in ticks of the node per thousand ticks of the world.
const RATE_ONE: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Clock {
    rate_per_mille: u32,
    /// How far ahead of the world this clock runs, in thousandths of a tick.
    skew: u32,
    /// Thousandths of a tick accumulated towards the next tick.
    credit: u32,
    /// While paused, the world tick at which the pause ends.
    paused_until: Option<u64>,
}

impl Clock {
    /// A clock in step with the world.
    pub(super) fn lockstep() -> Clock {
        Clock {
            rate_per_mille: RATE_ONE,
            skew: 0,
            credit: 0,
            paused_until: None,
        }
    }

    /// A clock with a rate and skew drawn from `faults`; a lockstep clock (with no draw from
    /// `rng`) when the faults allow no drift.
    pub(super) fn drawn(rng: &mut SimRng, faults: &Faults) -> Clock {
        let (low, high) = faults.clock_rate_range();
        if low == RATE_ONE && high == RATE_ONE {
            return Clock::lockstep();
        }
        let rate_per_mille = low + rng.below(u64::from(high - low) + 1) as u32;
        let skew = rng.below(u64::from(RATE_ONE)) as u32;
        Clock {
            rate_per_mille,
            skew,
            credit: skew,
            paused_until: None,
        }
    }

    pub(super) fn skew(&self) -> u32 {
        self.skew
    }

    pub(super) fn rate_per_mille(&self) -> u32 {
        self.rate_per_mille
    }

    /// The node's ticks that fall in the next tick of the world (none while paused).
    pub(super) fn advance(&mut self) -> u32 {
        if self.paused_until.is_some() {
            return 0;
        }
        self.credit += self.rate_per_mille;
        let ticks = self.credit / RATE_ONE;
        self.credit %= RATE_ONE;
        ticks
    }

    pub(super) fn is_paused(&self) -> bool {
        self.paused_until.is_some()
    }

    pub(super) fn pause_until(&mut self, until: u64) {
        self.paused_until = Some(until);
    }

    /// Whether a pause ends at or before `now`.
    pub(super) fn pause_over(&self, now: u64) -> bool {
        self.paused_until.is_some_and(|until| until <= now)
    }

    pub(super) fn unpause(&mut self) {
        self.paused_until = None;
    }
}

/// A client's call that reached a paused node and waits for it to resume.
#[derive(Debug, Clone)]
pub(super) enum ClientCall {
    Propose(Bytes),
    Read(u64),
}

/// What a resumed node handles, in random order.
enum Queued {
    Call(ClientCall),
    Message(InFlight),
}

impl Cluster {
    /// Stops member `id` for `ticks` ticks of the world, as SIGSTOP stops a process: it ticks
    /// and handles nothing until it resumes. A member that is down is not paused.
    pub fn pause(&mut self, id: NodeId, ticks: u64) {
        let until = self.now + ticks.max(1);
        let member = self.member_mut(id);
        if member.node.is_some() && !member.clock.is_paused() {
            member.clock.pause_until(until);
        }
    }

    /// Whether member `id` is paused.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.member(id).clock.is_paused()
    }

    /// The rate of member `id`'s clock, in its ticks per thousand ticks of the world.
    pub fn clock_rate_per_mille(&self, id: NodeId) -> u32 {
        self.member(id).clock.rate_per_mille()
    }

    /// Resumes member `id` if it is paused: it handles the client calls and the messages that
    /// queued meanwhile before anything else, one connection after another in random order
    /// (a peer's messages in the order they arrived).
    pub fn resume(&mut self, id: NodeId) {
        let now = self.now;
        let member = self.member_mut(id);
        if !member.clock.is_paused() {
            return;
        }
        member.clock.unpause();
        // Each client call came on its own connection; each peer's messages queued on that
        // peer's connection, in order.
        let mut sources: Vec<Vec<Queued>> = member
            .calls
            .drain(..)
            .map(|call| alloc::vec![Queued::Call(call)])
            .collect();
        let mut peers: Vec<(NodeId, Vec<InFlight>)> = Vec::new();
        let mut position = 0;
        while position < self.network.len() {
            let message = &self.network[position];
            if message.to == id && message.deliver_at <= now {
                let message = self.network.remove(position);
                match peers.iter_mut().find(|(from, _)| *from == message.from) {
                    Some((_, queue)) => queue.push(message),
                    None => peers.push((message.from, alloc::vec![message])),
                }
            } else {
                position += 1;
            }
        }
        for (_, mut queue) in peers {
            queue.sort_by_key(|message| message.deliver_at);
            sources.push(queue.into_iter().map(Queued::Message).collect());
        }
        // The connections become readable in random order.
        for i in (1..sources.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            sources.swap(i, j);
        }
        for work in sources.into_iter().flatten() {
            match work {
                Queued::Call(call) => self.call_now(id, call),
                Queued::Message(message) => self.deliver(message),
            }
        }
    }

    /// Resumes every member whose pause has run out.
    pub(super) fn resume_due(&mut self) {
        for id in self.member_ids() {
            if self.member(id).clock.pause_over(self.now) {
                self.resume(id);
            }
        }
    }

    /// Carries out a client call on a running member; a failed call is the client's to
    /// retry, as it would be over the network.
    pub(super) fn call_now(&mut self, id: NodeId, call: ClientCall) {
        match call {
            ClientCall::Propose(data) => {
                let _maybe = self.with_node(id, |node| node.propose(data));
            }
            ClientCall::Read(request) => {
                let _maybe = self.with_node(id, |node| node.read_index(request));
            }
        }
    }

    /// Takes the ticks of the world's current tick: each running member ticks as often as its
    /// clock says, in the order of the clocks' skew.
    pub(super) fn tick_clocks(&mut self) {
        for position in 0..self.tick_order.len() {
            let id = self.tick_order[position];
            let ticks = self.member_mut(id).clock.advance();
            for _ in 0..ticks {
                if self.is_up(id) {
                    self.with_node(id, crate::node::Node::tick);
                }
            }
        }
    }
}
