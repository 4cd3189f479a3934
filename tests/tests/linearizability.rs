//! Linearizability of a real 3-member cluster under a nemesis: concurrent clients on every
//! member put, compare-and-set and read a few keys while members are killed with SIGKILL and
//! restarted (the leader included), the leader is paused with SIGSTOP past the election
//! timeout, and a member is cut off from the others. Afterwards every key's history must be
//! linearizable (`tally_tests::linearizability`), every acknowledged write must be on every
//! member at its revision, and the members must agree on the store's hash.
//!
//! `LIN_SECONDS` sets how long the clients run (default 30); `LIN_HISTORY_DIR` keeps each
//! run's history there (a failed run's is always written, and its path printed).
//! `scripts/linearizability.sh` runs the test for as long as asked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn, TxnOp};
use tally_tests::linearizability::{History, Op, Output, Verdict, check};
use tally_tests::process::{Options, ProcCluster, TempDir, etcdctl_available};

const KEYS: [&str; 4] = ["lin/a", "lin/b", "lin/c", "lin/d"];
const CLIENTS: u64 = 6;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const THINK_TIME: Duration = Duration::from_millis(20);
/// Search states per key the checker may explore before it answers "unknown".
const STATES_PER_KEY_MAX: u64 = 5_000_000;

fn run_seconds() -> u64 {
    std::env::var("LIN_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn start() -> Option<ProcCluster> {
    if !etcdctl_available() {
        return None;
    }
    let options = Options {
        proxies: true,
        ..Options::default()
    };
    let mut cluster = ProcCluster::start(3, options);
    assert!(
        cluster.wait_leader(Duration::from_secs(20)).is_some(),
        "no leader\n{}",
        cluster.logs()
    );
    Some(cluster)
}

async fn connect(endpoints: &[String]) -> Option<Client> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_timeout(REQUEST_TIMEOUT);
    Client::connect(endpoints, Some(options)).await.ok()
}

/// A small seeded generator: the workload differs per client, and a run can be repeated.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the clients share: the history, when it started, acknowledged writes, and the stop.
struct Shared {
    history: Mutex<History>,
    started: Instant,
    /// (key, value, revision) of every acknowledged put and successful compare-and-set.
    acknowledged: Mutex<Vec<(String, u64, i64)>>,
    stop: AtomicBool,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            history: Mutex::new(History::new()),
            started: Instant::now(),
            acknowledged: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        }
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }
}

/// One client, connected to one member, until told to stop.
async fn client_loop(id: u64, endpoint: String, shared: Arc<Shared>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id + 1));
    let mut seen: [Option<u64>; KEYS.len()] = [None; KEYS.len()];
    let mut next_value = id * 1_000_000_000;
    let mut client = None;
    while !shared.stop.load(Ordering::Relaxed) {
        if client.is_none() {
            client = connect(std::slice::from_ref(&endpoint)).await;
            if client.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        let c = client.as_mut().expect("connected");
        let k = rng.below(KEYS.len() as u64) as usize;
        let key = KEYS[k];
        next_value += 1;
        let op = match rng.below(10) {
            0..=3 => Op::Read,
            4..=6 => Op::Put(next_value),
            _ => Op::Cas {
                expected: seen[k],
                new: next_value,
            },
        };
        let invoked_ns = shared.now_ns();
        let result = tokio::time::timeout(REQUEST_TIMEOUT, execute(c, key, op)).await;
        let recorded = record(&shared, id, key, op, (invoked_ns, shared.now_ns()), result);
        match recorded {
            Ok(Some(value)) => seen[k] = value,
            Ok(None) => {}
            Err(Failed) => client = None,
        }
        // A pause between requests keeps each key's history small enough to check exactly.
        tokio::time::sleep(THINK_TIME).await;
    }
}

/// The request failed: the client reconnects.
struct Failed;

