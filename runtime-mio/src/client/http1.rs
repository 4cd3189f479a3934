//! A minimal HTTP/1.1 server for `GET /health`, `GET /metrics` and etcd's JSON gateway
//! (`POST /v3/kv/range` and friends) on the client port: one request per connection, its body
//! sized by Content-Length (no chunked bodies), answered with Content-Length and closed, or
//! with a chunked stream (the gateway's watch) that ends when either side closes.

use std::io;

use bytes::{Buf, Bytes, BytesMut};

use super::h2io::ConnIo;

/// What the first bytes of a plaintext connection say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sniffed {
    NeedMore,
    H2,
    Http1,
    Garbage,
}

pub(crate) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const METHOD_BYTES_MAX: usize = 16;

pub(crate) fn sniff(buf: &[u8]) -> Sniffed {
    let n = buf.len().min(H2_PREFACE.len());
    if buf[..n] == H2_PREFACE[..n] {
        return if n == H2_PREFACE.len() {
            Sniffed::H2
        } else {
            Sniffed::NeedMore
        };
    }
    // An HTTP/1 method is an upper-case token followed by a space.
    for (i, &b) in buf.iter().enumerate().take(METHOD_BYTES_MAX + 1) {
        match b {
            b'A'..=b'Z' => {}
            b' ' if i > 0 => return Sniffed::Http1,
            _ => return Sniffed::Garbage,
        }
    }
    if buf.len() > METHOD_BYTES_MAX {
        Sniffed::Garbage
    } else {
        Sniffed::NeedMore
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Http1Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) body: Bytes,
    pub(crate) token: Option<String>,
}

/// A complete request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) method: String,
    pub(crate) path: String,
    /// Bytes of the head, blank line included: the body starts there.
    pub(crate) head_bytes: usize,
    pub(crate) content_length: usize,
    /// `Expect: 100-continue`: the client waits (curl, a second) for a go-ahead before the body.
    pub(crate) expects_continue: bool,
    /// The `Authorization` (or `Token`) header: an auth token.
    pub(crate) token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    Partial,
    Head(Head),
    Invalid(&'static str),
}

/// Header lines read in one request head at most; a head with more is refused.
const HEADER_LINES_MAX: usize = 32;

/// Parses the request head (request line and headers) once it is complete.
pub(crate) fn parse_head(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; HEADER_LINES_MAX];
    let mut request = httparse::Request::new(&mut headers);
    let head_bytes = match request.parse(buf) {
        Ok(httparse::Status::Complete(bytes)) => bytes,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Invalid("too many header lines"),
        Err(
            httparse::Error::HeaderName | httparse::Error::HeaderValue | httparse::Error::NewLine,
        ) => return Parsed::Invalid("bad header line"),
        Err(_) => return Parsed::Invalid("bad request line"),
    };
    let (Some(method), Some(path)) = (request.method, request.path) else {
        return Parsed::Invalid("bad request line");
    };
    if !path.starts_with('/') || !path.is_ascii() {
        return Parsed::Invalid("bad request line");
    }
    let mut content_length = 0;
    let mut expects_continue = false;
    let mut token = None;
    for header in request.headers.iter() {
        let Ok(value) = std::str::from_utf8(header.value) else {
            return Parsed::Invalid("bad header line");
        };
        let value = value.trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(length) => content_length = length,
                Err(_) => return Parsed::Invalid("bad Content-Length"),
            }
        } else if header.name.eq_ignore_ascii_case("authorization")
            || header.name.eq_ignore_ascii_case("token")
        {
            token = Some(value.to_string());
        } else if header.name.eq_ignore_ascii_case("expect") {
            expects_continue = value.eq_ignore_ascii_case("100-continue");
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Invalid("chunked request bodies are not supported");
        }
    }
    Parsed::Head(Head {
        method: method.to_string(),
        path: path.to_string(),
        head_bytes,
        content_length,
        expects_continue,
        token,
    })
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("Status")
}

/// A response head; `framing` is the Content-Length or Transfer-Encoding line.
fn head(status: u16, content_type: &str, framing: &str, body_bytes: usize) -> BytesMut {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\n{framing}\r\n\
         Connection: close\r\n\r\n",
        reason(status)
    );
    let mut out = BytesMut::with_capacity(head.len() + body_bytes);
    out.extend_from_slice(head.as_bytes());
    out
}

pub(crate) fn encode_response(status: u16, content_type: &str, body: &[u8]) -> BytesMut {
    let length = format!("Content-Length: {}", body.len());
    let mut out = head(status, content_type, &length, body.len());
    out.extend_from_slice(body);
    out
}

#[derive(Debug)]
enum State {
    Reading,
    /// The request went to the application; its answer has not come yet.
    Waiting,
    /// Response bytes to write; the connection closes once they are out and `ended` holds. A
    /// whole response is `ended` at once; a chunked one, when its last chunk is queued.
    Sending {
        out: BytesMut,
        ended: bool,
    },
}

/// What a drive of an HTTP/1 connection produced.
#[derive(Debug)]
pub(crate) enum Http1Step {
    /// A complete request for the application.
    Request(Http1Request),
    /// Waiting on the socket or the application.
    Idle,
    /// The exchange is over (or failed); drop the connection.
    Close,
}

#[derive(Debug)]
pub(crate) struct Http1Conn {
    io: ConnIo,
    buf: Vec<u8>,
    /// Of the head.
    request_bytes_max: usize,
    body_bytes_max: usize,
    state: State,
    continue_sent: bool,
}

