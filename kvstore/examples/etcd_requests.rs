//! etcd's MVCC semantics without a server: etcd requests applied to a [`KvStore`] directly.
//!
//! ```sh
//! cargo run -p tally-kvstore --example etcd_requests
//! ```
//!
//! A replicated runtime encodes each write as an [`InternalRequest`], puts it in a log entry,
//! and calls [`KvStore::apply`] with the entry's index on every replica once it is committed;
//! that is what [`Log::write`] does here, with a plain counter for the index. Reads call
//! [`KvStore::range`] directly. The store reads no clock: lease time is passed in.

use bytes::Bytes;
use prost::Message;
use tally_kvstore::proto::{
    self, Compare, CompareResult, CompareTarget, DeleteRangeRequest, EventType, InternalRequest,
    KeyValue, LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest, WatchCreateRequest, compare, internal_request::Request, request_op,
};
use tally_kvstore::{ApplyResponse, KvConfig, KvError, KvStore, prefix_range_end};

fn main() {
    let mut log = Log {
        store: KvStore::new(KvConfig::default()),
        index: 0,
    };

    // A watcher on the prefix "/config/", with each event's previous value.
    let watch = log
        .store
        .watch_create(&WatchCreateRequest {
            key: b("/config/"),
            range_end: prefix_range_end(b"/config/"),
            prev_kv: true,
            ..Default::default()
        })
        .expect("a watcher");
    println!("watching /config/ as watcher {}", watch.get());

    // Puts: every write makes a new revision; a key's version counts its writes.
    for (key, value) in [
        ("/config/color", "blue"),
        ("/config/size", "10"),
        ("/other", "x"),
    ] {
        log.write(Request::Put(put(key, value)));
    }
    log.write(Request::Put(put("/config/color", "green")));
    print_range(&log.store, "/config/", 0);

    // MVCC: the prefix as it was at revision 3, before the second write of /config/color.
    print_range(&log.store, "/config/", 3);

    // A compare-and-swap as Kubernetes writes: replace /config/size only if nobody wrote it
    // since we read it (its mod_revision is still the one we saw).
    let seen = get(&log.store, "/config/size").expect("the key exists");
    for attempt in ["first", "second"] {
        let response = log.write(Request::Txn(TxnRequest {
            compare: vec![Compare {
                key: b("/config/size"),
                result: CompareResult::Equal as i32,
                target: CompareTarget::Mod as i32,
                target_union: Some(compare::TargetUnion::ModRevision(seen.mod_revision)),
                ..Default::default()
            }],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(put("/config/size", "20"))),
            }],
            failure: Vec::new(),
        }));
        if let ApplyResponse::Txn(txn) = response {
            println!(
                "txn ({attempt} try): compare mod_revision == {} -> succeeded: {}",
                seen.mod_revision, txn.succeeded
            );
        }
    }

    // A lease: keys attached to it go when it is revoked. Only the primary (the Raft leader's
    // store) tracks expiry, on the time the runtime gives it.
    let now_ms = 1_000;
    log.store.set_now_ms(now_ms);
    log.store.promote(now_ms, 0);
    let lease = match log.write(Request::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 0 })) {
        ApplyResponse::LeaseGrant(grant) => grant.id,
        other => panic!("lease grant failed: {other:?}"),
    };
    println!("granted lease {lease:x} with a TTL of 5 s");
    log.write(Request::Put(PutRequest {
        lease,
        ..put("/config/session", "alive")
    }));
    for at_ms in [now_ms + 4_000, now_ms + 6_000] {
        let expired = log.store.expired_leases(at_ms, 16);
        println!("at t={} ms, expired leases: {expired:x?}", at_ms - now_ms);
        // The leader proposes a revoke for each; applying it deletes the lease's keys.
        for id in expired {
            log.write(Request::LeaseRevoke(LeaseRevokeRequest { id }));
        }
    }

    log.write(Request::DeleteRange(DeleteRangeRequest {
        key: b("/config/"),
        range_end: prefix_range_end(b"/config/"),
        prev_kv: false,
    }));

    // The watcher's events, in revision order, each with its previous value.
    while let Some((id, response)) = log.store.poll_watch_event() {
        if response.created {
            println!("watcher {}: created", id.get());
        }
        for event in &response.events {
            let kv = event.kv.clone().unwrap_or_default();
            let kind = match EventType::try_from(event.r#type) {
                Ok(EventType::Put) => "PUT",
                _ => "DELETE",
            };
            let before = event
                .prev_kv
                .as_ref()
                .map(|prev| format!(" (was {:?})", text(&prev.value)))
                .unwrap_or_default();
            println!(
                "watcher {}: {kind} {} = {:?} at revision {}{before}",
                id.get(),
                text(&kv.key),
                text(&kv.value),
                kv.mod_revision
            );
        }
    }

    // Compaction: history below the revision is dropped; reads there get etcd's error.
    let revision = log.store.revision();
    log.write(Request::Compaction(proto::CompactionRequest {
        revision,
        physical: false,
    }));
    while log.store.compact_step(1_000) {}
    match log.store.range(&RangeRequest {
        key: b("/config/"),
        range_end: prefix_range_end(b"/config/"),
        revision: 3,
        ..Default::default()
    }) {
        Err(KvError::Compacted) => println!(
            "after compacting at revision {revision}, a read at revision 3 fails: {}",
            KvError::Compacted
        ),
        other => panic!("expected a compacted-revision error, got {other:?}"),
    }

    // A snapshot restores into an identical store: the same hash on every replica.
    let mut snapshot = Vec::new();
    log.store.snapshot(&mut snapshot).expect("snapshot");
    let mut restored = KvStore::new(KvConfig::default());
    restored.restore(&mut snapshot.as_slice()).expect("restore");
    println!(
        "snapshot of {} bytes restored: hash {:08x} == {:08x}, revision {}",
        snapshot.len(),
        log.store.hash(),
        restored.hash(),
        restored.revision()
    );
    assert_eq!(log.store.hash(), restored.hash());
}

