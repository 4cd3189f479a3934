//! One peer connection: socket, optional rustls session, read buffer and handshake state.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use mio::net::TcpStream;

use super::wire::{
    FrameTooLarge, HANDSHAKE_FRAME_BYTES_MAX, HEADER_BYTES, HandshakeDecodeError, HandshakeStatus,
    SendQueue,
};

/// Bytes asked of the socket (or of rustls) per read call.
pub(crate) const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Bound of a connection's own queue, which only ever holds one hello or ack.
const CONTROL_QUEUE_BYTES_MAX: usize = 1024;
const _: () = assert!(CONTROL_QUEUE_BYTES_MAX >= HEADER_BYTES + HANDSHAKE_FRAME_BYTES_MAX);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Outbound TCP connect in progress.
    Connecting,
    /// Outbound: hello queued or sent, waiting for the ack.
    AwaitAck,
    /// Inbound: waiting for the hello.
    AwaitHello,
    /// Handshake done; frames flow both ways.
    Established { peer: u64 },
}

/// Why a connection was closed.
#[derive(Debug)]
pub(crate) enum CloseReason {
    Eof,
    Io(io::Error),
    Tls(rustls::Error),
    FrameTooLarge(FrameTooLarge),
    Garbage(HandshakeDecodeError),
    /// We refused the peer's hello.
    Rejected(HandshakeStatus),
    /// The peer refused our hello.
    RefusedByPeer(HandshakeStatus),
    /// We refused a hello whose protocol versions do not meet ours.
    NoCommonVersion {
        /// The dialer's lowest and highest versions.
        theirs: (u32, u32),
    },
    /// The peer refused our hello for its versions (or accepted one we do not speak).
    PeerVersion {
        /// The version its ack names: its highest.
        theirs: u32,
    },
    AckFromWrongMember(u64),
    HandshakeTimeout,
    IdleTimeout,
    Replaced,
    Removed,
    AddressChanged,
}

impl CloseReason {
    /// Ends that are routine for a dialer whose peer is down, as opposed to a misconfiguration.
    pub(crate) fn counts_as_rejection(&self) -> bool {
        !matches!(self, Self::Replaced | Self::Removed | Self::AddressChanged)
    }

    /// Whether the two ends refused each other for a reason that retrying does not fix: a
    /// certificate the other end does not trust, another cluster, a member the other end does
    /// not know, a protocol version it does not speak. A peer that is down, slow or restarting
    /// ends a connection in other ways.
    pub(crate) fn is_refusal(&self) -> bool {
        let refused = |status: &HandshakeStatus| {
            matches!(
                status,
                HandshakeStatus::VersionMismatch
                    | HandshakeStatus::ClusterTokenMismatch
                    | HandshakeStatus::UnknownMember
                    | HandshakeStatus::WrongMember
            )
        };
        match self {
            Self::Tls(_)
            | Self::AckFromWrongMember(_)
            | Self::NoCommonVersion { .. }
            | Self::PeerVersion { .. } => true,
            Self::Rejected(status) | Self::RefusedByPeer(status) => refused(status),
            _ => false,
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Eof => f.write_str("connection closed by the remote end"),
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Tls(e) => write!(f, "TLS error: {e}"),
            Self::FrameTooLarge(t) => write!(
                f,
                "frame of {} bytes exceeds frame_bytes_max ({})",
                t.bytes, t.max
            ),
            Self::Garbage(e) => write!(f, "not a tally peer hello ({e})"),
            Self::Rejected(status) => write!(f, "{status}"),
            Self::RefusedByPeer(status) => write!(f, "refused by the peer: {status}"),
            Self::NoCommonVersion { theirs } => write!(
                f,
                "protocol version mismatch: it speaks peer protocol versions {}..={}, this \
                 member {}..={}",
                theirs.0,
                theirs.1,
                super::wire::PROTOCOL_VERSION_MIN,
                super::wire::PROTOCOL_VERSION_MAX
            ),
            Self::PeerVersion { theirs } => write!(
                f,
                "protocol version mismatch: the peer speaks peer protocol versions up to \
                 {theirs}, this member {}..={}",
                super::wire::PROTOCOL_VERSION_MIN,
                super::wire::PROTOCOL_VERSION_MAX
            ),
            Self::AckFromWrongMember(id) => write!(f, "answered by member {id:x} instead"),
            Self::HandshakeTimeout => f.write_str("handshake timed out"),
            Self::IdleTimeout => f.write_str("nothing received within idle_timeout_ms"),
            Self::Replaced => f.write_str("replaced by a newer connection from the same member"),
            Self::Removed => f.write_str("member removed"),
            Self::AddressChanged => f.write_str("member address changed"),
        }
    }
}

