//! Reading a snapshot back into a store: every length bounded, every reference checked.

use std::io::Read;

use bytes::Bytes;

use super::{FIELD_BYTES_MAX, FIELD_RESERVE_BYTES_MAX, MAGIC, VERSION_AUTH, VERSION_PLAIN};
use crate::auth::{AuthStore, User};
use crate::error::SnapshotError;
use crate::mvcc::key_index::{self, KeyIndex};
use crate::mvcc::revision::Revision;
use crate::mvcc::revlog::KEY_BYTES_MAX;
use crate::mvcc::store::{Mvcc, is_tombstone};
use crate::proto::{Event, KeyValue};
use crate::store::KvStore;

struct CrcReader<'a, R: Read> {
    inner: &'a mut R,
    crc: crc32fast::Hasher,
}

impl<R: Read> CrcReader<'_, R> {
    fn take(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        self.inner.read_exact(buf)?;
        self.crc.update(buf);
        Ok(())
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        let mut b = [0u8; 1];
        self.take(&mut b)?;
        Ok(b[0])
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let mut b = [0u8; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        let mut b = [0u8; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(self.u64()? as i64)
    }
    fn bytes(&mut self) -> Result<Bytes, SnapshotError> {
        Ok(self.bytes_after(&[])?.1)
    }

    /// Reads a field into one buffer after a copy of `prefix`: (the buffer, the field). A key
    /// and its value then share one allocation (and one shared-buffer header), which the
    /// record keeps whole, as it keeps one slice of the write request on a member that applied
    /// it.
    fn bytes_after(&mut self, prefix: &[u8]) -> Result<(Bytes, Bytes), SnapshotError> {
        let n = self.u64()?;
        if n > FIELD_BYTES_MAX {
            return Err(SnapshotError::Corrupt("field length"));
        }
        if n == 0 {
            return Ok((Bytes::new(), Bytes::new()));
        }
        // Sized to the field up front: a vector grown by read_to_end keeps its spare capacity
        // inside the Bytes, which cost a restored member half again the memory of one that
        // wrote the same keys (1.2 GB against 0.8 GB). A length from a damaged or hostile
        // snapshot reserves at most FIELD_RESERVE_BYTES_MAX before its bytes arrive.
        let mut v = Vec::with_capacity(prefix.len() + n.min(FIELD_RESERVE_BYTES_MAX) as usize);
        v.extend_from_slice(prefix);
        let got = (&mut *self.inner).take(n).read_to_end(&mut v)?;
        if got as u64 != n {
            return Err(SnapshotError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        v.shrink_to_fit();
        self.crc.update(&v[prefix.len()..]);
        if prefix.is_empty() {
            return Ok((Bytes::new(), Bytes::from(v)));
        }
        let both = Bytes::from(v);
        let field = both.slice(prefix.len()..);
        Ok((both, field))
    }
    fn kv(&mut self) -> Result<KeyValue, SnapshotError> {
        Ok(KeyValue {
            key: self.bytes()?,
            create_revision: self.i64()?,
            mod_revision: self.i64()?,
            version: self.i64()?,
            lease: self.i64()?,
            value: self.bytes()?,
        })
    }
}

/// Reads a snapshot into `store` (which must be freshly made); watchers are not touched.
pub(crate) fn read<R: Read>(store: &mut KvStore, input: &mut R) -> Result<(), SnapshotError> {
    let mut r = CrcReader {
        inner: input,
        crc: crc32fast::Hasher::new(),
    };
    let mut magic = [0u8; 8];
    r.take(&mut magic)?;
    if &magic != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let version = r.u32()?;
    if version != VERSION_PLAIN && version != VERSION_AUTH {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    store.applied_index = r.u64()?;
    let m = &mut store.mvcc;
    m.current_rev = r.i64()?;
    m.compact_rev = r.i64()?;
    if m.current_rev < 1
        || m.current_rev > i64::MAX / 2
        || !(0..=m.current_rev).contains(&m.compact_rev)
    {
        return Err(SnapshotError::Corrupt("revisions out of range"));
    }
    m.compaction_done_rev = m.compact_rev;
    store.lessor.id_seq = r.u64()?;
    let keys = r.u64()?;
    // Keys come in key order, the log wants revision order: gather, sort, then append. The
    // index is built from the gathered keys at once: a B-tree fed keys one by one in order
    // leaves its nodes about half empty, one built from a sorted list fills them.
    let mut records = Vec::new();
    let mut index: Vec<(Bytes, KeyIndex)> = Vec::new();
    for _ in 0..keys {
        let (key, ki) = read_key(&mut r, m, &mut records)?;
        if index.last().is_some_and(|(l, _)| *l >= key) {
            return Err(SnapshotError::Corrupt("keys out of order"));
        }
        index.push((key, ki));
    }
    m.index = index.into_iter().collect();
    records.sort_unstable_by_key(|(rev, _)| *rev);
    if records.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(SnapshotError::Corrupt("a revision used twice"));
    }
    for (rev, record) in records {
        let (kv, key_and_value) = record.into_kv(rev);
        m.records.insert_within(rev, kv, &key_and_value);
    }
    let events = r.u64()?;
    for _ in 0..events.min(FIELD_BYTES_MAX) {
        let ty = r.u32()? as i32;
        let kv = r.kv()?;
        let prev_kv = match r.u8()? {
            0 => None,
            1 => Some(r.kv()?),
            _ => return Err(SnapshotError::Corrupt("event prev flag")),
        };
        m.compact_events.push(Event {
            r#type: ty,
            kv: Some(kv),
            prev_kv,
        });
    }
    let leases = r.u64()?;
    for _ in 0..leases {
        let id = r.i64()?;
        let ttl = r.i64()?;
        let remaining = r.i64()?;
        store.lessor.restore_lease(id, ttl, remaining);
    }
    let alarms = r.u64()?;
    for _ in 0..alarms {
        let member = r.u64()?;
        let alarm = r.u32()? as i32;
        store.alarms.insert((member, alarm));
    }
    store.auth = if version == VERSION_AUTH {
        read_auth(&mut r)?
    } else {
        AuthStore::default()
    };
    let expected = r.crc.clone().finalize();
    let mut trailer = [0u8; 4];
    r.inner.read_exact(&mut trailer)?;
    let actual = u32::from_le_bytes(trailer);
    if actual != expected {
        return Err(SnapshotError::Checksum { expected, actual });
    }
    attach_leases(store)
}

fn read_auth<R: Read>(r: &mut CrcReader<'_, R>) -> Result<AuthStore, SnapshotError> {
    let text = |bytes: Bytes| {
        String::from_utf8(bytes.to_vec()).map_err(|_| SnapshotError::Corrupt("auth name not UTF-8"))
    };
    let enabled = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(SnapshotError::Corrupt("auth enabled flag")),
    };
    let revision = r.u64()?;
    let mut users = std::collections::BTreeMap::new();
    for _ in 0..r.u64()? {
        let name = text(r.bytes()?)?;
        let password_hash = text(r.bytes()?)?;
        let no_password = r.u8()? != 0;
        let mut roles = std::collections::BTreeSet::new();
        for _ in 0..r.u64()? {
            roles.insert(text(r.bytes()?)?);
        }
        let user = User {
            password_hash,
            roles,
            no_password,
        };
        if users.insert(name, user).is_some() {
            return Err(SnapshotError::Corrupt("a user twice"));
        }
    }
    let mut roles = std::collections::BTreeMap::new();
    for _ in 0..r.u64()? {
        let name = text(r.bytes()?)?;
        let mut perms = Vec::new();
        for _ in 0..r.u64()?.min(FIELD_BYTES_MAX) {
            perms.push(crate::proto::Permission {
                perm_type: r.u32()? as i32,
                key: r.bytes()?,
                range_end: r.bytes()?,
            });
        }
        if roles.insert(name, perms).is_some() {
            return Err(SnapshotError::Corrupt("a role twice"));
        }
    }
    Ok(AuthStore::from_parts(enabled, revision, users, roles))
}

/// A version read back, its key and value in one buffer, until it is filed in revision order.
struct LoadedRecord {
    key_and_value: Bytes,
    key_len: usize,
    create_revision: i64,
    version: i64,
    lease: i64,
}

impl LoadedRecord {
    /// The version as a [`KeyValue`] filed under `rev`, and the buffer its key and value lie in.
    fn into_kv(self, rev: Revision) -> (KeyValue, Bytes) {
        let kv = KeyValue {
            key: self.key_and_value.slice(..self.key_len),
            value: self.key_and_value.slice(self.key_len..),
            create_revision: self.create_revision,
            mod_revision: rev.main(),
            version: self.version,
            lease: self.lease,
        };
        (kv, self.key_and_value)
    }
}

fn read_key<R: Read>(
    r: &mut CrcReader<'_, R>,
    m: &mut Mvcc,
    records: &mut Vec<(Revision, LoadedRecord)>,
) -> Result<(Bytes, KeyIndex), SnapshotError> {
    let mut key = r.bytes()?;
    if key.len() > KEY_BYTES_MAX {
        return Err(SnapshotError::Corrupt("key length"));
    }
    let gens = r.u32()?;
    if gens == 0 {
        return Err(SnapshotError::Corrupt("key without generations"));
    }
    let mut generations = Vec::new();
    let mut last_rev = Revision::default();
    let records_before = records.len();
    for gi in 0..gens {
        let n = r.u32()?;
        let mut revs = Vec::with_capacity(n.min(1024) as usize);
        for i in 0..n {
            let rev = Revision::new(r.i64()?, r.i64()?);
            if rev <= last_rev || rev.main() > m.current_rev {
                return Err(SnapshotError::Corrupt("revision order"));
            }
            if !key_index::storable(rev) {
                return Err(SnapshotError::Corrupt("sub-revision"));
            }
            last_rev = rev;
            let create_revision = r.i64()?;
            let version = r.i64()?;
            let lease = r.i64()?;
            // Each version in one buffer with a copy of the key, as a record keeps it; the
            // index keeps the key of the first. An empty value (a tombstone's) needs no buffer
            // of its own: the record keeps the key alone, as it does when written.
            let (buffer, value) = r.bytes_after(&key)?;
            let key_and_value = if value.is_empty() {
                key.clone()
            } else {
                buffer
            };
            if records.len() == records_before {
                key = key_and_value.slice(..key.len());
            }
            let record = LoadedRecord {
                key_len: key.len(),
                key_and_value,
                create_revision,
                version,
                lease,
            };
            let kv = KeyValue {
                key: key.clone(),
                create_revision,
                mod_revision: rev.main(),
                version,
                lease,
                value,
            };
            // Only the last revision of an ended generation is a tombstone.
            let ended = gi + 1 < gens;
            if is_tombstone(&kv) != (ended && i + 1 == n) {
                return Err(SnapshotError::Corrupt("tombstone placement"));
            }
            m.data_bytes += Mvcc::record_bytes(&kv);
            records.push((rev, record));
            revs.push(rev);
        }
        if gi + 1 < gens && revs.is_empty() {
            return Err(SnapshotError::Corrupt("empty ended generation"));
        }
        generations.push(revs);
    }
    let ki = KeyIndex::from_generations(generations);
    if ki.is_live() {
        m.live_keys += 1;
    }
    Ok((key, ki))
}

/// Leases learn their keys from the live records, as etcd's lessor does on recovery.
fn attach_leases(store: &mut KvStore) -> Result<(), SnapshotError> {
    let m = &store.mvcc;
    for (key, ki) in &m.index {
        let Some(rev) = ki.get(m.current_rev) else {
            continue;
        };
        let lease = m.record(rev).lease;
        if lease != 0 {
            if !store.lessor.contains(lease) {
                return Err(SnapshotError::Corrupt("key attached to a missing lease"));
            }
            store.lessor.attach(lease, key.clone());
        }
    }
    Ok(())
}
