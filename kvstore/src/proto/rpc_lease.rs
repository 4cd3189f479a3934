//! The `Lease` service's messages (etcd's `api/etcdserverpb/rpc.proto`).

use bytes::Bytes;

use super::rpc_kv::ResponseHeader;

/// `LeaseGrant`: creates a lease.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseGrantRequest {
    /// The time to live, in seconds.
    #[prost(int64, tag = "1")]
    pub ttl: i64,
    /// The lease's ID (0: the store picks one).
    #[prost(int64, tag = "2")]
    pub id: i64,
}

/// The answer to `LeaseGrant`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseGrantResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The lease's ID.
    #[prost(int64, tag = "2")]
    pub id: i64,
    /// The granted time to live, in seconds.
    #[prost(int64, tag = "3")]
    pub ttl: i64,
    /// etcd's error text field (left empty; errors travel as gRPC status).
    #[prost(string, tag = "4")]
    pub error: String,
}

/// `LeaseRevoke`: ends a lease and deletes its keys.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseRevokeRequest {
    /// The lease's ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// The answer to `LeaseRevoke`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseRevokeResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// One lease's remaining time to live, as the primary last saw it.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseCheckpoint {
    /// The lease's ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// Its remaining time to live, in seconds.
    #[prost(int64, tag = "2")]
    pub remaining_ttl: i64,
}

/// The leader's checkpoint of remaining TTLs, replicated so that a new leader resumes them.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseCheckpointRequest {
    /// One entry per lease.
    #[prost(message, repeated, tag = "1")]
    pub checkpoints: Vec<LeaseCheckpoint>,
}

/// The answer to a checkpoint.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseCheckpointResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `LeaseKeepAlive`: one keep-alive of a lease.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseKeepAliveRequest {
    /// The lease's ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// The answer to a keep-alive.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseKeepAliveResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The lease's ID.
    #[prost(int64, tag = "2")]
    pub id: i64,
    /// The lease's new time to live, in seconds (0: the lease does not exist).
    #[prost(int64, tag = "3")]
    pub ttl: i64,
}

/// `LeaseTimeToLive`: a lease's remaining time.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseTimeToLiveRequest {
    /// The lease's ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// List the lease's keys too.
    #[prost(bool, tag = "2")]
    pub keys: bool,
}

/// The answer to `LeaseTimeToLive`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseTimeToLiveResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The lease's ID.
    #[prost(int64, tag = "2")]
    pub id: i64,
    /// The remaining time to live, in seconds (-1: the lease does not exist).
    #[prost(int64, tag = "3")]
    pub ttl: i64,
    /// The time to live granted, in seconds.
    #[prost(int64, tag = "4")]
    pub granted_ttl: i64,
    /// The keys attached to the lease, when asked for.
    #[prost(bytes = "bytes", repeated, tag = "5")]
    pub keys: Vec<Bytes>,
}

/// `LeaseLeases`: lists every lease.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseLeasesRequest {}

/// One lease in a `LeaseLeases` answer.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseStatus {
    /// The lease's ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// The answer to `LeaseLeases`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LeaseLeasesResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Every lease.
    #[prost(message, repeated, tag = "2")]
    pub leases: Vec<LeaseStatus>,
}
