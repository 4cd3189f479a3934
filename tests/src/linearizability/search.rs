//! The per-key search: Wing & Gong's algorithm with Lowe's memoization, as
//! in porcupine. Call and return events sit in a doubly-linked list sorted
//! by time; the search repeatedly linearizes an op whose call precedes the
//! first remaining return, lifting its events out of the list, and backtracks
//! when the first remaining return belongs to an op that cannot go next.
//! A cache of explored states (linearized ops, register value) prunes
//! states already shown to be dead ends, and also states they dominate.

use super::history::{Op, OpId, Operation, Output};
use super::states::{ExploredStates, LinearizedSet, Value};
use super::verdict::Violation;

pub(super) enum KeyOutcome {
    Linearizable,
    NotLinearizable(Violation),
    BudgetExhausted { states_explored: u64 },
}

/// Checks the ops of one key, exploring at most `states_max` states.
pub(super) fn check_key(key: &str, operations: &[&Operation], states_max: u64) -> KeyOutcome {
    // An indeterminate read has no effect and no output to explain.
    let ops: Vec<&Operation> = operations
        .iter()
        .copied()
        .filter(|operation| operation.output().is_some() || operation.op() != Op::Read)
        .collect();
    let mut linearized = LinearizedSet::new(&ops);
    let mut determinate_remaining = linearized.determinate_total();
    if determinate_remaining == 0 {
        return KeyOutcome::Linearizable;
    }

    let mut list = EntryList::new(&ops);
    let mut explored = ExploredStates::default();
    let mut states_explored: u64 = 0;

    let root = Frame::new(None, false, None, list.scan(&ops));
    let mut deepest = Deepest::record(&[], &root);
    let mut stack = vec![root];

    loop {
        let Some(frame) = stack.last_mut() else {
            return KeyOutcome::NotLinearizable(deepest.into_violation(key, &ops));
        };
        let Some(&candidate) = frame.candidates.get(frame.next_candidate) else {
            // Every way forward from this state fails: undo the op that led
            // here and let the parent frame try its next candidate.
            if let Some(op_index) = frame.entered_by {
                list.unlift(op_index);
                linearized.remove(op_index);
                if ops[op_index].output().is_some() {
                    determinate_remaining += 1;
                }
            }
            stack.pop();
            continue;
        };
        frame.next_candidate += 1;
        let operation = ops[candidate];
        let Some(next_value) = frame.next_value(operation) else {
            continue;
        };
        let is_indeterminate = operation.output().is_none();

        linearized.insert(candidate);
        if !explored.insert_unless_dominated(&linearized, next_value) {
            linearized.remove(candidate);
            continue;
        }
        if states_explored >= states_max {
            return KeyOutcome::BudgetExhausted { states_explored };
        }
        states_explored += 1;

        list.lift(candidate);
        if !is_indeterminate {
            determinate_remaining -= 1;
            // Indeterminate ops still unlinearized may simply never take
            // effect (or take effect after everything else), so we are done.
            if determinate_remaining == 0 {
                return KeyOutcome::Linearizable;
            }
        }
        let child = Frame::new(
            Some(candidate),
            is_indeterminate,
            next_value,
            list.scan(&ops),
        );
        if stack.len() > deepest.prefix.len() {
            deepest = Deepest::record(&stack, &child);
        }
        stack.push(child);
    }
}

/// Applies `op` to `value`; `None` when the recorded output contradicts the
/// value. Indeterminate ops (`output == None`) accept any outcome.
fn step(value: Value, op: Op, output: Option<Output>) -> Option<Value> {
    match op {
        Op::Read => match output {
            Some(Output::Read(seen)) => (seen == value).then_some(value),
            _ => Some(value),
        },
        Op::Put(new) => Some(Some(new)),
        Op::Delete => Some(None),
        Op::Cas { expected, new } => {
            let swapped = value == expected;
            match output {
                Some(Output::Cas(succeeded)) if succeeded != swapped => None,
                _ if swapped => Some(Some(new)),
                _ => Some(value),
            }
        }
    }
}

fn is_blind_write(op: Op) -> bool {
    matches!(op, Op::Put(_) | Op::Delete)
}

/// One level of the depth-first search: the state reached and the ops that
/// may be linearized next.
struct Frame {
    /// The op whose linearization produced this state (`None` at the root).
    entered_by: Option<usize>,
    entered_by_indeterminate: bool,
    value: Value,
    candidates: Vec<usize>,
    next_candidate: usize,
}

impl Frame {
    fn new(
        entered_by: Option<usize>,
        entered_by_indeterminate: bool,
        value: Value,
        candidates: Vec<usize>,
    ) -> Self {
        Self {
            entered_by,
            entered_by_indeterminate,
            value,
            candidates,
            next_candidate: 0,
        }
    }

    /// The value after linearizing `operation` next, or `None` when its
    /// output contradicts the current value or trying it is pointless.
    fn next_value(&self, operation: &Operation) -> Option<Value> {
        let (op, output) = (operation.op(), operation.output());
        let next_value = step(self.value, op, output)?;
        if output.is_some() {
            return Some(next_value);
        }
        // Two rules for indeterminate ops, sound because such an op may
        // also never take effect: (1) right after another indeterminate op,
        // an indeterminate blind write makes that op pointless, and the
        // parent state tries the blind write alone, reaching the same value
        // with one more op left unused; (2) an op that leaves the value
        // unchanged only uses itself up.
        let pointless =
            (self.entered_by_indeterminate && is_blind_write(op)) || next_value == self.value;
        (!pointless).then_some(next_value)
    }
}

