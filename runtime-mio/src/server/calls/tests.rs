//! The call table against a sink that records what reaches the client port, and refuses
//! messages while a call's flow control is "full".

use std::collections::HashSet;

use bytes::Bytes;

use super::*;
use crate::server::gateway::schema;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Message(CallId, Bytes),
    Finish(CallId, Code, String),
    Http(HttpRequestId, u16, String),
    HttpStart(HttpRequestId),
    HttpChunk(HttpRequestId, String),
    HttpEnd(HttpRequestId),
}

#[derive(Debug, Default)]
struct Recorder {
    sent: Vec<Sent>,
    /// Calls whose flow control takes nothing now.
    full: HashSet<CallId>,
    finished: HashSet<CallId>,
}

impl CallSink for Recorder {
    fn send_message(&mut self, call: CallId, message: Bytes) -> Result<(), CallError> {
        if self.finished.contains(&call) {
            return Err(CallError::UnknownCall);
        }
        if self.full.contains(&call) {
            return Err(CallError::Backpressure { queued_bytes: 1 });
        }
        self.sent.push(Sent::Message(call, message));
        Ok(())
    }

    fn finish(&mut self, call: CallId, status: Status) {
        self.finished.insert(call);
        self.sent.push(Sent::Finish(
            call,
            status.code(),
            status.message().to_string(),
        ));
    }

    fn respond_http(&mut self, request: HttpRequestId, code: u16, _: &str, body: Bytes) {
        let body = String::from_utf8(body.to_vec()).expect("JSON");
        self.sent.push(Sent::Http(request, code, body));
    }

    fn start_http_stream(&mut self, request: HttpRequestId, _: u16, _: &str) {
        self.sent.push(Sent::HttpStart(request));
    }

    fn send_http_chunk(&mut self, request: HttpRequestId, data: &[u8]) -> bool {
        let chunk = String::from_utf8(data.to_vec()).expect("JSON");
        self.sent.push(Sent::HttpChunk(request, chunk));
        true
    }

    fn end_http_stream(&mut self, request: HttpRequestId) {
        self.sent.push(Sent::HttpEnd(request));
    }
}

fn call(raw: u64) -> CallId {
    CallId::for_tests(raw)
}

fn table() -> Calls<Recorder> {
    Calls::new(Recorder::default())
}

fn sent(calls: &mut Calls<Recorder>) -> Vec<Sent> {
    std::mem::take(&mut calls.sink_mut().sent)
}

const PUT: CallKind = CallKind::Unary(Method::Put);

#[test]
fn a_unary_call_leaves_the_table_with_its_answer() {
    let mut calls = table();
    calls.open(call(1), PUT);
    assert_eq!(calls.kind(call(1)), Some(PUT));
    calls.reply_encoded(call(1), Bytes::from_static(b"answer"));
    assert!(!calls.is_open(call(1)));
    assert_eq!(
        sent(&mut calls),
        [
            Sent::Message(call(1), Bytes::from_static(b"answer")),
            Sent::Finish(call(1), Code::Ok, String::new()),
        ]
    );
    // A second answer (a late apply) finds no call: the port hears nothing more of it.
    calls.reply_error(call(1), Status::new(Code::Unavailable, "late"));
    assert_eq!(
        sent(&mut calls),
        [Sent::Finish(call(1), Code::Unavailable, "late".into())]
    );
}

#[test]
fn a_full_table_refuses_the_next_call_as_it_opens() {
    let mut calls = Calls::with_limits(Recorder::default(), 2, 1 << 20);
    calls.open(call(1), PUT);
    calls.open(call(2), CallKind::Watch);
    calls.open(call(3), PUT);
    assert!(!calls.is_open(call(3)));
    assert_eq!(
        sent(&mut calls),
        [Sent::Finish(
            call(3),
            Code::ResourceExhausted,
            "etcdserver: too many requests".into()
        )]
    );
    calls.reply_encoded(call(1), Bytes::new());
    calls.open(call(3), PUT);
    assert!(calls.is_open(call(3)), "room again once a call left");
}

#[test]
fn stream_messages_wait_for_flow_control_in_order() {
    let mut calls = table();
    calls.open(call(7), CallKind::Watch);
    calls.sink_mut().full.insert(call(7));
    for message in [&b"one"[..], b"two", b"three"] {
        calls.stream_encoded(call(7), Bytes::from_static(message));
    }
    assert!(sent(&mut calls).is_empty(), "nothing passes a full queue");
    calls.sink_mut().full.clear();
    calls.on_send_ready(call(7));
    assert_eq!(
        sent(&mut calls),
        [&b"one"[..], b"two", b"three"].map(|m| Sent::Message(call(7), Bytes::from_static(m)))
    );
    assert!(calls.is_open(call(7)), "a stream stays open");
}

#[test]
fn a_client_that_reads_too_slowly_is_cut_off_and_its_watchers_released() {
    let mut calls = Calls::with_limits(Recorder::default(), 16, 10);
    calls.open(call(7), CallKind::Watch);
    calls.sink_mut().full.insert(call(7));
    calls.stream_encoded(call(7), Bytes::from_static(b"12345"));
    calls.stream_encoded(call(7), Bytes::from_static(b"67890"));
    assert!(
        calls.is_open(call(7)),
        "10 bytes wait: at the limit, not past it"
    );
    assert_eq!(calls.poll_ended(), None);
    calls.stream_encoded(call(7), Bytes::from_static(b"!"));
    assert!(!calls.is_open(call(7)));
    let status = status_backlog_exceeded();
    assert_eq!(
        sent(&mut calls),
        [Sent::Finish(
            call(7),
            status.code(),
            status.message().into()
        )]
    );
    assert_eq!(status.code(), Code::Unavailable, "etcd's clients retry it");
    assert_eq!(calls.poll_ended(), Some((call(7), CallKind::Watch)));
    assert_eq!(calls.poll_ended(), None);
}

