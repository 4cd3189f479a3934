//! Test 5: snapshot and restore round-trip, equal by `hash_kv`, and resume identically.

use bytes::Bytes;

use super::etcd_examples::put;
use crate::proto::*;
use crate::{KvConfig, KvStore, SnapshotError};

fn populated() -> KvStore {
    let mut kv = KvStore::new(KvConfig::default());
    let lease = kv
        .lease_grant(&LeaseGrantRequest { ttl: 100, id: 5 })
        .unwrap()
        .id;
    kv.lease_grant(&LeaseGrantRequest { ttl: 50, id: 6 })
        .unwrap();
    for i in 0..300u32 {
        let key = format!("key/{:03}", i % 97);
        kv.put(&PutRequest {
            key: Bytes::from(key),
            value: Bytes::from(format!("value-{i}")),
            lease: if i % 5 == 0 { lease } else { 0 },
            ..PutRequest::default()
        })
        .unwrap();
        if i % 11 == 0 {
            kv.delete_range(&DeleteRangeRequest {
                key: Bytes::from(format!("key/{:03}", (i * 7) % 97)),
                ..DeleteRangeRequest::default()
            })
            .unwrap();
        }
    }
    kv.compact(&CompactionRequest {
        revision: 150,
        physical: false,
    })
    .unwrap();
    // Leave the physical compaction half done: the snapshot must not care.
    kv.compact_step(20);
    kv.alarm(&AlarmRequest {
        action: AlarmAction::Activate as i32,
        member_id: 3,
        alarm: AlarmType::Nospace as i32,
    });
    kv
}

fn snapshot(kv: &KvStore) -> Vec<u8> {
    let mut buf = Vec::new();
    kv.snapshot(&mut buf).unwrap();
    buf
}

#[test]
fn a_snapshot_copy_snapshots_to_the_same_bytes_and_stays_put() {
    let mut kv = populated();
    let copy = kv.snapshot_copy();
    let before = snapshot(&kv);
    assert_eq!(
        snapshot(&copy),
        before,
        "the copy holds the whole replicated state"
    );
    kv.put(&PutRequest {
        key: Bytes::from_static(b"later"),
        value: Bytes::from_static(b"v"),
        ..PutRequest::default()
    })
    .unwrap();
    assert_eq!(
        snapshot(&copy),
        before,
        "later writes do not reach the copy"
    );
    assert_ne!(snapshot(&kv), before);
}

#[test]
fn a_copy_taken_in_steps_between_writes_is_the_store_as_it_began() {
    for keys_per_step in [1, 7, 50, 1000] {
        let mut kv = populated();
        let expected = snapshot(&kv);
        let mut copy = kv.begin_snapshot_copy();
        let mut i = 0u32;
        loop {
            // Between steps: new keys, overwrites, deletes (whole ranges too), re-creations,
            // a compaction past the copy's revision, and compaction steps that must wait.
            i += 1;
            kv.put(&PutRequest {
                key: Bytes::from(format!("key/{:03}", (i * 13) % 120)),
                value: Bytes::from(format!("later-{i}")),
                ..PutRequest::default()
            })
            .unwrap();
            if i % 3 == 0 {
                kv.delete_range(&DeleteRangeRequest {
                    key: Bytes::from(format!("key/{:03}", (i * 5) % 97)),
                    range_end: Bytes::from(format!("key/{:03}", (i * 5) % 97 + 4)),
                    ..DeleteRangeRequest::default()
                })
                .unwrap();
            }
            if i == 2 {
                let revision = kv.revision();
                kv.compact(&CompactionRequest {
                    revision,
                    physical: false,
                })
                .unwrap();
            }
            let _ = kv.compact_step(1000);
            match kv.snapshot_copy_step(&mut copy, keys_per_step) {
                crate::CopyStep::More => {}
                crate::CopyStep::Done => break,
                crate::CopyStep::Abandoned => panic!("nothing was restored"),
            }
        }
        let copy = copy.into_store();
        assert_eq!(
            snapshot(&copy),
            expected,
            "{keys_per_step} keys per step: the copy is the store when it began"
        );
        // Compaction goes on once the copy is done.
        while kv.compact_step(1000) {}
        assert!(kv.compaction_done(kv.status().compact_revision()));
    }
}

