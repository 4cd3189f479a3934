use std::time::Duration;

use bytes::Bytes;

use super::harness::{Net, RawPeer, TOKEN, ack_status, config, listener, payload, raw_frame};
use crate::peer::wire::HandshakeStatus;
use crate::peer::{PeerError, PeerEvent};

const FRAMES_PER_PAIR: usize = 200;

fn send_all(net: &mut Net, ids: &[u64], round: usize) {
    for &from in ids {
        for &to in ids.iter().filter(|&&to| to != from) {
            for k in 0..FRAMES_PER_PAIR {
                assert!(
                    net.transport(from)
                        .send(to, payload(from, to, round * FRAMES_PER_PAIR + k))
                );
            }
        }
    }
}

fn received_all(net: &mut Net, ids: &[u64], rounds: usize) -> bool {
    ids.iter().all(|&to| {
        ids.iter()
            .filter(|&&from| from != to)
            .all(|&from| net.member(to).frames_from(from).len() == rounds * FRAMES_PER_PAIR)
    })
}

fn check_order(net: &mut Net, ids: &[u64], rounds: usize) {
    for &to in ids {
        for &from in ids.iter().filter(|&&from| from != to) {
            let frames = net.member(to).frames_from(from);
            let expected: Vec<Bytes> = (0..rounds * FRAMES_PER_PAIR)
                .map(|k| payload(from, to, k))
                .collect();
            assert_eq!(frames, expected, "{from} -> {to}");
        }
    }
}

/// Exchanges frames among `ids` both ways, in order, exactly once.
pub(super) fn exchange(net: &mut Net, ids: &[u64]) {
    // Queued before any link is up: delivered after the handshakes.
    send_all(net, ids, 0);
    net.run_until("first round", |net| received_all(net, ids, 1));
    assert!(net.all_connected());
    send_all(net, ids, 1);
    net.run_until("second round", |net| received_all(net, ids, 2));
    check_order(net, ids, 2);
    for &id in ids {
        for &peer in ids.iter().filter(|&&p| p != id) {
            assert_eq!(net.member(id).count(&PeerEvent::Connected { peer }), 1);
            assert_eq!(net.member(id).count(&PeerEvent::Disconnected { peer }), 0);
        }
    }
}

#[test]
fn three_members_exchange_frames_both_ways() {
    let ids = [1, 2, 3];
    let (mut net, _) = Net::cluster(&ids, config);
    exchange(&mut net, &ids);
    let stats = net.transport(1).stats();
    assert_eq!(stats.frames_received(), 2 * 2 * FRAMES_PER_PAIR as u64);
    assert_eq!(stats.frames_sent(), 2 * 2 * FRAMES_PER_PAIR as u64);
    assert_eq!(stats.frames_dropped(), 0);
}

#[test]
fn bad_handshakes_are_rejected_and_good_peers_keep_working() {
    let ids = [1, 2, 3];
    let (mut net, addrs) = Net::cluster(&ids, config);
    net.run_until("cluster up", |net| net.all_connected());
    let target = addrs[&2];

    let mut garbage = RawPeer::connect(target);
    garbage.write_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut short_garbage = RawPeer::connect(target);
    short_garbage.write_raw(&[3, 0, 0, 0, 1, 2, 3]);

    let mut wrong_token = RawPeer::connect(target);
    wrong_token.hello(b"some-other-cluster", 1, 2);
    let mut unknown_member = RawPeer::connect(target);
    unknown_member.hello(TOKEN, 9, 2);
    let mut wrong_target = RawPeer::connect(target);
    wrong_target.hello(TOKEN, 1, 5);
    let mut wrong_direction = RawPeer::connect(target);
    wrong_direction.hello(TOKEN, 3, 2);

    for (raw, status) in [
        (&mut wrong_token, HandshakeStatus::ClusterTokenMismatch),
        (&mut unknown_member, HandshakeStatus::UnknownMember),
        (&mut wrong_target, HandshakeStatus::WrongMember),
        (&mut wrong_direction, HandshakeStatus::WrongDirection),
    ] {
        let ack = raw_frame(&mut net, raw, "reject ack");
        assert_eq!(ack_status(&ack), status);
    }
    let mut raws = [
        garbage,
        short_garbage,
        wrong_token,
        unknown_member,
        wrong_target,
        wrong_direction,
    ];
    net.run_until("bad connections closed", |_| {
        raws.iter_mut().all(RawPeer::is_closed)
    });
    assert_eq!(net.transport(2).stats().handshakes_rejected(), 6);

    // The good links never noticed.
    exchange(&mut net, &ids);
}

