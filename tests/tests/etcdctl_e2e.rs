//! etcdctl (Debian's etcd-client, unchanged) against a 3-member tally cluster, in plaintext and
//! with TLS plus client certificates.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tally_tests::http::get as http_get;
use tally_tests::process::{Options, ProcCluster, etcdctl_available, json_u64};

fn cluster(tls: bool) -> Option<ProcCluster> {
    if !etcdctl_available() {
        return None;
    }
    let mut cluster = ProcCluster::start(
        3,
        Options {
            tls,
            ..Options::default()
        },
    );
    let leader = cluster.wait_leader(Duration::from_secs(20));
    assert!(leader.is_some(), "no leader\n{}", cluster.logs());
    Some(cluster)
}

fn kv_and_txn(c: &ProcCluster) {
    let all = c.endpoints(&[0, 1, 2]);
    let one = c.endpoint(1);
    assert_eq!(c.ok(&one, &["put", "foo", "bar"]).trim(), "OK");
    c.ok(&one, &["put", "foo/a", "1"]);
    c.ok(&one, &["put", "foo/b", "2"]);
    c.ok(&one, &["put", "zoo", "3"]);
    assert_eq!(c.ok(&all, &["get", "foo"]), "foo\nbar\n");
    assert_eq!(
        c.ok(&one, &["get", "foo/", "--prefix"]),
        "foo/a\n1\nfoo/b\n2\n"
    );
    assert_eq!(
        c.ok(&one, &["get", "foo", "--prefix", "--limit=2"]),
        "foo\nbar\nfoo/a\n1\n"
    );
    assert_eq!(
        c.ok(&one, &["get", "foo/", "--prefix", "--keys-only"]),
        "foo/a\n\nfoo/b\n\n"
    );
    // etcdctl 3.4 has no --count-only; a (plaintext) Rust client asks for it.
    if c.tls_args().is_empty() {
        assert_eq!(count_only(c, "foo"), 3);
    }
    let serializable = c.ok(&c.endpoint(2), &["get", "zoo", "--consistency=s"]);
    assert!(
        serializable == "zoo\n3\n" || serializable.is_empty(),
        "serializable read: {serializable}"
    );
    // A historical read: the revision before foo was overwritten.
    let put = c.ok(&one, &["put", "foo", "baz", "-w", "json"]);
    let revision = json_u64(&put, "revision").expect("revision");
    let old = c.ok(&one, &["get", "foo", &format!("--rev={}", revision - 1)]);
    assert_eq!(old, "foo\nbar\n");
    assert_eq!(c.ok(&one, &["del", "foo/", "--prefix"]).trim(), "2");
    assert_eq!(c.ok(&one, &["get", "foo/", "--prefix"]), "");
    // Interactive txn on stdin: compares, success ops, failure ops.
    let txn = "value(\"foo\") = \"baz\"\n\nput result yes\n\nput result no\n\n";
    let output = c.etcdctl(&one, &["txn", "-i"], Some(txn));
    assert!(
        output.status.success(),
        "txn: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("SUCCESS"));
    assert_eq!(
        c.ok(&one, &["get", "result", "--print-value-only"]),
        "yes\n"
    );
    let failing = "mod(\"foo\") = \"1\"\n\nput result yes\n\nput result no\n\n";
    let output = c.etcdctl(&one, &["txn", "-i"], Some(failing));
    assert!(String::from_utf8_lossy(&output.stdout).contains("FAILURE"));
    assert_eq!(c.ok(&one, &["get", "result", "--print-value-only"]), "no\n");
}

fn count_only(c: &ProcCluster, prefix: &str) -> i64 {
    use prost::Message as _;
    use tally_kvstore::proto::{RangeRequest, RangeResponse};
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().expect("non-empty prefix") += 1;
    let request = RangeRequest {
        key: prefix.as_bytes().to_vec().into(),
        range_end: end.into(),
        count_only: true,
        ..RangeRequest::default()
    };
    let port = c.members[0].client_port;
    let (status, body) =
        tally_tests::h2raw::call(port, "/etcdserverpb.KV/Range", &request.encode_to_vec())
            .expect("answer");
    assert_eq!(status, 0);
    let response = RangeResponse::decode(body).expect("a RangeResponse");
    assert!(response.kvs.is_empty(), "count-only returns no pairs");
    response.count
}

fn watch(c: &ProcCluster) {
    let one = c.endpoint(0);
    let first = c.ok(&one, &["put", "w/1", "a", "-w", "json"]);
    let revision = json_u64(&first, "revision").expect("revision");
    c.ok(&one, &["put", "w/2", "b"]);
    // A watch from a past revision replays history.
    let mut history = spawn_watch(
        c,
        &one,
        &["watch", "w/", "--prefix", &format!("--rev={revision}")],
    );
    // A live prefix watch sees a new put.
    let mut live = spawn_watch(c, &c.endpoint(2), &["watch", "w/", "--prefix"]);
    std::thread::sleep(Duration::from_millis(700));
    c.ok(&one, &["put", "w/3", "c"]);
    let history_out = read_until(&mut history, "w/3", Duration::from_secs(10));
    assert!(
        history_out.contains("w/1") && history_out.contains("w/2") && history_out.contains("w/3"),
        "{history_out}"
    );
    let live_out = read_until(&mut live, "w/3", Duration::from_secs(10));
    assert!(live_out.contains("PUT\nw/3\nc"), "{live_out}");
    assert!(
        !live_out.contains("w/1"),
        "a live watch does not replay: {live_out}"
    );
}

fn spawn_watch(c: &ProcCluster, endpoint: &str, args: &[&str]) -> std::process::Child {
    let mut command = Command::new("etcdctl");
    command
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"));
    command
        .args(c.tls_args())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcdctl watch")
}

/// Reads the child's stdout until `needle` appears or the timeout passes, then kills it.
fn read_until(child: &mut std::process::Child, needle: &str, timeout: Duration) -> String {
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 || tx.send(buffer[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    while Instant::now() < deadline && !text.contains(needle) {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    text
}

fn leases(c: &ProcCluster) {
    let one = c.endpoint(0);
    let grant = c.ok(&one, &["lease", "grant", "60"]);
    let id = grant
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    c.ok(&one, &["put", "leased", "v", &format!("--lease={id}")]);
    let keep = c.ok(&c.endpoint(1), &["lease", "keep-alive", "--once", &id]);
    assert!(keep.contains("keepalived with TTL"), "{keep}");
    let ttl = c.ok(&one, &["lease", "timetolive", &id, "--keys"]);
    assert!(
        ttl.contains("granted with TTL(60s)") && ttl.contains("leased"),
        "{ttl}"
    );
    c.ok(&one, &["lease", "revoke", &id]);
    assert_eq!(
        c.ok(&one, &["get", "leased"]),
        "",
        "revoking deletes the attached keys"
    );
    let missing = c.etcdctl(&one, &["lease", "revoke", &id], None);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("requested lease not found"));
    remaining_ttl_counts_down_on_every_member(c);
}

/// Only the leader's clock runs a lease down; followers ask it, as etcd's do.
fn remaining_ttl_counts_down_on_every_member(c: &ProcCluster) {
    let grant = c.ok(&c.endpoint(0), &["lease", "grant", "30"]);
    let id = grant
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    std::thread::sleep(Duration::from_millis(2500));
    for member in 0..3 {
        let ttl = c.ok(&c.endpoint(member), &["lease", "timetolive", &id]);
        let remaining: u64 = ttl
            .split("remaining(")
            .nth(1)
            .and_then(|rest| rest.split('s').next())
            .and_then(|secs| secs.parse().ok())
            .unwrap_or_else(|| panic!("no remaining TTL in {ttl:?}"));
        assert!(
            (1..=28).contains(&remaining),
            "member {member} reports {remaining}s left of a 30 s lease granted 2.5 s ago: {ttl}"
        );
    }
    c.ok(&c.endpoint(1), &["lease", "revoke", &id]);
}

fn maintenance(c: &mut ProcCluster) {
    let all = c.endpoints(&[0, 1, 2]);
    let status = c.ok(&all, &["endpoint", "status", "-w", "table"]);
    assert_eq!(status.matches("127.0.0.1").count(), 3, "{status}");
    let health = c.etcdctl(&all, &["endpoint", "health"], None);
    let health_text = String::from_utf8_lossy(&health.stdout).into_owned()
        + &String::from_utf8_lossy(&health.stderr);
    assert_eq!(
        health_text.matches("is healthy").count(),
        3,
        "{health_text}"
    );
    // Give followers time to apply everything, then compare hashes.
    std::thread::sleep(Duration::from_millis(500));
    let hashes = c.ok(&all, &["endpoint", "hashkv", "-w", "json"]);
    let values: Vec<u64> = hashes
        .split("\"HashKV\":")
        .skip(1)
        .filter_map(|s| json_u64(s, "hash"))
        .collect();
    assert_eq!(values.len(), 3, "{hashes}");
    assert!(
        values.iter().all(|v| *v == values[0]),
        "hashkv differs across members: {hashes}"
    );
    let put = c.ok(&c.endpoint(0), &["put", "c", "1", "-w", "json"]);
    let revision = json_u64(&put, "revision").expect("revision");
    c.ok(&c.endpoint(0), &["put", "c", "2"]);
    c.ok(&c.endpoint(0), &["compaction", &revision.to_string()]);
    let compacted = c.etcdctl(
        &c.endpoint(0),
        &["get", "c", &format!("--rev={}", revision - 1)],
        None,
    );
    assert!(
        String::from_utf8_lossy(&compacted.stderr).contains("required revision has been compacted")
    );
    // --physical answers once the store has removed what it compacted (it never answered
    // before: the finishing step did not release the call, which timed out).
    c.ok(&c.endpoint(0), &["put", "c", "3"]);
    let physical = c.etcdctl(
        &c.endpoint(1),
        &["compaction", "--physical", &(revision + 1).to_string()],
        None,
    );
    assert!(
        physical.status.success(),
        "compaction --physical: {}",
        String::from_utf8_lossy(&physical.stderr)
    );
    assert_eq!(c.ok(&all, &["alarm", "list"]), "");
    let dir = tally_tests::process::TempDir::new("snap");
    let file = dir.path().join("backup.db");
    let saved = c.ok(
        &c.endpoint(1),
        &["snapshot", "save", file.to_str().expect("utf8")],
    );
    assert!(saved.contains("Snapshot saved"), "{saved}");
    let size = std::fs::metadata(&file).expect("snapshot file").len();
    assert_eq!(
        size % 512,
        32,
        "the file ends with etcdctl's SHA-256 trailer"
    );
    restore_from(c, &file);
    // move-leader to a follower.
    let leader = c.wait_leader(Duration::from_secs(10)).expect("leader");
    let target = (leader + 1) % 3;
    let target_id = c.member_id(target).expect("id");
    let moved = c.ok(
        &c.endpoint(leader),
        &["move-leader", &format!("{target_id:x}")],
    );
    assert!(moved.contains("Leadership transferred"), "{moved}");
    assert_eq!(c.wait_leader(Duration::from_secs(10)), Some(target));
}

/// `tallyd --restore-snapshot` seeds a new one-member cluster with the saved data.
fn restore_from(c: &ProcCluster, file: &std::path::Path) {
    let dir = tally_tests::process::TempDir::new("restore");
    let (client, peer) = (
        tally_tests::process::free_port(),
        tally_tests::process::free_port(),
    );
    let child = Command::new(tally_tests::process::tallyd_path())
        .arg("--name=restored")
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!("--restore-snapshot={}", file.display()))
        .arg("--heartbeat-interval=50")
        .arg("--election-timeout=500")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tallyd");
    let child = tally_tests::process::KillOnDrop(child);
    let endpoint = format!("127.0.0.1:{client}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut value = String::new();
    while Instant::now() < deadline {
        let output = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                &format!("--endpoints={endpoint}"),
                "--dial-timeout=1s",
                "get",
                "zoo",
                "--print-value-only",
            ])
            .output()
            .expect("etcdctl");
        value = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() && !value.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(child);
    let _ = c;
    assert_eq!(value, "3\n", "the restored member serves the saved data");
}

fn membership(c: &mut ProcCluster) {
    let one = c.endpoint(0);
    let list = c.ok(&one, &["member", "list"]);
    assert_eq!(list.lines().count(), 3, "{list}");
    // Two members on one peer URL would take each other's traffic: refused, as by etcd.
    let taken = c.peer_url(1);
    let extra = format!("--peer-urls={taken},http://127.0.0.1:1");
    let add = c.etcdctl(&one, &["member", "add", "dup", &extra], None);
    let second = c.member_id(2).expect("member id");
    let update = c.etcdctl(
        &one,
        &[
            "member",
            "update",
            &format!("{second:x}"),
            &format!("--peer-urls={taken}"),
        ],
        None,
    );
    for output in [add, update] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("Peer URLs already exists"), "{stderr}");
    }
    let slot = c.add_member_slot();
    let peer_url = c.peer_url(slot);
    let name = c.members[slot].name.clone();
    let added = c.ok(
        &one,
        &[
            "member",
            "add",
            &name,
            &format!("--peer-urls={peer_url}"),
            "--learner",
        ],
    );
    assert!(added.contains("added to cluster"), "{added}");
    let id = added
        .split_whitespace()
        .nth(1)
        .expect("member id")
        .to_string();
    // Not started yet, the learner holds none of the log: the promotion is refused with
    // etcd's error by the leader, and by a follower that forwards it (promptly, not by timing out).
    let leader = c.wait_leader(Duration::from_secs(10)).expect("a leader");
    for member in [leader, (leader + 1) % 3] {
        let output = c.etcdctl(&c.endpoint(member), &["member", "promote", &id], None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains("in sync with leader"),
            "member {member} (leader {leader}): {stderr}"
        );
    }
    c.start_joining(slot);
    // The learner catches up, then is promoted, through a follower (which asks the leader).
    let follower = c.endpoint((leader + 1) % 3);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut promoted = String::new();
    while Instant::now() < deadline {
        let output = c.etcdctl(&follower, &["member", "promote", &id], None);
        promoted = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(promoted.contains("promoted"), "{promoted}\n{}", c.logs());
    let list = c.ok(&one, &["member", "list"]);
    assert_eq!(list.lines().count(), 4, "{list}");
    c.ok(&one, &["member", "remove", &id]);
    let list = c.ok(&one, &["member", "list"]);
    assert_eq!(list.lines().count(), 3, "{list}");
    c.kill(slot);
}

/// `etcdctl check datascale` reads `process_resident_memory_bytes` from `/metrics` before and
/// after its load, and `/version` is etcd's version endpoint.
fn datascale_and_version(c: &ProcCluster) {
    let one = c.endpoint(0);
    let output = c.etcdctl(&one, &["check", "datascale", "--load=s"], None);
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && text.contains("PASS: Approximate system memory used"),
        "{text}"
    );
    let port = c.members[0].client_port;
    let version = http_get(port, "/version");
    assert!(
        version.starts_with("HTTP/1.1 200") && version.contains("\"etcdcluster\":\"3.4.0\""),
        "{version}"
    );
}

