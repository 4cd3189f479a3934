//! Bytes on the peer link: frames, the hello/ack handshake and the per-peer send queue.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice};

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Frame header: the payload length as `u32` little-endian.
pub(crate) const HEADER_BYTES: usize = 4;
/// First bytes of a hello payload.
pub(crate) const HELLO_MAGIC: [u8; 8] = *b"TALLYHLO";
/// First bytes of an ack payload.
pub(crate) const ACK_MAGIC: [u8; 8] = *b"TALLYACK";
/// The peer protocol versions this release speaks: a hello carries the dialer's range, the
/// acceptor takes the highest version both speak, and refuses a dialer whose range does not
/// meet its own. Version 1, the first protocol, carried one version in its hello and is no
/// longer spoken.
pub(crate) const PROTOCOL_VERSION_MIN: u32 = 2;
pub(crate) const PROTOCOL_VERSION_MAX: u32 = 2;
/// The first protocol's one version, which its hello carries where this one has its minimum.
pub(crate) const FIRST_PROTOCOL_VERSION: u32 = 1;
/// Longest cluster token (etcd's `--initial-cluster-token`) the hello can carry.
pub(crate) const CLUSTER_TOKEN_BYTES_MAX: usize = 255;
/// Largest handshake payload: a hello with the longest token.
pub(crate) const HANDSHAKE_FRAME_BYTES_MAX: usize = 8 + 4 + 4 + 4 + CLUSTER_TOKEN_BYTES_MAX + 8 + 8;
/// Frames handed to one `writev` (two slices each); Linux allows 1024 slices.
const WRITE_FRAMES_MAX: usize = 32;

/// The frame's declared length exceeds the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameTooLarge {
    pub(crate) bytes: u64,
    pub(crate) max: usize,
}

/// Splits one complete frame off the front of `buf`, if there is one.
pub(crate) fn split_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameTooLarge> {
    let Some(header) = buf.get(..HEADER_BYTES) else {
        return Ok(None);
    };
    let mut len_bytes = [0u8; HEADER_BYTES];
    len_bytes.copy_from_slice(header);
    let len = u32::from_le_bytes(len_bytes);
    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
    if len_usize > max {
        return Err(FrameTooLarge {
            bytes: u64::from(len),
            max,
        });
    }
    if buf.len() - HEADER_BYTES < len_usize {
        return Ok(None);
    }
    buf.advance(HEADER_BYTES);
    Ok(Some(buf.split_to(len_usize).freeze()))
}

/// The dialer's first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    /// The protocol versions the dialer speaks, lowest and highest.
    pub(crate) versions: (u32, u32),
    pub(crate) cluster_token: Bytes,
    pub(crate) from: u64,
    pub(crate) to: u64,
}

/// Why a hello payload is not a hello at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeDecodeError {
    BadMagic,
    Truncated,
    BadVersionRange,
    TokenTooLong,
    TrailingBytes,
}

impl fmt::Display for HandshakeDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadMagic => "bad magic",
            Self::Truncated => "truncated",
            Self::BadVersionRange => "version range ends below its start",
            Self::TokenTooLong => "cluster token too long",
            Self::TrailingBytes => "trailing bytes",
        })
    }
}

/// A hello payload (without the frame header).
pub(crate) fn encode_hello(cluster_token: &[u8], from: u64, to: u64) -> Bytes {
    assert!(cluster_token.len() <= CLUSTER_TOKEN_BYTES_MAX);
    let mut out = BytesMut::with_capacity(HANDSHAKE_FRAME_BYTES_MAX);
    out.put_slice(&HELLO_MAGIC);
    out.put_u32_le(PROTOCOL_VERSION_MIN);
    out.put_u32_le(PROTOCOL_VERSION_MAX);
    out.put_u32_le(cluster_token.len() as u32);
    out.put_slice(cluster_token);
    out.put_u64_le(from);
    out.put_u64_le(to);
    out.freeze()
}

