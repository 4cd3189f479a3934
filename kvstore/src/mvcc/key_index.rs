//! The per-key index of revisions, with etcd's generations.
//!
//! A generation is the life of a key from its creation to its deletion; its last revision is the
//! tombstone. Every generation but the last has ended; the last one is the live one unless it
//! ends in a tombstone too (the key is deleted).
//!
//! etcd keeps a list of generations and marks a deleted key with a new, empty one. Here the
//! tombstone carries a mark instead ([`TOMBSTONE_BIT`] in its stored `sub`), and the revisions
//! of all generations sit in one list that the marks split. The mark never leaves this module;
//! snapshots keep etcd's shape ([`KeyIndex::surviving_generations`],
//! [`KeyIndex::from_generations`]).

use smallvec::SmallVec;

use super::revision::Revision;

/// Set in the stored `sub` of a tombstone. Subs count the changes of one write request, which
/// are far fewer than this.
const TOMBSTONE_BIT: i64 = 1 << 62;

fn marked(rev: Revision) -> Revision {
    Revision::new(rev.main(), rev.sub() | TOMBSTONE_BIT)
}

fn is_marked(rev: &Revision) -> bool {
    rev.sub() & TOMBSTONE_BIT != 0
}

/// The revision as the rest of the store knows it.
fn plain(rev: Revision) -> Revision {
    Revision::new(rev.main(), rev.sub() & !TOMBSTONE_BIT)
}

/// Every revision of the key, oldest first, in one list: a marked tombstone ends its
/// generation, so the generations need no storage of their own. Most keys hold one revision
/// between compactions, and it lives inline in the index's own node (the index costs 24 bytes
/// a key besides its name, about a third of a list of generations); a key written again or
/// deleted spills its revisions to one heap allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyIndex {
    revisions: SmallVec<[Revision; 1]>,
}

/// One generation of [`KeyIndex::surviving_generations`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct GenerationView<'a> {
    revisions: &'a [Revision],
}

impl GenerationView<'_> {
    pub(crate) fn len(&self) -> usize {
        self.revisions.len()
    }

    pub(crate) fn revisions(&self) -> impl Iterator<Item = Revision> + '_ {
        self.revisions.iter().map(|r| plain(*r))
    }
}

impl KeyIndex {
    pub(crate) fn new() -> Self {
        KeyIndex {
            revisions: SmallVec::new(),
        }
    }

    /// Builds a key index from generations in etcd's shape (a snapshot's): the last revision of
    /// every generation but the last is a tombstone, and a deleted key's last generation is
    /// empty.
    pub(crate) fn from_generations(generations: Vec<Vec<Revision>>) -> Self {
        assert!(!generations.is_empty(), "a key index has a live generation");
        let count = generations.len();
        let mut revisions: SmallVec<[Revision; 1]> = SmallVec::new();
        for (i, generation) in generations.into_iter().enumerate() {
            let ended = i + 1 < count;
            assert!(
                !ended || !generation.is_empty(),
                "an ended generation ends in a tombstone"
            );
            let last = generation.len();
            revisions.extend(generation.into_iter().enumerate().map(|(j, r)| {
                let r = check_plain(r);
                if ended && j + 1 == last { marked(r) } else { r }
            }));
        }
        KeyIndex { revisions }
    }

    /// Records a put at `rev`: the live generation grows, or a new one begins after a
    /// tombstone.
    pub(crate) fn put(&mut self, rev: Revision) {
        self.revisions.push(check_plain(rev));
    }

    /// Records a deletion at `rev`. The key must be live.
    pub(crate) fn tombstone(&mut self, rev: Revision) {
        assert!(self.is_live(), "tombstone of a deleted key");
        self.revisions.push(marked(check_plain(rev)));
    }

    /// How many revisions are at or below `at`: revisions only grow along the list.
    fn upto(&self, at: i64) -> usize {
        self.revisions.partition_point(|r| r.main() <= at)
    }

    /// The key's index as it stood at revision `at` (its later revisions dropped), or `None` if
    /// the key had no revision yet.
    pub(crate) fn as_of(&self, at: i64) -> Option<KeyIndex> {
        let n = self.upto(at);
        (n > 0).then(|| KeyIndex {
            revisions: self.revisions[..n].iter().copied().collect(),
        })
    }

