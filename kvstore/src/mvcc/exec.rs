//! Running a checked write request's operations, over one or more steps.
//!
//! A DeleteRange visits a bounded number of keys per step ([`WriteTxn::delete_range`]), and so
//! does a Range over more than one key (walked as a [`RangeSlices`]); a txn stops where either
//! stops and goes on from there in the next step. Puts and compares run within one step: a txn
//! holds at most `txn_ops_max` of them. Between steps nothing else applies, so a range walked
//! over several steps reads what it would have read in one.

use smallvec::{SmallVec, smallvec};

use super::range;
use super::revision::RangeEnd;
use super::write::{DeleteProgress, WriteTxn};
use crate::proto::request_op::Request;
use crate::proto::response_op::Response;
use crate::proto::{
    DeleteRangeRequest, DeleteRangeResponse, KeyValue, PutRequest, PutResponse, RangeRequest,
    RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use crate::range_slices::RangeSlices;

fn header(rev: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision: rev,
        ..ResponseHeader::default()
    })
}

/// Applies a put whose checks passed.
pub(crate) fn exec_put(tx: &mut WriteTxn<'_>, p: &PutRequest) -> PutResponse {
    let at = tx.read_rev();
    let existing = if p.ignore_value || p.ignore_lease {
        tx.mvcc().get(&p.key, at)
    } else {
        None
    };
    let value = match (&existing, p.ignore_value) {
        (Some(e), true) => e.value.clone(),
        _ => p.value.clone(),
    };
    let lease = match (&existing, p.ignore_lease) {
        (Some(e), true) => e.lease,
        _ => p.lease,
    };
    let prev = tx.put(p.key.clone(), value, lease);
    PutResponse {
        header: header(tx.read_rev()),
        prev_kv: if p.prev_kv { prev } else { None },
    }
}

/// Runs a DeleteRange from where `progress` stands, visiting at most `keys_left` keys. The
/// response once it is done; `None` when `keys_left` ran out first.
pub(crate) fn exec_delete(
    tx: &mut WriteTxn<'_>,
    d: &DeleteRangeRequest,
    progress: &mut DeleteProgress,
    keys_left: &mut usize,
) -> Option<DeleteRangeResponse> {
    let end = RangeEnd::from_wire(&d.range_end);
    if !tx.delete_range(&d.key, &end, d.prev_kv, progress, keys_left) {
        return None;
    }
    let (count, prev_kvs) = std::mem::take(progress).finish();
    Some(DeleteRangeResponse {
        header: header(tx.read_rev()),
        deleted: count as i64,
        prev_kvs,
    })
}

/// A Range of a txn being walked, and the records it has answered so far.
#[derive(Debug)]
struct TxnRange {
    slices: RangeSlices,
    kvs: Vec<KeyValue>,
}

/// Runs a Range of a txn from where `progress` stands (`None`: not begun), walking at most
/// `keys_left` keys. The response once it is done; `None` when `keys_left` ran out first.
fn exec_range(
    tx: &WriteTxn<'_>,
    r: &RangeRequest,
    progress: &mut Option<Box<TxnRange>>,
    keys_left: &mut usize,
) -> Option<RangeResponse> {
    let view = tx.read_rev();
    if progress.is_none() {
        // The request was checked before the txn began, so these cannot fail; an error would
        // answer an empty range, as the whole range did.
        match RangeSlices::begin(tx.mvcc(), r, view) {
            Ok(Some(slices)) => {
                *progress = Some(Box::new(TxnRange {
                    slices,
                    kvs: Vec::new(),
                }));
            }
            Ok(None) => {
                *keys_left = keys_left.saturating_sub(1);
                return Some(range::range(tx.mvcc(), r, view).unwrap_or_default());
            }
            Err(_) => return Some(RangeResponse::default()),
        }
    }
    if *keys_left == 0 {
        return None;
    }
    let TxnRange { slices, kvs } = &mut **progress.as_mut().expect("begun above");
    let (done, used) = match slices.advance(tx.mvcc(), *keys_left, |kv| kvs.push(kv.clone())) {
        Ok(step) => step,
        Err(_) => {
            *progress = None;
            return Some(RangeResponse::default());
        }
    };
    *keys_left -= used;
    if !done {
        return None;
    }
    let TxnRange { slices, kvs } = *progress.take().expect("begun above");
    let totals = slices.totals();
    Some(RangeResponse {
        header: header(totals.view_rev),
        kvs,
        more: totals.more,
        count: totals.count,
    })
}

