//! Message dispatch: term rules first, then the handler for the message and role.

use super::Node;
use crate::error::StepError;
use crate::message::{Body, Message};
use crate::types::{NO_NODE, Role};

impl Node {
    /// Rejects messages that would break the log's structural invariants if trusted.
    pub(super) fn validate(&self, message: &Message) -> Result<(), StepError> {
        if message.to != self.id {
            return Err(StepError::WrongRecipient);
        }
        if message.from == self.id || message.from == NO_NODE {
            return Err(StepError::BadSender);
        }
        // Terms only grow by one per election; u64::MAX would leave no next term.
        if message.term == u64::MAX {
            return Err(StepError::MalformedEntries);
        }
        if let Body::Append {
            prev_index,
            prev_term,
            entries,
            ..
        } = &message.body
        {
            let mut expected_index = prev_index
                .checked_add(1)
                .ok_or(StepError::MalformedEntries)?;
            let mut floor_term = *prev_term;
            for entry in entries {
                let ordered = entry.index() == expected_index && entry.term() >= floor_term;
                if !ordered || entry.term() > message.term {
                    return Err(StepError::MalformedEntries);
                }
                expected_index = expected_index
                    .checked_add(1)
                    .ok_or(StepError::MalformedEntries)?;
                floor_term = entry.term();
            }
        }
        self.validate_indexes(message)?;
        if let Body::Snapshot { snapshot } = &message.body {
            let meta = snapshot.meta();
            // u64::MAX cannot be a snapshot index: the log must be able to continue after it.
            if meta.index() == 0
                || meta.index() == u64::MAX
                || meta.term() > message.term
                || meta.conf().voters().is_empty()
            {
                return Err(StepError::MalformedEntries);
            }
        }
        Ok(())
    }

    /// Refuses a message that names an index beyond this node's log where no correct peer can:
    /// a leader tells a follower a commit index of at most what the follower acknowledged, and a
    /// follower acknowledges to its leader at most what that leader sent. Trusting either would
    /// commit or count entries this node does not hold.
    fn validate_indexes(&self, message: &Message) -> Result<(), StepError> {
        let last_index = self.log.last_index();
        let beyond = match message.body {
            Body::Heartbeat { commit, .. } => commit > last_index,
            Body::AppendResp {
                reject: false,
                index,
                ..
            } => self.role == Role::Leader && message.term == self.term && index > last_index,
            _ => false,
        };
        if beyond {
            return Err(StepError::IndexBeyondLog);
        }
        Ok(())
    }

    pub(super) fn step_validated(&mut self, message: Message) {
        if message.term > self.term {
            if !self.adopt_higher_term(&message) {
                return;
            }
        } else if message.term < self.term {
            self.answer_stale(&message);
            return;
        }
        self.dispatch(message);
    }

    /// Returns false if the message must be ignored.
    fn adopt_higher_term(&mut self, message: &Message) -> bool {
        match message.body {
            Body::PreVote { .. }
            | Body::Vote {
                transfer: false, ..
            } if self.in_leader_lease() => false,
            // A pre-vote never changes anyone's term; a granted pre-vote answer carries the
            // term the candidate asked for.
            Body::PreVote { .. } | Body::PreVoteResp { reject: false } => true,
            _ => {
                let leader = match message.body {
                    Body::Append { .. } | Body::Heartbeat { .. } | Body::Snapshot { .. } => {
                        message.from
                    }
                    _ => NO_NODE,
                };
                self.become_follower(message.term, leader);
                true
            }
        }
    }

    /// A message from an older term. A stale leader is told our term so it steps down; a
    /// stale pre-candidate is refused so it stops campaigning.
    fn answer_stale(&mut self, message: &Message) {
        match message.body {
            Body::Append { .. } | Body::Heartbeat { .. } => {
                let body = Body::AppendResp {
                    reject: false,
                    index: 0,
                    hint_index: 0,
                    hint_term: 0,
                };
                self.send(message.from, body);
            }
            Body::PreVote { .. } => self.send(message.from, Body::PreVoteResp { reject: true }),
            _ => {}
        }
    }

    fn dispatch(&mut self, message: Message) {
        match &message.body {
            Body::PreVote { .. } | Body::Vote { .. } => return self.handle_vote_request(&message),
            Body::PreVoteResp { reject } | Body::VoteResp { reject } => {
                let reject = *reject;
                return self.handle_vote_response(&message, reject);
            }
            _ => {}
        }
        match self.role {
            Role::Leader => self.dispatch_leader(message),
            Role::Follower => self.dispatch_follower(message),
            Role::PreCandidate | Role::Candidate => self.dispatch_candidate(message),
        }
    }

    fn dispatch_leader(&mut self, message: Message) {
        let from = message.from;
        match message.body {
            Body::AppendResp {
                reject,
                index,
                hint_index,
                hint_term,
            } => self.handle_append_response(from, reject, index, hint_index, hint_term),
            Body::HeartbeatResp { context } => self.handle_heartbeat_response(from, context),
            Body::Propose { entries } => self.accept_forwarded(entries),
            Body::ReadIndex { request } => self.leader_read(from, request),
            _ => {}
        }
    }

    fn dispatch_follower(&mut self, message: Message) {
        let from = message.from;
        match message.body {
            Body::Append {
                prev_index,
                prev_term,
                commit,
                entries,
            } => {
                self.follow(from);
                self.handle_append(from, prev_index, prev_term, commit, &entries);
            }
            Body::Heartbeat { commit, context } => {
                self.follow(from);
                self.log.commit_to(commit);
                self.send(from, Body::HeartbeatResp { context });
            }
            Body::Snapshot { snapshot } => {
                self.follow(from);
                self.handle_snapshot(from, snapshot);
            }
            Body::TimeoutNow => self.handle_timeout_now(),
            Body::ReadIndexResp { request, index } => {
                self.actions
                    .push_back(crate::action::Action::ReadReady { request, index });
            }
            Body::Propose { entries } if self.leader != NO_NODE => {
                let leader = self.leader;
                self.send(leader, Body::Propose { entries });
            }
            _ => {}
        }
    }

    fn dispatch_candidate(&mut self, message: Message) {
        match message.body {
            Body::Append { .. } | Body::Heartbeat { .. } | Body::Snapshot { .. } => {
                self.become_follower(self.term, message.from);
                self.dispatch_follower(message);
            }
            _ => {}
        }
    }

    /// Records contact from the current leader: it resets the election timer.
    fn follow(&mut self, leader: NodeId) {
        self.election_elapsed = 0;
        if self.leader != leader {
            self.become_follower(self.term, leader);
        }
    }
}

use crate::types::NodeId;
