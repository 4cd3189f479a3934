//! Before a member takes part in Raft with a data directory it did not just write, it asks its
//! peers what they know of it, as etcd checks before it bootstraps. Two mistakes are caught:
//!
//! - **A wiped data directory.** A member whose data directory was wiped and which is started
//!   again with the same flags would bootstrap under its old ID with an empty log: it would
//!   forget every vote it gave (so it could vote twice in one term) and hold none of the
//!   entries it acknowledged, while the leader, which counts them as held, never sends them
//!   again. Its peers know it has run: its client URLs, which a member publishes once it has a
//!   leader, are in their member table (etcd checks the same). If any peer says so, the member
//!   refuses to start with etcd's message.
//! - **An old data directory** (restored from a backup, or copied from another machine): the
//!   member restarts with a log shorter than what it acknowledged. The leader knows the
//!   highest index the member acknowledged in its term; when that term is not older than the
//!   member's own, no newer leader can have cut those entries, so a log that ends below them
//!   went back in time, and the member refuses to start.
//!
//! The way back from both is `member remove`, `member add`, and a start with an empty data
//! directory and `--initial-cluster-state existing`.
//!
//! Until every peer has answered, or [`CHECK_WAIT`] has passed (a peer that is down cannot
//! answer; etcd also goes on when no peer can be reached), the member neither ticks nor steps
//! Raft messages and persists nothing, so it votes for nobody before the verdict and a refused
//! bootstrap leaves its data directory empty.
//!
//! Frames, on the peer link beside Raft's:
//! - query: [`FrameKind::StartQuery`]'s tag, the asking member's ID (u64 LE);
//! - answer: [`FrameKind::StartAnswer`]'s tag, the ID asked about (u64 LE), then 1 if that member has run (its
//!   client URLs are published in the answering member's table) else 0, the answering
//!   member's term (u64 LE), and the highest index the asking member acknowledged to it as
//!   leader in that term (u64 LE; 0 from a follower).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::{BufMut as _, Bytes, BytesMut};

use crate::peer::FrameKind;

const QUERY_TAG: u8 = FrameKind::StartQuery.tag();
const ANSWER_TAG: u8 = FrameKind::StartAnswer.tag();

/// How long a starting member waits for its peers' answers.
pub(super) const CHECK_WAIT: Duration = Duration::from_secs(3);

const QUERY_BYTES: usize = 1 + 8;
const ANSWER_BYTES: usize = 1 + 8 + 1 + 8 + 8;

pub(super) fn encode_query(member_id: u64) -> Bytes {
    let mut frame = BytesMut::with_capacity(QUERY_BYTES);
    frame.put_u8(QUERY_TAG);
    frame.put_u64_le(member_id);
    frame.freeze()
}

/// The member ID a query asks about; `None` for a malformed frame.
pub(super) fn decode_query(frame: &[u8]) -> Option<u64> {
    (frame.len() == QUERY_BYTES && frame[0] == QUERY_TAG)
        .then(|| u64::from_le_bytes(frame[1..].try_into().expect("8 bytes")))
}

/// What a peer knows of the asking member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Answer {
    /// The member asked about.
    pub(super) member_id: u64,
    /// Its client URLs are in the answering member's table.
    pub(super) has_run: bool,
    /// The answering member's term.
    pub(super) term: u64,
    /// The highest index the member acknowledged to the answering leader in `term`; 0 when
    /// the answering member is not the leader.
    pub(super) acknowledged: u64,
}

/// A starting peer (`from`) asks what this member knows of it (`frame`): whether it has run
/// (its client URLs, which a member publishes once it has a leader, are in the table, as
/// etcd's check has it; names come from `--initial-cluster` and say nothing), and, from a
/// leader, the highest index it acknowledged in this term. The answer frame, or `None` for a
/// malformed query.
pub(super) fn answer_query(
    from: u64,
    frame: &[u8],
    members: &super::members::Members,
    node: &tally_core::Node,
) -> Option<Bytes> {
    let Some(asked) = decode_query(frame) else {
        eprintln!("tallyd: malformed start query from peer {from:x}; dropped");
        return None;
    };
    if asked != from {
        eprintln!("tallyd: peer {from:x} asked about another member; dropped");
        return None;
    }
    let has_run = members
        .get(asked)
        .is_some_and(|m| !m.client_urls.is_empty());
    let answer = Answer {
        member_id: asked,
        has_run,
        term: node.status().term(),
        acknowledged: node.progress(asked).map_or(0, |p| p.matched()),
    };
    Some(encode_answer(&answer))
}

