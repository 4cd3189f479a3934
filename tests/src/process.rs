//! Real `tallyd` processes on 127.0.0.1 for process-level tests, driven with `etcdctl`.
//!
//! `tallyd` comes from the workspace's target directory (`cargo build` puts it there; the
//! README's test command builds everything first), or from `$TALLYD`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::proxy::{PeerProxy, ProxyControl};

pub const HEARTBEAT_MS: u64 = 50;
pub const ELECTION_MS: u64 = 500;

/// The `tallyd` binary to run.
pub fn tallyd_path() -> PathBuf {
    if let Some(path) = std::env::var_os("TALLYD") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/tallyd
    let profile_dir = exe.parent().and_then(Path::parent).expect("target layout");
    for candidate in [
        profile_dir.join("tallyd"),
        profile_dir
            .parent()
            .expect("target")
            .join("debug")
            .join("tallyd"),
    ] {
        if candidate.exists() {
            return candidate;
        }
    }
    panic!(
        "tallyd is not built: run `cargo build -p tally-runtime-mio --bin tallyd` (the README's test command does)"
    );
}

/// `etcdctl` from Debian's etcd-client. Under `CI=true` a missing etcdctl fails the test;
/// elsewhere the caller skips.
pub fn etcdctl_available() -> bool {
    let found = Command::new("etcdctl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!("etcdctl is required under CI=true: apt-get install -y etcd-client");
    }
    if !found {
        eprintln!("skipping: etcdctl not installed (apt-get install -y etcd-client)");
    }
    found
}

/// A child process killed when dropped, so a failing test leaves no process behind.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port for a test member to listen on.
///
/// Ports come from below Linux's ephemeral range (32768 and up by default): a port the kernel
/// handed out for `bind(0)` is free to become the source port of any outgoing connection (the
/// tests make thousands) between this check and the member's own bind, which failed a run with
/// "Address already in use". Below the range, only another listener can take it.
pub fn free_port() -> u16 {
    const FIRST: u16 = 20_000;
    const COUNT: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Different test processes start at different places, so concurrent runs rarely probe the
    // same ports.
    let offset = (std::process::id() % u32::from(COUNT)) as u16;
    for _ in 0..COUNT {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIRST + (offset.wrapping_add(n.wrapping_mul(7)) % COUNT);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT);
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("tally-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Test certificates: one CA, a server certificate for 127.0.0.1/localhost used by every
/// member (for clients and peers), a client certificate whose common name is `root`, and one
/// whose common name is `alice` (etcd takes the name as the user when authentication is on).
#[derive(Debug, Clone)]
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub alice_cert: PathBuf,
    pub alice_key: PathBuf,
}

impl Certs {
    pub fn generate(dir: &Path) -> Certs {
        use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let leaf = |usages: Vec<ExtendedKeyUsagePurpose>, common_name: &str| {
            let key = KeyPair::generate().expect("key");
            let mut params =
                CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                    .expect("params");
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, common_name);
            params.extended_key_usages = usages;
            let cert = params.signed_by(&key, &ca, &ca_key).expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key) = leaf(
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            "tally member",
        );
        let (client_pem, client_key) = leaf(vec![ExtendedKeyUsagePurpose::ClientAuth], "root");
        let (alice_pem, alice_key) = leaf(vec![ExtendedKeyUsagePurpose::ClientAuth], "alice");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write pem");
            path
        };
        Certs {
            ca: write("ca.pem", &ca.pem()),
            server_cert: write("server.pem", &server_pem),
            server_key: write("server-key.pem", &server_key),
            client_cert: write("client.pem", &client_pem),
            client_key: write("client-key.pem", &client_key),
            alice_cert: write("alice.pem", &alice_pem),
            alice_key: write("alice-key.pem", &alice_key),
        }
    }
}

