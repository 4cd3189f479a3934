//! The etcd release tally speaks for: what Status, `/version` and `--version` report.

/// The etcd version tally answers with (the API level it implements).
pub(super) const ETCD_VERSION: &str = "3.4.23";
/// The cluster version etcd reports beside it (`/version`'s `etcdcluster`): major.minor.0.
pub(super) const ETCD_CLUSTER_VERSION: &str = "3.4.0";
