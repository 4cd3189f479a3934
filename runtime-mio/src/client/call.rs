//! One gRPC call on an h2 stream: request messages in, response messages and status out.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::events::{CallEvent, CallId, Events};
use super::framing::{self, FrameError, MessageDecoder};
use super::status::{Code, Status};

/// Why `send_message` refused a message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The call is not open: unknown, finished, or cancelled.
    UnknownCall,
    /// `pending_send_bytes_max` bytes are queued; a `SendReady` event follows when they drain.
    Backpressure { queued_bytes: usize },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::UnknownCall => write!(f, "no such open call"),
            CallError::Backpressure { queued_bytes } => {
                write!(f, "call send queue full ({queued_bytes} bytes)")
            }
        }
    }
}

impl std::error::Error for CallError {}

const CONTENT_TYPE: &str = "application/grpc";

fn frame_status(error: &FrameError) -> Status {
    match error {
        FrameError::Compressed => Status::new(
            Code::Unimplemented,
            "grpc: compressed messages are not supported (grpc-accept-encoding: identity)",
        ),
        FrameError::BadFlag(flag) => {
            Status::new(Code::Internal, format!("grpc: invalid message flag {flag}"))
        }
        // grpc-go's own refusal, which etcd's clients see for a message over the server's
        // receive limit (etcd's --max-request-bytes plus its gRPC overhead allowance).
        FrameError::TooLarge { len, len_max } => Status::new(
            Code::ResourceExhausted,
            format!("grpc: received message larger than max ({len} vs. {len_max})"),
        ),
        FrameError::Truncated => Status::new(Code::Internal, "grpc: stream ended inside a message"),
    }
}

fn status_headers(headers: &mut HeaderMap, status: &Status) {
    headers.insert("grpc-status", HeaderValue::from(status.code().as_u32()));
    let message = status.encoded_message();
    if !message.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&message) {
            headers.insert("grpc-message", value);
        }
    }
}

fn response_head(status: Option<&Status>) -> Response<()> {
    let mut response = Response::new(());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE),
    );
    headers.insert("grpc-accept-encoding", HeaderValue::from_static("identity"));
    if let Some(status) = status {
        status_headers(headers, status);
    }
    response
}

/// Whether the client reset the stream (or it has no side left to answer on), whichever half
/// of the response is current: the head not yet sent (`respond`) or the body (`send`).
pub(crate) fn stream_reset(
    send: &mut Option<SendStream<Bytes>>,
    respond: &mut Option<SendResponse<Bytes>>,
    cx: &mut Context<'_>,
) -> bool {
    match (send, respond) {
        (Some(send), _) => send.poll_reset(cx).is_ready(),
        (None, Some(respond)) => respond.poll_reset(cx).is_ready(),
        (None, None) => true,
    }
}

/// Hands `out` (`out_bytes` in all) to h2 as flow control allows. True once all is handed
/// over; false while h2 has no capacity (it wakes the connection when it has); `Err` when
/// the stream is gone.
pub(crate) fn send_queued(
    send: &mut SendStream<Bytes>,
    out: &mut VecDeque<Bytes>,
    out_bytes: &mut usize,
    cx: &mut Context<'_>,
    progress: &mut bool,
) -> Result<bool, ()> {
    while let Some(front) = out.front_mut() {
        send.reserve_capacity(*out_bytes);
        let capacity = send.capacity();
        if capacity == 0 {
            match send.poll_capacity(cx) {
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(_)) | None) => return Err(()),
                Poll::Pending => return Ok(false),
            }
        }
        let chunk = if capacity >= front.len() {
            out.pop_front().unwrap_or_default()
        } else {
            front.split_to(capacity)
        };
        *out_bytes -= chunk.len();
        send.send_data(chunk, false).map_err(|_| ())?;
        *progress = true;
    }
    Ok(true)
}

/// Answers a stream that is not a gRPC call (wrong method or content type) and drops it.
pub(crate) fn refuse(mut respond: SendResponse<Bytes>, http_status: StatusCode, status: &Status) {
    let mut response = response_head(Some(status));
    *response.status_mut() = http_status;
    let _ = respond.send_response(response, true);
}

#[derive(Debug)]
pub(crate) enum CallDrive {
    Live,
    /// The call is over on the wire; drop it.
    Done,
}

#[derive(Debug)]
pub(crate) struct Call {
    id: CallId,
    /// The request's metadata (bounded by `header_list_bytes_max`).
    headers: HeaderMap,
    recv: Option<RecvStream>,
    respond: Option<SendResponse<Bytes>>,
    send: Option<SendStream<Bytes>>,
    decoder: MessageDecoder,
    /// Encoded response frames not yet handed to h2.
    out: VecDeque<Bytes>,
    out_bytes: usize,
    /// The status to end with once `out` is sent.
    status: Option<Status>,
    /// The application finished the call or was told it was cancelled.
    app_done: bool,
    backpressured: bool,
}

