//! The loop's side of the WAL: the core's writes go to the WAL thread without blocking the loop,
//! and what the thread reports comes back as [`PersistEvent`]s, drained with
//! [`Persistence::poll_event`] once per turn.
//!
//! The core emits one write at a time and waits for it: a write larger than the WAL's batch
//! limit (a follower catching up) goes as several batches, and a full WAL queue keeps the rest
//! for the next turn ([`Persistence::retry`]); the write is durable when its last batch is.
//! Snapshot markers (the record that names a snapshot file) go through the same queue; once
//! one is durable, older snapshot files may be removed.

use std::collections::VecDeque;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::error::ServerError;
use super::storage;
use crate::wal::{Batch, Completion, SubmitError, WalError, WalThread};

/// Snapshot markers awaiting durability at most: a marker is written per saved snapshot, and
/// snapshots are paced seconds apart, so more than a handful means the WAL is stuck.
const MARKERS_MAX: usize = 64;

/// What the WAL thread's reports mean to the loop.
#[derive(Debug)]
pub(super) enum PersistEvent {
    /// The core's write ending at (`index`, `term`) is durable, `took` after it was handed over.
    Persisted {
        index: u64,
        term: u64,
        took: Duration,
    },
    /// The snapshot marker for the snapshot at `index` is durable: older files may go.
    MarkerDurable { index: u64 },
    /// The disk is full; the WAL keeps what it could not write and writes it again.
    OutOfSpace(WalError),
    /// A write fitted again after [`PersistEvent::OutOfSpace`].
    SpaceRecovered,
}

/// The core's write being made durable: the batches not yet handed to the WAL thread, then
/// the sequence number of its last batch.
#[derive(Debug)]
struct CoreWrite {
    index: u64,
    term: u64,
    started: Instant,
    unsubmitted: VecDeque<Batch>,
    /// Set once the last batch is submitted.
    last_seq: Option<u64>,
}

#[derive(Debug)]
pub(super) struct Persistence {
    wal: WalThread,
    done: Receiver<Completion>,
    write: Option<CoreWrite>,
    /// Snapshot markers submitted: (sequence number, snapshot index).
    markers: Vec<(u64, u64)>,
    /// Events of one completion not yet returned (at most two).
    pending: VecDeque<PersistEvent>,
}

impl Persistence {
    pub(super) fn new(wal: WalThread, done: Receiver<Completion>) -> Self {
        Persistence {
            wal,
            done,
            write: None,
            markers: Vec::new(),
            pending: VecDeque::with_capacity(2),
        }
    }

    /// Hands over the core's write ending at (`index`, `term`). The core emits one at a time.
    pub(super) fn submit(
        &mut self,
        batch: Batch,
        index: u64,
        term: u64,
    ) -> Result<(), ServerError> {
        assert!(self.write.is_none(), "one core write at a time");
        self.write = Some(CoreWrite {
            index,
            term,
            started: Instant::now(),
            unsubmitted: batch.split(self.wal.batch_bytes_max()).into(),
            last_seq: None,
        });
        self.retry()
    }

    /// Hands the WAL thread what a full queue held back; call once per turn.
    pub(super) fn retry(&mut self) -> Result<(), ServerError> {
        let Some(write) = self.write.as_mut() else {
            return Ok(());
        };
        while let Some(batch) = write.unsubmitted.pop_front() {
            match self.wal.try_submit(batch) {
                Ok(seq) if write.unsubmitted.is_empty() => write.last_seq = Some(seq),
                Ok(_) => {}
                Err(SubmitError::Full(batch)) => {
                    write.unsubmitted.push_front(batch);
                    return Ok(());
                }
                Err(e) => return Err(ServerError::WalFailed(e.to_string())),
            }
        }
        Ok(())
    }

    /// Records that the snapshot at (`index`, `term`) has its file. A marker that cannot be
    /// queued is only logged: the next snapshot records a newer one.
    pub(super) fn record_snapshot(&mut self, index: u64, term: u64) {
        if self.markers.len() >= MARKERS_MAX {
            return eprintln!(
                "tallyd: snapshot {index} not recorded in the WAL: {MARKERS_MAX} markers wait already"
            );
        }
        match self.wal.try_submit(storage::marker_batch(index, term)) {
            Ok(seq) => self.markers.push((seq, index)),
            Err(e) => eprintln!("tallyd: could not record snapshot {index} in the WAL: {e}"),
        }
    }

    /// The next event, in the order the WAL thread reported; an error when the WAL can make
    /// nothing durable any more.
    #[must_use = "a durable write must be reported to the core"]
    pub(super) fn poll_event(&mut self) -> Result<Option<PersistEvent>, ServerError> {
        while self.pending.is_empty() {
            let Ok(completion) = self.done.try_recv() else {
                return Ok(None);
            };
            self.on_completion(completion)?;
        }
        Ok(self.pending.pop_front())
    }

