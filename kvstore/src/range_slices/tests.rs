use bytes::Bytes;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

use crate::proto::{
    CompactionRequest, DeleteRangeRequest, KeyValue, PutRequest, RangeRequest, RangeResponse,
};
use crate::{KvConfig, KvError, KvStore, RangeSlices};

fn key(k: u8) -> Bytes {
    Bytes::from(vec![b'a' + k % 8, b'0' + k / 8 % 4])
}

fn put(kv: &mut KvStore, k: u8, v: u8) {
    let req = PutRequest {
        key: key(k),
        value: Bytes::from(vec![v]),
        ..PutRequest::default()
    };
    kv.put(&req).expect("put");
}

fn delete(kv: &mut KvStore, k: u8) {
    let req = DeleteRangeRequest {
        key: key(k),
        ..DeleteRangeRequest::default()
    };
    kv.delete_range(&req).expect("delete");
}

/// The whole sliced answer, with writes between the slices.
fn sliced(
    kv: &mut KvStore,
    mut slices: RangeSlices,
    budget_keys: usize,
    writes_between: &[(u8, Option<u8>)],
) -> Result<RangeResponse, KvError> {
    let mut kvs = Vec::new();
    let mut writes = writes_between.iter().cycle().take(writes_between.len() * 8);
    while !kv.range_slice(&mut slices, budget_keys, |record| kvs.push(record.clone()))? {
        if let Some(&(k, value)) = writes.next() {
            match value {
                Some(v) => put(kv, k, v),
                None => delete(kv, k),
            }
        }
    }
    let totals = slices.totals();
    Ok(RangeResponse {
        header: crate::store::header(totals.view_rev),
        kvs,
        more: totals.more,
        count: totals.count,
    })
}

#[derive(Clone, Debug)]
struct Case {
    /// Writes that build the store: (key, Some(value)) puts, (key, None) deletes.
    history: Vec<(u8, Option<u8>)>,
    /// Compact at this fraction of the history's revisions (0: none).
    compact_at_percent: u8,
    start: u8,
    /// 0: every key from `start`; 1: a prefix; else an end key.
    end: u8,
    limit: u8,
    keys_only: bool,
    count_only: bool,
    /// 0: none, 1: ascending, 2: descending.
    sort_order: u8,
    /// 0: key, 1: version, 2: create, 3: mod, 4: value.
    sort_target: u8,
    /// Read at this fraction of the store's revisions (0: the current one).
    rev_percent: u8,
    /// Revision filters (min mod, max mod, min create, max create), each a fraction of the
    /// store's revisions in percent (0: none).
    filters: [u8; 4],
    budget_keys: u8,
    writes_between: Vec<(u8, Option<u8>)>,
}

fn write(g: &mut Gen) -> (u8, Option<u8>) {
    let k = u8::arbitrary(g) % 32;
    let v = (u8::arbitrary(g) % 4 != 0).then(|| u8::arbitrary(g));
    (k, v)
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Case {
        let len = usize::arbitrary(g) % 80;
        Case {
            history: (0..len).map(|_| write(g)).collect(),
            compact_at_percent: u8::arbitrary(g) % 3 * 40,
            start: u8::arbitrary(g) % 32,
            end: u8::arbitrary(g) % 34,
            limit: u8::arbitrary(g) % 4 * 3,
            keys_only: bool::arbitrary(g),
            count_only: u8::arbitrary(g) % 5 == 0,
            sort_order: u8::arbitrary(g) % 3,
            sort_target: u8::arbitrary(g) % 5,
            rev_percent: u8::arbitrary(g) % 3 * 45,
            filters: [(); 4].map(|()| {
                if u8::arbitrary(g) % 3 == 0 {
                    1 + u8::arbitrary(g) % 100
                } else {
                    0
                }
            }),
            budget_keys: 1 + u8::arbitrary(g) % 5,
            writes_between: (0..usize::arbitrary(g) % 6).map(|_| write(g)).collect(),
        }
    }
}

fn run(case: Case) -> TestResult {
    let mut kv = KvStore::new(KvConfig::default());
    for &(k, value) in &case.history {
        match value {
            Some(v) => put(&mut kv, k, v),
            None => delete(&mut kv, k),
        }
    }
    let top = kv.revision();
    if case.compact_at_percent > 0 && top > 1 {
        let revision = (top * i64::from(case.compact_at_percent) / 100).max(1);
        let req = CompactionRequest {
            revision,
            physical: false,
        };
        kv.compact(&req).expect("compact");
        while kv.compact_step(3) {}
    }
    let range_end = match case.end {
        0 => Bytes::from_static(&[0]),
        1 => crate::prefix_range_end(&key(case.start)[..1]),
        e => key(e - 2),
    };
    let filter_rev = |percent: u8| (top * i64::from(percent) / 100).max(i64::from(percent > 0));
    let revision = if case.rev_percent == 0 {
        0
    } else {
        (top * i64::from(case.rev_percent) / 100).max(kv.compacted_revision())
    };
    let req = RangeRequest {
        key: key(case.start),
        range_end,
        limit: i64::from(case.limit),
        keys_only: case.keys_only,
        count_only: case.count_only,
        sort_order: i32::from(case.sort_order),
        sort_target: i32::from(case.sort_target),
        revision,
        min_mod_revision: filter_rev(case.filters[0]),
        max_mod_revision: filter_rev(case.filters[1]),
        min_create_revision: filter_rev(case.filters[2]),
        max_create_revision: filter_rev(case.filters[3]),
        ..RangeRequest::default()
    };
    let whole = kv.range(&req);
    let slices = match kv.range_slices(&req) {
        Ok(Some(slices)) => slices,
        Ok(None) => return TestResult::error("a range over more than one key is sliced"),
        Err(e) => {
            return if whole.as_ref().err() == Some(&e) {
                TestResult::passed()
            } else {
                TestResult::error(format!("range_slices: {e:?}, range: {whole:?}"))
            };
        }
    };
    let whole = whole.expect("range_slices began, so range succeeds");
    let got = sliced(
        &mut kv,
        slices,
        usize::from(case.budget_keys),
        &case.writes_between,
    );
    match got {
        Ok(got) if got == whole => TestResult::passed(),
        other => TestResult::error(format!("{req:?}\nsliced {other:?}\nwhole  {whole:?}")),
    }
}

