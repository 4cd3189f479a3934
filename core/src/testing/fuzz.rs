//! Entry points of the fuzz targets, kept here so unit tests can replay the seed corpus.

use alloc::format;
use bytes::Bytes;

use super::{Cluster, Faults, SimConfig};
use crate::codec;
use crate::config::Config;
use crate::node::Node;
use crate::types::NodeId;

/// `core_decode_message`: decoding (a whole message, or a snapshot message's head) never
/// panics; whatever decodes survives its own encoding, and stepping it into a node never
/// panics.
pub fn fuzz_decode_message(data: &[u8]) {
    let input = Bytes::copy_from_slice(data);
    // A snapshot head decoded from the front survives its own encoding.
    if let Ok(head) = codec::decode_snapshot_head(&input) {
        assert!(head.head_bytes() <= data.len());
        let again = codec::encode_snapshot_head(head.message(), head.data_bytes())
            .expect("a snapshot message");
        let decoded = codec::decode_snapshot_head(&Bytes::from(again));
        assert_eq!(
            decoded.as_ref().map(|h| (h.message(), h.data_bytes())),
            Ok((head.message(), head.data_bytes()))
        );
    }
    let Ok(message) = codec::decode(&input) else {
        return;
    };
    let mut encoded = alloc::vec::Vec::new();
    codec::encode(&message, &mut encoded);
    assert_eq!(codec::decode(&Bytes::from(encoded)).as_ref(), Ok(&message));
    let mut node = Node::bootstrap(
        Config::new(message.to().max(1), 7),
        &[message.to().max(1), 2, 3],
    )
    .expect("valid bootstrap");
    let _refused = node.step(message);
    while node.poll_action().is_some() {}
    node.assert_invariants();
}

/// `core_step_sequence`: the bytes are a schedule (which message to deliver, drop or
/// duplicate; whose write completes; who ticks, crashes, restarts, proposes or reads) for a
/// 3 to 5 node cluster, with every safety invariant checked after every step.
pub fn fuzz_schedule(data: &[u8]) {
    let Some((&shape, schedule)) = data.split_first() else {
        return;
    };
    let nodes = 3 + usize::from(shape % 3);
    let config = SimConfig::new(nodes, u64::from(shape))
        .with_faults(Faults::latency())
        .with_snapshot_interval_entries(16);
    let mut cluster = Cluster::new(config);
    let mut payload = 0u32;
    let mut read = 0u64;
    for pair in schedule.chunks_exact(2) {
        let (op, arg) = (pair[0], pair[1]);
        let member = u64::from(arg) % nodes as u64 + 1;
        match op % 10 {
            0..=2 => cluster.fuzz_message(usize::from(arg), op / 10),
            3 => cluster.fuzz_complete_persist(member),
            4 | 5 => cluster.fuzz_tick(member),
            6 => {
                payload += 1;
                let _maybe = cluster.propose(member, format!("f{payload}").as_bytes());
            }
            7 => cluster.crash(member),
            8 => cluster.restart(member),
            _ => {
                read += 1;
                let _maybe = cluster.read_index(member, read);
            }
        }
    }
    let _ = cluster.in_flight_len();
}

/// Direct control of the simulated world, for schedules.
impl Cluster {
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