/// Records one operation's outcome in the history; the key's value as this client now knows
/// it, if the outcome tells (`Some(None)`: absent).
fn record(
    shared: &Shared,
    client: u64,
    key: &str,
    op: Op,
    (invoked_ns, returned_ns): (u64, u64),
    result: Result<Result<(Output, i64), etcd_client::Error>, tokio::time::error::Elapsed>,
) -> Result<Option<Option<u64>>, Failed> {
    let mut history = shared.history.lock().expect("lock");
    let Ok(Ok((output, revision))) = result else {
        // A read that failed changed nothing: it is left out. A write that timed out or
        // failed may still take effect, at any time after it was sent, or never.
        if op != Op::Read {
            let invoked = history.invoke(client, key, op, invoked_ns);
            history
                .indeterminate(invoked)
                .expect("a well-formed history");
        }
        return Err(Failed);
    };
    let invoked = history.invoke(client, key, op, invoked_ns);
    history
        .complete(invoked, output, returned_ns)
        .expect("a well-formed history");
    let written = match (op, output) {
        (_, Output::Read(value)) => return Ok(Some(value)),
        (Op::Put(v), Output::Put) | (Op::Cas { new: v, .. }, Output::Cas(true)) => v,
        // A failed compare-and-set says only that the value was not the expected one.
        (_, Output::Cas(false)) => return Ok(None),
        _ => unreachable!("outputs match their ops"),
    };
    shared
        .acknowledged
        .lock()
        .expect("lock")
        .push((key.to_string(), written, revision));
    Ok(Some(Some(written)))
}

/// Runs `op` on `key`; its output and, for a write, the revision it wrote at.
async fn execute(c: &mut Client, key: &str, op: Op) -> Result<(Output, i64), etcd_client::Error> {
    match op {
        Op::Read => {
            let response = c.get(key, None).await?;
            let value = response.kvs().first().map(|kv| {
                kv.value_str()
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("a number")
            });
            Ok((Output::Read(value), 0))
        }
        Op::Put(value) => {
            let response = c.put(key, value.to_string(), None).await?;
            let revision = response.header().map_or(0, |h| h.revision());
            Ok((Output::Put, revision))
        }
        Op::Cas { expected, new } => {
            let compare = match expected {
                Some(v) => Compare::value(key, CompareOp::Equal, v.to_string()),
                None => Compare::create_revision(key, CompareOp::Equal, 0),
            };
            let txn = Txn::new()
                .when([compare])
                .and_then([TxnOp::put(key, new.to_string(), None)]);
            let response = c.txn(txn).await?;
            let revision = response.header().map_or(0, |h| h.revision());
            Ok((Output::Cas(response.succeeded()), revision))
        }
        Op::Delete => unreachable!("the workload deletes nothing"),
    }
}

/// The faults, one after another, for `seconds`: SIGKILL of the leader and its restart, a
/// SIGSTOP of the leader past the election timeout, a member cut off from its peers, SIGKILL
/// of a follower.
fn nemesis(c: &mut ProcCluster, seconds: u64) {
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        let leader = c.wait_leader(Duration::from_secs(10));
        match (round % 4, leader) {
            (0, Some(leader)) => {
                c.kill(leader);
                std::thread::sleep(Duration::from_millis(1500));
                c.restart(leader);
            }
            (1, Some(leader)) => {
                c.pause(leader);
                std::thread::sleep(Duration::from_millis(2500));
                c.resume(leader);
            }
            (2, Some(leader)) => {
                let cut = (leader + 1 + round / 4 % 2) % 3;
                let id = c.member_id(cut).expect("member id");
                c.control.isolate(id);
                std::thread::sleep(Duration::from_millis(2500));
                c.control.heal();
            }
            (3, Some(leader)) => {
                let follower = (leader + 1) % 3;
                c.kill(follower);
                std::thread::sleep(Duration::from_millis(1500));
                c.restart(follower);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(1500));
        round += 1;
    }
}

/// Writes the history where it is kept; its path.
fn keep_history(history: &History, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(dir).expect("history dir");
    std::fs::write(&path, history.to_string()).expect("write history");
    path
}

