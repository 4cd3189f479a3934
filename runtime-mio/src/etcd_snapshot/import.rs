//! An etcd snapshot file into a store, every revision kept: the `key` bucket's records in
//! revision order through [`HistoryImport`], with the leases, the alarms and the compacted
//! revision. Membership is not taken: a restored member starts a new cluster from its flags,
//! as `etcdctl snapshot restore` does.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use prost::Message as _;
use tally_kvstore::proto::{AlarmMember, KeyValue};
use tally_kvstore::{HistoryImport, KvConfig, KvStore, LeaseRecord, Revision};

use super::backend::{self, Lease, parse_revision, share, show_key};
use super::bbolt::{Bucket, Db};
use super::error::EtcdFileError;

/// `etcdctl snapshot save` appends the SHA-256 of the data; the data is whole bbolt pages, so
/// a file with the trailer is 32 bytes past a multiple of 512.
const SHA256_BYTES: usize = 32;
const TRAILER_ALIGN_BYTES: usize = 512;

/// What an etcd snapshot file held.
#[derive(Debug)]
pub struct Imported {
    store: KvStore,
    report: ImportReport,
}

impl Imported {
    pub fn store(&self) -> &KvStore {
        &self.store
    }

    pub fn into_store(self) -> KvStore {
        self.store
    }

    pub fn report(&self) -> &ImportReport {
        &self.report
    }
}

/// Figures of an import, for the operator: what came in and what was left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Whether the file had `etcdctl snapshot save`'s SHA-256 trailer (checked).
    checked_sha256: bool,
    /// Records of the `key` bucket, and the deletions among them that nothing was left of.
    records: u64,
    dropped_tombstones: u64,
    revision: i64,
    compacted_revision: i64,
    live_keys: u64,
    leases: u64,
    alarms: u64,
    /// Entries of buckets that tally does not take over.
    members: u64,
    auth_users: u64,
    auth_roles: u64,
}

impl ImportReport {
    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn compacted_revision(&self) -> i64 {
        self.compacted_revision
    }

    pub fn records(&self) -> u64 {
        self.records
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "etcd snapshot: revision {}, compacted at {}, {} keys, {} records of history, {} \
             leases, {} alarms; {}",
            self.revision,
            self.compacted_revision,
            self.live_keys,
            self.records,
            self.leases,
            self.alarms,
            if self.checked_sha256 {
                "SHA-256 trailer checked"
            } else {
                "no SHA-256 trailer (a database file copied as it was): bbolt's checksums only"
            }
        )?;
        if self.dropped_tombstones > 0 {
            write!(
                f,
                "; {} deletions of keys compacted away dropped, as etcd drops them",
                self.dropped_tombstones
            )?;
        }
        if self.members > 0 {
            write!(
                f,
                "; its {} members not taken: membership comes from the flags",
                self.members
            )?;
        }
        if self.auth_users + self.auth_roles > 0 {
            write!(
                f,
                "; its {} auth users and {} roles not taken: add them again on tally",
                self.auth_users, self.auth_roles
            )?;
        }
        Ok(())
    }
}

/// Whether `file` is a bbolt database (an etcd snapshot, if it is anything) rather than one of
/// tally's own snapshot files.
pub fn is_etcd_snapshot(file: &[u8]) -> bool {
    super::bbolt::looks_like_bbolt(file)
}

/// Reads an etcd 3.x snapshot file (`etcdctl snapshot save`'s, or a member's `db` file) into a
/// store with `config`. Checks the SHA-256 trailer when there is one, bbolt's structure, and
/// that the history makes a store; nothing of a file that fails is kept.
pub fn import_etcd_file(file: Bytes, config: KvConfig) -> Result<Imported, EtcdFileError> {
    let size = file.len();
    let has_trailer = size % TRAILER_ALIGN_BYTES == SHA256_BYTES;
    if !has_trailer && size % TRAILER_ALIGN_BYTES != 0 {
        return Err(EtcdFileError::Size { bytes: size as u64 });
    }
    let data_len = if has_trailer {
        size - SHA256_BYTES
    } else {
        size
    };
    let (data, trailer) = file.split_at(data_len);
    // The hash runs beside the parsing, on the other core: both read the whole file.
    std::thread::scope(|scope| {
        let hash = has_trailer.then(|| {
            let spawned = std::thread::Builder::new()
                .name("tally-etcd-sha256".into())
                .spawn_scoped(scope, || sha256_matches(data, trailer));
            // Without a thread, the hash runs here first.
            spawned.map_err(|_| sha256_matches(data, trailer))
        });
        let imported = read_backend(&file, data, config);
        let hash_ok = match hash {
            None => true,
            Some(Ok(handle)) => handle.join().expect("the hash thread does not panic"),
            Some(Err(matched)) => matched,
        };
        if !hash_ok {
            return Err(EtcdFileError::Sha256Mismatch);
        }
        let mut imported = imported?;
        imported.report.checked_sha256 = has_trailer;
        Ok(imported)
    })
}

fn sha256_matches(data: &[u8], trailer: &[u8]) -> bool {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref() == trailer
}

fn bad_entry(bucket: &'static str, key: &[u8], why: impl fmt::Display) -> EtcdFileError {
    EtcdFileError::BadEntry {
        bucket,
        key: show_key(key),
        why: why.to_string(),
    }
}

