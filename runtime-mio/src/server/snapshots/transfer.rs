//! Snapshots to and from peers, in chunks. A core snapshot message carries the whole store, far
//! more than one peer frame may (`frame_bytes_max`), and one giant frame would hold back the
//! heartbeats queued behind it. So tallyd cuts the message's encoding into chunk frames, sends
//! one more only when the peer's queue is almost empty (heartbeats and appends go between
//! them). The receiver writes them to a snapshot file as they arrive (`snapshots::incoming`).
//!
//! A chunk frame starts with the tag of [`FrameKind::SnapshotChunk`], then `transfer_id
//! total_bytes offset` as `u64` little-endian, then the bytes at `offset` of the transfer: the
//! message's encoding, then the CRC-32 of that encoding (`u32` little-endian), so that the
//! receiver keeps only what the sender sent. A peer link is one ordered TCP stream, so a
//! transfer's chunks arrive in order or not at all; a gap means the link broke (the sender hears
//! `Disconnected`, reports the peer unreachable, and the core sends a new snapshot later).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use crate::peer::FrameKind;
use crate::wal::{SnapshotError, SnapshotReader};

/// Bytes of the CRC trailer after a transfer's message.
pub(in crate::server) const CHECKSUM_BYTES: usize = 4;

/// Whether a peer frame is a snapshot chunk.
pub(in crate::server) fn is_chunk_frame(frame: &[u8]) -> bool {
    frame.first() == Some(&FrameKind::SnapshotChunk.tag())
}
pub(in crate::server) const CHUNK_HEADER_BYTES: usize = 1 + 8 + 8 + 8;
/// Message bytes per chunk frame: far below the peer frame limit, and small enough that a
/// heartbeat queued behind one waits about a millisecond on a gigabit link.
pub(in crate::server) const CHUNK_BYTES: usize = 1 << 20;
/// Chunks queued per peer per loop turn at most, so one transfer cannot hog a turn.
const CHUNKS_PER_TURN_MAX: usize = 4;
/// How long after its last chunk the same snapshot is not sent to the same peer again. The
/// core sends it again after a few heartbeats without an answer, but the peer answers
/// heartbeats while the last chunks are still on their way, and then installs (seconds for a
/// large store); a lost transfer is noticed sooner, as a broken link.
const RESEND_AFTER_SENT: Duration = Duration::from_secs(30);
/// Largest snapshot message accepted from a peer: the snapshot store's largest file
/// (`SnapshotConfig::snapshot_bytes_max`, 8 GiB, as etcd's largest recommended backend), plus
/// room for the message's head.
pub(in crate::server) const INBOUND_SNAPSHOT_BYTES_MAX: u64 = (8 << 30) + (1 << 20);
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

/// A snapshot (index, term) on its way to a peer.
#[derive(Debug)]
struct Outbound {
    snapshot: (u64, u64),
    stage: Stage,
}

