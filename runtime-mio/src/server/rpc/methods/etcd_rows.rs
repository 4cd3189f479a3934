//! The rows of etcd's KV, Lease, Watch, Cluster and Maintenance services, and gRPC health.

use prost::Message as _;
use tally_kvstore::proto::{self, internal_request::Request as Internal};

use super::super::health;
use super::super::respond::Respond as _;
use super::row::{Handler, MethodRow, handled, headerless, proposed, row, shapes, unary};
use crate::server::calls::{CallKind, Method};
use crate::server::gateway::schema as json;

pub(super) static ROWS: [MethodRow; 25] = [
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
