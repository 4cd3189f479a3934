//! Moving data between etcd 3.4 and tally with snapshot files, against the real thing:
//!
//! - etcd → tally: an etcd member with history (puts, overwrites, deletes, a txn, leases, a
//!   revoke, a compaction and a NOSPACE alarm) → `etcdctl snapshot save` → `tallyd
//!   --restore-snapshot` → tally answers `get --prefix -w json` at every revision, leases and
//!   alarms as etcd did, and goes on from etcd's revision.
//! - tally → etcd: the same history on tally → `etcdctl snapshot save` → `tallyd snapshot
//!   export-etcd` → `etcdctl snapshot status` and `etcdctl snapshot restore` → etcd 3.4 answers
//!   as tally did.
//! - Damaged or foreign files: refused, naming what is wrong, with nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tally_tests::etcd::{
    EtcdMember, etcd_available, etcdctl, etcdctl_ok, etcdctl_with_input, wait_serving,
};
use tally_tests::process::{KillOnDrop, TempDir, free_port, json_u64, tallyd_path};

/// Both programs are needed; under CI=true their absence fails the test.
fn available() -> bool {
    etcd_available() && tally_tests::process::etcdctl_available()
}

/// A value larger than the quota the members run with: putting it raises NOSPACE.
const BIG_VALUE_BYTES: usize = 600_000;
const QUOTA_FLAG: &str = "--quota-backend-bytes=400000";

/// The same history on any member; returns (compacted revision, the revoked lease, the kept
/// lease) as etcdctl prints lease IDs.
fn write_history(endpoint: &str) -> (i64, String, String) {
    let ok = |args: &[&str]| etcdctl_ok(endpoint, args);
    let revision = |out: &str| json_u64(out, "revision").expect("a revision") as i64;
    ok(&["put", "a", "1"]);
    ok(&["put", "b", "1"]);
    ok(&["put", "a", "2"]);
    ok(&["del", "b"]);
    ok(&["put", "dir/x", "1"]);
    ok(&["put", "dir/y", "1"]);
    // One revision, three changes: sub-revisions 0, 1 and 2.
    let txn = "value(\"a\") = \"2\"\n\nput a 3\nput d 1\ndel dir/x\n\nput a no\n\n";
    let out = etcdctl_with_input(endpoint, &["txn"], txn.as_bytes());
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
    let lease = |ttl: &str| {
        let out = ok(&["lease", "grant", ttl]);
        out.split_whitespace().nth(1).expect("lease ID").to_string()
    };
    let kept = lease("600");
    ok(&["put", "leased", "v", &format!("--lease={kept}")]);
    let revoked = lease("300");
    ok(&["put", "short/1", "v", &format!("--lease={revoked}")]);
    ok(&["put", "short/2", "v", &format!("--lease={revoked}")]);
    let compacted = revision(&ok(&["put", "dir/y", "2", "-w", "json"]));
    ok(&["lease", "revoke", &revoked]);
    ok(&["del", "dir/", "--prefix"]);
    ok(&["compaction", &compacted.to_string()]);
    ok(&["put", "a", "4"]);
    ok(&["put", "c", "1"]);
    // Over the quota: refused, and the NOSPACE alarm goes up.
    let big = vec![b'x'; BIG_VALUE_BYTES];
    let out = etcdctl_with_input(endpoint, &["put", "big"], &big);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("database space exceeded"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (compacted, revoked, kept)
}

/// A `get -w json` answer without its header (cluster, member and term differ between
/// members), and the header's revision.
fn without_header(json: &str) -> (String, i64) {
    let revision = json_u64(json, "revision").expect("header revision") as i64;
    let start = json.find("\"header\":{").expect("a header");
    let end = start + json[start..].find('}').expect("header end") + 1;
    let rest = format!("{}{}", &json[..start], &json[end..]);
    (rest.replace("{,", "{").trim().to_string(), revision)
}

/// Every read that can differ: the whole key space at every revision from just below the
/// compacted one to just above the current one, in JSON, and the leases with their keys.
fn answers(endpoint: &str, compacted: i64, current: i64) -> Vec<String> {
    let mut out = Vec::new();
    for rev in compacted - 1..=current + 1 {
        let got = etcdctl(
            endpoint,
            &["get", "", "--prefix", &format!("--rev={rev}"), "-w", "json"],
        );
        let text = if got.status.success() {
            let (body, header_rev) = without_header(&String::from_utf8_lossy(&got.stdout));
            format!("{body} at {header_rev}")
        } else {
            let err = String::from_utf8_lossy(&got.stderr);
            err.lines()
                .filter(|l| l.starts_with("Error:"))
                .collect::<String>()
        };
        out.push(format!("rev {rev}: {text}"));
    }
    let leases = etcdctl_ok(endpoint, &["lease", "list"]);
    let mut ids: Vec<&str> = leases.lines().skip(1).collect();
    ids.sort_unstable();
    for id in ids {
        let ttl = etcdctl_ok(endpoint, &["lease", "timetolive", id, "--keys"]);
        // The remaining TTL runs on each member's own clock.
        let granted = ttl.split(", remaining").next().unwrap_or_default();
        let keys = ttl.split("attached keys").nth(1).unwrap_or_default();
        out.push(format!("{granted} keys {keys}"));
    }
    out.push(etcdctl_ok(endpoint, &["alarm", "list"]));
    out
}

fn current_revision(endpoint: &str) -> i64 {
    json_u64(
        &etcdctl_ok(endpoint, &["get", "a", "-w", "json"]),
        "revision",
    )
    .expect("rev") as i64
}

/// `tallyd` seeded from `file`, on fresh ports, killed when dropped.
fn tally_restored(dir: &Path, file: &Path) -> (KillOnDrop, String) {
    let (client, peer) = (free_port(), free_port());
    let log = std::fs::File::create(dir.join("tally.log")).expect("log");
    let child = Command::new(tallyd_path())
        .arg("--name=restored")
        .arg(format!("--data-dir={}", dir.join("tally").display()))
        .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
        ))
        .arg(format!(
            "--initial-cluster=restored=http://127.0.0.1:{peer}"
        ))
        .arg(format!("--restore-snapshot={}", file.display()))
        .args([
            "--heartbeat-interval=50",
            "--election-timeout=500",
            QUOTA_FLAG,
        ])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn tallyd");
    let endpoint = format!("127.0.0.1:{client}");
    let child = KillOnDrop(child);
    assert!(
        wait_serving(&endpoint, Duration::from_secs(20)),
        "the restored member does not serve:\n{}",
        std::fs::read_to_string(dir.join("tally.log")).unwrap_or_default()
    );
    (child, endpoint)
}