/// One txn (the request's own, or a nested one) being run.
#[derive(Debug)]
struct Frame {
    succeeded: bool,
    /// The next op of the chosen branch.
    op: usize,
    responses: Vec<ResponseOp>,
}

/// A txn in progress: the branch taken at each txn, nested ones included (its compares were
/// evaluated before the first step, against the state before the txn, as etcd does), and
/// where execution stands.
#[derive(Debug)]
pub(crate) struct TxnProgress {
    path: Vec<bool>,
    /// The entry of `path` the next nested txn takes.
    path_pos: usize,
    /// The request's own txn first, then the nested txns being run, innermost last (inline:
    /// most txns nest no deeper than one level).
    frames: SmallVec<[Frame; 2]>,
    delete: DeleteProgress,
    /// Boxed: most txns hold no range over many keys.
    range: Option<Box<TxnRange>>,
}

impl TxnProgress {
    /// A txn about to run: `path` is [`super::txn::compare_path`]'s.
    pub(crate) fn new(path: Vec<bool>) -> Self {
        let succeeded = *path.first().expect("a txn's path holds its own branch");
        TxnProgress {
            path,
            path_pos: 1,
            frames: smallvec![Frame {
                succeeded,
                op: 0,
                responses: Vec::new(),
            }],
            delete: DeleteProgress::default(),
            range: None,
        }
    }
}

fn branch(t: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded { &t.success } else { &t.failure }
}

/// The txn the innermost frame runs: each outer frame stands on the nested txn it runs.
fn frame_txn<'r>(root: &'r TxnRequest, frames: &[Frame]) -> &'r TxnRequest {
    let mut t = root;
    for f in &frames[..frames.len() - 1] {
        match &branch(t, f.succeeded)[f.op].request {
            Some(Request::RequestTxn(inner)) => t = inner,
            other => panic!("an outer txn frame stands on op {} = {other:?}", f.op),
        }
    }
    t
}

/// Runs the chosen path of a checked txn from where `progress` stands. The response once the
/// txn is done; `None` when `keys_left` ran out inside a DeleteRange or a Range (call again with
/// the same `progress` to go on). Each put, and each range of one key, uses one of `keys_left`.
pub(crate) fn exec_txn(
    tx: &mut WriteTxn<'_>,
    req: &TxnRequest,
    progress: &mut TxnProgress,
    keys_left: &mut usize,
) -> Option<TxnResponse> {
    let TxnProgress {
        path,
        path_pos,
        frames,
        delete,
        range: range_progress,
    } = progress;
    loop {
        assert!(!frames.is_empty(), "a finished txn is not run again");
        let txn = frame_txn(req, frames);
        let frame = frames.last_mut().expect("checked above");
        let ops = branch(txn, frame.succeeded);
        if frame.op == ops.len() {
            let done = frames.pop().expect("checked above");
            let resp = TxnResponse {
                header: header(tx.read_rev()),
                succeeded: done.succeeded,
                responses: done.responses,
            };
            let Some(parent) = frames.last_mut() else {
                assert_eq!(
                    *path_pos,
                    path.len(),
                    "a txn takes every branch of its path"
                );
                return Some(resp);
            };
            parent.responses.push(ResponseOp {
                response: Some(Response::ResponseTxn(resp)),
            });
            parent.op += 1;
            continue;
        }
        if frame.op == 0 && frame.responses.capacity() == 0 {
            frame.responses.reserve_exact(ops.len());
        }
        let response = match &ops[frame.op].request {
            Some(Request::RequestRange(r)) => match exec_range(tx, r, range_progress, keys_left) {
                Some(resp) => Some(Response::ResponseRange(resp)),
                None => return None,
            },
            Some(Request::RequestPut(p)) => {
                *keys_left = keys_left.saturating_sub(1);
                Some(Response::ResponsePut(exec_put(tx, p)))
            }
            Some(Request::RequestDeleteRange(d)) => match exec_delete(tx, d, delete, keys_left) {
                Some(resp) => Some(Response::ResponseDeleteRange(resp)),
                None => return None,
            },
            Some(Request::RequestTxn(_)) => {
                let succeeded = path[*path_pos];
                *path_pos += 1;
                frames.push(Frame {
                    succeeded,
                    op: 0,
                    responses: Vec::new(),
                });
                continue;
            }
            None => None,
        };
        frame.responses.push(ResponseOp { response });
        frame.op += 1;
    }
}
