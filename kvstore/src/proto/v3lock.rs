//! The `Lock` service's messages (etcd's `v3lockpb`, `api/v3lock/v3lockpb/v3lock.proto`).

use bytes::Bytes;

use super::rpc_kv::ResponseHeader;

/// `Lock`: acquires the lock `name`, held by `lease`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LockRequest {
    /// The lock's identifier: its holders' keys are under `name/`.
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    /// The lease whose expiry releases the lock (0: the server grants one).
    #[prost(int64, tag = "2")]
    pub lease: i64,
}

/// The answer to `Lock`, once the lock is held.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct LockResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The key that holds the lock while it exists (`name/<lease in hex>`).
    #[prost(bytes = "bytes", tag = "2")]
    pub key: Bytes,
}

/// `Unlock`: releases a lock by deleting its key.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct UnlockRequest {
    /// The key `Lock` answered with.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
}

/// The answer to `Unlock`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct UnlockResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
