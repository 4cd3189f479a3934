//! The `Election` service's messages (etcd's `v3electionpb`,
//! `api/v3election/v3electionpb/v3election.proto`).

use bytes::Bytes;

use super::kv::KeyValue;
use super::rpc_kv::ResponseHeader;

/// `Campaign`: waits until this campaigner leads the election `name`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct CampaignRequest {
    /// The election's identifier: its campaigners' keys are under `name/`.
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    /// The lease whose expiry ends the leadership (0: the server grants one).
    #[prost(int64, tag = "2")]
    pub lease: i64,
    /// The value proclaimed on winning.
    #[prost(bytes = "bytes", tag = "3")]
    pub value: Bytes,
}

/// The answer to `Campaign`, once this campaigner leads.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct CampaignResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// What identifies the leadership to `Proclaim` and `Resign`.
    #[prost(message, optional, tag = "2")]
    pub leader: Option<LeaderKey>,
}

/// A leadership: the leader's key, its creation revision and its lease.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaderKey {
    /// The election's identifier.
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    /// The leader's key (`name/<lease in hex>`).
    #[prost(bytes = "bytes", tag = "2")]
    pub key: Bytes,
    /// The key's creation revision: the leadership holds while the key has it.
    #[prost(int64, tag = "3")]
    pub rev: i64,
    /// The lease of the leadership.
    #[prost(int64, tag = "4")]
    pub lease: i64,
}

/// `Leader` and `Observe`: which election.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaderRequest {
    /// The election's identifier.
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
}

/// The answer to `Leader`, and each message of `Observe`: the leader's key and value.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaderResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The leader's key-value pair.
    #[prost(message, optional, tag = "2")]
    pub kv: Option<KeyValue>,
}

/// `Resign`: gives up a leadership.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ResignRequest {
    /// The leadership `Campaign` answered with.
    #[prost(message, optional, tag = "1")]
    pub leader: Option<LeaderKey>,
}

/// The answer to `Resign`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ResignResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `Proclaim`: a leader announces a new value.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ProclaimRequest {
    /// The leadership `Campaign` answered with.
    #[prost(message, optional, tag = "1")]
    pub leader: Option<LeaderKey>,
    /// The new value.
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

/// The answer to `Proclaim`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ProclaimResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