#[test]
fn histories_under_kills_pauses_and_partitions_are_linearizable() {
    let Some(mut c) = start() else { return };
    let seconds = run_seconds();
    let shared = Arc::new(Shared::new());
    let endpoints: Vec<String> = (0..3)
        .map(|i| format!("http://{}", c.endpoint(i)))
        .collect();
    let clients = {
        let shared = Arc::clone(&shared);
        let endpoints = endpoints.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async move {
                let tasks: Vec<_> = (0..CLIENTS)
                    .map(|id| {
                        let endpoint = endpoints[(id % 3) as usize].clone();
                        tokio::spawn(client_loop(id, endpoint, Arc::clone(&shared)))
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("client task");
                }
            });
        })
    };
    nemesis(&mut c, seconds);
    shared.stop.store(true, Ordering::Relaxed);
    clients.join().expect("clients");
    c.control.heal();
    for index in 0..3 {
        c.resume(index);
        if !c.members[index].is_running() {
            c.kill(index);
            c.restart(index);
        }
    }
    assert!(
        c.wait_leader(Duration::from_secs(20)).is_some(),
        "no leader after healing\n{}",
        c.logs()
    );

    let history = shared.history.lock().expect("lock");
    let out = TempDir::new("lin-history");
    let kept = std::env::var_os("LIN_HISTORY_DIR").map(std::path::PathBuf::from);
    if let Some(dir) = &kept {
        keep_history(&history, dir, "history.txt");
    }
    let completed = history
        .operations()
        .iter()
        .filter(|o| o.output().is_some())
        .count();
    assert!(
        completed > 100,
        "only {completed} operations completed\n{}",
        c.logs()
    );
    match check(&history, STATES_PER_KEY_MAX) {
        Verdict::Linearizable => {}
        verdict => {
            let path = keep_history(
                &history,
                kept.as_deref().unwrap_or(out.path()),
                "failed.txt",
            );
            std::mem::forget(out);
            panic!("{verdict}\nhistory kept in {}", path.display());
        }
    }
    let acknowledged = shared.acknowledged.lock().expect("lock").clone();
    drop(history);
    runtime_block_on(every_write_on_every_member(&endpoints, &acknowledged));
}

fn runtime_block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

/// Every acknowledged write is on every member at its revision, and the members agree on the
/// store's hash at the newest revision.
async fn every_write_on_every_member(endpoints: &[String], acknowledged: &[(String, u64, i64)]) {
    assert!(!acknowledged.is_empty(), "no write was acknowledged");
    let newest = acknowledged
        .iter()
        .map(|(_, _, r)| *r)
        .max()
        .expect("writes");
    let mut hashes = Vec::new();
    for endpoint in endpoints {
        let mut client = connect(std::slice::from_ref(endpoint))
            .await
            .expect("connect");
        // The member may still be catching up: wait until it has the newest write.
        let deadline = Instant::now() + Duration::from_secs(20);
        let hash = loop {
            match client.hash_kv(newest).await {
                Ok(response) if response.header().is_some_and(|h| h.revision() >= newest) => {
                    break response.hash();
                }
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => panic!("{endpoint} never reached revision {newest}: {other:?}"),
            }
        };
        hashes.push(hash);
        for (key, value, revision) in acknowledged {
            let options = GetOptions::new()
                .with_revision(*revision)
                .with_serializable();
            let response = client.get(key.as_str(), Some(options)).await.expect("get");
            let kv = response.kvs().first().unwrap_or_else(|| {
                panic!("{endpoint} lacks {key}={value} acknowledged at revision {revision}")
            });
            assert_eq!(
                (kv.value_str().expect("utf-8"), kv.mod_revision()),
                (value.to_string().as_str(), *revision),
                "{endpoint}: {key} at revision {revision}"
            );
        }
    }
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "members disagree on the store: {hashes:?}"
    );
}

const LEASE_TTL_SECS: i64 = 6;

/// A lease holder: keeps its lease alive every TTL/3 through its member, a follower at the
/// start (any member after failures), and records when its last acknowledged keep-alive was
/// sent. A holder whose keep-alives fail for a whole TTL may lose its lease; it then grants a
/// new one and is not judged until that one holds its key.
struct Holder {
    key: String,
    /// Send time, in ns since the start, of the last keep-alive answered with a live TTL;
    /// `None` while the holder has no lease with its key attached.
    kept_at_ns: Mutex<Option<u64>>,
}

