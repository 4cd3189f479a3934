//! etcd's v3 gRPC services on top of the loop: decoding requests, routing them through Raft
//! or to the local store, and answering with etcd's headers, codes and messages.

mod cluster;
mod health;
mod kv;
mod lease;
mod maintenance;
pub(super) mod methods;
mod quota;
mod reconfig;

pub(in crate::server) use maintenance::{ETCD_CLUSTER_VERSION, ETCD_VERSION};

mod watch;
mod watch_streams;

use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;
use tally_kvstore::proto::{self, ResponseHeader};
use tally_kvstore::{ApplyOutcome, ApplyResponse, KvError};

use super::conf_waiters::ConfWaiter;
use super::event_loop::{REQUEST_TIMEOUT, Server};
use super::waiters::{TooManyWaiters, Waiter};
use crate::client::{CallEvent, CallId, Code as GrpcCode, Status};
use crate::server::stream_backlog::status_backlog_exceeded;
pub(super) use watch_streams::WatchStreams;

/// How long a `physical` compaction's answer may wait for the store to remove what it
/// compacted, once the compaction itself is committed.
const PHYSICAL_COMPACTION_WAIT_MAX: Duration = Duration::from_secs(300);

/// What a client call is, decided from its path when it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallKind {
    Unary(Method),
    Watch,
    LeaseKeepAlive,
    Snapshot,
    /// `grpc.health.v1.Health/Check`: unary, without etcd's response header.
    HealthCheck,
    /// `grpc.health.v1.Health/Watch`: server streaming, open until the client cancels.
    HealthWatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Range,
    Put,
    DeleteRange,
    Txn,
    Compact,
    LeaseGrant,
    LeaseRevoke,
    LeaseTimeToLive,
    LeaseLeases,
    MemberAdd,
    MemberRemove,
    MemberUpdate,
    MemberList,
    MemberPromote,
    Alarm,
    Status,
    Defragment,
    Hash,
    HashKv,
    MoveLeader,
}

/// What a learner serves, as etcd 3.4's interceptor decides: Status, and serializable ranges
/// (its own, possibly stale, copy); every other call and every stream is refused. A request
/// that does not decode passes, to get the same unmarshalling error as on any member.
fn learner_serves(kind: CallKind, message: &[u8]) -> bool {
    match kind {
        CallKind::Unary(Method::Status) => true,
        CallKind::Unary(Method::Range) => {
            proto::RangeRequest::decode(message).map_or(true, |request| request.serializable)
        }
        _ => false,
    }
}

/// What a member serves before it has joined its cluster: what reports its own state.
fn serves_before_joining(kind: CallKind) -> bool {
    matches!(
        kind,
        CallKind::Unary(Method::Status) | CallKind::HealthCheck | CallKind::HealthWatch
    )
}

/// etcd's ErrGPRCNotSupportedForLearner.
fn status_learner() -> Status {
    status(
        GrpcCode::Unavailable,
        "etcdserver: rpc not supported for learner",
    )
}

pub(super) fn status(code: GrpcCode, message: &str) -> Status {
    Status::new(code, message)
}

pub(super) fn status_timeout() -> Status {
    status(GrpcCode::Unavailable, "etcdserver: request timed out")
}

pub(super) fn status_no_leader() -> Status {
    status(GrpcCode::Unavailable, "etcdserver: no leader")
}

/// The status etcd answers a store error with: its message, under the gRPC code etcd's
/// `rpctypes` gives it. The one place store errors meet gRPC codes.
pub(super) fn status_from_kv(error: &KvError) -> Status {
    status(grpc_code_of(error), error.etcd_message())
}

