//! The mission's claims, as process-level tests: real `tallyd` processes killed with SIGKILL,
//! restarted, partitioned through a fault-injecting proxy, and fed bad input.

use std::io::Write as _;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use tally_tests::http::get as http_get;
use tally_tests::process::{ELECTION_MS, Options, ProcCluster, etcdctl_available};

fn start(size: usize, proxies: bool) -> Option<ProcCluster> {
    start_with(
        size,
        Options {
            proxies,
            ..Options::default()
        },
    )
}

fn start_with(size: usize, options: Options) -> Option<ProcCluster> {
    if !etcdctl_available() {
        return None;
    }
    let mut cluster = ProcCluster::start(size, options);
    assert!(
        cluster.wait_leader(Duration::from_secs(20)).is_some(),
        "no leader\n{}",
        cluster.logs()
    );
    Some(cluster)
}

/// Reads `key` from one member's own state (serializable) until it is `expected` or `timeout`
/// passes; returns the last value read, with its newline.
fn wait_local_value(
    c: &ProcCluster,
    endpoint: &str,
    key: &str,
    expected: &str,
    timeout: Duration,
) -> String {
    let deadline = Instant::now() + timeout;
    let want = format!("{expected}\n");
    loop {
        let output = c.etcdctl(
            endpoint,
            &["get", key, "--consistency=s", "--print-value-only"],
            None,
        );
        let seen = String::from_utf8_lossy(&output.stdout).into_owned();
        if seen == want || Instant::now() >= deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A 3-member cluster with `--snapshot-count=snapshot_count` and one follower killed:
/// (cluster, leader, the killed follower).
fn start_with_lagging_member(snapshot_count: u64) -> Option<(ProcCluster, usize, usize)> {
    let mut c = start_with(
        3,
        Options {
            snapshot_count: Some(snapshot_count),
            ..Options::default()
        },
    )?;
    let leader = c.wait_leader(Duration::from_secs(5)).expect("leader");
    let lagging = (leader + 1) % 3;
    c.kill(lagging);
    Some((c, leader, lagging))
}

/// Restarts the `lagging` member and asserts it catches up, through a snapshot, to `key` =
/// `value` within `timeout`. Returns its endpoint.
fn restart_and_catch_up(
    c: &mut ProcCluster,
    lagging: usize,
    (key, value): (&str, &str),
    timeout: Duration,
) -> String {
    c.restart(lagging);
    let endpoint = c.endpoint(lagging);
    let seen = wait_local_value(c, &endpoint, key, value, timeout);
    assert!(
        seen == format!("{value}\n"),
        "the lagging member caught up to {key}\n{}",
        c.logs()
    );
    assert!(
        c.members[lagging].log_text().contains("installed snapshot"),
        "it caught up through a snapshot\n{}",
        c.logs()
    );
    endpoint
}

fn endpoints_of(c: &mut ProcCluster) -> String {
    let live = c.live();
    c.endpoints(&live)
}

/// Puts `key=value`; returns whether etcdctl reported success (the write was acknowledged).
fn put(c: &ProcCluster, endpoints: &str, key: &str, value: &str) -> bool {
    c.etcdctl(endpoints, &["put", key, value], None)
        .status
        .success()
}

fn get(c: &ProcCluster, endpoints: &str, key: &str) -> String {
    c.ok(endpoints, &["get", key, "--print-value-only"])
        .trim()
        .to_string()
}

#[test]
fn killing_the_leader_elects_a_new_one_and_loses_nothing() {
    let Some(mut c) = start(3, false) else { return };
    let all = endpoints_of(&mut c);
    for i in 0..20 {
        assert!(put(&c, &all, &format!("k{i}"), &format!("v{i}")));
    }
    let leader = c.wait_leader(Duration::from_secs(5)).expect("leader");
    let killed_at = Instant::now();
    c.kill(leader);
    let new_leader = c
        .wait_leader(Duration::from_secs(10))
        .expect("a new leader");
    let took = killed_at.elapsed();
    assert_ne!(new_leader, leader);
    // Detection polls etcdctl, so allow one second of observation slack.
    assert!(
        took <= Duration::from_millis(2 * ELECTION_MS + 1000),
        "new leader after {took:?}"
    );
    let live = endpoints_of(&mut c);
    assert!(put(&c, &live, "after", "kill"), "writes continue");
    for i in 0..20 {
        assert_eq!(
            get(&c, &live, &format!("k{i}")),
            format!("v{i}"),
            "acknowledged write k{i} lost"
        );
    }
    c.restart(leader);
    assert!(c.wait_leader(Duration::from_secs(10)).is_some());
    wait_local_value(
        &c,
        &c.endpoint(leader),
        "after",
        "kill",
        Duration::from_secs(10),
    );
    assert_eq!(
        get(&c, &c.endpoint(leader), "after"),
        "kill",
        "the restarted member rejoined and caught up"
    );
}

#[test]
fn writes_sent_to_a_follower_succeed() {
    let Some(mut c) = start(3, false) else { return };
    let leader = c.wait_leader(Duration::from_secs(5)).expect("leader");
    let follower = (leader + 1) % 3;
    assert!(put(&c, &c.endpoint(follower), "via", "follower"));
    assert_eq!(get(&c, &c.endpoint(leader), "via"), "follower");
}

#[test]
fn five_members_survive_two_kills() {
    let Some(mut c) = start(5, false) else { return };
    let leader = c.wait_leader(Duration::from_secs(5)).expect("leader");
    let victims: Vec<usize> = (0..5).filter(|&i| i != leader).take(2).collect();
    for &victim in &victims {
        c.kill(victim);
    }
    let live = endpoints_of(&mut c);
    assert!(
        put(&c, &live, "five", "minus-two"),
        "3 of 5 still accept writes"
    );
    assert_eq!(get(&c, &live, "five"), "minus-two");
}

#[test]
fn four_members_with_two_down_refuse_writes_until_one_returns() {
    let Some(mut c) = start(4, false) else { return };
    let all = endpoints_of(&mut c);
    assert!(put(&c, &all, "before", "split"));
    c.kill(0);
    c.kill(1);
    let live = endpoints_of(&mut c);
    let started = Instant::now();
    let output = c.etcdctl(&live, &["put", "during", "outage"], None);
    assert!(!output.status.success(), "2 of 4 must not accept a write");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("etcdserver: no leader")
            || stderr.contains("etcdserver: request timed out")
            || stderr.contains("context deadline exceeded"),
        "an etcd-style error: {stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "the refusal came within the request timeout"
    );
    c.restart(0);
    assert!(
        c.wait_leader(Duration::from_secs(15)).is_some(),
        "quorum is back\n{}",
        c.logs()
    );
    let live = endpoints_of(&mut c);
    assert!(
        put(&c, &live, "after", "return"),
        "writes are accepted again"
    );
    assert_eq!(get(&c, &live, "before"), "split");
}

#[test]
fn restarting_every_member_keeps_all_data() {
    let Some(mut c) = start(3, false) else { return };
    let all = endpoints_of(&mut c);
    for i in 0..30 {
        assert!(put(&c, &all, &format!("r{i}"), &format!("{i}")));
    }
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.restart(i);
    }
    assert!(
        c.wait_leader(Duration::from_secs(20)).is_some(),
        "{}",
        c.logs()
    );
    let all = endpoints_of(&mut c);
    for i in 0..30 {
        assert_eq!(get(&c, &all, &format!("r{i}")), i.to_string());
    }
}

