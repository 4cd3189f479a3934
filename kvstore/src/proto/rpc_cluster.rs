//! The `Cluster` service's messages (etcd's `api/etcdserverpb/rpc.proto`).

use super::rpc_kv::ResponseHeader;

/// A cluster member, as `MemberList` lists it.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Member {
    /// The member's ID.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The member's name (empty until it has started).
    #[prost(string, tag = "2")]
    pub name: String,
    /// The URLs peers reach it at.
    #[prost(string, repeated, tag = "3")]
    pub peer_urls: Vec<String>,
    /// The URLs clients reach it at (empty until it has started).
    #[prost(string, repeated, tag = "4")]
    pub client_urls: Vec<String>,
    /// Whether the member is a learner (non-voting).
    #[prost(bool, tag = "5")]
    pub is_learner: bool,
}

/// `MemberAdd`: adds a member to the cluster.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MemberAddRequest {
    /// The new member's peer URLs.
    #[prost(string, repeated, tag = "1")]
    pub peer_urls: Vec<String>,
    /// Add it as a learner.
    #[prost(bool, tag = "2")]
    pub is_learner: bool,
}

/// The answer to `MemberAdd`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MemberAddResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The member added.
    #[prost(message, optional, tag = "2")]
    pub member: Option<Member>,
    /// Every member after the change.
    #[prost(message, repeated, tag = "3")]
    pub members: Vec<Member>,
}

/// `MemberRemove`: removes a member.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MemberRemoveRequest {
    /// The ID of the member to remove.
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

/// The answer to `MemberRemove`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MemberRemoveResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Every member after the change.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}

/// `MemberUpdate`: changes a member's peer URLs.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MemberUpdateRequest {
    /// The ID of the member to update.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Its new peer URLs.
    #[prost(string, repeated, tag = "2")]
    pub peer_urls: Vec<String>,
}

/// The answer to `MemberUpdate`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MemberUpdateResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Every member after the change.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}

/// `MemberList`: lists the members.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MemberListRequest {
    /// Serve the list linearizably (after a ReadIndex round) rather than from local state.
    #[prost(bool, tag = "1")]
    pub linearizable: bool,
}

/// The answer to `MemberList`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MemberListResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Every member.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}

/// `MemberPromote`: makes a learner a voter.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MemberPromoteRequest {
    /// The ID of the learner to promote.
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

/// The answer to `MemberPromote`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MemberPromoteResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Every member after the change.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}
