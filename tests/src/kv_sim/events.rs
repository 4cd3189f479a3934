//! What clients ask members, what members answer, and what the simulation reports to the
//! invariant checks.

use bytes::Bytes;
use tally_core::NodeId;
use tally_kvstore::proto::{KeyValue, RangeResponse};
use tally_kvstore::{ApplyResponse, KvError};

/// A client operation's number, unique in one run.
pub(crate) type OpId = u64;

/// What a client asks one member for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Put {
        key: Bytes,
        value: Bytes,
        lease: i64,
    },
    Delete {
        key: Bytes,
    },
    /// Compare-and-set: puts `value` if the key's mod revision (or value) is still `expect`.
    CompareAndSet {
        key: Bytes,
        expect: Expect,
        value: Bytes,
    },
    Range {
        key: Bytes,
        linearizable: bool,
    },
    LeaseGrant {
        ttl_secs: i64,
    },
    KeepAlive {
        lease: i64,
    },
    LeaseRevoke {
        lease: i64,
    },
    /// Logical compaction, as etcd's auto-compaction proposes it: it keeps history bounded.
    Compact {
        revision: i64,
    },
}

/// What a compare-and-set expects of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    /// The key's mod revision (0: the key does not exist).
    ModRevision(i64),
    Value(Bytes),
}

/// A member's answer to a client.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// A replicated request was applied on the member the client asked.
    Applied(Result<ApplyResponse, KvError>),
    Range(Result<RangeResponse, KvError>),
    /// A keep-alive's TTL (0: the lease is gone). `leader_local` answers came from the
    /// primary's clock without Raft; `trusted` says whether that primary then led the newest
    /// elected term and had committed an entry of it (see the lease rule in the module docs).
    KeepAlive {
        ttl_secs: i64,
        leader_local: bool,
        trusted: bool,
    },
    /// Refused before it reached Raft, or the member was down or paused.
    Refused(String),
}

/// What the simulation reports as it runs.
#[derive(Debug, Clone)]
pub(crate) enum SimEvent {
    /// Member `node` applied the entry at `index` (or installed a snapshot at it).
    Applied(Applied),
    /// `index`: the entry whose apply answered, for replicated requests.
    Answer {
        op: OpId,
        index: Option<u64>,
        answer: Answer,
    },
    /// The leader `node` proposed revoking an expired `lease` in the entry with `request_id`,
    /// having applied up to `applied` with `commit` known committed.
    RevokeDecided {
        node: NodeId,
        request_id: u64,
        lease: i64,
        applied: u64,
        commit: u64,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub(crate) node: NodeId,
    pub(crate) index: u64,
    pub(crate) hash: u32,
    pub(crate) revision_before: i64,
    pub(crate) revision_after: i64,
    /// Every key after the entry, when the revision moved or a lease was revoked.
    pub(crate) kvs_after: Option<Vec<KeyValue>>,
    /// The lease this entry revoked, with the leases left, when it was a successful revoke.
    pub(crate) revoked: Option<(u64, i64, Vec<i64>)>,
    /// A snapshot install rather than one entry.
    pub(crate) snapshot: bool,
}
