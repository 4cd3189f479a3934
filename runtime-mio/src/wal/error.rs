use std::fmt;
use std::io;
use std::path::PathBuf;

/// Errors from the write-ahead log.
#[derive(Debug)]
#[non_exhaustive]
pub enum WalError {
    /// A file-system call failed. Nothing written after the last durable report is durable.
    Io {
        /// What the WAL was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Data on disk is damaged somewhere other than a torn tail. Startup must stop.
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset in that file where the damage was found.
        offset: u64,
        /// What was wrong.
        reason: &'static str,
    },
    /// One encoded record exceeds `record_bytes_max`.
    RecordTooLarge {
        /// Encoded size of the record.
        bytes: u64,
        /// The configured limit.
        max: u64,
    },
    /// One encoded batch exceeds `batch_bytes_max`.
    BatchTooLarge {
        /// Encoded size of the batch.
        bytes: u64,
        /// The configured limit.
        max: u64,
    },
    /// The configuration is inconsistent.
    InvalidConfig(&'static str),
    /// Entries in a batch do not have consecutive indexes.
    NonContiguous {
        /// Index of the entry before.
        previous: u64,
        /// Index found after it.
        got: u64,
    },
    /// A batch starts past the end of the log.
    IndexGap {
        /// The largest index that could come next.
        next_max: u64,
        /// The index the batch starts at.
        got: u64,
    },
    /// A batch rewrites an index that is covered by the snapshot.
    IndexCompacted {
        /// The snapshot index.
        snapshot_index: u64,
        /// The index the batch starts at.
        got: u64,
    },
    /// A snapshot marker goes back, or changes the term at the current snapshot index.
    SnapshotRegression {
        /// The current snapshot (index, term).
        current: (u64, u64),
        /// The marker that was given.
        got: (u64, u64),
    },
    /// An entry without its kind (one read back from the first format) was given to write.
    EntryWithoutKind {
        /// Its index.
        index: u64,
    },
    /// An earlier I/O error left the log in an unknown state; it accepts nothing more.
    Poisoned,
    /// The WAL thread has stopped.
    Closed,
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { op, path, source } => {
                write!(f, "wal: {op} {}: {source}", path.display())
            }
            Self::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "wal: corrupt segment {} at byte offset {offset}: {reason}",
                path.display()
            ),
            Self::RecordTooLarge { bytes, max } => {
                write!(
                    f,
                    "wal: record of {bytes} bytes exceeds record_bytes_max {max}"
                )
            }
            Self::BatchTooLarge { bytes, max } => {
                write!(
                    f,
                    "wal: batch of {bytes} bytes exceeds batch_bytes_max {max}"
                )
            }
            Self::InvalidConfig(why) => write!(f, "wal: invalid config: {why}"),
            Self::NonContiguous { previous, got } => {
                write!(f, "wal: entry {got} does not follow entry {previous}")
            }
            Self::IndexGap { next_max, got } => {
                write!(
                    f,
                    "wal: batch starts at index {got}, past the next index {next_max}"
                )
            }
            Self::IndexCompacted {
                snapshot_index,
                got,
            } => write!(
                f,
                "wal: batch rewrites index {got}, covered by the snapshot at {snapshot_index}"
            ),
            Self::SnapshotRegression { current, got } => write!(
                f,
                "wal: snapshot marker {got:?} goes back from the current {current:?}"
            ),
            Self::EntryWithoutKind { index } => {
                write!(f, "wal: entry {index} has no kind to record")
            }
            Self::Poisoned => f.write_str("wal: poisoned by an earlier I/O error"),
            Self::Closed => f.write_str("wal: the WAL thread has stopped"),
        }
    }
}

impl std::error::Error for WalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether the file system is out of space (or the user's quota is): the one I/O error
    /// that space made later cures.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            Self::Io { source, .. } => is_out_of_space(source),
            _ => false,
        }
    }
}

/// `ENOSPC` or `EDQUOT`.
pub(crate) fn is_out_of_space(error: &io::Error) -> bool {
    /// Linux's errno values.
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(error.raw_os_error(), Some(ENOSPC | EDQUOT))
}

/// Errors from the snapshot store.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A file-system call failed.
    Io {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A snapshot file failed its checks.
    Corrupt {
        /// The snapshot file.
        path: PathBuf,
        /// Byte offset in that file where the damage was found.
        offset: u64,
        /// What was wrong.
        reason: &'static str,
    },
    /// The snapshot exceeds `snapshot_bytes_max`.
    TooLarge {
        /// Encoded size.
        bytes: u64,
        /// The configured limit.
        max: u64,
    },
    /// No snapshot file has the requested (index, term).
    NotFound {
        /// The requested index.
        index: u64,
        /// The requested term.
        term: u64,
    },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { op, path, source } => {
                write!(f, "snapshot: {op} {}: {source}", path.display())
            }
            Self::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "snapshot: corrupt file {} at byte offset {offset}: {reason}",
                path.display()
            ),
            Self::TooLarge { bytes, max } => {
                write!(
                    f,
                    "snapshot: {bytes} bytes exceeds snapshot_bytes_max {max}"
                )
            }
            Self::NotFound { index, term } => {
                write!(f, "snapshot: no file for index {index} term {term}")
            }
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl SnapshotError {
    /// Whether the file system is out of space (see [`WalError::is_out_of_space`]).
    pub fn is_out_of_space(&self) -> bool {
        match self {
            Self::Io { source, .. } => is_out_of_space(source),
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
