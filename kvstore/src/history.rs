//! A store's history record by record, each with its own revision.
//!
//! etcd's backend keeps its keys this way: its `key` bucket maps every revision that compaction
//! kept to the key's version written then (or to a tombstone). Listing a store as such records
//! ([`KvStore::history`], with [`KvStore::lease_records`] and [`KvStore::raised_alarms`]) is what
//! writing an etcd backend needs; [`HistoryImport`] takes the same records back, in revision
//! order, and builds the store as etcd's own restore builds its index from its backend, so every
//! key keeps its create and mod revisions and its version.

use core::fmt;

use bytes::Bytes;

use crate::config::KvConfig;
use crate::lease::LEASE_TTL_SECS_MAX;
use crate::mvcc::key_index::{self, KeyIndex};
use crate::mvcc::revision::Revision;
use crate::mvcc::revlog::KEY_BYTES_MAX;
use crate::mvcc::store::{Mvcc, is_tombstone};
use crate::proto::{AlarmMember, AlarmType, KeyValue};
use crate::store::KvStore;

/// The highest revision a store takes: a store's snapshot refuses larger ones as damage, so an
/// imported store must stay below it to be restored from its own snapshot.
const REVISION_MAX: i64 = i64::MAX / 2;

/// Keys per step of the compaction [`HistoryImport::finish`] runs: any size works, the steps
/// only exist for stores that keep applying meanwhile.
const FINISH_COMPACT_STEP_KEYS: usize = 1 << 16;

/// One revision of one key: the version written then, or its deletion.
#[derive(Clone, Debug)]
pub struct HistoryRecord {
    revision: Revision,
    kv: KeyValue,
}

impl HistoryRecord {
    /// The record's revision (a write request's `main`, the change's `sub` inside it).
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The key's version written at this revision. A tombstone holds only the key and its
    /// `mod_revision`.
    pub fn kv(&self) -> &KeyValue {
        &self.kv
    }

    /// Whether the key was deleted at this revision.
    pub fn is_tombstone(&self) -> bool {
        is_tombstone(&self.kv)
    }
}

/// A lease as a backend keeps it: etcd's `leasepb.Lease`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    id: i64,
    ttl_secs: i64,
    remaining_ttl_secs: i64,
}

impl LeaseRecord {
    /// A lease `id` granted for `ttl_secs`, with a checkpointed remaining TTL (0: none).
    pub fn new(id: i64, ttl_secs: i64, remaining_ttl_secs: i64) -> Self {
        LeaseRecord {
            id,
            ttl_secs,
            remaining_ttl_secs,
        }
    }

    /// The lease's ID.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The granted TTL, in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// The checkpointed remaining TTL in seconds; 0 when none was checkpointed.
    pub fn remaining_ttl_secs(&self) -> i64 {
        self.remaining_ttl_secs
    }
}

/// Why [`HistoryImport`] refused its input. Every variant names what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportError {
    /// A record whose revision is not above the one before it: records come in revision order.
    OutOfOrder {
        /// The record's revision.
        revision: Revision,
        /// The revision of the record before it.
        previous: Revision,
    },
    /// A revision no store holds: `main` below 1 or above 2^62, or `sub` negative or too large.
    BadRevision(Revision),
    /// A key's version that etcd never writes.
    BadRecord {
        /// The record's revision.
        revision: Revision,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A lease with an ID or TTL that etcd never grants.
    BadLease {
        /// The lease's ID.
        id: i64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Two leases with one ID.
    DuplicateLease(i64),
    /// An alarm that is neither NOSPACE nor CORRUPT.
    BadAlarm {
        /// The member that raised it.
        member_id: u64,
        /// The alarm's type number.
        alarm: i32,
    },
    /// A key that exists at the newest revision is attached to a lease that is not there.
    MissingLease {
        /// The key.
        key: Bytes,
        /// The lease its newest version names.
        lease: i64,
    },
    /// A compacted revision that is negative or above 2^62.
    BadCompactedRevision(i64),
    /// A deletion of a key with no version before it, above the compacted revision: only a
    /// compaction leaves such deletions behind, and only at or below its revision.
    LoneDeletion {
        /// The deletion's revision.
        revision: Revision,
        /// The key.
        key: Bytes,
    },
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rev = |r: &Revision| format!("{}.{}", r.main(), r.sub());
        match self {
            ImportError::OutOfOrder { revision, previous } => write!(
                f,
                "revision {} comes after revision {}: records must be in revision order",
                rev(revision),
                rev(previous)
            ),
            ImportError::BadRevision(r) => write!(f, "revision {} is out of range", rev(r)),
            ImportError::BadRecord { revision, why } => {
                write!(f, "the record at revision {}: {why}", rev(revision))
            }
            ImportError::BadLease { id, why } => write!(f, "lease {id:016x}: {why}"),
            ImportError::DuplicateLease(id) => write!(f, "lease {id:016x} appears twice"),
            ImportError::BadAlarm { member_id, alarm } => write!(
                f,
                "alarm type {alarm} raised by member {member_id:x} is not one etcd defines"
            ),
            ImportError::MissingLease { key, lease } => write!(
                f,
                "key {:?} is attached to lease {lease:016x}, which does not exist",
                String::from_utf8_lossy(key)
            ),
            ImportError::BadCompactedRevision(r) => {
                write!(f, "compacted revision {r} is out of range")
            }
            ImportError::LoneDeletion { revision, key } => write!(
                f,
                "key {:?} is deleted at revision {} without a version before it, above the \
                 compacted revision",
                String::from_utf8_lossy(key),
                rev(revision)
            ),
        }
    }
}

