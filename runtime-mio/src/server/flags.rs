//! `tallyd`'s command line: etcd's flag names, so an etcd operator's command line works.

use std::fmt;
use std::path::PathBuf;

use super::auto_compaction::{AutoCompactionConfig, parse_go_duration};

mod help;
mod url;

pub use help::{ETCD_API_VERSION, USAGE, version_text};
pub use url::Url;

/// Why the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlagError {
    Unknown(String),
    MissingValue(String),
    BadValue {
        flag: String,
        value: String,
    },
    BadUrl(String),
    BadInitialCluster(String),
    /// `--name` does not appear in `--initial-cluster`.
    NameNotInCluster(String),
    /// A TLS URL without the certificate flags it needs.
    TlsWithoutCertificates(&'static str),
    /// One of etcd's flags that tallyd cannot honour, and would be unsafe to ignore.
    Unsupported {
        flag: String,
        why: &'static str,
    },
    HelpRequested,
    /// `--version`: print [`version_text`] and exit.
    VersionRequested,
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagError::Unknown(flag) => write!(f, "unknown flag {flag}"),
            FlagError::MissingValue(flag) => write!(f, "flag {flag} needs a value"),
            FlagError::BadValue { flag, value } => write!(f, "invalid value {value:?} for {flag}"),
            FlagError::BadUrl(url) => write!(
                f,
                "invalid URL {url:?} (want http://host:port or https://host:port)"
            ),
            FlagError::BadInitialCluster(text) => {
                write!(f, "invalid --initial-cluster {text:?} (want name=url,...)")
            }
            FlagError::NameNotInCluster(name) => {
                write!(f, "--name {name:?} is not listed in --initial-cluster")
            }
            FlagError::TlsWithoutCertificates(which) => write!(
                f,
                "{which} URLs use https but no certificate flags were given"
            ),
            FlagError::Unsupported { flag, why } => {
                write!(f, "etcd's flag {flag} is not supported by tallyd: {why}")
            }
            FlagError::HelpRequested => f.write_str(USAGE),
            FlagError::VersionRequested => f.write_str(&version_text()),
        }
    }
}

impl std::error::Error for FlagError {}

/// etcd's default `--quota-backend-bytes` (`DefaultQuotaBytes`): 2 GiB.
pub const QUOTA_BACKEND_BYTES_DEFAULT: u64 = 2 << 30;

/// Everything `tallyd` was told on its command line.
#[derive(Debug, Clone)]
pub struct Flags {
    name: String,
    data_dir: PathBuf,
    listen_client_urls: Vec<Url>,
    advertise_client_urls: Vec<Url>,
    listen_peer_urls: Vec<Url>,
    initial_advertise_peer_urls: Vec<Url>,
    initial_cluster: Vec<(String, Vec<Url>)>,
    initial_cluster_existing: bool,
    initial_cluster_token: String,
    listen_metrics_urls: Vec<Url>,
    client_tls: TlsFiles,
    peer_tls: TlsFiles,
    heartbeat_interval_ms: u64,
    election_timeout_ms: u64,
    snapshot_count: u64,
    max_request_bytes: u32,
    max_txn_ops: usize,
    quota_backend_bytes: u64,
    strict_reconfig_check: bool,
    wal_dir: Option<PathBuf>,
    max_snapshots: Option<usize>,
    /// etcd flags given and ignored, with why: for a warning at start.
    ignored: Vec<(String, &'static str)>,
    auto_compaction: AutoCompactionConfig,
    restore_snapshot: Option<PathBuf>,
    grpc_keepalive: GrpcKeepalive,
}

/// etcd's `--grpc-keepalive-*` flags, in milliseconds, with zeros already replaced by the
/// grpc-go defaults etcd falls back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GrpcKeepalive {
    min_time_ms: u64,
    interval_ms: u64,
    timeout_ms: u64,
}

