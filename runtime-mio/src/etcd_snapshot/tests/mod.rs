//! etcd snapshot files both ways: a store written and read back answers as before; files
//! laid out bucket by bucket as etcd writes them import with every revision; damaged and
//! foreign files are refused naming what is wrong; the fuzz target survives its seeds.

mod fuzz_seeds;
mod real_etcd;

use std::io::Cursor;

use bytes::Bytes;
use prost::Message as _;
use tally_kvstore::proto::*;
use tally_kvstore::{KvConfig, KvStore};

use super::backend::{self, Lease, lease_key, revision_key};
use super::bbolt::{BoltError, DbWriter, PAGE_BYTES_DEFAULT};
use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A store with history: overwrites, deletes, a compaction, leases (one with keys, one
/// checkpointed) and an alarm.
pub(super) fn populated() -> KvStore {
    let mut kv = KvStore::new(KvConfig::default());
    kv.lease_grant(&LeaseGrantRequest { ttl: 100, id: 5 })
        .unwrap();
    kv.lease_grant(&LeaseGrantRequest { ttl: 50, id: -6 })
        .unwrap();
    kv.lease_checkpoint(&LeaseCheckpointRequest {
        checkpoints: vec![LeaseCheckpoint {
            id: -6,
            remaining_ttl: 20,
        }],
    });
    for i in 0..400u32 {
        let key = format!("key/{:03}", i % 97);
        kv.put(&PutRequest {
            key: Bytes::from(key),
            value: Bytes::from(format!("value-{i}").repeat(1 + (i as usize % 7))),
            lease: if i % 5 == 0 { 5 } else { 0 },
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
    while kv.compact_step(10) {}
    kv.alarm(&AlarmRequest {
        action: AlarmAction::Activate as i32,
        member_id: 3,
        alarm: AlarmType::Nospace as i32,
    });
    kv
}

fn exported(store: &KvStore) -> Vec<u8> {
    let mut file = Cursor::new(Vec::new());
    export_etcd_file(store, &mut file).unwrap();
    file.into_inner()
}

fn import(file: &[u8]) -> Result<Imported, EtcdFileError> {
    import_etcd_file(Bytes::copy_from_slice(file), KvConfig::default())
}

fn everything_at(store: &KvStore, revision: i64) -> String {
    format!(
        "{:?}",
        store.range(&RangeRequest {
            key: Bytes::from_static(&[0]),
            range_end: Bytes::from_static(&[0]),
            revision,
            ..RangeRequest::default()
        })
    )
}

/// Whether `b` answers every read at every revision as `a` does, with the same leases and
/// alarms.
fn assert_same_answers(a: &KvStore, b: &KvStore) {
    assert_eq!(
        (a.revision(), a.compacted_revision()),
        (b.revision(), b.compacted_revision())
    );
    for revision in a.compacted_revision() - 1..=a.revision() + 1 {
        assert_eq!(
            everything_at(a, revision),
            everything_at(b, revision),
            "at {revision}"
        );
        assert_eq!(
            a.hash_kv(revision),
            b.hash_kv(revision),
            "hash_kv at {revision}"
        );
    }
    assert_eq!(
        a.lease_records().collect::<Vec<_>>(),
        b.lease_records().collect::<Vec<_>>()
    );
    assert_eq!(
        a.raised_alarms().collect::<Vec<_>>(),
        b.raised_alarms().collect::<Vec<_>>()
    );
}

#[test]
fn a_store_written_as_an_etcd_file_reads_back_with_every_revision() {
    let store = populated();
    let file = exported(&store);
    assert_eq!(file.len() % 512, 32, "pages and etcdctl's SHA-256 trailer");
    assert!(is_etcd_snapshot(&file));
    let imported = import(&file).unwrap();
    assert_same_answers(&store, imported.store());
    let report = imported.report();
    assert_eq!(report.revision(), store.revision());
    assert_eq!(report.records(), store.history().count() as u64);
    assert!(
        report.to_string().contains("SHA-256 trailer checked"),
        "{report}"
    );
}

#[test]
fn the_report_counts_what_status_counts() {
    let store = populated();
    let mut file = Cursor::new(Vec::new());
    let report = export_etcd_file(&store, &mut file).unwrap();
    let file = file.into_inner();
    assert_eq!(report.file_bytes(), file.len() as u64);
    assert_eq!(
        report.revision(),
        store.history().last().unwrap().revision().main()
    );
    // history, 2 leases, 1 alarm, clusterVersion, consistent_index and two compaction marks.
    assert_eq!(report.total_keys(), report.records() + 2 + 1 + 1 + 3);
}

/// More buckets for [`etcd_file`]: name, keys and values.
type Extra<'a> = [(&'a [u8], Vec<(Vec<u8>, Vec<u8>)>)];

/// An etcd backend written bucket by bucket; `key` gets `records` (revision, tombstone,
/// value), `meta` gets `meta`, and `extra` buckets are added as given.
fn etcd_file(
    records: &[(i64, i64, bool, Vec<u8>)],
    meta: &[(&[u8], Vec<u8>)],
    extra: &Extra<'_>,
) -> Vec<u8> {
    let mut names: Vec<&[u8]> = vec![backend::KEY, backend::META];
    names.extend(extra.iter().map(|(n, _)| *n));
    names.sort();
    let mut db = DbWriter::new(Cursor::new(Vec::new()), PAGE_BYTES_DEFAULT).unwrap();
    for name in names {
        let mut bucket = db.bucket(name);
        if name == backend::KEY {
            for (main, sub, tombstone, value) in records {
                let (key, len) = revision_key(*main, *sub, *tombstone);
                bucket.put(&key[..len], value).unwrap();
            }
        } else if name == backend::META {
            let mut meta = meta.to_vec();
            meta.sort();
            for (k, v) in meta {
                bucket.put(k, &v).unwrap();
            }
        } else {
            let (_, entries) = extra.iter().find(|(n, _)| *n == name).unwrap();
            for (k, v) in entries {
                bucket.put(k, v).unwrap();
            }
        }
        bucket.finish().unwrap();
    }
    with_trailer(db.finish().unwrap().into_inner())
}

fn with_trailer(mut data: Vec<u8>) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, &data);
    data.extend_from_slice(digest.as_ref());
    data
}

