//! The per-key index of revisions, with etcd's generations.
//!
//! A generation is the life of a key from its creation to its deletion; its last revision is the
//! tombstone. The last generation is the live one (empty when the key is deleted).

use smallvec::{SmallVec, smallvec};

use super::revision::Revision;

/// The revisions of one generation. Most keys are written once or twice between compactions:
/// those revisions live inline, in the index's own node.
pub(crate) type Generation = SmallVec<[Revision; 2]>;

/// Inline too: a key index costs no allocation until a key is deleted and written again, so
/// copying the index for a snapshot and walking it for a big delete touch no other memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyIndex {
    generations: SmallVec<[Generation; 1]>,
}

impl KeyIndex {
    pub(crate) fn new() -> Self {
        KeyIndex {
            generations: smallvec![Generation::new()],
        }
    }

    pub(crate) fn from_generations(generations: Vec<Vec<Revision>>) -> Self {
        assert!(!generations.is_empty(), "a key index has a live generation");
        KeyIndex {
            generations: generations.into_iter().map(Generation::from_vec).collect(),
        }
    }

    pub(crate) fn generations(&self) -> &[Generation] {
        &self.generations
    }

    fn last_mut(&mut self) -> &mut Generation {
        self.generations
            .last_mut()
            .expect("a key index has a live generation")
    }

    /// Records a put at `rev`.
    pub(crate) fn put(&mut self, rev: Revision) {
        self.last_mut().push(rev);
    }

    /// Records a deletion at `rev`. The key must be live.
    pub(crate) fn tombstone(&mut self, rev: Revision) {
        assert!(self.is_live(), "tombstone of a deleted key");
        self.last_mut().push(rev);
        self.generations.push(Generation::new());
    }

    /// The key's index as it stood at revision `at` (its later revisions dropped), or `None` if
    /// the key had no revision yet.
    pub(crate) fn as_of(&self, at: i64) -> Option<KeyIndex> {
        let last = self.generations.len() - 1;
        let mut generations: SmallVec<[Generation; 1]> = SmallVec::new();
        let mut deleted = false;
        for (i, g) in self.generations.iter().enumerate() {
            let n = g.partition_point(|r| r.main() <= at);
            if n == 0 {
                break;
            }
            generations.push(g[..n].iter().copied().collect());
            // A generation kept whole, other than the live one, ends with its tombstone.
            deleted = n == g.len() && i != last;
            if n < g.len() {
                break;
            }
        }
        if generations.is_empty() {
            return None;
        }
        if deleted {
            generations.push(Generation::new());
        }
        Some(KeyIndex { generations })
    }

    /// Whether the key exists at the newest revision.
    pub(crate) fn is_live(&self) -> bool {
        self.generations.last().is_some_and(|g| !g.is_empty())
    }

    /// Whether nothing is left of the key.
    pub(crate) fn is_empty(&self) -> bool {
        self.generations.len() == 1 && self.generations[0].is_empty()
    }

    /// The revision of the key's version visible at `at`, if the key exists then.
    pub(crate) fn get(&self, at: i64) -> Option<Revision> {
        let last = self.generations.len() - 1;
        for (i, g) in self.generations.iter().enumerate().rev() {
            let (Some(first), Some(tomb)) = (g.first(), g.last()) else {
                continue;
            };
            if i != last && tomb.main() <= at {
                return None;
            }
            if first.main() <= at {
                let n = g.partition_point(|r| r.main() <= at);
                return Some(g[n - 1]);
            }
        }
        None
    }

    /// Where compaction at `at` cuts: every revision before (generation, index) goes, every one
    /// from it on stays. Idempotent: on an index already compacted at `at` it is (0, 0).
    pub(crate) fn cut(&self, at: i64) -> (usize, usize) {
        let last = self.generations.len() - 1;
        let mut gi = 0;
        while gi < last {
            let tomb = self.generations[gi]
                .last()
                .expect("an ended generation ends in a tombstone");
            if tomb.main() > at {
                break;
            }
            gi += 1;
        }
        let g = &self.generations[gi];
        let n = g.partition_point(|r| r.main() <= at);
        if n == 0 {
            return (gi, 0);
        }
        // Keep the newest revision at or below `at`, unless it is the tombstone of an ended
        // generation: then the whole generation goes.
        if g.len() - (n - 1) == 1 && gi != last {
            return (gi + 1, 0);
        }
        (gi, n - 1)
    }

