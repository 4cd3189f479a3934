//! Snapshot chunk frames: their format, and cutting a snapshot message into them.
//!
//! A chunk frame starts with the tag of [`FrameKind::SnapshotChunk`], then `transfer_id
//! total_bytes offset` as `u64` little-endian, then the bytes at `offset` of the transfer: the
//! message's encoding, then the CRC-32 of that encoding (`u32` little-endian), so that the
//! receiver keeps only what the sender sent. A peer link is one ordered TCP stream, so a
//! transfer's chunks arrive in order or not at all; a gap means the link broke (the sender hears
//! `Disconnected`, reports the peer unreachable, and the core sends a new snapshot later).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::peer::FrameKind;
use crate::wal::{SnapshotError, SnapshotReader};

/// Bytes of the CRC trailer after a transfer's message.
pub(in crate::server) const CHECKSUM_BYTES: usize = 4;
/// The frame's tag, then the transfer id, its total bytes and the chunk's offset.
pub(in crate::server) const CHUNK_HEADER_BYTES: usize = 1 + 8 + 8 + 8;
/// Message bytes per chunk frame: far below the peer frame limit, and small enough that a
/// heartbeat queued behind one waits about a millisecond on a gigabit link.
pub(in crate::server) const CHUNK_BYTES: usize = 1 << 20;
/// Largest snapshot message accepted from a peer: the snapshot store's largest file
/// (`SnapshotConfig::snapshot_bytes_max`, 8 GiB, as etcd's largest recommended backend), plus
/// room for the message's head.
pub(in crate::server) const INBOUND_SNAPSHOT_BYTES_MAX: u64 = (8 << 30) + (1 << 20);

/// Whether a peer frame is a snapshot chunk.
pub(in crate::server) fn is_chunk_frame(frame: &[u8]) -> bool {
    frame.first() == Some(&FrameKind::SnapshotChunk.tag())
}

/// Why a chunk frame was refused; the transfer it belonged to is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(in crate::server) enum ChunkError {
    /// Shorter than its header, or no bytes in it.
    Truncated,
    /// The declared message is empty or over [`INBOUND_SNAPSHOT_BYTES_MAX`].
    BadTotal(u64),
    /// Not the next chunk of the transfer being received.
    OutOfSequence { id: u64, offset: u64 },
    /// Runs past the declared total.
    Overrun,
    /// The first chunk does not start with a snapshot message's head.
    BadHead(tally_core::codec::DecodeError),
    /// The transfer's bytes do not match the CRC the sender appended.
    Damaged,
    /// The head declares more or less data than the transfer's total.
    SizeMismatch,
    /// The snapshot file could not be written.
    Storage(String),
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated snapshot chunk"),
            Self::BadTotal(total) => write!(
                f,
                "snapshot of {total} bytes refused (1..={INBOUND_SNAPSHOT_BYTES_MAX} allowed)"
            ),
            Self::OutOfSequence { id, offset } => {
                write!(
                    f,
                    "snapshot chunk out of sequence (transfer {id}, offset {offset})"
                )
            }
            Self::Overrun => f.write_str("snapshot chunk runs past its declared size"),
            Self::BadHead(e) => write!(f, "snapshot transfer without a snapshot head: {e}"),
            Self::Damaged => f.write_str("snapshot transfer damaged: its CRC does not match"),
            Self::SizeMismatch => {
                f.write_str("snapshot head declares a size other than its transfer's")
            }
            Self::Storage(e) => write!(f, "received snapshot not stored: {e}"),
        }
    }
}

/// Where a snapshot message's data comes from.
#[derive(Debug)]
pub(in crate::server) enum Body {
    /// Held in memory (the core still had the snapshot's bytes).
    Memory(Bytes),
    /// Read from the snapshot file a chunk at a time, so a lagging peer costs no store-sized
    /// buffer; the file's checksum is checked before its last chunk goes.
    File(SnapshotReader),
}

impl Body {
    /// Data bytes.
    pub(in crate::server) fn len(&self) -> usize {
        match self {
            Body::Memory(data) => data.len(),
            // The snapshot store's files fit in memory (`snapshot_bytes_max`).
            Body::File(reader) => usize::try_from(reader.data_len()).unwrap_or(usize::MAX),
        }
    }

    /// Appends the `len` data bytes at `at` (the next ones, for a file) to `frame`.
    fn put(&mut self, frame: &mut BytesMut, at: usize, len: usize) -> Result<(), SnapshotError> {
        match self {
            Body::Memory(data) => frame.put_slice(&data[at..at + len]),
            Body::File(reader) => {
                assert_eq!(
                    reader.data_len() - reader.remaining(),
                    at as u64,
                    "in order"
                );
                let start = frame.len();
                frame.resize(start + len, 0);
                let read = reader.read_next(&mut frame[start..])?;
                assert_eq!(read, len, "the reader has the bytes its length promised");
            }
        }
        Ok(())
    }
}

/// One snapshot message's encoding, as its two parts, and how much of it is queued.
#[derive(Debug)]
pub(super) struct Chunks {
    id: u64,
    head: Bytes,
    body: Body,
    /// The message's bytes and the CRC trailer.
    total: usize,
    offset: usize,
    /// CRC of the message bytes queued so far.
    checksum: crc32fast::Hasher,
}

impl Chunks {
    pub(super) fn new(id: u64, head: Bytes, body: Body) -> Chunks {
        let total = head.len() + body.len() + CHECKSUM_BYTES;
        Chunks {
            id,
            head,
            body,
            total,
            offset: 0,
            checksum: crc32fast::Hasher::new(),
        }
    }

    /// Bytes of the whole transfer: the message's and the CRC trailer's.
    pub(super) fn total_bytes(&self) -> usize {
        self.total
    }

    pub(super) fn is_done(&self) -> bool {
        self.offset == self.total
    }

    /// The next chunk frame, or why the data could not be read.
    pub(super) fn next_frame(&mut self) -> Result<Bytes, SnapshotError> {
        assert!(!self.is_done(), "a finished transfer has no next chunk");
        let len = CHUNK_BYTES.min(self.total - self.offset);
        let mut frame = BytesMut::with_capacity(CHUNK_HEADER_BYTES + len);
        frame.put_u8(FrameKind::SnapshotChunk.tag());
        frame.put_u64_le(self.id);
        frame.put_u64_le(self.total as u64);
        frame.put_u64_le(self.offset as u64);
        let end = self.offset + len;
        let message_len = self.total - CHECKSUM_BYTES;
        if self.offset < message_len {
            let message_end = end.min(message_len);
            let start = frame.len();
            let head_len = self.head.len();
            if self.offset < head_len {
                frame.put_slice(&self.head[self.offset..message_end.min(head_len)]);
            }
            if message_end > head_len {
                let at = self.offset.max(head_len) - head_len;
                self.body.put(&mut frame, at, message_end - head_len - at)?;
            }
            self.checksum.update(&frame[start..]);
        }
        if end > message_len {
            let crc = self.checksum.clone().finalize().to_le_bytes();
            let from = self.offset.max(message_len) - message_len;
            frame.put_slice(&crc[from..end - message_len]);
        }
        self.offset = end;
        Ok(frame.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::INBOUND_SNAPSHOT_BYTES_MAX;

    #[test]
    fn any_snapshot_the_store_takes_can_be_received() {
        let file_max = crate::wal::SnapshotConfig::default().snapshot_bytes_max();
        assert!(INBOUND_SNAPSHOT_BYTES_MAX > file_max);
    }
}