#[derive(Debug)]
enum Stage {
    /// Its chunks are being queued (boxed: the reader and hasher are large, `Sent` is not).
    Sending(Box<Chunks>),
    /// Every chunk was queued at this instant; the peer is receiving and installing it.
    Sent(Instant),
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
struct Chunks {
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
    fn new(id: u64, head: Bytes, body: Body) -> Chunks {
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

    fn is_done(&self) -> bool {
        self.offset == self.total
    }

    /// The next chunk frame, or why the data could not be read.
    fn next_frame(&mut self) -> Result<Bytes, SnapshotError> {
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

/// The peer transport as transfers see it: a queue per peer.
pub(in crate::server) trait PeerQueues {
    /// Bytes queued for `to`, or `None` for an unknown peer.
    fn queued_bytes(&self, to: u64) -> Option<usize>;
    /// Queues `frame` for `to`; false if refused.
    fn send(&mut self, to: u64, frame: Bytes) -> bool;
}

impl PeerQueues for crate::peer::PeerTransport {
    fn queued_bytes(&self, to: u64) -> Option<usize> {
        crate::peer::PeerTransport::queued_bytes(self, to)
    }

    fn send(&mut self, to: u64, frame: Bytes) -> bool {
        crate::peer::PeerTransport::send(self, to, frame)
    }
}

/// Whether `to`'s queue has room for another chunk.
fn has_room(peers: &impl PeerQueues, to: u64) -> bool {
    peers
        .queued_bytes(to)
        .is_some_and(|bytes| bytes < CHUNK_BYTES)
}

/// Where a transfer stands after [`SnapshotTransfers::pump`] queued its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::server) enum Pumped {
    /// Every chunk is queued.
    Sent { to: u64, bytes: u64 },
    /// The peer's queue refused a chunk: the transfer is dropped.
    Refused { to: u64 },
    /// The snapshot file could not be read, or failed its checksum: the transfer is dropped
    /// before its last chunk.
    Unreadable { to: u64, error: String },
}

/// Snapshot transfers to peers: at most one per peer (a newer snapshot for the same peer
/// replaces the older).
#[derive(Debug, Default)]
pub(in crate::server) struct SnapshotTransfers {
    outbound: HashMap<u64, Outbound>,
    next_id: u64,
}

impl SnapshotTransfers {
    /// Whether `snapshot` (index, term) is on its way to `to` already: the core sends a
    /// snapshot again when the follower has not answered for a few heartbeats, which a large
    /// one (read, sent, installed) easily outlasts, and starting over each time would never
    /// finish.
    pub(in crate::server) fn is_under_way(
        &self,
        to: u64,
        snapshot: (u64, u64),
        now: Instant,
    ) -> bool {
        self.outbound.get(&to).is_some_and(|o| {
            o.snapshot == snapshot
                && match o.stage {
                    Stage::Sending(_) => true,
                    Stage::Sent(at) => now.saturating_duration_since(at) < RESEND_AFTER_SENT,
                }
        })
    }

    /// Starts queueing `snapshot` to `to`, whose message encoding is `head` then `body`; it
    /// replaces any other transfer to `to`.
    pub(in crate::server) fn start(
        &mut self,
        to: u64,
        snapshot: (u64, u64),
        head: Bytes,
        body: Body,
    ) {
        assert!(!head.is_empty(), "a message encoding has a head");
        self.next_id += 1;
        let stage = Stage::Sending(Box::new(Chunks::new(self.next_id, head, body)));
        self.outbound.insert(to, Outbound { snapshot, stage });
    }

    /// Whether a transfer to `to` has chunks left to queue.
    #[cfg(test)]
    fn is_sending_to(&self, to: u64) -> bool {
        self.outbound
            .get(&to)
            .is_some_and(|o| matches!(o.stage, Stage::Sending(_)))
    }

    /// Drops the transfer to `peer` (its link broke).
    pub(in crate::server) fn abort(&mut self, peer: u64) {
        self.outbound.remove(&peer);
    }

    /// Whether a transfer could queue a chunk now: the loop should not sleep.
    pub(in crate::server) fn wants_turn(&self, peers: &impl PeerQueues) -> bool {
        self.outbound
            .iter()
            .any(|(&to, o)| matches!(o.stage, Stage::Sending(_)) && has_room(peers, to))
    }

    /// Queues chunks while a peer's queue holds less than one chunk, up to
    /// [`CHUNKS_PER_TURN_MAX`] per peer. Reports finished and failed transfers.
    pub(in crate::server) fn pump(
        &mut self,
        peers: &mut impl PeerQueues,
        now: Instant,
    ) -> Vec<Pumped> {
        let mut ended = Vec::new();
        for (&to, outbound) in &mut self.outbound {
            let Stage::Sending(transfer) = &mut outbound.stage else {
                continue;
            };
            for _ in 0..CHUNKS_PER_TURN_MAX {
                if !has_room(peers, to) {
                    break;
                }
                let frame = match transfer.next_frame() {
                    Ok(frame) => frame,
                    Err(e) => {
                        let error = e.to_string();
                        ended.push(Pumped::Unreadable { to, error });
                        break;
                    }
                };
                if !peers.send(to, frame) {
                    ended.push(Pumped::Refused { to });
                    break;
                }
                if transfer.is_done() {
                    let bytes = transfer.total as u64;
                    ended.push(Pumped::Sent { to, bytes });
                    // The bytes go; the record stays, so a resend soon after is ignored.
                    outbound.stage = Stage::Sent(now);
                    break;
                }
            }
        }
        for end in &ended {
            if let Pumped::Refused { to } | Pumped::Unreadable { to, .. } = *end {
                self.outbound.remove(&to);
            }
        }
        ended
    }
}

#[cfg(test)]
pub(in crate::server) mod tests {
    use super::*;

    /// Peer queues for tests: every queue holds `queued` bytes plus the frames accepted since
    /// the last `drain`; accepted frames are kept.
    struct FakePeers {
        queued: Option<usize>,
        accepted_bytes: usize,
        accept: bool,
        frames: Vec<Bytes>,
    }

    impl FakePeers {
        fn with_queued(queued: Option<usize>, accept: bool) -> FakePeers {
            FakePeers {
                queued,
                accepted_bytes: 0,
                accept,
                frames: Vec::new(),
            }
        }

        /// The link wrote out everything queued.
        fn drain(&mut self) {
            self.accepted_bytes = 0;
        }
    }

    impl PeerQueues for FakePeers {
        fn queued_bytes(&self, _to: u64) -> Option<usize> {
            self.queued.map(|q| q + self.accepted_bytes)
        }

        fn send(&mut self, _to: u64, frame: Bytes) -> bool {
            if self.accept {
                self.accepted_bytes += frame.len();
                self.frames.push(frame);
            }
            self.accept
        }
    }

    fn message_parts(head_len: usize, data_len: usize) -> (Bytes, Bytes) {
        let head: Vec<u8> = (0..head_len).map(|i| (i % 251) as u8).collect();
        let data: Vec<u8> = (0..data_len).map(|i| (i % 241) as u8).collect();
        (Bytes::from(head), Bytes::from(data))
    }

    /// A fixed instant: the transfers only compare the times they are given.
    fn now() -> Instant {
        use std::sync::OnceLock;
        static NOW: OnceLock<Instant> = OnceLock::new();
        *NOW.get_or_init(Instant::now)
    }

    /// Starts the transfer of snapshot (1, 1) to `to`.
    fn start(transfers: &mut SnapshotTransfers, to: u64, head: Bytes, data: Bytes) {
        assert!(!transfers.is_under_way(to, (1, 1), now()));
        transfers.start(to, (1, 1), head, Body::Memory(data));
    }

    /// Pumps every chunk of a transfer to `to` into a list, as an always-empty queue would.
    fn pump_all(transfers: &mut SnapshotTransfers, to: u64) -> Vec<Bytes> {
        let mut peers = FakePeers::with_queued(Some(0), true);
        while transfers.is_sending_to(to) {
            let ended = transfers.pump(&mut peers, now());
            assert!(ended.iter().all(|e| matches!(e, Pumped::Sent { .. })));
            peers.drain();
        }
        peers.frames
    }

    /// The chunk frames of a message whose encoding is `head` then `data`, as the sender
    /// queues them to an always-empty peer queue.
    pub(in crate::server) fn chunk_frames(head: Bytes, data: Bytes) -> Vec<Bytes> {
        let mut sender = SnapshotTransfers::default();
        start(&mut sender, 2, head, data);
        pump_all(&mut sender, 2)
    }

    /// The message bytes the frames carry, in order, checking their headers and the CRC
    /// trailer.
    fn joined(frames: &[Bytes]) -> Vec<u8> {
        let mut whole = Vec::new();
        for frame in frames {
            assert_eq!(frame[0], FrameKind::SnapshotChunk.tag());
            let offset = u64::from_le_bytes(frame[17..25].try_into().unwrap());
            assert_eq!(offset, whole.len() as u64, "in order, without gaps");
            whole.extend_from_slice(&frame[CHUNK_HEADER_BYTES..]);
        }
        let (message, crc) = whole.split_at(whole.len() - CHECKSUM_BYTES);
        assert_eq!(crc, crc32fast::hash(message).to_le_bytes(), "the trailer");
        message.to_vec()
    }

    #[test]
    fn a_trailer_alone_in_the_last_chunk_is_sent_whole() {
        // The message fills two chunks exactly; part of the CRC straddles, or all of it
        // follows in a third.
        for extra in [0, 2] {
            let (head, data) = message_parts(8, 2 * CHUNK_BYTES - 8 - extra);
            let frames = chunk_frames(head.clone(), data.clone());
            assert_eq!(frames.len(), 3);
            let whole = joined(&frames);
            assert_eq!((&whole[..8], &whole[8..]), (&head[..], &data[..]));
        }
    }

    #[test]
    fn a_message_larger_than_many_chunks_arrives_whole() {
        let (head, data) = message_parts(40, 3 * CHUNK_BYTES + 17);
        let mut sender = SnapshotTransfers::default();
        start(&mut sender, 2, head.clone(), data.clone());
        let frames = pump_all(&mut sender, 2);
        assert_eq!(frames.len(), 4);
        assert!(
            frames
                .iter()
                .all(|f| f.len() <= CHUNK_HEADER_BYTES + CHUNK_BYTES)
        );
        let whole = joined(&frames);
        assert_eq!(&whole[..40], &head[..]);
        assert_eq!(&whole[40..], &data[..]);
    }

    #[test]
    fn a_small_message_is_one_chunk() {
        let (head, data) = message_parts(10, 0);
        let mut sender = SnapshotTransfers::default();
        start(&mut sender, 7, head.clone(), data);
        let frames = pump_all(&mut sender, 7);
        assert_eq!(frames.len(), 1);
        assert_eq!(joined(&frames), head);
    }

    #[test]
    fn chunks_wait_for_the_peer_queue_and_a_refusal_drops_the_transfer() {
        let (head, data) = message_parts(8, 2 * CHUNK_BYTES);
        let mut transfers = SnapshotTransfers::default();
        start(&mut transfers, 3, head, data);
        let mut full = FakePeers::with_queued(Some(CHUNK_BYTES), true);
        assert!(!transfers.wants_turn(&full), "queue is full");
        assert!(
            !transfers.wants_turn(&FakePeers::with_queued(None, true)),
            "unknown peer"
        );
        assert!(transfers.wants_turn(&FakePeers::with_queued(Some(0), true)));
        let ended = transfers.pump(&mut full, now());
        assert!(
            ended.is_empty() && full.frames.is_empty(),
            "nothing queued behind a full queue"
        );
        let ended = transfers.pump(&mut FakePeers::with_queued(Some(0), false), now());
        assert_eq!(ended, vec![Pumped::Refused { to: 3 }]);
        assert!(!transfers.is_sending_to(3));
    }

    #[test]
    fn a_transfer_started_again_starts_from_its_first_chunk() {
        let (head, data) = message_parts(8, CHUNK_BYTES + 1);
        let mut sender = SnapshotTransfers::default();
        start(&mut sender, 2, head.clone(), data.clone());
        let mut peers = FakePeers::with_queued(Some(CHUNK_BYTES - 1), true);
        let ended = sender.pump(&mut peers, now());
        assert!(ended.is_empty(), "the older transfer is still sending");
        assert_eq!(peers.frames.len(), 1, "one chunk, then the queue is busy");
        sender.abort(2);
        start(&mut sender, 2, head, data.clone());
        let frames = pump_all(&mut sender, 2);
        assert_ne!(frames[0][1..9], peers.frames[0][1..9], "a new transfer id");
        assert_eq!(&joined(&frames)[8..], &data[..]);
    }

    #[test]
    fn the_same_snapshot_is_sent_once_and_a_newer_one_replaces_it() {
        let (head, data) = message_parts(8, 2 * CHUNK_BYTES);
        let t0 = now();
        let mut transfers = SnapshotTransfers::default();
        assert!(!transfers.is_under_way(2, (5, 1), t0));
        transfers.start(2, (5, 1), head.clone(), Body::Memory(data.clone()));
        assert!(transfers.is_under_way(2, (5, 1), t0), "sending already");
        assert!(
            !transfers.is_under_way(2, (9, 2), t0),
            "a newer snapshot is not"
        );
        transfers.start(2, (9, 2), head, Body::Memory(data));
        assert!(
            !transfers.is_under_way(2, (5, 1), t0),
            "it replaced the older"
        );
        let mut peers = FakePeers::with_queued(Some(0), true);
        let sent_at = t0 + Duration::from_secs(1);
        while transfers.is_sending_to(2) {
            let _ = transfers.pump(&mut peers, sent_at);
            peers.drain();
        }
        assert!(!transfers.wants_turn(&peers));
        let soon = sent_at + RESEND_AFTER_SENT - Duration::from_millis(1);
        assert!(
            transfers.is_under_way(2, (9, 2), soon),
            "the peer is installing it"
        );
        assert!(
            !transfers.is_under_way(2, (9, 2), sent_at + RESEND_AFTER_SENT),
            "lost after all"
        );
        transfers.abort(2);
        assert!(
            !transfers.is_under_way(2, (9, 2), sent_at),
            "a broken link forgets it"
        );
    }

    /// A snapshot store in memory holding one snapshot (index 1, term 1) of `data`.
    fn store_with(data: &[u8]) -> (crate::wal::testing::MemFs, crate::wal::SnapshotStore) {
        let fs = crate::wal::testing::MemFs::default();
        let config = crate::wal::SnapshotConfig::default();
        let dir = std::path::Path::new("/snap");
        let store = crate::wal::SnapshotStore::open(dir, config, Box::new(fs.clone())).unwrap();
        let meta = crate::wal::SnapshotMeta::new(1, 1, vec![1, 2], vec![]);
        store.save(&meta, data).unwrap();
        (fs, store)
    }

    /// Starts the transfer to `to` of the store's snapshot (1, 1), read from its file, behind
    /// `head`.
    fn start_from_file(
        transfers: &mut SnapshotTransfers,
        to: u64,
        store: &crate::wal::SnapshotStore,
        head: Bytes,
    ) {
        let body = Body::File(store.open_reader(1, 1).unwrap());
        transfers.start(to, (1, 1), head, body);
    }

    #[test]
    fn a_snapshot_read_from_its_file_arrives_whole() {
        let (head, data) = message_parts(30, 2 * CHUNK_BYTES + 5);
        let (_fs, store) = store_with(&data);
        let mut sender = SnapshotTransfers::default();
        start_from_file(&mut sender, 2, &store, head.clone());
        let frames = pump_all(&mut sender, 2);
        assert_eq!(frames.len(), 3);
        let whole = joined(&frames);
        assert_eq!(&whole[..30], &head[..]);
        assert_eq!(&whole[30..], &data[..]);
    }

    #[test]
    fn a_damaged_file_never_completes_its_transfer() {
        let (head, data) = message_parts(30, 2 * CHUNK_BYTES + 5);
        let (fs, store) = store_with(&data);
        let mut sender = SnapshotTransfers::default();
        start_from_file(&mut sender, 2, &store, head);
        let file = std::path::Path::new("/snap").join("0000000000000001-0000000000000001.snap");
        fs.corrupt_file(&file, |bytes| bytes[CHUNK_BYTES + 100] ^= 1);
        let mut peers = FakePeers::with_queued(Some(0), true);
        let mut ended = Vec::new();
        while sender.is_sending_to(2) {
            ended.extend(sender.pump(&mut peers, now()));
            peers.drain();
        }
        assert!(
            matches!(&ended[..], [Pumped::Unreadable { to: 2, error }] if error.contains("checksum")),
            "{ended:?}"
        );
        assert_eq!(peers.frames.len(), 2, "the last chunk is withheld");
        assert!(
            !sender.is_under_way(2, (1, 1), now()),
            "the failed transfer is forgotten"
        );
    }

    #[test]
    fn any_snapshot_the_store_takes_can_be_received() {
        let file_max = crate::wal::SnapshotConfig::default().snapshot_bytes_max();
        assert!(INBOUND_SNAPSHOT_BYTES_MAX > file_max);
    }
}
