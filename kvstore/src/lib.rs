//! tally-kvstore: etcd's MVCC key-value semantics as a deterministic state machine, and etcd's
//! v3 wire types.
//!
//! The store does no I/O and reads no clock: time comes in as `now_ms` arguments, committed
//! entries as bytes, and everything it has to say comes back as return values or through
//! [`KvStore::poll_watch_event`].
//!
//! # Applying entries
//!
//! Each committed Raft entry carries an encoded [`proto::InternalRequest`]. The runtime calls
//! [`KvStore::apply`] with the entry's index and data, in log order, on every member; the same
//! entries give the same state, responses and [`KvStore::hash`] everywhere. Reads that need no
//! replication (serializable ranges, or linearizable ones once the read index is applied) call
//! [`KvStore::range`] directly.
//!
//! # Applying an entry in steps
//!
//! [`KvStore::apply_begin`] applies an entry visiting at most a given number of keys; an entry
//! that needs more (a DeleteRange over many keys, alone or inside a txn) returns
//! [`Step::Pending`], and the runtime calls [`KvStore::apply_continue`] in later loop turns
//! until it returns [`Step::Done`]. [`KvStore::apply`] is `apply_begin` without a limit.
//!
//! 1. Until the last step, reads, snapshots and hashes see the state before the entry, and no
//!    watch event of it comes out.
//! 2. While an entry is pending, do not apply another, write directly, call
//!    [`KvStore::compact_step`] or [`KvStore::sync_watchers_step`], or begin a snapshot copy:
//!    the store asserts it. [`KvStore::snapshot_copy_step`] of a copy begun earlier may go on.
//! 3. [`KvStore::restore`] drops the pending entry.
//!
//! # Between applies
//!
//! The runtime's loop, after applying a batch of entries:
//!
//! 1. Drain [`KvStore::poll_watch_event`] until it returns `None`, sending each response to the
//!    watcher's stream.
//! 2. If a compaction is in progress, call [`KvStore::compact_step`] with a small key budget
//!    (for example 1,000 keys); release the responses of `physical` compactions once
//!    [`KvStore::compaction_done`] is true for their revision
//!    ([`ApplyOutcome::compaction_wait_rev`]).
//! 3. If [`KvStore::has_unsynced_watchers`], call [`KvStore::sync_watchers_step`] with a small
//!    record budget, then drain again (step 1).
//! 4. While a snapshot copy is being taken ([`KvStore::begin_snapshot_copy`]), call
//!    [`KvStore::snapshot_copy_step`] with a key budget until it is done; physical compaction
//!    waits for it.
//! 5. On the leader only: [`KvStore::expired_leases`] and propose a LeaseRevoke for each (a
//!    lease stays listed until its revoke is applied; a second revoke of it fails harmlessly
//!    with [`KvError::LeaseNotFound`]).
//!
//! Before applying, the runtime tells the store the time with [`KvStore::set_now_ms`], so that
//! a lease granted on the leader starts its clock then.
//!
//! # Watch drain order
//!
//! [`KvStore::poll_watch_event`] returns, in this order:
//!
//! 1. The remaining fragments of a batch that was split, right after its first fragment.
//! 2. Control responses (`created`, `canceled`, progress notifications), first in, first out.
//! 3. Then event batches: the watcher with the lowest [`WatchId`] that has queued events gets all
//!    of them in one response (split into fragments if it asked for fragmenting). A watcher
//!    whose revision was compacted gets its queued events first, then a response with
//!    `compact_revision` set and `canceled`, and is removed.
//!
//! Each watcher sees its events in revision order, each exactly once, with no gaps; an event
//! batch's header revision is the revision up to which the watcher has now seen every event
//! (a `created` response carries the current revision, as etcd's does).
//!
//! # History in and out
//!
//! [`KvStore::history`] lists every record that compaction keeps, in revision order, as etcd's
//! backend stores them; [`HistoryImport`] builds a store from such records with their own
//! revisions (seeding a member from etcd's backend without rewriting a revision).
//!
//! # Leases
//!
//! The lease table is replicated; lease clocks are not. Only the primary (the leader, after
//! [`KvStore::promote`]) tracks expiry, answers [`KvStore::lease_keep_alive`] and reports
//! [`KvStore::expired_leases`]; followers never expire anything, as in etcd.

#![warn(missing_docs)]

mod apply;
mod auth;
mod config;
mod error;
mod history;
mod lease;
mod mvcc;
mod outcome;
pub mod proto;
mod quota;
mod range_slices;
mod snapshot;
mod snapshot_copy;
mod store;
mod watch;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use apply::Step;
pub use auth::{AuthStore, ROOT_ROLE, ROOT_USER};
pub use config::KvConfig;
pub use error::{KvError, SnapshotError};
pub use history::{HistoryImport, HistoryRecord, ImportError, LeaseRecord};
pub use lease::LEASE_TTL_SECS_MAX;
pub use mvcc::revision::{Revision, prefix_range_end};
pub use outcome::{ApplyOutcome, ApplyResponse};
pub use quota::write_cost_bytes;
pub use range_slices::{RangeSlices, RangeTotals};
pub use snapshot_copy::{CopyStep, SnapshotCopy};
pub use store::{KvStore, StoreStatus};
pub use watch::WatchId;

#[cfg(test)]
mod tests;
