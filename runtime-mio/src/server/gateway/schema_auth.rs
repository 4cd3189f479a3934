//! The JSON shapes of etcd's Auth messages (see `schema`).

use super::schema::Kind::{Bool, Bytes, Enum, Message as Msg, Str};
pub(in crate::server) use super::schema::{EMPTY, HEADER_ONLY};
use super::schema::{HEADER, Message, many, one};

const PERMISSION_TYPE: &[&str] = &["READ", "WRITE", "READWRITE"];

static PERMISSION: Message = Message {
    fields: &[
        one(1, "permType", Enum(PERMISSION_TYPE)),
        one(2, "key", Bytes),
        one(3, "range_end", Bytes),
    ],
};

static USER_ADD_OPTIONS: Message = Message {
    fields: &[one(1, "no_password", Bool)],
};

pub(in crate::server) static AUTHENTICATE_REQUEST: Message = Message {
    fields: &[
        one(1, "name", Str),
        one(2, "password", Str),
        one(3, "token_hash", Str),
    ],
};

pub(in crate::server) static AUTHENTICATE_RESPONSE: Message = Message {
    fields: &[one(1, "header", Msg(&HEADER)), one(2, "token", Str)],
};

pub(in crate::server) static USER_ADD_REQUEST: Message = Message {
    fields: &[
        one(1, "name", Str),
        one(2, "password", Str),
        one(3, "options", Msg(&USER_ADD_OPTIONS)),
        one(4, "hashedPassword", Str),
    ],
};

/// `UserGet`, `UserDelete`, `RoleAdd`: a name.
pub(in crate::server) static NAME_REQUEST: Message = Message {
    fields: &[one(1, "name", Str)],
};

pub(in crate::server) static USER_GET_RESPONSE: Message = Message {
    fields: &[one(1, "header", Msg(&HEADER)), many(2, "roles", Str)],
};

pub(in crate::server) static USER_LIST_RESPONSE: Message = Message {
    fields: &[one(1, "header", Msg(&HEADER)), many(2, "users", Str)],
};

pub(in crate::server) static USER_CHANGE_PASSWORD_REQUEST: Message = Message {
    fields: &[
        one(1, "name", Str),
        one(2, "password", Str),
        one(3, "hashedPassword", Str),
    ],
};

pub(in crate::server) static USER_GRANT_ROLE_REQUEST: Message = Message {
    fields: &[one(1, "user", Str), one(2, "role", Str)],
};

pub(in crate::server) static USER_REVOKE_ROLE_REQUEST: Message = Message {
    fields: &[one(1, "name", Str), one(2, "role", Str)],
};

/// `RoleGet`, `RoleDelete`: a role.
pub(in crate::server) static ROLE_REQUEST: Message = Message {
    fields: &[one(1, "role", Str)],
};

pub(in crate::server) static ROLE_GET_RESPONSE: Message = Message {
    fields: &[
        one(1, "header", Msg(&HEADER)),
        many(2, "perm", Msg(&PERMISSION)),
    ],
};

pub(in crate::server) static ROLE_LIST_RESPONSE: Message = Message {
    fields: &[one(1, "header", Msg(&HEADER)), many(2, "roles", Str)],
};

pub(in crate::server) static ROLE_GRANT_PERMISSION_REQUEST: Message = Message {
    fields: &[one(1, "name", Str), one(2, "perm", Msg(&PERMISSION))],
};

pub(in crate::server) static ROLE_REVOKE_PERMISSION_REQUEST: Message = Message {
    fields: &[
        one(1, "role", Str),
        one(2, "key", Bytes),
        one(3, "range_end", Bytes),
    ],
};