#[test]
fn etcdctl_end_to_end_plaintext() {
    let Some(mut c) = cluster(false) else { return };
    datascale_and_version(&c);
    kv_and_txn(&c);
    watch(&c);
    leases(&c);
    maintenance(&mut c);
    membership(&mut c);
}

#[test]
fn etcdctl_end_to_end_tls_with_client_certificates() {
    let Some(mut c) = cluster(true) else { return };
    kv_and_txn(&c);
    watch(&c);
    leases(&c);
    maintenance(&mut c);
    // Without a client certificate the server refuses the connection.
    let output = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", c.endpoint(0)))
        .arg(format!(
            "--cacert={}",
            c.tls_args()[0].trim_start_matches("--cacert=")
        ))
        .args(["--dial-timeout=2s", "--command-timeout=3s", "get", "foo"])
        .output()
        .expect("etcdctl");
    assert!(
        !output.status.success(),
        "a client without a certificate must be refused"
    );
}

/// Runs etcdctl against `endpoint` with `extra` flags until it succeeds or `timeout` passes.
fn etcdctl_until_ok(endpoint: &str, extra: &[String], args: &[&str], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let output = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .arg("--dial-timeout=1s")
            .args(extra)
            .args(args)
            .output()
            .expect("etcdctl");
        if output.status.success() {
            return String::from_utf8_lossy(&output.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "etcdctl {args:?} on {endpoint}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every URL of `--listen-client-urls` serves clients, each with its own scheme (etcd takes a
/// list, and an operator may mix https for remote clients with http on loopback), and every
/// URL of `--listen-metrics-urls` serves `/metrics`, not only the first.
#[test]
fn every_listen_url_is_served_each_with_its_scheme() {
    if !etcdctl_available() {
        return;
    }
    let dir = tally_tests::process::TempDir::new("listen-urls");
    let certs = tally_tests::process::Certs::generate(dir.path());
    let port = tally_tests::process::free_port;
    let (https, http, metrics1, metrics2) = (port(), port(), port(), port());
    let (peer, peer2) = (port(), port());
    let child = Command::new(tally_tests::process::tallyd_path())
        .arg("--name=multi")
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!(
            "--listen-client-urls=https://127.0.0.1:{https},http://127.0.0.1:{http}"
        ))
        .arg(format!("--advertise-client-urls=https://127.0.0.1:{https}"))
        .arg(format!(
            "--listen-peer-urls=http://127.0.0.1:{peer},http://127.0.0.1:{peer2}"
        ))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
        ))
        .arg(format!("--initial-cluster=multi=http://127.0.0.1:{peer}"))
        .arg(format!(
            "--listen-metrics-urls=http://127.0.0.1:{metrics1},http://127.0.0.1:{metrics2}"
        ))
        .arg(format!("--cert-file={}", certs.server_cert.display()))
        .arg(format!("--key-file={}", certs.server_key.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tallyd");
    let child = tally_tests::process::KillOnDrop(child);
    let tls = vec![format!("--cacert={}", certs.ca.display())];
    let timeout = Duration::from_secs(15);
    etcdctl_until_ok(
        &format!("127.0.0.1:{https}"),
        &tls,
        &["put", "k", "over-tls"],
        timeout,
    );
    let over_http = etcdctl_until_ok(
        &format!("127.0.0.1:{http}"),
        &[],
        &["get", "k", "--print-value-only"],
        timeout,
    );
    let plain_on_tls = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints=127.0.0.1:{https}"),
            "--dial-timeout=1s",
        ])
        .args(["--command-timeout=2s", "get", "k"])
        .output()
        .expect("etcdctl");
    let metrics = [
        http_get(metrics1, "/metrics"),
        http_get(metrics2, "/metrics"),
    ];
    let second_peer_listener = std::net::TcpStream::connect(("127.0.0.1", peer2));
    drop(child);
    assert!(
        second_peer_listener.is_ok(),
        "the second peer URL is served: {second_peer_listener:?}"
    );
    assert_eq!(
        over_http, "over-tls\n",
        "the plaintext URL serves the same store"
    );
    assert!(
        !plain_on_tls.status.success(),
        "the https URL speaks only TLS"
    );
    for text in &metrics {
        assert!(text.contains("etcd_server_has_leader 1"), "{text}");
    }
}

