//! The auth requests of the log, applied to the store's [`AuthStore`].

use super::AuthStore;
use crate::error::KvError;
use crate::outcome::ApplyResponse;
use crate::proto::internal_request::Request;
use crate::proto::request_op::Request as Op;
use crate::proto::{AuthResponse, PermissionType, RequestHeader, TxnRequest};
use crate::store::KvStore;

use PermissionType::{Read, Write};

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
                        token_hash: r.token_hash.clone(),
                    })
            }
            Request::AuthUserAdd(r) => changed(auth.user_add(r)),
            Request::AuthUserDelete(r) => {
                auth.user_delete(r)
                    .map(|()| ApplyResponse::AuthUserInvalidated {
                        name: r.name.clone(),
                    })
            }
            Request::AuthUserChangePassword(r) => {
                auth.user_change_password(r)
                    .map(|()| ApplyResponse::AuthUserInvalidated {
                        name: r.name.clone(),
                    })
            }
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

    /// Whether the user in `header` may have `request` applied, as etcd's auth applier checks
    /// it: reads and writes by key, every compare and operation of a transaction (both
    /// branches), the keys of a revoked lease (and of a lease a put attaches), and `root` for
    /// auth management. As in etcd 3.4, compactions and alarms are not checked.
    pub(crate) fn check_permission(
        &self,
        header: &RequestHeader,
        request: &Request,
    ) -> Result<(), KvError> {
        let auth = &self.auth;
        if !auth.enabled() {
            return Ok(());
        }
        let (user, revision) = (header.username.as_str(), header.auth_revision);
        let check = |kind, key: &[u8], end: &[u8]| auth.check(user, revision, kind, key, end);
        match request {
            Request::Range(r) => check(Read, &r.key, &r.range_end),
            Request::Put(p) => {
                check(Write, &p.key, b"")?;
                self.check_lease_keys(header, p.lease)?;
                if p.prev_kv {
                    check(Read, &p.key, b"")?;
                }
                Ok(())
            }
            Request::DeleteRange(d) => {
                check(Write, &d.key, &d.range_end)?;
                if d.prev_kv {
                    check(Read, &d.key, &d.range_end)?;
                }
                Ok(())
            }
            Request::Txn(t) => self.check_txn(header, t),
            Request::LeaseRevoke(r) => self.check_lease_keys(header, r.id),
            // etcd 3.4 checks neither compactions nor alarms.
            Request::LeaseGrant(_)
            | Request::LeaseCheckpoint(_)
            | Request::LeaseRenew(_)
            | Request::Authenticate(_)
            | Request::Compaction(_)
            | Request::Alarm(_) => Ok(()),
            // Every other request is auth management.
            _ => auth.check_admin(user, revision),
        }
    }

    fn check_txn(&self, header: &RequestHeader, txn: &TxnRequest) -> Result<(), KvError> {
        let (user, revision) = (header.username.as_str(), header.auth_revision);
        let check = |kind, key: &[u8], end: &[u8]| self.auth.check(user, revision, kind, key, end);
        for compare in &txn.compare {
            check(Read, &compare.key, &compare.range_end)?;
        }
        for op in txn.success.iter().chain(&txn.failure) {
            match &op.request {
                Some(Op::RequestRange(r)) => check(Read, &r.key, &r.range_end)?,
                Some(Op::RequestPut(p)) => {
                    check(Write, &p.key, b"")?;
                    if p.prev_kv {
                        check(Read, &p.key, b"")?;
                    }
                }
                Some(Op::RequestDeleteRange(d)) => {
                    check(Write, &d.key, &d.range_end)?;
                    if d.prev_kv {
                        check(Read, &d.key, &d.range_end)?;
                    }
                }
                Some(Op::RequestTxn(inner)) => self.check_txn(header, inner)?,
                None => {}
            }
        }
        Ok(())
    }

    /// A user may revoke a lease (or attach a key to it) only if it may write every key the
    /// lease holds.
    fn check_lease_keys(&self, header: &RequestHeader, lease: i64) -> Result<(), KvError> {
        if lease == 0 {
            return Ok(());
        }
        let Ok(keys) = self.lessor.keys_of(lease) else {
            return Ok(());
        };
        for key in keys {
            self.auth
                .check(&header.username, header.auth_revision, Write, &key, b"")?;
        }
        Ok(())
    }
}
