//! The auth store as etcd 3.4's decides: its errors, its no-ops, its `root` rules, the
//! revision every change bumps, and its snapshot round trip.

use bytes::Bytes;
use prost::Message as _;

use crate::proto::*;
use crate::testing::fuzz_auth_requests;
use crate::{ApplyResponse, KvConfig, KvError, KvStore};

struct Store {
    kv: KvStore,
    index: u64,
}

impl Store {
    fn new() -> Self {
        Store {
            kv: KvStore::new(KvConfig::default()),
            index: 0,
        }
    }

    fn apply(&mut self, request: internal_request::Request) -> Result<ApplyResponse, KvError> {
        self.index += 1;
        let entry = InternalRequest {
            id: self.index,
            header: None,
            request: Some(request),
        };
        self.kv
            .apply(self.index, &entry.encode_to_vec()[..])
            .into_result()
    }

    fn ok(&mut self, request: internal_request::Request) {
        if let Err(e) = self.apply(request.clone()) {
            panic!("{request:?} refused: {e}");
        }
    }
}

use internal_request::Request as R;

fn user_add(name: &str) -> R {
    R::AuthUserAdd(AuthUserAddRequest {
        name: name.into(),
        hashed_password: format!("hash of {name}'s password"),
        ..AuthUserAddRequest::default()
    })
}

fn grant_role(user: &str, role: &str) -> R {
    R::AuthUserGrantRole(AuthUserGrantRoleRequest {
        user: user.into(),
        role: role.into(),
    })
}

fn role_add(name: &str) -> R {
    R::AuthRoleAdd(AuthRoleAddRequest { name: name.into() })
}

fn grant(role: &str, kind: PermissionType, key: &str, end: &str) -> R {
    R::AuthRoleGrantPermission(AuthRoleGrantPermissionRequest {
        name: role.into(),
        perm: Some(Permission {
            perm_type: kind as i32,
            key: Bytes::copy_from_slice(key.as_bytes()),
            range_end: Bytes::copy_from_slice(end.as_bytes()),
        }),
    })
}

/// root (with the root role), alice with a read-only role on the prefix `/app/`, auth on.
fn with_root_and_alice() -> Store {
    let mut s = Store::new();
    s.ok(user_add("root"));
    s.ok(grant_role("root", "root"));
    s.ok(user_add("alice"));
    s.ok(role_add("app-reader"));
    s.ok(grant("app-reader", PermissionType::Read, "/app/", "/app0"));
    s.ok(grant_role("alice", "app-reader"));
    s.ok(R::AuthEnable(AuthEnableRequest {}));
    s
}

#[test]
fn enabling_needs_root_with_the_root_role() {
    let mut s = Store::new();
    let enable = R::AuthEnable(AuthEnableRequest {});
    assert_eq!(s.apply(enable.clone()), Err(KvError::RootUserNotExist));
    s.ok(user_add("root"));
    assert_eq!(s.apply(enable.clone()), Err(KvError::RootRoleNotExist));
    // The root role is granted without being added first.
    s.ok(grant_role("root", "root"));
    s.ok(enable.clone());
    assert!(s.kv.auth().enabled());
    let revision = s.kv.auth().revision();
    s.ok(enable);
    assert_eq!(
        s.kv.auth().revision(),
        revision,
        "enabling twice changes nothing"
    );
}

