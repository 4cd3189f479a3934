//! What applying one committed entry gives back.

use crate::error::KvError;
use crate::proto::{
    AlarmResponse, AuthResponse, AuthRoleGetResponse, AuthRoleListResponse, AuthUserGetResponse,
    AuthUserListResponse, CompactionResponse, DeleteRangeResponse, LeaseCheckpointResponse,
    LeaseGrantResponse, LeaseKeepAliveResponse, LeaseRevokeResponse, PutResponse, RangeResponse,
    TxnResponse,
};

/// The response to one replicated request.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ApplyResponse {
    /// An entry that carried no request (e.g. an empty entry): only the applied index moved.
    Noop,
    /// A range's answer.
    Range(RangeResponse),
    /// A put's answer.
    Put(PutResponse),
    /// A delete's answer.
    DeleteRange(DeleteRangeResponse),
    /// A transaction's answer.
    Txn(TxnResponse),
    /// A compaction's answer.
    Compaction(CompactionResponse),
    /// A lease grant's answer.
    LeaseGrant(LeaseGrantResponse),
    /// A lease revoke's answer.
    LeaseRevoke(LeaseRevokeResponse),
    /// A lease checkpoint's answer.
    LeaseCheckpoint(LeaseCheckpointResponse),
    /// A replicated keep-alive: the lease's granted TTL, as the keep-alive stream answers.
    LeaseRenew(LeaseKeepAliveResponse),
    /// An alarm request's answer.
    Alarm(AlarmResponse),
    /// An auth change's answer (a header only).
    Auth(AuthResponse),
    /// A user's password changed or the user was deleted (a header only, as `Auth`): the
    /// tokens given to that user are no longer good.
    AuthUserInvalidated {
        /// The user's name.
        name: String,
    },
    /// `Authenticate` succeeded: the user, and the auth revision its token is good for.
    Authenticated {
        /// The user's name.
        name: String,
        /// The auth revision.
        revision: u64,
        /// The hash of the token given out, as the request carried it.
        token_hash: String,
    },
    /// `UserGet`'s answer.
    AuthUserGet(AuthUserGetResponse),
    /// `UserList`'s answer.
    AuthUserList(AuthUserListResponse),
    /// `RoleGet`'s answer.
    AuthRoleGet(AuthRoleGetResponse),
    /// `RoleList`'s answer.
    AuthRoleList(AuthRoleListResponse),
}

/// The result of [`crate::KvStore::apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyOutcome {
    raft_index: u64,
    request_id: u64,
    result: Result<ApplyResponse, KvError>,
    compaction_wait_rev: Option<i64>,
}

impl ApplyOutcome {
    pub(crate) fn new(
        raft_index: u64,
        request_id: u64,
        result: Result<ApplyResponse, KvError>,
        compaction_wait_rev: Option<i64>,
    ) -> Self {
        ApplyOutcome {
            raft_index,
            request_id,
            result,
            compaction_wait_rev,
        }
    }

    /// The entry's raft index.
    pub fn raft_index(&self) -> u64 {
        self.raft_index
    }

    /// The proposer's request id (0 when the entry did not decode).
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// The response, or the error the client gets.
    pub fn result(&self) -> &Result<ApplyResponse, KvError> {
        &self.result
    }

    /// The response, or the error the client gets, by value.
    pub fn into_result(self) -> Result<ApplyResponse, KvError> {
        self.result
    }

    /// For a successful Compact with `physical = true`: the revision whose physical compaction
    /// must finish ([`crate::KvStore::compaction_done`]) before the response is released.
    pub fn compaction_wait_rev(&self) -> Option<i64> {
        self.compaction_wait_rev
    }
}