#[test]
fn a_partitioned_minority_leader_steps_down_and_the_majority_takes_writes() {
    let Some(mut c) = start(3, true) else { return };
    let leader = c.wait_leader(Duration::from_secs(5)).expect("leader");
    let leader_id = c.member_id(leader).expect("id");
    c.control.isolate(leader_id);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let majority = c.endpoints(&others);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut stepped_down = false;
    let mut accepted = false;
    while Instant::now() < deadline && !(stepped_down && accepted) {
        let status = c.etcdctl(
            &c.endpoint(leader),
            &["endpoint", "status", "-w", "json"],
            None,
        );
        let text = String::from_utf8_lossy(&status.stdout);
        // A member without a leader omits the field (protobuf's default 0).
        let answered = tally_tests::process::json_u64(&text, "member_id").is_some();
        stepped_down |=
            answered && tally_tests::process::json_u64(&text, "leader").unwrap_or(0) != leader_id;
        accepted = accepted || put(&c, &majority, "partitioned", "majority");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        stepped_down,
        "the isolated leader stepped down\n{}",
        c.logs()
    );
    assert!(
        accepted,
        "the majority elected a leader and took writes\n{}",
        c.logs()
    );
    c.control.heal();
    assert!(c.wait_leader(Duration::from_secs(15)).is_some());
    wait_local_value(
        &c,
        &c.endpoint(leader),
        "partitioned",
        "majority",
        Duration::from_secs(10),
    );
    assert_eq!(get(&c, &c.endpoint(leader), "partitioned"), "majority");
}