/// Stands in for a replicated log: each write becomes the next entry, applied at once.
struct Log {
    store: KvStore,
    index: u64,
}

impl Log {
    /// Applies one write as the next log entry. Every write in this example succeeds.
    fn write(&mut self, request: Request) -> ApplyResponse {
        self.index += 1;
        let entry = InternalRequest {
            id: self.index,
            header: None,
            request: Some(request),
        }
        .encode_to_vec();
        let outcome = self.store.apply(self.index, Bytes::from(entry));
        let result = outcome.into_result();
        match &result {
            Ok(ApplyResponse::Put(put)) => {
                println!(
                    "entry {}: put -> revision {}",
                    self.index,
                    revision(&put.header)
                )
            }
            Ok(ApplyResponse::Txn(txn)) => {
                println!(
                    "entry {}: txn -> revision {}",
                    self.index,
                    revision(&txn.header)
                )
            }
            Ok(ApplyResponse::DeleteRange(delete)) => println!(
                "entry {}: delete -> {} keys, revision {}",
                self.index,
                delete.deleted,
                revision(&delete.header)
            ),
            Ok(ApplyResponse::LeaseRevoke(revoke)) => println!(
                "entry {}: lease revoke -> revision {}",
                self.index,
                revision(&revoke.header)
            ),
            Ok(_) => println!("entry {}: applied", self.index),
            Err(error) => panic!("entry {}: error: {error}", self.index),
        }
        result.expect("checked above")
    }
}

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn text(bytes: &Bytes) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: b(key),
        value: b(value),
        prev_kv: true,
        ..Default::default()
    }
}

fn revision(header: &Option<proto::ResponseHeader>) -> i64 {
    header.as_ref().map_or(0, |h| h.revision)
}

fn get(store: &KvStore, key: &str) -> Option<KeyValue> {
    let response = store
        .range(&RangeRequest {
            key: b(key),
            ..Default::default()
        })
        .ok()?;
    response.kvs.into_iter().next()
}

fn print_range(store: &KvStore, prefix: &str, at_revision: i64) {
    let response = store
        .range(&RangeRequest {
            key: b(prefix),
            range_end: prefix_range_end(prefix.as_bytes()),
            revision: at_revision,
            ..Default::default()
        })
        .expect("range");
    let at = if at_revision == 0 {
        "now".to_string()
    } else {
        format!("at revision {at_revision}")
    };
    println!("range {prefix} {at}: {} keys", response.count);
    for kv in &response.kvs {
        println!(
            "  {} = {:?} (create_revision {}, mod_revision {}, version {})",
            text(&kv.key),
            text(&kv.value),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        );
    }
}
