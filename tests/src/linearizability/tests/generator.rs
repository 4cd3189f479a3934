//! Seeded generators: histories produced by simulating a real register, and
//! mutations of them that are provably not linearizable.

use super::super::{Completion, History, Op, OpId, Operation, Output};

/// SplitMix64: tiny, seedable, and good enough to drive test generation.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0; the modulo bias is irrelevant here).
    pub(super) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    pub(super) fn in_range(&mut self, low: u64, high_inclusive: u64) -> u64 {
        low + self.below(high_inclusive - low + 1)
    }

    pub(super) fn percent(&mut self, chance_percent: u64) -> bool {
        self.below(100) < chance_percent
    }
}

/// Shape of a simulated run.
#[derive(Clone, Copy, Debug)]
pub(super) struct SimConfig {
    pub(super) clients: u64,
    pub(super) ops_per_client: u64,
    pub(super) keys: u64,
    /// Values are drawn from `0..values`; few values make the search harder.
    pub(super) values: u64,
    pub(super) indeterminate_percent: u64,
    /// Longest op duration; longer ops overlap more.
    pub(super) duration_max_ns: u64,
}

impl SimConfig {
    /// A small random configuration for property tests.
    pub(super) fn random_small(rng: &mut Rng) -> Self {
        Self {
            clients: rng.in_range(1, 5),
            ops_per_client: rng.in_range(1, 12),
            keys: rng.in_range(1, 3),
            values: rng.in_range(1, 4),
            indeterminate_percent: rng.below(15),
            duration_max_ns: rng.in_range(1, 40),
        }
    }
}

struct PlannedOp {
    client: u64,
    key: String,
    op: Op,
    invoked_at_ns: u64,
    returned_at_ns: u64,
    is_indeterminate: bool,
    /// When the op takes effect; `None` for an indeterminate op that never
    /// does.
    effect_at_ns: Option<u64>,
    output: Option<Output>,
}

/// Runs `config.clients` sequential clients against a real register: every
/// op takes effect at a random point within its interval (an indeterminate
/// op at a random later point, or never), and its output is whatever the
/// register answers at that point. The result is linearizable by
/// construction.
pub(super) fn simulate(config: SimConfig, rng: &mut Rng) -> History {
    let mut planned = Vec::new();
    for client in 0..config.clients {
        let mut now_ns = rng.below(10);
        for _ in 0..config.ops_per_client {
            let invoked_at_ns = now_ns + rng.below(5);
            let returned_at_ns = invoked_at_ns + rng.in_range(1, config.duration_max_ns);
            let is_indeterminate = rng.percent(config.indeterminate_percent);
            let effect_at_ns = if !is_indeterminate {
                Some(rng.in_range(invoked_at_ns, returned_at_ns))
            } else if rng.percent(60) {
                // A timed-out op may still land long after the client gave up.
                Some(invoked_at_ns + rng.below(4 * (returned_at_ns - invoked_at_ns)))
            } else {
                None
            };
            planned.push(PlannedOp {
                client,
                key: format!("k{}", rng.below(config.keys)),
                op: random_op(rng, config.values),
                invoked_at_ns,
                returned_at_ns,
                is_indeterminate,
                effect_at_ns,
                output: None,
            });
            // The client may start its next op at the same instant.
            now_ns = returned_at_ns;
        }
    }

    // Apply effects in time order; equal times are ordered at random,
    // which is fine because such ops overlap at that instant.
    let mut effect_order: Vec<(u64, u64, usize)> = planned
        .iter()
        .enumerate()
        .filter_map(|(index, op)| op.effect_at_ns.map(|at| (at, rng.next_u64(), index)))
        .collect();
    effect_order.sort_unstable();
    let mut register = std::collections::HashMap::<String, u64>::new();
    for (_, _, index) in effect_order {
        let planned_op = &mut planned[index];
        let current = register.get(&planned_op.key).copied();
        let (next, output) = apply(current, planned_op.op);
        match next {
            Some(value) => register.insert(planned_op.key.clone(), value),
            None => register.remove(&planned_op.key),
        };
        planned_op.output = Some(output);
    }

    planned.sort_by_key(|op| (op.invoked_at_ns, op.client));
    let mut history = History::new();
    for planned_op in planned {
        let id = history.invoke(
            planned_op.client,
            planned_op.key,
            planned_op.op,
            planned_op.invoked_at_ns,
        );
        let recorded = match (planned_op.is_indeterminate, planned_op.output) {
            (false, Some(output)) => history.complete(id, output, planned_op.returned_at_ns),
            _ => history.indeterminate(id),
        };
        recorded.expect("simulated ops are well-formed");
    }
    history
}

fn random_op(rng: &mut Rng, values: u64) -> Op {
    match rng.below(10) {
        0..=3 => Op::Read,
        4..=5 => Op::Put(rng.below(values)),
        6..=8 => Op::Cas {
            expected: if rng.percent(25) {
                None
            } else {
                Some(rng.below(values))
            },
            new: rng.below(values),
        },
        _ => Op::Delete,
    }
}

/// The register's sequential specification.
fn apply(current: Option<u64>, op: Op) -> (Option<u64>, Output) {
    match op {
        Op::Read => (current, Output::Read(current)),
        Op::Put(value) => (Some(value), Output::Put),
        Op::Delete => (None, Output::Delete),
        Op::Cas { expected, new } if current == expected => (Some(new), Output::Cas(true)),
        Op::Cas { .. } => (current, Output::Cas(false)),
    }
}

