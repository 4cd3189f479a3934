//! etcd's HTTP/JSON gateway on the client port: `POST /v3/kv/put` with a JSON body, as
//! `curl` users and HTTP-only tools call etcd (etcd's grpc-gateway; `/v3beta/` too).
//!
//! A gateway request becomes a unary call of the gRPC service: its JSON is transcoded to the
//! request message (`json`, by the shapes in `schema`), handed to the same handler under a
//! call id that only this table knows ([`crate::client::HttpRequestId::as_call_id`]), and the
//! handler's reply or error comes back here instead of going to a gRPC stream
//! ([`Server::answer_gateway`]). Answers are etcd's: the response message as JSON, or
//! `{"error":…,"message":…,"code":…}` with grpc-gateway's HTTP status for the gRPC code.
//!
//! Watch and LeaseKeepAlive stream as etcd's do: the body holds the requests (JSON objects one
//! after another, e.g. two `create_request`s), and the answer is a chunked stream of
//! `{"result":…}` lines, open until the client hangs up. Not served:
//! Snapshot (etcd streams the file as JSON chunks; use gRPC) and the Auth service, which
//! tallyd does not have: 501 with a JSON error. The table holds at most one call per open
//! HTTP connection (`connections_max`).

mod json;
pub(super) mod schema;

use std::collections::HashMap;

use bytes::Bytes;

use super::event_loop::Server;
use super::rpc::CallKind;
use super::rpc::methods;
use crate::client::{CallId, Code as GrpcCode, HttpRequestId, Status};
use schema::Message;

/// A gateway request waiting for its handler's answer, or a stream feeding one (whether it
/// streams is its `CallKind` in the server's call table).
#[derive(Debug, Clone, Copy)]
pub(super) struct GatewayCall {
    request: HttpRequestId,
    response: &'static Message,
}

pub(super) type GatewayCalls = HashMap<CallId, GatewayCall>;

/// What a gateway path serves.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// A call of the method table, with its request's and response's JSON shapes.
    Call {
        kind: CallKind,
        request: &'static Message,
        response: &'static Message,
    },
    /// A call etcd serves here that tallyd's gateway does not.
    Unserved(&'static str),
}

fn route(path: &str) -> Option<Route> {
    let rest = path
        .strip_prefix("/v3/")
        .or_else(|| path.strip_prefix("/v3beta/"))?;
    if let Some((request, response)) = methods::by_gateway_path(rest).and_then(|m| m.json()) {
        let kind = methods::by_gateway_path(rest).expect("just found").kind();
        return Some(Route::Call {
            kind,
            request,
            response,
        });
    }
    match rest {
        "maintenance/snapshot" => Some(Route::Unserved(
            "tallyd's JSON gateway does not send snapshots: use gRPC",
        )),
        _ if rest.starts_with("auth/") => Some(Route::Unserved(
            "etcdserver: the Auth service is not implemented by tallyd",
        )),
        _ => None,
    }
}

/// grpc-gateway's HTTP status for a gRPC code (as etcd 3.4's gateway answers).
fn http_status(code: GrpcCode) -> u16 {
    match code {
        GrpcCode::Ok => 200,
        GrpcCode::Cancelled => 408,
        GrpcCode::InvalidArgument | GrpcCode::OutOfRange => 400,
        GrpcCode::DeadlineExceeded => 504,
        GrpcCode::NotFound => 404,
        GrpcCode::AlreadyExists | GrpcCode::Aborted => 409,
        GrpcCode::PermissionDenied => 403,
        GrpcCode::Unauthenticated => 401,
        GrpcCode::ResourceExhausted => 429,
        GrpcCode::FailedPrecondition => 412,
        GrpcCode::Unimplemented => 501,
        GrpcCode::Unavailable => 503,
        GrpcCode::Unknown | GrpcCode::Internal | GrpcCode::DataLoss => 500,
    }
}

/// etcd's gateway error body.
fn error_body(status: &Status) -> Bytes {
    let message = serde_json::to_string(status.message()).expect("a string serializes");
    Bytes::from(format!(
        "{{\"error\":{message},\"message\":{message},\"code\":{}}}",
        status.code().as_u32()
    ))
}

const JSON: &str = "application/json";