#[test]
fn management_errors_are_etcds() {
    let mut s = with_root_and_alice();
    assert_eq!(s.apply(user_add("")), Err(KvError::UserEmpty));
    assert_eq!(s.apply(user_add("alice")), Err(KvError::UserAlreadyExist));
    assert_eq!(s.apply(role_add("")), Err(KvError::RoleEmpty));
    assert_eq!(
        s.apply(role_add("app-reader")),
        Err(KvError::RoleAlreadyExist)
    );
    assert_eq!(
        s.apply(grant_role("nobody", "app-reader")),
        Err(KvError::UserNotFound)
    );
    assert_eq!(
        s.apply(grant_role("alice", "no-such-role")),
        Err(KvError::RoleNotFound)
    );
    let revoke = |name: &str, role: &str| {
        R::AuthUserRevokeRole(AuthUserRevokeRoleRequest {
            name: name.into(),
            role: role.into(),
        })
    };
    assert_eq!(
        s.apply(revoke("alice", "root")),
        Err(KvError::RoleNotGranted)
    );
    let revoke_perm = R::AuthRoleRevokePermission(AuthRoleRevokePermissionRequest {
        role: "app-reader".into(),
        key: Bytes::from_static(b"/other"),
        range_end: Bytes::new(),
    });
    assert_eq!(s.apply(revoke_perm), Err(KvError::PermissionNotGranted));
    // While auth is on, what it needs cannot go.
    let delete_root = R::AuthUserDelete(AuthUserDeleteRequest {
        name: "root".into(),
    });
    assert_eq!(
        s.apply(delete_root.clone()),
        Err(KvError::InvalidAuthManagement)
    );
    assert_eq!(
        s.apply(revoke("root", "root")),
        Err(KvError::InvalidAuthManagement)
    );
    let delete_root_role = R::AuthRoleDelete(AuthRoleDeleteRequest {
        role: "root".into(),
    });
    assert_eq!(
        s.apply(delete_root_role),
        Err(KvError::InvalidAuthManagement)
    );
    // Granting a role twice is no error, and no change.
    let revision = s.kv.auth().revision();
    s.ok(grant_role("alice", "app-reader"));
    assert_eq!(s.kv.auth().revision(), revision);
    // Once disabled, root may go.
    s.ok(R::AuthDisable(AuthDisableRequest {}));
    s.ok(delete_root);
    assert_eq!(
        KvError::InvalidAuthManagement.etcd_message(),
        "etcdserver: invalid auth management"
    );
}

#[test]
fn permissions_decide_by_key_and_kind_and_root_may_do_everything() {
    let s = with_root_and_alice();
    let auth = s.kv.auth();
    let rev = auth.revision();
    assert_eq!(
        auth.check("alice", rev, PermissionType::Read, b"/app/x", b""),
        Ok(())
    );
    assert_eq!(
        auth.check("alice", rev, PermissionType::Write, b"/app/x", b""),
        Err(KvError::PermissionDenied)
    );
    assert_eq!(
        auth.check("alice", rev, PermissionType::Read, b"/other", b""),
        Err(KvError::PermissionDenied)
    );
    assert_eq!(
        auth.check("root", rev, PermissionType::Write, b"/", b"\0"),
        Ok(())
    );
    assert_eq!(auth.check_admin("root", rev), Ok(()));
    assert_eq!(
        auth.check_admin("alice", rev),
        Err(KvError::PermissionDenied)
    );
    assert_eq!(
        auth.check("nobody", rev, PermissionType::Read, b"/app/x", b""),
        Err(KvError::PermissionDenied)
    );
    assert_eq!(
        auth.check("alice", 0, PermissionType::Read, b"/app/x", b""),
        Err(KvError::UserEmpty),
        "no token: no user"
    );
    assert_eq!(
        auth.check("alice", rev - 1, PermissionType::Read, b"/app/x", b""),
        Err(KvError::AuthOldRevision),
        "checked against an older auth revision"
    );
}

