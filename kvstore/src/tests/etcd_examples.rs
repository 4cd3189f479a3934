//! Test 2: etcd's documented examples, with the exact revisions and versions etcd gives.

use bytes::Bytes;
use prost::Message;

use crate::proto::internal_request::Request;
use crate::proto::request_op::Request as OpReq;
use crate::proto::response_op::Response as OpResp;
use crate::proto::*;
use crate::{ApplyResponse, KvConfig, KvError, KvStore, prefix_range_end};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub(crate) fn put(kv: &mut KvStore, k: &str, v: &str) -> PutResponse {
    kv.put(&PutRequest {
        key: b(k),
        value: b(v),
        ..PutRequest::default()
    })
    .expect("put")
}

pub(crate) fn get(kv: &KvStore, k: &str, rev: i64) -> Result<RangeResponse, KvError> {
    kv.range(&RangeRequest {
        key: b(k),
        revision: rev,
        ..RangeRequest::default()
    })
}

fn rev_of(h: &Option<ResponseHeader>) -> i64 {
    h.as_ref().expect("header").revision
}

fn one(r: &RangeResponse) -> (i64, i64, i64, &[u8]) {
    assert_eq!(r.kvs.len(), 1, "{r:?}");
    let kv = &r.kvs[0];
    (kv.create_revision, kv.mod_revision, kv.version, &kv.value)
}

#[test]
fn create_update_delete_recreate_one_key() {
    let mut kv = KvStore::new(KvConfig::default());
    assert_eq!(kv.revision(), 1, "a new etcd starts at revision 1");
    assert_eq!(rev_of(&put(&mut kv, "foo", "bar").header), 2);
    assert_eq!(one(&get(&kv, "foo", 0).unwrap()), (2, 2, 1, &b"bar"[..]));
    assert_eq!(rev_of(&put(&mut kv, "foo", "baz").header), 3);
    assert_eq!(one(&get(&kv, "foo", 0).unwrap()), (2, 3, 2, &b"baz"[..]));

    let del = kv
        .delete_range(&DeleteRangeRequest {
            key: b("foo"),
            prev_kv: true,
            ..DeleteRangeRequest::default()
        })
        .unwrap();
    assert_eq!((rev_of(&del.header), del.deleted), (4, 1));
    assert_eq!(del.prev_kvs[0].version, 2);
    let gone = get(&kv, "foo", 0).unwrap();
    assert_eq!(
        (gone.kvs.len(), gone.count, rev_of(&gone.header)),
        (0, 0, 4)
    );

    // Deleting nothing does not advance the revision.
    let none = kv
        .delete_range(&DeleteRangeRequest {
            key: b("foo"),
            ..DeleteRangeRequest::default()
        })
        .unwrap();
    assert_eq!((rev_of(&none.header), none.deleted), (4, 0));

    // Re-creating starts a new generation: create_revision and version restart.
    assert_eq!(rev_of(&put(&mut kv, "foo", "new").header), 5);
    assert_eq!(one(&get(&kv, "foo", 0).unwrap()), (5, 5, 1, &b"new"[..]));

    // History: each revision reads as it was.
    assert_eq!(one(&get(&kv, "foo", 2).unwrap()), (2, 2, 1, &b"bar"[..]));
    assert_eq!(one(&get(&kv, "foo", 3).unwrap()), (2, 3, 2, &b"baz"[..]));
    assert!(get(&kv, "foo", 4).unwrap().kvs.is_empty());
    assert_eq!(
        rev_of(&get(&kv, "foo", 2).unwrap().header),
        5,
        "header is the current revision"
    );
}

fn cmp_value(k: &str, v: &str) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Value as i32,
        key: b(k),
        target_union: Some(compare::TargetUnion::Value(b(v))),
        ..Compare::default()
    }
}

fn op_put(k: &str, v: &str) -> RequestOp {
    RequestOp {
        request: Some(OpReq::RequestPut(PutRequest {
            key: b(k),
            value: b(v),
            ..PutRequest::default()
        })),
    }
}

fn op_del(k: &str) -> RequestOp {
    RequestOp {
        request: Some(OpReq::RequestDeleteRange(DeleteRangeRequest {
            key: b(k),
            ..DeleteRangeRequest::default()
        })),
    }
}

