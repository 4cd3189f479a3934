//! etcd's backend inside the bbolt file: its buckets, and the keys and values in them.
//!
//! The facts, from etcd's `mvcc/kvstore.go`, `mvcc/revision.go`, `lease/lessor.go`,
//! `etcdserver/api/v3alarm/alarms.go`, `auth/store.go` and `etcdserver/api/membership` (v3.4;
//! 3.5 and 3.6 keep these and add more to `meta`):
//!
//! | bucket | key | value |
//! | --- | --- | --- |
//! | `key` | a revision: `main` as 8 bytes big-endian, `'_'`, `sub` as 8 bytes big-endian, and `'t'` after a deletion | `mvccpb.KeyValue`; a deletion's holds only the key |
//! | `meta` | `consistent_index` | the last applied Raft index, 8 bytes big-endian |
//! | `meta` | `scheduledCompactRev`, `finishedCompactRev` | a revision (as in `key`, sub 0): the compaction asked for and the last one finished |
//! | `lease` | the lease ID, 8 bytes big-endian | `leasepb.Lease` (ID, TTL, RemainingTTL) |
//! | `alarm` | `etcdserverpb.AlarmMember` | empty |
//! | `auth` | `enabled` (one byte, 1 when on), `authRevision` | |
//! | `authUsers`, `authRoles` | user and role names | their protobufs |
//! | `members`, `members_removed` | member IDs in hex | member JSON; `removed` |
//! | `cluster` | `clusterVersion` | e.g. `3.4.0` |
//!
//! The `key` bucket holds every revision compaction kept, so it is the whole history: each
//! key's versions since the compacted revision and the version it had at it. A compaction
//! records `scheduledCompactRev` when it starts and `finishedCompactRev` with its last batch of
//! deletions; between the two, the `key` bucket may still hold revisions the compaction drops,
//! and etcd's restore finishes the job.

use bytes::Bytes;
use tally_kvstore::Revision;

pub(crate) const KEY: &[u8] = b"key";
pub(crate) const META: &[u8] = b"meta";
pub(crate) const LEASE: &[u8] = b"lease";
pub(crate) const ALARM: &[u8] = b"alarm";
pub(crate) const AUTH: &[u8] = b"auth";
pub(crate) const AUTH_USERS: &[u8] = b"authUsers";
pub(crate) const AUTH_ROLES: &[u8] = b"authRoles";
pub(crate) const MEMBERS: &[u8] = b"members";
pub(crate) const MEMBERS_REMOVED: &[u8] = b"members_removed";
pub(crate) const CLUSTER: &[u8] = b"cluster";

pub(crate) const CONSISTENT_INDEX: &[u8] = b"consistent_index";
pub(crate) const SCHEDULED_COMPACT_REV: &[u8] = b"scheduledCompactRev";
pub(crate) const FINISHED_COMPACT_REV: &[u8] = b"finishedCompactRev";
pub(crate) const AUTH_ENABLED: &[u8] = b"enabled";
pub(crate) const CLUSTER_VERSION: &[u8] = b"clusterVersion";
/// The cluster version an etcd 3.4 member records.
pub(crate) const CLUSTER_VERSION_3_4: &[u8] = b"3.4.0";

/// A revision key: 17 bytes, 18 with the deletion mark.
const REVISION_BYTES: usize = 17;
const REVISION_SEPARATOR: u8 = b'_';
const TOMBSTONE_MARK: u8 = b't';

/// A revision in the `key` bucket's form; `tombstone` appends the deletion mark.
pub(crate) fn revision_key(
    main: i64,
    sub: i64,
    tombstone: bool,
) -> ([u8; REVISION_BYTES + 1], usize) {
    assert!(main >= 0 && sub >= 0, "revision {main}.{sub}");
    let mut key = [0u8; REVISION_BYTES + 1];
    key[..8].copy_from_slice(&(main as u64).to_be_bytes());
    key[8] = REVISION_SEPARATOR;
    key[9..17].copy_from_slice(&(sub as u64).to_be_bytes());
    key[17] = TOMBSTONE_MARK;
    (key, REVISION_BYTES + usize::from(tombstone))
}

/// Decodes a `key` bucket key (or a compaction revision in `meta`, which has no mark): the
/// revision, and whether it marks a deletion.
pub(crate) fn parse_revision(key: &[u8]) -> Result<(Revision, bool), &'static str> {
    let tombstone = match key.len() {
        REVISION_BYTES => false,
        18 if key[REVISION_BYTES] == TOMBSTONE_MARK => true,
        18 => return Err("an 18-byte revision whose last byte is not the deletion mark 't'"),
        _ => return Err("a revision is 17 bytes (18 with the deletion mark)"),
    };
    if key[8] != REVISION_SEPARATOR {
        return Err("a revision without its '_' separator");
    }
    let main = u64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
    let sub = u64::from_be_bytes(key[9..17].try_into().expect("8 bytes"));
    let (Ok(main), Ok(sub)) = (i64::try_from(main), i64::try_from(sub)) else {
        return Err("a negative revision");
    };
    Ok((Revision::new(main, sub), tombstone))
}

/// A lease's key: its ID as 8 bytes big-endian.
pub(crate) fn lease_key(id: i64) -> [u8; 8] {
    (id as u64).to_be_bytes()
}

/// etcd's `leasepb.Lease`, as the `lease` bucket stores it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(crate) struct Lease {
    /// `ID`.
    #[prost(int64, tag = "1")]
    pub(crate) id: i64,
    /// `TTL`: the granted TTL, in seconds.
    #[prost(int64, tag = "2")]
    pub(crate) ttl: i64,
    /// `RemainingTTL`: the checkpointed remaining TTL in seconds; 0 when none.
    #[prost(int64, tag = "3")]
    pub(crate) remaining_ttl: i64,
}

/// A `u64` stored big-endian (`consistent_index`).
pub(crate) fn u64_value(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

/// The bytes a bucket key names in errors: text when it is printable, hex otherwise.
pub(crate) fn show_key(key: &[u8]) -> String {
    if !key.is_empty() && key.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(key).into_owned()
    } else {
        key.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A `Bytes` view of `part`, which lies inside `whole`, without copying.
pub(crate) fn share(whole: &Bytes, part: &[u8]) -> Bytes {
    whole.slice_ref(part)
}
