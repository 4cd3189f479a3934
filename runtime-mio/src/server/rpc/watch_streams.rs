//! Which watcher belongs to which Watch stream, under which id.
//!
//! etcd numbers watchers per stream: the first watcher a stream creates is 0, the next 1, and
//! a client may ask for an id of its own (`WatchCreateRequest.watch_id`), refused if that
//! stream already uses it. Clients match responses to watchers by these ids, so they are the
//! stream's own; the store's [`WatchId`]s are the member's and never reach the wire.

use std::collections::HashMap;
use std::hash::Hash;

use tally_kvstore::WatchId;

use crate::client::CallId;

/// etcd's `AutoWatchID`: a create request with this id asks the stream to pick one.
const WATCH_ID_AUTO: i64 = 0;

/// Watchers one stream may hold: each costs the store a watcher.
pub(in crate::server) const WATCHERS_PER_STREAM_MAX: usize = 100_000;

/// Why a watcher could not be given an id on its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) enum WatchIdError {
    /// etcd's ErrWatcherDuplicateID.
    Duplicate,
    /// The stream holds [`WATCHERS_PER_STREAM_MAX`] watchers.
    TooMany,
}

impl WatchIdError {
    pub(in crate::server) fn etcd_message(self) -> &'static str {
        match self {
            WatchIdError::Duplicate => "mvcc: duplicate watch ID provided on the WatchStream",
            WatchIdError::TooMany => "etcdserver: too many watchers on this stream",
        }
    }
}

#[derive(Debug)]
struct StreamIds<W> {
    /// The next id to try for a watcher that asked for none.
    next_id: i64,
    by_wire_id: HashMap<i64, W>,
}

impl<W> Default for StreamIds<W> {
    fn default() -> Self {
        StreamIds {
            next_id: 0,
            by_wire_id: HashMap::new(),
        }
    }
}

/// Streams are [`CallId`]s and watchers the store's [`WatchId`]s; generic so that the rules
/// are tested without a server.
#[derive(Debug)]
pub(in crate::server) struct WatchStreams<S = CallId, W = WatchId> {
    by_watch: HashMap<W, (S, i64)>,
    by_stream: HashMap<S, StreamIds<W>>,
}

impl<S, W> Default for WatchStreams<S, W> {
    fn default() -> Self {
        WatchStreams {
            by_watch: HashMap::new(),
            by_stream: HashMap::new(),
        }
    }
}

impl<S: Copy + Eq + Hash + std::fmt::Debug, W: Copy + Eq + Hash + std::fmt::Debug>
    WatchStreams<S, W>
{
    /// The id a new watcher on `call` gets: `requested`, or the stream's next free one.
    pub(in crate::server) fn pick_id(
        &mut self,
        call: S,
        requested: i64,
    ) -> Result<i64, WatchIdError> {
        let stream = self.by_stream.entry(call).or_default();
        if stream.by_wire_id.len() >= WATCHERS_PER_STREAM_MAX {
            return Err(WatchIdError::TooMany);
        }
        if requested != WATCH_ID_AUTO {
            if stream.by_wire_id.contains_key(&requested) {
                return Err(WatchIdError::Duplicate);
            }
            return Ok(requested);
        }
        while stream.by_wire_id.contains_key(&stream.next_id) {
            stream.next_id += 1;
        }
        let id = stream.next_id;
        stream.next_id += 1;
        Ok(id)
    }

    /// Records the store's watcher `watch` as `wire_id` (from [`WatchStreams::pick_id`]) on
    /// `call`.
    pub(in crate::server) fn insert(&mut self, call: S, wire_id: i64, watch: W) {
        let stream = self.by_stream.entry(call).or_default();
        let replaced = stream.by_wire_id.insert(wire_id, watch);
        assert!(
            replaced.is_none(),
            "watch id {wire_id} given twice on one stream"
        );
        let replaced = self.by_watch.insert(watch, (call, wire_id));
        assert!(replaced.is_none(), "store watcher {watch:?} recorded twice");
    }

    /// The stream and wire id of the store's watcher `watch`.
    pub(in crate::server) fn get(&self, watch: W) -> Option<(S, i64)> {
        self.by_watch.get(&watch).copied()
    }

    /// The store's watcher that `call` knows as `wire_id`.
    pub(in crate::server) fn find(&self, call: S, wire_id: i64) -> Option<W> {
        self.by_stream.get(&call)?.by_wire_id.get(&wire_id).copied()
    }

    /// Forgets one watcher (canceled by the client or by the store).
    pub(in crate::server) fn remove(&mut self, watch: W) {
        if let Some((call, wire_id)) = self.by_watch.remove(&watch) {
            if let Some(stream) = self.by_stream.get_mut(&call) {
                stream.by_wire_id.remove(&wire_id);
            }
        }
    }

    /// The store's watchers on `call`.
    pub(in crate::server) fn of_stream(&self, call: S) -> Vec<W> {
        self.by_stream
            .get(&call)
            .map(|s| s.by_wire_id.values().copied().collect())
            .unwrap_or_default()
    }

    /// Forgets the stream and every watcher on it; those watchers.
    pub(in crate::server) fn remove_stream(&mut self, call: S) -> Vec<W> {
        let Some(stream) = self.by_stream.remove(&call) else {
            return Vec::new();
        };
        let watches: Vec<W> = stream.by_wire_id.into_values().collect();
        for watch in &watches {
            self.by_watch.remove(watch);
        }
        watches
    }

    /// Watchers over all streams.
    pub(in crate::server) fn len(&self) -> usize {
        self.by_watch.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(n: u64) -> u64 {
        n
    }

    #[test]
    fn ids_start_at_zero_on_every_stream_and_skip_requested_ones() {
        let mut streams: WatchStreams<u32, u64> = WatchStreams::default();
        let (a, b) = (1, 2);
        assert_eq!(streams.pick_id(a, 0), Ok(0));
        streams.insert(a, 0, watch(10));
        assert_eq!(streams.pick_id(a, 1), Ok(1), "a requested id is granted");
        streams.insert(a, 1, watch(11));
        assert_eq!(streams.pick_id(a, 0), Ok(2), "the counter skips ids in use");
        streams.insert(a, 2, watch(12));
        assert_eq!(streams.pick_id(a, 1), Err(WatchIdError::Duplicate));
        assert_eq!(streams.pick_id(b, 0), Ok(0), "each stream counts from 0");
        streams.insert(b, 0, watch(20));
        assert_eq!(streams.find(a, 1), Some(watch(11)));
        assert_eq!(streams.get(watch(20)), Some((b, 0)));
        streams.remove(watch(11));
        assert_eq!(streams.find(a, 1), None);
        assert_eq!(streams.len(), 3);
        let mut gone = streams.remove_stream(a);
        gone.sort();
        assert_eq!(gone, [watch(10), watch(12)]);
        assert_eq!(streams.len(), 1);
        assert_eq!(streams.of_stream(b), [watch(20)]);
    }
}
