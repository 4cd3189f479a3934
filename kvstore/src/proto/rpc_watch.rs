//! The `Watch` service's messages (etcd's `api/etcdserverpb/rpc.proto`).

use bytes::Bytes;

use super::kv::Event;
use super::rpc_kv::ResponseHeader;

/// One message of the client's side of a `Watch` stream.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct WatchRequest {
    /// The request.
    #[prost(oneof = "watch_request::RequestUnion", tags = "1, 2, 3")]
    pub request_union: Option<watch_request::RequestUnion>,
}

/// The oneof of [`WatchRequest`].
pub mod watch_request {
    /// A request on a watch stream.
    #[derive(Clone, PartialEq, Eq, ::prost::Oneof)]
    pub enum RequestUnion {
        /// Create a watcher.
        #[prost(message, tag = "1")]
        CreateRequest(super::WatchCreateRequest),
        /// Cancel a watcher.
        #[prost(message, tag = "2")]
        CancelRequest(super::WatchCancelRequest),
        /// Ask every watcher of the stream for a progress notification.
        #[prost(message, tag = "3")]
        ProgressRequest(super::WatchProgressRequest),
    }
}

/// Events a watcher filters out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum FilterType {
    /// Filter out put events.
    Noput = 0,
    /// Filter out delete events.
    Nodelete = 1,
}

/// Creates a watcher.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct WatchCreateRequest {
    /// The key, or the first key of the range.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// The end of the range, exclusive, as in [`super::RangeRequest::range_end`].
    #[prost(bytes = "bytes", tag = "2")]
    pub range_end: Bytes,
    /// Send events from this revision on (0: from the next one).
    #[prost(int64, tag = "3")]
    pub start_revision: i64,
    /// Send an empty response now and then when nothing happens.
    #[prost(bool, tag = "4")]
    pub progress_notify: bool,
    /// [`FilterType`]s.
    #[prost(enumeration = "FilterType", repeated, tag = "5")]
    pub filters: Vec<i32>,
    /// Send each event's previous key-value.
    #[prost(bool, tag = "6")]
    pub prev_kv: bool,
    /// The watcher's ID (0: the store picks one).
    #[prost(int64, tag = "7")]
    pub watch_id: i64,
    /// Split large event batches into fragments.
    #[prost(bool, tag = "8")]
    pub fragment: bool,
}

/// Cancels a watcher.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct WatchCancelRequest {
    /// The watcher's ID.
    #[prost(int64, tag = "1")]
    pub watch_id: i64,
}

/// Asks for a progress notification.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct WatchProgressRequest {}

/// One message of the server's side of a `Watch` stream.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct WatchResponse {
    /// The response header: the revision up to which the watcher has seen every event.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The watcher's ID.
    #[prost(int64, tag = "2")]
    pub watch_id: i64,
    /// The answer to a create.
    #[prost(bool, tag = "3")]
    pub created: bool,
    /// The watcher is gone (canceled, or its start revision was compacted).
    #[prost(bool, tag = "4")]
    pub canceled: bool,
    /// The compacted revision, when the watcher asked for history that is gone.
    #[prost(int64, tag = "5")]
    pub compact_revision: i64,
    /// Why the watcher was canceled.
    #[prost(string, tag = "6")]
    pub cancel_reason: String,
    /// More fragments of this batch follow.
    #[prost(bool, tag = "7")]
    pub fragment: bool,
    /// The events, in revision order.
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
}