    /// Whether the key exists at the newest revision.
    pub(crate) fn is_live(&self) -> bool {
        self.revisions.last().is_some_and(|r| !is_marked(r))
    }

    /// The oldest revision the key holds.
    pub(crate) fn oldest(&self) -> Option<Revision> {
        self.revisions.first().map(|r| plain(*r))
    }

    /// Whether nothing is left of the key.
    pub(crate) fn is_empty(&self) -> bool {
        self.revisions.is_empty()
    }

    /// The revision of the key's version visible at `at`, if the key exists then.
    pub(crate) fn get(&self, at: i64) -> Option<Revision> {
        let n = self.upto(at);
        let newest = self.revisions[..n].last()?;
        (!is_marked(newest)).then(|| plain(*newest))
    }

    /// Where compaction at `at` cuts: every revision before the returned position goes, every
    /// one from it on stays. Idempotent: on an index already compacted at `at` it is 0.
    ///
    /// A generation goes whole once its tombstone is at or below `at`; otherwise its newest
    /// revision at or below `at` stays, as etcd keeps it.
    fn cut(&self, at: i64) -> usize {
        let n = self.upto(at);
        let ended = self.revisions[..n]
            .iter()
            .rposition(is_marked)
            .map_or(0, |i| i + 1);
        // Between the last tombstone at or below `at` and `n`, all revisions are of one live
        // generation: the newest of them stays.
        if n > ended { n - 1 } else { ended }
    }

    /// Compacts at `at`, pushing the removed revisions to `removed`.
    pub(crate) fn compact(&mut self, at: i64, removed: &mut Vec<Revision>) {
        let cut = self.cut(at);
        removed.extend(self.revisions.drain(..cut).map(plain));
    }

    /// Calls `f` on every revision that survives compaction at `at`, oldest first.
    pub(crate) fn for_each_surviving(&self, at: i64, f: impl FnMut(Revision)) {
        self.revisions[self.cut(at)..]
            .iter()
            .map(|r| plain(*r))
            .for_each(f);
    }

    /// Whether anything survives compaction at `at`.
    pub(crate) fn survives(&self, at: i64) -> bool {
        self.cut(at) < self.revisions.len()
    }

    /// The generations that survive compaction at `at`, oldest first, in etcd's shape: a
    /// deleted key ends with an empty generation (when anything of it survives).
    pub(crate) fn surviving_generations(&self, at: i64) -> SmallVec<[GenerationView<'_>; 2]> {
        let surviving = &self.revisions[self.cut(at)..];
        let mut out: SmallVec<[GenerationView<'_>; 2]> = surviving
            .split_inclusive(is_marked)
            .map(|revisions| GenerationView { revisions })
            .collect();
        if surviving.last().is_some_and(is_marked) {
            out.push(GenerationView { revisions: &[] });
        }
        out
    }
}

/// Whether a key index can hold `rev`: its sub must leave the tombstone mark free.
pub(crate) fn storable(rev: Revision) -> bool {
    (0..TOMBSTONE_BIT).contains(&rev.sub())
}

fn check_plain(rev: Revision) -> Revision {
    assert!(storable(rev), "sub-revision {} out of range", rev.sub());
    rev
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    #[test]
    fn a_key_written_once_costs_24_bytes_of_index() {
        let mut ki = KeyIndex::new();
        ki.put(r(2));
        assert_eq!(std::mem::size_of::<KeyIndex>(), 24);
        assert!(!ki.revisions.spilled());
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
    fn a_deleted_key_keeps_etcds_shape() {
        let mut ki = KeyIndex::new();
        ki.put(r(2));
        ki.tombstone(r(3));
        assert!(!ki.is_live());
        let shape: Vec<Vec<Revision>> = ki
            .surviving_generations(0)
            .iter()
            .map(|g| g.revisions().collect())
            .collect();
        assert_eq!(
            shape,
            vec![vec![r(2), r(3)], vec![]],
            "etcd's empty generation"
        );
        assert_eq!(KeyIndex::from_generations(shape), ki);
        ki.put(r(5));
        assert!(ki.is_live());
        assert_eq!(ki.get(4), None);
        assert_eq!(ki.get(5), Some(r(5)));
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
            ki.surviving_generations(i64::MIN)
                .iter()
                .map(|g| g.revisions().collect())
                .collect()
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
