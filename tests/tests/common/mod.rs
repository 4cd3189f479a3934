//! What the process tests that drive tally with another project's etcd client (the
//! `etcd-client` crate) share: a runtime for it and a connection to one member. Each test
//! binary includes this module and uses part of it.
#![allow(dead_code)]

use std::time::Duration;

use etcd_client::{Client, PutOptions, Txn, TxnOp};
use tally_tests::process::{Options, ProcCluster};

/// A single-threaded tokio runtime: etcd-client needs one, the tests need no more.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// etcd-client connected to `member` alone.
pub async fn connect(c: &ProcCluster, member: usize) -> Client {
    Client::connect([format!("http://{}", c.endpoint(member))], None)
        .await
        .expect("etcd-client connects")
}

/// Members of a [`cluster_with_leader`].
pub const MEMBERS: usize = 3;

/// etcd-client connected to each member of a [`cluster_with_leader`] alone, in member order.
pub async fn connect_each(c: &ProcCluster) -> Vec<Client> {
    let mut clients = Vec::new();
    for member in 0..MEMBERS {
        clients.push(connect(c, member).await);
    }
    clients
}

/// The Raft term each client's member is in, in the clients' order.
pub async fn raft_terms(clients: &mut [Client]) -> Vec<u64> {
    let mut terms = Vec::new();
    for client in clients {
        terms.push(client.status().await.expect("status").raft_term());
    }
    terms
}

/// A 3-member cluster with default flags, and its leader.
pub fn cluster_with_leader() -> (ProcCluster, usize) {
    let mut c = ProcCluster::start(MEMBERS, Options::default());
    let leader = c
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no leader\n{}", c.logs()));
    (c, leader)
}

/// Puts per loading txn (etcd's default `--max-txn-ops`).
const PUTS_PER_TXN: usize = 128;
/// Loading txns in flight at once.
const LOAD_TXNS_IN_FLIGHT: usize = 16;

/// Writes keys `key_of(0..keys)`, each with the value "v" and attached to `lease` (none when
/// 0), through `member` in txns of [`PUTS_PER_TXN`] puts, [`LOAD_TXNS_IN_FLIGHT`] at a time.
pub async fn load_in_txns(
    c: &ProcCluster,
    member: usize,
    keys: usize,
    key_of: fn(usize) -> String,
    lease: i64,
) {
    let shared = connect(c, member).await;
    let mut tasks = tokio::task::JoinSet::new();
    for start in (0..keys).step_by(PUTS_PER_TXN) {
        if tasks.len() >= LOAD_TXNS_IN_FLIGHT {
            tasks.join_next().await.expect("a task").expect("load txn");
        }
        let mut client = shared.clone();
        tasks.spawn(async move {
            let end = (start + PUTS_PER_TXN).min(keys);
            let puts = (start..end)
                .map(|i| {
                    let options = (lease != 0).then(|| PutOptions::new().with_lease(lease));
                    TxnOp::put(key_of(i), "v", options)
                })
                .collect::<Vec<_>>();
            let response = client.txn(Txn::new().and_then(puts)).await.expect("txn");
            assert!(response.succeeded());
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("load txn");
    }
}
