//! PreVote: a node cut off from the cluster keeps timing out, but without a majority's
//! pre-votes it never raises its term, so when it rejoins it neither inflates the cluster's
//! term nor deposes the leader that kept serving the majority.

use super::net::Net;

#[test]
fn a_healed_partitioned_follower_neither_raises_the_term_nor_deposes_the_leader() {
    let mut net = Net::new(3, |config| config);
    net.elect(1);
    net.settle();
    let term = net.status(1).term();

    net.partition(&[&[1, 2], &[3]]);
    let partitioned_ticks = 10 * net.election_ticks();
    for _ in 0..partitioned_ticks {
        net.tick_all();
    }
    let cut_off_term = net.status(3).term();

    net.heal();
    for _ in 0..partitioned_ticks {
        net.tick_all();
    }
    assert_eq!(
        net.leaders(),
        [1],
        "S3's return deposed the leader S1 of term {term}"
    );
    for id in 1..=3 {
        assert_eq!(
            net.status(id).term(),
            term,
            "S{id} left the leader's term {term}"
        );
        assert_eq!(net.status(id).leader(), 1, "S{id} follows S1");
    }
    assert_eq!(cut_off_term, term, "S3 raised its term while cut off");
}
