use bytes::Bytes;
use prost::Message as _;
use quickcheck::{QuickCheck, TestResult};
use tally_kvstore::proto;

use super::super::schema;
use super::{TranscodeError, to_json, to_proto};

fn decode<M: prost::Message + Default>(shape: &schema::Message, json: &str) -> M {
    let wire = to_proto(shape, json.as_bytes()).expect("transcodes");
    M::decode(&wire[..]).expect("a valid message")
}

#[test]
fn requests_read_etcds_names_camel_case_strings_and_numbers() {
    let range: proto::RangeRequest = decode(
        &schema::RANGE_REQUEST,
        r#"{"key":"Zm9v","rangeEnd":"Zm9w","limit":"3","revision":7,"sort_order":"DESCEND",
            "sort_target":1,"serializable":true,"bogus":{"ignored":[1]},"keys_only":null}"#,
    );
    assert_eq!(
        range,
        proto::RangeRequest {
            key: Bytes::from_static(b"foo"),
            range_end: Bytes::from_static(b"fop"),
            limit: 3,
            revision: 7,
            sort_order: proto::SortOrder::Descend as i32,
            sort_target: proto::SortTarget::Version as i32,
            serializable: true,
            ..Default::default()
        }
    );
    let grant: proto::LeaseGrantRequest =
        decode(&schema::LEASE_GRANT_REQUEST, r#"{"TTL":"30","ID":-5}"#);
    assert_eq!((grant.ttl, grant.id), (30, -5));
    let add: proto::MemberAddRequest = decode(
        &schema::MEMBER_ADD_REQUEST,
        r#"{"peerURLs":["http://a:2380","http://b:2380"],"isLearner":true}"#,
    );
    assert_eq!(add.peer_urls, ["http://a:2380", "http://b:2380"]);
    assert!(add.is_learner);
    // URL-safe and unpadded base64 are accepted too.
    let put: proto::PutRequest = decode(&schema::PUT_REQUEST, r#"{"key":"_-8","value":"YQ"}"#);
    assert_eq!(
        (&put.key[..], &put.value[..]),
        (&[0xff, 0xef][..], &b"a"[..])
    );
    assert_eq!(to_proto(&schema::PUT_REQUEST, b"  \n"), Ok(Vec::new()));
}

#[test]
fn a_nested_txn_transcodes_both_ways() {
    let request: proto::TxnRequest = decode(
        &schema::TXN_REQUEST,
        r#"{"compare":[{"target":"MOD","result":"LESS","key":"YQ==","mod_revision":"9"}],
            "success":[{"request_txn":{"success":[{"request_put":{"key":"Yg==","value":"Yw=="}}]}}],
            "failure":[{"requestDeleteRange":{"key":"YQ==","prev_kv":true}}]}"#,
    );
    let compare = &request.compare[0];
    assert_eq!(compare.target, proto::CompareTarget::Mod as i32);
    assert_eq!(compare.result, proto::CompareResult::Less as i32);
    assert_eq!(
        compare.target_union,
        Some(proto::compare::TargetUnion::ModRevision(9))
    );
    let Some(proto::request_op::Request::RequestTxn(inner)) = &request.success[0].request else {
        panic!("a nested txn: {request:?}");
    };
    assert!(matches!(
        &inner.success[0].request,
        Some(proto::request_op::Request::RequestPut(put)) if &put.value[..] == b"c"
    ));
    let response = proto::TxnResponse {
        header: Some(proto::ResponseHeader {
            revision: 12,
            ..Default::default()
        }),
        succeeded: true,
        responses: vec![proto::ResponseOp {
            response: Some(proto::response_op::Response::ResponseRange(
                proto::RangeResponse {
                    kvs: vec![proto::KeyValue {
                        key: Bytes::from_static(b"a"),
                        create_revision: 2,
                        mod_revision: 3,
                        version: 2,
                        value: Bytes::from_static(b"v"),
                        lease: 0,
                    }],
                    count: 1,
                    ..Default::default()
                },
            )),
        }],
    };
    assert_eq!(
        to_json(&schema::TXN_RESPONSE, &response.encode_to_vec()).unwrap(),
        r#"{"header":{"revision":"12"},"succeeded":true,"responses":[{"response_range":{"kvs":[{"key":"YQ==","create_revision":"2","mod_revision":"3","version":"2","value":"dg=="}],"count":"1"}}]}"#
    );
}

#[test]
fn responses_write_etcds_json_shapes() {
    let status = proto::StatusResponse {
        header: Some(proto::ResponseHeader {
            cluster_id: u64::MAX,
            member_id: 1,
            revision: 5,
            raft_term: 2,
        }),
        version: "3.4.0".into(),
        db_size: 4096,
        leader: 1,
        errors: vec!["a \"quoted\" alarm".into()],
        is_learner: true,
        ..Default::default()
    };
    assert_eq!(
        to_json(&schema::STATUS_RESPONSE, &status.encode_to_vec()).unwrap(),
        concat!(
            r#"{"header":{"cluster_id":"18446744073709551615","member_id":"1","revision":"5","#,
            r#""raft_term":"2"},"version":"3.4.0","dbSize":"4096","leader":"1","#,
            r#""errors":["a \"quoted\" alarm"],"isLearner":true}"#
        )
    );
    let alarms = proto::AlarmResponse {
        header: None,
        alarms: vec![proto::AlarmMember {
            member_id: 7,
            alarm: proto::AlarmType::Nospace as i32,
        }],
    };
    assert_eq!(
        to_json(&schema::ALARM_RESPONSE, &alarms.encode_to_vec()).unwrap(),
        r#"{"alarms":[{"memberID":"7","alarm":"NOSPACE"}]}"#
    );
    let hash = proto::HashResponse {
        header: None,
        hash: u32::MAX,
    };
    assert_eq!(
        to_json(&schema::HASH_RESPONSE, &hash.encode_to_vec()).unwrap(),
        r#"{"hash":4294967295}"#
    );
    let ttl = proto::LeaseTimeToLiveResponse {
        id: -1,
        ttl: -1,
        keys: vec![Bytes::from_static(b"k1"), Bytes::from_static(b"k2")],
        ..Default::default()
    };
    assert_eq!(
        to_json(&schema::LEASE_TIME_TO_LIVE_RESPONSE, &ttl.encode_to_vec()).unwrap(),
        r#"{"ID":"-1","TTL":"-1","keys":["azE=","azI="]}"#
    );
    assert_eq!(to_json(&schema::HEADER_ONLY, &[]).unwrap(), "{}");
}

