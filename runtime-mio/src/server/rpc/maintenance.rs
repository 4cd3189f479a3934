//! The Maintenance service: status, hashes, alarms, leader moves and snapshot downloads.

use std::time::Instant;

use crate::grpc::Code as GrpcCode;
use bytes::Bytes;
use tally_core::Role;
use tally_kvstore::proto;

use super::{CallKind, ConfWaiter, Method, status, status_from_kv};
use crate::grpc::{CallId, Status};
use crate::server::event_loop::{REQUEST_TIMEOUT, Server};

/// The etcd version tally answers with (the API level it implements).
pub(in crate::server) const ETCD_VERSION: &str = "3.4.0";
/// Bytes per message of a snapshot download.
const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;

impl Server {
    pub(in crate::server) fn status_rpc(&mut self, call: CallId) {
        let core = self.node.status();
        let store = self.kv.status();
        let response = proto::StatusResponse {
            version: ETCD_VERSION.to_string(),
            db_size: store.db_size_bytes() as i64,
            db_size_in_use: store.db_size_bytes() as i64,
            leader: core.leader(),
            raft_index: core.last_index(),
            raft_term: core.term(),
            raft_applied_index: core.applied(),
            is_learner: core.conf().is_learner(self.identity.member_id),
            errors: self.status_errors(&core),
            ..proto::StatusResponse::default()
        };
        self.reply(call, response);
    }

    /// What `etcdctl endpoint status` prints in its ERRORS column: as etcd, "no leader" and
    /// every raised alarm (in etcd's text form); then how many members may fail.
    fn status_errors(&mut self, core: &tally_core::Status) -> Vec<String> {
        let mut errors = Vec::new();
        if core.leader() == tally_core::NO_NODE {
            errors.push("etcdserver: no leader".to_string());
        }
        let alarms = self.kv.alarm(&proto::AlarmRequest::default()).alarms;
        for alarm in alarms {
            let name = match proto::AlarmType::try_from(alarm.alarm) {
                Ok(proto::AlarmType::Nospace) => "NOSPACE".to_string(),
                Ok(proto::AlarmType::Corrupt) => "CORRUPT".to_string(),
                _ => alarm.alarm.to_string(),
            };
            errors.push(format!("memberID:{} alarm:{name} ", alarm.member_id));
        }
        errors.extend(fault_tolerance_notes(core));
        errors
    }

    pub(in crate::server) fn hash_kv(&mut self, call: CallId, request: proto::HashKvRequest) {
        match self.kv.hash_kv(request.revision) {
            Ok(response) => self.reply(call, response),
            Err(error) => self.reply_error(call, status_from_kv(&error)),
        }
    }

    pub(in crate::server) fn move_leader(
        &mut self,
        call: CallId,
        request: proto::MoveLeaderRequest,
    ) {
        if self.node.status().role() != Role::Leader {
            return self.reply_error(
                call,
                status(GrpcCode::FailedPrecondition, "etcdserver: not leader"),
            );
        }
        match self.node.transfer_leader(request.target_id) {
            Ok(()) => self.conf_waiters.push(ConfWaiter {
                call,
                node: request.target_id,
                method: Method::MoveLeader,
                deadline: Instant::now() + REQUEST_TIMEOUT,
            }),
            Err(tally_core::TransferError::NotVoter(_)) => self.reply_error(
                call,
                // etcd's ErrGRPCBadLeaderTransferee.
                status(
                    GrpcCode::FailedPrecondition,
                    "etcdserver: bad leader transferee",
                ),
            ),
            Err(error) => {
                self.reply_error(call, status(GrpcCode::FailedPrecondition, error.as_str()))
            }
        }
    }

    /// Leadership moved to `leader`: answer the MoveLeader calls that asked for it.
    pub(in crate::server) fn answer_move_leader(&mut self, leader: u64) {
        let (done, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.conf_waiters)
            .into_iter()
            .partition(|w| w.method == Method::MoveLeader && w.node == leader);
        self.conf_waiters = pending;
        for waiter in done {
            self.reply(waiter.call, proto::MoveLeaderResponse::default());
        }
    }

    /// Streams the snapshot as `etcdctl snapshot save` expects: the data, zero padding to a
    /// multiple of 512 bytes, then the SHA-256 of all that.
    pub(in crate::server) fn handle_snapshot(
        &mut self,
        call: CallId,
    ) -> Result<(), prost::DecodeError> {
        let mut kv_bytes = Vec::new();
        if let Err(e) = self.kv.snapshot(&mut kv_bytes) {
            self.reply_error(call, status(GrpcCode::Internal, &format!("snapshot: {e}")));
            return Ok(());
        }
        let file = snapshot_file_bytes(&crate::server::payload::encode_snapshot(
            &self.members.encode(),
            &kv_bytes,
        ));
        let total = file.len();
        let mut sent = 0;
        while sent < total {
            let end = (sent + SNAPSHOT_CHUNK_BYTES).min(total);
            let response = proto::SnapshotResponse {
                header: None,
                remaining_bytes: (total - end) as u64,
                blob: file.slice(sent..end),
                version: String::new(),
            };
            self.stream(call, response);
            sent = end;
        }
        self.maybe_finish_snapshot(call);
        Ok(())
    }

    /// Ends a snapshot download once every chunk has been handed to the connection.
    pub(in crate::server) fn maybe_finish_snapshot(&mut self, call: CallId) {
        if self.calls.get(&call) == Some(&CallKind::Snapshot) && !self.outbound.contains_key(&call)
        {
            self.clients.finish(call, Status::ok());
            self.calls.remove(&call);
        }
    }
}

/// The exported snapshot: data, zero padding to 512·n, SHA-256 trailer.
pub(in crate::server) fn snapshot_file_bytes(data: &Bytes) -> Bytes {
    let padded_len = data.len().div_ceil(512) * 512;
    let mut file = Vec::with_capacity(padded_len + 32);
    file.extend_from_slice(data);
    file.resize(padded_len, 0);
    let digest = ring::digest::digest(&ring::digest::SHA256, &file);
    file.extend_from_slice(digest.as_ref());
    Bytes::from(file)
}

/// tally's addition to the status errors: how many voting members may fail.
fn fault_tolerance_notes(core: &tally_core::Status) -> Vec<String> {
    let voters = core.conf().voters().len();
    if voters == 0 {
        return Vec::new();
    }
    let tolerance = (voters - 1) / 2;
    let mut notes = vec![format!(
        "fault tolerance: {tolerance} of {voters} voting members may fail"
    )];
    if voters % 2 == 0 {
        notes.push(format!("warning: even number of voting members ({voters})"));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_snapshots_pass_etcdctls_restore_check_and_ours() {
        let file = snapshot_file_bytes(&Bytes::from_static(b"some snapshot data"));
        assert_eq!(
            file.len() % 512,
            32,
            "etcdctl looks for a hash where size % 512 == 32"
        );
        let data = crate::server::startup::verify_snapshot_file(&file).expect("valid");
        assert!(data.starts_with(b"some snapshot data"));
        let mut damaged = file.to_vec();
        damaged[3] ^= 1;
        assert!(crate::server::startup::verify_snapshot_file(&damaged).is_err());
    }
}
