//! A full disk under one member's WAL: the member says so, the NOSPACE alarm goes through Raft,
//! writes are refused with etcd's "database space exceeded" while reads go on, and once there
//! is room again (and the alarm is disarmed) writes are taken again with nothing acknowledged
//! lost. The disk is a small tmpfs the test mounts, so it needs root: under `CI=true` a
//! non-root run fails, elsewhere it skips with a message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{connect, runtime};
use tally_tests::http::get as http_get;
use tally_tests::process::{Options, ProcCluster, TempDir, etcdctl_available};

/// The tmpfs: room for the member's first WAL segment (64 MiB), a little more, and the
/// ballast that keeps the second segment from fitting until the test removes it.
const TMPFS_MIB: u64 = 160;
/// Free space left beside the ballast: less than a WAL segment.
const FREE_BESIDE_BALLAST_BYTES: u64 = 40 << 20;
const VALUE_BYTES: usize = 64 << 10;
/// More puts than the tmpfs can hold: the test fails if the disk never fills.
const PUTS_MAX: usize = (TMPFS_MIB as usize) * 1024 * 1024 / VALUE_BYTES * 2;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(size_mib: u64) -> Tmpfs {
        let dir = TempDir::new("full-disk");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount a tmpfs at {}",
            dir.path().display()
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free_bytes(&self) -> u64 {
        let stat = rustix::fs::statvfs(self.path()).expect("statvfs");
        stat.f_bavail * stat.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn may_mount() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the disk-full test mounts a tmpfs and must run as root under CI=true"
    );
    eprintln!("skipped: the disk-full test mounts a tmpfs, which needs root");
    false
}

fn value(n: usize) -> Vec<u8> {
    let mut value = format!("value-{n}-").into_bytes();
    value.resize(VALUE_BYTES, b'x');
    value
}

/// Waits until `member` serves a linearizable read.
fn wait_serving(c: &ProcCluster, member: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if c.etcdctl(&c.endpoint(member), &["get", "probe"], None)
            .status
            .success()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("member {member} does not serve\n{}", c.logs());
}

#[test]
fn a_full_disk_refuses_writes_serves_reads_and_recovers() {
    if !etcdctl_available() || !may_mount() {
        return;
    }
    let tmpfs = Tmpfs::mount(TMPFS_MIB);
    let mut c = ProcCluster::start(3, Options::default());
    assert!(
        c.wait_leader(Duration::from_secs(20)).is_some(),
        "{}",
        c.logs()
    );
    c.ok(&c.endpoint(0), &["put", "probe", "1"]);

    // Member 2 moves onto the tmpfs.
    let full = 2;
    c.kill(full);
    let data_dir: PathBuf = tmpfs.path().join("m3.tally");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(c.members[full].data_dir())
        .arg(&data_dir)
        .status()
        .expect("cp");
    assert!(copied.success());
    c.restart_with(full, &[format!("--data-dir={}", data_dir.display())]);
    wait_serving(&c, full);
    let ballast = tmpfs.path().join("ballast");
    let ballast_bytes = tmpfs.free_bytes().saturating_sub(FREE_BESIDE_BALLAST_BYTES);
    std::fs::write(&ballast, vec![0u8; ballast_bytes as usize]).expect("ballast");

    // Writes through a healthy member, until the alarm refuses them.
    let (acknowledged, refusal) = runtime().block_on(async {
        let mut client = connect(&c, 0).await;
        let mut acknowledged = BTreeMap::new();
        for n in 0..PUTS_MAX {
            let key = format!("k{n:05}");
            match client.put(key.clone(), value(n), None).await {
                Ok(_) => {
                    acknowledged.insert(key, n);
                }
                Err(e) if e.to_string().contains("database space exceeded") => {
                    return (acknowledged, e.to_string());
                }
                // Not acknowledged: it may or may not be applied.
                Err(_) => {}
            }
        }
        panic!(
            "{PUTS_MAX} puts never filled the disk; the full member's log:\n{}",
            c.members[full].log_text()
        );
    });
    assert!(!acknowledged.is_empty(), "{refusal}");
    let log = c.members[full].log_text();
    assert!(log.contains("the disk is full"), "{log}");
    assert!(
        c.members[full].is_running(),
        "a full disk stopped the member:\n{log}"
    );

    // Refused everywhere; reads go on, on the full member too (from what it has applied).
    for member in 0..3 {
        let put = c.etcdctl(&c.endpoint(member), &["put", "refused", "v"], None);
        let stderr = String::from_utf8_lossy(&put.stderr);
        assert!(
            !put.status.success() && stderr.contains("database space exceeded"),
            "member {member} took a write while the disk is full: {stderr}"
        );
    }
    let read = c.ok(
        &c.endpoint(full),
        &["get", "probe", "--consistency=s", "--print-value-only"],
    );
    assert_eq!(read.trim(), "1");
    let alarms = c.ok(&c.endpoint(0), &["alarm", "list"]);
    assert!(alarms.contains("NOSPACE"), "{alarms}");

    // Room again: the member writes what it kept by itself.
    std::fs::remove_file(&ballast).expect("remove the ballast");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http_get(c.members[full].client_port, "/metrics").contains("tally_wal_out_of_space 0") {
        assert!(
            Instant::now() < deadline,
            "the member did not recover\n{}",
            c.members[full].log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    c.ok(&c.endpoint(full), &["alarm", "disarm"]);
    c.ok(&c.endpoint(full), &["put", "after", "v"]);

    // Every acknowledged write, on every member.
    runtime().block_on(async {
        for member in 0..3 {
            let mut client = connect(&c, member).await;
            for (key, n) in &acknowledged {
                let response = client.get(key.as_str(), None).await.expect("get");
                let stored = response.kvs().first().map(|kv| kv.value().to_vec());
                assert_eq!(
                    stored,
                    Some(value(*n)),
                    "member {member} lost acknowledged {key}"
                );
            }
        }
    });
}
