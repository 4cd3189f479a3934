//! Snapshots off the loop thread: the loop compacts the core's log (the core keeps no bytes:
//! a lagging member's snapshot is read back from the file) and hands over a copy of the store,
//! which the worker streams into the snapshot file (temporary file, fsync, rename, fsync of
//! the directory) before the WAL records a marker. Until the marker is durable, recovery
//! replays the WAL from the previous snapshot, so a crash in between loses nothing.
//!
//! [`Snapshots`] is the one part that knows every snapshot in flight: the one being taken,
//! the worker's jobs and results, the ones on their way to peers (`transfer`) and from them
//! (`incoming`). The loop lends it the core, the store and the peer links per call.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use mio::Waker;
use tally_core::{CompactError, Node, Snapshot};
use tally_kvstore::{CopyStep, KvStore, SnapshotCopy};

mod chunk;
mod incoming;
mod pacing;
mod transfer;
mod worker;

pub(super) use worker::{SnapshotDone, SnapshotJob};

use self::chunk::Body;
use self::incoming::{InboundTransfers, Received};
use self::pacing::SnapshotPacing;
use self::transfer::{Pumped, SnapshotTransfers};
use self::worker::SnapshotWorker;
use super::error::ServerError;
use super::members::Members;
use super::metrics::Metrics;
use super::storage;
use crate::peer::PeerTransport;
use crate::wal::{IncomingSnapshot, SnapshotMeta, SnapshotStore};

/// Keys of the store copied per loop turn for a snapshot: copying a few hundred thousand at
/// once held the loop for hundreds of milliseconds.
const SNAPSHOT_COPY_KEYS_PER_TURN: usize = 16 * 1024;

/// A snapshot on its way to the worker.
#[derive(Debug)]
enum SnapshotTaking {
    /// The store is being copied, a slice per turn.
    Copying {
        copy: SnapshotCopy,
        meta: SnapshotMeta,
        members: Bytes,
    },
    /// The copy is done; the worker was busy.
    Queued(Box<SnapshotJob>),
}

/// Every snapshot of this member in flight.
pub(super) struct Snapshots {
    store: Arc<SnapshotStore>,
    worker: SnapshotWorker,
    /// The core asked for a snapshot that could not be started yet.
    /// The core asked for a snapshot that was not started yet: the least index it must cover.
    wanted: Option<u64>,
    /// A snapshot being taken: its store copy, a slice per turn, then its queued job.
    taking: Option<SnapshotTaking>,
    pacing: SnapshotPacing,
    /// The core compacted to this snapshot, but its file could not be written.
    unsaved: Option<SnapshotMeta>,
    /// Snapshot messages to peers, in chunks.
    transfers: SnapshotTransfers,
    /// Snapshot messages from peers, written to files as their chunks arrive.
    inbound: InboundTransfers,
    /// The file of the received snapshot the core restored and has yet to persist.
    received: Option<IncomingSnapshot>,
}

impl Snapshots {
    /// Starts the worker over `store`; it wakes the loop through `waker`.
    pub(super) fn start(store: SnapshotStore, waker: Arc<Waker>) -> Result<Self, ServerError> {
        let store = Arc::new(store);
        let worker = SnapshotWorker::spawn(Arc::clone(&store), waker)?;
        Ok(Snapshots {
            store,
            worker,
            wanted: None,
            taking: None,
            pacing: SnapshotPacing::default(),
            unsaved: None,
            transfers: SnapshotTransfers::default(),
            inbound: InboundTransfers::default(),
            received: None,
        })
    }

    /// The snapshot files.
    pub(super) fn store(&self) -> &SnapshotStore {
        &self.store
    }

    /// Entries of `bytes` went to the WAL.
    pub(super) fn on_logged(&mut self, bytes: u64) {
        self.pacing.on_logged(bytes);
    }