impl Server {
    /// Serves `path` if it is the gateway's, answering now or once the call is done; false
    /// leaves the request to the plain HTTP endpoints.
    pub(super) fn gateway_request(
        &mut self,
        request: HttpRequestId,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> bool {
        let Some(route) = route(path) else {
            return false;
        };
        if method != "POST" {
            let body = Bytes::from_static(b"Method Not Allowed\n");
            self.clients.respond_http(request, 405, "text/plain", body);
            return true;
        }
        let (kind, request_shape, response) = match route {
            Route::Call {
                kind,
                request,
                response,
            } => (kind, request, response),
            Route::Unserved(why) => {
                let refused = Status::new(GrpcCode::Unimplemented, why);
                self.clients
                    .respond_http(request, 501, JSON, error_body(&refused));
                return true;
            }
        };
        let streaming = !matches!(kind, CallKind::Unary(_));
        let messages = if streaming {
            json::to_protos(request_shape, body)
        } else {
            json::to_proto(request_shape, body).map(|message| vec![message])
        };
        let messages = match messages {
            Ok(messages) => messages,
            Err(e) => {
                let refused = Status::new(GrpcCode::InvalidArgument, e.to_string());
                self.clients
                    .respond_http(request, 400, JSON, error_body(&refused));
                return true;
            }
        };
        let call = request.as_call_id();
        self.gateway_calls
            .insert(call, GatewayCall { request, response });
        self.calls.insert(call, kind);
        if streaming {
            self.clients.start_http_stream(request, 200, JSON);
        }
        for message in messages {
            // A unary call answered (or a stream that failed) leaves the table: stop there.
            if !self.gateway_calls.contains_key(&call) {
                break;
            }
            self.handle_message(call, Bytes::from(message));
        }
        true
    }

    /// Sends one message of a gateway stream (true), or leaves `call` to gRPC (false). A
    /// client too far behind is cut off by the server, and `Cancelled` follows.
    pub(super) fn stream_gateway(&mut self, call: CallId, wire: &[u8]) -> bool {
        if self.gateway_calls.is_empty() {
            return false; // the usual case, on every watch event: no lookup
        }
        let Some(gateway) = self.gateway_calls.get(&call).copied() else {
            return false;
        };
        match json::to_json(gateway.response, wire) {
            Ok(text) => {
                let line = format!("{{\"result\":{text}}}\n");
                let _ = self
                    .clients
                    .send_http_chunk(gateway.request, line.as_bytes());
            }
            Err(e) => eprintln!("tallyd: gateway: could not write a message as JSON: {e}"),
        }
        true
    }

    /// A gateway stream's client left: forget the call.
    pub(super) fn forget_gateway(&mut self, call: CallId) {
        self.gateway_calls.remove(&call);
    }

    /// Answers `call` if it is a gateway request (true), with `result`: the encoded response
    /// message or the call's error.
    pub(super) fn answer_gateway(&mut self, call: CallId, result: Result<&[u8], &Status>) -> bool {
        if self.gateway_calls.is_empty() {
            return false; // the usual case, on every gRPC reply: no lookup
        }
        let Some(gateway) = self.gateway_calls.remove(&call) else {
            return false;
        };
        let streaming = !matches!(self.calls.remove(&call), Some(CallKind::Unary(_)));
        let (code, body) = match result.map(|wire| json::to_json(gateway.response, wire)) {
            Ok(Ok(text)) => (200, Bytes::from(text)),
            Ok(Err(e)) => {
                eprintln!("tallyd: gateway: could not write a response as JSON: {e}");
                let failed = Status::new(GrpcCode::Internal, e.to_string());
                (500, error_body(&failed))
            }
            Err(status) => (http_status(status.code()), error_body(status)),
        };
        if streaming {
            // The head went out with 200: etcd's gateway puts the error in the stream too.
            let mut line = body.to_vec();
            line.push(b'\n');
            let _ = self.clients.send_http_chunk(gateway.request, &line);
            self.clients.end_http_stream(gateway.request);
        } else {
            self.clients.respond_http(gateway.request, code, JSON, body);
        }
        true
    }
}

/// Every shape the gateway reads or writes, for the fuzzer to pick from.
static SHAPES: [&Message; 24] = {
    use schema::*;
    [
        &RANGE_REQUEST,
        &RANGE_RESPONSE,
        &PUT_REQUEST,
        &PUT_RESPONSE,
        &DELETE_RANGE_REQUEST,
        &DELETE_RANGE_RESPONSE,
        &TXN_REQUEST,
        &TXN_RESPONSE,
        &COMPACTION_REQUEST,
        &LEASE_GRANT_REQUEST,
        &LEASE_GRANT_RESPONSE,
        &LEASE_TIME_TO_LIVE_REQUEST,
        &LEASE_TIME_TO_LIVE_RESPONSE,
        &LEASE_LEASES_RESPONSE,
        &MEMBER_ADD_REQUEST,
        &MEMBER_ADD_RESPONSE,
        &MEMBERS_RESPONSE,
        &ALARM_REQUEST,
        &ALARM_RESPONSE,
        &STATUS_RESPONSE,
        &HASH_KV_RESPONSE,
        &WATCH_REQUEST,
        &WATCH_RESPONSE,
        &LEASE_KEEP_ALIVE_RESPONSE,
    ]
};

/// Fuzzing entry (`fuzz/fuzz_targets/gateway_json.rs`). The first byte picks a message shape;
/// the rest is a request body and also wire bytes. Nothing may panic, and each direction must
/// take back what the other gives: JSON read into wire bytes writes back out as JSON that
/// reads again, and wire bytes written as JSON read back.
pub fn fuzz_gateway_json(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let shape = SHAPES[usize::from(selector) % SHAPES.len()];
    if let Ok(wire) = json::to_proto(shape, rest) {
        let text = json::to_json(shape, &wire).expect("wire bytes we wrote write as JSON");
        json::to_proto(shape, text.as_bytes()).expect("JSON we wrote reads back");
    }
    if let Ok(text) = json::to_json(shape, rest) {
        json::to_proto(shape, text.as_bytes()).expect("JSON we wrote reads back");
    }
    let _ = json::to_protos(shape, rest);
}

#[cfg(test)]
mod tests;
