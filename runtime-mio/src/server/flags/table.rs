//! The flags `tallyd` reads, and etcd 3.4's flags it ignores or refuses.

/// Flags that take no separate value: alone they mean `true`; `--flag=false` turns one off.
pub(super) const BOOL_FLAGS: &[&str] = &[
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
pub(super) const IGNORED_FLAGS: &[(&str, &str)] = &[
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
pub(super) const UNSUPPORTED_FLAGS: &[(&str, &str)] = &[
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
    ("discovery", "start with --initial-cluster"),
    ("discovery-srv", "start with --initial-cluster"),
    ("discovery-fallback", "start with --initial-cluster"),
    ("discovery-proxy", "start with --initial-cluster"),
    ("proxy", "tallyd is never a v2 proxy"),
];

/// The flags `tallyd` reads a value from.
pub(super) const KNOWN_FLAGS: &[&str] = &[
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
    "auth-token",
    "auth-token-ttl",
    "bcrypt-cost",
];
