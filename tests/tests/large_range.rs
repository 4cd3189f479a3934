//! A range over many more keys than a member walks per loop turn is answered a slice per turn,
//! and still as one read: its answer is the store at its header's revision, whatever was
//! written between the slices, on every member, and the members' term does not move (the
//! range holds no loop long enough to cost an election). Driven by another project's client
//! library (the `etcd-client` crate).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

mod common;

use common::{cluster_with_leader, connect, connect_each, load_in_txns, raft_terms, runtime};
use etcd_client::{Client, GetOptions, GetResponse};
use tally_tests::process::etcdctl_available;

/// Keys in the range: several times the 20,000 a member walks per turn, and an answer well
/// under etcd-client's 4 MiB message limit.
const KEYS: usize = 70_000;
const PREFIX: &str = "range/";
/// Reads of the whole range per member while the writer writes.
const READS_PER_MEMBER: usize = 3;

fn key(i: usize) -> String {
    format!("{PREFIX}{i:06}")
}

/// Rewrites keys all over the range until `stop` is set; returns how many it wrote.
async fn write_until(mut client: Client, stop: Arc<AtomicBool>) -> usize {
    let mut written = 0;
    while !stop.load(Ordering::SeqCst) {
        let i = written * 7919 % KEYS;
        client
            .put(key(i), format!("rewritten {written}"), None)
            .await
            .expect("put");
        written += 1;
    }
    written
}

async fn whole_range(client: &mut Client, revision: i64) -> GetResponse {
    let mut options = GetOptions::new().with_prefix();
    if revision > 0 {
        options = options.with_revision(revision);
    }
    client.get(PREFIX, Some(options)).await.expect("range")
}

fn records(response: &GetResponse) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    response
        .kvs()
        .iter()
        .map(|kv| (kv.key().to_vec(), kv.value().to_vec(), kv.mod_revision()))
        .collect()
}

#[test]
fn a_long_range_is_one_read_at_its_revision_on_every_member() {
    if !etcdctl_available() {
        return;
    }
    let (c, leader) = cluster_with_leader();
    runtime().block_on(async {
        load_in_txns(&c, leader, KEYS, key, 0).await;
        let mut clients = connect_each(&c).await;
        let terms_before = raft_terms(&mut clients).await;

        let stop = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(write_until(connect(&c, leader).await, Arc::clone(&stop)));
        let mut answers = Vec::new();
        for _ in 0..READS_PER_MEMBER {
            for (member, client) in clients.iter_mut().enumerate() {
                answers.push((member, whole_range(client, 0).await));
            }
        }
        stop.store(true, Ordering::SeqCst);
        let written = writer.await.expect("writer");
        assert!(written > 0, "the writer wrote while the ranges were read");

        for (member, answer) in &answers {
            let revision = answer.header().expect("a header").revision();
            assert_eq!(answer.count(), KEYS as i64, "member {member}");
            let got = records(answer);
            assert_eq!(got.len(), KEYS, "member {member}: every key");
            assert!(
                got.windows(2).all(|w| w[0].0 < w[1].0),
                "member {member}: the keys in order, once each"
            );
            // The same range read again at the answer's revision: the store as it was then.
            let mut client = connect(&c, *member).await;
            let at_revision = whole_range(&mut client, revision).await;
            assert!(
                got == records(&at_revision),
                "member {member}: the answer at revision {revision} mixes in other revisions"
            );
        }
        assert_eq!(
            raft_terms(&mut clients).await,
            terms_before,
            "an election during the ranges\n{}",
            c.logs()
        );
    });
}
