//! etcd's HTTP/JSON gateway (`POST /v3/kv/put` and friends, as `curl` users call etcd) on a
//! 3-member tally cluster, checked against etcdctl (Debian's etcd-client) on the same data.
//! The expected bodies are what etcd 3.4.23 answered to the same requests.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use tally_tests::process::{Options, ProcCluster, etcdctl_available};

/// One HTTP/1.1 request: the status code and the body.
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let text = tally_tests::http::request(port, method, path, body);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// Opens a streaming call (watch, keep-alive): the request is sent, the stream left open.
fn open_stream(port: u16, path: &str, body: &str) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    stream
}

/// Reads a stream until its text holds `needle`; panics with what came after 10 s.
fn read_until(stream: &mut std::net::TcpStream, text: &mut String, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !text.contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in {text:?}"
        );
        match stream.read(&mut buf) {
            Ok(0) => panic!("the stream ended before {needle:?}: {text:?}"),
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {} // read timeout: poll again
        }
    }
}

/// etcd's `etcd_debugging_mvcc_watcher_total` on `member`'s `/metrics`.
fn watchers(c: &ProcCluster, member: usize) -> u64 {
    let (status, text) = http(c.members[member].client_port, "GET", "/metrics", "");
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix("etcd_debugging_mvcc_watcher_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no watcher gauge in {text}"))
}

fn post(c: &ProcCluster, member: usize, path: &str, body: &str) -> (u16, String) {
    http(c.members[member].client_port, "POST", path, body)
}

fn ok(c: &ProcCluster, member: usize, path: &str, body: &str) -> String {
    let (status, text) = post(c, member, path, body);
    assert_eq!(status, 200, "{path} {body}: {text}\n{}", c.logs());
    text
}

