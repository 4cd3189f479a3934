//! The shim between h2's futures and the mio loop: a socket wrapper (plain or rustls) with
//! tokio's I/O traits, and a waker that queues its connection for polling.
//!
//! The wrapper never stores a waker: a read or write that would block returns `Pending`, and the
//! edge-triggered mio registration (readable and writable, made once) brings the connection back
//! when the socket is ready. Wakes from inside h2 (a stream got data, send capacity came back)
//! go through [`ConnWaker`].
//!
//! h2 reads its socket on every poll, and a connection is polled for each response it sends,
//! so without care most reads end in `EAGAIN` (three of four under `check perf`). [`Readiness`]
//! remembers, as tokio does, that a read or write found the socket drained or full, and answers
//! `WouldBlock` without a system call until mio reports the socket ready again.
//!
//! Once a connection is HTTP/2, h2's reads go through an [`AuthorityFilter`] (see
//! `authority.rs`); the sniffing and HTTP/1 paths read the socket directly.
//!
//! h2's writes are gathered and sent at its flush, one socket write per flush: h2 writes a data
//! frame's payload over 1 KiB apart from the frames before it, so such a response (headers,
//! data, trailers) was two or three writes and as many segments for the client to read.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake};

use bytes::{Buf, Bytes};
use mio::net::TcpStream;
use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::authority::{AuthorityFilter, FilterLimits};

/// Whether the socket may have bytes to read or room to write. Cleared when a read or write
/// comes back short or would block (edge-triggered epoll then reports the next arrival or
/// room), set by the connection's mio events. Shared with the connection because h2 owns the
/// `ConnIo` once the connection speaks HTTP/2; for the same reason it also counts what arrived
/// (bytes, and the client's SETTINGS and PING frames), for the idle and keep-alive rules.
#[derive(Debug)]
pub(crate) struct Readiness {
    readable: AtomicBool,
    writable: AtomicBool,
    received_bytes: AtomicU64,
    h2_settings: AtomicU64,
    h2_pings: AtomicU64,
}

impl Readiness {
    fn new() -> Readiness {
        Readiness {
            readable: AtomicBool::new(true),
            writable: AtomicBool::new(true),
            received_bytes: AtomicU64::new(0),
            h2_settings: AtomicU64::new(0),
            h2_pings: AtomicU64::new(0),
        }
    }

    /// Bytes read from the socket so far (TLS records included).
    pub(crate) fn received_bytes(&self) -> u64 {
        self.received_bytes.load(Ordering::Relaxed)
    }

    /// The client's HTTP/2 SETTINGS frames so far, acknowledgements aside.
    pub(crate) fn h2_settings(&self) -> u64 {
        self.h2_settings.load(Ordering::Relaxed)
    }

    /// The client's HTTP/2 PING frames so far, acknowledgements aside.
    pub(crate) fn h2_pings(&self) -> u64 {
        self.h2_pings.load(Ordering::Relaxed)
    }

    /// Records a mio event for the socket.
    pub(crate) fn mark(&self, readable: bool, writable: bool) {
        if readable {
            self.readable.store(true, Ordering::Relaxed);
        }
        if writable {
            self.writable.store(true, Ordering::Relaxed);
        }
    }

    fn read(&self, stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let wanted = buf.len();
        let read = gated(&self.readable, wanted, || stream.read(buf));
        if let Ok(n) = read {
            self.received_bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        read
    }

    fn write(&self, stream: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
        gated(&self.writable, buf.len(), || stream.write(buf))
    }
}

/// Runs a read or write of `wanted` bytes only while `ready`, and clears `ready` when the
/// result shows the socket empty (or full): it would block, or moved some bytes but fewer than
/// asked. Zero bytes is the end of the stream, which stays.
fn gated(
    ready: &AtomicBool,
    wanted: usize,
    op: impl FnMut() -> io::Result<usize>,
) -> io::Result<usize> {
    if !ready.load(Ordering::Relaxed) {
        return Err(would_block());
    }
    let result = retry_interrupted(op);
    let drained = match &result {
        Ok(n) => *n > 0 && *n < wanted,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    };
    if drained {
        ready.store(false, Ordering::Relaxed);
    }
    result
}

/// The socket seen through [`Readiness`], for rustls's `read_tls` and `write_tls`.
struct Tracked<'a> {
    stream: &'a mut TcpStream,
    readiness: &'a Readiness,
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.readiness.read(self.stream, buf)
    }
}