#[test]
fn bad_requests_are_typed_errors() {
    let put = &schema::PUT_REQUEST;
    assert!(matches!(
        to_proto(put, b"{\"key\":"),
        Err(TranscodeError::Syntax(_))
    ));
    assert!(matches!(
        to_proto(put, b"[1]"),
        Err(TranscodeError::Shape(_))
    ));
    let not_base64 = to_proto(put, br#"{"key":"!!"}"#);
    assert!(
        matches!(not_base64, Err(TranscodeError::Value { field: "key", .. })),
        "{not_base64:?}"
    );
    for bad in [
        r#"{"lease":"x"}"#,
        r#"{"lease":1.5}"#,
        r#"{"lease":true}"#,
        r#"{"prev_kv":"yes"}"#,
    ] {
        assert!(
            matches!(
                to_proto(put, bad.as_bytes()),
                Err(TranscodeError::Value { .. })
            ),
            "{bad}"
        );
    }
    let range = &schema::RANGE_REQUEST;
    assert!(matches!(
        to_proto(range, br#"{"sort_order":"SIDEWAYS"}"#),
        Err(TranscodeError::Value {
            field: "sort_order",
            ..
        })
    ));
    let members = &schema::MEMBER_ADD_REQUEST;
    assert!(matches!(
        to_proto(members, br#"{"peerURLs":"http://a"}"#),
        Err(TranscodeError::Shape(_))
    ));
    let hash = &schema::HASH_KV_REQUEST;
    assert!(to_proto(hash, br#"{"revision":"99999999999999999999"}"#).is_err());
    // Txns nested past the limit are refused, not recursed into without end.
    let mut deep = String::new();
    for _ in 0..40 {
        deep.push_str(r#"{"success":[{"request_txn":"#);
    }
    deep.push_str("{}");
    for _ in 0..40 {
        deep.push_str("}]}");
    }
    assert_eq!(
        to_proto(&schema::TXN_REQUEST, deep.as_bytes()),
        Err(TranscodeError::TooDeep)
    );
}

/// Any bytes as a request body, or as a response on the wire, give a result or an error:
/// never a panic.
#[test]
fn arbitrary_input_never_panics() {
    fn prop(bytes: Vec<u8>) -> TestResult {
        for shape in [
            &schema::TXN_REQUEST,
            &schema::RANGE_RESPONSE,
            &schema::STATUS_RESPONSE,
        ] {
            let _ = to_proto(shape, &bytes);
            let _ = to_json(shape, &bytes);
        }
        TestResult::passed()
    }
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop as fn(Vec<u8>) -> TestResult);
}

/// A request message's wire bytes, written as JSON and read back, are the same message.
#[test]
fn put_requests_round_trip() {
    fn prop(key: Vec<u8>, value: Vec<u8>, lease: i64, prev_kv: bool) -> bool {
        let put = proto::PutRequest {
            key: key.into(),
            value: value.into(),
            lease,
            prev_kv,
            ..Default::default()
        };
        let json = to_json(&schema::PUT_REQUEST, &put.encode_to_vec()).unwrap();
        let back: proto::PutRequest = decode(&schema::PUT_REQUEST, &json);
        back == put
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Vec<u8>, Vec<u8>, i64, bool) -> bool);
}

/// A streamed body (a watch) may carry several requests, one object after another.
#[test]
fn a_stream_body_holds_its_requests_in_order() {
    let body = br#"{"create_request":{"key":"YQ=="}}
        {"create_request":{"key":"Yg==","prev_kv":true}}{"cancel_request":{"watch_id":"3"}}"#;
    let messages = super::to_protos(&schema::WATCH_REQUEST, body).expect("three requests");
    let requests: Vec<proto::WatchRequest> = messages
        .iter()
        .map(|m| proto::WatchRequest::decode(&m[..]).expect("a request"))
        .collect();
    use proto::watch_request::RequestUnion;
    assert!(matches!(
        &requests[1].request_union,
        Some(RequestUnion::CreateRequest(create)) if &create.key[..] == b"b" && create.prev_kv
    ));
    assert!(matches!(
        &requests[2].request_union,
        Some(RequestUnion::CancelRequest(cancel)) if cancel.watch_id == 3
    ));
    assert_eq!(
        super::to_protos(&schema::WATCH_REQUEST, b" "),
        Ok(Vec::new())
    );
    assert!(super::to_protos(&schema::WATCH_REQUEST, b"{} {").is_err());
    let many = "{}".repeat(super::STREAM_REQUESTS_MAX + 1);
    assert!(super::to_protos(&schema::WATCH_REQUEST, many.as_bytes()).is_err());
}
