//! The recorded history: operations, their outcomes, and the builder that
//! validates them as they are recorded.

use std::collections::HashMap;
use std::fmt;

/// Identifies one operation within a [`History`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(u64);

impl OpId {
    /// Wraps a raw id (e.g. one read back from a saved history).
    pub fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw id, as written in the text format.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An operation on a single key of the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Returns the current value, `None` when the key is absent.
    Read,
    /// Unconditionally sets the value.
    Put(u64),
    /// Sets the value to `new` only if the current value equals `expected`
    /// (`None` meaning "the key is absent").
    Cas { expected: Option<u64>, new: u64 },
    /// Removes the key (a no-op if it is already absent).
    Delete,
}

/// What a completed operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// The value seen by a [`Op::Read`].
    Read(Option<u64>),
    /// A [`Op::Put`] was acknowledged.
    Put,
    /// Whether a [`Op::Cas`] succeeded.
    Cas(bool),
    /// A [`Op::Delete`] was acknowledged.
    Delete,
}

impl Output {
    fn matches(self, op: Op) -> bool {
        matches!(
            (op, self),
            (Op::Read, Output::Read(_))
                | (Op::Put(_), Output::Put)
                | (Op::Cas { .. }, Output::Cas(_))
                | (Op::Delete, Output::Delete)
        )
    }
}

/// How an operation ended, as far as the client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Completion {
    /// Neither completed nor declared indeterminate yet. The checker treats
    /// it exactly like [`Completion::Indeterminate`]: a run that stopped
    /// while the op was in flight cannot tell whether it took effect.
    Pending,
    /// The op returned `output` at `returned_at_ns`.
    Completed { returned_at_ns: u64, output: Output },
    /// The op timed out or failed in a way that does not prove it did
    /// nothing: it may take effect at any time after its invocation, or
    /// never.
    Indeterminate,
}

/// One recorded operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    id: OpId,
    client: u64,
    key: String,
    op: Op,
    invoked_at_ns: u64,
    completion: Completion,
}

impl Operation {
    pub(super) fn new(
        id: OpId,
        client: u64,
        key: String,
        op: Op,
        invoked_at_ns: u64,
        completion: Completion,
    ) -> Self {
        Self {
            id,
            client,
            key,
            op,
            invoked_at_ns,
            completion,
        }
    }

    pub fn id(&self) -> OpId {
        self.id
    }

    pub fn client(&self) -> u64 {
        self.client
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn op(&self) -> Op {
        self.op
    }

    pub fn invoked_at_ns(&self) -> u64 {
        self.invoked_at_ns
    }

    pub fn completion(&self) -> Completion {
        self.completion
    }

    /// The response time, or `None` when the op never completed (it then
    /// counts as returning at +infinity).
    pub fn returned_at_ns(&self) -> Option<u64> {
        match self.completion {
            Completion::Completed { returned_at_ns, .. } => Some(returned_at_ns),
            Completion::Pending | Completion::Indeterminate => None,
        }
    }

    /// The output, or `None` when the op never completed.
    pub fn output(&self) -> Option<Output> {
        match self.completion {
            Completion::Completed { output, .. } => Some(output),
            Completion::Pending | Completion::Indeterminate => None,
        }
    }

    fn validate(&self) -> Result<(), HistoryError> {
        if let Completion::Completed {
            returned_at_ns,
            output,
        } = self.completion
        {
            if returned_at_ns <= self.invoked_at_ns {
                return Err(HistoryError::ResponseNotAfterInvocation {
                    op: self.id,
                    invoked_at_ns: self.invoked_at_ns,
                    returned_at_ns,
                });
            }
            if !output.matches(self.op) {
                return Err(HistoryError::OutputMismatch {
                    op: self.id,
                    operation: self.op,
                    output,
                });
            }
        }
        Ok(())
    }
}

/// Why a history (or one step of building it) was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryError {
    /// The id was never returned by [`History::invoke`].
    UnknownOp { op: OpId },
    /// Two operations share an id (only possible in parsed text).
    DuplicateOpId { op: OpId },
    /// The op was already completed or declared indeterminate.
    AlreadyResolved { op: OpId },
    /// Responses must come strictly after invocations.
    ResponseNotAfterInvocation {
        op: OpId,
        invoked_at_ns: u64,
        returned_at_ns: u64,
    },
    /// The output kind does not fit the operation (e.g. `Cas(true)` for a
    /// `Put`).
    OutputMismatch {
        op: OpId,
        operation: Op,
        output: Output,
    },
    /// A line of the text format is malformed.
    Parse { line_number: usize, reason: String },
    /// A well-formed line of the text format describes an invalid op.
    InvalidLine {
        line_number: usize,
        error: Box<HistoryError>,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOp { op } => write!(f, "op {op} was never invoked"),
            Self::DuplicateOpId { op } => write!(f, "op id {op} is used twice"),
            Self::AlreadyResolved { op } => {
                write!(f, "op {op} was already completed or declared indeterminate")
            }
            Self::ResponseNotAfterInvocation {
                op,
                invoked_at_ns,
                returned_at_ns,
            } => write!(
                f,
                "op {op} returned at {returned_at_ns} ns, not after its invocation at {invoked_at_ns} ns"
            ),
            Self::OutputMismatch {
                op,
                operation,
                output,
            } => write!(f, "op {op} is {operation:?} but its output is {output:?}"),
            Self::Parse {
                line_number,
                reason,
            } => write!(f, "line {line_number}: {reason}"),
            Self::InvalidLine { line_number, error } => write!(f, "line {line_number}: {error}"),
        }
    }
}

