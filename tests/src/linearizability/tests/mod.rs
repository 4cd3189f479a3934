//! Tests for the checker. Shared helpers live here; the cases are split by
//! theme into submodules.

mod accepted;
mod brute_force;
mod budget;
mod generator;
mod properties;
mod rejected;
mod text_format;
mod validation;

use super::{History, Op, OpId, Output, Verdict, Violation, check};

/// Generous enough that every test history here is decided, never Unknown.
const STATES_MAX: u64 = 2_000_000;

/// Records an op that completed with `output`.
fn completed(
    history: &mut History,
    client: u64,
    key: &str,
    op: Op,
    (invoked_at_ns, returned_at_ns): (u64, u64),
    output: Output,
) -> OpId {
    let id = history.invoke(client, key, op, invoked_at_ns);
    history
        .complete(id, output, returned_at_ns)
        .expect("test op is well-formed");
    id
}

/// Records an op whose outcome is unknown.
fn indeterminate(
    history: &mut History,
    client: u64,
    key: &str,
    op: Op,
    invoked_at_ns: u64,
) -> OpId {
    let id = history.invoke(client, key, op, invoked_at_ns);
    history.indeterminate(id).expect("test op is well-formed");
    id
}

#[track_caller]
fn assert_linearizable(history: &History) {
    let verdict = check(history, STATES_MAX);
    assert_eq!(
        verdict,
        Verdict::Linearizable,
        "expected linearizable, got: {verdict}\nhistory:\n{history}"
    );
}

#[track_caller]
fn assert_violation(history: &History) -> Violation {
    match check(history, STATES_MAX) {
        Verdict::NotLinearizable(violation) => violation,
        other => panic!("expected a violation, got: {other}\nhistory:\n{history}"),
    }
}
