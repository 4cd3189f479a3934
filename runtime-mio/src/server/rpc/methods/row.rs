//! A row of the method table, and what builds one: the handler kinds (one per service
//! context), the row's fields, and the macros and helpers the row files use.

use super::super::cluster::ClusterService;
use super::super::health::HealthService;
use super::super::kv::KvService;
use super::super::maintenance::MaintenanceService;
use super::super::respond::HasHeader;
#[cfg(test)]
use super::super::respond::HeaderFill;
use super::super::watch::WatchService;
use crate::client::CallId;
use crate::server::auth::AuthService;
use crate::server::calls::{CallKind, Method};
use crate::server::coordination::CoordinationService;
use crate::server::gateway::schema::Message as JsonShape;
use crate::server::leader_query::LeaderQueryService;

/// What a handler returns: an error only for a message that does not decode.
type Handled = Result<(), prost::DecodeError>;

/// Decodes a call's message and handles it, on the context of its service: the dispatcher
/// lends each handler only the parts its service needs.
#[derive(Clone, Copy)]
pub(in crate::server) enum Handler {
    Kv(fn(&mut KvService<'_>, CallId, &[u8]) -> Handled),
    Watch(fn(&mut WatchService<'_>, CallId, &[u8]) -> Handled),
    Cluster(fn(&mut ClusterService<'_>, CallId, &[u8]) -> Handled),
    Maintenance(fn(&mut MaintenanceService<'_>, CallId, &[u8]) -> Handled),
    /// Calls a follower puts to the leader (`server::leader_query`).
    LeaderQuery(fn(&mut LeaderQueryService<'_>, CallId, &[u8]) -> Handled),
    Health(fn(&mut HealthService<'_>, CallId, &[u8]) -> Handled),
    /// The Lock and Election services (`server::coordination`).
    Coordination(fn(&mut CoordinationService<'_>, CallId, &[u8]) -> Handled),
    /// The Auth service (`server::auth`).
    Auth(fn(&mut AuthService<'_>, CallId, &[u8]) -> Handled),
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let service = match self {
            Handler::Kv(_) => "Kv",
            Handler::Watch(_) => "Watch",
            Handler::Cluster(_) => "Cluster",
            Handler::Maintenance(_) => "Maintenance",
            Handler::LeaderQuery(_) => "LeaderQuery",
            Handler::Health(_) => "Health",
            Handler::Coordination(_) => "Coordination",
            Handler::Auth(_) => "Auth",
        };
        write!(f, "Handler::{service}")
    }
}

/// One call tallyd serves.
#[derive(Debug)]
pub(in crate::server) struct MethodRow {
    pub(super) kind: CallKind,
    pub(super) grpc_path: &'static str,
    /// Paths after the gateway's `/v3/` (or `/v3beta/`); none when the gateway does not serve it.
    pub(super) gateway_paths: &'static [&'static str],
    /// The request's and the response's JSON shapes, for the gateway.
    pub(super) json: Option<(&'static JsonShape, &'static JsonShape)>,
    /// The prost types, named for the test that checks the JSON shapes against them.
    #[cfg(test)]
    pub(super) request_type: fn() -> &'static str,
    #[cfg(test)]
    pub(super) response_type: fn() -> &'static str,
    /// What etcd puts in the response's header, as the response type says (`HasHeader`).
    #[cfg(test)]
    pub(super) header: HeaderFill,
    pub(super) handler: Handler,
}

impl MethodRow {
    pub(in crate::server) fn kind(&self) -> CallKind {
        self.kind
    }

    /// The request's and response's JSON shapes, for a call the gateway serves.
    pub(in crate::server) fn json(&self) -> Option<(&'static JsonShape, &'static JsonShape)> {
        self.json
    }

    pub(in crate::server) fn handler(&self) -> Handler {
        self.handler
    }
}

/// A row whose response carries the header `Resp` says etcd fills. The types name the row's
/// messages; only the tests read their names back.
#[cfg_attr(not(test), allow(clippy::extra_unused_type_parameters))]
pub(super) const fn row<Req: prost::Message, Resp: HasHeader>(
    kind: CallKind,
    grpc_path: &'static str,
    gateway_paths: &'static [&'static str],
    json: Option<(&'static JsonShape, &'static JsonShape)>,
    handler: Handler,
) -> MethodRow {
    MethodRow {
        kind,
        grpc_path,
        gateway_paths,
        json,
        #[cfg(test)]
        request_type: std::any::type_name::<Req>,
        #[cfg(test)]
        response_type: std::any::type_name::<Resp>,
        #[cfg(test)]
        header: Resp::FILL,
        handler,
    }
}

/// A row of a service other than etcd's (gRPC health), whose responses have no header.
#[cfg_attr(not(test), allow(clippy::extra_unused_type_parameters))]
pub(super) const fn headerless<Req: prost::Message, Resp: prost::Message>(
    kind: CallKind,
    grpc_path: &'static str,
    handler: Handler,
) -> MethodRow {
    MethodRow {
        kind,
        grpc_path,
        gateway_paths: &[],
        json: None,
        #[cfg(test)]
        request_type: std::any::type_name::<Req>,
        #[cfg(test)]
        response_type: std::any::type_name::<Resp>,
        #[cfg(test)]
        header: HeaderFill::Absent,
        handler,
    }
}

/// A request that goes through Raft to the store as it came.
macro_rules! proposed {
    ($variant:ident, $request:ident) => {
        Handler::Kv(|service, call, message| {
            let request = Internal::$variant(proto::$request::decode(message)?);
            service.writes.propose_kv(call, request);
            Ok(())
        })
    };
}

/// A request handled by `$service`'s `$handler(call, request)`.
macro_rules! handled {
    ($service:ident, $handler:ident, $request:ident) => {
        Handler::$service(|service, call, message| {
            service.$handler(call, proto::$request::decode(message)?);
            Ok(())
        })
    };
}

pub(super) const fn unary(method: Method) -> CallKind {
    CallKind::Unary(method)
}

pub(super) const fn shapes(
    request: &'static JsonShape,
    response: &'static JsonShape,
) -> Option<(&'static JsonShape, &'static JsonShape)> {
    Some((request, response))
}

pub(super) use {handled, proposed};
