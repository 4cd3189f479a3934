//! Leases: grant and revoke go through Raft; keep-alives are leader-local (a follower carries
//! them through Raft as a checkpoint that restarts the lease's clock); time-to-live is the
//! leader's (`server::leader_query`), and list is a local read.

use std::time::Instant;

use prost::Message as _;
use tally_kvstore::proto::{self, internal_request::Request};

use super::{ReadKind, Waiter};
use crate::grpc::CallId;
use crate::server::event_loop::{REQUEST_TIMEOUT, Server};

impl Server {
    pub(in crate::server) fn lease_grant(
        &mut self,
        call: CallId,
        mut request: proto::LeaseGrantRequest,
    ) {
        if request.id == 0 {
            // The proposer picks the id, so every member assigns the same one.
            request.id = (self.next_request_id() & 0x7fff_ffff_ffff_ffff) as i64;
        }
        self.propose_kv(call, Request::LeaseGrant(request));
    }

    pub(in crate::server) fn handle_keep_alive(
        &mut self,
        call: CallId,
        message: &[u8],
    ) -> Result<(), prost::DecodeError> {
        let request = proto::LeaseKeepAliveRequest::decode(message)?;
        if self.kv.is_primary() {
            self.answer_keep_alive_local(call, request.id);
            return Ok(());
        }
        if self.granted_ttl(request.id) <= 0 {
            // This member may not have applied the grant yet: ask the log before "not found".
            self.read_linearizably(call, ReadKind::KeepAlive { lease: request.id });
            return Ok(());
        }
        self.keep_alive_through_raft(call, request.id);
        Ok(())
    }

    /// On a follower: renews `lease` by a checkpoint through Raft, answered once applied; a
    /// lease this member does not know is not found (TTL 0, as etcd answers).
    pub(in crate::server) fn keep_alive_through_raft(&mut self, call: CallId, lease: i64) {
        let ttl = self.granted_ttl(lease);
        if ttl <= 0 {
            let response = proto::LeaseKeepAliveResponse {
                header: None,
                id: lease,
                ttl: 0,
            };
            self.stream(call, response);
            // The client may have closed its side while the read waited.
            return self.finish_keep_alive_if_done(call);
        }
        let checkpoint = proto::LeaseCheckpointRequest {
            checkpoints: vec![proto::LeaseCheckpoint {
                id: lease,
                remaining_ttl: ttl,
            }],
        };
        let waiter = Waiter::KeepAlive {
            call,
            lease,
            deadline: Instant::now() + REQUEST_TIMEOUT,
        };
        self.propose_internal(call, Request::LeaseCheckpoint(checkpoint), waiter);
    }

    fn answer_keep_alive_local(&mut self, call: CallId, id: i64) {
        let now = self.now_ms();
        let ttl = match self.kv.lease_keep_alive(id, now) {
            Ok(response) => response.ttl,
            Err(_) => 0,
        };
        self.stream(
            call,
            proto::LeaseKeepAliveResponse {
                header: None,
                id,
                ttl,
            },
        );
    }

    /// A follower's keep-alive was applied as a checkpoint.
    pub(in crate::server) fn answer_keep_alive(&mut self, call: CallId, id: i64) {
        let ttl = self.granted_ttl(id);
        self.stream(
            call,
            proto::LeaseKeepAliveResponse {
                header: None,
                id,
                ttl,
            },
        );
        self.finish_keep_alive_if_done(call);
    }

    fn granted_ttl(&mut self, id: i64) -> i64 {
        let request = proto::LeaseTimeToLiveRequest { id, keys: false };
        let now = self.now_ms();
        self.kv.lease_time_to_live(&request, now).granted_ttl.max(0)
    }
}
