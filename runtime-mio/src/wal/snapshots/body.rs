//! Streaming a snapshot's body into its file.

use std::fmt;
use std::io;

use crate::wal::fs::FsFile;

/// Bytes a [`BodyWriter`] gathers before writing them to the file.
const BODY_CHUNK_BYTES: usize = 1 << 20;
/// Bytes a [`BodyWriter`] writes between fdatasyncs: a snapshot of hundreds of megabytes left
/// to the kernel's writeback reaches the disk in bursts that the WAL's fdatasync waits behind
/// (see `Prealloc::step`); syncing as it goes bounds what is queued in front of the WAL.
const BODY_SYNC_BYTES: u64 = 4 << 20;

/// Streams a snapshot's body into its file (see
/// [`SnapshotStore::save_streamed`](crate::wal::SnapshotStore::save_streamed)), a chunk at a
/// time, checksumming as it goes.
pub struct BodyWriter<'a> {
    file: &'a mut dyn FsFile,
    /// File offset of the next write.
    at: u64,
    buf: Vec<u8>,
    hasher: crc32fast::Hasher,
    /// Bytes the body may still take under `snapshot_bytes_max`.
    bytes_left: u64,
    too_large: bool,
}

impl<'a> BodyWriter<'a> {
    /// A writer of the body that starts at file offset `at` and may take `bytes_left` bytes.
    pub(super) fn new(file: &'a mut dyn FsFile, at: u64, bytes_left: u64) -> BodyWriter<'a> {
        BodyWriter {
            file,
            at,
            buf: Vec::new(),
            hasher: crc32fast::Hasher::new(),
            bytes_left,
            too_large: false,
        }
    }

    /// Where the body ended (the file offset after its last byte), its checksum, and whether
    /// it was refused for running past `bytes_left`.
    pub(super) fn into_end(self) -> (u64, crc32fast::Hasher, bool) {
        (self.at, self.hasher, self.too_large)
    }

    /// Writes out what is gathered.
    pub(super) fn flush_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let written = self.put(&buf);
        self.buf = buf;
        self.buf.clear();
        written
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(self.at, bytes)?;
        self.hasher.update(bytes);
        let before = self.at;
        self.at += bytes.len() as u64;
        if before / BODY_SYNC_BYTES != self.at / BODY_SYNC_BYTES {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

impl io::Write for BodyWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let len = bytes.len() as u64;
        if len > self.bytes_left {
            self.too_large = true;
            return Err(io::Error::other("snapshot larger than snapshot_bytes_max"));
        }
        self.bytes_left -= len;
        if self.buf.len() + bytes.len() > BODY_CHUNK_BYTES {
            self.flush_buf()?;
        }
        if bytes.len() >= BODY_CHUNK_BYTES {
            self.put(bytes)?;
        } else {
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(BODY_CHUNK_BYTES);
            }
            self.buf.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()
    }
}

impl fmt::Debug for BodyWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyWriter").field("at", &self.at).finish()
    }
}
