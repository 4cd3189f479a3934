//! Applying in steps: an entry applied over many small steps gives exactly what applying it
//! in one call gives (responses, revisions, state, watch events), and reads between the steps
//! see the state before the entry, never part of it.

use bytes::Bytes;
use prost::Message;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

use crate::proto::internal_request::Request;
use crate::proto::*;
use crate::{ApplyOutcome, ApplyResponse, KvConfig, KvStore, Step, StoreStatus, WatchId};

/// Keys `a0`..`a7` and `b0`..`b7`: prefixes `a` and `b` each cover eight.
fn key(n: u8) -> Bytes {
    let prefix = if n % 16 < 8 { b'a' } else { b'b' };
    Bytes::from(vec![prefix, b'0' + n % 8])
}

/// A DeleteRange over a range chosen by `shape`: one key, a prefix, from a key on, or two keys.
fn delete(shape: u8, n: u8, prev_kv: bool) -> DeleteRangeRequest {
    let k = key(n);
    let (key, range_end) = match shape % 4 {
        0 => (k, Bytes::new()),
        1 => (k.slice(..1), crate::prefix_range_end(&k[..1])),
        2 => (k, Bytes::from_static(&[0])),
        _ => (k, key(n.wrapping_add(3))),
    };
    DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    }
}

fn put(n: u8, value: u8, lease: i64) -> PutRequest {
    PutRequest {
        key: key(n),
        value: Bytes::from(vec![value]),
        lease,
        prev_kv: value % 2 == 0,
        ..PutRequest::default()
    }
}

fn op(request: request_op::Request) -> RequestOp {
    RequestOp {
        request: Some(request),
    }
}

/// A range of every key, of prefix `a` or of one key, in any sort order, with or without a
/// limit, a revision filter, `keys_only` or `count_only`.
fn txn_range(g: &mut Gen) -> RangeRequest {
    let (key, range_end) = match u8::arbitrary(g) % 3 {
        0 => (Bytes::from_static(&[0]), Bytes::from_static(&[0])),
        1 => (Bytes::from_static(b"a"), Bytes::from_static(b"b")),
        _ => (key(u8::arbitrary(g)), Bytes::new()),
    };
    RangeRequest {
        key,
        range_end,
        limit: i64::from(u8::arbitrary(g) % 4),
        sort_order: i32::from(u8::arbitrary(g) % 3),
        sort_target: i32::from(u8::arbitrary(g) % 5),
        keys_only: u8::arbitrary(g) % 4 == 0,
        count_only: u8::arbitrary(g) % 4 == 0,
        min_mod_revision: if bool::arbitrary(g) { 3 } else { 0 },
        ..RangeRequest::default()
    }
}

/// A txn whose branches delete ranges around puts, ranges and a nested txn that deletes too.
fn txn(g: &mut Gen) -> TxnRequest {
    let n = u8::arbitrary(g);
    let nested = TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Greater as i32,
            target: CompareTarget::Version as i32,
            key: key(n.wrapping_add(5)),
            target_union: Some(compare::TargetUnion::Version(0)),
            ..Compare::default()
        }],
        success: vec![op(request_op::Request::RequestDeleteRange(delete(
            u8::arbitrary(g),
            n.wrapping_add(8),
            bool::arbitrary(g),
        )))],
        failure: vec![op(request_op::Request::RequestPut(put(
            n.wrapping_add(9),
            1,
            0,
        )))],
    };
    let branch = |g: &mut Gen| {
        let mut ops = vec![
            op(request_op::Request::RequestDeleteRange(delete(
                u8::arbitrary(g),
                n,
                bool::arbitrary(g),
            ))),
            op(request_op::Request::RequestRange(txn_range(g))),
        ];
        if bool::arbitrary(g) {
            ops.push(op(request_op::Request::RequestTxn(nested.clone())));
        }
        ops
    };
    TxnRequest {
        compare: vec![Compare {
            result: (u8::arbitrary(g) % 4) as i32,
            target: CompareTarget::Version as i32,
            key: key(n.wrapping_add(1)),
            target_union: Some(compare::TargetUnion::Version((u8::arbitrary(g) % 3) as i64)),
            ..Compare::default()
        }],
        success: branch(g),
        failure: branch(g),
    }
}

#[derive(Clone, Debug)]
struct Entry {
    request: Request,
    /// Create a watcher while this entry applies.
    watch: bool,
    /// Keys each step may visit, round robin.
    budgets: Vec<usize>,
}