#[test]
fn a_transport_with_the_wrong_cluster_token_never_connects() {
    let good = listener();
    let good_addr = good.local_addr().unwrap();
    let mut net = Net::new();
    net.start(config(2), good, &[(1, "127.0.0.1:9".parse().unwrap())]);
    net.start(
        crate::peer::PeerConfig::new(1, "another-cluster").with_backoff_ms(5, 20),
        listener(),
        &[(2, good_addr)],
    );
    net.run_until("several rejections", |net| {
        net.transport(2).stats().handshakes_rejected() >= 3
    });
    assert!(!net.transport(1).is_connected(2));
    assert!(!net.transport(2).is_connected(1));
    // Nothing but the refusals, each saying why.
    let log = &net.member(2).log;
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|e| matches!(
            e,
            PeerEvent::Refused { peer: None, reason, not_a_member: false }
                if reason.contains("cluster token mismatch")
        )),
        "{log:?}"
    );
}

#[test]
fn oversized_frame_closes_only_that_connection() {
    let ids = [1, 2, 3];
    let (mut net, _) = Net::cluster(&ids, |id| {
        let limit = if id == 3 { 1024 } else { 1 << 20 };
        config(id).with_frame_bytes_max(limit)
    });
    net.run_until("cluster up", |net| net.all_connected());
    assert!(net.transport(1).send(3, Bytes::from(vec![1u8; 4096])));
    net.run_until("1 sees 3 go", |net| {
        net.member(1).count(&PeerEvent::Disconnected { peer: 3 }) == 1
    });
    // 1 dials 3 again after its backoff.
    assert!(net.transport(1).send(3, Bytes::from_static(b"\x01small")));
    net.run_until("small frame after reconnect", |net| {
        net.member(3).frames_from(1) == [Bytes::from_static(b"\x01small")]
    });
    assert_eq!(net.member(3).count(&PeerEvent::Connected { peer: 1 }), 2);
    assert_eq!(net.member(3).count(&PeerEvent::Disconnected { peer: 1 }), 1);
    for (a, b) in [(2, 3), (3, 2), (1, 2), (2, 1)] {
        assert_eq!(net.member(a).count(&PeerEvent::Disconnected { peer: b }), 0);
    }
    // The frame is refused locally by a sender with the smaller limit.
    assert!(!net.transport(3).send(1, Bytes::from(vec![1u8; 4096])));
}

#[test]
fn restarted_members_are_reconnected_and_queued_frames_flow() {
    let ids = [1, 2, 3];
    let (mut net, addrs) = Net::cluster(&ids, config);
    net.run_until("cluster up", |net| net.all_connected());
    net.kill(2);
    net.run_until("2 seen down", |net| {
        !net.transport(1).is_connected(2) && !net.transport(3).is_connected(2)
    });
    assert_eq!(net.member(1).count(&PeerEvent::Disconnected { peer: 2 }), 1);
    assert_eq!(net.member(3).count(&PeerEvent::Disconnected { peer: 2 }), 1);
    // Let 1 fail a few dials, so the backoff has grown.
    net.run_for(Duration::from_millis(100));
    assert!(
        net.transport(1)
            .send(2, Bytes::from_static(b"\x01queued while down"))
    );

    let relisten = mio::net::TcpListener::bind(addrs[&2]).unwrap();
    net.start(config(2), relisten, &[(1, addrs[&1]), (3, addrs[&3])]);
    net.run_until("2 back", |net| net.all_connected());
    net.run_until("queued frame", |net| {
        net.member(2).frames_from(1) == [Bytes::from_static(b"\x01queued while down")]
    });
    assert_eq!(net.member(1).count(&PeerEvent::Connected { peer: 2 }), 2);
    assert_eq!(net.member(3).count(&PeerEvent::Connected { peer: 2 }), 2);
    assert!(net.transport(3).send(2, Bytes::from_static(b"\x013 to 2")));
    assert!(net.transport(2).send(1, Bytes::from_static(b"\x012 to 1")));
    net.run_until("frames both ways", |net| {
        net.member(2).frames_from(3).len() == 1 && net.member(1).frames_from(2).len() == 1
    });
}