impl std::error::Error for HistoryError {}

/// A concurrent history of register operations, possibly on many keys.
///
/// Record each operation with [`History::invoke`] when the client sends it,
/// then [`History::complete`] or [`History::indeterminate`] when the client
/// learns its fate. Operations left pending are treated as indeterminate.
#[derive(Clone, Debug, Default)]
pub struct History {
    operations: Vec<Operation>,
    index_by_id: HashMap<OpId, usize>,
    next_raw_id: u64,
}

/// Two histories are equal when they hold the same operations in the same
/// order; how ids were allocated is irrelevant.
impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        self.operations == other.operations
    }
}

impl Eq for History {}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `client` sent `op` on `key` at `invoked_at_ns`.
    pub fn invoke(
        &mut self,
        client: u64,
        key: impl Into<String>,
        op: Op,
        invoked_at_ns: u64,
    ) -> OpId {
        // Parsed histories may have claimed arbitrary ids; skip those.
        while self.index_by_id.contains_key(&OpId(self.next_raw_id)) {
            self.next_raw_id = self.next_raw_id.wrapping_add(1);
        }
        let id = OpId(self.next_raw_id);
        self.next_raw_id = self.next_raw_id.wrapping_add(1);
        self.index_by_id.insert(id, self.operations.len());
        self.operations.push(Operation::new(
            id,
            client,
            key.into(),
            op,
            invoked_at_ns,
            Completion::Pending,
        ));
        id
    }

    /// Records that op `id` returned `output` at `returned_at_ns`.
    pub fn complete(
        &mut self,
        id: OpId,
        output: Output,
        returned_at_ns: u64,
    ) -> Result<(), HistoryError> {
        self.resolve(
            id,
            Completion::Completed {
                returned_at_ns,
                output,
            },
        )
    }

    /// Records that op `id` timed out or failed ambiguously: it may or may
    /// not take effect, at any time after its invocation.
    pub fn indeterminate(&mut self, id: OpId) -> Result<(), HistoryError> {
        self.resolve(id, Completion::Indeterminate)
    }

    /// All operations, in the order they were recorded.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    pub fn operation(&self, id: OpId) -> Option<&Operation> {
        self.index_by_id
            .get(&id)
            .map(|&index| &self.operations[index])
    }

    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// Adds a fully specified operation (used when parsing saved text).
    pub(super) fn insert(&mut self, operation: Operation) -> Result<(), HistoryError> {
        let id = operation.id;
        if self.index_by_id.contains_key(&id) {
            return Err(HistoryError::DuplicateOpId { op: id });
        }
        operation.validate()?;
        self.index_by_id.insert(id, self.operations.len());
        self.operations.push(operation);
        Ok(())
    }

    fn resolve(&mut self, id: OpId, completion: Completion) -> Result<(), HistoryError> {
        let index = *self
            .index_by_id
            .get(&id)
            .ok_or(HistoryError::UnknownOp { op: id })?;
        let operation = &mut self.operations[index];
        if operation.completion != Completion::Pending {
            return Err(HistoryError::AlreadyResolved { op: id });
        }
        let resolved = Operation {
            completion,
            ..operation.clone()
        };
        resolved.validate()?;
        *operation = resolved;
        Ok(())
    }
}
