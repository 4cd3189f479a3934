//! The `KV` service's messages (etcd's `api/etcdserverpb/rpc.proto`).

use bytes::Bytes;

use super::kv::KeyValue;

/// Sent with every response.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ResponseHeader {
    /// The cluster's ID.
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    /// The ID of the member that answered.
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    /// The store's revision when the request was served.
    #[prost(int64, tag = "3")]
    pub revision: i64,
    /// The member's Raft term.
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}

/// How a range sorts its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum SortOrder {
    /// No sorting (key order).
    None = 0,
    /// Lowest first.
    Ascend = 1,
    /// Highest first.
    Descend = 2,
}

/// What a range sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum SortTarget {
    /// The key.
    Key = 0,
    /// The key's version.
    Version = 1,
    /// The key's create revision.
    Create = 2,
    /// The key's mod revision.
    Mod = 3,
    /// The value.
    Value = 4,
}

/// `Range`: reads keys.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct RangeRequest {
    /// The key, or the first key of the range.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// The end of the range, exclusive. Empty: `key` alone; `"\0"`: every key from `key` on;
    /// `key` plus one (see [`crate::prefix_range_end`]): every key with prefix `key`.
    #[prost(bytes = "bytes", tag = "2")]
    pub range_end: Bytes,
    /// The most keys returned (0: no limit).
    #[prost(int64, tag = "3")]
    pub limit: i64,
    /// Read the store as of this revision (0: the current one).
    #[prost(int64, tag = "4")]
    pub revision: i64,
    /// A [`SortOrder`].
    #[prost(enumeration = "SortOrder", tag = "5")]
    pub sort_order: i32,
    /// A [`SortTarget`].
    #[prost(enumeration = "SortTarget", tag = "6")]
    pub sort_target: i32,
    /// Serve from the local member's state without a ReadIndex round.
    #[prost(bool, tag = "7")]
    pub serializable: bool,
    /// Return keys without values.
    #[prost(bool, tag = "8")]
    pub keys_only: bool,
    /// Return only the count of keys.
    #[prost(bool, tag = "9")]
    pub count_only: bool,
    /// Keep only keys modified at or after this revision (0: no bound).
    #[prost(int64, tag = "10")]
    pub min_mod_revision: i64,
    /// Keep only keys modified at or before this revision (0: no bound).
    #[prost(int64, tag = "11")]
    pub max_mod_revision: i64,
    /// Keep only keys created at or after this revision (0: no bound).
    #[prost(int64, tag = "12")]
    pub min_create_revision: i64,
    /// Keep only keys created at or before this revision (0: no bound).
    #[prost(int64, tag = "13")]
    pub max_create_revision: i64,
}

/// The answer to `Range`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct RangeResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The keys found (none with `count_only`).
    #[prost(message, repeated, tag = "2")]
    pub kvs: Vec<KeyValue>,
    /// Whether `limit` cut off more keys.
    #[prost(bool, tag = "3")]
    pub more: bool,
    /// How many keys are in the range.
    #[prost(int64, tag = "4")]
    pub count: i64,
}

/// `Put`: writes a key.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct PutRequest {
    /// The key.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// The value.
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
    /// The lease to attach the key to (0: none).
    #[prost(int64, tag = "3")]
    pub lease: i64,
    /// Return the key's previous version.
    #[prost(bool, tag = "4")]
    pub prev_kv: bool,
    /// Keep the current value (the key must exist).
    #[prost(bool, tag = "5")]
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist).
    #[prost(bool, tag = "6")]
    pub ignore_lease: bool,
}

/// The answer to `Put`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct PutResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The previous version, when asked for and the key existed.
    #[prost(message, optional, tag = "2")]
    pub prev_kv: Option<KeyValue>,
}

/// `DeleteRange`: deletes a key or a range.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct DeleteRangeRequest {
    /// The key, or the first key of the range.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// The end of the range, exclusive, as in [`RangeRequest::range_end`].
    #[prost(bytes = "bytes", tag = "2")]
    pub range_end: Bytes,
    /// Return the deleted keys.
    #[prost(bool, tag = "3")]
    pub prev_kv: bool,
}

/// The answer to `DeleteRange`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct DeleteRangeResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// How many keys were deleted.
    #[prost(int64, tag = "2")]
    pub deleted: i64,
    /// The deleted keys, when asked for.
    #[prost(message, repeated, tag = "3")]
    pub prev_kvs: Vec<KeyValue>,
}

/// One operation of a transaction.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct RequestOp {
    /// The operation.
    #[prost(oneof = "request_op::Request", tags = "1, 2, 3, 4")]
    pub request: Option<request_op::Request>,
}