/// A restarted member that dials every peer gets its lower-id peer to redial it at once, not
/// when the backoff from its outage says (here a minute away, far past the wait).
#[test]
fn a_restarted_member_dialing_down_is_redialed_at_once() {
    let slow = |id| config(id).with_backoff_ms(60_000, 120_000);
    let (mut net, addrs) = Net::cluster(&[1, 2], slow);
    net.run_until("cluster up", |net| net.all_connected());
    net.kill(2);
    net.run_until("2 seen down", |net| !net.transport(1).is_connected(2));

    let relisten = mio::net::TcpListener::bind(addrs[&2]).unwrap();
    net.start(slow(2), relisten, &[(1, addrs[&1])]);
    net.transport(2)
        .set_dial_every_peer(true, std::time::Instant::now());
    net.run_until("2 back", |net| net.all_connected());
    assert_eq!(net.member(1).count(&PeerEvent::Connected { peer: 2 }), 2);
    let refused = net
        .member(2)
        .log
        .iter()
        .filter(|e| matches!(e, PeerEvent::Refused { .. }))
        .count();
    assert_eq!(refused, 0, "the wrong direction is no refusal");
}

#[test]
fn a_duplicate_connection_replaces_the_old_one() {
    let mut net = Net::new();
    let addr = net.start(
        config(2),
        listener(),
        &[(1, "127.0.0.1:9".parse().unwrap())],
    );
    let mut old = RawPeer::connect(addr);
    old.hello(TOKEN, 1, 2);
    let ack = raw_frame(&mut net, &mut old, "first ack");
    assert_eq!(ack_status(&ack), HandshakeStatus::Accepted);
    assert!(net.transport(2).is_connected(1));

    let mut new = RawPeer::connect(addr);
    new.hello(TOKEN, 1, 2);
    let ack = raw_frame(&mut net, &mut new, "second ack");
    assert_eq!(ack_status(&ack), HandshakeStatus::Accepted);
    net.run_until("old closed", |_| old.is_closed());
    assert!(!new.is_closed());
    assert_eq!(
        net.member(2).log,
        [
            PeerEvent::Connected { peer: 1 },
            PeerEvent::Disconnected { peer: 1 },
            PeerEvent::Connected { peer: 1 },
        ]
    );
    new.write_frame(b"\x01via new");
    assert!(net.transport(2).send(1, Bytes::from_static(b"\x01to new")));
    let frame = raw_frame(&mut net, &mut new, "frame on the new connection");
    assert_eq!(frame, Bytes::from_static(b"\x01to new"));
    net.run_until("frame from new", |net| {
        net.member(2).frames_from(1) == [Bytes::from_static(b"\x01via new")]
    });
}

#[test]
fn silent_connections_time_out() {
    let mut net = Net::new();
    let addr = net.start(
        config(2)
            .with_handshake_timeout_ms(100)
            .with_keepalive_ms(50, 200),
        listener(),
        &[(1, "127.0.0.1:9".parse().unwrap())],
    );
    let mut silent = RawPeer::connect(addr);
    let mut idle = RawPeer::connect(addr);
    idle.hello(TOKEN, 1, 2);
    let ack = raw_frame(&mut net, &mut idle, "ack");
    assert_eq!(ack_status(&ack), HandshakeStatus::Accepted);
    let mut keepalives = 0;
    net.run_until("both closed", |_| {
        while let Some(frame) = idle.next_frame() {
            assert!(frame.is_empty(), "only keepalives");
            keepalives += 1;
        }
        silent.is_closed() && idle.is_closed()
    });
    assert!(keepalives >= 1);
    assert_eq!(
        net.member(2).log,
        [
            PeerEvent::Connected { peer: 1 },
            PeerEvent::Disconnected { peer: 1 }
        ]
    );
}

#[test]
fn full_queues_drop_and_count() {
    let mut net = Net::new();
    net.start(
        config(1)
            .with_frame_bytes_max(100)
            .with_send_queue_bytes_max(300),
        listener(),
        &[(2, "127.0.0.1:9".parse().unwrap())],
    );
    let t = net.transport(1);
    assert!(t.send(2, Bytes::from(vec![1u8; 100])));
    assert!(t.send(2, Bytes::from(vec![1u8; 100])));
    assert!(!t.send(2, Bytes::from(vec![1u8; 100])), "queue full");
    assert!(t.send(2, Bytes::from(vec![1u8; 80])));
    assert!(
        !t.send(2, Bytes::from(vec![1u8; 101])),
        "over frame_bytes_max"
    );
    assert!(!t.send(2, Bytes::new()), "empty");
    assert!(!t.send(7, Bytes::from_static(b"\x01x")), "unknown peer");
    assert_eq!(t.queued_bytes(2), Some(292));
    assert_eq!(t.stats().frames_dropped(), 4);
}

