//! Snapshots off the loop thread: the loop compacts the core's log (the core keeps no bytes:
//! a lagging member's snapshot is read back from the file) and hands over a copy of the store,
//! which the worker streams into the snapshot file (temporary file, fsync, rename, fsync of
//! the directory) before the WAL records a marker. Until the marker is durable, recovery
//! replays the WAL from the previous snapshot, so a crash in between loses nothing.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::Waker;
use tally_core::CompactError;
use tally_kvstore::{CopyStep, KvStore, SnapshotCopy};

mod incoming;
mod transfer;

pub(in crate::server) use incoming::InboundTransfers;
pub(in crate::server) use transfer::SnapshotTransfers;

use self::transfer::{Body, Pumped};
use super::event_loop::Server;
use super::startup::{ServerError, io_error};
use super::{payload, storage};
use crate::wal::{SnapshotMeta, SnapshotStore};

/// Jobs queued for the worker at once; a snapshot requested while it is busy waits for the
/// next interval.
const SNAPSHOT_JOBS_MAX: usize = 2;
/// Keys of the store copied per loop turn for a snapshot: copying a few hundred thousand at
/// once held the loop for hundreds of milliseconds.
const SNAPSHOT_COPY_KEYS_PER_TURN: usize = 16 * 1024;

/// A snapshot on its way to the worker.
#[derive(Debug)]
pub(super) enum SnapshotTaking {
    /// The store is being copied, a slice per turn.
    Copying {
        copy: SnapshotCopy,
        meta: SnapshotMeta,
        members: Bytes,
    },
    /// The copy is done; the worker was busy.
    Queued(Box<SnapshotJob>),
}

impl Server {
    /// Starts a snapshot at `index` (applied) when the pacing and the worker allow; otherwise
    /// leaves it wanted. The copy advances in [`advance_snapshot`](Self::advance_snapshot),
    /// which every turn runs after the applies.
    pub(super) fn take_snapshot(&mut self, index: u64) {
        if !self.snapshot_pacing.due(Instant::now())
            || self.snapshot_taking.is_some()
            || !self.snapshot_worker.has_room()
        {
            self.snapshot_wanted = true;
            return;
        }
        self.snapshot_wanted = false;
        // The core keeps no bytes (released at once): the file will have them, and until it
        // does a lagging member's snapshot waits (reported unreachable, retried).
        let meta = match self.node.compact(index, Bytes::new()) {
            Ok(snapshot) => {
                let released = self.node.release_snapshot_data(index);
                assert!(
                    released,
                    "the snapshot just compacted to is the core's latest"
                );
                storage::file_meta(&snapshot)
            }
            // The core compacted to `index` for a snapshot whose file failed, and nothing was
            // applied since: the store is still at `index`, so write that snapshot now.
            Err(CompactError::AlreadyCompacted)
                if self
                    .unsaved_snapshot
                    .as_ref()
                    .is_some_and(|m| m.index() == index) =>
            {
                self.unsaved_snapshot.take().expect("matched")
            }
            Err(e) => {
                eprintln!("tallyd: compaction at {index} refused: {e}");
                return;
            }
        };
        self.snapshot_pacing.on_snapshot_started();
        self.snapshot_taking = Some(SnapshotTaking::Copying {
            copy: self.kv.begin_snapshot_copy(),
            meta,
            members: self.members.encode(),
        });
    }

    /// Copies the next slice of the store for the snapshot being taken, and hands the finished
    /// copy to the worker.
    pub(super) fn advance_snapshot(&mut self) {
        let job = match self.snapshot_taking.take() {
            None => return,
            Some(SnapshotTaking::Queued(job)) => job,
            Some(SnapshotTaking::Copying {
                mut copy,
                meta,
                members,
            }) => match self
                .kv
                .snapshot_copy_step(&mut copy, SNAPSHOT_COPY_KEYS_PER_TURN)
            {
                CopyStep::More => {
                    self.snapshot_taking = Some(SnapshotTaking::Copying {
                        copy,
                        meta,
                        members,
                    });
                    return;
                }
                // A snapshot from the leader replaced the store, and the core's snapshot.
                CopyStep::Abandoned => return,
                CopyStep::Done => Box::new(SnapshotJob::Save {
                    meta,
                    kv: copy.into_store(),
                    members,
                }),
            },
        };
        if let Err(job) = self.snapshot_worker.submit(*job) {
            self.snapshot_taking = Some(SnapshotTaking::Queued(job));
        }
    }
}

