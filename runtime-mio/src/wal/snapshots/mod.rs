//! Snapshot files: the state machine's bytes plus Raft metadata, written atomically and
//! checksummed.
//!
//! Layout (little-endian): magic `TALLYSNP`, version `u32`, reserved `u32`, index `u64`,
//! term `u64`, voter count `u32` and voter ids `u64`, learner count `u32` and learner ids `u64`,
//! data length `u64`, data, CRC32 of everything before it `u32`.
//!
//! A snapshot as large as the store is streamed to its file
//! ([`SnapshotStore::save_streamed`]): its length goes in the head, so the head is written last,
//! and the checksum of the head is combined with the body's, computed as it streamed.
//!
//! Order of operations for the runtime: [`SnapshotStore::save`], then append a batch with the
//! matching [`super::SnapshotMarker`] to the WAL; once that is durable (the WAL then purges its
//! old segments), call [`SnapshotStore::retain`] with the marker's index.
//!
//! The store (`store`) keeps the directory. Beside it: its limits (`config`), what a snapshot
//! covers (`meta`), the file's name and head (`format`), a body streamed into a file (`body`), a
//! file received from a peer a part at a time (`incoming`) and a file read back in parts
//! (`reader`).

mod body;
mod config;
mod format;
mod incoming;
mod meta;
mod reader;
mod store;

pub use body::BodyWriter;
pub use config::SnapshotConfig;
pub use incoming::IncomingSnapshot;
pub use meta::{Snapshot, SnapshotMeta};
pub use reader::SnapshotReader;
pub use store::SnapshotStore;
