//! etcd's v3 gRPC services: each takes the narrow context it needs (a struct of borrowed
//! parts the loop lends it for one call), decodes its request, routes it through Raft or to
//! the local store, and answers with etcd's headers, codes and messages.
//!
//! - [`methods`]: the one table of the calls tallyd serves, and their handlers;
//! - [`respond`]: response headers and the replies every context makes;
//! - [`status`]: the statuses calls end with;
//! - the services: `kv` and `lease` (one context), `watch`, `cluster` (with `reconfig`'s
//!   checks), `maintenance` (with `quota`'s alarms), `health`; `propose` is the write path.

mod cluster;
mod health;
mod kv;
mod lease;
mod maintenance;
pub(super) mod methods;
pub(super) mod propose;
mod quota;
pub(super) mod reconfig;
pub(super) mod respond;
pub(super) mod status;
mod watch;
mod watch_streams;

use prost::Message as _;
use tally_kvstore::proto;

pub(super) use cluster::{ClusterService, ConfAnswers};
pub(super) use health::HealthService;
pub(super) use kv::KvService;
pub(super) use maintenance::MaintenanceService;
pub(super) use propose::Proposer;
pub(super) use quota::Quota;
pub(super) use status::*;
pub(super) use watch::WatchService;
pub(super) use watch_streams::WatchStreams;

use super::calls::{CallKind, Method};

/// What a learner serves, as etcd 3.4's interceptor decides: Status, and serializable ranges
/// (its own, possibly stale, copy); every other call and every stream is refused. A request
/// that does not decode passes, to get the same unmarshalling error as on any member.
pub(super) fn learner_serves(kind: CallKind, message: &[u8]) -> bool {
    match kind {
        CallKind::Unary(Method::Status) => true,
        CallKind::Unary(Method::Range) => {
            proto::RangeRequest::decode(message).map_or(true, |request| request.serializable)
        }
        _ => false,
    }
}

/// What a member serves before it has joined its cluster: what reports its own state.
pub(super) fn serves_before_joining(kind: CallKind) -> bool {
    matches!(
        kind,
        CallKind::Unary(Method::Status) | CallKind::HealthCheck | CallKind::HealthWatch
    )
}