/// grpc-go's `EnforcementPolicy` default `MinTime`, which etcd leaves in place for
/// `--grpc-keepalive-min-time=0`.
const GRPC_DEFAULT_MIN_TIME_MS: u64 = 5 * 60 * 1000;
/// grpc-go's `ServerParameters` defaults, which etcd leaves in place unless both
/// `--grpc-keepalive-interval` and `--grpc-keepalive-timeout` are above zero.
const GRPC_DEFAULT_INTERVAL_MS: u64 = 2 * 60 * 60 * 1000;
const GRPC_DEFAULT_TIMEOUT_MS: u64 = 20_000;
/// grpc-go raises a shorter server keep-alive interval to this.
const GRPC_INTERVAL_MS_MIN: u64 = 1000;

impl GrpcKeepalive {
    fn new(min_time_ms: u64, interval_ms: u64, timeout_ms: u64) -> GrpcKeepalive {
        let (interval_ms, timeout_ms) = if interval_ms == 0 || timeout_ms == 0 {
            (GRPC_DEFAULT_INTERVAL_MS, GRPC_DEFAULT_TIMEOUT_MS)
        } else {
            (interval_ms.max(GRPC_INTERVAL_MS_MIN), timeout_ms)
        };
        GrpcKeepalive {
            min_time_ms: if min_time_ms == 0 {
                GRPC_DEFAULT_MIN_TIME_MS
            } else {
                min_time_ms
            },
            interval_ms,
            timeout_ms,
        }
    }
}

/// Certificate files for one side (clients or peers).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    trusted_ca_file: Option<PathBuf>,
    client_cert_auth: bool,
}

impl TlsFiles {
    /// (cert, key) if both are given: TLS is on.
    pub fn cert_and_key(&self) -> Option<(&PathBuf, &PathBuf)> {
        Some((self.cert_file.as_ref()?, self.key_file.as_ref()?))
    }

    pub fn trusted_ca_file(&self) -> Option<&PathBuf> {
        self.trusted_ca_file.as_ref()
    }

    /// Client certificates are required (etcd turns this on when a trusted CA is given with
    /// `--client-cert-auth`).
    pub fn client_cert_auth(&self) -> bool {
        self.client_cert_auth
    }
}