impl Write for Tracked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.readiness.write(self.stream, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A client socket, maybe under TLS, with the sniffed first bytes put back in front.
#[derive(Debug)]
pub(crate) struct ConnIo {
    stream: TcpStream,
    readiness: Arc<Readiness>,
    tls: Option<Box<ServerConnection>>,
    replay: Bytes,
    /// Set once the connection speaks HTTP/2: rewrites what h2 reads.
    h2_filter: Option<Box<AuthorityFilter>>,
    /// h2's writes since its last flush (bounded by `OUT_BYTES_MAX`).
    out: Vec<u8>,
}

/// Gathered bytes past which h2's writes go to the socket without waiting for its flush.
const OUT_BYTES_MAX: usize = 64 * 1024;
/// Capacity the gathering buffer keeps between flushes; a larger one is given back.
const OUT_KEEP_BYTES: usize = 4 * 1024;

fn would_block() -> io::Error {
    io::Error::from(io::ErrorKind::WouldBlock)
}

impl ConnIo {
    pub(crate) fn new(stream: TcpStream, tls: Option<Box<ServerConnection>>) -> ConnIo {
        ConnIo {
            stream,
            readiness: Arc::new(Readiness::new()),
            tls,
            replay: Bytes::new(),
            h2_filter: None,
            out: Vec::new(),
        }
    }

    pub(crate) fn readiness(&self) -> Arc<Readiness> {
        Arc::clone(&self.readiness)
    }

    /// Gives `bytes` back to the next reads, ahead of the socket.
    pub(crate) fn unread(&mut self, bytes: Bytes) {
        self.replay = bytes;
    }

    /// From now on h2's reads (`AsyncRead`) pass the client's header blocks through the
    /// `:authority` filter, starting with the connection preface.
    pub(crate) fn filter_h2(&mut self) {
        self.h2_filter = Some(Box::new(AuthorityFilter::new(FilterLimits::default())));
    }

    pub(crate) fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The common name of the client certificate the TLS handshake verified, if any.
    pub(crate) fn client_common_name(&self) -> Option<String> {
        let certificate = self.tls.as_ref()?.peer_certificates()?.first()?;
        super::cert_name::common_name(certificate)
    }

    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        self.tls.as_ref().and_then(|tls| tls.alpn_protocol())
    }

    /// Reads decrypted bytes; `Ok(0)` is the end of the stream, `WouldBlock` means wait for mio.
    pub(crate) fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.replay.is_empty() {
            let n = buf.len().min(self.replay.len());
            buf[..n].copy_from_slice(&self.replay[..n]);
            self.replay.advance(n);
            return Ok(n);
        }
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.readiness.read(&mut self.stream, buf);
        };
        let mut socket = Tracked {
            stream: &mut self.stream,
            readiness: &self.readiness,
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match retry_interrupted(|| tls.read_tls(&mut socket)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    flush_tls(tls, &mut socket).or_else(ignore_would_block)?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
            if let Err(e) = tls.process_new_packets() {
                // Tell the peer why (the alert is queued), then give up on the connection.
                let _ = flush_tls(tls, &mut socket);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake replies and key updates.
            flush_tls(tls, &mut socket).or_else(ignore_would_block)?;
        }
    }

    /// Writes (or, under TLS, encrypts and queues) some of `buf`.
    pub(crate) fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.readiness.write(&mut self.stream, buf);
        };
        let mut socket = Tracked {
            stream: &mut self.stream,
            readiness: &self.readiness,
        };
        flush_tls(tls, &mut socket).or_else(ignore_would_block)?;
        let n = tls.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(would_block());
        }
        flush_tls(tls, &mut socket).or_else(ignore_would_block)?;
        Ok(n)
    }

    /// Takes one of h2's writes into `out`; very large ones go straight to the socket.
    fn gather(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.out.is_empty() && self.out.len() + buf.len() > OUT_BYTES_MAX {
            self.send_out()?;
        }
        if self.out.is_empty() && buf.len() >= OUT_BYTES_MAX {
            return self.write_some(buf);
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// h2's flush.
    fn flush_gathered(&mut self) -> io::Result<()> {
        self.send_out()?;
        self.flush_out()
    }

    /// Writes `out` to the socket (or into TLS); `WouldBlock` leaves the rest for later.
    fn send_out(&mut self) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.out);
        let mut sent = 0;
        let result = loop {
            if sent == out.len() {
                break Ok(());
            }
            match self.write_some(&out[sent..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => sent += n,
                Err(e) => break Err(e),
            }
        };
        out.drain(..sent);
        self.out = out;
        if self.out.is_empty() && self.out.capacity() > OUT_KEEP_BYTES {
            self.out = Vec::new();
        }
        result
    }

    /// Pushes queued TLS records to the socket.
    pub(crate) fn flush_out(&mut self) -> io::Result<()> {
        let mut socket = Tracked {
            stream: &mut self.stream,
            readiness: &self.readiness,
        };
        match self.tls.as_deref_mut() {
            Some(tls) => flush_tls(tls, &mut socket),
            None => Ok(()),
        }
    }

    pub(crate) fn shutdown(&mut self) -> io::Result<()> {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.send_close_notify();
            let mut socket = Tracked {
                stream: &mut self.stream,
                readiness: &self.readiness,
            };
            flush_tls(tls, &mut socket)?;
        }
        self.stream.shutdown(std::net::Shutdown::Write)
    }
}

