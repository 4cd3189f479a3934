//! The search budget and how verdicts combine across keys.

use super::{History, Op, Output, STATES_MAX, Verdict, check, completed};

#[test]
fn exhausted_budget_yields_unknown_for_that_key() {
    let mut history = History::new();
    completed(&mut history, 1, "a", Op::Put(1), (0, 10), Output::Put);
    completed(&mut history, 1, "z", Op::Put(1), (0, 10), Output::Put);
    completed(
        &mut history,
        2,
        "z",
        Op::Read,
        (20, 30),
        Output::Read(Some(1)),
    );
    let verdict = check(&history, 1);
    assert_eq!(
        verdict,
        Verdict::Unknown {
            key: "z".to_owned(),
            states_explored: 1
        }
    );
    assert!(check(&history, STATES_MAX).is_linearizable());
}

#[test]
fn a_violation_elsewhere_wins_over_an_exhausted_budget() {
    let mut history = History::new();
    completed(&mut history, 1, "a", Op::Put(1), (0, 10), Output::Put);
    completed(&mut history, 1, "a", Op::Put(2), (20, 30), Output::Put);
    completed(
        &mut history,
        1,
        "z",
        Op::Read,
        (0, 10),
        Output::Read(Some(3)),
    );
    let verdict = check(&history, 1);
    assert_eq!(verdict.violation().map(|v| v.key()), Some("z"), "{verdict}");
}
