//! The rows of etcd's Auth service.

use prost::Message as _;
use tally_kvstore::proto::{self, internal_request::Request as Internal};

use super::row::{Handler, MethodRow, handled, row, unary};
use crate::server::calls::Method;

pub(super) static ROWS: [MethodRow; 16] = [
    row::<proto::AuthEnableRequest, proto::AuthResponse>(
        unary(Method::AuthEnable),
        "/etcdserverpb.Auth/AuthEnable",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthEnable(proto::AuthEnableRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthDisableRequest, proto::AuthResponse>(
        unary(Method::AuthDisable),
        "/etcdserverpb.Auth/AuthDisable",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthDisable(proto::AuthDisableRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthenticateRequest, proto::AuthenticateResponse>(
        unary(Method::Authenticate),
        "/etcdserverpb.Auth/Authenticate",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        handled!(Auth, authenticate, AuthenticateRequest),
    ),
    row::<proto::AuthUserAddRequest, proto::AuthResponse>(
        unary(Method::UserAdd),
        "/etcdserverpb.Auth/UserAdd",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        handled!(Auth, user_add, AuthUserAddRequest),
    ),
    row::<proto::AuthUserGetRequest, proto::AuthUserGetResponse>(
        unary(Method::UserGet),
        "/etcdserverpb.Auth/UserGet",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthUserGet(proto::AuthUserGetRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthUserListRequest, proto::AuthUserListResponse>(
        unary(Method::UserList),
        "/etcdserverpb.Auth/UserList",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthUserList(proto::AuthUserListRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthUserDeleteRequest, proto::AuthResponse>(
        unary(Method::UserDelete),
        "/etcdserverpb.Auth/UserDelete",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthUserDelete(proto::AuthUserDeleteRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthUserChangePasswordRequest, proto::AuthResponse>(
        unary(Method::UserChangePassword),
        "/etcdserverpb.Auth/UserChangePassword",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        handled!(Auth, user_change_password, AuthUserChangePasswordRequest),
    ),
    row::<proto::AuthUserGrantRoleRequest, proto::AuthResponse>(
        unary(Method::UserGrantRole),
        "/etcdserverpb.Auth/UserGrantRole",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
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
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
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
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthRoleAdd(proto::AuthRoleAddRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthRoleGetRequest, proto::AuthRoleGetResponse>(
        unary(Method::RoleGet),
        "/etcdserverpb.Auth/RoleGet",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthRoleGet(proto::AuthRoleGetRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthRoleListRequest, proto::AuthRoleListResponse>(
        unary(Method::RoleList),
        "/etcdserverpb.Auth/RoleList",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthRoleList(proto::AuthRoleListRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthRoleDeleteRequest, proto::AuthResponse>(
        unary(Method::RoleDelete),
        "/etcdserverpb.Auth/RoleDelete",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthRoleDelete(proto::AuthRoleDeleteRequest::decode(message)?);
            service.manage(call, request);
            Ok(())
        }),
    ),
    row::<proto::AuthRoleGrantPermissionRequest, proto::AuthResponse>(
        unary(Method::RoleGrantPermission),
        "/etcdserverpb.Auth/RoleGrantPermission",
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
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
        // The gateway's auth paths answer 501 (`gateway::route`).
        &[],
        None,
        Handler::Auth(|service, call, message| {
            let request = Internal::AuthRoleRevokePermission(
                proto::AuthRoleRevokePermissionRequest::decode(message)?,
            );
            service.manage(call, request);
            Ok(())
        }),
    ),
];