/// One member's fixed identity and ports.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    /// The advertised peer port (a proxy) when the cluster has proxies.
    pub advertised_peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    extra_args: Vec<String>,
    open_files_max: Option<u64>,
}

impl Member {
    /// The endpoint as etcdctl takes it. Without a scheme: etcdctl's per-endpoint commands
    /// (endpoint status/health/hashkv) put a scheme-qualified endpoint into HTTP/2's
    /// `:authority`, which the h2 crate refuses (see the README's known limits). TLS is chosen
    /// by the certificate flags.
    pub fn endpoint(&self, _tls: bool) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Process clusters of one test binary run one at a time: timing-sensitive claims (a new
/// leader within two election timeouts) must not compete with other clusters for 2 cores.
static CLUSTER_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A cluster of real `tallyd` processes.
#[derive(Debug)]
pub struct ProcCluster {
    _serial: std::sync::MutexGuard<'static, ()>,
    dir: TempDir,
    pub members: Vec<Member>,
    tls: Option<Certs>,
    token: String,
    proxies: Vec<PeerProxy>,
    pub control: ProxyControl,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub tls: bool,
    pub proxies: bool,
    /// `--snapshot-count`, to exercise snapshots and log compaction on small workloads.
    pub snapshot_count: Option<u64>,
    /// `--auto-compaction-retention` (periodic mode).
    pub auto_compaction_retention: Option<&'static str>,
    /// More flags for every member.
    pub extra_args: &'static [&'static str],
    /// The open files limit (soft and hard) every member starts with, instead of this
    /// process's: to see a member run short of file descriptors.
    pub open_files_max: Option<u64>,
}

impl ProcCluster {
    pub fn start(size: usize, options: Options) -> ProcCluster {
        let serial = CLUSTER_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = TempDir::new("cluster");
        let tls = options.tls.then(|| Certs::generate(dir.path()));
        let control = ProxyControl::default();
        let mut members = Vec::new();
        let mut proxies = Vec::new();
        for index in 0..size {
            let name = format!("m{}", index + 1);
            let peer_port = free_port();
            let advertised_peer_port = if options.proxies {
                let listen: SocketAddr =
                    format!("127.0.0.1:{}", free_port()).parse().expect("addr");
                let target: SocketAddr = format!("127.0.0.1:{peer_port}").parse().expect("addr");
                let proxy = PeerProxy::start(listen, target, &control).expect("proxy");
                let port = proxy.addr().port();
                proxies.push(proxy);
                port
            } else {
                peer_port
            };
            members.push(Member {
                data_dir: dir.path().join(format!("{name}.tally")),
                log: dir.path().join(format!("{name}.log")),
                name,
                client_port: free_port(),
                peer_port,
                advertised_peer_port,
                child: None,
                open_files_max: options.open_files_max,
                extra_args: options
                    .snapshot_count
                    .map(|n| format!("--snapshot-count={n}"))
                    .into_iter()
                    .chain(
                        options
                            .auto_compaction_retention
                            .map(|r| format!("--auto-compaction-retention={r}")),
                    )
                    .chain(options.extra_args.iter().map(|a| a.to_string()))
                    .collect(),
            });
        }
        let mut cluster = ProcCluster {
            _serial: serial,
            dir,
            members,
            tls,
            token: "tally-test".into(),
            proxies,
            control,
        };
        for index in 0..size {
            cluster.spawn(index, "new");
        }
        cluster
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    pub fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "{}={}://127.0.0.1:{}",
                    m.name,
                    self.scheme(),
                    m.advertised_peer_port
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn args(&self, index: usize, state: &str) -> Vec<String> {
        let member = &self.members[index];
        let scheme = self.scheme();
        let mut args = vec![
            format!("--name={}", member.name),
            format!("--data-dir={}", member.data_dir.display()),
            format!(
                "--listen-client-urls={scheme}://127.0.0.1:{}",
                member.client_port
            ),
            format!(
                "--advertise-client-urls={scheme}://127.0.0.1:{}",
                member.client_port
            ),
            format!(
                "--listen-peer-urls={scheme}://127.0.0.1:{}",
                member.peer_port
            ),
            format!(
                "--initial-advertise-peer-urls={scheme}://127.0.0.1:{}",
                member.advertised_peer_port
            ),
            format!("--initial-cluster={}", self.initial_cluster()),
            format!("--initial-cluster-state={state}"),
            format!("--initial-cluster-token={}", self.token),
            format!("--heartbeat-interval={HEARTBEAT_MS}"),
            format!("--election-timeout={ELECTION_MS}"),
        ];
        if let Some(certs) = &self.tls {
            for prefix in ["", "peer-"] {
                args.push(format!(
                    "--{prefix}cert-file={}",
                    certs.server_cert.display()
                ));
                args.push(format!("--{prefix}key-file={}", certs.server_key.display()));
                args.push(format!("--{prefix}trusted-ca-file={}", certs.ca.display()));
                args.push(format!("--{prefix}client-cert-auth"));
            }
        }
        args.extend(member.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self, index: usize, state: &str) {
        let args = self.args(index, state);
        self.spawn_with_args(index, args);
    }

    /// Starts a killed member again on its data directory, with each flag named in `flags`
    /// (as `--name=value`) given that value instead of the cluster's.
    pub fn restart_with(&mut self, index: usize, flags: &[String]) {
        assert!(
            self.members[index].child.is_none(),
            "member {index} is running"
        );
        self.spawn_changed(index, "new", flags);
    }

    /// [`ProcCluster::start_joining`] with each flag named in `flags` changed, as
    /// [`ProcCluster::restart_with`] does.
    pub fn start_joining_with(&mut self, index: usize, flags: &[String]) {
        self.spawn_changed(index, "existing", flags);
    }

    fn spawn_changed(&mut self, index: usize, state: &str, flags: &[String]) {
        let mut args = self.args(index, state);
        for flag in flags {
            let name = flag.split('=').next().expect("--name=value");
            args.retain(|a| a.split('=').next() != Some(name));
            args.push(flag.clone());
        }
        self.spawn_with_args(index, args);
    }

    fn spawn_with_args(&mut self, index: usize, args: Vec<String>) {
        let member = &mut self.members[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .expect("log file");
        let mut command = match member.open_files_max {
            None => Command::new(tallyd_path()),
            Some(limit) => {
                // The shell sets the limit, then becomes tallyd (same pid, so kill works).
                let mut command = Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(tallyd_path());
                command
            }
        };
        let child = command
            .args(&args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn tallyd");
        member.child = Some(child);
    }

    /// `kill -STOP`: the member stops where it is, as in a long GC or VM pause; its sockets
    /// stay open and queue. [`ProcCluster::resume`] wakes it with its stale view.
    pub fn pause(&self, index: usize) {
        self.signal(index, "-STOP");
    }

    /// `kill -CONT` after [`ProcCluster::pause`].
    pub fn resume(&self, index: usize) {
        self.signal(index, "-CONT");
    }

    fn signal(&self, index: usize, signal: &str) {
        let Some(child) = self.members[index].child.as_ref() else {
            return;
        };
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} member {index}");
    }

    /// `kill -9`.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed member again on its data directory.
    pub fn restart(&mut self, index: usize) {
        assert!(
            self.members[index].child.is_none(),
            "member {index} is running"
        );
        self.spawn(index, "new");
    }

    /// Adds a member slot (not started) and returns its index; start it with `start_joining`.
    pub fn add_member_slot(&mut self) -> usize {
        let index = self.members.len();
        let name = format!("m{}", index + 1);
        let peer_port = free_port();
        self.members.push(Member {
            data_dir: self.dir.path().join(format!("{name}.tally")),
            log: self.dir.path().join(format!("{name}.log")),
            name,
            client_port: free_port(),
            peer_port,
            advertised_peer_port: peer_port,
            child: None,
            extra_args: Vec::new(),
            open_files_max: None,
        });
        index
    }

    pub fn peer_url(&self, index: usize) -> String {
        format!(
            "{}://127.0.0.1:{}",
            self.scheme(),
            self.members[index].advertised_peer_port
        )
    }

    /// Starts a member that was added with `etcdctl member add`.
    pub fn start_joining(&mut self, index: usize) {
        self.spawn(index, "existing");
    }

    pub fn endpoint(&self, index: usize) -> String {
        self.members[index].endpoint(self.tls.is_some())
    }

    pub fn endpoints(&self, indexes: &[usize]) -> String {
        indexes
            .iter()
            .map(|&i| self.endpoint(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn live(&mut self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].is_running())
            .collect()
    }

    /// Runs etcdctl against `endpoints` with `args`; `stdin` is fed if given.
    pub fn etcdctl(&self, endpoints: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new("etcdctl");
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoints}"))
            .arg("--dial-timeout=3s")
            .arg("--command-timeout=8s");
        command
            .args(self.tls_args())
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn etcdctl");
        if let Some(input) = stdin {
            use std::io::Write as _;
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("etcdctl output")
    }

    /// The cluster's certificates, when it runs TLS.
    pub fn certs(&self) -> Option<&Certs> {
        self.tls.as_ref()
    }

    /// etcdctl's TLS flags for this cluster (empty in plaintext).
    pub fn tls_args(&self) -> Vec<String> {
        match &self.tls {
            Some(certs) => vec![
                format!("--cacert={}", certs.ca.display()),
                format!("--cert={}", certs.client_cert.display()),
                format!("--key={}", certs.client_key.display()),
            ],
            None => Vec::new(),
        }
    }

    /// etcdctl that must succeed; returns its stdout.
    pub fn ok(&self, endpoints: &str, args: &[&str]) -> String {
        let output = self.etcdctl(endpoints, args, None);
        assert!(
            output.status.success(),
            "etcdctl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The member index every live member agrees leads, waiting up to `timeout`.
    pub fn wait_leader(&mut self, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(leader) = self.agreed_leader() {
                return Some(leader);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn agreed_leader(&mut self) -> Option<usize> {
        let live = self.live();
        let mut leader_id = None;
        let mut ids = Vec::new();
        for &index in &live {
            let output = self.etcdctl(
                &self.endpoint(index),
                &["endpoint", "status", "-w", "json"],
                None,
            );
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            if std::env::var("TALLY_DEBUG").is_ok() {
                eprintln!(
                    "status of {index}: {text} {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            let leader = json_u64(&text, "leader")?;
            let member = json_u64(&text, "member_id")?;
            ids.push((index, member));
            if leader == 0 || leader_id.is_some_and(|l| l != leader) {
                return None;
            }
            leader_id = Some(leader);
        }
        let leader_id = leader_id?;
        ids.into_iter()
            .find(|(_, id)| *id == leader_id)
            .map(|(index, _)| index)
    }

    /// Member id of `index`, from its status.
    pub fn member_id(&self, index: usize) -> Option<u64> {
        let output = self.etcdctl(
            &self.endpoint(index),
            &["endpoint", "status", "-w", "json"],
            None,
        );
        json_u64(&String::from_utf8_lossy(&output.stdout), "member_id")
    }

    /// Logs of every member, for failure messages.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("--- {} ---\n{}", m.name, m.log_text()))
            .collect()
    }
}

impl Drop for ProcCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.kill(index);
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        self.proxies.clear();
    }
}

/// The first unsigned number after `"key":` in a JSON text.
pub fn json_u64(text: &str, key: &str) -> Option<u64> {
    let needle = format!("\"{key}\":");
    let start = text.find(&needle)? + needle.len();
    let digits: String = text[start..]
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
