//! Calls waiting for a membership change or a leader move to take effect: answered when the
//! change is applied (or leadership arrives), or with etcd's timeout. Time is passed in.

use std::time::Instant;

use super::calls::{Calls, Method};
use super::rpc::status::status_too_many_requests;
use crate::client::CallId;

/// Calls waiting at once; membership changes are one at a time in Raft, so a full table means
/// clients retry faster than changes apply.
pub(super) const CONF_WAITERS_MAX: usize = 1024;

/// A membership change or leader move waiting to take effect.
#[derive(Debug, Clone)]
pub(super) struct ConfWaiter {
    pub(super) call: CallId,
    /// The member the change is about (the new leader, for a move).
    pub(super) node: u64,
    pub(super) method: Method,
    pub(super) deadline: Instant,
}

/// The waiter was refused: [`CONF_WAITERS_MAX`] wait already. It is handed back.
#[derive(Debug)]
pub(super) struct TooManyConfWaiters(pub(super) ConfWaiter);

/// Parks `waiter`'s call until its membership change or leader move takes effect; with the
/// table full, the call gets etcd's "too many requests".
pub(super) fn wait_for_conf(conf_waiters: &mut ConfWaiters, calls: &mut Calls, waiter: ConfWaiter) {
    if let Err(refused) = conf_waiters.push(waiter) {
        calls.reply_error(refused.0.call, status_too_many_requests());
    }
}

#[derive(Debug, Default)]
pub(super) struct ConfWaiters {
    waiting: Vec<ConfWaiter>,
}

impl ConfWaiters {
    pub(super) fn push(&mut self, waiter: ConfWaiter) -> Result<(), TooManyConfWaiters> {
        if self.waiting.len() >= CONF_WAITERS_MAX {
            return Err(TooManyConfWaiters(waiter));
        }
        self.waiting.push(waiter);
        Ok(())
    }

    /// The calls that asked for a change of `node`'s membership, now applied.
    pub(super) fn take_applied(&mut self, node: u64) -> Vec<ConfWaiter> {
        self.take_where(|w| w.node == node && w.method != Method::MoveLeader)
    }

    /// The leader moves that asked for `leader`, which now leads.
    pub(super) fn take_moved_to(&mut self, leader: u64) -> Vec<ConfWaiter> {
        self.take_where(|w| w.node == leader && w.method == Method::MoveLeader)
    }

    pub(super) fn take_expired(&mut self, now: Instant) -> Vec<ConfWaiter> {
        self.take_where(|w| w.deadline <= now)
    }

    fn take_where(&mut self, taken: impl Fn(&ConfWaiter) -> bool) -> Vec<ConfWaiter> {
        let (done, waiting) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| taken(w));
        self.waiting = waiting;
        done
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn waiter(call: u64, node: u64, method: Method, deadline: Instant) -> ConfWaiter {
        ConfWaiter {
            call: CallId::for_tests(call),
            node,
            method,
            deadline,
        }
    }

    #[test]
    fn changes_moves_and_deadlines_each_answer_their_own_calls() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let mut waiters = ConfWaiters::default();
        waiters
            .push(waiter(1, 7, Method::MemberAdd, later))
            .unwrap();
        waiters
            .push(waiter(2, 7, Method::MoveLeader, later))
            .unwrap();
        waiters
            .push(waiter(3, 8, Method::MemberRemove, now))
            .unwrap();
        let applied = waiters.take_applied(7);
        assert_eq!(applied.len(), 1);
        assert_eq!(applied[0].call, CallId::for_tests(1));
        let moved = waiters.take_moved_to(7);
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].call, CallId::for_tests(2));
        let expired = waiters.take_expired(now);
        assert_eq!(expired.len(), 1);
        assert!(waiters.take_expired(later).is_empty());
    }

    #[test]
    fn the_limit_holds() {
        let now = Instant::now();
        let mut waiters = ConfWaiters::default();
        for call in 0..CONF_WAITERS_MAX as u64 {
            waiters
                .push(waiter(call, 1, Method::MemberAdd, now))
                .unwrap();
        }
        assert!(waiters.push(waiter(0, 1, Method::MemberAdd, now)).is_err());
    }
}