#[test]
fn a_half_closed_watch_ends_and_a_keep_alive_drains_first() {
    let mut calls = table();
    calls.open(call(1), CallKind::Watch);
    calls.open(call(2), CallKind::LeaseKeepAlive);
    calls.open(call(3), PUT);
    calls.half_close(call(1));
    calls.half_close(call(2));
    calls.half_close(call(3));
    assert_eq!(
        sent(&mut calls),
        [Sent::Finish(call(1), Code::Ok, String::new())]
    );
    assert_eq!(calls.poll_ended(), Some((call(1), CallKind::Watch)));
    assert!(calls.is_open(call(3)), "a unary call waits for its answer");
    calls.finish_keep_alive_if_done(call(2), true);
    assert!(calls.is_open(call(2)), "an answer is still pending");
    calls.stream_encoded(call(2), Bytes::from_static(b"ttl"));
    calls.finish_keep_alive_if_done(call(2), false);
    assert!(!calls.is_open(call(2)));
    assert_eq!(
        sent(&mut calls),
        [
            Sent::Message(call(2), Bytes::from_static(b"ttl")),
            Sent::Finish(call(2), Code::Ok, String::new()),
        ]
    );
    // An open keep-alive stream is not ended by the same call.
    calls.open(call(4), CallKind::LeaseKeepAlive);
    calls.finish_keep_alive_if_done(call(4), false);
    assert!(calls.is_open(call(4)));
}

#[test]
fn a_cancelled_watch_leaves_its_watchers_to_release() {
    let mut calls = table();
    calls.open(call(1), CallKind::Watch);
    calls.open(call(2), CallKind::LeaseKeepAlive);
    calls.close(call(1));
    calls.close(call(2));
    assert_eq!(calls.poll_ended(), Some((call(1), CallKind::Watch)));
    assert_eq!(calls.poll_ended(), None, "only watch streams have watchers");
    assert!(
        sent(&mut calls).is_empty(),
        "the client is gone: nothing is sent"
    );
}

#[test]
fn a_snapshot_download_ends_once_its_last_chunk_is_taken() {
    let mut calls = table();
    calls.open(call(5), CallKind::Snapshot);
    calls.sink_mut().full.insert(call(5));
    calls.stream_snapshot_chunk(call(5), Bytes::from_static(b"chunk"));
    calls.finish_snapshot_if_sent(call(5));
    assert!(calls.is_open(call(5)), "its chunk still waits");
    calls.sink_mut().full.clear();
    calls.on_send_ready(call(5));
    assert!(!calls.is_open(call(5)));
    assert_eq!(
        sent(&mut calls),
        [
            Sent::Message(call(5), Bytes::from_static(b"chunk")),
            Sent::Finish(call(5), Code::Ok, String::new()),
        ]
    );
}

#[test]
fn gateway_calls_are_answered_as_json() {
    let mut calls = table();
    let request = HttpRequestId::for_tests(9);
    let id = calls.open_gateway(request, PUT, &schema::PUT_RESPONSE, None);
    assert!(calls.gateway_open(id));
    // A PutResponse whose header has revision 5 (field 1, then its field 3).
    calls.reply_encoded(id, Bytes::from_static(&[0x0a, 0x02, 0x18, 0x05]));
    assert!(!calls.gateway_open(id) && !calls.is_open(id));
    assert_eq!(
        sent(&mut calls),
        [Sent::Http(
            request,
            200,
            r#"{"header":{"revision":"5"}}"#.into()
        )]
    );
    let id = calls.open_gateway(request, PUT, &schema::PUT_RESPONSE, None);
    calls.reply_error(
        id,
        Status::new(Code::NotFound, "etcdserver: requested lease not found"),
    );
    let [Sent::Http(_, code, body)] = &sent(&mut calls)[..] else {
        panic!("one HTTP answer");
    };
    assert_eq!(*code, 404);
    assert!(body.contains(r#""code":5"#), "{body}");
}

#[test]
fn a_gateway_stream_writes_results_and_ends_with_its_error() {
    let mut calls = table();
    let request = HttpRequestId::for_tests(3);
    let id = calls.open_gateway(request, CallKind::Watch, &schema::WATCH_RESPONSE, None);
    // WatchResponse { watch_id: 1 }
    calls.stream_encoded(id, Bytes::from_static(&[0x10, 0x01]));
    calls.reply_error(id, Status::new(Code::Unavailable, "etcdserver: no leader"));
    let sent = sent(&mut calls);
    assert_eq!(sent[0], Sent::HttpStart(request));
    assert_eq!(
        sent[1],
        Sent::HttpChunk(request, "{\"result\":{\"watch_id\":\"1\"}}\n".into())
    );
    assert!(matches!(&sent[2], Sent::HttpChunk(_, line) if line.contains("no leader")));
    assert_eq!(sent[3], Sent::HttpEnd(request));
    assert_eq!(
        calls.poll_ended(),
        Some((id, CallKind::Watch)),
        "its watchers are released"
    );
}
