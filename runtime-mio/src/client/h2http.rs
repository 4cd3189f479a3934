//! A plain HTTP request on an HTTP/2 stream: one that is not a gRPC call (not a POST with
//! `content-type: application/grpc`), such as `GET /health` or the JSON gateway from a client
//! that negotiated h2 (curl and Go's HTTP client do over TLS). etcd hands those to its HTTP
//! handlers too. The exchange mirrors the HTTP/1.1 one: the body is read whole (at most
//! `http1_body_bytes_max`), the application hears `CallEvent::Http`, and it answers with
//! `respond_http` or a stream of chunks, which go out as DATA frames.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderValue, Response, StatusCode};

use super::call::{CallDrive, send_queued, stream_reset};
use super::events::{CallEvent, Events, HttpRequestId};

/// Plain HTTP exchanges open at once on one HTTP/2 connection: each may hold a whole body.
pub(crate) const EXCHANGES_PER_CONNECTION_MAX: usize = 4;

#[derive(Debug)]
pub(crate) struct H2Exchange {
    id: HttpRequestId,
    method: String,
    path: String,
    token: Option<String>,
    recv: Option<RecvStream>,
    body: BytesMut,
    body_bytes_max: usize,
    respond: Option<SendResponse<Bytes>>,
    send: Option<SendStream<Bytes>>,
    /// The answer's head, until it goes to h2.
    head: Option<Response<()>>,
    /// An answer (whole or streamed) was begun.
    answering: bool,
    out: VecDeque<Bytes>,
    out_bytes: usize,
    /// Nothing follows `out`.
    ended: bool,
    /// `CallEvent::Http` went to the application.
    reported: bool,
    /// The stream was ended for a client too slow to read it: the application hears
    /// `Cancelled` once it is closed, as for HTTP/1.1.
    cut_off: bool,
}

fn head(status: u16, content_type: &str, length: Option<usize>) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(http::header::CONTENT_TYPE, value);
    }
    if let Some(length) = length {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    response
}

impl H2Exchange {
    pub(crate) fn new(
        id: HttpRequestId,
        (method, path, token): (String, String, Option<String>),
        recv: RecvStream,
        respond: SendResponse<Bytes>,
        body_bytes_max: usize,
    ) -> H2Exchange {
        H2Exchange {
            id,
            method,
            path,
            token,
            recv: Some(recv),
            body: BytesMut::new(),
            body_bytes_max,
            respond: Some(respond),
            send: None,
            head: None,
            answering: false,
            out: VecDeque::new(),
            out_bytes: 0,
            ended: false,
            reported: false,
            cut_off: false,
        }
    }

    /// Whether the application holds this request: told of it, and not done answering.
    fn is_with_application(&self) -> bool {
        self.reported && !self.ended
    }

    /// The application's whole answer.
    pub(crate) fn respond(&mut self, status: u16, content_type: &str, body: Bytes) {
        if self.reported && !self.answering {
            self.answer(status, content_type, body);
        }
    }

    fn answer(&mut self, status: u16, content_type: &str, body: Bytes) {
        self.answering = true;
        self.head = Some(head(status, content_type, Some(body.len())));
        self.out_bytes = body.len();
        self.out.push_back(body);
        self.ended = true;
    }

    pub(crate) fn start_stream(&mut self, status: u16, content_type: &str) {
        if self.reported && !self.answering {
            self.answering = true;
            self.head = Some(head(status, content_type, None));
        }
    }

    pub(crate) fn is_streaming(&self) -> bool {
        self.answering && !self.ended
    }

    /// Queues a chunk of a stream; false when none is open or `pending_bytes_max` would be
    /// passed (the stream then ends).
    pub(crate) fn push_chunk(&mut self, data: &[u8], pending_bytes_max: usize) -> bool {
        if !self.is_streaming() {
            return false;
        }
        if self.out_bytes + data.len() > pending_bytes_max {
            self.ended = true;
            self.cut_off = true;
            return false;
        }
        self.out_bytes += data.len();
        self.out.push_back(Bytes::copy_from_slice(data));
        true
    }

    pub(crate) fn end_stream(&mut self) {
        if self.answering {
            self.ended = true;
        }
    }

    /// The exchange ends without the application's answer: it hears `Cancelled`.
    pub(crate) fn cancel(&mut self, events: &mut Events) {
        if self.is_with_application() || self.cut_off {
            self.cut_off = false;
            self.ended = true;
            events.push(CallEvent::Cancelled {
                call: self.id.as_call_id(),
            });
        }
    }

    pub(crate) fn drive(
        &mut self,
        cx: &mut Context<'_>,
        events: &mut Events,
        progress: &mut bool,
    ) -> CallDrive {
        let result = if stream_reset(&mut self.send, &mut self.respond, cx) {
            Err(())
        } else {
            self.drive_recv(cx, events, progress)
                .and_then(|()| self.drive_send(cx, progress))
        };
        match result {
            Ok(CallDrive::Done) if self.cut_off => {
                events.push(CallEvent::Cancelled {
                    call: self.id.as_call_id(),
                });
                CallDrive::Done
            }
            Ok(drive) => drive,
            Err(()) => {
                self.cancel(events);
                CallDrive::Done
            }
        }
    }

    fn drive_recv(
        &mut self,
        cx: &mut Context<'_>,
        events: &mut Events,
        progress: &mut bool,
    ) -> Result<(), ()> {
        while let Some(recv) = &mut self.recv {
            match recv.poll_data(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let _ = recv.flow_control().release_capacity(chunk.len());
                    if self.body.len() + chunk.len() > self.body_bytes_max {
                        eprintln!(
                            "grpc: http/2 request body over {} bytes",
                            self.body_bytes_max
                        );
                        self.recv = None;
                        self.answer(413, "text/plain", Bytes::from_static(b"too large"));
                        *progress = true;
                        return Ok(());
                    }
                    self.body.extend_from_slice(&chunk);
                }
                Poll::Ready(Some(Err(_))) => return Err(()),
                Poll::Ready(None) => {
                    if !events.has_room() {
                        return Ok(()); // reported on a later drive
                    }
                    self.recv = None;
                    self.reported = true;
                    events.push(CallEvent::Http {
                        request: self.id,
                        method: std::mem::take(&mut self.method),
                        path: std::mem::take(&mut self.path),
                        body: std::mem::take(&mut self.body).freeze(),
                        token: self.token.take(),
                    });
                    *progress = true;
                }
                Poll::Pending => return Ok(()),
            }
        }
        Ok(())
    }

    fn drive_send(&mut self, cx: &mut Context<'_>, progress: &mut bool) -> Result<CallDrive, ()> {
        if let Some(response) = self.head.take() {
            let respond = self.respond.as_mut().ok_or(())?;
            let end_now = self.ended && self.out_bytes == 0;
            let send = respond.send_response(response, end_now).map_err(|_| ())?;
            *progress = true;
            if end_now {
                return Ok(CallDrive::Done);
            }
            self.send = Some(send);
            self.respond = None;
        }
        let Some(send) = &mut self.send else {
            return Ok(CallDrive::Live);
        };
        if !send_queued(send, &mut self.out, &mut self.out_bytes, cx, progress)? {
            return Ok(CallDrive::Live);
        }
        if self.ended {
            send.send_data(Bytes::new(), true).map_err(|_| ())?;
            *progress = true;
            return Ok(CallDrive::Done);
        }
        Ok(CallDrive::Live)
    }
}
