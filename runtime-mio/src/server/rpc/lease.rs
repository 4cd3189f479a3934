//! Leases: grant and revoke go through Raft; a keep-alive is answered by the lease's primary
//! (the leader's lessor) from its own clock, and any other member replicates it so that the
//! primary renews the lease when it applies it; time-to-live is the leader's
//! (`server::leader_query`), and list is a local read.

use std::time::Instant;

use prost::Message as _;
use tally_kvstore::proto::{self, internal_request::Request};

use super::kv::KvService;
use super::respond::Respond;
use super::status::REQUEST_TIMEOUT;
use crate::client::CallId;
use crate::server::waiters::Waiter;

impl KvService<'_> {
    pub(in crate::server) fn lease_grant(
        &mut self,
        call: CallId,
        mut request: proto::LeaseGrantRequest,
    ) {
        if request.id == 0 {
            // The proposer picks the id, so every member assigns the same one.
            request.id = (self.writes.ids.next() & 0x7fff_ffff_ffff_ffff) as i64;
        }
        self.writes.propose_kv(call, Request::LeaseGrant(request));
    }

    pub(in crate::server) fn lease_leases(&mut self, call: CallId) {
        let response = self.writes.kv.lease_leases();
        self.reply(call, response);
    }

    pub(in crate::server) fn handle_keep_alive(
        &mut self,
        call: CallId,
        message: &[u8],
    ) -> Result<(), prost::DecodeError> {
        let request = proto::LeaseKeepAliveRequest::decode(message)?;
        if self.writes.kv.is_primary() {
            self.answer_keep_alive_local(call, request.id);
        } else {
            self.renew_through_raft(call, request.id);
        }
        Ok(())
    }

    /// Off the lease's primary: the keep-alive is replicated, and the primary (the leader that
    /// applies it, whichever member that is by then) restarts the lease's clock when it applies
    /// it, as etcd's forward to the leader's lessor does. The answer comes from the apply here,
    /// so a lease granted but not yet applied on this member is found, and a lease that is gone
    /// gets TTL 0 (etcd's "not found" answer on the stream).
    fn renew_through_raft(&mut self, call: CallId, lease: i64) {
        let waiter = Waiter::KeepAlive {
            call,
            lease,
            deadline: Instant::now() + REQUEST_TIMEOUT,
        };
        let request = proto::LeaseKeepAliveRequest { id: lease };
        self.writes
            .propose_internal(call, Request::LeaseRenew(request), waiter);
    }

    fn answer_keep_alive_local(&mut self, call: CallId, id: i64) {
        let now = self.clock.now_ms();
        let ttl = match self.writes.kv.lease_keep_alive(id, now) {
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
}
