//! A file etcd 3.4.23 wrote (`etcdctl snapshot save`, kept as a fuzz seed), after:
//! `put a 1` (2), `put b 1` (3), `put a 2` (4), `del b` (5), `put c 1` (6), a txn putting a
//! and d and deleting c (7), a 600 s lease and `put leased v --lease` (8), `compaction 5`,
//! `put b again` (9). etcd answered `get "" --prefix` at revision 9 with a (created 2, mod 7,
//! version 3, "3"), b (9, 9, 1, "again"), d (7, 7, 1, "1") and leased (8, 8, 1, "v", lease
//! 390da24e2de4ca0c); `snapshot status` said revision 9, 14 keys, 20480 bytes.

use super::*;

const LEASE: i64 = 0x390d_a24e_2de4_ca0c;

fn etcd_file() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds/etcd_snapshot_reader/etcd-3.4.23-history.db");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn get(store: &KvStore, key: &str, revision: i64) -> Result<Vec<KeyValue>, tally_kvstore::KvError> {
    store
        .range(&RangeRequest {
            key: b(key),
            revision,
            ..RangeRequest::default()
        })
        .map(|r| r.kvs)
}

#[test]
fn a_snapshot_etcd_wrote_imports_with_what_etcd_answered() {
    let file = etcd_file();
    assert_eq!(file.len(), 20480 + 32);
    let imported = import(&file).unwrap();
    let store = imported.store();
    assert_eq!((store.revision(), store.compacted_revision()), (9, 5));
    let shape = |kv: &KeyValue| {
        (
            kv.create_revision,
            kv.mod_revision,
            kv.version,
            String::from_utf8_lossy(&kv.value).into_owned(),
            kv.lease,
        )
    };
    let all = store
        .range(&RangeRequest {
            key: Bytes::from_static(&[0]),
            range_end: Bytes::from_static(&[0]),
            ..RangeRequest::default()
        })
        .unwrap()
        .kvs;
    let got: Vec<_> = all.iter().map(|kv| (kv.key.clone(), shape(kv))).collect();
    assert_eq!(
        got,
        [
            (b("a"), (2, 7, 3, "3".to_string(), 0)),
            (b("b"), (9, 9, 1, "again".to_string(), 0)),
            (b("d"), (7, 7, 1, "1".to_string(), 0)),
            (b("leased"), (8, 8, 1, "v".to_string(), LEASE)),
        ]
    );
    // The history etcd kept: a at 5 was version 2; c lived from 6 until the txn at 7.
    assert_eq!(
        shape(&get(store, "a", 5).unwrap()[0]),
        (2, 4, 2, "2".into(), 0)
    );
    assert_eq!(
        shape(&get(store, "c", 6).unwrap()[0]),
        (6, 6, 1, "1".into(), 0)
    );
    assert!(get(store, "c", 7).unwrap().is_empty());
    assert!(get(store, "b", 8).unwrap().is_empty());
    assert_eq!(
        get(store, "a", 4).unwrap_err(),
        tally_kvstore::KvError::Compacted
    );
    let subs: Vec<(i64, i64, bool)> = store
        .history()
        .map(|h| (h.revision().main(), h.revision().sub(), h.is_tombstone()))
        .collect();
    assert_eq!(
        subs,
        [
            (4, 0, false),
            (6, 0, false),
            (7, 0, false),
            (7, 1, false),
            (7, 2, true),
            (8, 0, false),
            (9, 0, false)
        ]
    );
    assert_eq!(
        store
            .lease_records()
            .map(|l| (l.id(), l.ttl_secs()))
            .collect::<Vec<_>>(),
        [(LEASE, 600)]
    );
    let report = imported.report().to_string();
    assert!(report.contains("1 members not taken"), "{report}");
}

#[test]
fn etcds_file_written_again_reads_back_the_same() {
    let imported = import(&etcd_file()).unwrap();
    let again = import(&exported(imported.store())).unwrap();
    assert_same_answers(imported.store(), again.store());
}