pub(super) fn encode_answer(answer: &Answer) -> Bytes {
    let mut frame = BytesMut::with_capacity(ANSWER_BYTES);
    frame.put_u8(ANSWER_TAG);
    frame.put_u64_le(answer.member_id);
    frame.put_u8(u8::from(answer.has_run));
    frame.put_u64_le(answer.term);
    frame.put_u64_le(answer.acknowledged);
    frame.freeze()
}

/// `None` for a malformed frame.
pub(super) fn decode_answer(frame: &[u8]) -> Option<Answer> {
    if frame.len() != ANSWER_BYTES || frame[0] != ANSWER_TAG || frame[9] > 1 {
        return None;
    }
    let u64_at = |at: usize| u64::from_le_bytes(frame[at..at + 8].try_into().expect("8 bytes"));
    Some(Answer {
        member_id: u64_at(1),
        has_run: frame[9] == 1,
        term: u64_at(10),
        acknowledged: u64_at(18),
    })
}

/// How the member starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// A new cluster, from an empty data directory.
    Bootstrap,
    /// From its data directory, whose log ends at `last_index` and whose term is `term`.
    Restart { last_index: u64, term: u64 },
}

/// Where the check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CheckOutcome {
    Pending,
    /// Nothing any peer said stops the member.
    Passed,
    /// This peer knows this member as one that has run: it must not bootstrap.
    AlreadyBootstrapped {
        peer: u64,
    },
    /// The leader `peer` holds `acknowledged` as acknowledged by this member in `term`, past
    /// the end of this member's log at `last_index`.
    Regressed {
        peer: u64,
        term: u64,
        acknowledged: u64,
        last_index: u64,
    },
}

/// The check of one starting member.
#[derive(Debug)]
pub(super) struct StartCheck {
    member_id: u64,
    start: Start,
    peers: Vec<u64>,
    answered: HashSet<u64>,
    /// The first answer that stops the member.
    verdict: Option<CheckOutcome>,
    deadline: Instant,
}

impl StartCheck {
    /// `peers`: the other members.
    pub(super) fn new(member_id: u64, start: Start, peers: Vec<u64>, now: Instant) -> StartCheck {
        assert!(
            !peers.contains(&member_id),
            "member {member_id:x} does not ask itself"
        );
        StartCheck {
            member_id,
            start,
            peers,
            answered: HashSet::new(),
            verdict: None,
            deadline: now + CHECK_WAIT,
        }
    }

    /// The peers whose answer is still awaited, to ask (again, after a reconnection).
    pub(super) fn unanswered(&self) -> Vec<u64> {
        self.peers
            .iter()
            .copied()
            .filter(|p| !self.answered.contains(p))
            .collect()
    }

    pub(super) fn query(&self) -> Bytes {
        encode_query(self.member_id)
    }

    /// `peer`'s answer frame. A malformed one, or one about another member, counts as no
    /// answer.
    pub(super) fn on_answer(&mut self, peer: u64, frame: &[u8], now: Instant) -> CheckOutcome {
        let Some(answer) = decode_answer(frame) else {
            return self.outcome(now);
        };
        if answer.member_id != self.member_id || !self.peers.contains(&peer) {
            return self.outcome(now);
        }
        self.answered.insert(peer);
        let stop = match self.start {
            Start::Bootstrap if answer.has_run => Some(CheckOutcome::AlreadyBootstrapped { peer }),
            Start::Bootstrap => None,
            // A leader of an older term than this member's may hold entries that a newer
            // leader has since cut from this member's log: only a term at least as new counts.
            Start::Restart { last_index, term }
                if answer.term >= term && answer.acknowledged > last_index =>
            {
                Some(CheckOutcome::Regressed {
                    peer,
                    term: answer.term,
                    acknowledged: answer.acknowledged,
                    last_index,
                })
            }
            Start::Restart { .. } => None,
        };
        if self.verdict.is_none() {
            self.verdict = stop;
        }
        self.outcome(now)
    }

    /// `peer` cannot answer (it does not know the query: another release): it counts as
    /// answered, with nothing to say.
    pub(super) fn on_cannot_answer(&mut self, peer: u64, now: Instant) -> CheckOutcome {
        if self.peers.contains(&peer) {
            self.answered.insert(peer);
        }
        self.outcome(now)
    }

