//! etcd's access control, walked through with etcdctl as an operator does: enabling without
//! `root` refused, `root` added and authentication on, a user with a read-only prefix role
//! reading but not writing, denied outside its prefix, a wrong password, management refused to
//! a non-root user, `root` and its role kept while authentication is on, a revoked role taking
//! effect, and authentication off again. Each step runs against a 3-member tally cluster
//! (spread over its members: a token from one is good on the others, a permission granted
//! through one holds on all) and against a real etcd 3.4, and prints what etcd 3.4 prints.

use std::process::Output;
use std::time::Duration;

use tally_tests::etcd::{EtcdMember, etcd_available, etcdctl};
use tally_tests::process::{Options, ProcCluster, TempDir, etcdctl_available, free_port};

/// The walk-through: which member (of three) each command goes to, and its arguments.
const STEPS: &[(usize, &[&str])] = &[
    (0, &["auth", "enable"]),
    (0, &["user", "add", "root:rootpw"]),
    (1, &["user", "grant-role", "root", "root"]),
    (2, &["auth", "enable"]),
    (0, &["put", "x", "1"]),
    (0, &["--user", "root:rootpw", "put", "/app/x", "1"]),
    (
        1,
        &["--user", "root:rootpw", "user", "add", "alice:alicepw"],
    ),
    (
        1,
        &["--user", "root:rootpw", "user", "add", "alice:alicepw"],
    ),
    (2, &["--user", "root:rootpw", "role", "add", "app-reader"]),
    (
        1,
        &[
            "--user",
            "root:rootpw",
            "role",
            "grant-permission",
            "app-reader",
            "read",
            "/app/",
            "--prefix",
        ],
    ),
    (
        0,
        &[
            "--user",
            "root:rootpw",
            "user",
            "grant-role",
            "alice",
            "app-reader",
        ],
    ),
    (
        0,
        &[
            "--user",
            "root:rootpw",
            "user",
            "grant-role",
            "alice",
            "nosuchrole",
        ],
    ),
    (2, &["--user", "alice:alicepw", "get", "/app/x"]),
    (1, &["--user", "alice:alicepw", "put", "/app/x", "2"]),
    (0, &["--user", "alice:alicepw", "get", "/other"]),
    (2, &["--user", "alice:alicepw", "watch", "/other"]),
    (2, &["--user", "alice:wrong", "get", "/app/x"]),
    (1, &["--user", "nobody:pw", "get", "/app/x"]),
    (0, &["--user", "root:rootpw", "role", "get", "app-reader"]),
    (1, &["--user", "root:rootpw", "role", "list"]),
    (2, &["--user", "root:rootpw", "user", "list"]),
    (0, &["--user", "root:rootpw", "user", "get", "alice"]),
    (1, &["--user", "alice:alicepw", "user", "list"]),
    (1, &["--user", "alice:alicepw", "compaction", "1"]),
    (1, &["--user", "alice:alicepw", "alarm", "list"]),
    (0, &["--user", "alice:alicepw", "defrag"]),
    (
        2,
        &[
            "--user",
            "alice:alicepw",
            "member",
            "add",
            "x",
            "--peer-urls=http://127.0.0.1:1",
        ],
    ),
    (2, &["--user", "root:rootpw", "user", "delete", "root"]),
    (0, &["--user", "root:rootpw", "role", "delete", "root"]),
    (
        0,
        &[
            "--user",
            "root:rootpw",
            "role",
            "revoke-permission",
            "app-reader",
            "/nothing",
        ],
    ),
    (
        1,
        &[
            "--user",
            "root:rootpw",
            "user",
            "revoke-role",
            "alice",
            "app-reader",
        ],
    ),
    (2, &["--user", "alice:alicepw", "get", "/app/x"]),
    (
        0,
        &[
            "--user",
            "root:rootpw",
            "user",
            "passwd",
            "alice",
            "--interactive=false",
        ],
    ),
    (1, &["--user", "root:rootpw", "auth", "disable"]),
    (2, &["put", "y", "2"]),
    (0, &["auth", "disable"]),
];

/// What a step printed, as compared: stdout (with the endpoint it names as `ENDPOINT`), the
/// `Error:` line of stderr (client-side retry warnings differ in timestamps and addresses),
/// and the exit code.
fn shown_at(output: &Output, endpoint: &str) -> String {
    shown(output).replace(endpoint, "ENDPOINT")
}

fn shown(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("Error:"))
        .collect();
    format!(
        "{}{}\nexit {:?}",
        String::from_utf8_lossy(&output.stdout),
        errors.join("\n"),
        output.status.code()
    )
}

