//! Snapshots: a versioned, checksummed encoding of the replicated state, and `hash()`.
//!
//! Layout (integers little-endian):
//! ```text
//! magic "TLYKVSNP" | u32 version (1, or 2 with auth) | body | u32 crc32 of magic, version and body
//! body: u64 applied_index | i64 current_rev | i64 compact_rev | u64 lease_id_seq
//!       u64 key_count, then per key: bytes key | u32 generations,
//!           per generation: u32 revisions, per revision: i64 main | i64 sub | record
//!       record: i64 create_revision | i64 version | i64 lease | bytes value
//!       u64 compact_events, per event: i32 type | kv | u8 has_prev [| kv]
//!       kv: bytes key | i64 create | i64 mod | i64 version | i64 lease | bytes value
//!       u64 leases, per lease: i64 id | i64 ttl_secs | i64 remaining_ttl_secs
//!       u64 alarms, per alarm: u64 member_id | i32 alarm
//!       version 2 only: auth
//! auth: u8 enabled | u64 revision
//!       u64 users, per user: bytes name | bytes password_hash | u8 no_password
//!           u64 roles, per role: bytes name
//!       u64 roles, per role: bytes name | u64 perms, per perm: i32 type | bytes key | bytes end
//! bytes: u64 length | data
//! ```
//! A store whose auth store is empty is written as version 1, which members without the auth
//! store read too. Only what compaction keeps is written, so the snapshot does not depend on how far the
//! physical compaction had got; watchers and leader-local lease clocks are not replicated state
//! and are not written.

use std::borrow::Cow;
use std::io::{Read, Write};

use bytes::Bytes;

use crate::auth::AuthStore;
use crate::error::SnapshotError;
use crate::mvcc::key_index::KeyIndex;
use crate::mvcc::store::Mvcc;
use crate::proto::KeyValue;
use crate::store::KvStore;

mod read;

use read::read;

const MAGIC: &[u8; 8] = b"TLYKVSNP";
/// The version of a snapshot without auth data.
const VERSION_PLAIN: u32 = 1;
/// The version of a snapshot with the auth store after the alarms.
const VERSION_AUTH: u32 = 2;
/// Larger lengths than this in a snapshot are corruption, not data.
const FIELD_BYTES_MAX: u64 = 1 << 32;
/// Memory reserved for a field before its bytes are read; larger fields grow as they arrive.
const FIELD_RESERVE_BYTES_MAX: u64 = 1 << 20;

struct CrcWriter<'a, W: Write> {
    inner: &'a mut W,
    crc: crc32fast::Hasher,
}

impl<W: Write> CrcWriter<'_, W> {
    fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.crc.update(data);
        self.inner.write_all(data)
    }
    fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.put(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> std::io::Result<()> {
        self.put(&v.to_le_bytes())
    }
    fn i64(&mut self, v: i64) -> std::io::Result<()> {
        self.put(&v.to_le_bytes())
    }
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.u64(b.len() as u64)?;
        self.put(b)
    }
    fn kv(&mut self, kv: &KeyValue) -> std::io::Result<()> {
        self.bytes(&kv.key)?;
        self.i64(kv.create_revision)?;
        self.i64(kv.mod_revision)?;
        self.i64(kv.version)?;
        self.i64(kv.lease)?;
        self.bytes(&kv.value)
    }
}

