//! etcd's Lock and Election services, driven by another project's client library (the
//! `etcd-client` crate calls `v3lockpb.Lock` and `v3electionpb.Election`): contention across
//! members, a holder whose lease runs out, a waiter that gives up, campaigns, proclamations,
//! observers and resignations; and their errors, compared with etcd 3.4's own.

use std::time::{Duration, Instant};

mod common;

use common::{connect, runtime};
use etcd_client::{
    Client, Error, LeaderKey, LockOptions, ProclaimOptions, PutOptions, ResignOptions,
};
use tally_tests::etcd::{EtcdMember, etcd_available};
use tally_tests::process::{Options, ProcCluster, TempDir, free_port};

/// How long a lock or campaign may take once nothing stands in its way (a few Raft rounds and
/// an expiry check, on a loaded CI machine).
const SETTLE: Duration = Duration::from_secs(10);
/// How long a waiter is watched not to finish while the lock it waits for is held.
const HELD: Duration = Duration::from_millis(800);

fn cluster() -> (ProcCluster, usize, Vec<usize>) {
    let mut cluster = ProcCluster::start(3, Options::default());
    let leader = cluster
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.logs()));
    let followers = (0..3).filter(|m| *m != leader).collect();
    (cluster, leader, followers)
}

async fn grant(client: &mut Client, ttl: i64) -> i64 {
    client
        .lease_grant(ttl, None)
        .await
        .expect("lease grant")
        .id()
}

async fn exists(client: &mut Client, key: &[u8]) -> bool {
    let response = client.get(key, None).await.expect("get");
    !response.kvs().is_empty()
}