#[test]
fn membership_changes() {
    let mut net = Net::new();
    let a1 = net.start(config(1), listener(), &[]);
    let a2 = net.start(config(2), listener(), &[(1, a1)]);
    net.run_for(Duration::from_millis(30));
    assert!(!net.transport(2).is_connected(1));

    let now = std::time::Instant::now();
    net.transport(1).add_peer(2, a2, now).unwrap();
    assert!(matches!(
        net.transport(1).add_peer(2, a2, now),
        Err(PeerError::DuplicatePeer(2))
    ));
    assert!(matches!(
        net.transport(1).add_peer(1, a2, now),
        Err(PeerError::SelfPeer(1))
    ));
    net.run_until("added peer connects", |net| net.all_connected());

    // Through a proxy: a new address for 2, then a partition and a heal.
    let mut proxy = crate::peer::FaultProxy::start("127.0.0.1:0".parse().unwrap(), a2).unwrap();
    let registry = net.registry().try_clone().unwrap();
    net.transport(1)
        .update_peer(&registry, 2, proxy.local_addr(), std::time::Instant::now())
        .unwrap();
    net.run_until("reconnected through the proxy", |net| {
        net.member(1).count(&PeerEvent::Connected { peer: 2 }) == 2
            && net.transport(1).is_connected(2)
    });
    assert_eq!(proxy.connections(), 1);
    proxy.set_blocked(true);
    net.run_until("partitioned", |net| {
        !net.transport(1).is_connected(2) && !net.transport(2).is_connected(1)
    });
    net.run_for(Duration::from_millis(100));
    assert!(!net.transport(1).is_connected(2), "stays partitioned");
    assert!(
        net.transport(1)
            .send(2, Bytes::from_static(b"\x01after heal"))
    );
    proxy.set_blocked(false);
    net.run_until("healed", |net| {
        net.member(2).frames_from(1) == [Bytes::from_static(b"\x01after heal")]
    });

    net.transport(1)
        .remove_peer(&registry, 2, std::time::Instant::now())
        .unwrap();
    assert!(matches!(
        net.transport(1)
            .remove_peer(&registry, 2, std::time::Instant::now()),
        Err(PeerError::UnknownPeer(2))
    ));
    net.run_until("2 sees the link go", |net| {
        !net.transport(2).is_connected(1)
    });
    assert!(!net.transport(1).send(2, Bytes::from_static(b"\x01gone")));
    proxy.stop();
}

/// etcd's `--listen-peer-urls` is a list: a member reached on its second listener links up
/// the same as on its first, and a transport refuses listeners beyond `LISTENERS_MAX`.
#[test]
fn every_listener_accepts_peers() {
    let (first, second) = (listener(), listener());
    let second_addr = second.local_addr().unwrap();
    let one = listener();
    let one_addr = one.local_addr().unwrap();
    let mut net = Net::new();
    net.start(config(2), first, &[(1, one_addr)]);
    let registry = net.registry().try_clone().unwrap();
    let added = net.transport(2).add_listener(second, &registry).unwrap();
    assert_eq!(added, second_addr);
    // The lower id dials: member 1 knows 2 only by its second listener.
    net.start(config(1), one, &[(2, second_addr)]);
    net.run_until("member 1 linked to 2", |net| {
        net.transport(1).is_connected(2) && net.transport(2).is_connected(1)
    });
    assert!(
        net.transport(1)
            .send(2, Bytes::from_static(b"\x01via the second listener"))
    );
    net.run_until("the frame arrived", |net| {
        !net.member(2).frames_from(1).is_empty()
    });
    assert_eq!(
        net.member(2).frames_from(1)[0],
        &b"\x01via the second listener"[..]
    );
    for _ in 2..crate::peer::LISTENERS_MAX {
        net.transport(2)
            .add_listener(listener(), &registry)
            .unwrap();
    }
    let over = net.transport(2).add_listener(listener(), &registry);
    assert!(matches!(over, Err(PeerError::InvalidConfig(_))), "{over:?}");
}

