//! A store as an etcd 3.4 snapshot file: the bbolt database etcd's backend would hold with the
//! same history, then `etcdctl snapshot save`'s SHA-256 trailer, so that `etcdctl snapshot
//! status` reads it and `etcdctl snapshot restore` seeds an etcd member with every key, its
//! revisions and its lease.

use std::io::{Read, Seek, SeekFrom, Write};

use prost::Message as _;
use tally_kvstore::KvStore;
use tally_kvstore::proto::KeyValue;

use super::backend::{self, Lease, lease_key, revision_key, u64_value};
use super::bbolt::{BucketWriter, DbWriter, PAGE_BYTES_DEFAULT};
use super::error::EtcdFileError;

/// Bytes read at a time to hash the written database.
const HASH_READ_BYTES: usize = 1 << 20;

/// What was written, in the figures `etcdctl snapshot status` shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// The newest revision in the `key` bucket (`status`'s REVISION).
    revision: i64,
    /// Entries in every bucket (`status`'s TOTAL KEYS).
    total_keys: u64,
    /// The file's size, trailer included.
    file_bytes: u64,
    records: u64,
    leases: u64,
}

impl ExportReport {
    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn total_keys(&self) -> u64 {
        self.total_keys
    }

    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn leases(&self) -> u64 {
        self.leases
    }
}

/// Writes `store` to `out` (empty, readable, at its start) as an etcd 3.4 snapshot file.
///
/// Buckets: `key` (every revision compaction kept), `lease`, `alarm`, `meta` (the applied
/// index as `consistent_index`, the compacted revision as both compaction marks), `cluster`
/// (version 3.4.0), and empty `members` and `members_removed`: `etcdctl snapshot restore` takes
/// membership from its flags, and for every member key it finds it deletes the user key of that
/// name (etcd 3.4's `saveDB`), which would rewrite history.
pub fn export_etcd_file<F: Read + Write + Seek>(
    store: &KvStore,
    out: F,
) -> Result<ExportReport, EtcdFileError> {
    let mut report = ExportReport::default();
    let mut db = DbWriter::new(out, PAGE_BYTES_DEFAULT)?;
    // Buckets in name order: alarm, cluster, key, lease, members, members_removed, meta.
    let mut alarms: Vec<Vec<u8>> = store.raised_alarms().map(|a| a.encode_to_vec()).collect();
    alarms.sort();
    let mut bucket = db.bucket(backend::ALARM);
    for alarm in &alarms {
        put(&mut bucket, &mut report, alarm, &[])?;
    }
    bucket.finish()?;
    let mut bucket = db.bucket(backend::CLUSTER);
    put(
        &mut bucket,
        &mut report,
        backend::CLUSTER_VERSION,
        backend::CLUSTER_VERSION_3_4,
    )?;
    bucket.finish()?;
    write_history(&mut db, store, &mut report)?;
    write_leases(&mut db, store, &mut report)?;
    db.bucket(backend::MEMBERS).finish()?;
    db.bucket(backend::MEMBERS_REMOVED).finish()?;
    let mut bucket = db.bucket(backend::META);
    put(
        &mut bucket,
        &mut report,
        backend::CONSISTENT_INDEX,
        &u64_value(store.applied_index()),
    )?;
    let compacted = store.compacted_revision();
    if compacted > 0 {
        let (rev, len) = revision_key(compacted, 0, false);
        put(
            &mut bucket,
            &mut report,
            backend::FINISHED_COMPACT_REV,
            &rev[..len],
        )?;
        put(
            &mut bucket,
            &mut report,
            backend::SCHEDULED_COMPACT_REV,
            &rev[..len],
        )?;
    }
    bucket.finish()?;
    let mut out = db.finish()?;
    report.file_bytes = append_sha256(&mut out)?;
    Ok(report)
}

fn put<W: Write + Seek>(
    bucket: &mut BucketWriter<'_, W>,
    report: &mut ExportReport,
    key: &[u8],
    value: &[u8],
) -> Result<(), EtcdFileError> {
    report.total_keys += 1;
    bucket.put(key, value)?;
    Ok(())
}

fn write_history<W: Write + Seek>(
    db: &mut DbWriter<W>,
    store: &KvStore,
    report: &mut ExportReport,
) -> Result<(), EtcdFileError> {
    let mut bucket = db.bucket(backend::KEY);
    let mut value = Vec::new();
    for record in store.history() {
        let revision = record.revision();
        let tombstone = record.is_tombstone();
        let (key, len) = revision_key(revision.main(), revision.sub(), tombstone);
        value.clear();
        if tombstone {
            // etcd's deletion record holds the key alone.
            KeyValue {
                key: record.kv().key.clone(),
                ..KeyValue::default()
            }
            .encode(&mut value)
        } else {
            record.kv().encode(&mut value)
        }
        .expect("a Vec grows");
        put(&mut bucket, report, &key[..len], &value)?;
        report.records += 1;
        report.revision = revision.main();
    }
    bucket.finish()?;
    Ok(())
}

fn write_leases<W: Write + Seek>(
    db: &mut DbWriter<W>,
    store: &KvStore,
    report: &mut ExportReport,
) -> Result<(), EtcdFileError> {
    // Keyed by the ID's big-endian bytes, which order negative IDs after positive ones.
    let mut leases: Vec<([u8; 8], Vec<u8>)> = store
        .lease_records()
        .map(|l| {
            let lease = Lease {
                id: l.id(),
                ttl: l.ttl_secs(),
                remaining_ttl: l.remaining_ttl_secs(),
            };
            (lease_key(l.id()), lease.encode_to_vec())
        })
        .collect();
    leases.sort_unstable();
    let mut bucket = db.bucket(backend::LEASE);
    for (key, value) in &leases {
        put(&mut bucket, report, key, value)?;
        report.leases += 1;
    }
    bucket.finish()?;
    Ok(())
}

/// Appends the SHA-256 of everything in `out` (from its start), as `etcdctl snapshot save`
/// does; returns the file's size.
fn append_sha256<F: Read + Write + Seek>(out: &mut F) -> Result<u64, EtcdFileError> {
    let data_bytes = out.seek(SeekFrom::End(0))?;
    out.seek(SeekFrom::Start(0))?;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; HASH_READ_BYTES];
    let mut left = data_bytes;
    while left > 0 {
        let n = out.read(&mut buf[..HASH_READ_BYTES.min(left as usize)])?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    let digest = hash.finish();
    out.write_all(digest.as_ref())?;
    Ok(data_bytes + digest.as_ref().len() as u64)
}
