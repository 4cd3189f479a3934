//! Test 4: lease expiry deletes keys at the right revision; keep-alive extends it; a new leader
//! extends remaining TTLs.

use bytes::Bytes;
use prost::Message;

use super::etcd_examples::get;
use crate::proto::internal_request::Request;
use crate::proto::*;
use crate::{ApplyResponse, KvConfig, KvError, KvStore, WatchId};

fn put_with(kv: &mut KvStore, k: &str, lease: i64) {
    kv.put(&PutRequest {
        key: Bytes::copy_from_slice(k.as_bytes()),
        value: Bytes::from_static(b"v"),
        lease,
        ..PutRequest::default()
    })
    .unwrap();
}

fn revoke_through_apply(kv: &mut KvStore, index: u64, id: i64) -> i64 {
    let bytes = InternalRequest {
        id: index,
        header: None,
        request: Some(Request::LeaseRevoke(LeaseRevokeRequest { id })),
    }
    .encode_to_vec();
    match kv.apply(index, &bytes[..]).into_result() {
        Ok(ApplyResponse::LeaseRevoke(r)) => r.header.unwrap().revision,
        other => panic!("{other:?}"),
    }
}

#[test]
fn expiry_deletes_keys_at_the_right_revision() {
    let mut kv = KvStore::new(KvConfig::default());
    kv.promote(0, 0);
    kv.set_now_ms(1_000);
    let id = kv
        .lease_grant(&LeaseGrantRequest { ttl: 10, id: 0 })
        .unwrap()
        .id;
    assert!(id > 0);
    put_with(&mut kv, "a", id); // 2
    put_with(&mut kv, "b", id); // 3
    put_with(&mut kv, "c", 0); // 4
    let w: WatchId = kv
        .watch_create(&WatchCreateRequest {
            key: Bytes::from_static(b"a"),
            range_end: Bytes::from_static(b"z"),
            ..WatchCreateRequest::default()
        })
        .unwrap();
    assert!(kv.expired_leases(10_999, 10).is_empty());
    assert_eq!(kv.expired_leases(11_000, 10), vec![id]);

    // The leader proposes the revoke; every member applies it at one revision.
    let rev = revoke_through_apply(&mut kv, 1, id);
    assert_eq!(rev, 5);
    assert!(get(&kv, "a", 0).unwrap().kvs.is_empty());
    assert!(get(&kv, "b", 0).unwrap().kvs.is_empty());
    assert_eq!(get(&kv, "c", 0).unwrap().count, 1);
    let events: Vec<(i32, i64)> = std::iter::from_fn(|| kv.poll_watch_event())
        .filter(|(id, _)| *id == w)
        .flat_map(|(_, r)| r.events)
        .map(|e| (e.r#type, e.kv.unwrap().mod_revision))
        .collect();
    assert_eq!(
        events,
        [(EventType::Delete as i32, 5), (EventType::Delete as i32, 5)]
    );
    assert!(kv.expired_leases(99_000, 10).is_empty());
    let gone = kv.lease_time_to_live(&LeaseTimeToLiveRequest { id, keys: true }, 12_000);
    assert_eq!(gone.ttl, -1);
    assert_eq!(kv.lease_keep_alive(id, 12_000), Err(KvError::LeaseNotFound));
}

#[test]
fn keep_alive_extends_expiry() {
    let mut kv = KvStore::new(KvConfig::default());
    kv.promote(0, 0);
    let id = kv
        .lease_grant(&LeaseGrantRequest { ttl: 10, id: 77 })
        .unwrap()
        .id;
    assert_eq!(id, 77);
    put_with(&mut kv, "k", id);
    let ka = kv.lease_keep_alive(id, 6_000).unwrap();
    assert_eq!(ka.ttl, 10);
    assert!(kv.expired_leases(10_000, 10).is_empty());
    assert!(kv.expired_leases(15_999, 10).is_empty());
    let ttl = kv.lease_time_to_live(&LeaseTimeToLiveRequest { id, keys: true }, 11_000);
    assert_eq!(
        (ttl.ttl, ttl.granted_ttl, ttl.keys.clone()),
        (5, 10, vec![Bytes::from_static(b"k")])
    );
    assert_eq!(kv.expired_leases(16_000, 10), vec![id]);
    // Past its expiry a lease cannot be kept alive: it awaits its revocation.
    assert_eq!(kv.lease_keep_alive(id, 16_000), Err(KvError::LeaseNotFound));
}

#[test]
fn followers_never_expire_and_new_leaders_extend() {
    let mut kv = KvStore::new(KvConfig::default());
    let a = kv
        .lease_grant(&LeaseGrantRequest { ttl: 10, id: 1 })
        .unwrap()
        .id;
    let b = kv
        .lease_grant(&LeaseGrantRequest { ttl: 30, id: 2 })
        .unwrap()
        .id;
    assert!(
        kv.expired_leases(u64::MAX / 2, 10).is_empty(),
        "followers never expire leases"
    );
    assert_eq!(kv.lease_keep_alive(a, 0), Err(KvError::NotPrimary));
    // A checkpoint recorded 4 s left on lease 1: the new leader resumes from it.
    kv.lease_checkpoint(&LeaseCheckpointRequest {
        checkpoints: vec![LeaseCheckpoint {
            id: a,
            remaining_ttl: 4,
        }],
    });
    kv.promote(100_000, 1_500);
    assert!(kv.is_primary());
    assert!(kv.expired_leases(105_499, 10).is_empty());
    assert_eq!(kv.expired_leases(105_500, 10), vec![a]);
    assert_eq!(
        kv.expired_leases(131_500, 10),
        vec![a, b],
        "earliest expiry first"
    );
    kv.demote();
    assert!(kv.expired_leases(u64::MAX / 2, 10).is_empty());
}

#[test]
fn lease_table_rules() {
    let mut kv = KvStore::new(KvConfig::default().with_lease_ttl_secs_min(5));
    let g = kv
        .lease_grant(&LeaseGrantRequest { ttl: 1, id: 9 })
        .unwrap();
    assert_eq!(g.ttl, 5, "short TTLs are raised to the minimum");
    assert_eq!(
        kv.lease_grant(&LeaseGrantRequest { ttl: 1, id: 9 }),
        Err(KvError::LeaseExists)
    );
    assert_eq!(
        kv.lease_grant(&LeaseGrantRequest {
            ttl: crate::LEASE_TTL_SECS_MAX + 1,
            id: 0
        })
        .unwrap_err()
        .etcd_message(),
        "etcdserver: too large lease TTL"
    );
    let auto1 = kv
        .lease_grant(&LeaseGrantRequest { ttl: 60, id: 0 })
        .unwrap()
        .id;
    let auto2 = kv
        .lease_grant(&LeaseGrantRequest { ttl: 60, id: 0 })
        .unwrap()
        .id;
    assert!(auto1 > 0 && auto2 > 0 && auto1 != auto2);
    // Deterministic: another store assigns the same IDs.
    let mut other = KvStore::new(KvConfig::default());
    other
        .lease_grant(&LeaseGrantRequest { ttl: 1, id: 9 })
        .unwrap();
    assert_eq!(
        other
            .lease_grant(&LeaseGrantRequest { ttl: 60, id: 0 })
            .unwrap()
            .id,
        auto1
    );
    let ids: Vec<i64> = kv.lease_leases().leases.iter().map(|l| l.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert_eq!(ids.len(), 3);

    // Overwriting or deleting a key detaches it from its lease.
    put_with(&mut kv, "x", 9);
    put_with(&mut kv, "y", 9);
    put_with(&mut kv, "x", 0);
    kv.delete_range(&DeleteRangeRequest {
        key: Bytes::from_static(b"y"),
        ..DeleteRangeRequest::default()
    })
    .unwrap();
    let ttl = kv.lease_time_to_live(&LeaseTimeToLiveRequest { id: 9, keys: true }, 0);
    assert!(ttl.keys.is_empty());
    let rev = kv.revision();
    kv.lease_revoke(&LeaseRevokeRequest { id: 9 }).unwrap();
    assert_eq!(
        kv.revision(),
        rev,
        "revoking a lease without keys writes nothing"
    );
    assert_eq!(
        kv.lease_revoke(&LeaseRevokeRequest { id: 9 }),
        Err(KvError::LeaseNotFound)
    );
}

#[test]
fn checkpoints_carry_remaining_ttls_to_the_next_leader() {
    let mut leader = KvStore::new(KvConfig::default());
    let mut follower = KvStore::new(KvConfig::default());
    assert!(
        leader.lease_checkpoints(0, 10).checkpoints.is_empty(),
        "only a primary checkpoints"
    );
    leader.promote(0, 0);
    for kv in [&mut leader, &mut follower] {
        kv.lease_grant(&LeaseGrantRequest { ttl: 60, id: 1 })
            .unwrap();
    }
    let cp = leader.lease_checkpoints(45_000, 10);
    assert_eq!(
        cp.checkpoints,
        vec![LeaseCheckpoint {
            id: 1,
            remaining_ttl: 15
        }]
    );
    for kv in [&mut leader, &mut follower] {
        kv.lease_checkpoint(&cp);
    }
    leader.demote();
    follower.promote(50_000, 0);
    assert!(follower.expired_leases(64_999, 10).is_empty());
    assert_eq!(follower.expired_leases(65_000, 10), vec![1]);
}

fn renew_through_apply(kv: &mut KvStore, index: u64, id: i64) -> Result<i64, KvError> {
    let bytes = InternalRequest {
        id: index,
        header: None,
        request: Some(Request::LeaseRenew(LeaseKeepAliveRequest { id })),
    }
    .encode_to_vec();
    match kv.apply(index, &bytes[..]).into_result() {
        Ok(ApplyResponse::LeaseRenew(r)) => {
            assert_eq!(r.id, id);
            Ok(r.ttl)
        }
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    }
}

/// A keep-alive that reached a follower is replicated; the primary renews the lease when it
/// applies it, so a lease kept alive only through followers never expires on the leader.
#[test]
fn a_replicated_keep_alive_renews_the_lease_on_the_primary() {
    let mut leader = KvStore::new(KvConfig::default());
    let mut follower = KvStore::new(KvConfig::default());
    leader.promote(0, 0);
    for kv in [&mut leader, &mut follower] {
        kv.lease_grant(&LeaseGrantRequest { ttl: 3, id: 5 })
            .unwrap();
        put_with(kv, "lock", 5);
    }
    // Keep-alives every second, each applied by every member at the same index.
    for (index, now_ms) in (1..=10).zip((1_000..).step_by(1_000)) {
        for kv in [&mut leader, &mut follower] {
            kv.set_now_ms(now_ms);
            assert_eq!(renew_through_apply(kv, index, 5), Ok(3));
        }
        let ttl = leader.lease_time_to_live(&LeaseTimeToLiveRequest { id: 5, keys: false }, now_ms);
        assert_eq!(
            ttl.ttl, 3,
            "renewed at {now_ms} ms, the lease lives 3 s from then"
        );
    }
    assert!(leader.expired_leases(12_999, 10).is_empty());
    assert_eq!(leader.expired_leases(13_000, 10), vec![5]);
    assert_eq!(get(&leader, "lock", 0).unwrap().count, 1);
    assert_eq!(get(&follower, "lock", 0).unwrap().count, 1);

    // A checkpointed remaining TTL is cleared everywhere, so a later leader resumes the full TTL.
    let short = LeaseCheckpointRequest {
        checkpoints: vec![LeaseCheckpoint {
            id: 5,
            remaining_ttl: 1,
        }],
    };
    follower.lease_checkpoint(&short);
    follower.set_now_ms(20_000);
    assert_eq!(renew_through_apply(&mut follower, 11, 5), Ok(3));
    follower.promote(20_000, 0);
    assert!(follower.expired_leases(22_999, 10).is_empty());
    assert_eq!(follower.expired_leases(23_000, 10), vec![5]);

    // A lease that is gone is not found, on every member alike.
    let mut gone = KvStore::new(KvConfig::default());
    assert_eq!(
        renew_through_apply(&mut gone, 1, 5),
        Err(KvError::LeaseNotFound)
    );
}