impl Arbitrary for Entry {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = u8::arbitrary(g);
        let lease = i64::from(u8::arbitrary(g) % 3);
        let request = match u8::arbitrary(g) % 11 {
            0..=3 => Request::Put(put(n, u8::arbitrary(g), lease)),
            4 | 5 => Request::DeleteRange(delete(u8::arbitrary(g), n, bool::arbitrary(g))),
            6 | 7 => Request::Txn(txn(g)),
            8 => Request::LeaseGrant(LeaseGrantRequest { ttl: 60, id: lease }),
            9 => Request::LeaseRevoke(LeaseRevokeRequest { id: lease }),
            _ => Request::Compaction(CompactionRequest {
                revision: i64::from(n % 8),
                physical: bool::arbitrary(g),
            }),
        };
        let budgets = (0..1 + usize::arbitrary(g) % 3)
            .map(|_| 1 + usize::arbitrary(g) % 3)
            .collect();
        Entry {
            request,
            watch: u8::arbitrary(g) % 8 == 0,
            budgets,
        }
    }
}

/// Everything a reader can see of the store.
#[derive(Debug, PartialEq)]
struct View {
    all: RangeResponse,
    count_a: RangeResponse,
    status: StoreStatus,
    applied_index: u64,
    hash_kv: HashKvResponse,
    lease_keys: Vec<LeaseTimeToLiveResponse>,
}

fn view(s: &mut KvStore, now_ms: u64) -> View {
    let range = |key: &'static [u8], range_end: &'static [u8], count_only| RangeRequest {
        key: Bytes::from_static(key),
        range_end: Bytes::from_static(range_end),
        count_only,
        ..RangeRequest::default()
    };
    View {
        all: s.range(&range(&[0], &[0], false)).expect("range"),
        count_a: s.range(&range(b"a", b"b", true)).expect("count"),
        status: s.status(),
        applied_index: s.applied_index(),
        hash_kv: s.hash_kv(0).expect("hash_kv"),
        lease_keys: (1..3)
            .map(|id| s.lease_time_to_live(&LeaseTimeToLiveRequest { id, keys: true }, now_ms))
            .collect(),
    }
}

/// Drains watch responses into each watcher's event list; returns how many events came.
fn drain(s: &mut KvStore, events: &mut Vec<(WatchId, Event)>) -> usize {
    let mut n = 0;
    while let Some((id, resp)) = s.poll_watch_event() {
        n += resp.events.len();
        events.extend(resp.events.into_iter().map(|e| (id, e)));
    }
    n
}

fn watch_all(s: &mut KvStore, start_revision: i64) -> WatchId {
    s.watch_create(&WatchCreateRequest {
        key: Bytes::from_static(&[0]),
        range_end: Bytes::from_static(&[0]),
        start_revision,
        prev_kv: true,
        ..WatchCreateRequest::default()
    })
    .expect("watch")
}

