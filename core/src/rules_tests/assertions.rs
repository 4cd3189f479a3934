//! Broken invariants of the node's own state panic, naming the numbers (as etcd-raft's
//! `commitTo` and `inflights.Add` do); the same conditions caused by a peer's message or by
//! recovered storage are refused with a typed error and leave the node unchanged.

use alloc::vec::Vec;
use bytes::Bytes;

use super::net::Net;
use crate::log::RaftLog;
use crate::message::{Body, Message};
use crate::progress::Progress;
use crate::{
    Action, ConfState, Config, ConfigError, Entry, EntryKind, HardState, NO_NODE, Node, Recovered,
    Role, Snapshot, SnapshotMeta, StepError,
};

fn entries(count: u64) -> Vec<Entry> {
    (1..=count)
        .map(|index| Entry::new(index, 1, EntryKind::Normal, Bytes::new()))
        .collect()
}

fn recovered(voters: &[u64], commit: u64, entry_count: u64) -> Recovered {
    let conf = ConfState::new(voters, &[]);
    let snapshot = Snapshot::new(SnapshotMeta::new(0, 0, conf), Bytes::new());
    Recovered::new(
        HardState::new(1, NO_NODE, commit),
        snapshot,
        entries(entry_count),
    )
}

/// A single-voter node that has elected itself.
fn lone_leader() -> Node {
    let mut node = Node::restart(Config::new(1, 7), recovered(&[1], 1, 1)).expect("valid");
    for _ in 0..100 {
        node.tick();
        while let Some(action) = node.poll_action() {
            if let Action::Persist(persist) = action {
                assert!(node.on_persisted(persist.last_index(), persist.last_term()));
            }
        }
        if node.status().role() == Role::Leader {
            return node;
        }
    }
    panic!("a single voter elects itself");
}

#[test]
#[should_panic(expected = "commit index 3 is beyond the last log index 2")]
fn committing_beyond_the_last_log_index_panics() {
    let mut log = RaftLog::new(Snapshot::default(), entries(2), true);
    log.commit_to(3);
}

#[test]
#[should_panic(expected = "persisted index 4 is beyond the last log index 2")]
fn persisting_beyond_the_last_log_index_panics() {
    let mut log = RaftLog::new(Snapshot::default(), entries(2), false);
    let _unstable = log.take_unstable();
    log.persisted_to(4);
}

#[test]
#[should_panic(expected = "append ending at index 5 sent into a full in-flight window (4 of 4)")]
fn sending_into_a_full_inflight_window_panics() {
    let inflight_max = 4;
    let mut progress = Progress::new(1);
    progress.become_replicate();
    for last_index in 1..=4 {
        assert!(!progress.is_paused(inflight_max));
        progress.sent_append(last_index, 1, inflight_max);
    }
    assert!(progress.is_paused(inflight_max));
    progress.sent_append(5, 1, inflight_max);
}

#[test]
#[should_panic(expected = "invalid role transition Leader -> Candidate")]
fn a_leader_becoming_a_candidate_panics() {
    lone_leader().transition_to(Role::Candidate);
}

#[test]
#[should_panic(expected = "invalid role transition Leader -> PreCandidate")]
fn a_leader_becoming_a_pre_candidate_panics() {
    lone_leader().transition_to(Role::PreCandidate);
}

#[test]
#[should_panic(expected = "invalid role transition Follower -> Leader")]
fn a_follower_becoming_leader_panics() {
    let mut node = Node::restart(Config::new(1, 7), recovered(&[1, 2, 3], 1, 1)).expect("valid");
    node.transition_to(Role::Leader);
}

#[test]
fn a_recovered_commit_index_beyond_the_recovered_log_is_refused() {
    let refused = Node::restart(Config::new(1, 7), recovered(&[1, 2, 3], 3, 2));
    assert_eq!(
        refused.map(|node| node.status().commit()),
        Err(ConfigError::RecoveredCommitBeyondLog)
    );
    let accepted = Node::restart(Config::new(1, 7), recovered(&[1, 2, 3], 2, 2));
    assert_eq!(accepted.map(|node| node.status().commit()), Ok(2));
}

#[test]
fn a_heartbeat_committing_beyond_the_log_is_refused() {
    let mut follower =
        Node::restart(Config::new(3, 7), recovered(&[1, 2, 3], 1, 2)).expect("valid");
    let before = follower.status();
    let heartbeat = |commit| Message::new(2, 3, 2, Body::Heartbeat { commit, context: 0 });
    assert_eq!(follower.step(heartbeat(3)), Err(StepError::IndexBeyondLog));
    assert_eq!(
        follower.status(),
        before,
        "a refused message changes nothing"
    );
    assert_eq!(follower.step(heartbeat(2)), Ok(()));
    assert_eq!(follower.status().commit(), 2);
}

#[test]
fn an_acknowledgement_beyond_the_leaders_log_is_refused() {
    let mut net = Net::new(3, |config| config);
    net.elect(1);
    net.settle();
    let status = net.status(1);
    let matched = net.node(1).progress(2).expect("leader").matched();
    let ack = |index| {
        let body = Body::AppendResp {
            reject: false,
            index,
            hint_index: 0,
            hint_term: 0,
        };
        Message::new(2, 1, status.term(), body)
    };
    assert_eq!(
        net.inject(ack(status.last_index() + 1)),
        Err(StepError::IndexBeyondLog)
    );
    assert_eq!(net.node(1).progress(2).expect("leader").matched(), matched);
    assert_eq!(net.inject(ack(status.last_index())), Ok(()));
}