    /// Starts a snapshot at `index` (applied) when the pacing and the worker allow; otherwise
    /// leaves it wanted. The copy advances in [`Snapshots::after_apply`], which every turn
    /// runs after the applies.
    pub(super) fn take(
        &mut self,
        index: u64,
        node: &mut Node,
        kv: &mut KvStore,
        members: &Members,
    ) {
        let store_bytes = kv.status().db_size_bytes();
        if !self.pacing.due(Instant::now(), store_bytes)
            || self.taking.is_some()
            || !self.worker.has_room()
        {
            self.wanted = Some(self.wanted.map_or(index, |w| w.min(index)));
            return;
        }
        self.wanted = None;
        // The core keeps no bytes (released at once): the file will have them, and until it
        // does a lagging member's snapshot waits (reported unreachable, retried).
        let meta = match node.compact(index, Bytes::new()) {
            Ok(snapshot) => {
                let released = node.release_snapshot_data(index);
                assert!(
                    released,
                    "the snapshot just compacted to is the core's latest"
                );
                storage::file_meta(&snapshot)
            }
            // The core compacted to `index` for a snapshot whose file failed, and nothing was
            // applied since: the store is still at `index`, so write that snapshot now.
            Err(CompactError::AlreadyCompacted)
                if self.unsaved.as_ref().is_some_and(|m| m.index() == index) =>
            {
                self.unsaved.take().expect("matched")
            }
            // A snapshot installed since the request covers `index`. The core still waits for
            // a compaction to ask again: take one as soon as an entry past it is applied.
            Err(CompactError::AlreadyCompacted) => {
                self.wanted = Some(index + 1);
                return;
            }
            Err(e) => {
                eprintln!("tallyd: compaction at {index} refused: {e}");
                return;
            }
        };
        self.pacing.on_snapshot_started();
        self.taking = Some(SnapshotTaking::Copying {
            copy: kv.begin_snapshot_copy(),
            meta,
            members: members.encode(),
        });
    }

    /// The core asks for a snapshot at `index` (`Action::RequestSnapshot`): it is taken in
    /// [`Snapshots::after_apply`] once the entries up to `index` are applied completely.
    pub(super) fn want(&mut self, index: u64) {
        self.wanted = Some(self.wanted.map_or(index, |w| w.min(index)));
    }

    /// After the applies of a turn: a wanted snapshot is started if it may be now, and the
    /// one being taken copies its next slice of the store. `applied` is the last index
    /// applied completely, `None` while the store holds an entry applied in part (a copy
    /// cannot start then, but one under way goes on: it is of an earlier revision).
    pub(super) fn after_apply(
        &mut self,
        node: &mut Node,
        kv: &mut KvStore,
        members: &Members,
        applied: Option<u64>,
    ) {
        if let (Some(wanted), Some(applied)) = (self.wanted, applied) {
            if applied >= wanted {
                // `take` leaves it wanted until the pacing allows it.
                self.take(applied, node, kv, members);
            }
        }
        self.advance(kv);
    }

    /// Copies the next slice of the store for the snapshot being taken, and hands the finished
    /// copy to the worker.
    fn advance(&mut self, kv: &mut KvStore) {
        let job = match self.taking.take() {
            None => return,
            Some(SnapshotTaking::Queued(job)) => job,
            Some(SnapshotTaking::Copying {
                mut copy,
                meta,
                members,
            }) => match kv.snapshot_copy_step(&mut copy, SNAPSHOT_COPY_KEYS_PER_TURN) {
                CopyStep::More => {
                    self.taking = Some(SnapshotTaking::Copying {
                        copy,
                        meta,
                        members,
                    });
                    return;
                }
                // A snapshot from the leader replaced the store, and the core's snapshot.
                CopyStep::Abandoned => {
                    self.pacing.on_snapshot_abandoned();
                    return;
                }
                CopyStep::Done => Box::new(SnapshotJob::Save {
                    meta,
                    kv: copy.into_store(),
                    members,
                }),
            },
        };
        if let Err(job) = self.worker.submit(*job) {
            self.taking = Some(SnapshotTaking::Queued(job));
        }
    }

