//! Tests of `tallyd`'s command line.

use super::*;

fn parse(args: &[&str]) -> Result<Flags, FlagError> {
    Flags::parse(args.iter().map(|s| s.to_string()))
}

#[test]
fn no_flags_is_one_member_on_the_default_ports() {
    let flags = parse(&[]).expect("defaults");
    assert_eq!(flags.name(), "default");
    assert_eq!(flags.data_dir(), &PathBuf::from("default.tally"));
    assert_eq!(
        flags.listen_client_urls()[0]
            .socket_addr()
            .expect("addr")
            .to_string(),
        "127.0.0.1:2379"
    );
    assert_eq!(flags.initial_cluster().len(), 1);
    assert_eq!(flags.election_ticks(), 10);
}

#[test]
fn an_etcd_three_member_command_line_parses() {
    let flags = parse(&[
        "--name",
        "infra1",
        "--initial-advertise-peer-urls=http://127.0.0.1:12380",
        "--listen-peer-urls",
        "http://127.0.0.1:12380",
        "--listen-client-urls=http://127.0.0.1:2379",
        "--advertise-client-urls",
        "http://127.0.0.1:2379",
        "--initial-cluster-token",
        "etcd-cluster-1",
        "--initial-cluster",
        "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380",
        "--initial-cluster-state",
        "new",
        "--heartbeat-interval=50",
        "--election-timeout",
        "500",
        "--client-cert-auth",
    ])
    .expect("etcd's own example");
    assert_eq!(flags.initial_cluster().len(), 3);
    assert_eq!(flags.initial_cluster_token(), "etcd-cluster-1");
    assert_eq!(flags.election_ticks(), 10);
    assert!(flags.client_tls().client_cert_auth());
}

#[test]
fn bad_command_lines_get_typed_errors() {
    assert!(matches!(
        parse(&["--bogus", "1"]),
        Err(FlagError::Unknown(_))
    ));
    assert!(matches!(
        parse(&["--name"]),
        Err(FlagError::MissingValue(_))
    ));
    assert!(matches!(
        parse(&["--listen-client-urls", "tcp://x"]),
        Err(FlagError::BadUrl(_))
    ));
    assert!(matches!(
        parse(&["--name", "a", "--initial-cluster", "b=http://127.0.0.1:1"]),
        Err(FlagError::NameNotInCluster(_))
    ));
    assert!(matches!(
        parse(&["--listen-client-urls", "https://127.0.0.1:1"]),
        Err(FlagError::TlsWithoutCertificates(_))
    ));
    assert!(matches!(
        parse(&["--heartbeat-interval", "100", "--election-timeout", "200"]),
        Err(FlagError::BadValue { .. })
    ));
}

/// A production etcd command line, as operators write them: etcd's flags that tallyd honours,
/// the ones it safely ignores (each warned about at start), and none it must refuse.
#[test]
fn a_production_etcd_command_line_parses() {
    let flags = parse(&[
        "--name=infra1",
        "--data-dir=/var/lib/etcd",
        "--wal-dir=/fast/etcd-wal",
        "--listen-client-urls=http://127.0.0.1:2379",
        "--auto-compaction-mode=revision",
        "--auto-compaction-retention=1000",
        "--quota-backend-bytes=8589934592",
        "--max-txn-ops=512",
        "--max-snapshots=5",
        "--max-wals=5",
        "--logger=zap",
        "--log-outputs=stderr",
        "--log-level",
        "info",
        "--enable-v2=false",
        "--pre-vote",
        "--strict-reconfig-check",
        "--auto-tls=false",
        "--grpc-keepalive-interval=2h",
    ])
    .expect("an operator's command line");
    assert_eq!(flags.wal_dir(), Some(&PathBuf::from("/fast/etcd-wal")));
    assert_eq!(flags.max_txn_ops(), 512);
    assert_eq!(flags.max_snapshots(), Some(5));
    assert_eq!(flags.quota_backend_bytes(), 8 << 30);
    assert!(flags.strict_reconfig_check());
    let lax = parse(&["--strict-reconfig-check=false"]).expect("flag");
    assert!(!lax.strict_reconfig_check());
    assert_eq!(
        flags.auto_compaction(),
        super::AutoCompactionConfig::Revision(1000)
    );
    let ignored: Vec<&str> = flags.ignored().iter().map(|(f, _)| f.as_str()).collect();
    for flag in [
        "max-wals",
        "logger",
        "log-outputs",
        "log-level",
        "enable-v2",
        "pre-vote",
    ] {
        assert!(ignored.contains(&flag), "{flag} in {ignored:?}");
    }
    assert!(
        !ignored.contains(&"grpc-keepalive-interval"),
        "it is honoured"
    );
    assert_eq!(flags.grpc_keepalive_interval_ms(), 2 * 3600 * 1000);
    assert!(!ignored.contains(&"auto-tls"), "asked for nothing");
    let defaults = parse(&[]).expect("defaults");
    assert_eq!((defaults.max_txn_ops(), defaults.wal_dir()), (128, None));
    assert_eq!(
        defaults.quota_backend_bytes(),
        2 << 30,
        "etcd's 2 GiB unless asked"
    );
    let zero = parse(&["--quota-backend-bytes=0"]).expect("0 is etcd's default");
    assert_eq!(zero.quota_backend_bytes(), 2 << 30);
    let negative = parse(&["--quota-backend-bytes=-1"]).expect_err("no quota is refused");
    assert!(
        negative.to_string().contains("must have a bound"),
        "{negative}"
    );
    assert!(defaults.ignored().is_empty());
}

