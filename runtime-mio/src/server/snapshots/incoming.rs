//! Snapshots from the leader, written to a snapshot file as their chunk frames arrive (see
//! `snapshots::transfer` for the frames). The member never holds the leader's snapshot in
//! memory: the message's head is decoded from the first chunk, the data goes to an
//! [`IncomingSnapshot`] file, and once the last chunk is in, the core gets the message without
//! its data (`tally_core::codec::decode_snapshot_head`). When the core then persists that
//! snapshot, the worker seals the file; when it applies it, the store is streamed from it.
//! Joining the chunks in memory held the whole snapshot (467 MB in one run) next to the
//! store being built from it.

use std::collections::HashMap;

use bytes::{Buf, Bytes};
use tally_core::Message;
use tally_core::codec::{SnapshotHead, decode_snapshot_head};

use super::chunk::{
    CHECKSUM_BYTES, CHUNK_HEADER_BYTES, ChunkError, INBOUND_SNAPSHOT_BYTES_MAX, is_chunk_frame,
};
use crate::server::storage;
use crate::wal::{IncomingSnapshot, SnapshotStore};

/// A snapshot whose every chunk arrived: its message (without data) and its file.
#[derive(Debug)]
pub(in crate::server) struct Received {
    pub(in crate::server) message: Message,
    pub(in crate::server) file: IncomingSnapshot,
}

/// A snapshot being received from one peer.
#[derive(Debug)]
struct Receiving {
    id: u64,
    total: u64,
    /// Bytes of the transfer received so far.
    received: u64,
    message: Message,
    file: IncomingSnapshot,
    /// CRC of the message bytes received so far.
    hasher: crc32fast::Hasher,
    /// The sender's CRC, as its bytes arrive.
    sent_checksum: [u8; CHECKSUM_BYTES],
}

impl Receiving {
    /// Bytes of the message (the transfer without its CRC trailer).
    fn message_len(&self) -> u64 {
        self.total - CHECKSUM_BYTES as u64
    }

    /// Takes the transfer's next `bytes`: data into the file, trailer bytes aside.
    fn take(&mut self, bytes: &[u8]) -> Result<(), ChunkError> {
        let message_len = self.message_len();
        let in_message = message_len
            .saturating_sub(self.received)
            .min(bytes.len() as u64);
        let (data, trailer) = bytes.split_at(in_message as usize);
        self.file
            .write(data)
            .map_err(|e| ChunkError::Storage(e.to_string()))?;
        self.hasher.update(data);
        if !trailer.is_empty() {
            // The trailer starts at message_len; what came before it is data.
            let at = (self.received + in_message - message_len) as usize;
            self.sent_checksum[at..at + trailer.len()].copy_from_slice(trailer);
        }
        self.received += bytes.len() as u64;
        Ok(())
    }

    /// Whether the bytes received are the ones the sender checksummed.
    fn is_intact(&self) -> bool {
        self.hasher.clone().finalize().to_le_bytes() == self.sent_checksum
    }
}

/// The snapshots being received, at most one per peer (a new transfer from the same peer
/// replaces the older one).
#[derive(Debug, Default)]
pub(in crate::server) struct InboundTransfers {
    by_peer: HashMap<u64, Receiving>,
}

/// A chunk frame's header and payload.
struct Chunk<'a> {
    id: u64,
    total: u64,
    offset: u64,
    payload: &'a [u8],
}

fn parse_chunk(frame: &[u8]) -> Result<Chunk<'_>, ChunkError> {
    if frame.len() <= CHUNK_HEADER_BYTES || !is_chunk_frame(frame) {
        return Err(ChunkError::Truncated);
    }
    let mut header = &frame[1..CHUNK_HEADER_BYTES];
    let (id, total, offset) = (
        header.get_u64_le(),
        header.get_u64_le(),
        header.get_u64_le(),
    );
    if total == 0 || total > INBOUND_SNAPSHOT_BYTES_MAX {
        return Err(ChunkError::BadTotal(total));
    }
    let payload = &frame[CHUNK_HEADER_BYTES..];
    if offset.saturating_add(payload.len() as u64) > total {
        return Err(ChunkError::Overrun);
    }
    Ok(Chunk {
        id,
        total,
        offset,
        payload,
    })
}