/// Applies `entries` in one call each to one store and in steps to another, reading the
/// stepped one between its steps.
fn check(entries: &[Entry]) -> Result<(), String> {
    let mut whole = KvStore::new(KvConfig::default());
    let mut stepped = KvStore::new(KvConfig::default());
    let (mut events_whole, mut events_stepped) = (Vec::new(), Vec::new());
    watch_all(&mut whole, 1);
    watch_all(&mut stepped, 1);
    for (i, entry) in entries.iter().enumerate() {
        let index = i as u64 + 1;
        let now_ms = index * 10;
        whole.set_now_ms(now_ms);
        stepped.set_now_ms(now_ms);
        let bytes = InternalRequest {
            id: index,
            header: None,
            request: Some(entry.request.clone()),
        }
        .encode_to_vec();
        if entry.watch {
            let start = whole.revision() + 1;
            watch_all(&mut whole, start);
        }
        let want: ApplyOutcome = whole.apply(index, &bytes[..]);

        let before = view(&mut stepped, now_ms);
        let start_rev = stepped.revision() + 1;
        let mut budgets = entry.budgets.iter().cycle();
        let mut keys_left = *budgets.next().expect("a budget");
        let mut step = stepped.apply_begin(index, &bytes[..], &mut keys_left);
        let mut watched = false;
        let got = loop {
            match step {
                Step::Done(outcome) => break outcome,
                Step::Pending => {}
            }
            if stepped.pending_apply_index() != Some(index) {
                return Err(format!(
                    "entry {i}: pending index {:?}",
                    stepped.pending_apply_index()
                ));
            }
            let between = view(&mut stepped, now_ms);
            if between != before {
                return Err(format!(
                    "entry {i}: a read between steps saw {between:?}, not {before:?}"
                ));
            }
            if drain(&mut stepped, &mut events_stepped) > 0 {
                return Err(format!("entry {i}: watch events before the entry was done"));
            }
            if entry.watch && !watched {
                watch_all(&mut stepped, 0);
                watched = true;
            }
            keys_left = *budgets.next().expect("a budget");
            step = stepped.apply_continue(&mut keys_left);
        };
        if entry.watch && !watched {
            watch_all(&mut stepped, start_rev);
        }
        if got != want {
            return Err(format!("entry {i}: stepped {got:?} != whole {want:?}"));
        }
        while whole.compact_step(1000) {}
        while stepped.compact_step(2) {}
        while whole.sync_watchers_step(1000) {}
        while stepped.sync_watchers_step(2) {}
        drain(&mut whole, &mut events_whole);
        drain(&mut stepped, &mut events_stepped);
        if view(&mut whole, now_ms) != view(&mut stepped, now_ms) {
            return Err(format!("entry {i}: the stores differ"));
        }
        if whole.hash() != stepped.hash() {
            return Err(format!("entry {i}: hashes differ"));
        }
    }
    let per_watcher = |events: &[(WatchId, Event)]| {
        let mut by_id: std::collections::BTreeMap<WatchId, Vec<Event>> = Default::default();
        for (id, e) in events {
            by_id.entry(*id).or_default().push(e.clone());
        }
        by_id
    };
    if per_watcher(&events_whole) != per_watcher(&events_stepped) {
        return Err("watchers got different events".into());
    }
    Ok(())
}

#[test]
fn stepped_apply_matches_one_call_apply() {
    fn prop(entries: Vec<Entry>) -> TestResult {
        match check(&entries) {
            Ok(()) => TestResult::passed(),
            Err(e) => TestResult::error(e),
        }
    }
    QuickCheck::new()
        .rng(Gen::new(60))
        .tests(300)
        .quickcheck(prop as fn(Vec<Entry>) -> TestResult);
}

fn entry_bytes(index: u64, request: Request) -> Vec<u8> {
    InternalRequest {
        id: index,
        header: None,
        request: Some(request),
    }
    .encode_to_vec()
}

/// A store with keys `p/000`..`p/099`, one of them on a lease, and a watcher on the prefix.
fn loaded() -> (KvStore, WatchId) {
    let mut s = KvStore::new(KvConfig::default());
    let out = s.apply(
        1,
        &entry_bytes(1, Request::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 7 }))[..],
    );
    assert!(out.result().is_ok());
    for i in 0..100u64 {
        let request = Request::Put(PutRequest {
            key: Bytes::from(format!("p/{i:03}")),
            value: Bytes::from(format!("v{i}")),
            lease: if i == 50 { 7 } else { 0 },
            ..PutRequest::default()
        });
        assert!(
            s.apply(i + 2, &entry_bytes(i + 2, request)[..])
                .result()
                .is_ok()
        );
    }
    let id = s
        .watch_create(&WatchCreateRequest {
            key: Bytes::from_static(b"p/"),
            range_end: Bytes::from_static(b"p0"),
            ..WatchCreateRequest::default()
        })
        .expect("watch");
    while s.poll_watch_event().is_some() {}
    (s, id)
}

/// Applies entry `index` 10 keys a step, running `between` (given the step number) after
/// every step that leaves it pending; its outcome and how many steps it took.
fn apply_ten_keys_a_step(
    s: &mut KvStore,
    index: u64,
    request: Request,
    mut between: impl FnMut(&mut KvStore, usize),
) -> (ApplyOutcome, usize) {
    let mut keys_left = 10;
    let mut step = s.apply_begin(index, &entry_bytes(index, request)[..], &mut keys_left);
    let mut steps = 1;
    loop {
        match step {
            Step::Done(outcome) => return (outcome, steps),
            Step::Pending => between(s, steps),
        }
        let mut keys_left = 10;
        step = s.apply_continue(&mut keys_left);
        steps += 1;
    }
}

fn delete_prefix() -> Request {
    Request::DeleteRange(DeleteRangeRequest {
        key: Bytes::from_static(b"p/"),
        range_end: Bytes::from_static(b"p0"),
        prev_kv: true,
    })
}