impl Flags {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Flags, FlagError> {
        let mut raw = Raw::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Err(FlagError::HelpRequested);
            }
            if arg == "--version" || arg == "-version" {
                return Err(FlagError::VersionRequested);
            }
            let body = arg
                .strip_prefix("--")
                .or_else(|| arg.strip_prefix('-'))
                .ok_or_else(|| FlagError::Unknown(arg.clone()))?;
            let (name, inline) = match body.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (body.to_string(), None),
            };
            if BOOL_FLAGS.contains(&name.as_str()) {
                let value = inline.unwrap_or_else(|| "true".to_string());
                raw.set(&name, value)?;
                continue;
            }
            let value = match inline {
                Some(value) => value,
                None => args
                    .next()
                    .ok_or_else(|| FlagError::MissingValue(name.clone()))?,
            };
            raw.set(&name, value)?;
        }
        raw.finish()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn data_dir(&self) -> &PathBuf {
        &self.data_dir
    }
    pub fn listen_client_urls(&self) -> &[Url] {
        &self.listen_client_urls
    }
    pub fn advertise_client_urls(&self) -> &[Url] {
        &self.advertise_client_urls
    }
    pub fn listen_peer_urls(&self) -> &[Url] {
        &self.listen_peer_urls
    }
    pub fn initial_advertise_peer_urls(&self) -> &[Url] {
        &self.initial_advertise_peer_urls
    }
    pub fn initial_cluster(&self) -> &[(String, Vec<Url>)] {
        &self.initial_cluster
    }
    pub fn initial_cluster_existing(&self) -> bool {
        self.initial_cluster_existing
    }
    pub fn initial_cluster_token(&self) -> &str {
        &self.initial_cluster_token
    }
    pub fn listen_metrics_urls(&self) -> &[Url] {
        &self.listen_metrics_urls
    }
    pub fn client_tls(&self) -> &TlsFiles {
        &self.client_tls
    }
    pub fn peer_tls(&self) -> &TlsFiles {
        &self.peer_tls
    }
    pub fn heartbeat_interval_ms(&self) -> u64 {
        self.heartbeat_interval_ms
    }
    pub fn election_timeout_ms(&self) -> u64 {
        self.election_timeout_ms
    }
    /// The election timeout in heartbeat ticks (at least two ticks above one heartbeat).
    pub fn election_ticks(&self) -> u32 {
        let ticks = self.election_timeout_ms / self.heartbeat_interval_ms.max(1);
        u32::try_from(ticks).unwrap_or(u32::MAX).max(3)
    }
    pub fn snapshot_count(&self) -> u64 {
        self.snapshot_count
    }
    pub fn max_request_bytes(&self) -> u32 {
        self.max_request_bytes
    }
    pub fn max_txn_ops(&self) -> usize {
        self.max_txn_ops
    }
    /// `--strict-reconfig-check` (default true): refuse membership changes that would leave
    /// too few started, connected voters for a quorum.
    pub fn strict_reconfig_check(&self) -> bool {
        self.strict_reconfig_check
    }
    /// `--quota-backend-bytes`, as etcd reads it: 0 (the default) means etcd's default quota,
    /// [`QUOTA_BACKEND_BYTES_DEFAULT`].
    pub fn quota_backend_bytes(&self) -> u64 {
        if self.quota_backend_bytes == 0 {
            QUOTA_BACKEND_BYTES_DEFAULT
        } else {
            self.quota_backend_bytes
        }
    }
    /// `--wal-dir`, when given.
    pub fn wal_dir(&self) -> Option<&PathBuf> {
        self.wal_dir.as_ref()
    }
    /// `--max-snapshots`, when given.
    pub fn max_snapshots(&self) -> Option<usize> {
        self.max_snapshots
    }
    /// etcd flags that were given and are ignored, each with the reason.
    pub fn ignored(&self) -> &[(String, &'static str)] {
        &self.ignored
    }
    pub fn auto_compaction(&self) -> AutoCompactionConfig {
        self.auto_compaction
    }
    pub fn restore_snapshot(&self) -> Option<&PathBuf> {
        self.restore_snapshot.as_ref()
    }
    /// `--grpc-keepalive-min-time` (default 5s): clients pinging more often while they have a
    /// stream open get GOAWAY ENHANCE_YOUR_CALM, as from grpc-go.
    pub fn grpc_keepalive_min_time_ms(&self) -> u64 {
        self.grpc_keepalive.min_time_ms
    }
    /// `--grpc-keepalive-interval` (default 2h): the server pings a client silent this long.
    pub fn grpc_keepalive_interval_ms(&self) -> u64 {
        self.grpc_keepalive.interval_ms
    }
    /// `--grpc-keepalive-timeout` (default 20s): how long a ping may go unanswered.
    pub fn grpc_keepalive_timeout_ms(&self) -> u64 {
        self.grpc_keepalive.timeout_ms
    }
}

const BOOL_FLAGS: &[&str] = &[
    "client-cert-auth",
    "peer-client-cert-auth",
    "debug",
    "enable-pprof",
    "enable-v2",
    "initial-election-tick-advance",
    "strict-reconfig-check",
    "pre-vote",
    "socket-reuse-port",
    "socket-reuse-address",
    "auto-tls",
    "peer-auto-tls",
    "experimental-initial-corrupt-check",
];

