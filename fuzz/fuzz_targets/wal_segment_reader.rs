#![no_main]
// Arbitrary bytes as a WAL segment: the reader must classify them (valid, torn tail, or
// corruption with an offset) without panicking. The logic lives in the crate, so a unit test
// runs it over the seeds in fuzz/seeds/wal_segment_reader/.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tally_runtime_mio::wal::fuzz_segment_reader(data);
});
