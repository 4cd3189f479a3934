//! The contexts the loop lends its parts through: each names only the parts one service (or
//! one job) needs, borrowed for one call.

use std::time::Instant;

use super::Server;
use crate::server::apply::Applier;
use crate::server::apply_queue::ApplyQueue;
use crate::server::auth::AuthService;
use crate::server::coordination::CoordinationService;
use crate::server::leader_query::LeaderQueryService;
use crate::server::metrics::MemberView;
use crate::server::rpc::{
    ClusterService, ConfAnswers, HealthService, KvService, MaintenanceService, Proposer,
    WatchService,
};

impl Server {
    pub(super) fn writes(&mut self) -> Proposer<'_> {
        writes!(self)
    }

    pub(super) fn kv_service(&mut self) -> KvService<'_> {
        KvService {
            writes: writes!(self),
            reads: &mut self.reads,
            sliced_ranges: &mut self.sliced_ranges,
            clock: self.clock,
        }
    }

    pub(super) fn watch_service(&mut self) -> WatchService<'_> {
        WatchService {
            identity: &self.identity,
            node: &self.node,
            kv: &mut self.kv,
            calls: &mut self.calls,
            watch_streams: &mut self.watch_streams,
            caller: self.caller.clone(),
        }
    }

    pub(super) fn cluster_service(&mut self) -> ClusterService<'_> {
        ClusterService {
            identity: &self.identity,
            node: &mut self.node,
            kv: &self.kv,
            members: &self.members,
            calls: &mut self.calls,
            conf_waiters: &mut self.conf_waiters,
            peers: &mut self.peers,
            leader_queries: &mut self.leader_queries,
            ids: &mut self.ids,
            leader: self.leader,
            strict_reconfig: self.flags.strict_reconfig_check(),
        }
    }

    pub(super) fn maintenance_service(&mut self) -> MaintenanceService<'_> {
        MaintenanceService {
            identity: &self.identity,
            node: &mut self.node,
            kv: &mut self.kv,
            members: &self.members,
            calls: &mut self.calls,
            conf_waiters: &mut self.conf_waiters,
            wal_out_of_space: self.quota.wal_out_of_space(),
            join_refusal: self.standing.refusal(Instant::now()).map(str::to_string),
            applied_index: self.applying.applied_index(),
        }
    }

    pub(super) fn leader_query_service(&mut self) -> LeaderQueryService<'_> {
        LeaderQueryService {
            identity: &self.identity,
            node: &mut self.node,
            kv: &mut self.kv,
            members: &self.members,
            calls: &mut self.calls,
            peers: &mut self.peers,
            queries: &mut self.leader_queries,
            conf_waiters: &mut self.conf_waiters,
            ids: &mut self.ids,
            clock: self.clock,
            leader: self.leader,
            strict_reconfig: self.flags.strict_reconfig_check(),
        }
    }

    pub(super) fn health_service(&mut self) -> HealthService<'_> {
        HealthService {
            calls: &mut self.calls,
            joined: self.standing.joined(),
        }
    }

    pub(super) fn conf_answers(&mut self) -> ConfAnswers<'_> {
        ConfAnswers {
            identity: &self.identity,
            node: &self.node,
            kv: &self.kv,
            members: &self.members,
            calls: &mut self.calls,
            conf_waiters: &mut self.conf_waiters,
        }
    }

    /// The applier, and the queue of entries it applies.
    pub(super) fn applier(&mut self) -> (Applier<'_>, &mut ApplyQueue) {
        let applier = Applier {
            writes: writes!(self),
            members: &mut self.members,
            conf_waiters: &mut self.conf_waiters,
            peers: &mut self.peers,
            registry: self.poll.registry(),
            standing: &mut self.standing,
            clock: self.clock,
            coordination: &mut self.coordination,
            reads: &mut self.reads,
            auth: &mut self.auth,
        };
        (applier, &mut self.applying)
    }

    pub(super) fn auth_service(&mut self) -> AuthService<'_> {
        AuthService {
            writes: writes!(self),
            auth: &mut self.auth,
        }
    }

    pub(super) fn coordination_service(&mut self) -> CoordinationService<'_> {
        CoordinationService {
            writes: writes!(self),
            reads: &mut self.reads,
            coordination: &mut self.coordination,
        }
    }

    pub(super) fn member_view(&self) -> MemberView<'_> {
        MemberView {
            metrics: &self.metrics,
            kv: &self.kv,
            node: &self.node,
            leader: self.leader,
            wal_out_of_space: self.quota.wal_out_of_space(),
            quota_bytes: self.flags.quota_backend_bytes(),
            watchers: self.watch_streams.len(),
        }
    }
}
