//! Once a member has bootstrapped, its identity and membership come from its data directory,
//! as etcd's do: restarting it with another `--initial-cluster-token` or another
//! `--initial-cluster` changes neither its member ID nor the member list it serves.

use std::time::{Duration, Instant};

mod common;

use common::{connect, runtime};
use etcd_client::GetOptions;
use tally_tests::http::get as http_get;
use tally_tests::process::{Options, ProcCluster, etcdctl_available};

fn start() -> Option<ProcCluster> {
    if !etcdctl_available() {
        return None;
    }
    let mut cluster = ProcCluster::start(3, Options::default());
    assert!(
        cluster.wait_leader(Duration::from_secs(20)).is_some(),
        "no leader\n{}",
        cluster.logs()
    );
    Some(cluster)
}

/// `member list` as etcdctl prints it, through `member`, sorted.
fn member_list(c: &ProcCluster, member: usize) -> Vec<String> {
    let text = c.ok(&c.endpoint(member), &["member", "list"]);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Restarts `member` with `flags` changed; waits until it serves a linearizable read again
/// (it rejoined its cluster under its old ID) and returns its member ID then.
fn restart_changed(c: &mut ProcCluster, member: usize, flags: &[String]) -> u64 {
    c.kill(member);
    c.restart_with(member, flags);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let read = c.etcdctl(&c.endpoint(member), &["get", "probe"], None);
        if read.status.success() {
            return c.member_id(member).expect("member id");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "member {member} did not rejoin after a restart with {flags:?}\n{}",
        c.logs()
    );
}

#[test]
fn a_restart_with_another_cluster_token_keeps_the_member_id() {
    let Some(mut c) = start() else { return };
    let member = 1;
    let id = c.member_id(member).expect("member id");
    let before = member_list(&c, 0);
    c.ok(&c.endpoint(0), &["put", "probe", "1"]);
    let after_id = restart_changed(
        &mut c,
        member,
        &["--initial-cluster-token=another-token".to_string()],
    );
    assert_eq!(after_id, id, "the member ID changed\n{}", c.logs());
    assert_eq!(member_list(&c, member), before);
    let log = c.members[member].log_text();
    assert!(
        log.contains("--initial-cluster-token is ignored"),
        "no warning:\n{log}"
    );
}

#[test]
fn a_restart_with_another_initial_cluster_keeps_the_member_list() {
    let Some(mut c) = start() else { return };
    let member = 2;
    let id = c.member_id(member).expect("member id");
    let before = member_list(&c, 0);
    c.ok(&c.endpoint(0), &["put", "probe", "1"]);
    // A typo in the flags: the member's own URL is right, another member's name and URL are not.
    let own = c.peer_url(member);
    let name = c.members[member].name.clone();
    let first = c.members[0].name.clone();
    let wrong = format!(
        "--initial-cluster={name}={own},{first}=http://127.0.0.1:1,stranger=http://127.0.0.1:2"
    );
    let after_id = restart_changed(&mut c, member, &[wrong]);
    assert_eq!(after_id, id, "the member ID changed\n{}", c.logs());
    assert_eq!(
        member_list(&c, member),
        before,
        "the member list follows the flags\n{}",
        c.logs()
    );
    let log = c.members[member].log_text();
    assert!(
        log.contains("--initial-cluster is ignored"),
        "no warning:\n{log}"
    );
}

/// The error text of a client call's answer; `None` when it succeeded.
fn error_of<T: std::fmt::Debug>(result: Result<T, etcd_client::Error>) -> Option<String> {
    result.err().map(|e| e.to_string())
}

/// A member started to join a cluster that never added it hears from no leader: it must not
/// serve its empty store as if it were the cluster's, report itself healthy, or run on.
#[test]
fn a_member_that_has_not_joined_serves_no_reads() {
    let Some(mut c) = start() else { return };
    c.ok(&c.endpoint(0), &["put", "probe", "1"]);
    let stranger = c.add_member_slot();
    c.start_joining(stranger);
    std::thread::sleep(Duration::from_millis(1500));
    let health = http_get(c.members[stranger].client_port, "/health");
    assert!(health.contains("\"health\":\"false\""), "{health}");
    // Another project's client, which does not retry: each answer as the member gave it.
    let answers = runtime().block_on(async {
        let mut client = connect(&c, stranger).await;
        let serializable = GetOptions::new().with_serializable();
        let mut answers = vec![
            (
                "serializable get",
                error_of(client.get("probe", Some(serializable)).await),
            ),
            (
                "linearizable get",
                error_of(client.get("probe", None).await),
            ),
            ("lease list", error_of(client.leases().await)),
            ("member list", error_of(client.member_list().await)),
        ];
        let watch = match client.watch("probe", None).await {
            Ok(mut stream) => error_of(stream.message().await),
            Err(e) => Some(e.to_string()),
        };
        answers.push(("watch", watch));
        answers
    });
    for (what, answer) in answers {
        assert!(
            answer
                .as_deref()
                .is_some_and(|e| e.contains("etcdserver: no leader")),
            "a member that never joined answered a {what}: {answer:?}\n{}",
            c.logs()
        );
    }
    // Its peers do not know it: it stops, saying so, as etcd does.
    let deadline = Instant::now() + Duration::from_secs(40);
    while c.members[stranger].is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = c.members[stranger].log_text();
    assert!(!c.members[stranger].is_running(), "it runs on:\n{log}");
    assert!(
        log.contains("cannot join its cluster") && log.contains("unknown member id"),
        "{log}"
    );
}

/// A member whose data directory was wiped, started again with the same flags, would vote and
/// acknowledge as if it had never run: its peers know it has, and it refuses to start with
/// etcd's message, leaving its data directory empty; the cluster goes on.
#[test]
fn a_member_with_a_wiped_data_dir_refuses_to_start() {
    let Some(mut c) = start() else { return };
    for n in 0..5 {
        c.ok(&c.endpoint(0), &["put", &format!("k{n}"), "v"]);
    }
    let wiped = 2;
    c.kill(wiped);
    std::fs::remove_dir_all(c.members[wiped].data_dir()).expect("wipe the data dir");
    // Twice: a refused start must leave nothing that lets the next one through.
    for attempt in 1..=2 {
        c.restart(wiped);
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.members[wiped].is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = c.members[wiped].log_text();
        assert!(
            !c.members[wiped].is_running(),
            "start {attempt}: a wiped member kept running:\n{log}"
        );
        assert_eq!(
            log.matches("has already been bootstrapped").count(),
            attempt,
            "start {attempt}:\n{log}"
        );
        c.kill(wiped);
    }
    // The two others go on. When the wiped member was the leader they elect one first, and a
    // loaded machine may take a few tries.
    let others = c.endpoints(&[(wiped + 1) % 3, (wiped + 2) % 3]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let put = c.etcdctl(&others, &["put", "after", "v"], None);
        if put.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the others took no write: {}\n{}",
            String::from_utf8_lossy(&put.stderr),
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A member removed from its cluster stops once it applies its removal, as etcd's does, with
/// etcd's reason. The leader is removed: it surely applies the removal it commits, where a
/// follower may be cut off by the others before the commit reaches it.
#[test]
fn a_removed_member_stops() {
    let Some(mut c) = start() else { return };
    let removed = c.wait_leader(Duration::from_secs(10)).expect("leader");
    let other = (removed + 1) % 3;
    let id = c.member_id(removed).expect("member id");
    c.ok(
        &c.endpoint(other),
        &["member", "remove", &format!("{id:x}")],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.members[removed].is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = c.members[removed].log_text();
    assert!(
        !c.members[removed].is_running(),
        "a removed member runs on:\n{log}"
    );
    assert!(
        log.contains("permanently removed from the cluster"),
        "{log}"
    );
    // The two left elect a leader among themselves and take writes.
    assert!(
        c.wait_leader(Duration::from_secs(20)).is_some(),
        "{}",
        c.logs()
    );
    c.ok(&c.endpoint(other), &["put", "after", "v"]);
}

/// A member restarted on an old copy of its data directory (a backup put back by hand) holds
/// less than it acknowledged: the leader knows how much it acknowledged, and the member refuses
/// to start, before it votes, instead of rejoining with a log that went back in time.
#[test]
fn a_member_restarted_on_an_old_copy_of_its_data_refuses_to_start() {
    let Some(mut c) = start() else { return };
    let leader = c.wait_leader(Duration::from_secs(10)).expect("leader");
    let member = (leader + 1) % 3;
    c.ok(&c.endpoint(leader), &["put", "probe", "1"]);
    c.kill(member);
    let data_dir = c.members[member].data_dir().to_path_buf();
    let backup = data_dir.with_extension("backup");
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        let _ = std::fs::remove_dir_all(to);
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .expect("cp");
        assert!(
            status.success(),
            "cp -a {} {}",
            from.display(),
            to.display()
        );
    };
    copy(&data_dir, &backup);
    c.restart(member);
    for n in 0..20 {
        c.ok(&c.endpoint(leader), &["put", &format!("k{n}"), "v"]);
    }
    // Served linearizably, so applied, so durable and acknowledged.
    let read = c.ok(&c.endpoint(member), &["get", "k19", "--print-value-only"]);
    assert_eq!(read.trim(), "v");
    c.kill(member);
    copy(&backup, &data_dir);
    c.restart(member);
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.members[member].is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = c.members[member].log_text();
    assert!(
        !c.members[member].is_running(),
        "a member on an old copy of its data runs on:\n{log}"
    );
    assert!(
        log.contains("older than what it acknowledged"),
        "the exit does not say why:\n{log}"
    );
    c.ok(&c.endpoint(leader), &["put", "after", "v"]);
}

/// A follower removed while it was cut off (here, paused) never applies its removal. Once it
/// has had no leader for a while it asks every peer, they all answer that they do not know it,
/// and it stops with etcd's reason instead of campaigning for ever.
#[test]
fn a_member_removed_while_cut_off_stops() {
    let Some(mut c) = start() else { return };
    let leader = c.wait_leader(Duration::from_secs(10)).expect("leader");
    let removed = (leader + 1) % 3;
    let id = c.member_id(removed).expect("member id");
    c.pause(removed);
    c.ok(
        &c.endpoint(leader),
        &["member", "remove", &format!("{id:x}")],
    );
    c.ok(&c.endpoint(leader), &["put", "after-removal", "v"]);
    c.resume(removed);
    let deadline = Instant::now() + Duration::from_secs(40);
    while c.members[removed].is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = c.members[removed].log_text();
    assert!(
        !c.members[removed].is_running(),
        "a member removed while cut off runs on:\n{log}"
    );
    assert!(
        log.contains("permanently removed from the cluster"),
        "{log}"
    );
    // It never served the write it missed as if it were a member.
    c.ok(&c.endpoint(leader), &["put", "later", "v"]);
}
