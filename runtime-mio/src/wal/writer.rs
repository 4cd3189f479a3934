//! The synchronous writer: `append` queues, `sync` writes and fdatasyncs.

use std::collections::VecDeque;
use std::mem;
use std::path::{Path, PathBuf};

use super::error::WalError;
use super::fs::{Fs, FsFile};
use super::log_state::{LogState, TermRuns};
use super::prealloc::Prealloc;
use super::record::{self, Encoder, RecordRef};
use super::recovery::{self, Recovered};
use super::segment::{self, HEADER_BYTES, PURGED_SUFFIX};
use super::types::{Batch, Durable, HardState, SnapshotMarker, WalConfig};

/// A live segment and the highest entry index it holds (for purging).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegmentInfo {
    pub(crate) seq: u64,
    pub(crate) max_entry_index: u64,
}

#[derive(Debug)]
struct Pending {
    batch: Batch,
    truncate: Option<u64>,
    bytes: u64,
    after: Durable,
}

/// Where the writer continues after recovery.
pub(crate) struct Resume {
    pub(crate) segments: Vec<SegmentInfo>,
    pub(crate) file: Box<dyn FsFile>,
    pub(crate) offset: u64,
    pub(crate) capacity: u64,
    pub(crate) log: LogState<TermRuns>,
}

/// The write-ahead log writer. Single-threaded and synchronous; see [`super::WalThread`] for
/// the threaded wrapper.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    config: WalConfig,
    fs: Box<dyn Fs>,
    segments: Vec<SegmentInfo>,
    file: Box<dyn FsFile>,
    offset: u64,
    capacity: u64,
    /// The log including appended, not yet durable batches.
    log: LogState<TermRuns>,
    /// Hard state and snapshot as of the last byte written, for the head of a new segment.
    written_hard_state: Option<HardState>,
    written_snapshot: Option<SnapshotMarker>,
    pending: Vec<Pending>,
    pending_bytes: u64,
    next_seq: u64,
    durable: Durable,
    poisoned: bool,
    buf: Vec<u8>,
    /// The next segment, preallocated ahead of need by `prepare_next_segment`.
    spare: Option<Prealloc>,
    /// Set after preparing a spare failed; the next roll creates the segment itself.
    spare_failed: bool,
    /// The current segment was rolled to and its head (hard state and snapshot records) is
    /// not written yet: the next write starts with it, even one retried after a full disk.
    head_pending: bool,
    /// Purged segments (renamed) still to be removed by `purge_step`, oldest first. Bounded by
    /// the segments on disk: a segment enters once, when a purge retires it. The steps do run
    /// under load: the runtime has one write in flight, so the WAL thread is idle between a
    /// completion and the next batch.
    purging: VecDeque<PathBuf>,
}

/// Why [`Wal::sync`] stopped short.
enum SyncFailure {
    /// The disk is full: `pending[unwritten..]` were not written, and nothing of them is half
    /// done in a way a repeated write would not redo.
    OutOfSpace { unwritten: usize, error: WalError },
    /// Anything else: the log's state on disk is unknown.
    Fatal(WalError),
}

impl SyncFailure {
    fn of(error: WalError, unwritten: usize) -> Self {
        if error.is_out_of_space() {
            SyncFailure::OutOfSpace { unwritten, error }
        } else {
            SyncFailure::Fatal(error)
        }
    }
}

/// Bytes a purged segment shrinks by per `purge_step`. Freeing blocks is not free: on a disk
/// mounted with `discard` one unlink of a 64 MiB segment took 20-44 ms, which, done on the
/// commit path, held up the batch that carried the snapshot marker.
const PURGE_STEP_BYTES: u64 = 4 << 20;

impl Wal {
    /// Opens (or creates) the WAL in `dir`, recovering what is on disk.
    ///
    /// A torn tail in the last segment is zeroed and synced before this returns; the report in
    /// [`Recovered`] says how many bytes went. Damage anywhere else is
    /// [`WalError::Corrupt`] naming the file and byte offset.
    pub fn open(
        dir: &Path,
        config: WalConfig,
        fs: Box<dyn Fs>,
    ) -> Result<(Wal, Recovered), WalError> {
        config.validate()?;
        let (resume, recovered) = recovery::recover(dir, &config, fs.as_ref())?;
        let log = resume.log;
        let durable = Durable::new(0, log.last(), log.hard_state(), log.snapshot());
        let wal = Wal {
            dir: dir.to_path_buf(),
            fs,
            segments: resume.segments,
            file: resume.file,
            offset: resume.offset,
            capacity: resume.capacity,
            written_hard_state: log.hard_state(),
            written_snapshot: log.snapshot(),
            log,
            pending: Vec::new(),
            pending_bytes: 0,
            next_seq: 1,
            durable,
            poisoned: false,
            buf: Vec::new(),
            spare: None,
            spare_failed: false,
            head_pending: false,
            purging: VecDeque::new(),
            config,
        };
        Ok((wal, recovered))
    }

