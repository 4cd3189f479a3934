//! The `Auth` service's messages (etcd's `rpc.proto`) and the users and roles they manage
//! (etcd's `authpb`).

use bytes::Bytes;

use super::rpc_kv::ResponseHeader;

/// What a permission allows (`authpb.Permission.Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum PermissionType {
    /// Reads (Range, and Watch).
    Read = 0,
    /// Writes (Put, DeleteRange).
    Write = 1,
    /// Both.
    Readwrite = 2,
}

/// One key permission of a role: a key, a range `[key, range_end)`, or from `key` on when
/// `range_end` is `"\0"`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Permission {
    /// What it allows.
    #[prost(enumeration = "PermissionType", tag = "1")]
    pub perm_type: i32,
    /// The key, or the range's first key.
    #[prost(bytes = "bytes", tag = "2")]
    pub key: Bytes,
    /// The range's end (exclusive); empty for the key alone; `"\0"` for every key from `key`.
    #[prost(bytes = "bytes", tag = "3")]
    pub range_end: Bytes,
}

/// Options of a user (`authpb.UserAddOptions`).
#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct UserAddOptions {
    /// The user has no password: it authenticates by its TLS client certificate only.
    #[prost(bool, tag = "1")]
    pub no_password: bool,
}

/// `AuthEnable`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthEnableRequest {}

/// `AuthDisable`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthDisableRequest {}

/// `Authenticate`: a user's name and password, for a token.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthenticateRequest {
    /// The user's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The user's password.
    #[prost(string, tag = "2")]
    pub password: String,
    /// As replicated: no password (the member that took the call checked it), and the hash
    /// of the token it gives out, so every member knows the token without the log holding it.
    #[prost(string, tag = "3")]
    pub token_hash: String,
}

/// `UserAdd`. Replicated with the password's hash in `hashed_password` and no `password`: the
/// member that takes the call hashes it (with a salt of its own), so every member stores the
/// same hash and none logs the password.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthUserAddRequest {
    /// The user's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The password, as the client sends it.
    #[prost(string, tag = "2")]
    pub password: String,
    /// Its options.
    #[prost(message, optional, tag = "3")]
    pub options: Option<UserAddOptions>,
    /// The password's hash, as replicated.
    #[prost(string, tag = "4")]
    pub hashed_password: String,
}

/// `UserGet`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthUserGetRequest {
    /// The user's name.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `UserDelete`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthUserDeleteRequest {
    /// The user's name.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `UserChangePassword`, replicated like `UserAdd`: with the hash only.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthUserChangePasswordRequest {
    /// The user's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The new password, as the client sends it.
    #[prost(string, tag = "2")]
    pub password: String,
    /// The new password's hash, as replicated.
    #[prost(string, tag = "3")]
    pub hashed_password: String,
}

/// `UserGrantRole`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthUserGrantRoleRequest {
    /// The user's name.
    #[prost(string, tag = "1")]
    pub user: String,
    /// The role granted.
    #[prost(string, tag = "2")]
    pub role: String,
}

/// `UserRevokeRole`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthUserRevokeRoleRequest {
    /// The user's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The role revoked.
    #[prost(string, tag = "2")]
    pub role: String,
}

/// `RoleAdd`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthRoleAddRequest {
    /// The role's name.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `RoleGet`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthRoleGetRequest {
    /// The role's name.
    #[prost(string, tag = "1")]
    pub role: String,
}

/// `UserList`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthUserListRequest {}

/// `RoleList`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthRoleListRequest {}

/// `RoleDelete`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthRoleDeleteRequest {
    /// The role's name.
    #[prost(string, tag = "1")]
    pub role: String,
}

/// `RoleGrantPermission`: adds the permission, or changes the type of the one with the same
/// key and range end.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthRoleGrantPermissionRequest {
    /// The role's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The permission.
    #[prost(message, optional, tag = "2")]
    pub perm: Option<Permission>,
}

/// `RoleRevokePermission`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthRoleRevokePermissionRequest {
    /// The role's name.
    #[prost(string, tag = "1")]
    pub role: String,
    /// The permission's key.
    #[prost(bytes = "bytes", tag = "2")]
    pub key: Bytes,
    /// The permission's range end.
    #[prost(bytes = "bytes", tag = "3")]
    pub range_end: Bytes,
}

/// The answer of the auth calls that carry nothing but a header.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// The answer to `Authenticate`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthenticateResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The token to send as the `token` metadata of later calls.
    #[prost(string, tag = "2")]
    pub token: String,
}

/// The answer to `UserGet`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthUserGetResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The user's roles, sorted.
    #[prost(string, repeated, tag = "2")]
    pub roles: Vec<String>,
}

/// The answer to `RoleGet`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthRoleGetResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The role's permissions, by key.
    #[prost(message, repeated, tag = "2")]
    pub perm: Vec<Permission>,
}

/// The answer to `UserList`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthUserListResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Every user's name, sorted.
    #[prost(string, repeated, tag = "2")]
    pub users: Vec<String>,
}

/// The answer to `RoleList`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthRoleListResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Every role's name, sorted.
    #[prost(string, repeated, tag = "2")]
    pub roles: Vec<String>,
}
