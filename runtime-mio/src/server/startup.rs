//! Starting `tallyd`: flags to identities, the data directory to a recovered node, sockets.

use std::path::Path;

use bytes::Bytes;
use tally_core::{Config, Node};
use tally_kvstore::{KvConfig, KvStore};

use super::error::{ServerError, io_error};
use super::flags::Flags;
use super::identity::{Identity, identity};
use super::identity_file;
use super::members::Members;
use super::{payload, storage};

pub(super) fn core_config(flags: &Flags, member_id: u64) -> Config {
    Config::new(
        member_id,
        member_id ^ std::process::id() as u64 ^ nanos_now(),
    )
    .with_election_ticks(flags.election_ticks())
    .with_heartbeat_ticks(1)
    .with_snapshot_interval_entries(flags.snapshot_count())
    .with_compaction_trailing_entries(flags.snapshot_count().min(5000))
    .with_entry_bytes_max(u64::from(flags.max_request_bytes()) + 4096)
    .with_apply_bytes_max(super::apply_queue::APPLY_BATCH_BYTES_MAX)
}

fn nanos_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The recovered (or new) node, store and member table.
pub(super) struct Recovered {
    pub(super) node: Node,
    pub(super) kv: KvStore,
    pub(super) members: Members,
    pub(super) opened: storage::Opened,
    /// Whether the member belongs to its cluster already: its recovered log holds a leader's
    /// entry. Any other member (bootstrapping, joining, or one that never heard from a leader)
    /// joins when it first hears from a leader, and until then serves no data: its store is
    /// empty, not the cluster's.
    pub(super) joined: bool,
    /// Whether it bootstraps a new cluster from an empty data directory: it asks its peers
    /// first (`server::start_check`).
    pub(super) bootstraps: bool,
}

/// Bytes read from a snapshot file at a time when restoring from it.
const RESTORE_READ_BYTES: usize = 1 << 20;

/// Streams a snapshot file into the (fresh) store; its member table.
pub(super) fn restore_from_file(
    reader: crate::wal::SnapshotReader,
    kv: &mut KvStore,
) -> Result<Members, ServerError> {
    // The restore reads field by field; each read of the file is a system call.
    let reader = std::io::BufReader::with_capacity(RESTORE_READ_BYTES, reader);
    restore_store(reader, kv, "the latest snapshot")
}

/// Streams snapshot bytes (the payload prefix, then the kvstore snapshot) into the (fresh)
/// store; its member table. `input` is read to its end, so a file's checksum is checked before
/// the store is used. `what` names the snapshot in errors.
pub(super) fn restore_store(
    mut input: impl std::io::Read,
    kv: &mut KvStore,
    what: &str,
) -> Result<Members, ServerError> {
    let damaged = |part: &str, e: &dyn std::fmt::Display| {
        ServerError::DataDir(format!("{what}: {part}: {e}"))
    };
    let (table, kv_len) = payload::read_snapshot_prefix(&mut input)
        .map_err(|e| damaged("read", &e))?
        .ok_or_else(|| ServerError::DataDir(format!("{what} is not a tally snapshot")))?;
    let members = Members::decode(&table)
        .ok_or_else(|| ServerError::DataDir(format!("{what}: its member table is damaged")))?;
    let mut kv_bytes = std::io::Read::take(&mut input, kv_len);
    kv.restore(&mut kv_bytes)
        .map_err(|e| damaged("kvstore snapshot", &e))?;
    if kv_bytes.limit() != 0 {
        return Err(ServerError::DataDir(format!(
            "{what}: its kvstore snapshot is shorter than recorded"
        )));
    }
    std::io::copy(&mut input, &mut std::io::sink()).map_err(|e| damaged("read", &e))?;
    Ok(members)
}

/// Whether a recovered log shows that this member belonged to its cluster: it holds an entry
/// (or a snapshot) of a term after the bootstrap entries' term 1, which only a leader writes.
/// A member that never got that far (its peers refused it, say) has nothing of the cluster to
/// serve yet.
fn heard_from_a_leader(recovered: &tally_core::Recovered) -> bool {
    let snapshot_term = recovered.snapshot().meta().term();
    let entry_term = recovered.entries().last().map_or(0, |entry| entry.term());
    snapshot_term.max(entry_term) >= 2
}

