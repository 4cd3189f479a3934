//! Plain HTTP/1.1 over a TcpStream, for tallyd's `/health`, `/metrics`, `/version` and JSON
//! gateway in process tests: no HTTP client crate, and no curl on the CI machine.

use std::io::{Read as _, Write as _};
use std::time::Duration;

/// One request to 127.0.0.1:`port`; the whole response text (tallyd closes after answering).
pub fn request(port: u16, method: &str, path: &str, body: &str) -> String {
    request_with(port, method, path, "", body)
}

/// A request with more header lines (`extra_headers`, each ending in CRLF).
pub fn request_with(
    port: u16,
    method: &str,
    path: &str,
    extra_headers: &str,
    body: &str,
) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

/// `GET path`, or `None` when nothing listens on the port (yet).
pub fn try_get(port: u16, path: &str) -> Option<String> {
    std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    Some(get(port, path))
}

/// `GET path`: the whole response text.
pub fn get(port: u16, path: &str) -> String {
    request(port, "GET", path, "")
}
