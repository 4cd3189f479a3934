//! The recipes' requests against the store itself: what the lock and election transactions
//! do, and what a waiter waits on.

use bytes::Bytes;
use prost::Message as _;
use tally_kvstore::proto::{
    InternalRequest, LeaseGrantRequest, internal_request::Request, response_op::Response,
};
use tally_kvstore::{ApplyResponse, KvConfig, KvStore};

use super::lock::first_kv_create_revision;
use super::requests::{self, blocking, current, current_leader, key_of, prefix_of};

struct Store {
    kv: KvStore,
    index: u64,
}

impl Store {
    fn new() -> Self {
        Store {
            kv: KvStore::new(KvConfig::default()),
            index: 0,
        }
    }

    fn apply(&mut self, request: Request) -> ApplyResponse {
        self.index += 1;
        let entry = InternalRequest {
            id: self.index,
            header: None,
            request: Some(request),
        };
        self.kv
            .apply(self.index, &entry.encode_to_vec()[..])
            .into_result()
            .expect("applies")
    }

    fn lease(&mut self, id: i64) {
        self.apply(Request::LeaseGrant(LeaseGrantRequest { ttl: 60, id }));
    }

    fn lock(&mut self, name: &[u8], lease: i64) -> tally_kvstore::proto::TxnResponse {
        let prefix = prefix_of(name);
        let key = key_of(&prefix, lease);
        match self.apply(Request::Txn(requests::lock(&key, &prefix, lease))) {
            ApplyResponse::Txn(txn) => txn,
            other => panic!("a transaction's answer, not {other:?}"),
        }
    }
}

#[test]
fn keys_and_ranges_are_etcds() {
    assert_eq!(&prefix_of(b"jobs")[..], b"jobs/");
    assert_eq!(
        &key_of(b"jobs/", 0x694d_7b2c_1a3f)[..],
        b"jobs/694d7b2c1a3f"
    );
    assert_eq!(&tally_kvstore::prefix_range_end(b"jobs/")[..], b"jobs0");
    assert_eq!(&tally_kvstore::prefix_range_end(b"a\xff")[..], b"b");
    assert_eq!(
        &tally_kvstore::prefix_range_end(b"\xff\xff")[..],
        b"\0",
        "to the end of the keyspace"
    );
}

#[test]
fn the_first_lock_holds_and_the_next_waits_on_it() {
    let mut store = Store::new();
    store.lease(1);
    store.lease(2);
    store.lease(3);
    let first = store.lock(b"jobs", 1);
    assert!(first.succeeded);
    let own = first.header.as_ref().expect("header").revision;
    assert_eq!(
        first_kv_create_revision(&first, 1),
        own,
        "the holder is itself"
    );

    let second = store.lock(b"jobs", 2);
    let own_second = second.header.as_ref().expect("header").revision;
    assert_eq!(
        first_kv_create_revision(&second, 1),
        own,
        "the owner query names the first holder"
    );
    let third = store.lock(b"jobs", 3);
    let own_third = third.header.as_ref().expect("header").revision;

    let prefix = prefix_of(b"jobs");
    let waits_on = |kv: &KvStore, own: i64| blocking(kv, &prefix, own - 1).expect("range");
    // Each waiter waits on the key created just before its own, not on the holder.
    assert_eq!(
        waits_on(&store.kv, own_third).map(|kv| kv.key),
        Some(key_of(&prefix, 2))
    );
    assert_eq!(
        waits_on(&store.kv, own_second).map(|kv| kv.key),
        Some(key_of(&prefix, 1))
    );
    store.apply(Request::DeleteRange(requests::delete(&key_of(&prefix, 1))));
    assert_eq!(
        waits_on(&store.kv, own_second),
        None,
        "the second holds it now"
    );
    assert_eq!(
        current_leader(&store.kv, &prefix)
            .expect("range")
            .map(|kv| kv.key),
        Some(key_of(&prefix, 2))
    );
}

#[test]
fn locking_again_with_the_same_lease_finds_its_own_key() {
    let mut store = Store::new();
    store.lease(7);
    let first = store.lock(b"jobs", 7);
    let again = store.lock(b"jobs", 7);
    assert!(
        !again.succeeded,
        "the key exists: the failure branch reads it"
    );
    assert_eq!(
        first_kv_create_revision(&again, 0),
        first.header.as_ref().expect("header").revision
    );
    let Some(Response::ResponseRange(owner)) = &again.responses[1].response else {
        panic!("the owner query");
    };
    assert_eq!(owner.kvs.len(), 1);
}

#[test]
fn a_proclamation_needs_the_leaderships_revision_and_resigning_deletes_it() {
    let mut store = Store::new();
    store.lease(5);
    let prefix = prefix_of(b"president");
    let key = key_of(&prefix, 5);
    let ApplyResponse::Txn(won) = store.apply(Request::Txn(requests::campaign(
        &key,
        Bytes::from_static(b"alice"),
        5,
    ))) else {
        panic!("a transaction");
    };
    let revision = won.header.expect("header").revision;
    let proclaim = |revision| {
        Request::Txn(requests::proclaim(
            &key,
            revision,
            Bytes::from_static(b"alice 2"),
            5,
        ))
    };
    let ApplyResponse::Txn(stale) = store.apply(proclaim(revision + 100)) else {
        panic!("a transaction");
    };
    assert!(!stale.succeeded, "another leadership's revision");
    let ApplyResponse::Txn(ok) = store.apply(proclaim(revision)) else {
        panic!("a transaction");
    };
    assert!(ok.succeeded);
    let pair = current(&store.kv, &key).expect("range").expect("the key");
    assert_eq!(
        (&pair.value[..], pair.create_revision),
        (&b"alice 2"[..], revision)
    );
    store.apply(Request::Txn(requests::resign(&key, revision)));
    assert_eq!(current(&store.kv, &key).expect("range"), None);
}