fn grpc_code_of(error: &KvError) -> GrpcCode {
    match error {
        KvError::EmptyKey
        | KvError::KeyNotFound
        | KvError::ValueProvided
        | KvError::LeaseProvided
        | KvError::TooManyOps
        | KvError::DuplicateKey
        | KvError::InvalidSortOption => GrpcCode::InvalidArgument,
        KvError::Compacted | KvError::FutureRevision | KvError::LeaseTtlTooLarge => {
            GrpcCode::OutOfRange
        }
        KvError::LeaseNotFound | KvError::WatchNotFound => GrpcCode::NotFound,
        KvError::LeaseExists | KvError::NotPrimary | KvError::TooManyWatchers => {
            GrpcCode::FailedPrecondition
        }
        KvError::NoSpace => GrpcCode::ResourceExhausted,
        KvError::Decode(_) | KvError::StaleIndex { .. } => GrpcCode::Internal,
        // A kind of store error this layer does not know yet is a fault of tallyd's.
        _ => GrpcCode::Internal,
    }
}

pub(super) fn status_from_propose(error: tally_core::ProposeError) -> Status {
    match error {
        tally_core::ProposeError::NoLeader => status_no_leader(),
        tally_core::ProposeError::TooLarge => status(
            GrpcCode::InvalidArgument,
            "etcdserver: request is too large",
        ),
        tally_core::ProposeError::Busy => {
            status(GrpcCode::ResourceExhausted, "etcdserver: too many requests")
        }
        tally_core::ProposeError::TransferInProgress => {
            status(GrpcCode::Unavailable, "etcdserver: leader changed")
        }
        tally_core::ProposeError::LearnerNotReady => status(
            GrpcCode::FailedPrecondition,
            "etcdserver: can only promote a learner member which is in sync with leader",
        ),
        tally_core::ProposeError::Removed => status(
            GrpcCode::FailedPrecondition,
            "etcdserver: the member has been permanently removed from the cluster",
        ),
        other => status(GrpcCode::FailedPrecondition, other.as_str()),
    }
}

/// Which header etcd 3.4 puts in a response's field 1: clients check for it (and for its
/// absence), so each response type says what etcd's handler fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderFill {
    /// Cluster ID, member ID, revision and Raft term (the KV, Lease and Watch services, Status,
    /// Hash and HashKV).
    Full,
    /// Cluster ID, member ID and Raft term, no revision (the Cluster service).
    NoRevision,
    /// No header at all (Alarm, Defragment, MoveLeader, the Snapshot stream).
    Absent,
}

pub(super) trait HasHeader: prost::Message + Sized {
    const FILL: HeaderFill;
    fn header_mut(&mut self) -> &mut Option<ResponseHeader>;
}

macro_rules! has_header {
    ($fill:ident: $($ty:ident),* $(,)?) => {
        $(impl HasHeader for proto::$ty {
            const FILL: HeaderFill = HeaderFill::$fill;
            fn header_mut(&mut self) -> &mut Option<ResponseHeader> {
                &mut self.header
            }
        })*
    };
}

has_header!(
    Full: RangeResponse,
    PutResponse,
    DeleteRangeResponse,
    TxnResponse,
    CompactionResponse,
    LeaseGrantResponse,
    LeaseRevokeResponse,
    LeaseKeepAliveResponse,
    LeaseTimeToLiveResponse,
    LeaseLeasesResponse,
    WatchResponse,
    StatusResponse,
    HashResponse,
    HashKvResponse,
);
has_header!(
    NoRevision: MemberAddResponse,
    MemberRemoveResponse,
    MemberUpdateResponse,
    MemberListResponse,
    MemberPromoteResponse,
);
has_header!(
    Absent: AlarmResponse,
    DefragmentResponse,
    SnapshotResponse,
    MoveLeaderResponse,
);