/// After disarming, a put continues the key's life where the source left it.
fn next_put(endpoint: &str) -> String {
    etcdctl_ok(endpoint, &["alarm", "disarm"]);
    let put = etcdctl_ok(endpoint, &["put", "a", "5", "-w", "json"]);
    let get = etcdctl_ok(endpoint, &["get", "a", "-w", "json"]);
    format!(
        "put at {:?}; {}",
        json_u64(&put, "revision"),
        without_header(&get).0
    )
}

#[test]
fn an_etcd_snapshot_restores_into_tally_with_every_revision_lease_and_alarm() {
    if !available() {
        return;
    }
    let dir = TempDir::new("etcd-to-tally");
    let etcd = EtcdMember::start(
        &dir.path().join("etcd"),
        "source",
        free_port(),
        &[QUOTA_FLAG],
    );
    let (compacted, _, _) = write_history(etcd.endpoint());
    let current = current_revision(etcd.endpoint());
    let etcd_answers = answers(etcd.endpoint(), compacted, current);
    assert!(
        etcd_answers.iter().any(|a| a.contains("NOSPACE")),
        "{etcd_answers:?}"
    );
    let file = dir.path().join("etcd.db");
    etcdctl_ok(
        etcd.endpoint(),
        &["snapshot", "save", &file.display().to_string()],
    );
    let etcd_next = next_put(etcd.endpoint());
    drop(etcd);

    let (_tally, endpoint) = tally_restored(dir.path(), &file);
    let tally_answers = answers(&endpoint, compacted, current);
    for (etcd, tally) in etcd_answers.iter().zip(&tally_answers) {
        assert_eq!(etcd, tally);
    }
    assert_eq!(etcd_answers.len(), tally_answers.len());
    // The alarm came over: writes are refused until it is disarmed, as on etcd.
    let refused = etcdctl(&endpoint, &["put", "a", "x"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("database space exceeded"));
    assert_eq!(next_put(&endpoint), etcd_next);
}

#[test]
fn a_tally_snapshot_exported_for_etcd_restores_into_etcd_answering_as_tally_did() {
    if !available() {
        return;
    }
    let dir = TempDir::new("tally-to-etcd");
    let mut cluster = tally_tests::process::ProcCluster::start(
        1,
        tally_tests::process::Options {
            extra_args: &[QUOTA_FLAG],
            ..Default::default()
        },
    );
    assert!(cluster.wait_leader(Duration::from_secs(20)).is_some());
    let endpoint = cluster.endpoint(0);
    let (compacted, _, _) = write_history(&endpoint);
    let current = current_revision(&endpoint);
    let tally_answers = answers(&endpoint, compacted, current);
    let saved = dir.path().join("tally.snap");
    etcdctl_ok(
        &endpoint,
        &["snapshot", "save", &saved.display().to_string()],
    );
    let tally_next = next_put(&endpoint);
    drop(cluster);

    let file = dir.path().join("etcd.db");
    let export = Command::new(tallyd_path())
        .args(["snapshot", "export-etcd"])
        .args([&saved, &file])
        .output()
        .expect("tallyd snapshot export-etcd");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let said = String::from_utf8_lossy(&export.stdout).into_owned();
    let status = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "-w", "json"])
        .arg(&file)
        .output()
        .expect("etcdctl snapshot status");
    assert!(
        status.status.success(),
        "etcdctl snapshot status: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(
        json_u64(&status, "revision"),
        Some(current as u64),
        "{status}"
    );
    let total = json_u64(&status, "totalKey").expect("totalKey");
    assert!(
        said.contains(&format!("{total} keys in its buckets")),
        "{said} / {status}"
    );

    let peer = free_port();
    let data = dir.path().join("restored.etcd");
    let restore = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore"])
        .arg(&file)
        .arg(format!("--data-dir={}", data.display()))
        .args(["--name=restored"])
        .arg(format!(
            "--initial-cluster=restored=http://127.0.0.1:{peer}"
        ))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
        ))
        .stdout(Stdio::null())
        .output()
        .expect("etcdctl snapshot restore");
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let etcd = EtcdMember::start(&data, "restored", peer, &[QUOTA_FLAG]);
    let etcd_answers = answers(etcd.endpoint(), compacted, current);
    for (tally, etcd) in tally_answers.iter().zip(&etcd_answers) {
        assert_eq!(tally, etcd);
    }
    assert_eq!(tally_answers.len(), etcd_answers.len());
    assert_eq!(next_put(etcd.endpoint()), tally_next);
}