fn kv(key: &str, create: i64, rev: i64, version: i64, value: &str, lease: i64) -> Vec<u8> {
    KeyValue {
        key: b(key),
        create_revision: create,
        mod_revision: rev,
        version,
        value: b(value),
        lease,
    }
    .encode_to_vec()
}

fn tomb(key: &str) -> Vec<u8> {
    KeyValue {
        key: b(key),
        ..KeyValue::default()
    }
    .encode_to_vec()
}

fn compact_rev(main: i64) -> Vec<u8> {
    let (k, len) = revision_key(main, 0, false);
    k[..len].to_vec()
}

#[test]
fn a_file_laid_out_as_etcd_writes_it_imports_with_its_revisions_leases_and_alarms() {
    let lease = Lease {
        id: 7,
        ttl: 30,
        remaining_ttl: 0,
    };
    let alarm = AlarmMember {
        member_id: 0x1234,
        alarm: AlarmType::Nospace as i32,
    };
    let records = vec![
        (2, 0, false, kv("a", 2, 2, 1, "1", 0)),
        (3, 0, false, kv("b", 3, 3, 1, "1", 7)),
        (3, 1, false, kv("c", 3, 3, 1, "1", 0)),
        (4, 0, false, kv("a", 2, 4, 2, "2", 0)),
        (5, 0, true, tomb("c")),
        (6, 0, false, kv("c", 6, 6, 1, "again", 0)),
    ];
    let file = etcd_file(
        &records,
        &[(backend::CONSISTENT_INDEX, 99u64.to_be_bytes().to_vec())],
        &[
            (
                backend::LEASE,
                vec![(lease_key(7).to_vec(), lease.encode_to_vec())],
            ),
            (backend::ALARM, vec![(alarm.encode_to_vec(), Vec::new())]),
            (
                backend::MEMBERS,
                vec![(b"8e9e05c52164694d".to_vec(), b"{}".to_vec())],
            ),
        ],
    );
    let imported = import(&file).unwrap();
    let store = imported.store();
    assert_eq!((store.revision(), store.compacted_revision()), (6, 0));
    let get = |key: &str, rev: i64| {
        store
            .range(&RangeRequest {
                key: b(key),
                revision: rev,
                ..RangeRequest::default()
            })
            .unwrap()
            .kvs
    };
    let a = &get("a", 0)[0];
    assert_eq!((a.create_revision, a.mod_revision, a.version), (2, 4, 2));
    assert_eq!(get("a", 3)[0].value, b("1"));
    assert_eq!(get("c", 4)[0].mod_revision, 3);
    assert!(get("c", 5).is_empty(), "deleted at 5");
    assert_eq!(get("c", 6)[0].create_revision, 6);
    assert_eq!(get("b", 0)[0].lease, 7);
    assert_eq!(
        store
            .lease_records()
            .map(|l| (l.id(), l.ttl_secs()))
            .collect::<Vec<_>>(),
        [(7, 30)]
    );
    assert_eq!(store.raised_alarms().collect::<Vec<_>>(), [alarm]);
    let report = imported.report().to_string();
    assert!(report.contains("1 members not taken"), "{report}");
}