impl std::error::Error for ImportError {}

/// Builds a store from history records that carry their own revisions, in revision order: the
/// way to seed a store from another etcd's backend without rewriting a single revision.
///
/// Call [`HistoryImport::put`] and [`HistoryImport::delete`] for every record in revision
/// order, [`HistoryImport::lease`] and [`HistoryImport::alarm`] in any order, then
/// [`HistoryImport::finish`]. Input that no etcd writes gets an [`ImportError`], never a panic.
#[derive(Debug)]
pub struct HistoryImport {
    store: KvStore,
    last: Option<Revision>,
    /// The newest deletion dropped for want of a version to delete: [`HistoryImport::finish`]
    /// refuses it above the compacted revision.
    dropped: Option<(Revision, Bytes)>,
}

impl HistoryImport {
    /// An import into an empty store with `config`.
    pub fn new(config: KvConfig) -> Self {
        HistoryImport {
            store: KvStore::new(config),
            last: None,
            dropped: None,
        }
    }

    /// Checks that `revision` may come next.
    fn check_next(&self, revision: Revision) -> Result<(), ImportError> {
        if !(1..=REVISION_MAX).contains(&revision.main()) || !key_index::storable(revision) {
            return Err(ImportError::BadRevision(revision));
        }
        if let Some(previous) = self.last.filter(|last| revision <= *last) {
            return Err(ImportError::OutOfOrder { revision, previous });
        }
        Ok(())
    }

    /// The key's version `kv` was written at `revision`. Its `mod_revision` must be the
    /// revision's `main`; its create revision and version are kept as they are, as etcd's
    /// restore keeps them.
    pub fn put(&mut self, revision: Revision, kv: KeyValue) -> Result<(), ImportError> {
        self.check_next(revision)?;
        let bad = |why| Err(ImportError::BadRecord { revision, why });
        if kv.key.is_empty() {
            return bad("empty key");
        }
        if kv.key.len() > KEY_BYTES_MAX {
            return bad("a key of 4 GiB or more");
        }
        if kv.mod_revision != revision.main() {
            return bad("its mod_revision is not its revision");
        }
        if kv.version < 1 {
            return bad("a put with a version below 1");
        }
        if !(1..=revision.main()).contains(&kv.create_revision) {
            return bad("its create_revision is not between 1 and its revision");
        }
        self.last = Some(revision);
        let m = &mut self.store.mvcc;
        let key_index = m.index.entry(kv.key.clone()).or_insert_with(KeyIndex::new);
        if !key_index.is_live() {
            m.live_keys += 1;
        }
        key_index.put(revision);
        m.data_bytes += Mvcc::record_bytes(&kv);
        m.records.insert(revision, kv);
        Ok(())
    }

    /// `key` was deleted at `revision`. Returns whether the deletion was kept: a deletion of a
    /// key that has no live version here is dropped, as etcd's restore drops it (a compaction
    /// leaves such tombstones behind while it runs), and its revision still counts towards the
    /// store's current revision; [`HistoryImport::finish`] refuses one above the compacted
    /// revision, which no compaction leaves.
    pub fn delete(&mut self, revision: Revision, key: Bytes) -> Result<bool, ImportError> {
        self.check_next(revision)?;
        self.last = Some(revision);
        let m = &mut self.store.mvcc;
        let Some(key_index) = m.index.get_mut(&key).filter(|ki| ki.is_live()) else {
            self.dropped = Some((revision, key));
            return Ok(false);
        };
        let tomb = KeyValue {
            key,
            mod_revision: revision.main(),
            ..KeyValue::default()
        };
        key_index.tombstone(revision);
        m.live_keys -= 1;
        m.data_bytes += Mvcc::record_bytes(&tomb);
        m.records.insert(revision, tomb);
        Ok(true)
    }

