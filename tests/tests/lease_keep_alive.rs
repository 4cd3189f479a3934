//! A lease kept alive through any member lives as long as its keep-alives come: through a
//! follower, through one long-lived stream or a new stream each time, and while leadership
//! moves. Driven by another project's client library (the `etcd-client` crate) and by etcdctl,
//! as applications and operators do.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{connect, runtime};
use etcd_client::{Client, PutOptions};
use tally_tests::process::{KillOnDrop, Options, ProcCluster, etcdctl_available};

/// The lease's TTL: keep-alives come every `TTL / 3`, as etcd's clients send them.
const TTL_SECS: i64 = 3;
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// How long the lease is held: several TTLs, so a lease that is not renewed surely expires.
const HOLD: Duration = Duration::from_secs(10);

fn start() -> Option<(ProcCluster, usize)> {
    if !etcdctl_available() {
        return None;
    }
    let mut cluster = ProcCluster::start(3, Options::default());
    let leader = cluster
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.logs()));
    Some((cluster, leader))
}

/// Grants a `TTL_SECS` lease through `client` and attaches `key` to it.
async fn grant_with_key(client: &mut Client, key: &str) -> i64 {
    let lease = client
        .lease_grant(TTL_SECS, None)
        .await
        .expect("lease grant")
        .id();
    client
        .put(key, "held", Some(PutOptions::new().with_lease(lease)))
        .await
        .expect("put with lease");
    lease
}

/// Whether `key` is there, by a linearizable read through `client`.
async fn key_present(client: &mut Client, key: &str) -> bool {
    let response = client.get(key, None).await.expect("get");
    response.kvs().len() == 1
}

/// How the keep-alives travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// One stream for the whole hold, as client libraries keep it.
    LongLived,
    /// A new stream for each keep-alive, as `etcdctl lease keep-alive --once` sends it.
    FreshEachTime,
}

/// Holds a lease with a key through member `via` for [`HOLD`], a keep-alive every second; the
/// key must be there after every keep-alive and every answered TTL must be the granted one.
/// With `move_leader` = (leader, target member id), leadership moves once, half-way through.
async fn hold_through(
    c: &ProcCluster,
    via: usize,
    stream: Stream,
    key: &str,
    move_leader: Option<(usize, u64)>,
) {
    let mut client = connect(c, via).await;
    let lease = grant_with_key(&mut client, key).await;
    let (mut keeper, mut answers) = client.lease_keep_alive(lease).await.expect("keep-alive");
    let mut move_leader = move_leader;
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < HOLD {
        tokio::time::sleep(KEEP_ALIVE_INTERVAL).await;
        if stream == Stream::FreshEachTime {
            (keeper, answers) = client.lease_keep_alive(lease).await.expect("keep-alive");
        }
        keeper.keep_alive().await.expect("send keep-alive");
        let answer = answers
            .message()
            .await
            .expect("keep-alive answer")
            .expect("the stream stays open");
        sent += 1;
        assert_eq!(
            answer.ttl(),
            TTL_SECS,
            "keep-alive {sent} through member {via} at {:?} answered TTL {}\n{}",
            started.elapsed(),
            answer.ttl(),
            c.logs()
        );
        assert!(
            key_present(&mut client, key).await,
            "the key of a kept-alive lease is gone at {:?} (keep-alive {sent})\n{}",
            started.elapsed(),
            c.logs()
        );
        if started.elapsed() >= HOLD / 2 {
            if let Some((leader, target)) = move_leader.take() {
                let mut mover = connect(c, leader).await;
                mover.move_leader(target).await.expect("move leader");
            }
        }
    }
    // And still there a TTL after the last keep-alive's half-way point.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(key_present(&mut client, key).await, "{}", c.logs());
}

#[test]
fn a_lease_kept_alive_through_a_follower_on_one_stream_keeps_its_key() {
    let Some((c, leader)) = start() else { return };
    let follower = (leader + 1) % 3;
    runtime().block_on(hold_through(
        &c,
        follower,
        Stream::LongLived,
        "lock/long-lived",
        None,
    ));
}

#[test]
fn a_lease_kept_alive_through_a_follower_a_stream_at_a_time_keeps_its_key() {
    let Some((c, leader)) = start() else { return };
    let follower = (leader + 1) % 3;
    runtime().block_on(hold_through(
        &c,
        follower,
        Stream::FreshEachTime,
        "lock/fresh",
        None,
    ));
}

/// Leadership moves to the other follower half-way: the new leader must have taken the
/// renewals the old one applied, and go on applying them.
#[test]
fn a_lease_kept_alive_through_a_follower_survives_a_leader_move() {
    let Some((c, leader)) = start() else { return };
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let other_id = c.member_id(other).expect("member id");
    runtime().block_on(hold_through(
        &c,
        follower,
        Stream::LongLived,
        "lock/moved",
        Some((leader, other_id)),
    ));
}

/// etcd's own client: `etcdctl lease keep-alive` on a follower holds the lease for the whole run
/// and never reports it expired.
#[test]
fn etcdctl_lease_keep_alive_through_a_follower_holds_the_lease() {
    let Some((c, leader)) = start() else { return };
    let follower = (leader + 1) % 3;
    let endpoint = c.endpoint(follower);
    let granted = c.ok(&endpoint, &["lease", "grant", &TTL_SECS.to_string()]);
    let lease = granted
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    c.ok(
        &endpoint,
        &["put", "--lease", &lease, "lock/etcdctl", "held"],
    );
    let mut keeper = KillOnDrop(
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .args(["lease", "keep-alive", &lease])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("etcdctl"),
    );
    let started = Instant::now();
    while started.elapsed() < HOLD {
        std::thread::sleep(Duration::from_millis(500));
        let value = c.ok(&endpoint, &["get", "--print-value-only", "lock/etcdctl"]);
        assert_eq!(
            value.trim(),
            "held",
            "the key is gone at {:?}\n{}",
            started.elapsed(),
            c.logs()
        );
    }
    let _ = keeper.0.kill();
    let _ = keeper.0.wait();
    let mut text = String::new();
    use std::io::Read as _;
    for pipe in [
        keeper
            .0
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read>),
        keeper
            .0
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read>),
    ]
    .into_iter()
    .flatten()
    {
        let mut pipe = pipe;
        pipe.read_to_string(&mut text).expect("etcdctl output");
    }
    assert!(
        text.contains(&format!("lease {lease} keepalived with TTL({TTL_SECS})")),
        "{text}"
    );
    assert!(!text.contains("expired"), "{text}");
}