pub(crate) fn decode_hello(payload: &Bytes) -> Result<Hello, HandshakeDecodeError> {
    let mut buf = payload.clone();
    if buf.len() < HELLO_MAGIC.len() || buf[..HELLO_MAGIC.len()] != HELLO_MAGIC {
        return Err(HandshakeDecodeError::BadMagic);
    }
    buf.advance(HELLO_MAGIC.len());
    let version_min = take_u32(&mut buf)?;
    if version_min == FIRST_PROTOCOL_VERSION {
        // The first protocol's hello: one version, then the token. Nothing more of it is
        // read; the acceptor refuses it for its version.
        return Ok(Hello {
            versions: (FIRST_PROTOCOL_VERSION, FIRST_PROTOCOL_VERSION),
            cluster_token: Bytes::new(),
            from: 0,
            to: 0,
        });
    }
    let version_max = take_u32(&mut buf)?;
    if version_max < version_min {
        return Err(HandshakeDecodeError::BadVersionRange);
    }
    let token_len = take_u32(&mut buf)? as usize;
    if token_len > CLUSTER_TOKEN_BYTES_MAX {
        return Err(HandshakeDecodeError::TokenTooLong);
    }
    if buf.len() < token_len {
        return Err(HandshakeDecodeError::Truncated);
    }
    let cluster_token = buf.split_to(token_len);
    let from = take_u64(&mut buf)?;
    let to = take_u64(&mut buf)?;
    if !buf.is_empty() {
        return Err(HandshakeDecodeError::TrailingBytes);
    }
    Ok(Hello {
        versions: (version_min, version_max),
        cluster_token,
        from,
        to,
    })
}

/// The highest protocol version both this member and a dialer speaking `versions` speak.
pub(crate) fn common_version(versions: (u32, u32)) -> Option<u32> {
    let highest = versions.1.min(PROTOCOL_VERSION_MAX);
    (highest >= versions.0.max(PROTOCOL_VERSION_MIN)).then_some(highest)
}

/// The acceptor's answer to a hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeStatus {
    Accepted,
    VersionMismatch,
    ClusterTokenMismatch,
    UnknownMember,
    WrongMember,
    WrongDirection,
    Other(u32),
}

impl HandshakeStatus {
    fn code(self) -> u32 {
        match self {
            Self::Accepted => 0,
            Self::VersionMismatch => 1,
            Self::ClusterTokenMismatch => 2,
            Self::UnknownMember => 3,
            Self::WrongMember => 4,
            Self::WrongDirection => 5,
            Self::Other(code) => code,
        }
    }

