//! The current-term commit rule (Raft §5.4.2, Figure 8): a leader never commits an entry of
//! an earlier term by counting the replicas that hold it; that entry commits only together
//! with an entry of the leader's own term, once a majority holds that one.
//!
//! The nodes S1..S5 share index 1 (term 1). Leaders append an empty entry when elected, which
//! plays the part of the figure's client entries: S1's of term 2 and S5's of term 3 land at
//! index 2, S1's of term 4 at index 3. A leader counts only what followers acknowledged in its
//! term, and S2 acknowledges index 2 to S1 in term 4 only in answer to the append that carries
//! index 3, so unlike the figure S2 holds index 3 too: two of five nodes, not a majority.

use super::net::Net;
use crate::{Config, NodeId, Role};

/// The figure's elections need candidates that raise their term freely: PreVote and
/// CheckQuorum, which keep a healthy leader in place, are off. One entry per append lets the
/// leader place index 2 on a follower while index 3 is still on its way.
fn figure_8_config(config: Config) -> Config {
    config
        .with_pre_vote(false)
        .with_check_quorum(false)
        .with_message_bytes_max(1)
}

fn log_term(net: &Net, id: NodeId, index: u64) -> Option<u64> {
    net.node(id).log_term(index)
}

/// (a) and (b), then S1 elected in term 4. S1's first appends of term 4 are still queued,
/// and S1 can reach S2 and S3.
fn figure_8_until_s1_leads_term_4() -> Net {
    let mut net = Net::new(5, figure_8_config);

    // (a) S1 leads term 2 and places its entry (index 2) on S2 only.
    net.elect(1);
    assert_eq!(net.status(1).term(), 2);
    net.partition(&[&[1, 2], &[3, 4, 5]]);
    net.settle();
    assert_eq!(log_term(&net, 2, 2), Some(2));
    assert_eq!(log_term(&net, 3, 2), None);
    net.crash(1);

    // (b) S5 leads term 3 with votes from S3 and S4, appends index 2 locally, and crashes.
    net.partition(&[&[2], &[3, 4, 5]]);
    net.elect(5);
    assert_eq!(net.status(5).term(), 3);
    assert_eq!(log_term(&net, 5, 2), Some(3));
    net.crash(5);

    // (c) S1 restarts and leads term 4 (S3 and S4 refuse term 3: they voted for S5).
    net.restart(1);
    net.partition(&[&[1, 2, 3, 4]]);
    net.elect(1);
    assert_eq!(net.status(1).term(), 4);
    assert_eq!(log_term(&net, 1, 3), Some(4));
    net.partition(&[&[1, 2, 3], &[4]]);
    net
}

/// (c): S1 has just placed its term-2 entry on S3, so S1, S2 and S3 (a majority) hold index 2
/// and S1 knows it; its term-4 entry at index 3 is on S1 and S2 and queued for S3.
fn figure_8_c() -> Net {
    let mut net = figure_8_until_s1_leads_term_4();
    let placed = net.deliver_until(|net| {
        net.node(1)
            .progress(3)
            .is_some_and(|progress| progress.matched() >= 2)
    });
    assert!(placed, "S1 replicated index 2 to S3");
    for id in [1, 2, 3] {
        assert_eq!(
            log_term(&net, id, 2),
            Some(2),
            "S{id} holds index 2 of term 2"
        );
    }
    for id in [2, 3] {
        let matched = net.node(1).progress(id).map(|progress| progress.matched());
        assert!(matched >= Some(2), "S1 knows S{id} holds index 2");
    }
    assert_eq!(log_term(&net, 3, 3), None);
    net
}

#[test]
fn an_older_term_entry_on_a_majority_is_not_committed_by_counting_replicas() {
    let net = figure_8_c();
    assert_eq!(
        net.status(1).commit(),
        1,
        "S1 committed index 2 (term 2) in term 4 because a majority holds it, yet S5 can \
         still be elected and overwrite it"
    );
    assert_eq!(net.applied_term(2), None, "no node applied index 2");
}

/// (d): why the entry of (c) must not count as committed.
#[test]
fn an_older_term_entry_on_a_majority_is_overwritten_when_the_leader_crashes() {
    let mut net = figure_8_c();
    assert_eq!(net.status(1).commit(), 1, "S1 committed index 2 in term 4");
    net.crash(1);
    net.restart(5);
    net.partition(&[&[2, 3, 4, 5]]);
    // Term 4 fails (S2, S3 and S4 voted for S1); term 5 wins with S3 and S4.
    net.elect(5);
    assert_eq!(net.status(5).term(), 5);
    net.settle();
    for id in [2, 3, 4, 5] {
        assert_eq!(
            log_term(&net, id, 2),
            Some(3),
            "S5 overwrote index 2 on S{id}"
        );
    }
    assert!(net.status(5).commit() >= 3, "S5 commits its own term");
    assert_eq!(
        net.applied_term(2),
        Some(3),
        "index 2 is applied as S5's entry only"
    );
}

/// (e): once S1's term-4 entry is on a majority, both entries commit, and S5 can no longer
/// be elected.
#[test]
fn an_older_term_entry_commits_with_a_current_term_entry_on_a_majority() {
    let mut net = figure_8_c();
    assert_eq!(net.status(1).commit(), 1, "S1 committed index 2 in term 4");
    net.settle();
    assert_eq!(log_term(&net, 3, 3), Some(4), "S3 received index 3");
    assert_eq!(
        net.status(1).commit(),
        3,
        "index 3 (term 4) is on a majority"
    );
    assert_eq!(net.applied_term(2), Some(2), "index 2 commits with index 3");
    assert_eq!(net.applied_term(3), Some(4));

    net.crash(1);
    net.restart(5);
    net.partition(&[&[2, 3, 4, 5]]);
    for _ in 0..3 {
        net.campaign(5);
        net.settle();
    }
    assert_ne!(net.status(5).role(), Role::Leader, "S2 and S3 refuse S5");
    for id in [2, 3] {
        assert_eq!(log_term(&net, id, 2), Some(2), "S{id} keeps index 2");
    }
}

/// The crash and re-election sequence of Figure 8, with S1 crashing after each message of its
/// term-4 replication in turn, then S5 campaigning (or, once S2 and S3 hold index 3 and
/// refuse it, whoever wins). An entry that any node applied must never be replaced in a log
/// that held it, nor be missing from a later leader: the network checks both after every
/// step. Counting older-term replicas breaks this at the crash right after S3 acknowledges
/// index 2.
#[test]
fn figure_8_crash_and_reelection_never_overwrites_an_applied_entry() {
    let mut reached_majority = false;
    for crash_after in 0.. {
        let mut net = figure_8_until_s1_leads_term_4();
        let delivered = net.deliver_count(crash_after);
        reached_majority |= [1, 2, 3].iter().all(|&id| log_term(&net, id, 2) == Some(2));
        net.crash(1);
        net.restart(5);
        net.partition(&[&[2, 3, 4, 5]]);
        let leader = if net.try_elect(5) {
            5
        } else {
            net.tick_until_leader(&[2, 3, 4, 5])
        };
        net.settle();
        let commit = net.status(leader).commit();
        assert!(
            commit >= 3,
            "S{leader} commits its term after crash point {crash_after}"
        );
        for id in [2, 3, 4, 5] {
            assert_eq!(net.status(id).commit(), commit, "S{id} caught up");
        }
        if delivered < crash_after {
            break;
        }
    }
    assert!(
        reached_majority,
        "some crash point found index 2 (term 2) on a majority"
    );
}
