//! `--quota-backend-bytes`, a full disk, and the NOSPACE alarm, as etcd's quota KV server and
//! alarm RPC do them: a write that would take the store over the quota is refused with etcd's
//! error, and the member raises a NOSPACE alarm through Raft, after which every member refuses
//! what adds data (the kvstore's `quota` module) until an operator makes room and disarms it.
//!
//! A full disk under the WAL is met the same way where Raft still can carry the alarm (a
//! member whose own disk is full cannot make it durable; its peers can): the member refuses
//! what adds data itself while its WAL cannot write, serves reads, and takes writes again by
//! itself once the WAL writes again and the alarm is disarmed. Nothing is lost meanwhile: the
//! WAL thread keeps what it could not write and writes it again until it fits.

use std::time::{Duration, Instant};

use tally_kvstore::proto::{self, AlarmAction, AlarmType, internal_request};
use tally_kvstore::{KvError, write_cost_bytes};

use super::status_from_kv;
use crate::client::CallId;
use crate::server::event_loop::Server;

/// How often a member whose disk is full proposes the NOSPACE alarm again.
const NOSPACE_FOR_DISK_INTERVAL: Duration = Duration::from_secs(10);

impl Server {
    /// Whether `request` would take the store over the quota. If so, the call is answered
    /// with etcd's "database space exceeded" and the NOSPACE alarm is raised.
    pub(super) fn refuse_over_quota(
        &mut self,
        call: CallId,
        request: &internal_request::Request,
    ) -> bool {
        if self.wal_out_of_space && write_cost_bytes(request) > 0 {
            self.reply_error(call, status_from_kv(&KvError::NoSpace));
            return true;
        }
        let quota = self.flags.quota_backend_bytes();
        if !self.kv.exceeds_quota(request, quota) {
            return false;
        }
        self.raise_nospace(quota);
        self.reply_error(call, status_from_kv(&KvError::NoSpace));
        true
    }

    fn raise_nospace(&mut self, quota: u64) {
        if self.kv.nospace() {
            return;
        }
        if self.propose_nospace() {
            eprintln!(
                "tallyd: warning: a write would pass --quota-backend-bytes ({quota}); raising \
                 the NOSPACE alarm: writes are refused until room is made and it is disarmed"
            );
        }
    }

    /// The Alarm RPC: a list is answered from the local store; raising or disarming goes
    /// through Raft, so every member holds the same alarms.
    pub(super) fn alarm_rpc(&mut self, call: CallId, request: proto::AlarmRequest) {
        if request.action == AlarmAction::Get as i32 {
            let response = self.kv.alarm(&request);
            return self.reply(call, response);
        }
        self.propose_kv(call, internal_request::Request::Alarm(request));
    }
}

impl Server {
    fn propose_nospace(&mut self) -> bool {
        let raise = internal_request::Request::Alarm(proto::AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: self.identity.member_id,
            alarm: AlarmType::Nospace as i32,
        });
        self.propose_request(raise).is_ok()
    }

    /// A file could not be written for lack of space: the NOSPACE alarm goes to every member
    /// through Raft, at most once per [`NOSPACE_FOR_DISK_INTERVAL`] (this member may never
    /// apply it while its own disk is full, so the store cannot tell whether it is raised).
    pub(in crate::server) fn raise_nospace_for_disk(&mut self, what: &str) {
        let now = Instant::now();
        if self.kv.nospace()
            || self
                .nospace_for_disk_at
                .is_some_and(|at| now.saturating_duration_since(at) < NOSPACE_FOR_DISK_INTERVAL)
        {
            return;
        }
        self.nospace_for_disk_at = Some(now);
        if self.propose_nospace() {
            eprintln!("tallyd: warning: raising the NOSPACE alarm: {what}");
        }
    }

    pub(in crate::server) fn on_wal_out_of_space(&mut self, error: &crate::wal::WalError) {
        self.wal_out_of_space = true;
        self.metrics.wal_out_of_space = true;
        eprintln!(
            "tallyd: warning: the disk is full ({error}): writes are refused (\"database space \
             exceeded\"), reads go on, and the WAL writes again every {} ms until there is \
             room; nothing acknowledged is lost",
            crate::wal::OUT_OF_SPACE_RETRY.as_millis()
        );
        self.raise_nospace_for_disk(&error.to_string());
    }

    pub(in crate::server) fn on_wal_space_recovered(&mut self) {
        self.wal_out_of_space = false;
        self.metrics.wal_out_of_space = false;
        eprintln!(
            "tallyd: the disk has room again: the WAL writes; once the NOSPACE alarm is \
             disarmed (etcdctl alarm disarm), writes are taken again"
        );
    }
}