    fn from_code(code: u32) -> Self {
        match code {
            0 => Self::Accepted,
            1 => Self::VersionMismatch,
            2 => Self::ClusterTokenMismatch,
            3 => Self::UnknownMember,
            4 => Self::WrongMember,
            5 => Self::WrongDirection,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for HandshakeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Accepted => f.write_str("accepted"),
            Self::VersionMismatch => f.write_str("protocol version mismatch"),
            Self::ClusterTokenMismatch => f.write_str("cluster token mismatch"),
            Self::UnknownMember => f.write_str("unknown member id"),
            Self::WrongMember => f.write_str("hello addressed to another member id"),
            Self::WrongDirection => f.write_str("the member with the lower id must dial"),
            Self::Other(code) => write!(f, "rejected with status {code}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ack {
    /// The version the link speaks when accepted; the acceptor's highest when refused.
    pub(crate) version: u32,
    pub(crate) status: HandshakeStatus,
    pub(crate) from: u64,
}

/// An ack: the same layout in every protocol version (magic, version, status, member id), so a
/// dialer of any release can read why it was refused.
pub(crate) fn encode_ack(version: u32, status: HandshakeStatus, from: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(24);
    out.put_slice(&ACK_MAGIC);
    out.put_u32_le(version);
    out.put_u32_le(status.code());
    out.put_u64_le(from);
    out.freeze()
}

pub(crate) fn decode_ack(payload: &Bytes) -> Result<Ack, HandshakeDecodeError> {
    let mut buf = payload.clone();
    if buf.len() < ACK_MAGIC.len() || buf[..ACK_MAGIC.len()] != ACK_MAGIC {
        return Err(HandshakeDecodeError::BadMagic);
    }
    buf.advance(ACK_MAGIC.len());
    let version = take_u32(&mut buf)?;
    let status = HandshakeStatus::from_code(take_u32(&mut buf)?);
    let from = take_u64(&mut buf)?;
    if !buf.is_empty() {
        return Err(HandshakeDecodeError::TrailingBytes);
    }
    Ok(Ack {
        version,
        status,
        from,
    })
}

fn take_u32(buf: &mut Bytes) -> Result<u32, HandshakeDecodeError> {
    buf.try_get_u32_le()
        .map_err(|_| HandshakeDecodeError::Truncated)
}

fn take_u64(buf: &mut Bytes) -> Result<u64, HandshakeDecodeError> {
    buf.try_get_u64_le()
        .map_err(|_| HandshakeDecodeError::Truncated)
}

/// Frames waiting to be written, bounded in bytes (headers included).
#[derive(Debug)]
pub(crate) struct SendQueue {
    frames: VecDeque<Bytes>,
    /// Bytes of the front frame (header included) already written.
    head_written: usize,
    bytes: usize,
    bytes_max: usize,
}

impl SendQueue {
    pub(crate) fn new(bytes_max: usize) -> Self {
        SendQueue {
            frames: VecDeque::new(),
            head_written: 0,
            bytes: 0,
            bytes_max,
        }
    }

    /// Queues `payload` as one frame; false (nothing queued) when it does not fit.
    pub(crate) fn push(&mut self, payload: Bytes) -> bool {
        let cost = HEADER_BYTES + payload.len();
        if self.bytes + cost > self.bytes_max {
            return false;
        }
        self.bytes += cost;
        self.frames.push_back(payload);
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets a frame that was partly written to a connection that is gone: the rest of it
    /// cannot be sent on another connection.
    pub(crate) fn discard_partial_head(&mut self) {
        if self.head_written > 0 {
            if let Some(front) = self.frames.pop_front() {
                self.bytes -= HEADER_BYTES + front.len();
            }
            self.head_written = 0;
        }
    }

    /// Offers up to `WRITE_FRAMES_MAX` queued frames to `write` as one vectored write and
    /// dequeues what it took. Returns (bytes written, frames fully written).
    pub(crate) fn write_with(
        &mut self,
        write: impl FnOnce(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<(usize, usize)> {
        let mut headers = [[0u8; HEADER_BYTES]; WRITE_FRAMES_MAX];
        for (header, frame) in headers.iter_mut().zip(self.frames.iter()) {
            *header = (frame.len() as u32).to_le_bytes();
        }
        let mut slices = [IoSlice::new(&[]); 2 * WRITE_FRAMES_MAX];
        let mut used = 0;
        for (i, frame) in self.frames.iter().take(WRITE_FRAMES_MAX).enumerate() {
            let skip = if i == 0 { self.head_written } else { 0 };
            if skip < HEADER_BYTES {
                slices[used] = IoSlice::new(&headers[i][skip..]);
                used += 1;
            }
            let payload_skip = skip.saturating_sub(HEADER_BYTES);
            if payload_skip < frame.len() {
                slices[used] = IoSlice::new(&frame[payload_skip..]);
                used += 1;
            }
        }
        if used == 0 {
            return Ok((0, 0));
        }
        let written = write(&slices[..used])?;
        Ok((written, self.advance(written)))
    }

    fn advance(&mut self, mut written: usize) -> usize {
        let mut frames_done = 0;
        while written > 0 {
            let Some(front) = self.frames.front() else {
                break;
            };
            let remaining = HEADER_BYTES + front.len() - self.head_written;
            if written < remaining {
                self.head_written += written;
                break;
            }
            written -= remaining;
            self.bytes -= HEADER_BYTES + front.len();
            self.frames.pop_front();
            self.head_written = 0;
            frames_done += 1;
        }
        frames_done
    }
}