pub(super) fn recover(flags: &Flags, id: &Identity) -> Result<Recovered, ServerError> {
    let mut opened = storage::open(&storage::Layout::of(flags))?;
    let config = core_config(flags, id.member_id);
    let mut kv = KvStore::new(KvConfig::default().with_txn_ops_max(flags.max_txn_ops()));
    let mut members = id.initial.clone();
    if let Some(reader) = opened.snapshot.take() {
        members = restore_from_file(reader, &mut kv)?;
    }
    let joined = opened.recovered.as_ref().is_some_and(heard_from_a_leader);
    let bootstraps = opened.recovered.is_none() && !flags.initial_cluster_existing();
    let node = match &opened.recovered {
        Some(recovered) => {
            let snapshot = recovered.snapshot();
            eprintln!(
                "tallyd: restarting member {:x} from {} (snapshot at {}, {} log entries)",
                id.member_id,
                flags.data_dir().display(),
                snapshot.meta().index(),
                recovered.entries().len()
            );
            Node::restart(config, recovered.clone())
                .map_err(|e| ServerError::DataDir(e.to_string()))?
        }
        None if flags.initial_cluster_existing() => {
            eprintln!(
                "tallyd: joining existing cluster {:x} as member {:x}",
                id.cluster_id, id.member_id
            );
            Node::join(config).map_err(|e| ServerError::DataDir(e.to_string()))?
        }
        None => {
            let voters: Vec<u64> = id.initial.ids().collect();
            eprintln!(
                "tallyd: bootstrapping cluster {:x} with {} members; this is member {:x}",
                id.cluster_id,
                voters.len(),
                id.member_id
            );
            Node::bootstrap(config, &voters).map_err(|e| ServerError::DataDir(e.to_string()))?
        }
    };
    Ok(Recovered {
        node,
        kv,
        members,
        opened,
        joined,
        bootstraps,
    })
}

/// Everything before the loop starts: the flags checked, a snapshot file restored if asked
/// for, the member's identity, and what its data directory recovered.
pub(super) fn prepare(flags: Flags) -> Result<(Flags, Identity, Recovered), ServerError> {
    for (flag, why) in flags.ignored() {
        eprintln!("tallyd: warning: etcd's flag --{flag} is ignored: {why}");
    }
    check_quota_fits_in_memory(flags.quota_backend_bytes())?;
    if let Some(file) = flags.restore_snapshot() {
        restore_snapshot_file(&flags, file)?;
    }
    let from_flags = identity(&flags);
    let stored = identity_file::load(flags.data_dir())?;
    let identity = match &stored {
        Some(stored) => {
            warn_of_ignored_flags(&flags, &from_flags, stored);
            stored.clone()
        }
        None => from_flags,
    };
    let recovered = recover(&flags, &identity)?;
    if stored.is_none() {
        // Written before the member sends or serves anything: from now on this is who it is.
        identity_file::store(flags.data_dir(), &identity)?;
    }
    Ok((flags, identity, recovered))
}

/// The store lives in memory: a quota larger than the machine's memory is no bound at all, and
/// the member would run out of memory before the NOSPACE alarm could stop the writes.
fn check_quota_fits_in_memory(quota_bytes: u64) -> Result<(), ServerError> {
    let Some(memory_bytes) = memory_total_bytes() else {
        return Ok(());
    };
    if quota_bytes > memory_bytes {
        return Err(ServerError::Settings(format!(
            "--quota-backend-bytes {quota_bytes} is more than this machine's memory ({memory_bytes} bytes): tally keeps its store in memory, so the quota must fit in it"
        )));
    }
    Ok(())
}

/// `MemTotal` of /proc/meminfo, in bytes; `None` where it cannot be read.
fn memory_total_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Once bootstrapped, a member's identity and initial membership come from its data
/// directory, as etcd's do: the `--initial-cluster*` flags that would say otherwise are
/// ignored, one warning line each.
fn warn_of_ignored_flags(flags: &Flags, from_flags: &Identity, bootstrapped: &Identity) {
    let why = format!(
        "member {:x} of cluster {:x} has already been bootstrapped; its identity and membership come from {}",
        bootstrapped.member_id,
        bootstrapped.cluster_id,
        flags.data_dir().display()
    );
    if flags.initial_cluster_token() != bootstrapped.token {
        eprintln!("tallyd: warning: --initial-cluster-token is ignored: {why}");
    }
    let cluster = |members: &Members| -> Vec<(u64, String, Vec<String>)> {
        members
            .list()
            .into_iter()
            .map(|m| (m.id, m.name, m.peer_urls))
            .collect()
    };
    if cluster(&from_flags.initial) != cluster(&bootstrapped.initial) {
        eprintln!("tallyd: warning: --initial-cluster is ignored: {why}");
    }
}

