//! Runs operations against the store (through `apply`) and the model side by side.

use bytes::Bytes;
use prost::Message;

use super::model::{Model, ModelRange, ModelWrite};
use super::ops::{EndKind, LEASE_SLOTS, Op, TxnOp, key, key_range, lease_id};
use crate::config::KvConfig;
use crate::error::KvError;
use crate::outcome::ApplyResponse;
use crate::proto::internal_request::Request;
use crate::proto::request_op::Request as OpReq;
use crate::proto::response_op::Response as OpResp;
use crate::proto::*;
use crate::store::KvStore;
use crate::watch::WatchId;

#[derive(Debug)]
struct Track {
    id: WatchId,
    range: ModelRange,
    start: i64,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    got: Vec<Event>,
    created: bool,
    compacted: bool,
}

/// The store and the model, side by side.
#[derive(Debug)]
pub struct Harness {
    store: KvStore,
    model: Model,
    index: u64,
    tracks: Vec<Track>,
}

fn hdr(rev: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision: rev,
        ..ResponseHeader::default()
    })
}

fn value(v: u8) -> Bytes {
    Bytes::from(vec![b'v', v])
}

macro_rules! check {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(format!($($arg)*));
        }
    };
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A fresh store with a tiny watch queue, so that watchers fall behind often.
    pub fn new() -> Self {
        let config = KvConfig::default().with_watch_pending_events_max(3);
        Harness {
            store: KvStore::new(config),
            model: Model::new(),
            index: 0,
            tracks: Vec::new(),
        }
    }

    /// Events received by all watchers so far, and how many watchers were compacted.
    pub fn watch_totals(&self) -> (usize, usize) {
        let events = self.tracks.iter().map(|t| t.got.len()).sum();
        let compacted = self.tracks.iter().filter(|t| t.compacted).count();
        (events, compacted)
    }

    /// The store under test.
    pub fn store(&self) -> &KvStore {
        &self.store
    }

    fn apply(&mut self, req: Request) -> Result<ApplyResponse, KvError> {
        self.index += 1;
        let bytes = InternalRequest {
            id: self.index * 7,
            header: None,
            request: Some(req),
        }
        .encode_to_vec();
        let out = self.store.apply(self.index, &bytes[..]);
        assert_eq!(out.request_id(), self.index * 7);
        out.into_result()
    }

    /// Runs `ops`, then catches every watcher up and checks what it received.
    pub fn run(&mut self, ops: &[Op]) -> Result<(), String> {
        for (i, op) in ops.iter().enumerate() {
            self.step(op).map_err(|e| format!("op {i} {op:?}: {e}"))?;
        }
        self.finish()
    }

    fn step(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Put {
                key: k,
                value: v,
                prev_kv,
            } => self.put(*k, *v, *prev_kv),
            Op::Delete {
                key: k,
                end,
                prev_kv,
            } => self.delete(*k, *end, *prev_kv),
            Op::Range {
                key,
                end,
                rev_back,
                limit,
                keys_only,
                count_only,
            } => {
                let rev = match *rev_back {
                    0 => 0,
                    255 => self.model.current() + 1,
                    b => self.model.current() - b as i64,
                };
                let (k, e) = key_range(*key, *end);
                let req = RangeRequest {
                    key: k,
                    range_end: e,
                    revision: rev,
                    limit: *limit as i64,
                    keys_only: *keys_only,
                    count_only: *count_only,
                    ..RangeRequest::default()
                };
                let want = self.model_range(&req, self.model.current(), None);
                let got = match self.apply(Request::Range(req.clone())) {
                    Ok(ApplyResponse::Range(r)) => Ok(r),
                    Ok(other) => return Err(format!("range answered {other:?}")),
                    Err(e) => Err(e),
                };
                check!(got == want, "range {req:?}: got {got:?}, want {want:?}");
                check!(self.store.range(&req) == want, "direct range differs");
                Ok(())
            }
            Op::Txn {
                key,
                end,
                target,
                result,
                value: v,
                success,
                failure,
            } => self.txn(*key, *end, *target, *result, *v, success, failure),
            Op::Compact { rev_back } => {
                let rev = self.model.current() - *rev_back as i64;
                let want = self.model.compact(rev);
                let got = self.apply(Request::Compaction(CompactionRequest {
                    revision: rev,
                    physical: false,
                }));
                check!(
                    got.is_ok() == want.is_ok(),
                    "compact {rev}: got {got:?}, want {want:?}"
                );
                if let (Err(g), Err(w)) = (&got, &want) {
                    check!(g == w, "compact error {g:?} != {w:?}");
                }
                Ok(())
            }
            Op::CompactStep { budget_keys } => {
                let _ = self.store.compact_step(*budget_keys as usize % 4 + 1);
                Ok(())
            }
            Op::Watch {
                key,
                end,
                start_back,
                prev_kv,
                filter,
            } => self.watch(*key, *end, *start_back, *prev_kv, *filter),
            Op::Drain => self.drain(),
            Op::Sync { budget } => {
                let _ = self.store.sync_watchers_step(*budget as usize * 4 + 1);
                Ok(())
            }
            Op::SnapshotRoundTrip => self.round_trip(),
            Op::LeaseGrant { lease, ttl } => self.lease_grant(lease_id(*lease), i64::from(*ttl)),
            Op::LeaseRevoke { lease } => self.lease_revoke(lease_id(*lease)),
            Op::LeaseRenew { lease } => self.lease_renew(lease_id(*lease)),
            Op::PutWithLease {
                key: k,
                value: v,
                lease,
            } => self.put_with_lease(*k, *v, lease_id(*lease)),
            Op::Garbage(bytes) => {
                // Bytes that decode to a real write would change the state behind the model's
                // back: those are skipped; everything else must leave the data untouched.
                if let Ok(InternalRequest {
                    request: Some(r), ..
                }) = InternalRequest::decode(bytes.as_slice())
                {
                    if !matches!(r, Request::Range(_)) {
                        return Ok(());
                    }
                }
                let before = self.store.hash();
                let applied = self.store.applied_index();
                self.index += 1;
                let out = self.store.apply(self.index, bytes.as_slice());
                if matches!(out.result(), Err(KvError::Decode(_))) {
                    check!(
                        self.store.hash() == before,
                        "undecodable entry changed the state"
                    );
                    check!(
                        self.store.applied_index() == applied,
                        "undecodable entry moved the index"
                    );
                    self.index -= 1;
                }
                check!(
                    self.store.revision() == self.model.current(),
                    "garbage {bytes:?} wrote"
                );
                Ok(())
            }
        }
    }

    fn put(&mut self, k: u8, v: u8, prev_kv: bool) -> Result<(), String> {
        let req = PutRequest {
            key: key(k),
            value: value(v),
            prev_kv,
            ..PutRequest::default()
        };
        let mut w = self.model.begin();
        let prev = w.put(&req.key, &req.value);
        let rev = self.model.commit(w);
        let want = PutResponse {
            header: hdr(rev),
            prev_kv: if prev_kv { prev } else { None },
        };
        let got = self.apply(Request::Put(req));
        check!(
            got == Ok(ApplyResponse::Put(want.clone())),
            "put: got {got:?}, want {want:?}"
        );
        Ok(())
    }

    fn lease_grant(&mut self, id: i64, ttl: i64) -> Result<(), String> {
        let ttl_secs_min = self.store.config().lease_ttl_secs_min();
        let want = self
            .model
            .lease_grant(id, ttl, ttl_secs_min)
            .map(|granted| {
                ApplyResponse::LeaseGrant(LeaseGrantResponse {
                    header: hdr(self.model.current()),
                    id,
                    ttl: granted,
                    error: String::new(),
                })
            });
        let got = self.apply(Request::LeaseGrant(LeaseGrantRequest { ttl, id }));
        check!(got == want, "lease grant {id}: got {got:?}, want {want:?}");
        self.check_leases()
    }

    fn lease_revoke(&mut self, id: i64) -> Result<(), String> {
        let want = self
            .model
            .lease_revoke(id)
            .map(|rev| ApplyResponse::LeaseRevoke(LeaseRevokeResponse { header: hdr(rev) }));
        let got = self.apply(Request::LeaseRevoke(LeaseRevokeRequest { id }));
        check!(got == want, "lease revoke {id}: got {got:?}, want {want:?}");
        self.check_leases()
    }

    fn lease_renew(&mut self, id: i64) -> Result<(), String> {
        let want = match self.model.lease_ttl(id) {
            Some(ttl) => Ok(ApplyResponse::LeaseRenew(LeaseKeepAliveResponse {
                header: hdr(self.model.current()),
                id,
                ttl,
            })),
            None => Err(KvError::LeaseNotFound),
        };
        let got = self.apply(Request::LeaseRenew(LeaseKeepAliveRequest { id }));
        check!(got == want, "lease renew {id}: got {got:?}, want {want:?}");
        self.check_leases()
    }

    fn put_with_lease(&mut self, k: u8, v: u8, lease: i64) -> Result<(), String> {
        let req = PutRequest {
            key: key(k),
            value: value(v),
            lease,
            ..PutRequest::default()
        };
        let want = if self.model.lease_ttl(lease).is_some() {
            let mut w = self.model.begin();
            w.put_with_lease(&req.key, &req.value, lease);
            let rev = self.model.commit(w);
            Ok(ApplyResponse::Put(PutResponse {
                header: hdr(rev),
                prev_kv: None,
            }))
        } else {
            Err(KvError::LeaseNotFound)
        };
        let got = self.apply(Request::Put(req));
        check!(
            got == want,
            "put with lease {lease}: got {got:?}, want {want:?}"
        );
        self.check_leases()
    }

    /// The store's leases and each one's keys are the model's.
    fn check_leases(&mut self) -> Result<(), String> {
        let ids: Vec<i64> = self
            .store
            .lease_leases()
            .leases
            .iter()
            .map(|l| l.id)
            .collect();
        check!(
            ids == self.model.lease_ids(),
            "leases {ids:?}, want {:?}",
            self.model.lease_ids()
        );
        for slot in 0..LEASE_SLOTS {
            let id = lease_id(slot);
            let ttl = self
                .store
                .lease_time_to_live(&LeaseTimeToLiveRequest { id, keys: true }, 0);
            match self.model.lease_ttl(id) {
                Some(granted) => {
                    check!(
                        ttl.granted_ttl == granted,
                        "lease {id}: granted TTL {}, want {granted}",
                        ttl.granted_ttl
                    );
                    let want = self.model.lease_keys(id);
                    check!(
                        ttl.keys == want,
                        "lease {id}: keys {:?}, want {want:?}",
                        ttl.keys
                    );
                }
                None => check!(ttl.ttl == -1, "lease {id} revoked but answers {ttl:?}"),
            }
        }
        Ok(())
    }

    fn delete(&mut self, k: u8, end: EndKind, prev_kv: bool) -> Result<(), String> {
        let (key, range_end) = key_range(k, end);
        let mut w = self.model.begin();
        let deleted = w.delete(&ModelRange::from_wire(&key, &range_end));
        let rev = self.model.commit(w);
        let want = DeleteRangeResponse {
            header: hdr(rev),
            deleted: deleted.len() as i64,
            prev_kvs: if prev_kv { deleted } else { Vec::new() },
        };
        let got = self.apply(Request::DeleteRange(DeleteRangeRequest {
            key,
            range_end,
            prev_kv,
        }));
        check!(
            got == Ok(ApplyResponse::DeleteRange(want.clone())),
            "delete: got {got:?}, want {want:?}"
        );
        Ok(())
    }

    /// The model's answer to a range; `inside` reads a txn's working map.
    fn model_range(
        &self,
        req: &RangeRequest,
        view: i64,
        inside: Option<&ModelWrite>,
    ) -> Result<RangeResponse, KvError> {
        let range = ModelRange::from_wire(&req.key, &req.range_end);
        let mut kvs = match inside {
            Some(w) => w
                .map()
                .values()
                .filter(|kv| range.contains(&kv.key))
                .cloned()
                .collect(),
            None => {
                if req.revision > view {
                    return Err(KvError::FutureRevision);
                }
                let rev = self.model.resolve(req.revision)?;
                self.model.range(&range, rev)
            }
        };
        let count = kvs.len() as i64;
        let mut more = false;
        if req.count_only {
            kvs.clear();
        } else if req.limit > 0 && kvs.len() as i64 > req.limit {
            kvs.truncate(req.limit as usize);
            more = true;
        }
        if req.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value = Bytes::new());
        }
        Ok(RangeResponse {
            header: hdr(view),
            kvs,
            more,
            count,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn txn(
        &mut self,
        k: u8,
        end: EndKind,
        target: u8,
        result: u8,
        v: u8,
        success: &[TxnOp],
        failure: &[TxnOp],
    ) -> Result<(), String> {
        let (ck, ce) = key_range(k, end);
        let (target, union) = match target {
            0 => (
                CompareTarget::Version,
                compare::TargetUnion::Version(v as i64 % 4),
            ),
            1 => (
                CompareTarget::Create,
                compare::TargetUnion::CreateRevision(v as i64 % 8),
            ),
            2 => (
                CompareTarget::Mod,
                compare::TargetUnion::ModRevision(v as i64 % 8),
            ),
            _ => (
                CompareTarget::Value,
                compare::TargetUnion::Value(value(v % 4)),
            ),
        };
        let result = [
            CompareResult::Equal,
            CompareResult::NotEqual,
            CompareResult::Greater,
            CompareResult::Less,
        ][result as usize % 4];
        let cmp = Compare {
            result: result as i32,
            target: target as i32,
            key: ck.clone(),
            range_end: ce.clone(),
            target_union: Some(union.clone()),
        };
        let to_ops = |ops: &[TxnOp]| -> Vec<RequestOp> {
            ops.iter()
                .map(|op| RequestOp {
                    request: Some(match op {
                        TxnOp::Put { key: k, value: v } => OpReq::RequestPut(PutRequest {
                            key: key(*k),
                            value: value(*v),
                            prev_kv: true,
                            ..PutRequest::default()
                        }),
                        TxnOp::Delete { key: k, end } => {
                            let (key, range_end) = key_range(*k, *end);
                            OpReq::RequestDeleteRange(DeleteRangeRequest {
                                key,
                                range_end,
                                prev_kv: true,
                            })
                        }
                        TxnOp::Range { key: k, end } => {
                            let (key, range_end) = key_range(*k, *end);
                            OpReq::RequestRange(RangeRequest {
                                key,
                                range_end,
                                ..RangeRequest::default()
                            })
                        }
                    }),
                })
                .collect()
        };
        let req = TxnRequest {
            compare: vec![cmp.clone()],
            success: to_ops(success),
            failure: to_ops(failure),
        };

        // The model's answer.
        let cur = self.model.current();
        let range = ModelRange::from_wire(&ck, &ce);
        let kvs = self.model.range(&range, cur);
        let holds = |kv: &KeyValue| {
            let ord = match &union {
                compare::TargetUnion::Version(x) => kv.version.cmp(x),
                compare::TargetUnion::CreateRevision(x) => kv.create_revision.cmp(x),
                compare::TargetUnion::ModRevision(x) => kv.mod_revision.cmp(x),
                compare::TargetUnion::Value(x) => kv.value.cmp(x),
                compare::TargetUnion::Lease(x) => kv.lease.cmp(x),
            };
            match result {
                CompareResult::Equal => ord.is_eq(),
                CompareResult::NotEqual => ord.is_ne(),
                CompareResult::Greater => ord.is_gt(),
                CompareResult::Less => ord.is_lt(),
            }
        };
        let ok = if kvs.is_empty() {
            target != CompareTarget::Value && holds(&KeyValue::default())
        } else {
            kvs.iter().all(holds)
        };
        let want = if duplicate(success) || duplicate(failure) {
            Err(KvError::DuplicateKey)
        } else {
            let branch = if ok { success } else { failure };
            let mut w = self.model.begin();
            let mut responses = Vec::new();
            for (op, rop) in branch.iter().zip(to_ops(branch)) {
                let resp = match (op, rop.request.expect("built above")) {
                    (TxnOp::Put { .. }, OpReq::RequestPut(p)) => {
                        let prev = w.put(&p.key, &p.value);
                        OpResp::ResponsePut(PutResponse {
                            header: hdr(w.read_rev()),
                            prev_kv: prev,
                        })
                    }
                    (TxnOp::Delete { .. }, OpReq::RequestDeleteRange(d)) => {
                        let del = w.delete(&ModelRange::from_wire(&d.key, &d.range_end));
                        OpResp::ResponseDeleteRange(DeleteRangeResponse {
                            header: hdr(w.read_rev()),
                            deleted: del.len() as i64,
                            prev_kvs: del,
                        })
                    }
                    (_, OpReq::RequestRange(r)) => OpResp::ResponseRange(
                        self.model_range(&r, w.read_rev(), Some(&w))
                            .expect("txn reads do not fail"),
                    ),
                    _ => unreachable!("built from the same op"),
                };
                responses.push(ResponseOp {
                    response: Some(resp),
                });
            }
            let rev = self.model.commit(w);
            Ok(ApplyResponse::Txn(TxnResponse {
                header: hdr(rev),
                succeeded: ok,
                responses,
            }))
        };
        let got = self.apply(Request::Txn(req));
        check!(got == want, "txn: got {got:?}, want {want:?}");
        Ok(())
    }

    fn watch(
        &mut self,
        k: u8,
        end: EndKind,
        start_back: u8,
        prev_kv: bool,
        filter: u8,
    ) -> Result<(), String> {
        let (key, range_end) = key_range(k, end);
        let start = if start_back == 0 {
            0
        } else {
            (self.model.current() + 1 - start_back as i64).max(1)
        };
        let filters = match filter {
            1 => vec![FilterType::Noput as i32],
            2 => vec![FilterType::Nodelete as i32],
            _ => Vec::new(),
        };
        let req = WatchCreateRequest {
            key: key.clone(),
            range_end: range_end.clone(),
            start_revision: start,
            prev_kv,
            filters,
            ..WatchCreateRequest::default()
        };
        let id = self.store.watch_create(&req).map_err(|e| e.to_string())?;
        self.tracks.push(Track {
            id,
            range: ModelRange::from_wire(&key, &range_end),
            start: if start == 0 {
                self.model.current() + 1
            } else {
                start
            },
            prev_kv,
            no_put: filter == 1,
            no_delete: filter == 2,
            got: Vec::new(),
            created: false,
            compacted: false,
        });
        Ok(())
    }

    fn drain(&mut self) -> Result<(), String> {
        while let Some((id, resp)) = self.store.poll_watch_event() {
            let t = self
                .tracks
                .iter_mut()
                .find(|t| t.id == id)
                .ok_or("response for an unknown watcher")?;
            check!(resp.watch_id == id.get() as i64, "watch id mismatch");
            if resp.created {
                check!(!t.created, "created twice");
                t.created = true;
                continue;
            }
            check!(t.created, "events before created");
            check!(!t.compacted, "response after compaction");
            if resp.compact_revision != 0 {
                check!(resp.canceled, "compacted response not canceled");
                t.compacted = true;
            }
            if let Some(last) = resp.events.last() {
                let rev = resp.header.as_ref().map_or(0, |h| h.revision);
                check!(
                    rev >= last.kv.as_ref().map_or(0, |kv| kv.mod_revision),
                    "header revision below its events"
                );
            }
            t.got.extend(resp.events);
        }
        Ok(())
    }

    fn round_trip(&mut self) -> Result<(), String> {
        let mut buf = Vec::new();
        self.store.snapshot(&mut buf).map_err(|e| e.to_string())?;
        let mut copy = KvStore::new(self.store.config().clone());
        copy.restore(&mut buf.as_slice())
            .map_err(|e| e.to_string())?;
        check!(
            copy.hash() == self.store.hash(),
            "hash differs after restore"
        );
        let cur = self.model.current();
        for rev in [0, self.model.compact_rev(), cur] {
            if rev < self.model.compact_rev() {
                continue;
            }
            check!(
                copy.hash_kv(rev) == self.store.hash_kv(rev),
                "hash_kv({rev}) differs after restore"
            );
        }
        let all = RangeRequest {
            key: Bytes::from_static(&[0]),
            range_end: Bytes::from_static(&[0]),
            ..RangeRequest::default()
        };
        check!(
            copy.range(&all) == self.store.range(&all),
            "range differs after restore"
        );
        // Lease attachments are rebuilt from the keys on restore: revoking any lease must do
        // the same on the restored copy as on the original.
        for lease in self.model.lease_ids() {
            let revoke = InternalRequest {
                id: 1,
                header: None,
                request: Some(Request::LeaseRevoke(LeaseRevokeRequest { id: lease })),
            }
            .encode_to_vec();
            let mut original = self.store.snapshot_copy();
            let mut restored = copy.snapshot_copy();
            let index = self.index + 1;
            let want = original.apply(index, &revoke[..]);
            let got = restored.apply(index, &revoke[..]);
            check!(
                got == want && restored.hash() == original.hash(),
                "revoking lease {lease} after restore: got {got:?}, want {want:?}"
            );
        }
        // Corrupt one byte but fix the checksum: the parser must cope without panicking.
        for i in [8usize, 20, buf.len() / 3, buf.len() * 2 / 3] {
            let mut forged = buf.clone();
            if i + 4 >= forged.len() {
                continue;
            }
            forged[i] = forged[i].wrapping_add(1 + (self.index as u8 % 200));
            let n = forged.len() - 4;
            let crc = crc32fast::hash(&forged[..n]);
            forged[n..].copy_from_slice(&crc.to_le_bytes());
            let mut s = KvStore::new(self.store.config().clone());
            let _ = s.restore(&mut forged.as_slice());
        }
        // Corrupt one byte: restore must refuse it.
        if !buf.is_empty() {
            let i = buf.len() / 2;
            buf[i] ^= 0x5a;
            let mut bad = KvStore::new(self.store.config().clone());
            check!(
                bad.restore(&mut buf.as_slice()).is_err(),
                "corrupt snapshot restored"
            );
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        for _ in 0..10_000 {
            self.drain()?;
            if !self.store.sync_watchers_step(64) {
                break;
            }
        }
        self.drain()?;
        check!(
            !self.store.has_unsynced_watchers(),
            "watchers never caught up"
        );
        while self.store.compact_step(1000) {}
        for t in &self.tracks {
            let mut want = Vec::new();
            for rev in t.start..=self.model.current() {
                for e in self.model.events_at(rev) {
                    let kv = e.kv.as_ref().expect("model events carry kvs");
                    let is_put = e.r#type == EventType::Put as i32;
                    if !t.range.contains(&kv.key)
                        || (is_put && t.no_put)
                        || (!is_put && t.no_delete)
                    {
                        continue;
                    }
                    want.push(Event {
                        r#type: e.r#type,
                        kv: e.kv.clone(),
                        prev_kv: if t.prev_kv { e.prev_kv.clone() } else { None },
                    });
                }
            }
            check!(t.created, "watcher {:?} never created", t.id);
            if t.compacted {
                check!(
                    want.starts_with(&t.got),
                    "watcher {:?} from {}: got {:?}, want a prefix of {:?}",
                    t.id,
                    t.start,
                    t.got,
                    want
                );
            } else {
                check!(
                    t.got == want,
                    "watcher {:?} from {}: got {:?}, want {:?}",
                    t.id,
                    t.start,
                    t.got,
                    want
                );
            }
        }
        // Reads at every readable revision agree with the model once compaction is physical.
        let all = RangeRequest {
            key: Bytes::from_static(&[0]),
            range_end: Bytes::from_static(&[0]),
            ..RangeRequest::default()
        };
        for rev in self.model.compact_rev().max(1)..=self.model.current() {
            let req = RangeRequest {
                revision: rev,
                ..all.clone()
            };
            let want = self.model_range(&req, self.model.current(), None);
            check!(
                self.store.range(&req) == want,
                "final range at {rev} differs"
            );
        }
        self.round_trip()
    }
}

/// The model's reading of etcd's duplicate-key rule, for flat op lists.
fn duplicate(ops: &[TxnOp]) -> bool {
    let mut puts: Vec<Bytes> = Vec::new();
    let mut dels: Vec<ModelRange> = Vec::new();
    for op in ops {
        if let TxnOp::Delete { key: k, end } = op {
            let (key, range_end) = key_range(*k, *end);
            dels.push(ModelRange::from_wire(&key, &range_end));
        }
    }
    for op in ops {
        if let TxnOp::Put { key: k, .. } = op {
            let kb = key(*k);
            if puts.contains(&kb) || dels.iter().any(|d| d.contains(&kb)) {
                return true;
            }
            puts.push(kb);
        }
    }
    false
}