#[test]
fn bad_input_on_peer_and_client_ports_is_survived() {
    let Some(mut c) = start(3, false) else { return };
    let target = 0;
    let garbage: &[&[u8]] = &[
        b"\x00\x00\x00\x10garbage garbage!",
        b"GET / HTTP/1.1\r\n\r\n",
        &[0xff; 4096],
        b"PRI * HTTP/2.0\r\n",
    ];
    for bytes in garbage {
        for port in [c.members[target].peer_port, c.members[target].client_port] {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = stream.write_all(bytes);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
                let _ = std::io::Read::read(&mut stream, &mut [0u8; 64]);
            }
        }
    }
    // A well-formed HTTP/2 connection carrying a malformed protobuf gets a gRPC error.
    let status = tally_tests::h2raw::unary(
        c.members[target].client_port,
        "/etcdserverpb.KV/Put",
        &[0x0a, 0xff, 0xff],
    );
    assert!(
        matches!(status, Some(code) if code != 0),
        "malformed protobuf gets a gRPC error: {status:?}"
    );
    // An unknown method is UNIMPLEMENTED; a message over the gRPC receive limit
    // (--max-request-bytes plus etcd's 512 KiB allowance) is RESOURCE_EXHAUSTED, as in etcd.
    let port = c.members[target].client_port;
    assert_eq!(
        tally_tests::h2raw::unary(port, "/etcdserverpb.KV/NoSuchMethod", &[]),
        Some(12)
    );
    assert_eq!(
        tally_tests::h2raw::unary(port, "/etcdserverpb.KV/Put", &vec![0u8; 3 << 20]),
        Some(8)
    );
    // Plain HTTP health and metrics share the client port.
    let health = http_get(port, "/health");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.contains("\"health\":\"true\""),
        "{health}"
    );
    let metrics = http_get(port, "/metrics");
    for name in [
        "etcd_server_has_leader 1",
        "etcd_server_leader_changes_seen_total",
        "etcd_server_proposals_committed_total",
        "etcd_server_proposals_failed_total",
        "etcd_disk_wal_fsync_duration_seconds_bucket",
        "tally_apply_duration_seconds_count",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}: {metrics}");
    }
    assert!(
        c.members[target].is_running(),
        "the node survived\n{}",
        c.logs()
    );
    assert!(put(&c, &c.endpoint(target), "still", "serving"));
    assert_eq!(get(&c, &c.endpoint(target), "still"), "serving");
}