#[test]
fn a_restore_abandons_a_copy_in_progress() {
    let mut kv = populated();
    let data = snapshot(&kv);
    let mut copy = kv.begin_snapshot_copy();
    assert_eq!(kv.snapshot_copy_step(&mut copy, 1), crate::CopyStep::More);
    kv.restore(&mut data.as_slice()).unwrap();
    assert_eq!(
        kv.snapshot_copy_step(&mut copy, 1),
        crate::CopyStep::Abandoned
    );
    // A new copy may begin, and compaction is not held back by the old one.
    let mut again = kv.begin_snapshot_copy();
    while kv.snapshot_copy_step(&mut again, 10) == crate::CopyStep::More {}
    assert_eq!(snapshot(&again.into_store()), data);
}

#[test]
fn an_abandoned_copy_lets_compaction_go_on() {
    let mut kv = populated();
    let revision = kv.revision();
    kv.compact(&CompactionRequest {
        revision,
        physical: false,
    })
    .unwrap();
    let mut copy = kv.begin_snapshot_copy();
    assert_eq!(kv.snapshot_copy_step(&mut copy, 1), crate::CopyStep::More);
    for _ in 0..10 {
        assert!(kv.compact_step(1000), "work remains while the copy runs");
    }
    assert!(
        !kv.compaction_done(revision),
        "compaction waits for the copy"
    );
    kv.abandon_snapshot_copy(copy);
    // Bounded, so a copy that still held compaction back fails here instead of hanging.
    for _ in 0..100 {
        if !kv.compact_step(1000) {
            break;
        }
    }
    assert!(kv.compaction_done(revision));
    // And a new copy may begin.
    let mut again = kv.begin_snapshot_copy();
    while kv.snapshot_copy_step(&mut again, 10) == crate::CopyStep::More {}
}

#[test]
fn round_trip_is_equal_by_hash_kv() {
    let kv = populated();
    let buf = snapshot(&kv);
    let mut copy = KvStore::new(KvConfig::default());
    copy.restore(&mut buf.as_slice()).unwrap();
    for rev in [150, 200, 250, kv.revision()] {
        assert_eq!(
            copy.hash_kv(rev).unwrap(),
            kv.hash_kv(rev).unwrap(),
            "hash_kv({rev})"
        );
    }
    assert_eq!(copy.hash(), kv.hash());
    assert_eq!(copy.status(), {
        // Sizes differ only by what the original has not compacted physically yet.
        let mut done = populated();
        while done.compact_step(1000) {}
        done.status()
    });
    assert_eq!(
        snapshot(&copy),
        buf,
        "a restored store snapshots to the same bytes"
    );
}

/// A restored key and its oldest value share one buffer, and the index holds the same key
/// bytes: a restored member keeps a record in one allocation, as one that applied the write.
#[test]
fn a_restored_key_and_its_first_value_share_one_buffer() {
    let kv = populated();
    let mut copy = KvStore::new(KvConfig::default());
    copy.restore(&mut snapshot(&kv).as_slice()).unwrap();
    let m = &copy.mvcc;
    let mut checked = 0;
    for (key, ki) in &m.index {
        let oldest = m.record(ki.oldest().expect("a restored key has a revision"));
        let key_end = key.as_ptr() as usize + key.len();
        assert_eq!(
            key.as_ptr(),
            oldest.key.as_ptr(),
            "{key:?}: the index shares it"
        );
        assert_eq!(
            key_end,
            oldest.value.as_ptr() as usize,
            "{key:?}: its value follows"
        );
        checked += 1;
    }
    assert!(checked > 50);
}

