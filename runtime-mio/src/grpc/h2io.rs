//! The shim between h2's futures and the mio loop: a socket wrapper (plain or rustls) with
//! tokio's I/O traits, and a waker that queues its connection for polling.
//!
//! The wrapper never stores a waker: a read or write that would block returns `Pending`, and the
//! edge-triggered mio registration (readable and writable, made once) brings the connection back
//! when the socket is ready. Wakes from inside h2 (a stream got data, send capacity came back)
//! go through [`ConnWaker`].
//!
//! Once a connection is HTTP/2, h2's reads go through an [`AuthorityFilter`] (see
//! `authority.rs`); the sniffing and HTTP/1 paths read the socket directly.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake};

use bytes::{Buf, Bytes};
use mio::net::TcpStream;
use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::authority::{AuthorityFilter, FilterLimits};

/// A client socket, maybe under TLS, with the sniffed first bytes put back in front.
#[derive(Debug)]
pub(crate) struct ConnIo {
    stream: TcpStream,
    tls: Option<Box<ServerConnection>>,
    replay: Bytes,
    /// Set once the connection speaks HTTP/2: rewrites what h2 reads.
    h2_filter: Option<Box<AuthorityFilter>>,
}

fn would_block() -> io::Error {
    io::Error::from(io::ErrorKind::WouldBlock)
}

impl ConnIo {
    pub(crate) fn new(stream: TcpStream, tls: Option<Box<ServerConnection>>) -> ConnIo {
        ConnIo {
            stream,
            tls,
            replay: Bytes::new(),
            h2_filter: None,
        }
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
            return retry_interrupted(|| self.stream.read(buf));
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match retry_interrupted(|| tls.read_tls(&mut self.stream)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    flush_tls(tls, &mut self.stream).or_else(ignore_would_block)?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
            if let Err(e) = tls.process_new_packets() {
                // Tell the peer why (the alert is queued), then give up on the connection.
                let _ = flush_tls(tls, &mut self.stream);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake replies and key updates.
            flush_tls(tls, &mut self.stream).or_else(ignore_would_block)?;
        }
    }

    /// Writes (or, under TLS, encrypts and queues) some of `buf`.
    pub(crate) fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return retry_interrupted(|| self.stream.write(buf));
        };
        flush_tls(tls, &mut self.stream).or_else(ignore_would_block)?;
        let n = tls.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(would_block());
        }
        flush_tls(tls, &mut self.stream).or_else(ignore_would_block)?;
        Ok(n)
    }

    /// Pushes queued TLS records to the socket.
    pub(crate) fn flush_out(&mut self) -> io::Result<()> {
        match self.tls.as_deref_mut() {
            Some(tls) => flush_tls(tls, &mut self.stream),
            None => Ok(()),
        }
    }

    pub(crate) fn shutdown(&mut self) -> io::Result<()> {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.send_close_notify();
            flush_tls(tls, &mut self.stream)?;
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

fn flush_tls(tls: &mut ServerConnection, stream: &mut TcpStream) -> io::Result<()> {
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
        into_poll(self.get_mut().write_some(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        into_poll(self.get_mut().flush_out())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        into_poll(self.get_mut().shutdown())
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
