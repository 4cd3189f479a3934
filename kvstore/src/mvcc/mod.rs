//! etcd's MVCC: revisions, the generational key index, range, txn and compaction.

mod compact;
pub(crate) mod exec;
pub(crate) mod key_index;
pub(crate) mod range;
pub(crate) mod revision;
pub(crate) mod revlog;
pub(crate) mod store;
pub(crate) mod txn;
pub(crate) mod write;
