//! When the loop takes a snapshot: not every `--snapshot-count` entries alone, but once as
//! much log as the next snapshot's size (the last one's, or the store's if it shrank since)
//! was written since, never while the last one is still being written, and after a failure
//! not before a delay.

use std::time::{Duration, Instant};

/// When to rewrite the store. The core asks every `--snapshot-count` applied entries, but the
/// store lives in memory and every snapshot writes all of it: a large store under a modest
/// write rate would spend most of its CPU rewriting the same bytes (check perf's 1 KiB values
/// made the snapshot thread the busiest one). So a snapshot also waits until the log written
/// since the previous one is at least that snapshot's size, which bounds the rewriting to one
/// byte per byte logged, as log-structured stores do. The price is a Raft log (in memory and
/// in the WAL) of up to about the store's size between snapshots. The size that counts is the
/// smaller of the last snapshot's and the store's now: after a compaction removed most of the
/// history, the next snapshot is that much smaller, and waiting for the old size would keep
/// a log as large as the old store in memory.
///
/// One snapshot is written at a time: a second one started before the first is written would
/// compact the core past it (so the first, once written, is older than the core's and goes
/// unrecorded) before the first's size is known, and a member that restarted (which knows no
/// size yet) would rewrite a large store every `--snapshot-count` entries, each file
/// superseded before it is recorded, none of them retained or purged.
///
/// A failed snapshot is retried after [`SNAPSHOT_RETRY_DELAY`] whatever was logged: the core's
/// log was compacted when it started, so until one succeeds a member that needs a snapshot
/// cannot get one (and an idle cluster would log nothing to make the next one due).
#[derive(Debug, Default)]
pub(in crate::server) struct SnapshotPacing {
    logged_bytes_since: u64,
    last_snapshot_bytes: u64,
    retry_not_before: Option<Instant>,
    /// A snapshot was started and is not written (nor failed) yet.
    writing: bool,
}

/// Wait before retrying a failed snapshot: a full or failing disk must not make the loop copy
/// the store every turn.
const SNAPSHOT_RETRY_DELAY: Duration = Duration::from_secs(5);

impl SnapshotPacing {
    /// Entries of `bytes` went to the WAL.
    pub(in crate::server) fn on_logged(&mut self, bytes: u64) {
        self.logged_bytes_since = self.logged_bytes_since.saturating_add(bytes);
    }

    /// A snapshot was started or installed: the log before it no longer counts.
    pub(in crate::server) fn on_snapshot_started(&mut self) {
        self.logged_bytes_since = 0;
        self.retry_not_before = None;
        self.writing = true;
    }

    /// The snapshot started last was dropped before it reached the worker (a snapshot from
    /// the leader replaced the store).
    pub(in crate::server) fn on_snapshot_abandoned(&mut self) {
        self.writing = false;
    }

    /// The snapshot started last could not be written.
    pub(in crate::server) fn on_snapshot_failed(&mut self, now: Instant) {
        self.retry_not_before = Some(now + SNAPSHOT_RETRY_DELAY);
        self.writing = false;
    }

    /// The last snapshot came out `bytes` long.
    pub(in crate::server) fn on_snapshot_bytes(&mut self, bytes: u64) {
        self.last_snapshot_bytes = bytes;
        self.writing = false;
    }

    /// Whether a snapshot may start now; `store_bytes`: the store's size as it stands.
    pub(in crate::server) fn due(&self, now: Instant, store_bytes: u64) -> bool {
        if self.writing {
            return false;
        }
        match self.retry_not_before {
            Some(at) => now >= at,
            None => self.logged_bytes_since >= self.last_snapshot_bytes.min(store_bytes),
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
        assert!(
            !pacing.due(t0, u64::MAX),
            "not at once: the disk may still be full"
        );
        pacing.on_logged(5_000);
        assert!(
            !pacing.due(t0 + Duration::from_secs(1), u64::MAX),
            "logging does not hurry it"
        );
        assert!(
            pacing.due(t0 + SNAPSHOT_RETRY_DELAY, u64::MAX),
            "due without more log"
        );
        pacing.on_snapshot_started();
        assert!(
            !pacing.due(t0 + SNAPSHOT_RETRY_DELAY, u64::MAX),
            "a started one paces again"
        );
    }

    #[test]
    fn a_snapshot_waits_for_as_much_log_as_the_last_one_wrote() {
        let now = Instant::now();
        let mut pacing = SnapshotPacing::default();
        assert!(pacing.due(now, u64::MAX), "the first snapshot needs no log");
        pacing.on_snapshot_started();
        pacing.on_logged(300);
        pacing.on_snapshot_bytes(1_000);
        assert!(
            !pacing.due(now, u64::MAX),
            "log written while the snapshot was taken counts"
        );
        pacing.on_logged(600);
        assert!(!pacing.due(now, u64::MAX));
        pacing.on_logged(100);
        assert!(
            pacing.due(now, u64::MAX),
            "1,000 bytes logged since the 1,000-byte snapshot started"
        );
        pacing.on_snapshot_started();
        pacing.on_snapshot_bytes(5_000);
        pacing.on_logged(4_999);
        assert!(!pacing.due(now, u64::MAX));
        pacing.on_logged(u64::MAX);
        assert!(
            pacing.due(now, u64::MAX),
            "counting saturates instead of wrapping"
        );
    }

    #[test]
    fn a_store_that_shrank_waits_only_for_its_new_size() {
        let now = Instant::now();
        let mut pacing = SnapshotPacing::default();
        pacing.on_snapshot_started();
        pacing.on_snapshot_bytes(1_000);
        pacing.on_logged(300);
        assert!(
            !pacing.due(now, 1_200),
            "the store grew: the last size counts"
        );
        assert!(!pacing.due(now, 301), "not yet its size logged");
        assert!(pacing.due(now, 300), "compaction left a 300-byte store");
    }

    #[test]
    fn a_snapshot_waits_until_the_last_one_is_written() {
        let now = Instant::now();
        let mut pacing = SnapshotPacing::default();
        pacing.on_snapshot_started();
        pacing.on_logged(u64::MAX);
        assert!(
            !pacing.due(now, u64::MAX),
            "not while the first is written, whatever was logged"
        );
        pacing.on_snapshot_bytes(1_000);
        assert!(
            pacing.due(now, u64::MAX),
            "its size is known: the log rule decides"
        );
        pacing.on_snapshot_started();
        pacing.on_logged(u64::MAX);
        pacing.on_snapshot_abandoned();
        assert!(
            pacing.due(now, u64::MAX),
            "an abandoned one is not being written"
        );
    }
}
