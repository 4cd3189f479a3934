//! Replicas that apply the same entries agree on every response, `hash()` and `hash_kv`,
//! whatever their physical compaction pace, watchers, or leadership.

use bytes::Bytes;
use prost::Message;
use quickcheck::{Gen, QuickCheck, TestResult};

use crate::proto::internal_request::Request;
use crate::proto::*;
use crate::testing::{EndKind, key, key_range};
use crate::{KvConfig, KvStore};

fn end(b: u8) -> EndKind {
    match b % 4 {
        0 => EndKind::Single,
        1 => EndKind::Prefix,
        2 => EndKind::To(b / 4),
        _ => EndKind::FromKey,
    }
}

/// Turns bytes into committed entries: puts (some with leases), deletes, txns, compactions,
/// lease grants and revokes.
fn entries(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, w) in data.chunks(3).enumerate() {
        let [a, b, c] = [w[0], *w.get(1).unwrap_or(&0), *w.get(2).unwrap_or(&0)];
        let req = match a % 8 {
            0..=2 => Request::Put(PutRequest {
                key: key(b),
                value: Bytes::from(vec![c]),
                lease: if c % 3 == 0 { (c % 4) as i64 } else { 0 },
                ..PutRequest::default()
            }),
            3 => {
                let (k, e) = key_range(b, end(c));
                Request::DeleteRange(DeleteRangeRequest {
                    key: k,
                    range_end: e,
                    prev_kv: true,
                })
            }
            4 => Request::Txn(TxnRequest {
                compare: vec![Compare {
                    result: (c % 4) as i32,
                    target: CompareTarget::Version as i32,
                    key: key(b),
                    target_union: Some(compare::TargetUnion::Version((c % 3) as i64)),
                    ..Compare::default()
                }],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: key(b.wrapping_add(1)),
                        value: Bytes::from_static(b"t"),
                        ..PutRequest::default()
                    })),
                }],
                failure: vec![RequestOp {
                    request: Some(request_op::Request::RequestDeleteRange(
                        DeleteRangeRequest {
                            key: key(b),
                            ..DeleteRangeRequest::default()
                        },
                    )),
                }],
            }),
            5 => Request::Compaction(CompactionRequest {
                revision: (i as i64) / 2 - (b % 5) as i64,
                physical: c % 2 == 0,
            }),
            6 => Request::LeaseGrant(LeaseGrantRequest {
                ttl: 5,
                id: (b % 4) as i64,
            }),
            _ => Request::LeaseRevoke(LeaseRevokeRequest { id: (b % 4) as i64 }),
        };
        out.push(
            InternalRequest {
                id: i as u64,
                header: None,
                request: Some(req),
            }
            .encode_to_vec(),
        );
    }
    out
}

fn prop(data: Vec<u8>) -> TestResult {
    let log = entries(&data);
    let mut fast = KvStore::new(KvConfig::default());
    let mut lazy = KvStore::new(KvConfig::default().with_watch_pending_events_max(2));
    fast.promote(0, 0);
    lazy.watch_create(&WatchCreateRequest {
        key: Bytes::from_static(b"a"),
        range_end: Bytes::from_static(&[0]),
        start_revision: 1,
        ..WatchCreateRequest::default()
    })
    .expect("watch");
    for (i, e) in log.iter().enumerate() {
        let index = i as u64 + 1;
        fast.set_now_ms(index * 10);
        let a = fast.apply(index, &e[..]);
        let b = lazy.apply(index, &e[..]);
        if a != b {
            return TestResult::error(format!("entry {i}: {a:?} != {b:?}"));
        }
        while fast.compact_step(1) {}
        if i % 7 == 0 {
            let _ = lazy.compact_step(2);
            let _ = lazy.sync_watchers_step(3);
            while lazy.poll_watch_event().is_some() {}
        }
        if fast.hash() != lazy.hash() || fast.hash_kv(0) != lazy.hash_kv(0) {
            return TestResult::error(format!("entry {i}: hashes differ"));
        }
    }
    let mut snap = Vec::new();
    lazy.snapshot(&mut snap).expect("snapshot");
    let mut restored = KvStore::new(KvConfig::default());
    restored.restore(&mut snap.as_slice()).expect("restore");
    TestResult::from_bool(restored.hash() == fast.hash() && restored.status() == fast.status())
}

#[test]
fn replicas_agree_whatever_the_pacing() {
    QuickCheck::new()
        .rng(Gen::new(600))
        .tests(200)
        .quickcheck(prop as fn(Vec<u8>) -> TestResult);
}
