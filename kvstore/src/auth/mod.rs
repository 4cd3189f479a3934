//! etcd's auth store: users, roles and their key permissions, whether authentication is on, and
//! the auth revision that every change bumps, applied from the log like the rest of the store,
//! so every member decides the same at the same index.
//!
//! Passwords arrive here hashed (the member that takes `UserAdd` hashes them before proposing);
//! tokens are the server's. What this store answers is what etcd 3.4's `auth/store.go` does:
//! its errors, its no-ops (granting a role twice, enabling twice), and its rules for the
//! `root` user and role (enabling needs them; while enabled they cannot be removed; `root`
//! may do everything).

mod apply;
mod perms;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::error::KvError;
use crate::proto::{
    AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGetRequest, AuthRoleGetResponse,
    AuthRoleGrantPermissionRequest, AuthRoleListResponse, AuthRoleRevokePermissionRequest,
    AuthUserAddRequest, AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGetRequest,
    AuthUserGetResponse, AuthUserGrantRoleRequest, AuthUserListResponse, AuthUserRevokeRoleRequest,
    AuthenticateRequest, Permission, PermissionType,
};
pub(crate) use perms::RangePermissions;

/// The user that may do everything, and must exist (with [`ROOT_ROLE`]) to enable auth.
pub const ROOT_USER: &str = "root";
/// The role that may do everything.
pub const ROOT_ROLE: &str = "root";

/// One user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct User {
    /// The password's hash; empty for a user without a password.
    pub(crate) password_hash: String,
    pub(crate) roles: BTreeSet<String>,
    pub(crate) no_password: bool,
}

/// Users, roles, whether authentication is on, and the auth revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthStore {
    enabled: bool,
    revision: u64,
    users: BTreeMap<String, User>,
    /// Each role's permissions, sorted by key then range end, as etcd keeps them.
    roles: BTreeMap<String, Vec<Permission>>,
    /// Each user's permissions merged (rebuilt on every change, so checks only read).
    merged: BTreeMap<String, RangePermissions>,
}

