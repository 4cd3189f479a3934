//! The snapshot worker thread: it streams a copy of the store into a snapshot file, saves a
//! snapshot the leader sent, or seals one received into its file, and reports back through
//! the loop's waker. When it is busy, the loop does the job itself ([`run`]).

use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use bytes::Bytes;
use mio::Waker;
use tally_kvstore::KvStore;

use crate::server::error::{ServerError, io_error};
use crate::server::{heap_trim, payload, storage};
use crate::wal::{SnapshotMeta, SnapshotStore};

/// Jobs queued for the worker at once; a snapshot requested while it is busy waits for the
/// next interval.
const SNAPSHOT_JOBS_MAX: usize = 2;

#[derive(Debug)]
pub(in crate::server) enum SnapshotJob {
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
pub(in crate::server) enum SnapshotDone {
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

#[derive(Debug)]
pub(in crate::server) struct SnapshotWorker {
    jobs: SyncSender<SnapshotJob>,
    done: Receiver<SnapshotDone>,
    /// Jobs submitted whose results have not been polled yet.
    in_flight: usize,
}

impl SnapshotWorker {
    pub(in crate::server) fn spawn(
        store: Arc<SnapshotStore>,
        waker: Arc<Waker>,
    ) -> Result<SnapshotWorker, ServerError> {
        let (jobs, inbox) = std::sync::mpsc::sync_channel::<SnapshotJob>(SNAPSHOT_JOBS_MAX);
        let (report, done) = std::sync::mpsc::sync_channel(SNAPSHOT_JOBS_MAX);
        std::thread::Builder::new()
            .name("tally-snapshot".into())
            .spawn(move || {
                for job in inbox {
                    let done = run(&store, job);
                    // The job dropped a copy of the store, or a replaced one.
                    heap_trim::release_free_pages();
                    if report.send(done).is_err() {
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
    pub(in crate::server) fn has_room(&self) -> bool {
        self.in_flight < SNAPSHOT_JOBS_MAX
    }

    /// Queues a job; a busy worker gives it back.
    pub(in crate::server) fn submit(&mut self, job: SnapshotJob) -> Result<(), Box<SnapshotJob>> {
        match self.jobs.try_send(job) {
            Ok(()) => {
                self.in_flight += 1;
                Ok(())
            }
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => Err(Box::new(job)),
        }
    }

    #[must_use]
    pub(in crate::server) fn poll(&mut self) -> Option<SnapshotDone> {
        let done = self.done.try_recv().ok()?;
        self.in_flight -= 1;
        Some(done)
    }
}

/// Does one job; the worker thread's body, and the loop's fallback when the worker is busy.
pub(in crate::server) fn run(store: &SnapshotStore, job: SnapshotJob) -> SnapshotDone {
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