impl Server {
    pub(super) fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.identity.cluster_id,
            member_id: self.identity.member_id,
            revision: if revision > 0 {
                revision
            } else {
                self.kv.revision()
            },
            raft_term: self.node.status().term(),
        }
    }

    pub(super) fn encode<M: HasHeader>(&self, message: M) -> Bytes {
        self.encode_with(message, M::FILL)
    }

    /// Encodes `message` with the header `fill` asks for, which for a few messages depends on
    /// their content (a watch canceled for compaction carries no revision).
    fn encode_with<M: HasHeader>(&self, mut message: M, fill: HeaderFill) -> Bytes {
        let header = match fill {
            HeaderFill::Full => {
                let revision = message.header_mut().as_ref().map_or(0, |h| h.revision);
                Some(self.header(revision))
            }
            HeaderFill::NoRevision => Some(ResponseHeader {
                revision: 0,
                ..self.header(0)
            }),
            HeaderFill::Absent => None,
        };
        *message.header_mut() = header;
        Bytes::from(message.encode_to_vec())
    }

    /// Answers a unary call.
    pub(super) fn reply<M: HasHeader>(&mut self, call: CallId, message: M) {
        let bytes = self.encode(message);
        self.reply_encoded(call, bytes);
    }

    pub(super) fn reply_encoded(&mut self, call: CallId, bytes: Bytes) {
        if self.answer_gateway(call, Ok(&bytes)) {
            return;
        }
        let _ = self.clients.send_message(call, bytes);
        self.clients.finish(call, Status::ok());
        self.calls.remove(&call);
    }

    pub(super) fn reply_error(&mut self, call: CallId, status: Status) {
        if self.answer_gateway(call, Err(&status)) {
            return;
        }
        self.clients.finish(call, status);
        self.calls.remove(&call);
        self.outbound.remove(call);
    }

    /// Sends one message on a streaming call.
    pub(super) fn stream<M: HasHeader>(&mut self, call: CallId, message: M) {
        let bytes = self.encode(message);
        self.stream_encoded(call, bytes);
    }

    /// Sends one message on a streaming call, with the header `fill` asks for.
    pub(super) fn stream_with<M: HasHeader>(&mut self, call: CallId, message: M, fill: HeaderFill) {
        let bytes = self.encode_with(message, fill);
        self.stream_encoded(call, bytes);
    }

    pub(super) fn stream_encoded(&mut self, call: CallId, bytes: Bytes) {
        if self.stream_gateway(call, &bytes) {
            return;
        }
        if self.outbound.push(call, bytes).is_err() {
            // As a client that stopped reading would make it grow for ever: end the call,
            // with a status on which etcd's clients retry (a watch resumes where it was).
            self.close_stream(call);
            self.clients.finish(call, status_backlog_exceeded());
            return;
        }
        self.flush_call(call);
    }

    /// Queues a snapshot download's chunk (a slice of the snapshot, held anyway).
    pub(super) fn stream_snapshot_chunk(&mut self, call: CallId, bytes: Bytes) {
        self.outbound.push_uncounted(call, bytes);
        self.flush_call(call);
    }

    fn flush_call(&mut self, call: CallId) {
        while let Some(queued) = self.outbound.pop(call) {
            match self.clients.send_message(call, queued.message.clone()) {
                Ok(()) => {}
                Err(crate::client::CallError::Backpressure { .. }) => {
                    // `SendReady` resumes this call.
                    self.outbound.unpop(call, queued);
                    return;
                }
                // The call is gone (finished or cancelled): its messages have nowhere to go.
                Err(_) => break,
            }
        }
        self.outbound.remove(call);
    }

    pub(super) fn flush_outbound(&mut self) {
        let calls = self.outbound.calls();
        for call in calls {
            self.flush_call(call);
            self.maybe_finish_snapshot(call);
        }
    }

    pub(super) fn handle_call_event(&mut self, event: CallEvent) {
        match event {
            CallEvent::Opened { call, path } => {
                match methods::by_grpc_path(&path).map(|m| m.kind()) {
                    // etcd refuses every stream on a learner as it opens.
                    Some(kind) if self.is_learner() && !matches!(kind, CallKind::Unary(_)) => {
                        self.clients.finish(call, status_learner())
                    }
                    Some(kind) => {
                        self.calls.insert(call, kind);
                    }
                    None => self.clients.finish(
                        call,
                        status(GrpcCode::Unimplemented, &format!("unknown method {path}")),
                    ),
                }
            }
            CallEvent::Message { call, message } => self.handle_message(call, message),
            CallEvent::HalfClosed { call } => match self.calls.get(&call) {
                Some(CallKind::Watch) => {
                    self.close_stream(call);
                    self.clients.finish(call, Status::ok());
                }
                // Keep-alives still travelling through Raft are answered before the stream ends.
                Some(CallKind::LeaseKeepAlive) => {
                    self.half_closed.insert(call);
                    self.finish_keep_alive_if_done(call);
                }
                _ => {}
            },
            CallEvent::Cancelled { call } => self.close_stream(call),
            CallEvent::SendReady { call } => {
                self.flush_call(call);
                self.maybe_finish_snapshot(call);
            }
            CallEvent::Http {
                request,
                method,
                path,
                body,
            } => {
                if !self.gateway_request(request, &method, &path, &body) {
                    let (code, content_type, body) = self.http_response(&path);
                    self.clients.respond_http(request, code, content_type, body);
                }
            }
        }
    }

    /// Whether this member is a learner, which serves only what etcd lets a learner serve.
    fn is_learner(&self) -> bool {
        self.members
            .get(self.identity.member_id)
            .is_some_and(|member| member.is_learner)
    }

    /// Ends a keep-alive stream whose client has closed its side, once nothing is pending.
    pub(super) fn finish_keep_alive_if_done(&mut self, call: CallId) {
        if !self.half_closed.contains(&call) {
            return;
        }
        if self.waiters.keep_alive_pending(call) {
            return;
        }
        self.half_closed.remove(&call);
        self.flush_call(call);
        self.outbound.remove(call);
        self.calls.remove(&call);
        self.clients.finish(call, Status::ok());
    }

    fn close_stream(&mut self, call: CallId) {
        self.forget_gateway(call);
        self.half_closed.remove(&call);
        if self.calls.remove(&call) == Some(CallKind::Watch) {
            self.cancel_watches_of(call);
        }
        self.outbound.remove(call);
    }

    pub(super) fn handle_message(&mut self, call: CallId, message: Bytes) {
        let Some(kind) = self.calls.get(&call).copied() else {
            return;
        };
        if self.is_learner() && !learner_serves(kind, &message) {
            return self.reply_error(call, status_learner());
        }
        if !self.standing.joined() && !serves_before_joining(kind) {
            // Its store and membership are not its cluster's yet: whatever it answered would
            // be empty or wrong.
            return self.reply_error(call, status_no_leader());
        }
        if matches!(kind, CallKind::Unary(_)) {
            // A unary call takes one message; later ones find it gone from the table.
            self.calls.insert(call, kind);
        }
        let result = (methods::by_kind(kind).handler())(self, call, &message);
        if let Err(e) = result {
            self.reply_error(
                call,
                status(
                    GrpcCode::Internal,
                    &format!("grpc: error unmarshalling request: {e}"),
                ),
            );
        }
    }

    /// Parks `waiter`'s call until its membership change or leader move takes effect.
    pub(super) fn wait_for_conf(&mut self, waiter: ConfWaiter) {
        if let Err(refused) = self.conf_waiters.push(waiter) {
            self.reply_error(
                refused.0.call,
                status(GrpcCode::ResourceExhausted, "etcdserver: too many requests"),
            );
        }
    }

    /// Proposes a kvstore request and parks the call until it is applied.
    pub(super) fn propose_kv(&mut self, call: CallId, request: proto::internal_request::Request) {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        self.propose_internal(call, request, Waiter::Kv { call, deadline });
    }

    pub(super) fn propose_internal(
        &mut self,
        call: CallId,
        request: proto::internal_request::Request,
        waiter: Waiter,
    ) {
        if !self.waiters.has_room() {
            return self.reply_error(
                call,
                status(GrpcCode::ResourceExhausted, "etcdserver: too many requests"),
            );
        }
        if self.refuse_over_quota(call, &request) {
            return;
        }
        match self.propose_request(request) {
            Ok(id) => {
                // Room was checked above, and nothing is inserted in between.
                if self.waiters.insert(id, waiter).is_err() {
                    unreachable!("a waiter fits after has_room");
                }
                self.metrics.proposals_pending = self.waiters.len() as u64;
            }
            Err(error) => {
                self.metrics.proposals_failed += 1;
                self.reply_error(call, status_from_propose(error));
            }
        }
    }

    /// Proposes a store request under a fresh request id; that id, which its apply reports.
    pub(in crate::server) fn propose_request(
        &mut self,
        request: proto::internal_request::Request,
    ) -> Result<u64, tally_core::ProposeError> {
        let id = self.next_request_id();
        let data = super::payload::encode_kv(&proto::InternalRequest {
            id,
            request: Some(request),
        });
        self.node.propose(data).map(|()| id)
    }

    pub(super) fn answer_waiter(&mut self, waiter: Waiter, outcome: ApplyOutcome) {
        match waiter {
            Waiter::Kv { call, .. } => {
                let wait_revision = outcome.compaction_wait_rev();
                match outcome.into_result() {
                    Ok(response) => {
                        let bytes = self.encode_apply_response(response);
                        match wait_revision {
                            Some(revision) if !self.kv.compaction_done(revision) => {
                                let id = self.next_request_id();
                                let waiter = Waiter::PhysicalCompaction {
                                    call,
                                    response: bytes,
                                    revision,
                                    // Committed: now only the removal is waited for, which
                                    // for a long history outlasts the request timeout (etcd
                                    // waits for it unbounded).
                                    deadline: Instant::now() + PHYSICAL_COMPACTION_WAIT_MAX,
                                };
                                // With no room to wait, the committed compaction is answered
                                // before its removal is done.
                                if let Err(TooManyWaiters(Waiter::PhysicalCompaction {
                                    call,
                                    response,
                                    ..
                                })) = self.waiters.insert(id, waiter)
                                {
                                    self.reply_encoded(call, response);
                                }
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

    pub(super) fn fail_waiter(&mut self, waiter: Waiter, status: Status) {
        match waiter {
            Waiter::Kv { call, .. } | Waiter::PhysicalCompaction { call, .. } => {
                self.reply_error(call, status)
            }
            // A keep-alive stream stays open and the client retries, unless it has closed its
            // side and waits only for this answer.
            Waiter::KeepAlive { call, .. } => self.finish_keep_alive_if_done(call),
        }
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
            _ => Bytes::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// etcd's codes (its `rpctypes`), as clients tell errors apart by them.
    #[test]
    fn store_errors_take_etcds_codes() {
        for (error, code) in [
            (KvError::EmptyKey, GrpcCode::InvalidArgument),
            (KvError::DuplicateKey, GrpcCode::InvalidArgument),
            (KvError::Compacted, GrpcCode::OutOfRange),
            (KvError::FutureRevision, GrpcCode::OutOfRange),
            (KvError::LeaseTtlTooLarge, GrpcCode::OutOfRange),
            (KvError::LeaseNotFound, GrpcCode::NotFound),
            (KvError::WatchNotFound, GrpcCode::NotFound),
            (KvError::LeaseExists, GrpcCode::FailedPrecondition),
            (KvError::NotPrimary, GrpcCode::FailedPrecondition),
            (KvError::NoSpace, GrpcCode::ResourceExhausted),
            (KvError::Decode("x".into()), GrpcCode::Internal),
        ] {
            let status = status_from_kv(&error);
            assert_eq!(status.code(), code, "{error:?}");
            assert_eq!(status.message(), error.etcd_message());
        }
        assert_eq!(status_from_kv(&KvError::Compacted).code().as_u32(), 11);
    }
}
