//! Clients waiting for an entry they proposed to be applied, by the request id the entry
//! carries. Time is passed in; nothing here touches the core or a socket.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;

use crate::client::CallId;

/// Proposals waiting at once; one more is refused with etcd's "too many requests".
pub(super) const WAITERS_MAX: usize = 100_000;

/// A client waiting for an entry it proposed to be applied.
#[derive(Debug)]
pub(super) enum Waiter {
    Kv {
        call: CallId,
        deadline: Instant,
    },
    /// A `physical` compaction answered once the store has really removed the revisions.
    PhysicalCompaction {
        call: CallId,
        response: Bytes,
        revision: i64,
        deadline: Instant,
    },
    /// A keep-alive off the lease's primary, replicated so that the primary renews the lease.
    KeepAlive {
        call: CallId,
        lease: i64,
        deadline: Instant,
    },
}

impl Waiter {
    fn deadline(&self) -> Instant {
        match self {
            Waiter::Kv { deadline, .. }
            | Waiter::PhysicalCompaction { deadline, .. }
            | Waiter::KeepAlive { deadline, .. } => *deadline,
        }
    }
}

/// The waiter was refused: [`WAITERS_MAX`] wait already. It is handed back.
#[derive(Debug)]
pub(super) struct TooManyWaiters(pub(super) Waiter);

#[derive(Debug, Default)]
pub(super) struct Waiters {
    by_request: HashMap<u64, Waiter>,
}

impl Waiters {
    /// Whether one more waiter fits.
    pub(super) fn has_room(&self) -> bool {
        self.by_request.len() < WAITERS_MAX
    }

    pub(super) fn insert(&mut self, request: u64, waiter: Waiter) -> Result<(), TooManyWaiters> {
        if !self.has_room() {
            return Err(TooManyWaiters(waiter));
        }
        let previous = self.by_request.insert(request, waiter);
        assert!(
            previous.is_none(),
            "request id {request} is waited on twice"
        );
        Ok(())
    }

    /// The waiter of the entry with request id `request`, now applied.
    pub(super) fn remove(&mut self, request: u64) -> Option<Waiter> {
        self.by_request.remove(&request)
    }

    pub(super) fn len(&self) -> usize {
        self.by_request.len()
    }

    /// The waiters whose deadline has passed at `now`.
    pub(super) fn take_expired(&mut self, now: Instant) -> Vec<Waiter> {
        self.take_where(|waiter| waiter.deadline() <= now)
    }

    /// The physical compactions whose revision `done` says the store has removed: (call,
    /// response) to answer.
    pub(super) fn take_compactions_done(
        &mut self,
        done: impl Fn(i64) -> bool,
    ) -> Vec<(CallId, Bytes)> {
        self.take_where(
            |waiter| matches!(waiter, Waiter::PhysicalCompaction { revision, .. } if done(*revision)),
        )
        .into_iter()
        .filter_map(|waiter| match waiter {
            Waiter::PhysicalCompaction { call, response, .. } => Some((call, response)),
            _ => None,
        })
        .collect()
    }

    /// Whether a keep-alive of stream `call` still waits for its apply.
    pub(super) fn keep_alive_pending(&self, call: CallId) -> bool {
        self.by_request
            .values()
            .any(|w| matches!(w, Waiter::KeepAlive { call: c, .. } if *c == call))
    }

    fn take_where(&mut self, taken: impl Fn(&Waiter) -> bool) -> Vec<Waiter> {
        let ids: Vec<u64> = self
            .by_request
            .iter()
            .filter(|(_, waiter)| taken(waiter))
            .map(|(id, _)| *id)
            .collect();
        ids.iter()
            .filter_map(|id| self.by_request.remove(id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn kv(call: u64, deadline: Instant) -> Waiter {
        Waiter::Kv {
            call: CallId::for_tests(call),
            deadline,
        }
    }

    #[test]
    fn waiters_are_found_by_request_and_expire_at_their_deadline() {
        let now = Instant::now();
        let mut waiters = Waiters::default();
        waiters.insert(1, kv(10, now)).unwrap();
        waiters
            .insert(2, kv(20, now + Duration::from_secs(5)))
            .unwrap();
        let expired = waiters.take_expired(now + Duration::from_secs(1));
        assert!(
            matches!(&expired[..], [Waiter::Kv { call, .. }] if *call == CallId::for_tests(10))
        );
        assert!(waiters.remove(1).is_none(), "expired already");
        assert!(waiters.remove(2).is_some());
        assert_eq!(waiters.len(), 0);
    }

    #[test]
    fn compactions_are_answered_once_removed_and_keep_alives_are_found_by_stream() {
        let now = Instant::now();
        let mut waiters = Waiters::default();
        let compaction = |revision| Waiter::PhysicalCompaction {
            call: CallId::for_tests(revision as u64),
            response: Bytes::from_static(b"r"),
            revision,
            deadline: now,
        };
        waiters.insert(1, compaction(5)).unwrap();
        waiters.insert(2, compaction(9)).unwrap();
        waiters
            .insert(
                3,
                Waiter::KeepAlive {
                    call: CallId::for_tests(7),
                    lease: 1,
                    deadline: now,
                },
            )
            .unwrap();
        let done = waiters.take_compactions_done(|revision| revision <= 6);
        assert_eq!(done, [(CallId::for_tests(5), Bytes::from_static(b"r"))]);
        assert!(waiters.keep_alive_pending(CallId::for_tests(7)));
        assert!(!waiters.keep_alive_pending(CallId::for_tests(5)));
        assert_eq!(waiters.len(), 2);
    }

    #[test]
    fn the_limit_holds_and_hands_the_waiter_back() {
        let now = Instant::now();
        let mut waiters = Waiters::default();
        for id in 0..WAITERS_MAX as u64 {
            waiters.insert(id, kv(id, now)).unwrap();
        }
        assert!(!waiters.has_room());
        let refused = waiters.insert(u64::MAX, kv(1, now)).unwrap_err();
        assert!(matches!(refused.0, Waiter::Kv { .. }));
    }
}
