//! Stops a member that cannot join its cluster, where etcd exits too: every peer refuses it
//! (a peer certificate from another CA, another cluster token, a member ID the others do not
//! know). Such a member would otherwise retry forever, and a supervisor would see a process
//! that runs and serves nothing; an exit with the reason is what an operator can act on.
//!
//! The rule: the member has not joined (never heard from a leader of its cluster), no peer
//! link has come up since the first refusal, refusals kept coming (the last one is recent) and
//! this has lasted [`REFUSED_EXIT_AFTER`]. A peer that is merely down refuses nothing (its
//! connection fails in other ways), so a member started before its peers waits for them.
//!
//! A member that has joined stops the same way when it was removed without learning it (cut
//! off while its removal committed, it never applies it): once it has had no leader for a
//! while it dials every peer, and when every peer has answered "I do not know this member" for
//! [`REFUSED_EXIT_AFTER`], with no link up meanwhile, it stops as removed, as etcd's member
//! does when its peers tell it so.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long refusals must last, with no peer link up, before the member stops. Several dial
/// backoffs long, so one misconfigured peer restarting does not stop a member.
pub(super) const REFUSED_EXIT_AFTER: Duration = Duration::from_secs(10);

/// A refusal older than this no longer counts as "refusals keep coming".
const REFUSAL_FRESH_FOR: Duration = Duration::from_secs(5);

/// Longest reason kept, in bytes (it comes from the network's error text).
const REASON_BYTES_MAX: usize = 512;

#[derive(Debug, Default)]
pub(super) struct JoinWatchdog {
    /// The first refusal since the last time a peer link came up.
    first_refusal: Option<Instant>,
    last_refusal: Option<Instant>,
    last_reason: String,
    /// Per peer: the first and the latest "I do not know this member" since a link came up.
    /// One entry per peer at most: bounded by the membership.
    not_a_member: HashMap<u64, (Instant, Instant)>,
}

impl JoinWatchdog {
    /// A peer refused this member (or this member refused a peer) for `reason`.
    pub(super) fn on_refused(&mut self, reason: &str, now: Instant) {
        self.first_refusal.get_or_insert(now);
        self.last_refusal = Some(now);
        self.last_reason.clear();
        let mut end = reason.len().min(REASON_BYTES_MAX);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        self.last_reason.push_str(&reason[..end]);
    }

    /// `peer` answered that it does not know this member (besides [`Self::on_refused`]).
    pub(super) fn on_not_a_member(&mut self, peer: u64, now: Instant) {
        self.not_a_member
            .entry(peer)
            .and_modify(|(_, last)| *last = now)
            .or_insert((now, now));
    }

    /// A peer link came up: some peer accepts this member, so it waits for a leader.
    pub(super) fn on_connected(&mut self) {
        self.first_refusal = None;
        self.not_a_member.clear();
    }

    /// Whether every one of `peers` has said, again and again for [`REFUSED_EXIT_AFTER`], that
    /// it does not know this member: it was removed.
    #[must_use]
    pub(super) fn removed(&self, peers: &[u64], now: Instant) -> bool {
        !peers.is_empty()
            && peers.iter().all(|peer| {
                self.not_a_member.get(peer).is_some_and(|(first, last)| {
                    now.saturating_duration_since(*first) >= REFUSED_EXIT_AFTER
                        && now.saturating_duration_since(*last) < REFUSAL_FRESH_FOR
                })
            })
    }

    /// The latest refusal, while refusals are current: for `endpoint status`'s errors.
    pub(super) fn current_refusal(&self, now: Instant) -> Option<&str> {
        let fresh = self
            .last_refusal
            .is_some_and(|at| now.saturating_duration_since(at) < REFUSAL_FRESH_FOR);
        (self.first_refusal.is_some() && fresh).then_some(self.last_reason.as_str())
    }

    /// The reason to stop, once the rule above holds; `None` while the member may yet join.
    #[must_use]
    pub(super) fn should_stop(&self, joined: bool, now: Instant) -> Option<&str> {
        if joined {
            return None;
        }
        let first = self.first_refusal?;
        if now.saturating_duration_since(first) < REFUSED_EXIT_AFTER {
            return None;
        }
        self.current_refusal(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn refusals_that_last_stop_a_member_that_has_not_joined() {
        let t0 = Instant::now();
        let mut dog = JoinWatchdog::default();
        assert_eq!(dog.should_stop(false, t0), None);
        for s in 0..=10 {
            dog.on_refused("peer 2: TLS error: unknown issuer", t0 + secs(s));
        }
        assert_eq!(dog.should_stop(false, t0 + secs(9)), None);
        assert_eq!(
            dog.should_stop(false, t0 + secs(10)),
            Some("peer 2: TLS error: unknown issuer")
        );
        // A member that belongs to its cluster is never stopped by refusals.
        assert_eq!(dog.should_stop(true, t0 + secs(10)), None);
    }

    #[test]
    fn a_peer_link_that_comes_up_starts_the_count_again() {
        let t0 = Instant::now();
        let mut dog = JoinWatchdog::default();
        dog.on_refused("refused", t0);
        dog.on_connected();
        dog.on_refused("refused", t0 + secs(8));
        assert_eq!(dog.should_stop(false, t0 + secs(12)), None);
        dog.on_refused("refused", t0 + secs(18));
        assert_eq!(dog.should_stop(false, t0 + secs(18)), Some("refused"));
    }

    #[test]
    fn refusals_that_stopped_coming_do_not_stop_the_member() {
        let t0 = Instant::now();
        let mut dog = JoinWatchdog::default();
        dog.on_refused("refused", t0);
        assert_eq!(dog.should_stop(false, t0 + secs(11)), None);
        assert_eq!(dog.current_refusal(t0 + secs(11)), None);
        assert_eq!(dog.current_refusal(t0 + secs(1)), Some("refused"));
    }

    #[test]
    fn a_member_every_peer_keeps_disowning_was_removed() {
        let t0 = Instant::now();
        let mut dog = JoinWatchdog::default();
        for s in 0..=10 {
            dog.on_not_a_member(2, t0 + secs(s));
        }
        assert!(!dog.removed(&[2, 3], t0 + secs(10)), "peer 3 said nothing");
        assert!(dog.removed(&[2], t0 + secs(10)));
        assert!(!dog.removed(&[2], t0 + secs(9)), "not for long enough");
        assert!(!dog.removed(&[2], t0 + secs(16)), "it stopped saying so");
        assert!(
            !dog.removed(&[], t0 + secs(10)),
            "a member alone is not removed"
        );
        for s in 0..=10 {
            dog.on_not_a_member(3, t0 + secs(s));
        }
        assert!(dog.removed(&[2, 3], t0 + secs(10)));
        dog.on_connected();
        assert!(!dog.removed(&[2, 3], t0 + secs(10)), "a link came up");
    }

    #[test]
    fn a_long_reason_is_cut_on_a_character_boundary() {
        let mut dog = JoinWatchdog::default();
        let reason = "é".repeat(REASON_BYTES_MAX);
        let now = Instant::now();
        dog.on_refused(&reason, now);
        let kept = dog.current_refusal(now).expect("fresh");
        assert!(kept.len() <= REASON_BYTES_MAX && reason.starts_with(kept));
    }
}