/// `--restore-snapshot FILE`: seeds an empty data directory from a file written by
/// `etcdctl snapshot save` against tally (the data, zero padding to 512 bytes, then SHA-256).
/// The restored member then starts a new cluster from `--initial-cluster`, as
/// `etcdctl snapshot restore` does for etcd.
pub fn restore_snapshot_file(flags: &Flags, file: &Path) -> Result<(), ServerError> {
    let dir = flags.data_dir();
    for dir in std::iter::once(dir).chain(flags.wal_dir()) {
        if dir.exists()
            && std::fs::read_dir(dir)
                .map_err(io_error("read data dir"))?
                .next()
                .is_some()
        {
            return Err(ServerError::DataDir(format!(
                "{} is not empty; refusing to restore over it",
                dir.display()
            )));
        }
    }
    let kv = read_snapshot_file(file)?;
    let identity = identity(flags);
    // A new cluster: fresh membership from the flags, the data from the file. The bootstrap
    // entries come first, so the snapshot sits just after them (as etcd's restore does).
    let voters: Vec<u64> = identity.initial.ids().collect();
    // The log resumes after the store's own applied index, so every later entry applies.
    let index = (voters.len() as u64).max(kv.applied_index());
    let meta = crate::wal::SnapshotMeta::new(index, 1, voters, Vec::new());
    let members = identity.initial.encode();
    let opened = storage::open(&storage::Layout::of(flags))?;
    // Streamed into its file, as the worker writes snapshots: no store-sized buffer.
    opened
        .snapshots
        .save_streamed(
            &meta,
            payload::snapshot_prefix_bytes(&members),
            |body| kv.snapshot(body).map_err(std::io::Error::other),
            |kv_bytes| payload::snapshot_prefix(&members, kv_bytes),
        )
        .map_err(storage::StorageError::from)?;
    let mut wal = opened.wal;
    let batch =
        storage::marker_batch(index, 1).with_hard_state(crate::wal::HardState::new(1, 0, index));
    wal.write(batch)
        .map_err(|e| ServerError::WalFailed(e.to_string()))?;
    eprintln!(
        "tallyd: restored {} into {} (revision {})",
        file.display(),
        dir.display(),
        kv.revision()
    );
    Ok(())
}

/// The store in an `etcdctl snapshot save` file, of tally or of etcd 3.x (a bbolt database,
/// imported with every revision: `crate::etcd_snapshot`). The file is read whole (its SHA-256
/// trailer covers all of it) and dropped once the store is built.
pub(crate) fn read_snapshot_file(file: &Path) -> Result<KvStore, ServerError> {
    let bytes = std::fs::read(file).map_err(io_error(format!("read {}", file.display())))?;
    let bad = |e: &dyn std::fmt::Display| {
        ServerError::BadSnapshotFile(format!("{}: {e}", file.display()))
    };
    if crate::etcd_snapshot::is_etcd_snapshot(&bytes) {
        let imported =
            crate::etcd_snapshot::import_etcd_file(Bytes::from(bytes), KvConfig::default())
                .map_err(|e| bad(&e))?;
        eprintln!("tallyd: {}: {}", file.display(), imported.report());
        return Ok(imported.into_store());
    }
    if !matches!(payload::read_snapshot_prefix(&mut &bytes[..]), Ok(Some(_))) {
        return Err(bad(
            &"neither a tally snapshot nor an etcd snapshot (a bbolt database)",
        ));
    }
    let data_len = verify_snapshot_file(&bytes)
        .map_err(ServerError::BadSnapshotFile)?
        .len();
    let data = Bytes::from(bytes).slice(..data_len);
    let (_table, kv_bytes) = payload::decode_snapshot(&data)
        .ok_or_else(|| ServerError::BadSnapshotFile("not a tally snapshot".into()))?;
    let mut kv = KvStore::new(KvConfig::default());
    kv.restore(&mut &kv_bytes[..])
        .map_err(|e| ServerError::BadSnapshotFile(format!("kvstore snapshot: {e}")))?;
    Ok(kv)
}

/// Checks the SHA-256 trailer of an `etcdctl snapshot save` file; returns the data before it.
pub(super) fn verify_snapshot_file(bytes: &[u8]) -> Result<&[u8], String> {
    const SHA256_BYTES: usize = 32;
    if bytes.len() % 512 != SHA256_BYTES {
        return Err("file has no SHA-256 trailer (its size is not 512·n + 32)".into());
    }
    let (data, trailer) = bytes.split_at(bytes.len() - SHA256_BYTES);
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    if digest.as_ref() != trailer {
        return Err("SHA-256 trailer does not match the data".into());
    }
    Ok(data)
}
