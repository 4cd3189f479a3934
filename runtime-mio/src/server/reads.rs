//! Linearizable reads on their way: batched within a loop turn into one ReadIndex round,
//! waiting for the leader to confirm the round's index, then waiting for the store to apply
//! that index. Time is passed in; nothing here touches the core or a socket.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use tally_kvstore::proto;

use crate::client::CallId;

/// Reads waiting at once, in all three stages together; one more is refused with etcd's "too
/// many requests".
pub(super) const READS_MAX: usize = 100_000;

/// What a linearizable read serves once the store has caught up.
#[derive(Debug, Clone)]
pub(super) enum ReadKind {
    /// `Election.Leader`: the key created first under this prefix.
    ElectionLeader(bytes::Bytes),
    Range(proto::RangeRequest),
}

/// A read waiting for its read index to be confirmed and applied.
#[derive(Debug, Clone)]
pub(super) struct PendingRead {
    pub(super) call: CallId,
    pub(super) read: ReadKind,
    pub(super) deadline: Instant,
}

/// The read was refused: [`READS_MAX`] wait already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TooManyReads;

#[derive(Debug, Default)]
pub(super) struct Reads {
    /// This turn's reads, which share one ReadIndex round.
    batch: Vec<PendingRead>,
    /// Rounds sent to the core, by request id.
    confirming: HashMap<u64, Vec<PendingRead>>,
    /// Confirmed rounds, by read index in confirmation order.
    confirmed: VecDeque<(u64, Vec<PendingRead>)>,
    len: usize,
}

impl Reads {
    /// Adds a read to this turn's batch.
    pub(super) fn push(&mut self, read: PendingRead) -> Result<(), TooManyReads> {
        if self.len >= READS_MAX {
            return Err(TooManyReads);
        }
        self.len += 1;
        self.batch.push(read);
        Ok(())
    }

    /// This turn's batch, to confirm under one read request; empty when none came.
    pub(super) fn take_batch(&mut self) -> Vec<PendingRead> {
        let batch = std::mem::take(&mut self.batch);
        self.len -= batch.len();
        batch
    }

    /// The batch went to the core as read request `request`.
    pub(super) fn confirming(&mut self, request: u64, reads: Vec<PendingRead>) {
        self.len += reads.len();
        self.confirming.insert(request, reads);
    }

    /// The core confirmed read request `request` at `index`.
    pub(super) fn confirmed(&mut self, request: u64, index: u64) {
        if let Some(reads) = self.confirming.remove(&request) {
            self.confirmed.push_back((index, reads));
        }
    }

    /// Confirmed reads whose index the store has applied (`applied`), in order.
    pub(super) fn take_ready(&mut self, applied: u64) -> Vec<PendingRead> {
        let mut ready = Vec::new();
        while self
            .confirmed
            .front()
            .is_some_and(|(index, _)| *index <= applied)
        {
            let (_, reads) = self.confirmed.pop_front().expect("front exists");
            ready.extend(reads);
        }
        self.len -= ready.len();
        ready
    }

    /// Rounds whose every read is past its deadline at `now`: they will never be served.
    pub(super) fn take_expired(&mut self, now: Instant) -> Vec<PendingRead> {
        let expired_ids: Vec<u64> = self
            .confirming
            .iter()
            .filter(|(_, reads)| reads.iter().all(|r| r.deadline <= now))
            .map(|(id, _)| *id)
            .collect();
        let expired: Vec<PendingRead> = expired_ids
            .iter()
            .flat_map(|id| self.confirming.remove(id).unwrap_or_default())
            .collect();
        self.len -= expired.len();
        expired
    }

    /// Reads waiting, in every stage.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn read(call: u64, deadline: Instant) -> PendingRead {
        PendingRead {
            call: CallId::for_tests(call),
            read: ReadKind::Range(proto::RangeRequest::default()),
            deadline,
        }
    }

    fn calls(reads: &[PendingRead]) -> Vec<CallId> {
        reads.iter().map(|r| r.call).collect()
    }

    #[test]
    fn a_batch_is_confirmed_then_served_once_its_index_is_applied() {
        let now = Instant::now();
        let mut reads = Reads::default();
        reads.push(read(1, now)).unwrap();
        reads.push(read(2, now)).unwrap();
        let batch = reads.take_batch();
        assert_eq!(calls(&batch), calls(&[read(1, now), read(2, now)]));
        assert!(reads.take_batch().is_empty());
        reads.confirming(7, batch);
        assert_eq!(reads.len(), 2);
        assert!(reads.take_ready(100).is_empty(), "not confirmed yet");
        reads.confirmed(7, 10);
        assert!(reads.take_ready(9).is_empty(), "index not applied");
        assert_eq!(reads.take_ready(10).len(), 2);
        assert_eq!(reads.len(), 0);
        // A confirmation for a round that expired meanwhile is ignored.
        reads.confirmed(8, 10);
        assert!(reads.take_ready(100).is_empty());
    }

    #[test]
    fn rounds_past_every_deadline_expire_and_the_limit_holds() {
        let now = Instant::now();
        let mut reads = Reads::default();
        reads.push(read(1, now)).unwrap();
        let early = reads.take_batch();
        reads.confirming(1, early);
        reads.push(read(2, now + Duration::from_secs(5))).unwrap();
        let late = reads.take_batch();
        reads.confirming(2, late);
        assert_eq!(
            calls(&reads.take_expired(now + Duration::from_secs(1))),
            [CallId::for_tests(1)]
        );
        assert_eq!(reads.len(), 1);
        for n in 1..READS_MAX {
            reads.push(read(n as u64, now)).unwrap();
        }
        assert_eq!(reads.push(read(0, now)), Err(TooManyReads));
    }
}