/// Which argument proves a mutated read impossible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MutationKind {
    /// No op ever writes the value.
    NeverWritten,
    /// Every op that writes the value is invoked after the read returned.
    WrittenOnlyLater,
    /// Every op that writes the value returned before some completed
    /// overwrite that itself returned before the read was invoked.
    Overwritten,
}

/// Replaces the output of one completed read with a value the register
/// cannot hold at any point of the read's interval, under *every*
/// linearization. (A value merely absent from the simulated run is not
/// enough: concurrent writes could be reordered to produce it.)
pub(super) fn mutate_one_read(history: &History, rng: &mut Rng) -> Option<(History, MutationKind)> {
    let reads: Vec<&Operation> = history
        .operations()
        .iter()
        .filter(|operation| operation.op() == Op::Read && operation.output().is_some())
        .collect();
    if reads.is_empty() {
        return None;
    }
    let read = reads[rng.below(reads.len() as u64) as usize];

    let same_key: Vec<&Operation> = history
        .operations()
        .iter()
        .filter(|operation| operation.key() == read.key())
        .collect();
    let largest_value = same_key
        .iter()
        .filter_map(|op| written_value(op.op()))
        .max();
    let mut options: Vec<(Option<u64>, MutationKind)> = vec![(
        Some(largest_value.map_or(0, |value| value + 1)),
        MutationKind::NeverWritten,
    )];
    let mut candidates: Vec<Option<u64>> = same_key
        .iter()
        .filter_map(|op| written_value(op.op()).map(Some))
        .collect();
    candidates.push(None);
    candidates.sort_unstable();
    candidates.dedup();
    for candidate in candidates {
        let writers: Vec<&&Operation> = same_key
            .iter()
            .filter(|op| writes(op.op(), candidate))
            .collect();
        let returned_at = read.returned_at_ns()?;
        if candidate.is_some()
            && !writers.is_empty()
            && writers.iter().all(|op| op.invoked_at_ns() > returned_at)
        {
            options.push((candidate, MutationKind::WrittenOnlyLater));
        }
        let writers_returned_max = writers
            .iter()
            .map(|op| op.returned_at_ns())
            .try_fold(0, |latest, at| at.map(|at| latest.max(at)));
        let Some(writers_returned_max) = writers_returned_max else {
            continue; // an indeterminate writer may land at any time
        };
        let overwritten_in_between = same_key.iter().any(|op| {
            surely_overwrites(op, candidate)
                && op.invoked_at_ns() > writers_returned_max
                && op
                    .returned_at_ns()
                    .is_some_and(|at| at < read.invoked_at_ns())
        });
        if overwritten_in_between {
            options.push((candidate, MutationKind::Overwritten));
        }
    }

    let (value, kind) = options[rng.below(options.len() as u64) as usize];
    let mutated = rebuild_with_read_output(history, read.id(), value);
    Some((mutated, kind))
}

fn written_value(op: Op) -> Option<u64> {
    match op {
        Op::Put(value) | Op::Cas { new: value, .. } => Some(value),
        Op::Read | Op::Delete => None,
    }
}

/// Whether `op` might leave the register holding `value` (conservatively:
/// a failed CAS counts too).
fn writes(op: Op, value: Option<u64>) -> bool {
    match (op, value) {
        (Op::Delete, None) => true,
        (_, Some(value)) => written_value(op) == Some(value),
        _ => false,
    }
}

/// Whether the completed `operation` certainly left a value other than
/// `value` in the register.
fn surely_overwrites(operation: &Operation, value: Option<u64>) -> bool {
    match (operation.op(), operation.output()) {
        (Op::Put(new), Some(_)) => Some(new) != value,
        (Op::Cas { new, .. }, Some(Output::Cas(true))) => Some(new) != value,
        (Op::Delete, Some(_)) => value.is_some(),
        _ => false,
    }
}

fn rebuild_with_read_output(history: &History, read: OpId, value: Option<u64>) -> History {
    let mut rebuilt = History::new();
    for operation in history.operations() {
        let id = rebuilt.invoke(
            operation.client(),
            operation.key(),
            operation.op(),
            operation.invoked_at_ns(),
        );
        let recorded = match operation.completion() {
            Completion::Completed { returned_at_ns, .. } if operation.id() == read => {
                rebuilt.complete(id, Output::Read(value), returned_at_ns)
            }
            Completion::Completed {
                returned_at_ns,
                output,
            } => rebuilt.complete(id, output, returned_at_ns),
            Completion::Indeterminate => rebuilt.indeterminate(id),
            Completion::Pending => Ok(()),
        };
        recorded.expect("copied ops are well-formed");
    }
    rebuilt
}

/// A small history with random intervals and random outputs (mostly not
/// linearizable), for cross-checking against the brute-force oracle.
pub(super) fn random_small_history(rng: &mut Rng) -> History {
    let mut history = History::new();
    let ops = rng.in_range(1, 7);
    let keys = rng.in_range(1, 2);
    for _ in 0..ops {
        let client = rng.below(3);
        let key = format!("k{}", rng.below(keys));
        let op = random_op(rng, 2);
        let invoked_at_ns = rng.below(12);
        let id = history.invoke(client, key, op, invoked_at_ns);
        let returned_at_ns = invoked_at_ns + rng.in_range(1, 8);
        let output = match op {
            Op::Read => Output::Read(if rng.percent(30) {
                None
            } else {
                Some(rng.below(2))
            }),
            Op::Put(_) => Output::Put,
            Op::Cas { .. } => Output::Cas(rng.percent(50)),
            Op::Delete => Output::Delete,
        };
        let recorded = if rng.percent(20) {
            history.indeterminate(id)
        } else {
            history.complete(id, output, returned_at_ns)
        };
        recorded.expect("random ops are well-formed");
    }
    history
}
