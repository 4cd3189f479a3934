//! The JSON shapes of etcd's Lock and Election messages (see `schema`).

pub(in crate::server) use super::schema::HEADER_ONLY;
use super::schema::Kind::{Bytes, Int64, Message as Msg};
use super::schema::{HEADER, KEY_VALUE, Message, one};

pub(in crate::server) static LOCK_REQUEST: Message = Message {
    fields: &[one(1, "name", Bytes), one(2, "lease", Int64)],
};

pub(in crate::server) static LOCK_RESPONSE: Message = Message {
    fields: &[one(1, "header", Msg(&HEADER)), one(2, "key", Bytes)],
};

pub(in crate::server) static UNLOCK_REQUEST: Message = Message {
    fields: &[one(1, "key", Bytes)],
};

pub(in crate::server) static CAMPAIGN_REQUEST: Message = Message {
    fields: &[
        one(1, "name", Bytes),
        one(2, "lease", Int64),
        one(3, "value", Bytes),
    ],
};

static LEADER_KEY: Message = Message {
    fields: &[
        one(1, "name", Bytes),
        one(2, "key", Bytes),
        one(3, "rev", Int64),
        one(4, "lease", Int64),
    ],
};

pub(in crate::server) static CAMPAIGN_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "leader", Msg(&LEADER_KEY)),
    ],
};

pub(in crate::server) static PROCLAIM_REQUEST: Message = Message {
    fields: &[one(1, "leader", Msg(&LEADER_KEY)), one(2, "value", Bytes)],
};

pub(in crate::server) static LEADER_REQUEST: Message = Message {
    fields: &[one(1, "name", Bytes)],
};

pub(in crate::server) static LEADER_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        one(2, "kv", Msg(&KEY_VALUE)),
    ],
};

pub(in crate::server) static RESIGN_REQUEST: Message = Message {
    fields: &[one(1, "leader", Msg(&LEADER_KEY))],
};