/// `watch` never ends by itself while it is allowed; a denied one ends at once. It runs for at
/// most a few seconds, and one still running then shows as "still watching".
fn watch_shown(endpoint: &str, step: &[&str]) -> String {
    let output = std::process::Command::new("timeout")
        .arg("5")
        .arg("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(step)
        .output()
        .expect("run etcdctl");
    if output.status.code() == Some(124) {
        "still watching".into()
    } else {
        shown(&output)
    }
}

/// etcdctl steps: root, authentication on, and `alice` who may read keys under `/app/`.
const ALICE_READS_APP: &[&[&str]] = &[
    &["user", "add", "root:rootpw"],
    &["user", "grant-role", "root", "root"],
    &["auth", "enable"],
    &["--user", "root:rootpw", "user", "add", "alice:alicepw"],
    &["--user", "root:rootpw", "role", "add", "app-reader"],
    &[
        "--user",
        "root:rootpw",
        "role",
        "grant-permission",
        "app-reader",
        "read",
        "/app/",
        "--prefix",
    ],
    &[
        "--user",
        "root:rootpw",
        "user",
        "grant-role",
        "alice",
        "app-reader",
    ],
];

/// `user passwd` reads the new password from stdin.
const NEW_PASSWORD: &str = "alicepw2\n";

#[test]
fn etcdctls_auth_walk_through_prints_what_etcd_3_4_prints() {
    walk_through(false);
}

/// The same over TLS with client certificates, tally and etcd with the same certificates: a
/// call without `--user` is then the client certificate's user (`root`), on both.
#[test]
fn etcdctls_auth_walk_through_over_tls_prints_what_etcd_3_4_prints() {
    walk_through(true);
}

fn walk_through(tls: bool) {
    if !etcdctl_available() || !etcd_available() {
        return;
    }
    let dir = TempDir::new("auth-etcd");
    let mut cluster = ProcCluster::start(
        3,
        Options {
            tls,
            ..Options::default()
        },
    );
    let etcd = match cluster.certs() {
        Some(certs) => EtcdMember::start_tls(dir.path(), "etcd", free_port(), certs),
        None => EtcdMember::start(dir.path(), "etcd", free_port(), &[]),
    };
    let etcd_tls = cluster
        .certs()
        .map_or_else(Vec::new, tally_tests::etcd::tls_args);
    let with_tls = |step: &[&str]| -> Vec<String> {
        etcd_tls
            .iter()
            .cloned()
            .chain(step.iter().map(|s| s.to_string()))
            .collect()
    };
    cluster
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.logs()));
    for (index, (member, step)) in STEPS.iter().enumerate() {
        let endpoint = cluster.endpoint(*member);
        let theirs_args = with_tls(step);
        let theirs_args: Vec<&str> = theirs_args.iter().map(String::as_str).collect();
        let ours_args = with_tls(step);
        let ours_args: Vec<&str> = ours_args.iter().map(String::as_str).collect();
        let passwd = step.contains(&"passwd");
        let (ours, theirs) = if step.contains(&"watch") {
            (
                watch_shown(&endpoint, &ours_args),
                watch_shown(etcd.endpoint(), &theirs_args),
            )
        } else if passwd {
            (
                shown(&cluster.etcdctl(&endpoint, step, Some(NEW_PASSWORD))),
                shown(&tally_tests::etcd::etcdctl_with_input(
                    etcd.endpoint(),
                    &theirs_args,
                    NEW_PASSWORD.as_bytes(),
                )),
            )
        } else {
            (
                shown_at(&cluster.etcdctl(&endpoint, step, None), &endpoint),
                shown_at(&etcdctl(etcd.endpoint(), &theirs_args), etcd.endpoint()),
            )
        };
        assert_eq!(
            ours,
            theirs,
            "step {index}: etcdctl {step:?} (tally first, etcd 3.4 second; TLS {tls})\n{}",
            cluster.logs()
        );
    }
}