/// etcd 3.4 flags that tallyd accepts and ignores, with why ignoring them is safe.
const IGNORED_FLAGS: &[(&str, &str)] = &[
    ("logger", "tallyd logs one line per event to stderr"),
    ("log-outputs", "tallyd logs to stderr"),
    ("log-level", "tallyd logs to stderr"),
    ("debug", "tallyd logs to stderr"),
    ("log-package-levels", "tallyd logs to stderr"),
    ("enable-pprof", "there is no Go runtime to profile"),
    ("metrics", "tallyd's /metrics has one level of detail"),
    ("enable-v2", "tallyd serves only the v3 API"),
    (
        "initial-election-tick-advance",
        "elections start from randomized timers",
    ),
    ("pre-vote", "PreVote is always on"),
    (
        "max-wals",
        "WAL segments are purged once a snapshot covers them",
    ),
    ("backend-batch-limit", "there is no bbolt backend"),
    ("backend-batch-interval", "there is no bbolt backend"),
    ("socket-reuse-port", "listeners bind once"),
    ("socket-reuse-address", "listeners bind once"),
    (
        "experimental-initial-corrupt-check",
        "the WAL and snapshots are checksummed on every read",
    ),
];

/// etcd 3.4 flags that tallyd refuses: ignoring them would weaken what the operator asked.
const UNSUPPORTED_FLAGS: &[(&str, &str)] = &[
    ("auto-tls", "give --cert-file and --key-file"),
    ("peer-auto-tls", "give --peer-cert-file and --peer-key-file"),
    (
        "client-crl-file",
        "certificate revocation lists are not checked",
    ),
    (
        "peer-crl-file",
        "certificate revocation lists are not checked",
    ),
    (
        "client-cert-allowed-hostname",
        "certificates are checked against the CA only",
    ),
    (
        "peer-cert-allowed-cn",
        "certificates are checked against the CA only",
    ),
    (
        "peer-cert-allowed-hostname",
        "certificates are checked against the CA only",
    ),
    ("cipher-suites", "rustls's default suites are used"),
    ("cors", "the JSON gateway sends no CORS headers"),
    ("host-whitelist", "Host headers are not checked"),
    ("auth-token", "the Auth service is not implemented"),
    ("bcrypt-cost", "the Auth service is not implemented"),
    ("discovery", "start with --initial-cluster"),
    ("discovery-srv", "start with --initial-cluster"),
    ("discovery-fallback", "start with --initial-cluster"),
    ("discovery-proxy", "start with --initial-cluster"),
    ("proxy", "tallyd is never a v2 proxy"),
];

#[derive(Default)]
struct Raw {
    values: Vec<(String, String)>,
    ignored: Vec<(String, &'static str)>,
}

impl Raw {
    fn set(&mut self, name: &str, value: String) -> Result<(), FlagError> {
        if let Some((_, why)) = UNSUPPORTED_FLAGS.iter().find(|(n, _)| *n == name) {
            if value.is_empty() || value == "false" {
                // It asks for nothing (etcd's default).
                return Ok(());
            }
            return Err(FlagError::Unsupported {
                flag: format!("--{name}"),
                why,
            });
        }
        if let Some((_, why)) = IGNORED_FLAGS.iter().find(|(n, _)| *n == name) {
            self.ignored.retain(|(n, _)| n != name);
            self.ignored.push((name.to_string(), why));
            return Ok(());
        }
        if !KNOWN_FLAGS.contains(&name) {
            return Err(FlagError::Unknown(format!("--{name}")));
        }
        self.values.retain(|(n, _)| n != name);
        self.values.push((name.to_string(), value));
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `--quota-backend-bytes`. etcd reads a negative quota as "none"; a member that keeps its
    /// store in memory must have one, so a negative value is refused, naming why.
    fn quota_bytes(&self) -> Result<u64, FlagError> {
        if let Some(value) = self.get("quota-backend-bytes") {
            if value.trim_start().starts_with('-') {
                return Err(FlagError::Unsupported {
                    flag: "--quota-backend-bytes with a negative value".into(),
                    why: "etcd reads it as no quota at all, and tally keeps its store in memory, so it must have a bound: give a size in bytes, or 0 for the 2 GiB default",
                });
            }
        }
        self.number("quota-backend-bytes", 0u64)
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, FlagError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|_| FlagError::BadValue {
                flag: format!("--{name}"),
                value: value.to_string(),
            }),
        }
    }

