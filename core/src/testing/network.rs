//! The simulated network: messages travel encoded, and are dropped, duplicated, delayed and
//! reordered as the faults say. Members in different partition groups cannot talk, and
//! messages to a paused member wait until it resumes.

use alloc::vec::Vec;
use bytes::Bytes;

use super::cluster::Cluster;
use crate::codec;
use crate::message::Message;
use crate::types::NodeId;

#[derive(Debug, Clone)]
pub(super) struct InFlight {
    pub(super) deliver_at: u64,
    pub(super) from: NodeId,
    pub(super) to: NodeId,
    pub(super) bytes: Bytes,
}

impl Cluster {
    pub(super) fn send(&mut self, message: Message) {
        let faults = self.config.faults;
        let bytes = Bytes::from(codec::encode_to_vec(&message));
        if self.config.check_invariants {
            assert_eq!(
                codec::decode(&bytes).as_ref(),
                Ok(&message),
                "codec round trip"
            );
        }
        self.note_vote_grant(&message);
        if !self.leader_fate_lets_through(&message) {
            return;
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

    /// Delivers the messages due now, in random order, except to paused members. Returns
    /// whether any was due.
    pub(super) fn deliver_due(&mut self) -> bool {
        let now = self.now;
        let mut due = Vec::new();
        let mut position = 0;
        while position < self.network.len() {
            let message = &self.network[position];
            let paused = self.members[message.to as usize - 1].clock.is_paused();
            if message.deliver_at <= now && !paused {
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

    pub(super) fn deliver(&mut self, in_flight: InFlight) {
        let connected =
            self.groups[in_flight.from as usize - 1] == self.groups[in_flight.to as usize - 1];
        if !connected || !self.is_up(in_flight.to) {
            return;
        }
        if self.is_paused(in_flight.to) {
            self.network.push(in_flight);
            return;
        }
        let message =
            codec::decode(&in_flight.bytes).expect("the simulator only carries encoded messages");
        self.note_append_ack(in_flight.to, &message);
        let stepped = self.with_node(in_flight.to, |node| node.step(message));
        assert!(
            matches!(stepped, Some(Ok(()))),
            "valid message refused: {stepped:?}"
        );
    }
}
