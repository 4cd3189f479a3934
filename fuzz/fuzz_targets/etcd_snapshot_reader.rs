#![no_main]
//! Arbitrary bytes as an etcd snapshot file (a bbolt database):
//! `tally_runtime_mio::etcd_snapshot::fuzz_etcd_snapshot_reader` walks every bucket with the
//! bbolt reader and imports the file as etcd's backend, without panicking; what imports is
//! written out as an etcd file and must import again with the same history. A unit test runs
//! it over the seeds in fuzz/seeds/etcd_snapshot_reader/.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tally_runtime_mio::etcd_snapshot::fuzz_etcd_snapshot_reader(data);
});