#[test]
fn a_restored_tombstone_keeps_the_key_it_deletes() {
    let mut kv = KvStore::new(KvConfig::default());
    for value in ["v", ""] {
        kv.put(&PutRequest {
            key: Bytes::from_static(b"key"),
            value: Bytes::from_static(value.as_bytes()),
            ..PutRequest::default()
        })
        .unwrap();
        kv.delete_range(&DeleteRangeRequest {
            key: Bytes::from_static(b"key"),
            ..DeleteRangeRequest::default()
        })
        .unwrap();
    }
    let mut copy = KvStore::new(KvConfig::default());
    copy.restore(&mut snapshot(&kv).as_slice()).unwrap();
    let indexed = copy
        .mvcc
        .index
        .get_key_value(&b"key"[..])
        .unwrap()
        .0
        .clone();
    let records: Vec<_> = copy.history().collect();
    assert_eq!(records.len(), 4);
    for record in records.iter().filter(|r| r.kv().value.is_empty()) {
        // Both tombstones, and the version with an empty value: no buffer of their own.
        assert_eq!(record.kv().key.as_ptr(), indexed.as_ptr(), "{record:?}");
    }
    assert_eq!(copy.history().filter(|r| r.is_tombstone()).count(), 2);
}

#[test]
fn restored_store_resumes_identically() {
    let mut kv = populated();
    let mut copy = KvStore::new(KvConfig::default());
    copy.restore(&mut snapshot(&kv).as_slice()).unwrap();
    let all = RangeRequest {
        key: Bytes::from_static(&[0]),
        range_end: Bytes::from_static(&[0]),
        ..RangeRequest::default()
    };
    for rev in 150..=kv.revision() {
        let req = RangeRequest {
            revision: rev,
            ..all.clone()
        };
        assert_eq!(copy.range(&req), kv.range(&req), "range at {rev}");
    }
    assert_eq!(copy.lease_leases(), kv.lease_leases());
    let ttl = LeaseTimeToLiveRequest { id: 5, keys: true };
    assert_eq!(
        copy.lease_time_to_live(&ttl, 0),
        kv.lease_time_to_live(&ttl, 0)
    );
    // Same next writes, same answers, same lease IDs.
    for store in [&mut kv, &mut copy] {
        put(store, "after", "x");
        store.lease_revoke(&LeaseRevokeRequest { id: 5 }).unwrap();
        store
            .lease_grant(&LeaseGrantRequest { ttl: 9, id: 0 })
            .unwrap();
    }
    assert_eq!(copy.hash(), kv.hash());
    assert_eq!(copy.hash_kv(0).unwrap(), kv.hash_kv(0).unwrap());
    // Watch history resumes too.
    let watch = WatchCreateRequest {
        key: Bytes::from_static(b"key/"),
        range_end: Bytes::from_static(b"key0"),
        start_revision: 150,
        prev_kv: true,
        ..WatchCreateRequest::default()
    };
    let events = |s: &mut KvStore| {
        s.watch_create(&watch).unwrap();
        let mut out = Vec::new();
        loop {
            while let Some((_, r)) = s.poll_watch_event() {
                out.extend(r.events);
            }
            if !s.sync_watchers_step(1000) {
                break;
            }
        }
        while let Some((_, r)) = s.poll_watch_event() {
            out.extend(r.events);
        }
        out
    };
    let a = events(&mut kv);
    assert!(a.len() > 100);
    assert_eq!(events(&mut copy), a);
}

#[test]
fn corrupt_snapshots_are_refused() {
    let kv = populated();
    let buf = snapshot(&kv);
    let mut target = KvStore::new(KvConfig::default());
    put(&mut target, "mine", "stays");
    let before = target.hash();
    let mut flipped = buf.clone();
    flipped[buf.len() / 3] ^= 1;
    assert!(target.restore(&mut flipped.as_slice()).is_err());
    let mut bad_magic = buf.clone();
    bad_magic[0] = b'X';
    assert!(matches!(
        target.restore(&mut bad_magic.as_slice()),
        Err(SnapshotError::BadMagic)
    ));
    let truncated = &buf[..buf.len() - 3];
    assert!(matches!(
        target.restore(&mut &truncated[..]),
        Err(SnapshotError::Io(_))
    ));
    let mut bad_crc = buf.clone();
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 0xff;
    assert!(matches!(
        target.restore(&mut bad_crc.as_slice()),
        Err(SnapshotError::Checksum { .. })
    ));
    assert_eq!(
        target.hash(),
        before,
        "a refused snapshot leaves the store as it was"
    );
}
