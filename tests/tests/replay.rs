//! A member restarted on a long log replays it a budget a loop turn: it answers while it
//! replays, rather than in one turn as long as the whole replay. Seen from outside through
//! `/metrics`, whose `etcd_server_proposals_applied_total` counts the entries applied since
//! the process started: a member that answers mid-replay reports a count between none and
//! all of them.

use std::time::{Duration, Instant};

mod common;

use common::{MEMBERS, connect, runtime};
use tally_tests::http::try_get;
use tally_tests::process::{Options, ProcCluster, etcdctl_available};

/// Single-key puts written before the restart: many times the apply queue's bound (20,000
/// entries) and the per-turn budget (10,000 keys), so a sliced replay takes tens of turns.
const PUTS: usize = 200_000;
/// Puts in flight while loading.
const PUTS_IN_FLIGHT: usize = 256;
/// How long the test waits for the restarted member to replay (a bound on a hang, not a speed
/// requirement).
const REPLAY_DEADLINE: Duration = Duration::from_secs(120);

/// The applied-entries counter of the member at `client_port`, or `None` while it does not
/// listen yet.
fn applied_since_start(client_port: u16) -> Option<u64> {
    let metrics = try_get(client_port, "/metrics")?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("etcd_server_proposals_applied_total "))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn a_restarted_member_answers_while_it_replays_a_long_log() {
    if !etcdctl_available() {
        return;
    }
    // No snapshot is ever due, so the restarted member replays every put from its WAL.
    let options = Options {
        snapshot_count: Some(100_000_000),
        ..Options::default()
    };
    let mut c = ProcCluster::start(MEMBERS, options);
    let leader = c
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no leader\n{}", c.logs()));
    let follower = (leader + 1) % MEMBERS;
    runtime().block_on(async {
        let client = connect(&c, leader).await;
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..PUTS_IN_FLIGHT {
            let mut client = client.clone();
            tasks.spawn(async move {
                for i in (task..PUTS).step_by(PUTS_IN_FLIGHT) {
                    client
                        .put(format!("replay/{i:06}"), "v", None)
                        .await
                        .expect("put");
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("put task");
        }
        // The follower holds every put before it is killed.
        let mut follower_client = connect(&c, follower).await;
        let options = etcd_client::GetOptions::new()
            .with_prefix()
            .with_count_only()
            .with_serializable();
        while follower_client
            .get("replay/", Some(options.clone()))
            .await
            .expect("count")
            .count()
            != PUTS as i64
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    c.kill(follower);
    c.restart(follower);
    let port = c.members[follower].client_port;
    let deadline = Instant::now() + REPLAY_DEADLINE;
    let mut seen = Vec::new();
    loop {
        if let Some(applied) = applied_since_start(port) {
            seen.push(applied);
            if applied >= PUTS as u64 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the member did not replay {PUTS} entries; it reported {:?}\n{}",
            seen.last(),
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!("applied counts the restarted member reported: {seen:?}");
    let mid_replay: Vec<u64> = seen
        .iter()
        .copied()
        .filter(|&n| n > 0 && n < PUTS as u64)
        .collect();
    assert!(
        mid_replay.len() >= 3,
        "the member answered {} times mid-replay (counts {:?}); it should answer between its \
         replay's turns",
        mid_replay.len(),
        &seen[..seen.len().min(20)]
    );
}