#[test]
fn reads_between_steps_see_the_state_before_the_entry() {
    for request in [
        delete_prefix(),
        Request::Txn(TxnRequest {
            success: vec![
                op(request_op::Request::RequestPut(PutRequest {
                    key: Bytes::from_static(b"q"),
                    ..PutRequest::default()
                })),
                op(request_op::Request::RequestDeleteRange(
                    match delete_prefix() {
                        Request::DeleteRange(d) => d,
                        _ => unreachable!(),
                    },
                )),
            ],
            ..TxnRequest::default()
        }),
    ] {
        let (mut s, _) = loaded();
        let before = view(&mut s, 0);
        let mut snapshot_before = Vec::new();
        s.snapshot(&mut snapshot_before).expect("snapshot");
        assert_eq!(before.count_a.count, 0);
        let count = |s: &KvStore| {
            s.range(&RangeRequest {
                key: Bytes::from_static(b"p/"),
                range_end: Bytes::from_static(b"p0"),
                count_only: true,
                ..RangeRequest::default()
            })
            .expect("count")
            .count
        };
        let (outcome, steps) = apply_ten_keys_a_step(&mut s, 102, request.clone(), |s, steps| {
            assert_eq!(count(s), 100, "step {steps}: a read saw part of the delete");
            assert_eq!(view(s, 0), before, "step {steps}");
            assert!(
                s.poll_watch_event().is_none(),
                "step {steps}: an event before the end"
            );
        });
        assert!(steps >= 10, "the delete took {steps} steps of 10 keys");
        assert!(outcome.result().is_ok(), "{outcome:?}");
        assert_eq!(count(&s), 0);
        assert_eq!(s.applied_index(), 102);
        assert_eq!(s.revision(), before.status.revision() + 1);
        let (_, resp) = s.poll_watch_event().expect("the delete's events");
        assert_eq!(
            resp.events.len(),
            100,
            "every delete at one revision, in one response"
        );
        let lease = s.lease_time_to_live(&LeaseTimeToLiveRequest { id: 7, keys: true }, 0);
        assert!(lease.keys.is_empty(), "the lease lost its key at the end");
    }
}

