//! The records in revision order: an append-only log kept in fixed-size chunks.
//!
//! Revisions only grow, so every write appends to the last chunk and chunks stay full; a
//! `BTreeMap` fed keys in ascending order leaves its nodes about half empty, which costs close
//! to a hundred bytes per record. Compaction punches holes, squeezed out once a chunk is mostly
//! empty; an empty chunk is dropped.

use std::collections::VecDeque;

use super::revision::Revision;
use crate::proto::KeyValue;

const CHUNK_ENTRIES: usize = 1024;

#[derive(Debug)]
struct Chunk {
    /// Ascending revisions; `None` where compaction removed the record. Never empty.
    entries: Vec<(Revision, Option<KeyValue>)>,
    live: usize,
}

#[derive(Debug, Default)]
pub(crate) struct RevLog {
    chunks: VecDeque<Chunk>,
    len: usize,
}

impl RevLog {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends the record of `rev`, which must be above every revision in the log.
    pub(crate) fn insert(&mut self, rev: Revision, kv: KeyValue) {
        let last = self.chunks.back_mut();
        if let Some(c) = &last {
            let top = c.entries.last().expect("chunks are never empty").0;
            assert!(rev > top, "revisions are appended in order");
        }
        match last {
            Some(c) if c.entries.len() < CHUNK_ENTRIES => {
                c.entries.push((rev, Some(kv)));
                c.live += 1;
            }
            _ => {
                let mut entries = Vec::with_capacity(CHUNK_ENTRIES);
                entries.push((rev, Some(kv)));
                self.chunks.push_back(Chunk { entries, live: 1 });
            }
        }
        self.len += 1;
    }

    /// The chunk that would hold `rev`: the last one starting at or below it.
    fn chunk_of(&self, rev: Revision) -> Option<usize> {
        let n = self.chunks.partition_point(|c| c.entries[0].0 <= rev);
        n.checked_sub(1)
    }

    pub(crate) fn get(&self, rev: &Revision) -> Option<&KeyValue> {
        let c = &self.chunks[self.chunk_of(*rev)?];
        let i = c.entries.binary_search_by_key(rev, |e| e.0).ok()?;
        c.entries[i].1.as_ref()
    }

    pub(crate) fn remove(&mut self, rev: &Revision) -> Option<KeyValue> {
        let ci = self.chunk_of(*rev)?;
        let c = &mut self.chunks[ci];
        let i = c.entries.binary_search_by_key(rev, |e| e.0).ok()?;
        let kv = c.entries[i].1.take()?;
        c.live -= 1;
        self.len -= 1;
        if c.live == 0 {
            self.chunks.remove(ci);
        } else if c.live * 4 < c.entries.len() && c.entries.len() >= 64 {
            c.entries.retain(|e| e.1.is_some());
            c.entries.shrink_to_fit();
        }
        Some(kv)
    }

    /// Every record from `from` on, in revision order.
    pub(crate) fn range_from(&self, from: Revision) -> impl Iterator<Item = (Revision, &KeyValue)> {
        let ci = self.chunk_of(from).unwrap_or(0);
        let start = self
            .chunks
            .get(ci)
            .map_or(0, |c| c.entries.partition_point(|e| e.0 < from));
        self.chunks
            .iter()
            .skip(ci)
            .enumerate()
            .flat_map(move |(i, c)| c.entries[if i == 0 { start } else { 0 }..].iter())
            .filter_map(|(r, kv)| kv.as_ref().map(|kv| (*r, kv)))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(n: i64) -> KeyValue {
        KeyValue {
            mod_revision: n,
            version: 1,
            ..KeyValue::default()
        }
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
            let got: Vec<_> = log.range_from(f).map(|(r, kv)| (r, kv.clone())).collect();
            let want: Vec<_> = model.range(f..).map(|(r, kv)| (*r, kv.clone())).collect();
            assert_eq!(got, want, "from {from}");
        }
        for (r, v) in &model {
            assert_eq!(log.get(r), Some(v));
        }
        assert_eq!(log.get(&Revision::new(2, 0)), None);
    }
}
