//! etcd's HTTP/JSON gateway on the client port: `POST /v3/kv/put` with a JSON body, as
//! `curl` users and HTTP-only tools call etcd (etcd's grpc-gateway; `/v3beta/` too).
//!
//! A gateway request becomes a unary call of the gRPC service: its JSON is transcoded to the
//! request message (`json`, by the shapes in `schema`), handed to the same handler under a
//! call id that only this table knows ([`crate::client::HttpRequestId::as_call_id`]), and the
//! handler's reply or error comes back here instead of going to a gRPC stream
//! (`answers`). Answers are etcd's: the response message as JSON, or
//! `{"error":…,"message":…,"code":…}` with grpc-gateway's HTTP status for the gRPC code.
//!
//! Watch and LeaseKeepAlive stream as etcd's do: the body holds the requests (JSON objects one
//! after another, e.g. two `create_request`s), and the answer is a chunked stream of
//! `{"result":…}` lines, open until the client hangs up. Not served: Snapshot (etcd streams
//! the file as JSON chunks; use gRPC): 501 with a JSON error. A request's `Authorization`
//! header is its auth token, as on etcd's gateway. The table holds at most one call per open
//! HTTP connection (`connections_max`).

pub(super) mod answers;
mod json;
pub(super) mod schema;
pub(super) mod schema_auth;
pub(super) mod schema_coordination;

use bytes::Bytes;

use super::calls::kind::CallKind;
use super::rpc::methods;
use crate::client::{Code as GrpcCode, Status};
use answers::{JSON, error_body};
use schema::Message;

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
    if let Some(row) = methods::by_gateway_path(rest) {
        if let Some((request, response)) = row.json() {
            return Some(Route::Call {
                kind: row.kind(),
                request,
                response,
            });
        }
    }
    match rest {
        "maintenance/snapshot" => Some(Route::Unserved(
            "tallyd's JSON gateway does not send snapshots: use gRPC",
        )),
        _ => None,
    }
}

/// What becomes of an HTTP request on the client port.
#[derive(Debug)]
pub(super) enum Accepted {
    /// Not a gateway path: the plain HTTP endpoints (`/health`, `/metrics`, ...) serve it.
    NotGateway,
    /// Answered at once (a wrong HTTP method, an unserved call, a body that does not read).
    Answer {
        code: u16,
        content_type: &'static str,
        body: Bytes,
    },
    /// A call of the method table: its request messages, to dispatch one after another while
    /// the call stays open; its answers are written as `response`.
    Call {
        kind: CallKind,
        response: &'static Message,
        messages: Vec<Vec<u8>>,
    },
}

impl Accepted {
    fn refused(code: u16, status: &Status) -> Self {
        Accepted::Answer {
            code,
            content_type: JSON,
            body: error_body(status),
        }
    }
}

/// Reads a request on `path`: for a gateway call, its JSON body transcoded to the request
/// messages (several for a stream: JSON objects one after another).
pub(super) fn accept(method: &str, path: &str, body: &[u8]) -> Accepted {
    let Some(route) = route(path) else {
        return Accepted::NotGateway;
    };
    if method != "POST" {
        return Accepted::Answer {
            code: 405,
            content_type: "text/plain",
            body: Bytes::from_static(b"Method Not Allowed\n"),
        };
    }
    let (kind, request, response) = match route {
        Route::Call {
            kind,
            request,
            response,
        } => (kind, request, response),
        Route::Unserved(why) => {
            return Accepted::refused(501, &Status::new(GrpcCode::Unimplemented, why));
        }
    };
    let messages = if kind.is_unary() {
        json::to_proto(request, body).map(|message| vec![message])
    } else {
        json::to_protos(request, body)
    };
    match messages {
        Ok(messages) => Accepted::Call {
            kind,
            response,
            messages,
        },
        Err(e) => Accepted::refused(400, &Status::new(GrpcCode::InvalidArgument, e.to_string())),
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