#[test]
fn a_permission_change_takes_effect_at_its_apply() {
    let mut s = with_root_and_alice();
    let before = s.kv.auth().revision();
    s.ok(grant(
        "app-reader",
        PermissionType::Readwrite,
        "/app/",
        "/app0",
    ));
    let auth = s.kv.auth();
    assert!(auth.revision() > before);
    assert_eq!(
        auth.check(
            "alice",
            auth.revision(),
            PermissionType::Write,
            b"/app/x",
            b""
        ),
        Ok(())
    );
    let get = s.apply(R::AuthRoleGet(AuthRoleGetRequest {
        role: "app-reader".into(),
    }));
    let Ok(ApplyResponse::AuthRoleGet(role)) = get else {
        panic!("{get:?}");
    };
    assert_eq!(
        role.perm.len(),
        1,
        "the same key and range: its type changed"
    );
    assert_eq!(role.perm[0].perm_type, PermissionType::Readwrite as i32);
    // Deleting a role takes it from its users.
    s.ok(R::AuthRoleDelete(AuthRoleDeleteRequest {
        role: "app-reader".into(),
    }));
    let Ok(ApplyResponse::AuthUserGet(alice)) = s.apply(R::AuthUserGet(AuthUserGetRequest {
        name: "alice".into(),
    })) else {
        panic!("user get");
    };
    assert!(alice.roles.is_empty());
}

#[test]
fn authenticate_needs_auth_on_and_a_user_with_a_password() {
    let mut s = Store::new();
    let authenticate = |name: &str| {
        R::Authenticate(AuthenticateRequest {
            name: name.into(),
            ..AuthenticateRequest::default()
        })
    };
    assert_eq!(s.apply(authenticate("root")), Err(KvError::AuthNotEnabled));
    let mut s2 = with_root_and_alice();
    s2.ok(R::AuthUserAdd(AuthUserAddRequest {
        name: "cn-only".into(),
        options: Some(UserAddOptions { no_password: true }),
        ..AuthUserAddRequest::default()
    }));
    assert_eq!(s2.apply(authenticate("cn-only")), Err(KvError::AuthFailed));
    assert_eq!(s2.apply(authenticate("nobody")), Err(KvError::AuthFailed));
    let Ok(ApplyResponse::Authenticated { name, revision, .. }) = s2.apply(authenticate("alice"))
    else {
        panic!("alice authenticates");
    };
    assert_eq!(
        (name.as_str(), revision),
        ("alice", s2.kv.auth().revision())
    );
    assert_eq!(s2.kv.auth().password_hash("cn-only"), None);
    assert_eq!(
        s2.kv.auth().password_hash("alice"),
        Some("hash of alice's password")
    );
    s.ok(user_add("x"));
}

#[test]
fn the_auth_store_is_in_snapshots_and_a_store_without_it_writes_version_1() {
    let plain = Store::new();
    let mut bytes = Vec::new();
    plain.kv.snapshot(&mut bytes).expect("snapshot");
    assert_eq!(&bytes[8..12], &1u32.to_le_bytes(), "no auth: version 1");
    let s = with_root_and_alice();
    let mut bytes = Vec::new();
    s.kv.snapshot(&mut bytes).expect("snapshot");
    assert_eq!(&bytes[8..12], &2u32.to_le_bytes());
    let mut restored = KvStore::new(KvConfig::default());
    restored.restore(&mut &bytes[..]).expect("restore");
    assert_eq!(restored.auth(), s.kv.auth());
    let copy = s.kv.snapshot_copy();
    assert_eq!(copy.auth(), s.kv.auth(), "the snapshot copy carries it");
}

#[test]
fn the_fuzz_entry_holds_on_random_input_and_its_seeds() {
    fn prop(data: Vec<u8>) -> bool {
        fuzz_auth_requests(&data);
        true
    }
    quickcheck::QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Vec<u8>) -> bool);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/auth_requests");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("seed dir") {
        fuzz_auth_requests(&std::fs::read(entry.expect("entry").path()).expect("seed"));
        seen += 1;
    }
    assert!(seen >= 3, "only {seen} seeds in {}", dir.display());
}

impl Store {
    fn apply_as(
        &mut self,
        user: &str,
        revision: u64,
        request: internal_request::Request,
    ) -> Result<ApplyResponse, KvError> {
        self.index += 1;
        let entry = InternalRequest {
            id: self.index,
            header: Some(RequestHeader {
                username: user.into(),
                auth_revision: revision,
            }),
            request: Some(request),
        };
        self.kv
            .apply(self.index, &entry.encode_to_vec()[..])
            .into_result()
    }
}

