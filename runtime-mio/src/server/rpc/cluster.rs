//! The Cluster service: membership changes go through Raft as core `ConfChange`s whose context
//! is the etcd `Member`; they are answered once applied.

use std::time::Instant;

use bytes::Bytes;
use prost::Message as _;
use tally_core::{ConfChange, ConfChangeKind, Node};
use tally_kvstore::KvStore;
use tally_kvstore::proto::{self, Member};

use super::reconfig::ReconfigCheck;
use super::respond::{Respond, respond_through_fields};
use super::status::{REQUEST_TIMEOUT, status, status_from_propose, status_timeout};
use crate::client::{CallId, Code as GrpcCode};
use crate::peer::PeerTransport;
use crate::server::calls::{Calls, Method};
use crate::server::conf_waiters::wait_for_conf;
use crate::server::conf_waiters::{ConfWaiter, ConfWaiters};
use crate::server::identity::Identity;
use crate::server::leader_query::{LeaderQueries, forward_promote};
use crate::server::members::{Members, member_id};
use crate::server::request_ids::RequestIds;

/// What the Cluster service needs: the membership, the core to propose changes to, the links
/// to the peers (the reconfiguration checks; a follower's promotion goes to the leader).
pub(in crate::server) struct ClusterService<'a> {
    pub(in crate::server) identity: &'a Identity,
    pub(in crate::server) node: &'a mut Node,
    pub(in crate::server) kv: &'a KvStore,
    pub(in crate::server) members: &'a Members,
    pub(in crate::server) calls: &'a mut Calls,
    pub(in crate::server) conf_waiters: &'a mut ConfWaiters,
    pub(in crate::server) peers: &'a mut PeerTransport,
    pub(in crate::server) leader_queries: &'a mut LeaderQueries,
    pub(in crate::server) ids: &'a mut RequestIds,
    pub(in crate::server) leader: u64,
    /// `--strict-reconfig-check`.
    pub(in crate::server) strict_reconfig: bool,
}

respond_through_fields!(ClusterService);

impl ClusterService<'_> {
    fn check(&self) -> ReconfigCheck<'_> {
        ReconfigCheck::new(
            self.members,
            self.peers,
            self.identity.member_id,
            self.strict_reconfig,
        )
    }

    fn wait_for_conf(&mut self, waiter: ConfWaiter) {
        wait_for_conf(self.conf_waiters, self.calls, waiter);
    }

    pub(in crate::server) fn member_list(&mut self, call: CallId) {
        let members = self.members.list();
        self.reply(
            call,
            proto::MemberListResponse {
                header: None,
                members,
            },
        );
    }

    /// Checked in etcd 3.4's order: the URLs, then the strict reconfiguration check, then what
    /// etcd's leader checks as it applies the change (peer URLs, ID, the one-learner limit).
    pub(in crate::server) fn member_add(&mut self, call: CallId, request: proto::MemberAddRequest) {
        if request.peer_urls.is_empty() || !request.peer_urls.iter().all(|u| is_peer_url(u)) {
            return self.reply_error(
                call,
                status(
                    GrpcCode::InvalidArgument,
                    "etcdserver: given member URLs are invalid",
                ),
            );
        }
        if let Err(refused) = self.check().check_add_member(request.is_learner) {
            return self.reply_error(call, refused);
        }
        let id = member_id(&request.peer_urls, &self.identity.token);
        if self.peer_urls_taken(&request.peer_urls, None) {
            return self.reply_error(call, status_peer_urls_exist());
        }
        if self.members.get(id).is_some() {
            return self.reply_error(
                call,
                status(
                    GrpcCode::FailedPrecondition,
                    "etcdserver: member ID already exist",
                ),
            );
        }
        let learners = self.members.list().iter().filter(|m| m.is_learner).count();
        if request.is_learner && learners + 1 > LEARNERS_MAX {
            return self.reply_error(
                call,
                status(
                    GrpcCode::FailedPrecondition,
                    "etcdserver: too many learner members in cluster",
                ),
            );
        }
        let member = Member {
            id,
            name: String::new(),
            peer_urls: request.peer_urls,
            client_urls: Vec::new(),
            is_learner: request.is_learner,
        };
        let kind = if request.is_learner {
            ConfChangeKind::AddLearner
        } else {
            ConfChangeKind::AddVoter
        };
        let change = ConfChange::new(kind, id).with_context(Bytes::from(member.encode_to_vec()));
        self.propose_conf(call, &change, Method::MemberAdd);
    }

    pub(in crate::server) fn member_remove(
        &mut self,
        call: CallId,
        request: proto::MemberRemoveRequest,
    ) {
        if self.members.get(request.id).is_none() {
            return self.reply_error(
                call,
                status(GrpcCode::NotFound, "etcdserver: member not found"),
            );
        }
        if let Err(refused) = self.check().check_remove_voter(request.id) {
            return self.reply_error(call, refused);
        }
        self.propose_conf(
            call,
            &ConfChange::new(ConfChangeKind::RemoveNode, request.id),
            Method::MemberRemove,
        );
    }

    /// On a follower the leader checks and proposes the promotion (`server::leader_query`):
    /// only it knows whether the learner has caught up.
    pub(in crate::server) fn member_promote(
        &mut self,
        call: CallId,
        request: proto::MemberPromoteRequest,
    ) {
        if let Err(refused) = self.check().check_promote_member(request.id) {
            return self.reply_error(call, refused);
        }
        if self.leader == self.node.id() {
            self.propose_conf(
                call,
                &ConfChange::new(ConfChangeKind::AddVoter, request.id),
                Method::MemberPromote,
            );
        } else {
            let id = self.ids.next();
            let asked = forward_promote(
                self.leader_queries,
                self.peers,
                (self.leader, id),
                call,
                request.id,
            );
            if let Err(refused) = asked {
                self.reply_error(call, refused);
            }
        }
    }

    /// Peer URL updates travel as an attributes entry that every member applies.
    pub(in crate::server) fn member_update(
        &mut self,
        call: CallId,
        request: proto::MemberUpdateRequest,
    ) {
        let Some(mut member) = self.members.get(request.id).cloned() else {
            return self.reply_error(
                call,
                status(GrpcCode::NotFound, "etcdserver: member not found"),
            );
        };
        if self.peer_urls_taken(&request.peer_urls, Some(member.id)) {
            return self.reply_error(call, status_peer_urls_exist());
        }
        member.peer_urls = request.peer_urls;
        match self
            .node
            .propose(crate::server::payload::encode_attributes(&member))
        {
            Ok(()) => self.wait_for_conf(ConfWaiter {
                call,
                node: member.id,
                method: Method::MemberUpdate,
                deadline: Instant::now() + REQUEST_TIMEOUT,
            }),
            Err(error) => self.reply_error(call, status_from_propose(error)),
        }
    }

    /// Whether a member other than `id` listens on one of `urls`: two members on one peer
    /// URL would take each other's peer traffic (etcd refuses it the same way).
    /// Whether a member other than `except` has one of `urls` as a peer URL.
    fn peer_urls_taken(&self, urls: &[String], except: Option<u64>) -> bool {
        self.members
            .list()
            .iter()
            .filter(|m| Some(m.id) != except)
            .any(|m| m.peer_urls.iter().any(|u| urls.contains(u)))
    }

    fn propose_conf(&mut self, call: CallId, change: &ConfChange, method: Method) {
        match self.node.propose_conf_change(change) {
            Ok(()) => self.wait_for_conf(ConfWaiter {
                call,
                node: change.node(),
                method,
                deadline: Instant::now() + REQUEST_TIMEOUT,
            }),
            Err(error) => self.reply_error(call, status_from_propose(error)),
        }
    }
}

