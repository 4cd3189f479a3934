//! Named scenarios, one per claim of the mission, each asserting the outcome it names.

use tally_core::testing::{Cluster, Faults, SimConfig};
use tally_core::{ConfChange, ConfChangeKind, NodeId, ProposeError, Role};
use tally_tests::sim::{commit_with_retries, payload, wait_applied_on};

const SEED: u64 = 0x7A11;

fn cluster(nodes: usize) -> Cluster {
    let mut cluster = Cluster::new(SimConfig::new(nodes, SEED).with_faults(Faults::latency()));
    let settled = cluster.run_until(500, |c| {
        c.leader().is_some_and(|leader| {
            c.member_ids()
                .iter()
                .all(|&id| c.status(id).is_some_and(|s| s.leader() == leader))
        })
    });
    assert!(settled, "a leader is elected and known to every member");
    cluster
}

fn leader(cluster: &Cluster) -> NodeId {
    cluster.leader().expect("a leader exists")
}

fn followers(cluster: &Cluster) -> Vec<NodeId> {
    let leader = leader(cluster);
    cluster
        .member_ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect()
}

/// Proposes `data` at `id` and reports whether it is acknowledged within `ticks` ticks.
fn write_via(cluster: &mut Cluster, id: NodeId, data: &[u8], ticks: u64) -> bool {
    if cluster.propose(id, data).is_err() {
        return false;
    }
    cluster.run_until(ticks, |c| c.acknowledged_index(data).is_some())
}

fn all_converge(cluster: &mut Cluster, ids: &[NodeId]) -> bool {
    let ids = ids.to_vec();
    cluster.run_until(1000, |c| {
        let first = c.state_of(ids[0]);
        first.0 > 0 && ids.iter().all(|&id| c.state_of(id) == first)
    })
}

#[test]
fn s01_three_nodes_elect_exactly_one_leader() {
    let mut cluster = cluster(3);
    cluster.run_ticks(100);
    let leaders = cluster.leaders();
    assert_eq!(leaders.len(), 1, "exactly one leader: {leaders:?}");
    let (leader, term) = leaders[0];
    for id in cluster.member_ids() {
        let status = cluster.status(id).expect("up");
        assert_eq!(status.leader(), leader, "node {id} follows the leader");
        assert_eq!(status.term(), term, "node {id} is in the leader's term");
    }
}

#[test]
fn s02_write_sent_to_follower_is_forwarded_and_committed() {
    let mut cluster = cluster(3);
    let follower = followers(&cluster)[0];
    let data = payload(1);
    assert!(
        write_via(&mut cluster, follower, &data, 100),
        "forwarded write is acknowledged"
    );
    let ids = cluster.member_ids();
    assert!(
        wait_applied_on(&mut cluster, &ids, &data, 100),
        "applied on every member"
    );
}

#[test]
fn s03_write_is_acknowledged_only_with_a_quorum() {
    let mut cluster = cluster(3);
    let leader = leader(&cluster);
    let others = followers(&cluster);
    // With quorum: the moment it is acknowledged, a majority holds it durably.
    let data = payload(1);
    cluster.propose(leader, &data).expect("leader accepts");
    let acknowledged = cluster.run_until(100, |c| c.acknowledged_index(&data).is_some());
    assert!(acknowledged);
    let index = cluster.acknowledged_index(&data).expect("acknowledged");
    let durable = cluster
        .member_ids()
        .into_iter()
        .filter(|&id| cluster.status(id).is_some_and(|s| s.persisted() >= index))
        .count();
    assert!(
        durable >= 2,
        "acknowledged with only {durable} durable copies"
    );
    // Without quorum: 2 of 3 cut off, never acknowledged.
    cluster.partition(&[&[leader], &others]);
    let lonely = payload(2);
    let _accepted = cluster.propose(leader, &lonely);
    cluster.run_ticks(30);
    assert_eq!(
        cluster.acknowledged_index(&lonely),
        None,
        "a write without quorum is never acknowledged"
    );
    assert_ne!(
        cluster.status(leader).map(|s| s.role()),
        Some(Role::Leader),
        "the cut-off leader stepped down"
    );
}

