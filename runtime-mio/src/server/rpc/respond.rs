//! Answers with etcd's response header: which header each response type carries, the header
//! itself, and [`Respond`], the replies every service context makes through the call table.

use bytes::Bytes;
use tally_core::Node;
use tally_kvstore::KvStore;
use tally_kvstore::proto::{self, ResponseHeader};

use crate::client::{CallId, Status};
use crate::server::calls::Calls;
use crate::server::identity::Identity;

/// Which header etcd 3.4 puts in a response's field 1: clients check for it (and for its
/// absence), so each response type says what etcd's handler fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) enum HeaderFill {
    /// Cluster ID, member ID, revision and Raft term (the KV, Lease and Watch services, Status,
    /// Hash and HashKV).
    Full,
    /// Cluster ID, member ID and Raft term, no revision (the Cluster service).
    NoRevision,
    /// No header at all (Alarm, Defragment, MoveLeader, the Snapshot stream).
    Absent,
}

pub(in crate::server) trait HasHeader: prost::Message + Sized {
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
    LockResponse,
    UnlockResponse,
    CampaignResponse,
    ProclaimResponse,
    LeaderResponse,
    ResignResponse,
    AuthResponse,
    AuthenticateResponse,
    AuthUserGetResponse,
    AuthUserListResponse,
    AuthRoleGetResponse,
    AuthRoleListResponse,
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

/// The header of a response of this member, as of now; `revision` 0 takes the store's.
pub(in crate::server) fn header(
    identity: &Identity,
    kv: &KvStore,
    node: &Node,
    revision: i64,
) -> ResponseHeader {
    ResponseHeader {
        cluster_id: identity.cluster_id,
        member_id: identity.member_id,
        revision: if revision > 0 {
            revision
        } else {
            kv.revision()
        },
        raft_term: node.status().term(),
    }
}

/// Encodes `message` with the header `fill` asks for, which for a few messages depends on
/// their content (a watch canceled for compaction carries no revision).
pub(in crate::server) fn encode_with<M: HasHeader>(
    mut message: M,
    fill: HeaderFill,
    header_of: impl FnOnce(i64) -> ResponseHeader,
) -> Bytes {
    let header = match fill {
        HeaderFill::Full => {
            let revision = message.header_mut().as_ref().map_or(0, |h| h.revision);
            Some(header_of(revision))
        }
        HeaderFill::NoRevision => Some(ResponseHeader {
            revision: 0,
            ..header_of(0)
        }),
        HeaderFill::Absent => None,
    };
    *message.header_mut() = header;
    Bytes::from(prost::Message::encode_to_vec(&message))
}

/// The replies of a service context: it says where its calls are and what its header is.
pub(in crate::server) trait Respond {
    fn calls(&mut self) -> &mut Calls;
    fn header(&self, revision: i64) -> ResponseHeader;

    fn encode<M: HasHeader>(&self, message: M) -> Bytes {
        encode_with(message, M::FILL, |revision| self.header(revision))
    }

    /// Answers a unary call.
    fn reply<M: HasHeader>(&mut self, call: CallId, message: M) {
        let bytes = self.encode(message);
        self.calls().reply_encoded(call, bytes);
    }

    fn reply_encoded(&mut self, call: CallId, bytes: Bytes) {
        self.calls().reply_encoded(call, bytes);
    }

    fn reply_error(&mut self, call: CallId, status: Status) {
        self.calls().reply_error(call, status);
    }

    /// Sends one message on a streaming call.
    fn stream<M: HasHeader>(&mut self, call: CallId, message: M) {
        let bytes = self.encode(message);
        self.calls().stream_encoded(call, bytes);
    }

    /// Sends one message on a streaming call, with the header `fill` asks for.
    fn stream_with<M: HasHeader>(&mut self, call: CallId, message: M, fill: HeaderFill) {
        let bytes = encode_with(message, fill, |revision| self.header(revision));
        self.calls().stream_encoded(call, bytes);
    }
}

/// Implements [`Respond`] for a context with the fields `identity`, `kv`, `node` and `calls`.
macro_rules! respond_through_fields {
    ($($context:ident),* $(,)?) => {
        $(impl $crate::server::rpc::respond::Respond for $context<'_> {
            fn calls(&mut self) -> &mut $crate::server::calls::Calls {
                &mut *self.calls
            }

            fn header(&self, revision: i64) -> tally_kvstore::proto::ResponseHeader {
                $crate::server::rpc::respond::header(self.identity, &*self.kv, &*self.node, revision)
            }
        })*
    };
}
pub(in crate::server) use respond_through_fields;
