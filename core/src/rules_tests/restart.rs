//! The hard state across a restart: a node comes back with the term, vote and commit index it
//! wrote, so it never votes for two candidates in one term (which would let two leaders win
//! it) and never forgets what it knew was committed.

use bytes::Bytes;

use super::net::Net;
use crate::message::{Body, Message};
use crate::{NO_NODE, NodeId, Status};

/// Three nodes; S1 leads and commits a write, then is cut off, and S2 and S3 run an election
/// in which one votes for the other. The voter crashes the moment its vote is durable, so its
/// grant never leaves. Returns the network, the voter, the candidate it voted for, and the
/// voter's status just before the crash.
fn vote_then_crash() -> (Net, NodeId, NodeId, Status) {
    let mut net = Net::new(3, |config| config);
    net.elect(1);
    net.with_node(1, |node| node.propose(Bytes::from_static(b"write")))
        .expect("the leader accepts writes");
    net.settle();
    let old_term = net.status(1).term();
    net.partition(&[&[1], &[2, 3]]);
    let voted = |net: &Net| {
        [2, 3].iter().any(|&id| {
            let status = net.status(id);
            status.term() > old_term && status.vote() != NO_NODE && status.vote() != id
        })
    };
    for _ in 0..20 * net.election_ticks() {
        net.tick(2);
        net.tick(3);
        if net.deliver_until(voted) {
            break;
        }
    }
    let voter = [2, 3]
        .into_iter()
        .find(|&id| {
            let vote = net.status(id).vote();
            vote != NO_NODE && vote != id
        })
        .expect("one of S2 and S3 voted for the other");
    let before = net.status(voter);
    assert!(before.commit() >= 3, "the voter knows the write committed");
    net.crash(voter);
    (net, voter, before.vote(), before)
}

#[test]
fn restart_recovers_the_term_vote_and_commit_index() {
    let (mut net, voter, _candidate, before) = vote_then_crash();
    net.restart(voter);
    let after = net.status(voter);
    assert_eq!(
        (after.term(), after.vote(), after.commit()),
        (before.term(), before.vote(), before.commit()),
        "S{voter} came back with a different (term, vote, commit)"
    );
    assert_eq!(
        net.durable_hard_state(voter),
        crate::HardState::new(before.term(), before.vote(), before.commit())
    );
}

#[test]
fn a_restarted_node_never_votes_for_a_second_candidate_in_the_same_term() {
    let (mut net, voter, candidate, before) = vote_then_crash();
    net.restart(voter);
    let other = [1, 2, 3]
        .into_iter()
        .find(|&id| id != voter && id != candidate)
        .expect("a third node");
    let (last_index, last_term) = {
        let status = net.status(voter);
        (
            status.last_index(),
            net.node(voter).log_term(status.last_index()),
        )
    };
    let last_term = last_term.expect("the last entry is in memory");
    // The other node asks in the same term, with a log as up to date as the voter's, for the
    // vote and for a pre-vote.
    for body in [
        Body::Vote {
            last_index,
            last_term,
            transfer: false,
        },
        Body::PreVote {
            last_index,
            last_term,
        },
    ] {
        let request = Message::new(other, voter, before.term(), body);
        net.inject(request).expect("a valid request");
        let granted = net.queued().any(|reply| {
            reply.from() == voter
                && reply.to() == other
                && matches!(
                    reply.body,
                    Body::PreVoteResp { reject: false } | Body::VoteResp { reject: false }
                )
        });
        assert!(
            !granted,
            "S{voter}, restarted, granted S{other} a vote in term {} after voting for \
             S{candidate} in it",
            before.term()
        );
    }
    assert_eq!(net.status(voter).vote(), candidate);
}
