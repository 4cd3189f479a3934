//! tally-runtime-mio WAL: append throughput with real fdatasync, batches of 1, 64 and 1024
//! records of 256 bytes (one write + one fdatasync per batch), reported as records/s and as
//! MB/s; and, in the same run, the disk's single-fsync latency (a 4 KiB write at offset 0 +
//! fdatasync), which bounds un-batched appends.
//!
//! Run: `cargo bench -p tally-benches --bench wal_append -- --measurement-time 3`
//!
//! Files go to a fresh directory under `std::env::temp_dir()` (override with
//! `TALLY_BENCH_DIR`; it must be on a real disk, not tmpfs) and are removed afterwards.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tally_runtime_mio::wal::{Batch, Entry, EntryKind, SnapshotMarker, StdFs, Wal, WalConfig};

const RECORD_BYTES: usize = 256;
const BATCH_RECORDS: [u64; 3] = [1, 64, 1024];
/// Every this many batches a snapshot marker lets the WAL purge old segments, so a long
/// run does not fill the disk.
const PURGE_EVERY_BATCHES: u64 = 256;

fn bench_dir(tag: &str) -> PathBuf {
    let base = std::env::var_os("TALLY_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    base.join(format!(
        "tally-bench-wal-{tag}-{}-{nanos}",
        std::process::id()
    ))
}

/// A WAL in a fresh directory, with a cursor for the next index.
struct Appender {
    dir: PathBuf,
    wal: Wal,
    next_index: u64,
    batches: u64,
    payload: Bytes,
}

impl Appender {
    fn new(tag: &str) -> Self {
        let dir = bench_dir(tag);
        let (wal, _) =
            Wal::open(&dir, WalConfig::default(), Box::new(StdFs)).expect("open the WAL");
        Appender {
            dir,
            wal,
            next_index: 1,
            batches: 0,
            payload: Bytes::from(vec![0xa5u8; RECORD_BYTES]),
        }
    }

    /// One batch: one write and one fdatasync; returns when it is durable.
    fn append(&mut self, records: u64) {
        let entries = (0..records)
            .map(|i| {
                Entry::new(
                    self.next_index + i,
                    1,
                    EntryKind::Normal,
                    self.payload.clone(),
                )
            })
            .collect();
        self.next_index += records;
        self.batches += 1;
        let mut batch = Batch::new().with_entries(entries);
        if self.batches % PURGE_EVERY_BATCHES == 0 {
            batch = batch.with_snapshot(SnapshotMarker::new(self.next_index - 1 - records, 1));
        }
        let durable = self.wal.write(batch).expect("durable append");
        black_box(durable);
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wal_append(c: &mut Criterion) {
    for (unit, per_record) in [("records", None), ("bytes", Some(RECORD_BYTES as u64))] {
        let mut group = c.benchmark_group(format!("wal_append_{unit}"));
        for records in BATCH_RECORDS {
            group.throughput(match per_record {
                None => Throughput::Elements(records),
                Some(bytes) => Throughput::Bytes(records * bytes),
            });
            let mut appender = Appender::new(unit);
            group.bench_with_input(
                BenchmarkId::new("batch_records", records),
                &records,
                |b, &records| b.iter(|| appender.append(records)),
            );
        }
        group.finish();
    }
}

/// A 4 KiB file written and synced up front, so each iteration is a pure overwrite.
fn synced_block(path: &Path) -> File {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .expect("create the fsync probe file");
    write_block(&mut file);
    file
}

fn write_block(file: &mut File) {
    let block = [0x5au8; 4096];
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.write_all_at(&block, 0).expect("write 4 KiB");
    }
    #[cfg(not(unix))]
    {
        use std::io::{Seek, SeekFrom, Write};
        file.seek(SeekFrom::Start(0)).expect("seek");
        file.write_all(&block).expect("write 4 KiB");
    }
    file.sync_data().expect("fdatasync");
}

fn fsync_latency(c: &mut Criterion) {
    let dir = bench_dir("fsync");
    std::fs::create_dir_all(&dir).expect("create the bench directory");
    let mut file = synced_block(&dir.join("probe"));
    let mut group = c.benchmark_group("disk");
    group.throughput(Throughput::Elements(1));
    group.bench_function("write_4k_fdatasync", |b| b.iter(|| write_block(&mut file)));
    group.finish();
    drop(file);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, fsync_latency, wal_append);
criterion_main!(benches);
