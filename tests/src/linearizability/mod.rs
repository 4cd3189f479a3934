//! A linearizability checker for an etcd-like key-value register.
//!
//! Each key is an independent register holding an optional `u64` (absent at
//! the start) with the operations [`Op::Read`], [`Op::Put`], [`Op::Cas`]
//! (compare-and-set, where an expected `None` means "key absent") and
//! [`Op::Delete`]. A [`History`] records, per operation, the client, key,
//! invocation time and either a response (time and [`Output`]) or that the
//! outcome is *indeterminate* (a timeout or an ambiguous error): such an op
//! may take effect at any time after its invocation, or never.
//!
//! [`check`] splits the history by key (linearizability is compositional,
//! so keys can be checked independently) and runs the Wing & Gong search
//! with Lowe's memoization on each key, as porcupine does. Indeterminate ops
//! are given a response time of +infinity and accept any outcome; the
//! search succeeds as soon as every completed op is linearized, because the
//! remaining indeterminate ops can then take effect last or not at all.
//! Indeterminate ops with equal `Op`s are treated as interchangeable, and a
//! state whose used indeterminate ops are a superset of an explored state's
//! (same completed ops, same value) is pruned as dominated.
//!
//! Cost: linearizable histories are usually decided in a few states per op.
//! Proving a violation means exhausting every alternative before the
//! violation point, which grows quickly with concurrency and, above all,
//! with the number of indeterminate ops (each is a wildcard write that stays
//! available forever); deciding linearizability is NP-complete in general.
//! The budget turns such cases into [`Verdict::Unknown`]. Memory grows with
//! the states explored, each costing about (ops on the key / 8) bytes.
//!
//! ```ignore
//! let mut history = History::new();
//! let put = history.invoke(1, "x", Op::Put(5), 100);
//! let read = history.invoke(2, "x", Op::Read, 150);
//! history.complete(put, Output::Put, 200)?;
//! history.complete(read, Output::Read(Some(5)), 300)?;
//! assert!(check(&history, 1_000_000).is_linearizable());
//! std::fs::write("history.txt", history.to_string())?; // re-check later:
//! let reloaded: History = std::fs::read_to_string("history.txt")?.parse()?;
//! ```

mod history;
mod search;
mod states;
mod text;
mod verdict;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use history::{Completion, History, HistoryError, Op, OpId, Operation, Output};
pub use verdict::{Verdict, Violation};

use search::KeyOutcome;

/// Checks whether `history` is linearizable with respect to the register
/// model, exploring at most `states_per_key_max` distinct search states (a
/// set of linearized ops plus a register value) for each key.
///
/// Keys are checked in lexicographic order. The first key found not to be
/// linearizable is reported; otherwise, if some key exhausted its budget,
/// the first such key is reported as [`Verdict::Unknown`]. The work is
/// bounded by roughly `keys * states_per_key_max` search steps.
///
/// Input is validated while it is recorded or parsed (see [`HistoryError`]),
/// so every `History` can be checked; ops still pending count as
/// indeterminate.
pub fn check(history: &History, states_per_key_max: u64) -> Verdict {
    let mut operations_by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for operation in history.operations() {
        operations_by_key
            .entry(operation.key())
            .or_default()
            .push(operation);
    }

    let mut first_unknown = None;
    for (key, operations) in operations_by_key {
        match search::check_key(key, &operations, states_per_key_max) {
            KeyOutcome::Linearizable => {}
            KeyOutcome::NotLinearizable(violation) => {
                return Verdict::NotLinearizable(violation);
            }
            KeyOutcome::BudgetExhausted { states_explored } => {
                first_unknown.get_or_insert(Verdict::Unknown {
                    key: key.to_owned(),
                    states_explored,
                });
            }
        }
    }
    first_unknown.unwrap_or(Verdict::Linearizable)
}