fn ignore_would_block(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(())
    } else {
        Err(e)
    }
}

fn retry_interrupted<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn flush_tls(tls: &mut ServerConnection, stream: &mut Tracked<'_>) -> io::Result<()> {
    while tls.wants_write() {
        retry_interrupted(|| tls.write_tls(stream))?;
    }
    Ok(())
}

fn into_poll<T>(result: io::Result<T>) -> Poll<io::Result<T>> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let read = match this.h2_filter.take() {
            Some(mut filter) => {
                let read = filter.read(buf.initialize_unfilled(), |into| this.read_some(into));
                let (settings, pings) = filter.control_frames();
                this.readiness
                    .h2_settings
                    .store(settings, Ordering::Relaxed);
                this.readiness.h2_pings.store(pings, Ordering::Relaxed);
                this.h2_filter = Some(filter);
                read
            }
            None => this.read_some(buf.initialize_unfilled()),
        };
        let n = match into_poll(read) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        into_poll(self.get_mut().gather(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        into_poll(self.get_mut().flush_gathered())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        into_poll(this.send_out().and_then(|()| this.shutdown()))
    }
}

/// Connection slots whose waker fired, shared by all the connections' wakers.
#[derive(Debug)]
pub(crate) struct WakeQueue {
    state: Mutex<WakeState>,
    mio: Arc<mio::Waker>,
}

#[derive(Debug, Default)]
struct WakeState {
    ready: Vec<usize>,
    /// The server is in its drain loop and will look at `ready` before returning, so a wake
    /// needs no trip through the mio waker.
    draining: bool,
}

impl WakeQueue {
    pub(crate) fn new(mio: Arc<mio::Waker>) -> WakeQueue {
        WakeQueue {
            state: Mutex::new(WakeState::default()),
            mio,
        }
    }

    fn lock(&self) -> MutexGuard<'_, WakeState> {
        // Only the loop thread touches the queue; a poisoned lock still holds valid slots.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, slot: usize) {
        let mut state = self.lock();
        let notify = state.ready.is_empty() && !state.draining;
        state.ready.push(slot);
        drop(state);
        if notify {
            self.notify_loop();
        }
    }

    pub(crate) fn notify_loop(&self) {
        if let Err(e) = self.mio.wake() {
            eprintln!("grpc: mio waker failed: {e}");
        }
    }

    /// Starts a drain: later wakes only queue.
    pub(crate) fn begin_drain(&self) {
        self.lock().draining = true;
    }

    /// Moves the woken slots into `out` (which must be empty).
    pub(crate) fn take(&self, out: &mut Vec<usize>) {
        std::mem::swap(&mut self.lock().ready, out);
    }

    /// Ends a drain; if slots are still queued, the loop is woken to come back for them.
    pub(crate) fn end_drain(&self) {
        let mut state = self.lock();
        state.draining = false;
        let pending = !state.ready.is_empty();
        drop(state);
        if pending {
            self.notify_loop();
        }
    }
}

/// The waker of one connection: every future of that connection (the h2 connection, its
/// streams) is polled with it, so any wake means "poll this connection again".
#[derive(Debug)]
pub(crate) struct ConnWaker {
    slot: usize,
    queued: AtomicBool,
    queue: Arc<WakeQueue>,
}

impl ConnWaker {
    pub(crate) fn new(slot: usize, queue: Arc<WakeQueue>) -> ConnWaker {
        ConnWaker {
            slot,
            queued: AtomicBool::new(false),
            queue,
        }
    }

    /// Called right before the connection is polled, so wakes during the poll queue it again.
    pub(crate) fn clear(&self) {
        self.queued.store(false, Ordering::Release);
    }
}

impl Wake for ConnWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue.push(self.slot);
        }
    }
}
