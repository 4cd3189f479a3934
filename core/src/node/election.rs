//! Roles, timers and votes: PreVote, CheckQuorum and leadership transfer.

use bytes::Bytes;

use super::Node;
use crate::action::Action;
use crate::error::TransferError;
use crate::message::{Body, Message};
use crate::types::{Entry, EntryKind, NO_NODE, NodeId, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Campaign {
    /// Ask for pre-votes first, without raising the term.
    PreElection,
    Election,
    /// Forced by the old leader: voters skip their leader-lease check.
    Transfer,
}

impl Node {
    pub(super) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let base = self.config.election_ticks();
        self.randomized_election_ticks = base + self.rng.below(u64::from(base)) as u32;
    }

    pub(super) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.election_elapsed >= self.randomized_election_ticks {
            self.election_elapsed = 0;
            let kind = if self.config.pre_vote() {
                Campaign::PreElection
            } else {
                Campaign::Election
            };
            self.campaign(kind);
        }
    }

    pub(super) fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.config.election_ticks() {
            self.election_elapsed = 0;
            if self.config.check_quorum() && !self.quorum_recently_active() {
                self.become_follower(self.term, NO_NODE);
                return;
            }
            self.transferee = NO_NODE;
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks() {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    /// CheckQuorum: whether a majority of voters was heard from since the last check. Clears
    /// the marks for the next round.
    fn quorum_recently_active(&mut self) -> bool {
        let id = self.id;
        let mut active = alloc::vec::Vec::new();
        for (peer, progress) in self.tracker.iter_mut() {
            if peer == id || progress.recent_active {
                active.push(peer);
            }
            if peer != id {
                progress.recent_active = false;
            }
        }
        self.tracker.has_quorum(|peer| active.contains(&peer))
    }

    /// Whether this node follows a leader it heard from within an election timeout: then it
    /// ignores vote requests, so a rejoining partitioned node cannot disrupt a healthy leader.
    pub(super) fn in_leader_lease(&self) -> bool {
        self.config.check_quorum()
            && self.leader != NO_NODE
            && self.election_elapsed < self.config.election_ticks()
    }

    pub(super) fn campaign(&mut self, kind: Campaign) {
        if !self.promotable() || self.has_unapplied_conf_change() {
            return;
        }
        self.votes.clear();
        let vote_term = if kind == Campaign::PreElection {
            self.become_pre_candidate();
            self.record_vote(self.id, true);
            self.term + 1
        } else {
            self.become_candidate();
            // The self-vote only counts once the vote is durable: it goes through the barrier.
            let own = Message::new(
                self.id,
                self.id,
                self.term,
                Body::VoteResp { reject: false },
            );
            self.send_after_persist(own);
            self.term
        };
        let last_index = self.log.last_index();
        let last_term = self.log.last_term();
        let voters: alloc::vec::Vec<NodeId> = self.tracker.conf().voters().to_vec();
        for voter in voters.into_iter().filter(|&v| v != self.id) {
            let body = match kind {
                Campaign::PreElection => Body::PreVote {
                    last_index,
                    last_term,
                },
                _ => Body::Vote {
                    last_index,
                    last_term,
                    transfer: kind == Campaign::Transfer,
                },
            };
            self.outbox
                .push(Message::new(self.id, voter, vote_term, body));
        }
        if kind == Campaign::PreElection {
            self.check_votes();
        }
    }

    fn has_unapplied_conf_change(&self) -> bool {
        let applied = self.log.applied();
        let committed = self.log.committed();
        (applied + 1..=committed)
            .filter_map(|index| self.log.entry(index))
            .any(|entry| entry.kind() == EntryKind::ConfChange)
    }

    fn record_vote(&mut self, from: NodeId, granted: bool) {
        if !self.votes.iter().any(|(id, _)| *id == from) {
            self.votes.push((from, granted));
        }
    }

    /// Counts (pre-)votes and moves on: to the real election, to leader, or back to follower.
    fn check_votes(&mut self) {
        let votes = &self.votes;
        let won = self.tracker.has_quorum(|id| votes.contains(&(id, true)));
        let lost = self
            .tracker
            .quorum_impossible(|id| votes.contains(&(id, false)));
        if won {
            match self.role {
                Role::PreCandidate => self.campaign(Campaign::Election),
                Role::Candidate => self.become_leader(),
                _ => {}
            }
        } else if lost {
            self.become_follower(self.term, NO_NODE);
        }
    }

    pub(super) fn handle_vote_response(&mut self, message: &Message, reject: bool) {
        let expected = match (self.role, &message.body) {
            (Role::PreCandidate, Body::PreVoteResp { .. }) => message.term == self.term + 1,
            (Role::Candidate, Body::VoteResp { .. }) => message.term == self.term,
            _ => false,
        };
        if expected {
            self.record_vote(message.from, !reject);
            self.check_votes();
        }
    }

    /// Answers a (pre-)vote request whose term is at least ours.
    pub(super) fn handle_vote_request(&mut self, message: &Message) {
        let (last_index, last_term, pre_vote) = match message.body {
            Body::PreVote {
                last_index,
                last_term,
            } => (last_index, last_term, true),
            Body::Vote {
                last_index,
                last_term,
                ..
            } => (last_index, last_term, false),
            _ => return,
        };
        let can_vote = self.vote == message.from
            || (self.vote == NO_NODE && self.leader == NO_NODE)
            || (pre_vote && message.term > self.term);
        let grant = can_vote && self.log.is_up_to_date(last_index, last_term);
        let reply_term = if pre_vote && grant {
            message.term
        } else {
            self.term
        };
        let body = if pre_vote {
            Body::PreVoteResp { reject: !grant }
        } else {
            Body::VoteResp { reject: !grant }
        };
        let reply = Message::new(self.id, message.from, reply_term, body);
        if grant && !pre_vote {
            self.vote = message.from;
            self.election_elapsed = 0;
            self.send_after_persist(reply);
        } else {
            self.outbox.push(reply);
        }
    }

    pub(super) fn become_follower(&mut self, term: u64, leader: NodeId) {
        if term > self.term {
            self.term = term;
            self.vote = NO_NODE;
        }
        self.role = Role::Follower;
        self.reset_election_timer();
        self.transferee = NO_NODE;
        self.tracker.clear();
        self.reads.clear();
        self.set_leader(leader);
    }

    pub(super) fn become_pre_candidate(&mut self) {
        assert_ne!(
            self.role,
            Role::Leader,
            "invalid role transition Leader -> PreCandidate: a leader never campaigns"
        );
        self.role = Role::PreCandidate;
        self.transferee = NO_NODE;
        self.tracker.clear();
        self.reads.clear();
        self.set_leader(NO_NODE);
    }

    pub(super) fn become_candidate(&mut self) {
        assert_ne!(
            self.role,
            Role::Leader,
            "invalid role transition Leader -> Candidate: a leader never campaigns"
        );
        self.term += 1;
        self.vote = self.id;
        self.role = Role::Candidate;
        self.reset_election_timer();
        self.transferee = NO_NODE;
        self.tracker.clear();
        self.reads.clear();
        self.set_leader(NO_NODE);
    }

    pub(super) fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "invalid role transition {:?} -> Leader: only a candidate that won its election \
             becomes leader",
            self.role
        );
        self.role = Role::Leader;
        self.reset_election_timer();
        self.heartbeat_elapsed = 0;
        self.transferee = NO_NODE;
        self.uncommitted_bytes = 0;
        self.tracker.reset_all(self.log.last_index() + 1);
        // Reconfiguring before every older entry is applied could mix configurations.
        self.pending_conf_index = self.log.last_index();
        let noop = Entry::new(
            self.log.last_index() + 1,
            self.term,
            EntryKind::Normal,
            Bytes::new(),
        );
        self.log.append(core::iter::once(noop));
        self.refresh_self_progress();
        self.set_leader(self.id);
        self.broadcast_pending = true;
    }

    fn set_leader(&mut self, leader: NodeId) {
        if self.leader != leader {
            self.leader = leader;
            self.actions.push_back(Action::LeaderChanged {
                leader,
                term: self.term,
            });
        }
    }

    pub(super) fn start_transfer(&mut self, to: NodeId) -> Result<(), TransferError> {
        if self.role != crate::types::Role::Leader {
            return Err(TransferError::NotLeader);
        }
        if to == self.id {
            return Err(TransferError::AlreadyLeader);
        }
        if !self.tracker.conf().is_voter(to) {
            return Err(TransferError::NotVoter(to));
        }
        if self.transferee == to {
            return Ok(());
        }
        self.transferee = to;
        // The transfer is abandoned after one election timeout (see `tick_leader`).
        self.election_elapsed = 0;
        self.send_timeout_now_if_caught_up(to);
        Ok(())
    }

    /// Sends TimeoutNow to the transferee once it holds the whole log; otherwise replicates.
    pub(super) fn send_timeout_now_if_caught_up(&mut self, to: NodeId) {
        let caught_up = self
            .tracker
            .get(to)
            .is_some_and(|p| p.matched == self.log.last_index());
        if caught_up {
            self.send(to, Body::TimeoutNow);
        } else {
            self.send_append(to, true);
        }
    }

    pub(super) fn handle_timeout_now(&mut self) {
        if self.promotable() {
            self.campaign(Campaign::Transfer);
        }
    }
}