/// `--auto-compaction-retention` (periodic, as etcd's): the leader compacts the history older
/// than the retention without being asked, and an old revision then reads as compacted.
#[test]
fn the_leader_compacts_history_older_than_the_retention() {
    let Some(c) = start_with(
        3,
        Options {
            auto_compaction_retention: Some("2s"),
            ..Options::default()
        },
    ) else {
        return;
    };
    let endpoints = c.endpoints(&[0, 1, 2]);
    let first = c.ok(&endpoints, &["put", "k", "v1", "-w", "json"]);
    let old_revision = tally_tests::process::json_u64(&first, "revision").expect("revision");
    c.ok(&endpoints, &["put", "k", "v2"]);
    let old = old_revision.to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let compacted = loop {
        let output = c.etcdctl(&endpoints, &["get", "k", "--rev", &old], None);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if stderr.contains("required revision has been compacted") {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(compacted, "revision {old} was compacted\n{}", c.logs());
    assert!(
        c.logs().contains("auto-compaction: compacting to revision"),
        "{}",
        c.logs()
    );
    let latest = c.ok(&endpoints, &["get", "k", "--print-value-only"]);
    assert_eq!(latest, "v2\n", "the latest revision stays");
}

/// etcd's strict reconfiguration check (on by default): with a member down, adding a voter
/// or removing a healthy voter would leave no quorum of connected voters, so both are refused
/// with etcd's errors; removing the member that is down, or adding a learner, is allowed.
#[test]
fn reconfigurations_that_would_lose_the_quorum_are_refused() {
    let Some(mut c) = start(3, false) else { return };
    let leader = c.wait_leader(Duration::from_secs(5)).expect("leader");
    let (healthy, down) = ((leader + 1) % 3, (leader + 2) % 3);
    let healthy_id = c.member_id(healthy).expect("id");
    let down_id = c.member_id(down).expect("id");
    c.kill(down);
    let to_leader = c.endpoint(leader);
    let refused = |c: &ProcCluster, args: &[&str], expected: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output = c.etcdctl(&to_leader, args, None);
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            if stderr.contains(expected) {
                return;
            }
            // The leader may not have noticed the link is down yet.
            assert!(
                Instant::now() < deadline,
                "{args:?}: {stderr}\n{}",
                c.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let new_peer = format!(
        "--peer-urls=http://127.0.0.1:{}",
        tally_tests::process::free_port()
    );
    refused(
        &c,
        &["member", "add", "extra", &new_peer],
        "unhealthy cluster",
    );
    let healthy_hex = format!("{healthy_id:x}");
    refused(&c, &["member", "remove", &healthy_hex], "unhealthy cluster");
    // As etcd 3.4's mayAddMember: a learner too needs every voter connected.
    refused(
        &c,
        &["member", "add", "learner", &new_peer, "--learner"],
        "unhealthy cluster",
    );
    let list = c.ok(&to_leader, &["member", "list"]);
    assert_eq!(list.lines().count(), 3, "nothing changed: {list}");
    c.ok(&to_leader, &["member", "remove", &format!("{down_id:x}")]);
    let list = c.ok(&to_leader, &["member", "list"]);
    assert!(
        !list.contains(&format!("{down_id:x}")),
        "the down member went: {list}"
    );
    let learner = c.ok(
        &to_leader,
        &["member", "add", "learner", &new_peer, "--learner"],
    );
    assert!(learner.contains("added to cluster"), "{learner}");
}

/// gRPC's standard health service answers as etcd 3.4's does: the overall service ("") is
/// SERVING for Check and Watch (whose stream stays open), and another name is unknown.
#[test]
fn the_grpc_health_service_answers_as_etcds() {
    let Some(c) = start(1, false) else { return };
    let port = c.members[0].client_port;
    let serving: &[u8] = &[0x08, 0x01];
    let check = tally_tests::h2raw::call(port, "/grpc.health.v1.Health/Check", &[]);
    assert_eq!(check, Some((0, Bytes::from_static(serving))));
    let unknown = [0x0a, 0x03, b'f', b'o', b'o'];
    let check = tally_tests::h2raw::unary(port, "/grpc.health.v1.Health/Check", &unknown);
    assert_eq!(check, Some(5), "NOT_FOUND");
    let watch = tally_tests::h2raw::first_stream_message(port, "/grpc.health.v1.Health/Watch", &[]);
    assert_eq!(watch.as_deref(), Some(serving));
    let watch =
        tally_tests::h2raw::first_stream_message(port, "/grpc.health.v1.Health/Watch", &unknown);
    assert_eq!(watch.as_deref(), Some(&[0x08, 0x03][..]), "SERVICE_UNKNOWN");
}

#[test]
fn crash_mid_write_loses_no_acknowledged_write() {
    let Some(mut c) = start(3, false) else { return };
    let leader = c.wait_leader(Duration::from_secs(5)).expect("leader");
    let endpoint = c.endpoint(leader);
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        if i == 20 {
            // SIGKILL the leader in the middle of the write loop.
            c.kill(leader);
        }
        let endpoints = if i < 20 {
            endpoint.clone()
        } else {
            endpoints_of(&mut c)
        };
        if put(&c, &endpoints, &format!("crash{i}"), &i.to_string()) {
            acknowledged.push(i);
        }
    }
    c.restart(leader);
    assert!(c.wait_leader(Duration::from_secs(15)).is_some());
    let all = endpoints_of(&mut c);
    assert!(
        acknowledged.len() >= 20,
        "writes before the crash were acknowledged"
    );
    for i in acknowledged {
        assert_eq!(
            get(&c, &all, &format!("crash{i}")),
            i.to_string(),
            "acknowledged write crash{i} lost"
        );
    }
}

#[test]
fn snapshots_compact_the_log_and_a_lagging_member_catches_up_from_one() {
    let Some((mut c, leader, lagging)) = start_with_lagging_member(40) else {
        return;
    };
    let live = endpoints_of(&mut c);
    for i in 0..200 {
        assert!(put(&c, &live, &format!("s{i:03}"), &i.to_string()));
    }
    let snap_dir = c.members[leader].data_dir().join("member").join("snap");
    let snapshots = std::fs::read_dir(&snap_dir).map(|d| d.count()).unwrap_or(0);
    assert!(
        snapshots > 0,
        "the leader wrote snapshot files in {}",
        snap_dir.display()
    );
    let endpoint = restart_and_catch_up(&mut c, lagging, ("s199", "199"), Duration::from_secs(20));
    let first = c.ok(
        &endpoint,
        &["get", "s000", "--consistency=s", "--print-value-only"],
    );
    assert_eq!(first, "0\n");
    // Every member restarts from its own snapshot plus WAL.
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.restart(i);
    }
    assert!(
        c.wait_leader(Duration::from_secs(20)).is_some(),
        "{}",
        c.logs()
    );
    let all = endpoints_of(&mut c);
    assert_eq!(get(&c, &all, "s123"), "123");
    refuses_to_start_from_a_damaged_snapshot(&mut c, lagging);
}

/// The files of `dir` ending in `.extension`, sorted by name.
fn files_with_extension(dir: &std::path::Path, extension: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    files.sort();
    files
}

/// Restarts `member` and waits up to 10 s for it to stop by itself; its whole log and this
/// run's last line (the log file holds every run of the member: the verdict is the last line).
fn restart_expecting_a_stop(c: &mut ProcCluster, member: usize) -> (String, String) {
    c.restart(member);
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.members[member].is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = c.members[member].log_text();
    let last = log.lines().last().unwrap_or_default().to_string();
    (log, last)
}

/// A flipped byte inside the written part of a member's WAL stops it at start with an error
/// naming the segment and the offset, rather than a log cut short at the damage (which would
/// forget acknowledged entries); the other members go on serving.
#[test]
fn a_damaged_wal_stops_the_member_naming_file_and_offset() {
    let Some(mut c) = start(3, false) else { return };
    let leader = c.wait_leader(Duration::from_secs(5)).expect("leader");
    let victim = (leader + 1) % 3;
    let live = endpoints_of(&mut c);
    for i in 0..30 {
        assert!(put(&c, &live, &format!("w{i:02}"), "v"));
    }
    c.kill(victim);
    let wal_dir = c.members[victim].data_dir().join("member").join("wal");
    let segments = files_with_extension(&wal_dir, "wal");
    let first = segments.first().expect("a segment");
    let mut bytes = std::fs::read(first).expect("read segment");
    // Early in the segment: inside the bootstrap entries, long before the last write.
    bytes[300] ^= 0x10;
    std::fs::write(first, bytes).expect("write segment");
    let (log, last) = restart_expecting_a_stop(&mut c, victim);
    let name = first.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        !c.members[victim].is_running()
            && last.contains("fatal")
            && last.contains(name)
            && last.contains("at byte offset"),
        "a member with a damaged WAL must stop naming the segment\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    let rest = c.endpoints(&[(victim + 1) % 3, (victim + 2) % 3]);
    assert!(put(&c, &rest, "after", "damage"), "the others serve");
}

/// A flipped byte in a member's snapshot files stops it at start with a clear error,
/// before it serves anything from a store built out of it.
fn refuses_to_start_from_a_damaged_snapshot(c: &mut ProcCluster, member: usize) {
    let snap_dir = c.members[member].data_dir().join("member").join("snap");
    c.kill(member);
    // Every file: the WAL's marker may point at the newest or, if the kill came between a
    // snapshot file and its marker, at the one before.
    let files = files_with_extension(&snap_dir, "snap");
    assert!(
        !files.is_empty(),
        "snapshot files in {}",
        snap_dir.display()
    );
    for file in &files {
        let mut bytes = std::fs::read(file).expect("read snapshot");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(file, bytes).expect("write snapshot");
    }
    let (log, last) = restart_expecting_a_stop(c, member);
    assert!(
        !c.members[member].is_running() && last.contains("fatal") && last.contains("snapshot"),
        "a member with a damaged snapshot must stop with an error\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// A snapshot far larger than one peer frame (16 MiB) still reaches a lagging member: it
/// travels in chunks between the other messages, so heartbeats keep flowing meanwhile.
#[test]
fn a_lagging_member_catches_up_from_a_snapshot_larger_than_a_peer_frame() {
    const VALUE_BYTES: usize = 512 * 1024;
    const PUTS: usize = 80;
    let Some((mut c, leader, lagging)) = start_with_lagging_member(20) else {
        return;
    };
    let live = endpoints_of(&mut c);
    for i in 0..PUTS {
        let value = format!("{i:04}").repeat(VALUE_BYTES / 4);
        let output = c.etcdctl(&live, &["put", &format!("big{i:03}")], Some(&value));
        assert!(
            output.status.success(),
            "put {i}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let snap_dir = c.members[leader].data_dir().join("member").join("snap");
    let largest = std::fs::read_dir(&snap_dir)
        .expect("snap dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    assert!(
        largest > 17 << 20,
        "the leader's snapshot ({largest} bytes) is larger than a peer frame"
    );
    let last = PUTS - 1;
    let expected = format!("{last:04}").repeat(VALUE_BYTES / 4);
    let endpoint = restart_and_catch_up(
        &mut c,
        lagging,
        (&format!("big{last:03}"), &expected),
        Duration::from_secs(30),
    );
    let count = c.ok(
        &endpoint,
        &[
            "get",
            "big",
            "--prefix",
            "--keys-only",
            "--consistency=s",
            "-w",
            "json",
        ],
    );
    assert_eq!(
        tally_tests::process::json_u64(&count, "count"),
        Some(PUTS as u64),
        "{count}"
    );
    assert_received_snapshot_is_the_leaders_file(&c, leader, lagging);
}

/// The lagging member wrote the snapshot it installed to its own snapshot directory as the
/// chunks arrived: byte for byte the leader's file, with no temporary file left behind.
fn assert_received_snapshot_is_the_leaders_file(c: &ProcCluster, leader: usize, lagging: usize) {
    let log = c.members[lagging].log_text();
    let installed: u64 = log
        .lines()
        .filter_map(|l| l.split("installed snapshot at index ").nth(1))
        .next_back()
        .and_then(|n| n.trim().parse().ok())
        .expect("an installed snapshot");
    let names = |member: usize| -> Vec<String> {
        let dir = c.members[member].data_dir().join("member").join("snap");
        std::fs::read_dir(dir)
            .expect("snap dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect()
    };
    let received = names(lagging);
    assert!(
        received.iter().all(|n| !n.ends_with(".tmp")),
        "no temporary file left: {received:?}"
    );
    let prefix = format!("{installed:016x}-");
    let name = received
        .iter()
        .find(|n| n.starts_with(&prefix) && n.ends_with(".snap"))
        .unwrap_or_else(|| panic!("snapshot {installed} in {received:?}"));
    let read = |member: usize| {
        let path = c.members[member]
            .data_dir()
            .join("member")
            .join("snap")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    assert!(
        read(lagging) == read(leader),
        "{name} differs from the leader's"
    );
}

/// A snapshot whose file cannot be written leaves the core's log compacted all the same; the
/// leader retries it after a few seconds even in an idle cluster, and a lagging member then
/// catches up from it.
#[test]
fn a_failed_snapshot_is_retried_and_a_lagging_member_then_catches_up() {
    let Some((mut c, leader, lagging)) = start_with_lagging_member(20) else {
        return;
    };
    // Root ignores permissions, so the snapshot directory becomes a plain file instead.
    let snap_dir = c.members[leader].data_dir().join("member").join("snap");
    std::fs::remove_dir_all(&snap_dir).expect("remove snap dir");
    std::fs::write(&snap_dir, b"not a directory").expect("block snap dir");
    let live = endpoints_of(&mut c);
    for i in 0..60 {
        assert!(put(&c, &live, &format!("f{i:02}"), &i.to_string()));
    }
    // The first failure compacts at 20 (keeping 20 trailing entries, so the lagging member
    // could still be served from the log); the retry, 5 s later, compacts at the last index.
    let wait_log = |what: &str, times: usize| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while c.members[leader].log_text().matches(what).count() < times {
            assert!(
                Instant::now() < deadline,
                "no {what:?} x{times}\n{}",
                c.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_log("snapshot failed", 2);
    std::fs::remove_file(&snap_dir).expect("unblock");
    std::fs::create_dir(&snap_dir).expect("snap dir again");
    // Nothing is written meanwhile: the retry writes the snapshot the core compacted to.
    wait_log("saved snapshot", 1);
    restart_and_catch_up(&mut c, lagging, ("f59", "59"), Duration::from_secs(30));
    assert!(
        std::fs::read_dir(&snap_dir).expect("snap dir").count() > 0,
        "the retry wrote the file"
    );
}

#[test]
fn the_leader_revokes_expired_leases_and_their_keys() {
    let Some(mut c) = start(3, false) else { return };
    let all = endpoints_of(&mut c);
    let grant = c.ok(&all, &["lease", "grant", "2"]);
    let id = grant
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    c.ok(&all, &["put", "ephemeral", "x", &format!("--lease={id}")]);
    assert_eq!(get(&c, &all, "ephemeral"), "x");
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && !get(&c, &all, "ephemeral").is_empty() {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        get(&c, &all, "ephemeral"),
        "",
        "the key went with its expired lease"
    );
    let ttl = c.ok(&all, &["lease", "timetolive", &id]);
    assert!(ttl.contains("already expired"), "{ttl}");
}

#[test]
fn a_keep_alive_that_closes_its_side_is_answered_by_followers_too() {
    use prost::Message as _;
    use tally_kvstore::proto::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
    let Some(mut c) = start(3, false) else { return };
    let leader = c.wait_leader(Duration::from_secs(5)).expect("leader");
    let all = endpoints_of(&mut c);
    let grant = c.ok(&all, &["lease", "grant", "60"]);
    let id = i64::from_str_radix(grant.split_whitespace().nth(1).expect("lease id"), 16)
        .expect("hex id");
    for member in [leader, (leader + 1) % 3] {
        let request = LeaseKeepAliveRequest { id };
        let port = c.members[member].client_port;
        // One message, then END_STREAM: the client has closed its side before the answer.
        let (status, body) = tally_tests::h2raw::call(
            port,
            "/etcdserverpb.Lease/LeaseKeepAlive",
            &request.encode_to_vec(),
        )
        .expect("answer");
        assert_eq!(status, 0, "member {member}");
        let response = LeaseKeepAliveResponse::decode(body)
            .expect("a keep-alive answer before the stream ends");
        assert_eq!((response.id, response.ttl), (id, 60), "member {member}");
    }
}

/// A keep-alive sent to a follower that has not yet applied the lease's grant is not answered
/// "not found" from that stale state: the follower confirms with the leader's commit index
/// first (etcd forwards keep-alives to the leader). The follower here is cut off while the
/// lease is granted and healed while its keep-alive waits.
#[test]
fn a_keep_alive_on_a_follower_behind_the_grant_finds_the_lease() {
    let Some(mut c) = start(3, true) else { return };
    let leader = c.wait_leader(Duration::from_secs(5)).expect("leader");
    let behind = (leader + 1) % 3;
    let behind_id = c.member_id(behind).expect("id");
    c.control.isolate(behind_id);
    let granted = c.ok(&c.endpoint(leader), &["lease", "grant", "60"]);
    let lease = granted
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    let keep_alive = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", c.endpoint(behind)))
        .args([
            "--command-timeout=10s",
            "lease",
            "keep-alive",
            "--once",
            &lease,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl");
    std::thread::sleep(Duration::from_millis(150));
    c.control.heal();
    let output = keep_alive.wait_with_output().expect("etcdctl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains(&format!("lease {lease} keepalived with TTL(60)")),
        "{text}\n{}",
        c.logs()
    );
}
