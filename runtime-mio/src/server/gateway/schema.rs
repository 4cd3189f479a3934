//! The JSON shape of etcd's messages: for each field, its number, its name as etcd's
//! `rpc.proto` spells it (`range_end`, `ID`, `peerURLs`: what the gateway writes), and its type.
//! Field numbers match `tally_kvstore::proto`; the transcoder (`super::json`) checks nothing
//! else, so a field missing here is skipped on the way out and ignored on the way in.

/// A field's type, as far as JSON cares.
#[derive(Debug)]
pub(in crate::server) enum Kind {
    /// 64-bit integers are JSON strings (proto3's JSON mapping), 32-bit ones numbers.
    Int64,
    Uint64,
    Uint32,
    Bool,
    /// Base64 in JSON.
    Bytes,
    Str,
    /// Value names by number.
    Enum(&'static [&'static str]),
    Message(&'static Message),
}

#[derive(Debug)]
pub(in crate::server) struct Field {
    pub(in crate::server) number: u32,
    pub(in crate::server) name: &'static str,
    pub(in crate::server) kind: Kind,
    pub(in crate::server) repeated: bool,
}

#[derive(Debug)]
pub(in crate::server) struct Message {
    pub(in crate::server) fields: &'static [Field],
}

impl Message {
    pub(super) fn field(&self, number: u32) -> Option<(usize, &'static Field)> {
        self.fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.number == number)
    }
}

pub(super) const fn one(number: u32, name: &'static str, kind: Kind) -> Field {
    Field {
        number,
        name,
        kind,
        repeated: false,
    }
}

pub(super) const fn many(number: u32, name: &'static str, kind: Kind) -> Field {
    Field {
        number,
        name,
        kind,
        repeated: true,
    }
}

use Kind::{Bool, Bytes, Enum, Int64, Message as Msg, Str, Uint32, Uint64};

const SORT_ORDER: &[&str] = &["NONE", "ASCEND", "DESCEND"];
const SORT_TARGET: &[&str] = &["KEY", "VERSION", "CREATE", "MOD", "VALUE"];
const COMPARE_RESULT: &[&str] = &["EQUAL", "GREATER", "LESS", "NOT_EQUAL"];
const COMPARE_TARGET: &[&str] = &["VERSION", "CREATE", "MOD", "VALUE", "LEASE"];
const ALARM_ACTION: &[&str] = &["GET", "ACTIVATE", "DEACTIVATE"];
const ALARM_TYPE: &[&str] = &["NONE", "NOSPACE", "CORRUPT"];

pub(in crate::server) static EMPTY: Message = Message { fields: &[] };

pub(in crate::server) static HEADER: Message = Message {
    fields: &[
        one(1, "cluster_id", Uint64),
        one(2, "member_id", Uint64),
        one(3, "revision", Int64),
        one(4, "raft_term", Uint64),
    ],
};

pub(in crate::server) static KEY_VALUE: Message = Message {
    fields: &[
        one(1, "key", Bytes),
        one(2, "create_revision", Int64),
        one(3, "mod_revision", Int64),
        one(4, "version", Int64),
        one(5, "value", Bytes),
        one(6, "lease", Int64),
    ],
};

/// Messages whose only field is the header.
pub(in crate::server) static HEADER_ONLY: Message = Message {
    fields: &[one(1, "header", Msg(&HEADER))],
};

pub(in crate::server) static RANGE_REQUEST: Message = Message {
    fields: &[
        one(1, "key", Bytes),
        one(2, "range_end", Bytes),
        one(3, "limit", Int64),
        one(4, "revision", Int64),
        one(5, "sort_order", Enum(SORT_ORDER)),
        one(6, "sort_target", Enum(SORT_TARGET)),
        one(7, "serializable", Bool),
        one(8, "keys_only", Bool),
        one(9, "count_only", Bool),
        one(10, "min_mod_revision", Int64),
        one(11, "max_mod_revision", Int64),
        one(12, "min_create_revision", Int64),
        one(13, "max_create_revision", Int64),
    ],
};

pub(in crate::server) static RANGE_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        many(2, "kvs", Msg(&KEY_VALUE)),
        one(3, "more", Bool),
        one(4, "count", Int64),
    ],
};