    fn on_completion(&mut self, completion: Completion) -> Result<(), ServerError> {
        match completion {
            Completion::Durable(durable) => {
                let seq = durable.seq();
                if let Some(write) = self.write.take_if(|w| w.last_seq.is_some_and(|s| s <= seq)) {
                    self.pending.push_back(PersistEvent::Persisted {
                        index: write.index,
                        term: write.term,
                        took: write.started.elapsed(),
                    });
                }
                let (done, waiting): (Vec<_>, Vec<_>) =
                    self.markers.iter().partition(|(s, _)| *s <= seq);
                self.markers = waiting;
                if let Some(index) = done.iter().map(|(_, index)| *index).max() {
                    self.pending
                        .push_back(PersistEvent::MarkerDurable { index });
                }
            }
            Completion::Rejected { seq, error } if self.markers.iter().any(|(m, _)| *m == seq) => {
                // A local snapshot's marker lost a race with a newer one: nothing was written.
                self.markers.retain(|(m, _)| *m != seq);
                eprintln!("tallyd: snapshot marker {seq} not recorded: {error}");
            }
            Completion::Rejected { seq, error } => {
                // The core's own write refused: core and WAL disagree about the log.
                return Err(ServerError::WalFailed(format!(
                    "batch {seq} rejected: {error}"
                )));
            }
            Completion::Failed(error) => return Err(ServerError::WalFailed(error.to_string())),
            Completion::OutOfSpace(error) => {
                self.pending.push_back(PersistEvent::OutOfSpace(error))
            }
            Completion::SpaceRecovered => self.pending.push_back(PersistEvent::SpaceRecovered),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::wal::testing::MemFs;
    use crate::wal::{Entry, EntryKind, HardState, Wal, WalConfig};

    fn persistence(fs: &MemFs, config: WalConfig) -> Persistence {
        let (wal, _) = Wal::open(Path::new("/wal"), config, Box::new(fs.clone())).expect("open");
        let (thread, done) = WalThread::spawn(wal, Box::new(|| {})).expect("spawn");
        Persistence::new(thread, done)
    }

    fn entries(from: u64, to: u64, bytes: usize) -> Vec<Entry> {
        (from..=to)
            .map(|i| Entry::new(i, 1, EntryKind::Normal, vec![7; bytes].into()))
            .collect()
    }

    /// Polls until an event comes (the WAL thread works meanwhile).
    fn next_event(p: &mut Persistence) -> PersistEvent {
        for _ in 0..10_000 {
            if let Some(event) = p.poll_event().expect("no WAL failure") {
                return event;
            }
            p.retry().expect("retry");
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("no event");
    }

    #[test]
    fn a_write_larger_than_a_batch_is_durable_when_its_last_batch_is() {
        let fs = MemFs::new();
        let config = WalConfig::default()
            .with_record_bytes_max(2048)
            .with_batch_bytes_max(4096);
        let mut p = persistence(&fs, config);
        let batch = Batch::new()
            .with_entries(entries(1, 40, 1000))
            .with_hard_state(HardState::new(1, 1, 40));
        p.submit(batch, 40, 1).expect("submit");
        match next_event(&mut p) {
            PersistEvent::Persisted { index, term, .. } => assert_eq!((index, term), (40, 1)),
            other => panic!("{other:?}"),
        }
        // The next write may come now.
        p.submit(Batch::new().with_entries(entries(41, 41, 10)), 41, 1)
            .expect("submit");
        assert!(matches!(
            next_event(&mut p),
            PersistEvent::Persisted { index: 41, .. }
        ));
    }

    #[test]
    fn a_durable_snapshot_marker_is_reported_once() {
        let fs = MemFs::new();
        let mut p = persistence(&fs, WalConfig::default());
        p.submit(Batch::new().with_entries(entries(1, 5, 10)), 5, 1)
            .expect("submit");
        assert!(matches!(next_event(&mut p), PersistEvent::Persisted { .. }));
        p.record_snapshot(3, 1);
        p.record_snapshot(5, 1);
        let mut durable = Vec::new();
        while durable.last() != Some(&5) {
            match next_event(&mut p) {
                PersistEvent::MarkerDurable { index } => durable.push(index),
                other => panic!("{other:?}"),
            }
        }
        assert!(p.poll_event().expect("no failure").is_none());
    }

    #[test]
    #[should_panic(expected = "one core write at a time")]
    fn a_second_core_write_before_the_first_is_durable_is_a_broken_contract() {
        let fs = MemFs::new();
        let mut p = persistence(&fs, WalConfig::default());
        p.submit(Batch::new().with_entries(entries(1, 1, 10)), 1, 1)
            .expect("submit");
        let _ = p.submit(Batch::new().with_entries(entries(2, 2, 10)), 2, 1);
    }
}