    /// Validates and queues a batch ("appended"). Nothing is written until [`Wal::sync`].
    ///
    /// Returns the batch's sequence number; a [`Durable`] report with `seq()` at or above it
    /// covers the batch. Every call takes a sequence number, accepted or not, so they match
    /// [`super::WalThread`]'s submission numbers. On error the log does not change.
    pub fn append(&mut self, batch: Batch) -> Result<u64, WalError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        self.check_limits(&batch)?;
        let mut log = self.log.clone();
        let truncate = apply_batch(&mut log, &batch)?;
        let after = Durable::new(seq, log.last(), log.hard_state(), log.snapshot());
        let bytes = batch.encoded_bytes();
        self.log = log;
        self.pending_bytes += bytes;
        self.pending.push(Pending {
            batch,
            truncate,
            bytes,
            after,
        });
        Ok(seq)
    }

    /// Writes everything appended with one write and one `fdatasync` (one more of each when
    /// the batches need a new segment), then reports it durable.
    ///
    /// A full disk ([`WalError::is_out_of_space`]) while creating a segment or writing into
    /// one loses nothing: what was not written stays appended, and a later `sync` writes it
    /// again at the same place (a write is only ever repeated whole, with the same bytes; an
    /// `fdatasync` that failed is never retried). After any other error the WAL is poisoned:
    /// it accepts nothing more and reports nothing more as durable. [`Wal::durable`] still
    /// tells what did reach the disk.
    pub fn sync(&mut self) -> Result<Durable, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        let pending = mem::take(&mut self.pending);
        self.pending_bytes = 0;
        match self.write_pending(&pending) {
            Ok(()) => {}
            Err(SyncFailure::OutOfSpace { unwritten, error }) => {
                self.pending = pending.into_iter().skip(unwritten).collect();
                self.pending_bytes = self.pending.iter().map(|p| p.bytes).sum();
                return Err(error);
            }
            Err(SyncFailure::Fatal(error)) => {
                self.poisoned = true;
                return Err(error);
            }
        }
        if pending.iter().any(|p| p.batch.snapshot().is_some()) {
            if let Some(m) = self.durable.snapshot() {
                // Everything is durable; a failed purge only leaves old files behind, and the
                // next snapshot retries it.
                if let Err(e) = self.purge(m.index()) {
                    eprintln!("{e}");
                }
            }
        }
        Ok(self.durable)
    }

    /// `append` then `sync`.
    pub fn write(&mut self, batch: Batch) -> Result<Durable, WalError> {
        self.append(batch)?;
        self.sync()
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The latest durable position.
    pub fn durable(&self) -> Durable {
        self.durable
    }

    /// The last (index, term) appended, durable or not.
    pub fn last_appended(&self) -> (u64, u64) {
        self.log.last()
    }

    /// Encoded bytes appended and not yet synced.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// True after an I/O error.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The configuration.
    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// Sequence numbers of the live segment files, oldest first.
    pub fn segment_seqs(&self) -> Vec<u64> {
        self.segments.iter().map(|s| s.seq).collect()
    }

    fn check_limits(&self, batch: &Batch) -> Result<(), WalError> {
        if let Some(entry) = batch.entries().iter().find(|e| e.kind().is_none()) {
            return Err(WalError::EntryWithoutKind {
                index: entry.index(),
            });
        }
        let max = self.config.record_bytes_max();
        if let Some(bytes) = batch
            .entries()
            .iter()
            .map(record::entry_bytes)
            .find(|&b| b > max)
        {
            return Err(WalError::RecordTooLarge { bytes, max });
        }
        let bytes = batch.encoded_bytes();
        if bytes > self.config.batch_bytes_max() {
            return Err(WalError::BatchTooLarge {
                bytes,
                max: self.config.batch_bytes_max(),
            });
        }
        Ok(())
    }

    fn write_pending(&mut self, pending: &[Pending]) -> Result<(), SyncFailure> {
        let mut i = 0;
        while i < pending.len() {
            if self.offset + pending[i].bytes > self.capacity {
                self.roll().map_err(|error| SyncFailure::of(error, i))?;
            }
            let first = i;
            // What encoding changes, restored if the write must be repeated.
            let written_before = (self.written_hard_state, self.written_snapshot);
            let mut buf = mem::take(&mut self.buf);
            buf.clear();
            if self.head_pending {
                self.encode_head(&mut buf);
            }
            let write_start = self.write_start();
            while let Some(p) = pending.get(i) {
                if self.offset + (buf.len() as u64) + p.bytes > self.capacity {
                    break;
                }
                self.encode(&mut buf, write_start, p);
                i += 1;
            }
            let path = self.current_path();
            if let Err(e) = self.file.write_all_at(self.offset, &buf) {
                (self.written_hard_state, self.written_snapshot) = written_before;
                self.buf = buf;
                return Err(SyncFailure::of(
                    WalError::io("write segment", &path, e),
                    first,
                ));
            }
            self.offset += buf.len() as u64;
            self.head_pending = false;
            self.buf = buf;
            self.file
                .sync_data()
                .map_err(|e| SyncFailure::Fatal(WalError::io("fdatasync segment", &path, e)))?;
            self.durable = pending[i - 1].after;
        }
        Ok(())
    }

    fn write_start(&self) -> u32 {
        // segment_bytes fits in a u32 (checked by WalConfig::validate).
        u32::try_from(self.offset).expect("segment offsets fit in u32")
    }

    /// The state records that open a new segment, so purging older ones loses nothing.
    fn encode_head(&mut self, buf: &mut Vec<u8>) {
        let mut head = Vec::with_capacity(2);
        if let Some(hs) = self.written_hard_state {
            head.push(RecordRef::HardState(hs));
        }
        if let Some(m) = self.written_snapshot {
            head.push(RecordRef::Snapshot(m));
        }
        let start = self.write_start();
        Encoder::new(buf, start).batch(head.into_iter());
    }

    fn encode(&mut self, buf: &mut Vec<u8>, write_start: u32, p: &Pending) {
        let b = &p.batch;
        let mut records = Vec::with_capacity(b.entries().len() + 3);
        if let Some(m) = b.snapshot() {
            records.push(RecordRef::Snapshot(m));
            self.written_snapshot = Some(m);
        }
        if let Some(index) = p.truncate {
            records.push(RecordRef::Truncate(index));
        }
        records.extend(b.entries().iter().map(RecordRef::Entry));
        if let Some(hs) = b.hard_state() {
            records.push(RecordRef::HardState(hs));
            self.written_hard_state = Some(hs);
        }
        if let (Some(last), Some(info)) = (b.entries().last(), self.segments.last_mut()) {
            info.max_entry_index = info.max_entry_index.max(last.index());
        }
        Encoder::new(buf, write_start).batch(records.into_iter());
    }

    fn current_path(&self) -> PathBuf {
        let seq = self.segments.last().map_or(0, |s| s.seq);
        self.dir.join(segment::file_name(seq))
    }

    fn roll(&mut self) -> Result<(), WalError> {
        let seq = self.segments.last().map_or(1, |s| s.seq + 1);
        let fs = self.fs.as_ref();
        let builder = match self.spare.take() {
            Some(spare) if spare.seq() == seq => spare,
            _ => Prealloc::start(fs, &self.dir, seq, self.config.segment_bytes())?,
        };
        self.file = builder.finish(fs, &self.dir)?;
        self.spare_failed = false;
        self.head_pending = true;
        self.segments.push(SegmentInfo {
            seq,
            max_entry_index: 0,
        });
        self.offset = HEADER_BYTES as u64;
        self.capacity = self.config.segment_bytes();
        Ok(())
    }

    /// Does one step (the header, 1 MiB of zeros, or the final fdatasync) of preallocating
    /// the next segment, once the current one is half full, so that rolling to it later is
    /// only a rename. Returns true while steps remain. Call it when idle; [`super::WalThread`]
    /// does, between batches.
    ///
    /// An error here loses nothing: the spare is dropped (its `.tmp` file is removed on the
    /// next open) and the next roll creates the segment itself.
    pub fn prepare_next_segment(&mut self) -> Result<bool, WalError> {
        if self.poisoned || self.spare_failed {
            return Ok(false);
        }
        if self.spare.is_none() {
            if self.offset < self.capacity / 2 {
                return Ok(false);
            }
            let seq = self.segments.last().map_or(1, |s| s.seq + 1);
            let spare = Prealloc::start(
                self.fs.as_ref(),
                &self.dir,
                seq,
                self.config.segment_bytes(),
            );
            match spare {
                Ok(spare) => self.spare = Some(spare),
                Err(e) => {
                    self.spare_failed = true;
                    return Err(e);
                }
            }
        }
        let Some(spare) = self.spare.as_mut() else {
            return Ok(false);
        };
        match spare.step() {
            Ok(done) => Ok(!done),
            Err(e) => {
                if let Some(spare) = self.spare.take() {
                    spare.abandon(self.fs.as_ref());
                }
                self.spare_failed = true;
                Err(e)
            }
        }
    }

    /// Does one step (shrink by 4 MiB, or remove once empty) of removing the segments a
    /// snapshot made obsolete. Returns true while steps remain. Call it when idle;
    /// [`super::WalThread`] does, between batches. A failure drops that file from the queue:
    /// the next [`Wal::open`] removes what is left.
    pub fn purge_step(&mut self) -> Result<bool, WalError> {
        let Some(path) = self.purging.front() else {
            return Ok(false);
        };
        let step = shrink_or_remove(self.fs.as_ref(), path);
        if !matches!(step, Ok(Shrunk::Partly)) {
            self.purging.pop_front();
        }
        step.map(|_| !self.purging.is_empty())
    }

    /// Retires the oldest segments whose entries are all at or below `snapshot_index`: renamed
    /// (durably) out of recovery's sight here, removed later by `purge_step`. The last segment
    /// always stays; every segment opens with the hard state and snapshot marker.
    fn purge(&mut self, snapshot_index: u64) -> Result<(), WalError> {
        let mut removed = 0;
        let mut max_index = 0;
        for info in &self.segments[..self.segments.len().saturating_sub(1)] {
            max_index = max_index.max(info.max_entry_index);
            if max_index > snapshot_index {
                break;
            }
            let path = self.dir.join(segment::file_name(info.seq));
            let purged = self
                .dir
                .join(format!("{}{PURGED_SUFFIX}", segment::file_name(info.seq)));
            if let Err(e) = self.fs.rename(&path, &purged) {
                self.segments.drain(..removed);
                return Err(WalError::io("rename purged segment", path, e));
            }
            self.purging.push_back(purged);
            removed += 1;
        }
        self.segments.drain(..removed);
        if removed > 0 {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| WalError::io("fsync directory", &self.dir, e))?;
        }
        Ok(())
    }
}

