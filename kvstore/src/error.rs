//! The store's operating errors, each a kind of its own with etcd's exact client-facing
//! message. Which gRPC status carries each is the client layer's business (tallyd maps them in
//! one place).

use core::fmt;

/// Why a request to the store failed. Every variant leaves the store unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KvError {
    /// A request named no key.
    EmptyKey,
    /// `ignore_value`/`ignore_lease` was set on a key that does not exist.
    KeyNotFound,
    /// `ignore_value` was set together with a value.
    ValueProvided,
    /// `ignore_lease` was set together with a lease.
    LeaseProvided,
    /// A txn holds more operations than `txn_ops_max`.
    TooManyOps,
    /// A txn writes one key twice.
    DuplicateKey,
    /// The revision asked for has been compacted.
    Compacted,
    /// The revision asked for is above the current revision.
    FutureRevision,
    /// A sort order or target value etcd does not define.
    InvalidSortOption,
    /// The lease does not exist.
    LeaseNotFound,
    /// A lease with this ID exists already.
    LeaseExists,
    /// The TTL is above etcd's maximum.
    LeaseTtlTooLarge,
    /// A lease operation that only the primary (leader) lessor may do.
    NotPrimary,
    /// The watch does not exist.
    WatchNotFound,
    /// `watchers_max` watchers exist already.
    TooManyWatchers,
    /// A NOSPACE alarm is raised, and the request would add data (see `quota`).
    NoSpace,
    /// `AuthEnable` without a `root` user.
    RootUserNotExist,
    /// `AuthEnable` while the `root` user lacks the `root` role.
    RootRoleNotExist,
    /// A user of this name exists already.
    UserAlreadyExist,
    /// A request named no user.
    UserEmpty,
    /// No user has this name.
    UserNotFound,
    /// A role of this name exists already.
    RoleAlreadyExist,
    /// No role has this name.
    RoleNotFound,
    /// A request named no role.
    RoleEmpty,
    /// A wrong name or password, or a user without a password.
    AuthFailed,
    /// The user's roles do not allow the request.
    PermissionDenied,
    /// The user does not have the role revoked.
    RoleNotGranted,
    /// The role does not have the permission revoked.
    PermissionNotGranted,
    /// `Authenticate` while authentication is disabled.
    AuthNotEnabled,
    /// The token is unknown or expired.
    InvalidAuthToken,
    /// Removing what authentication needs while it is enabled (the `root` user or role).
    InvalidAuthManagement,
    /// The request was checked against an older auth revision than the store's.
    AuthOldRevision,
    /// The committed entry did not decode; the store ignored it.
    Decode(String),
    /// The entry's raft index is not above the last applied index; the store ignored it.
    StaleIndex {
        /// The entry's index.
        index: u64,
        /// The store's last applied index.
        applied: u64,
    },
}

impl KvError {
    /// The message etcd puts in `grpc-message` for this error.
    pub fn etcd_message(&self) -> &'static str {
        match self {
            KvError::EmptyKey => "etcdserver: key is not provided",
            KvError::KeyNotFound => "etcdserver: key not found",
            KvError::ValueProvided => "etcdserver: value is provided",
            KvError::LeaseProvided => "etcdserver: lease is provided",
            KvError::TooManyOps => "etcdserver: too many operations in txn request",
            KvError::DuplicateKey => "etcdserver: duplicate key given in txn request",
            KvError::Compacted => "etcdserver: mvcc: required revision has been compacted",
            KvError::FutureRevision => "etcdserver: mvcc: required revision is a future revision",
            KvError::InvalidSortOption => "etcdserver: invalid sort option",
            KvError::LeaseNotFound => "etcdserver: requested lease not found",
            KvError::LeaseExists => "etcdserver: lease already exists",
            KvError::LeaseTtlTooLarge => "etcdserver: too large lease TTL",
            KvError::NotPrimary => "etcdserver: not leader",
            KvError::WatchNotFound => "etcdserver: watch not found",
            KvError::TooManyWatchers => "etcdserver: too many watchers",
            KvError::NoSpace => "etcdserver: mvcc: database space exceeded",
            KvError::RootUserNotExist => "etcdserver: root user does not exist",
            KvError::RootRoleNotExist => "etcdserver: root user does not have root role",
            KvError::UserAlreadyExist => "etcdserver: user name already exists",
            KvError::UserEmpty => "etcdserver: user name is empty",
            KvError::UserNotFound => "etcdserver: user name not found",
            KvError::RoleAlreadyExist => "etcdserver: role name already exists",
            KvError::RoleNotFound => "etcdserver: role name not found",
            KvError::RoleEmpty => "etcdserver: role name is empty",
            KvError::AuthFailed => "etcdserver: authentication failed, invalid user ID or password",
            KvError::PermissionDenied => "etcdserver: permission denied",
            KvError::RoleNotGranted => "etcdserver: role is not granted to the user",
            KvError::PermissionNotGranted => "etcdserver: permission is not granted to the role",
            KvError::AuthNotEnabled => "etcdserver: authentication is not enabled",
            KvError::InvalidAuthToken => "etcdserver: invalid auth token",
            KvError::InvalidAuthManagement => "etcdserver: invalid auth management",
            KvError::AuthOldRevision => "etcdserver: revision of auth store is old",
            KvError::Decode(_) | KvError::StaleIndex { .. } => {
                "etcdserver: internal error applying request"
            }
        }
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::Decode(why) => write!(f, "undecodable request: {why}"),
            KvError::StaleIndex { index, applied } => {
                write!(f, "raft index {index} is not above applied index {applied}")
            }
            other => f.write_str(other.etcd_message()),
        }
    }
}

impl std::error::Error for KvError {}

/// Why a snapshot could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The reader or writer failed.
    Io(std::io::Error),
    /// The data does not start with the snapshot magic.
    BadMagic,
    /// A format version this build does not read.
    UnsupportedVersion(u32),
    /// The checksum does not match the data.
    Checksum {
        /// The checksum the snapshot carries.
        expected: u32,
        /// The checksum of the data read.
        actual: u32,
    },
    /// The data is structurally invalid.
    Corrupt(&'static str),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Io(e) => write!(f, "snapshot i/o: {e}"),
            SnapshotError::BadMagic => f.write_str("not a tally kvstore snapshot"),
            SnapshotError::UnsupportedVersion(v) => write!(f, "unsupported snapshot version {v}"),
            SnapshotError::Checksum { expected, actual } => write!(
                f,
                "snapshot checksum mismatch: expected {expected:#010x}, got {actual:#010x}"
            ),
            SnapshotError::Corrupt(why) => write!(f, "corrupt snapshot: {why}"),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for SnapshotError {
    fn from(e: std::io::Error) -> Self {
        SnapshotError::Io(e)
    }
}