#[test]
fn the_json_gateway_serves_etcds_calls_on_every_member() {
    if !etcdctl_available() {
        return;
    }
    let mut c = ProcCluster::start(3, Options::default());
    let leader = c.wait_leader(Duration::from_secs(20)).expect("a leader");
    let follower = (leader + 1) % 3;
    let all = c.endpoints(&[0, 1, 2]);

    // A put sent to a follower goes through Raft; etcdctl reads it anywhere.
    let put = ok(
        &c,
        follower,
        "/v3/kv/put",
        r#"{"key":"Zm9v","value":"YmFy"}"#,
    );
    assert!(put.starts_with(r#"{"header":{"cluster_id":""#), "{put}");
    assert_eq!(c.ok(&all, &["get", "foo", "--print-value-only"]), "bar\n");

    // And what etcdctl wrote, the gateway reads, linearizable or serializable.
    c.ok(&all, &["put", "foo/a", "1"]);
    let range = ok(
        &c,
        leader,
        "/v3/kv/range",
        r#"{"key":"Zm9vL2E=","keys_only":false}"#,
    );
    assert!(
        range.contains(r#""kvs":[{"key":"Zm9vL2E=","create_revision":"3","mod_revision":"3","version":"1","value":"MQ=="}],"count":"1"}"#),
        "{range}"
    );
    let prefix = ok(
        &c,
        follower,
        "/v3beta/kv/range",
        r#"{"key":"Zm9v","rangeEnd":"Zm9w","count_only":true,"serializable":true}"#,
    );
    assert!(prefix.ends_with(r#""count":"2"}"#), "{prefix}");

    // A txn with a compare, and a lease that takes its key with it when revoked.
    let txn = ok(
        &c,
        leader,
        "/v3/kv/txn",
        r#"{"compare":[{"target":"VALUE","result":"EQUAL","key":"Zm9v","value":"YmFy"}],
            "success":[{"request_put":{"key":"Zm9v","value":"YmF6","prev_kv":true}}]}"#,
    );
    assert!(txn.contains(r#""succeeded":true"#), "{txn}");
    assert!(txn.contains(r#""prev_kv":{"key":"Zm9v""#), "{txn}");
    let grant = ok(
        &c,
        follower,
        "/v3/lease/grant",
        r#"{"TTL":"60","ID":"4242"}"#,
    );
    assert!(grant.ends_with(r#""ID":"4242","TTL":"60"}"#), "{grant}");
    ok(
        &c,
        follower,
        "/v3/kv/put",
        r#"{"key":"bGVhc2Vk","value":"eA==","lease":"4242"}"#,
    );
    let ttl = ok(
        &c,
        follower,
        "/v3/lease/timetolive",
        r#"{"ID":"4242","keys":true}"#,
    );
    assert!(
        ttl.contains(r#""grantedTTL":"60","keys":["bGVhc2Vk"]"#),
        "{ttl}"
    );
    ok(&c, leader, "/v3/kv/lease/revoke", r#"{"ID":4242}"#);
    assert_eq!(c.ok(&all, &["get", "leased"]), "");

    // Watch and keep-alive stream {"result":…} lines, as etcd's gateway does.
    let mut watch = open_stream(
        c.members[follower].client_port,
        "/v3/watch",
        // Two requests in one body, one JSON object after the other.
        r#"{"create_request":{"key":"dw==","prev_kv":true}} {"create_request":{"key":"eA=="}}"#,
    );
    let mut watched = String::new();
    read_until(&mut watch, &mut watched, r#""created":true}}"#);
    assert!(
        watched.starts_with("HTTP/1.1 200 OK\r\n") && watched.contains("chunked"),
        "{watched}"
    );
    c.ok(&all, &["put", "w", "1"]);
    c.ok(&all, &["put", "w", "2"]);
    c.ok(&all, &["put", "x", "3"]);
    read_until(
        &mut watch,
        &mut watched,
        r#""value":"Mg=="},"prev_kv":{"key":"dw==","#,
    );
    read_until(&mut watch, &mut watched, r#""kv":{"key":"eA==""#);
    assert_eq!(watchers(&c, follower), 2);
    // A client that hangs up ends its watch.
    drop(watch);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while watchers(&c, follower) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the watch outlived its client"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(&c, leader, "/v3/lease/grant", r#"{"TTL":"60","ID":"4243"}"#);
    let mut keep_alive = open_stream(
        c.members[follower].client_port,
        "/v3/lease/keepalive",
        r#"{"ID":"4243"}"#,
    );
    let mut kept = String::new();
    read_until(&mut keep_alive, &mut kept, r#""ID":"4243","TTL":"60"}}"#);
    drop(keep_alive);

    let members = ok(&c, follower, "/v3/cluster/member/list", "");
    assert_eq!(members.matches("\"peerURLs\"").count(), 3, "{members}");
    let status = ok(&c, follower, "/v3/maintenance/status", "{}");
    assert!(status.contains(r#""raftAppliedIndex":""#), "{status}");

    // Errors come as etcd's gateway gives them: its HTTP status for the gRPC code, and
    // {"error","message","code"} with etcd's message.
    let compact = ok(&c, leader, "/v3/kv/compaction", r#"{"revision":"3"}"#);
    assert!(compact.starts_with(r#"{"header""#), "{compact}");
    let message = "etcdserver: mvcc: required revision has been compacted";
    let want = format!(r#"{{"error":"{message}","message":"{message}","code":11}}"#);
    assert_eq!(
        post(
            &c,
            follower,
            "/v3/kv/range",
            r#"{"key":"Zm9v","revision":"2"}"#
        ),
        (400, want)
    );
    let (status, body) = post(&c, leader, "/v3/lease/revoke", r#"{"ID":"1"}"#);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains(r#""message":"etcdserver: requested lease not found","code":5"#));
    let (status, body) = post(&c, leader, "/v3/kv/range", "");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("etcdserver: key is not provided"), "{body}");
    // Bad input gets a clear error, and the member serves on.
    for (path, body, want) in [
        ("/v3/kv/put", r#"{"key":"#, 400),
        ("/v3/kv/put", r#"{"key":"not base64!"}"#, 400),
        ("/v3/kv/put", r#"["a"]"#, 400),
        ("/v3/maintenance/snapshot", "{}", 501),
        ("/v3/kv/nothing", "{}", 404),
    ] {
        let (status, text) = post(&c, follower, path, body);
        assert_eq!(status, want, "{path} {body}: {text}");
    }
    let (status, _) = http(c.members[leader].client_port, "GET", "/v3/kv/range", "");
    assert_eq!(status, 405);
    assert_eq!(c.ok(&all, &["get", "foo", "--print-value-only"]), "baz\n");
}