impl InboundTransfers {
    /// Takes a chunk frame from `from`, writing its data to the snapshot's file; returns the
    /// snapshot once its last chunk arrived. On an error the transfer and its file are dropped.
    pub(in crate::server) fn receive(
        &mut self,
        from: u64,
        frame: &Bytes,
        store: &SnapshotStore,
    ) -> Result<Option<Received>, ChunkError> {
        let result = self.receive_chunk(from, frame, store);
        if result.is_err() {
            self.abort(from, store);
        }
        result
    }

    fn receive_chunk(
        &mut self,
        from: u64,
        frame: &Bytes,
        store: &SnapshotStore,
    ) -> Result<Option<Received>, ChunkError> {
        let chunk = parse_chunk(frame)?;
        if chunk.offset == 0 {
            self.abort(from, store);
            let receiving = begin(&chunk, frame, store)?;
            self.by_peer.insert(from, receiving);
        } else {
            let receiving = self
                .by_peer
                .get_mut(&from)
                .filter(|r| r.id == chunk.id && r.total == chunk.total)
                .filter(|r| r.received == chunk.offset)
                .ok_or(ChunkError::OutOfSequence {
                    id: chunk.id,
                    offset: chunk.offset,
                })?;
            receiving.take(chunk.payload)?;
        }
        let receiving = &self.by_peer[&from];
        if receiving.received < receiving.total {
            return Ok(None);
        }
        if !receiving.is_intact() {
            return Err(ChunkError::Damaged);
        }
        let done = self.by_peer.remove(&from).expect("just found");
        Ok(Some(Received {
            message: done.message,
            file: done.file,
        }))
    }

    /// Drops the transfer from `peer` (its link broke, or a chunk was refused).
    pub(in crate::server) fn abort(&mut self, peer: u64, store: &SnapshotStore) {
        if let Some(receiving) = self.by_peer.remove(&peer) {
            store.discard_incoming(receiving.file);
        }
    }
}