    /// A lease. Its TTL is raised to the store's shortest, as etcd's lessor raises it.
    pub fn lease(&mut self, lease: LeaseRecord) -> Result<(), ImportError> {
        let bad = |why| Err(ImportError::BadLease { id: lease.id, why });
        if lease.id == 0 {
            return bad("ID 0 names no lease");
        }
        if lease.ttl_secs > LEASE_TTL_SECS_MAX {
            return bad("TTL above etcd's maximum");
        }
        if !(0..=LEASE_TTL_SECS_MAX).contains(&lease.remaining_ttl_secs) {
            return bad("remaining TTL out of range");
        }
        let lessor = &mut self.store.lessor;
        if lessor.contains(lease.id) {
            return Err(ImportError::DuplicateLease(lease.id));
        }
        let ttl_secs = lease.ttl_secs.max(self.store.config.lease_ttl_secs_min());
        lessor.restore_lease(lease.id, ttl_secs, lease.remaining_ttl_secs);
        Ok(())
    }

    /// A raised alarm.
    pub fn alarm(&mut self, alarm: AlarmMember) -> Result<(), ImportError> {
        let known = [AlarmType::Nospace as i32, AlarmType::Corrupt as i32];
        if !known.contains(&alarm.alarm) {
            return Err(ImportError::BadAlarm {
                member_id: alarm.member_id,
                alarm: alarm.alarm,
            });
        }
        self.store.alarms.insert((alarm.member_id, alarm.alarm));
        Ok(())
    }

    /// The newest revision given so far.
    pub fn last_revision(&self) -> Option<Revision> {
        self.last
    }

    /// The store, compacted at `compacted_revision` (0: never compacted). Its revision is the
    /// newest record's, or the compacted revision when that is newer (compaction removed the
    /// newest records), as etcd's restore sets it. Records that compaction drops are dropped
    /// now, so a history taken while the source was still compacting comes out as etcd
    /// finishes it. Keys learn their leases from their newest versions.
    pub fn finish(self, compacted_revision: i64) -> Result<KvStore, ImportError> {
        if !(0..=REVISION_MAX).contains(&compacted_revision) {
            return Err(ImportError::BadCompactedRevision(compacted_revision));
        }
        if let Some((revision, key)) = self
            .dropped
            .filter(|(revision, _)| revision.main() > compacted_revision)
        {
            return Err(ImportError::LoneDeletion { revision, key });
        }
        let mut store = self.store;
        let m = &mut store.mvcc;
        let newest = self.last.map_or(m.current_rev, Revision::main);
        m.current_rev = newest.max(compacted_revision);
        if compacted_revision > 0 {
            m.compact(compacted_revision)
                .expect("a revision above 0 and at most the current one compacts");
            while m.compact_step(FINISH_COMPACT_STEP_KEYS) {}
        }
        attach_leases(&mut store)?;
        assert!(
            store.mvcc.compact_rev <= store.mvcc.current_rev,
            "compacted revision {} above current revision {}",
            store.mvcc.compact_rev,
            store.mvcc.current_rev
        );
        Ok(store)
    }
}

/// Leases learn their keys from the keys' newest versions, as etcd's lessor does on restore.
fn attach_leases(store: &mut KvStore) -> Result<(), ImportError> {
    let m = &store.mvcc;
    for (key, key_index) in &m.index {
        let Some(rev) = key_index.get(m.current_rev) else {
            continue;
        };
        let lease = m.record(rev).lease;
        if lease == 0 {
            continue;
        }
        if !store.lessor.contains(lease) {
            return Err(ImportError::MissingLease {
                key: key.clone(),
                lease,
            });
        }
        store.lessor.attach(lease, key.clone());
    }
    Ok(())
}

impl KvStore {
    /// Every record that compaction keeps, in revision order: each key's versions and
    /// tombstones since the compacted revision, and the version each key had at it. A
    /// physical compaction still under way makes no difference.
    pub fn history(&self) -> impl Iterator<Item = HistoryRecord> + '_ {
        let m = &self.mvcc;
        m.records
            .range_from(Revision::new(i64::MIN, 0))
            .filter(move |(revision, kv)| {
                revision.main() > m.compact_rev
                    || m.index
                        .get(&kv.key)
                        .and_then(|ki| ki.get(m.compact_rev))
                        .is_some_and(|kept| kept == *revision)
            })
            .map(|(revision, kv)| HistoryRecord { revision, kv })
    }

    /// Every lease, by ID, with its granted and checkpointed remaining TTLs.
    pub fn lease_records(&self) -> impl Iterator<Item = LeaseRecord> + '_ {
        self.lessor
            .leases
            .iter()
            .map(|(id, lease)| LeaseRecord::new(*id, lease.ttl_secs, lease.remaining_ttl_secs))
    }

    /// The raised alarms, by member and alarm type.
    pub fn raised_alarms(&self) -> impl Iterator<Item = AlarmMember> + '_ {
        self.alarms
            .iter()
            .map(|&(member_id, alarm)| AlarmMember { member_id, alarm })
    }
}