#[test]
fn a_compaction_under_way_when_etcd_saved_the_file_is_finished_as_etcd_finishes_it() {
    // Compaction at 4 scheduled, not finished: revision 2 (a's version before 3) and the
    // tombstone of b at 4 are still there, and b's put at 3 already went.
    let records = vec![
        (2, 0, false, kv("a", 2, 2, 1, "1", 0)),
        (3, 0, false, kv("a", 2, 3, 2, "2", 0)),
        (4, 0, true, tomb("b")),
        (5, 0, false, kv("a", 2, 5, 3, "3", 0)),
    ];
    let file = etcd_file(
        &records,
        &[
            (backend::FINISHED_COMPACT_REV, compact_rev(1)),
            (backend::SCHEDULED_COMPACT_REV, compact_rev(4)),
        ],
        &[],
    );
    let imported = import(&file).unwrap();
    let store = imported.store();
    assert_eq!((store.revision(), store.compacted_revision()), (5, 4));
    let kept: Vec<i64> = store.history().map(|h| h.revision().main()).collect();
    assert_eq!(kept, [3, 5]);
    assert!(imported.report().to_string().contains("1 deletions"));
    // A scheduled compaction past the history is one etcd refuses: the finished one stays.
    let file = etcd_file(
        &[records[0].clone(), records[1].clone(), records[3].clone()],
        &[
            (backend::FINISHED_COMPACT_REV, compact_rev(2)),
            (backend::SCHEDULED_COMPACT_REV, compact_rev(9)),
        ],
        &[],
    );
    assert_eq!(import(&file).unwrap().store().compacted_revision(), 2);
}

/// The error for `file`, as its text.
fn refused(file: &[u8]) -> String {
    import(file).expect_err("refused").to_string()
}

