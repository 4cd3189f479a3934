//! The call table: every client call that is open, what it is, and its answers on their way.
//!
//! It owns the client port's server (through [`CallSink`]) so that an answer and the table
//! change together: a unary call leaves the table with its answer, a streaming call with its
//! end, and messages that the client's flow control does not take yet wait here in a bounded
//! backlog ([`backlog`]). A call opened by the JSON gateway is answered as JSON
//! ([`GatewayCalls`]). Time plays no part here; the parts that wait for something (waiters,
//! reads, leader queries) keep their own deadlines.

mod backlog;
pub(super) mod kind;
pub(super) mod sink;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::gateway::answers::GatewayCalls;
use super::gateway::schema::Message as JsonShape;
use crate::client::{CallError, CallId, Code, GrpcServer, HttpRequestId, Status};
use backlog::{StreamBacklogs, status_backlog_exceeded};
pub(super) use kind::{CallKind, Method};
pub(super) use sink::CallSink;

/// Calls open at once at most. The client port's own limits (connections and streams per
/// connection) keep the table far below this; past it a call is refused as it opens.
pub(super) const CALLS_MAX: usize = 1 << 20;

/// The open client calls.
pub(super) struct Calls<S = GrpcServer> {
    sink: S,
    kinds: HashMap<CallId, CallKind>,
    /// Keep-alive streams whose client closed its side while answers were still pending.
    half_closed: HashSet<CallId>,
    gateway: GatewayCalls,
    /// Messages waiting for send capacity on streaming calls, bounded per call.
    outbound: StreamBacklogs,
    /// Calls that ended (answered, cancelled, half-closed, cut off) whose state elsewhere (a
    /// watch stream's watchers, a lock being waited for) is still to be let go of: at most one
    /// per call that was open, so `CALLS_MAX` bounds it.
    ended: Vec<(CallId, CallKind)>,
    /// [`CALLS_MAX`], lower in tests.
    calls_max: usize,
}

impl<S: CallSink> Calls<S> {
    pub(super) fn new(sink: S) -> Self {
        Calls {
            sink,
            kinds: HashMap::new(),
            half_closed: HashSet::new(),
            gateway: GatewayCalls::default(),
            outbound: StreamBacklogs::new(),
            ended: Vec::new(),
            calls_max: CALLS_MAX,
        }
    }

    /// A table with other limits, for its tests.
    #[cfg(test)]
    fn with_limits(sink: S, calls_max: usize, backlog_bytes_max: usize) -> Self {
        Calls {
            calls_max,
            outbound: StreamBacklogs::with_bytes_max(backlog_bytes_max),
            ..Calls::new(sink)
        }
    }

    /// The client port, for the loop to drive its sockets.
    pub(super) fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    pub(super) fn sink(&self) -> &S {
        &self.sink
    }

    /// Takes a call that opened as `kind`; refused (and ended) when the table is full.
    pub(super) fn open(&mut self, call: CallId, kind: CallKind) {
        if self.kinds.len() >= self.calls_max && !self.kinds.contains_key(&call) {
            return self.refuse(
                call,
                Status::new(Code::ResourceExhausted, "etcdserver: too many requests"),
            );
        }
        self.kinds.insert(call, kind);
    }

    /// Takes an HTTP request of the gateway as a call of `kind`, answered as `response`
    /// JSON; the call id it goes by.
    pub(super) fn open_gateway(
        &mut self,
        request: HttpRequestId,
        kind: CallKind,
        response: &'static JsonShape,
        token: Option<String>,
    ) -> CallId {
        let call = request.as_call_id();
        self.gateway.insert(request, response, token);
        self.open(call, kind);
        if !kind.is_unary() {
            self.sink
                .start_http_stream(request, 200, "application/json");
        }
        call
    }

    /// The auth token a gateway call's request carried.
    pub(super) fn gateway_token(&self, call: CallId) -> Option<&str> {
        self.gateway.token(call)
    }

    /// Whether a gateway call is still open (a unary one leaves with its answer).
    pub(super) fn gateway_open(&self, call: CallId) -> bool {
        self.gateway.contains(call)
    }

    /// Ends a call that never entered the table.
    pub(super) fn refuse(&mut self, call: CallId, status: Status) {
        self.sink.finish(call, status);
    }

    /// Answers a plain HTTP request (not a call).
    pub(super) fn respond_http(
        &mut self,
        request: HttpRequestId,
        code: u16,
        content_type: &str,
        body: Bytes,
    ) {
        self.sink.respond_http(request, code, content_type, body);
    }

    pub(super) fn kind(&self, call: CallId) -> Option<CallKind> {
        self.kinds.get(&call).copied()
    }

    pub(super) fn is_open(&self, call: CallId) -> bool {
        self.kinds.contains_key(&call)
    }