    /// A Go duration (`5s`, `2h`, `1m30s`, `0`), as etcd's `time.Duration` flags take, in
    /// milliseconds rounded up (so `1ns` is not zero).
    fn duration_ms(&self, name: &str, default_ms: u64) -> Result<u64, FlagError> {
        let text = match self.get(name) {
            None => return Ok(default_ms),
            Some("0") => return Ok(0),
            Some(text) => text,
        };
        let duration = parse_go_duration(text).ok_or_else(|| FlagError::BadValue {
            flag: format!("--{name}"),
            value: text.to_string(),
        })?;
        let ms = duration.as_nanos().div_ceil(1_000_000);
        Ok(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    fn boolean(&self, name: &str) -> Result<bool, FlagError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(FlagError::BadValue {
                flag: format!("--{name}"),
                value: other.to_string(),
            }),
        }
    }

    fn urls(&self, name: &str, default: &[Url]) -> Result<Vec<Url>, FlagError> {
        match self.get(name) {
            None => Ok(default.to_vec()),
            Some(text) => text
                .split(',')
                .filter(|s| !s.is_empty())
                .map(Url::parse)
                .collect(),
        }
    }

    fn tls(&self, prefix: &str) -> Result<TlsFiles, FlagError> {
        Ok(TlsFiles {
            cert_file: self.get(&format!("{prefix}cert-file")).map(PathBuf::from),
            key_file: self.get(&format!("{prefix}key-file")).map(PathBuf::from),
            trusted_ca_file: self
                .get(&format!("{prefix}trusted-ca-file"))
                .map(PathBuf::from),
            client_cert_auth: self.boolean(&format!("{prefix}client-cert-auth"))?,
        })
    }

