//! Unit tests of the node through its public API: the durability barrier, conflict
//! resolution, codec totality, and quickcheck properties of the quorum arithmetic.

use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;
use quickcheck::{QuickCheck, TestResult};

use crate::{
    Action, ConfState, Config, Entry, EntryKind, HardState, Message, MessageKind, Node, Recovered,
    Role, Snapshot, SnapshotMeta, is_majority, quorum_index,
};

fn restart(id: u64, term: u64, terms: &[u64]) -> Node {
    let conf = ConfState::new(&[1, 2, 3], &[]);
    let snapshot = Snapshot::new(SnapshotMeta::new(0, 0, conf), Bytes::new());
    let entries = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| Entry::new(i as u64 + 1, t, EntryKind::Normal, Bytes::from_static(b"x")))
        .collect();
    let recovered = Recovered::new(HardState::new(term, 0, 0), snapshot, entries);
    Node::restart(Config::new(id, 42).with_election_ticks(5), recovered).expect("valid")
}

/// Drains a node; persists immediately unless `hold_persist`. Returns sends and whether a
/// persist is outstanding.
fn drain(node: &mut Node, hold_persist: bool) -> (Vec<Message>, Option<(u64, u64)>) {
    let mut sends = Vec::new();
    let mut held = None;
    while let Some(action) = node.poll_action() {
        match action {
            Action::Send(message) => sends.push(message),
            Action::Persist(persist) if hold_persist => {
                held = Some((persist.last_index(), persist.last_term()))
            }
            Action::Persist(persist) => {
                assert!(node.on_persisted(persist.last_index(), persist.last_term()))
            }
            _ => {}
        }
    }
    (sends, held)
}

fn elect(node: &mut Node, voter: &mut Node) {
    for _ in 0..20 {
        exchange(node, voter, 1, |_, _| {});
        if node.status().role() == Role::Leader {
            return;
        }
    }
    panic!("node {} was not elected", node.id());
}

#[test]
fn vote_grant_waits_for_the_vote_to_be_durable() {
    let mut candidate = restart(1, 1, &[1]);
    let mut voter = restart(2, 1, &[1]);
    let mut vote_request = None;
    for _ in 0..20 {
        candidate.tick();
        let (sends, _) = drain(&mut candidate, false);
        if let Some(m) = sends
            .into_iter()
            .find(|m| m.to() == 2 && m.kind() == MessageKind::PreVote)
        {
            voter.step(m).expect("valid");
            let (replies, _) = drain(&mut voter, false);
            for reply in replies {
                candidate.step(reply).expect("valid");
            }
            let (sends, _) = drain(&mut candidate, false);
            vote_request = sends
                .into_iter()
                .find(|m| m.to() == 2 && m.kind() == MessageKind::Vote);
            break;
        }
    }
    voter
        .step(vote_request.expect("a vote request"))
        .expect("valid");
    let (sends, held) = drain(&mut voter, true);
    assert!(
        sends.iter().all(|m| m.kind() != MessageKind::VoteResp),
        "no grant before the vote is durable"
    );
    let (index, term) = held.expect("the vote must be persisted");
    assert!(
        !voter.on_persisted(index, term + 1),
        "a wrong acknowledgement is ignored"
    );
    assert!(voter.on_persisted(index, term));
    let (sends, _) = drain(&mut voter, true);
    assert!(
        sends.iter().any(|m| m.kind() == MessageKind::VoteResp),
        "the grant leaves after persistence"
    );
}

#[test]
fn append_acknowledgement_waits_for_persistence() {
    let mut leader = restart(1, 1, &[1]);
    let mut follower = restart(2, 1, &[1]);
    elect(&mut leader, &mut follower);
    leader
        .propose(Bytes::from_static(b"write"))
        .expect("leader accepts");
    let (sends, _) = drain(&mut leader, false);
    for message in sends
        .into_iter()
        .filter(|m| m.to() == 2 && m.kind() == MessageKind::Append)
    {
        follower.step(message).expect("valid");
    }
    let (sends, held) = drain(&mut follower, true);
    assert!(
        sends.iter().all(|m| m.kind() != MessageKind::AppendResp),
        "no acknowledgement before fsync"
    );
    let (index, term) = held.expect("entries to persist");
    assert!(follower.on_persisted(index, term));
    let (sends, _) = drain(&mut follower, true);
    assert!(sends.iter().any(|m| m.kind() == MessageKind::AppendResp));
}