/// What one read call produced.
pub(crate) enum ReadStep {
    /// Progress: `bytes` plaintext bytes were appended to the read buffer (may be 0 when only
    /// TLS handshake records arrived). `drained`: the read came back short, so the socket is
    /// empty and (edge-triggered) the next arrival brings a new event; reading again now would
    /// only return `EAGAIN` (half of all peer reads did).
    Data {
        bytes: usize,
        drained: bool,
    },
    WouldBlock,
    Eof,
}

#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    tls: Option<Box<rustls::Connection>>,
    remote: SocketAddr,
    pub(crate) phase: Phase,
    /// The member dialed (outbound only).
    pub(crate) dialed: Option<u64>,
    pub(crate) read_buf: BytesMut,
    /// Hello or ack: written before any peer frame.
    pub(crate) control: SendQueue,
    /// When the handshake must be done by.
    pub(crate) handshake_deadline: Option<Instant>,
    pub(crate) last_recv: Instant,
    pub(crate) last_send: Instant,
    /// Set when a read stopped at `read_batch_bytes_max` with data possibly left in the socket.
    pub(crate) read_paused_at: Option<Instant>,
}

impl Conn {
    pub(crate) fn new(
        stream: TcpStream,
        tls: Option<rustls::Connection>,
        remote: SocketAddr,
        phase: Phase,
        dialed: Option<u64>,
        handshake_deadline: Instant,
        now: Instant,
    ) -> Self {
        Conn {
            stream,
            tls: tls.map(Box::new),
            remote,
            phase,
            dialed,
            read_buf: BytesMut::new(),
            control: SendQueue::new(CONTROL_QUEUE_BYTES_MAX),
            handshake_deadline: Some(handshake_deadline),
            last_recv: now,
            last_send: now,
            read_paused_at: None,
        }
    }

    pub(crate) fn remote(&self) -> SocketAddr {
        self.remote
    }