/// A member its peer does not know hears why only by dialing: with the higher id it would not,
/// so a member that has not joined dials every peer. Both ends report the refusal; a peer that
/// is merely down reports none.
#[test]
fn a_member_that_dials_every_peer_hears_that_it_is_unknown() {
    let (known, stranger, down) = (1, 9, 5);
    let known_listener = listener();
    let known_addr = known_listener.local_addr().unwrap();
    let down_addr = listener().local_addr().unwrap(); // closed when dropped: connection refused
    let mut net = Net::new();
    net.start(config(known), known_listener, &[]);
    net.start(
        config(stranger),
        listener(),
        &[(known, known_addr), (down, down_addr)],
    );
    net.run_for(Duration::from_millis(300));
    let refused = |net: &mut Net, id| {
        net.member(id)
            .log
            .iter()
            .filter(|e| matches!(e, PeerEvent::Refused { .. }))
            .count()
    };
    assert_eq!(refused(&mut net, stranger), 0, "only the lower id dials");

    net.transport(stranger)
        .set_dial_every_peer(true, std::time::Instant::now());
    net.run_until("the stranger is refused", |net| refused(net, stranger) > 0);
    let reasons: Vec<String> = net
        .member(stranger)
        .log
        .iter()
        .filter_map(|e| match e {
            PeerEvent::Refused {
                peer,
                reason,
                not_a_member,
            } => {
                assert_eq!(*peer, Some(known), "only the peer that answered refuses");
                assert!(not_a_member, "{reason}");
                Some(reason.clone())
            }
            _ => None,
        })
        .collect();
    assert!(
        reasons.iter().all(|r| r.contains("unknown member id")),
        "{reasons:?}"
    );
    assert!(
        refused(&mut net, known) > 0,
        "the peer that refused reports it too"
    );
    assert_eq!(
        net.member(stranger)
            .count(&PeerEvent::Connected { peer: known }),
        0
    );

    // Dialing only upwards again, the stranger stops dialing its lower peer.
    net.transport(stranger)
        .set_dial_every_peer(false, std::time::Instant::now());
    net.run_for(Duration::from_millis(200));
    let before = refused(&mut net, stranger);
    net.run_for(Duration::from_millis(500));
    assert_eq!(refused(&mut net, stranger), before);
}

/// A dialer whose protocol versions do not meet this member's (the first protocol's hello, or a
/// range above) is refused with "version mismatch", in an ack any release can read.
#[test]
fn a_dialer_of_another_protocol_version_is_refused_with_a_readable_ack() {
    let ids = [1, 2];
    let (mut net, addrs) = Net::cluster(&ids, config);
    net.run_until("cluster up", |net| net.all_connected());
    let mut first = RawPeer::connect(addrs[&2]);
    first.write_frame(&super::wire::first_protocol_hello(TOKEN, 1, 2));
    let ack = raw_frame(&mut net, &mut first, "ack to the first protocol");
    assert_eq!(ack_status(&ack), HandshakeStatus::VersionMismatch);
    let mut newer = RawPeer::connect(addrs[&2]);
    let mut hello = b"TALLYHLO".to_vec();
    for v in [crate::peer::wire::PROTOCOL_VERSION_MAX + 1, 99] {
        hello.extend_from_slice(&v.to_le_bytes());
    }
    hello.extend_from_slice(&(TOKEN.len() as u32).to_le_bytes());
    hello.extend_from_slice(TOKEN);
    hello.extend_from_slice(&1u64.to_le_bytes());
    hello.extend_from_slice(&2u64.to_le_bytes());
    newer.write_frame(&hello);
    let ack = raw_frame(&mut net, &mut newer, "ack to a newer range");
    assert_eq!(ack_status(&ack), HandshakeStatus::VersionMismatch);
    // Both ends are told apart from the good link, which goes on.
    exchange(&mut net, &ids);
}

/// A frame of a kind the receiver does not know is answered, not dropped: the sender hears
/// which kind, and the receiver reports nothing of it.
#[test]
fn a_frame_of_an_unknown_kind_is_answered_as_unsupported() {
    let ids = [1, 2];
    let (mut net, _) = Net::cluster(&ids, config);
    net.run_until("cluster up", |net| net.all_connected());
    assert!(
        net.transport(1)
            .send(2, Bytes::from_static(&[0xEE, 1, 2, 3]))
    );
    let unsupported = PeerEvent::Unsupported { peer: 2, tag: 0xEE };
    net.run_until("the answer", |net| net.member(1).count(&unsupported) == 1);
    assert!(
        !net.member(2)
            .log
            .iter()
            .any(|e| matches!(e, PeerEvent::Frame { .. })),
        "the receiver reported a frame it does not know"
    );
}
