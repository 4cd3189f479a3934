//! Why `tallyd` could not start or had to stop.

use std::fmt;

use super::storage;

/// Why `tallyd` could not start or had to stop.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    Storage(storage::StorageError),
    Io {
        what: String,
        source: std::io::Error,
    },
    Tls(String),
    /// The data directory belongs to another member or cluster, or is unreadable.
    DataDir(String),
    /// The snapshot file to restore from is damaged or not a tally snapshot.
    BadSnapshotFile(String),
    /// The WAL failed: nothing more can be made durable.
    WalFailed(String),
    /// The flags ask for what this machine cannot give.
    Settings(String),
    /// This member was removed from its cluster (etcd stops such a member too).
    Removed,
    /// Its peers refused this member for as long as `join_watchdog` allows: why.
    CannotJoin(String),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Storage(e) => write!(f, "{e}"),
            ServerError::Io { what, source } => write!(f, "{what}: {source}"),
            ServerError::Tls(e) => write!(f, "TLS: {e}"),
            ServerError::DataDir(e) => write!(f, "data directory: {e}"),
            ServerError::BadSnapshotFile(e) => write!(f, "snapshot file: {e}"),
            ServerError::WalFailed(e) => write!(f, "write-ahead log failed: {e}"),
            ServerError::Settings(e) => write!(f, "{e}"),
            ServerError::Removed => {
                f.write_str("the member has been permanently removed from the cluster")
            }
            ServerError::CannotJoin(reason) => write!(
                f,
                "the member cannot join its cluster: its peers refuse it ({reason}); check \
                 --initial-cluster, --initial-cluster-token and the peer certificates"
            ),
        }
    }
}

impl std::error::Error for ServerError {}

impl From<storage::StorageError> for ServerError {
    fn from(e: storage::StorageError) -> Self {
        ServerError::Storage(e)
    }
}

pub(super) fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}