/// What one `shrink_or_remove` did to a purged segment.
enum Shrunk {
    Partly,
    Removed,
}

/// Shrinks a purged segment by `PURGE_STEP_BYTES`, or removes it once that little is left.
fn shrink_or_remove(fs: &dyn Fs, path: &Path) -> Result<Shrunk, WalError> {
    let io = |op| move |e| WalError::io(op, path, e);
    let mut file = fs.open_write(path).map_err(io("open purged segment"))?;
    let len = file.len_bytes().map_err(io("stat purged segment"))?;
    if len > PURGE_STEP_BYTES {
        file.set_len(len - PURGE_STEP_BYTES)
            .map_err(io("shrink purged segment"))?;
        return Ok(Shrunk::Partly);
    }
    drop(file);
    fs.remove_file(path).map_err(io("remove purged segment"))?;
    Ok(Shrunk::Removed)
}

/// Applies a batch to `log` with the writer's checks. Returns the truncation index, if the
/// batch rewrites existing entries.
fn apply_batch(log: &mut LogState<TermRuns>, batch: &Batch) -> Result<Option<u64>, WalError> {
    if let Some(m) = batch.snapshot() {
        let current = log.snapshot().map_or((0, 0), |s| (s.index(), s.term()));
        log.apply_marker(m)
            .map_err(|_| WalError::SnapshotRegression {
                current,
                got: (m.index(), m.term()),
            })?;
    }
    let mut truncate = None;
    if let Some(first) = batch.entries().first() {
        for pair in batch.entries().windows(2) {
            if pair[1].index() != pair[0].index() + 1 {
                return Err(WalError::NonContiguous {
                    previous: pair[0].index(),
                    got: pair[1].index(),
                });
            }
        }
        let (lo, hi) = log.first_entry_range();
        let k = first.index();
        if k < lo {
            return Err(WalError::IndexCompacted {
                snapshot_index: lo - 1,
                got: k,
            });
        }
        if k > hi {
            return Err(WalError::IndexGap {
                next_max: hi,
                got: k,
            });
        }
        if k < hi {
            log.truncate(k).map_err(|_| WalError::IndexCompacted {
                snapshot_index: lo - 1,
                got: k,
            })?;
            truncate = Some(k);
        }
        for e in batch.entries() {
            log.push(e).map_err(|_| WalError::NonContiguous {
                previous: e.index().saturating_sub(1),
                got: e.index(),
            })?;
        }
    }
    if let Some(hs) = batch.hard_state() {
        log.set_hard_state(hs);
    }
    Ok(truncate)
}
