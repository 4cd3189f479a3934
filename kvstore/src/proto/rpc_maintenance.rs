//! The `Maintenance` service's messages (etcd's `api/etcdserverpb/rpc.proto`).

use bytes::Bytes;

use super::rpc_kv::ResponseHeader;

/// The kind of an alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum AlarmType {
    /// No alarm (in a query: every kind).
    None = 0,
    /// The space quota is exceeded: writes that add data are refused.
    Nospace = 1,
    /// Members' data differ.
    Corrupt = 2,
}

/// What an `Alarm` request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum AlarmAction {
    /// List alarms.
    Get = 0,
    /// Raise an alarm.
    Activate = 1,
    /// Clear an alarm (`etcdctl alarm disarm`).
    Deactivate = 2,
}

/// `Alarm`: lists, raises or clears alarms.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AlarmRequest {
    /// An [`AlarmAction`].
    #[prost(enumeration = "AlarmAction", tag = "1")]
    pub action: i32,
    /// The member the alarm is about (0 in a query: every member).
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    /// An [`AlarmType`].
    #[prost(enumeration = "AlarmType", tag = "3")]
    pub alarm: i32,
}

/// One raised alarm.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AlarmMember {
    /// The member that raised it.
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    /// An [`AlarmType`].
    #[prost(enumeration = "AlarmType", tag = "2")]
    pub alarm: i32,
}

/// The answer to `Alarm`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AlarmResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The alarms listed, raised or cleared.
    #[prost(message, repeated, tag = "2")]
    pub alarms: Vec<AlarmMember>,
}

/// `Status`: a member's status.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct StatusRequest {}

/// etcd 3.5's downgrade state, in a `Status` answer.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct DowngradeInfo {
    /// Whether a downgrade is under way.
    #[prost(bool, tag = "1")]
    pub enabled: bool,
    /// The version being downgraded to.
    #[prost(string, tag = "2")]
    pub target_version: String,
}

/// The answer to `Status`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct StatusResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The etcd version the member answers as.
    #[prost(string, tag = "2")]
    pub version: String,
    /// The store's size in bytes.
    #[prost(int64, tag = "3")]
    pub db_size: i64,
    /// The leader's member ID (0: none known).
    #[prost(uint64, tag = "4")]
    pub leader: u64,
    /// The member's last Raft log index.
    #[prost(uint64, tag = "5")]
    pub raft_index: u64,
    /// The member's Raft term.
    #[prost(uint64, tag = "6")]
    pub raft_term: u64,
    /// The member's last applied Raft index.
    #[prost(uint64, tag = "7")]
    pub raft_applied_index: u64,
    /// Problems with the member (no leader, raised alarms).
    #[prost(string, repeated, tag = "8")]
    pub errors: Vec<String>,
    /// The bytes of the store in use.
    #[prost(int64, tag = "9")]
    pub db_size_in_use: i64,
    /// Whether the member is a learner.
    #[prost(bool, tag = "10")]
    pub is_learner: bool,
    /// etcd 3.5's storage version field.
    #[prost(string, tag = "11")]
    pub storage_version: String,
    /// etcd 3.5's space quota field.
    #[prost(int64, tag = "12")]
    pub db_size_quota: i64,
    /// etcd 3.5's downgrade state field.
    #[prost(message, optional, tag = "13")]
    pub downgrade_info: Option<DowngradeInfo>,
}

/// `Hash`: a hash of the member's whole store.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct HashRequest {}

/// The answer to `Hash`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct HashResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The hash.
    #[prost(uint32, tag = "2")]
    pub hash: u32,
}

/// `HashKV`: a hash of the key-value history up to a revision.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct HashKvRequest {
    /// The revision to hash up to (0: the current one).
    #[prost(int64, tag = "1")]
    pub revision: i64,
}

/// The answer to `HashKV`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct HashKvResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The hash.
    #[prost(uint32, tag = "2")]
    pub hash: u32,
    /// The compacted revision when hashed.
    #[prost(int64, tag = "3")]
    pub compact_revision: i64,
    /// The revision hashed up to.
    #[prost(int64, tag = "4")]
    pub hash_revision: i64,
}

/// `Defragment`: compacts the member's storage.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct DefragmentRequest {}

/// The answer to `Defragment`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct DefragmentResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `Snapshot`: streams the member's store.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct SnapshotRequest {}

/// One message of a `Snapshot` stream.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct SnapshotResponse {
    /// The response header (first message only).
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Bytes left to send after this message.
    #[prost(uint64, tag = "2")]
    pub remaining_bytes: u64,
    /// The next chunk of the snapshot.
    #[prost(bytes = "bytes", tag = "3")]
    pub blob: Bytes,
    /// etcd 3.5's version field.
    #[prost(string, tag = "4")]
    pub version: String,
}

/// `MoveLeader`: hands leadership to another member.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MoveLeaderRequest {
    /// The member to hand leadership to.
    #[prost(uint64, tag = "1")]
    pub target_id: u64,
}

/// The answer to `MoveLeader`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MoveLeaderResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
