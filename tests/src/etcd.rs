//! A real etcd 3.4 member (Debian's `etcd-server`) on 127.0.0.1, for tests that compare tally
//! with etcd or move data between them, and `etcdctl` calls against any endpoint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::process::{KillOnDrop, free_port};

/// `etcd` from Debian's etcd-server. Under `CI=true` a missing etcd fails the test; elsewhere
/// the caller skips.
pub fn etcd_available() -> bool {
    let found = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!("etcd is required under CI=true: apt-get install -y etcd-server");
    }
    if !found {
        eprintln!("skipping: etcd not installed (apt-get install -y etcd-server)");
    }
    found
}

/// `etcdctl` (API v3) with `args` against `endpoint`.
pub fn etcdctl(endpoint: &str, args: &[&str]) -> Output {
    etcdctl_with_input(endpoint, args, &[])
}

/// `etcdctl` with `input` on its standard input (a `txn`, or a value too large for argv).
pub fn etcdctl_with_input(endpoint: &str, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--dial-timeout=3s")
        .arg("--command-timeout=8s")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run etcdctl");
    let mut stdin = child.stdin.take().expect("stdin");
    // etcdctl may exit before reading it all (a refused put): a broken pipe is its answer.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().expect("etcdctl output")
}

/// `etcdctl` that must succeed; its stdout.
pub fn etcdctl_ok(endpoint: &str, args: &[&str]) -> String {
    let out = etcdctl(endpoint, args);
    assert!(
        out.status.success(),
        "etcdctl {args:?} against {endpoint} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// etcdctl's flags to reach a member that `certs` serve, with the client certificate.
pub fn tls_args(certs: &crate::process::Certs) -> Vec<String> {
    vec![
        format!("--cacert={}", certs.ca.display()),
        format!("--cert={}", certs.client_cert.display()),
        format!("--key={}", certs.client_key.display()),
    ]
}

/// Waits until `endpoint` answers a linearizable read, for up to `timeout`.
pub fn wait_serving(endpoint: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if etcdctl(endpoint, &["get", "health-probe"]).status.success() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// One etcd member, killed when dropped.
#[derive(Debug)]
pub struct EtcdMember {
    _child: KillOnDrop,
    endpoint: String,
    log: PathBuf,
}

impl EtcdMember {
    /// Starts a one-member cluster named `name` on `data_dir` (new, or made by
    /// `etcdctl snapshot restore` with the same name and `peer_port`), with `extra` flags, and
    /// waits until it serves.
    pub fn start(data_dir: &Path, name: &str, peer_port: u16, extra: &[&str]) -> EtcdMember {
        Self::start_with(data_dir, name, peer_port, extra, None)
    }

    /// The same with clients on TLS with client certificates (`--client-cert-auth`), as
    /// `certs` make them; etcdctl reaches it with `tls_args`.
    pub fn start_tls(
        data_dir: &Path,
        name: &str,
        peer_port: u16,
        certs: &crate::process::Certs,
    ) -> EtcdMember {
        Self::start_with(data_dir, name, peer_port, &[], Some(certs))
    }

    fn start_with(
        data_dir: &Path,
        name: &str,
        peer_port: u16,
        extra: &[&str],
        certs: Option<&crate::process::Certs>,
    ) -> EtcdMember {
        let client_port = free_port();
        let log = data_dir.with_extension("log");
        let log_file = std::fs::File::create(&log).expect("etcd log");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let scheme = if certs.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{client_port}");
        let tls: Vec<String> = certs.map_or_else(Vec::new, |certs| {
            vec![
                format!("--cert-file={}", certs.server_cert.display()),
                format!("--key-file={}", certs.server_key.display()),
                format!("--trusted-ca-file={}", certs.ca.display()),
                "--client-cert-auth".to_string(),
            ]
        });
        let child = Command::new("etcd")
            .arg(format!("--name={name}"))
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster={name}={peer}"))
            .args(["--heartbeat-interval=50", "--election-timeout=500"])
            .args(&tls)
            .args(extra)
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("spawn etcd");
        let member = EtcdMember {
            _child: KillOnDrop(child),
            endpoint: format!("127.0.0.1:{client_port}"),
            log,
        };
        let probe_args: Vec<String> = certs.map_or_else(Vec::new, tls_args);
        let serving = {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut serving = false;
            while !serving && Instant::now() < deadline {
                let mut args: Vec<&str> = probe_args.iter().map(String::as_str).collect();
                args.extend(["get", "health-probe"]);
                serving = etcdctl(&member.endpoint, &args).status.success();
                if !serving {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            serving
        };
        assert!(
            serving,
            "etcd did not start serving:\n{}",
            member.log_text()
        );
        member
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
