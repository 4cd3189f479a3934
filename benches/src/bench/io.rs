//! One client connection: a non-blocking TCP stream (optionally rustls), wrapped in the tokio
//! I/O traits that h2 is written against, and the h2 client handshake.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::{Connection, SendRequest};
use mio::net::TcpStream;
use rustls::ClientConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::flags::TlsFlags;

/// h2 flow-control windows: large, so the server is never throttled by the load generator.
const STREAM_WINDOW_BYTES: u32 = 4 << 20;
const CONNECTION_WINDOW_BYTES: u32 = 64 << 20;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct ClientIo {
    stream: TcpStream,
    tls: Option<ClientConnection>,
}

impl ClientIo {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.stream.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    other => other.map(|_| ())?,
                }
            }
            if tls.read_tls(&mut self.stream)? == 0 {
                return Ok(0);
            }
            tls.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }

    fn flush_tls(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                tls.write_tls(&mut self.stream)?;
            }
        }
        Ok(())
    }

    fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.stream.write(buf);
        };
        let n = tls.writer().write(buf)?;
        match self.flush_tls() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }
}

fn into_poll<T>(r: io::Result<T>) -> Poll<io::Result<T>> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match into_poll(this.read_some(buf.initialize_unfilled())) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        into_poll(self.get_mut().write_some(buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        into_poll(self.get_mut().flush_tls())
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().stream.shutdown(std::net::Shutdown::Write))
    }
}

/// What a connection needs to know about TLS: the client config, or plain TCP.
#[derive(Clone, Debug)]
pub struct Tls(Option<Arc<rustls::ClientConfig>>);

impl Tls {
    pub fn plain() -> Tls {
        Tls(None)
    }

    pub fn from_flags(flags: Option<&TlsFlags>) -> Result<Tls, String> {
        let Some(flags) = flags else {
            return Ok(Tls(None));
        };
        let cacert = flags
            .cacert
            .as_deref()
            .ok_or("TLS needs --cacert (the CA that signed the servers' certificates)")?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cacert).map_err(|e| format!("{cacert}: {e}"))? {
            let cert = cert.map_err(|e| format!("{cacert}: {e}"))?;
            roots.add(cert).map_err(|e| format!("{cacert}: {e}"))?;
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let mut config = match (&flags.cert, &flags.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("{cert}: {e}"))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("client certificate: {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls(Some(Arc::new(config))))
    }

    pub fn scheme(&self) -> &'static str {
        if self.0.is_some() { "https" } else { "http" }
    }
}

pub type H2Connection = Connection<ClientIo, Bytes>;

/// Connects to `endpoint` (`host:port`), registers the socket with `registry` under `token`
/// and performs the h2 client handshake.
pub fn connect(
    endpoint: &str,
    tls: &Tls,
    registry: &mio::Registry,
    token: mio::Token,
) -> Result<(SendRequest<Bytes>, H2Connection), String> {
    let addr = endpoint
        .to_socket_addrs()
        .map_err(|e| format!("{endpoint}: {e}"))?
        .next()
        .ok_or_else(|| format!("{endpoint}: no address"))?;
    let std_stream =
        std::net::TcpStream::connect(addr).map_err(|e| format!("connect {endpoint}: {e}"))?;
    std_stream
        .set_nodelay(true)
        .and_then(|()| std_stream.set_nonblocking(true))
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let mut stream = TcpStream::from_std(std_stream);
    registry
        .register(
            &mut stream,
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
        .map_err(|e| format!("register {endpoint}: {e}"))?;
    let tls = match &tls.0 {
        None => None,
        Some(config) => {
            let host = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| format!("{endpoint}: server name: {e}"))?;
            Some(
                ClientConnection::new(Arc::clone(config), name)
                    .map_err(|e| format!("{endpoint}: tls: {e}"))?,
            )
        }
    };
    let mut handshake = Box::pin(
        h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .max_concurrent_reset_streams(100_000)
            .handshake::<_, Bytes>(ClientIo { stream, tls }),
    );
    let mut cx = Context::from_waker(Waker::noop());
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        if let Poll::Ready(result) = handshake.as_mut().poll(&mut cx) {
            return result.map_err(|e| format!("h2 handshake with {endpoint}: {e}"));
        }
        if Instant::now() > deadline {
            return Err(format!("h2 handshake with {endpoint}: timed out"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
