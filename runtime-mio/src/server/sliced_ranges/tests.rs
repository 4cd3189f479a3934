use bytes::Bytes;
use tally_kvstore::proto::{
    CompactionRequest, PutRequest, RangeRequest, RangeResponse, ResponseHeader,
};
use tally_kvstore::{KvConfig, KvError, KvStore};

use super::{Progress, SlicedRange};
use crate::client::CallId;
use crate::server::rpc::respond::{HeaderFill, encode_with};

fn header_of(revision: i64) -> ResponseHeader {
    ResponseHeader {
        cluster_id: 11,
        member_id: 22,
        revision,
        raft_term: 3,
    }
}

fn store(keys: u32) -> KvStore {
    let mut kv = KvStore::new(KvConfig::default());
    for i in 0..keys {
        let req = PutRequest {
            key: Bytes::from(format!("key/{i:04}")),
            value: Bytes::from(format!("value {i}")),
            ..PutRequest::default()
        };
        kv.put(&req).expect("put");
    }
    kv
}

fn prefix(limit: i64, keys_only: bool, count_only: bool) -> RangeRequest {
    RangeRequest {
        key: Bytes::from_static(b"key/"),
        range_end: Bytes::from_static(b"key0"),
        limit,
        keys_only,
        count_only,
        ..RangeRequest::default()
    }
}

/// Slices `request` to its end, `budget_keys` at a time, calling `between` between slices.
fn sliced(
    kv: &mut KvStore,
    request: &RangeRequest,
    budget_keys: usize,
    mut between: impl FnMut(&mut KvStore),
) -> Result<Bytes, KvError> {
    let slices = kv.range_slices(request)?.expect("sliced");
    let call = CallId::for_tests(1);
    let mut range = SlicedRange::new(call, request.clone(), slices, header_of);
    loop {
        match range.advance(kv, budget_keys, header_of) {
            Progress::Done(bytes) => return Ok(bytes),
            Progress::Failed(error) => return Err(error),
            Progress::Pending => between(kv),
        }
    }
}

fn whole(kv: &KvStore, request: &RangeRequest) -> Bytes {
    let response = kv.range(request).expect("range");
    encode_with(response, HeaderFill::Full, header_of)
}

#[test]
fn a_sliced_answer_is_byte_for_byte_the_whole_answer() {
    let mut kv = store(50);
    for request in [
        prefix(0, false, false),
        prefix(7, false, false),
        prefix(50, false, false),
        prefix(0, true, false),
        prefix(3, true, false),
        prefix(0, false, true),
        RangeRequest {
            key: Bytes::from_static(b"nothing/"),
            range_end: Bytes::from_static(b"nothing0"),
            ..RangeRequest::default()
        },
    ] {
        let expected = whole(&kv, &request);
        for budget_keys in [1, 4, 49, 50, 1000] {
            let got = sliced(&mut kv, &request, budget_keys, |_| {}).expect("sliced");
            assert_eq!(got, expected, "{request:?} in slices of {budget_keys}");
        }
        let decoded: RangeResponse = prost::Message::decode(expected).expect("decode");
        assert_eq!(decoded.header, Some(header_of(kv.revision())));
    }
}

#[test]
fn writes_between_slices_are_not_in_the_answer() {
    let mut kv = store(20);
    let request = prefix(0, false, false);
    let expected = whole(&kv, &request);
    let mut n = 0;
    let got = sliced(&mut kv, &request, 3, |kv| {
        n += 1;
        let req = PutRequest {
            key: Bytes::from(format!("key/{:04}", 19 - n)),
            value: Bytes::from_static(b"changed"),
            ..PutRequest::default()
        };
        kv.put(&req).expect("put");
    })
    .expect("sliced");
    assert!(n > 2, "writes landed between slices");
    assert_eq!(got, expected);
}

fn compact_to_latest(kv: &mut KvStore) {
    let put = PutRequest {
        key: Bytes::from_static(b"other"),
        value: Bytes::from_static(b"x"),
        ..PutRequest::default()
    };
    kv.put(&put).expect("put");
    let revision = kv.revision();
    kv.compact(&CompactionRequest {
        revision,
        physical: false,
    })
    .expect("compact");
}

#[test]
fn a_compaction_under_a_latest_range_begins_it_again_at_the_latest() {
    let mut kv = store(20);
    let request = prefix(0, false, false);
    let mut compacted = false;
    let got = sliced(&mut kv, &request, 3, |kv| {
        if !compacted {
            compacted = true;
            compact_to_latest(kv);
        }
    })
    .expect("sliced");
    assert_eq!(
        got,
        whole(&kv, &request),
        "the answer as of the latest revision"
    );
    let decoded: RangeResponse = prost::Message::decode(got).expect("decode");
    assert_eq!(decoded.header, Some(header_of(kv.revision())));
}

#[test]
fn a_compaction_under_a_range_at_a_named_revision_fails_it() {
    let mut kv = store(20);
    let request = RangeRequest {
        revision: 21,
        ..prefix(0, false, false)
    };
    let got = sliced(&mut kv, &request, 3, compact_to_latest);
    assert_eq!(got, Err(KvError::Compacted));
}
