//! What `tallyd --help` and `tallyd --version` print.

/// `tallyd --help`: the flags in etcd 3.4's groups. `[ignored]` flags are accepted with a
/// warning at start; `[refused]` ones stop tallyd unless they ask for nothing (empty or false).
pub const USAGE: &str = "Usage:

  tallyd [flags]
    Start a tally member. The flags are etcd's: --flag value or --flag=value.

  tallyd --version
    Show tally's version and the etcd API version it serves.

  tallyd snapshot export-etcd SNAPSHOT ETCD-SNAPSHOT
    Write an etcd 3.4 snapshot file (for `etcdctl snapshot restore`) from an `etcdctl
    snapshot save` file of tally, every revision kept. See `tallyd snapshot --help`.

  tallyd -h | --help
    Show this help.

Member:
  --name 'default'
    Human-readable name for this member.
  --data-dir '${name}.tally'
    Path to the data directory.
  --wal-dir ''
    Path to a dedicated WAL directory (default: DATA-DIR/member/wal).
  --snapshot-count '100000'
    Applied entries between snapshots; a snapshot also waits until the log written since the
    last one is as large as that snapshot.
  --heartbeat-interval '100'
    Time (in milliseconds) of a heartbeat interval.
  --election-timeout '1000'
    Time (in milliseconds) for an election to time out.
  --listen-peer-urls 'http://127.0.0.1:2380'
    List of URLs to listen on for peer traffic.
  --listen-client-urls 'http://127.0.0.1:2379'
    List of URLs to listen on for client traffic (gRPC, the JSON gateway, /health, /metrics).
  --max-snapshots '3'
    Snapshot files to keep.
  --quota-backend-bytes '0'
    Store size that raises the NOSPACE alarm (0: etcd's 2 GiB). The store lives in memory.
  --max-txn-ops '128'
    Maximum number of operations permitted in a transaction.
  --max-request-bytes '1572864'
    Maximum client request size in bytes the server will accept.
  --grpc-keepalive-min-time '5s'
    Minimum interval a client should wait before pinging the server.
  --grpc-keepalive-interval '2h'
    Ping a client connection silent this long (0 to disable).
  --grpc-keepalive-timeout '20s'
    Close a connection whose ping gets no answer within this (0 to disable).
  --restore-snapshot ''
    tally's own: seed a new one-member data directory from an `etcdctl snapshot save` file,
    of tally or of etcd 3.x (a bbolt database: every revision, lease and alarm is kept).
  --initial-election-tick-advance   [ignored] elections start from randomized timers
  --max-wals                        [ignored] WAL segments go once a snapshot covers them
  --backend-batch-interval, --backend-batch-limit
                                    [ignored] there is no bbolt backend

Clustering:
  --initial-advertise-peer-urls 'http://127.0.0.1:2380'
    List of this member's peer URLs to advertise to the rest of the cluster.
  --initial-cluster 'default=http://127.0.0.1:2380'
    Initial cluster configuration for bootstrapping.
  --initial-cluster-state 'new'
    Initial cluster state ('new' or 'existing').
  --initial-cluster-token 'etcd-cluster'
    Initial cluster token for the cluster during bootstrap.
  --advertise-client-urls 'http://127.0.0.1:2379'
    List of this member's client URLs to advertise to the public.
  --strict-reconfig-check 'true'
    Reject reconfiguration requests that would cause quorum loss.
  --auto-compaction-retention '0'
    Auto compaction retention length (0: off).
  --auto-compaction-mode 'periodic'
    'periodic' (retention in hours, or a duration such as '30m') or 'revision' (revisions
    to keep).
  --pre-vote                        [ignored] PreVote is always on
  --enable-v2                       [ignored] only the v3 API is served
  --discovery, --discovery-srv, --discovery-fallback, --discovery-proxy
                                    [refused] start with --initial-cluster

Security:
  --cert-file ''
    Path to the client server TLS cert file.
  --key-file ''
    Path to the client server TLS key file.
  --client-cert-auth 'false'
    Require client certificates signed by --trusted-ca-file.
  --trusted-ca-file ''
    Path to the client server TLS trusted CA cert file.
  --peer-cert-file ''
    Path to the peer server TLS cert file (peer links are then mutual TLS).
  --peer-key-file ''
    Path to the peer server TLS key file.
  --peer-client-cert-auth 'false'
    Enable peer client cert authentication.
  --peer-trusted-ca-file ''
    Path to the peer server TLS trusted CA file.
  --auth-token 'simple'
    Token kind of the Auth service (simple; JWT tokens are not served).
  --auth-token-ttl 300
    Seconds a simple token lives after its last use.
  --bcrypt-cost 10
    Cost of the bcrypt hashes of users' passwords (4 to 31).
  --auto-tls, --peer-auto-tls       [refused] give certificate and key files
  --client-crl-file, --peer-crl-file
                                    [refused] revocation lists are not checked
  --client-cert-allowed-hostname, --peer-cert-allowed-cn, --peer-cert-allowed-hostname
                                    [refused] certificates are checked against the CA only
  --cipher-suites                   [refused] rustls's default suites are used
  --cors                            [refused] the JSON gateway sends no CORS headers
  --host-whitelist                  [refused] Host headers are not checked

Auth:

Profiling and Monitoring:
  --listen-metrics-urls ''
    List of URLs to listen on for the metrics and health endpoints.
  --enable-pprof                    [ignored] there is no Go runtime to profile
  --metrics                         [ignored] /metrics has one level of detail

Logging:
  --logger, --log-outputs, --log-level
                                    [ignored] tallyd logs one line per event to stderr

v2 Proxy:
  --proxy                           [refused] tallyd is never a v2 proxy

Experimental feature:
  --experimental-initial-corrupt-check
                                    [ignored] the WAL and snapshots are checksummed on
                                    every read

Unsafe feature:
  --force-new-cluster is not supported: seed a new cluster with --restore-snapshot.

TO BE DEPRECATED:
  --debug, --log-package-levels     [ignored] tallyd logs to stderr

[ignored]: accepted, with one warning line at start. [refused]: tallyd does not start,
unless the value asks for nothing (empty or false).";

/// `tallyd --version`: tally's version and the etcd API it serves, in the shape of etcd's.
pub fn version_text() -> String {
    format!(
        "tallyd Version: {}\netcd API Version: {} (answers as etcd {}; cluster version {})\nOS/Arch: {}/{}",
        env!("CARGO_PKG_VERSION"),
        ETCD_API_VERSION,
        crate::server::etcd_version::ETCD_VERSION,
        crate::server::etcd_version::ETCD_CLUSTER_VERSION,
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The etcd API tally speaks: etcd 3.4's v3 gRPC API.
pub const ETCD_API_VERSION: &str = "3.4";
