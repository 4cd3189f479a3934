//! Writing a snapshot file as its data arrives from a peer, so a member catching up never holds
//! the leader's snapshot in memory next to the store it builds from it.
//!
//! The data's length is known before its first byte (the snapshot message's head says it), so
//! the file's head goes first and each part of the data follows at its offset, checksummed as
//! it passes. Parts are written without syncing: the loop writes them, and one fdatasync at
//! [`SnapshotStore::finish_incoming`] (on whichever thread calls it) makes the file durable
//! before it gets its final name, as [`SnapshotStore::save`] does.

use std::fmt;
use std::path::PathBuf;

use super::format::{FIXED_BYTES, file_name, head};
use super::meta::SnapshotMeta;
use super::store::SnapshotStore;
use crate::wal::error::SnapshotError;
use crate::wal::fs::FsFile;

/// A snapshot file being received: a temporary file until it is finished.
pub struct IncomingSnapshot {
    meta: SnapshotMeta,
    tmp: PathBuf,
    file: Box<dyn FsFile>,
    /// File offset of the next data byte.
    at: u64,
    /// File offset where the data ends (and the checksum goes).
    data_end: u64,
    /// Checksum of the head and the data written so far.
    hasher: crc32fast::Hasher,
}

impl fmt::Debug for IncomingSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingSnapshot")
            .field("meta", &self.meta)
            .field("at", &self.at)
            .field("data_end", &self.data_end)
            .finish()
    }
}

impl IncomingSnapshot {
    /// What the snapshot covers.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Data bytes still to come.
    pub fn remaining(&self) -> u64 {
        self.data_end - self.at
    }

    /// Appends the next `bytes` of the data. The caller checks lengths against what the
    /// sender declared; more than the declared data is a programmer error.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        assert!(
            bytes.len() as u64 <= self.remaining(),
            "no more data than the head declared"
        );
        self.file
            .write_all_at(self.at, bytes)
            .map_err(|e| SnapshotError::io("write snapshot", &self.tmp, e))?;
        self.hasher.update(bytes);
        self.at += bytes.len() as u64;
        Ok(())
    }
}