    /// A result of the worker's.
    #[must_use]
    pub(super) fn poll_done(&mut self) -> Option<SnapshotDone> {
        self.worker.poll()
    }

    /// The core's write of an installed snapshot (`persist`), as a job: the worker saves (or
    /// seals) its file and hands the WAL batch back (`SnapshotDone::InstalledSaved`); the
    /// core emits no other write meanwhile. When the worker is busy, the job is done here.
    pub(super) fn save_installed(&mut self, persist: tally_core::Persist) -> Option<SnapshotDone> {
        let snapshot = persist.snapshot().expect("an installed snapshot's write");
        let job = if snapshot.data().is_empty() {
            let (index, term) = (snapshot.meta().index(), snapshot.meta().term());
            let file = self.take_received(index, term);
            SnapshotJob::SealReceived { persist, file }
        } else {
            SnapshotJob::SaveInstalled(persist)
        };
        match self.worker.submit(job) {
            Ok(()) => None,
            Err(job) => Some(worker::run(&self.store, *job)),
        }
    }

    /// The snapshot file at `index` was written, `bytes` long.
    pub(super) fn on_written(&mut self, bytes: u64) {
        self.unsaved = None;
        self.pacing.on_snapshot_bytes(bytes);
    }

    /// The snapshot file of `bytes` was written, but a snapshot installed from the leader
    /// meanwhile supersedes it: only its size counts.
    pub(super) fn on_superseded(&mut self, bytes: u64) {
        self.pacing.on_snapshot_bytes(bytes);
    }

    /// The snapshot `meta` (compacted into the core) could not be written: it is retried
    /// after a delay.
    pub(super) fn on_failed(&mut self, meta: SnapshotMeta) {
        self.want(meta.index());
        self.unsaved = Some(meta);
        self.pacing.on_snapshot_failed(Instant::now());
    }

    /// Restores `kv` from the snapshot the core installs (its file is durable by now: the
    /// install follows the write); the member table it holds.
    pub(super) fn install(
        &mut self,
        snapshot: &Snapshot,
        node: &mut Node,
        kv: &mut KvStore,
    ) -> Result<Members, ServerError> {
        let (members, bytes) = if snapshot.data().is_empty() {
            // Received into its file (`incoming`).
            let meta = snapshot.meta();
            let reader = self
                .store
                .open_reader(meta.index(), meta.term())
                .map_err(|e| ServerError::DataDir(format!("received snapshot: {e}")))?;
            let bytes = reader.data_len();
            (super::startup::restore_from_file(reader, kv)?, bytes)
        } else {
            let data = &snapshot.data()[..];
            let members = super::startup::restore_store(data, kv, "received snapshot")?;
            (members, data.len() as u64)
        };
        let released = node.release_snapshot_data(snapshot.meta().index());
        assert!(released, "the snapshot just installed is the core's latest");
        self.pacing.on_snapshot_started();
        self.pacing.on_snapshot_bytes(bytes);
        eprintln!(
            "tallyd: installed snapshot at index {}",
            snapshot.meta().index()
        );
        Ok(members)
    }

    /// Sends a snapshot message to its peer in chunks, unless that snapshot is on its way
    /// there already. Bytes the core released are read from the snapshot file a chunk at a
    /// time as the peer's queue drains: a whole-file read took seconds on the loop (and a
    /// store-sized buffer per lagging peer on the worker).
    pub(super) fn send(&mut self, message: tally_core::Message, node: &mut Node) {
        let (to, snapshot) = (message.to(), snapshot_of(&message));
        if self.transfers.is_under_way(to, snapshot, Instant::now()) {
            return;
        }
        let (head, body) = if message.needs_snapshot_data() {
            match self.store.open_reader(snapshot.0, snapshot.1) {
                Ok(reader) => {
                    let head = tally_core::codec::encode_snapshot_head(&message, reader.data_len())
                        .expect("a snapshot message");
                    (head, Body::File(reader))
                }
                Err(e) => return not_sent(node, to, &e.to_string()),
            }
        } else {
            let (head, data) =
                tally_core::codec::encode_snapshot_parts(&message).expect("a snapshot message");
            (head, Body::Memory(data))
        };
        let bytes = head.len() + body.len();
        self.transfers.start(to, snapshot, Bytes::from(head), body);
        eprintln!(
            "tallyd: sending snapshot {} (term {}, {bytes} bytes) to member {to:x}",
            snapshot.0, snapshot.1
        );
    }

