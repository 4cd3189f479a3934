//! Hand-written histories that must be rejected.

use super::{History, Op, Output, assert_violation, completed, indeterminate};

#[test]
fn stale_read_of_overwritten_value_after_acknowledged_write_is_rejected() {
    let mut history = History::new();
    let put_1 = completed(&mut history, 1, "x", Op::Put(1), (0, 10), Output::Put);
    let put_2 = completed(&mut history, 1, "x", Op::Put(2), (20, 30), Output::Put);
    let read = completed(
        &mut history,
        2,
        "x",
        Op::Read,
        (40, 50),
        Output::Read(Some(1)),
    );

    let violation = assert_violation(&history);
    assert_eq!(violation.key(), "x");
    assert_eq!(violation.linearized_prefix(), &[put_1, put_2]);
    assert_eq!(violation.value_after_prefix(), Some(2));
    assert_eq!(violation.blocking_op().id(), read);
    let candidate_ids: Vec<_> = violation.candidate_ops().iter().map(|op| op.id()).collect();
    assert_eq!(candidate_ids, vec![read]);
    let report = violation.to_string();
    assert!(report.contains("key `x`"), "{report}");
    assert!(report.contains("read:1"), "{report}");
}

#[test]
fn stale_read_of_initial_absence_after_acknowledged_write_is_rejected() {
    let mut history = History::new();
    completed(&mut history, 1, "x", Op::Put(1), (0, 10), Output::Put);
    completed(&mut history, 2, "x", Op::Read, (11, 20), Output::Read(None));
    assert_violation(&history);
}

#[test]
fn two_cas_from_the_same_expected_value_both_succeeding_is_rejected() {
    let mut history = History::new();
    completed(&mut history, 1, "x", Op::Put(0), (0, 10), Output::Put);
    let cas = |new| Op::Cas {
        expected: Some(0),
        new,
    };
    let first = completed(&mut history, 2, "x", cas(1), (20, 40), Output::Cas(true));
    let second = completed(&mut history, 3, "x", cas(2), (25, 45), Output::Cas(true));
    // Whichever CAS goes first, the other is then stuck.
    let violation = assert_violation(&history);
    assert_eq!(violation.linearized_prefix().len(), 2, "{violation}");
    assert_eq!(violation.value_after_prefix(), Some(1));
    assert_eq!(violation.linearized_prefix()[1], first);
    assert_eq!(violation.blocking_op().id(), second);
}

#[test]
fn two_cas_from_absent_both_succeeding_is_rejected() {
    let mut history = History::new();
    let cas = |new| Op::Cas {
        expected: None,
        new,
    };
    completed(&mut history, 1, "x", cas(1), (0, 40), Output::Cas(true));
    completed(&mut history, 2, "x", cas(2), (5, 45), Output::Cas(true));
    assert_violation(&history);
}

#[test]
fn read_of_a_value_never_written_is_rejected() {
    let mut history = History::new();
    completed(&mut history, 1, "x", Op::Put(1), (0, 10), Output::Put);
    completed(
        &mut history,
        2,
        "x",
        Op::Read,
        (5, 15),
        Output::Read(Some(42)),
    );
    assert_violation(&history);
}

#[test]
fn non_monotonic_reads_are_rejected() {
    // The put of 2 overlaps both reads, so each read alone is fine; but once
    // a read has seen 2, a later read cannot see the older 1 again.
    let mut history = History::new();
    completed(&mut history, 1, "x", Op::Put(1), (0, 10), Output::Put);
    completed(&mut history, 1, "x", Op::Put(2), (20, 100), Output::Put);
    completed(
        &mut history,
        2,
        "x",
        Op::Read,
        (30, 40),
        Output::Read(Some(2)),
    );
    completed(
        &mut history,
        3,
        "x",
        Op::Read,
        (50, 60),
        Output::Read(Some(1)),
    );
    assert_violation(&history);
}

#[test]
fn read_after_acknowledged_delete_seeing_the_old_value_is_rejected() {
    let mut history = History::new();
    completed(&mut history, 1, "x", Op::Put(1), (0, 10), Output::Put);
    completed(&mut history, 1, "x", Op::Delete, (20, 30), Output::Delete);
    completed(
        &mut history,
        2,
        "x",
        Op::Read,
        (40, 50),
        Output::Read(Some(1)),
    );
    assert_violation(&history);
}

#[test]
fn indeterminate_cas_cannot_both_take_effect_and_be_undone() {
    // The first read proves the CAS took effect; the later CAS from 1 then
    // cannot succeed because nothing wrote 1 again.
    let mut history = History::new();
    completed(&mut history, 1, "x", Op::Put(1), (0, 10), Output::Put);
    let cas = |new| Op::Cas {
        expected: Some(1),
        new,
    };
    indeterminate(&mut history, 2, "x", cas(2), 20);
    completed(
        &mut history,
        3,
        "x",
        Op::Read,
        (30, 40),
        Output::Read(Some(2)),
    );
    completed(&mut history, 3, "x", cas(3), (50, 60), Output::Cas(true));
    assert_violation(&history);
}

#[test]
fn a_violation_on_one_key_is_reported_with_that_key_and_keys_do_not_leak() {
    let mut history = History::new();
    completed(&mut history, 1, "a", Op::Put(7), (0, 10), Output::Put);
    completed(&mut history, 2, "b", Op::Put(8), (5, 15), Output::Put);
    completed(
        &mut history,
        3,
        "a",
        Op::Read,
        (20, 30),
        Output::Read(Some(7)),
    );
    // 7 was only ever written to "a".
    completed(
        &mut history,
        3,
        "b",
        Op::Read,
        (40, 50),
        Output::Read(Some(7)),
    );
    let violation = assert_violation(&history);
    assert_eq!(violation.key(), "b");
}