/// `rounds` times: tick `leader` (or a candidate), deliver its messages to `follower` and the
/// follower's replies back; `on_reply` sees each reply before the leader steps it.
fn exchange(
    leader: &mut Node,
    follower: &mut Node,
    rounds: usize,
    mut on_reply: impl FnMut(&Node, &Message),
) {
    let (leader_id, follower_id) = (leader.id(), follower.id());
    for _ in 0..rounds {
        leader.tick();
        let (sends, _) = drain(leader, false);
        for message in sends.into_iter().filter(|m| m.to() == follower_id) {
            follower.step(message).expect("valid");
        }
        let (replies, _) = drain(follower, false);
        for reply in replies.into_iter().filter(|m| m.to() == leader_id) {
            on_reply(leader, &reply);
            leader.step(reply).expect("valid");
        }
    }
}

#[test]
fn conflicts_resolve_in_one_round_trip_per_term() {
    // The leader's log diverges after index 3; the follower holds 60 entries of terms 2 and 3.
    let mut follower_terms = vec![1, 1, 1];
    follower_terms.extend(core::iter::repeat_n(2, 30));
    follower_terms.extend(core::iter::repeat_n(3, 30));
    let mut follower = restart(2, 3, &follower_terms);
    let mut leader = restart(1, 4, &[1, 1, 1, 4, 4, 4, 4, 4]);
    elect(&mut leader, &mut follower);
    let mut rejections = 0;
    exchange(&mut leader, &mut follower, 20, |leader, reply| {
        if reply.kind() == MessageKind::AppendResp
            && leader.progress(2).is_some_and(|p| p.matched() < 9)
        {
            rejections += 1;
        }
    });
    assert_eq!(
        leader.progress(2).expect("leader").matched(),
        leader.status().last_index()
    );
    assert!(
        rejections <= 4,
        "found the divergence in {rejections} round trips, not one per entry"
    );
    assert_eq!(
        follower.log_term(4),
        Some(4),
        "the conflicting suffix was replaced"
    );
}

#[test]
fn proposal_without_leader_gets_a_typed_error() {
    let mut node = restart(1, 1, &[1]);
    assert_eq!(
        node.propose(Bytes::from_static(b"x")),
        Err(crate::ProposeError::NoLeader)
    );
    assert_eq!(node.read_index(1), Err(crate::ReadIndexError::NoLeader));
}

#[test]
fn decode_is_total_on_garbage() {
    fn property(kind: u8, tail: Vec<u8>) -> bool {
        // A valid version byte and kind, so the body decoders see the garbage too.
        let mut bytes = vec![crate::codec::CODEC_VERSION, kind % 14];
        bytes.extend_from_slice(&tail);
        crate::testing::fuzz_decode_message(&bytes);
        crate::testing::fuzz_decode_message(&tail);
        true
    }
    QuickCheck::new()
        .tests(5000)
        .quickcheck(property as fn(u8, Vec<u8>) -> bool);
}

#[test]
fn codec_round_trips_every_message_the_simulator_produces() {
    // The simulator asserts decode(encode(m)) == m for every message it carries.
    let mut cluster = crate::testing::Cluster::new(crate::testing::SimConfig::new(3, 9));
    cluster.run_ticks(200);
    assert!(cluster.leader().is_some());
}

