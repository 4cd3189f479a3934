//! The records in revision order: an append-only log kept in fixed-size chunks.
//!
//! Revisions only grow, so every write appends to the last chunk and chunks stay full; a
//! `BTreeMap` fed keys in ascending order leaves its nodes about half empty, which costs close
//! to a hundred bytes per record. Compaction punches holes, squeezed out once a chunk is mostly
//! empty; an empty chunk is dropped.
//!
//! A record leaves out its `mod_revision`, which is the revision it is filed under, and keeps
//! its key and value in one buffer: a put's key and value lie in its write request one after
//! the other, so one slice of the request holds both. A record costs 80 bytes with its
//! revision besides the key's and value's bytes, where a `KeyValue` and its revision take 112.
//!
//! Chunks are shared (`Arc`) and copied on write, so cloning the log for a snapshot costs one
//! reference count per chunk rather than a copy of every record: only the chunk still being
//! appended to, and chunks that compaction edits, are ever copied afterwards.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use super::revision::Revision;
use crate::proto::KeyValue;

const CHUNK_ENTRIES: usize = 1024;

/// The longest key a record holds: it keeps the key's length, and the value's offset after
/// it, in `u32`s. A write request is bounded far below (`--max-request-bytes` is a `u32`);
/// what reads keys from elsewhere (a snapshot, an imported history) refuses longer ones.
pub(crate) const KEY_BYTES_MAX: usize = u32::MAX as usize - 64;

/// A [`KeyValue`] without its `mod_revision`.
#[derive(Clone, Debug)]
struct Record {
    /// The key at the start and the value at the end (with the request's bytes between them
    /// when this is a slice of the write request).
    key_and_value: Bytes,
    key_len: u32,
    value_at: u32,
    create_revision: i64,
    version: i64,
    lease: i64,
}

impl Record {
    /// The record of `kv`, holding a slice of `within` when its key and value lie in it.
    fn new(rev: Revision, kv: KeyValue, within: &Bytes) -> Self {
        assert_eq!(
            kv.mod_revision,
            rev.main(),
            "a record is filed under its revision"
        );
        let (key_and_value, value_at) = join(&kv.key, &kv.value, within);
        let offset = |n: usize| {
            u32::try_from(n)
                .expect("a key is at most KEY_BYTES_MAX, and its request's framing short")
        };
        Record {
            key_len: offset(kv.key.len()),
            value_at: offset(value_at),
            key_and_value,
            create_revision: kv.create_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }

    fn to_kv(&self, rev: Revision) -> KeyValue {
        KeyValue {
            key: self.key_and_value.slice(..self.key_len as usize),
            value: self.key_and_value.slice(self.value_at as usize..),
            create_revision: self.create_revision,
            mod_revision: rev.main(),
            version: self.version,
            lease: self.lease,
        }
    }

    fn into_kv(self, rev: Revision) -> KeyValue {
        let value = self.key_and_value.slice(self.value_at as usize..);
        let mut key = self.key_and_value;
        key.truncate(self.key_len as usize);
        KeyValue {
            key,
            value,
            create_revision: self.create_revision,
            mod_revision: rev.main(),
            version: self.version,
            lease: self.lease,
        }
    }
}

/// One buffer with `key` at its start and `value` at its end, and where the value starts: a
/// slice of `within` when both lie in its bytes with the value after the key (a put's key and
/// value in its write request); `key` itself when the value is empty (a tombstone); otherwise
/// a copy of both.
fn join(key: &Bytes, value: &Bytes, within: &Bytes) -> (Bytes, usize) {
    if value.is_empty() {
        return (key.clone(), key.len());
    }
    if let Some((key_at, value_at)) = offsets_in(within, key, value) {
        return (
            within.slice(key_at..value_at + value.len()),
            value_at - key_at,
        );
    }
    let mut both = Vec::with_capacity(key.len() + value.len());
    both.extend_from_slice(key);
    both.extend_from_slice(value);
    (Bytes::from(both), key.len())
}

/// Where `key` and `value` start in `within`, when both lie in its bytes and the value does
/// not start before the key ends. Addresses are compared, never dereferenced: bytes that lie
/// in `within`'s memory are `within`'s bytes at those offsets.
fn offsets_in(within: &[u8], key: &[u8], value: &[u8]) -> Option<(usize, usize)> {
    let base = within.as_ptr() as usize;
    let offset = |part: &[u8]| {
        let at = (part.as_ptr() as usize).checked_sub(base)?;
        (at.checked_add(part.len())? <= within.len()).then_some(at)
    };
    let (key_at, value_at) = (offset(key)?, offset(value)?);
    (value_at >= key_at + key.len()).then_some((key_at, value_at))
}

#[derive(Clone, Debug)]
struct Chunk {
    /// Ascending; kept apart from the records so a lookup searches a dense array.
    revs: Vec<Revision>,
    /// `None` where compaction removed the record. Never all `None`.
    kvs: Vec<Option<Record>>,
    live: usize,
}

impl Chunk {
    fn new(rev: Revision, record: Record) -> Self {
        let mut revs = Vec::with_capacity(CHUNK_ENTRIES);
        let mut kvs = Vec::with_capacity(CHUNK_ENTRIES);
        revs.push(rev);
        kvs.push(Some(record));
        Chunk { revs, kvs, live: 1 }
    }