#[test]
fn damaged_and_foreign_files_are_refused_naming_what_is_wrong() {
    let good = exported(&populated());
    // Truncated anywhere but at a page boundary: the size says so.
    assert!(refused(&good[..good.len() - 1]).contains("truncated or not an etcd snapshot"));
    assert!(refused(&good[..1000]).contains("truncated or not an etcd snapshot"));
    // Cut at a page boundary, trailer gone: bbolt's own page count says so.
    let cut = &good[..good.len() - 32 - PAGE_BYTES_DEFAULT];
    assert!(
        refused(cut).starts_with("truncated: the database uses"),
        "{}",
        refused(cut)
    );
    // A flipped bit under the trailer.
    let mut flipped = good.clone();
    flipped[PAGE_BYTES_DEFAULT * 3 + 100] ^= 0x10;
    assert_eq!(refused(&flipped), EtcdFileError::Sha256Mismatch.to_string());
    // The same damage without a trailer (a member's db file): bbolt's structure catches it.
    let data = &good[..good.len() - 32];
    let mut no_trailer = data.to_vec();
    no_trailer[PAGE_BYTES_DEFAULT * 3 + 8] = 0x7f;
    assert!(
        refused(&no_trailer).starts_with("bbolt page 3"),
        "{}",
        refused(&no_trailer)
    );
    // Without a trailer and undamaged it imports, and says it checked no SHA-256.
    let imported = import(data).unwrap();
    assert!(imported.report().to_string().contains("no SHA-256 trailer"));
    // Not a bbolt file at all.
    assert!(!is_etcd_snapshot(&[7u8; 4096 * 2]));
    assert_eq!(
        refused(&[7u8; 4096 * 2]),
        EtcdFileError::Bbolt(BoltError::NotBbolt).to_string()
    );
}

#[test]
fn a_bbolt_file_that_is_not_etcds_or_holds_what_etcd_never_writes_is_refused() {
    let mut db = DbWriter::new(Cursor::new(Vec::new()), PAGE_BYTES_DEFAULT).unwrap();
    db.bucket(b"other").finish().unwrap();
    let not_etcd = with_trailer(db.finish().unwrap().into_inner());
    assert_eq!(
        refused(&not_etcd),
        "a bbolt database but not etcd's backend: it has no `key` bucket"
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            etcd_file(
                &[],
                &[],
                &[(backend::AUTH, vec![(b"enabled".to_vec(), vec![1])])],
            ),
            "etcd's authentication is enabled",
        ),
        (
            etcd_file(&[(2, 0, false, b"\xff\xff".to_vec())], &[], &[]),
            "etcd bucket `key`, key revision 2.0: its value is not an mvccpb.KeyValue",
        ),
        (
            etcd_file(&[(2, 0, false, kv("a", 2, 3, 1, "x", 0))], &[], &[]),
            "its mod_revision is not its revision",
        ),
        (
            etcd_file(&[(2, 0, false, kv("a", 2, 2, 1, "x", 9))], &[], &[]),
            "is attached to lease 0000000000000009, which does not exist",
        ),
        (
            etcd_file(
                &[],
                &[(backend::FINISHED_COMPACT_REV, b"short".to_vec())],
                &[],
            ),
            "etcd bucket `meta`, key finishedCompactRev: not a revision",
        ),
        (
            etcd_file(
                &[],
                &[],
                &[(
                    backend::LEASE,
                    vec![(
                        lease_key(8).to_vec(),
                        Lease {
                            id: 9,
                            ttl: 5,
                            remaining_ttl: 0,
                        }
                        .encode_to_vec(),
                    )],
                )],
            ),
            "its key is not its lease's ID",
        ),
    ];
    for (file, want) in cases {
        let got = refused(&file);
        assert!(got.contains(want), "{got:?} should say {want:?}");
    }
}

#[test]
fn a_revision_key_is_17_bytes_or_18_with_the_deletion_mark() {
    let (key, len) = revision_key(0x0102, 3, true);
    assert_eq!(&key[..len], b"\0\0\0\0\0\0\x01\x02_\0\0\0\0\0\0\0\x03t");
    let (parsed, tombstone) = backend::parse_revision(&key[..len]).unwrap();
    assert_eq!((parsed.main(), parsed.sub(), tombstone), (0x0102, 3, true));
    assert!(backend::parse_revision(&key[..16]).is_err());
    let mut bad = key;
    bad[8] = b'-';
    assert!(backend::parse_revision(&bad[..17]).is_err());
    bad[8] = b'_';
    bad[17] = b'x';
    assert!(backend::parse_revision(&bad).is_err());
    bad[0] = 0x80;
    assert_eq!(
        backend::parse_revision(&bad[..17]).unwrap_err(),
        "a negative revision"
    );
}
