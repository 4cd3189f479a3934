//! A member its peers refuse (a peer certificate from another CA, another cluster token)
//! never serves clients and stops with the reason, where etcd exits too; the cluster goes on.

use std::time::{Duration, Instant};

use tally_tests::process::{Certs, Options, ProcCluster, TempDir, etcdctl_available};

/// How long the member may take to stop: the watchdog's 10 s of refusals, with room for a
/// slow machine.
const STOP_WITHIN: Duration = Duration::from_secs(40);

fn start(options: Options) -> Option<ProcCluster> {
    if !etcdctl_available() {
        return None;
    }
    let mut cluster = ProcCluster::start(3, options);
    assert!(
        cluster.wait_leader(Duration::from_secs(20)).is_some(),
        "no leader\n{}",
        cluster.logs()
    );
    Some(cluster)
}

/// Adds a member, starts it with `flags` changed, and checks that it serves no read while it
/// runs and stops within [`STOP_WITHIN`] with a message naming `reason`.
fn added_member_is_refused_and_stops(c: &mut ProcCluster, flags: &[String], reason: &str) {
    c.ok(&c.endpoint(0), &["put", "probe", "1"]);
    let slot = c.add_member_slot();
    let name = c.members[slot].name.clone();
    let peer_url = c.peer_url(slot);
    c.ok(
        &c.endpoint(0),
        &["member", "add", &name, &format!("--peer-urls={peer_url}")],
    );
    c.start_joining_with(slot, flags);
    let deadline = Instant::now() + STOP_WITHIN;
    let mut reads = 0;
    while c.members[slot].is_running() && Instant::now() < deadline {
        let read = c.etcdctl(
            &c.endpoint(slot),
            &["get", "probe", "--consistency=s"],
            None,
        );
        let text = String::from_utf8_lossy(&read.stdout).into_owned()
            + &String::from_utf8_lossy(&read.stderr);
        assert!(
            !read.status.success() && !text.contains("probe\n1"),
            "a member its peers refuse served a read: {text}\n{}",
            c.logs()
        );
        reads += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    let log = c.members[slot].log_text();
    assert!(
        !c.members[slot].is_running(),
        "a member its peers refuse runs on after {STOP_WITHIN:?} ({reads} reads refused):\n{log}"
    );
    assert!(
        log.contains("cannot join its cluster") && log.contains(reason),
        "the exit does not name the reason ({reason}):\n{log}"
    );
    // The three others never depended on it.
    c.ok(&c.endpoint(1), &["put", "after", "v"]);
}

#[test]
fn a_member_with_a_peer_certificate_from_another_ca_never_serves_and_stops() {
    let Some(mut c) = start(Options {
        tls: true,
        ..Options::default()
    }) else {
        return;
    };
    let foreign_dir = TempDir::new("foreign-ca");
    let foreign = Certs::generate(foreign_dir.path());
    let flags = [
        format!("--peer-cert-file={}", foreign.server_cert.display()),
        format!("--peer-key-file={}", foreign.server_key.display()),
        format!("--peer-trusted-ca-file={}", foreign.ca.display()),
    ];
    added_member_is_refused_and_stops(&mut c, &flags, "TLS");
}

#[test]
fn a_member_with_another_cluster_token_never_serves_and_stops() {
    let Some(mut c) = start(Options::default()) else {
        return;
    };
    let flags = ["--initial-cluster-token=another-cluster".to_string()];
    added_member_is_refused_and_stops(&mut c, &flags, "cluster token mismatch");
}
