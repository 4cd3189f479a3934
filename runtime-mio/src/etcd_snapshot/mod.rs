//! etcd's snapshot files, both ways: an etcd 3.x snapshot (`etcdctl snapshot save`'s file,
//! or a member's `db`) read into a store with every revision kept, and a store written as an
//! etcd 3.4 snapshot that `etcdctl snapshot status` reads and `etcdctl snapshot restore`
//! restores.
//!
//! - `bbolt`: bbolt's file format (meta, freelist, branch and leaf pages, buckets), read and
//!   written. No maintained Rust crate reads and writes the files etcd 3.4 writes: this is a
//!   reader that trusts nothing in the file, and a writer for whole databases in one pass.
//! - `backend`: etcd's buckets and what their keys and values are.
//! - [`import_etcd_file`] and [`export_etcd_file`]: the two directions, over
//!   [`tally_kvstore::HistoryImport`] and [`tally_kvstore::KvStore::history`].
//! - [`command_main`]: `tallyd snapshot ...`.

mod backend;
mod bbolt;
mod command;
mod error;
mod export;
mod import;

pub use bbolt::BoltError;
pub use command::command_main;
pub use error::EtcdFileError;
pub use export::{ExportReport, export_etcd_file};
pub use import::{ImportReport, Imported, import_etcd_file, is_etcd_snapshot};

/// Feeds arbitrary bytes to the bbolt reader and to the etcd import; what imports must restore
/// from its own snapshot (as a restarting member does), and exported again and re-imported,
/// must have the same history.
///
/// This is the body of the `etcd_snapshot_reader` fuzz target. It must never panic.
pub fn fuzz_etcd_snapshot_reader(data: &[u8]) {
    // Inline buckets reach no pages, so a crafted file can nest them to any breadth: bounded.
    const BUCKETS_MAX: usize = 10_000;
    if let Ok(mut db) = bbolt::Db::open(data) {
        let mut buckets = vec![db.root()];
        let mut visited = 0;
        while let Some(bucket) = buckets.pop().filter(|_| visited < BUCKETS_MAX) {
            visited += 1;
            let _ = db.for_each(bucket, |entry| {
                if entry.is_bucket() {
                    buckets.push(entry.bucket()?);
                }
                Ok::<(), BoltError>(())
            });
        }
    }
    let config = tally_kvstore::KvConfig::default();
    let Ok(imported) = import_etcd_file(bytes::Bytes::copy_from_slice(data), config.clone()) else {
        return;
    };
    // A member restarts from the store's own snapshot: it must read back.
    let mut snapshot = Vec::new();
    imported
        .store()
        .snapshot(&mut snapshot)
        .expect("a snapshot in memory");
    tally_kvstore::KvStore::new(config.clone())
        .restore(&mut &snapshot[..])
        .expect("an imported store's snapshot restores");
    let mut file = std::io::Cursor::new(Vec::new());
    export_etcd_file(imported.store(), &mut file).expect("writing to memory does not fail");
    let again = import_etcd_file(bytes::Bytes::from(file.into_inner()), config)
        .expect("an exported store imports");
    let history = |store: &tally_kvstore::KvStore| -> Vec<String> {
        store
            .history()
            .map(|h| format!("{:?} {:?}", h.revision(), h.kv()))
            .collect()
    };
    assert_eq!(history(imported.store()), history(again.store()));
    assert_eq!(
        imported.store().revision(),
        again.store().revision(),
        "revision"
    );
}

#[cfg(test)]
mod tests;