/// The store in `data` (a bbolt database inside `file`, whose bytes the store's keys and values
/// share).
fn read_backend<'a>(
    file: &Bytes,
    data: &'a [u8],
    config: KvConfig,
) -> Result<Imported, EtcdFileError> {
    let mut db = Db::open(data)?;
    let mut buckets: BTreeMap<&'a [u8], Bucket<'a>> = BTreeMap::new();
    db.for_each(db.root(), |entry| {
        let bucket = entry.bucket()?;
        buckets.insert(entry.key(), bucket);
        Ok::<(), EtcdFileError>(())
    })?;
    let key = *buckets
        .get(backend::KEY)
        .ok_or(EtcdFileError::NotEtcd("it has no `key` bucket"))?;
    let meta = *buckets
        .get(backend::META)
        .ok_or(EtcdFileError::NotEtcd("it has no `meta` bucket"))?;
    let mut report = ImportReport::default();
    if let Some(auth) = buckets.get(backend::AUTH) {
        check_auth_disabled(&mut db, *auth)?;
    }
    let count = |db: &mut Db<'a>, name: &[u8]| -> Result<u64, EtcdFileError> {
        let mut n = 0;
        if let Some(bucket) = buckets.get(name) {
            db.for_each(*bucket, |_| {
                n += 1;
                Ok::<(), EtcdFileError>(())
            })?;
        }
        Ok(n)
    };
    report.members = count(&mut db, backend::MEMBERS)?;
    report.auth_users = count(&mut db, backend::AUTH_USERS)?;
    report.auth_roles = count(&mut db, backend::AUTH_ROLES)?;
    let (finished, scheduled) = compaction_revisions(&mut db, meta)?;
    let mut import = HistoryImport::new(config);
    read_history(&mut db, key, file, &mut import, &mut report)?;
    if let Some(lease) = buckets.get(backend::LEASE) {
        report.leases = read_leases(&mut db, *lease, &mut import)?;
    }
    if let Some(alarm) = buckets.get(backend::ALARM) {
        report.alarms = read_alarms(&mut db, *alarm, &mut import)?;
    }
    // etcd's restore finishes a compaction that was under way when the file was written,
    // unless it asked for a revision past the history (etcd refuses that one).
    let newest = import
        .last_revision()
        .map_or(0, Revision::main)
        .max(finished);
    let compacted = if scheduled > finished && scheduled <= newest {
        scheduled
    } else {
        finished
    };
    let store = import.finish(compacted)?;
    report.revision = store.revision();
    report.compacted_revision = store.compacted_revision();
    report.live_keys = store.status().key_count();
    Ok(Imported { store, report })
}

fn check_auth_disabled<'a>(db: &mut Db<'a>, auth: Bucket<'a>) -> Result<(), EtcdFileError> {
    db.for_each(auth, |entry| {
        if entry.key() == backend::AUTH_ENABLED && entry.value() == [1] {
            return Err(EtcdFileError::AuthEnabled);
        }
        Ok(())
    })
}

/// `finishedCompactRev` and `scheduledCompactRev` of the `meta` bucket (0 when absent).
fn compaction_revisions<'a>(
    db: &mut Db<'a>,
    meta: Bucket<'a>,
) -> Result<(i64, i64), EtcdFileError> {
    let (mut finished, mut scheduled) = (0, 0);
    db.for_each(meta, |entry| {
        let slot = match entry.key() {
            backend::FINISHED_COMPACT_REV => &mut finished,
            backend::SCHEDULED_COMPACT_REV => &mut scheduled,
            _ => return Ok(()),
        };
        let (rev, _) = parse_revision(entry.value())
            .ok()
            .filter(|(_, tombstone)| !tombstone)
            .ok_or_else(|| bad_entry("meta", entry.key(), "not a revision"))?;
        *slot = rev.main();
        Ok::<(), EtcdFileError>(())
    })?;
    Ok((finished, scheduled))
}

fn read_history<'a>(
    db: &mut Db<'a>,
    key: Bucket<'a>,
    file: &Bytes,
    import: &mut HistoryImport,
    report: &mut ImportReport,
) -> Result<(), EtcdFileError> {
    db.for_each(key, |entry| {
        if entry.is_bucket() {
            return Err(bad_entry("key", entry.key(), "a nested bucket"));
        }
        let (revision, tombstone) =
            parse_revision(entry.key()).map_err(|why| bad_entry("key", entry.key(), why))?;
        let kv =
            KeyValue::decode(share(file, entry.value())).map_err(|e| EtcdFileError::BadEntry {
                bucket: "key",
                key: format!("revision {}.{}", revision.main(), revision.sub()),
                why: format!("its value is not an mvccpb.KeyValue: {e}"),
            })?;
        report.records += 1;
        if tombstone {
            if !import.delete(revision, kv.key)? {
                report.dropped_tombstones += 1;
            }
        } else {
            import.put(revision, kv)?;
        }
        Ok(())
    })
}

fn read_leases<'a>(
    db: &mut Db<'a>,
    bucket: Bucket<'a>,
    import: &mut HistoryImport,
) -> Result<u64, EtcdFileError> {
    let mut n = 0;
    db.for_each(bucket, |entry| {
        let bad = |why: &dyn fmt::Display| bad_entry("lease", entry.key(), why);
        let lease = Lease::decode(entry.value()).map_err(|e| bad(&e))?;
        if entry.key() != backend::lease_key(lease.id) {
            return Err(bad(&"its key is not its lease's ID"));
        }
        import.lease(LeaseRecord::new(lease.id, lease.ttl, lease.remaining_ttl))?;
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

fn read_alarms<'a>(
    db: &mut Db<'a>,
    bucket: Bucket<'a>,
    import: &mut HistoryImport,
) -> Result<u64, EtcdFileError> {
    let mut n = 0;
    db.for_each(bucket, |entry| {
        let alarm =
            AlarmMember::decode(entry.key()).map_err(|e| bad_entry("alarm", entry.key(), e))?;
        import.alarm(alarm)?;
        n += 1;
        Ok::<(), EtcdFileError>(())
    })?;
    Ok(n)
}
