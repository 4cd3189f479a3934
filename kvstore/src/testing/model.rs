//! The naive model: every revision's whole map, kept deliberately simple.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::KvError;
use crate::proto::{Event, EventType, KeyValue};

/// A key range in the model: `[key, end)`, `None` end for a single key, empty end for "to the
/// end of the keyspace".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRange {
    key: Bytes,
    end: Option<Bytes>,
}

impl ModelRange {
    /// The range from etcd's `key` / `range_end` pair.
    pub fn from_wire(key: &Bytes, range_end: &Bytes) -> Self {
        let end = match range_end.as_ref() {
            [] => None,
            [0] => Some(Bytes::new()),
            _ => Some(range_end.clone()),
        };
        ModelRange {
            key: key.clone(),
            end,
        }
    }

    /// Whether `k` is in the range.
    pub fn contains(&self, k: &[u8]) -> bool {
        match &self.end {
            None => k == self.key.as_ref(),
            Some(e) if e.is_empty() => k >= self.key.as_ref(),
            Some(e) => k >= self.key.as_ref() && k < e.as_ref(),
        }
    }
}

/// Every revision's full map, every revision's events, and the leases by ID with their granted
/// TTL. A lease's keys are not tracked apart: they are the keys whose current version carries
/// its ID, which is what etcd's revoke deletes.
#[derive(Clone, Debug)]
pub struct Model {
    revs: Vec<BTreeMap<Bytes, KeyValue>>,
    events: Vec<Vec<Event>>,
    compact_rev: i64,
    leases: BTreeMap<i64, i64>,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

/// One write in the model's txn: a put or a range delete.
#[derive(Debug)]
pub struct ModelWrite {
    rev: i64,
    map: BTreeMap<Bytes, KeyValue>,
    events: Vec<Event>,
}

impl ModelWrite {
    /// The revision reads see inside the write.
    pub fn read_rev(&self) -> i64 {
        if self.events.is_empty() {
            self.rev - 1
        } else {
            self.rev
        }
    }

    /// The map as it stands inside the write.
    pub fn map(&self) -> &BTreeMap<Bytes, KeyValue> {
        &self.map
    }

    /// Puts `key`; returns the previous version.
    pub fn put(&mut self, key: &Bytes, value: &Bytes) -> Option<KeyValue> {
        self.put_with_lease(key, value, 0)
    }

    /// Puts `key` attached to `lease` (0: none, which also detaches it from any lease); returns
    /// the previous version.
    pub fn put_with_lease(&mut self, key: &Bytes, value: &Bytes, lease: i64) -> Option<KeyValue> {
        let prev = self.map.get(key).cloned();
        let kv = KeyValue {
            key: key.clone(),
            create_revision: prev.as_ref().map_or(self.rev, |p| p.create_revision),
            mod_revision: self.rev,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: value.clone(),
            lease,
        };
        self.map.insert(key.clone(), kv.clone());
        self.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: prev.clone(),
        });
        prev
    }

    /// Deletes the range; returns the deleted versions.
    pub fn delete(&mut self, range: &ModelRange) -> Vec<KeyValue> {
        let keys: Vec<Bytes> = self
            .map
            .keys()
            .filter(|k| range.contains(k))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for k in keys {
            let prev = self.map.remove(&k).expect("listed");
            self.events.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(KeyValue {
                    key: k.clone(),
                    mod_revision: self.rev,
                    ..KeyValue::default()
                }),
                prev_kv: Some(prev.clone()),
            });
            out.push(prev);
        }
        out
    }
}

impl Model {
    /// An empty model at revision 1.
    pub fn new() -> Self {
        Model {
            revs: vec![BTreeMap::new(), BTreeMap::new()],
            events: vec![Vec::new(), Vec::new()],
            compact_rev: 0,
            leases: BTreeMap::new(),
        }
    }

