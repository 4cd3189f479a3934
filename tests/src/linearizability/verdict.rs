//! The result of a check and the witness reported for a violation.

use std::fmt;

use super::history::{OpId, Operation};

/// The outcome of [`check`](super::check).
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's sub-history has a linearization.
    Linearizable,
    /// Some key's sub-history has no linearization.
    NotLinearizable(Violation),
    /// The search on `key` hit the state budget before reaching a decision
    /// (and no other key was found to be non-linearizable).
    Unknown { key: String, states_explored: u64 },
}

impl Verdict {
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }

    /// The violation, if the history was proven non-linearizable.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Verdict::NotLinearizable(violation) => Some(violation),
            Verdict::Linearizable | Verdict::Unknown { .. } => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => f.write_str("linearizable"),
            Verdict::NotLinearizable(violation) => write!(f, "{violation}"),
            Verdict::Unknown {
                key,
                states_explored,
            } => write!(
                f,
                "unknown: the search on key `{key}` gave up after {states_explored} states"
            ),
        }
    }
}

/// Why one key's sub-history is not linearizable.
///
/// The witness is the deepest point the search reached: a longest sequence
/// of ops that could be linearized, the register value it leaves, and the
/// ops that could have come next. Each of those either contradicts that
/// value or leads only to dead ends, while `blocking_op` (the earliest
/// response among the ops not yet linearized) forbids waiting any longer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    key: String,
    linearized_prefix: Vec<OpId>,
    value_after_prefix: Option<u64>,
    blocking_op: Operation,
    candidate_ops: Vec<Operation>,
}

impl Violation {
    pub(super) fn new(
        key: String,
        linearized_prefix: Vec<OpId>,
        value_after_prefix: Option<u64>,
        blocking_op: Operation,
        candidate_ops: Vec<Operation>,
    ) -> Self {
        Self {
            key,
            linearized_prefix,
            value_after_prefix,
            blocking_op,
            candidate_ops,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// A longest linearizable prefix, in linearization order.
    pub fn linearized_prefix(&self) -> &[OpId] {
        &self.linearized_prefix
    }

    /// The register value after the prefix (`None`: key absent).
    pub fn value_after_prefix(&self) -> Option<u64> {
        self.value_after_prefix
    }

    /// The op whose response came first among those not in the prefix: no
    /// linearization can postpone it further.
    pub fn blocking_op(&self) -> &Operation {
        &self.blocking_op
    }

    /// The ops that could have been linearized right after the prefix (this
    /// includes `blocking_op`), none of which leads to a full linearization.
    pub fn candidate_ops(&self) -> &[Operation] {
        &self.candidate_ops
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = match self.value_after_prefix {
            Some(value) => format!("value {value}"),
            None => "key absent".to_owned(),
        };
        let prefix: Vec<String> = self
            .linearized_prefix
            .iter()
            .map(ToString::to_string)
            .collect();
        writeln!(
            f,
            "key `{}` is not linearizable: a longest linearizable prefix has {} op(s) [{}] \
             and leaves the {value}; op {} must take effect before it returned, but none of \
             these ops can be linearized next:",
            self.key,
            self.linearized_prefix.len(),
            prefix.join(", "),
            self.blocking_op.id(),
        )?;
        for operation in &self.candidate_ops {
            writeln!(f, "  {operation}")?;
        }
        Ok(())
    }
}