/// The oneof of [`RequestOp`].
pub mod request_op {
    /// One operation of a transaction.
    #[derive(Clone, PartialEq, Eq, ::prost::Oneof)]
    pub enum Request {
        /// A range.
        #[prost(message, tag = "1")]
        RequestRange(super::RangeRequest),
        /// A put.
        #[prost(message, tag = "2")]
        RequestPut(super::PutRequest),
        /// A delete.
        #[prost(message, tag = "3")]
        RequestDeleteRange(super::DeleteRangeRequest),
        /// A nested transaction.
        #[prost(message, tag = "4")]
        RequestTxn(super::TxnRequest),
    }
}

/// The result of one operation of a transaction.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ResponseOp {
    /// The result.
    #[prost(oneof = "response_op::Response", tags = "1, 2, 3, 4")]
    pub response: Option<response_op::Response>,
}

/// The oneof of [`ResponseOp`].
pub mod response_op {
    /// The result of one operation of a transaction.
    #[derive(Clone, PartialEq, Eq, ::prost::Oneof)]
    pub enum Response {
        /// A range's result.
        #[prost(message, tag = "1")]
        ResponseRange(super::RangeResponse),
        /// A put's result.
        #[prost(message, tag = "2")]
        ResponsePut(super::PutResponse),
        /// A delete's result.
        #[prost(message, tag = "3")]
        ResponseDeleteRange(super::DeleteRangeResponse),
        /// A nested transaction's result.
        #[prost(message, tag = "4")]
        ResponseTxn(super::TxnResponse),
    }
}

/// How a comparison compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum CompareResult {
    /// The key's field equals the value.
    Equal = 0,
    /// The key's field is greater than the value.
    Greater = 1,
    /// The key's field is less than the value.
    Less = 2,
    /// The key's field differs from the value.
    NotEqual = 3,
}

/// Which field of a key a comparison reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum CompareTarget {
    /// The version.
    Version = 0,
    /// The create revision.
    Create = 1,
    /// The mod revision.
    Mod = 2,
    /// The value.
    Value = 3,
    /// The lease.
    Lease = 4,
}

/// One condition of a transaction.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Compare {
    /// A [`CompareResult`].
    #[prost(enumeration = "CompareResult", tag = "1")]
    pub result: i32,
    /// A [`CompareTarget`].
    #[prost(enumeration = "CompareTarget", tag = "2")]
    pub target: i32,
    /// The key compared.
    #[prost(bytes = "bytes", tag = "3")]
    pub key: Bytes,
    /// The value compared with, of the target's type.
    #[prost(oneof = "compare::TargetUnion", tags = "4, 5, 6, 7, 8")]
    pub target_union: Option<compare::TargetUnion>,
    /// Compare every key in `key..range_end` instead of `key` alone.
    #[prost(bytes = "bytes", tag = "64")]
    pub range_end: Bytes,
}

/// The oneof of [`Compare`].
pub mod compare {
    use bytes::Bytes;

    /// The value a comparison compares with.
    #[derive(Clone, PartialEq, Eq, ::prost::Oneof)]
    pub enum TargetUnion {
        /// A version.
        #[prost(int64, tag = "4")]
        Version(i64),
        /// A create revision.
        #[prost(int64, tag = "5")]
        CreateRevision(i64),
        /// A mod revision.
        #[prost(int64, tag = "6")]
        ModRevision(i64),
        /// A value.
        #[prost(bytes = "bytes", tag = "7")]
        Value(Bytes),
        /// A lease ID.
        #[prost(int64, tag = "8")]
        Lease(i64),
    }
}

/// `Txn`: if every comparison holds, the success operations, else the failure ones, in one
/// revision.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct TxnRequest {
    /// The conditions, all of which must hold.
    #[prost(message, repeated, tag = "1")]
    pub compare: Vec<Compare>,
    /// Run when every condition holds.
    #[prost(message, repeated, tag = "2")]
    pub success: Vec<RequestOp>,
    /// Run otherwise.
    #[prost(message, repeated, tag = "3")]
    pub failure: Vec<RequestOp>,
}

/// The answer to `Txn`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct TxnResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Whether every condition held.
    #[prost(bool, tag = "2")]
    pub succeeded: bool,
    /// One result per operation run, in order.
    #[prost(message, repeated, tag = "3")]
    pub responses: Vec<ResponseOp>,
}

/// `Compact`: drops the history before a revision.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct CompactionRequest {
    /// Reads below this revision fail from now on.
    #[prost(int64, tag = "1")]
    pub revision: i64,
    /// Answer only once the old revisions are removed from memory.
    #[prost(bool, tag = "2")]
    pub physical: bool,
}

/// The answer to `Compact`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct CompactionResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
