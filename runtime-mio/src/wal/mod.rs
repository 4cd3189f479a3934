//! The write-ahead log: segmented, checksummed, group-committed, crash-safe.
//!
//! # On-disk format
//!
//! A WAL directory holds segment files named `{seq:016x}.wal`, numbered without gaps. Every
//! segment is preallocated (zero-filled) to [`WalConfig::segment_bytes`] while it is still a
//! `.tmp` file, so a renamed segment always has its full length and a valid header.
//!
//! * Segment header, 32 bytes: magic `TALLYWAL`, format version `u32`, header length `u32`,
//!   segment sequence `u64`, reserved `u32`, CRC32 of the first 28 bytes `u32`.
//! * Records follow back to back: body length `u32`, CRC32 of (length ++ body) `u32`, then the
//!   body: offset of the write (group commit) that carried the record `u32`, kind `u8`, flags
//!   `u8` (bit 0: last record of a logical batch), and the payload. Kinds: 5 an entry (index
//!   `u64`, term `u64`, entry kind `u8`: 0 normal, 1 membership change, then its data); 2 the
//!   hard state (term, vote, commit, `u64` each); 3 a snapshot marker (index, term); 4 a
//!   truncation (the first index dropped). Kind 1, an entry without its kind byte, is the
//!   first format's: still read (its reader tells the kind from the payload), never written.
//! * The rest of the segment is zeros.
//!
//! All integers are little-endian.
//!
//! # Durability rules
//!
//! * One [`Batch`] is atomic: replay applies a batch only when its last record is intact.
//! * [`Wal::append`] only queues a batch ("appended"). [`Wal::sync`] writes everything queued with
//!   one `write` and one `fdatasync` per segment touched and only then reports it ("durable").
//! * A write never starts before the previous write's `fdatasync` returned, and a group never
//!   straddles two segments. So only the last write in the last segment can be torn, and any
//!   intact record whose write started *after* a damaged record proves that the damaged record
//!   was durable: that is corruption, not a torn tail.
//! * A torn tail is zeroed on disk (and synced) before anything new is written, so truncated
//!   records can never come back as "ghost" entries.
//! * After any I/O error the writer is poisoned: nothing more is written or acknowledged.
//!
//! # Known limit
//!
//! Media corruption that hits the *final* write of the last segment looks exactly like a torn
//! write of that batch and is truncated (etcd behaves the same way). Corruption anywhere else is
//! reported as [`WalError::Corrupt`] with the file and byte offset.

mod error;
mod fs;
mod log_state;
mod prealloc;
mod record;
mod recovery;
mod segment;
mod snapshots;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod thread;
mod types;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{SnapshotError, WalError};
pub use fs::{Fs, FsFile, FsReadFile, StdFs};
pub use recovery::{Recovered, RecoveryReport};
pub use snapshots::{
    BodyWriter, IncomingSnapshot, Snapshot, SnapshotConfig, SnapshotMeta, SnapshotReader,
    SnapshotStore,
};
pub use thread::{Completion, OUT_OF_SPACE_RETRY, SubmitError, WalThread};
pub use types::{Batch, Durable, Entry, EntryKind, HardState, SnapshotMarker, WalConfig};
pub use writer::Wal;

/// Feeds arbitrary bytes to the segment reader, as a closed and as a last segment.
///
/// This is the body of the `wal_segment_reader` fuzz target. It must never panic.
pub fn fuzz_segment_reader(data: &[u8]) {
    let buf = bytes::Bytes::copy_from_slice(data);
    let expected = segment::peek_seq(&buf);
    for last in [false, true] {
        if let Ok(read) = segment::read_segment(&buf, expected, last) {
            // Replaying what the reader accepted must not panic either.
            let mut state = log_state::Replay::new(true);
            for batch in read.batches() {
                if state.apply_batch(batch).is_err() {
                    break;
                }
            }
            let _ = state.finish();
        }
    }
    // Also scan from every plausible header end, as a reader of a damaged file would.
    let _ = segment::scan_from(&buf, segment::HEADER_BYTES.min(buf.len()));
}