impl Http1Conn {
    pub(crate) fn new(io: ConnIo, request_bytes_max: usize, body_bytes_max: usize) -> Http1Conn {
        Http1Conn {
            io,
            buf: Vec::new(),
            request_bytes_max,
            body_bytes_max,
            state: State::Reading,
            continue_sent: false,
        }
    }

    /// Still waiting for the request head (not for the application).
    pub(crate) fn is_reading(&self) -> bool {
        matches!(self.state, State::Reading)
    }

    pub(crate) fn respond(&mut self, status: u16, content_type: &str, body: &[u8]) {
        if matches!(self.state, State::Waiting) {
            self.send_whole(encode_response(status, content_type, body));
        }
    }

    fn send_whole(&mut self, response: BytesMut) {
        self.state = State::Sending {
            out: response,
            ended: true,
        };
    }

    /// Answers with a chunked response whose chunks come from [`Self::push_chunk`].
    pub(crate) fn start_stream(&mut self, status: u16, content_type: &str) {
        if matches!(self.state, State::Waiting) {
            self.state = State::Sending {
                out: head(status, content_type, "Transfer-Encoding: chunked", 0),
                ended: false,
            };
        }
    }

    /// A stream is open and not ended.
    pub(crate) fn is_streaming(&self) -> bool {
        matches!(self.state, State::Sending { ended: false, .. })
    }

    /// Queues one chunk; false (nothing queued) when no stream is open or `pending_bytes_max`
    /// would be passed: the client reads too slowly, and the caller should end the exchange.
    pub(crate) fn push_chunk(&mut self, data: &[u8], pending_bytes_max: usize) -> bool {
        let State::Sending { out, ended: false } = &mut self.state else {
            return false;
        };
        if data.is_empty() {
            return true;
        }
        if out.len() + data.len() > pending_bytes_max {
            return false;
        }
        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        true
    }

    /// Queues the last chunk; the connection closes once all is written.
    pub(crate) fn end_stream(&mut self) {
        if let State::Sending { out, ended } = &mut self.state {
            if !*ended {
                out.extend_from_slice(b"0\r\n\r\n");
                *ended = true;
            }
        }
    }

    pub(crate) fn drive(&mut self) -> Http1Step {
        match self.drive_io() {
            Ok(step) => step,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Http1Step::Idle,
            Err(e) => {
                eprintln!("grpc: http/1 connection failed: {e}");
                Http1Step::Close
            }
        }
    }

    fn drive_io(&mut self) -> io::Result<Http1Step> {
        loop {
            match &mut self.state {
                State::Reading => {
                    if let Some(step) = self.read_request()? {
                        return Ok(step);
                    }
                }
                State::Waiting => return Ok(Http1Step::Idle),
                State::Sending { out, ended } => {
                    while !out.is_empty() {
                        let n = self.io.write_some(out)?;
                        if n == 0 {
                            return Ok(Http1Step::Close);
                        }
                        out.advance(n);
                    }
                    self.io.flush_out()?;
                    if *ended {
                        let _ = self.io.shutdown();
                        return Ok(Http1Step::Close);
                    }
                    // The client sends nothing more; reading tells us when it hangs up.
                    let mut discard = [0u8; 512];
                    return match self.io.read_some(&mut discard)? {
                        0 => Ok(Http1Step::Close),
                        _ => continue,
                    };
                }
            }
        }
    }

    /// Reads until the head and its body are in; `None` means the state changed and the loop
    /// goes on.
    fn read_request(&mut self) -> io::Result<Option<Http1Step>> {
        loop {
            let wanted_bytes = match parse_head(&self.buf) {
                Parsed::Head(head) if head.content_length > self.body_bytes_max => {
                    eprintln!(
                        "grpc: http/1 request body over {} bytes",
                        self.body_bytes_max
                    );
                    self.send_whole(encode_response(413, "text/plain", b"too large"));
                    return Ok(None);
                }
                Parsed::Head(head) if self.buf.len() >= head.head_bytes + head.content_length => {
                    let end = head.head_bytes + head.content_length;
                    let body = Bytes::copy_from_slice(&self.buf[head.head_bytes..end]);
                    self.state = State::Waiting;
                    return Ok(Some(Http1Step::Request(Http1Request {
                        method: head.method,
                        path: head.path,
                        body,
                        token: head.token,
                    })));
                }
                Parsed::Head(head) => {
                    if head.expects_continue && !self.continue_sent {
                        self.continue_sent = true;
                        // Best effort: a client not told goes on after its own timeout.
                        let _ = self.io.write_some(b"HTTP/1.1 100 Continue\r\n\r\n");
                        let _ = self.io.flush_out();
                    }
                    head.head_bytes + head.content_length
                }
                Parsed::Invalid(why) => {
                    eprintln!("grpc: bad http/1 request: {why}");
                    self.send_whole(encode_response(400, "text/plain", why.as_bytes()));
                    return Ok(None);
                }
                Parsed::Partial if self.buf.len() >= self.request_bytes_max => {
                    eprintln!(
                        "grpc: http/1 request head over {} bytes",
                        self.request_bytes_max
                    );
                    self.send_whole(encode_response(431, "text/plain", b"too large"));
                    return Ok(None);
                }
                Parsed::Partial => self.request_bytes_max,
            };
            let mut chunk = [0u8; 8192];
            let room = (wanted_bytes - self.buf.len()).min(chunk.len());
            let n = self.io.read_some(&mut chunk[..room])?;
            if n == 0 {
                return Ok(Some(Http1Step::Close));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Bytes read past what sniffing needed are the start of the request.
    pub(crate) fn push_initial(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}
