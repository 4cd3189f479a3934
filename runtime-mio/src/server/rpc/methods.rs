//! The one table of the calls tallyd serves: for each, its gRPC path, its paths on etcd's JSON
//! gateway, its request and response types (and their JSON shapes), whether etcd puts a header
//! in its response, and its handler. Adding an etcd method is a row here and its handler.
//!
//! The gRPC dispatcher looks calls up by path ([`by_grpc_path`]), the gateway by its path
//! ([`by_gateway_path`]), and every message is handed to the row's handler. A test checks each
//! row's JSON shapes against the prost messages they transcode.

use prost::Message as _;
use tally_kvstore::proto::{self, internal_request::Request as Internal};

use super::cluster::ClusterService;
use super::health::{self, HealthService};
use super::kv::KvService;
use super::maintenance::MaintenanceService;
#[cfg(test)]
use super::respond::HeaderFill;
use super::respond::{HasHeader, Respond as _};
use super::watch::WatchService;
use crate::client::CallId;
use crate::server::calls::{CallKind, Method};
use crate::server::coordination::CoordinationService;
use crate::server::gateway::schema::{self as json, Message as JsonShape};
use crate::server::leader_query::LeaderQueryService;

/// What a handler returns: an error only for a message that does not decode.
type Handled = Result<(), prost::DecodeError>;

