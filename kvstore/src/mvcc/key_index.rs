//! The per-key index of revisions, with etcd's generations.
//!
//! A generation is the life of a key from its creation to its deletion; its last revision is the
//! tombstone. Every generation but the last has ended; the last one is the live one unless it
//! ends in a tombstone too (the key is deleted).
//!
//! etcd marks a deleted key with a new, empty generation. Here the tombstone carries a mark
//! instead ([`TOMBSTONE_BIT`] in its stored `sub`), so a key written once and deleted keeps both
//! revisions inline: the empty generation cost every deleted key a heap allocation of about
//! 100 bytes. The mark never leaves this module; snapshots keep etcd's shape
//! ([`KeyIndex::surviving_generations`], [`KeyIndex::from_generations`]).

use smallvec::{SmallVec, smallvec};

use super::revision::Revision;

/// The revisions of one generation. Most keys are written once or twice between compactions:
/// those revisions live inline, in the index's own node.
pub(crate) type Generation = SmallVec<[Revision; 2]>;

/// Set in the stored `sub` of a tombstone. Subs count the changes of one write request, which
/// are far fewer than this.
const TOMBSTONE_BIT: i64 = 1 << 62;

fn marked(rev: Revision) -> Revision {
    Revision::new(rev.main(), rev.sub() | TOMBSTONE_BIT)
}

fn is_marked(rev: Revision) -> bool {
    rev.sub() & TOMBSTONE_BIT != 0
}

/// The revision as the rest of the store knows it.
fn plain(rev: Revision) -> Revision {
    Revision::new(rev.main(), rev.sub() & !TOMBSTONE_BIT)
}

/// Whether `g` ends in a tombstone.
fn ended(g: &Generation) -> bool {
    g.last().is_some_and(|r| is_marked(*r))
}

/// Whether `g` ended at or before revision `at`.
fn ended_by(g: &Generation, at: i64) -> bool {
    g.last().is_some_and(|r| is_marked(*r) && r.main() <= at)
}