/// The deepest point reached so far, kept as the witness of a violation.
struct Deepest {
    prefix: Vec<usize>,
    value: Value,
    candidates: Vec<usize>,
}

impl Deepest {
    /// Records the state of `frame`, whose ancestors are `stack`.
    fn record(stack: &[Frame], frame: &Frame) -> Self {
        let prefix = stack
            .iter()
            .chain(std::iter::once(frame))
            .filter_map(|frame| frame.entered_by)
            .collect();
        Self {
            prefix,
            value: frame.value,
            candidates: frame.candidates.clone(),
        }
    }

    fn into_violation(self, key: &str, ops: &[&Operation]) -> Violation {
        // The blocking op is the determinate candidate with the earliest
        // response: the first return left in the entry list.
        let blocking = self
            .candidates
            .iter()
            .copied()
            .filter_map(|index| ops[index].returned_at_ns().map(|at| (at, index)))
            .min()
            .map_or(
                self.candidates.first().copied().unwrap_or(0),
                |(_, index)| index,
            );
        let mut candidates: Vec<Operation> = self
            .candidates
            .iter()
            .map(|&index| ops[index].clone())
            .collect();
        candidates.sort_by_key(|operation| (operation.invoked_at_ns(), operation.id()));
        let prefix: Vec<OpId> = self.prefix.iter().map(|&index| ops[index].id()).collect();
        Violation::new(
            key.to_owned(),
            prefix,
            self.value,
            ops[blocking].clone(),
            candidates,
        )
    }
}

#[derive(Clone, Copy)]
struct Entry {
    op_index: usize,
    is_return: bool,
}

/// Call and return events in time order, as a doubly-linked list whose
/// removals can be undone in LIFO order ("dancing links"). Position 0 is the
/// head sentinel, positions `1..=len` hold the entries, `len + 1` is the
/// tail sentinel.
struct EntryList {
    entries: Vec<Entry>,
    next: Vec<usize>,
    prev: Vec<usize>,
    call_position: Vec<usize>,
    return_position: Vec<Option<usize>>,
}

const HEAD: usize = 0;

impl EntryList {
    fn new(ops: &[&Operation]) -> Self {
        let mut timed: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (op_index, operation) in ops.iter().enumerate() {
            timed.push((operation.invoked_at_ns(), false, op_index));
            // Ops without a response return at +infinity: they never force
            // anything to be linearized, so they get no return entry.
            if let Some(returned_at_ns) = operation.returned_at_ns() {
                timed.push((returned_at_ns, true, op_index));
            }
        }
        // On equal times calls sort before returns, so touching intervals
        // count as concurrent: the clock cannot order them.
        timed.sort_unstable();

        let tail = timed.len() + 1;
        let mut call_position = vec![0; ops.len()];
        let mut return_position = vec![None; ops.len()];
        let mut entries = Vec::with_capacity(timed.len());
        for (index, &(_, is_return, op_index)) in timed.iter().enumerate() {
            let position = index + 1;
            if is_return {
                return_position[op_index] = Some(position);
            } else {
                call_position[op_index] = position;
            }
            entries.push(Entry {
                op_index,
                is_return,
            });
        }
        Self {
            entries,
            // The head's prev and the tail's next are never followed.
            next: (1..=tail).chain([tail]).collect(),
            prev: [HEAD].into_iter().chain(0..tail).collect(),
            call_position,
            return_position,
        }
    }

    fn tail(&self) -> usize {
        self.entries.len() + 1
    }

    /// The ops whose call precedes the first remaining return, determinate
    /// ones first: they are the ones the history constrains, so trying them
    /// first finds a linearization with less backtracking. Of several equal
    /// indeterminate ops only the first is listed, since they are
    /// interchangeable (see `LinearizedSet`).
    fn scan(&self, ops: &[&Operation]) -> Vec<usize> {
        let mut determinate = Vec::new();
        let mut indeterminate: Vec<usize> = Vec::new();
        let mut position = self.next[HEAD];
        while position != self.tail() {
            let entry = self.entries[position - 1];
            if entry.is_return {
                break;
            }
            let operation = ops[entry.op_index];
            if operation.output().is_some() {
                determinate.push(entry.op_index);
            } else if !indeterminate
                .iter()
                .any(|&listed| ops[listed].op() == operation.op())
            {
                indeterminate.push(entry.op_index);
            }
            position = self.next[position];
        }
        determinate.extend(indeterminate);
        determinate
    }

    fn lift(&mut self, op_index: usize) {
        self.remove(self.call_position[op_index]);
        if let Some(position) = self.return_position[op_index] {
            self.remove(position);
        }
    }

    /// Undoes [`EntryList::lift`]; must be called in reverse lift order.
    fn unlift(&mut self, op_index: usize) {
        if let Some(position) = self.return_position[op_index] {
            self.restore(position);
        }
        self.restore(self.call_position[op_index]);
    }

    fn remove(&mut self, position: usize) {
        let (prev, next) = (self.prev[position], self.next[position]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    fn restore(&mut self, position: usize) {
        let (prev, next) = (self.prev[position], self.next[position]);
        self.next[prev] = position;
        self.prev[next] = position;
    }
}
