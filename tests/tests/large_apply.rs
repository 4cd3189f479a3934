//! A range of many keys inside a txn, a DeleteRange of a large prefix, alone or inside a txn,
//! and the revoke of a lease holding many keys, are applied over many loop turns, and no reader
//! sees one half done: a serializable count on any member is always a count between whole
//! deletes, never one in between, and the members' term does not move (the large applies cause
//! no election). Driven by another project's client library (the `etcd-client` crate).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;

use common::{cluster_with_leader, connect, connect_each, load_in_txns, raft_terms, runtime};
use etcd_client::{Client, DeleteOptions, GetOptions, Txn, TxnOp};
use tally_tests::http::get as http_get;
use tally_tests::process::etcdctl_available;

/// Keys under each part of the prefix: many times the server's per-turn apply budget (10 000
/// keys), small enough to load in seconds.
const KEYS_PER_PART: usize = 100_000;
const KEYS: usize = 3 * KEYS_PER_PART;
const PREFIX: &str = "big/";
/// The parts deleted in turn: `big/a` by a DeleteRange, `big/b` by a txn, then `big/c`, whose
/// keys are all attached to one lease, by revoking the lease.
const PARTS: [&str; 3] = ["big/a", "big/b", "big/c"];
/// How long a reader keeps reading, waiting for its member to apply the delete, before the
/// test gives up on it (a bound on a hang, not a speed requirement).
const READ_DEADLINE: Duration = Duration::from_secs(120);

/// The `i`th key of the first two parts: alternately in each.
fn key(i: usize) -> String {
    format!("{}{:06}", PARTS[i % 2], i / 2)
}

/// The `i`th key of the lease's part.
fn lease_key(i: usize) -> String {
    format!("{}{i:06}", PARTS[2])
}

/// How many entries the member at `client_port` applied over several loop turns.
fn entries_split(client_port: u16) -> u64 {
    let metrics = http_get(client_port, "/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("tally_apply_entries_split_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no tally_apply_entries_split_total in\n{metrics}"))
}

async fn count(client: &mut Client) -> i64 {
    let options = GetOptions::new()
        .with_prefix()
        .with_count_only()
        .with_serializable();
    client
        .get(PREFIX, Some(options))
        .await
        .expect("serializable count")
        .count()
}

/// Counts the prefix on one member until it reads zero after `deleted` is set (every part
/// is deleted), or the deadline passes; returns every count read. `ready` is set after the
/// first read.
async fn read_counts(
    mut client: Client,
    ready: Arc<AtomicBool>,
    deleted: Arc<AtomicBool>,
) -> Vec<i64> {
    let deadline = tokio::time::Instant::now() + READ_DEADLINE;
    let mut counts = Vec::new();
    loop {
        let seen = count(&mut client).await;
        counts.push(seen);
        ready.store(true, Ordering::SeqCst);
        if (seen == 0 && deleted.load(Ordering::SeqCst)) || tokio::time::Instant::now() > deadline {
            return counts;
        }
        tokio::task::yield_now().await;
    }
}

#[test]
fn readers_see_large_prefix_deletes_whole_or_not_at_all() {
    if !etcdctl_available() {
        return;
    }
    let (c, leader) = cluster_with_leader();
    runtime().block_on(async {
        load_in_txns(&c, leader, 2 * KEYS_PER_PART, key, 0).await;
        let mut client = connect(&c, leader).await;
        let lease = client
            .lease_grant(3600, None)
            .await
            .expect("grant the lease")
            .id();
        load_in_txns(&c, leader, KEYS_PER_PART, lease_key, lease).await;
        let mut clients = connect_each(&c).await;
        // Every member has applied the whole load before the delete.
        for client in &mut clients {
            while count(client).await != KEYS as i64 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let terms_before = raft_terms(&mut clients).await;
        let split_before: Vec<u64> = c
            .members
            .iter()
            .map(|m| entries_split(m.client_port))
            .collect();

        let deleted = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        let mut ready = Vec::new();
        for client in clients.iter().cloned() {
            let flag = Arc::new(AtomicBool::new(false));
            ready.push(Arc::clone(&flag));
            readers.push(tokio::spawn(read_counts(
                client,
                flag,
                Arc::clone(&deleted),
            )));
        }
        while !ready.iter().all(|r| r.load(Ordering::SeqCst)) {
            tokio::task::yield_now().await;
        }
        let read_in_txn = Txn::new().and_then([
            TxnOp::get(
                PARTS[0],
                Some(GetOptions::new().with_prefix().with_keys_only()),
            ),
            TxnOp::put("after-the-read", "v", None),
        ]);
        let response = client.txn(read_in_txn).await.expect("read a part in a txn");
        match response.op_responses().first() {
            Some(etcd_client::TxnOpResponse::Get(g)) => {
                assert_eq!(g.count(), KEYS_PER_PART as i64);
                assert_eq!(g.kvs().len(), KEYS_PER_PART);
                assert_eq!(g.kvs()[7].key_str().expect("utf-8"), key(14));
            }
            other => panic!("the txn's first answer is its range's: {other:?}"),
        }
        let response = client
            .delete(PARTS[0], Some(DeleteOptions::new().with_prefix()))
            .await
            .expect("delete the first half");
        assert_eq!(response.deleted(), KEYS_PER_PART as i64);
        let in_txn = Txn::new().and_then([
            TxnOp::delete(PARTS[1], Some(DeleteOptions::new().with_prefix())),
            TxnOp::put("after-the-delete", "v", None),
        ]);
        let response = client.txn(in_txn).await.expect("delete the second half");
        match response.op_responses().first() {
            Some(etcd_client::TxnOpResponse::Delete(d)) => {
                assert_eq!(d.deleted(), KEYS_PER_PART as i64)
            }
            other => panic!("the txn's first answer is its delete's: {other:?}"),
        }
        client.lease_revoke(lease).await.expect("revoke the lease");
        deleted.store(true, Ordering::SeqCst);

        for (member, reader) in readers.into_iter().enumerate() {
            let counts = reader.await.expect("reader");
            let part = KEYS_PER_PART as i64;
            let whole = [3 * part, 2 * part, part, 0];
            let partial: Vec<i64> = counts
                .iter()
                .copied()
                .filter(|n| !whole.contains(n))
                .collect();
            assert!(
                partial.is_empty(),
                "member {member} read a half-applied delete: {} of {} counts were partial, \
                 e.g. {:?}",
                partial.len(),
                counts.len(),
                &partial[..partial.len().min(5)]
            );
            assert_eq!(
                counts.last(),
                Some(&0),
                "member {member} applied the deletes"
            );
            assert!(
                counts.windows(2).all(|w| w[0] >= w[1]),
                "member {member}: keys came back after a delete"
            );
        }
        for (member, before) in split_before.into_iter().enumerate() {
            let split = entries_split(c.members[member].client_port) - before;
            assert_eq!(
                split, 4,
                "member {member}: the txn's range, the delete, the txn's delete and the revoke \
                 each take several turns"
            );
        }
        assert_eq!(
            raft_terms(&mut clients).await,
            terms_before,
            "a member's term moved during the deletes (an election)"
        );
    });
    // For whoever runs it with --nocapture: how long the loop's turns got (not asserted).
    for line in c
        .logs()
        .lines()
        .filter(|l| l.contains("slow loop turn") || l.contains("on the loop thread"))
    {
        eprintln!("{line}");
    }
}
