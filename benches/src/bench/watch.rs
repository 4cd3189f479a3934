//! One watch stream carrying several watchers of the watch workload's key. Every event's value
//! carries its put's send time, so the delivery latency is measured here, per event.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use h2::client::{ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use prost::Message;
use tally_kvstore::proto::{WatchCreateRequest, WatchRequest, WatchResponse, watch_request};

use super::check::{EventOrderCheck, RevisionCheck};
use super::engine::{Env, grpc_error, request, take_message};
use super::workload::{WATCH, WATCH_KEY, frame, watch_sent_ns};

/// After the writer is done, how long watchers wait for the events still missing.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Watcher {
    order: EventOrderCheck,
    events: u64,
}

enum Phase {
    Open,
    Response(ResponseFuture, SendStream<Bytes>),
    Streaming(RecvStream, SendStream<Bytes>),
    Done,
}

pub struct WatchSlot {
    send: SendRequest<Bytes>,
    watchers: usize,
    phase: Phase,
    buf: BytesMut,
    created: usize,
    by_id: HashMap<i64, Watcher>,
    header: RevisionCheck,
    regressions: u64,
    writer_done_at: Option<Instant>,
}

impl std::fmt::Debug for WatchSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSlot")
            .field("watchers", &self.watchers)
            .field("created", &self.created)
            .finish()
    }
}

