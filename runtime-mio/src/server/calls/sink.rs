//! Where the call table's answers go: the client port's gRPC/HTTP server in tallyd, a recorder
//! in the call table's tests.

use bytes::Bytes;

use crate::client::{CallError, CallId, GrpcServer, HttpRequestId, Status};

/// What the call table asks of the client port.
pub(in crate::server) trait CallSink {
    /// Queues one response message on a gRPC call.
    fn send_message(&mut self, call: CallId, message: Bytes) -> Result<(), CallError>;
    /// Ends a gRPC call with `status` after its queued messages.
    fn finish(&mut self, call: CallId, status: Status);
    /// Answers an HTTP/1.1 request whole.
    fn respond_http(&mut self, request: HttpRequestId, code: u16, content_type: &str, body: Bytes);
    /// Starts a chunked HTTP/1.1 answer.
    fn start_http_stream(&mut self, request: HttpRequestId, code: u16, content_type: &str);
    /// Queues one chunk of a chunked answer; false when its client is gone or too far behind.
    fn send_http_chunk(&mut self, request: HttpRequestId, data: &[u8]) -> bool;
    /// Ends a chunked answer.
    fn end_http_stream(&mut self, request: HttpRequestId);
}

impl CallSink for GrpcServer {
    fn send_message(&mut self, call: CallId, message: Bytes) -> Result<(), CallError> {
        GrpcServer::send_message(self, call, message)
    }

    fn finish(&mut self, call: CallId, status: Status) {
        GrpcServer::finish(self, call, status);
    }

    fn respond_http(&mut self, request: HttpRequestId, code: u16, content_type: &str, body: Bytes) {
        GrpcServer::respond_http(self, request, code, content_type, body);
    }

    fn start_http_stream(&mut self, request: HttpRequestId, code: u16, content_type: &str) {
        GrpcServer::start_http_stream(self, request, code, content_type);
    }

    fn send_http_chunk(&mut self, request: HttpRequestId, data: &[u8]) -> bool {
        GrpcServer::send_http_chunk(self, request, data)
    }

    fn end_http_stream(&mut self, request: HttpRequestId) {
        GrpcServer::end_http_stream(self, request);
    }
}
