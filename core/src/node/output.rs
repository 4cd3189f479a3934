//! The output pipeline: turning state changes into actions, and the durability barrier.
//!
//! The barrier: a message that promises durable state (a vote grant, an append
//! acknowledgement, a candidate's own vote) waits until the `Persist` carrying that state has
//! been acknowledged with `on_persisted`. Only one `Persist` is outstanding at a time; what
//! accumulates meanwhile goes into the next one, which is where group commit comes from.

use alloc::collections::VecDeque;

use super::Node;
use crate::action::{Action, Persist};
use crate::message::Message;
use crate::types::{EntryKind, HardState, Role};

#[derive(Debug, Default)]
pub(super) struct Barrier {
    /// `Persist` actions emitted / acknowledged so far.
    emitted: u64,
    done: u64,
    /// The outstanding `Persist`: (last index, last term).
    in_flight: Option<(u64, u64)>,
    /// The hard state most recently handed out for persistence.
    hard_state: HardState,
    /// Messages held until `done` reaches their sequence number.
    held: VecDeque<(u64, Message)>,
}

impl Barrier {
    pub(super) fn mark_hard_state_persisted(&mut self, hard_state: HardState) {
        self.hard_state = hard_state;
    }
}

impl Node {
    /// Sends `message` once everything this node holds now is durable.
    pub(super) fn send_after_persist(&mut self, message: Message) {
        let dirty = self.log.has_unstable() || self.hard_state_dirty();
        let needed = self.barrier.emitted + u64::from(dirty);
        if needed <= self.barrier.done {
            self.deliver(message);
        } else {
            self.barrier.held.push_back((needed, message));
        }
    }

    fn hard_state_dirty(&self) -> bool {
        let persisted = self.barrier.hard_state;
        persisted.term() != self.term || persisted.vote() != self.vote
    }

    fn deliver(&mut self, message: Message) {
        if message.to == self.id {
            self.step_validated(message);
        } else {
            self.outbox.push(message);
        }
    }

    pub(super) fn persisted(&mut self, index: u64, term: u64) -> bool {
        if self.barrier.in_flight != Some((index, term)) {
            return false;
        }
        self.barrier.in_flight = None;
        self.barrier.done = self.barrier.emitted;
        self.log.persisted_to(index);
        if self.role == Role::Leader {
            self.refresh_self_progress();
            if self.maybe_commit() {
                self.broadcast_pending = true;
            }
        }
        while let Some((needed, _)) = self.barrier.held.front() {
            if *needed > self.barrier.done {
                break;
            }
            let (_, message) = self.barrier.held.pop_front().expect("front exists");
            // A promise made in an older term is void: Raft never answers across terms.
            if message.term == self.term {
                self.deliver(message);
            }
        }
        true
    }

    /// Moves pending work into the action queue. Returns whether anything was queued.
    pub(super) fn flush(&mut self) -> bool {
        let queued_before = self.actions.len();
        self.flush_replication();
        self.flush_persist();
        self.flush_apply();
        for message in self.outbox.drain(..) {
            self.actions.push_back(Action::Send(message));
        }
        self.actions.len() > queued_before
    }

    fn flush_replication(&mut self) {
        if self.role == Role::Leader {
            if self.broadcast_pending {
                self.broadcast_pending = false;
                self.broadcast_append();
            }
            if self.reads.needs_heartbeat() {
                self.broadcast_heartbeat();
            }
        } else if !self.forward.is_empty() && self.leader != crate::types::NO_NODE {
            let entries = core::mem::take(&mut self.forward);
            let leader = self.leader;
            self.send(leader, crate::message::Body::Propose { entries });
        }
    }

    fn flush_persist(&mut self) {
        if self.barrier.in_flight.is_some() || !(self.log.has_unstable() || self.hard_state_dirty())
        {
            return;
        }
        let hard_state = self.hard_state();
        let changed = hard_state != self.barrier.hard_state;
        self.barrier.hard_state = hard_state;
        let (snapshot, entries) = self.log.take_unstable();
        let last = (self.log.last_index(), self.log.last_term());
        self.barrier.emitted += 1;
        self.barrier.in_flight = Some(last);
        let persist = Persist::new(changed.then_some(hard_state), snapshot, entries, last);
        self.actions.push_back(Action::Persist(persist));
    }

    fn flush_apply(&mut self) {
        if let Some(snapshot) = self.log.take_snapshot_to_apply() {
            self.actions.push_back(Action::ApplySnapshot(snapshot));
        }
        let entries = self.log.next_to_apply(self.config.apply_bytes_max());
        let Some(last) = entries.last().map(|e| e.index()) else {
            return;
        };
        self.log.applied_to(last);
        for entry in entries.iter().filter(|e| e.kind() == EntryKind::ConfChange) {
            self.apply_conf_change(entry);
        }
        self.actions.push_back(Action::Apply(entries));
        let interval = self.config.snapshot_interval_entries();
        let since_snapshot = last - self.log.snapshot().meta().index();
        if interval > 0 && since_snapshot >= interval && !self.snapshot_requested {
            self.snapshot_requested = true;
            self.actions
                .push_back(Action::RequestSnapshot { index: last });
        }
    }
}
