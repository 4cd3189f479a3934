//! A DeleteRange of a large prefix is applied over many loop turns, and no reader sees it half
//! done: a serializable count of the prefix on any member is the whole count or zero, never
//! in between, and the members' term does not move (the delete causes no election). Driven
//! by another project's client library (the `etcd-client` crate).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;

use common::{connect, runtime};
use etcd_client::{Client, DeleteOptions, GetOptions, Txn, TxnOp};
use tally_tests::process::{Options, ProcCluster, etcdctl_available};

/// Keys under the prefix: many times the server's per-turn apply budget (10 000 keys), small
/// enough to load in seconds.
const KEYS: usize = 200_000;
/// Puts per loading txn (etcd's default `--max-txn-ops`).
const PUTS_PER_TXN: usize = 128;
/// Loading txns in flight at once.
const LOAD_TXNS_IN_FLIGHT: usize = 16;
const PREFIX: &str = "big/";
/// How long a reader keeps reading, waiting for its member to apply the delete, before the
/// test gives up on it (a bound on a hang, not a speed requirement).
const READ_DEADLINE: Duration = Duration::from_secs(120);

async fn load(c: &ProcCluster, leader: usize) {
    let shared = connect(c, leader).await;
    let mut tasks = tokio::task::JoinSet::new();
    for start in (0..KEYS).step_by(PUTS_PER_TXN) {
        if tasks.len() >= LOAD_TXNS_IN_FLIGHT {
            tasks.join_next().await.expect("a task").expect("load txn");
        }
        let mut client = shared.clone();
        tasks.spawn(async move {
            let end = (start + PUTS_PER_TXN).min(KEYS);
            let puts = (start..end)
                .map(|i| TxnOp::put(format!("{PREFIX}{i:06}"), "v", None))
                .collect::<Vec<_>>();
            let response = client.txn(Txn::new().and_then(puts)).await.expect("txn");
            assert!(response.succeeded());
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("load txn");
    }
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

async fn term(client: &mut Client) -> u64 {
    client.status().await.expect("status").raft_term()
}

/// Counts the prefix on one member until it reads zero after `deleted` is set, or the
/// deadline passes; returns every count read. `ready` is set after the first read.
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
fn readers_see_a_large_prefix_delete_whole_or_not_at_all() {
    if !etcdctl_available() {
        return;
    }
    let mut c = ProcCluster::start(3, Options::default());
    let leader = c
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no leader\n{}", c.logs()));
    runtime().block_on(async {
        load(&c, leader).await;
        let mut clients = Vec::new();
        for member in 0..3 {
            clients.push(connect(&c, member).await);
        }
        // Every member has applied the whole load before the delete.
        for client in &mut clients {
            while count(client).await != KEYS as i64 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let mut terms_before = Vec::new();
        for client in &mut clients {
            terms_before.push(term(client).await);
        }

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
        let mut client = connect(&c, leader).await;
        let response = client
            .delete(PREFIX, Some(DeleteOptions::new().with_prefix()))
            .await
            .expect("delete the prefix");
        assert_eq!(response.deleted(), KEYS as i64);
        deleted.store(true, Ordering::SeqCst);

        for (member, reader) in readers.into_iter().enumerate() {
            let counts = reader.await.expect("reader");
            let partial: Vec<i64> = counts
                .iter()
                .copied()
                .filter(|n| *n != 0 && *n != KEYS as i64)
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
                "member {member} applied the delete"
            );
            let first_zero = counts.iter().position(|n| *n == 0).expect("a zero");
            assert!(
                counts[first_zero..].iter().all(|n| *n == 0),
                "member {member}: the keys came back after the delete: {counts:?}"
            );
        }
        for (member, client) in clients.iter_mut().enumerate() {
            assert_eq!(
                term(client).await,
                terms_before[member],
                "member {member}: the term moved during the delete (an election)"
            );
        }
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