#[test]
fn s04_killing_the_leader_elects_a_new_one_and_writes_continue() {
    let mut cluster = cluster(3);
    assert!(commit_with_retries(&mut cluster, &payload(1)));
    let old = leader(&cluster);
    let old_term = cluster.status(old).expect("up").term();
    cluster.crash(old);
    let elected = cluster.run_until(300, |c| c.leader().is_some_and(|l| l != old));
    assert!(elected, "a new leader is elected");
    let new = leader(&cluster);
    assert!(cluster.status(new).expect("up").term() > old_term);
    let data = payload(2);
    assert!(write_via(&mut cluster, new, &data, 100), "writes continue");
    assert!(
        cluster.applied_on(new, &payload(1)),
        "the earlier write survived"
    );
}

#[test]
fn s05_five_nodes_survive_two_failures_not_three() {
    let mut cluster = cluster(5);
    let down: Vec<NodeId> = followers(&cluster).into_iter().take(2).collect();
    for &id in &down {
        cluster.crash(id);
    }
    assert!(
        commit_with_retries(&mut cluster, &payload(1)),
        "5 nodes with 2 down accept writes"
    );
    let third = followers(&cluster)
        .into_iter()
        .find(|id| !down.contains(id))
        .expect("a live follower");
    cluster.crash(third);
    let leader = leader(&cluster);
    let data = payload(2);
    let _accepted = cluster.propose(leader, &data);
    cluster.run_ticks(300);
    assert_eq!(
        cluster.acknowledged_index(&data),
        None,
        "5 nodes with 3 down accept no write"
    );
    assert!(cluster.leader().is_none(), "no leader without quorum");
}

#[test]
fn s06_four_nodes_split_two_two_commit_nothing_until_healed() {
    let mut cluster = cluster(4);
    assert!(commit_with_retries(&mut cluster, &payload(1)));
    cluster.partition(&[&[1, 2], &[3, 4]]);
    cluster.run_ticks(50);
    for (n, id) in [(2u64, 1), (3, 3), (4, 2), (5, 4)] {
        let _maybe = cluster.propose(id, &payload(n));
    }
    cluster.run_ticks(300);
    for n in 2..=5 {
        assert_eq!(
            cluster.acknowledged_index(&payload(n)),
            None,
            "no side commits while split 2/2"
        );
    }
    assert!(cluster.leader().is_none(), "no side keeps a leader");
    cluster.heal();
    assert!(
        commit_with_retries(&mut cluster, &payload(6)),
        "after healing the cluster commits again"
    );
    assert!(all_converge(&mut cluster, &[1, 2, 3, 4]));
    for id in 1..=4 {
        assert!(
            cluster.applied_on(id, &payload(1)),
            "no side lost the acknowledged write"
        );
    }
}

#[test]
fn s07_concurrent_writes_to_one_key_apply_in_one_order_everywhere() {
    let mut cluster = cluster(3);
    let ids = cluster.member_ids();
    let (a, b) = (b"key=from-1".to_vec(), b"key=from-2".to_vec());
    cluster.propose(ids[0], &a).expect("accepted");
    cluster.propose(ids[1], &b).expect("accepted");
    assert!(
        cluster.run_until(200, |c| c.acknowledged_index(&a).is_some()
            && c.acknowledged_index(&b).is_some())
    );
    assert_ne!(
        cluster.acknowledged_index(&a),
        cluster.acknowledged_index(&b),
        "the writes are ordered"
    );
    assert!(
        all_converge(&mut cluster, &ids),
        "every node applied the same sequence"
    );
}

#[test]
fn s08_partitioned_minority_leader_cannot_commit_and_steps_down() {
    let mut cluster = cluster(3);
    let old = leader(&cluster);
    let old_term = cluster.status(old).expect("up").term();
    let others = followers(&cluster);
    cluster.partition(&[&[old], &others]);
    let data = payload(1);
    cluster
        .propose(old, &data)
        .expect("the isolated leader still accepts proposals");
    cluster.run_ticks(3 * u64::from(SimConfig::new(3, 0).election_ticks()));
    assert_ne!(
        cluster.status(old).expect("up").role(),
        Role::Leader,
        "CheckQuorum stepped it down"
    );
    assert_eq!(
        cluster.acknowledged_index(&data),
        None,
        "the minority never committed"
    );
    let majority_leader = cluster.leader().expect("the majority elected a leader");
    assert!(others.contains(&majority_leader));
    assert!(cluster.status(majority_leader).expect("up").term() > old_term);
}