#[test]
fn a_txn_range_over_many_keys_is_read_over_several_steps_and_sees_the_txn_writes() {
    let prefix = || RangeRequest {
        key: Bytes::from_static(b"p/"),
        range_end: Bytes::from_static(b"p0"),
        ..RangeRequest::default()
    };
    let range = |r: RangeRequest| op(request_op::Request::RequestRange(r));
    let request = Request::Txn(TxnRequest {
        success: vec![
            op(request_op::Request::RequestPut(PutRequest {
                key: Bytes::from_static(b"p/050"),
                value: Bytes::from_static(b"written by the txn"),
                ..PutRequest::default()
            })),
            range(prefix()),
            range(RangeRequest {
                sort_order: SortOrder::Descend as i32,
                sort_target: SortTarget::Value as i32,
                limit: 3,
                ..prefix()
            }),
            range(RangeRequest {
                count_only: true,
                ..prefix()
            }),
        ],
        ..TxnRequest::default()
    });
    let (mut whole, _) = loaded();
    let want = whole.apply(102, &entry_bytes(102, request.clone())[..]);
    let (mut s, _) = loaded();
    let before = view(&mut s, 0);
    let (got, steps) = apply_ten_keys_a_step(&mut s, 102, request, |s, steps| {
        assert_eq!(
            view(s, 0),
            before,
            "step {steps}: a read saw part of the txn"
        );
    });
    assert!(
        steps >= 20,
        "the txn's ranges took {steps} steps of 10 keys"
    );
    assert_eq!(got, want, "stepped and whole answer alike");
    let Ok(ApplyResponse::Txn(txn)) = got.into_result() else {
        panic!("a txn answers a txn");
    };
    let ranges: Vec<RangeResponse> = txn
        .responses
        .into_iter()
        .filter_map(|r| match r.response {
            Some(response_op::Response::ResponseRange(r)) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(ranges.len(), 3);
    assert_eq!(ranges[0].kvs.len(), 100);
    assert_eq!(ranges[0].count, 100);
    assert_eq!(
        ranges[0].kvs[50].value,
        Bytes::from_static(b"written by the txn"),
        "a txn's range sees the txn's own earlier writes"
    );
    let values: Vec<&[u8]> = ranges[1].kvs.iter().map(|kv| &kv.value[..]).collect();
    assert_eq!(values, [&b"written by the txn"[..], b"v99", b"v98"]);
    assert!(ranges[1].more);
    assert_eq!((ranges[2].count, ranges[2].kvs.len()), (100, 0));
}

fn half_applied() -> KvStore {
    let (mut s, _) = loaded();
    let mut keys_left = 10;
    let step = s.apply_begin(102, &entry_bytes(102, delete_prefix())[..], &mut keys_left);
    assert!(matches!(step, Step::Pending));
    s
}

#[test]
#[should_panic(expected = "apply_begin while the apply of index 102 is pending")]
fn another_apply_while_one_is_pending_is_refused() {
    let mut s = half_applied();
    let _ = s.apply_begin(103, &entry_bytes(103, delete_prefix())[..], &mut 10);
}

#[test]
#[should_panic(expected = "compact_step while the apply of index 102 is pending")]
fn a_compaction_step_while_an_apply_is_pending_is_refused() {
    let _ = half_applied().compact_step(10);
}

#[test]
#[should_panic(expected = "sync_watchers_step while the apply of index 102 is pending")]
fn a_watcher_sync_step_while_an_apply_is_pending_is_refused() {
    let _ = half_applied().sync_watchers_step(10);
}

#[test]
#[should_panic(expected = "begin_snapshot_copy while the apply of index 102 is pending")]
fn a_snapshot_copy_while_an_apply_is_pending_is_refused() {
    let _ = half_applied().begin_snapshot_copy();
}

#[test]
fn a_restore_supersedes_a_pending_apply() {
    let (fresh, _) = loaded();
    let mut snap = Vec::new();
    fresh.snapshot(&mut snap).expect("snapshot");
    let mut s = half_applied();
    s.restore(&mut snap.as_slice()).expect("restore");
    assert_eq!(s.pending_apply_index(), None);
    assert_eq!(s.hash(), fresh.hash());
    let out = s.apply(102, &entry_bytes(102, delete_prefix())[..]);
    assert!(out.result().is_ok());
}

#[test]
fn a_lease_with_many_keys_is_revoked_over_several_steps_at_one_revision() {
    let mut s = KvStore::new(KvConfig::default());
    let grant = Request::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 7 });
    assert!(s.apply(1, &entry_bytes(1, grant)[..]).result().is_ok());
    for i in 0..100u64 {
        let request = Request::Put(PutRequest {
            key: Bytes::from(format!("p/{i:03}")),
            value: Bytes::from(format!("v{i}")),
            lease: 7,
            ..PutRequest::default()
        });
        let out = s.apply(i + 2, &entry_bytes(i + 2, request)[..]);
        assert!(out.result().is_ok());
    }
    watch_all(&mut s, 0);
    while s.poll_watch_event().is_some() {}
    let before = view(&mut s, 0);
    let held = |s: &mut KvStore| {
        s.lease_time_to_live(&LeaseTimeToLiveRequest { id: 7, keys: true }, 0)
            .keys
            .len()
    };
    assert_eq!(held(&mut s), 100);

    let revoke = Request::LeaseRevoke(LeaseRevokeRequest { id: 7 });
    let (outcome, steps) = apply_ten_keys_a_step(&mut s, 102, revoke, |s, steps| {
        assert_eq!(view(s, 0), before, "step {steps}: a read saw part of it");
        assert_eq!(held(s), 100, "step {steps}: the lease lost keys early");
        assert!(
            s.poll_watch_event().is_none(),
            "step {steps}: an early event"
        );
    });
    assert!(steps >= 10, "the revoke took {steps} steps of 10 keys");
    match outcome.result() {
        Ok(crate::ApplyResponse::LeaseRevoke(r)) => {
            assert_eq!(r.header.as_ref().map(|h| h.revision), Some(102));
        }
        other => panic!("the revoke answered {other:?}"),
    }
    assert_eq!(s.revision(), before.status.revision() + 1);
    assert_eq!(s.status().key_count(), 0);
    let ttl = s.lease_time_to_live(&LeaseTimeToLiveRequest { id: 7, keys: true }, 0);
    assert_eq!(ttl.ttl, -1, "the lease is gone: {ttl:?}");
    let (_, resp) = s.poll_watch_event().expect("the revoke's events");
    assert_eq!(resp.events.len(), 100, "every delete in one revision");
    assert!(
        resp.events
            .iter()
            .all(|e| e.r#type == EventType::Delete as i32)
    );
}