impl Server {
    /// Sends a snapshot message to its peer in chunks (`SnapshotTransfers`), unless that
    /// snapshot is on its way there already. Bytes the core released are read from the
    /// snapshot file a chunk at a time as the peer's queue drains: a whole-file read took
    /// seconds on the loop (and a store-sized buffer per lagging peer on the worker).
    pub(super) fn send_snapshot(&mut self, message: tally_core::Message) {
        let (to, snapshot) = (message.to(), snapshot_of(&message));
        if self.transfers.is_under_way(to, snapshot, Instant::now()) {
            return;
        }
        let (head, body) = if message.needs_snapshot_data() {
            match self.snapshots.open_reader(snapshot.0, snapshot.1) {
                Ok(reader) => {
                    let head = tally_core::codec::encode_snapshot_head(&message, reader.data_len())
                        .expect("a snapshot message");
                    (head, Body::File(reader))
                }
                Err(e) => return self.snapshot_not_sent(to, &e.to_string()),
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

    /// Queues the next chunks of snapshots on their way to peers.
    pub(super) fn pump_transfers(&mut self) {
        for ended in self.transfers.pump(&mut self.peers, Instant::now()) {
            match ended {
                Pumped::Sent { to, bytes } => {
                    eprintln!("tallyd: snapshot of {bytes} bytes queued for member {to:x}")
                }
                Pumped::Refused { to } => {
                    self.metrics.peer_frames_dropped += 1;
                    self.snapshot_not_sent(to, "its peer queue refused a chunk");
                }
                Pumped::Unreadable { to, error } => self.snapshot_not_sent(to, &error),
            }
        }
    }
}

#[derive(Debug)]
pub(super) enum SnapshotJob {
    /// Stream this copy of the store (taken at the snapshot's index) with the member table
    /// into the snapshot file: never the whole store in one buffer.
    Save {
        meta: SnapshotMeta,
        kv: Box<KvStore>,
        members: Bytes,
    },
    /// Save the snapshot the leader sent (its file first), then hand back the core's write as
    /// a WAL batch: saving hundreds of megabytes on the loop stalled it for half a second.
    SaveInstalled(tally_core::Persist),
    /// The same for a snapshot whose data arrived into `file` (see `snapshots::incoming`):
    /// seal the file (checksum, fdatasync, final name), then hand back the write.
    SealReceived {
        persist: tally_core::Persist,
        file: crate::wal::IncomingSnapshot,
    },
}

#[derive(Debug)]
pub(super) enum SnapshotDone {
    Written {
        index: u64,
        term: u64,
        bytes: u64,
    },
    /// The installed snapshot's file is durable; `batch` is the core's write (last index and
    /// term) to submit to the WAL.
    InstalledSaved {
        batch: crate::wal::Batch,
        index: u64,
        term: u64,
    },
    InstallFailed(storage::StorageError),
    /// The snapshot `meta` (already compacted into the core) has no file.
    Failed {
        meta: SnapshotMeta,
        error: String,
        /// The disk was full.
        out_of_space: bool,
    },
}

/// When to rewrite the store. The core asks every `--snapshot-count` applied entries, but the
/// store lives in memory and every snapshot writes all of it: a large store under a modest
/// write rate would spend most of its CPU rewriting the same bytes (check perf's 1 KiB values
/// made the snapshot thread the busiest one). So a snapshot also waits until the log written
/// since the previous one is at least that snapshot's size, which bounds the rewriting to one
/// byte per byte logged, as log-structured stores do. The price is a Raft log (in memory and
/// in the WAL) of up to about the store's size between snapshots.
///
/// A failed snapshot is retried after [`SNAPSHOT_RETRY_DELAY`] whatever was logged: the core's
/// log was compacted when it started, so until one succeeds a member that needs a snapshot
/// cannot get one (and an idle cluster would log nothing to make the next one due).
#[derive(Debug, Default)]
pub(super) struct SnapshotPacing {
    logged_bytes_since: u64,
    last_snapshot_bytes: u64,
    retry_not_before: Option<Instant>,
}

/// Wait before retrying a failed snapshot: a full or failing disk must not make the loop copy
/// the store every turn.
const SNAPSHOT_RETRY_DELAY: Duration = Duration::from_secs(5);

impl SnapshotPacing {
    /// Entries of `bytes` went to the WAL.
    pub(super) fn on_logged(&mut self, bytes: u64) {
        self.logged_bytes_since = self.logged_bytes_since.saturating_add(bytes);
    }

    /// A snapshot was started or installed: the log before it no longer counts.
    pub(super) fn on_snapshot_started(&mut self) {
        self.logged_bytes_since = 0;
        self.retry_not_before = None;
    }

    /// The snapshot started last could not be written.
    pub(super) fn on_snapshot_failed(&mut self, now: Instant) {
        self.retry_not_before = Some(now + SNAPSHOT_RETRY_DELAY);
    }

    /// The last snapshot came out `bytes` long.
    pub(super) fn on_snapshot_bytes(&mut self, bytes: u64) {
        self.last_snapshot_bytes = bytes;
    }

    pub(super) fn due(&self, now: Instant) -> bool {
        match self.retry_not_before {
            Some(at) => now >= at,
            None => self.logged_bytes_since >= self.last_snapshot_bytes,
        }
    }
}

#[derive(Debug)]
pub(super) struct SnapshotWorker {
    jobs: SyncSender<SnapshotJob>,
    done: Receiver<SnapshotDone>,
    /// Jobs submitted whose results have not been polled yet.
    in_flight: usize,
}

impl SnapshotWorker {
    pub(super) fn spawn(
        store: Arc<SnapshotStore>,
        waker: Arc<Waker>,
    ) -> Result<SnapshotWorker, ServerError> {
        let (jobs, inbox) = std::sync::mpsc::sync_channel::<SnapshotJob>(SNAPSHOT_JOBS_MAX);
        let (report, done) = std::sync::mpsc::sync_channel(SNAPSHOT_JOBS_MAX);
        std::thread::Builder::new()
            .name("tally-snapshot".into())
            .spawn(move || {
                for job in inbox {
                    if report.send(run(&store, job)).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                }
            })
            .map_err(io_error("spawn snapshot worker"))?;
        Ok(SnapshotWorker {
            jobs,
            done,
            in_flight: 0,
        })
    }

    /// Whether [`submit`](Self::submit) will take a job now.
    pub(super) fn has_room(&self) -> bool {
        self.in_flight < SNAPSHOT_JOBS_MAX
    }

    /// Queues a job; a busy worker gives it back.
    pub(super) fn submit(&mut self, job: SnapshotJob) -> Result<(), Box<SnapshotJob>> {
        match self.jobs.try_send(job) {
            Ok(()) => {
                self.in_flight += 1;
                Ok(())
            }
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => Err(Box::new(job)),
        }
    }

    #[must_use]
    pub(super) fn poll(&mut self) -> Option<SnapshotDone> {
        let done = self.done.try_recv().ok()?;
        self.in_flight -= 1;
        Some(done)
    }
}

/// The (index, term) of a snapshot message's snapshot.
fn snapshot_of(message: &tally_core::Message) -> (u64, u64) {
    let meta = message.snapshot().expect("a snapshot message").meta();
    (meta.index(), meta.term())
}

/// Does one job; the worker thread's body, and the loop's fallback when the worker is busy.
pub(super) fn run(store: &SnapshotStore, job: SnapshotJob) -> SnapshotDone {
    match job {
        SnapshotJob::Save { meta, kv, members } => {
            let (index, term) = (meta.index(), meta.term());
            let saved = store.save_streamed(
                &meta,
                payload::snapshot_prefix_bytes(&members),
                |body| kv.snapshot(body).map_err(io::Error::other),
                |kv_bytes| payload::snapshot_prefix(&members, kv_bytes),
            );
            match saved {
                Ok(bytes) => SnapshotDone::Written { index, term, bytes },
                Err(e) => SnapshotDone::Failed {
                    meta,
                    error: format!("snapshot file {index}: {e}"),
                    out_of_space: e.is_out_of_space(),
                },
            }
        }
        SnapshotJob::SaveInstalled(persist) => {
            let (index, term) = (persist.last_index(), persist.last_term());
            match storage::to_batch(persist, store) {
                Ok(batch) => SnapshotDone::InstalledSaved { batch, index, term },
                Err(e) => SnapshotDone::InstallFailed(e),
            }
        }
        SnapshotJob::SealReceived { persist, file } => {
            let (index, term) = (persist.last_index(), persist.last_term());
            match store.finish_incoming(file) {
                Ok(()) => SnapshotDone::InstalledSaved {
                    batch: storage::batch_of(persist),
                    index,
                    term,
                },
                Err(e) => SnapshotDone::InstallFailed(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{SNAPSHOT_RETRY_DELAY, SnapshotPacing};

    #[test]
    fn a_failed_snapshot_is_retried_after_a_delay_without_more_log() {
        let t0 = Instant::now();
        let mut pacing = SnapshotPacing::default();
        pacing.on_snapshot_bytes(1_000);
        pacing.on_snapshot_started();
        pacing.on_snapshot_failed(t0);
        assert!(!pacing.due(t0), "not at once: the disk may still be full");
        pacing.on_logged(5_000);
        assert!(
            !pacing.due(t0 + Duration::from_secs(1)),
            "logging does not hurry it"
        );
        assert!(
            pacing.due(t0 + SNAPSHOT_RETRY_DELAY),
            "due without more log"
        );
        pacing.on_snapshot_started();
        assert!(
            !pacing.due(t0 + SNAPSHOT_RETRY_DELAY),
            "a started one paces again"
        );
    }

    #[test]
    fn a_snapshot_waits_for_as_much_log_as_the_last_one_wrote() {
        let now = Instant::now();
        let mut pacing = SnapshotPacing::default();
        assert!(pacing.due(now), "the first snapshot needs no log");
        pacing.on_snapshot_started();
        pacing.on_logged(300);
        pacing.on_snapshot_bytes(1_000);
        assert!(
            !pacing.due(now),
            "log written while the snapshot was taken counts"
        );
        pacing.on_logged(600);
        assert!(!pacing.due(now));
        pacing.on_logged(100);
        assert!(
            pacing.due(now),
            "1,000 bytes logged since the 1,000-byte snapshot started"
        );
        pacing.on_snapshot_started();
        pacing.on_snapshot_bytes(5_000);
        pacing.on_logged(4_999);
        assert!(!pacing.due(now));
        pacing.on_logged(u64::MAX);
        assert!(pacing.due(now), "counting saturates instead of wrapping");
    }
}
