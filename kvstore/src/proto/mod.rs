//! etcd's v3 wire types, written by hand as prost messages with etcd's field numbers.
//!
//! Message names follow etcd's `etcdserverpb` and `mvccpb` packages, in Rust's case
//! (`HashKVRequest` is [`HashKvRequest`]); field names are etcd's in snake case (`ID` is `id`).

mod internal;
mod kv;
mod rpc_cluster;
mod rpc_kv;
mod rpc_lease;
mod rpc_maintenance;
mod rpc_watch;

pub use internal::{InternalRequest, internal_request};
pub use kv::{Event, EventType, KeyValue};
pub use rpc_cluster::*;
pub use rpc_kv::*;
pub use rpc_lease::*;
pub use rpc_maintenance::*;
pub use rpc_watch::*;
