//! Input validation while recording a history.

use super::super::{Completion, History, HistoryError, Op, OpId, Output};

#[test]
fn response_must_come_strictly_after_invocation() {
    let mut history = History::new();
    let id = history.invoke(1, "x", Op::Put(1), 100);
    for returned_at_ns in [100, 99] {
        assert_eq!(
            history.complete(id, Output::Put, returned_at_ns),
            Err(HistoryError::ResponseNotAfterInvocation {
                op: id,
                invoked_at_ns: 100,
                returned_at_ns
            })
        );
    }
    // A rejected completion leaves the op pending, so it can still be fixed.
    assert_eq!(
        history.operation(id).map(|op| op.completion()),
        Some(Completion::Pending)
    );
    assert_eq!(history.complete(id, Output::Put, 101), Ok(()));
}

#[test]
fn an_op_can_be_resolved_only_once() {
    let mut history = History::new();
    let done = history.invoke(1, "x", Op::Put(1), 0);
    let timed_out = history.invoke(2, "x", Op::Put(2), 0);
    assert_eq!(history.complete(done, Output::Put, 10), Ok(()));
    assert_eq!(history.indeterminate(timed_out), Ok(()));
    for id in [done, timed_out] {
        assert_eq!(
            history.complete(id, Output::Put, 20),
            Err(HistoryError::AlreadyResolved { op: id })
        );
        assert_eq!(
            history.indeterminate(id),
            Err(HistoryError::AlreadyResolved { op: id })
        );
    }
}

#[test]
fn unknown_ids_are_rejected() {
    let mut history = History::new();
    let missing = OpId::new(42);
    assert_eq!(
        history.complete(missing, Output::Put, 1),
        Err(HistoryError::UnknownOp { op: missing })
    );
    assert_eq!(
        history.indeterminate(missing),
        Err(HistoryError::UnknownOp { op: missing })
    );
}

#[test]
fn outputs_must_match_the_op_kind() {
    let mut history = History::new();
    let cases = [
        (Op::Read, Output::Put),
        (Op::Put(1), Output::Read(Some(1))),
        (
            Op::Cas {
                expected: None,
                new: 1,
            },
            Output::Delete,
        ),
        (Op::Delete, Output::Cas(true)),
    ];
    for (op, output) in cases {
        let id = history.invoke(1, "x", op, 0);
        assert_eq!(
            history.complete(id, output, 1),
            Err(HistoryError::OutputMismatch {
                op: id,
                operation: op,
                output
            })
        );
    }
}

#[test]
fn errors_explain_themselves() {
    let error = HistoryError::ResponseNotAfterInvocation {
        op: OpId::new(3),
        invoked_at_ns: 10,
        returned_at_ns: 5,
    };
    assert_eq!(
        error.to_string(),
        "op 3 returned at 5 ns, not after its invocation at 10 ns"
    );
}