impl Call {
    pub(crate) fn new(
        id: CallId,
        recv: RecvStream,
        respond: SendResponse<Bytes>,
        headers: HeaderMap,
        request_bytes_max: usize,
    ) -> Call {
        Call {
            id,
            headers,
            recv: Some(recv),
            respond: Some(respond),
            send: None,
            decoder: MessageDecoder::new(request_bytes_max),
            out: VecDeque::new(),
            out_bytes: 0,
            status: None,
            app_done: false,
            backpressured: false,
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn queue(&mut self, message: &[u8], pending_max: usize) -> Result<(), CallError> {
        if self.app_done {
            return Err(CallError::UnknownCall);
        }
        if self.out_bytes > 0 && self.out_bytes + message.len() > pending_max {
            self.backpressured = true;
            return Err(CallError::Backpressure {
                queued_bytes: self.out_bytes,
            });
        }
        let frame = framing::encode(message);
        self.out_bytes += frame.len();
        self.out.push_back(frame);
        Ok(())
    }

    /// The application ends the call. Returns false if it had already ended it.
    pub(crate) fn finish(&mut self, status: Status) -> bool {
        if self.app_done {
            return false;
        }
        self.app_done = true;
        self.status = Some(status);
        // Requests after the answer are not read; h2 resets the stream with NO_ERROR once
        // the response is out, as RFC 9113 section 8.1 allows.
        self.recv = None;
        true
    }

    /// The call ends without the application's answer.
    pub(crate) fn cancel(&mut self, events: &mut Events) {
        if !self.app_done {
            self.app_done = true;
            events.live_calls -= 1;
            events.push(CallEvent::Cancelled { call: self.id });
        }
    }

    /// The server answers for the application (bad frame, oversized message).
    fn fail(&mut self, status: Status, events: &mut Events) {
        self.cancel(events);
        self.recv = None;
        self.out.clear();
        self.out_bytes = 0;
        self.status = Some(status);
    }

    /// Response bytes queued and not yet handed to h2.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.out_bytes
    }

    /// Moves the call along: `progress` is set when anything went to h2 or to `events`.
    pub(crate) fn drive(
        &mut self,
        cx: &mut Context<'_>,
        events: &mut Events,
        progress: &mut bool,
    ) -> CallDrive {
        if self.poll_reset(cx) {
            self.cancel(events);
            return CallDrive::Done;
        }
        if let Err(()) = self.drive_recv(cx, events, progress) {
            self.cancel(events);
            return CallDrive::Done;
        }
        match self.drive_send(cx, events, progress) {
            Ok(drive) => drive,
            Err(()) => {
                self.cancel(events);
                CallDrive::Done
            }
        }
    }

    fn poll_reset(&mut self, cx: &mut Context<'_>) -> bool {
        stream_reset(&mut self.send, &mut self.respond, cx)
    }

    fn drive_recv(
        &mut self,
        cx: &mut Context<'_>,
        events: &mut Events,
        progress: &mut bool,
    ) -> Result<(), ()> {
        while events.has_room() && !self.app_done {
            match self.decoder.next_message() {
                Ok(Some(message)) => {
                    events.push(CallEvent::Message {
                        call: self.id,
                        message,
                    });
                    *progress = true;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("grpc: call {:?}: bad request frame: {e:?}", self.id);
                    self.fail(frame_status(&e), events);
                    *progress = true;
                    return Ok(());
                }
            }
            let Some(recv) = &mut self.recv else {
                return Ok(());
            };
            match recv.poll_data(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    // The bytes now count against our own bounds (the decoder and events).
                    let _ = recv.flow_control().release_capacity(chunk.len());
                    self.decoder.push(&chunk);
                }
                Poll::Ready(Some(Err(_))) => return Err(()),
                Poll::Ready(None) => {
                    self.recv = None;
                    *progress = true;
                    match self.decoder.finish() {
                        Ok(()) => events.push(CallEvent::HalfClosed { call: self.id }),
                        Err(e) => {
                            eprintln!("grpc: call {:?}: bad request frame: {e:?}", self.id);
                            self.fail(frame_status(&e), events);
                        }
                    }
                    return Ok(());
                }
                Poll::Pending => return Ok(()),
            }
        }
        Ok(())
    }

    fn drive_send(
        &mut self,
        cx: &mut Context<'_>,
        events: &mut Events,
        progress: &mut bool,
    ) -> Result<CallDrive, ()> {
        if self.out.is_empty() && self.status.is_none() {
            return Ok(CallDrive::Live);
        }
        if self.send.is_none() {
            let Some(respond) = &mut self.respond else {
                return Err(());
            };
            *progress = true;
            if self.out.is_empty() {
                // Trailers-only: the status rides in the only HEADERS frame.
                let response = response_head(self.status.as_ref());
                respond.send_response(response, true).map_err(|_| ())?;
                return Ok(CallDrive::Done);
            }
            self.send = Some(
                respond
                    .send_response(response_head(None), false)
                    .map_err(|_| ())?,
            );
            self.respond = None;
        }
        let Some(send) = &mut self.send else {
            return Err(());
        };
        if !send_queued(send, &mut self.out, &mut self.out_bytes, cx, progress)? {
            return Ok(CallDrive::Live);
        }
        if self.backpressured && !self.app_done {
            self.backpressured = false;
            events.push(CallEvent::SendReady { call: self.id });
        }
        if let Some(status) = self.status.take() {
            let mut trailers = HeaderMap::new();
            status_headers(&mut trailers, &status);
            send.send_trailers(trailers).map_err(|_| ())?;
            *progress = true;
            return Ok(CallDrive::Done);
        }
        Ok(CallDrive::Live)
    }
}
