//! The write path: a store request proposed through Raft with a waiter for its apply, and the
//! answer the apply gives that waiter.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tally_core::Node;
use tally_kvstore::proto::{
    self, AlarmAction, AlarmType, RequestHeader, internal_request::Request,
};
use tally_kvstore::{ApplyOutcome, ApplyResponse, KvError, KvStore};

use super::quota::{OverQuota, Quota};
use super::respond::{Respond, respond_through_fields};
use super::status::{
    REQUEST_TIMEOUT, status_from_kv, status_from_propose, status_timeout, status_too_many_requests,
};
use crate::client::{CallId, Status};
use crate::server::calls::Calls;
use crate::server::identity::Identity;
use crate::server::metrics::Metrics;
use crate::server::request_ids::RequestIds;
use crate::server::waiters::{TooManyWaiters, Waiter, Waiters};

/// How long a `physical` compaction's answer may wait for the store to remove what it
/// compacted, once the compaction itself is committed.
const PHYSICAL_COMPACTION_WAIT_MAX: Duration = Duration::from_secs(300);

/// What proposing a store request, and answering its apply, needs.
pub(in crate::server) struct Proposer<'a> {
    pub(in crate::server) identity: &'a Identity,
    pub(in crate::server) node: &'a mut Node,
    pub(in crate::server) kv: &'a mut KvStore,
    pub(in crate::server) calls: &'a mut Calls,
    pub(in crate::server) waiters: &'a mut Waiters,
    pub(in crate::server) ids: &'a mut RequestIds,
    pub(in crate::server) quota: &'a mut Quota,
    pub(in crate::server) metrics: &'a mut Metrics,
    /// Who the call is, as its proposals carry it to be checked at apply; `None` while
    /// authentication is off, and for what the member proposes itself.
    pub(in crate::server) caller: Option<RequestHeader>,
}

respond_through_fields!(Proposer);

/// Proposes a store request under a fresh request id; that id, which its apply reports.
fn propose_request(
    ids: &mut RequestIds,
    node: &mut Node,
    request: Request,
    caller: Option<RequestHeader>,
) -> Result<u64, tally_core::ProposeError> {
    let id = ids.next();
    let data = crate::server::payload::encode_kv(&proto::InternalRequest {
        id,
        header: caller,
        request: Some(request),
    });
    node.propose(data).map(|()| id)
}

