//! The Maintenance service: status, hashes, alarms, leader moves and snapshot downloads.

use std::time::Instant;

use bytes::Bytes;
use tally_core::{Node, Role};
use tally_kvstore::KvStore;
use tally_kvstore::proto;

use super::respond::{Respond, respond_through_fields};
use super::status::{REQUEST_TIMEOUT, status, status_from_kv};
use crate::client::{CallId, Code as GrpcCode};
use crate::server::calls::{Calls, Method};
use crate::server::conf_waiters::wait_for_conf;
use crate::server::conf_waiters::{ConfWaiter, ConfWaiters};
use crate::server::etcd_version::ETCD_VERSION;
use crate::server::identity::Identity;
use crate::server::members::Members;

/// Bytes per message of a snapshot download.
const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;

/// What the Maintenance service needs: the core and the store to report on, and what else
/// `endpoint status` lists among its errors.
pub(in crate::server) struct MaintenanceService<'a> {
    pub(in crate::server) identity: &'a Identity,
    pub(in crate::server) node: &'a mut Node,
    pub(in crate::server) kv: &'a mut KvStore,
    pub(in crate::server) members: &'a Members,
    pub(in crate::server) calls: &'a mut Calls,
    pub(in crate::server) conf_waiters: &'a mut ConfWaiters,
    /// The WAL's disk is full.
    pub(in crate::server) wal_out_of_space: bool,
    /// Why this member cannot join its cluster, while its peers refuse it.
    pub(in crate::server) join_refusal: Option<String>,
    /// The last index applied completely.
    pub(in crate::server) applied_index: u64,
}

respond_through_fields!(MaintenanceService);

impl MaintenanceService<'_> {
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
            raft_applied_index: self.applied_index,
            is_learner: core.conf().is_learner(self.identity.member_id),
            errors: self.status_errors(&core),
            ..proto::StatusResponse::default()
        };
        self.reply(call, response);
    }

    /// What `etcdctl endpoint status` prints in its ERRORS column: as etcd, "no leader" and
    /// every raised alarm (in etcd's text form), nothing on a healthy member.
    fn status_errors(&mut self, core: &tally_core::Status) -> Vec<String> {
        let mut errors = Vec::new();
        if core.leader() == tally_core::NO_NODE {
            errors.push("etcdserver: no leader".to_string());
        }
        if self.wal_out_of_space {
            errors.push("tallyd: the disk under the WAL is full: writes are refused".to_string());
        }
        if let Some(refusal) = &self.join_refusal {
            errors.push(format!(
                "tallyd: not joined: peers refuse this member: {refusal}"
            ));
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
        errors
    }

    pub(in crate::server) fn hash_kv(&mut self, call: CallId, request: proto::HashKvRequest) {
        match self.kv.hash_kv(request.revision) {
            // etcd 3.4's HashKV has no hash_revision (a later release added it).
            Ok(response) => self.reply(
                call,
                proto::HashKvResponse {
                    hash_revision: 0,
                    ..response
                },
            ),
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
        if request.target_id == self.identity.member_id {
            // etcd answers a move to the leader itself as done: leadership is where it was asked.
            return self.reply(call, proto::MoveLeaderResponse::default());
        }
        match self.node.transfer_leader(request.target_id) {
            Ok(()) => wait_for_conf(
                self.conf_waiters,
                self.calls,
                ConfWaiter {
                    call,
                    node: request.target_id,
                    method: Method::MoveLeader,
                    deadline: Instant::now() + REQUEST_TIMEOUT,
                },
            ),
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

    /// Streams the snapshot as etcd 3.4 does and `etcdctl snapshot save` expects: the data
    /// (zero-padded to a multiple of 512 bytes) in chunks, each with the bytes still to come
    /// after it, then the SHA-256 of the data as a message of its own (remaining 0).
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
        for (blob, remaining_bytes) in snapshot_messages(&file) {
            let response = proto::SnapshotResponse {
                header: None,
                remaining_bytes,
                blob,
                version: String::new(),
            };
            let encoded = self.encode(response);
            self.calls.stream_snapshot_chunk(call, encoded);
        }
        self.calls.finish_snapshot_if_sent(call);
        Ok(())
    }

    pub(in crate::server) fn hash(&mut self, call: CallId) {
        let hash = self.kv.hash();
        self.reply(call, proto::HashResponse { header: None, hash });
    }
}

/// The Snapshot stream's messages for `file` (as [`snapshot_file_bytes`] makes it): each blob
/// with its `remaining_bytes`. The data goes in chunks of at most `SNAPSHOT_CHUNK_BYTES`, each
/// telling how much data follows it; the SHA-256 trailer goes last, alone, with 0.
fn snapshot_messages(file: &Bytes) -> Vec<(Bytes, u64)> {
    assert!(
        file.len() >= SHA256_BYTES && (file.len() - SHA256_BYTES) % 512 == 0,
        "a snapshot file is padded data and its hash: {} bytes",
        file.len()
    );
    let data_len = file.len() - SHA256_BYTES;
    let mut messages = Vec::with_capacity(data_len.div_ceil(SNAPSHOT_CHUNK_BYTES) + 1);
    let mut sent = 0;
    while sent < data_len {
        let end = (sent + SNAPSHOT_CHUNK_BYTES).min(data_len);
        messages.push((file.slice(sent..end), (data_len - end) as u64));
        sent = end;
    }
    messages.push((file.slice(data_len..), 0));
    messages
}

const SHA256_BYTES: usize = 32;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// etcd 3.4's framing: data chunks counting down what is left, then the hash alone.
    #[test]
    fn the_snapshot_stream_ends_with_the_hash_alone() {
        let data = Bytes::from(vec![7u8; SNAPSHOT_CHUNK_BYTES + 1000]);
        let file = snapshot_file_bytes(&data);
        let messages = snapshot_messages(&file);
        let padded = (SNAPSHOT_CHUNK_BYTES + 1000).div_ceil(512) * 512;
        let shape: Vec<(usize, u64)> = messages.iter().map(|(b, r)| (b.len(), *r)).collect();
        assert_eq!(
            shape,
            [
                (SNAPSHOT_CHUNK_BYTES, (padded - SNAPSHOT_CHUNK_BYTES) as u64),
                (padded - SNAPSHOT_CHUNK_BYTES, 0),
                (SHA256_BYTES, 0),
            ]
        );
        let joined: Vec<u8> = messages.iter().flat_map(|(b, _)| b.to_vec()).collect();
        assert_eq!(
            joined,
            file.to_vec(),
            "etcdctl writes the blobs one after another"
        );
    }

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
