//! bbolt's file format, as etcd 3.x keeps its backend in it: read ([`Db`]) and written
//! ([`DbWriter`]).
//!
//! The facts, from bbolt's `page.go`, `db.go`, `bucket.go`, `node.go`, `freelist.go` and
//! `tx.go` (v1.3.6, which etcd 3.4 uses; later versions read and write the same layout):
//!
//! - The file is a sequence of pages of one size (the OS page size when the file was made,
//!   4096 bytes on x86-64), named by their number (`pgid`). Every integer in a page is in the
//!   machine's byte order, little-endian on every platform etcd ships for but s390x; keys and
//!   values are bytes as given.
//! - Every page starts with a 16-byte header: `id u64` (its own number), `flags u16`
//!   (0x01 branch, 0x02 leaf, 0x04 meta, 0x10 freelist), `count u16` (elements) and
//!   `overflow u32`: a page with overflow `n` spans `n + 1` consecutive pages, for elements
//!   larger than a page.
//! - Pages 0 and 1 are meta pages: after the header, `magic u32` (0xED0CDAED), `version u32`
//!   (2), `page_size u32`, `flags u32`, the root bucket (`root pgid u64`, `sequence u64`),
//!   `freelist pgid u64` (all ones when the freelist is not stored), `pgid u64` (the high water
//!   mark: pages in use), `txid u64`, and `checksum u64`, FNV-1a 64 of the 56 meta bytes before
//!   it. The valid meta with the higher `txid` is the current one; the other is the previous
//!   commit's, kept for a crash in the middle of a write.
//! - A freelist page lists free page numbers (`u64` each) after its header; a count of 0xFFFF
//!   means the real count is the first `u64`.
//! - A bucket is a B+tree of branch and leaf pages. A leaf page has `count` elements of 16
//!   bytes (`flags u32`, `pos u32`, `ksize u32`, `vsize u32`), then the keys and values;
//!   `pos` counts from the element itself to its key, and the value follows the key. Element
//!   flag 0x01 marks a nested bucket, whose value is a bucket header (`root pgid u64`,
//!   `sequence u64`); root 0 means the bucket is inline, its whole (leaf) page stored in the
//!   value right after the header. A branch page has elements of 16 bytes (`pos u32`,
//!   `ksize u32`, `pgid u64`): each child's first key and its page. Keys in a bucket are
//!   unique, non-empty and sorted as bytes.
//! - The meta's root bucket is the bucket of buckets: its keys name the top-level buckets
//!   (etcd's `key`, `meta`, `lease`, ...).
//! - `Tx.WriteTo`, which etcd's snapshot uses, copies the pages below the high water mark,
//!   both meta pages made from the current one; `etcdctl snapshot status` then checks, as
//!   `Tx.Check` does, that every page below the high water mark is a meta page, the freelist,
//!   free, or reached exactly once from the root.

mod page;
mod read;
mod write;

pub(crate) use read::{Bucket, Db};
pub(crate) use write::{BucketWriter, DbWriter};

use std::fmt;

/// bbolt's magic number, in every meta page.
const MAGIC: u32 = 0xED0C_DAED;
/// The only data file version bbolt has.
const VERSION: u32 = 2;
/// `freelist` in a meta page of a database that does not store its freelist.
const NO_FREELIST: u64 = u64::MAX;
/// Every page's header.
const PAGE_HEADER_BYTES: usize = 16;
/// One element of a leaf or a branch page.
const ELEMENT_BYTES: usize = 16;
/// The meta fields, checksum included.
const META_BYTES: usize = 64;
/// The checksum covers the meta bytes before it.
const META_CHECKSUMMED_BYTES: usize = 56;
/// A nested bucket's value starts with its header: root page and sequence.
const BUCKET_HEADER_BYTES: usize = 16;

const FLAG_BRANCH: u16 = 0x01;
const FLAG_LEAF: u16 = 0x02;
const FLAG_META: u16 = 0x04;
const FLAG_FREELIST: u16 = 0x10;
/// In a leaf element's flags: the value is a nested bucket.
const ELEMENT_BUCKET: u32 = 0x01;

/// The page size etcd's files have on x86-64 (the OS page size), and the one written.
pub(crate) const PAGE_BYTES_DEFAULT: usize = 4096;
/// Page sizes read: powers of two in this range (bbolt takes the OS page size).
const PAGE_BYTES_MIN: usize = 512;
const PAGE_BYTES_MAX: usize = 1 << 16;

/// FNV-1a, 64 bits: the meta page checksum.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(PRIME)
    })
}

/// Whether `data` looks like a bbolt file: a meta page with bbolt's magic at page 0, or at
/// page 1 for the default page size (a file whose first meta page was torn).
pub(crate) fn looks_like_bbolt(data: &[u8]) -> bool {
    let magic_at = |page_at: usize| {
        data.get(page_at + PAGE_HEADER_BYTES..page_at + PAGE_HEADER_BYTES + 4)
            .is_some_and(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) == MAGIC)
    };
    magic_at(0) || magic_at(PAGE_BYTES_DEFAULT)
}

/// What is wrong with a file that should be a bbolt database. Page numbers and byte counts
/// are the file's own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BoltError {
    /// Neither meta page has bbolt's magic number: not a bbolt database.
    NotBbolt,
    /// A meta page of another data file version.
    UnsupportedVersion(u32),
    /// Both meta pages fail their checksums or their fields are impossible.
    BadMeta(&'static str),
    /// The meta pages name more pages than the file holds.
    Truncated {
        /// Pages the database says it uses.
        pages: u64,
        /// Its page size.
        page_bytes: usize,
        /// The file's size.
        file_bytes: usize,
    },
    /// A page of a bucket's tree is damaged.
    BadPage {
        /// The page's number.
        page: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Two references lead to one page: a damaged tree, or a cycle.
    PageReachedTwice(u64),
    /// Keys of one bucket are not in ascending order, or repeat.
    KeysOutOfOrder {
        /// The page where the order breaks (0 inside an inline bucket).
        page: u64,
    },
    /// A nested bucket's header or inline page is damaged.
    BadBucket(&'static str),
}

impl fmt::Display for BoltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoltError::NotBbolt => f.write_str("not a bbolt database (no meta page has its magic)"),
            BoltError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "bbolt data file version {v} (this reads version {VERSION})"
                )
            }
            BoltError::BadMeta(why) => write!(f, "both bbolt meta pages are damaged: {why}"),
            BoltError::Truncated {
                pages,
                page_bytes,
                file_bytes,
            } => write!(
                f,
                "truncated: the database uses {pages} pages of {page_bytes} bytes, the file has {file_bytes} bytes"
            ),
            BoltError::BadPage { page, why } => write!(f, "bbolt page {page}: {why}"),
            BoltError::PageReachedTwice(page) => {
                write!(f, "bbolt page {page} is referenced twice (damaged tree)")
            }
            BoltError::KeysOutOfOrder { page } => {
                write!(f, "bbolt page {page}: keys out of order or repeated")
            }
            BoltError::BadBucket(why) => write!(f, "bbolt bucket: {why}"),
        }
    }
}

impl std::error::Error for BoltError {}

#[cfg(test)]
mod tests;
