//! Snapshots to peers, in chunks. A core snapshot message carries the whole store, far more
//! than one peer frame may (`frame_bytes_max`), and one giant frame would hold back the
//! heartbeats queued behind it. So tallyd cuts the message's encoding into chunk frames
//! (`snapshots::chunk`), sends one more only when the peer's queue is almost empty (heartbeats
//! and appends go between them). The receiver writes them to a snapshot file as they arrive
//! (`snapshots::incoming`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::chunk::{Body, CHUNK_BYTES, Chunks};

/// Chunks queued per peer per loop turn at most, so one transfer cannot hog a turn.
const CHUNKS_PER_TURN_MAX: usize = 4;
/// How long after its last chunk the same snapshot is not sent to the same peer again. The
/// core sends it again after a few heartbeats without an answer, but the peer answers
/// heartbeats while the last chunks are still on their way, and then installs (seconds for a
/// large store); a lost transfer is noticed sooner, as a broken link.
const RESEND_AFTER_SENT: Duration = Duration::from_secs(30);

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
                    let bytes = transfer.total_bytes() as u64;
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
pub(in crate::server) mod tests;