    fn finish(self) -> Result<Flags, FlagError> {
        let name = self.get("name").unwrap_or("default").to_string();
        let data_dir = PathBuf::from(
            self.get("data-dir")
                .map_or_else(|| format!("{name}.tally"), str::to_string),
        );
        let listen_client_urls = self.urls(
            "listen-client-urls",
            &[Url::parse("http://127.0.0.1:2379")?],
        )?;
        let advertise_client_urls = self.urls("advertise-client-urls", &listen_client_urls)?;
        let listen_peer_urls =
            self.urls("listen-peer-urls", &[Url::parse("http://127.0.0.1:2380")?])?;
        let initial_advertise_peer_urls =
            self.urls("initial-advertise-peer-urls", &listen_peer_urls)?;
        let initial_cluster = match self.get("initial-cluster") {
            None => vec![(name.clone(), initial_advertise_peer_urls.clone())],
            Some(text) => parse_initial_cluster(text)?,
        };
        if !initial_cluster.iter().any(|(n, _)| *n == name) {
            return Err(FlagError::NameNotInCluster(name));
        }
        let initial_cluster_existing = match self.get("initial-cluster-state").unwrap_or("new") {
            "new" => false,
            "existing" => true,
            other => {
                return Err(FlagError::BadValue {
                    flag: "--initial-cluster-state".into(),
                    value: other.into(),
                });
            }
        };
        let client_tls = self.tls("")?;
        let peer_tls = self.tls("peer-")?;
        if listen_client_urls.iter().any(Url::is_tls) && client_tls.cert_and_key().is_none() {
            return Err(FlagError::TlsWithoutCertificates("client"));
        }
        if listen_peer_urls.iter().any(Url::is_tls) && peer_tls.cert_and_key().is_none() {
            return Err(FlagError::TlsWithoutCertificates("peer"));
        }
        let heartbeat_interval_ms = self.number("heartbeat-interval", 100u64)?.max(1);
        let election_timeout_ms = self.number("election-timeout", 1000u64)?;
        if election_timeout_ms < 3 * heartbeat_interval_ms {
            return Err(FlagError::BadValue {
                flag: "--election-timeout".into(),
                value: election_timeout_ms.to_string(),
            });
        }
        let auto_compaction = AutoCompactionConfig::parse(
            self.get("auto-compaction-mode").unwrap_or("periodic"),
            self.get("auto-compaction-retention").unwrap_or("0"),
        )
        .map_err(|value| FlagError::BadValue {
            flag: "--auto-compaction-mode/--auto-compaction-retention".into(),
            value,
        })?;
        let max_snapshots = match self.get("max-snapshots") {
            None => None,
            Some(_) => Some(self.number("max-snapshots", 0usize)?.max(1)),
        };
        let grpc_keepalive = GrpcKeepalive::new(
            self.duration_ms("grpc-keepalive-min-time", 5_000)?,
            self.duration_ms("grpc-keepalive-interval", GRPC_DEFAULT_INTERVAL_MS)?,
            self.duration_ms("grpc-keepalive-timeout", GRPC_DEFAULT_TIMEOUT_MS)?,
        );
        Ok(Flags {
            grpc_keepalive,
            max_txn_ops: self.number("max-txn-ops", 128usize)?.max(1),
            quota_backend_bytes: self.quota_bytes()?,
            strict_reconfig_check: match self.get("strict-reconfig-check") {
                None => true,
                Some(_) => self.boolean("strict-reconfig-check")?,
            },
            wal_dir: self.get("wal-dir").map(PathBuf::from),
            max_snapshots,
            ignored: self.ignored.clone(),
            auto_compaction,
            listen_metrics_urls: self.urls("listen-metrics-urls", &[])?,
            initial_cluster_token: self
                .get("initial-cluster-token")
                .unwrap_or("etcd-cluster")
                .to_string(),
            snapshot_count: self.number("snapshot-count", 100_000u64)?.max(1),
            max_request_bytes: self.number("max-request-bytes", 1_572_864u32)?,
            restore_snapshot: self.get("restore-snapshot").map(PathBuf::from),
            name,
            data_dir,
            listen_client_urls,
            advertise_client_urls,
            listen_peer_urls,
            initial_advertise_peer_urls,
            initial_cluster,
            initial_cluster_existing,
            client_tls,
            peer_tls,
            heartbeat_interval_ms,
            election_timeout_ms,
        })
    }
}

const KNOWN_FLAGS: &[&str] = &[
    "name",
    "data-dir",
    "listen-client-urls",
    "advertise-client-urls",
    "listen-peer-urls",
    "initial-advertise-peer-urls",
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "listen-metrics-urls",
    "cert-file",
    "key-file",
    "trusted-ca-file",
    "client-cert-auth",
    "peer-cert-file",
    "peer-key-file",
    "peer-trusted-ca-file",
    "peer-client-cert-auth",
    "heartbeat-interval",
    "election-timeout",
    "snapshot-count",
    "max-request-bytes",
    "restore-snapshot",
    "auto-compaction-mode",
    "auto-compaction-retention",
    "max-txn-ops",
    "wal-dir",
    "max-snapshots",
    "quota-backend-bytes",
    "strict-reconfig-check",
    "grpc-keepalive-min-time",
    "grpc-keepalive-interval",
    "grpc-keepalive-timeout",
];

fn parse_initial_cluster(text: &str) -> Result<Vec<(String, Vec<Url>)>, FlagError> {
    let mut members: Vec<(String, Vec<Url>)> = Vec::new();
    for item in text.split(',').filter(|s| !s.is_empty()) {
        let (name, url) = item
            .split_once('=')
            .ok_or_else(|| FlagError::BadInitialCluster(text.to_string()))?;
        let url = Url::parse(url)?;
        match members.iter_mut().find(|(n, _)| n == name) {
            Some((_, urls)) => urls.push(url),
            None => members.push((name.to_string(), vec![url])),
        }
    }
    if members.is_empty() {
        return Err(FlagError::BadInitialCluster(text.to_string()));
    }
    Ok(members)
}

#[cfg(test)]
mod tests;
