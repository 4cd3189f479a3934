//! Applying committed entries, in one step or in several.
//!
//! [`KvStore::apply_begin`] applies an entry, visiting at most the given number of keys. Almost
//! every entry finishes there. A DeleteRange over more keys than that, alone or inside a txn,
//! and a LeaseRevoke of a lease holding more keys than that, stop where the budget ran out and
//! return [`Step::Pending`]; [`KvStore::apply_continue`] goes on from there, as often as it
//! takes.
//!
//! Until the last step, nothing of the entry is visible: its tombstones are written at the next
//! revision, which no read sees before the current revision moves to it, and the current
//! revision, the applied index, the size figures, the lease key sets and the watch events are
//! published by the last step alone. Reads between steps see exactly the state before the
//! entry. Txn compares are evaluated against that state in the first step, as etcd does.
//!
//! While an entry is pending, the store accepts reads, watcher bookkeeping, writing a snapshot
//! or a hash (of the state before the entry), and snapshot copy steps (the copy is as of a
//! revision the entry has not reached). It refuses, by assertion, everything that writes the
//! store or walks the history beyond the current revision: another apply, a direct write, a
//! compaction step, a watcher sync step, and starting a snapshot copy. Restoring a snapshot
//! drops the pending entry: the restored state supersedes it.

use bytes::Bytes;
use prost::Message;

use crate::error::KvError;
use crate::mvcc::exec::{TxnProgress, exec_delete, exec_txn};
use crate::mvcc::txn;
use crate::mvcc::write::{DeleteProgress, LeaseKeysProgress, Staged, WriteTxn};
use crate::outcome::{ApplyOutcome, ApplyResponse};
use crate::proto::internal_request::Request;
use crate::proto::*;
use crate::store::{KvStore, header};

/// What an apply step left.
#[must_use = "a pending apply must be finished with apply_continue before anything else applies"]
#[derive(Debug)]
pub enum Step {
    /// The entry is applied: its outcome.
    Done(ApplyOutcome),
    /// The entry is partly applied and none of it is visible yet: call
    /// [`KvStore::apply_continue`] until it is done.
    Pending,
}

/// The part of a request that may take several steps.
#[derive(Debug)]
pub(crate) enum Work {
    Delete {
        req: DeleteRangeRequest,
        progress: DeleteProgress,
    },
    Txn {
        req: TxnRequest,
        progress: TxnProgress,
    },
    /// The lease is revoked when its last key is deleted, in the step that publishes.
    Revoke {
        lease: i64,
        progress: LeaseKeysProgress,
    },
}

/// An entry applied in part: what it is, where it stands, and what it has yet to publish.
#[derive(Debug)]
pub(crate) struct PendingApply {
    raft_index: u64,
    request_id: u64,
    work: Work,
    staged: Staged,
}