#[test]
fn quorum_index_is_the_value_a_majority_reached() {
    fn property(values: Vec<u64>) -> TestResult {
        if values.is_empty() || values.len() > 9 {
            return TestResult::discard();
        }
        let mut sorted = values.clone();
        let index = quorum_index(&mut sorted);
        let at_or_above = values.iter().filter(|&&v| v >= index).count();
        let above = values.iter().filter(|&&v| v > index).count();
        TestResult::from_bool(
            is_majority(at_or_above, values.len()) && !is_majority(above, values.len()),
        )
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(property as fn(Vec<u64>) -> TestResult);
}

#[test]
fn majorities_of_one_configuration_always_intersect() {
    fn property(voters: u8, a: u16, b: u16) -> TestResult {
        let voters = usize::from(voters % 9) + 1;
        let mask = (1u16 << voters) - 1;
        let (a, b) = (a & mask, b & mask);
        let count = |m: u16| m.count_ones() as usize;
        if !is_majority(count(a), voters) || !is_majority(count(b), voters) {
            return TestResult::discard();
        }
        TestResult::from_bool(a & b != 0)
    }
    QuickCheck::new()
        .tests(5000)
        .quickcheck(property as fn(u8, u16, u16) -> TestResult);
}

#[test]
fn progress_never_moves_match_back_and_next_stays_above_match() {
    fn property(ops: Vec<(bool, u8, u8)>) -> bool {
        let mut progress = crate::progress::Progress::new(1);
        progress.become_replicate();
        for (ack, index, hint) in ops {
            let before = progress.matched;
            if ack {
                progress.acknowledge(u64::from(index));
            } else if progress.reject(u64::from(index), u64::from(hint))
                && progress.state == crate::ProgressState::Replicate
            {
                progress.become_probe();
            }
            if progress.matched < before || progress.next <= progress.matched {
                return false;
            }
        }
        true
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(property as fn(Vec<(bool, u8, u8)>) -> bool);
}

/// The fuzz targets' seed corpus, replayed as a regression test.
#[test]
fn fuzz_seed_corpus_replays_cleanly() {
    extern crate std;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    for (target, run) in [
        (
            "core_decode_message",
            crate::testing::fuzz_decode_message as fn(&[u8]),
        ),
        (
            "core_step_sequence",
            crate::testing::fuzz_schedule as fn(&[u8]),
        ),
    ] {
        let mut count = 0;
        for file in std::fs::read_dir(root.join(target)).expect("seed folder exists") {
            run(&std::fs::read(file.expect("entry").path()).expect("readable"));
            count += 1;
        }
        assert!(count > 0, "{target} has seeds");
    }
}

#[test]
fn random_schedules_keep_every_invariant() {
    fn property(schedule: Vec<u8>) -> bool {
        crate::testing::fuzz_schedule(&schedule);
        true
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(property as fn(Vec<u8>) -> bool);
}

/// Arbitrary messages of every kind survive encode → decode unchanged.
#[test]
fn codec_round_trips_arbitrary_messages() {
    use crate::message::Body;
    fn entries(seed: &[u64]) -> Vec<Entry> {
        seed.iter()
            .enumerate()
            .map(|(i, &v)| {
                let kind = if v % 3 == 0 {
                    EntryKind::ConfChange
                } else {
                    EntryKind::Normal
                };
                let data = Bytes::from(v.to_le_bytes()[..(v % 9) as usize].to_vec());
                Entry::new(v.wrapping_add(i as u64), v >> 3, kind, data)
            })
            .collect()
    }
    fn property(
        kind: u8,
        a: u64,
        b: u64,
        c: u64,
        flag: bool,
        seed: Vec<u64>,
        voters: Vec<u64>,
    ) -> bool {
        let body = match kind % 13 {
            0 => Body::PreVote {
                last_index: a,
                last_term: b,
            },
            1 => Body::PreVoteResp { reject: flag },
            2 => Body::Vote {
                last_index: a,
                last_term: b,
                transfer: flag,
            },
            3 => Body::VoteResp { reject: flag },
            4 => Body::Append {
                prev_index: a,
                prev_term: b,
                commit: c,
                entries: entries(&seed),
            },
            5 => Body::AppendResp {
                reject: flag,
                index: a,
                hint_index: b,
                hint_term: c,
            },
            6 => Body::Heartbeat {
                commit: a,
                context: b,
            },
            7 => Body::HeartbeatResp { context: a },
            8 => {
                let conf = ConfState::new(&voters, &seed);
                let data = Bytes::from(
                    voters
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect::<Vec<u8>>(),
                );
                Body::Snapshot {
                    snapshot: Snapshot::new(SnapshotMeta::new(a, b, conf), data),
                }
            }
            9 => Body::Propose {
                entries: entries(&seed),
            },
            10 => Body::ReadIndex { request: a },
            11 => Body::ReadIndexResp {
                request: a,
                index: b,
            },
            _ => Body::TimeoutNow,
        };
        let message = Message::new(a ^ 1, b ^ 2, c, body);
        let encoded = crate::codec::encode_to_vec(&message);
        // A snapshot's two parts are its encoding, cut before the data.
        let parts_match = match crate::codec::encode_snapshot_parts(&message) {
            Some((mut head, data)) => {
                // The head alone, from the data's length, is the same head: what a runtime
                // streaming released data from its own storage sends.
                let alone = crate::codec::encode_snapshot_head(&message, data.len() as u64);
                let heads_match = alone.as_ref() == Some(&head);
                let head_decodes = snapshot_head_decodes(&message, &head, data.len() as u64);
                head.extend_from_slice(&data);
                heads_match && head_decodes && head == encoded
            }
            None => {
                !matches!(message.body, Body::Snapshot { .. })
                    && crate::codec::encode_snapshot_head(&message, 0).is_none()
                    && crate::codec::decode_snapshot_head(&Bytes::from(encoded.clone())).is_err()
            }
        };
        parts_match && crate::codec::decode(&Bytes::from(encoded)) == Ok(message)
    }
    QuickCheck::new()
        .tests(3000)
        .quickcheck(property as fn(u8, u64, u64, u64, bool, Vec<u64>, Vec<u64>) -> bool);
}

/// The head decodes from the head alone and from any longer prefix of the encoding, to the
/// message without its data; no shorter prefix decodes.
fn snapshot_head_decodes(message: &Message, head: &[u8], data_bytes: u64) -> bool {
    use crate::codec::{DecodeError, decode_snapshot_head};
    let without_data = message.clone().with_snapshot_data(Bytes::new());
    let whole = decode_snapshot_head(&Bytes::from(head.to_vec()));
    let with_more = decode_snapshot_head(&Bytes::from([head, &[7u8; 3][..]].concat()));
    let decoded = |h: &Result<crate::codec::SnapshotHead, DecodeError>| {
        h.as_ref().is_ok_and(|h| {
            h.message() == &without_data
                && h.data_bytes() == data_bytes
                && h.head_bytes() == head.len()
        })
    };
    let short =
        (0..head.len()).all(|n| decode_snapshot_head(&Bytes::from(head[..n].to_vec())).is_err());
    decoded(&whole) && decoded(&with_more) && short
}

/// A membership change survives its entry encoding.
#[test]
fn conf_changes_round_trip() {
    fn property(kind: u8, node: u64, context: Vec<u8>) -> bool {
        let kind = [
            crate::ConfChangeKind::AddVoter,
            crate::ConfChangeKind::AddLearner,
            crate::ConfChangeKind::RemoveNode,
        ][usize::from(kind % 3)];
        let change = crate::ConfChange::new(kind, node).with_context(Bytes::from(context));
        crate::codec::decode_conf_change(&crate::codec::encode_conf_change(&change)) == Ok(change)
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(property as fn(u8, u64, Vec<u8>) -> bool);
}

/// A leader (1) whose latest snapshot's bytes (b"state") it released, a voter (3), and a
/// member (2) that missed everything; and the snapshot's index.
fn cluster_with_a_released_snapshot() -> (Node, Node, Node, u64) {
    let conf = ConfState::new(&[1, 2, 3], &[]);
    let snapshot = Snapshot::new(SnapshotMeta::new(0, 0, conf), Bytes::new());
    let entries: Vec<Entry> = (1..=5)
        .map(|i| Entry::new(i, 1, EntryKind::Normal, Bytes::from_static(b"x")))
        .collect();
    let recovered = Recovered::new(HardState::new(1, 0, 0), snapshot, entries);
    let config = Config::new(1, 42)
        .with_election_ticks(5)
        .with_compaction_trailing_entries(0);
    let mut leader = Node::restart(config, recovered).expect("valid");
    let mut voter = restart(3, 1, &[1, 1, 1, 1, 1]);
    let lagging = restart(2, 1, &[]);
    elect(&mut leader, &mut voter);
    exchange(&mut leader, &mut voter, 10, |_, _| {});
    let applied = leader.status().applied();
    assert!(applied > 5, "the new term's entry is applied");
    leader
        .compact(applied, Bytes::from_static(b"state"))
        .expect("compact");
    assert!(
        !leader.release_snapshot_data(applied - 1),
        "only the latest snapshot"
    );
    assert!(leader.release_snapshot_data(applied));
    (leader, voter, lagging, applied)
}

/// Runs the leader's snapshot to the lagging member, each snapshot message passed through
/// `carry`; returns the snapshots the lagging member persisted and installed.
fn send_snapshot(
    leader: &mut Node,
    lagging: &mut Node,
    carry: impl Fn(Message) -> Message,
) -> (Vec<Snapshot>, Vec<Snapshot>) {
    let (mut persisted, mut installed) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        leader.tick();
        let (sends, _) = drain(leader, false);
        for message in sends.into_iter().filter(|m| m.to() == 2) {
            let message = if message.kind() == MessageKind::Snapshot {
                assert!(message.needs_snapshot_data());
                carry(message)
            } else {
                message
            };
            lagging.step(message).expect("valid");
        }
        while let Some(action) = lagging.poll_action() {
            match action {
                Action::ApplySnapshot(s) => installed.push(s),
                Action::Persist(p) => {
                    persisted.extend(p.snapshot().cloned());
                    assert!(lagging.on_persisted(p.last_index(), p.last_term()));
                }
                Action::Send(reply) if reply.to() == 1 => leader.step(reply).expect("valid"),
                _ => {}
            }
        }
    }
    (persisted, installed)
}

#[test]
fn released_snapshot_bytes_are_filled_in_by_the_caller() {
    let (mut leader, _voter, mut lagging, _) = cluster_with_a_released_snapshot();
    let (_, installed) = send_snapshot(&mut leader, &mut lagging, |message| {
        let message = message.with_snapshot_data(Bytes::from_static(b"state"));
        assert!(!message.needs_snapshot_data());
        message
    });
    let data: Vec<_> = installed.iter().map(|s| s.data().clone()).collect();
    assert_eq!(data, vec![Bytes::from_static(b"state")]);
}

/// A runtime that keeps a received snapshot's data in its own storage steps the message
/// without it: the core persists and installs that snapshot all the same, without data, and
/// the member then follows the log from there.
#[test]
fn a_snapshot_stepped_without_its_data_is_persisted_and_installed_without_it() {
    let (mut leader, _voter, mut lagging, index) = cluster_with_a_released_snapshot();
    let (persisted, installed) = send_snapshot(&mut leader, &mut lagging, |message| message);
    for snapshots in [&persisted, &installed] {
        assert_eq!(snapshots.len(), 1, "once");
        assert_eq!(snapshots[0].meta().index(), index);
        assert!(snapshots[0].data().is_empty());
    }
    assert_eq!(lagging.status().applied(), index);
    leader
        .propose(Bytes::from_static(b"after"))
        .expect("leader");
    let (_, _) = send_snapshot(&mut leader, &mut lagging, |message| message);
    assert!(
        lagging.status().commit() > index,
        "it follows the log after the snapshot"
    );
}
