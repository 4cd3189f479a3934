//! A member that bootstraps from an empty data directory first asks its peers whether they know
//! it as a member that has already run, as etcd does before it bootstraps.
//!
//! A member whose data directory was wiped and which is started again with the same flags
//! would otherwise bootstrap under its old ID with an empty log: it would forget every vote it
//! gave (so it could vote twice in one term) and hold none of the entries it acknowledged,
//! while the leader, which counts them as held, never sends them again. Its peers know it has
//! run: its client URLs, which a member publishes once it has a leader, are in their member
//! table (etcd checks the same). If any peer says so, the member refuses to start with etcd's message;
//! the way back is `member remove`, `member add`, and a start with
//! `--initial-cluster-state existing`.
//!
//! Until every peer has answered, or [`CHECK_WAIT`] has passed (a peer that is down cannot
//! answer; etcd also goes on when no peer can be reached), the member neither ticks nor steps
//! Raft messages and persists nothing, so a refused start leaves its data directory empty.
//!
//! Frames, on the peer link beside Raft's:
//! - query: [`QUERY_TAG`], the asking member's ID (u64 LE);
//! - answer: [`ANSWER_TAG`], the ID asked about (u64 LE), then 1 if that member has run
//!   (its client URLs are published in the answering member's table), else 0.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::{BufMut as _, Bytes, BytesMut};

pub(super) const QUERY_TAG: u8 = 0xCA;
pub(super) const ANSWER_TAG: u8 = 0xCB;
const _: () = {
    let tags = [QUERY_TAG, ANSWER_TAG];
    let mut i = 0;
    while i < tags.len() {
        assert!(tags[i] != tally_core::codec::CODEC_VERSION);
        assert!(tags[i] != super::snapshot_transfer::CHUNK_TAG);
        assert!(tags[i] != super::snapshot_transfer::LEGACY_CHUNK_TAG);
        assert!(tags[i] != super::leader_query::QUERY_TAG);
        assert!(tags[i] != super::leader_query::ANSWER_TAG);
        assert!(tags[i] != super::leader_query::PROMOTE_TAG);
        i += 1;
    }
};

/// How long a bootstrapping member waits for its peers' answers.
pub(super) const CHECK_WAIT: Duration = Duration::from_secs(3);

const QUERY_BYTES: usize = 1 + 8;
const ANSWER_BYTES: usize = 1 + 8 + 1;

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

pub(super) fn encode_answer(member_id: u64, has_run: bool) -> Bytes {
    let mut frame = BytesMut::with_capacity(ANSWER_BYTES);
    frame.put_u8(ANSWER_TAG);
    frame.put_u64_le(member_id);
    frame.put_u8(u8::from(has_run));
    frame.freeze()
}

/// (member ID asked about, whether it has run); `None` for a malformed frame.
pub(super) fn decode_answer(frame: &[u8]) -> Option<(u64, bool)> {
    if frame.len() != ANSWER_BYTES || frame[0] != ANSWER_TAG || frame[9] > 1 {
        return None;
    }
    let id = u64::from_le_bytes(frame[1..9].try_into().expect("8 bytes"));
    Some((id, frame[9] == 1))
}

/// Where the check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CheckOutcome {
    Pending,
    /// No peer knows this member as one that has run: it may bootstrap.
    Passed,
    /// This peer knows this member as one that has run.
    AlreadyBootstrapped {
        peer: u64,
    },
}

/// The check of one bootstrapping member.
#[derive(Debug)]
pub(super) struct BootstrapCheck {
    member_id: u64,
    peers: Vec<u64>,
    answered: HashSet<u64>,
    /// The first peer that knows this member as one that has run.
    known_by: Option<u64>,
    deadline: Instant,
}

impl BootstrapCheck {
    /// `peers`: the other members of the initial cluster.
    pub(super) fn new(member_id: u64, peers: Vec<u64>, now: Instant) -> BootstrapCheck {
        assert!(
            !peers.contains(&member_id),
            "member {member_id:x} does not ask itself"
        );
        BootstrapCheck {
            member_id,
            peers,
            answered: HashSet::new(),
            known_by: None,
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
        match decode_answer(frame) {
            Some((id, true)) if id == self.member_id && self.peers.contains(&peer) => {
                self.known_by.get_or_insert(peer);
            }
            Some((id, false)) if id == self.member_id && self.peers.contains(&peer) => {
                self.answered.insert(peer);
            }
            _ => {}
        }
        self.outcome(now)
    }

    /// Refused as soon as one peer knows the member; passed once every peer said no, or once
    /// the wait is over.
    pub(super) fn outcome(&self, now: Instant) -> CheckOutcome {
        if let Some(peer) = self.known_by {
            CheckOutcome::AlreadyBootstrapped { peer }
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

    #[test]
    fn frames_round_trip_and_malformed_ones_are_refused() {
        assert_eq!(decode_query(&encode_query(0xAB)), Some(0xAB));
        assert_eq!(decode_answer(&encode_answer(7, true)), Some((7, true)));
        assert_eq!(decode_answer(&encode_answer(7, false)), Some((7, false)));
        assert_eq!(decode_query(&encode_query(1)[..8]), None);
        let mut bad = encode_answer(7, true).to_vec();
        bad[9] = 2;
        assert_eq!(decode_answer(&bad), None);
        assert_eq!(decode_answer(&encode_query(7)), None);
    }

    #[test]
    fn one_peer_that_knows_the_member_stops_it() {
        let now = Instant::now();
        let mut check = BootstrapCheck::new(1, vec![2, 3], now);
        assert_eq!(check.outcome(now), CheckOutcome::Pending);
        assert_eq!(
            check.on_answer(2, &encode_answer(1, false), now),
            CheckOutcome::Pending
        );
        assert_eq!(check.unanswered(), [3]);
        assert_eq!(
            check.on_answer(3, &encode_answer(1, true), now),
            CheckOutcome::AlreadyBootstrapped { peer: 3 }
        );
    }

    #[test]
    fn every_peer_saying_no_or_the_wait_passing_lets_it_bootstrap() {
        let now = Instant::now();
        let mut check = BootstrapCheck::new(1, vec![2, 3], now);
        // An answer about another member, or from a stranger, is no answer.
        assert_eq!(
            check.on_answer(2, &encode_answer(9, false), now),
            CheckOutcome::Pending
        );
        assert_eq!(
            check.on_answer(4, &encode_answer(1, false), now),
            CheckOutcome::Pending
        );
        check.on_answer(2, &encode_answer(1, false), now);
        assert_eq!(
            check.on_answer(3, &encode_answer(1, false), now),
            CheckOutcome::Passed
        );
        let waited = BootstrapCheck::new(1, vec![2], now);
        assert_eq!(waited.outcome(now + CHECK_WAIT), CheckOutcome::Passed);
    }
}
