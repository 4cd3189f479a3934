//! Hand-written histories that must be accepted.

use super::{History, Op, Output, Verdict, assert_linearizable, check, completed, indeterminate};

#[test]
fn empty_history_is_linearizable_even_with_no_budget() {
    assert_eq!(check(&History::new(), 0), Verdict::Linearizable);
}

#[test]
fn concurrent_overlapping_ops_are_accepted_in_any_valid_order() {
    // put 1 spans the whole history; put 2 lands inside it. The reads force
    // the order put 2 < read 2 < put 1 < read 1, which real time allows.
    let mut history = History::new();
    completed(&mut history, 1, "x", Op::Put(1), (0, 100), Output::Put);
    completed(&mut history, 2, "x", Op::Put(2), (10, 90), Output::Put);
    completed(
        &mut history,
        3,
        "x",
        Op::Read,
        (20, 30),
        Output::Read(Some(2)),
    );
    completed(
        &mut history,
        3,
        "x",
        Op::Read,
        (40, 50),
        Output::Read(Some(1)),
    );
    let cas = Op::Cas {
        expected: Some(1),
        new: 3,
    };
    completed(&mut history, 4, "x", cas, (45, 95), Output::Cas(true));
    completed(
        &mut history,
        3,
        "x",
        Op::Read,
        (60, 70),
        Output::Read(Some(3)),
    );
    completed(&mut history, 5, "x", Op::Read, (0, 200), Output::Read(None));
    assert_linearizable(&history);
}

#[test]
fn ops_whose_intervals_only_touch_count_as_concurrent() {
    // The put returns at the very instant the read is invoked: the clock
    // cannot order them, so the read may still see the key absent.
    let mut history = History::new();
    completed(&mut history, 1, "x", Op::Put(1), (0, 10), Output::Put);
    completed(&mut history, 2, "x", Op::Read, (10, 20), Output::Read(None));
    assert_linearizable(&history);
}

#[test]
fn read_of_a_value_from_an_indeterminate_put_is_accepted() {
    let mut history = History::new();
    completed(&mut history, 1, "x", Op::Put(1), (0, 10), Output::Put);
    indeterminate(&mut history, 2, "x", Op::Put(2), 20);
    completed(
        &mut history,
        3,
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
        Output::Read(Some(2)),
    );
    assert_linearizable(&history);
}

#[test]
fn indeterminate_cas_assumed_not_to_have_taken_effect_is_accepted() {
    // Had the CAS to 2 taken effect before the reads, they would see 2; had
    // it taken effect between them, the CAS to 3 would fail. So it must
    // never take effect (or only after everything else, which is the same).
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
        Output::Read(Some(1)),
    );
    completed(&mut history, 3, "x", cas(3), (50, 60), Output::Cas(true));
    completed(
        &mut history,
        3,
        "x",
        Op::Read,
        (70, 80),
        Output::Read(Some(3)),
    );
    assert_linearizable(&history);
}

#[test]
fn indeterminate_put_taking_effect_after_a_later_completed_op_is_accepted() {
    let mut history = History::new();
    indeterminate(&mut history, 1, "x", Op::Put(1), 0);
    completed(&mut history, 2, "x", Op::Put(2), (10, 20), Output::Put);
    completed(
        &mut history,
        3,
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
    assert_linearizable(&history);
}

#[test]
fn indeterminate_reads_and_pending_ops_are_accepted() {
    let mut history = History::new();
    indeterminate(&mut history, 1, "x", Op::Read, 0);
    // Left pending: counts as indeterminate.
    history.invoke(2, "x", Op::Put(5), 5);
    completed(
        &mut history,
        3,
        "x",
        Op::Read,
        (30, 40),
        Output::Read(Some(5)),
    );
    assert_linearizable(&history);
}

#[test]
fn delete_then_read_absent_is_accepted() {
    let mut history = History::new();
    completed(&mut history, 1, "x", Op::Put(1), (0, 10), Output::Put);
    completed(&mut history, 1, "x", Op::Delete, (20, 30), Output::Delete);
    completed(&mut history, 2, "x", Op::Read, (40, 50), Output::Read(None));
    let cas = Op::Cas {
        expected: None,
        new: 4,
    };
    completed(&mut history, 2, "x", cas, (60, 70), Output::Cas(true));
    completed(
        &mut history,
        2,
        "x",
        Op::Read,
        (80, 90),
        Output::Read(Some(4)),
    );
    assert_linearizable(&history);
}

#[test]
fn failed_cas_is_accepted_when_the_value_differs() {
    let mut history = History::new();
    completed(&mut history, 1, "x", Op::Put(1), (0, 10), Output::Put);
    let cas = Op::Cas {
        expected: Some(9),
        new: 4,
    };
    completed(&mut history, 2, "x", cas, (20, 30), Output::Cas(false));
    completed(
        &mut history,
        2,
        "x",
        Op::Read,
        (40, 50),
        Output::Read(Some(1)),
    );
    assert_linearizable(&history);
}

#[test]
fn independent_keys_interleaved_are_accepted() {
    // Each key on its own is linearizable; mixing them up would not be
    // (both keys go through the same values at overlapping times).
    let mut history = History::new();
    for (offset, key) in [(0, "a"), (3, "b"), (6, "c")] {
        completed(
            &mut history,
            1,
            key,
            Op::Put(1),
            (offset, offset + 20),
            Output::Put,
        );
    }
    completed(&mut history, 2, "b", Op::Put(2), (25, 35), Output::Put);
    completed(
        &mut history,
        3,
        "a",
        Op::Read,
        (30, 40),
        Output::Read(Some(1)),
    );
    completed(
        &mut history,
        3,
        "b",
        Op::Read,
        (41, 50),
        Output::Read(Some(2)),
    );
    let cas = Op::Cas {
        expected: Some(1),
        new: 2,
    };
    completed(&mut history, 4, "c", cas, (28, 45), Output::Cas(true));
    completed(
        &mut history,
        4,
        "a",
        Op::Read,
        (46, 60),
        Output::Read(Some(1)),
    );
    completed(
        &mut history,
        5,
        "c",
        Op::Read,
        (50, 60),
        Output::Read(Some(2)),
    );
    assert_linearizable(&history);
}

#[test]
fn each_indeterminate_op_takes_effect_at_most_once() {
    // 30 timed-out puts of each of 1 and 2, then sequential reads that
    // alternate 1, 2, 1, ...: each read needs a fresh put, so 60 reads fit
    // and a 61st read of 1 does not. Equal timed-out ops are
    // interchangeable, which keeps this search small despite 2^60 subsets.
    let mut history = History::new();
    for round in 0..30 {
        indeterminate(&mut history, 1, "x", Op::Put(1), round);
        indeterminate(&mut history, 2, "x", Op::Put(2), round);
    }
    let read_at = |index: u64| (100 + 10 * index, 105 + 10 * index);
    for index in 0..60 {
        let seen = if index % 2 == 0 { 1 } else { 2 };
        completed(
            &mut history,
            3,
            "x",
            Op::Read,
            read_at(index),
            Output::Read(Some(seen)),
        );
    }
    assert_eq!(check(&history, 100_000), Verdict::Linearizable);

    completed(
        &mut history,
        3,
        "x",
        Op::Read,
        read_at(60),
        Output::Read(Some(1)),
    );
    let verdict = check(&history, 100_000);
    assert!(verdict.violation().is_some(), "{verdict}");
}
