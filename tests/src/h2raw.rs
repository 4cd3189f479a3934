//! A minimal blocking HTTP/2 gRPC client for tests that must send what etcdctl never would
//! (malformed protobuf). It drives the `h2` crate with a spin loop over a non-blocking
//! socket: no async runtime.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

struct Io(TcpStream);

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().0.read(buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().0.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            other => Poll::Ready(other),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls `future` every millisecond until it completes or `timeout` passes.
fn spin<F: Future>(future: F, timeout: Duration) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Sends one gRPC request whose message bytes are `message` (framed, not validated) and
/// returns the `grpc-status` the server answered with.
pub fn unary(port: u16, path: &str, message: &[u8]) -> Option<u32> {
    call(port, path, message).map(|(status, _)| status)
}

/// Sends one gRPC request and returns the status and the first response message.
pub fn call(port: u16, path: &str, message: &[u8]) -> Option<(u32, Bytes)> {
    match exchange(port, path, message, false)? {
        (Some(status), message) => Some((status, message)),
        (None, _) => None,
    }
}

/// Sends one gRPC request and returns the first message of the response stream, without
/// waiting for the stream to end (a server stream may stay open).
pub fn first_stream_message(port: u16, path: &str, message: &[u8]) -> Option<Bytes> {
    exchange(port, path, message, true).map(|(_, message)| message)
}

/// The status (`None` when `first_only` returned before the end) and the first message.
fn exchange(
    port: u16,
    path: &str,
    message: &[u8],
    first_only: bool,
) -> Option<(Option<u32>, Bytes)> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_nonblocking(true).ok()?;
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    let path = path.to_string();
    let exchange = async move {
        let (mut client, mut connection) = h2::client::handshake(Io(stream)).await.ok()?;
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://127.0.0.1:{port}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .ok()?;
        let (response, mut send) = client.send_request(request, false).ok()?;
        send.send_data(Bytes::from(frame), true).ok()?;
        let mut response = pin!(response);
        // Drive the connection and the response together.
        let head = std::future::poll_fn(|cx| {
            let _ = Pin::new(&mut connection).poll(cx);
            response.as_mut().poll(cx)
        })
        .await
        .ok()?;
        if let Some(code) = grpc_status(head.headers()) {
            return Some((Some(code), Bytes::new()));
        }
        let mut body = head.into_body();
        let mut received = Vec::new();
        loop {
            let step = std::future::poll_fn(|cx| {
                let _ = Pin::new(&mut connection).poll(cx);
                match body.poll_data(cx) {
                    Poll::Ready(Some(Ok(data))) => Poll::Ready(Some(data)),
                    Poll::Ready(_) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match step {
                Some(data) => {
                    let _ = body.flow_control().release_capacity(data.len());
                    received.extend_from_slice(&data);
                }
                None => break,
            }
            if first_only {
                if let Some(message) = first_message(&received) {
                    return Some((None, message));
                }
            }
        }
        let trailers = std::future::poll_fn(|cx| {
            let _ = Pin::new(&mut connection).poll(cx);
            body.poll_trailers(cx)
        })
        .await
        .ok()??;
        // Strip the 5-byte gRPC prefix of the first message.
        let message = received
            .get(5..)
            .map(Bytes::copy_from_slice)
            .unwrap_or_default();
        Some((Some(grpc_status(&trailers)?), message))
    };
    spin(exchange, Duration::from_secs(5)).flatten()
}

/// The first whole gRPC message in `received`, if it has arrived.
fn first_message(received: &[u8]) -> Option<Bytes> {
    let len = u32::from_be_bytes(received.get(1..5)?.try_into().ok()?) as usize;
    received.get(5..5 + len).map(Bytes::copy_from_slice)
}

fn grpc_status(headers: &http::HeaderMap) -> Option<u32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}
