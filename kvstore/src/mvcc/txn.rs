//! Transactions: etcd's request checks, duplicate-key rule, compares and execution.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::range;
use super::revision::RangeEnd;
use super::store::Mvcc;
use crate::error::KvError;
use crate::lease::Lessor;
use crate::proto::request_op::Request;
use crate::proto::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, KeyValue, PutRequest, RequestOp,
    TxnRequest, compare::TargetUnion,
};

/// etcd's shape checks of a put.
pub(crate) fn validate_put(req: &PutRequest) -> Result<(), KvError> {
    if req.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(KvError::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(KvError::LeaseProvided);
    }
    Ok(())
}

pub(crate) fn validate_delete(req: &DeleteRangeRequest) -> Result<(), KvError> {
    if req.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    Ok(())
}

/// etcd's shape checks of a txn: op count, each op, and the duplicate-key rule.
pub(crate) fn validate_txn(req: &TxnRequest, ops_max: usize) -> Result<(), KvError> {
    check_shapes(req, ops_max)?;
    check_intervals(&req.success)?;
    check_intervals(&req.failure)?;
    Ok(())
}

fn check_shapes(req: &TxnRequest, ops_max: usize) -> Result<(), KvError> {
    if req.compare.len() > ops_max || req.success.len() > ops_max || req.failure.len() > ops_max {
        return Err(KvError::TooManyOps);
    }
    for op in req.success.iter().chain(&req.failure) {
        match &op.request {
            Some(Request::RequestRange(r)) => range::validate(r)?,
            Some(Request::RequestPut(p)) => validate_put(p)?,
            Some(Request::RequestDeleteRange(d)) => validate_delete(d)?,
            Some(Request::RequestTxn(t)) => check_shapes(t, ops_max)?,
            None => {}
        }
    }
    Ok(())
}

/// The deletions of one op list, as key ranges.
#[derive(Default)]
struct Deletes(Vec<(Bytes, RangeEnd)>);

impl Deletes {
    fn hits(&self, k: &[u8]) -> bool {
        self.0.iter().any(|(key, end)| end.contains(key, k))
    }
}

/// etcd's `checkIntervals`: no key is put twice, or put and deleted, by one path through a txn.
fn check_intervals(ops: &[RequestOp]) -> Result<(BTreeSet<Bytes>, Deletes), KvError> {
    let mut dels = Deletes::default();
    for op in ops {
        if let Some(Request::RequestDeleteRange(d)) = &op.request {
            dels.0
                .push((d.key.clone(), RangeEnd::from_wire(&d.range_end)));
        }
    }
    let mut puts = BTreeSet::new();
    for op in ops {
        let Some(Request::RequestTxn(t)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || dels.hits(k) {
                return Err(KvError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        for k in &puts_else {
            // Then and else are exclusive: a key in both is fine.
            if (puts.contains(k) && !puts_then.contains(k)) || dels.hits(k) {
                return Err(KvError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        dels.0.extend(dels_then.0);
        dels.0.extend(dels_else.0);
    }
    for op in ops {
        if let Some(Request::RequestPut(p)) = &op.request {
            if puts.contains(&p.key) || dels.hits(&p.key) {
                return Err(KvError::DuplicateKey);
            }
            puts.insert(p.key.clone());
        }
    }
    Ok((puts, dels))
}

/// Evaluates every compare of the txn, nested ones included, against the state before the txn
/// (as etcd's `compareToPath`): the chosen branch at each txn, depth first.
pub(crate) fn compare_path(mvcc: &Mvcc, req: &TxnRequest, at: i64, path: &mut Vec<bool>) {
    let ok = req.compare.iter().all(|c| compare(mvcc, c, at));
    path.push(ok);
    let ops = if ok { &req.success } else { &req.failure };
    for op in ops {
        if let Some(Request::RequestTxn(t)) = &op.request {
            compare_path(mvcc, t, at, path);
        }
    }
}

fn compare(mvcc: &Mvcc, c: &Compare, at: i64) -> bool {
    let end = RangeEnd::from_wire(&c.range_end);
    let target = CompareTarget::try_from(c.target).ok();
    let mut any = false;
    let mut all = true;
    mvcc.visit_range(&c.key, &end, at, |_, r| {
        any = true;
        all = compare_kv(c, target, &mvcc.record(r));
        all
    });
    if !any {
        // A missing key has no value to compare; its revisions and version are 0.
        return target != Some(CompareTarget::Value) && compare_kv(c, target, &KeyValue::default());
    }
    all
}

fn compare_kv(c: &Compare, target: Option<CompareTarget>, kv: &KeyValue) -> bool {
    let ord = match target {
        Some(CompareTarget::Value) => {
            let want: &[u8] = match &c.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_ref().cmp(want)
        }
        Some(t) => {
            let want = match (t, &c.target_union) {
                (CompareTarget::Version, Some(TargetUnion::Version(v)))
                | (CompareTarget::Create, Some(TargetUnion::CreateRevision(v)))
                | (CompareTarget::Mod, Some(TargetUnion::ModRevision(v)))
                | (CompareTarget::Lease, Some(TargetUnion::Lease(v))) => *v,
                _ => 0,
            };
            let have = match t {
                CompareTarget::Version => kv.version,
                CompareTarget::Create => kv.create_revision,
                CompareTarget::Mod => kv.mod_revision,
                _ => kv.lease,
            };
            have.cmp(&want)
        }
        None => return true,
    };
    match CompareResult::try_from(c.result) {
        Ok(CompareResult::Equal) => ord.is_eq(),
        Ok(CompareResult::NotEqual) => ord.is_ne(),
        Ok(CompareResult::Greater) => ord.is_gt(),
        Ok(CompareResult::Less) => ord.is_lt(),
        Err(_) => true,
    }
}

/// Checks a put against the state before it: leases exist, and ignore_* needs the key.
pub(crate) fn check_put(
    mvcc: &Mvcc,
    lessor: &Lessor,
    p: &PutRequest,
    at: i64,
) -> Result<(), KvError> {
    if (p.ignore_value || p.ignore_lease) && mvcc.get(&p.key, at).is_none() {
        return Err(KvError::KeyNotFound);
    }
    if p.lease != 0 && !lessor.contains(p.lease) {
        return Err(KvError::LeaseNotFound);
    }
    Ok(())
}

/// etcd's `checkRequests` along the chosen path: puts, and range revisions.
pub(crate) fn check_path(
    mvcc: &Mvcc,
    lessor: &Lessor,
    req: &TxnRequest,
    path: &[bool],
    pos: &mut usize,
    at: i64,
) -> Result<(), KvError> {
    let ops = if path[*pos] {
        &req.success
    } else {
        &req.failure
    };
    *pos += 1;
    for op in ops {
        match &op.request {
            Some(Request::RequestPut(p)) => check_put(mvcc, lessor, p, at)?,
            Some(Request::RequestRange(r)) => {
                if r.revision > at {
                    return Err(KvError::FutureRevision);
                }
                if r.revision != 0 && r.revision < mvcc.compact_rev {
                    return Err(KvError::Compacted);
                }
            }
            Some(Request::RequestTxn(t)) => check_path(mvcc, lessor, t, path, pos, at)?,
            _ => {}
        }
    }
    Ok(())
}
