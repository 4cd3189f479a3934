//! The gateway's side of the call table: which calls are HTTP/JSON requests, and their
//! answers written as etcd's gateway writes them (the response message as JSON, or
//! `{"error":…,"message":…,"code":…}` under grpc-gateway's HTTP status for the gRPC code).

use std::collections::HashMap;

use bytes::Bytes;

use super::json;
use super::schema::Message;
use crate::client::{CallId, Code as GrpcCode, HttpRequestId, Status};
use crate::server::calls::sink::CallSink;

/// A gateway request waiting for its handler's answer, or a stream feeding one.
#[derive(Debug, Clone)]
struct GatewayCall {
    request: HttpRequestId,
    response: &'static Message,
    /// The request's `Authorization` header: an auth token.
    token: Option<String>,
}

/// The open gateway calls, under the call ids their requests carry
/// ([`HttpRequestId::as_call_id`]). At most one per open HTTP connection, so the client
/// port's `connections_max` bounds it.
#[derive(Debug, Default)]
pub(in crate::server) struct GatewayCalls {
    by_call: HashMap<CallId, GatewayCall>,
}

pub(in crate::server) const JSON: &str = "application/json";

impl GatewayCalls {
    /// Takes `request` as a call whose answer is a `response` message.
    pub(in crate::server) fn insert(
        &mut self,
        request: HttpRequestId,
        response: &'static Message,
        token: Option<String>,
    ) {
        let call = request.as_call_id();
        let gateway = GatewayCall {
            request,
            response,
            token,
        };
        self.by_call.insert(call, gateway);
    }

    /// The auth token `call`'s request carried.
    pub(in crate::server) fn token(&self, call: CallId) -> Option<&str> {
        self.by_call.get(&call)?.token.as_deref()
    }

    pub(in crate::server) fn contains(&self, call: CallId) -> bool {
        !self.by_call.is_empty() && self.by_call.contains_key(&call)
    }

    /// A gateway stream's client left: forget the call.
    pub(in crate::server) fn remove(&mut self, call: CallId) {
        if !self.by_call.is_empty() {
            self.by_call.remove(&call);
        }
    }

    /// Sends one message of a gateway stream (true), or leaves `call` to gRPC (false). A
    /// client too far behind is cut off by the server, and `Cancelled` follows.
    pub(in crate::server) fn stream(
        &self,
        sink: &mut impl CallSink,
        call: CallId,
        wire: &[u8],
    ) -> bool {
        if self.by_call.is_empty() {
            return false; // the usual case, on every watch event: no lookup
        }
        let Some(gateway) = self.by_call.get(&call) else {
            return false;
        };
        match json::to_json(gateway.response, wire) {
            Ok(text) => {
                let line = format!("{{\"result\":{text}}}\n");
                let _ = sink.send_http_chunk(gateway.request, line.as_bytes());
            }
            Err(e) => eprintln!("tallyd: gateway: could not write a message as JSON: {e}"),
        }
        true
    }

    /// Answers `call` if it is a gateway request (true), with `result`: the encoded response
    /// message or the call's error. A `streaming` call's head went out already.
    pub(in crate::server) fn answer(
        &mut self,
        sink: &mut impl CallSink,
        call: CallId,
        result: Result<&[u8], &Status>,
        streaming: bool,
    ) -> bool {
        if self.by_call.is_empty() {
            return false; // the usual case, on every gRPC reply: no lookup
        }
        let Some(gateway) = self.by_call.remove(&call) else {
            return false;
        };
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
            let _ = sink.send_http_chunk(gateway.request, &line);
            sink.end_http_stream(gateway.request);
        } else {
            sink.respond_http(gateway.request, code, JSON, body);
        }
        true
    }
}

/// grpc-gateway's HTTP status for a gRPC code (as etcd 3.4's gateway answers).
pub(in crate::server) fn http_status(code: GrpcCode) -> u16 {
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
pub(in crate::server) fn error_body(status: &Status) -> Bytes {
    let message = serde_json::to_string(status.message()).expect("a string serializes");
    Bytes::from(format!(
        "{{\"error\":{message},\"message\":{message},\"code\":{}}}",
        status.code().as_u32()
    ))
}
