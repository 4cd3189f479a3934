//! The real etcd client (etcdctl 3.4, grpc-go) against `GrpcServer`, plaintext and TLS with
//! client certificates. Skipped with a message when etcdctl is missing, except under CI=true
//! where a missing etcdctl fails the test.

mod grpc_common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use grpc_common::{Pki, ServerHandle, etcdctl, spawn_server};
use tally_runtime_mio::client::{GrpcConfig, tls};

fn run(
    etcdctl: &PathBuf,
    endpoint: &str,
    extra: &[&std::ffi::OsStr],
    args: &[&str],
) -> (bool, String) {
    let out = Command::new(etcdctl)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(["--dial-timeout=5s", "--command-timeout=10s"])
        .args(extra)
        .args(args)
        .output()
        .expect("run etcdctl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.success(),
        format!("{stdout}\n--- stderr ---\n{stderr}"),
    )
}

fn assert_status_json(output: &str) {
    for want in [
        "\"version\":\"3.4.23\"",
        "\"leader\":42",
        "\"member_id\":42",
        "\"raft_term\":3",
        "\"dbSize\":4096",
    ] {
        assert!(output.contains(want), "missing {want} in: {output}");
    }
}

fn status(
    etcdctl: &PathBuf,
    server: &ServerHandle,
    scheme: &str,
    extra: &[&std::ffi::OsStr],
) -> (bool, String) {
    let endpoint = format!("{scheme}://{}", server.addr());
    run(
        etcdctl,
        &endpoint,
        extra,
        &["endpoint", "status", "-w", "json"],
    )
}

#[test]
fn grpc_etcdctl_endpoint_status_plaintext() {
    let Some(etcdctl) = etcdctl() else { return };
    let server = spawn_server(GrpcConfig::default(), None);
    let endpoint = server.addr().to_string();
    let (ok, output) = run(
        &etcdctl,
        &endpoint,
        &[],
        &["endpoint", "status", "-w", "json"],
    );
    assert!(ok, "{output}");
    assert_status_json(&output);
    // An unknown method comes back as the application's UNIMPLEMENTED, not a transport error.
    let (ok, output) = run(&etcdctl, &endpoint, &[], &["get", "foo"]);
    assert!(!ok);
    assert!(
        output.contains("unknown method /etcdserverpb.KV/Range"),
        "{output}"
    );
}

#[test]
fn grpc_etcdctl_endpoint_status_tls_client_cert_auth() {
    let Some(etcdctl) = etcdctl() else { return };
    let pki = Pki::new("etcdctl");
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("server.pem"),
        pki.path("server-key.pem"),
    );
    let server_tls = tls::server_config(&cert, &key, Some(&ca), true).expect("tls");
    let server = spawn_server(GrpcConfig::default(), Some(server_tls));
    let cacert = format!("--cacert={}", ca.display());
    let client_cert = format!("--cert={}", pki.path("client.pem").display());
    let client_key = format!("--key={}", pki.path("client-key.pem").display());
    let extra = [cacert.as_ref(), client_cert.as_ref(), client_key.as_ref()];
    let (ok, output) = status(&etcdctl, &server, "https", &extra);
    assert!(ok, "{output}");
    assert_status_json(&output);
    // Without a client certificate the server refuses the handshake.
    let (ok, output) = status(&etcdctl, &server, "https", &[cacert.as_ref()]);
    assert!(!ok, "{output}");
}

#[test]
fn grpc_etcdctl_endpoint_status_tls_server_only() {
    let Some(etcdctl) = etcdctl() else { return };
    let pki = Pki::new("etcdctl-server-only");
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("server.pem"),
        pki.path("server-key.pem"),
    );
    let server = spawn_server(
        GrpcConfig::default(),
        Some(tls::server_config(&cert, &key, None, false).expect("tls")),
    );
    let cacert = format!("--cacert={}", ca.display());
    let (ok, output) = status(&etcdctl, &server, "https", &[cacert.as_ref()]);
    assert!(ok, "{output}");
    assert_status_json(&output);
}

#[test]
fn grpc_etcdctl_put_and_watch_stream() {
    let Some(etcdctl) = etcdctl() else { return };
    let server = spawn_server(GrpcConfig::default(), None);
    let endpoint = server.addr().to_string();
    let (ok, output) = run(&etcdctl, &endpoint, &[], &["put", "foo", "bar"]);
    assert!(ok, "{output}");
    assert!(output.starts_with("OK"), "{output}");

    // `etcdctl watch` keeps its bidirectional stream open: read its lines, then stop it.
    let mut child = Command::new(&etcdctl)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(["--dial-timeout=5s", "watch", "foo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn etcdctl watch");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while lines.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    assert_eq!(lines, ["PUT", "foo", "v1"]);
    // The client went away with the stream open: the application hears Cancelled.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.cancelled.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "watch call never cancelled");
        std::thread::sleep(Duration::from_millis(10));
    }
}
