//! KV reads: serializable ones from the local store, linearizable ones through ReadIndex.
//! Writes go through `propose_kv`.

use std::time::Instant;

use tally_kvstore::proto::RangeRequest;

use super::{status_from_kv, status_no_leader, status_timeout};
use crate::client::CallId;
use crate::server::event_loop::{REQUEST_TIMEOUT, Server};
use crate::server::reads::{PendingRead, ReadKind};

impl Server {
    pub(in crate::server) fn range(&mut self, call: CallId, request: RangeRequest) {
        if request.serializable {
            return self.serve_range(call, &request);
        }
        self.read_linearizably(call, ReadKind::Range(request));
    }

    /// Serves `read` once this member has applied the leader's commit index as of now.
    pub(in crate::server) fn read_linearizably(&mut self, call: CallId, read: ReadKind) {
        // Every linearizable read of this loop turn shares one ReadIndex round.
        let pending = PendingRead {
            call,
            read,
            deadline: Instant::now() + REQUEST_TIMEOUT,
        };
        if self.reads.push(pending).is_err() {
            self.reply_error(
                call,
                super::status(
                    crate::client::Code::ResourceExhausted,
                    "etcdserver: too many requests",
                ),
            );
        }
    }

    fn serve_range(&mut self, call: CallId, request: &RangeRequest) {
        match self.kv.range(request) {
            Ok(response) => self.reply(call, response),
            Err(error) => self.reply_error(call, status_from_kv(&error)),
        }
    }

    pub(in crate::server) fn flush_read_batch(&mut self) {
        let reads = self.reads.take_batch();
        if reads.is_empty() {
            return;
        }
        let request = self.next_request_id();
        match self.node.read_index(request) {
            Ok(()) => self.reads.confirming(request, reads),
            Err(_) => {
                for read in reads {
                    self.reply_error(read.call, status_no_leader());
                }
            }
        }
    }

    /// Serves confirmed reads whose index the store has applied.
    pub(in crate::server) fn serve_ready_reads(&mut self) {
        let applied = self.node.status().applied();
        for pending in self.reads.take_ready(applied) {
            if !self.calls.contains_key(&pending.call) {
                continue;
            }
            match pending.read {
                ReadKind::Range(request) => self.serve_range(pending.call, &request),
            }
        }
    }

    pub(in crate::server) fn expire_reads(&mut self, now: Instant) {
        for read in self.reads.take_expired(now) {
            self.reply_error(read.call, status_timeout());
        }
    }
}
