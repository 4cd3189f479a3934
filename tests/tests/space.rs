//! The space quota: etcd's 2 GiB by default, and a quota the member cannot keep (none at all,
//! or more than the machine's memory, where tally keeps its store) refused at start.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tally_tests::http::get as http_get;
use tally_tests::process::{Options, ProcCluster, TempDir, etcdctl_available, tallyd_path};

#[test]
fn the_default_quota_is_etcds_2_gib() {
    if !etcdctl_available() {
        return;
    }
    let mut c = ProcCluster::start(1, Options::default());
    assert!(
        c.wait_leader(Duration::from_secs(20)).is_some(),
        "{}",
        c.logs()
    );
    let metrics = http_get(c.members[0].client_port, "/metrics");
    assert!(
        metrics.contains("etcd_server_quota_backend_bytes 2147483648"),
        "{metrics}"
    );
}

/// Starts a lone member with `--quota-backend-bytes=quota`; its exit code (`None` if it was
/// still running after 10 s, and was killed) and what it printed.
fn start_alone(quota: &str) -> (Option<i32>, String) {
    let dir = TempDir::new("quota");
    let mut child = Command::new(tallyd_path())
        .arg(format!(
            "--data-dir={}",
            dir.path().join("m.tally").display()
        ))
        .arg("--listen-client-urls=http://127.0.0.1:0")
        .arg("--advertise-client-urls=http://127.0.0.1:2379")
        .arg("--listen-peer-urls=http://127.0.0.1:0")
        .arg(format!("--quota-backend-bytes={quota}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tallyd");
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    (code, stderr)
}

#[test]
fn a_quota_the_member_cannot_keep_is_refused_at_start() {
    let (code, stderr) = start_alone("-1");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("must have a bound"), "{stderr}");
    let memory_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .expect("meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("MemTotal");
    let (code, stderr) = start_alone(&(memory_kib * 1024 * 2).to_string());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("more than this machine's memory"),
        "{stderr}"
    );
}
