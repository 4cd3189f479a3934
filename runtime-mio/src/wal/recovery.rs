//! Opening a WAL directory: replay, torn-tail truncation, corruption reports.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::error::WalError;
use super::fs::Fs;
use super::log_state::Replay;
use super::prealloc::create_segment;
use super::record::Record;
use super::segment::{self, HEADER_BYTES, PURGED_SUFFIX, SEGMENT_SUFFIX, TMP_SUFFIX};
use super::types::{Entry, HardState, SnapshotMarker, WalConfig};
use super::writer::{Resume, SegmentInfo};

/// What recovery found on disk.
#[derive(Debug)]
pub struct Recovered {
    hard_state: Option<HardState>,
    snapshot: Option<SnapshotMarker>,
    entries: Vec<Entry>,
    report: RecoveryReport,
}

impl Recovered {
    /// The last durable hard state.
    pub fn hard_state(&self) -> Option<HardState> {
        self.hard_state
    }
    /// The last durable snapshot marker; load the matching snapshot file.
    pub fn snapshot(&self) -> Option<SnapshotMarker> {
        self.snapshot
    }
    /// The entries after the snapshot, in order, without gaps.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    /// What recovery did to the files.
    pub fn report(&self) -> &RecoveryReport {
        &self.report
    }
    /// Splits into (hard state, snapshot marker, entries, report).
    pub fn into_parts(
        self,
    ) -> (
        Option<HardState>,
        Option<SnapshotMarker>,
        Vec<Entry>,
        RecoveryReport,
    ) {
        (self.hard_state, self.snapshot, self.entries, self.report)
    }
}

/// What recovery changed on disk; the caller logs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    segments: usize,
    truncated_bytes: u64,
    truncated_at: Option<(PathBuf, u64)>,
    removed_tmp_files: usize,
}

impl RecoveryReport {
    /// Segment files read.
    pub fn segments(&self) -> usize {
        self.segments
    }
    /// Bytes of torn tail zeroed in the last segment.
    pub fn truncated_bytes(&self) -> u64 {
        self.truncated_bytes
    }
    /// The file and offset the torn tail started at, if there was one.
    pub fn truncated_at(&self) -> Option<(&Path, u64)> {
        self.truncated_at.as_ref().map(|(p, o)| (p.as_path(), *o))
    }
    /// Leftover files that were removed: `.tmp` from an interrupted segment creation, and
    /// `.purged` segments a snapshot had made obsolete.
    pub fn removed_tmp_files(&self) -> usize {
        self.removed_tmp_files
    }
}

fn corrupt(path: &Path, (offset, reason): (u64, &'static str)) -> WalError {
    WalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    }
}

/// Lists segment sequence numbers, removing leftover temporary files.
fn list_segments(
    dir: &Path,
    fs: &dyn Fs,
    report: &mut RecoveryReport,
) -> Result<Vec<u64>, WalError> {
    fs.create_dir_all(dir)
        .map_err(|e| WalError::io("create directory", dir, e))?;
    let names = fs
        .list_dir(dir)
        .map_err(|e| WalError::io("list directory", dir, e))?;
    let mut seqs = Vec::new();
    for name in &names {
        if name.ends_with(&format!("{SEGMENT_SUFFIX}{TMP_SUFFIX}"))
            || name.ends_with(&format!("{SEGMENT_SUFFIX}{PURGED_SUFFIX}"))
        {
            let path = dir.join(name);
            fs.remove_file(&path)
                .map_err(|e| WalError::io("remove temporary segment", path, e))?;
            report.removed_tmp_files += 1;
        } else if let Some(seq) = segment::parse_file_name(name) {
            seqs.push(seq);
        }
    }
    if report.removed_tmp_files > 0 {
        fs.sync_dir(dir)
            .map_err(|e| WalError::io("fsync directory", dir, e))?;
    }
    seqs.sort_unstable();
    for pair in seqs.windows(2) {
        if pair[1] != pair[0] + 1 {
            let path = dir.join(segment::file_name(pair[1]));
            return Err(corrupt(
                &path,
                (0, "segment sequence has a gap before this file"),
            ));
        }
    }
    Ok(seqs)
}