    /// Whether a transfer has chunks to queue although no socket event will come.
    pub(super) fn wants_turn(&self, peers: &PeerTransport) -> bool {
        self.transfers.wants_turn(peers)
    }

    /// Queues the next chunks of snapshots on their way to peers.
    pub(super) fn pump(
        &mut self,
        peers: &mut PeerTransport,
        node: &mut Node,
        metrics: &mut Metrics,
    ) {
        for ended in self.transfers.pump(peers, Instant::now()) {
            match ended {
                Pumped::Sent { to, bytes } => {
                    eprintln!("tallyd: snapshot of {bytes} bytes queued for member {to:x}")
                }
                Pumped::Refused { to } => {
                    metrics.on_peer_frame_dropped();
                    not_sent(node, to, "its peer queue refused a chunk");
                }
                Pumped::Unreadable { to, error } => not_sent(node, to, &error),
            }
        }
    }

    /// `peer` does not take snapshot chunks (another release), or its link went down: what
    /// was on its way there is dropped, and the core sends a new snapshot.
    pub(super) fn abort_sending_to(&mut self, peer: u64) {
        self.transfers.abort(peer);
    }

    /// `peer`'s link went down: chunks after a gap would be refused, in both directions.
    pub(super) fn on_peer_disconnected(&mut self, peer: u64) {
        self.transfers.abort(peer);
        self.inbound.abort(peer, &self.store);
    }

    /// Takes a snapshot chunk frame from `from`; the snapshot message once its last chunk is
    /// in, to step into the core and then hand to [`Snapshots::keep_received`].
    #[must_use]
    pub(super) fn receive_chunk(&mut self, from: u64, frame: &Bytes) -> Option<Received> {
        match self.inbound.receive(from, frame, &self.store) {
            Ok(received) => received,
            Err(e) => {
                eprintln!("tallyd: peer {from:x}: {e}; its transfer dropped");
                None
            }
        }
    }

    /// The core has seen a received snapshot's message: keeps its `file` only if the core
    /// will persist that snapshot. The core persists, then installs, the snapshot it restored
    /// last: that one's file is kept (this one, or an earlier one still waiting for its
    /// write), the others are dropped.
    pub(super) fn keep_received(&mut self, file: IncomingSnapshot, node: &Node) {
        let status = node.status();
        let wanted =
            (status.applied() < status.snapshot_index()).then_some(status.snapshot_index());
        for file in [self.received.take(), Some(file)].into_iter().flatten() {
            if Some(file.meta().index()) == wanted && self.received.is_none() {
                self.received = Some(file);
            } else {
                self.store.discard_incoming(file);
            }
        }
    }

    /// The file of the received snapshot at (`index`, `term`), which the core now persists.
    fn take_received(&mut self, index: u64, term: u64) -> IncomingSnapshot {
        let file = self
            .received
            .take()
            .expect("the core persists a snapshot without data only after one was received");
        assert_eq!(
            (file.meta().index(), file.meta().term()),
            (index, term),
            "the received snapshot the core restored last"
        );
        file
    }
}

/// The core waits for an answer to a snapshot it sent; one that never left must be reported,
/// so the member is probed again (and gets the newer snapshot).
fn not_sent(node: &mut Node, to: u64, error: &str) {
    eprintln!("tallyd: snapshot for member {to:x} not sent: {error}");
    node.report_unreachable(to);
}

/// The (index, term) of a snapshot message's snapshot.
fn snapshot_of(message: &tally_core::Message) -> (u64, u64) {
    let meta = message.snapshot().expect("a snapshot message").meta();
    (meta.index(), meta.term())
}