    /// The current revision.
    pub fn current(&self) -> i64 {
        self.revs.len() as i64 - 1
    }

    /// The compacted revision.
    pub fn compact_rev(&self) -> i64 {
        self.compact_rev
    }

    /// The map at `rev`.
    pub fn map_at(&self, rev: i64) -> &BTreeMap<Bytes, KeyValue> {
        &self.revs[rev as usize]
    }

    /// The events of `rev`.
    pub fn events_at(&self, rev: i64) -> &[Event] {
        &self.events[rev as usize]
    }

    /// Resolves a read revision as etcd does.
    pub fn resolve(&self, rev: i64) -> Result<i64, KvError> {
        if rev > self.current() {
            return Err(KvError::FutureRevision);
        }
        let rev = if rev <= 0 { self.current() } else { rev };
        if rev < self.compact_rev {
            return Err(KvError::Compacted);
        }
        Ok(rev)
    }

    /// The versions in `range` at `rev` (already resolved), in key order.
    pub fn range(&self, range: &ModelRange, rev: i64) -> Vec<KeyValue> {
        self.map_at(rev)
            .iter()
            .filter(|(k, _)| range.contains(k))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Starts a write at the next revision.
    pub fn begin(&self) -> ModelWrite {
        ModelWrite {
            rev: self.current() + 1,
            map: self.map_at(self.current()).clone(),
            events: Vec::new(),
        }
    }

    /// Ends a write: a new revision if it changed anything. Returns the current revision.
    pub fn commit(&mut self, w: ModelWrite) -> i64 {
        if !w.events.is_empty() {
            self.revs.push(w.map);
            self.events.push(w.events);
        }
        self.current()
    }

    /// Compacts at `rev`, with etcd's errors.
    pub fn compact(&mut self, rev: i64) -> Result<(), KvError> {
        if rev <= self.compact_rev {
            return Err(KvError::Compacted);
        }
        if rev > self.current() {
            return Err(KvError::FutureRevision);
        }
        self.compact_rev = rev;
        Ok(())
    }

    /// Grants lease `id` (non-zero) for `ttl_secs`, raised to `ttl_secs_min` as etcd raises it.
    /// Returns the granted TTL.
    pub fn lease_grant(
        &mut self,
        id: i64,
        ttl_secs: i64,
        ttl_secs_min: i64,
    ) -> Result<i64, KvError> {
        assert_ne!(id, 0, "the model cannot predict a store-chosen lease ID");
        if ttl_secs > crate::LEASE_TTL_SECS_MAX {
            return Err(KvError::LeaseTtlTooLarge);
        }
        if self.leases.contains_key(&id) {
            return Err(KvError::LeaseExists);
        }
        let granted = ttl_secs.max(ttl_secs_min);
        self.leases.insert(id, granted);
        Ok(granted)
    }

    /// The granted TTL of lease `id`, if it exists.
    pub fn lease_ttl(&self, id: i64) -> Option<i64> {
        self.leases.get(&id).copied()
    }

    /// Every lease ID, in order.
    pub fn lease_ids(&self) -> Vec<i64> {
        self.leases.keys().copied().collect()
    }

    /// The keys attached to lease `id` now, in key order.
    pub fn lease_keys(&self, id: i64) -> Vec<Bytes> {
        self.map_at(self.current())
            .values()
            .filter(|kv| kv.lease == id)
            .map(|kv| kv.key.clone())
            .collect()
    }

    /// Revokes lease `id`: its keys are deleted in one revision, in key order. Returns the
    /// current revision after it.
    pub fn lease_revoke(&mut self, id: i64) -> Result<i64, KvError> {
        if self.leases.remove(&id).is_none() {
            return Err(KvError::LeaseNotFound);
        }
        let mut w = self.begin();
        for key in self.lease_keys(id) {
            w.delete(&ModelRange::from_wire(&key, &Bytes::new()));
        }
        Ok(self.commit(w))
    }
}