/// With `--client-cert-auth`, a call without a token is the user its client certificate names
/// (its subject's common name), as etcd takes it: `root`'s certificate manages, `alice`'s reads
/// what her role allows and writes nothing, and a user without a password cannot get a token.
#[test]
fn a_client_certificates_common_name_is_its_user() {
    if !etcdctl_available() {
        return;
    }
    let mut cluster = ProcCluster::start(
        3,
        Options {
            tls: true,
            ..Options::default()
        },
    );
    cluster
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.logs()));
    let certs = cluster.certs().expect("a TLS cluster").clone();
    let alice = [
        format!("--cert={}", certs.alice_cert.display()),
        format!("--key={}", certs.alice_key.display()),
    ];
    let as_alice = |member: usize, args: &[&str]| {
        let mut all: Vec<&str> = alice.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        shown(&cluster.etcdctl(&cluster.endpoint(member), &all, None))
    };
    let as_root = |member: usize, args: &[&str]| {
        shown(&cluster.etcdctl(&cluster.endpoint(member), args, None))
    };
    for (member, args) in [
        (0, &["user", "add", "root:rootpw"][..]),
        (1, &["user", "grant-role", "root", "root"]),
        (2, &["auth", "enable"]),
        (0, &["put", "/app/x", "1"]),
        (1, &["user", "add", "alice", "--no-password"]),
        (2, &["role", "add", "app-reader"]),
        (
            0,
            &[
                "role",
                "grant-permission",
                "app-reader",
                "read",
                "/app/",
                "--prefix",
            ],
        ),
        (1, &["user", "grant-role", "alice", "app-reader"]),
    ] {
        let out = as_root(member, args);
        assert!(
            out.ends_with("exit Some(0)"),
            "{args:?}: {out}\n{}",
            cluster.logs()
        );
    }
    assert_eq!(as_alice(2, &["get", "/app/x"]), "/app/x\n1\n\nexit Some(0)");
    assert_eq!(
        as_alice(0, &["put", "/app/x", "2"]),
        "Error: etcdserver: permission denied\nexit Some(1)"
    );
    assert_eq!(
        as_alice(1, &["get", "/elsewhere"]),
        "Error: etcdserver: permission denied\nexit Some(1)"
    );
    assert_eq!(
        as_alice(1, &["--user", "alice:guess", "get", "/app/x"]),
        "Error: etcdserver: authentication failed, invalid user ID or password\nexit Some(2)",
        "a user without a password has no token"
    );
    assert_eq!(
        as_root(2, &["auth", "disable"]),
        "Authentication Disabled\n\nexit Some(0)"
    );
}

/// The Lock service takes its key as the caller's user, in every step (a lock without a lease
/// grants one first): a user who may only read cannot take a lock where it may not write; as
/// etcd 3.4 answers.
#[test]
fn a_lock_is_taken_as_its_callers_user() {
    if !etcdctl_available() || !etcd_available() {
        return;
    }
    let dir = TempDir::new("auth-lock-etcd");
    let etcd = EtcdMember::start(dir.path(), "etcd", free_port(), &[]);
    let mut cluster = ProcCluster::start(3, Options::default());
    cluster
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.logs()));
    for step in ALICE_READS_APP {
        cluster.ok(&cluster.endpoint(0), step);
        tally_tests::etcd::etcdctl_ok(etcd.endpoint(), step);
    }
    let lock_as = |endpoint: String, user: &str, password: &str| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let options = etcd_client::ConnectOptions::new().with_user(user, password);
            let mut client = etcd_client::Client::connect([endpoint], Some(options))
                .await
                .expect("connect");
            match client.lock("/app/lock", None).await {
                Ok(held) => Ok(held.key().starts_with(b"/app/lock/")),
                Err(etcd_client::Error::GRpcStatus(status)) => {
                    Err((status.code() as i32, status.message().to_string()))
                }
                Err(other) => panic!("{other:?}"),
            }
        })
    };
    let ours = lock_as(
        format!("http://{}", cluster.endpoint(1)),
        "alice",
        "alicepw",
    );
    let theirs = lock_as(format!("http://{}", etcd.endpoint()), "alice", "alicepw");
    assert_eq!(ours, theirs, "alice's lock (tally first, etcd 3.4 second)");
    assert!(ours.is_err(), "a reader takes no lock");
    let ours = lock_as(format!("http://{}", cluster.endpoint(2)), "root", "rootpw");
    assert_eq!(ours, Ok(true), "root takes it");
}

