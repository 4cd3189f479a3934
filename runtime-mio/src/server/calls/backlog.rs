//! Messages for streaming calls that the client's HTTP/2 flow control does not take yet: a
//! watch stream's events, a keep-alive stream's answers, a snapshot download's chunks.
//!
//! A client that reads slowly (or not at all) would otherwise make its backlog grow without
//! bound while the store keeps changing. Each call's backlog is bounded by
//! [`STREAM_BACKLOG_BYTES_MAX`]; a message that would pass it is refused, and the caller ends
//! that call with [`status_backlog_exceeded`] (UNAVAILABLE, so etcd's clients retry: a watch
//! resumes from the last revision it saw, and nothing is lost). A snapshot download is queued
//! whole at once as slices of one buffer the member holds anyway; its chunks are not counted.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::client::{CallId, Code, Status};

/// Bytes one call may have waiting for its client at most.
pub(super) const STREAM_BACKLOG_BYTES_MAX: usize = 64 << 20;

/// The status that ends a call whose backlog passed [`STREAM_BACKLOG_BYTES_MAX`].
pub(super) fn status_backlog_exceeded() -> Status {
    Status::new(
        Code::Unavailable,
        "etcdserver: the client reads its stream too slowly: more than 64 MiB wait for it",
    )
}

/// A message was refused: the call's backlog would pass its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BacklogExceeded;

/// One waiting message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Queued {
    pub(super) message: Bytes,
    /// Whether it counts against the limit (a snapshot chunk does not).
    counted: bool,
}

#[derive(Debug, Default)]
struct Backlog {
    queued: VecDeque<Queued>,
    /// Bytes counted against the limit.
    counted_bytes: usize,
}

impl Backlog {
    fn push_back(&mut self, queued: Queued) {
        if queued.counted {
            self.counted_bytes += queued.message.len();
        }
        self.queued.push_back(queued);
    }
}

/// The backlogs of every streaming call that has one.
#[derive(Debug)]
pub(super) struct StreamBacklogs {
    by_call: HashMap<CallId, Backlog>,
    bytes_max: usize,
}

impl StreamBacklogs {
    pub(super) fn new() -> Self {
        Self::with_bytes_max(STREAM_BACKLOG_BYTES_MAX)
    }

    pub(super) fn with_bytes_max(bytes_max: usize) -> Self {
        StreamBacklogs {
            by_call: HashMap::new(),
            bytes_max,
        }
    }

    /// Queues `message` behind `call`'s backlog; refused when the backlog would pass its limit.
    pub(super) fn push(&mut self, call: CallId, message: Bytes) -> Result<(), BacklogExceeded> {
        let backlog = self.by_call.entry(call).or_default();
        if backlog.counted_bytes + message.len() > self.bytes_max {
            return Err(BacklogExceeded);
        }
        backlog.push_back(Queued {
            message,
            counted: true,
        });
        Ok(())
    }

    /// Queues a snapshot chunk: a slice of a buffer held anyway, not counted.
    pub(super) fn push_uncounted(&mut self, call: CallId, message: Bytes) {
        self.by_call.entry(call).or_default().push_back(Queued {
            message,
            counted: false,
        });
    }

    /// The next message of `call`'s backlog.
    pub(super) fn pop(&mut self, call: CallId) -> Option<Queued> {
        let backlog = self.by_call.get_mut(&call)?;
        let queued = backlog.queued.pop_front()?;
        if queued.counted {
            backlog.counted_bytes -= queued.message.len();
        }
        Some(queued)
    }

    /// Puts back, at the front, the message [`Self::pop`] gave and the connection did not take.
    pub(super) fn unpop(&mut self, call: CallId, queued: Queued) {
        let backlog = self.by_call.entry(call).or_default();
        if queued.counted {
            backlog.counted_bytes += queued.message.len();
        }
        backlog.queued.push_front(queued);
    }

    /// Forgets `call`'s backlog.
    pub(super) fn remove(&mut self, call: CallId) {
        self.by_call.remove(&call);
    }

    /// Whether `call` has a backlog (the caller removes one it has flushed).
    pub(super) fn contains(&self, call: CallId) -> bool {
        self.by_call.contains_key(&call)
    }

    /// The calls with a backlog.
    pub(super) fn calls(&self) -> Vec<CallId> {
        self.by_call.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(n: u64) -> CallId {
        CallId::for_tests(n)
    }

    #[test]
    fn a_backlog_past_its_limit_is_refused_and_others_are_not() {
        let mut backlogs = StreamBacklogs::with_bytes_max(10);
        assert_eq!(
            backlogs.push(call(1), Bytes::from_static(b"123456")),
            Ok(())
        );
        assert_eq!(
            backlogs.push(call(1), Bytes::from_static(b"12345")),
            Err(BacklogExceeded)
        );
        assert_eq!(backlogs.push(call(2), Bytes::from_static(b"12345")), Ok(()));
        // Taking a message out makes room again.
        assert_eq!(
            backlogs.pop(call(1)).map(|q| q.message),
            Some(Bytes::from_static(b"123456"))
        );
        assert_eq!(backlogs.push(call(1), Bytes::from_static(b"12345")), Ok(()));
    }

    #[test]
    fn a_message_put_back_keeps_its_place_and_its_count() {
        let mut backlogs = StreamBacklogs::with_bytes_max(10);
        backlogs.push(call(1), Bytes::from_static(b"abcd")).unwrap();
        backlogs.push(call(1), Bytes::from_static(b"efgh")).unwrap();
        let front = backlogs.pop(call(1)).unwrap();
        backlogs.unpop(call(1), front);
        assert_eq!(
            backlogs.push(call(1), Bytes::from_static(b"ijk")),
            Err(BacklogExceeded)
        );
        let mut drained = Vec::new();
        while let Some(queued) = backlogs.pop(call(1)) {
            drained.push(queued.message);
        }
        assert_eq!(drained, [&b"abcd"[..], &b"efgh"[..]]);
    }

    #[test]
    fn snapshot_chunks_are_not_counted() {
        let mut backlogs = StreamBacklogs::with_bytes_max(10);
        backlogs.push_uncounted(call(1), Bytes::from(vec![0; 100]));
        assert_eq!(backlogs.push(call(1), Bytes::from_static(b"123")), Ok(()));
        assert_eq!(backlogs.pop(call(1)).map(|q| q.message.len()), Some(100));
        assert!(backlogs.contains(call(1)));
        backlogs.remove(call(1));
        assert!(!backlogs.contains(call(1)));
        assert!(backlogs.calls().is_empty());
    }
}
