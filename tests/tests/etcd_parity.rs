//! tally answers as etcd 3.4 does, on the wire: the recorder in `tests/fixtures/etcd34/` sends
//! the same fixed sequence of raw gRPC requests to a 3-member tally cluster (and a learner)
//! that it sent to etcd 3.4.23 when the fixtures were recorded, and every answer (gRPC code,
//! message, which fields are set, stable values) must equal etcd's, for every request sent to
//! the leader, a follower and the learner. The few deliberate differences are listed, each
//! with its reason, in `known-differences.tsv`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use tally_tests::process::{TempDir, tallyd_path};

/// The recorder's clusters use BASE+1..BASE+30: a range clear of the kernel's ephemeral
/// ports, which the other process tests take.
const BASE_PORT: u16 = 24_100;

const FILES: [&str; 4] = ["header.tsv", "errors.tsv", "learner.tsv", "status.tsv"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/etcd34")
}

/// Python 3 with grpcio, which the recorder speaks gRPC with. Under `CI=true` it must be there.
fn recorder_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import grpc"])
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!("python3 with grpcio is required under CI=true: pip install grpcio");
    }
    if !found {
        eprintln!("skipping: python3 with grpcio not installed (pip install grpcio)");
    }
    found
}

/// One answer: (case, method, role) -> (code, message, fields, values).
type Answers = BTreeMap<(String, String, String), [String; 4]>;

fn read_answers(path: &Path) -> Answers {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut answers = Answers::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut cols = line.split('\t').map(str::to_string);
        let mut next = || cols.next().unwrap_or_default();
        let key = (next(), next(), next());
        let answer = [next(), next(), next(), next()];
        answers.insert(key, answer);
    }
    answers
}

fn known_differences() -> BTreeSet<(String, String, String)> {
    read_answers(&fixtures().join("known-differences.tsv"))
        .into_keys()
        .collect()
}

#[test]
fn every_answer_equals_etcd_3_4s() {
    if !recorder_available() {
        return;
    }
    let out = TempDir::new("parity");
    let output = Command::new("python3")
        .arg(fixtures().join("record.py"))
        .arg("--server")
        .arg(tallyd_path())
        .args(["--base-port", &BASE_PORT.to_string()])
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("run the recorder");
    assert!(
        output.status.success(),
        "the recorder failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let known = known_differences();
    let mut differences = Vec::new();
    let mut compared = 0;
    for file in FILES {
        let etcd = read_answers(&fixtures().join(file));
        let tally = read_answers(&out.path().join(file));
        for (key, expected) in &etcd {
            if known.contains(key) {
                continue;
            }
            compared += 1;
            match tally.get(key) {
                Some(got) if got == expected => {}
                got => differences.push(format!(
                    "{file} {key:?}\n  etcd:  {expected:?}\n  tally: {got:?}"
                )),
            }
        }
    }
    differences.extend(snapshot_differences(out.path()));
    assert!(compared > 150, "only {compared} answers compared");
    assert!(
        differences.is_empty(),
        "{} answers differ from etcd 3.4's:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// The Snapshot stream's framing: the data in chunks, each with what is left after it and no
/// header, then the SHA-256 alone. The sizes are the store's own, so only the rules compare.
fn snapshot_differences(out: &Path) -> Vec<String> {
    let etcd = read_answers(&fixtures().join("snapshot.tsv"));
    let tally = read_answers(&out.join("snapshot.tsv"));
    let mut differences = Vec::new();
    for role in ["leader", "follower"] {
        let key = |case: &str| {
            (
                case.to_string(),
                "Maintenance/Snapshot".to_string(),
                role.to_string(),
            )
        };
        if etcd.get(&key("Snapshot.last")) != tally.get(&key("Snapshot.last")) {
            differences.push(format!("Snapshot.last on the {role}"));
        }
        let rules = |answers: &Answers| -> Vec<String> {
            answers
                .get(&key("Snapshot.summary"))
                .map_or_else(Vec::new, |a| {
                    a[3].split_whitespace()
                        .filter(|t| t.starts_with("sha256=") || t.starts_with("remaining_bytes_is"))
                        .map(str::to_string)
                        .collect()
                })
        };
        if rules(&etcd) != rules(&tally) || rules(&etcd).len() != 2 {
            differences.push(format!(
                "Snapshot.summary on the {role}: etcd {:?}, tally {:?}",
                rules(&etcd),
                rules(&tally)
            ));
        }
        for ((case, _, r), answer) in &tally {
            let data_message = case.starts_with("Snapshot.msg") && r == role;
            if data_message && (answer[2].split(' ').any(|f| f == "1") || answer[0] != "OK") {
                differences.push(format!("{case} on the {role}: {answer:?}"));
            }
        }
    }
    differences
}
