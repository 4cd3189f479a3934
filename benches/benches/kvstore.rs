//! tally-kvstore: put throughput; ranges of 1, 100 and 10,000 keys (by prefix) at 1M keys; watch
//! fan-out to 1,000 watchers; memory per key at 1M keys (32-byte keys, 256-byte values); and
//! the longest apply / compaction step, the snapshot copy and a delete of every key, at 1M keys.
//!
//! Run: `cargo bench -p tally-benches --bench kvstore -- --measurement-time 3`

// The counting allocator is the one piece of unsafe: GlobalAlloc cannot be implemented without.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use tally_kvstore::proto::{
    CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, WatchCreateRequest,
};
use tally_kvstore::{KvConfig, KvStore, prefix_range_end};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const KEYS: u32 = 1_000_000;
const VALUE_BYTES: usize = 256;

/// 32 bytes: `k{a:03}/{b:02}/{i:024}`. `k{a}/` holds 10,000 keys, `k{a}/{b}/` holds 100.
fn key(i: u32) -> Bytes {
    let k = format!("k{:03}/{:02}/{:024}", i / 10_000, (i / 100) % 100, i);
    debug_assert_eq!(k.len(), 32);
    Bytes::from(k)
}

fn put_req(i: u32) -> PutRequest {
    PutRequest {
        key: key(i),
        value: Bytes::from(vec![(i % 251) as u8; VALUE_BYTES]),
        ..PutRequest::default()
    }
}

fn store_with(keys: u32) -> KvStore {
    let mut kv = KvStore::new(KvConfig::default());
    for i in 0..keys {
        kv.put(&put_req(i)).expect("put");
    }
    kv
}

/// Prints memory per key, and the longest single apply and compaction step at 1M keys.
fn report_memory_and_stalls() -> KvStore {
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut kv = store_with(KEYS);
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    let per_key = (after - before) as f64 / KEYS as f64;
    println!(
        "kvstore memory: {:.0} bytes per key at {} keys (32-byte keys, {}-byte values; payload {} bytes)",
        per_key,
        KEYS,
        VALUE_BYTES,
        32 + VALUE_BYTES
    );
    // Overwrite every key once so compaction has real work, then time apply and steps.
    for i in 0..KEYS {
        kv.put(&put_req(i)).expect("put");
    }
    let rev = kv.revision();
    let t = Instant::now();
    kv.compact(&CompactionRequest {
        revision: rev,
        physical: true,
    })
    .expect("compact");
    let apply = t.elapsed();
    let mut step_times = Vec::new();
    let all = Instant::now();
    loop {
        let t = Instant::now();
        let more = kv.compact_step(1_000);
        step_times.push(t.elapsed());
        if !more {
            break;
        }
    }
    let total = all.elapsed();
    step_times.sort();
    let pct = |p: usize| step_times[(step_times.len() - 1) * p / 100];
    println!(
        "kvstore compaction at {} keys: apply {:?}; {} steps of 1,000 keys: median {:?}, p99 {:?}, max {:?}; total {:?}",
        KEYS,
        apply,
        step_times.len(),
        pct(50),
        pct(99),
        pct(100),
        total
    );
    let t = Instant::now();
    let mut copy = kv.snapshot_copy();
    let copy_time = t.elapsed();
    println!("kvstore snapshot_copy at {KEYS} keys (on the apply thread): {copy_time:?}");
    // The one apply that touches every key: check perf ends with such a delete of its prefix.
    let t = Instant::now();
    let deleted = copy
        .delete_range(&DeleteRangeRequest {
            key: Bytes::from_static(b"k"),
            range_end: prefix_range_end(b"k"),
            ..DeleteRangeRequest::default()
        })
        .expect("delete_range")
        .deleted;
    println!(
        "kvstore delete_range of {deleted} keys in one apply: {:?}",
        t.elapsed()
    );
    drop(copy);
    let t = Instant::now();
    let mut bytes = CountingSink(0);
    kv.snapshot(&mut bytes).expect("snapshot");
    let snap = t.elapsed();
    let t = Instant::now();
    black_box(kv.hash());
    println!(
        "kvstore snapshot at {} keys: {} bytes in {:?}; hash() in {:?}",
        KEYS,
        bytes.0,
        snap,
        t.elapsed()
    );
    kv
}

struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn put_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("kvstore_put");
    group.throughput(Throughput::Elements(1));
    group.bench_function("put_256B", |b| {
        let mut kv = KvStore::new(KvConfig::default());
        let mut i = 0u32;
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(kv.put(&put_req(i % KEYS)).expect("put"));
        });
    });
    group.finish();
}

fn ranges(c: &mut Criterion, kv: &KvStore) {
    let mut group = c.benchmark_group("kvstore_range_at_1M_keys");
    let cases = [
        (
            "1_key",
            RangeRequest {
                key: key(123_456),
                ..RangeRequest::default()
            },
            1u64,
        ),
        (
            "100_keys_prefix",
            RangeRequest {
                key: Bytes::from_static(b"k012/34/"),
                range_end: prefix_range_end(b"k012/34/"),
                ..RangeRequest::default()
            },
            100,
        ),
        (
            "10000_keys_prefix",
            RangeRequest {
                key: Bytes::from_static(b"k056/"),
                range_end: prefix_range_end(b"k056/"),
                ..RangeRequest::default()
            },
            10_000,
        ),
    ];
    for (name, req, n) in cases {
        assert_eq!(kv.range(&req).expect("range").kvs.len() as u64, n);
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::new("range", name), &req, |b, req| {
            b.iter(|| black_box(kv.range(req).expect("range")));
        });
    }
    let count_all = RangeRequest {
        key: Bytes::from_static(&[0]),
        range_end: Bytes::from_static(&[0]),
        count_only: true,
        ..RangeRequest::default()
    };
    group.throughput(Throughput::Elements(KEYS as u64));
    group.bench_function("count_only_all_keys", |b| {
        b.iter(|| black_box(kv.range(&count_all).expect("range")))
    });
    group.finish();
}

fn watch_fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("kvstore_watch");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("fan_out_1000_watchers", |b| {
        let mut kv = KvStore::new(KvConfig::default());
        for _ in 0..1_000 {
            kv.watch_create(&WatchCreateRequest {
                key: Bytes::from_static(b"k"),
                range_end: prefix_range_end(b"k"),
                ..WatchCreateRequest::default()
            })
            .expect("watch");
        }
        while kv.poll_watch_event().is_some() {}
        let mut i = 0u32;
        b.iter(|| {
            i = i.wrapping_add(1);
            kv.put(&put_req(i % 1_000)).expect("put");
            let mut n = 0;
            while let Some(r) = kv.poll_watch_event() {
                n += r.1.events.len();
            }
            assert_eq!(n, 1_000);
        });
    });
    group.finish();
}

fn main() {
    let kv = report_memory_and_stalls();
    let mut c = Criterion::default().configure_from_args();
    put_throughput(&mut c);
    ranges(&mut c, &kv);
    drop(kv);
    watch_fan_out(&mut c);
    c.final_summary();
}