pub(in crate::server) static PUT_REQUEST: Message = Message {
    fields: &[
        one(1, "key", Bytes),
        one(2, "value", Bytes),
        one(3, "lease", Int64),
        one(4, "prev_kv", Bool),
        one(5, "ignore_value", Bool),
        one(6, "ignore_lease", Bool),
    ],
};

pub(in crate::server) static PUT_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "prev_kv", Msg(&KEY_VALUE)),
    ],
};

pub(in crate::server) static DELETE_RANGE_REQUEST: Message = Message {
    fields: &[
        one(1, "key", Bytes),
        one(2, "range_end", Bytes),
        one(3, "prev_kv", Bool),
    ],
};

pub(in crate::server) static DELETE_RANGE_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "deleted", Int64),
        many(3, "prev_kvs", Msg(&KEY_VALUE)),
    ],
};

static REQUEST_OP: Message = Message {
    fields: &[
        one(1, "request_range", Msg(&RANGE_REQUEST)),
        one(2, "request_put", Msg(&PUT_REQUEST)),
        one(3, "request_delete_range", Msg(&DELETE_RANGE_REQUEST)),
        one(4, "request_txn", Msg(&TXN_REQUEST)),
    ],
};

static RESPONSE_OP: Message = Message {
    fields: &[
        one(1, "response_range", Msg(&RANGE_RESPONSE)),
        one(2, "response_put", Msg(&PUT_RESPONSE)),
        one(3, "response_delete_range", Msg(&DELETE_RANGE_RESPONSE)),
        one(4, "response_txn", Msg(&TXN_RESPONSE)),
    ],
};

static COMPARE: Message = Message {
    fields: &[
        one(1, "result", Enum(COMPARE_RESULT)),
        one(2, "target", Enum(COMPARE_TARGET)),
        one(3, "key", Bytes),
        one(4, "version", Int64),
        one(5, "create_revision", Int64),
        one(6, "mod_revision", Int64),
        one(7, "value", Bytes),
        one(8, "lease", Int64),
        one(64, "range_end", Bytes),
    ],
};

pub(in crate::server) static TXN_REQUEST: Message = Message {
    fields: &[
        many(1, "compare", Msg(&COMPARE)),
        many(2, "success", Msg(&REQUEST_OP)),
        many(3, "failure", Msg(&REQUEST_OP)),
    ],
};

pub(in crate::server) static TXN_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "succeeded", Bool),
        many(3, "responses", Msg(&RESPONSE_OP)),
    ],
};

pub(in crate::server) static COMPACTION_REQUEST: Message = Message {
    fields: &[one(1, "revision", Int64), one(2, "physical", Bool)],
};

pub(in crate::server) static LEASE_GRANT_REQUEST: Message = Message {
    fields: &[one(1, "TTL", Int64), one(2, "ID", Int64)],
};

pub(in crate::server) static LEASE_GRANT_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "ID", Int64),
        one(3, "TTL", Int64),
        one(4, "error", Str),
    ],
};

pub(in crate::server) static LEASE_ID_REQUEST: Message = Message {
    fields: &[one(1, "ID", Int64)],
};

pub(in crate::server) static LEASE_TIME_TO_LIVE_REQUEST: Message = Message {
    fields: &[one(1, "ID", Int64), one(2, "keys", Bool)],
};

pub(in crate::server) static LEASE_TIME_TO_LIVE_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "ID", Int64),
        one(3, "TTL", Int64),
        one(4, "grantedTTL", Int64),
        many(5, "keys", Bytes),
    ],
};

static LEASE_STATUS: Message = Message {
    fields: &[one(1, "ID", Int64)],
};

pub(in crate::server) static LEASE_LEASES_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        many(2, "leases", Msg(&LEASE_STATUS)),
    ],
};

static MEMBER: Message = Message {
    fields: &[
        one(1, "ID", Uint64),
        one(2, "name", Str),
        many(3, "peerURLs", Str),
        many(4, "clientURLs", Str),
        one(5, "isLearner", Bool),
    ],
};

pub(in crate::server) static MEMBER_ADD_REQUEST: Message = Message {
    fields: &[many(1, "peerURLs", Str), one(2, "isLearner", Bool)],
};

pub(in crate::server) static MEMBER_ADD_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "member", Msg(&MEMBER)),
        many(3, "members", Msg(&MEMBER)),
    ],
};

/// MemberRemove and MemberPromote requests.
pub(in crate::server) static MEMBER_ID_REQUEST: Message = Message {
    fields: &[one(1, "ID", Uint64)],
};