/// The first chunk: the message's head (which the sender puts whole in it), and the file for
/// the data that follows.
fn begin(chunk: &Chunk<'_>, frame: &Bytes, store: &SnapshotStore) -> Result<Receiving, ChunkError> {
    let payload = frame.slice(CHUNK_HEADER_BYTES..);
    let head: SnapshotHead = decode_snapshot_head(&payload).map_err(ChunkError::BadHead)?;
    let declared = (head.head_bytes() as u64)
        .checked_add(head.data_bytes())
        .and_then(|n| n.checked_add(CHECKSUM_BYTES as u64));
    if declared != Some(chunk.total) {
        return Err(ChunkError::SizeMismatch);
    }
    let snapshot = head.message().snapshot().expect("a snapshot head");
    let meta = storage::file_meta(snapshot);
    let file = store
        .create_incoming(meta, head.data_bytes())
        .map_err(|e| ChunkError::Storage(e.to_string()))?;
    let head_bytes = head.head_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&chunk.payload[..head_bytes]);
    let mut receiving = Receiving {
        id: chunk.id,
        total: chunk.total,
        received: head_bytes as u64,
        message: head.into_message(),
        file,
        hasher,
        sent_checksum: [0; CHECKSUM_BYTES],
    };
    if let Err(e) = receiving.take(&chunk.payload[head_bytes..]) {
        store.discard_incoming(receiving.file);
        return Err(e);
    }
    Ok(receiving)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::{Bytes, BytesMut};
    use tally_core::{ConfState, Snapshot, SnapshotMeta};

    use super::super::chunk::{CHUNK_BYTES, CHUNK_HEADER_BYTES, INBOUND_SNAPSHOT_BYTES_MAX};
    use super::super::transfer::tests::chunk_frames;
    use super::*;
    use crate::wal::testing::MemFs;
    use crate::wal::{Fs, SnapshotConfig};

    fn store() -> (MemFs, SnapshotStore) {
        let fs = MemFs::default();
        let dir = Path::new("/snap");
        let store = SnapshotStore::open(dir, SnapshotConfig::default(), Box::new(fs.clone()));
        (fs, store.unwrap())
    }

    fn files(fs: &MemFs) -> Vec<String> {
        fs.list_dir(Path::new("/snap")).unwrap()
    }

    /// A snapshot message from member 1 at (index 5, term 2) with `data_len` bytes of data,
    /// and its chunk frames.
    fn snapshot_frames(data_len: usize) -> (Message, Bytes, Vec<Bytes>) {
        let data: Bytes = (0..data_len).map(|i| (i % 241) as u8).collect();
        let meta = SnapshotMeta::new(5, 2, ConfState::new(&[1, 2, 3], &[]));
        let snapshot = Snapshot::new(meta, data.clone());
        let message = tally_core::testing::snapshot_message(1, 2, 2, snapshot);
        let (head, _) = tally_core::codec::encode_snapshot_parts(&message).unwrap();
        let frames = chunk_frames(Bytes::from(head), data.clone());
        (message, data, frames)
    }

    #[test]
    fn a_snapshot_streams_into_its_file_and_the_message_comes_without_data() {
        let (fs, store) = store();
        let (message, data, frames) = snapshot_frames(3 * CHUNK_BYTES + 17);
        assert_eq!(frames.len(), 4);
        let mut inbound = InboundTransfers::default();
        let (last, rest) = frames.split_last().unwrap();
        for frame in rest {
            assert!(inbound.receive(1, frame, &store).unwrap().is_none());
        }
        let received = inbound.receive(1, last, &store).unwrap().expect("complete");
        assert_eq!(received.message, message.with_snapshot_data(Bytes::new()));
        assert_eq!(received.file.remaining(), 0);
        assert!(
            inbound.by_peer.is_empty(),
            "a finished transfer is forgotten"
        );
        assert_eq!(
            store.list().unwrap(),
            vec![],
            "not the store's until sealed"
        );
        store.finish_incoming(received.file).unwrap();
        assert_eq!(store.list().unwrap(), vec![(5, 2)]);
        assert_eq!(store.load(5, 2).unwrap().data(), &data);
        assert_eq!(files(&fs).len(), 1, "no temporary file left");
    }

    #[test]
    fn a_snapshot_without_data_is_one_chunk() {
        let (_fs, store) = store();
        let (message, _, frames) = snapshot_frames(0);
        assert_eq!(frames.len(), 1);
        let received = InboundTransfers::default()
            .receive(1, &frames[0], &store)
            .unwrap()
            .expect("complete");
        assert_eq!(received.message, message);
    }

    #[test]
    fn a_gap_or_a_stranger_drops_the_transfer_and_its_file() {
        let (fs, store) = store();
        let (_, _, frames) = snapshot_frames(3 * CHUNK_BYTES);
        let mut inbound = InboundTransfers::default();
        assert!(inbound.receive(1, &frames[0], &store).unwrap().is_none());
        assert_eq!(files(&fs).len(), 1, "the data goes to a file");
        assert!(matches!(
            inbound.receive(1, &frames[2], &store),
            Err(ChunkError::OutOfSequence { .. })
        ));
        assert!(inbound.by_peer.is_empty());
        assert!(files(&fs).is_empty(), "its file went with it");
        assert!(matches!(
            inbound.receive(1, &frames[1], &store),
            Err(ChunkError::OutOfSequence { .. })
        ));
        // Another peer's chunks do not join this one's transfer.
        assert!(inbound.receive(1, &frames[0], &store).unwrap().is_none());
        assert!(inbound.receive(9, &frames[1], &store).is_err());
        assert!(inbound.receive(1, &frames[1], &store).unwrap().is_none());
        inbound.abort(1, &store);
        assert!(files(&fs).is_empty(), "a broken link drops the file");
    }

    #[test]
    fn a_new_transfer_from_the_same_peer_replaces_the_older() {
        let (fs, store) = store();
        let (_, _, frames) = snapshot_frames(CHUNK_BYTES + 1);
        let mut inbound = InboundTransfers::default();
        assert!(inbound.receive(1, &frames[0], &store).unwrap().is_none());
        assert!(inbound.receive(1, &frames[0], &store).unwrap().is_none());
        assert_eq!(files(&fs).len(), 1, "one file: the older was dropped");
        assert!(inbound.receive(1, &frames[1], &store).unwrap().is_some());
    }

    #[test]
    fn bad_headers_and_heads_are_refused() {
        let (fs, store) = store();
        let (_, _, frames) = snapshot_frames(100);
        let mut inbound = InboundTransfers::default();
        let with = |edit: &dyn Fn(&mut BytesMut)| {
            let mut frame = BytesMut::from(&frames[0][..]);
            edit(&mut frame);
            frame.freeze()
        };
        let truncated = frames[0].slice(..CHUNK_HEADER_BYTES);
        assert_eq!(
            inbound.receive(1, &truncated, &store).unwrap_err(),
            ChunkError::Truncated
        );
        let huge =
            with(&|f| f[9..17].copy_from_slice(&(INBOUND_SNAPSHOT_BYTES_MAX + 1).to_le_bytes()));
        assert_eq!(
            inbound.receive(1, &huge, &store).unwrap_err(),
            ChunkError::BadTotal(INBOUND_SNAPSHOT_BYTES_MAX + 1)
        );
        let short = with(&|f| f[9..17].copy_from_slice(&50u64.to_le_bytes()));
        assert_eq!(
            inbound.receive(1, &short, &store).unwrap_err(),
            ChunkError::Overrun
        );
        let mut longer = BytesMut::from(&frames[0][..]);
        let total = frames[0].len() - CHUNK_HEADER_BYTES + 10;
        longer[9..17].copy_from_slice(&(total as u64).to_le_bytes());
        assert_eq!(
            inbound.receive(1, &longer.freeze(), &store).unwrap_err(),
            ChunkError::SizeMismatch
        );
        let not_a_snapshot = with(&|f| f[CHUNK_HEADER_BYTES + 1] = 5);
        assert!(matches!(
            inbound.receive(1, &not_a_snapshot, &store),
            Err(ChunkError::BadHead(_))
        ));
        assert!(files(&fs).is_empty(), "no file for a refused transfer");
    }

    #[test]
    fn a_damaged_transfer_is_refused_and_an_intact_one_received() {
        let (fs, store) = store();
        let (message, data, frames) = snapshot_frames(CHUNK_BYTES + 100);
        let mut damaged = frames.clone();
        let mut last = BytesMut::from(&damaged[1][..]);
        last[CHUNK_HEADER_BYTES + 7] ^= 0x20;
        damaged[1] = last.freeze();
        let mut inbound = InboundTransfers::default();
        assert!(inbound.receive(1, &damaged[0], &store).unwrap().is_none());
        assert_eq!(
            inbound.receive(1, &damaged[1], &store).unwrap_err(),
            ChunkError::Damaged
        );
        assert!(files(&fs).is_empty(), "a damaged transfer leaves no file");
        assert!(inbound.receive(1, &frames[0], &store).unwrap().is_none());
        let received = inbound
            .receive(1, &frames[1], &store)
            .unwrap()
            .expect("whole");
        assert_eq!(received.message, message.with_snapshot_data(Bytes::new()));
        store.finish_incoming(received.file).unwrap();
        assert_eq!(store.load(5, 2).unwrap().data(), &data);
    }

    /// Whatever a peer sends (chunks mutated, cut, reordered, repeated, from other peers), the
    /// receiver never panics, never completes a snapshot whose bytes differ from the sender's,
    /// and leaves no file behind once its transfers are done or dropped.
    #[test]
    fn garbage_chunks_never_panic_nor_leave_files() {
        use quickcheck::{QuickCheck, TestResult};

        fn property(edits: Vec<(u8, u16, u8)>) -> TestResult {
            let (fs, store) = store();
            let (message, data, frames) = snapshot_frames(2 * CHUNK_BYTES + 300);
            let expected = message.with_snapshot_data(Bytes::new());
            let mut inbound = InboundTransfers::default();
            for (i, &(what, at, byte)) in edits.iter().enumerate() {
                let frame = &frames[i % frames.len()];
                let from = u64::from(what % 3);
                let edited = match what % 5 {
                    0 => frame.clone(),
                    1 => {
                        let mut bytes = BytesMut::from(&frame[..]);
                        let at = usize::from(at) % bytes.len().min(CHUNK_HEADER_BYTES + 64);
                        bytes[at] ^= byte | 1;
                        bytes.freeze()
                    }
                    2 => frame.slice(..usize::from(at) % frame.len()),
                    3 => frames[usize::from(at) % frames.len()].clone(),
                    _ => Bytes::copy_from_slice(&[byte; 40]),
                };
                if let Ok(Some(received)) = inbound.receive(from, &edited, &store) {
                    // Only an unedited transfer completes: its head and data are the sender's.
                    if received.message != expected {
                        return TestResult::failed();
                    }
                    store.finish_incoming(received.file).expect("seal");
                    let whole = store.load(5, 2).expect("sealed file").data().clone();
                    if whole != data {
                        return TestResult::failed();
                    }
                }
            }
            for peer in 0..3 {
                inbound.abort(peer, &store);
            }
            let left: Vec<String> = files(&fs)
                .into_iter()
                .filter(|name| name.ends_with(".tmp"))
                .collect();
            TestResult::from_bool(left.is_empty())
        }
        QuickCheck::new()
            .tests(200)
            .quickcheck(property as fn(Vec<(u8, u16, u8)>) -> TestResult);
    }
}