/// Reads and replays every segment, truncates a torn tail, and says where writing resumes.
pub(crate) fn recover(
    dir: &Path,
    config: &WalConfig,
    fs: &dyn Fs,
) -> Result<(Resume, Recovered), WalError> {
    let mut report = RecoveryReport::default();
    let seqs = list_segments(dir, fs, &mut report)?;
    let Some(&last_seq) = seqs.last() else {
        let file = create_segment(fs, dir, 1, config.segment_bytes())?;
        let replay = Replay::new(false);
        let resume = Resume {
            segments: vec![SegmentInfo {
                seq: 1,
                max_entry_index: 0,
            }],
            file,
            offset: HEADER_BYTES as u64,
            capacity: config.segment_bytes(),
            log: replay.writer_state(),
        };
        let recovered = Recovered {
            hard_state: None,
            snapshot: None,
            entries: Vec::new(),
            report,
        };
        return Ok((resume, recovered));
    };
    let mut replay = Replay::new(seqs[0] > 1);
    let mut segments = Vec::with_capacity(seqs.len());
    let mut tail = (0u64, 0u64, 0u64);
    for &seq in &seqs {
        let path = dir.join(segment::file_name(seq));
        let buf = Bytes::from(
            fs.read_file(&path)
                .map_err(|e| WalError::io("read segment", &path, e))?,
        );
        if buf.len() as u64 > u64::from(u32::MAX) {
            // Record offsets are u32; no segment this code wrote is that large.
            return Err(corrupt(&path, (0, "segment larger than 4 GiB")));
        }
        let last = seq == last_seq;
        let read = segment::read_segment(&buf, Some(seq), last).map_err(|e| corrupt(&path, e))?;
        let mut max_entry_index = 0;
        for batch in read.batches() {
            replay.apply_batch(batch).map_err(|e| corrupt(&path, e))?;
            for (_, record) in batch {
                if let Record::Entry(e) = record {
                    max_entry_index = max_entry_index.max(e.index());
                }
            }
        }
        segments.push(SegmentInfo {
            seq,
            max_entry_index,
        });
        report.segments += 1;
        if last {
            tail = (read.data_end(), read.dirty_end(), buf.len() as u64);
        }
    }
    let last_path = dir.join(segment::file_name(last_seq));
    let (data_end, dirty_end, capacity) = tail;
    let mut file = fs
        .open_write(&last_path)
        .map_err(|e| WalError::io("open segment", &last_path, e))?;
    if dirty_end > data_end {
        // Zero the torn bytes on disk, so nothing written later can make them valid again.
        let zeros = vec![0u8; usize::try_from(dirty_end - data_end).unwrap_or(usize::MAX)];
        file.write_all_at(data_end, &zeros)
            .map_err(|e| WalError::io("truncate torn tail", &last_path, e))?;
        file.sync_data()
            .map_err(|e| WalError::io("fdatasync segment", &last_path, e))?;
        report.truncated_bytes = dirty_end - data_end;
        report.truncated_at = Some((last_path.clone(), data_end));
        eprintln!(
            "wal: truncated a torn tail of {} bytes at offset {data_end} in {}",
            dirty_end - data_end,
            last_path.display()
        );
    }
    let log = replay.writer_state();
    let (hard_state, snapshot, entries) = replay
        .finish()
        .map_err(|why| corrupt(&dir.join(segment::file_name(seqs[0])), (0, why)))?;
    let resume = Resume {
        segments,
        file,
        offset: data_end,
        capacity,
        log,
    };
    let recovered = Recovered {
        hard_state,
        snapshot,
        entries,
        report,
    };
    Ok((resume, recovered))
}