    /// Compacts at `at`, pushing the removed revisions to `removed`.
    pub(crate) fn compact(&mut self, at: i64, removed: &mut Vec<Revision>) {
        let (gi, ri) = self.cut(at);
        for g in self.generations.drain(..gi) {
            removed.extend(g);
        }
        let g = &mut self.generations[0];
        removed.extend(g.drain(..ri));
    }

    /// Calls `f` on every revision that survives compaction at `at`, oldest first.
    pub(crate) fn for_each_surviving(&self, at: i64, mut f: impl FnMut(Revision)) {
        let (gi, ri) = self.cut(at);
        for (i, g) in self.generations.iter().enumerate().skip(gi) {
            let from = if i == gi { ri } else { 0 };
            g[from..].iter().for_each(|r| f(*r));
        }
    }

    /// Whether anything survives compaction at `at`.
    pub(crate) fn survives(&self, at: i64) -> bool {
        let mut any = false;
        self.for_each_surviving(at, |_| any = true);
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    #[test]
    fn get_across_generations() {
        let mut ki = KeyIndex::new();
        ki.put(r(2));
        ki.put(r(4));
        ki.tombstone(r(6));
        ki.put(r(8));
        assert_eq!(ki.get(1), None);
        assert_eq!(ki.get(3), Some(r(2)));
        assert_eq!(ki.get(5), Some(r(4)));
        assert_eq!(ki.get(6), None);
        assert_eq!(ki.get(7), None);
        assert_eq!(ki.get(9), Some(r(8)));
    }

    #[test]
    fn compact_like_etcd() {
        let mut ki = KeyIndex::new();
        ki.put(r(2));
        ki.put(r(4));
        ki.tombstone(r(6));
        ki.put(r(8));
        ki.put(r(10));
        let mut removed = Vec::new();
        ki.compact(5, &mut removed);
        assert_eq!(removed, vec![r(2)]);
        assert_eq!(ki.get(5), Some(r(4)));
        removed.clear();
        ki.compact(6, &mut removed);
        assert_eq!(removed, vec![r(4), r(6)]);
        let gens = |ki: &KeyIndex| -> Vec<Vec<Revision>> {
            ki.generations().iter().map(|g| g.to_vec()).collect()
        };
        assert_eq!(gens(&ki), [vec![r(8), r(10)]]);
        removed.clear();
        ki.compact(9, &mut removed);
        assert_eq!(gens(&ki), [vec![r(8), r(10)]]);
        ki.compact(10, &mut removed);
        assert_eq!(gens(&ki), [vec![r(10)]]);
        ki.tombstone(r(11));
        removed.clear();
        ki.compact(11, &mut removed);
        assert!(ki.is_empty());
        assert_eq!(removed, vec![r(10), r(11)]);
    }

    #[test]
    fn as_of_is_the_index_built_from_the_earlier_writes_only() {
        // (revision, is a delete)
        let writes = [
            (2, false),
            (3, false),
            (5, true),
            (7, false),
            (8, true),
            (9, false),
        ];
        let build = |upto: i64| {
            let mut ki = KeyIndex::new();
            let mut any = false;
            for &(rev, delete) in writes.iter().filter(|(rev, _)| *rev <= upto) {
                any = true;
                if delete {
                    ki.tombstone(r(rev));
                } else {
                    ki.put(r(rev));
                }
            }
            any.then_some(ki)
        };
        let full = build(i64::MAX).expect("writes");
        for at in 0..12 {
            assert_eq!(full.as_of(at), build(at), "as of {at}");
        }
    }
}