/// What answering the calls that wait for a membership change (or a leader move) needs.
pub(in crate::server) struct ConfAnswers<'a> {
    pub(in crate::server) identity: &'a Identity,
    pub(in crate::server) node: &'a Node,
    pub(in crate::server) kv: &'a KvStore,
    pub(in crate::server) members: &'a Members,
    pub(in crate::server) calls: &'a mut Calls,
    pub(in crate::server) conf_waiters: &'a mut ConfWaiters,
}

respond_through_fields!(ConfAnswers);

impl ConfAnswers<'_> {
    /// A conf change for `node` was applied: answer whoever asked for it.
    pub(in crate::server) fn answer_conf_waiters(&mut self, node: u64) {
        for waiter in self.conf_waiters.take_applied(node) {
            let members = self.members.list();
            match waiter.method {
                Method::MemberAdd => {
                    let member = self.members.get(node).cloned();
                    self.reply(
                        waiter.call,
                        proto::MemberAddResponse {
                            header: None,
                            member,
                            members,
                        },
                    );
                }
                Method::MemberRemove => self.reply(
                    waiter.call,
                    proto::MemberRemoveResponse {
                        header: None,
                        members,
                    },
                ),
                Method::MemberUpdate => self.reply(
                    waiter.call,
                    proto::MemberUpdateResponse {
                        header: None,
                        members,
                    },
                ),
                _ => self.reply(
                    waiter.call,
                    proto::MemberPromoteResponse {
                        header: None,
                        members,
                    },
                ),
            }
        }
    }

    /// Leadership moved to `leader`: the MoveLeader calls that asked for it are done.
    pub(in crate::server) fn answer_move_leader(&mut self, leader: u64) {
        for waiter in self.conf_waiters.take_moved_to(leader) {
            self.reply(waiter.call, proto::MoveLeaderResponse::default());
        }
    }

    pub(in crate::server) fn expire_conf_waiters(&mut self, now: Instant) {
        for waiter in self.conf_waiters.take_expired(now) {
            self.reply_error(waiter.call, status_timeout());
        }
    }
}

/// Learners a cluster may have at once: etcd 3.4's `maxLearners`.
const LEARNERS_MAX: usize = 1;

/// Whether `url` is a peer URL etcd accepts: `scheme://host:port`, with scheme http, https,
/// unix or unixs, and no path, query or fragment.
fn is_peer_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    if !matches!(scheme, "http" | "https" | "unix" | "unixs") {
        return false;
    }
    let host_port = rest.strip_suffix('/').unwrap_or(rest);
    if host_port.contains(['/', '?', '#', ' ']) {
        return false;
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    }
}

fn status_peer_urls_exist() -> crate::client::Status {
    status(
        GrpcCode::FailedPrecondition,
        "etcdserver: Peer URLs already exists",
    )
}

#[cfg(test)]
mod tests {
    use super::is_peer_url;

    /// What etcd 3.4's MemberAdd takes as a peer URL, and what it answers "given member URLs
    /// are invalid" for.
    #[test]
    fn peer_urls_are_scheme_host_and_port() {
        for good in [
            "http://127.0.0.1:2380",
            "https://node-1.example:2380",
            "http://[::1]:2380",
            "unix://socket:1",
        ] {
            assert!(is_peer_url(good), "{good}");
        }
        for bad in [
            "not a url",
            "127.0.0.1:2380",
            "ftp://127.0.0.1:2380",
            "http://127.0.0.1",
            "http://127.0.0.1:2380/path",
            "http://:2380",
            "http://127.0.0.1:port",
        ] {
            assert!(!is_peer_url(bad), "{bad}");
        }
    }
}