/// etcd flags whose request tallyd cannot honour are refused, naming why, rather than
/// ignored: a CRL or an allowed-CN list ignored would let in what the operator shut out.
#[test]
fn etcd_flags_that_would_weaken_security_are_refused() {
    for args in [
        &["--auto-tls"][..],
        &["--client-crl-file", "/etc/crl.pem"],
        &["--peer-cert-allowed-cn=etcd-peer"],
        &["--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
        &["--discovery=https://discovery.etcd.io/x"],
    ] {
        let error = parse(args).expect_err("refused");
        assert!(
            matches!(error, FlagError::Unsupported { .. }),
            "{args:?}: {error}"
        );
        assert!(
            error.to_string().contains("not supported by tallyd"),
            "{error}"
        );
    }
}

/// etcd's keep-alive flags are Go durations with etcd's defaults; a zero leaves grpc-go's
/// default in place, as etcd passes only positive values to grpc-go.
#[test]
fn grpc_keepalive_flags_are_go_durations() {
    let defaults = parse(&[]).expect("defaults");
    assert_eq!(defaults.grpc_keepalive_min_time_ms(), 5_000);
    assert_eq!(defaults.grpc_keepalive_interval_ms(), 2 * 3600 * 1000);
    assert_eq!(defaults.grpc_keepalive_timeout_ms(), 20_000);
    let tuned = parse(&[
        "--grpc-keepalive-min-time=1m30s",
        "--grpc-keepalive-interval",
        "10s",
        "--grpc-keepalive-timeout=1.5s",
    ])
    .expect("durations");
    assert_eq!(tuned.grpc_keepalive_min_time_ms(), 90_000);
    assert_eq!(tuned.grpc_keepalive_interval_ms(), 10_000);
    assert_eq!(tuned.grpc_keepalive_timeout_ms(), 1_500);
    assert!(tuned.ignored().is_empty());
    let zeros =
        parse(&["--grpc-keepalive-min-time=0", "--grpc-keepalive-timeout=0s"]).expect("zeros");
    assert_eq!(
        zeros.grpc_keepalive_min_time_ms(),
        5 * 60 * 1000,
        "grpc-go's policy"
    );
    assert_eq!(zeros.grpc_keepalive_interval_ms(), 2 * 3600 * 1000);
    assert_eq!(zeros.grpc_keepalive_timeout_ms(), 20_000);
    let tiny = parse(&[
        "--grpc-keepalive-interval=10ms",
        "--grpc-keepalive-min-time=1ns",
    ])
    .expect("tiny");
    assert_eq!(tiny.grpc_keepalive_interval_ms(), 1_000, "grpc-go's floor");
    assert_eq!(
        tiny.grpc_keepalive_min_time_ms(),
        1,
        "rounded up, not to zero"
    );
    for bad in ["5", "5x", "-5s", ""] {
        let flag = format!("--grpc-keepalive-min-time={bad}");
        assert!(
            matches!(parse(&[flag.as_str()]), Err(FlagError::BadValue { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn version_names_tally_and_the_etcd_api_it_speaks() {
    let Err(request) = parse(&["--version"]) else {
        panic!("--version starts nothing");
    };
    assert!(matches!(request, FlagError::VersionRequested));
    let text = request.to_string();
    assert!(
        text.starts_with(&format!("tallyd Version: {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("etcd API Version: 3.4"), "{text}");
}