/// An operator's etcd flags take effect: `--wal-dir` puts the WAL on its own path (and a
/// restart recovers from it), `--max-txn-ops` bounds a txn with etcd's error, and a flag
/// tallyd ignores (`--max-wals`) is warned about instead of refused.
#[test]
fn an_operators_etcd_flags_take_effect() {
    if !etcdctl_available() {
        return;
    }
    let dir = tally_tests::process::TempDir::new("operator-flags");
    let (client, peer) = (
        tally_tests::process::free_port(),
        tally_tests::process::free_port(),
    );
    let (data, wal, log) = (
        dir.path().join("data"),
        dir.path().join("wal"),
        dir.path().join("member.log"),
    );
    let spawn = || {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        Command::new(tally_tests::process::tallyd_path())
            .arg("--name=ops")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--wal-dir={}", wal.display()))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
            ))
            .args(["--max-txn-ops=2", "--max-wals=5", "--logger=zap"])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map(tally_tests::process::KillOnDrop)
            .expect("tallyd")
    };
    let endpoint = format!("127.0.0.1:{client}");
    let timeout = Duration::from_secs(15);
    let child = spawn();
    etcdctl_until_ok(&endpoint, &[], &["put", "a", "1"], timeout);
    // Interactive txn on stdin: no compares, three puts on success, none on failure.
    let mut txn = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([&format!("--endpoints={endpoint}"), "txn", "-i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl");
    let ops = "\nput x 1\nput y 2\nput z 3\n\n\n";
    std::io::Write::write_all(txn.stdin.as_mut().expect("stdin"), ops.as_bytes()).expect("txn");
    let refused = txn.wait_with_output().expect("etcdctl");
    drop(child);
    let child = spawn();
    let value = etcdctl_until_ok(&endpoint, &[], &["get", "a", "--print-value-only"], timeout);
    drop(child);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("too many operations in txn request"),
        "{stderr}"
    );
    assert_eq!(value, "1\n", "recovered from the WAL in --wal-dir");
    let wal_files = std::fs::read_dir(&wal).expect("wal dir").count();
    assert!(wal_files > 0, "the WAL is in --wal-dir");
    assert!(
        !data.join("member").join("wal").exists(),
        "not in the data dir"
    );
    let log_text = std::fs::read_to_string(&log).expect("log");
    assert!(
        log_text.contains("etcd's flag --max-wals is ignored"),
        "{log_text}"
    );
}