fn op_get(k: &str) -> RequestOp {
    RequestOp {
        request: Some(OpReq::RequestRange(RangeRequest {
            key: b(k),
            ..RangeRequest::default()
        })),
    }
}

/// etcdctl's documented txn: `value("user1") = "bad"` then `del user1` else `put user1 good`.
#[test]
fn txn_that_succeeds_and_txn_that_fails() {
    let mut kv = KvStore::new(KvConfig::default());
    put(&mut kv, "user1", "bad"); // rev 2
    let txn = TxnRequest {
        compare: vec![cmp_value("user1", "bad")],
        success: vec![op_del("user1")],
        failure: vec![op_put("user1", "good")],
    };
    let ok = kv.txn(&txn).unwrap();
    assert!(ok.succeeded);
    assert_eq!(rev_of(&ok.header), 3);
    match &ok.responses[0].response {
        Some(OpResp::ResponseDeleteRange(d)) => assert_eq!(d.deleted, 1),
        other => panic!("{other:?}"),
    }
    // The key is gone: a value compare on a missing key is false.
    let failed = kv.txn(&txn).unwrap();
    assert!(!failed.succeeded);
    assert_eq!(rev_of(&failed.header), 4);
    assert_eq!(one(&get(&kv, "user1", 0).unwrap()), (4, 4, 1, &b"good"[..]));

    // Compare-and-swap on mod_revision, every op sharing one revision with rising subs.
    let cas = |m: i64| TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Mod as i32,
            key: b("user1"),
            target_union: Some(compare::TargetUnion::ModRevision(m)),
            ..Compare::default()
        }],
        success: vec![op_put("user1", "v2"), op_put("other", "x"), op_get("user1")],
        failure: vec![op_get("user1")],
    };
    let stale = kv.txn(&cas(2)).unwrap();
    assert!(!stale.succeeded);
    assert_eq!(
        rev_of(&stale.header),
        4,
        "a read-only branch does not advance the revision"
    );
    let fresh = kv.txn(&cas(4)).unwrap();
    assert!(fresh.succeeded);
    assert_eq!(rev_of(&fresh.header), 5);
    match &fresh.responses[2].response {
        Some(OpResp::ResponseRange(r)) => {
            assert_eq!(
                one(r),
                (4, 5, 2, &b"v2"[..]),
                "reads inside a txn see its writes"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(one(&get(&kv, "other", 0).unwrap()), (5, 5, 1, &b"x"[..]));
}

#[test]
fn historical_range_after_compaction_fails() {
    let mut kv = KvStore::new(KvConfig::default());
    for v in ["a", "b", "c", "d"] {
        put(&mut kv, "k", v); // revs 2..=5
    }
    kv.compact(&CompactionRequest {
        revision: 4,
        physical: false,
    })
    .unwrap();
    let err = get(&kv, "k", 3).unwrap_err();
    assert_eq!(err, KvError::Compacted);
    assert_eq!(
        err.etcd_message(),
        "etcdserver: mvcc: required revision has been compacted"
    );
    // The compacted revision itself still reads, before and after the physical work.
    assert_eq!(one(&get(&kv, "k", 4).unwrap()), (2, 4, 3, &b"c"[..]));
    while kv.compact_step(1) {}
    assert!(kv.compaction_done(4));
    assert_eq!(one(&get(&kv, "k", 4).unwrap()), (2, 4, 3, &b"c"[..]));
    let future = get(&kv, "k", 6).unwrap_err();
    assert_eq!(
        future.etcd_message(),
        "etcdserver: mvcc: required revision is a future revision"
    );
    let again = kv.compact(&CompactionRequest {
        revision: 4,
        physical: true,
    });
    assert_eq!(again, Err(KvError::Compacted));
    assert_eq!(
        kv.compact(&CompactionRequest {
            revision: 9,
            physical: false
        }),
        Err(KvError::FutureRevision)
    );
}

#[test]
fn put_misuse_gets_etcds_errors() {
    let mut kv = KvStore::new(KvConfig::default());
    let p = |k: &str, v: &str, lease: i64, iv: bool, il: bool| PutRequest {
        key: b(k),
        value: b(v),
        lease,
        ignore_value: iv,
        ignore_lease: il,
        prev_kv: false,
    };
    let msg = |r: Result<PutResponse, KvError>| r.unwrap_err().etcd_message();
    assert_eq!(
        msg(kv.put(&p("", "v", 0, false, false))),
        "etcdserver: key is not provided"
    );
    assert_eq!(
        msg(kv.put(&p("k", "v", 0, true, false))),
        "etcdserver: value is provided"
    );
    assert_eq!(
        msg(kv.put(&p("k", "", 7, false, true))),
        "etcdserver: lease is provided"
    );
    assert_eq!(
        msg(kv.put(&p("k", "", 0, true, false))),
        "etcdserver: key not found"
    );
    assert_eq!(
        msg(kv.put(&p("k", "v", 7, false, false))),
        "etcdserver: requested lease not found"
    );
    assert_eq!(kv.revision(), 1, "failed puts change nothing");

    let lease = kv
        .lease_grant(&LeaseGrantRequest { ttl: 60, id: 0 })
        .unwrap()
        .id;
    kv.put(&p("k", "v1", lease, false, false)).unwrap();
    // ignore_value keeps the value, and the lease when no new one is given... etcd detaches it.
    kv.put(&p("k", "", 0, true, false)).unwrap();
    let r = get(&kv, "k", 0).unwrap();
    assert_eq!(
        (&r.kvs[0].value[..], r.kvs[0].lease, r.kvs[0].version),
        (&b"v1"[..], 0, 2)
    );
    kv.put(&p("k", "v3", lease, false, false)).unwrap();
    kv.put(&p("k", "v4", 0, false, true)).unwrap();
    let r = get(&kv, "k", 0).unwrap();
    assert_eq!((&r.kvs[0].value[..], r.kvs[0].lease), (&b"v4"[..], lease));
    let prev = kv
        .put(&PutRequest {
            prev_kv: true,
            ..p("k", "v5", 0, false, false)
        })
        .unwrap();
    assert_eq!(&prev.prev_kv.unwrap().value[..], b"v4");
}

#[test]
fn txn_rules() {
    let mut kv = KvStore::new(KvConfig::default().with_txn_ops_max(3));
    let dup = TxnRequest {
        success: vec![op_put("a", "1"), op_put("a", "2")],
        ..TxnRequest::default()
    };
    let err = kv.txn(&dup).unwrap_err();
    assert_eq!(
        err.etcd_message(),
        "etcdserver: duplicate key given in txn request"
    );
    let put_in_deleted_range = TxnRequest {
        success: vec![
            op_put("ab", "1"),
            RequestOp {
                request: Some(OpReq::RequestDeleteRange(DeleteRangeRequest {
                    key: b("a"),
                    range_end: b("b"),
                    ..DeleteRangeRequest::default()
                })),
            },
        ],
        ..TxnRequest::default()
    };
    assert_eq!(kv.txn(&put_in_deleted_range), Err(KvError::DuplicateKey));
    // Then and else branches may both put the same key.
    let nested_ok = TxnRequest {
        success: vec![RequestOp {
            request: Some(OpReq::RequestTxn(TxnRequest {
                compare: vec![cmp_value("x", "nope")],
                success: vec![op_put("n", "then")],
                failure: vec![op_put("n", "else")],
            })),
        }],
        ..TxnRequest::default()
    };
    let r = kv.txn(&nested_ok).unwrap();
    assert!(r.succeeded);
    match &r.responses[0].response {
        Some(OpResp::ResponseTxn(t)) => assert!(!t.succeeded),
        other => panic!("{other:?}"),
    }
    assert_eq!(&get(&kv, "n", 0).unwrap().kvs[0].value[..], b"else");
    let nested_dup = TxnRequest {
        success: vec![op_put("n", "outer"), nested_ok.success[0].clone()],
        ..TxnRequest::default()
    };
    assert_eq!(kv.txn(&nested_dup), Err(KvError::DuplicateKey));
    let too_many = TxnRequest {
        success: vec![op_get("a"), op_get("b"), op_get("c"), op_get("d")],
        ..TxnRequest::default()
    };
    assert_eq!(
        kv.txn(&too_many).unwrap_err().etcd_message(),
        "etcdserver: too many operations in txn request"
    );

    // A compare over a range holds only if it holds for every key.
    put(&mut kv, "r1", "same");
    put(&mut kv, "r2", "same");
    let over = |v: &str| TxnRequest {
        compare: vec![Compare {
            range_end: b("r9"),
            ..cmp_value("r1", v)
        }],
        ..TxnRequest::default()
    };
    assert!(kv.txn(&over("same")).unwrap().succeeded);
    put(&mut kv, "r3", "diff");
    assert!(!kv.txn(&over("same")).unwrap().succeeded);

    // LEASE compares, and VERSION/CREATE on a missing key compare against 0.
    let lease = kv
        .lease_grant(&LeaseGrantRequest { ttl: 60, id: 0 })
        .unwrap()
        .id;
    kv.put(&PutRequest {
        key: b("leased"),
        value: b("v"),
        lease,
        ..PutRequest::default()
    })
    .unwrap();
    let cmp = |key: &str, target: CompareTarget, result: CompareResult, u: compare::TargetUnion| {
        TxnRequest {
            compare: vec![Compare {
                result: result as i32,
                target: target as i32,
                key: b(key),
                target_union: Some(u),
                ..Compare::default()
            }],
            ..TxnRequest::default()
        }
    };
    use compare::TargetUnion as U;
    assert!(
        kv.txn(&cmp(
            "leased",
            CompareTarget::Lease,
            CompareResult::Equal,
            U::Lease(lease)
        ))
        .unwrap()
        .succeeded
    );
    assert!(
        !kv.txn(&cmp(
            "leased",
            CompareTarget::Lease,
            CompareResult::Equal,
            U::Lease(0)
        ))
        .unwrap()
        .succeeded
    );
    assert!(
        kv.txn(&cmp(
            "missing",
            CompareTarget::Version,
            CompareResult::Equal,
            U::Version(0)
        ))
        .unwrap()
        .succeeded
    );
    assert!(
        kv.txn(&cmp(
            "missing",
            CompareTarget::Create,
            CompareResult::Less,
            U::CreateRevision(1)
        ))
        .unwrap()
        .succeeded
    );
    assert!(
        !kv.txn(&cmp(
            "missing",
            CompareTarget::Value,
            CompareResult::NotEqual,
            U::Value(b("x"))
        ))
        .unwrap()
        .succeeded
    );
    assert!(
        kv.txn(&cmp(
            "leased",
            CompareTarget::Value,
            CompareResult::Greater,
            U::Value(b("a"))
        ))
        .unwrap()
        .succeeded
    );
}

#[test]
fn range_options() {
    let mut kv = KvStore::new(KvConfig::default());
    for (k, v) in [("a", "3"), ("b", "1"), ("c", "2"), ("d", "0")] {
        put(&mut kv, k, v); // a@2 b@3 c@4 d@5
    }
    put(&mut kv, "b", "9"); // b@6
    let all = RangeRequest {
        key: b("\0"),
        range_end: b("\0"),
        ..RangeRequest::default()
    };
    let keys = |r: RangeResponse| -> Vec<String> {
        r.kvs
            .iter()
            .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
            .collect()
    };
    let r = kv
        .range(&RangeRequest {
            limit: 2,
            ..all.clone()
        })
        .unwrap();
    assert_eq!((r.count, r.more), (4, true));
    assert_eq!(keys(r), ["a", "b"]);
    let by_mod_desc = RangeRequest {
        sort_order: SortOrder::Descend as i32,
        sort_target: SortTarget::Mod as i32,
        ..all.clone()
    };
    assert_eq!(keys(kv.range(&by_mod_desc).unwrap()), ["b", "d", "c", "a"]);
    let by_value = RangeRequest {
        sort_target: SortTarget::Value as i32,
        keys_only: true,
        ..all.clone()
    };
    let r = kv.range(&by_value).unwrap();
    assert!(
        r.kvs.iter().all(|kv| kv.value.is_empty()),
        "keys_only drops values"
    );
    assert_eq!(
        keys(r),
        ["d", "c", "a", "b"],
        "no order with a non-key target sorts ascending"
    );
    let filtered = RangeRequest {
        min_mod_revision: 3,
        max_create_revision: 4,
        ..all.clone()
    };
    assert_eq!(keys(kv.range(&filtered).unwrap()), ["b", "c"]);
    let count = kv
        .range(&RangeRequest {
            count_only: true,
            ..all.clone()
        })
        .unwrap();
    assert_eq!((count.count, count.kvs.len()), (4, 0));
    let prefix = RangeRequest {
        key: b("a"),
        range_end: prefix_range_end(b"a"),
        ..RangeRequest::default()
    };
    assert_eq!(kv.range(&prefix).unwrap().count, 1);
    let bad = RangeRequest {
        sort_order: 9,
        ..all.clone()
    };
    assert_eq!(kv.range(&bad), Err(KvError::InvalidSortOption));
    assert_eq!(kv.range(&RangeRequest::default()), Err(KvError::EmptyKey));
    // A range_end at or below the key is empty.
    let backwards = RangeRequest {
        key: b("c"),
        range_end: b("a"),
        ..RangeRequest::default()
    };
    assert_eq!(kv.range(&backwards).unwrap().count, 0);
}

#[test]
fn apply_decodes_requests_and_survives_garbage() {
    let mut kv = KvStore::new(KvConfig::default());
    let enc = |id: u64, r: Request| {
        InternalRequest {
            id,
            header: None,
            request: Some(r),
        }
        .encode_to_vec()
    };
    let out = kv.apply(
        1,
        &*enc(
            42,
            Request::Put(PutRequest {
                key: b("k"),
                value: b("v"),
                ..PutRequest::default()
            }),
        ),
    );
    assert_eq!(out.request_id(), 42);
    assert!(matches!(out.result(), Ok(ApplyResponse::Put(_))));
    let before = kv.hash();
    let bad = kv.apply(2, &[0xff_u8, 0xff, 0xff][..]);
    assert!(matches!(bad.result(), Err(KvError::Decode(_))));
    assert_eq!((kv.hash(), kv.applied_index()), (before, 1));
    let stale = kv.apply(1, &[0_u8; 0][..]);
    assert!(matches!(stale.result(), Err(KvError::StaleIndex { .. })));
    assert!(matches!(
        kv.apply(2, &[0_u8; 0][..]).result(),
        Ok(ApplyResponse::Noop)
    ));
    assert_eq!(kv.applied_index(), 2);
    let c = kv.apply(
        3,
        &*enc(
            7,
            Request::Compaction(CompactionRequest {
                revision: 2,
                physical: true,
            }),
        ),
    );
    assert_eq!(c.compaction_wait_rev(), Some(2));
    assert!(!kv.compaction_done(2));
    while kv.compact_step(100) {}
    assert!(kv.compaction_done(2));
    let st = kv.status();
    assert_eq!(
        (
            st.revision(),
            st.key_count(),
            st.raft_applied_index(),
            st.compact_revision()
        ),
        (2, 1, 3, 2)
    );
    assert!(st.db_size_bytes() > 0);
}

/// Compaction never does unbounded work in apply: the logical half is O(1) in the key count,
/// and each step touches at most its budget of keys.
#[test]
fn compaction_is_chunked() {
    let mut kv = KvStore::new(KvConfig::default());
    for i in 0..5_000u32 {
        kv.put(&PutRequest {
            key: Bytes::from(format!("k{i:05}")),
            value: b("x"),
            ..PutRequest::default()
        })
        .unwrap();
        kv.put(&PutRequest {
            key: Bytes::from(format!("k{i:05}")),
            value: b("y"),
            ..PutRequest::default()
        })
        .unwrap();
    }
    let size_before = kv.status().db_size_bytes();
    kv.compact(&CompactionRequest {
        revision: kv.revision(),
        physical: true,
    })
    .unwrap();
    let hash_before = kv.hash_kv(0).unwrap().hash;
    let full_hash_before = kv.hash();
    assert_eq!(
        kv.status().db_size_bytes(),
        size_before,
        "apply did no physical work"
    );
    let mut steps = 0;
    while kv.compact_step(1_000) {
        steps += 1;
        assert!(!kv.compaction_done(kv.compacted_revision()));
    }
    assert_eq!(steps, 5);
    assert!(kv.compaction_done(kv.compacted_revision()));
    assert!(kv.status().db_size_bytes() < size_before * 6 / 10);
    assert_eq!(
        kv.hash_kv(0).unwrap().hash,
        hash_before,
        "hash_kv does not depend on physical progress"
    );
    assert_eq!(kv.hash(), full_hash_before, "nor does hash()");
}

/// Once compaction removed the revision that created a key, the index holds the key through
/// a surviving record: the first write request's bytes are no longer kept for it.
#[test]
fn compaction_lets_go_of_the_first_write_of_a_key() {
    let mut kv = KvStore::new(KvConfig::default());
    let first = Bytes::from(b"key".to_vec());
    let second = Bytes::from(b"key".to_vec());
    for key in [&first, &second] {
        kv.put(&PutRequest {
            key: key.clone(),
            value: b("v"),
            ..PutRequest::default()
        })
        .unwrap();
    }
    let held = |kv: &KvStore| kv.mvcc.index.get_key_value(&b"key"[..]).unwrap().0.as_ptr();
    assert_eq!(held(&kv), first.as_ptr());
    kv.compact(&CompactionRequest {
        revision: kv.revision(),
        physical: true,
    })
    .unwrap();
    while kv.compact_step(1_000) {}
    let survivors = kv
        .range(&RangeRequest {
            key: b("key"),
            ..RangeRequest::default()
        })
        .unwrap()
        .kvs;
    assert_eq!(survivors.len(), 1);
    assert_ne!(held(&kv), first.as_ptr());
    assert_eq!(
        held(&kv),
        survivors[0].key.as_ptr(),
        "the surviving record's key"
    );
}

/// Keys with long histories cut a step short: its time goes to the records it removes, so a
/// step stops once it has removed a few per key of its budget, and the result is the same as
/// compacting in one go.
#[test]
fn compaction_steps_are_bounded_by_records_too() {
    let build = || {
        let mut kv = KvStore::new(KvConfig::default());
        for version in 0..20 {
            for i in 0..50u32 {
                kv.put(&PutRequest {
                    key: Bytes::from(format!("k{i:02}")),
                    value: Bytes::from(format!("v{version}")),
                    ..PutRequest::default()
                })
                .unwrap();
            }
        }
        kv.compact(&CompactionRequest {
            revision: kv.revision(),
            physical: true,
        })
        .unwrap();
        kv
    };
    let mut at_once = build();
    while at_once.compact_step(usize::MAX) {}
    let mut bounded = build();
    let mut steps = 1;
    while bounded.compact_step(10) {
        steps += 1;
    }
    // 10 keys of 19 removed records each would be 5 steps; at most 40 records a step, and
    // whole keys, it is 3 keys (57 records) a step.
    assert_eq!(steps, 17);
    assert!(bounded.compaction_done(bounded.compacted_revision()));
    assert_eq!(bounded.hash(), at_once.hash());
    assert_eq!(bounded.status(), at_once.status());
}

/// A put applied from its Raft entry keeps its key and value as slices of the entry's bytes
/// (one allocation shared with the log), in a txn as well as alone; no copy is made.
#[test]
fn applied_puts_keep_slices_of_their_entry() {
    let mut kv = KvStore::new(KvConfig::default());
    let entry = |id: u64, request: Request| {
        Bytes::from(
            InternalRequest {
                id,
                header: None,
                request: Some(request),
            }
            .encode_to_vec(),
        )
    };
    let put = |key: &str, value: &str| PutRequest {
        key: b(key),
        value: b(value),
        ..PutRequest::default()
    };
    let alone = entry(1, Request::Put(put("alone", "value one")));
    let in_txn = entry(
        2,
        Request::Txn(TxnRequest {
            success: vec![RequestOp {
                request: Some(OpReq::RequestPut(put("in-txn", "value two"))),
            }],
            ..TxnRequest::default()
        }),
    );
    assert!(kv.apply(1, alone.clone()).result().is_ok());
    assert!(kv.apply(2, in_txn.clone()).result().is_ok());
    use crate::mvcc::revlog::tests::lies_in;
    for (key, buf) in [("alone", &alone), ("in-txn", &in_txn)] {
        let got = kv
            .range(&RangeRequest {
                key: b(key),
                ..RangeRequest::default()
            })
            .unwrap();
        let record = &got.kvs[0];
        assert!(lies_in(&record.key, buf), "{key}: the key is a copy");
        assert!(lies_in(&record.value, buf), "{key}: the value is a copy");
    }
}