impl SnapshotStore {
    /// Starts receiving the snapshot `meta` of `data_bytes` bytes into a temporary file.
    pub fn create_incoming(
        &self,
        meta: SnapshotMeta,
        data_bytes: u64,
    ) -> Result<IncomingSnapshot, SnapshotError> {
        let ids_bytes = 8 * (meta.voters().len() + meta.learners().len()) as u64;
        let file_bytes = data_bytes.saturating_add(FIXED_BYTES + ids_bytes);
        let max = self.config().snapshot_bytes_max();
        if file_bytes > max {
            return Err(SnapshotError::TooLarge {
                bytes: file_bytes,
                max,
            });
        }
        // A name apart from `save`'s temporary file (which a snapshot of the same index and
        // term taken here would use) and from any other transfer's; `open` removes leftovers.
        let name = file_name(meta.index(), meta.term());
        let stem = name
            .strip_suffix(".snap")
            .expect("snapshot names end in .snap");
        let seq = self.next_incoming_seq();
        let tmp = self.dir().join(format!("{stem}.incoming-{seq}.snap.tmp"));
        let mut file = self
            .fs()
            .create(&tmp)
            .map_err(|e| SnapshotError::io("create snapshot", &tmp, e))?;
        let front = head(&meta, data_bytes);
        file.write_all_at(0, &front)
            .map_err(|e| SnapshotError::io("write snapshot", &tmp, e))?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&front);
        let at = front.len() as u64;
        Ok(IncomingSnapshot {
            meta,
            tmp,
            file,
            at,
            data_end: at + data_bytes,
            hasher,
        })
    }

    /// Seals a snapshot whose data all arrived: its checksum, fdatasync, its final name, and
    /// an fsync of the directory. From then on it is the store's snapshot at its index.
    pub fn finish_incoming(&self, incoming: IncomingSnapshot) -> Result<(), SnapshotError> {
        assert_eq!(incoming.remaining(), 0, "every data byte arrived");
        let IncomingSnapshot {
            meta,
            tmp,
            mut file,
            at,
            hasher,
            ..
        } = incoming;
        let crc = hasher.finalize().to_le_bytes();
        let sealed = file
            .write_all_at(at, &crc)
            .and_then(|()| file.sync_data())
            .map_err(|e| SnapshotError::io("write snapshot", &tmp, e));
        drop(file);
        if let Err(e) = sealed {
            let _ = self.fs().remove_file(&tmp);
            return Err(e);
        }
        self.install_tmp(&tmp, &file_name(meta.index(), meta.term()))
    }

    /// Drops a snapshot that will not be used (its transfer broke, or the core refused it).
    /// Best effort: `open` removes leftovers anyway.
    pub fn discard_incoming(&self, incoming: IncomingSnapshot) {
        let IncomingSnapshot { tmp, file, .. } = incoming;
        drop(file);
        let _ = self.fs().remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::wal::testing::MemFs;
    use crate::wal::{Fs, SnapshotConfig, SnapshotError, SnapshotMeta, SnapshotStore};

    /// The names in the store's directory.
    fn names(fs: &MemFs) -> Vec<String> {
        fs.list_dir(Path::new("/snap")).unwrap()
    }

    fn new_store() -> (MemFs, SnapshotStore) {
        let fs = MemFs::default();
        let store = SnapshotStore::open(
            Path::new("/snap"),
            SnapshotConfig::default().with_snapshot_bytes_max(1 << 20),
            Box::new(fs.clone()),
        )
        .unwrap();
        (fs, store)
    }

    #[test]
    fn a_snapshot_received_in_parts_is_the_file_save_writes() {
        let (fs, store) = new_store();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let meta = SnapshotMeta::new(7, 3, vec![1, 2, 3], vec![4]);
        let mut incoming = store
            .create_incoming(meta.clone(), data.len() as u64)
            .unwrap();
        for part in data.chunks(30_001) {
            incoming.write(part).unwrap();
        }
        assert_eq!(
            store.list().unwrap(),
            vec![],
            "not the store's until finished"
        );
        store.finish_incoming(incoming).unwrap();
        assert_eq!(store.list().unwrap(), vec![(7, 3)]);
        let loaded = store.load(7, 3).unwrap();
        assert_eq!(loaded.meta(), &meta);
        assert_eq!(&loaded.data()[..], &data[..]);
        let (saved_fs, saved) = new_store();
        saved.save(&meta, &data).unwrap();
        let name = Path::new("/snap/0000000000000007-0000000000000003.snap");
        assert_eq!(
            fs.read_file(name).unwrap(),
            saved_fs.read_file(name).unwrap()
        );
        assert_eq!(names(&fs).len(), 1, "no temporary file left");
    }

    #[test]
    fn a_discarded_or_oversized_snapshot_leaves_nothing() {
        let (fs, store) = new_store();
        let meta = SnapshotMeta::new(9, 1, vec![1], vec![]);
        let mut incoming = store.create_incoming(meta.clone(), 10).unwrap();
        incoming.write(&[1, 2, 3]).unwrap();
        store.discard_incoming(incoming);
        assert!(names(&fs).is_empty());
        assert!(matches!(
            store.create_incoming(meta, 1 << 20),
            Err(SnapshotError::TooLarge { .. })
        ));
        assert!(names(&fs).is_empty());
    }

    #[test]
    fn two_transfers_of_one_snapshot_keep_apart() {
        let (fs, store) = new_store();
        let meta = SnapshotMeta::new(9, 1, vec![1], vec![]);
        let mut first = store.create_incoming(meta.clone(), 3).unwrap();
        let mut second = store.create_incoming(meta, 3).unwrap();
        first.write(&[1, 1, 1]).unwrap();
        second.write(&[2, 2]).unwrap();
        store.finish_incoming(first).unwrap();
        assert_eq!(&store.load(9, 1).unwrap().data()[..], &[1, 1, 1]);
        store.discard_incoming(second);
        assert_eq!(names(&fs).len(), 1, "the sealed one");
    }

    #[test]
    fn a_leftover_is_removed_when_the_store_opens_again() {
        let (fs, store) = new_store();
        let meta = SnapshotMeta::new(9, 1, vec![1], vec![]);
        let incoming = store.create_incoming(meta, 10).unwrap();
        drop(incoming);
        assert_eq!(names(&fs).len(), 1);
        let _reopened = SnapshotStore::open(
            Path::new("/snap"),
            SnapshotConfig::default(),
            Box::new(fs.clone()),
        )
        .unwrap();
        assert!(names(&fs).is_empty());
    }
}