/// `--auth-token jwt,...`: the walk-through's answers are etcd 3.4's with the same keys, and a
/// token one member signed is good on the others (etcd-client spreads its calls over all three
/// members with the one token it got).
#[test]
fn jwt_tokens_are_etcds_and_good_on_every_member() {
    if !etcdctl_available() || !etcd_available() {
        return;
    }
    let dir = TempDir::new("auth-jwt");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let private = dir.path().join("jwt.key");
    let public = dir.path().join("jwt.pub");
    std::fs::write(&private, key.serialize_pem()).expect("write");
    std::fs::write(&public, key.public_key_pem()).expect("write");
    let flag = format!(
        "--auth-token=jwt,pub-key={},priv-key={},sign-method=ES256,ttl=5m",
        public.display(),
        private.display()
    );
    let extra: &'static [&'static str] =
        Box::leak(vec![&*Box::leak(flag.clone().into_boxed_str())].into_boxed_slice());
    let etcd = EtcdMember::start(&dir.path().join("etcd"), "etcd", free_port(), &[&flag]);
    let mut cluster = ProcCluster::start(
        3,
        Options {
            extra_args: extra,
            ..Options::default()
        },
    );
    cluster
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.logs()));
    for (index, (member, step)) in STEPS.iter().enumerate().take(16) {
        if step.contains(&"watch") {
            continue;
        }
        let endpoint = cluster.endpoint(*member);
        let ours = shown_at(&cluster.etcdctl(&endpoint, step, None), &endpoint);
        let theirs = shown_at(&etcdctl(etcd.endpoint(), step), etcd.endpoint());
        assert_eq!(
            ours, theirs,
            "step {index}: etcdctl {step:?} with JWT tokens"
        );
    }
    let endpoints: Vec<String> = (0..3)
        .map(|m| format!("http://{}", cluster.endpoint(m)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let options = etcd_client::ConnectOptions::new().with_user("alice", "alicepw");
        let mut client = etcd_client::Client::connect(endpoints, Some(options))
            .await
            .expect("connect as alice");
        for _ in 0..30 {
            let got = client
                .get("/app/x", None)
                .await
                .expect("alice reads on any member");
            assert_eq!(got.kvs()[0].value(), b"1");
        }
    });
}

/// The JSON gateway: `/v3/auth/authenticate` gives a token, a request's `Authorization`
/// header carries it, a new password ends the old tokens, and a simple token idle past
/// `--auth-token-ttl` is refused as etcd's ("invalid auth token"); without a token the call is
/// nobody's ("user name is empty").
#[test]
fn gateway_calls_carry_their_token_and_idle_tokens_expire() {
    if !etcdctl_available() {
        return;
    }
    let mut cluster = ProcCluster::start(
        3,
        Options {
            extra_args: &["--auth-token-ttl=2"],
            ..Options::default()
        },
    );
    cluster
        .wait_leader(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.logs()));
    cluster.ok(&cluster.endpoint(0), &["put", "/app/x", "1"]);
    for step in ALICE_READS_APP {
        cluster.ok(&cluster.endpoint(0), step);
    }
    let port = |member: usize| {
        cluster
            .endpoint(member)
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .expect("a port")
    };
    let authenticate = |password: &str| {
        let answer = tally_tests::http::request(
            port(0),
            "POST",
            "/v3/auth/authenticate",
            &format!(r#"{{"name":"alice","password":"{password}"}}"#),
        );
        answer
            .split("\"token\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("a token in {answer}"))
            .to_string()
    };
    let token = authenticate("alicepw");
    // base64 of "/app/x"
    let range = r#"{"key":"L2FwcC94"}"#;
    let read = |member: usize, token: &str| {
        let header = if token.is_empty() {
            String::new()
        } else {
            format!("Authorization: {token}\r\n")
        };
        tally_tests::http::request_with(port(member), "POST", "/v3/kv/range", &header, range)
    };
    // A simple token is good on a member once that member has applied its Authenticate entry
    // (as etcd's): another member may need a moment, as it may for a new password.
    let eventually = |member: usize, token: &str, wanted: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let answer = read(member, token);
            if answer.contains(wanted) || std::time::Instant::now() > deadline {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let got = eventually(1, &token, r#""value":"MQ=="#);
    assert!(
        got.contains(r#""value":"MQ=="#),
        "alice reads on another member: {got}"
    );
    let none = read(2, "");
    assert!(none.contains("user name is empty"), "{none}");
    // A new password ends the tokens given with the old one, on every member (as etcd).
    let changed = cluster.etcdctl(
        &cluster.endpoint(2),
        &[
            "--user",
            "root:rootpw",
            "user",
            "passwd",
            "alice",
            "--interactive=false",
        ],
        Some("alicepw2\n"),
    );
    assert!(changed.status.success(), "{changed:?}");
    let old = eventually(1, &token, "etcdserver: invalid auth token");
    assert!(old.contains("etcdserver: invalid auth token"), "{old}");
    let token = authenticate("alicepw2");
    let got = eventually(2, &token, r#""value":"MQ=="#);
    assert!(
        got.contains(r#""value":"MQ=="#),
        "the new token reads: {got}"
    );
    // Idle past its TTL (2 s), the token is refused on every member.
    std::thread::sleep(Duration::from_secs(4));
    for member in 0..3 {
        let stale = read(member, &token);
        assert!(
            stale.contains("etcdserver: invalid auth token") && stale.contains(" 401 "),
            "member {member}: {stale}"
        );
    }
}
