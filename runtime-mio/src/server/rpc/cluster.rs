//! The Cluster service: membership changes go through Raft as core `ConfChange`s whose context
//! is the etcd `Member`; they are answered once applied.

use std::time::Instant;

use crate::client::{Code as GrpcCode, Status};
use bytes::Bytes;
use prost::Message as _;
use tally_core::{ConfChange, ConfChangeKind};
use tally_kvstore::proto::{self, Member};

use super::{ConfWaiter, Method, status, status_from_propose};
use crate::client::CallId;
use crate::server::event_loop::{REQUEST_TIMEOUT, Server};
use crate::server::members::member_id;

impl Server {
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
        if let Err(refused) = self.check_add_member(request.is_learner) {
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
        if let Err(refused) = self.check_remove_voter(request.id) {
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
        if let Err(refused) = self.check_promote_member(request.id) {
            return self.reply_error(call, refused);
        }
        if self.leader == self.node.id() {
            self.propose_conf(
                call,
                &ConfChange::new(ConfChangeKind::AddVoter, request.id),
                Method::MemberPromote,
            );
        } else {
            self.forward_promote(call, request.id);
        }
    }

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

    pub(in crate::server) fn expire_conf_waiters(&mut self, now: Instant) {
        for waiter in self.conf_waiters.take_expired(now) {
            self.reply_error(waiter.call, super::status_timeout());
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