impl KvStore {
    /// Applies one committed entry, visiting at most `*keys_left` keys, and takes the keys it
    /// visited off `*keys_left` (the entry itself counts as one). `request_bytes` is an encoded
    /// [`InternalRequest`] (empty bytes are a no-op). A decoding failure or a stale index yields
    /// an error outcome and changes nothing, identically on every replica.
    ///
    /// [`Step::Pending`] when the keys ran out before the entry was done: nothing of it is
    /// visible yet, and [`KvStore::apply_continue`] must finish it before anything else is
    /// applied (see the module docs for what is allowed meanwhile).
    ///
    /// Given the entry as `Bytes`, the stored keys and values point into it rather than being
    /// copied, so the Raft log's copy of an entry and the store's share one allocation.
    pub fn apply_begin(
        &mut self,
        raft_index: u64,
        mut request_bytes: impl bytes::Buf,
        keys_left: &mut usize,
    ) -> Step {
        self.assert_no_pending_apply("apply_begin");
        assert!(
            *keys_left > 0,
            "apply_begin of index {raft_index} with no keys left"
        );
        *keys_left -= 1;
        if raft_index <= self.applied_index {
            let err = KvError::StaleIndex {
                index: raft_index,
                applied: self.applied_index,
            };
            return Step::Done(ApplyOutcome::new(raft_index, 0, Err(err), None));
        }
        // Zero-copy when the caller hands over `Bytes`: the records of puts keep slices of it.
        let request = request_bytes.copy_to_bytes(request_bytes.remaining());
        let req = match InternalRequest::decode(request.clone()) {
            Ok(r) => r,
            Err(e) => {
                let err = Err(KvError::Decode(e.to_string()));
                return Step::Done(ApplyOutcome::new(raft_index, 0, err, None));
            }
        };
        let id = req.id;
        let done = |result, wait| Step::Done(ApplyOutcome::new(raft_index, id, result, wait));
        if let (Some(header), Some(request)) = (&req.header, &req.request) {
            // Checked here, at the entry's index, on every member: a permission change
            // ordered before the entry applies to it everywhere.
            if let Err(denied) = self.check_permission(header, request) {
                self.applied_index = raft_index;
                return done(Err(denied), None);
            }
        }
        if req
            .request
            .as_ref()
            .is_some_and(|r| self.refused_for_space(r))
        {
            self.applied_index = raft_index;
            return done(Err(KvError::NoSpace), None);
        }
        let work = match req.request {
            Some(Request::DeleteRange(d)) => match txn::validate_delete(&d) {
                Ok(()) => Work::Delete {
                    req: d,
                    progress: DeleteProgress::default(),
                },
                Err(e) => {
                    self.applied_index = raft_index;
                    return done(Err(e), None);
                }
            },
            Some(Request::Txn(t)) => match self.txn_path(&t) {
                Ok(path) => Work::Txn {
                    req: t,
                    progress: TxnProgress::new(path),
                },
                Err(e) => {
                    self.applied_index = raft_index;
                    return done(Err(e), None);
                }
            },
            Some(Request::LeaseRevoke(r)) => match self.revoke_work(r.id) {
                Ok(work) => work,
                Err(e) => {
                    self.applied_index = raft_index;
                    return done(Err(e), None);
                }
            },
            other => {
                self.applied_index = raft_index;
                let (result, wait) = self.apply_in_one_step(other.as_ref(), request);
                return done(result, wait);
            }
        };
        let pending = PendingApply {
            raft_index,
            request_id: id,
            work,
            staged: self.begin_write(request),
        };
        self.run_pending(pending, keys_left)
    }

    /// Goes on with the pending entry, visiting at most `*keys_left` keys (at least one), and
    /// takes the keys it visited off `*keys_left`. [`Step::Done`] on the step that finishes it.
    pub fn apply_continue(&mut self, keys_left: &mut usize) -> Step {
        let pending = self
            .pending
            .take()
            .expect("apply_continue with no apply pending");
        assert!(
            *keys_left > 0,
            "apply_continue of index {} with no keys left",
            pending.raft_index
        );
        self.run_pending(*pending, keys_left)
    }

    /// Applies one committed entry whole, in one call: [`KvStore::apply_begin`] with no limit
    /// on the keys it visits.
    pub fn apply(&mut self, raft_index: u64, request_bytes: impl bytes::Buf) -> ApplyOutcome {
        let mut keys_left = usize::MAX;
        match self.apply_begin(raft_index, request_bytes, &mut keys_left) {
            Step::Done(outcome) => outcome,
            Step::Pending => panic!("an apply without a key limit stopped at index {raft_index}"),
        }
    }

