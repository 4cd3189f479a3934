//! What the server hands the application, and the bounded queue it waits in.

use std::collections::VecDeque;

use bytes::Bytes;

/// One gRPC call (one HTTP/2 stream). Stays unique for the server's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(u64);

/// One HTTP/1.1 request waiting for [`super::GrpcServer::respond_http`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpRequestId(u64);

/// Ids carry their connection's slot in the high bits, so finding a call needs no map.
const SEQ_BITS: u32 = 40;

pub(crate) fn slot_of(raw: u64) -> usize {
    usize::try_from(raw >> SEQ_BITS).unwrap_or(usize::MAX)
}

impl CallId {
    pub(crate) fn raw(self) -> u64 {
        self.0
    }

    pub(crate) fn slot(self) -> usize {
        slot_of(self.0)
    }

    /// An id for tests of the layers above, which never reaches a server.
    #[cfg(test)]
    pub(crate) fn for_tests(raw: u64) -> Self {
        CallId(raw)
    }
}

impl HttpRequestId {
    pub(crate) fn raw(self) -> u64 {
        self.0
    }

    pub(crate) fn slot(self) -> usize {
        slot_of(self.0)
    }

    /// An id for tests of the layers above, which never reaches a server.
    #[cfg(test)]
    pub(crate) fn for_tests(raw: u64) -> Self {
        HttpRequestId(raw)
    }

    /// An id for the application's call tables (e.g. a gateway request handled like a unary
    /// call): ids come from one sequence, so it never equals a real call's. The server knows
    /// no such call: `send_message` and `finish` on it do nothing.
    pub fn as_call_id(self) -> CallId {
        CallId(self.0)
    }
}

/// What happened on the client port. Events for a call come in order: `Opened`, any number of
/// `Message`s, then `HalfClosed` and/or `Cancelled`. Events of a call the application has
/// finished may still be queued: ignore events for calls it no longer knows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallEvent {
    /// A new call to `path`, e.g. `/etcdserverpb.KV/Range`. Unknown paths are surfaced too;
    /// the application finishes them with `Code::Unimplemented`.
    Opened { call: CallId, path: String },
    /// One request message, prefix stripped.
    Message { call: CallId, message: Bytes },
    /// The client sent END_STREAM: no more messages will come.
    HalfClosed { call: CallId },
    /// The call ended without the application finishing it: the client reset it, the
    /// connection is gone, or the server refused a malformed or oversized message (and answered
    /// it). Drop any state for it; `send_message`/`finish` on it are ignored.
    Cancelled { call: CallId },
    /// The call's send queue, full when `send_message` returned `Backpressure`, drained.
    SendReady { call: CallId },
    /// An HTTP/1.1 request (e.g. `GET /health`); answer it with `respond_http`.
    Http {
        request: HttpRequestId,
        method: String,
        path: String,
        /// As Content-Length said; at most `http1_body_bytes_max`.
        body: Bytes,
        /// The auth token the request carries: its `Authorization` (or `Token`) header, as
        /// etcd's gateway takes it.
        token: Option<String>,
    },
}

/// The bounded event queue and the counters shared by all connections.
#[derive(Debug)]
pub(crate) struct Events {
    queue: VecDeque<CallEvent>,
    message_bytes: usize,
    events_max: usize,
    message_bytes_max: usize,
    next_seq: u64,
    /// Calls opened and not yet finished by the application or cancelled.
    pub(crate) live_calls: usize,
    /// Connections that stopped reading because the queue was full.
    pub(crate) stalled: Vec<usize>,
}

impl Events {
    pub(crate) fn new(events_max: usize, message_bytes_max: usize) -> Events {
        Events {
            queue: VecDeque::new(),
            message_bytes: 0,
            events_max,
            message_bytes_max,
            next_seq: 0,
            live_calls: 0,
            stalled: Vec::new(),
        }
    }

    /// Whether connections may read more requests. Control events (half-close, cancel) are
    /// queued regardless: they are bounded by the number of calls.
    pub(crate) fn has_room(&self) -> bool {
        self.queue.len() < self.events_max && self.message_bytes < self.message_bytes_max
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn push(&mut self, event: CallEvent) {
        if let CallEvent::Message { message, .. } = &event {
            self.message_bytes += message.len();
        }
        self.queue.push_back(event);
    }

    pub(crate) fn pop(&mut self) -> Option<CallEvent> {
        let event = self.queue.pop_front()?;
        if let CallEvent::Message { message, .. } = &event {
            self.message_bytes -= message.len();
        }
        Some(event)
    }

    fn next_raw(&mut self, slot: usize) -> u64 {
        self.next_seq = (self.next_seq + 1) & ((1 << SEQ_BITS) - 1);
        (u64::try_from(slot).unwrap_or(0) << SEQ_BITS) | self.next_seq
    }

    pub(crate) fn next_call(&mut self, slot: usize) -> CallId {
        CallId(self.next_raw(slot))
    }

    pub(crate) fn next_http(&mut self, slot: usize) -> HttpRequestId {
        HttpRequestId(self.next_raw(slot))
    }
}
