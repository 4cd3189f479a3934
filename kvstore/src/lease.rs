//! Leases: TTLs, attached keys, and the leader-local expiry clock.
//!
//! The replicated part (ID, granted TTL, checkpointed remaining TTL, attached keys) is identical on
//! every member. Expiry instants exist only on the primary (the leader's lessor): like etcd,
//! followers never expire leases, and a new leader restarts every lease's clock on `promote`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::error::KvError;

/// etcd's `MaxLeaseTTL`, in seconds.
pub const LEASE_TTL_SECS_MAX: i64 = 9_000_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) ttl_secs: i64,
    /// A checkpointed remaining TTL; 0 when none.
    pub(crate) remaining_ttl_secs: i64,
    pub(crate) keys: BTreeSet<Bytes>,
    /// Leader-local; `None` on a follower.
    expiry_ms: Option<u64>,
}

impl Lease {
    fn remaining_or_full_secs(&self) -> i64 {
        if self.remaining_ttl_secs > 0 {
            self.remaining_ttl_secs
        } else {
            self.ttl_secs
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Lessor {
    pub(crate) leases: BTreeMap<i64, Lease>,
    pub(crate) id_seq: u64,
    primary: bool,
    now_ms: u64,
    min_ttl_secs: i64,
}

fn ms(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0).saturating_mul(1000)
}

/// splitmix64: spreads a sequence number into an etcd-looking lease ID.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Lessor {
    pub(crate) fn new(min_ttl_secs: i64) -> Self {
        Lessor {
            leases: BTreeMap::new(),
            id_seq: 0,
            primary: false,
            now_ms: 0,
            min_ttl_secs,
        }
    }

    pub(crate) fn is_primary(&self) -> bool {
        self.primary
    }

    pub(crate) fn now(&self) -> u64 {
        self.now_ms
    }

    pub(crate) fn set_now(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    pub(crate) fn contains(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    pub(crate) fn grant(&mut self, id: i64, ttl_secs: i64) -> Result<(i64, i64), KvError> {
        if ttl_secs > LEASE_TTL_SECS_MAX {
            return Err(KvError::LeaseTtlTooLarge);
        }
        let id = if id == 0 { self.next_id() } else { id };
        if self.leases.contains_key(&id) {
            return Err(KvError::LeaseExists);
        }
        let ttl_secs = ttl_secs.max(self.min_ttl_secs);
        let expiry_ms = self
            .primary
            .then(|| self.now_ms.saturating_add(ms(ttl_secs)));
        self.leases.insert(
            id,
            Lease {
                ttl_secs,
                remaining_ttl_secs: 0,
                keys: BTreeSet::new(),
                expiry_ms,
            },
        );
        Ok((id, ttl_secs))
    }

    fn next_id(&mut self) -> i64 {
        loop {
            self.id_seq += 1;
            let id = (mix(self.id_seq) & (i64::MAX as u64)) as i64;
            if id != 0 && !self.leases.contains_key(&id) {
                return id;
            }
        }
    }

    /// Removes the lease; returns its keys in key order.
    pub(crate) fn revoke(&mut self, id: i64) -> Result<Vec<Bytes>, KvError> {
        let lease = self.leases.remove(&id).ok_or(KvError::LeaseNotFound)?;
        Ok(lease.keys.into_iter().collect())
    }

    /// The lease's first key after `after` (its first key when `None`); `None` past its last
    /// key or when there is no such lease.
    pub(crate) fn key_after(&self, id: i64, after: Option<&Bytes>) -> Option<Bytes> {
        use std::ops::Bound;
        let lease = self.leases.get(&id)?;
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        lease
            .keys
            .range::<Bytes, _>((lower, Bound::Unbounded))
            .next()
            .cloned()
    }

    pub(crate) fn keys_of(&self, id: i64) -> Result<Vec<Bytes>, KvError> {
        let lease = self.leases.get(&id).ok_or(KvError::LeaseNotFound)?;
        Ok(lease.keys.iter().cloned().collect())
    }

    pub(crate) fn attach(&mut self, id: i64, key: Bytes) {
        let lease = self
            .leases
            .get_mut(&id)
            .expect("a put's lease is checked before the write");
        lease.keys.insert(key);
    }

    /// Whether any lease exists: without one, no key can be attached to a lease.
    pub(crate) fn has_leases(&self) -> bool {
        !self.leases.is_empty()
    }

    pub(crate) fn detach(&mut self, id: i64, key: &Bytes) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.remove(key);
        }
    }

    pub(crate) fn checkpoint(&mut self, id: i64, remaining_ttl_secs: i64) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.remaining_ttl_secs = remaining_ttl_secs;
        }
    }

    pub(crate) fn keep_alive(&mut self, id: i64, now_ms: u64) -> Result<i64, KvError> {
        self.set_now(now_ms);
        if !self.primary {
            return Err(KvError::NotPrimary);
        }
        let lease = self.leases.get_mut(&id).ok_or(KvError::LeaseNotFound)?;
        if lease.expiry_ms.is_some_and(|e| e <= now_ms) {
            // Expired and awaiting its revocation, as etcd reports it.
            return Err(KvError::LeaseNotFound);
        }
        lease.remaining_ttl_secs = 0;
        lease.expiry_ms = Some(now_ms.saturating_add(ms(lease.ttl_secs)));
        Ok(lease.ttl_secs)
    }

    /// A replicated keep-alive, applied on every member at the same index: the lease's clock
    /// restarts from the granted TTL. Every member forgets its checkpointed remaining TTL, so a
    /// later leader resumes the full TTL; the primary also moves the expiry to `now + TTL` on its
    /// own clock. Returns the granted TTL.
    pub(crate) fn renew(&mut self, id: i64) -> Result<i64, KvError> {
        let now_ms = self.now_ms;
        let lease = self.leases.get_mut(&id).ok_or(KvError::LeaseNotFound)?;
        lease.remaining_ttl_secs = 0;
        if self.primary {
            // Also when the expiry has passed: the answer must be the same on every member, and
            // a revocation already proposed still removes the lease when it is applied.
            lease.expiry_ms = Some(now_ms.saturating_add(ms(lease.ttl_secs)));
        }
        Ok(lease.ttl_secs)
    }

    /// (granted TTL, remaining TTL) in seconds. The remaining TTL is the primary's clock; a
    /// follower answers with the checkpointed or granted TTL.
    pub(crate) fn ttls(&self, id: i64, now_ms: u64) -> Option<(i64, i64)> {
        let lease = self.leases.get(&id)?;
        let remaining = match lease.expiry_ms {
            Some(e) => (e.saturating_sub(now_ms) / 1000) as i64,
            None => lease.remaining_or_full_secs(),
        };
        Some((lease.ttl_secs, remaining))
    }

    /// Leases whose expiry is at or before `now_ms`, earliest first, at most `max`.
    pub(crate) fn expired(&mut self, now_ms: u64, max: usize) -> Vec<i64> {
        self.set_now(now_ms);
        let mut due: Vec<(u64, i64)> = self
            .leases
            .iter()
            .filter_map(|(id, l)| l.expiry_ms.filter(|e| *e <= now_ms).map(|e| (e, *id)))
            .collect();
        due.sort_unstable();
        due.into_iter().take(max).map(|(_, id)| id).collect()
    }

    /// On the primary: each lease's remaining TTL at `now_ms`, in ID order, at most `max`.
    pub(crate) fn remaining(&self, now_ms: u64, max: usize) -> Vec<(i64, i64)> {
        self.leases
            .iter()
            .filter_map(|(id, l)| {
                let e = l.expiry_ms?;
                Some((*id, (e.saturating_sub(now_ms) / 1000) as i64))
            })
            .take(max)
            .collect()
    }

    /// Becomes the primary: every lease expires `extend_ms` plus its remaining TTL from now.
    pub(crate) fn promote(&mut self, now_ms: u64, extend_ms: u64) {
        self.set_now(now_ms);
        self.primary = true;
        for lease in self.leases.values_mut() {
            let ttl_ms = ms(lease.remaining_or_full_secs());
            lease.expiry_ms = Some(now_ms.saturating_add(extend_ms).saturating_add(ttl_ms));
        }
    }

    /// Stops being the primary: no lease expires here any more.
    pub(crate) fn demote(&mut self) {
        self.primary = false;
        for lease in self.leases.values_mut() {
            lease.expiry_ms = None;
        }
    }

    /// Rebuilds a lease from a snapshot.
    pub(crate) fn restore_lease(&mut self, id: i64, ttl_secs: i64, remaining_ttl_secs: i64) {
        let expiry_ms = self.primary.then(|| {
            let secs = if remaining_ttl_secs > 0 {
                remaining_ttl_secs
            } else {
                ttl_secs
            };
            self.now_ms.saturating_add(ms(secs))
        });
        self.leases.insert(
            id,
            Lease {
                ttl_secs,
                remaining_ttl_secs,
                keys: BTreeSet::new(),
                expiry_ms,
            },
        );
    }
}
