//! The store requests of etcd's lock and election recipes (`clientv3/concurrency`), built as
//! etcd 3.4's `Mutex` and `Election` build them, and the reads that decide who holds what.

use bytes::{Bytes, BytesMut};
use tally_kvstore::proto::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, KeyValue, PutRequest, RangeRequest,
    RequestOp, SortOrder, SortTarget, TxnRequest, compare::TargetUnion, request_op::Request as Op,
};
use tally_kvstore::{KvError, KvStore, prefix_range_end};

/// The TTL of the lease the server grants a `Lock` or `Campaign` without one (etcd's
/// session default).
pub(super) const SESSION_TTL_SECONDS: i64 = 60;

/// The prefix of a lock's or election's keys: `name/`.
pub(super) fn prefix_of(name: &[u8]) -> Bytes {
    let mut prefix = BytesMut::with_capacity(name.len() + 1);
    prefix.extend_from_slice(name);
    prefix.extend_from_slice(b"/");
    prefix.freeze()
}

/// The key a holder with `lease` takes under `prefix`: the lease ID in lowercase hex.
pub(super) fn key_of(prefix: &[u8], lease: i64) -> Bytes {
    let mut key = BytesMut::with_capacity(prefix.len() + 16);
    key.extend_from_slice(prefix);
    key.extend_from_slice(format!("{lease:x}").as_bytes());
    key.freeze()
}

fn create_revision_is(key: &Bytes, revision: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: key.clone(),
        target_union: Some(TargetUnion::CreateRevision(revision)),
        range_end: Bytes::new(),
    }
}

fn put(key: &Bytes, value: Bytes, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestPut(PutRequest {
            key: key.clone(),
            value,
            lease,
            ..PutRequest::default()
        })),
    }
}

fn get(key: &Bytes) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestRange(RangeRequest {
            key: key.clone(),
            ..RangeRequest::default()
        })),
    }
}

/// The key under `prefix` created first (`Some(max)`: first among those created at or before
/// revision `max`), as `WithFirstCreate` asks; last created with `newest`.
fn top_by_create(prefix: &Bytes, newest: bool, max_create_revision: i64) -> RangeRequest {
    RangeRequest {
        key: prefix.clone(),
        range_end: prefix_range_end(prefix),
        limit: 1,
        sort_order: if newest {
            SortOrder::Descend
        } else {
            SortOrder::Ascend
        } as i32,
        sort_target: SortTarget::Create as i32,
        max_create_revision,
        ..RangeRequest::default()
    }
}

/// The owner query of a lock or election: its key created first.
pub(super) fn first_created(prefix: &Bytes) -> RangeRequest {
    top_by_create(prefix, false, 0)
}

/// `Mutex.Lock`'s transaction: take `key` with `lease` unless this lease holds it already
/// (then read it back), and read who holds the lock.
pub(super) fn lock(key: &Bytes, prefix: &Bytes, lease: i64) -> TxnRequest {
    let owner = RequestOp {
        request: Some(Op::RequestRange(first_created(prefix))),
    };
    TxnRequest {
        compare: vec![create_revision_is(key, 0)],
        success: vec![put(key, Bytes::new(), lease), owner.clone()],
        failure: vec![get(key), owner],
    }
}

/// `Election.Campaign`'s transaction: take `key` with `value` and `lease`, unless this lease
/// campaigns already (then read it back).
pub(super) fn campaign(key: &Bytes, value: Bytes, lease: i64) -> TxnRequest {
    TxnRequest {
        compare: vec![create_revision_is(key, 0)],
        success: vec![put(key, value, lease)],
        failure: vec![get(key)],
    }
}

/// `Election.Proclaim`'s transaction: a new value, while `key` is the leadership created at
/// `revision`.
pub(super) fn proclaim(key: &Bytes, revision: i64, value: Bytes, lease: i64) -> TxnRequest {
    TxnRequest {
        compare: vec![create_revision_is(key, revision)],
        success: vec![put(key, value, lease)],
        failure: Vec::new(),
    }
}

/// `Election.Resign`'s transaction: delete `key` while it is the leadership created at
/// `revision`.
pub(super) fn resign(key: &Bytes, revision: i64) -> TxnRequest {
    TxnRequest {
        compare: vec![create_revision_is(key, revision)],
        success: vec![RequestOp {
            request: Some(Op::RequestDeleteRange(delete(key))),
        }],
        failure: Vec::new(),
    }
}

pub(super) fn delete(key: &Bytes) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: key.clone(),
        ..DeleteRangeRequest::default()
    }
}

/// One key's current pair in `kv`.
pub(super) fn current(kv: &KvStore, key: &Bytes) -> Result<Option<KeyValue>, KvError> {
    let request = RangeRequest {
        key: key.clone(),
        ..RangeRequest::default()
    };
    Ok(kv.range(&request)?.kvs.into_iter().next())
}

/// The newest key under `prefix` created at or before `max_create_revision`: what a waiter
/// created at `max_create_revision + 1` waits on (etcd's `waitDeletes`).
pub(super) fn blocking(
    kv: &KvStore,
    prefix: &Bytes,
    max_create_revision: i64,
) -> Result<Option<KeyValue>, KvError> {
    let request = top_by_create(prefix, true, max_create_revision);
    Ok(kv.range(&request)?.kvs.into_iter().next())
}

/// The key created first under `prefix`: the lock's holder, the election's leader.
pub(super) fn current_leader(kv: &KvStore, prefix: &Bytes) -> Result<Option<KeyValue>, KvError> {
    Ok(kv.range(&first_created(prefix))?.kvs.into_iter().next())
}
