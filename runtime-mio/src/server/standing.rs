//! A member's standing in its cluster: whether it may take part in Raft yet (the start check),
//! whether it has joined (heard from a leader; until then it serves nothing), whether it should
//! dial every peer (until it first hears a leader, or once it has long had none), and whether
//! it must
//! stop (its peers know it as one that ran, it holds less than it acknowledged, every peer
//! refuses it, or it was removed).
//!
//! The loop feeds it what happens (answers, refusals, leaders, ticks), with the time, and acts
//! on what it says; it touches no socket and no core.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::error::ServerError;
use super::join_watchdog::JoinWatchdog;
use super::start_check::{CheckOutcome, StartCheck};

/// Why the member must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Bootstrapping from an empty data directory, but `peer` knows this member as one that ran.
    AlreadyBootstrapped { peer: u64 },
    /// The leader `peer` holds `acknowledged` (in `term`) as acknowledged by this member, past
    /// the end of its log at `last_index`.
    Regressed {
        peer: u64,
        term: u64,
        acknowledged: u64,
        last_index: u64,
    },
    /// Every peer keeps refusing this member, which has not joined: why.
    CannotJoin(String),
    /// The member was removed from its cluster.
    Removed,
}

impl Verdict {
    /// The error member `id` (data directory `data_dir`) stops with.
    pub(super) fn into_error(self, id: u64, data_dir: &std::path::Path) -> ServerError {
        let data_dir = data_dir.display();
        match self {
            Verdict::Removed => ServerError::Removed,
            Verdict::CannotJoin(reason) => ServerError::CannotJoin(reason),
            Verdict::Regressed {
                peer,
                term,
                acknowledged,
                last_index,
            } => ServerError::DataDir(format!(
                "member {id:x}'s data directory {data_dir} is older than what it acknowledged: the leader {peer:x} holds index {acknowledged} (term {term}) as acknowledged by it, but its log ends at {last_index}. \
                 It was restored from an old copy or lost writes; starting it could make it vote twice or lose acknowledged entries. \
                 To bring it back: etcdctl member remove {id:x}, etcdctl member add, then start it from an empty data directory with --initial-cluster-state existing"
            )),
            Verdict::AlreadyBootstrapped { peer } => ServerError::DataDir(format!(
                "member {id:x} has already been bootstrapped (peer {peer:x} knows it); its data directory {data_dir} is new or was wiped. \
                 To bring it back: etcdctl member remove {id:x}, etcdctl member add, then start it with --initial-cluster-state existing"
            )),
        }
    }
}

#[derive(Debug)]
pub(super) struct Standing {
    joined: bool,
    /// Until it passes, the core neither ticks nor steps nor persists.
    start_check: Option<StartCheck>,
    watchdog: JoinWatchdog,
    leaderless_since: Option<Instant>,
    /// A joined member dialing every peer until it hears a leader: since it started, or since
    /// it has long had none.
    probing: bool,
    /// When the member applied its own removal.
    removed_at: Option<Instant>,
    /// No leader for this long: dial every peer.
    probe_after: Duration,
    /// Applied its own removal this long ago: stop.
    stop_after_removal: Duration,
    /// A change of the transport's dialing the loop has not applied yet.
    dial_every_peer: Option<bool>,
    /// A peer link has been up since the member started.
    peer_connected: bool,
    /// The start's election timer advance is still to be taken.
    election_advance_due: bool,
}

impl Standing {
    pub(super) fn new(
        joined: bool,
        start_check: Option<StartCheck>,
        now: Instant,
        probe_after: Duration,
        stop_after_removal: Duration,
    ) -> Self {
        Standing {
            joined,
            start_check,
            watchdog: JoinWatchdog::default(),
            leaderless_since: Some(now),
            // A member that restarts dials its lower-id peers too: they redial it as soon as
            // it does (the link's rule is that the lower id dials), instead of when the backoff
            // from its outage (up to half a second) says.
            probing: joined,
            removed_at: None,
            probe_after,
            stop_after_removal,
            dial_every_peer: Some(true),
            peer_connected: false,
            election_advance_due: true,
        }
    }

    /// Whether the member belongs to its cluster: it serves clients only then.
    pub(super) fn joined(&self) -> bool {
        self.joined
    }

    /// Whether the core must stay still: the start check has not passed.
    pub(super) fn holds_the_core(&self) -> bool {
        self.start_check.is_some()
    }

    /// The start check's query and the peers still to ask.
    pub(super) fn start_query(&self) -> Option<(Bytes, Vec<u64>)> {
        self.start_check
            .as_ref()
            .map(|check| (check.query(), check.unanswered()))
    }

    pub(super) fn on_start_answer(&mut self, peer: u64, frame: &[u8], now: Instant) {
        if let Some(check) = self.start_check.as_mut() {
            let _ = check.on_answer(peer, frame, now);
        }
    }

