//! etcd's space quota (`--quota-backend-bytes`) and its NOSPACE alarm. Once the alarm is raised
//! (through Raft, by the member that saw a write go over the quota), every member refuses the
//! requests that add data, as etcd's capped applier does: puts, txns with a put in either
//! branch, and lease grants. Reads, deletes and compactions go on, so an operator can make
//! room and then disarm the alarm.

use crate::mvcc::store::RECORD_OVERHEAD_BYTES;
use crate::proto::internal_request::Request;
use crate::proto::request_op::Request as Op;
use crate::proto::{AlarmType, TxnRequest};
use crate::store::KvStore;

/// What a lease grant costs against the quota: its record in the lessor.
const LEASE_BYTES: u64 = 64;

/// Bytes `request` would add to the store: 0 for requests that add none (reads, deletes,
/// compactions, revokes, alarms).
pub fn write_cost_bytes(request: &Request) -> u64 {
    match request {
        Request::Put(put) => (put.key.len() + put.value.len()) as u64 + RECORD_OVERHEAD_BYTES,
        Request::Txn(txn) => txn_cost_bytes(txn),
        Request::LeaseGrant(_) => LEASE_BYTES,
        _ => 0,
    }
}

/// Both branches count: which one runs is known only at apply.
fn txn_cost_bytes(txn: &TxnRequest) -> u64 {
    txn.success
        .iter()
        .chain(&txn.failure)
        .map(|op| match &op.request {
            Some(Op::RequestPut(put)) => {
                (put.key.len() + put.value.len()) as u64 + RECORD_OVERHEAD_BYTES
            }
            Some(Op::RequestTxn(inner)) => txn_cost_bytes(inner),
            _ => 0,
        })
        .sum()
}

impl KvStore {
    /// Whether any alarm is raised (etcd's `/health` is then false).
    pub fn has_alarms(&self) -> bool {
        !self.alarms.is_empty()
    }

    /// Whether a NOSPACE alarm is raised (by any member).
    pub fn nospace(&self) -> bool {
        self.alarms
            .iter()
            .any(|&(_, alarm)| alarm == AlarmType::Nospace as i32)
    }

    /// Whether `request` would take the store over `quota_bytes` (0: no quota).
    pub fn exceeds_quota(&self, request: &Request, quota_bytes: u64) -> bool {
        if quota_bytes == 0 {
            return false;
        }
        let cost = write_cost_bytes(request);
        cost > 0 && self.mvcc.data_bytes.saturating_add(cost) > quota_bytes
    }

    /// Whether the applier refuses `request` for want of space.
    pub(crate) fn refused_for_space(&self, request: &Request) -> bool {
        // The alarm first: it is almost never raised, and this runs on every apply.
        self.nospace() && write_cost_bytes(request) > 0
    }
}