#[test]
fn a_sliced_range_answers_what_the_whole_range_answered_when_it_began() {
    QuickCheck::new()
        .tests(2_000)
        .quickcheck(run as fn(Case) -> TestResult);
}

fn records(kvs: &[KeyValue]) -> Vec<(Bytes, Bytes)> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect()
}

/// A store of eight keys, and a range over every key.
fn eight_keys() -> (KvStore, RangeRequest) {
    let mut kv = KvStore::new(KvConfig::default());
    for k in 0..8 {
        put(&mut kv, k, k);
    }
    let req = RangeRequest {
        key: key(0),
        range_end: Bytes::from_static(&[0]),
        ..RangeRequest::default()
    };
    (kv, req)
}

#[test]
fn writes_between_slices_do_not_reach_the_answer() {
    let (mut kv, req) = eight_keys();
    let before = kv.range(&req).expect("range");
    let slices = kv.range_slices(&req).expect("valid").expect("sliced");
    // Every write lands between two slices: deletes of keys not read yet, a new key ahead.
    let writes = [(7, None), (6, None), (9, Some(1)), (5, Some(9))];
    let got = sliced(&mut kv, slices, 2, &writes).expect("sliced");
    assert_eq!(records(&got.kvs), records(&before.kvs));
    assert_eq!(got.count, 8);
    assert_eq!(got.header, before.header);
    assert!(kv.revision() > before.header.map_or(0, |h| h.revision));
}

#[test]
fn a_compaction_past_the_revision_read_fails_the_range() {
    let (mut kv, req) = eight_keys();
    let mut slices = kv.range_slices(&req).expect("valid").expect("sliced");
    assert_eq!(kv.range_slice(&mut slices, 3, |_| {}), Ok(false));
    put(&mut kv, 1, 100);
    let revision = kv.revision();
    kv.compact(&CompactionRequest {
        revision,
        physical: false,
    })
    .expect("compact");
    assert_eq!(
        kv.range_slice(&mut slices, 3, |_| {}),
        Err(KvError::Compacted)
    );
}

#[test]
fn only_a_range_of_one_key_is_served_whole() {
    let kv = KvStore::new(KvConfig::default());
    let one_key = RangeRequest {
        key: key(0),
        ..RangeRequest::default()
    };
    let descending = RangeRequest {
        key: key(0),
        range_end: Bytes::from_static(&[0]),
        sort_order: 2,
        ..RangeRequest::default()
    };
    let by_value = RangeRequest {
        sort_order: 1,
        sort_target: 4,
        ..descending.clone()
    };
    let filtered = RangeRequest {
        min_mod_revision: 2,
        sort_order: 0,
        ..descending.clone()
    };
    assert!(kv.range_slices(&one_key).expect("valid").is_none());
    for req in [filtered, descending, by_value] {
        assert!(kv.range_slices(&req).expect("valid").is_some(), "{req:?}");
    }
    let empty_key = RangeRequest::default();
    assert_eq!(kv.range_slices(&empty_key).err(), Some(KvError::EmptyKey));
}

#[test]
fn a_range_sorted_by_value_sorts_a_run_per_call_then_merges() {
    let mut kv = KvStore::new(KvConfig::default());
    let keys = 1000u32;
    for i in 0..keys {
        let req = PutRequest {
            key: Bytes::from(format!("k{i:04}")),
            // Values fall as keys rise, with ties, so every run has work to do.
            value: Bytes::from(format!("v{:04}", (keys - i) / 3)),
            ..PutRequest::default()
        };
        kv.put(&req).expect("put");
    }
    let req = RangeRequest {
        key: Bytes::from_static(b"k"),
        range_end: Bytes::from_static(b"l"),
        sort_order: 1,
        sort_target: 4,
        ..RangeRequest::default()
    };
    let whole = kv.range(&req).expect("whole");
    let mut slices = kv.range_slices(&req).expect("valid").expect("sliced");
    let budget_keys = 10;
    let mut kvs = Vec::new();
    let mut emitted_per_call = Vec::new();
    loop {
        let before = kvs.len();
        let done = kv
            .range_slice(&mut slices, budget_keys, |record| kvs.push(record.clone()))
            .expect("slice");
        emitted_per_call.push(kvs.len() - before);
        if done {
            break;
        }
    }
    assert_eq!(records(&kvs), records(&whole.kvs));
    assert!(
        emitted_per_call.iter().all(|n| *n <= budget_keys),
        "a call hands out at most its budget"
    );
    // 100 calls walk the keys, then each call sorts one run of 16 records (1,000 split into
    // at most 64 runs) and hands out nothing until every run is sorted.
    let walk_calls = keys as usize / budget_keys;
    let silent_after_walk = emitted_per_call[walk_calls..]
        .iter()
        .take_while(|n| **n == 0)
        .count();
    assert_eq!(silent_after_walk, 1000usize.div_ceil(16) - 1);
}