    fn squeeze(&mut self) {
        let mut keep = self.kvs.iter().map(Option::is_some);
        self.revs.retain(|_| keep.next().unwrap_or(false));
        self.kvs.retain(Option::is_some);
        self.revs.shrink_to_fit();
        self.kvs.shrink_to_fit();
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct RevLog {
    chunks: VecDeque<Arc<Chunk>>,
    /// The first revision ever appended to each chunk, its lower bound even after compaction
    /// removed entries. Kept apart from the chunks so that finding a chunk searches a dense
    /// array, not one heap allocation per probe.
    firsts: VecDeque<Revision>,
    len: usize,
    top: Option<Revision>,
}

impl RevLog {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends the record of `rev`, which must be above every revision ever appended. It holds
    /// a copy of the key and the value, or the key alone for an empty value (a tombstone).
    pub(crate) fn insert(&mut self, rev: Revision, kv: KeyValue) {
        self.insert_within(rev, kv, &Bytes::new());
    }

    /// Appends the record of `rev`, which must be above every revision ever appended. It keeps
    /// a slice of `within` (the write request) when the key and the value lie in it, the key
    /// first; else a copy of them, unless the value is empty.
    pub(crate) fn insert_within(&mut self, rev: Revision, kv: KeyValue, within: &Bytes) {
        assert!(
            self.top.is_none_or(|t| rev > t),
            "revisions are appended in order"
        );
        self.top = Some(rev);
        self.len += 1;
        let record = Record::new(rev, kv, within);
        if let Some(c) = self.chunks.back_mut() {
            if c.revs.len() < CHUNK_ENTRIES {
                let c = Arc::make_mut(c);
                c.revs.push(rev);
                c.kvs.push(Some(record));
                c.live += 1;
                return;
            }
        }
        self.chunks.push_back(Arc::new(Chunk::new(rev, record)));
        self.firsts.push_back(rev);
    }

    /// The chunk that would hold `rev`: the last one starting at or below it.
    fn chunk_of(&self, rev: Revision) -> Option<usize> {
        let n = self.firsts.partition_point(|first| *first <= rev);
        n.checked_sub(1)
    }

    fn find(&self, rev: Revision) -> Option<(usize, usize)> {
        let ci = self.chunk_of(rev)?;
        let i = self.chunks[ci].revs.binary_search(&rev).ok()?;
        Some((ci, i))
    }

    pub(crate) fn get(&self, rev: &Revision) -> Option<KeyValue> {
        let (ci, i) = self.find(*rev)?;
        Some(self.chunks[ci].kvs[i].as_ref()?.to_kv(*rev))
    }

    /// Removes one record: the plain form that [`Self::remove_sorted`] is tested against.
    #[cfg(test)]
    pub(crate) fn remove(&mut self, rev: &Revision) -> Option<KeyValue> {
        let (ci, i) = self.find(*rev)?;
        self.chunks[ci].kvs[i].as_ref()?;
        let record = Arc::make_mut(&mut self.chunks[ci]).kvs[i].take()?;
        self.removed_from(ci, 1);
        Some(record.into_kv(*rev))
    }

    /// Accounts for `count` records just taken out of chunk `ci`: drops the chunk once empty,
    /// squeezes it once mostly empty.
    fn removed_from(&mut self, ci: usize, count: usize) {
        self.len -= count;
        let c = Arc::make_mut(&mut self.chunks[ci]);
        c.live -= count;
        if c.live == 0 {
            self.chunks.remove(ci);
            self.firsts.remove(ci);
        } else if c.live * 4 < c.kvs.len() && c.kvs.len() >= 64 {
            c.squeeze();
        }
    }

    /// Removes the records of `revs` (ascending), handing each to `removed`. Each chunk is
    /// found once, and searched onwards from the previous hit.
    pub(crate) fn remove_sorted(&mut self, revs: &[Revision], mut removed: impl FnMut(KeyValue)) {
        debug_assert!(revs.windows(2).all(|w| w[0] < w[1]), "ascending");
        let mut at = 0;
        let mut hits = Vec::new();
        while at < revs.len() {
            let Some(ci) = self.chunk_of(revs[at]) else {
                at += 1;
                continue;
            };
            let next_first = self.firsts.get(ci + 1).copied();
            let end = at + revs[at..].partition_point(|r| next_first.is_none_or(|f| *r < f));
            hits.clear();
            let chunk = &self.chunks[ci];
            let mut from = 0;
            for rev in &revs[at..end] {
                match chunk.revs[from..].binary_search(rev) {
                    Ok(i) => {
                        if chunk.kvs[from + i].is_some() {
                            hits.push(from + i);
                        }
                        from += i + 1;
                    }
                    Err(i) => from += i,
                }
            }
            at = end;
            if hits.is_empty() {
                continue;
            }
            let c = Arc::make_mut(&mut self.chunks[ci]);
            for &i in &hits {
                let record = c.kvs[i].take().expect("present, checked above");
                removed(record.into_kv(c.revs[i]));
            }
            self.removed_from(ci, hits.len());
        }
    }

    /// Every record from `from` on, in revision order.
    pub(crate) fn range_from(&self, from: Revision) -> impl Iterator<Item = (Revision, KeyValue)> {
        let ci = self.chunk_of(from).unwrap_or(0);
        let start = self
            .chunks
            .get(ci)
            .map_or(0, |c| c.revs.partition_point(|r| *r < from));
        self.chunks
            .iter()
            .skip(ci)
            .enumerate()
            .flat_map(move |(i, c)| {
                let s = if i == 0 { start } else { 0 };
                c.revs[s..].iter().zip(&c.kvs[s..])
            })
            .filter_map(|(r, record)| record.as_ref().map(|record| (*r, record.to_kv(*r))))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn kv(n: i64) -> KeyValue {
        KeyValue {
            mod_revision: n,
            version: 1,
            ..KeyValue::default()
        }
    }

    #[test]
    fn a_record_leaves_out_its_revision() {
        assert_eq!(std::mem::size_of::<Option<Record>>(), 64);
        let rev = Revision::new(7, 1);
        let stored = KeyValue {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
            create_revision: 3,
            mod_revision: 7,
            version: 2,
            lease: 9,
        };
        let none = Bytes::new();
        assert_eq!(Record::new(rev, stored.clone(), &none).into_kv(rev), stored);
    }

    /// Whether `part` lies in `buf`'s memory (a slice of it, not a copy).
    pub(crate) fn lies_in(part: &Bytes, buf: &Bytes) -> bool {
        let (start, end) = (buf.as_ptr() as usize, buf.as_ptr() as usize + buf.len());
        let at = part.as_ptr() as usize;
        start <= at && at + part.len() <= end
    }

    #[test]
    fn a_record_keeps_one_slice_of_the_request_its_key_and_value_lie_in() {
        let request = Bytes::from_static(b"..key==value..");
        let rev = Revision::new(4, 0);
        let kv = KeyValue {
            key: request.slice(2..5),
            value: request.slice(7..12),
            mod_revision: 4,
            version: 1,
            create_revision: 4,
            lease: 0,
        };
        let record = Record::new(rev, kv.clone(), &request);
        assert_eq!(&record.key_and_value[..], b"key==value");
        let back = record.to_kv(rev);
        assert_eq!(back, kv);
        assert!(lies_in(&back.key, &request) && lies_in(&back.value, &request));

        // Not in the buffer given, or the value before the key: a copy of both.
        for (within, kv) in [
            (Bytes::from_static(b"elsewhere"), kv.clone()),
            (
                request.clone(),
                KeyValue {
                    key: request.slice(7..12),
                    value: request.slice(2..5),
                    ..kv.clone()
                },
            ),
        ] {
            let record = Record::new(rev, kv.clone(), &within);
            assert_eq!(record.key_and_value.len(), kv.key.len() + kv.value.len());
            let back = record.to_kv(rev);
            assert_eq!(back, kv);
            assert!(!lies_in(&back.key, &request));
        }

        // A tombstone keeps its key alone.
        let tomb = KeyValue {
            key: request.slice(2..5),
            mod_revision: 4,
            ..KeyValue::default()
        };
        let record = Record::new(rev, tomb.clone(), &Bytes::new());
        assert_eq!(record.to_kv(rev), tomb);
        assert!(lies_in(&record.to_kv(rev).key, &request));
    }

    #[test]
    fn behaves_like_an_ordered_map() {
        let mut log = RevLog::new();
        let mut model = std::collections::BTreeMap::new();
        for m in 1..5_000i64 {
            for s in 0..(m % 3) {
                let r = Revision::new(m, s);
                log.insert(r, kv(m));
                model.insert(r, kv(m));
            }
        }
        // Remove most of the early records, in a scattered order.
        for m in (1..4_000i64).filter(|m| m % 7 != 0) {
            for s in 0..3 {
                let r = Revision::new(m, s);
                assert_eq!(log.remove(&r), model.remove(&r));
            }
        }
        assert_eq!(log.len(), model.len());
        for from in [0i64, 1, 500, 3_999, 4_000, 4_998, 6_000] {
            let f = Revision::new(from, 1);
            let got: Vec<_> = log.range_from(f).collect();
            let want: Vec<_> = model.range(f..).map(|(r, kv)| (*r, kv.clone())).collect();
            assert_eq!(got, want, "from {from}");
        }
        for (r, v) in &model {
            assert_eq!(log.get(r).as_ref(), Some(v));
        }
        assert_eq!(log.get(&Revision::new(2, 0)), None);
    }

    #[test]
    fn removing_in_batches_matches_removing_one_by_one() {
        let mut one_by_one = RevLog::new();
        for m in 1..6_000i64 {
            for s in 0..(m % 3) {
                one_by_one.insert(Revision::new(m, s), kv(m));
            }
        }
        let mut batched = one_by_one.clone();
        let copy = one_by_one.clone();
        let total = copy.len();
        // Batches as compaction makes them: ascending, some revisions absent or gone already,
        // spanning chunks, and emptying some chunks entirely.
        let mut step = 0u64;
        for round in 0..4i64 {
            let mut batch: Vec<Revision> = (1..6_100i64)
                .filter(|m| (m + round) % 5 != 0 || *m < 1_500)
                .flat_map(|m| (0..3).map(move |s| Revision::new(m, s)))
                .filter(|_| {
                    step = step.wrapping_mul(6364136223846793005).wrapping_add(1);
                    step >> 62 != 0
                })
                .collect();
            batch.dedup();
            let mut got = Vec::new();
            batched.remove_sorted(&batch, |kv| got.push(kv));
            let want: Vec<KeyValue> = batch.iter().filter_map(|r| one_by_one.remove(r)).collect();
            assert_eq!(got, want, "round {round}");
            assert_eq!(batched.len(), one_by_one.len());
        }
        let left: Vec<_> = batched.range_from(Revision::new(0, 0)).collect();
        let want: Vec<_> = one_by_one.range_from(Revision::new(0, 0)).collect();
        assert_eq!(left, want);
        assert!(
            one_by_one.len() < total / 2,
            "the batches removed most records"
        );
        assert_eq!(copy.len(), total, "the clone kept every record");
        assert_eq!(copy.range_from(Revision::new(0, 0)).count(), total);
    }

    #[test]
    fn a_clone_shares_chunks_and_never_sees_later_writes() {
        let mut log = RevLog::new();
        for m in 1..3_000i64 {
            log.insert(Revision::new(m, 0), kv(m));
        }
        let copy = log.clone();
        assert!(
            log.chunks
                .iter()
                .zip(&copy.chunks)
                .all(|(a, b)| Arc::ptr_eq(a, b)),
            "a clone copies no records"
        );
        log.insert(Revision::new(3_000, 0), kv(3_000));
        for m in 1..1_500i64 {
            log.remove(&Revision::new(m, 0));
        }
        assert_eq!(copy.len(), 2_999);
        assert_eq!(copy.get(&Revision::new(1, 0)), Some(kv(1)));
        assert_eq!(copy.get(&Revision::new(3_000, 0)), None);
        assert_eq!(log.get(&Revision::new(1, 0)), None);
        assert_eq!(log.len(), 1_501);
    }
}