/// Inline too: a key index costs no allocation until a key is written a third time (or
/// deleted and written again), so copying the index for a snapshot and walking it for a big
/// delete touch no other memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyIndex {
    generations: SmallVec<[Generation; 1]>,
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
            generations: smallvec![Generation::new()],
        }
    }

    /// Builds a key index from generations in etcd's shape (a snapshot's): the last revision of
    /// every generation but the last is a tombstone, and a deleted key's last generation is
    /// empty.
    pub(crate) fn from_generations(generations: Vec<Vec<Revision>>) -> Self {
        assert!(!generations.is_empty(), "a key index has a live generation");
        let count = generations.len();
        let mut out: SmallVec<[Generation; 1]> = SmallVec::new();
        for (i, revisions) in generations.into_iter().enumerate() {
            let live = i + 1 == count;
            if live && revisions.is_empty() && count > 1 {
                break;
            }
            let mut g: Generation = revisions.into_iter().map(check_plain).collect();
            if !live {
                let tomb = g
                    .last_mut()
                    .expect("an ended generation ends in a tombstone");
                *tomb = marked(*tomb);
            }
            out.push(g);
        }
        KeyIndex { generations: out }
    }

    /// Records a put at `rev`.
    pub(crate) fn put(&mut self, rev: Revision) {
        let rev = check_plain(rev);
        let last = self
            .generations
            .last_mut()
            .expect("a key index has a generation");
        if ended(last) {
            self.generations.push(smallvec![rev]);
        } else {
            last.push(rev);
        }
    }

    /// Records a deletion at `rev`. The key must be live.
    pub(crate) fn tombstone(&mut self, rev: Revision) {
        assert!(self.is_live(), "tombstone of a deleted key");
        let rev = check_plain(rev);
        self.generations
            .last_mut()
            .expect("a live key has a generation")
            .push(marked(rev));
    }

    /// The key's index as it stood at revision `at` (its later revisions dropped), or `None` if
    /// the key had no revision yet.
    pub(crate) fn as_of(&self, at: i64) -> Option<KeyIndex> {
        let mut generations: SmallVec<[Generation; 1]> = SmallVec::new();
        for g in &self.generations {
            let n = g.partition_point(|r| r.main() <= at);
            if n == 0 {
                break;
            }
            generations.push(g[..n].iter().copied().collect());
            if n < g.len() {
                break;
            }
        }
        if generations.is_empty() {
            return None;
        }
        Some(KeyIndex { generations })
    }

    /// Whether the key exists at the newest revision.
    pub(crate) fn is_live(&self) -> bool {
        self.generations
            .last()
            .is_some_and(|g| !g.is_empty() && !ended(g))
    }

    /// Whether nothing is left of the key.
    pub(crate) fn is_empty(&self) -> bool {
        self.generations.len() == 1 && self.generations[0].is_empty()
    }

    /// The revision of the key's version visible at `at`, if the key exists then.
    pub(crate) fn get(&self, at: i64) -> Option<Revision> {
        for g in self.generations.iter().rev() {
            let Some(first) = g.first() else {
                continue;
            };
            if ended_by(g, at) {
                return None;
            }
            if first.main() <= at {
                let n = g.partition_point(|r| r.main() <= at);
                return Some(plain(g[n - 1]));
            }
        }
        None
    }

    /// Where compaction at `at` cuts: every revision before (generation, index) goes, every one
    /// from it on stays; (generation count, 0) when nothing stays. Idempotent: on an index
    /// already compacted at `at` it is (0, 0).
    ///
    /// A generation goes whole once its tombstone is at or below `at`; otherwise its newest
    /// revision at or below `at` stays, as etcd keeps it.
    pub(crate) fn cut(&self, at: i64) -> (usize, usize) {
        let count = self.generations.len();
        let mut gi = 0;
        while gi < count && ended_by(&self.generations[gi], at) {
            gi += 1;
        }
        if gi == count {
            return (count, 0);
        }
        let n = self.generations[gi].partition_point(|r| r.main() <= at);
        (gi, n.saturating_sub(1))
    }

    /// Compacts at `at`, pushing the removed revisions to `removed`.
    pub(crate) fn compact(&mut self, at: i64, removed: &mut Vec<Revision>) {
        let (gi, ri) = self.cut(at);
        for g in self.generations.drain(..gi) {
            removed.extend(g.into_iter().map(plain));
        }
        match self.generations.first_mut() {
            Some(g) => removed.extend(g.drain(..ri).map(plain)),
            None => self.generations.push(Generation::new()),
        }
    }

    /// Calls `f` on every revision that survives compaction at `at`, oldest first.
    pub(crate) fn for_each_surviving(&self, at: i64, mut f: impl FnMut(Revision)) {
        for g in self.surviving_generations(at) {
            g.revisions().for_each(&mut f);
        }
    }

    /// Whether anything survives compaction at `at`.
    pub(crate) fn survives(&self, at: i64) -> bool {
        let (gi, _) = self.cut(at);
        self.generations[gi..].iter().any(|g| !g.is_empty())
    }

    /// The generations that survive compaction at `at`, oldest first, in etcd's shape: a
    /// deleted key ends with an empty generation (when anything of it survives).
    pub(crate) fn surviving_generations(&self, at: i64) -> SmallVec<[GenerationView<'_>; 2]> {
        let (gi, ri) = self.cut(at);
        let mut out: SmallVec<[GenerationView<'_>; 2]> = SmallVec::new();
        for (i, g) in self.generations.iter().enumerate().skip(gi) {
            let from = if i == gi { ri } else { 0 };
            out.push(GenerationView {
                revisions: &g[from..],
            });
        }
        let deleted = self.generations.last().is_some_and(ended);
        if deleted && !out.is_empty() {
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
    fn a_deleted_key_stays_inline_and_keeps_etcds_shape() {
        let mut ki = KeyIndex::new();
        ki.put(r(2));
        ki.tombstone(r(3));
        assert!(!ki.is_live());
        assert!(
            !ki.generations.spilled() && !ki.generations[0].spilled(),
            "a put and its delete fit inline"
        );
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