    /// Stopped as soon as one answer says so; passed once every peer answered, or once the
    /// wait is over.
    pub(super) fn outcome(&self, now: Instant) -> CheckOutcome {
        if let Some(verdict) = self.verdict {
            verdict
        } else if self.answered.len() == self.peers.len() || now >= self.deadline {
            CheckOutcome::Passed
        } else {
            CheckOutcome::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(member_id: u64, has_run: bool, term: u64, acknowledged: u64) -> Bytes {
        encode_answer(&Answer {
            member_id,
            has_run,
            term,
            acknowledged,
        })
    }

    #[test]
    fn frames_round_trip_and_malformed_ones_are_refused() {
        assert_eq!(decode_query(&encode_query(0xAB)), Some(0xAB));
        let sample = Answer {
            member_id: 7,
            has_run: true,
            term: 9,
            acknowledged: 1 << 40,
        };
        assert_eq!(decode_answer(&encode_answer(&sample)), Some(sample));
        assert_eq!(decode_query(&encode_query(1)[..8]), None);
        let mut bad = encode_answer(&sample).to_vec();
        bad[9] = 2;
        assert_eq!(decode_answer(&bad), None);
        assert_eq!(decode_answer(&bad[..ANSWER_BYTES - 1]), None);
        assert_eq!(decode_answer(&encode_query(7)), None);
    }

    #[test]
    fn one_peer_that_knows_the_member_stops_its_bootstrap() {
        let now = Instant::now();
        let mut check = StartCheck::new(1, Start::Bootstrap, vec![2, 3], now);
        assert_eq!(check.outcome(now), CheckOutcome::Pending);
        assert_eq!(
            check.on_answer(2, &answer(1, false, 2, 0), now),
            CheckOutcome::Pending
        );
        assert_eq!(check.unanswered(), [3]);
        assert_eq!(
            check.on_answer(3, &answer(1, true, 2, 0), now),
            CheckOutcome::AlreadyBootstrapped { peer: 3 }
        );
    }

    #[test]
    fn every_peer_saying_no_or_the_wait_passing_lets_it_start() {
        let now = Instant::now();
        let mut check = StartCheck::new(1, Start::Bootstrap, vec![2, 3], now);
        // An answer about another member, or from a stranger, is no answer.
        assert_eq!(
            check.on_answer(2, &answer(9, false, 1, 0), now),
            CheckOutcome::Pending
        );
        assert_eq!(
            check.on_answer(4, &answer(1, false, 1, 0), now),
            CheckOutcome::Pending
        );
        check.on_answer(2, &answer(1, false, 1, 0), now);
        assert_eq!(
            check.on_answer(3, &answer(1, false, 1, 0), now),
            CheckOutcome::Passed
        );
        let waited = StartCheck::new(1, Start::Bootstrap, vec![2], now);
        assert_eq!(waited.outcome(now + CHECK_WAIT), CheckOutcome::Passed);
    }

    #[test]
    fn a_restart_behind_what_the_leader_holds_as_acknowledged_is_stopped() {
        let now = Instant::now();
        let restart = Start::Restart {
            last_index: 10,
            term: 3,
        };
        let mut check = StartCheck::new(1, restart, vec![2, 3], now);
        // A restarted member has run, of course; a follower knows no acknowledgements.
        assert_eq!(
            check.on_answer(2, &answer(1, true, 4, 0), now),
            CheckOutcome::Pending
        );
        assert_eq!(
            check.on_answer(3, &answer(1, true, 4, 25), now),
            CheckOutcome::Regressed {
                peer: 3,
                term: 4,
                acknowledged: 25,
                last_index: 10
            }
        );
    }

    #[test]
    fn a_restart_that_holds_what_it_acknowledged_or_a_stale_leader_passes() {
        let now = Instant::now();
        let restart = Start::Restart {
            last_index: 10,
            term: 5,
        };
        let mut check = StartCheck::new(1, restart, vec![2, 3], now);
        // All it acknowledged is in its log.
        assert_eq!(
            check.on_answer(2, &answer(1, true, 5, 10), now),
            CheckOutcome::Pending
        );
        // A leader of term 4 may count entries a term 5 leader cut from this member's log.
        assert_eq!(
            check.on_answer(3, &answer(1, true, 4, 25), now),
            CheckOutcome::Passed
        );
    }
}
