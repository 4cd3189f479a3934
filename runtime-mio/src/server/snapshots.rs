//! Snapshots off the loop thread: the loop hands over a copy of the store, a worker
//! serializes it, the core compacts its log with the bytes, and the worker writes the file
//! (temporary file, fsync, rename, fsync of the directory) before the WAL records a marker.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use bytes::Bytes;
use mio::Waker;
use tally_kvstore::KvStore;

use super::startup::{ServerError, io_error};
use super::{payload, storage};
use crate::wal::SnapshotStore;

/// Jobs queued for the worker at once; a snapshot requested while it is busy waits for the
/// next interval.
const SNAPSHOT_JOBS_MAX: usize = 2;

#[derive(Debug)]
pub(super) enum SnapshotJob {
    /// Serialize this copy of the store (taken at `index`) with the member table.
    Serialize {
        index: u64,
        kv: Box<KvStore>,
        members: Bytes,
    },
    /// Write the compacted snapshot to its file.
    Write(tally_core::Snapshot),
}

#[derive(Debug)]
pub(super) enum SnapshotDone {
    Serialized { index: u64, data: Bytes },
    Written { index: u64, term: u64 },
    Failed(String),
}

#[derive(Debug)]
pub(super) struct SnapshotWorker {
    jobs: SyncSender<SnapshotJob>,
    done: Receiver<SnapshotDone>,
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
        Ok(SnapshotWorker { jobs, done })
    }

    /// Queues a job; false if the worker is busy with earlier ones.
    pub(super) fn submit(&self, job: SnapshotJob) -> bool {
        match self.jobs.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    #[must_use]
    pub(super) fn poll(&self) -> Option<SnapshotDone> {
        self.done.try_recv().ok()
    }
}

fn run(store: &SnapshotStore, job: SnapshotJob) -> SnapshotDone {
    match job {
        SnapshotJob::Serialize { index, kv, members } => {
            let mut kv_bytes = Vec::new();
            match kv.snapshot(&mut kv_bytes) {
                Ok(()) => SnapshotDone::Serialized {
                    index,
                    data: payload::encode_snapshot(&members, &kv_bytes),
                },
                Err(e) => SnapshotDone::Failed(format!("kvstore snapshot at {index}: {e}")),
            }
        }
        SnapshotJob::Write(snapshot) => {
            let (index, term) = (snapshot.meta().index(), snapshot.meta().term());
            match storage::save_snapshot(store, &snapshot) {
                Ok(()) => SnapshotDone::Written { index, term },
                Err(e) => SnapshotDone::Failed(format!("snapshot file {index}: {e}")),
            }
        }
    }
}
