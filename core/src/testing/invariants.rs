//! Raft's safety invariants, checked across the whole simulated cluster after every step.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::node::Node;
use crate::types::{Entry, NodeId, Role};

/// What the cluster has collectively done, against which every node is checked.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// The leader of each term ever observed (election safety).
    leaders: BTreeMap<u64, NodeId>,
    /// Every applied entry, by index: (term, state-machine hash after it). An applied entry is
    /// committed, so this is the committed log as far as anyone has applied it.
    applied: Vec<(u64, u64)>,
    /// Payloads of applied entries, to prove acknowledged writes are never lost.
    applied_payloads: BTreeMap<Vec<u8>, u64>,
    /// For each index a leader has committed: (entry term, the term of the first leader seen
    /// with it committed). Every leader of a later term must hold the entry.
    committed: Vec<(u64, u64)>,
}

/// A broken invariant, described for the failure message.
pub(crate) type Violation = String;

impl Checker {
    /// Records an entry applied on some node; it must agree with every earlier apply.
    pub(crate) fn on_apply(
        &mut self,
        node: NodeId,
        entry: &Entry,
        hash_after: u64,
    ) -> Result<(), Violation> {
        let index = entry.index() as usize;
        if index <= self.applied.len() {
            let (term, hash) = self.applied[index - 1];
            if term != entry.term() || hash != hash_after {
                return Err(format!(
                    "state machine safety: node {node} applied index {index} term {} but term {term} was applied before",
                    entry.term()
                ));
            }
            return Ok(());
        }
        if index != self.applied.len() + 1 {
            return Err(format!(
                "node {node} applied index {index} before anyone applied {}",
                self.applied.len() + 1
            ));
        }
        self.applied.push((entry.term(), hash_after));
        if !entry.data().is_empty() {
            self.applied_payloads
                .insert(entry.data().to_vec(), entry.index());
        }
        Ok(())
    }

    /// A node installed a snapshot: its state must equal the committed state at that index.
    pub(crate) fn on_snapshot(&self, node: NodeId, index: u64, hash: u64) -> Result<(), Violation> {
        if index == 0 {
            return Ok(());
        }
        match self.applied.get(index as usize - 1) {
            Some(&(_, expected)) if expected == hash => Ok(()),
            Some(_) => Err(format!(
                "node {node} installed a snapshot at {index} that differs from the applied state"
            )),
            None => Err(format!(
                "node {node} installed a snapshot at {index} beyond anything applied"
            )),
        }
    }

    pub(crate) fn applied_len(&self) -> u64 {
        self.applied.len() as u64
    }

    pub(crate) fn payload_index(&self, payload: &[u8]) -> Option<u64> {
        self.applied_payloads.get(payload).copied()
    }

    pub(crate) fn payload_count(&self) -> usize {
        self.applied_payloads.len()
    }

    /// The per-step checks over all live nodes.
    pub(crate) fn check_step(
        &mut self,
        nodes: &[Option<&Node>],
        commits: &mut [u64],
    ) -> Result<(), Violation> {
        for (slot, node) in nodes.iter().enumerate() {
            let Some(node) = node else { continue };
            node.assert_invariants();
            let status = node.status();
            if status.commit() < commits[slot] {
                return Err(format!(
                    "commit moved back on node {}: {} -> {}",
                    node.id(),
                    commits[slot],
                    status.commit()
                ));
            }
            commits[slot] = status.commit();
            if status.role() == Role::Leader {
                self.check_leader(node)?;
            }
        }
        check_log_matching(nodes)
    }

    fn check_leader(&mut self, node: &Node) -> Result<(), Violation> {
        let status = node.status();
        let term = status.term();
        let previous = *self.leaders.entry(term).or_insert(node.id());
        if previous != node.id() {
            return Err(format!(
                "election safety: nodes {previous} and {} both led term {term}",
                node.id()
            ));
        }
        let first = node.log_first_index().max(1);
        for (position, &(entry_term, commit_term)) in self.committed.iter().enumerate() {
            let index = position as u64 + 1;
            if index < first || commit_term >= term || entry_term == 0 {
                continue;
            }
            if node.log_term(index) != Some(entry_term) {
                return Err(format!(
                    "leader completeness: leader {} of term {term} lacks index {index} (term {entry_term}) committed in term {commit_term}",
                    node.id()
                ));
            }
        }
        for index in self.committed.len() as u64 + 1..=status.commit() {
            match node.log_term(index) {
                Some(entry_term) => self.committed.push((entry_term, term)),
                // Compacted in the same step it committed: its term is known from the apply.
                None if index < first => {
                    let entry_term = self.applied.get(index as usize - 1).map_or(0, |&(t, _)| t);
                    self.committed.push((entry_term, term));
                }
                None => {
                    return Err(format!(
                        "leader {} committed index {index} it does not hold",
                        node.id()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Log matching: if two logs hold an entry with the same index and term, they are identical up
/// to and including it.
fn check_log_matching(nodes: &[Option<&Node>]) -> Result<(), Violation> {
    let live: Vec<&Node> = nodes.iter().flatten().copied().collect();
    for (position, a) in live.iter().enumerate() {
        for b in &live[position + 1..] {
            let low = a.log_first_index().max(b.log_first_index());
            let high = a.status().last_index().min(b.status().last_index());
            let mut matched_above = false;
            for index in (low..=high).rev() {
                let (Some(entry_a), Some(entry_b)) = (a.log_entry(index), b.log_entry(index))
                else {
                    continue;
                };
                let same_term = entry_a.term() == entry_b.term();
                if same_term && entry_a != entry_b {
                    return Err(format!(
                        "log matching: nodes {} and {} hold different entries at index {index} term {}",
                        a.id(),
                        b.id(),
                        entry_a.term()
                    ));
                }
                if matched_above && !same_term {
                    return Err(format!(
                        "log matching: nodes {} and {} agree above index {index} but differ at it",
                        a.id(),
                        b.id()
                    ));
                }
                matched_above |= same_term;
            }
        }
    }
    Ok(())
}
