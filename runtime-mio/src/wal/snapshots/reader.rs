//! Reading a snapshot file's data a part at a time, for sending it to a peer without holding a
//! store-sized buffer, which every lagging peer would otherwise cost.
//!
//! The file's checksum covers all of it, so it can only be checked once the last byte is read:
//! [`SnapshotReader::read_next`] checks it before it hands out the last part, and a caller that
//! sends each part as it reads it therefore never completes a damaged snapshot at its peer.

use super::format::{FIXED_BYTES, decode_head, file_name};
use super::meta::SnapshotMeta;
use super::store::SnapshotStore;
use crate::wal::error::SnapshotError;
use crate::wal::fs::FsReadFile;
use crate::wal::record::read_u32;

/// How much of the file's start is read to decode its head: the fixed fields and membership
/// lists of up to ~8,000 members.
const HEAD_READ_BYTES_MAX: u64 = 64 << 10;

/// A snapshot file open for reading its data in parts.
#[derive(Debug)]
pub struct SnapshotReader {
    file: Box<dyn FsReadFile>,
    path: std::path::PathBuf,
    meta: SnapshotMeta,
    /// File offset of the data, and its length.
    data_at: u64,
    data_len: u64,
    /// Data bytes handed out so far.
    read: u64,
    /// Checksum of the head and the data read so far.
    hasher: crc32fast::Hasher,
    expected_crc: u32,
}

impl SnapshotStore {
    /// Opens the snapshot at (index, term) for [`SnapshotReader::read_next`]. Checks its head
    /// now and its checksum as the last part is read. The file stays readable if a newer
    /// snapshot replaces it meanwhile.
    pub fn open_reader(&self, index: u64, term: u64) -> Result<SnapshotReader, SnapshotError> {
        let path = self.dir().join(file_name(index, term));
        let file = match self.fs().open_read(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound { index, term });
            }
            Err(e) => return Err(SnapshotError::io("open snapshot", &path, e)),
        };
        let read_error = |e| SnapshotError::io("read snapshot", &path, e);
        let file_len = file.len_bytes().map_err(read_error)?;
        if file_len > self.config().snapshot_bytes_max() {
            return Err(SnapshotError::TooLarge {
                bytes: file_len,
                max: self.config().snapshot_bytes_max(),
            });
        }
        let corrupt = |offset, reason| SnapshotError::Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        if file_len < FIXED_BYTES {
            return Err(corrupt(0, "file shorter than a snapshot header"));
        }
        let crc_at = file_len - 4;
        let mut file = file;
        let mut crc = [0u8; 4];
        file.read_exact_at(crc_at, &mut crc).map_err(read_error)?;
        let mut head = vec![0u8; crc_at.min(HEAD_READ_BYTES_MAX) as usize];
        file.read_exact_at(0, &mut head).map_err(read_error)?;
        let (meta, data_at) =
            decode_head(&head, crc_at).map_err(|(offset, reason)| corrupt(offset, reason))?;
        if (meta.index(), meta.term()) != (index, term) {
            return Err(corrupt(16, "index and term do not match the file name"));
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head[..data_at]);
        Ok(SnapshotReader {
            file,
            path,
            meta,
            data_at: data_at as u64,
            data_len: crc_at - data_at as u64,
            read: 0,
            hasher,
            expected_crc: read_u32(&crc, 0),
        })
    }
}

impl SnapshotReader {
    /// What the snapshot covers.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Length of the snapshot's data (the state machine's bytes).
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Data bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.data_len - self.read
    }

    /// The next `buf.len()` data bytes at most, into `buf`; their count (0 once all are read).
    /// The part that reaches the end comes back only if the file's checksum matches.
    pub fn read_next(&mut self, buf: &mut [u8]) -> Result<usize, SnapshotError> {
        let len = buf
            .len()
            .min(usize::try_from(self.remaining()).unwrap_or(usize::MAX));
        let part = &mut buf[..len];
        self.file
            .read_exact_at(self.data_at + self.read, part)
            .map_err(|e| SnapshotError::io("read snapshot", &self.path, e))?;
        self.hasher.update(part);
        self.read += len as u64;
        if self.read == self.data_len && self.hasher.clone().finalize() != self.expected_crc {
            return Err(SnapshotError::Corrupt {
                path: self.path.clone(),
                offset: self.data_at + self.data_len,
                reason: "snapshot checksum mismatch",
            });
        }
        Ok(len)
    }
}