#[test]
fn s09_lagging_node_catches_up_through_a_snapshot() {
    let mut cluster = Cluster::new(
        SimConfig::new(3, SEED)
            .with_faults(Faults::latency())
            .with_snapshot_interval_entries(32),
    );
    assert!(cluster.run_until(500, |c| c.leader().is_some()));
    let lagging = followers(&cluster)[0];
    cluster.crash(lagging);
    for n in 1..=150 {
        assert!(commit_with_retries(&mut cluster, &payload(n)));
    }
    let leader = leader(&cluster);
    assert!(
        cluster.status(leader).expect("up").snapshot_index() > 32,
        "the leader compacted its log"
    );
    cluster.restart(lagging);
    let caught_up = cluster.run_until(500, |c| c.applied_on(lagging, &payload(150)));
    assert!(caught_up, "the lagging node caught up");
    let snapshot_index = cluster.status(lagging).expect("up").snapshot_index();
    assert!(
        snapshot_index > 32,
        "it caught up through a snapshot (snapshot index {snapshot_index})"
    );
    let ids = cluster.member_ids();
    assert!(all_converge(&mut cluster, &ids));
}

fn change_membership(cluster: &mut Cluster, change: ConfChange, expect_voters: usize) {
    for _ in 0..20 {
        let leader = leader(cluster);
        let proposed = cluster
            .with_node(leader, |n| n.propose_conf_change(&change))
            .expect("leader is up");
        if proposed.is_ok() {
            let done = cluster.run_until(300, |c| {
                c.leader()
                    .and_then(|l| c.status(l))
                    .is_some_and(|s| s.conf().voters().len() == expect_voters)
            });
            if done {
                return;
            }
        } else {
            cluster.run_ticks(5);
        }
    }
    panic!("membership change {change:?} never took effect");
}

#[test]
fn s10_membership_grows_three_to_five_and_shrinks_back_under_load() {
    let mut cluster = cluster(3);
    let mut next = 0;
    let mut write = |cluster: &mut Cluster| {
        next += 1;
        assert!(
            commit_with_retries(cluster, &payload(next)),
            "writes continue during reconfiguration"
        );
    };
    for expect in [4, 5] {
        let id = cluster.add_joining_member();
        write(&mut cluster);
        change_membership(
            &mut cluster,
            ConfChange::new(ConfChangeKind::AddVoter, id),
            expect,
        );
        write(&mut cluster);
    }
    assert!(
        all_converge(&mut cluster, &[1, 2, 3, 4, 5]),
        "new members hold all data"
    );
    for (id, expect) in [(5, 4), (4, 3)] {
        change_membership(
            &mut cluster,
            ConfChange::new(ConfChangeKind::RemoveNode, id),
            expect,
        );
        write(&mut cluster);
    }
    let leader = leader(&cluster);
    assert_eq!(
        cluster.status(leader).expect("up").conf().voters(),
        &[1, 2, 3]
    );
    cluster.crash(1);
    cluster.crash(2);
    cluster.crash(3);
    cluster.restart(1);
    cluster.restart(2);
    cluster.restart(3);
    write(&mut cluster);
}

#[test]
fn removed_leader_steps_down_and_the_rest_elect_a_successor() {
    let mut cluster = cluster(3);
    let old = leader(&cluster);
    cluster
        .with_node(old, |n| {
            n.propose_conf_change(&ConfChange::new(ConfChangeKind::RemoveNode, old))
        })
        .expect("up")
        .expect("accepted");
    let replaced = cluster.run_until(500, |c| c.leader().is_some_and(|l| l != old));
    assert!(replaced, "a successor is elected");
    assert_ne!(cluster.status(old).expect("up").role(), Role::Leader);
    assert!(commit_with_retries(&mut cluster, &payload(1)));
}