    pub(crate) fn is_inbound(&self) -> bool {
        self.dialed.is_none()
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Outbound: whether the non-blocking connect finished. Errors end the attempt.
    pub(crate) fn connect_finished(&mut self) -> Result<bool, CloseReason> {
        match self.stream.take_error() {
            Ok(Some(e)) | Err(e) => return Err(CloseReason::Io(e)),
            Ok(None) => {}
        }
        // Not connected yet (ENOTCONN/EINPROGRESS) or a spurious wakeup: the handshake
        // deadline bounds the wait, and a real failure shows up in `take_error`.
        Ok(self.stream.peer_addr().is_ok())
    }

    /// Reads once from the socket into the read buffer, through `scratch` (shared by all
    /// connections, so reading never zeroes or allocates a chunk per call).
    pub(crate) fn read_step(&mut self, scratch: &mut [u8]) -> Result<ReadStep, CloseReason> {
        match self.tls.as_deref_mut() {
            None => read_plain(&mut self.stream, &mut self.read_buf, scratch),
            Some(tls) => read_tls(&mut self.stream, tls, &mut self.read_buf, scratch),
        }
    }

    /// Whether anything waits to be written on this connection.
    pub(crate) fn wants_write(&self, peer_queue: Option<&SendQueue>) -> bool {
        !self.control.is_empty()
            || self.tls.as_ref().is_some_and(|tls| tls.wants_write())
            || peer_queue.is_some_and(|q| !q.is_empty())
    }

    /// Writes the control queue, then `peer_queue`, until done or the socket is full.
    /// Returns the peer frames fully handed over.
    pub(crate) fn write_out(
        &mut self,
        mut peer_queue: Option<&mut SendQueue>,
        now: Instant,
    ) -> Result<u64, CloseReason> {
        if self.phase == Phase::Connecting {
            return Ok(0);
        }
        let mut frames_sent = 0u64;
        loop {
            if let Some(tls) = self.tls.as_deref_mut() {
                while tls.wants_write() {
                    match tls.write_tls(&mut self.stream) {
                        Ok(_) => self.last_send = now,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(frames_sent),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(CloseReason::Io(e)),
                    }
                }
            }
            let from_control = !self.control.is_empty();
            let queue = if from_control {
                &mut self.control
            } else {
                match peer_queue.as_deref_mut() {
                    Some(q) if !q.is_empty() => q,
                    _ => return Ok(frames_sent),
                }
            };
            let result = match self.tls.as_deref_mut() {
                None => queue.write_with(|slices| self.stream.write_vectored(slices)),
                Some(tls) => queue.write_with(|slices| tls.writer().write_vectored(slices)),
            };
            match result {
                Ok((0, _)) => {
                    // rustls' buffer is full (or still handshaking): push records or wait.
                    let tls_pending = self.tls.as_ref().is_some_and(|tls| tls.wants_write());
                    if self.tls.is_none() {
                        return Err(CloseReason::Io(io::ErrorKind::WriteZero.into()));
                    }
                    if !tls_pending {
                        return Ok(frames_sent);
                    }
                }
                Ok((_, frames)) => {
                    if !from_control {
                        frames_sent += frames as u64;
                    }
                    // Also for TLS: bytes in rustls' buffer are on their way, so no keepalive
                    // is needed while the socket drains.
                    self.last_send = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(frames_sent),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CloseReason::Io(e)),
            }
        }
    }

    /// Best effort: tells a TLS peer we are closing. The socket closes when `self` drops.
    pub(crate) fn send_close_notify(&mut self) {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.send_close_notify();
            let _ = tls.write_tls(&mut self.stream);
        }
    }
}

fn read_plain(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    scratch: &mut [u8],
) -> Result<ReadStep, CloseReason> {
    loop {
        return match stream.read(scratch) {
            Ok(0) => Ok(ReadStep::Eof),
            Ok(n) => {
                buf.extend_from_slice(&scratch[..n]);
                Ok(ReadStep::Data {
                    bytes: n,
                    drained: n < scratch.len(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadStep::WouldBlock),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(CloseReason::Io(e)),
        };
    }
}

fn read_tls(
    stream: &mut TcpStream,
    tls: &mut rustls::Connection,
    buf: &mut BytesMut,
    scratch: &mut [u8],
) -> Result<ReadStep, CloseReason> {
    let socket_eof = match tls.read_tls(stream) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStep::WouldBlock),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            return Ok(ReadStep::Data {
                bytes: 0,
                drained: false,
            });
        }
        Err(e) => return Err(CloseReason::Io(e)),
    };
    if let Err(e) = tls.process_new_packets() {
        // Let the peer see the alert rustls queued, so its log says why.
        let _ = tls.write_tls(stream);
        return Err(CloseReason::Tls(e));
    }
    let mut appended = 0;
    loop {
        match tls.reader().read(scratch) {
            // close_notify: the peer closed cleanly.
            Ok(0) => return Ok(ReadStep::Eof),
            Ok(n) => {
                buf.extend_from_slice(&scratch[..n]);
                appended += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(ReadStep::Eof),
            Err(e) => return Err(CloseReason::Io(e)),
        }
    }
    if socket_eof && appended == 0 {
        return Ok(ReadStep::Eof);
    }
    // rustls reads the socket in pieces of its own size: a short one says nothing.
    Ok(ReadStep::Data {
        bytes: appended,
        drained: false,
    })
}
