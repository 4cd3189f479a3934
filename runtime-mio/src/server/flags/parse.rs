//! Reading `tallyd`'s command line into [`Flags`]: each argument to its flag, then the flags
//! to settings, checked against each other.

use std::path::PathBuf;

use super::Flags;
use super::compaction::AutoCompactionConfig;
use super::error::FlagError;
use super::keepalive::{GRPC_DEFAULT_INTERVAL_MS, GRPC_DEFAULT_TIMEOUT_MS, GrpcKeepalive};
use super::raw::Raw;
use super::table::BOOL_FLAGS;
use super::tls::TlsFiles;
use super::url::Url;

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
        build(&raw)
    }
}

/// The settings the flags in `raw` ask for, or the first flag that is wrong.
fn build(raw: &Raw) -> Result<Flags, FlagError> {
    let name = raw.get("name").unwrap_or("default").to_string();
    let data_dir = PathBuf::from(
        raw.get("data-dir")
            .map_or_else(|| format!("{name}.tally"), str::to_string),
    );
    let listen_client_urls = raw.urls(
        "listen-client-urls",
        &[Url::parse("http://127.0.0.1:2379")?],
    )?;
    let advertise_client_urls = raw.urls("advertise-client-urls", &listen_client_urls)?;
    let listen_peer_urls = raw.urls("listen-peer-urls", &[Url::parse("http://127.0.0.1:2380")?])?;
    let initial_advertise_peer_urls = raw.urls("initial-advertise-peer-urls", &listen_peer_urls)?;
    let initial_cluster = match raw.get("initial-cluster") {
        None => vec![(name.clone(), initial_advertise_peer_urls.clone())],
        Some(text) => parse_initial_cluster(text)?,
    };
    if !initial_cluster.iter().any(|(n, _)| *n == name) {
        return Err(FlagError::NameNotInCluster(name));
    }
    let initial_cluster_existing = match raw.get("initial-cluster-state").unwrap_or("new") {
        "new" => false,
        "existing" => true,
        other => {
            return Err(FlagError::BadValue {
                flag: "--initial-cluster-state".into(),
                value: other.into(),
            });
        }
    };
    let client_tls = tls_files(raw, "")?;
    let peer_tls = tls_files(raw, "peer-")?;
    if listen_client_urls.iter().any(Url::is_tls) && client_tls.cert_and_key().is_none() {
        return Err(FlagError::TlsWithoutCertificates("client"));
    }
    if listen_peer_urls.iter().any(Url::is_tls) && peer_tls.cert_and_key().is_none() {
        return Err(FlagError::TlsWithoutCertificates("peer"));
    }
    let heartbeat_interval_ms = raw.number("heartbeat-interval", 100u64)?.max(1);
    let election_timeout_ms = raw.number("election-timeout", 1000u64)?;
    if election_timeout_ms < 3 * heartbeat_interval_ms {
        return Err(FlagError::BadValue {
            flag: "--election-timeout".into(),
            value: election_timeout_ms.to_string(),
        });
    }
    let auto_compaction = AutoCompactionConfig::parse(
        raw.get("auto-compaction-mode").unwrap_or("periodic"),
        raw.get("auto-compaction-retention").unwrap_or("0"),
    )
    .map_err(|value| FlagError::BadValue {
        flag: "--auto-compaction-mode/--auto-compaction-retention".into(),
        value,
    })?;
    let max_snapshots = match raw.get("max-snapshots") {
        None => None,
        Some(_) => Some(raw.number("max-snapshots", 0usize)?.max(1)),
    };
    let grpc_keepalive = GrpcKeepalive::new(
        raw.duration_ms("grpc-keepalive-min-time", 5_000)?,
        raw.duration_ms("grpc-keepalive-interval", GRPC_DEFAULT_INTERVAL_MS)?,
        raw.duration_ms("grpc-keepalive-timeout", GRPC_DEFAULT_TIMEOUT_MS)?,
    );
    // etcd's simple tokens, or JWT ones (`jwt,pub-key=…,…`; the keys are read at start).
    let auth_token = raw.get("auth-token").unwrap_or("simple").to_string();
    if auth_token != "simple" && !auth_token.starts_with("jwt,") {
        return Err(FlagError::BadValue {
            flag: "--auth-token (simple, or jwt with its options)".into(),
            value: auth_token,
        });
    }
    let bcrypt_cost = raw.number("bcrypt-cost", 10u32)?;
    if !(4..=31).contains(&bcrypt_cost) {
        return Err(FlagError::BadValue {
            flag: "--bcrypt-cost".into(),
            value: bcrypt_cost.to_string(),
        });
    }
    Ok(Flags {
        auth_token,
        auth_token_ttl: std::time::Duration::from_secs(
            raw.number("auth-token-ttl", 300u64)?.max(1),
        ),
        bcrypt_cost,
        grpc_keepalive,
        max_txn_ops: raw.number("max-txn-ops", 128usize)?.max(1),
        quota_backend_bytes: quota_bytes(raw)?,
        strict_reconfig_check: match raw.get("strict-reconfig-check") {
            None => true,
            Some(_) => raw.boolean("strict-reconfig-check")?,
        },
        wal_dir: raw.get("wal-dir").map(PathBuf::from),
        max_snapshots,
        ignored: raw.ignored().to_vec(),
        auto_compaction,
        listen_metrics_urls: raw.urls("listen-metrics-urls", &[])?,
        initial_cluster_token: raw
            .get("initial-cluster-token")
            .unwrap_or("etcd-cluster")
            .to_string(),
        snapshot_count: raw.number("snapshot-count", 100_000u64)?.max(1),
        max_request_bytes: raw.number("max-request-bytes", 1_572_864u32)?,
        restore_snapshot: raw.get("restore-snapshot").map(PathBuf::from),
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

/// `--quota-backend-bytes`. etcd reads a negative quota as "none"; a member that keeps its
/// store in memory must have one, so a negative value is refused, naming why.
fn quota_bytes(raw: &Raw) -> Result<u64, FlagError> {
    if let Some(value) = raw.get("quota-backend-bytes") {
        if value.trim_start().starts_with('-') {
            return Err(FlagError::Unsupported {
                flag: "--quota-backend-bytes with a negative value".into(),
                why: "etcd reads it as no quota at all, and tally keeps its store in memory, so it must have a bound: give a size in bytes, or 0 for the 2 GiB default",
            });
        }
    }
    raw.number("quota-backend-bytes", 0u64)
}

/// One side's certificate flags, each named `{prefix}cert-file` and so on.
fn tls_files(raw: &Raw, prefix: &str) -> Result<TlsFiles, FlagError> {
    Ok(TlsFiles::new(
        raw.get(&format!("{prefix}cert-file")).map(PathBuf::from),
        raw.get(&format!("{prefix}key-file")).map(PathBuf::from),
        raw.get(&format!("{prefix}trusted-ca-file"))
            .map(PathBuf::from),
        raw.boolean(&format!("{prefix}client-cert-auth"))?,
    ))
}

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
