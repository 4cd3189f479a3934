//! Range requests: etcd's applier semantics for limit, revision, sort, filters, keys_only and
//! count_only.

use std::cmp::Ordering;

use super::revision::RangeEnd;
use super::store::Mvcc;
use crate::error::KvError;
use crate::proto::{KeyValue, RangeRequest, RangeResponse, ResponseHeader, SortOrder, SortTarget};

/// Checks what etcd's gRPC layer checks before a range reaches the store.
pub(crate) fn validate(req: &RangeRequest) -> Result<(), KvError> {
    if req.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    if SortOrder::try_from(req.sort_order).is_err()
        || SortTarget::try_from(req.sort_target).is_err()
    {
        return Err(KvError::InvalidSortOption);
    }
    Ok(())
}

/// The revision a range at `requested` reads when the store's view is at `view_rev`.
pub(crate) fn resolve_rev(mvcc: &Mvcc, requested: i64, view_rev: i64) -> Result<i64, KvError> {
    if requested > view_rev {
        return Err(KvError::FutureRevision);
    }
    let rev = if requested <= 0 { view_rev } else { requested };
    if rev < mvcc.compact_rev {
        return Err(KvError::Compacted);
    }
    Ok(rev)
}

/// Serves `req` against the store as seen at `view_rev` (the current revision, or a txn's own
/// view). The header carries only the revision; the caller fills in cluster, member and term.
pub(crate) fn range(
    mvcc: &Mvcc,
    req: &RangeRequest,
    view_rev: i64,
) -> Result<RangeResponse, KvError> {
    validate(req)?;
    let rev = resolve_rev(mvcc, req.revision, view_rev)?;
    let end = RangeEnd::from_wire(&req.range_end);
    let header = Some(ResponseHeader {
        revision: view_rev,
        ..ResponseHeader::default()
    });

    if req.count_only {
        let mut count = 0i64;
        mvcc.visit_range(&req.key, &end, rev, |_, _| {
            count += 1;
            true
        });
        return Ok(RangeResponse {
            header,
            kvs: Vec::new(),
            more: false,
            count,
        });
    }

    let order = SortOrder::try_from(req.sort_order).unwrap_or(SortOrder::None);
    let target = SortTarget::try_from(req.sort_target).unwrap_or(SortTarget::Key);
    let filtered = req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    // Like etcd: fetch everything when sorting or filtering, else one past the limit for `more`.
    let fetch_max = if order != SortOrder::None || filtered || req.limit <= 0 {
        usize::MAX
    } else {
        usize::try_from(req.limit)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
    };

    // Values are dropped while collecting unless the sort needs them.
    let strip_early = req.keys_only && target != SortTarget::Value;
    let mut count = 0i64;
    let mut kvs = Vec::new();
    mvcc.visit_range(&req.key, &end, rev, |_, r| {
        count += 1;
        if kvs.len() < fetch_max {
            let rec = mvcc.record(r);
            if !filtered || passes_filters(req, &rec) {
                kvs.push(if strip_early {
                    KeyValue {
                        value: bytes::Bytes::new(),
                        ..rec
                    }
                } else {
                    rec
                });
            }
        }
        true
    });

    sort(&mut kvs, order, target);
    if req.keys_only && !strip_early {
        kvs.iter_mut().for_each(|kv| kv.value = bytes::Bytes::new());
    }
    let mut more = false;
    if req.limit > 0 && kvs.len() as u64 > req.limit as u64 {
        kvs.truncate(req.limit as usize);
        more = true;
    }
    Ok(RangeResponse {
        header,
        kvs,
        more,
        count,
    })
}

/// Whether `kv` passes the request's revision filters (all pass when it has none).
pub(crate) fn passes_filters(req: &RangeRequest, kv: &KeyValue) -> bool {
    !(req.max_mod_revision != 0 && kv.mod_revision > req.max_mod_revision
        || req.min_mod_revision != 0 && kv.mod_revision < req.min_mod_revision
        || req.max_create_revision != 0 && kv.create_revision > req.max_create_revision
        || req.min_create_revision != 0 && kv.create_revision < req.min_create_revision)
}

/// Sorts records gathered in key order as the request asks; ties keep key order.
pub(crate) fn sort(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    // Stable sorts: ties stay in key order, so every replica answers alike.
    if let Some(cmp) = sort_order(order, target) {
        kvs.sort_by(cmp);
    }
}

/// The order a range sorts its records in: `None` when key order (the index's) is that order.
pub(crate) fn sort_order(
    order: SortOrder,
    target: SortTarget,
) -> Option<impl Fn(&KeyValue, &KeyValue) -> Ordering + Copy> {
    let descending = match (order, target) {
        // The index yields key order already.
        (SortOrder::Ascend | SortOrder::None, SortTarget::Key) => return None,
        (SortOrder::None | SortOrder::Ascend, _) => false,
        (SortOrder::Descend, _) => true,
    };
    let cmp = move |a: &KeyValue, b: &KeyValue| -> Ordering {
        let ascending = match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        };
        if descending {
            ascending.reverse()
        } else {
            ascending
        }
    };
    Some(cmp)
}