    /// `peer` cannot answer the start query (it runs a release that does not know it).
    pub(super) fn on_start_unanswerable(&mut self, peer: u64, now: Instant) {
        if let Some(check) = self.start_check.as_mut() {
            let _ = check.on_cannot_answer(peer, now);
        }
    }

    /// The core's leader is now `leader` (`NO_NODE`: none).
    pub(super) fn on_leader(&mut self, leader: u64, now: Instant) {
        if leader == tally_core::NO_NODE {
            self.leaderless_since.get_or_insert(now);
            return;
        }
        self.leaderless_since = None;
        if !self.joined || self.probing {
            self.joined = true;
            self.probing = false;
            self.dial_every_peer = Some(false);
        }
    }

    pub(super) fn on_peer_connected(&mut self) {
        self.watchdog.on_connected();
        self.peer_connected = true;
    }

    /// `true` once, when the loop should advance the core's election timer to a few ticks
    /// short of its timeout: the start check has passed, a peer link is up, and no leader has
    /// been heard. A cluster that restarts together then elects a leader a few ticks after its
    /// members find each other instead of a whole election timeout later, as etcd's initial
    /// election tick advance does. A member restarting into a cluster with a leader hears its
    /// heartbeat within a tick, which resets the timer; pre-vote keeps a member that misses it
    /// from disturbing that leader.
    #[must_use]
    pub(super) fn poll_election_advance(&mut self) -> bool {
        if !self.election_advance_due || self.start_check.is_some() || !self.peer_connected {
            return false;
        }
        self.election_advance_due = false;
        self.leaderless_since.is_some()
    }

    /// A handshake with a peer (`peer`, when this member dialed) was refused for `reason`;
    /// `not_a_member`: the peer said it does not know this member.
    pub(super) fn on_peer_refused(
        &mut self,
        peer: Option<u64>,
        reason: &str,
        not_a_member: bool,
        now: Instant,
    ) {
        self.watchdog.on_refused(reason, now);
        if let Some(peer) = peer.filter(|_| not_a_member) {
            self.watchdog.on_not_a_member(peer, now);
        }
    }

    /// The member applied its own removal.
    pub(super) fn on_removed(&mut self, now: Instant) {
        self.removed_at.get_or_insert(now);
    }