/// Waits until `key` exists (or not, with `present` false), up to `SETTLE`.
async fn wait_for_key(client: &mut Client, key: &[u8], present: bool) -> bool {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        if exists(client, key).await == present {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The gRPC code and message of a call's error.
fn status_of<T: std::fmt::Debug>(result: Result<T, Error>) -> (i32, String) {
    match result {
        Err(Error::GRpcStatus(status)) => (status.code() as i32, status.message().to_string()),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

#[test]
fn a_lock_is_held_by_one_member_at_a_time_and_waiters_follow_in_order() {
    let (c, leader, followers) = cluster();
    runtime().block_on(async {
        let mut a = connect(&c, leader).await;
        let mut b = connect(&c, followers[0]).await;
        let mut d = connect(&c, followers[1]).await;
        let lease_a = grant(&mut a, 30).await;
        let held = a
            .lock("jobs", Some(LockOptions::new().with_lease(lease_a)))
            .await
            .expect("an uncontended lock");
        let key_a = held.key().to_vec();
        assert_eq!(key_a, format!("jobs/{lease_a:x}").into_bytes());
        assert!(
            held.header().is_some_and(|h| h.revision() > 0),
            "the header etcd sends"
        );
        // Locking again with the same lease is the same acquisition.
        let again = a
            .lock("jobs", Some(LockOptions::new().with_lease(lease_a)))
            .await
            .expect("a second lock with the holder's lease");
        assert_eq!(again.key(), &key_a[..]);

        // A waiter on a follower does not get the lock while it is held...
        let lease_b = grant(&mut b, 30).await;
        let mut waiter = Box::pin(b.lock("jobs", Some(LockOptions::new().with_lease(lease_b))));
        tokio::select! {
            got = &mut waiter => panic!("the lock was granted while held: {got:?}"),
            _ = tokio::time::sleep(HELD) => {}
        }
        // ...and its key waits in line behind the holder's.
        let key_b = format!("jobs/{lease_b:x}").into_bytes();
        assert!(wait_for_key(&mut d, &key_b, true).await, "the waiter's key");
        a.unlock(key_a.clone()).await.expect("unlock");
        let granted = tokio::time::timeout(SETTLE, waiter)
            .await
            .expect("the waiter gets the lock once it is released")
            .expect("lock");
        assert_eq!(granted.key(), &key_b[..]);
        assert!(
            !exists(&mut d, &key_a).await,
            "unlock deleted the holder's key"
        );
    });
}

#[test]
fn a_holder_whose_lease_expires_releases_the_lock() {
    let (c, leader, followers) = cluster();
    runtime().block_on(async {
        let mut holder = connect(&c, followers[0]).await;
        let mut next = connect(&c, followers[1]).await;
        let mut other = connect(&c, leader).await;
        // The holder's process dies: nothing keeps its lease alive.
        let short = grant(&mut holder, 2).await;
        let held = holder
            .lock("backup", Some(LockOptions::new().with_lease(short)))
            .await
            .expect("lock");
        let lease_next = grant(&mut next, 30).await;
        let started = Instant::now();
        let granted = tokio::time::timeout(
            SETTLE + Duration::from_secs(2),
            next.lock("backup", Some(LockOptions::new().with_lease(lease_next))),
        )
        .await
        .expect("the lock passes on once the holder's lease expires")
        .expect("lock");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "granted before the holder's lease could expire"
        );
        assert!(
            !exists(&mut other, held.key()).await,
            "the holder's key is gone"
        );
        assert_eq!(granted.key(), format!("backup/{lease_next:x}").as_bytes());
    });
}

#[test]
fn a_waiter_that_gives_up_leaves_no_key_behind() {
    let (c, leader, followers) = cluster();
    runtime().block_on(async {
        let mut holder = connect(&c, leader).await;
        let mut quitter = connect(&c, followers[0]).await;
        let mut reader = connect(&c, followers[1]).await;
        let lease = grant(&mut holder, 30).await;
        holder
            .lock("report", Some(LockOptions::new().with_lease(lease)))
            .await
            .expect("lock");
        let quitter_lease = grant(&mut quitter, 30).await;
        let quitter_key = format!("report/{quitter_lease:x}").into_bytes();
        let gave_up = tokio::time::timeout(
            HELD,
            quitter.lock("report", Some(LockOptions::new().with_lease(quitter_lease))),
        )
        .await;
        assert!(gave_up.is_err(), "the lock is held: the waiter times out");
        // As etcd's lock server, the member deletes the key of a waiter whose call ended.
        assert!(
            wait_for_key(&mut reader, &quitter_key, false).await,
            "the waiter's key outlived its call"
        );
        // A lock without a lease gets one of the server's (etcd's 60 s session lease).
        holder
            .unlock(format!("report/{lease:x}"))
            .await
            .expect("unlock");
        let leased = holder
            .lock("report", None)
            .await
            .expect("lock without a lease");
        let pair = reader.get(leased.key(), None).await.expect("get");
        assert!(pair.kvs()[0].lease() != 0, "the key has the server's lease");
    });
}

#[test]
fn campaigns_lead_in_turn_and_observers_see_each_leader() {
    let (c, leader, followers) = cluster();
    runtime().block_on(async {
        let mut alice = connect(&c, leader).await;
        let mut bob = connect(&c, followers[0]).await;
        let mut watcher = connect(&c, followers[1]).await;
        let mut observer = connect(&c, followers[1]).await;

        let lease_alice = grant(&mut alice, 30).await;
        let won = alice
            .campaign("president", "alice", lease_alice)
            .await
            .expect("an uncontended campaign");
        let alice_key = won.leader().expect("a leader key").clone();
        assert_eq!(alice_key.name(), b"president");
        assert_eq!(alice_key.lease(), lease_alice);
        // As etcd's, the stream's first message (its head with it) comes once there is a
        // leader: observing starts here.
        let mut observe = observer.observe("president").await.expect("observe");
        let seen = tokio::time::timeout(SETTLE, observe.message())
            .await
            .expect("the observer hears the first leader")
            .expect("observe")
            .expect("a message");
        assert_eq!(seen.kv().expect("kv").value(), b"alice");
        let now = watcher.leader("president").await.expect("leader");
        assert_eq!(now.kv().expect("kv").value(), b"alice");

        // Bob waits behind Alice.
        let lease_bob = grant(&mut bob, 30).await;
        let mut bob_campaign = Box::pin(bob.campaign("president", "bob", lease_bob));
        tokio::select! {
            got = &mut bob_campaign => panic!("a second leader while the first leads: {got:?}"),
            _ = tokio::time::sleep(HELD) => {}
        }
        // The leader proclaims; the observer and Leader see it.
        alice
            .proclaim(
                "alice, again",
                Some(ProclaimOptions::new().with_leader(alice_key.clone())),
            )
            .await
            .expect("proclaim");
        let seen = tokio::time::timeout(SETTLE, observe.message())
            .await
            .expect("the observer hears the proclamation")
            .expect("observe")
            .expect("a message");
        assert_eq!(seen.kv().expect("kv").value(), b"alice, again");

        // Alice resigns: Bob leads, and the observer says so.
        alice
            .resign(Some(ResignOptions::new().with_leader(alice_key.clone())))
            .await
            .expect("resign");
        let bob_won = tokio::time::timeout(SETTLE, bob_campaign)
            .await
            .expect("the next campaigner leads after a resignation")
            .expect("campaign");
        let bob_key = bob_won.leader().expect("leader key").clone();
        assert_eq!(bob_key.lease(), lease_bob);
        let seen = tokio::time::timeout(SETTLE, observe.message())
            .await
            .expect("the observer hears the new leader")
            .expect("observe")
            .expect("a message");
        assert_eq!(seen.kv().expect("kv").value(), b"bob");

        // Alice's old leadership is gone: proclaiming with it is refused.
        let stale = alice
            .proclaim(
                "alice is back",
                Some(ProclaimOptions::new().with_leader(alice_key)),
            )
            .await;
        assert_eq!(status_of(stale), (2, "election: not leader".to_string()));
        let now = watcher.leader("president").await.expect("leader");
        assert_eq!(now.kv().expect("kv").value(), b"bob");
    });
}

/// The same calls against etcd 3.4 and tally, answered with the same errors.
async fn error_answers(client: &mut Client) -> Vec<(i32, String)> {
    let mut answers = Vec::new();
    answers.push(status_of(client.leader("nobody-runs").await));
    let stale = LeaderKey::new()
        .with_name("nobody-runs")
        .with_key("nobody-runs/1")
        .with_rev(1)
        .with_lease(1);
    answers.push(status_of(
        client
            .proclaim("x", Some(ProclaimOptions::new().with_leader(stale)))
            .await,
    ));
    answers.push(status_of(client.resign(Some(ResignOptions::new())).await));
    answers.push(status_of(
        client
            .lock("missing-lease", Some(LockOptions::new().with_lease(0x7777)))
            .await,
    ));
    // A key outside a lock is deleted by Unlock as by etcd's: no error.
    client
        .put("loose", "v", Some(PutOptions::new()))
        .await
        .expect("put");
    client.unlock("loose").await.expect("unlock any key");
    answers
}

#[test]
fn lock_and_election_errors_are_etcds() {
    if !etcd_available() {
        return;
    }
    let dir = TempDir::new("lock-errors-etcd");
    let etcd = EtcdMember::start(dir.path(), "etcd", free_port(), &[]);
    let (c, _, followers) = cluster();
    runtime().block_on(async {
        let mut reference = Client::connect([format!("http://{}", etcd.endpoint())], None)
            .await
            .expect("connect to etcd");
        let expected = error_answers(&mut reference).await;
        let mut ours = connect(&c, followers[0]).await;
        assert_eq!(error_answers(&mut ours).await, expected);
        assert_eq!(expected[0], (2, "election: no leader".to_string()));
    });
}

/// etcdctl's own `lock` and `elect` (client-side recipes on KV, Lease and Watch), as operators
/// run them: contenders on different members; a lock holder whose process is killed (its
/// lease, no longer kept alive, expires and the next contender goes on); a leader interrupted
/// (it resigns, and the next campaigner leads, as the observer sees).
#[test]
fn etcdctl_lock_and_elect_across_members_survive_a_killed_holder() {
    etcdctl_lock_and_elect(false);
}

/// The same over TLS, with client certificates.
#[test]
fn etcdctl_lock_and_elect_over_tls() {
    etcdctl_lock_and_elect(true);
}

fn etcdctl_lock_and_elect(tls: bool) {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;

    if !tally_tests::process::etcdctl_available() {
        return;
    }
    let mut c = ProcCluster::start(
        3,
        Options {
            tls,
            ..Options::default()
        },
    );
    let leader = c
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no leader\n{}", c.logs()));
    let followers: Vec<usize> = (0..3).filter(|m| *m != leader).collect();
    let spawn = |member: usize, args: &[&str]| {
        let mut child = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", c.endpoint(member)))
            .args(c.tls_args())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcdctl");
        let (lines, received) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        (tally_tests::process::KillOnDrop(child), received)
    };
    // The lock: the holder prints its key and holds; the second waits on another member.
    let (mut holder, holder_out) = spawn(leader, &["lock", "--ttl=2", "jobs"]);
    let key = holder_out
        .recv_timeout(SETTLE)
        .expect("the holder prints its key");
    assert!(key.starts_with("jobs/"), "{key}");
    let (_second, second_out) = spawn(
        followers[0],
        &["lock", "--ttl=2", "jobs", "echo", "second-holds"],
    );
    assert!(
        second_out.recv_timeout(HELD).is_err(),
        "the second got the lock while the first held it"
    );
    holder.0.kill().expect("kill the holder");
    let got = second_out
        .recv_timeout(SETTLE)
        .expect("the lock passes on once the killed holder's lease expires");
    assert_eq!(got, "second-holds");

    // The election: an observer on the third member sees each leader in turn.
    let (_observer, observed) = spawn(followers[1], &["elect", "-l", "president"]);
    let (alice, alice_out) = spawn(leader, &["elect", "president", "alice"]);
    let alice_leads: Vec<String> = std::iter::from_fn(|| alice_out.recv_timeout(SETTLE).ok())
        .take(2)
        .collect();
    assert!(
        alice_leads
            .first()
            .is_some_and(|k| k.starts_with("president/"))
            && alice_leads.get(1).map(String::as_str) == Some("alice"),
        "alice leads: {alice_leads:?}"
    );
    let (_bob, bob_out) = spawn(followers[0], &["elect", "president", "bob"]);
    assert!(bob_out.recv_timeout(HELD).is_err(), "two leaders at once");
    let mut seen = Vec::new();
    while let Ok(line) = observed.recv_timeout(Duration::from_millis(300)) {
        seen.push(line);
    }
    assert!(
        seen.iter().any(|l| l == "alice"),
        "the observer saw alice: {seen:?}"
    );
    // Interrupted, etcdctl resigns before it exits (its session has no --ttl to wait out).
    let interrupted = Command::new("kill")
        .args(["-INT", &alice.0.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupted.success());
    let bob_leads: Vec<String> = std::iter::from_fn(|| bob_out.recv_timeout(SETTLE).ok())
        .take(2)
        .collect();
    assert_eq!(
        bob_leads.get(1).map(String::as_str),
        Some("bob"),
        "{bob_leads:?}"
    );
    let mut later = Vec::new();
    while let Ok(line) = observed.recv_timeout(Duration::from_secs(2)) {
        later.push(line);
    }
    assert!(
        later.iter().any(|l| l == "bob"),
        "the observer saw bob: {later:?}"
    );
}