/// The data as a byte stream (for a restore that parses as it reads). Its last read fails if
/// the checksum does not match, so a reader that reads to the end has checked the file.
impl std::io::Read for SnapshotReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.read_next(buf).map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::wal::SnapshotConfig;
    use crate::wal::testing::MemFs;

    fn store(fs: &MemFs) -> SnapshotStore {
        let config = SnapshotConfig::default();
        SnapshotStore::open(Path::new("/snap"), config, Box::new(fs.clone())).unwrap()
    }

    fn read_all(reader: &mut SnapshotReader, part_bytes: usize) -> Result<Vec<u8>, SnapshotError> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; part_bytes];
        loop {
            let n = reader.read_next(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn parts_join_into_the_saved_data_whatever_their_size() {
        let fs = MemFs::default();
        let store = store(&fs);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let meta = SnapshotMeta::new(9, 2, vec![1, 2, 3], vec![4]);
        store.save(&meta, &data).unwrap();
        for part_bytes in [1, 4096, 99_999, 100_000, 1 << 20] {
            let mut reader = store.open_reader(9, 2).unwrap();
            assert_eq!(reader.meta(), &meta);
            assert_eq!(reader.data_len(), data.len() as u64);
            assert_eq!(read_all(&mut reader, part_bytes).unwrap(), data);
            assert_eq!(reader.remaining(), 0);
        }
    }

    #[test]
    fn a_damaged_byte_withholds_the_last_part() {
        let fs = MemFs::default();
        let store = store(&fs);
        let data = vec![5u8; 10_000];
        store
            .save(&SnapshotMeta::new(9, 2, vec![1], vec![]), &data)
            .unwrap();
        let path = Path::new("/snap").join(file_name(9, 2));
        fs.corrupt_file(&path, |bytes| bytes[100] ^= 1);
        let mut reader = store.open_reader(9, 2).unwrap();
        let mut buf = vec![0u8; 4096];
        assert_eq!(reader.read_next(&mut buf).unwrap(), 4096);
        assert_eq!(reader.read_next(&mut buf).unwrap(), 4096);
        assert!(matches!(
            reader.read_next(&mut buf),
            Err(SnapshotError::Corrupt {
                reason: "snapshot checksum mismatch",
                ..
            })
        ));
    }

    #[test]
    fn a_missing_or_misnamed_file_is_an_error() {
        let fs = MemFs::default();
        let store = store(&fs);
        assert!(matches!(
            store.open_reader(1, 1),
            Err(SnapshotError::NotFound { index: 1, term: 1 })
        ));
        store
            .save(&SnapshotMeta::new(9, 2, vec![1], vec![]), b"data")
            .unwrap();
        let from = Path::new("/snap").join(file_name(9, 2));
        let to = Path::new("/snap").join(file_name(10, 2));
        crate::wal::Fs::rename(&fs, &from, &to).unwrap();
        assert!(matches!(
            store.open_reader(10, 2),
            Err(SnapshotError::Corrupt { offset: 16, .. })
        ));
        fs.corrupt_file(&to, |bytes| bytes.truncate(10));
        assert!(matches!(
            store.open_reader(10, 2),
            Err(SnapshotError::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn a_file_replaced_after_opening_still_reads_as_it_was() {
        let fs = MemFs::default();
        let store = store(&fs);
        let meta = SnapshotMeta::new(9, 2, vec![1], vec![]);
        store.save(&meta, b"first").unwrap();
        let mut reader = store.open_reader(9, 2).unwrap();
        let path = Path::new("/snap").join(file_name(9, 2));
        crate::wal::Fs::remove_file(&fs, &path).unwrap();
        store.save(&meta, b"other!").unwrap();
        assert_eq!(read_all(&mut reader, 2).unwrap(), b"first");
    }
}
