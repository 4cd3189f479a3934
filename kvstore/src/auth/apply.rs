//! The auth requests of the log, applied to the store's [`AuthStore`].

use super::AuthStore;
use crate::error::KvError;
use crate::outcome::ApplyResponse;
use crate::proto::AuthResponse;
use crate::proto::internal_request::Request;
use crate::store::KvStore;

impl KvStore {
    /// Users, roles and permissions: what the server checks calls against.
    pub fn auth(&self) -> &AuthStore {
        &self.auth
    }

    /// Applies an auth request (any other request is not one: a fault of the caller's).
    pub(crate) fn apply_auth(&mut self, request: &Request) -> Result<ApplyResponse, KvError> {
        let auth = &mut self.auth;
        let changed = |result: Result<(), KvError>| {
            result.map(|()| ApplyResponse::Auth(AuthResponse::default()))
        };
        match request {
            Request::AuthEnable(_) => changed(auth.enable()),
            Request::AuthDisable(_) => {
                auth.disable();
                changed(Ok(()))
            }
            Request::Authenticate(r) => {
                auth.authenticate(r)
                    .map(|revision| ApplyResponse::Authenticated {
                        name: r.name.clone(),
                        revision,
                    })
            }
            Request::AuthUserAdd(r) => changed(auth.user_add(r)),
            Request::AuthUserDelete(r) => changed(auth.user_delete(r)),
            Request::AuthUserChangePassword(r) => changed(auth.user_change_password(r)),
            Request::AuthUserGrantRole(r) => changed(auth.user_grant_role(r)),
            Request::AuthUserGet(r) => auth.user_get(r).map(ApplyResponse::AuthUserGet),
            Request::AuthUserRevokeRole(r) => changed(auth.user_revoke_role(r)),
            Request::AuthUserList(_) => Ok(ApplyResponse::AuthUserList(auth.user_list())),
            Request::AuthRoleList(_) => Ok(ApplyResponse::AuthRoleList(auth.role_list())),
            Request::AuthRoleAdd(r) => changed(auth.role_add(r)),
            Request::AuthRoleDelete(r) => changed(auth.role_delete(r)),
            Request::AuthRoleGrantPermission(r) => changed(auth.role_grant_permission(r)),
            Request::AuthRoleGet(r) => auth.role_get(r).map(ApplyResponse::AuthRoleGet),
            Request::AuthRoleRevokePermission(r) => changed(auth.role_revoke_permission(r)),
            other => Err(KvError::Decode(format!("not an auth request: {other:?}"))),
        }
    }
}
