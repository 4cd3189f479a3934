//! The NOSPACE alarm: with it raised, the applier refuses what adds data, as etcd's capped
//! applier does, and lets through what makes room.

use bytes::Bytes;
use prost::Message as _;

use crate::proto::internal_request::Request;
use crate::proto::request_op::Request as Op;
use crate::proto::*;
use crate::{KvConfig, KvError, KvStore, write_cost_bytes};

/// Applies `request` at the next raft index; its result.
fn apply(kv: &mut KvStore, request: Request) -> Result<(), KvError> {
    let index = kv.applied_index() + 1;
    let bytes = InternalRequest {
        id: index,
        header: None,
        request: Some(request),
    }
    .encode_to_vec();
    kv.apply(index, &bytes[..]).into_result().map(|_| ())
}

fn put(key: &str, value: &str) -> Request {
    Request::Put(PutRequest {
        key: Bytes::from(key.to_string()),
        value: Bytes::from(value.to_string()),
        ..PutRequest::default()
    })
}

fn op_put(key: &str) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestPut(PutRequest {
            key: Bytes::from(key.to_string()),
            ..PutRequest::default()
        })),
    }
}

fn op_range(key: &str) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestRange(RangeRequest {
            key: Bytes::from(key.to_string()),
            ..RangeRequest::default()
        })),
    }
}

fn alarm(action: AlarmAction) -> Request {
    Request::Alarm(AlarmRequest {
        action: action as i32,
        member_id: 7,
        alarm: AlarmType::Nospace as i32,
    })
}

#[test]
fn a_nospace_alarm_refuses_what_adds_data_and_lets_room_be_made() {
    let mut kv = KvStore::new(KvConfig::default());
    apply(&mut kv, put("a", "1")).unwrap();
    apply(&mut kv, alarm(AlarmAction::Activate)).unwrap();
    assert!(kv.nospace());
    let txn = |success: Vec<RequestOp>, failure: Vec<RequestOp>| {
        Request::Txn(TxnRequest {
            success,
            failure,
            ..TxnRequest::default()
        })
    };
    let grant = Request::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 9 });
    for refused in [
        put("b", "2"),
        txn(vec![op_put("b")], vec![]),
        txn(vec![op_range("a")], vec![op_put("b")]),
        grant.clone(),
    ] {
        assert_eq!(apply(&mut kv, refused), Err(KvError::NoSpace));
    }
    let read_only = txn(vec![op_range("a")], vec![]);
    let delete = Request::DeleteRange(DeleteRangeRequest {
        key: Bytes::from_static(b"a"),
        ..DeleteRangeRequest::default()
    });
    let compact = Request::Compaction(CompactionRequest {
        revision: 2,
        physical: false,
    });
    for allowed in [read_only, delete, compact] {
        assert_eq!(apply(&mut kv, allowed), Ok(()));
    }
    apply(&mut kv, alarm(AlarmAction::Deactivate)).unwrap();
    assert!(!kv.nospace());
    assert_eq!(apply(&mut kv, put("b", "2")), Ok(()));
    assert_eq!(apply(&mut kv, grant), Ok(()));
}

#[test]
fn the_quota_counts_what_a_request_would_add() {
    let mut kv = KvStore::new(KvConfig::default());
    let request = put("key", "value");
    let cost = write_cost_bytes(&request);
    assert!(cost >= 8, "key and value at least");
    assert!(!kv.exceeds_quota(&request, 0), "no quota");
    assert!(kv.exceeds_quota(&request, cost - 1));
    assert!(!kv.exceeds_quota(&request, cost));
    apply(&mut kv, request.clone()).unwrap();
    assert!(
        kv.exceeds_quota(&request, cost),
        "the store holds one already"
    );
    let delete = Request::DeleteRange(DeleteRangeRequest::default());
    assert_eq!(write_cost_bytes(&delete), 0);
    assert!(!kv.exceeds_quota(&delete, 1), "deletes make room");
    let nested = Request::Txn(TxnRequest {
        success: vec![RequestOp {
            request: Some(Op::RequestTxn(TxnRequest {
                failure: vec![op_put("deep")],
                ..TxnRequest::default()
            })),
        }],
        ..TxnRequest::default()
    });
    assert!(
        write_cost_bytes(&nested) > 0,
        "a put in a nested txn counts"
    );
}
