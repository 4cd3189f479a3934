//! The text dump/parse format.

use super::super::{Completion, History, HistoryError, Op, OpId, Output};
use super::{completed, indeterminate};

#[test]
fn every_op_kind_and_awkward_keys_round_trip() {
    let mut history = History::new();
    completed(
        &mut history,
        1,
        "plain",
        Op::Put(5),
        (100, 200),
        Output::Put,
    );
    completed(
        &mut history,
        2,
        "with space",
        Op::Read,
        (150, 300),
        Output::Read(Some(5)),
    );
    completed(
        &mut history,
        2,
        "100%\tüñí",
        Op::Read,
        (310, 400),
        Output::Read(None),
    );
    indeterminate(
        &mut history,
        3,
        "",
        Op::Cas {
            expected: None,
            new: 7,
        },
        160,
    );
    let cas = Op::Cas {
        expected: Some(5),
        new: u64::MAX,
    };
    completed(
        &mut history,
        3,
        "#not-a-comment",
        cas,
        (170, 250),
        Output::Cas(true),
    );
    completed(&mut history, 4, "x", cas, (171, 251), Output::Cas(false));
    completed(&mut history, 4, "x", Op::Delete, (260, 270), Output::Delete);
    history.invoke(u64::MAX, "x", Op::Delete, 500);

    let text = history.to_string();
    let parsed: History = text.parse().expect("a dump parses");
    assert_eq!(parsed, history, "{text}");
    assert!(text.contains(" with%20space "), "{text}");
    assert!(text.contains(" 100%25%09%C3%BC"), "{text}");
    assert!(text.contains(" % 160 cas:nil:7 indeterminate"), "{text}");
    assert!(text.contains(" delete pending"), "{text}");
}

#[test]
fn documented_example_parses() {
    let text = "\
# <op_id> <client> <key> <invoked_at_ns> <op> <returned_at_ns> <output>
0 1 x 100 put:5 200 put
1 2 x 150 read 300 read:5

2 2 x 310 read 400 read:nil
3 3 x 160 cas:nil:7 indeterminate
4 3 x 170 cas:5:8 250 cas:true
5 1 x 500 delete pending
";
    let history: History = text.parse().expect("the documented example parses");
    assert_eq!(history.len(), 6);
    let cas = history.operation(OpId::new(4)).expect("op 4 exists");
    assert_eq!(
        cas.op(),
        Op::Cas {
            expected: Some(5),
            new: 8
        }
    );
    assert_eq!(
        cas.completion(),
        Completion::Completed {
            returned_at_ns: 250,
            output: Output::Cas(true)
        }
    );
    assert_eq!(
        history.operation(OpId::new(3)).map(|op| op.completion()),
        Some(Completion::Indeterminate)
    );
}

#[test]
fn ids_need_only_be_unique_and_fresh_ids_avoid_them() {
    let mut history: History = "7 1 x 10 put:1 20 put\n0 1 x 30 read 40 read:1\n"
        .parse()
        .expect("valid");
    let fresh = [
        history.invoke(1, "x", Op::Read, 50),
        history.invoke(1, "x", Op::Read, 60),
    ];
    assert_eq!(fresh, [OpId::new(1), OpId::new(2)]);
    let mut all: Vec<u64> = history
        .operations()
        .iter()
        .map(|op| op.id().get())
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 4);
}

#[test]
fn malformed_lines_are_reported_with_their_line_number() {
    let cases = [
        "0 1 x 10 put:1 20",           // missing output
        "0 1 x 10 put:1 20 put extra", // too many fields
        "0 1 x ten put:1 20 put",      // bad number
        "0 1 x 10 write:1 20 put",     // unknown op
        "0 1 x 10 put:1 20 read:1x",   // bad output value
        "0 1 x 10 cas:1 20 cas:true",  // cas without new value
        "0 1 x%G1 10 read 20 read:1",  // bad escape
        "0 1 x%FF 10 read 20 read:1",  // not UTF-8
        "-1 1 x 10 read 20 read:1",    // negative id
        "0 1 x 10 read 20 pending",    // pending with a response time
    ];
    for case in cases {
        let text = format!("# header\n\n{case}\n");
        match text.parse::<History>() {
            Err(HistoryError::Parse { line_number: 3, .. }) => {}
            other => panic!("{case:?} gave {other:?}"),
        }
    }
}

#[test]
fn semantically_invalid_lines_are_rejected_with_a_typed_error() {
    let duplicate = "0 1 x 10 put:1 20 put\n0 2 x 15 read 25 read:1\n";
    match duplicate.parse::<History>() {
        Err(HistoryError::InvalidLine { line_number, error }) => {
            assert_eq!(line_number, 2);
            assert_eq!(*error, HistoryError::DuplicateOpId { op: OpId::new(0) });
        }
        other => panic!("{other:?}"),
    }

    let backwards = "0 1 x 20 put:1 10 put\n";
    match backwards.parse::<History>() {
        Err(HistoryError::InvalidLine {
            line_number: 1,
            error,
        }) => assert!(matches!(
            *error,
            HistoryError::ResponseNotAfterInvocation {
                invoked_at_ns: 20,
                returned_at_ns: 10,
                ..
            }
        )),
        other => panic!("{other:?}"),
    }

    let mismatch = "0 1 x 10 put:1 20 cas:true\n";
    match mismatch.parse::<History>() {
        Err(HistoryError::InvalidLine { error, .. }) => {
            assert!(matches!(*error, HistoryError::OutputMismatch { .. }));
        }
        other => panic!("{other:?}"),
    }
}
