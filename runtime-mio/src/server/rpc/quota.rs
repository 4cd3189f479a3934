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

use tally_kvstore::proto::internal_request;
use tally_kvstore::{KvStore, write_cost_bytes};

/// How often a member whose disk is full proposes the NOSPACE alarm again.
const NOSPACE_FOR_DISK_INTERVAL: Duration = Duration::from_secs(10);

/// What limits the store's growth here: `--quota-backend-bytes`, and whether the WAL's disk
/// is full. It decides; the write path (`propose`) refuses and raises the alarm.
#[derive(Debug)]
pub(in crate::server) struct Quota {
    backend_bytes: u64,
    /// The WAL's disk is full: writes are refused here until it has room again.
    wal_out_of_space: bool,
    /// When this member last proposed the NOSPACE alarm for a full disk.
    nospace_for_disk_at: Option<Instant>,
}

/// Why a write is refused with etcd's "database space exceeded".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) enum OverQuota {
    /// The WAL's disk is full.
    DiskFull,
    /// The write would take the store past `--quota-backend-bytes` (this many bytes): the
    /// NOSPACE alarm is to be raised.
    Backend(u64),
}

impl Quota {
    pub(in crate::server) fn new(backend_bytes: u64) -> Self {
        Quota {
            backend_bytes,
            wal_out_of_space: false,
            nospace_for_disk_at: None,
        }
    }

    pub(in crate::server) fn wal_out_of_space(&self) -> bool {
        self.wal_out_of_space
    }

    /// Whether `request` may be proposed to `kv`.
    pub(in crate::server) fn check(
        &self,
        kv: &KvStore,
        request: &internal_request::Request,
    ) -> Result<(), OverQuota> {
        if self.wal_out_of_space && write_cost_bytes(request) > 0 {
            return Err(OverQuota::DiskFull);
        }
        if kv.exceeds_quota(request, self.backend_bytes) {
            return Err(OverQuota::Backend(self.backend_bytes));
        }
        Ok(())
    }

    /// Whether the NOSPACE alarm for a full disk is to be proposed now: not while `kv` holds
    /// it, and at most once per [`NOSPACE_FOR_DISK_INTERVAL`] (this member may never apply it
    /// while its own disk is full, so the store cannot tell whether it is raised).
    pub(in crate::server) fn nospace_for_disk_due(&mut self, kv: &KvStore, now: Instant) -> bool {
        if kv.nospace()
            || self
                .nospace_for_disk_at
                .is_some_and(|at| now.saturating_duration_since(at) < NOSPACE_FOR_DISK_INTERVAL)
        {
            return false;
        }
        self.nospace_for_disk_at = Some(now);
        true
    }

    pub(in crate::server) fn on_wal_out_of_space(&mut self, error: &crate::wal::WalError) {
        self.wal_out_of_space = true;
        eprintln!(
            "tallyd: warning: the disk is full ({error}): writes are refused (\"database space \
             exceeded\"), reads go on, and the WAL writes again every {} ms until there is \
             room; nothing acknowledged is lost",
            crate::wal::OUT_OF_SPACE_RETRY.as_millis()
        );
    }

    pub(in crate::server) fn on_wal_space_recovered(&mut self) {
        self.wal_out_of_space = false;
        eprintln!(
            "tallyd: the disk has room again: the WAL writes; once the NOSPACE alarm is \
             disarmed (etcdctl alarm disarm), writes are taken again"
        );
    }
}
