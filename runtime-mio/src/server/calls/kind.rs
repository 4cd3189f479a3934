//! What a client call is: decided from its path when it opens (the method table), and what
//! the call table, the dispatcher and the services tell calls apart by.

/// What a client call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) enum CallKind {
    Unary(Method),
    Watch,
    LeaseKeepAlive,
    Snapshot,
    /// `grpc.health.v1.Health/Check`: unary, without etcd's response header.
    HealthCheck,
    /// `grpc.health.v1.Health/Watch`: server streaming, open until the client cancels.
    HealthWatch,
    /// `v3electionpb.Election/Observe`: server streaming, each leader as it changes.
    ElectionObserve,
}

impl CallKind {
    /// Whether the call takes one request and gets one answer.
    pub(in crate::server) fn is_unary(self) -> bool {
        matches!(self, CallKind::Unary(_))
    }

    /// Whether a call of this kind holds state outside the call table while it is open (a
    /// watch stream's watchers, a lock or a leadership being waited for, an observer), which
    /// must be let go of when it ends.
    pub(in crate::server) fn holds_state_elsewhere(self) -> bool {
        matches!(
            self,
            CallKind::Watch
                | CallKind::ElectionObserve
                | CallKind::Unary(Method::Lock | Method::Campaign)
        )
    }
}

/// etcd's unary methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) enum Method {
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
    Lock,
    Unlock,
    Campaign,
    Proclaim,
    Leader,
    Resign,
    AuthEnable,
    AuthDisable,
    Authenticate,
    UserAdd,
    UserGet,
    UserList,
    UserDelete,
    UserChangePassword,
    UserGrantRole,
    UserRevokeRole,
    RoleAdd,
    RoleGet,
    RoleList,
    RoleDelete,
    RoleGrantPermission,
    RoleRevokePermission,
}

impl Method {
    /// Whether only `root` may call it once authentication is on, checked where the call
    /// arrives (what goes through the log is checked again at apply): membership and
    /// maintenance that is not a report.
    pub(in crate::server) fn needs_admin(self) -> bool {
        matches!(
            self,
            Method::MemberAdd
                | Method::MemberRemove
                | Method::MemberUpdate
                | Method::MemberPromote
                | Method::Defragment
                | Method::Hash
                | Method::HashKv
                | Method::MoveLeader
        )
    }
}
