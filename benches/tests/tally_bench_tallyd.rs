//! Runs `tally-bench` against a real single-member `tallyd` and checks the counts it reports.
//! No timing assertions: only that every request succeeded and no revision went back.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/tallyd`, next to this test's `deps/` directory.
fn tallyd_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir.join("tallyd");
    path.exists().then_some(path)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Tallyd {
    child: Child,
    dir: PathBuf,
}

impl Drop for Tallyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_tallyd(bin: &PathBuf) -> (Tallyd, String) {
    let (client, peer) = (free_port(), free_port());
    let dir =
        std::env::temp_dir().join(format!("tally-bench-test-{}-{client}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new(bin)
        .args(["--name", "bench1", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("bench1={peer_url}")])
        .args(["--initial-cluster-state", "new"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tallyd");
    (Tallyd { child, dir }, format!("127.0.0.1:{client}"))
}

fn bench(endpoint: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tally-bench"))
        .args(args)
        .args(["--endpoints", endpoint, "--output", "json", "--no-progress"])
        .output()
        .expect("run tally-bench");
    assert!(out.status.success(), "tally-bench {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The integer after `"name": ` in the one-line JSON summary.
fn field(json: &str, name: &str) -> u64 {
    let key = format!("\"{name}\": ");
    let at = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        + key.len();
    json[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a number in {json}"))
}

fn wait_for_leader(endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let json = bench(endpoint, &["put", "--total", "1"]);
        if field(&json, "ok") == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "tallyd never took a put: {json}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn put_200_against_tallyd_counts_200_successes() {
    let Some(bin) = tallyd_path() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tallyd is not built next to this test, but CI builds the workspace first"
        );
        eprintln!("skipped: build tallyd first (cargo build -p tally-runtime-mio --bin tallyd)");
        return;
    };
    let (_tallyd, endpoint) = start_tallyd(&bin);
    wait_for_leader(&endpoint);

    let json = bench(
        &endpoint,
        &["put", "--total", "200", "--conns", "2", "--clients", "10"],
    );
    assert_eq!(field(&json, "ok"), 200, "{json}");
    assert_eq!(field(&json, "errors"), 0, "{json}");
    assert_eq!(field(&json, "revision_regressions"), 0, "{json}");

    let json = bench(
        &endpoint,
        &[
            "txn-put",
            "--total",
            "100",
            "--clients",
            "4",
            "--key-space-size",
            "2",
        ],
    );
    assert_eq!(field(&json, "ok"), 100, "{json}");
    assert_eq!(field(&json, "errors"), 0, "{json}");

    let json = bench(
        &endpoint,
        &[
            "range",
            "000000",
            "--total",
            "100",
            "--clients",
            "4",
            "--consistency",
            "s",
        ],
    );
    assert_eq!(field(&json, "ok"), 100, "{json}");
    assert_eq!(field(&json, "errors"), 0, "{json}");

    let json = bench(
        &endpoint,
        &[
            "watch",
            "--watchers",
            "6",
            "--streams",
            "3",
            "--total",
            "20",
            "--rate",
            "0",
        ],
    );
    assert_eq!(field(&json, "ok"), 120, "{json}");
    assert_eq!(field(&json, "errors"), 0, "{json}");
    assert_eq!(field(&json, "revision_regressions"), 0, "{json}");

    let json = bench(
        &endpoint,
        &["lease-keepalive", "--total", "50", "--clients", "5"],
    );
    assert_eq!(field(&json, "ok"), 50, "{json}");
    assert_eq!(field(&json, "errors"), 0, "{json}");
}
