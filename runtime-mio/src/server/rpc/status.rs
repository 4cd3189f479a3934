//! The statuses calls end with, as etcd answers them: its codes and messages, and the one
//! place where store errors and proposal errors meet gRPC codes.

use std::time::Duration;

use tally_kvstore::KvError;

use crate::client::{Code as GrpcCode, Status};

/// How long a client request may wait for commit or confirmation; then it gets
/// [`status_timeout`].
pub(in crate::server) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// etcd's ErrGPRCNotSupportedForLearner.
pub(in crate::server) fn status_learner() -> Status {
    status(
        GrpcCode::Unavailable,
        "etcdserver: rpc not supported for learner",
    )
}

pub(in crate::server) fn status(code: GrpcCode, message: &str) -> Status {
    Status::new(code, message)
}

pub(in crate::server) fn status_timeout() -> Status {
    status(GrpcCode::Unavailable, "etcdserver: request timed out")
}

pub(in crate::server) fn status_no_leader() -> Status {
    status(GrpcCode::Unavailable, "etcdserver: no leader")
}

/// The status etcd answers a store error with: its message, under the gRPC code etcd's
/// `rpctypes` gives it. The one place store errors meet gRPC codes.
pub(in crate::server) fn status_from_kv(error: &KvError) -> Status {
    status(grpc_code_of(error), error.etcd_message())
}

fn grpc_code_of(error: &KvError) -> GrpcCode {
    match error {
        KvError::EmptyKey
        | KvError::KeyNotFound
        | KvError::ValueProvided
        | KvError::LeaseProvided
        | KvError::TooManyOps
        | KvError::DuplicateKey
        | KvError::InvalidSortOption => GrpcCode::InvalidArgument,
        KvError::Compacted | KvError::FutureRevision | KvError::LeaseTtlTooLarge => {
            GrpcCode::OutOfRange
        }
        KvError::LeaseNotFound | KvError::WatchNotFound => GrpcCode::NotFound,
        KvError::LeaseExists | KvError::NotPrimary | KvError::TooManyWatchers => {
            GrpcCode::FailedPrecondition
        }
        KvError::NoSpace => GrpcCode::ResourceExhausted,
        KvError::UserEmpty
        | KvError::RoleEmpty
        | KvError::AuthFailed
        | KvError::InvalidAuthManagement
        | KvError::AuthOldRevision => GrpcCode::InvalidArgument,
        KvError::RootUserNotExist
        | KvError::RootRoleNotExist
        | KvError::UserAlreadyExist
        | KvError::UserNotFound
        | KvError::RoleAlreadyExist
        | KvError::RoleNotFound
        | KvError::RoleNotGranted
        | KvError::PermissionNotGranted
        | KvError::AuthNotEnabled => GrpcCode::FailedPrecondition,
        KvError::PermissionDenied => GrpcCode::PermissionDenied,
        KvError::InvalidAuthToken => GrpcCode::Unauthenticated,
        KvError::Decode(_) | KvError::StaleIndex { .. } => GrpcCode::Internal,
        // A kind of store error this layer does not know yet is a fault of tallyd's.
        _ => GrpcCode::Internal,
    }
}

pub(in crate::server) fn status_from_propose(error: tally_core::ProposeError) -> Status {
    match error {
        tally_core::ProposeError::NoLeader => status_no_leader(),
        tally_core::ProposeError::TooLarge => status(
            GrpcCode::InvalidArgument,
            "etcdserver: request is too large",
        ),
        tally_core::ProposeError::Busy => {
            status(GrpcCode::ResourceExhausted, "etcdserver: too many requests")
        }
        tally_core::ProposeError::TransferInProgress => {
            status(GrpcCode::Unavailable, "etcdserver: leader changed")
        }
        tally_core::ProposeError::LearnerNotReady => status(
            GrpcCode::FailedPrecondition,
            "etcdserver: can only promote a learner member which is in sync with leader",
        ),
        tally_core::ProposeError::Removed => status(
            GrpcCode::FailedPrecondition,
            "etcdserver: the member has been permanently removed from the cluster",
        ),
        other => status(GrpcCode::FailedPrecondition, other.as_str()),
    }
}

/// etcd's answer when a queue of requests is full.
pub(in crate::server) fn status_too_many_requests() -> Status {
    status(GrpcCode::ResourceExhausted, "etcdserver: too many requests")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// etcd's codes (its `rpctypes`), as clients tell errors apart by them.
    #[test]
    fn store_errors_take_etcds_codes() {
        for (error, code) in [
            (KvError::EmptyKey, GrpcCode::InvalidArgument),
            (KvError::DuplicateKey, GrpcCode::InvalidArgument),
            (KvError::Compacted, GrpcCode::OutOfRange),
            (KvError::FutureRevision, GrpcCode::OutOfRange),
            (KvError::LeaseTtlTooLarge, GrpcCode::OutOfRange),
            (KvError::LeaseNotFound, GrpcCode::NotFound),
            (KvError::WatchNotFound, GrpcCode::NotFound),
            (KvError::LeaseExists, GrpcCode::FailedPrecondition),
            (KvError::NotPrimary, GrpcCode::FailedPrecondition),
            (KvError::NoSpace, GrpcCode::ResourceExhausted),
            (KvError::Decode("x".into()), GrpcCode::Internal),
            (KvError::RootUserNotExist, GrpcCode::FailedPrecondition),
            (KvError::UserEmpty, GrpcCode::InvalidArgument),
            (KvError::UserNotFound, GrpcCode::FailedPrecondition),
            (KvError::AuthFailed, GrpcCode::InvalidArgument),
            (KvError::PermissionDenied, GrpcCode::PermissionDenied),
            (KvError::InvalidAuthToken, GrpcCode::Unauthenticated),
            (KvError::InvalidAuthManagement, GrpcCode::InvalidArgument),
            (KvError::AuthOldRevision, GrpcCode::InvalidArgument),
        ] {
            let status = status_from_kv(&error);
            assert_eq!(status.code(), code, "{error:?}");
            assert_eq!(status.message(), error.etcd_message());
        }
        assert_eq!(status_from_kv(&KvError::Compacted).code().as_u32(), 11);
    }
}