/// `--quota-backend-bytes`: a write that would pass the quota gets etcd's "database space
/// exceeded" and raises the NOSPACE alarm on every member, which then refuse writes until
/// room is made (delete, compact) and `etcdctl alarm disarm` clears it, as with etcd.
#[test]
fn a_full_store_raises_nospace_on_every_member_until_disarmed() {
    if !etcdctl_available() {
        return;
    }
    let mut c = ProcCluster::start(
        3,
        Options {
            extra_args: &["--quota-backend-bytes=65536"],
            ..Options::default()
        },
    );
    assert!(
        c.wait_leader(Duration::from_secs(20)).is_some(),
        "{}",
        c.logs()
    );
    let all = c.endpoints(&[0, 1, 2]);
    let value = "v".repeat(4096);
    let full = (0..40).find_map(|i| {
        let output = c.etcdctl(&all, &["put", &format!("big{i:02}"), &value], None);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (!output.status.success()).then_some(stderr)
    });
    let full = full.expect("the quota stops the puts");
    assert!(full.contains("database space exceeded"), "{full}");
    let alarmed = |c: &ProcCluster, member: usize| {
        c.ok(&c.endpoint(member), &["alarm", "list"])
            .contains("alarm:NOSPACE")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(0..3).all(|m| alarmed(&c, m)) {
        assert!(
            Instant::now() < deadline,
            "every member holds the alarm\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let health = http_get(c.members[2].client_port, "/health");
    assert!(
        health.starts_with("HTTP/1.1 503"),
        "unhealthy while alarmed: {health}"
    );
    // etcd lists raised alarms among the status errors (endpoint status's ERRORS column).
    let status = c.ok(&c.endpoint(0), &["endpoint", "status", "-w", "json"]);
    assert!(status.contains(" alarm:NOSPACE "), "{status}");
    let small = c.etcdctl(&c.endpoint(1), &["put", "small", "x"], None);
    assert!(
        String::from_utf8_lossy(&small.stderr).contains("database space exceeded"),
        "the alarm refuses even a small put"
    );
    let deleted = c.ok(&all, &["del", "big", "--prefix", "-w", "json"]);
    let revision = json_u64(&deleted, "revision")
        .expect("revision")
        .to_string();
    c.ok(&all, &["compaction", &revision, "--physical"]);
    c.ok(&all, &["alarm", "disarm"]);
    // The disarm is applied where etcdctl sent it first; the others follow the log.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (0..3).any(|m| alarmed(&c, m)) {
        assert!(
            Instant::now() < deadline,
            "disarmed everywhere\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    c.ok(&all, &["put", "small", "x"]);
    let health = http_get(c.members[2].client_port, "/health");
    assert!(
        health.starts_with("HTTP/1.1 200"),
        "healthy again: {health}"
    );
}