    /// A member without a leader for `probe_after` dials every peer, so that peers which no
    /// longer know it (it was removed while cut off) say so.
    pub(super) fn on_tick(&mut self, now: Instant) {
        let long_leaderless = self
            .leaderless_since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.probe_after);
        if self.joined && !self.probing && long_leaderless {
            self.probing = true;
            self.dial_every_peer = Some(true);
        }
    }

    /// Whether the transport should dial every peer (`true`) or only those with a higher id,
    /// when that changed since the last call.
    #[must_use]
    pub(super) fn poll_dial_every_peer(&mut self) -> Option<bool> {
        self.dial_every_peer.take()
    }

    /// Advances the start check and the watchdogs. `Ok(true)` when the start check has just
    /// passed (the core may move now); a verdict when the member must stop. `peers`: the
    /// other members it knows.
    pub(super) fn check(&mut self, now: Instant, peers: &[u64]) -> Result<bool, Verdict> {
        if self
            .removed_at
            .is_some_and(|at| now.saturating_duration_since(at) >= self.stop_after_removal)
        {
            return Err(Verdict::Removed);
        }
        if let Some(reason) = self.watchdog.should_stop(self.joined, now) {
            return Err(Verdict::CannotJoin(reason.to_string()));
        }
        if self.joined && self.leaderless_since.is_some() && self.watchdog.removed(peers, now) {
            return Err(Verdict::Removed);
        }
        let Some(check) = &self.start_check else {
            return Ok(false);
        };
        match check.outcome(now) {
            CheckOutcome::Pending => Ok(false),
            CheckOutcome::Passed => {
                self.start_check = None;
                Ok(true)
            }
            CheckOutcome::AlreadyBootstrapped { peer } => {
                Err(Verdict::AlreadyBootstrapped { peer })
            }
            CheckOutcome::Regressed {
                peer,
                term,
                acknowledged,
                last_index,
            } => Err(Verdict::Regressed {
                peer,
                term,
                acknowledged,
                last_index,
            }),
        }
    }

    /// Why the member cannot join, while it has not and its peers refuse it.
    pub(super) fn refusal(&self, now: Instant) -> Option<&str> {
        if self.joined {
            return None;
        }
        self.watchdog.current_refusal(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::start_check::Start;

    const NO_NODE: u64 = tally_core::NO_NODE;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn standing(joined: bool, now: Instant) -> Standing {
        Standing::new(joined, None, now, secs(3), secs(1))
    }

    #[test]
    fn a_member_joins_when_it_first_hears_from_a_leader_and_then_dials_as_usual() {
        let t0 = Instant::now();
        let mut s = standing(false, t0);
        assert_eq!(
            s.poll_dial_every_peer(),
            Some(true),
            "dials every peer at first"
        );
        assert_eq!(s.poll_dial_every_peer(), None);
        assert!(!s.joined());
        s.on_leader(NO_NODE, t0);
        assert!(!s.joined());
        s.on_leader(7, t0 + secs(1));
        assert!(s.joined());
        assert_eq!(s.poll_dial_every_peer(), Some(false));
        assert_eq!(s.check(t0 + secs(2), &[2, 3]), Ok(false));
    }

    #[test]
    fn a_joined_member_long_without_a_leader_probes_and_stops_when_every_peer_disowns_it() {
        let t0 = Instant::now();
        let mut s = standing(true, t0);
        let _ = s.poll_dial_every_peer();
        s.on_leader(7, t0);
        assert_eq!(s.poll_dial_every_peer(), Some(false));
        s.on_leader(NO_NODE, t0 + secs(1));
        s.on_tick(t0 + secs(3));
        assert_eq!(s.poll_dial_every_peer(), None, "not for long enough");
        s.on_tick(t0 + secs(4));
        assert_eq!(s.poll_dial_every_peer(), Some(true));
        for at in 4..=14 {
            s.on_peer_refused(Some(2), "unknown member id", true, t0 + secs(at));
        }
        assert_eq!(s.check(t0 + secs(14), &[2]), Err(Verdict::Removed));
        // A leader found meanwhile ends the probing instead.
        s.on_leader(2, t0 + secs(15));
        assert_eq!(s.poll_dial_every_peer(), Some(false));
        assert_eq!(s.check(t0 + secs(15), &[2]), Ok(false));
    }

    #[test]
    fn a_restarted_member_dials_every_peer_until_it_hears_a_leader() {
        let t0 = Instant::now();
        let mut s = standing(true, t0);
        assert_eq!(s.poll_dial_every_peer(), Some(true));
        s.on_leader(NO_NODE, t0);
        s.on_tick(t0 + secs(10));
        assert_eq!(s.poll_dial_every_peer(), None, "still dialing every peer");
        s.on_leader(7, t0 + secs(11));
        assert_eq!(s.poll_dial_every_peer(), Some(false));
        assert!(s.joined());
    }

    #[test]
    fn a_member_that_applied_its_removal_stops_a_little_later() {
        let t0 = Instant::now();
        let mut s = standing(true, t0);
        s.on_removed(t0);
        assert_eq!(s.check(t0, &[2]), Ok(false));
        assert_eq!(s.check(t0 + secs(1), &[2]), Err(Verdict::Removed));
    }

    #[test]
    fn the_core_is_held_until_the_start_check_passes() {
        let t0 = Instant::now();
        let check = StartCheck::new(1, Start::Bootstrap, vec![2], t0);
        let mut s = Standing::new(false, Some(check), t0, secs(3), secs(1));
        assert!(s.holds_the_core());
        let (_, ask) = s.start_query().expect("a query");
        assert_eq!(ask, [2]);
        s.on_start_unanswerable(2, t0);
        assert_eq!(s.check(t0, &[2]), Ok(true));
        assert!(!s.holds_the_core());
        assert_eq!(s.check(t0, &[2]), Ok(false), "passes once");
    }

    #[test]
    fn the_election_timer_is_advanced_once_after_the_start_check_and_a_peer_link() {
        let t0 = Instant::now();
        let check = StartCheck::new(
            1,
            Start::Restart {
                last_index: 5,
                term: 1,
            },
            vec![2],
            t0,
        );
        let mut s = Standing::new(true, Some(check), t0, secs(3), secs(1));
        assert!(!s.poll_election_advance(), "no peer link yet");
        s.on_peer_connected();
        assert!(!s.poll_election_advance(), "the start check has not passed");
        s.on_start_unanswerable(2, t0);
        assert_eq!(s.check(t0, &[2]), Ok(true));
        assert!(s.poll_election_advance());
        assert!(!s.poll_election_advance(), "once");

        // A member that heard a leader first keeps its whole timeout.
        let mut led = standing(true, t0);
        led.on_leader(7, t0);
        led.on_peer_connected();
        assert!(!led.poll_election_advance());
        led.on_leader(NO_NODE, t0 + secs(1));
        assert!(!led.poll_election_advance(), "only at the start");
    }

    #[test]
    fn refusals_before_joining_stop_the_member_with_their_reason() {
        let t0 = Instant::now();
        let mut s = standing(false, t0);
        for at in 0..=10 {
            s.on_peer_refused(None, "TLS error", false, t0 + secs(at));
        }
        assert_eq!(s.refusal(t0 + secs(10)), Some("TLS error"));
        assert_eq!(
            s.check(t0 + secs(10), &[2]),
            Err(Verdict::CannotJoin("TLS error".to_string()))
        );
    }
}