/// Decodes a call's message and handles it, on the context of its service: the dispatcher
/// lends each handler only the parts its service needs.
#[derive(Clone, Copy)]
pub(in crate::server) enum Handler {
    Kv(fn(&mut KvService<'_>, CallId, &[u8]) -> Handled),
    Watch(fn(&mut WatchService<'_>, CallId, &[u8]) -> Handled),
    Cluster(fn(&mut ClusterService<'_>, CallId, &[u8]) -> Handled),
    Maintenance(fn(&mut MaintenanceService<'_>, CallId, &[u8]) -> Handled),
    /// Calls a follower puts to the leader (`server::leader_query`).
    LeaderQuery(fn(&mut LeaderQueryService<'_>, CallId, &[u8]) -> Handled),
    Health(fn(&mut HealthService<'_>, CallId, &[u8]) -> Handled),
    /// The Lock and Election services (`server::coordination`).
    Coordination(fn(&mut CoordinationService<'_>, CallId, &[u8]) -> Handled),
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let service = match self {
            Handler::Kv(_) => "Kv",
            Handler::Watch(_) => "Watch",
            Handler::Cluster(_) => "Cluster",
            Handler::Maintenance(_) => "Maintenance",
            Handler::LeaderQuery(_) => "LeaderQuery",
            Handler::Health(_) => "Health",
            Handler::Coordination(_) => "Coordination",
        };
        write!(f, "Handler::{service}")
    }
}

/// One call tallyd serves.
#[derive(Debug)]
pub(in crate::server) struct MethodRow {
    kind: CallKind,
    grpc_path: &'static str,
    /// Paths after the gateway's `/v3/` (or `/v3beta/`); none when the gateway does not serve it.
    gateway_paths: &'static [&'static str],
    /// The request's and the response's JSON shapes, for the gateway.
    json: Option<(&'static JsonShape, &'static JsonShape)>,
    /// The prost types, named for the test that checks the JSON shapes against them.
    #[cfg(test)]
    request_type: fn() -> &'static str,
    #[cfg(test)]
    response_type: fn() -> &'static str,
    /// What etcd puts in the response's header, as the response type says (`HasHeader`).
    #[cfg(test)]
    header: HeaderFill,
    handler: Handler,
}

impl MethodRow {
    pub(in crate::server) fn kind(&self) -> CallKind {
        self.kind
    }

    /// The request's and response's JSON shapes, for a call the gateway serves.
    pub(in crate::server) fn json(&self) -> Option<(&'static JsonShape, &'static JsonShape)> {
        self.json
    }

    pub(in crate::server) fn handler(&self) -> Handler {
        self.handler
    }
}

/// A row whose response carries the header `Resp` says etcd fills. The types name the row's
/// messages; only the tests read their names back.
#[cfg_attr(not(test), allow(clippy::extra_unused_type_parameters))]
const fn row<Req: prost::Message, Resp: HasHeader>(
    kind: CallKind,
    grpc_path: &'static str,
    gateway_paths: &'static [&'static str],
    json: Option<(&'static JsonShape, &'static JsonShape)>,
    handler: Handler,
) -> MethodRow {
    MethodRow {
        kind,
        grpc_path,
        gateway_paths,
        json,
        #[cfg(test)]
        request_type: std::any::type_name::<Req>,
        #[cfg(test)]
        response_type: std::any::type_name::<Resp>,
        #[cfg(test)]
        header: Resp::FILL,
        handler,
    }
}

/// A row of a service other than etcd's (gRPC health), whose responses have no header.
#[cfg_attr(not(test), allow(clippy::extra_unused_type_parameters))]
const fn headerless<Req: prost::Message, Resp: prost::Message>(
    kind: CallKind,
    grpc_path: &'static str,
    handler: Handler,
) -> MethodRow {
    MethodRow {
        kind,
        grpc_path,
        gateway_paths: &[],
        json: None,
        #[cfg(test)]
        request_type: std::any::type_name::<Req>,
        #[cfg(test)]
        response_type: std::any::type_name::<Resp>,
        #[cfg(test)]
        header: HeaderFill::Absent,
        handler,
    }
}

/// A request that goes through Raft to the store as it came.
macro_rules! proposed {
    ($variant:ident, $request:ident) => {
        Handler::Kv(|service, call, message| {
            let request = Internal::$variant(proto::$request::decode(message)?);
            service.writes.propose_kv(call, request);
            Ok(())
        })
    };
}

/// A request handled by `$service`'s `$handler(call, request)`.
macro_rules! handled {
    ($service:ident, $handler:ident, $request:ident) => {
        Handler::$service(|service, call, message| {
            service.$handler(call, proto::$request::decode(message)?);
            Ok(())
        })
    };
}

const fn unary(method: Method) -> CallKind {
    CallKind::Unary(method)
}

const fn shapes(
    request: &'static JsonShape,
    response: &'static JsonShape,
) -> Option<(&'static JsonShape, &'static JsonShape)> {
    Some((request, response))
}

static METHODS: [MethodRow; 32] = [
    row::<proto::RangeRequest, proto::RangeResponse>(
        unary(Method::Range),
        "/etcdserverpb.KV/Range",
        &["kv/range"],
        shapes(&json::RANGE_REQUEST, &json::RANGE_RESPONSE),
        handled!(Kv, range, RangeRequest),
    ),
    row::<proto::PutRequest, proto::PutResponse>(
        unary(Method::Put),
        "/etcdserverpb.KV/Put",
        &["kv/put"],
        shapes(&json::PUT_REQUEST, &json::PUT_RESPONSE),
        proposed!(Put, PutRequest),
    ),
    row::<proto::DeleteRangeRequest, proto::DeleteRangeResponse>(
        unary(Method::DeleteRange),
        "/etcdserverpb.KV/DeleteRange",
        &["kv/deleterange"],
        shapes(&json::DELETE_RANGE_REQUEST, &json::DELETE_RANGE_RESPONSE),
        proposed!(DeleteRange, DeleteRangeRequest),
    ),
    row::<proto::TxnRequest, proto::TxnResponse>(
        unary(Method::Txn),
        "/etcdserverpb.KV/Txn",
        &["kv/txn"],
        shapes(&json::TXN_REQUEST, &json::TXN_RESPONSE),
        proposed!(Txn, TxnRequest),
    ),
    row::<proto::CompactionRequest, proto::CompactionResponse>(
        unary(Method::Compact),
        "/etcdserverpb.KV/Compact",
        &["kv/compaction"],
        shapes(&json::COMPACTION_REQUEST, &json::HEADER_ONLY),
        proposed!(Compaction, CompactionRequest),
    ),
    row::<proto::LeaseGrantRequest, proto::LeaseGrantResponse>(
        unary(Method::LeaseGrant),
        "/etcdserverpb.Lease/LeaseGrant",
        &["lease/grant"],
        shapes(&json::LEASE_GRANT_REQUEST, &json::LEASE_GRANT_RESPONSE),
        handled!(Kv, lease_grant, LeaseGrantRequest),
    ),
    row::<proto::LeaseRevokeRequest, proto::LeaseRevokeResponse>(
        unary(Method::LeaseRevoke),
        "/etcdserverpb.Lease/LeaseRevoke",
        &["lease/revoke", "kv/lease/revoke"],
        shapes(&json::LEASE_ID_REQUEST, &json::HEADER_ONLY),
        proposed!(LeaseRevoke, LeaseRevokeRequest),
    ),
    row::<proto::LeaseTimeToLiveRequest, proto::LeaseTimeToLiveResponse>(
        unary(Method::LeaseTimeToLive),
        "/etcdserverpb.Lease/LeaseTimeToLive",
        &["lease/timetolive", "kv/lease/timetolive"],
        shapes(
            &json::LEASE_TIME_TO_LIVE_REQUEST,
            &json::LEASE_TIME_TO_LIVE_RESPONSE,
        ),
        handled!(LeaderQuery, lease_time_to_live, LeaseTimeToLiveRequest),
    ),
    row::<proto::LeaseLeasesRequest, proto::LeaseLeasesResponse>(
        unary(Method::LeaseLeases),
        "/etcdserverpb.Lease/LeaseLeases",
        &["lease/leases", "kv/lease/leases"],
        shapes(&json::EMPTY, &json::LEASE_LEASES_RESPONSE),
        Handler::Kv(|service, call, _| {
            service.lease_leases(call);
            Ok(())
        }),
    ),
    row::<proto::MemberAddRequest, proto::MemberAddResponse>(
        unary(Method::MemberAdd),
        "/etcdserverpb.Cluster/MemberAdd",
        &["cluster/member/add"],
        shapes(&json::MEMBER_ADD_REQUEST, &json::MEMBER_ADD_RESPONSE),
        handled!(Cluster, member_add, MemberAddRequest),
    ),
    row::<proto::MemberRemoveRequest, proto::MemberRemoveResponse>(
        unary(Method::MemberRemove),
        "/etcdserverpb.Cluster/MemberRemove",
        &["cluster/member/remove"],
        shapes(&json::MEMBER_ID_REQUEST, &json::MEMBERS_RESPONSE),
        handled!(Cluster, member_remove, MemberRemoveRequest),
    ),
    row::<proto::MemberUpdateRequest, proto::MemberUpdateResponse>(
        unary(Method::MemberUpdate),
        "/etcdserverpb.Cluster/MemberUpdate",
        &["cluster/member/update"],
        shapes(&json::MEMBER_UPDATE_REQUEST, &json::MEMBERS_RESPONSE),
        handled!(Cluster, member_update, MemberUpdateRequest),
    ),
    row::<proto::MemberListRequest, proto::MemberListResponse>(
        unary(Method::MemberList),
        "/etcdserverpb.Cluster/MemberList",
        &["cluster/member/list"],
        shapes(&json::MEMBER_LIST_REQUEST, &json::MEMBERS_RESPONSE),
        Handler::Cluster(|service, call, _| {
            service.member_list(call);
            Ok(())
        }),
    ),
    row::<proto::MemberPromoteRequest, proto::MemberPromoteResponse>(
        unary(Method::MemberPromote),
        "/etcdserverpb.Cluster/MemberPromote",
        &["cluster/member/promote"],
        shapes(&json::MEMBER_ID_REQUEST, &json::MEMBERS_RESPONSE),
        handled!(Cluster, member_promote, MemberPromoteRequest),
    ),
    row::<proto::AlarmRequest, proto::AlarmResponse>(
        unary(Method::Alarm),
        "/etcdserverpb.Maintenance/Alarm",
        &["maintenance/alarm"],
        shapes(&json::ALARM_REQUEST, &json::ALARM_RESPONSE),
        Handler::Kv(|service, call, message| {
            let request = proto::AlarmRequest::decode(message)?;
            service.writes.alarm_rpc(call, request);
            Ok(())
        }),
    ),
    row::<proto::StatusRequest, proto::StatusResponse>(
        unary(Method::Status),
        "/etcdserverpb.Maintenance/Status",
        &["maintenance/status"],
        shapes(&json::EMPTY, &json::STATUS_RESPONSE),
        Handler::Maintenance(|service, call, _| {
            service.status_rpc(call);
            Ok(())
        }),
    ),
    row::<proto::DefragmentRequest, proto::DefragmentResponse>(
        unary(Method::Defragment),
        "/etcdserverpb.Maintenance/Defragment",
        &["maintenance/defragment"],
        shapes(&json::EMPTY, &json::HEADER_ONLY),
        // The store lives in memory: there is nothing to defragment.
        Handler::Maintenance(|service, call, _| {
            service.reply(call, proto::DefragmentResponse::default());
            Ok(())
        }),
    ),
    row::<proto::HashRequest, proto::HashResponse>(
        unary(Method::Hash),
        "/etcdserverpb.Maintenance/Hash",
        &["maintenance/hash"],
        shapes(&json::EMPTY, &json::HASH_RESPONSE),
        Handler::Maintenance(|service, call, _| {
            service.hash(call);
            Ok(())
        }),
    ),
    row::<proto::HashKvRequest, proto::HashKvResponse>(
        unary(Method::HashKv),
        "/etcdserverpb.Maintenance/HashKV",
        &["maintenance/hashkv"],
        shapes(&json::HASH_KV_REQUEST, &json::HASH_KV_RESPONSE),
        handled!(Maintenance, hash_kv, HashKvRequest),
    ),
    row::<proto::MoveLeaderRequest, proto::MoveLeaderResponse>(
        unary(Method::MoveLeader),
        "/etcdserverpb.Maintenance/MoveLeader",
        &["maintenance/transfer-leadership"],
        shapes(&json::MOVE_LEADER_REQUEST, &json::HEADER_ONLY),
        handled!(Maintenance, move_leader, MoveLeaderRequest),
    ),
    row::<proto::WatchRequest, proto::WatchResponse>(
        CallKind::Watch,
        "/etcdserverpb.Watch/Watch",
        &["watch"],
        shapes(&json::WATCH_REQUEST, &json::WATCH_RESPONSE),
        Handler::Watch(|service, call, message| service.handle_watch(call, message)),
    ),
    row::<proto::LeaseKeepAliveRequest, proto::LeaseKeepAliveResponse>(
        CallKind::LeaseKeepAlive,
        "/etcdserverpb.Lease/LeaseKeepAlive",
        &["lease/keepalive"],
        shapes(&json::LEASE_ID_REQUEST, &json::LEASE_KEEP_ALIVE_RESPONSE),
        Handler::Kv(|service, call, message| service.handle_keep_alive(call, message)),
    ),
    row::<proto::SnapshotRequest, proto::SnapshotResponse>(
        CallKind::Snapshot,
        "/etcdserverpb.Maintenance/Snapshot",
        // etcd's gateway streams the file as JSON chunks; tallyd's does not (use gRPC).
        &[],
        None,
        Handler::Maintenance(|service, call, _| service.handle_snapshot(call)),
    ),
    row::<proto::LockRequest, proto::LockResponse>(
        unary(Method::Lock),
        "/v3lockpb.Lock/Lock",
        &["lock/lock"],
        shapes(&json::LOCK_REQUEST, &json::LOCK_RESPONSE),
        handled!(Coordination, lock, LockRequest),
    ),
    row::<proto::UnlockRequest, proto::UnlockResponse>(
        unary(Method::Unlock),
        "/v3lockpb.Lock/Unlock",
        &["lock/unlock"],
        shapes(&json::UNLOCK_REQUEST, &json::HEADER_ONLY),
        handled!(Coordination, unlock, UnlockRequest),
    ),
    row::<proto::CampaignRequest, proto::CampaignResponse>(
        unary(Method::Campaign),
        "/v3electionpb.Election/Campaign",
        &["election/campaign"],
        shapes(&json::CAMPAIGN_REQUEST, &json::CAMPAIGN_RESPONSE),
        handled!(Coordination, campaign, CampaignRequest),
    ),
    row::<proto::ProclaimRequest, proto::ProclaimResponse>(
        unary(Method::Proclaim),
        "/v3electionpb.Election/Proclaim",
        &["election/proclaim"],
        shapes(&json::PROCLAIM_REQUEST, &json::HEADER_ONLY),
        handled!(Coordination, proclaim, ProclaimRequest),
    ),
    row::<proto::LeaderRequest, proto::LeaderResponse>(
        unary(Method::Leader),
        "/v3electionpb.Election/Leader",
        &["election/leader"],
        shapes(&json::LEADER_REQUEST, &json::LEADER_RESPONSE),
        handled!(Coordination, leader, LeaderRequest),
    ),
    row::<proto::ResignRequest, proto::ResignResponse>(
        unary(Method::Resign),
        "/v3electionpb.Election/Resign",
        &["election/resign"],
        shapes(&json::RESIGN_REQUEST, &json::HEADER_ONLY),
        handled!(Coordination, resign, ResignRequest),
    ),
    row::<proto::LeaderRequest, proto::LeaderResponse>(
        CallKind::ElectionObserve,
        "/v3electionpb.Election/Observe",
        &["election/observe"],
        shapes(&json::LEADER_REQUEST, &json::LEADER_RESPONSE),
        handled!(Coordination, observe, LeaderRequest),
    ),
    headerless::<health::HealthCheckRequest, health::HealthCheckResponse>(
        CallKind::HealthCheck,
        "/grpc.health.v1.Health/Check",
        Handler::Health(|service, call, message| service.health_check(call, message)),
    ),
    headerless::<health::HealthCheckRequest, health::HealthCheckResponse>(
        CallKind::HealthWatch,
        "/grpc.health.v1.Health/Watch",
        Handler::Health(|service, call, message| service.health_watch(call, message)),
    ),
];

/// The call a gRPC path names.
pub(in crate::server) fn by_grpc_path(path: &str) -> Option<&'static MethodRow> {
    METHODS.iter().find(|row| row.grpc_path == path)
}

/// The row of a call kind (every kind has one).
pub(in crate::server) fn by_kind(kind: CallKind) -> &'static MethodRow {
    METHODS
        .iter()
        .find(|row| row.kind == kind)
        .expect("every call kind is in the table")
}

/// The call a gateway path (after `/v3/`) names.
pub(in crate::server) fn by_gateway_path(path: &str) -> Option<&'static MethodRow> {
    METHODS.iter().find(|row| row.gateway_paths.contains(&path))
}

#[cfg(test)]
mod tests;
