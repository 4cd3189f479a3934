//! A second checker that tries every order of a small history, straight from the definition
//! of linearizability: the search, with its pruning rules, must agree with it.

use std::collections::BTreeMap;

use super::super::{History, Op, Operation, Output};
use super::generator::{Rng, SimConfig, mutate_one_read, random_small_history, simulate};
use super::{STATES_MAX, Verdict, check};

/// Whether some order of all completed ops plus any subset of indeterminate
/// ops is legal for the register and respects real time (an op that
/// returned strictly before another was invoked comes first). Exponential:
/// only for a handful of ops per key.
fn brute_force_linearizable(history: &History) -> bool {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for operation in history.operations() {
        by_key.entry(operation.key()).or_default().push(operation);
    }
    by_key
        .values()
        .all(|ops| extend(ops, &mut vec![false; ops.len()], None))
}

fn extend(ops: &[&Operation], placed: &mut [bool], value: Option<u64>) -> bool {
    let all_completed_placed = ops
        .iter()
        .zip(placed.iter())
        .all(|(op, &is_placed)| is_placed || op.output().is_none());
    if all_completed_placed {
        return true;
    }
    for next in 0..ops.len() {
        if placed[next] {
            continue;
        }
        let must_wait = ops.iter().enumerate().any(|(other, op)| {
            !placed[other]
                && other != next
                && op
                    .returned_at_ns()
                    .is_some_and(|at| at < ops[next].invoked_at_ns())
        });
        if must_wait {
            continue;
        }
        let Some(next_value) = apply(value, ops[next]) else {
            continue;
        };
        placed[next] = true;
        let found = extend(ops, placed, next_value);
        placed[next] = false;
        if found {
            return true;
        }
    }
    false
}

/// `None` if the op's recorded output is impossible from `value`.
fn apply(value: Option<u64>, operation: &Operation) -> Option<Option<u64>> {
    let output = operation.output();
    match operation.op() {
        Op::Read => match output {
            Some(Output::Read(seen)) if seen != value => None,
            _ => Some(value),
        },
        Op::Put(new) => Some(Some(new)),
        Op::Delete => Some(None),
        Op::Cas { expected, new } => {
            let swapped = expected == value;
            if output.is_some_and(|output| output != Output::Cas(swapped)) {
                return None;
            }
            Some(if swapped { Some(new) } else { value })
        }
    }
}

#[track_caller]
fn assert_agrees_with_oracle(history: &History, context: &str) -> bool {
    let expected = brute_force_linearizable(history);
    let verdict = check(history, STATES_MAX);
    assert!(
        !matches!(verdict, Verdict::Unknown { .. }),
        "{context}: {verdict}\n{history}"
    );
    assert_eq!(
        verdict.is_linearizable(),
        expected,
        "{context}: checker says {verdict}, oracle says {expected}\n{history}"
    );
    expected
}

#[test]
fn checker_agrees_with_brute_force_on_random_small_histories() {
    let mut accepted = 0;
    let mut rejected = 0;
    for seed in 0..20_000 {
        let history = random_small_history(&mut Rng::new(seed));
        if assert_agrees_with_oracle(&history, &format!("seed {seed}")) {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    // Both outcomes must be well represented for the comparison to mean much.
    assert!(
        accepted > 2_000 && rejected > 2_000,
        "{accepted} / {rejected}"
    );
}

#[test]
fn checker_agrees_with_brute_force_on_small_simulated_and_mutated_histories() {
    let mut rejected = 0;
    for seed in 0..6_000 {
        let mut rng = Rng::new(seed);
        let config = SimConfig {
            clients: rng.in_range(1, 3),
            ops_per_client: rng.in_range(1, 3),
            keys: 1,
            values: rng.in_range(1, 3),
            indeterminate_percent: 25,
            duration_max_ns: rng.in_range(1, 15),
        };
        let history = simulate(config, &mut rng);
        assert!(assert_agrees_with_oracle(&history, &format!("seed {seed}")));
        if let Some((mutated, _)) = mutate_one_read(&history, &mut rng) {
            let context = format!("seed {seed} mutated");
            assert!(!assert_agrees_with_oracle(&mutated, &context));
            rejected += 1;
        }
    }
    assert!(rejected > 1_000, "only {rejected} mutated histories");
}