impl WatchSlot {
    pub fn new(send: SendRequest<Bytes>, watchers: usize) -> WatchSlot {
        WatchSlot {
            send,
            watchers,
            phase: Phase::Open,
            buf: BytesMut::new(),
            created: 0,
            by_id: HashMap::new(),
            header: RevisionCheck::default(),
            regressions: 0,
            writer_done_at: None,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    pub fn regressions(&self) -> u64 {
        self.regressions
    }

    /// Every event this stream's watchers have not received counts as one error.
    fn missing(&self, env: &Env<'_>) -> u64 {
        let expected = env.shared.puts_acked.load(Ordering::Acquire);
        let received: u64 = self.by_id.values().map(|w| w.events.min(expected)).sum();
        expected * self.watchers as u64 - received
    }

    pub fn abort(&mut self, env: &mut Env<'_>, why: &str) {
        if self.is_done() {
            return;
        }
        for _ in 0..self.missing(env).max(1) {
            env.stats.error(env.shared, why);
        }
        self.phase = Phase::Done;
    }

    fn stop(&mut self, env: &mut Env<'_>, why: String) {
        let missing = self.missing(env);
        let what = format!("watch: {why}");
        for _ in 0..missing.max(1) {
            env.stats.error(env.shared, what.clone());
        }
        if let Phase::Response(_, send) | Phase::Streaming(_, send) = &mut self.phase {
            send.send_reset(h2::Reason::CANCEL);
        }
        self.phase = Phase::Done;
    }

    fn all_delivered(&self, env: &Env<'_>) -> bool {
        let expected = env.shared.puts_acked.load(Ordering::Acquire);
        self.created == self.watchers && self.by_id.values().all(|w| w.events >= expected)
    }

    pub fn advance(&mut self, env: &mut Env<'_>, cx: &mut Context<'_>) -> bool {
        if env.shared.writer_done.load(Ordering::Acquire) && !self.is_done() {
            let done_at = *self.writer_done_at.get_or_insert(env.now);
            if self.all_delivered(env) {
                if let Phase::Response(_, send) | Phase::Streaming(_, send) = &mut self.phase {
                    send.send_reset(h2::Reason::CANCEL);
                }
                self.phase = Phase::Done;
                return true;
            }
            if env.now - done_at > DRAIN_GRACE {
                self.stop(env, "events not delivered".into());
                return true;
            }
        }
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Done => false,
            Phase::Open => self.open(env, cx),
            Phase::Response(mut response, send) => match Pin::new(&mut response).poll(cx) {
                Poll::Pending => {
                    self.phase = Phase::Response(response, send);
                    false
                }
                Poll::Ready(Err(e)) => {
                    self.stop(env, format!("response: {e}"));
                    true
                }
                Poll::Ready(Ok(response)) => {
                    let (parts, body) = response.into_parts();
                    if parts.headers.contains_key("grpc-status") {
                        let why = grpc_error(&parts.headers).unwrap_or_else(|| "ended".into());
                        self.stop(env, why);
                    } else {
                        self.phase = Phase::Streaming(body, send);
                    }
                    true
                }
            },
            Phase::Streaming(body, send) => self.stream(env, cx, body, send),
        }
    }

    fn open(&mut self, env: &mut Env<'_>, cx: &mut Context<'_>) -> bool {
        match self.send.poll_ready(cx) {
            Poll::Pending => {
                self.phase = Phase::Open;
                return false;
            }
            Poll::Ready(Err(e)) => {
                self.stop(env, format!("stream refused: {e}"));
                return true;
            }
            Poll::Ready(Ok(())) => {}
        }
        let (response, mut send) = match self.send.send_request(request(env.scheme, WATCH), false) {
            Ok(pair) => pair,
            Err(e) => {
                self.stop(env, format!("send: {e}"));
                return true;
            }
        };
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: Bytes::from_static(WATCH_KEY),
                    range_end: env.workload.watch_range_end(),
                    ..WatchCreateRequest::default()
                },
            )),
        };
        let mut creates = BytesMut::new();
        for _ in 0..self.watchers {
            creates.extend_from_slice(&frame(&create));
        }
        if let Err(e) = send.send_data(creates.freeze(), false) {
            self.stop(env, format!("send: {e}"));
            return true;
        }
        self.phase = Phase::Response(response, send);
        true
    }

    fn stream(
        &mut self,
        env: &mut Env<'_>,
        cx: &mut Context<'_>,
        mut body: RecvStream,
        send: SendStream<Bytes>,
    ) -> bool {
        let mut progressed = false;
        loop {
            match body.poll_data(cx) {
                Poll::Pending => {
                    self.phase = Phase::Streaming(body, send);
                    return progressed;
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    self.buf.extend_from_slice(&chunk);
                    progressed = true;
                    loop {
                        match take_message(&mut self.buf) {
                            Ok(Some(message)) => {
                                if let Err(why) = self.on_message(env, &message) {
                                    self.phase = Phase::Streaming(body, send);
                                    self.stop(env, why);
                                    return true;
                                }
                            }
                            Ok(None) => break,
                            Err(why) => {
                                self.phase = Phase::Streaming(body, send);
                                self.stop(env, why);
                                return true;
                            }
                        }
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    self.stop(env, format!("stream: {e}"));
                    return true;
                }
                Poll::Ready(None) => {
                    self.stop(env, "the server ended the watch stream".into());
                    return true;
                }
            }
        }
    }

    fn on_message(&mut self, env: &mut Env<'_>, message: &[u8]) -> Result<(), String> {
        let response =
            WatchResponse::decode(message).map_err(|e| format!("undecodable response: {e}"))?;
        if let Some(header) = &response.header {
            if !self.header.observe(header.revision) {
                self.regressions += 1;
            }
        }
        if response.canceled {
            return Err(format!("watch canceled: {}", response.cancel_reason));
        }
        if response.created {
            self.created += 1;
            self.by_id.entry(response.watch_id).or_default();
            env.shared.watchers_created.fetch_add(1, Ordering::AcqRel);
        }
        if response.events.is_empty() {
            return Ok(());
        }
        let now_ns = u64::try_from(env.shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let watcher = self.by_id.entry(response.watch_id).or_default();
        for event in &response.events {
            let Some(kv) = &event.kv else {
                return Err("event without a key-value".into());
            };
            if !watcher.order.observe(kv.mod_revision) {
                self.regressions += 1;
            }
            watcher.events += 1;
            match watch_sent_ns(&kv.value) {
                Some(sent_ns) => {
                    env.stats.latency.record_ns(now_ns.saturating_sub(sent_ns));
                    env.stats.ok += 1;
                }
                None => {
                    *env.stats
                        .errors
                        .entry("watch: event without a send time".into())
                        .or_insert(0) += 1;
                }
            }
        }
        Ok(())
    }
}