async fn hold_lease(holder: Arc<Holder>, endpoints: Vec<String>, shared: Arc<Shared>) {
    let mut lease = None;
    let mut client = None;
    while !shared.stop.load(Ordering::Relaxed) {
        if client.is_none() {
            client = connect(&endpoints).await;
        }
        let Some(c) = client.as_mut() else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let sent_ns = shared.now_ns();
        let step = async {
            let id = match lease {
                Some(id) => id,
                None => {
                    let id = c.lease_grant(LEASE_TTL_SECS, None).await?.id();
                    let options = etcd_client::PutOptions::new().with_lease(id);
                    c.put(holder.key.as_str(), "held", Some(options)).await?;
                    id
                }
            };
            let (mut keeper, mut answers) = c.lease_keep_alive(id).await?;
            keeper.keep_alive().await?;
            let ttl = answers.message().await?.map_or(0, |a| a.ttl());
            Ok::<_, etcd_client::Error>((id, ttl))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, step).await {
            Ok(Ok((id, ttl))) if ttl > 0 => {
                lease = Some(id);
                *holder.kept_at_ns.lock().expect("lock") = Some(sent_ns);
            }
            Ok(Ok(_)) => {
                // The lease is gone (kept alive too late): start over with a new one.
                lease = None;
                *holder.kept_at_ns.lock().expect("lock") = None;
            }
            _ => client = None,
        }
        tokio::time::sleep(Duration::from_secs(LEASE_TTL_SECS as u64) / 3).await;
    }
}

/// Reads every holder's key from every member in turn; a read answered while the holder's
/// last acknowledged keep-alive was sent less than a TTL (less a margin) before must find it.
async fn watch_holders(holders: Vec<Arc<Holder>>, endpoints: Vec<String>, shared: Arc<Shared>) {
    let margin_ns = Duration::from_millis(1500).as_nanos() as u64;
    let ttl_ns = Duration::from_secs(LEASE_TTL_SECS as u64).as_nanos() as u64;
    let mut turn = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        turn += 1;
        let endpoint = &endpoints[turn % endpoints.len()];
        if let Some(mut c) = connect(std::slice::from_ref(endpoint)).await {
            for holder in &holders {
                let kept = *holder.kept_at_ns.lock().expect("lock");
                let read = tokio::time::timeout(REQUEST_TIMEOUT, c.get(holder.key.as_str(), None));
                let Ok(Ok(response)) = read.await else { break };
                let answered_ns = shared.now_ns();
                let must_hold = kept.is_some_and(|k| answered_ns + margin_ns < k + ttl_ns);
                assert!(
                    !must_hold || !response.kvs().is_empty(),
                    "{} vanished at {answered_ns} ns from {endpoint}: its lease was kept alive at {kept:?} ns (TTL {LEASE_TTL_SECS} s)",
                    holder.key
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[test]
fn leases_kept_alive_through_followers_survive_kills_pauses_and_partitions() {
    let Some(mut c) = start() else { return };
    let seconds = run_seconds();
    let shared = Arc::new(Shared::new());
    let leader = c.wait_leader(Duration::from_secs(10)).expect("leader");
    let endpoints: Vec<String> = (0..3)
        .map(|i| format!("http://{}", c.endpoint(i)))
        .collect();
    let holders: Vec<Arc<Holder>> = (0..3)
        .map(|i| {
            Arc::new(Holder {
                key: format!("lock/holder-{i}"),
                kept_at_ns: Mutex::new(None),
            })
        })
        .collect();
    let background = {
        let shared = Arc::clone(&shared);
        let holders = holders.clone();
        std::thread::spawn(move || {
            runtime_block_on(async move {
                let mut tasks = Vec::new();
                for (i, holder) in holders.iter().enumerate() {
                    // A follower first, then the others: the client fails over as etcd's do.
                    let first = (leader + 1 + i % 2) % 3;
                    let ordered: Vec<String> =
                        (0..3).map(|k| endpoints[(first + k) % 3].clone()).collect();
                    tasks.push(tokio::spawn(hold_lease(
                        Arc::clone(holder),
                        ordered,
                        Arc::clone(&shared),
                    )));
                }
                tasks.push(tokio::spawn(watch_holders(
                    holders.clone(),
                    endpoints.clone(),
                    Arc::clone(&shared),
                )));
                for task in tasks {
                    task.await.expect("lease task");
                }
            });
        })
    };
    nemesis(&mut c, seconds);
    shared.stop.store(true, Ordering::Relaxed);
    let outcome = background.join();
    for index in 0..3 {
        c.resume(index);
    }
    c.control.heal();
    assert!(
        outcome.is_ok(),
        "a kept-alive lease's key vanished\n{}",
        c.logs()
    );
    let kept = holders
        .iter()
        .filter(|h| h.kept_at_ns.lock().expect("lock").is_some())
        .count();
    assert!(
        kept > 0,
        "no holder kept its lease at the end\n{}",
        c.logs()
    );
}
