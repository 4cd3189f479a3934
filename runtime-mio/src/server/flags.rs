//! `tallyd`'s command line: etcd's flag names, so an etcd operator's command line works.
//!
//! [`Flags::parse`] (in `parse`) reads the arguments into a table of given values (`raw`),
//! checking each name against the flags tallyd knows, ignores or refuses (`table`), then reads
//! the settings from that table.

use std::path::PathBuf;

mod compaction;
mod error;
mod help;
mod keepalive;
mod parse;
mod raw;
mod table;
mod tls;
mod url;

pub use compaction::AutoCompactionConfig;
pub(in crate::server) use compaction::parse_go_duration;
pub use error::FlagError;
pub use help::{ETCD_API_VERSION, USAGE, version_text};
pub use tls::TlsFiles;
pub use url::Url;

use keepalive::GrpcKeepalive;

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
    /// `--auth-token`: `simple`, or `jwt,` with its options.
    auth_token: String,
    /// `--auth-token-ttl`: how long a simple token lives after its last use.
    auth_token_ttl: std::time::Duration,
    /// `--bcrypt-cost`.
    bcrypt_cost: u32,
}

impl Flags {
    /// `--auth-token`: `simple`, or `jwt,` and its options (keys, sign method, TTL).
    pub fn auth_token(&self) -> &str {
        &self.auth_token
    }

    /// How long a simple token lives after its last use (`--auth-token-ttl`).
    pub fn auth_token_ttl(&self) -> std::time::Duration {
        self.auth_token_ttl
    }

    /// The cost of the bcrypt hashes of users' passwords (`--bcrypt-cost`).
    pub fn bcrypt_cost(&self) -> u32 {
        self.bcrypt_cost
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
        self.grpc_keepalive.min_time_ms()
    }
    /// `--grpc-keepalive-interval` (default 2h): the server pings a client silent this long.
    pub fn grpc_keepalive_interval_ms(&self) -> u64 {
        self.grpc_keepalive.interval_ms()
    }
    /// `--grpc-keepalive-timeout` (default 20s): how long a ping may go unanswered.
    pub fn grpc_keepalive_timeout_ms(&self) -> u64 {
        self.grpc_keepalive.timeout_ms()
    }
}

#[cfg(test)]
mod tests;