/// Adds `learner` to a 3-voter cluster as a learner and waits until the leader has it so.
fn add_learner(cluster: &mut Cluster, learner: NodeId) {
    change_membership(
        cluster,
        ConfChange::new(ConfChangeKind::AddLearner, learner),
        3,
    );
    assert!(cluster.run_until(300, |c| {
        c.status(leader(c))
            .is_some_and(|s| s.conf().is_learner(learner))
    }));
}

#[test]
fn learner_replicates_without_voting_and_can_be_promoted() {
    let mut cluster = cluster(3);
    let learner = cluster.add_joining_member();
    add_learner(&mut cluster, learner);
    let data = payload(1);
    assert!(commit_with_retries(&mut cluster, &data));
    assert!(
        wait_applied_on(&mut cluster, &[learner], &data, 300),
        "the learner receives data"
    );
    change_membership(
        &mut cluster,
        ConfChange::new(ConfChangeKind::AddVoter, learner),
        4,
    );
    assert!(
        cluster
            .status(leader(&cluster))
            .expect("up")
            .conf()
            .is_voter(learner)
    );
}

/// A learner that has not caught up is not promoted (etcd's readiness rule): as a voter it
/// would count towards the quorum before it could vote. Once it holds the log, it is.
#[test]
fn a_learner_is_promoted_only_once_caught_up() {
    let mut cluster = cluster(3);
    for i in 0..20 {
        assert!(commit_with_retries(&mut cluster, &payload(i)));
    }
    let learner = cluster.add_joining_member();
    cluster.crash(learner);
    add_learner(&mut cluster, learner);
    let promote = ConfChange::new(ConfChangeKind::AddVoter, learner);
    let refused = cluster
        .with_node(leader(&cluster), |n| n.propose_conf_change(&promote))
        .expect("leader is up");
    assert_eq!(
        refused,
        Err(ProposeError::LearnerNotReady),
        "the learner is down"
    );
    cluster.restart(learner);
    let data = payload(99);
    assert!(commit_with_retries(&mut cluster, &data));
    assert!(
        wait_applied_on(&mut cluster, &[learner], &data, 500),
        "it catches up"
    );
    change_membership(&mut cluster, promote, 4);
}

#[test]
fn leadership_transfers_to_a_caught_up_member() {
    let mut cluster = cluster(3);
    assert!(commit_with_retries(&mut cluster, &payload(1)));
    let target = followers(&cluster)[1];
    let old = leader(&cluster);
    cluster
        .with_node(old, |n| n.transfer_leader(target))
        .expect("up")
        .expect("transfer starts");
    assert!(
        cluster.run_until(100, |c| c.leader() == Some(target)),
        "the target leads"
    );
    assert!(commit_with_retries(&mut cluster, &payload(2)));
}

#[test]
fn linearizable_reads_on_leader_and_followers_see_acknowledged_writes() {
    let mut cluster = cluster(3);
    for n in 1..=5 {
        assert!(commit_with_retries(&mut cluster, &payload(n)));
    }
    let acknowledged = cluster
        .acknowledged_index(&payload(5))
        .expect("acknowledged");
    for (request, id) in cluster.member_ids().into_iter().enumerate() {
        cluster
            .read_index(id, request as u64 + 1)
            .expect("read accepted");
    }
    assert!(
        cluster.run_until(100, |c| c.completed_reads().len() == 3),
        "all reads confirmed"
    );
    assert!(
        cluster
            .completed_reads()
            .iter()
            .all(|&(_, index)| index >= acknowledged)
    );
}

#[test]
fn restarting_every_member_keeps_all_data() {
    let mut cluster = cluster(3);
    for n in 1..=100 {
        assert!(commit_with_retries(&mut cluster, &payload(n)));
    }
    for id in cluster.member_ids() {
        cluster.crash(id);
    }
    for id in cluster.member_ids() {
        cluster.restart(id);
    }
    assert!(commit_with_retries(&mut cluster, &payload(101)));
    let ids = cluster.member_ids();
    assert!(all_converge(&mut cluster, &ids));
    for id in cluster.member_ids() {
        assert!(cluster.applied_on(id, &payload(1)) && cluster.applied_on(id, &payload(100)));
    }
}
