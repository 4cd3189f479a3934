//! The replicated request: what a committed Raft entry carries.
//!
//! Shaped after etcd's `InternalRaftRequest` (same tag numbers for the shared fields), written as a
//! oneof so that exactly one request travels per entry.

use super::rpc_auth::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleDeleteRequest,
    AuthRoleGetRequest, AuthRoleGrantPermissionRequest, AuthRoleListRequest,
    AuthRoleRevokePermissionRequest, AuthUserAddRequest, AuthUserChangePasswordRequest,
    AuthUserDeleteRequest, AuthUserGetRequest, AuthUserGrantRoleRequest, AuthUserListRequest,
    AuthUserRevokeRoleRequest, AuthenticateRequest,
};
use super::rpc_kv::{CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest};
use super::rpc_lease::{
    LeaseCheckpointRequest, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest,
};
use super::rpc_maintenance::AlarmRequest;

/// One replicated request. `id` lets the proposer match the outcome to its waiting client.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct InternalRequest {
    /// The proposer's id for the request, echoed in [`crate::ApplyOutcome::request_id`].
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Who asked, for the permission check at apply (etcd's `RequestHeader`, tag 100): absent
    /// for what a member proposes itself (lease expiry, auto-compaction, alarms), which is not
    /// checked.
    #[prost(message, optional, tag = "100")]
    pub header: Option<RequestHeader>,
    /// The request; `None` is a no-op entry.
    #[prost(
        oneof = "internal_request::Request",
        tags = "3, 4, 5, 6, 7, 8, 9, 10, 11, 20, 1000, 1011, 1012, 1100, 1101, 1102, 1103, 1104, 1105, 1106, 1107, 1200, 1201, 1202, 1203, 1204"
    )]
    pub request: Option<internal_request::Request>,
}

/// Who asked (etcd's `RequestHeader`): the user and the auth revision its token is good for.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct RequestHeader {
    /// The user's name; empty when the call carried no token.
    #[prost(string, tag = "2")]
    pub username: String,
    /// The auth revision of the user's token; 0 when the call carried none.
    #[prost(uint64, tag = "3")]
    pub auth_revision: u64,
}

/// The oneof of [`InternalRequest`].
pub mod internal_request {
    /// One replicated request.
    #[derive(Clone, PartialEq, Eq, ::prost::Oneof)]
    pub enum Request {
        /// A range, answered at the revision the entry is applied at.
        #[prost(message, tag = "3")]
        Range(super::RangeRequest),
        /// A put.
        #[prost(message, tag = "4")]
        Put(super::PutRequest),
        /// A delete of a key or range.
        #[prost(message, tag = "5")]
        DeleteRange(super::DeleteRangeRequest),
        /// A transaction.
        #[prost(message, tag = "6")]
        Txn(super::TxnRequest),
        /// A compaction.
        #[prost(message, tag = "7")]
        Compaction(super::CompactionRequest),
        /// A lease grant.
        #[prost(message, tag = "8")]
        LeaseGrant(super::LeaseGrantRequest),
        /// A lease revoke (by a client, or by the leader for an expired lease).
        #[prost(message, tag = "9")]
        LeaseRevoke(super::LeaseRevokeRequest),
        /// An alarm raise, disarm or query.
        #[prost(message, tag = "10")]
        Alarm(super::AlarmRequest),
        /// The leader's record of leases' remaining TTLs.
        #[prost(message, tag = "11")]
        LeaseCheckpoint(super::LeaseCheckpointRequest),
        /// tally's own: a keep-alive that reached a member other than the lease's primary,
        /// replicated so that the primary renews the lease when it applies the entry, whichever
        /// member that is by then. Its tag lies outside etcd's `InternalRaftRequest` numbers.
        #[prost(message, tag = "20")]
        LeaseRenew(super::LeaseKeepAliveRequest),
        /// `AuthEnable`.
        #[prost(message, tag = "1000")]
        AuthEnable(super::AuthEnableRequest),
        /// `AuthDisable`.
        #[prost(message, tag = "1011")]
        AuthDisable(super::AuthDisableRequest),
        /// `Authenticate`, its password checked by the member that took it.
        #[prost(message, tag = "1012")]
        Authenticate(super::AuthenticateRequest),
        /// `UserAdd`, with the password's hash.
        #[prost(message, tag = "1100")]
        AuthUserAdd(super::AuthUserAddRequest),
        /// `UserDelete`.
        #[prost(message, tag = "1101")]
        AuthUserDelete(super::AuthUserDeleteRequest),
        /// `UserChangePassword`, with the password's hash.
        #[prost(message, tag = "1102")]
        AuthUserChangePassword(super::AuthUserChangePasswordRequest),
        /// `UserGrantRole`.
        #[prost(message, tag = "1103")]
        AuthUserGrantRole(super::AuthUserGrantRoleRequest),
        /// `UserGet`.
        #[prost(message, tag = "1104")]
        AuthUserGet(super::AuthUserGetRequest),
        /// `UserRevokeRole`.
        #[prost(message, tag = "1105")]
        AuthUserRevokeRole(super::AuthUserRevokeRoleRequest),
        /// `UserList`.
        #[prost(message, tag = "1106")]
        AuthUserList(super::AuthUserListRequest),
        /// `RoleList`.
        #[prost(message, tag = "1107")]
        AuthRoleList(super::AuthRoleListRequest),
        /// `RoleAdd`.
        #[prost(message, tag = "1200")]
        AuthRoleAdd(super::AuthRoleAddRequest),
        /// `RoleDelete`.
        #[prost(message, tag = "1201")]
        AuthRoleDelete(super::AuthRoleDeleteRequest),
        /// `RoleGrantPermission`.
        #[prost(message, tag = "1202")]
        AuthRoleGrantPermission(super::AuthRoleGrantPermissionRequest),
        /// `RoleGet`.
        #[prost(message, tag = "1203")]
        AuthRoleGet(super::AuthRoleGetRequest),
        /// `RoleRevokePermission`.
        #[prost(message, tag = "1204")]
        AuthRoleRevokePermission(super::AuthRoleRevokePermissionRequest),
    }
}
