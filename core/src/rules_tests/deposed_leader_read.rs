//! ReadIndex on a deposed leader: a leader cut off from the majority still believes it leads
//! until CheckQuorum notices, while the majority elects a new leader and commits newer writes.
//! A read it confirmed from its own commit index would miss those writes, so it confirms one
//! only after a quorum answers a heartbeat sent after the read arrived.

use bytes::Bytes;

use super::net::Net;
use crate::Role;

const READ: u64 = 7;

#[test]
fn a_deposed_leader_never_confirms_a_read_below_a_newer_write() {
    let mut net = Net::new(5, |config| config);
    net.elect(1);
    net.settle();
    let old_term = net.status(1).term();

    // The majority elects its own leader and commits a write. S1 does not tick, so it cannot
    // notice through CheckQuorum that it lost its quorum.
    net.partition(&[&[1], &[2, 3, 4, 5]]);
    let leader = net.tick_until_leader(&[2, 3, 4, 5]);
    net.with_node(leader, |node| {
        node.propose(Bytes::from_static(b"newer write"))
    })
    .expect("the new leader accepts writes");
    net.settle();
    let write_index = net.status(leader).last_index();
    assert_eq!(
        net.status(leader).commit(),
        write_index,
        "the write committed"
    );
    assert_eq!(net.status(1).role(), Role::Leader);
    assert_eq!(net.status(1).term(), old_term, "S1 still believes it leads");
    assert!(net.status(1).commit() < write_index);

    net.with_node(1, |node| node.read_index(READ))
        .expect("a leader takes reads");
    net.settle();
    // Fewer ticks than an election timeout: S1 keeps leading and keeps sending heartbeats
    // that no quorum answers.
    for _ in 1..net.election_ticks() {
        assert_eq!(
            net.read_ready(1, READ),
            None,
            "the deposed leader S1 confirmed a read at its own commit index, below the write \
             committed at {write_index} by the new leader"
        );
        net.tick(1);
        net.settle();
    }
    assert_eq!(net.status(1).role(), Role::Leader);
    assert_eq!(
        net.read_ready(1, READ),
        None,
        "no quorum confirmed the read"
    );

    // Healed, S1 learns the newer term from the answers to its heartbeats and steps down; the
    // read it could not confirm is dropped, never answered late at a stale index.
    net.heal();
    net.tick(1);
    net.settle();
    assert_eq!(net.status(1).role(), Role::Follower);
    assert_eq!(
        net.read_ready(1, READ),
        None,
        "the unconfirmed read is dropped"
    );

    // A read through S1 now goes to the new leader and sees the write.
    net.tick(leader);
    net.settle();
    assert_eq!(net.status(1).leader(), leader);
    net.with_node(1, |node| node.read_index(READ + 1))
        .expect("a follower forwards reads");
    net.settle();
    let index = net
        .read_ready(1, READ + 1)
        .expect("the new leader confirms it");
    assert!(index >= write_index, "read at {index} below {write_index}");
}
