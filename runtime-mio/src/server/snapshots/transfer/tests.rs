//! Tests of the snapshot sender: the chunk frames it queues, and how it paces and replaces
//! transfers.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Body, PeerQueues, Pumped, RESEND_AFTER_SENT, SnapshotTransfers};
use crate::peer::FrameKind;
use crate::server::snapshots::chunk::{CHECKSUM_BYTES, CHUNK_BYTES, CHUNK_HEADER_BYTES};

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
