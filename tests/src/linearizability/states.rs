//! Bookkeeping for the search: which ops are linearized, and which states
//! have already been explored.

use std::collections::HashMap;

use super::history::{Op, Operation};

/// The register value of one key; `None` means the key is absent.
pub(super) type Value = Option<u64>;

/// The ops linearized so far: a bitset of completed ops, which every
/// linearization must include, and a canonical form of the indeterminate
/// ops used, which are optional.
///
/// Indeterminate ops with equal `Op`s are interchangeable once invoked: they
/// have no response to respect and accept any outcome. So only how many of
/// each kind have been used matters, and the set records the first that
/// many bits of the kind's group. Comparing two such sets by inclusion then
/// compares the per-kind counts.
pub(super) struct LinearizedSet {
    determinate: Bitset,
    indeterminate: Bitset,
    /// For each op index: `Determinate(bit)` or `Indeterminate(group)`.
    slots: Vec<Slot>,
    /// Per group of equal indeterminate ops: first bit, and how many used.
    groups: Vec<(usize, usize)>,
}

#[derive(Clone, Copy)]
enum Slot {
    Determinate(usize),
    Indeterminate(usize),
}

impl LinearizedSet {
    pub(super) fn new(ops: &[&Operation]) -> Self {
        let mut determinate_count = 0;
        let mut group_of_op: HashMap<Op, usize> = HashMap::new();
        let mut group_sizes: Vec<usize> = Vec::new();
        let slots: Vec<Slot> = ops
            .iter()
            .map(|operation| {
                if operation.output().is_some() {
                    determinate_count += 1;
                    return Slot::Determinate(determinate_count - 1);
                }
                let group = *group_of_op.entry(operation.op()).or_insert_with(|| {
                    group_sizes.push(0);
                    group_sizes.len() - 1
                });
                group_sizes[group] += 1;
                Slot::Indeterminate(group)
            })
            .collect();
        let mut first_bit = 0;
        let groups = group_sizes
            .iter()
            .map(|size| {
                first_bit += size;
                (first_bit - size, 0)
            })
            .collect();
        Self {
            determinate: Bitset::new(determinate_count),
            indeterminate: Bitset::new(first_bit),
            slots,
            groups,
        }
    }

    pub(super) fn determinate_total(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| matches!(slot, Slot::Determinate(_)))
            .count()
    }

    pub(super) fn insert(&mut self, op_index: usize) {
        match self.slots[op_index] {
            Slot::Determinate(bit) => self.determinate.set(bit),
            Slot::Indeterminate(group) => {
                let (first_bit, used) = &mut self.groups[group];
                self.indeterminate.set(*first_bit + *used);
                *used += 1;
            }
        }
    }

    /// Undoes [`LinearizedSet::insert`]; must be called in reverse order.
    pub(super) fn remove(&mut self, op_index: usize) {
        match self.slots[op_index] {
            Slot::Determinate(bit) => self.determinate.clear(bit),
            Slot::Indeterminate(group) => {
                let (first_bit, used) = &mut self.groups[group];
                *used -= 1;
                self.indeterminate.clear(*first_bit + *used);
            }
        }
    }
}

/// States already entered by the search. A state with the same completed
/// ops and value as an explored one, and a superset of its indeterminate
/// ops, is dominated: it can do nothing the explored state could not (the
/// extra indeterminate ops can always be left out), so it is skipped. With
/// no indeterminate ops this is porcupine's exact-match cache.
#[derive(Default)]
pub(super) struct ExploredStates {
    by_determinate: HashMap<Box<[u64]>, Vec<ExploredState>>,
}

/// The part of a state besides its completed ops.
struct ExploredState {
    value: Value,
    indeterminate: Box<[u64]>,
}

impl ExploredStates {
    /// Records the state and returns true, unless an explored state
    /// dominates it.
    pub(super) fn insert_unless_dominated(
        &mut self,
        linearized: &LinearizedSet,
        value: Value,
    ) -> bool {
        let determinate = linearized.determinate.words();
        let indeterminate = linearized.indeterminate.words();
        let new_state = || ExploredState {
            value,
            indeterminate: indeterminate.into(),
        };
        let Some(states) = self.by_determinate.get_mut(determinate) else {
            self.by_determinate
                .insert(determinate.into(), vec![new_state()]);
            return true;
        };
        if states
            .iter()
            .any(|explored| explored.dominates(value, indeterminate))
        {
            return false;
        }
        // States the new one dominates can no longer prune anything it
        // would not; dropping them keeps the subset scans short.
        states.retain(|explored| {
            explored.value != value || !Bitset::is_subset(indeterminate, &explored.indeterminate)
        });
        states.push(new_state());
        true
    }
}

impl ExploredState {
    fn dominates(&self, value: Value, indeterminate: &[u64]) -> bool {
        self.value == value && Bitset::is_subset(&self.indeterminate, indeterminate)
    }
}

struct Bitset(Vec<u64>);

impl Bitset {
    fn new(bits: usize) -> Self {
        Self(vec![0; bits.div_ceil(64)])
    }

    fn set(&mut self, bit: usize) {
        self.0[bit / 64] |= 1 << (bit % 64);
    }

    fn clear(&mut self, bit: usize) {
        self.0[bit / 64] &= !(1 << (bit % 64));
    }

    fn words(&self) -> &[u64] {
        &self.0
    }

    fn is_subset(small: &[u64], large: &[u64]) -> bool {
        small
            .iter()
            .zip(large)
            .all(|(small, large)| small & !large == 0)
    }
}
