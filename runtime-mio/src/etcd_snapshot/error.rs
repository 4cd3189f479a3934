//! Why an etcd snapshot file could not be read or written.

use std::fmt;

use tally_kvstore::ImportError;

use super::bbolt::BoltError;

/// What is wrong with an etcd snapshot file, or what failed writing one.
#[derive(Debug)]
#[non_exhaustive]
pub enum EtcdFileError {
    /// The file's size fits neither a bbolt database (whole pages) nor one followed by
    /// `etcdctl snapshot save`'s 32-byte SHA-256 trailer.
    Size {
        /// The file's size.
        bytes: u64,
    },
    /// The SHA-256 trailer does not match the data before it.
    Sha256Mismatch,
    /// The bbolt structure is damaged, or the file is not bbolt at all.
    Bbolt(BoltError),
    /// A bbolt database, but not etcd's backend: what is missing.
    NotEtcd(&'static str),
    /// A key or value in one of etcd's buckets that etcd never writes.
    BadEntry {
        /// The bucket.
        bucket: &'static str,
        /// The key, as text when printable, else in hex.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// etcd's authentication is enabled in the file; tally has none, so its data would lose
    /// the protection etcd gave it.
    AuthEnabled,
    /// The history does not make a store.
    History(ImportError),
    /// Reading or writing a file failed.
    Io(std::io::Error),
}

impl fmt::Display for EtcdFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtcdFileError::Size { bytes } => write!(
                f,
                "its size ({bytes} bytes) is neither whole bbolt pages nor pages followed by \
                 etcd's 32-byte SHA-256 trailer: the file is truncated or not an etcd snapshot"
            ),
            EtcdFileError::Sha256Mismatch => {
                f.write_str("its SHA-256 trailer does not match its data: the file is damaged")
            }
            EtcdFileError::Bbolt(e) => write!(f, "{e}"),
            EtcdFileError::NotEtcd(why) => {
                write!(f, "a bbolt database but not etcd's backend: {why}")
            }
            EtcdFileError::BadEntry { bucket, key, why } => {
                write!(f, "etcd bucket `{bucket}`, key {key}: {why}")
            }
            EtcdFileError::AuthEnabled => f.write_str(
                "etcd's authentication is enabled in it, and tally does not implement auth: \
                 its keys would be open to every client. Run `etcdctl auth disable` on the \
                 etcd cluster and save the snapshot again",
            ),
            EtcdFileError::History(e) => write!(f, "etcd's history: {e}"),
            EtcdFileError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EtcdFileError {}

impl From<BoltError> for EtcdFileError {
    fn from(e: BoltError) -> Self {
        EtcdFileError::Bbolt(e)
    }
}

impl From<ImportError> for EtcdFileError {
    fn from(e: ImportError) -> Self {
        EtcdFileError::History(e)
    }
}

impl From<std::io::Error> for EtcdFileError {
    fn from(e: std::io::Error) -> Self {
        EtcdFileError::Io(e)
    }
}
