//! The KV and Lease services' context: reads (serializable ones from the local store,
//! linearizable ones through ReadIndex), and writes, which go through Raft (`propose`).

use std::time::Instant;

use tally_kvstore::proto::{PermissionType, RangeRequest};

use super::propose::Proposer;
use super::respond::Respond;
use super::status::{
    REQUEST_TIMEOUT, status_from_kv, status_no_leader, status_timeout, status_too_many_requests,
};
use crate::client::CallId;
use crate::server::calls::Calls;
use crate::server::coordination::leader_response;
use crate::server::reads::{PendingRead, ReadKind, Reads};
use crate::server::request_ids::Clock;
use crate::server::sliced_ranges::{Progress, RANGE_KEYS_PER_TURN, SlicedRange, SlicedRanges};

/// What the KV and Lease services need: the write path, the reads waiting for their
/// confirmation, and the lessor's clock.
pub(in crate::server) struct KvService<'a> {
    pub(in crate::server) writes: Proposer<'a>,
    pub(in crate::server) reads: &'a mut Reads,
    pub(in crate::server) sliced_ranges: &'a mut SlicedRanges,
    pub(in crate::server) clock: Clock,
}

impl Respond for KvService<'_> {
    fn calls(&mut self) -> &mut Calls {
        self.writes.calls()
    }

    fn header(&self, revision: i64) -> tally_kvstore::proto::ResponseHeader {
        self.writes.header(revision)
    }
}

impl KvService<'_> {
    pub(in crate::server) fn range(&mut self, call: CallId, request: RangeRequest) {
        // Reads stay on this member: checked here, against its auth store as it is now.
        if let Some(who) = &self.writes.caller {
            let checked = self.writes.kv.auth().check(
                &who.username,
                who.auth_revision,
                PermissionType::Read,
                &request.key,
                &request.range_end,
            );
            if let Err(denied) = checked {
                return self.reply_error(call, status_from_kv(&denied));
            }
        }
        if request.serializable {
            return self.serve_range(call, &request);
        }
        self.read_linearizably(call, ReadKind::Range(request));
    }

    /// Serves `read` once this member has applied the leader's commit index as of now.
    fn read_linearizably(&mut self, call: CallId, read: ReadKind) {
        // Every linearizable read of this loop turn shares one ReadIndex round.
        let pending = PendingRead {
            call,
            read,
            deadline: Instant::now() + REQUEST_TIMEOUT,
        };
        if self.reads.push(pending).is_err() {
            self.reply_error(call, status_too_many_requests());
        }
    }

    /// Answers a range from the store as it is now: a range over more than one key a slice at a
    /// time (this turn walks the first slice; `advance_sliced_ranges` the rest), one key whole.
    fn serve_range(&mut self, call: CallId, request: &RangeRequest) {
        let slices = match self.writes.kv.range_slices(request) {
            Ok(Some(slices)) => slices,
            Ok(None) => {
                return match self.writes.kv.range(request) {
                    Ok(response) => self.reply(call, response),
                    Err(error) => self.reply_error(call, status_from_kv(&error)),
                };
            }
            Err(error) => return self.reply_error(call, status_from_kv(&error)),
        };
        let writes = &self.writes;
        let mut range = SlicedRange::new(call, request.clone(), slices, |rev| writes.header(rev));
        // With no room to wait, the range is answered whole now.
        let budget_keys = if self.sliced_ranges.is_full() {
            usize::MAX
        } else {
            RANGE_KEYS_PER_TURN
        };
        match range.advance(&*writes.kv, budget_keys, |rev| writes.header(rev)) {
            Progress::Pending => self.sliced_ranges.push(range),
            done => self.finish_range(call, done),
        }
    }

    /// Moves the oldest waiting range along by one slice.
    pub(in crate::server) fn advance_sliced_ranges(&mut self) {
        let Some(mut range) = self.sliced_ranges.pop() else {
            return;
        };
        let call = range.call();
        if !self.writes.calls.is_open(call) {
            // The client is gone: nobody waits for the rest.
            return;
        }
        let writes = &self.writes;
        match range.advance(&*writes.kv, RANGE_KEYS_PER_TURN, |rev| writes.header(rev)) {
            Progress::Pending => self.sliced_ranges.push(range),
            done => self.finish_range(call, done),
        }
    }

    fn finish_range(&mut self, call: CallId, progress: Progress) {
        match progress {
            Progress::Done(bytes) => self.reply_encoded(call, bytes),
            Progress::Failed(error) => self.reply_error(call, status_from_kv(&error)),
            Progress::Pending => unreachable!("a range still going is not finished"),
        }
    }

    /// Asks the core to confirm this turn's linearizable reads, in one ReadIndex round.
    pub(in crate::server) fn flush_read_batch(&mut self) {
        let reads = self.reads.take_batch();
        if reads.is_empty() {
            return;
        }
        let request = self.writes.ids.next();
        match self.writes.node.read_index(request) {
            Ok(()) => self.reads.confirming(request, reads),
            Err(_) => {
                for read in reads {
                    self.reply_error(read.call, status_no_leader());
                }
            }
        }
    }

    /// Serves confirmed reads whose index the store has applied completely (`applied`).
    pub(in crate::server) fn serve_ready_reads(&mut self, applied: u64) {
        for pending in self.reads.take_ready(applied) {
            if !self.writes.calls.is_open(pending.call) {
                continue;
            }
            match pending.read {
                ReadKind::Range(request) => self.serve_range(pending.call, &request),
                ReadKind::ElectionLeader(prefix) => {
                    match leader_response(self.writes.kv, &prefix) {
                        Ok(response) => self.reply(pending.call, response),
                        Err(status) => self.reply_error(pending.call, status),
                    }
                }
            }
        }
    }

    pub(in crate::server) fn expire_reads(&mut self, now: Instant) {
        for read in self.reads.take_expired(now) {
            self.reply_error(read.call, status_timeout());
        }
    }
}
