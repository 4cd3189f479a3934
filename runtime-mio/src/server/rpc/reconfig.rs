//! etcd's `--strict-reconfig-check` (on by default): a membership change that would leave the
//! cluster without a quorum of started, connected voting members is refused before it is
//! proposed, with etcd's errors. "Started" is etcd's sense: the member has published its
//! name. "Connected" is this member's peer link to it (itself counts as connected).

use tally_kvstore::proto::Member;

use super::status::status;
use crate::client::{Code as GrpcCode, Status};
use crate::peer::PeerTransport;
use crate::server::members::Members;

pub(super) fn status_not_enough_started() -> Status {
    status(
        GrpcCode::FailedPrecondition,
        "etcdserver: re-configuration failed due to not enough started members",
    )
}

pub(super) fn status_unhealthy() -> Status {
    status(GrpcCode::Unavailable, "etcdserver: unhealthy cluster")
}

/// What the checks look at: the membership, and this member's links to the others.
pub(in crate::server) struct ReconfigCheck<'a> {
    members: &'a Members,
    peers: &'a PeerTransport,
    member_id: u64,
    /// `--strict-reconfig-check`.
    strict: bool,
}

fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

fn is_started(member: &Member) -> bool {
    !member.name.is_empty()
}

impl<'a> ReconfigCheck<'a> {
    pub(in crate::server) fn new(
        members: &'a Members,
        peers: &'a PeerTransport,
        member_id: u64,
        strict: bool,
    ) -> Self {
        ReconfigCheck {
            members,
            peers,
            member_id,
            strict,
        }
    }

    fn voting_members(&self) -> Vec<Member> {
        self.members
            .list()
            .into_iter()
            .filter(|m| !m.is_learner)
            .collect()
    }

    fn is_connected_to(&self, id: u64) -> bool {
        id == self.member_id || self.peers.is_connected(id)
    }

    /// Whether a new member may be added (etcd's `mayAddMember`): a voter only if, with it,
    /// the started voters still make a quorum; a voter or a learner only while every voter is
    /// connected now.
    /// Whether member `id` may be promoted, as far as this member's view of the membership
    /// tells (the core checks the learner's log on the leader).
    pub(in crate::server) fn check_promote_member(&self, id: u64) -> Result<(), Status> {
        match self.members.get(id) {
            None => Err(status(GrpcCode::NotFound, "etcdserver: member not found")),
            Some(member) if !member.is_learner => Err(status(
                GrpcCode::FailedPrecondition,
                "etcdserver: can only promote a learner member",
            )),
            Some(_) => self.check_promote(),
        }
    }

    pub(super) fn check_add_member(&self, is_learner: bool) -> Result<(), Status> {
        if !self.strict {
            return Ok(());
        }
        let voters = self.voting_members();
        let started = voters.iter().filter(|m| is_started(m)).count();
        if !is_learner && started < quorum(voters.len() + 1) {
            return Err(status_not_enough_started());
        }
        if !voters.iter().all(|m| self.is_connected_to(m.id)) {
            return Err(status_unhealthy());
        }
        Ok(())
    }

    /// Whether learner `id` may become a voter: with it counted as started, the started
    /// voters make a quorum of the larger membership.
    fn check_promote(&self) -> Result<(), Status> {
        if !self.strict {
            return Ok(());
        }
        let voters = self.voting_members();
        let started = 1 + voters.iter().filter(|m| is_started(m)).count();
        if started < quorum(voters.len() + 1) {
            return Err(status_not_enough_started());
        }
        Ok(())
    }

    /// Whether voting member `id` may be removed: the started voters left make a quorum, and
    /// unless `id` is down, the connected voters left do too.
    pub(super) fn check_remove_voter(&self, id: u64) -> Result<(), Status> {
        if !self.strict {
            return Ok(());
        }
        let voters = self.voting_members();
        if !voters.iter().any(|m| m.id == id) {
            return Ok(());
        }
        let left: Vec<&Member> = voters.iter().filter(|m| m.id != id).collect();
        if left.iter().filter(|m| is_started(m)).count() < quorum(left.len()) {
            return Err(status_not_enough_started());
        }
        // A member that is down is not part of the active quorum: removing it is safe.
        if id != self.member_id && !self.peers.is_connected(id) {
            return Ok(());
        }
        // A learner asked to remove a voter counts no voter as itself: `active` may be 0.
        let active = voters.iter().filter(|m| self.is_connected_to(m.id)).count();
        if active.saturating_sub(1) < quorum(voters.len() - 1) {
            return Err(status_unhealthy());
        }
        Ok(())
    }
}
