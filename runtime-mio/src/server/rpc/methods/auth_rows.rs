//! The rows of etcd's Auth service.

use prost::Message as _;
use tally_kvstore::proto::{self, internal_request::Request as Internal};

use super::row::{Handler, MethodRow, handled, row, shapes, unary};
use crate::server::calls::Method;
use crate::server::gateway::schema_auth as json;

pub(super) static ROWS: [MethodRow; 16] = [
    row::<proto::AuthEnableRequest, proto::AuthResponse>(
        unary(Method::AuthEnable),
        "/etcdserverpb.Auth/AuthEnable",
        &["auth/enable"],
        shapes(&json::EMPTY, &json::HEADER_ONLY),
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthEnable(proto::AuthEnableRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthDisableRequest, proto::AuthResponse>(
        unary(Method::AuthDisable),
        "/etcdserverpb.Auth/AuthDisable",
        &["auth/disable"],
        shapes(&json::EMPTY, &json::HEADER_ONLY),
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthDisable(proto::AuthDisableRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthenticateRequest, proto::AuthenticateResponse>(
        unary(Method::Authenticate),
        "/etcdserverpb.Auth/Authenticate",
        &["auth/authenticate"],
        shapes(&json::AUTHENTICATE_REQUEST, &json::AUTHENTICATE_RESPONSE),
        handled!(Auth, authenticate, AuthenticateRequest),
    ),
    row::<proto::AuthUserAddRequest, proto::AuthResponse>(
        unary(Method::UserAdd),
        "/etcdserverpb.Auth/UserAdd",
        &["auth/user/add"],
        shapes(&json::USER_ADD_REQUEST, &json::HEADER_ONLY),
        handled!(Auth, user_add, AuthUserAddRequest),
    ),
    row::<proto::AuthUserGetRequest, proto::AuthUserGetResponse>(
        unary(Method::UserGet),
        "/etcdserverpb.Auth/UserGet",
        &["auth/user/get"],
        shapes(&json::NAME_REQUEST, &json::USER_GET_RESPONSE),
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthUserGet(proto::AuthUserGetRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthUserListRequest, proto::AuthUserListResponse>(
        unary(Method::UserList),
        "/etcdserverpb.Auth/UserList",
        &["auth/user/list"],
        shapes(&json::EMPTY, &json::USER_LIST_RESPONSE),
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthUserList(proto::AuthUserListRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthUserDeleteRequest, proto::AuthResponse>(
        unary(Method::UserDelete),
        "/etcdserverpb.Auth/UserDelete",
        &["auth/user/delete"],
        shapes(&json::NAME_REQUEST, &json::HEADER_ONLY),
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthUserDelete(proto::AuthUserDeleteRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthUserChangePasswordRequest, proto::AuthResponse>(
        unary(Method::UserChangePassword),
        "/etcdserverpb.Auth/UserChangePassword",
        &["auth/user/changepw"],
        shapes(&json::USER_CHANGE_PASSWORD_REQUEST, &json::HEADER_ONLY),
        handled!(Auth, user_change_password, AuthUserChangePasswordRequest),
    ),
    row::<proto::AuthUserGrantRoleRequest, proto::AuthResponse>(
        unary(Method::UserGrantRole),
        "/etcdserverpb.Auth/UserGrantRole",
        &["auth/user/grant"],
        shapes(&json::USER_GRANT_ROLE_REQUEST, &json::HEADER_ONLY),
        Handler::Auth(|service, call, message| {
            let request =
                Internal::AuthUserGrantRole(proto::AuthUserGrantRoleRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthUserRevokeRoleRequest, proto::AuthResponse>(
        unary(Method::UserRevokeRole),
        "/etcdserverpb.Auth/UserRevokeRole",
        &["auth/user/revoke"],
        shapes(&json::USER_REVOKE_ROLE_REQUEST, &json::HEADER_ONLY),
        Handler::Auth(|service, call, message| {
            let request =
                Internal::AuthUserRevokeRole(proto::AuthUserRevokeRoleRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthRoleAddRequest, proto::AuthResponse>(
        unary(Method::RoleAdd),
        "/etcdserverpb.Auth/RoleAdd",
        &["auth/role/add"],
        shapes(&json::NAME_REQUEST, &json::HEADER_ONLY),
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthRoleAdd(proto::AuthRoleAddRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthRoleGetRequest, proto::AuthRoleGetResponse>(
        unary(Method::RoleGet),
        "/etcdserverpb.Auth/RoleGet",
        &["auth/role/get"],
        shapes(&json::ROLE_REQUEST, &json::ROLE_GET_RESPONSE),
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthRoleGet(proto::AuthRoleGetRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthRoleListRequest, proto::AuthRoleListResponse>(
        unary(Method::RoleList),
        "/etcdserverpb.Auth/RoleList",
        &["auth/role/list"],
        shapes(&json::EMPTY, &json::ROLE_LIST_RESPONSE),
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthRoleList(proto::AuthRoleListRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthRoleDeleteRequest, proto::AuthResponse>(
        unary(Method::RoleDelete),
        "/etcdserverpb.Auth/RoleDelete",
        &["auth/role/delete"],
        shapes(&json::ROLE_REQUEST, &json::HEADER_ONLY),
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthRoleDelete(proto::AuthRoleDeleteRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthRoleGrantPermissionRequest, proto::AuthResponse>(
        unary(Method::RoleGrantPermission),
        "/etcdserverpb.Auth/RoleGrantPermission",
        &["auth/role/grant"],
        shapes(&json::ROLE_GRANT_PERMISSION_REQUEST, &json::HEADER_ONLY),
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthRoleGrantPermission(
                proto::AuthRoleGrantPermissionRequest::decode(message)?,
            );
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthRoleRevokePermissionRequest, proto::AuthResponse>(
        unary(Method::RoleRevokePermission),
        "/etcdserverpb.Auth/RoleRevokePermission",
        &["auth/role/revoke"],
        shapes(&json::ROLE_REVOKE_PERMISSION_REQUEST, &json::HEADER_ONLY),
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthRoleRevokePermission(
                proto::AuthRoleRevokePermissionRequest::decode(message)?,
            );
            service.manage(call, request);
            Ok(())
        }),
    ),
];