fn etcd_seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds/etcd_snapshot_reader/etcd-3.4.23-history.db")
}

/// `tallyd --restore-snapshot FILE` on an empty data directory: its exit status and stderr.
fn restore_fails(dir: &Path, file: &Path) -> String {
    let data = dir.join("data");
    let out = Command::new(tallyd_path())
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--restore-snapshot={}", file.display()))
        .arg(format!(
            "--listen-client-urls=http://127.0.0.1:{}",
            free_port()
        ))
        .arg(format!(
            "--listen-peer-urls=http://127.0.0.1:{}",
            free_port()
        ))
        .output()
        .expect("tallyd");
    assert!(!out.status.success(), "tallyd accepted {}", file.display());
    assert!(
        !data.exists() || std::fs::read_dir(&data).expect("data dir").next().is_none(),
        "nothing is written to the data directory"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn damaged_and_foreign_files_are_refused_with_nothing_written() {
    let dir = TempDir::new("bad-snapshots");
    let good = std::fs::read(etcd_seed()).expect("the etcd-written seed");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let cases = [
        (
            write("truncated.db", &good[..good.len() - 100]),
            "truncated or not an etcd snapshot",
        ),
        (
            write("truncated-at-a-page.db", &good[..4096 * 3]),
            "truncated: the database uses 5 pages of 4096 bytes",
        ),
        (
            write("flipped.db", &{
                let mut g = good.clone();
                g[4096 * 3 + 200] ^= 1;
                g
            }),
            "its SHA-256 trailer does not match its data",
        ),
        (
            write("text.txt", b"this is not a snapshot at all\n"),
            "neither a tally snapshot nor an etcd snapshot",
        ),
    ];
    for (i, (file, want)) in cases.iter().enumerate() {
        let case = TempDir::new(&format!("bad-snapshot-{i}"));
        let err = restore_fails(case.path(), file);
        assert!(err.contains(want), "{}: {err}", file.display());
        assert!(
            err.contains(&file.display().to_string()),
            "names the file: {err}"
        );
    }
}

#[test]
fn export_etcd_refuses_to_overwrite_and_names_a_bad_input() {
    let dir = TempDir::new("export-etcd");
    let out = dir.path().join("out.db");
    std::fs::write(&out, b"keep me").expect("write");
    let run = |from: &Path, to: &Path| {
        Command::new(tallyd_path())
            .args(["snapshot", "export-etcd"])
            .args([from, to])
            .output()
            .expect("tallyd snapshot")
    };
    let refused = run(&etcd_seed(), &out);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&out).expect("read"), b"keep me");
    let missing = run(&dir.path().join("missing.snap"), &dir.path().join("new.db"));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("missing.snap"));
    assert!(!dir.path().join("new.db").exists());
    // An etcd file exports too: etcd's own history, written again.
    let again = dir.path().join("again.db");
    let ok = run(&etcd_seed(), &again);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("revision 9"));
}
