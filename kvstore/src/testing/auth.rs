//! The auth store's fuzz driver: byte strings become sequences of auth requests over a few
//! users, roles and keys, applied through the log's encoding; after each, the store must keep
//! its rules, and a snapshot of it must read back to the same store deciding the same.

use bytes::Bytes;
use prost::Message as _;

use crate::proto::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleDeleteRequest,
    AuthRoleGrantPermissionRequest, AuthRoleRevokePermissionRequest, AuthUserAddRequest,
    AuthUserDeleteRequest, AuthUserGrantRoleRequest, AuthUserRevokeRoleRequest, InternalRequest,
    Permission, PermissionType, UserAddOptions, internal_request::Request,
};
use crate::{KvConfig, KvStore, ROOT_ROLE, ROOT_USER};

const USERS: [&str; 3] = [ROOT_USER, "alice", "bob"];
const ROLES: [&str; 3] = [ROOT_ROLE, "reader", "writer"];
const KEYS: [&[u8]; 4] = [b"", b"a", b"b", b"c"];
const ENDS: [&[u8]; 4] = [b"", b"\0", b"b", b"d"];

fn pick<T: Copy>(from: &[T], byte: u8) -> T {
    from[usize::from(byte) % from.len()]
}

/// One request from up to three bytes.
fn request(op: u8, a: u8, b: u8) -> Request {
    let user = pick(&USERS, a).to_string();
    let role = pick(&ROLES, b).to_string();
    match op % 11 {
        0 => Request::AuthEnable(AuthEnableRequest {}),
        1 => Request::AuthDisable(AuthDisableRequest {}),
        2 => Request::AuthUserAdd(AuthUserAddRequest {
            name: user,
            options: Some(UserAddOptions {
                no_password: b % 4 == 0,
            }),
            hashed_password: "$2a$10$hash".into(),
            ..AuthUserAddRequest::default()
        }),
        3 => Request::AuthUserDelete(AuthUserDeleteRequest { name: user }),
        4 => Request::AuthRoleAdd(AuthRoleAddRequest { name: role }),
        5 => Request::AuthRoleDelete(AuthRoleDeleteRequest { role }),
        6 | 7 => Request::AuthUserGrantRole(AuthUserGrantRoleRequest { user, role }),
        8 => Request::AuthUserRevokeRole(AuthUserRevokeRoleRequest { name: user, role }),
        9 => Request::AuthRoleGrantPermission(AuthRoleGrantPermissionRequest {
            name: pick(&ROLES, a).to_string(),
            perm: Some(Permission {
                perm_type: i32::from(b % 3),
                key: Bytes::from_static(pick(&KEYS, b / 3)),
                range_end: Bytes::from_static(pick(&ENDS, b / 12)),
            }),
        }),
        _ => Request::AuthRoleRevokePermission(AuthRoleRevokePermissionRequest {
            role: pick(&ROLES, a).to_string(),
            key: Bytes::from_static(pick(&KEYS, b / 3)),
            range_end: Bytes::from_static(pick(&ENDS, b / 12)),
        }),
    }
}

/// What the store decides for each user on each probe: the part that must survive a snapshot.
fn decisions(store: &KvStore) -> Vec<bool> {
    let auth = store.auth();
    let mut out = Vec::new();
    for user in USERS {
        for kind in [PermissionType::Read, PermissionType::Write] {
            for key in KEYS {
                for end in ENDS {
                    out.push(auth.check(user, auth.revision(), kind, key, end).is_ok());
                }
            }
        }
        out.push(auth.check_admin(user, auth.revision()).is_ok());
    }
    out
}

/// The fuzz target's body: panics when the store breaks a rule or a snapshot changes it.
pub fn fuzz_auth_requests(data: &[u8]) {
    let mut store = KvStore::new(KvConfig::default());
    for (index, chunk) in data.chunks(3).enumerate() {
        let [op, a, b] = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
        let entry = InternalRequest {
            id: index as u64 + 1,
            header: None,
            request: Some(request(op, a, b)),
        };
        let revision_before = store.auth().revision();
        let outcome = store.apply(index as u64 + 1, &entry.encode_to_vec()[..]);
        let auth = store.auth();
        if outcome.into_result().is_err() {
            assert_eq!(
                auth.revision(),
                revision_before,
                "a refused request changes nothing"
            );
        }
        assert!(
            auth.revision() >= revision_before,
            "the auth revision never goes back"
        );
        if auth.enabled() {
            // While enabled, `root` keeps its role: removing either is refused.
            assert!(
                auth.check_admin(ROOT_USER, auth.revision()).is_ok(),
                "enabled without a root user holding the root role"
            );
        }
        let mut bytes = Vec::new();
        store.snapshot(&mut bytes).expect("a snapshot writes");
        let mut restored = KvStore::new(KvConfig::default());
        restored
            .restore(&mut &bytes[..])
            .expect("a snapshot reads back");
        assert_eq!(
            restored.auth(),
            store.auth(),
            "the snapshot holds the auth store"
        );
        assert_eq!(decisions(&restored), decisions(&store));
    }
}