    /// Answers a unary call with its encoded response; the call leaves the table.
    pub(super) fn reply_encoded(&mut self, call: CallId, bytes: Bytes) {
        let streaming = self.kinds.get(&call).is_some_and(|kind| !kind.is_unary());
        if self
            .gateway
            .answer(&mut self.sink, call, Ok(&bytes), streaming)
        {
            self.remove(call);
            return;
        }
        let _ = self.sink.send_message(call, bytes);
        self.sink.finish(call, Status::ok());
        self.remove(call);
    }

    /// Ends a call with an error; it leaves the table with whatever waited for its client.
    pub(super) fn reply_error(&mut self, call: CallId, status: Status) {
        let streaming = self.kinds.get(&call).is_some_and(|kind| !kind.is_unary());
        if self
            .gateway
            .answer(&mut self.sink, call, Err(&status), streaming)
        {
            self.remove(call);
            return;
        }
        self.sink.finish(call, status);
        self.outbound.remove(call);
        self.remove(call);
    }

    /// Sends one message on a streaming call. A client whose backlog would pass its limit is
    /// cut off, with a status on which etcd's clients retry (a watch resumes where it was).
    pub(super) fn stream_encoded(&mut self, call: CallId, bytes: Bytes) {
        if self.gateway.stream(&mut self.sink, call, &bytes) {
            return;
        }
        if self.outbound.push(call, bytes).is_err() {
            self.close(call);
            self.sink.finish(call, status_backlog_exceeded());
            return;
        }
        self.flush_call(call);
    }

    /// Queues a snapshot download's chunk (a slice of the snapshot, held anyway).
    pub(super) fn stream_snapshot_chunk(&mut self, call: CallId, bytes: Bytes) {
        self.outbound.push_uncounted(call, bytes);
        self.flush_call(call);
    }

    /// Ends a snapshot download once every chunk has been handed to the connection.
    pub(super) fn finish_snapshot_if_sent(&mut self, call: CallId) {
        if self.kind(call) == Some(CallKind::Snapshot) && !self.outbound.contains(call) {
            self.sink.finish(call, Status::ok());
            self.remove(call);
        }
    }

    /// Hands `call`'s waiting messages to its connection, as far as its flow control takes.
    pub(super) fn flush_call(&mut self, call: CallId) {
        while let Some(queued) = self.outbound.pop(call) {
            match self.sink.send_message(call, queued.message.clone()) {
                Ok(()) => {}
                Err(CallError::Backpressure { .. }) => {
                    // `SendReady` resumes this call.
                    self.outbound.unpop(call, queued);
                    return;
                }
                // The call is gone (finished or cancelled): its messages have nowhere to go.
                Err(_) => break,
            }
        }
        self.outbound.remove(call);
    }

    /// The connection of `call` takes messages again.
    pub(super) fn on_send_ready(&mut self, call: CallId) {
        self.flush_call(call);
        self.finish_snapshot_if_sent(call);
    }

    /// Flushes every call with waiting messages.
    pub(super) fn flush_all(&mut self) {
        for call in self.outbound.calls() {
            self.on_send_ready(call);
        }
    }

    /// The client closed its side of `call`: a watch stream ends; a keep-alive stream ends
    /// once its pending keep-alives are answered ([`Calls::finish_keep_alive_if_done`]); a
    /// unary call waits for its answer.
    pub(super) fn half_close(&mut self, call: CallId) {
        match self.kind(call) {
            Some(CallKind::Watch) => {
                self.close(call);
                self.sink.finish(call, Status::ok());
            }
            // Keep-alives still travelling through Raft are answered before the stream ends.
            Some(CallKind::LeaseKeepAlive) => {
                self.half_closed.insert(call);
            }
            _ => {}
        }
    }

    /// Ends a keep-alive stream whose client has closed its side, once nothing is `pending`.
    pub(super) fn finish_keep_alive_if_done(&mut self, call: CallId, pending: bool) {
        if pending || !self.half_closed.contains(&call) {
            return;
        }
        self.half_closed.remove(&call);
        self.flush_call(call);
        self.outbound.remove(call);
        self.remove(call);
        self.sink.finish(call, Status::ok());
    }

    /// Forgets a call its client cancelled (or the table ended). What it holds elsewhere is
    /// left to let go of ([`Calls::poll_ended`]).
    pub(super) fn close(&mut self, call: CallId) {
        self.gateway.remove(call);
        self.half_closed.remove(&call);
        self.outbound.remove(call);
        self.remove(call);
    }

    /// Takes `call` out of the table; what it holds elsewhere is left to let go of.
    fn remove(&mut self, call: CallId) {
        if let Some(kind) = self.kinds.remove(&call) {
            if kind.holds_state_elsewhere() {
                self.ended.push((call, kind));
            }
        }
    }

    /// A call that ended, and what it was: its owner must let go of what it holds (a watch
    /// stream's watchers, a lock or campaign being waited for, an observer).
    #[must_use]
    pub(super) fn poll_ended(&mut self) -> Option<(CallId, CallKind)> {
        self.ended.pop()
    }
}