impl AuthStore {
    /// Whether authentication is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The auth revision: a token or a check taken at an older one is stale.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn commit(&mut self) {
        self.revision += 1;
        self.merged = self
            .users
            .iter()
            .map(|(name, user)| {
                let perms = user
                    .roles
                    .iter()
                    .filter_map(|role| self.roles.get(role))
                    .flatten();
                (name.clone(), RangePermissions::merge(perms))
            })
            .collect();
    }

    /// `AuthEnable`: needs the `root` user with the `root` role; enabling twice changes nothing.
    pub(crate) fn enable(&mut self) -> Result<(), KvError> {
        if self.enabled {
            return Ok(());
        }
        let root = self.users.get(ROOT_USER).ok_or(KvError::RootUserNotExist)?;
        if !root.roles.contains(ROOT_ROLE) {
            return Err(KvError::RootRoleNotExist);
        }
        self.enabled = true;
        Ok(())
    }

    /// `AuthDisable`.
    pub(crate) fn disable(&mut self) {
        if self.enabled {
            self.enabled = false;
            self.commit();
        }
    }

    /// `Authenticate`, once the server has checked the password against the hash it reads
    /// with [`AuthStore::password_hash`]: the auth revision the user's token is good for.
    pub(crate) fn authenticate(&self, request: &AuthenticateRequest) -> Result<u64, KvError> {
        if !self.enabled {
            return Err(KvError::AuthNotEnabled);
        }
        match self.users.get(&request.name) {
            Some(user) if !user.no_password => Ok(self.revision),
            _ => Err(KvError::AuthFailed),
        }
    }

    /// The password hash of `name`, to check a password against; `None` for an unknown user or
    /// one without a password.
    pub fn password_hash(&self, name: &str) -> Option<&str> {
        self.users
            .get(name)
            .filter(|user| !user.no_password)
            .map(|user| user.password_hash.as_str())
    }

    /// Whether `name` is a user.
    pub fn has_user(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    pub(crate) fn user_add(&mut self, request: &AuthUserAddRequest) -> Result<(), KvError> {
        if request.name.is_empty() {
            return Err(KvError::UserEmpty);
        }
        if self.users.contains_key(&request.name) {
            return Err(KvError::UserAlreadyExist);
        }
        let no_password = request.options.is_some_and(|o| o.no_password);
        let user = User {
            password_hash: if no_password {
                String::new()
            } else {
                request.hashed_password.clone()
            },
            roles: BTreeSet::new(),
            no_password,
        };
        self.users.insert(request.name.clone(), user);
        self.commit();
        Ok(())
    }

    pub(crate) fn user_delete(&mut self, request: &AuthUserDeleteRequest) -> Result<(), KvError> {
        if self.enabled && request.name == ROOT_USER {
            return Err(KvError::InvalidAuthManagement);
        }
        self.users
            .remove(&request.name)
            .ok_or(KvError::UserNotFound)?;
        self.commit();
        Ok(())
    }

    pub(crate) fn user_change_password(
        &mut self,
        request: &AuthUserChangePasswordRequest,
    ) -> Result<(), KvError> {
        let user = self
            .users
            .get_mut(&request.name)
            .ok_or(KvError::UserNotFound)?;
        user.password_hash = request.hashed_password.clone();
        self.commit();
        Ok(())
    }

    pub(crate) fn user_grant_role(
        &mut self,
        request: &AuthUserGrantRoleRequest,
    ) -> Result<(), KvError> {
        let user = self
            .users
            .get_mut(&request.user)
            .ok_or(KvError::UserNotFound)?;
        // The root role need not exist to be granted.
        if request.role != ROOT_ROLE && !self.roles.contains_key(&request.role) {
            return Err(KvError::RoleNotFound);
        }
        if !user.roles.insert(request.role.clone()) {
            // Granted already: as etcd, nothing changes and nothing fails.
            return Ok(());
        }
        self.commit();
        Ok(())
    }

    pub(crate) fn user_revoke_role(
        &mut self,
        request: &AuthUserRevokeRoleRequest,
    ) -> Result<(), KvError> {
        if self.enabled && request.name == ROOT_USER && request.role == ROOT_ROLE {
            return Err(KvError::InvalidAuthManagement);
        }
        let user = self
            .users
            .get_mut(&request.name)
            .ok_or(KvError::UserNotFound)?;
        if !user.roles.remove(&request.role) {
            return Err(KvError::RoleNotGranted);
        }
        self.commit();
        Ok(())
    }

    pub(crate) fn user_get(
        &self,
        request: &AuthUserGetRequest,
    ) -> Result<AuthUserGetResponse, KvError> {
        let user = self.users.get(&request.name).ok_or(KvError::UserNotFound)?;
        Ok(AuthUserGetResponse {
            header: None,
            roles: user.roles.iter().cloned().collect(),
        })
    }

    pub(crate) fn user_list(&self) -> AuthUserListResponse {
        AuthUserListResponse {
            header: None,
            users: self.users.keys().cloned().collect(),
        }
    }

    pub(crate) fn role_add(&mut self, request: &AuthRoleAddRequest) -> Result<(), KvError> {
        if request.name.is_empty() {
            return Err(KvError::RoleEmpty);
        }
        if self.roles.contains_key(&request.name) {
            return Err(KvError::RoleAlreadyExist);
        }
        self.roles.insert(request.name.clone(), Vec::new());
        self.commit();
        Ok(())
    }

    pub(crate) fn role_delete(&mut self, request: &AuthRoleDeleteRequest) -> Result<(), KvError> {
        if self.enabled && request.role == ROOT_ROLE {
            return Err(KvError::InvalidAuthManagement);
        }
        self.roles
            .remove(&request.role)
            .ok_or(KvError::RoleNotFound)?;
        for user in self.users.values_mut() {
            user.roles.remove(&request.role);
        }
        self.commit();
        Ok(())
    }

    pub(crate) fn role_get(
        &self,
        request: &AuthRoleGetRequest,
    ) -> Result<AuthRoleGetResponse, KvError> {
        let perms = self.roles.get(&request.role).ok_or(KvError::RoleNotFound)?;
        Ok(AuthRoleGetResponse {
            header: None,
            perm: perms.clone(),
        })
    }

    pub(crate) fn role_list(&self) -> AuthRoleListResponse {
        AuthRoleListResponse {
            header: None,
            roles: self.roles.keys().cloned().collect(),
        }
    }

    pub(crate) fn role_grant_permission(
        &mut self,
        request: &AuthRoleGrantPermissionRequest,
    ) -> Result<(), KvError> {
        let perms = self
            .roles
            .get_mut(&request.name)
            .ok_or(KvError::RoleNotFound)?;
        let granted = request.perm.clone().unwrap_or_default();
        match perms
            .iter_mut()
            .find(|p| p.key == granted.key && p.range_end == granted.range_end)
        {
            // The same key and range: the type changes.
            Some(existing) => existing.perm_type = granted.perm_type,
            None => {
                let at = perms.partition_point(|p| {
                    (&p.key, &p.range_end) < (&granted.key, &granted.range_end)
                });
                perms.insert(at, granted);
            }
        }
        self.commit();
        Ok(())
    }

    pub(crate) fn role_revoke_permission(
        &mut self,
        request: &AuthRoleRevokePermissionRequest,
    ) -> Result<(), KvError> {
        let perms = self
            .roles
            .get_mut(&request.role)
            .ok_or(KvError::RoleNotFound)?;
        let at = perms
            .iter()
            .position(|p| p.key == request.key && p.range_end == request.range_end)
            .ok_or(KvError::PermissionNotGranted)?;
        perms.remove(at);
        self.commit();
        Ok(())
    }

    /// Whether `user`, checked at auth revision `revision` (its token's), may do `kind` on
    /// `key` (with `range_end` as the request has it), as etcd's `isOpPermitted` decides.
    pub fn check(
        &self,
        user: &str,
        revision: u64,
        kind: PermissionType,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), KvError> {
        if !self.enabled {
            return Ok(());
        }
        self.check_user(user, revision)?;
        if self.is_root(user) {
            return Ok(());
        }
        match self.merged.get(user) {
            Some(perms) if perms.allows(kind, key, range_end) => Ok(()),
            _ => Err(KvError::PermissionDenied),
        }
    }

    /// Whether `user` may do what only `root` may (membership, maintenance, compaction, auth
    /// management), as etcd's `IsAdminPermitted` decides.
    pub fn check_admin(&self, user: &str, revision: u64) -> Result<(), KvError> {
        if !self.enabled {
            return Ok(());
        }
        self.check_user(user, revision)?;
        if self.is_root(user) {
            Ok(())
        } else {
            Err(KvError::PermissionDenied)
        }
    }

    fn check_user(&self, user: &str, revision: u64) -> Result<(), KvError> {
        // Revision 0: the call carried no token, so no user.
        if revision == 0 || user.is_empty() {
            return Err(KvError::UserEmpty);
        }
        if revision < self.revision {
            return Err(KvError::AuthOldRevision);
        }
        if !self.users.contains_key(user) {
            return Err(KvError::PermissionDenied);
        }
        Ok(())
    }

    fn is_root(&self, user: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|u| u.roles.contains(ROOT_ROLE))
    }

    /// Every user, for a snapshot.
    pub(crate) fn users(&self) -> &BTreeMap<String, User> {
        &self.users
    }

    /// Every role with its permissions, for a snapshot.
    pub(crate) fn roles(&self) -> &BTreeMap<String, Vec<Permission>> {
        &self.roles
    }

    /// The store a snapshot holds.
    pub(crate) fn from_parts(
        enabled: bool,
        revision: u64,
        users: BTreeMap<String, User>,
        roles: BTreeMap<String, Vec<Permission>>,
    ) -> Self {
        let mut store = AuthStore {
            enabled,
            revision: 0,
            users,
            roles,
            merged: BTreeMap::new(),
        };
        store.commit();
        store.revision = revision;
        store
    }
}
