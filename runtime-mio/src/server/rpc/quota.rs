//! `--quota-backend-bytes` and the NOSPACE alarm, as etcd's quota KV server and alarm RPC do
//! them: a write that would take the store over the quota is refused with etcd's error, and
//! the member raises a NOSPACE alarm through Raft, after which every member refuses what adds
//! data (the kvstore's `quota` module) until an operator makes room and disarms it.

use tally_kvstore::KvError;
use tally_kvstore::proto::{self, AlarmAction, AlarmType, internal_request};

use super::status_from_kv;
use crate::grpc::CallId;
use crate::server::event_loop::Server;

impl Server {
    /// Whether `request` would take the store over the quota. If so, the call is answered
    /// with etcd's "database space exceeded" and the NOSPACE alarm is raised.
    pub(super) fn refuse_over_quota(
        &mut self,
        call: CallId,
        request: &internal_request::Request,
    ) -> bool {
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
        let raise = internal_request::Request::Alarm(proto::AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: self.identity.member_id,
            alarm: AlarmType::Nospace as i32,
        });
        if self.propose_request(raise).is_ok() {
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