fn put(key: &str) -> R {
    R::Put(PutRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::from_static(b"v"),
        ..PutRequest::default()
    })
}

fn range(key: &str, end: &str) -> R {
    R::Range(RangeRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        range_end: Bytes::copy_from_slice(end.as_bytes()),
        ..RangeRequest::default()
    })
}

#[test]
fn requests_are_checked_at_apply_against_the_header_user() {
    let mut s = with_root_and_alice();
    let rev = s.kv.auth().revision();
    assert!(
        s.apply_as("root", rev, put("/app/x")).is_ok(),
        "root writes anywhere"
    );
    assert!(s.apply_as("alice", rev, range("/app/", "/app0")).is_ok());
    assert_eq!(
        s.apply_as("alice", rev, put("/app/y")),
        Err(KvError::PermissionDenied),
        "read-only"
    );
    assert_eq!(
        s.apply_as("alice", rev, range("/", "\0")),
        Err(KvError::PermissionDenied),
        "outside the prefix"
    );
    assert_eq!(
        s.apply_as("", 0, range("/app/", "/app0")),
        Err(KvError::UserEmpty)
    );
    // A transaction is checked in full: its compares and both branches.
    let txn = |compare_key: &str, failure_put: &str| {
        R::Txn(TxnRequest {
            compare: vec![Compare {
                key: Bytes::copy_from_slice(compare_key.as_bytes()),
                ..Compare::default()
            }],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key: Bytes::from_static(b"/app/x"),
                    ..RangeRequest::default()
                })),
            }],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: Bytes::copy_from_slice(failure_put.as_bytes()),
                    ..PutRequest::default()
                })),
            }],
        })
    };
    s.ok(grant("app-reader", PermissionType::Readwrite, "/app/w", ""));
    let rev = s.kv.auth().revision();
    assert!(s.apply_as("alice", rev, txn("/app/x", "/app/w")).is_ok());
    assert_eq!(
        s.apply_as("alice", rev, txn("/secret", "/app/w")),
        Err(KvError::PermissionDenied),
        "a compare outside the user's keys"
    );
    assert_eq!(
        s.apply_as("alice", rev, txn("/app/x", "/app/x")),
        Err(KvError::PermissionDenied),
        "a write in the branch that does not run"
    );
    // Management needs root; the member's own requests (no header) are not checked.
    assert_eq!(
        s.apply_as("alice", rev, role_add("new")),
        Err(KvError::PermissionDenied)
    );
    assert!(s.apply(put("/anything")).is_ok());
}

#[test]
fn a_request_checked_before_a_permission_change_is_refused_after_it() {
    let mut s = with_root_and_alice();
    let before = s.kv.auth().revision();
    s.ok(R::AuthRoleRevokePermission(
        AuthRoleRevokePermissionRequest {
            role: "app-reader".into(),
            key: Bytes::from_static(b"/app/"),
            range_end: Bytes::from_static(b"/app0"),
        },
    ));
    assert_eq!(
        s.apply_as("alice", before, range("/app/", "/app0")),
        Err(KvError::AuthOldRevision),
        "the revoke applied first: the read must be checked again"
    );
    let after = s.kv.auth().revision();
    assert_eq!(
        s.apply_as("alice", after, range("/app/", "/app0")),
        Err(KvError::PermissionDenied)
    );
}

#[test]
fn a_lease_is_revoked_only_by_who_may_write_all_its_keys() {
    let mut s = with_root_and_alice();
    let rev = s.kv.auth().revision();
    s.ok(R::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 9 }));
    s.ok(R::Put(PutRequest {
        key: Bytes::from_static(b"/secret"),
        lease: 9,
        ..PutRequest::default()
    }));
    let revoke = R::LeaseRevoke(LeaseRevokeRequest { id: 9 });
    assert_eq!(
        s.apply_as("alice", rev, revoke.clone()),
        Err(KvError::PermissionDenied)
    );
    assert!(s.apply_as("root", rev, revoke).is_ok());
}