    /// The raft index of the entry applied in part, if any.
    pub fn pending_apply_index(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.raft_index)
    }

    /// Stops the caller when an entry is applied in part: `what` would write the store or read
    /// the history beyond the current revision.
    pub(crate) fn assert_no_pending_apply(&self, what: &str) {
        if let Some(p) = &self.pending {
            panic!(
                "{what} while the apply of index {} is pending (applied index {}, revision {}): \
                 finish it with apply_continue first",
                p.raft_index, self.applied_index, self.mvcc.current_rev
            );
        }
    }

    /// Drops the pending entry, if any, when a restore replaces the state it was written on.
    pub(crate) fn drop_pending_apply(&mut self) {
        self.pending = None;
    }

    /// Evaluates a txn's compares against the current state and checks its chosen path: the
    /// branch taken at each txn, nested ones included.
    fn txn_path(&self, req: &TxnRequest) -> Result<Vec<bool>, KvError> {
        txn::validate_txn(req, self.config.txn_ops_max())?;
        let at = self.mvcc.current_rev;
        let mut path = Vec::new();
        txn::compare_path(&self.mvcc, req, at, &mut path);
        txn::check_path(&self.mvcc, &self.lessor, req, &path, &mut 0, at)?;
        Ok(path)
    }

    /// A write of `request` (its bytes, or empty) at the next revision, set aside to run.
    fn begin_write(&mut self, request: Bytes) -> Staged {
        let collect = !self.watch.is_empty();
        WriteTxn::begin(&mut self.mvcc, &mut self.lessor, collect, request).suspend()
    }

    /// Runs `work` from where it stands; its response once done and published, or its staged
    /// changes when `keys_left` ran out first (boxed: the rarer and larger outcome).
    fn run_work(
        &mut self,
        work: &mut Work,
        staged: Staged,
        keys_left: &mut usize,
    ) -> Result<ApplyResponse, Box<Staged>> {
        let mut tx = WriteTxn::resume(&mut self.mvcc, &mut self.lessor, staged);
        let response = match work {
            Work::Delete { req, progress } => {
                exec_delete(&mut tx, req, progress, keys_left).map(ApplyResponse::DeleteRange)
            }
            Work::Txn { req, progress } => {
                exec_txn(&mut tx, req, progress, keys_left).map(ApplyResponse::Txn)
            }
            Work::Revoke { lease, progress } => tx
                .delete_lease_keys(*lease, progress, keys_left)
                .then(|| ApplyResponse::LeaseRevoke(LeaseRevokeResponse::default())),
        };
        let Some(mut response) = response else {
            return Err(Box::new(tx.suspend()));
        };
        let (rev, events) = tx.end();
        if let Work::Revoke { lease, .. } = work {
            let detached = self
                .lessor
                .revoke(*lease)
                .expect("a lease being revoked exists until its revoke is published");
            assert!(
                detached.is_empty(),
                "lease {lease} still holds {} keys once they are deleted",
                detached.len()
            );
        }
        if !events.is_empty() {
            self.watch.notify(rev, &events);
        }
        match &mut response {
            ApplyResponse::DeleteRange(r) => r.header = header(rev),
            ApplyResponse::Txn(r) => r.header = header(rev),
            ApplyResponse::LeaseRevoke(r) => r.header = header(rev),
            other => panic!("multi-step work answers a delete, a txn or a revoke, not {other:?}"),
        }
        Ok(response)
    }

    fn run_pending(&mut self, pending: PendingApply, keys_left: &mut usize) -> Step {
        let PendingApply {
            raft_index,
            request_id,
            mut work,
            staged,
        } = pending;
        match self.run_work(&mut work, staged, keys_left) {
            Ok(response) => {
                assert!(
                    raft_index > self.applied_index,
                    "index {raft_index} finishes after applied index {}",
                    self.applied_index
                );
                self.applied_index = raft_index;
                let outcome = ApplyOutcome::new(raft_index, request_id, Ok(response), None);
                Step::Done(outcome)
            }
            Err(staged) => {
                self.pending = Some(Box::new(PendingApply {
                    raft_index,
                    request_id,
                    work,
                    staged: *staged,
                }));
                Step::Pending
            }
        }
    }

    /// Runs `work` to the end in one call, for a write made without replication.
    pub(crate) fn run_whole(&mut self, mut work: Work) -> ApplyResponse {
        self.assert_no_pending_apply("a direct write");
        let staged = self.begin_write(Bytes::new());
        let mut keys_left = usize::MAX;
        match self.run_work(&mut work, staged, &mut keys_left) {
            Ok(response) => response,
            Err(_) => panic!("a write without a key limit stopped"),
        }
    }

    /// Directly runs a DeleteRange whose checks passed.
    pub(crate) fn delete_range_whole(&mut self, req: &DeleteRangeRequest) -> DeleteRangeResponse {
        let work = Work::Delete {
            req: req.clone(),
            progress: DeleteProgress::default(),
        };
        match self.run_whole(work) {
            ApplyResponse::DeleteRange(r) => r,
            other => panic!("a delete answered {other:?}"),
        }
    }

    /// The work of revoking `lease`, which must exist.
    fn revoke_work(&self, lease: i64) -> Result<Work, KvError> {
        if !self.lessor.contains(lease) {
            return Err(KvError::LeaseNotFound);
        }
        Ok(Work::Revoke {
            lease,
            progress: LeaseKeysProgress::default(),
        })
    }

    /// Directly revokes a lease and deletes its keys, all in one revision.
    pub(crate) fn lease_revoke_whole(
        &mut self,
        lease: i64,
    ) -> Result<LeaseRevokeResponse, KvError> {
        let work = self.revoke_work(lease)?;
        match self.run_whole(work) {
            ApplyResponse::LeaseRevoke(r) => Ok(r),
            other => panic!("a revoke answered {other:?}"),
        }
    }

    /// Directly runs a txn: its checks, its compares, then its chosen path.
    pub(crate) fn txn_whole(&mut self, req: &TxnRequest) -> Result<TxnResponse, KvError> {
        let path = self.txn_path(req)?;
        let work = Work::Txn {
            req: req.clone(),
            progress: TxnProgress::new(path),
        };
        match self.run_whole(work) {
            ApplyResponse::Txn(r) => Ok(r),
            other => panic!("a txn answered {other:?}"),
        }
    }

    /// Applies a request that always finishes in one step (anything but a DeleteRange, a txn
    /// or a LeaseRevoke); returns its result and, for a physical compaction, the revision to
    /// wait for.
    fn apply_in_one_step(
        &mut self,
        request: Option<&Request>,
        request_bytes: Bytes,
    ) -> (Result<ApplyResponse, KvError>, Option<i64>) {
        let mut wait = None;
        let result = match request {
            None => Ok(ApplyResponse::Noop),
            Some(Request::Range(r)) => self.range(r).map(ApplyResponse::Range),
            Some(Request::Put(p)) => self.put_of(p, request_bytes).map(ApplyResponse::Put),
            Some(Request::DeleteRange(_) | Request::Txn(_) | Request::LeaseRevoke(_)) => {
                panic!("a DeleteRange, a txn or a LeaseRevoke may take several steps")
            }
            Some(Request::Compaction(c)) => {
                let r = self.compact(c).map(ApplyResponse::Compaction);
                if r.is_ok() && c.physical {
                    wait = Some(c.revision);
                }
                r
            }
            Some(Request::LeaseGrant(g)) => self.lease_grant(g).map(ApplyResponse::LeaseGrant),
            Some(Request::LeaseCheckpoint(c)) => {
                Ok(ApplyResponse::LeaseCheckpoint(self.lease_checkpoint(c)))
            }
            Some(Request::LeaseRenew(r)) => self.lease_renew(r).map(ApplyResponse::LeaseRenew),
            Some(Request::Alarm(a)) => Ok(ApplyResponse::Alarm(self.alarm(a))),
            Some(auth) => self.apply_auth(auth),
        };
        (result, wait)
    }
}