impl Proposer<'_> {
    /// The same parts, lent again for a shorter while.
    pub(in crate::server) fn reborrow(&mut self) -> Proposer<'_> {
        Proposer {
            identity: self.identity,
            node: &mut *self.node,
            kv: &mut *self.kv,
            calls: &mut *self.calls,
            waiters: &mut *self.waiters,
            ids: &mut *self.ids,
            quota: &mut *self.quota,
            metrics: &mut *self.metrics,
            caller: self.caller.clone(),
        }
    }

    /// Proposes a store request and parks the call until it is applied.
    pub(in crate::server) fn propose_kv(&mut self, call: CallId, request: Request) {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        self.propose_internal(call, request, Waiter::Kv { call, deadline });
    }

    pub(in crate::server) fn propose_internal(
        &mut self,
        call: CallId,
        request: Request,
        waiter: Waiter,
    ) {
        if !self.waiters.has_room() {
            return self.reply_error(call, status_too_many_requests());
        }
        if self.refuse_over_quota(call, &request) {
            return;
        }
        match propose_request(self.ids, self.node, request, self.caller.clone()) {
            Ok(id) => {
                // Room was checked above, and nothing is inserted in between.
                if self.waiters.insert(id, waiter).is_err() {
                    unreachable!("a waiter fits after has_room");
                }
                self.metrics.set_proposals_pending(self.waiters.len());
            }
            Err(error) => {
                self.metrics.on_proposal_failed();
                self.reply_error(call, status_from_propose(error));
            }
        }
    }

    /// Whether `request` would take the store over the quota (or the WAL's disk is full). If
    /// so, the call is answered with etcd's "database space exceeded", and for the quota the
    /// NOSPACE alarm is raised.
    fn refuse_over_quota(&mut self, call: CallId, request: &Request) -> bool {
        match self.quota.check(self.kv, request) {
            Ok(()) => return false,
            Err(OverQuota::DiskFull) => {}
            Err(OverQuota::Backend(quota)) => self.raise_nospace(quota),
        }
        self.reply_error(call, status_from_kv(&KvError::NoSpace));
        true
    }

    /// A write would pass `--quota-backend-bytes` (`quota`): the NOSPACE alarm, once.
    fn raise_nospace(&mut self, quota: u64) {
        if !self.kv.nospace() && self.propose_nospace() {
            eprintln!(
                "tallyd: warning: a write would pass --quota-backend-bytes ({quota}); raising \
                 the NOSPACE alarm: writes are refused until room is made and it is disarmed"
            );
        }
    }

    /// The Alarm RPC: a list is answered from the local store; raising or disarming goes
    /// through Raft, so every member holds the same alarms.
    pub(in crate::server) fn alarm_rpc(&mut self, call: CallId, request: proto::AlarmRequest) {
        if request.action == AlarmAction::Get as i32 {
            let response = self.kv.alarm(&request);
            return self.reply(call, response);
        }
        self.propose_kv(call, Request::Alarm(request));
    }

    fn propose_nospace(&mut self) -> bool {
        let raise = Request::Alarm(proto::AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: self.identity.member_id,
            alarm: AlarmType::Nospace as i32,
        });
        self.propose_unwaited(raise).is_ok()
    }

    /// A file could not be written for lack of space: the NOSPACE alarm goes to every member
    /// through Raft, as often as the quota allows.
    pub(in crate::server) fn raise_nospace_for_disk(&mut self, what: &str) {
        if self.quota.nospace_for_disk_due(self.kv, Instant::now()) && self.propose_nospace() {
            eprintln!("tallyd: warning: raising the NOSPACE alarm: {what}");
        }
    }

    /// The WAL's disk is full: writes are refused until it has room, and the alarm is raised.
    pub(in crate::server) fn on_wal_out_of_space(&mut self, error: &crate::wal::WalError) {
        self.quota.on_wal_out_of_space(error);
        self.metrics.set_wal_out_of_space(true);
        self.raise_nospace_for_disk(&error.to_string());
    }

    pub(in crate::server) fn on_wal_space_recovered(&mut self) {
        self.quota.on_wal_space_recovered();
        self.metrics.set_wal_out_of_space(false);
    }

    /// Proposes a request nobody waits for (a lease revoke, a compaction, an alarm).
    pub(in crate::server) fn propose_unwaited(
        &mut self,
        request: Request,
    ) -> Result<u64, tally_core::ProposeError> {
        propose_request(self.ids, self.node, request, None)
    }

    /// An entry was applied with `outcome`: answers its waiter. An outcome no waiter here
    /// asked for is handed back (it may be another part's, or another member's).
    #[must_use]
    pub(in crate::server) fn on_applied(&mut self, outcome: ApplyOutcome) -> Option<ApplyOutcome> {
        let Some(waiter) = self.waiters.remove(outcome.request_id()) else {
            return Some(outcome);
        };
        self.metrics.set_proposals_pending(self.waiters.len());
        self.answer_waiter(waiter, outcome);
        None
    }

    /// Proposes `request` without a waiter: the caller keeps what to do with its apply under
    /// the request id returned, and answers its call with the refusal (quota, no leader, ...).
    pub(in crate::server) fn propose_for(&mut self, request: Request) -> Result<u64, Status> {
        if let Err(over) = self.quota.check(self.kv, &request) {
            if let OverQuota::Backend(quota) = over {
                self.raise_nospace(quota);
            }
            return Err(status_from_kv(&KvError::NoSpace));
        }
        propose_request(self.ids, self.node, request, self.caller.clone()).map_err(|error| {
            self.metrics.on_proposal_failed();
            status_from_propose(error)
        })
    }

    fn answer_waiter(&mut self, waiter: Waiter, outcome: ApplyOutcome) {
        match waiter {
            Waiter::Kv { call, .. } => {
                let wait_revision = outcome.compaction_wait_rev();
                match outcome.into_result() {
                    Ok(response) => {
                        let bytes = self.encode_apply_response(response);
                        match wait_revision {
                            Some(revision) if !self.kv.compaction_done(revision) => {
                                self.wait_for_removal(call, bytes, revision)
                            }
                            _ => self.reply_encoded(call, bytes),
                        }
                    }
                    Err(error) => self.reply_error(call, status_from_kv(&error)),
                }
            }
            Waiter::KeepAlive { call, lease, .. } => {
                let ttl = match outcome.into_result() {
                    Ok(ApplyResponse::LeaseRenew(response)) => response.ttl,
                    _ => 0,
                };
                self.answer_keep_alive(call, lease, ttl)
            }
            Waiter::PhysicalCompaction { call, response, .. } => self.reply_encoded(call, response),
        }
    }

    /// A `physical` compaction is committed: its answer waits until the store has removed
    /// what it compacted.
    fn wait_for_removal(&mut self, call: CallId, response: Bytes, revision: i64) {
        let id = self.ids.next();
        let waiter = Waiter::PhysicalCompaction {
            call,
            response,
            revision,
            // Committed: now only the removal is waited for, which for a long history
            // outlasts the request timeout (etcd waits for it unbounded).
            deadline: Instant::now() + PHYSICAL_COMPACTION_WAIT_MAX,
        };
        // With no room to wait, the committed compaction is answered before its removal is
        // done.
        if let Err(TooManyWaiters(Waiter::PhysicalCompaction { call, response, .. })) =
            self.waiters.insert(id, waiter)
        {
            self.reply_encoded(call, response);
        }
    }

    /// Expired waiters get etcd's timeout error.
    pub(in crate::server) fn expire_waiters(&mut self, now: Instant) {
        for waiter in self.waiters.take_expired(now) {
            self.metrics.on_proposal_failed();
            self.fail_waiter(waiter, status_timeout());
        }
        self.metrics.set_proposals_pending(self.waiters.len());
    }

    /// Ends what waits for an entry with `status` (a timeout).
    fn fail_waiter(&mut self, waiter: Waiter, status: Status) {
        match waiter {
            Waiter::Kv { call, .. } | Waiter::PhysicalCompaction { call, .. } => {
                self.reply_error(call, status)
            }
            // A keep-alive stream stays open and the client retries, unless it has closed its
            // side and waits only for this answer.
            Waiter::KeepAlive { call, .. } => self.finish_keep_alive_if_done(call),
        }
    }

    /// Answers the `physical` compactions whose removal the store has finished.
    pub(in crate::server) fn release_compactions(&mut self) {
        let kv = &*self.kv;
        let done = self
            .waiters
            .take_compactions_done(|revision| kv.compaction_done(revision));
        for (call, response) in done {
            self.reply_encoded(call, response);
        }
    }

    /// A replicated keep-alive was applied: `ttl` is the lease's granted TTL, or 0 when the
    /// lease no longer exists.
    pub(in crate::server) fn answer_keep_alive(&mut self, call: CallId, id: i64, ttl: i64) {
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

    /// Ends a keep-alive stream whose client has closed its side, once nothing is pending.
    pub(in crate::server) fn finish_keep_alive_if_done(&mut self, call: CallId) {
        let pending = self.waiters.keep_alive_pending(call);
        self.calls.finish_keep_alive_if_done(call, pending);
    }

    fn encode_apply_response(&self, response: ApplyResponse) -> Bytes {
        match response {
            ApplyResponse::Range(r) => self.encode(r),
            ApplyResponse::Put(r) => self.encode(r),
            ApplyResponse::DeleteRange(r) => self.encode(r),
            ApplyResponse::Txn(r) => self.encode(r),
            ApplyResponse::Compaction(r) => self.encode(r),
            ApplyResponse::LeaseGrant(r) => self.encode(r),
            ApplyResponse::LeaseRevoke(r) => self.encode(r),
            ApplyResponse::Alarm(r) => self.encode(r),
            ApplyResponse::Auth(r) => self.encode(r),
            ApplyResponse::AuthUserInvalidated { .. } => {
                self.encode(proto::AuthResponse::default())
            }
            ApplyResponse::AuthUserGet(r) => self.encode(r),
            ApplyResponse::AuthUserList(r) => self.encode(r),
            ApplyResponse::AuthRoleGet(r) => self.encode(r),
            ApplyResponse::AuthRoleList(r) => self.encode(r),
            _ => Bytes::new(),
        }
    }
}