/// Writes `store`'s replicated state; returns the checksum.
pub(crate) fn write<W: Write>(store: &KvStore, out: &mut W) -> std::io::Result<u32> {
    let mut w = CrcWriter {
        inner: out,
        crc: crc32fast::Hasher::new(),
    };
    let m = &store.mvcc;
    let with_auth = store.auth != AuthStore::default();
    w.put(MAGIC)?;
    w.u32(if with_auth {
        VERSION_AUTH
    } else {
        VERSION_PLAIN
    })?;
    w.u64(store.applied_index)?;
    w.i64(m.current_rev)?;
    w.i64(m.compact_rev)?;
    w.u64(store.lessor.id_seq)?;
    // While an entry is applied in part, the index holds its revision, beyond the current
    // one: each key is written as of the current revision, as readers see it.
    let staged = store.pending.is_some();
    // Two walks instead of a list of the kept keys: at a million keys that list would be
    // another 16 MB on top of the copy being written.
    let kept = || {
        m.index
            .iter()
            .filter_map(|(key, ki)| Some((key, as_readers_see(ki, staged, m.current_rev)?)))
            .filter(|(_, ki)| ki.survives(m.compact_rev))
    };
    w.u64(kept().count() as u64)?;
    for (key, ki) in kept() {
        write_key(&mut w, m, key, &ki)?;
    }
    w.u64(m.compact_events.len() as u64)?;
    for e in &m.compact_events {
        w.u32(e.r#type as u32)?;
        w.kv(e.kv.as_ref().expect("events carry a kv"))?;
        match &e.prev_kv {
            Some(p) => {
                w.put(&[1])?;
                w.kv(p)?;
            }
            None => w.put(&[0])?,
        }
    }
    w.u64(store.lessor.leases.len() as u64)?;
    for (id, l) in &store.lessor.leases {
        w.i64(*id)?;
        w.i64(l.ttl_secs)?;
        w.i64(l.remaining_ttl_secs)?;
    }
    w.u64(store.alarms.len() as u64)?;
    for (member, alarm) in &store.alarms {
        w.u64(*member)?;
        w.u32(*alarm as u32)?;
    }
    if with_auth {
        write_auth(&mut w, &store.auth)?;
    }
    let crc = w.crc.finalize();
    w.inner.write_all(&crc.to_le_bytes())?;
    Ok(crc)
}

fn write_auth<W: Write>(w: &mut CrcWriter<'_, W>, auth: &AuthStore) -> std::io::Result<()> {
    w.put(&[u8::from(auth.enabled())])?;
    w.u64(auth.revision())?;
    w.u64(auth.users().len() as u64)?;
    for (name, user) in auth.users() {
        w.bytes(name.as_bytes())?;
        w.bytes(user.password_hash.as_bytes())?;
        w.put(&[u8::from(user.no_password)])?;
        w.u64(user.roles.len() as u64)?;
        for role in &user.roles {
            w.bytes(role.as_bytes())?;
        }
    }
    w.u64(auth.roles().len() as u64)?;
    for (name, perms) in auth.roles() {
        w.bytes(name.as_bytes())?;
        w.u64(perms.len() as u64)?;
        for perm in perms {
            w.u32(perm.perm_type as u32)?;
            w.bytes(&perm.key)?;
            w.bytes(&perm.range_end)?;
        }
    }
    Ok(())
}

/// `ki` as readers see it: as of revision `current` while an entry is applied in part.
fn as_readers_see(ki: &KeyIndex, staged: bool, current: i64) -> Option<Cow<'_, KeyIndex>> {
    if staged {
        ki.as_of(current).map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(ki))
    }
}

fn write_key<W: Write>(
    w: &mut CrcWriter<'_, W>,
    m: &Mvcc,
    key: &Bytes,
    ki: &KeyIndex,
) -> std::io::Result<()> {
    let gens = ki.surviving_generations(m.compact_rev);
    w.bytes(key)?;
    w.u32(gens.len() as u32)?;
    for g in &gens {
        w.u32(g.len() as u32)?;
        for r in g.revisions() {
            let kv = m.record(r);
            w.i64(r.main())?;
            w.i64(r.sub())?;
            w.i64(kv.create_revision)?;
            w.i64(kv.version)?;
            w.i64(kv.lease)?;
            w.bytes(&kv.value)?;
        }
    }
    Ok(())
}

impl KvStore {
    /// A copy of the replicated state (everything a snapshot holds; no watchers), so the
    /// runtime can serialize a snapshot on another thread while this store keeps applying.
    /// Keys and values are shared, not copied.
    pub fn snapshot_copy(&self) -> KvStore {
        self.assert_no_pending_apply("snapshot_copy");
        let mut copy = KvStore::new(self.config.clone());
        copy.mvcc = self.mvcc.clone();
        copy.lessor = self.lessor.clone();
        copy.applied_index = self.applied_index;
        copy.alarms = self.alarms.clone();
        copy.auth = self.auth.clone();
        copy
    }

    /// Writes a snapshot of the replicated state. It issues many small writes: give it a
    /// buffered writer. While an entry is applied in part, the snapshot is of the state
    /// before it, as readers see it.
    pub fn snapshot<W: Write>(&self, out: &mut W) -> Result<(), SnapshotError> {
        write(self, out)?;
        Ok(())
    }

    /// Replaces the replicated state with a snapshot's. On error the store is unchanged.
    /// Watchers stay and catch up from the restored history (or get the compacted response).
    pub fn restore<R: Read>(&mut self, input: &mut R) -> Result<(), SnapshotError> {
        let mut fresh = KvStore::new(self.config.clone());
        read(&mut fresh, input)?;
        let old_current = self.mvcc.current_rev;
        // The restored state supersedes an entry applied in part on the old one.
        self.drop_pending_apply();
        self.copying = false;
        self.copy_epoch += 1;
        std::mem::swap(&mut self.mvcc, &mut fresh.mvcc);
        std::mem::swap(&mut self.alarms, &mut fresh.alarms);
        std::mem::swap(&mut self.auth, &mut fresh.auth);
        std::mem::swap(&mut self.applied_index, &mut fresh.applied_index);
        let primary = self.lessor.is_primary();
        std::mem::swap(&mut self.lessor, &mut fresh.lessor);
        if primary {
            self.lessor.promote(fresh.lessor.now(), 0);
        }
        self.watch.on_restore(old_current, &self.mvcc);
        Ok(())
    }

    /// A hash of the whole replicated state (keys, history kept by compaction, leases, alarms,
    /// revisions and applied index): equal on replicas that applied the same entries. While
    /// an entry is applied in part, the hash of the state before it.
    pub fn hash(&self) -> u32 {
        write(self, &mut std::io::sink()).expect("a sink does not fail")
    }
}