pub(in crate::server) static MEMBER_UPDATE_REQUEST: Message = Message {
    fields: &[one(1, "ID", Uint64), many(2, "peerURLs", Str)],
};

pub(in crate::server) static MEMBER_LIST_REQUEST: Message = Message {
    fields: &[one(1, "linearizable", Bool)],
};

/// The responses of MemberRemove, MemberUpdate, MemberList and MemberPromote.
pub(in crate::server) static MEMBERS_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        many(2, "members", Msg(&MEMBER)),
    ],
};

pub(in crate::server) static ALARM_REQUEST: Message = Message {
    fields: &[
        one(1, "action", Enum(ALARM_ACTION)),
        one(2, "memberID", Uint64),
        one(3, "alarm", Enum(ALARM_TYPE)),
    ],
};

static ALARM_MEMBER: Message = Message {
    fields: &[
        one(1, "memberID", Uint64),
        one(2, "alarm", Enum(ALARM_TYPE)),
    ],
};

pub(in crate::server) static ALARM_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        many(2, "alarms", Msg(&ALARM_MEMBER)),
    ],
};

static DOWNGRADE_INFO: Message = Message {
    fields: &[one(1, "enabled", Bool), one(2, "targetVersion", Str)],
};

pub(in crate::server) static STATUS_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "version", Str),
        one(3, "dbSize", Int64),
        one(4, "leader", Uint64),
        one(5, "raftIndex", Uint64),
        one(6, "raftTerm", Uint64),
        one(7, "raftAppliedIndex", Uint64),
        many(8, "errors", Str),
        one(9, "dbSizeInUse", Int64),
        one(10, "isLearner", Bool),
        one(11, "storageVersion", Str),
        one(12, "dbSizeQuota", Int64),
        one(13, "downgradeInfo", Msg(&DOWNGRADE_INFO)),
    ],
};

pub(in crate::server) static HASH_RESPONSE: Message = Message {
    fields: &[one(1, "header", Msg(&HEADER)), one(2, "hash", Uint32)],
};

pub(in crate::server) static HASH_KV_REQUEST: Message = Message {
    fields: &[one(1, "revision", Int64)],
};

pub(in crate::server) static HASH_KV_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "hash", Uint32),
        one(3, "compact_revision", Int64),
        one(4, "hash_revision", Int64),
    ],
};

const FILTER_TYPE: &[&str] = &["NOPUT", "NODELETE"];
const EVENT_TYPE: &[&str] = &["PUT", "DELETE"];

static WATCH_CREATE_REQUEST: Message = Message {
    fields: &[
        one(1, "key", Bytes),
        one(2, "range_end", Bytes),
        one(3, "start_revision", Int64),
        one(4, "progress_notify", Bool),
        many(5, "filters", Enum(FILTER_TYPE)),
        one(6, "prev_kv", Bool),
        one(7, "watch_id", Int64),
        one(8, "fragment", Bool),
    ],
};

static WATCH_CANCEL_REQUEST: Message = Message {
    fields: &[one(1, "watch_id", Int64)],
};

pub(in crate::server) static WATCH_REQUEST: Message = Message {
    fields: &[
        one(1, "create_request", Msg(&WATCH_CREATE_REQUEST)),
        one(2, "cancel_request", Msg(&WATCH_CANCEL_REQUEST)),
        one(3, "progress_request", Msg(&EMPTY)),
    ],
};

static EVENT: Message = Message {
    fields: &[
        one(1, "type", Enum(EVENT_TYPE)),
        one(2, "kv", Msg(&KEY_VALUE)),
        one(3, "prev_kv", Msg(&KEY_VALUE)),
    ],
};

pub(in crate::server) static WATCH_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "watch_id", Int64),
        one(3, "created", Bool),
        one(4, "canceled", Bool),
        one(5, "compact_revision", Int64),
        one(6, "cancel_reason", Str),
        one(7, "fragment", Bool),
        many(11, "events", Msg(&EVENT)),
    ],
};

pub(in crate::server) static LEASE_KEEP_ALIVE_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "ID", Int64),
        one(3, "TTL", Int64),
    ],
};

pub(in crate::server) static MOVE_LEADER_REQUEST: Message = Message {
    fields: &[one(1, "targetID", Uint64)],
};
