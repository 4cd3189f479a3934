use super::answers::http_status;
use super::*;
use crate::server::calls::Method;

#[test]
fn etcds_paths_route_to_their_calls() {
    for (path, want) in [
        ("/v3/kv/range", CallKind::Unary(Method::Range)),
        ("/v3beta/kv/put", CallKind::Unary(Method::Put)),
        ("/v3/kv/lease/revoke", CallKind::Unary(Method::LeaseRevoke)),
        (
            "/v3/lease/timetolive",
            CallKind::Unary(Method::LeaseTimeToLive),
        ),
        (
            "/v3/cluster/member/promote",
            CallKind::Unary(Method::MemberPromote),
        ),
        (
            "/v3/maintenance/transfer-leadership",
            CallKind::Unary(Method::MoveLeader),
        ),
        ("/v3/watch", CallKind::Watch),
        ("/v3/lease/keepalive", CallKind::LeaseKeepAlive),
    ] {
        assert!(
            matches!(route(path), Some(Route::Call { kind, .. }) if kind == want),
            "{path}"
        );
    }
    assert!(matches!(
        route("/v3/maintenance/snapshot"),
        Some(Route::Unserved(_))
    ));
    assert!(
        matches!(route("/v3/auth/enable"), Some(Route::Call { .. })),
        "the Auth calls are the gateway's too"
    );
    for path in [
        "/v3/kv/nothing",
        "/v3alpha/kv/range",
        "/health",
        "/v3",
        "/v3/",
    ] {
        assert!(route(path).is_none(), "{path}");
    }
}

#[test]
fn errors_take_grpc_gateways_status_and_body() {
    assert_eq!(http_status(GrpcCode::OutOfRange), 400);
    assert_eq!(http_status(GrpcCode::NotFound), 404);
    assert_eq!(http_status(GrpcCode::FailedPrecondition), 412);
    assert_eq!(http_status(GrpcCode::Unavailable), 503);
    let status = Status::new(GrpcCode::NotFound, "etcdserver: \"lease\" not found");
    assert_eq!(
        &error_body(&status)[..],
        &br#"{"error":"etcdserver: \"lease\" not found","message":"etcdserver: \"lease\" not found","code":5}"#[..]
    );
}

#[test]
fn the_fuzz_entry_holds_on_random_input_and_its_seeds() {
    fn prop(data: Vec<u8>) -> bool {
        fuzz_gateway_json(&data);
        true
    }
    quickcheck::QuickCheck::new()
        .tests(1000)
        .quickcheck(prop as fn(Vec<u8>) -> bool);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/gateway_json");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("seed dir") {
        fuzz_gateway_json(&std::fs::read(entry.expect("entry").path()).expect("seed"));
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} seeds in {}", dir.display());
}
