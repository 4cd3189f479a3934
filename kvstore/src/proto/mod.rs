//! etcd's v3 wire types, written by hand as prost messages with etcd's field numbers.
//!
//! Message names follow etcd's `etcdserverpb`, `mvccpb`, `v3lockpb` and `v3electionpb` packages, in Rust's case
//! (`HashKVRequest` is [`HashKvRequest`]); field names are etcd's in snake case (`ID` is `id`).

mod internal;
mod kv;
mod rpc_auth;
mod rpc_cluster;
mod rpc_kv;
mod rpc_lease;
mod rpc_maintenance;
mod rpc_watch;
mod v3election;
mod v3lock;

pub use internal::{InternalRequest, RequestHeader, internal_request};
pub use kv::{Event, EventType, KeyValue};
pub use rpc_auth::*;
pub use rpc_cluster::*;
pub use rpc_kv::*;
pub use rpc_lease::*;
pub use rpc_maintenance::*;
pub use rpc_watch::*;
pub use v3election::*;
pub use v3lock::*;
